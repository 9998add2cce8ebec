// SPDX-License-Identifier: MIT
// Random tokens from the kernel.
#pragma once

#include <string>
#include <string_view>

namespace rlock {

// 128 random bits from getrandom(2), as 32 lowercase hex characters.
std::string random_token();

// True when `text` has the shape random_token() mints (32 hex digits, either case): anything
// else cannot be an rlock token, and is refused before Redis is asked.
bool is_token_shaped(std::string_view text) noexcept;

} // namespace rlock
