// SPDX-License-Identifier: MIT
// Tests for values parsed at the command-line border (cli/options): durations with a lower
// bound, the shortest TTL, empty values and token checks.
#include "cli/options.hpp"

#include "util/error.hpp"

#include <doctest/doctest.h>
#include <initializer_list>
#include <string>

using namespace std::chrono_literals;
using rlock::cli::checked_token;
using rlock::cli::parse_duration_at_least;
using rlock::cli::parse_ttl;
using rlock::cli::require_value;

TEST_CASE("parse_duration_at_least and parse_ttl: one lower bound, named in the message") {
  CHECK(parse_duration_at_least("2m", "--grace", 0ms) == 2min);
  CHECK(parse_duration_at_least("0", "--grace", 0ms) == 0ms);
  CHECK_THROWS_WITH_AS(parse_duration_at_least("0", "--max-hold", 1ms), "--max-hold must be at least 1ms",
                       rlock::UsageError);
  CHECK(parse_ttl("10ms", "--ttl") == rlock::cli::k_min_ttl);
  CHECK_THROWS_WITH_AS(parse_ttl("9ms", "--ttl"), "--ttl must be at least 10ms", rlock::UsageError);
  CHECK_THROWS_WITH_AS(parse_ttl("soon", "--ttl"), doctest::Contains("--ttl"), rlock::UsageError);
}

TEST_CASE("require_value: an empty value is an error, never the default") {
  CHECK(require_value("5s", "--wait") == "5s");
  CHECK_THROWS_WITH_AS(require_value("", "--wait"), doctest::Contains("--wait is empty"), rlock::UsageError);
}

TEST_CASE("checked_token: rlock's form passes, anything else is a usage error that does not echo it") {
  const std::string token = "0123456789abcdef0123456789abcdef";
  CHECK(checked_token(token, "--token") == token);
  for (const std::string& bad :
       std::initializer_list<std::string>{"", "hunter2", "0123456789ABCDEF0123456789ABCDEF", token.substr(0, 31)}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(checked_token(bad, "--token"), rlock::UsageError);
  }
  try {
    (void)checked_token("hunter2-a-password", "--token");
    FAIL("no error");
  } catch (const rlock::UsageError& error) {
    const std::string message = error.what();
    CHECK(message.find("not an rlock token") != std::string::npos);
    CHECK(message.find("--token") != std::string::npos);
    CHECK(message.find("hunter2") == std::string::npos); // perhaps a secret pasted by mistake
  }
}
