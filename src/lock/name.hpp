// SPDX-License-Identifier: MIT
// Lock names: what may stand between the braces of a hash tag and still be safe to print.
#pragma once

#include <string_view>

namespace rlock::lock {

constexpr std::size_t k_max_name_length = 1024;

// Throws UsageError when `name` is empty, longer than 1 KiB, or holds braces (they would
// break the {NAME} hash tag) or control characters (they would drive the terminal).
void validate_name(std::string_view name);

} // namespace rlock::lock
