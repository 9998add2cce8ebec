// SPDX-License-Identifier: MIT
// The configuration file's syntax: a small line parser, no escapes, no includes, no expansion.
#include "cli/config_file.hpp"

#include "util/error.hpp"
#include "util/strings.hpp"

#include <fmt/format.h>

namespace rlock::cli {

namespace {

constexpr std::string_view k_blanks = " \t";

std::string_view trim(std::string_view text) {
  const auto first = text.find_first_not_of(k_blanks);
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(k_blanks);
  return text.substr(first, last - first + 1);
}

bool is_key_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; }

bool is_profile_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
}

bool has_control(std::string_view text) {
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if ((byte < 0x20 && c != '\t') || byte == 0x7f) return true;
  }
  return false;
}

class LineParser {
 public:
  explicit LineParser(std::string_view path) { m_file.path = path; }

  void parse(std::string_view text) {
    m_file.sections.emplace_back();
    int number = 0;
    while (!text.empty()) {
      const auto end = text.find('\n');
      std::string_view line = text.substr(0, end);
      text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
      ++number;
      if (line.ends_with('\r')) line.remove_suffix(1);
      parse_line(line, number);
    }
  }

  ConfigFile take() { return std::move(m_file); }

 private:
  [[noreturn]] void fail(int line, std::string_view what) const {
    throw ConfigError(fmt::format("{}:{}: {}", printable(m_file.path), line, what));
  }

  void parse_line(std::string_view raw, int number) {
    if (has_control(raw)) fail(number, "control characters are not allowed");
    const std::string_view line = trim(raw);
    if (line.empty() || line.front() == '#' || line.front() == ';') return;
    if (line.front() == '[') {
      parse_header(line, number);
      return;
    }
    const auto equals = line.find('=');
    if (equals == std::string_view::npos) {
      fail(number, fmt::format("expected 'key = value' or '[profile NAME]', got '{}'", printable(line)));
    }
    const std::string_view key = trim(line.substr(0, equals));
    const std::string_view value = trim(line.substr(equals + 1));
    if (key.empty()) fail(number, "a line starts with '=': the key is missing");
    for (char c : key) {
      if (!is_key_char(c)) {
        fail(number, fmt::format("'{}' is not a key: keys are option names such as url or io-timeout", printable(key)));
      }
    }
    if (value.empty()) fail(number, fmt::format("'{}' has no value; remove the line to use the default", key));
    ConfigSection& section = m_file.sections.back();
    if (const ConfigEntry* earlier = section.find(key); earlier != nullptr) {
      fail(number, fmt::format("'{}' is set twice in this section (first at line {})", key, earlier->line));
    }
    section.entries.push_back(ConfigEntry{std::string(key), std::string(value), number});
  }

  void parse_header(std::string_view line, int number) {
    if (!line.ends_with(']')) fail(number, "a section header must end with ']'");
    const std::string_view inside = trim(line.substr(1, line.size() - 2));
    constexpr std::string_view k_profile = "profile";
    if (!inside.starts_with(k_profile) || inside.size() == k_profile.size() ||
        k_blanks.find(inside[k_profile.size()]) == std::string_view::npos) {
      fail(number, fmt::format("unknown section [{}]; sections are [profile NAME]", printable(inside)));
    }
    const std::string_view name = trim(inside.substr(k_profile.size()));
    if (name.empty() || name.size() > 64) fail(number, "a profile name has 1 to 64 characters");
    for (char c : name) {
      if (!is_profile_char(c)) {
        fail(number, fmt::format("profile name '{}': use letters, digits, '-', '_' and '.'", printable(name)));
      }
    }
    if (const ConfigSection* earlier = m_file.profile(name); earlier != nullptr) {
      fail(number, fmt::format("profile '{}' is defined twice (first at line {})", name, earlier->line));
    }
    m_file.sections.push_back(ConfigSection{std::string(name), number, {}});
  }

  ConfigFile m_file;
};

} // namespace

const ConfigEntry* ConfigSection::find(std::string_view key) const {
  for (const ConfigEntry& entry : entries) {
    if (entry.key == key) return &entry;
  }
  return nullptr;
}

const ConfigSection* ConfigFile::profile(std::string_view name) const {
  for (std::size_t i = 1; i < sections.size(); ++i) {
    if (sections[i].profile == name) return &sections[i];
  }
  return nullptr;
}

std::string ConfigFile::profile_names() const {
  std::string names;
  for (std::size_t i = 1; i < sections.size(); ++i) {
    if (!names.empty()) names += ", ";
    names += sections[i].profile;
  }
  return names;
}

ConfigFile parse_config_file(std::string_view text, std::string_view path) {
  LineParser parser(path);
  parser.parse(text);
  return parser.take();
}

} // namespace rlock::cli
