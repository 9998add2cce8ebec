// SPDX-License-Identifier: MIT
// Diagnostics on stderr: "rlock: …" lines at the verbosity the user chose.
#pragma once

#include <fmt/format.h>
#include <string_view>

namespace rlock::log {

enum class Level { quiet, normal, verbose };

void set_level(Level level) noexcept;
Level level() noexcept;

void write_line(std::string_view prefix, std::string_view message) noexcept;

// "rlock: error: MESSAGE", whatever the level: the one printer of errors (one line saying
// what failed and what to do, as rlock(1) EXIT STATUS promises). cli::run() prints what
// unwinds to it with this; so do the few errors that do not end rlock at once (a job
// stopped, a lock lost after the job).
void error(std::string_view message) noexcept;

// "rlock: warning: …" unless quiet.
template <typename... Args>
void warn(fmt::format_string<Args...> format, Args&&... args) {
  if (level() != Level::quiet) {
    write_line("rlock: warning: ", fmt::format(format, std::forward<Args>(args)...));
  }
}

// "rlock: …" with -v only.
template <typename... Args>
void verbose(fmt::format_string<Args...> format, Args&&... args) {
  if (level() == Level::verbose) {
    write_line("rlock: ", fmt::format(format, std::forward<Args>(args)...));
  }
}

// "rlock: …" unless quiet: things an operator wants to see (who was evicted, lock lost).
template <typename... Args>
void info(fmt::format_string<Args...> format, Args&&... args) {
  if (level() != Level::quiet) {
    write_line("rlock: ", fmt::format(format, std::forward<Args>(args)...));
  }
}

} // namespace rlock::log
