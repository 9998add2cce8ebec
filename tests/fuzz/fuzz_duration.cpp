// SPDX-License-Identifier: MIT
// libFuzzer target: durations parse to a non-negative value or a UsageError, never a crash.
#include "util/duration.hpp"
#include "util/error.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  try {
    auto value = rlock::parse_duration(text, "--ttl");
    if (value.count() < 0) __builtin_trap();
    (void)rlock::format_duration(value);
  } catch (const rlock::UsageError&) {
  }
  return 0;
}
