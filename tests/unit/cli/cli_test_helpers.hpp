// SPDX-License-Identifier: MIT
// Helpers for the cli tests: an environment restored on scope exit (and the scratch directory).
#pragma once

#include "../temp_dir.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace rlock::cli::test {

using rlock::unit_test::TempDir;

// Saves the named variables, unsets them, and puts them back as they were on destruction.
class ScopedEnv {
 public:
  explicit ScopedEnv(std::vector<std::string> names) {
    for (auto& name : names) {
      const char* value = std::getenv(name.c_str());
      m_saved.emplace_back(name, value == nullptr ? std::nullopt : std::optional<std::string>(value));
      ::unsetenv(name.c_str());
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;
  ~ScopedEnv() {
    for (const auto& [name, value] : m_saved) {
      if (value) {
        ::setenv(name.c_str(), value->c_str(), 1);
      } else {
        ::unsetenv(name.c_str());
      }
    }
  }
  void set(const std::string& name, const std::string& value) { ::setenv(name.c_str(), value.c_str(), 1); }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> m_saved;
};

} // namespace rlock::cli::test
