// SPDX-License-Identifier: MIT
// Tests for random tokens (util/random).
#include "util/random.hpp"

#include <array>
#include <doctest/doctest.h>
#include <string>
#include <unordered_set>

TEST_CASE("random_token is 32 lowercase hex characters") {
  for (int i = 0; i < 100; ++i) {
    std::string token = rlock::random_token();
    CAPTURE(token);
    REQUIRE(token.size() == 32);
    for (char c : token) CHECK(((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')));
  }
}

TEST_CASE("random_token does not repeat and uses every digit evenly") {
  constexpr int k_draws = 10'000;
  std::unordered_set<std::string> seen;
  std::array<int, 16> digit_counts{};
  for (int i = 0; i < k_draws; ++i) {
    std::string token = rlock::random_token();
    seen.insert(token);
    for (char c : token) {
      int digit = c <= '9' ? c - '0' : c - 'a' + 10;
      REQUIRE((digit >= 0 && digit < 16));
      ++digit_counts[static_cast<std::size_t>(digit)];
    }
  }
  CHECK(seen.size() == k_draws);
  // 320,000 digits: 20,000 of each expected, sigma ~137; 15,000..25,000 only fails if broken
  // (a constant nibble, only low bits, a stuck byte).
  for (std::size_t digit = 0; digit < digit_counts.size(); ++digit) {
    CAPTURE(digit);
    CHECK(digit_counts[digit] > 15'000);
    CHECK(digit_counts[digit] < 25'000);
  }
}

TEST_CASE("is_token_form: what random_token gives, and nothing else") {
  for (int i = 0; i < 100; ++i) CHECK(rlock::is_token_form(rlock::random_token()));
  const std::string token = "0123456789abcdef0123456789abcdef";
  CHECK(rlock::is_token_form(token));
  CHECK_FALSE(rlock::is_token_form(""));
  CHECK_FALSE(rlock::is_token_form(token.substr(1)));                    // cut short
  CHECK_FALSE(rlock::is_token_form(token + "0"));                        // one too many
  CHECK_FALSE(rlock::is_token_form("0123456789ABCDEF0123456789ABCDEF")); // never upper case
  CHECK_FALSE(rlock::is_token_form("0123456789abcdef0123456789abcdeg"));
  CHECK_FALSE(rlock::is_token_form(" 123456789abcdef0123456789abcdef"));
}
