// SPDX-License-Identifier: MIT
// libFuzzer target: the config file parser must accept or reject any bytes without crashing,
// and what it accepts must hold its own invariants.
#include "cli/config_file.hpp"
#include "util/error.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

bool is_key(std::string_view key) {
  if (key.empty()) return false;
  for (char c : key) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const rlock::cli::ConfigFile file = rlock::cli::parse_config_file(text, "fuzz");
    if (file.sections.empty() || !file.sections.front().profile.empty()) __builtin_trap();
    int last_line = 0;
    for (std::size_t i = 0; i < file.sections.size(); ++i) {
      const rlock::cli::ConfigSection& section = file.sections[i];
      // Profiles are named, unique and findable; lines only go forward.
      if (i > 0 && (section.profile.empty() || file.profile(section.profile) != &section)) __builtin_trap();
      if (i > 0) {
        if (section.line <= last_line) __builtin_trap();
        last_line = section.line;
      }
      for (const rlock::cli::ConfigEntry& entry : section.entries) {
        if (!is_key(entry.key) || entry.value.empty() || entry.line <= last_line) __builtin_trap();
        if (section.find(entry.key) != &entry) __builtin_trap(); // no key twice in a section
        // Values are trimmed and hold no control characters (tabs inside are fine).
        if (entry.value.front() == ' ' || entry.value.back() == ' ' || entry.value.front() == '\t' ||
            entry.value.back() == '\t') {
          __builtin_trap();
        }
        for (char c : entry.value) {
          const auto byte = static_cast<unsigned char>(c);
          if ((byte < 0x20 && c != '\t') || byte == 0x7f) __builtin_trap();
        }
        last_line = entry.line;
      }
    }
  } catch (const rlock::ConfigError& error) {
    // Every refusal names the file and a line.
    if (std::string_view(error.what()).rfind("fuzz:", 0) != 0) __builtin_trap();
  }
  return 0;
}
