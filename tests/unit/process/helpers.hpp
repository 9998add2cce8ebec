// SPDX-License-Identifier: MIT
// Helpers for the process tests: a scratch directory and waiting on observable state.
#pragma once

#include "../temp_dir.hpp"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "process/child.hpp"

namespace rlock::process::test {

using rlock::unit_test::TempDir;

// Polls `condition` until it holds or a generous limit passes; returns whether it held. For
// state that nothing notifies us of (another process wrote a file, a process went away).
template <typename Condition>
bool eventually(Condition condition, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto give_up = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

// Options to run `argv`, starting with `mask` if given.
inline SpawnOptions command(std::vector<std::string> argv, std::optional<sigset_t> mask = std::nullopt) {
  SpawnOptions options;
  options.argv = std::move(argv);
  options.signal_mask = mask;
  return options;
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

// A complete line written to `path` (the writer's "echo" finished), without the newline.
inline bool has_line(const std::string& path, std::string& line) {
  std::string text = read_text(path);
  if (text.empty() || text.back() != '\n') return false;
  line = text.substr(0, text.size() - 1);
  return true;
}

} // namespace rlock::process::test
