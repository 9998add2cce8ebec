// SPDX-License-Identifier: MIT
// Random tokens from the kernel.
#pragma once

#include <string>
#include <string_view>

namespace rlock {

// 128 random bits from getrandom(2), as 32 lowercase hex characters.
std::string random_token();

// Whether `text` has the form random_token() gives. Anything else can hold no rlock lock.
bool is_token_form(std::string_view text) noexcept;

} // namespace rlock
