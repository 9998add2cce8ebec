// SPDX-License-Identifier: MIT
// Diagnostics: one write(2) per line so that lines from several processes do not interleave.
#include "util/log.hpp"

#include <string>
#include <unistd.h>

namespace rlock::log {

namespace {
Level g_level = Level::normal;
}

void set_level(Level new_level) noexcept { g_level = new_level; }
Level level() noexcept { return g_level; }

void write_line(std::string_view prefix, std::string_view message) noexcept {
  try {
    std::string line;
    line.reserve(prefix.size() + message.size() + 1);
    line.append(prefix).append(message).push_back('\n');
    std::string_view rest = line;
    while (!rest.empty()) {
      ssize_t n = ::write(STDERR_FILENO, rest.data(), rest.size());
      if (n <= 0) break;
      rest.remove_prefix(static_cast<std::size_t>(n));
    }
  } catch (...) {
    // Out of memory while logging: nothing better to do than drop the line.
  }
}

void error(std::string_view message) noexcept { write_line("rlock: error: ", message); }

} // namespace rlock::log
