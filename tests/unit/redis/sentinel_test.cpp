// SPDX-License-Identifier: MIT
// Tests for choosing the master the sentinels agree on (redis/sentinel).
#include "redis/sentinel.hpp"

#include <doctest/doctest.h>

using rlock::redis::majority_address;
using rlock::redis::SentinelAnswer;

namespace {

SentinelAnswer names(const char* host, int port) {
  SentinelAnswer answer;
  answer.kind = SentinelAnswer::Kind::address;
  answer.address = {host, port};
  return answer;
}

SentinelAnswer says(SentinelAnswer::Kind kind) {
  SentinelAnswer answer;
  answer.kind = kind;
  return answer;
}

} // namespace

TEST_CASE("majority_address: the address most sentinels name wins, not the first one") {
  auto chosen = majority_address({names("10.0.0.1", 6379), names("10.0.0.2", 6379), names("10.0.0.2", 6379)});
  REQUIRE(chosen);
  CHECK(chosen->host == "10.0.0.2");
  // Same host, another port: another server.
  chosen = majority_address({names("h", 1), names("h", 2), names("h", 2)});
  REQUIRE(chosen);
  CHECK(chosen->port == 2);
}

TEST_CASE("majority_address: only sentinels that named an address vote") {
  auto chosen = majority_address(
      {says(SentinelAnswer::Kind::unreachable), names("h", 7), says(SentinelAnswer::Kind::unknown_master)});
  REQUIRE(chosen);
  CHECK(chosen->port == 7);
  CHECK_FALSE(majority_address({says(SentinelAnswer::Kind::unreachable), says(SentinelAnswer::Kind::auth_refused)}));
  CHECK_FALSE(majority_address({}));
  // A tie goes to the first named; ROLE then decides whether it is the master.
  chosen = majority_address({names("a", 1), names("b", 1)});
  REQUIRE(chosen);
  CHECK(chosen->host == "a");
}
