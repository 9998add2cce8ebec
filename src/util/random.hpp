// SPDX-License-Identifier: MIT
// Random tokens from the kernel.
#pragma once

#include <string>

namespace rlock {

// 128 random bits from getrandom(2), as 32 lowercase hex characters.
std::string random_token();

} // namespace rlock
