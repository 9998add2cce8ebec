// SPDX-License-Identifier: MIT
// Redaction of secrets from command lines.
//
// Design. A holder's command line is read from /proc and stored in Redis, where anyone who can
// run `status` reads it, so it must lose every secret first. Command lines are free text, so
// this is a heuristic, tuned to hide too much rather than too little: the line is split into
// words the way sh would (quotes, backslashes), each word is judged with the word before it
// (`--password SECRET`), words that are command lines themselves (`sh -c '…'`) are judged
// recursively, and a changed word is written back quoted. The URL rule takes the last '@' of a
// URL as the end of its userinfo, as rlock's own URL parser does.
#include "util/redact.hpp"

#include "util/strings.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <vector>

namespace rlock {

namespace {

constexpr std::string_view k_hidden = "***";
constexpr std::string_view k_spaces = " \t\n\r\v\f";
constexpr int k_max_depth = 4;

struct Word {
  std::size_t begin = 0; // the raw span in the line
  std::size_t end = 0;
  std::string value; // unquoted
};

bool is_space(char c) { return k_spaces.find(c) != std::string_view::npos; }

std::vector<Word> split_words(std::string_view line) {
  std::vector<Word> words;
  std::size_t i = 0;
  for (;;) {
    while (i < line.size() && is_space(line[i])) ++i;
    if (i >= line.size()) return words;
    Word word;
    word.begin = i;
    while (i < line.size() && !is_space(line[i])) {
      char c = line[i];
      if (c == '\'') {
        std::size_t close = line.find('\'', i + 1);
        if (close == std::string_view::npos) close = line.size();
        word.value.append(line.substr(i + 1, close - i - 1));
        i = std::min(close + 1, line.size());
      } else if (c == '"') {
        for (++i; i < line.size() && line[i] != '"'; ++i) {
          if (line[i] == '\\' && i + 1 < line.size() &&
              std::string_view("\"\\$`").find(line[i + 1]) != std::string_view::npos) {
            ++i;
          }
          word.value += line[i];
        }
        i = std::min(i + 1, line.size());
      } else if (c == '\\' && i + 1 < line.size()) {
        word.value += line[i + 1];
        i += 2;
      } else {
        word.value += c;
        ++i;
      }
    }
    word.end = i;
    words.push_back(std::move(word));
  }
}

std::string lower_dashed(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (char c : name) {
    out += c == '_' || c == '.' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

// Whether an option, variable or parameter called `raw` (leading dashes allowed) holds a secret.
bool secret_name(std::string_view raw) {
  while (raw.starts_with('-')) raw.remove_prefix(1);
  if (raw.empty()) return false;
  const std::string name = lower_dashed(raw);
  if (name.starts_with("no-")) return false;
  for (std::string_view names_a_place : {"-file", "-path", "-dir", "-stdin", "-fd", "-env", "-cmd", "-command"}) {
    if (name.ends_with(names_a_place)) return false;
  }
  for (std::string_view secret :
       {"password", "passwd", "passphrase", "secret", "token", "credential", "apikey", "api-key"}) {
    if (name.find(secret) != std::string::npos) return true;
  }
  return name.ends_with("pass") || name == "auth" || name.ends_with("-auth") || name == "masterauth";
}

bool is_key_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '.' || c == '-';
}

bool is_scheme_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '+' || c == '.' || c == '-';
}

std::string_view base_name(std::string_view path) {
  auto slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

bool is_redis_client(std::string_view word) {
  static constexpr std::array<std::string_view, 6> k_clients = {
      "redis-cli", "valkey-cli", "keydb-cli", "redis-benchmark", "valkey-benchmark", "keydb-benchmark"};
  return std::find(k_clients.begin(), k_clients.end(), base_name(word)) != k_clients.end();
}

// scheme://USERINFO@host → scheme://user:***@host or scheme://***@host, for every URL in `text`.
void redact_userinfo(std::string& text) {
  std::size_t from = 0;
  bool first = true;
  for (;;) {
    std::size_t separator = text.find("://", from);
    if (separator == std::string::npos) return;
    std::size_t scheme = separator;
    while (scheme > 0 && is_scheme_char(text[scheme - 1])) --scheme;
    std::size_t start = separator + 3;
    from = start;
    if (scheme == separator) continue;
    // The URL ends at whitespace; a word that starts as a URL is one URL to its end, since a
    // password may hold a blank that sh kept by quoting.
    bool whole = first && text.find_first_of(k_spaces) > scheme;
    first = false;
    std::size_t stop = whole ? text.size() : std::min(text.find_first_of(k_spaces, start), text.size());
    std::size_t at = text.rfind('@', stop == 0 ? 0 : stop - 1);
    if (at == std::string::npos || at <= start) continue;
    std::string_view userinfo = std::string_view(text).substr(start, at - start);
    std::size_t colon = userinfo.find(':');
    std::string shown = colon == std::string_view::npos
                            ? std::string(k_hidden)
                            : std::string(userinfo.substr(0, colon + 1)) + std::string(k_hidden);
    text.replace(start, at - start, shown);
    from = start + shown.size() + 1;
  }
}

// ?password=SECRET, &access_token=SECRET, ;pass=SECRET anywhere in `text`.
void redact_parameters(std::string& text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '?' && text[i] != '&' && text[i] != ';') continue;
    std::size_t key_end = i + 1;
    while (key_end < text.size() && is_key_char(text[key_end])) ++key_end;
    if (key_end == i + 1 || key_end >= text.size() || text[key_end] != '=') continue;
    if (!secret_name(std::string_view(text).substr(i + 1, key_end - i - 1))) continue;
    std::size_t value_end = text.find_first_of("&#; \t\n\r\v\f", key_end + 1);
    if (value_end == std::string::npos) value_end = text.size();
    if (value_end > key_end + 1) text.replace(key_end + 1, value_end - key_end - 1, k_hidden);
  }
}

// NAME=SECRET, --password=SECRET, -Dkey.password=SECRET at the start of `text`: the value, up to
// a blank, is hidden.
void redact_assignment(std::string& text) {
  std::size_t equals = text.find('=');
  if (equals == std::string::npos || equals == 0) return;
  std::string_view key = std::string_view(text).substr(0, equals);
  if (!std::all_of(key.begin(), key.end(), is_key_char) || !secret_name(key)) return;
  std::size_t end = std::min(text.find_first_of(k_spaces, equals + 1), text.size());
  if (end > equals + 1) text.replace(equals + 1, end - equals - 1, k_hidden);
}

std::string redact(std::string_view line, int depth);

std::string redact_word(std::string value, std::string_view previous, bool after_redis_client, int depth) {
  const bool previous_is_option = previous.starts_with('-') && previous.find('=') == std::string_view::npos;
  if (previous_is_option) {
    // -a SECRET is redis-cli's; elsewhere -a is often a flag, so an option after it stays.
    if (previous == "-a" && (after_redis_client || !value.starts_with('-'))) return std::string(k_hidden);
    if (previous != "-a" && secret_name(previous) && !value.starts_with("--")) return std::string(k_hidden);
    // curl -u USER:SECRET
    if ((previous == "-u" || previous == "--user") && value.find("://") == std::string::npos) {
      if (std::size_t colon = value.find(':'); colon != std::string::npos) {
        return value.substr(0, colon + 1) + std::string(k_hidden);
      }
    }
  }
  if (lower_dashed(value.substr(0, 14)) == "authorization:") return "Authorization: " + std::string(k_hidden);
  redact_assignment(value);
  redact_userinfo(value);
  redact_parameters(value);
  if (depth < k_max_depth && value.find_first_of(k_spaces) != std::string::npos) return redact(value, depth + 1);
  return value;
}

// shell_quote, but "***" stays readable: a redacted line is for reading, not for pasting.
std::string quote_word(std::string_view word) {
  std::string probe(word);
  std::replace(probe.begin(), probe.end(), '*', 'x');
  return shell_quote(probe) == probe ? std::string(word) : shell_quote(word);
}

std::string redact(std::string_view line, int depth) {
  std::string out;
  std::size_t copied = 0;
  std::string previous;
  bool after_redis_client = false;
  for (Word& word : split_words(line)) {
    std::string shown = redact_word(word.value, previous, after_redis_client, depth);
    out.append(line.substr(copied, word.begin - copied));
    out += shown == word.value ? std::string(line.substr(word.begin, word.end - word.begin)) : quote_word(shown);
    copied = word.end;
    after_redis_client = after_redis_client || is_redis_client(word.value);
    previous = std::move(word.value);
  }
  out.append(line.substr(copied));
  return out;
}

} // namespace

std::string redact_command_line(std::string_view line) { return redact(line, 0); }

} // namespace rlock
