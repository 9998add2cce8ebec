// SPDX-License-Identifier: MIT
// Lock name validation.
#include "lock/name.hpp"

#include "util/error.hpp"
#include "util/strings.hpp"

#include <fmt/format.h>

namespace rlock::lock {

void validate_name(std::string_view name) {
  if (name.empty()) throw UsageError("the lock name is empty");
  if (name.size() > k_max_name_length) {
    throw UsageError(fmt::format("the lock name is {} bytes long; the limit is {}", name.size(), k_max_name_length));
  }
  for (char c : name) {
    auto u = static_cast<unsigned char>(c);
    if (c == '{' || c == '}') {
      throw UsageError(fmt::format("invalid lock name '{}': braces are not allowed (they delimit the "
                                   "Redis hash tag)",
                                   printable(name)));
    }
    if (u < 0x20 || u == 0x7f) {
      throw UsageError(fmt::format("invalid lock name '{}': control characters are not allowed", printable(name)));
    }
  }
}

} // namespace rlock::lock
