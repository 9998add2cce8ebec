// SPDX-License-Identifier: MIT
// The configuration file's syntax: INI lines parsed as data into sections of key = value.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace rlock::cli {

struct ConfigEntry {
  std::string key;
  std::string value;
  int line = 0; // 1-based
};

// The unnamed section before any header (profile "") or one [profile NAME].
struct ConfigSection {
  std::string profile;
  int line = 0; // of the header; 0 for the unnamed section
  std::vector<ConfigEntry> entries;

  // The entry for `key`, or nullptr.
  const ConfigEntry* find(std::string_view key) const;
};

struct ConfigFile {
  std::string path;                    // as named in messages
  std::vector<ConfigSection> sections; // [0] is the unnamed section, always present

  const ConfigSection& defaults() const { return sections.front(); }
  // The [profile NAME] section, or nullptr.
  const ConfigSection* profile(std::string_view name) const;
  // "a, b, c": the profile names in file order, for messages.
  std::string profile_names() const;
};

// Parses `text`, read from `path`. Lines are `key = value`, `[profile NAME]`, blank, or
// comments starting with '#' or ';' (only at the start of a line: a value may contain them).
// Keys are lowercase option names ([a-z0-9-]); values are the rest of the line, trimmed,
// never empty, without control characters. Syntax only: which keys exist is the caller's.
// Throws ConfigError "PATH:LINE: what is wrong" for a malformed line, a key given twice in
// one section, or a profile defined twice.
ConfigFile parse_config_file(std::string_view text, std::string_view path);

} // namespace rlock::cli
