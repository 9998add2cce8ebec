// SPDX-License-Identifier: MIT
// libFuzzer target: lock names are accepted only when they cannot break the hash tag or the
// terminal, and the key schema maps an accepted name back to itself.
#include "lock/name.hpp"
#include "redis/redis_lock_store.hpp"
#include "util/error.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string name(reinterpret_cast<const char*>(data), size);
  try {
    rlock::lock::validate_name(name);
  } catch (const rlock::UsageError&) {
    return 0;
  }
  if (name.find_first_of("{}") != std::string::npos) __builtin_trap();
  for (char c : name) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) __builtin_trap();
  }
  rlock::redis::KeySchema keys("rlock:");
  if (keys.name_of(keys.lock(name)) != name) __builtin_trap();
  if (!keys.name_of(keys.meta(name)).empty()) __builtin_trap();
  return 0;
}
