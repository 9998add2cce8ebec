// SPDX-License-Identifier: MIT
// ReplyClass: the table of Redis error codes and what each means for rlock.
#include "redis/reply_class.hpp"

#include "util/strings.hpp"

#include <array>
#include <fmt/format.h>
#include <utility>

namespace rlock::redis {

namespace {

// The first word of a reply ("LOADING" in "LOADING Redis is loading the dataset in memory").
std::string_view first_word(std::string_view text) { return text.substr(0, text.find(' ')); }

bool contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

constexpr std::array<std::pair<std::string_view, ReplyClass>, 15> k_codes{{
    {"MOVED", ReplyClass::redirect},
    {"ASK", ReplyClass::redirect},
    {"LOADING", ReplyClass::retry_later},
    {"BUSY", ReplyClass::retry_later},
    {"TRYAGAIN", ReplyClass::retry_later},
    {"CLUSTERDOWN", ReplyClass::retry_later},
    {"MASTERDOWN", ReplyClass::retry_later},
    {"UNBLOCKED", ReplyClass::retry_later},
    {"NOREPLICAS", ReplyClass::retry_later},
    // Writes refused while the last background save failed: cured when an operator acts.
    {"MISCONF", ReplyClass::retry_later},
    {"READONLY", ReplyClass::read_only},
    {"NOAUTH", ReplyClass::auth},
    {"WRONGPASS", ReplyClass::auth},
    {"NOPERM", ReplyClass::auth},
    {"NOSCRIPT", ReplyClass::script_missing},
}};

// Codes that come as "ERR ..." (no code of their own), by a part of their text.
constexpr std::array<std::pair<std::string_view, ReplyClass>, 7> k_err_texts{{
    {"max number of clients reached", ReplyClass::retry_later},
    {"can't run this command or subcommand", ReplyClass::auth}, // ACL, inside a script
    {"can't access at least one of the", ReplyClass::auth},     // keys or channels, inside a script
    {"Protocol error: unauthenticated", ReplyClass::auth},
    {"called without any password configured", ReplyClass::auth},
    {"value is not an integer", ReplyClass::wrong_type}, // also "hash value is not an integer"
    {"increment or decrement would overflow", ReplyClass::wrong_type},
}};

ReplyClass class_of_code(std::string_view code) {
  if (code == "WRONGTYPE") return ReplyClass::wrong_type;
  if (code == "OOM") return ReplyClass::out_of_memory;
  for (const auto& [known, kind] : k_codes) {
    if (code == known) return kind;
  }
  return ReplyClass::other;
}

void parse_redirect(ErrorReply& reply, std::string_view text) {
  // "MOVED <slot> <host>:<port>" / "ASK <slot> <host>:<port>"
  reply.ask = first_word(text) == "ASK";
  std::string_view rest = text.substr(std::min(text.size(), first_word(text).size() + 1));
  std::string_view slot = first_word(rest);
  std::int64_t value = -1;
  if (parse_int(slot, value)) reply.slot = value;
  rest = rest.substr(std::min(rest.size(), slot.size() + 1));
  reply.target = std::string(first_word(rest));
}

} // namespace

ErrorReply classify_error(std::string_view text) {
  ErrorReply reply;
  std::string shown = printable(text.substr(0, 400));
  reply.text = shown;
  std::string_view code = first_word(text);
  reply.kind = class_of_code(code);
  if (reply.kind == ReplyClass::redirect) parse_redirect(reply, text);
  if (reply.kind != ReplyClass::other) return reply;
  for (const auto& [part, kind] : k_err_texts) {
    if (contains(text, part)) {
      reply.kind = kind;
      return reply;
    }
  }
  // Redis before 7 wraps an error inside a script: "ERR Error running script (call to f_…):
  // @user_script:12: WRONGTYPE Operation against …". Its code is the word after ": ".
  if (code == "ERR" && contains(text, "Error running script")) {
    for (std::size_t at = text.find(": "); at != std::string_view::npos; at = text.find(": ", at + 2)) {
      std::string_view inner = first_word(text.substr(at + 2));
      if (!inner.empty() && inner.front() == '-') inner.remove_prefix(1);
      ReplyClass kind = class_of_code(inner);
      if (kind != ReplyClass::other && kind != ReplyClass::redirect) {
        reply.kind = kind;
        return reply;
      }
    }
  }
  return reply;
}

ExitCode exit_code_of(ReplyClass kind) noexcept {
  switch (kind) {
  case ReplyClass::redirect:
  case ReplyClass::retry_later:
  case ReplyClass::read_only:
  case ReplyClass::out_of_memory:
  case ReplyClass::script_missing: return ExitCode::unavailable;
  case ReplyClass::auth: return ExitCode::auth;
  case ReplyClass::wrong_type: return ExitCode::config;
  case ReplyClass::other: break;
  }
  return ExitCode::internal;
}

void throw_error_reply(const ErrorReply& reply, std::string_view context) {
  const std::string& text = reply.text;
  switch (reply.kind) {
  case ReplyClass::auth:
    if (first_word(text) == "NOAUTH" || contains(text, "unauthenticated")) {
      throw AuthError(fmt::format("{}: Redis requires a password ({}); set RLOCK_PASSWORD, use "
                                  "--password-file, or put it in the URL",
                                  context, text));
    }
    throw AuthError(fmt::format("{}: Redis refused: {}", context, text));
  case ReplyClass::wrong_type:
    throw ConfigError(fmt::format("{}: a key rlock needs holds another type of value ({}); another "
                                  "program uses it: choose another --prefix",
                                  context, text));
  case ReplyClass::read_only:
    throw TransientReplyError(reply, fmt::format("{}: Redis is a read-only replica now ({}); point --url at "
                                                 "the primary",
                                                 context, text));
  case ReplyClass::redirect:
    throw TransientReplyError(reply, fmt::format("{}: the cluster kept redirecting ({}); its slots may be "
                                                 "moving: try again",
                                                 context, text));
  case ReplyClass::out_of_memory:
  case ReplyClass::retry_later:
  case ReplyClass::script_missing:
    throw TransientReplyError(reply, fmt::format("{}: Redis cannot serve it now: {}", context, text));
  case ReplyClass::other: break;
  }
  throw Error(ExitCode::internal, fmt::format("{}: Redis replied with an error: {}", context, text));
}

} // namespace rlock::redis
