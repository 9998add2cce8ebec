// SPDX-License-Identifier: MIT
// Random tokens from getrandom(2).
#include "util/random.hpp"

#include "util/error.hpp"
#include "util/strings.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <sys/random.h>

namespace rlock {

std::string random_token() {
  std::array<unsigned char, 16> bytes{};
  std::size_t filled = 0;
  while (filled < bytes.size()) {
    ssize_t n = ::getrandom(bytes.data() + filled, bytes.size() - filled, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw SystemError("getrandom", errno);
    }
    filled += static_cast<std::size_t>(n);
  }
  return to_hex(bytes.data(), bytes.size());
}

bool is_token_form(std::string_view text) noexcept {
  return text.size() == 32 &&
         std::all_of(text.begin(), text.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

} // namespace rlock
