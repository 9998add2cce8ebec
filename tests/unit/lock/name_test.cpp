// SPDX-License-Identifier: MIT
// Tests for lock name validation (lock/name).
#include "lock/name.hpp"

#include "util/error.hpp"

#include <doctest/doctest.h>
#include <string>

using namespace std::string_literals;
using rlock::lock::k_max_name_length;
using rlock::lock::validate_name;

namespace {

std::string usage_error_of(std::string_view name) {
  try {
    validate_name(name);
    FAIL_CHECK("accepted a name of " << name.size() << " bytes");
  } catch (const rlock::UsageError& error) {
    CHECK(rlock::to_int(error.code()) == 64);
    return error.what();
  }
  return {};
}

} // namespace

TEST_CASE("validate_name accepts ordinary names") {
  for (const char* name : {"x", "nightly-backup", "backup job", "deploy:prod/eu-west-1", "a/b/c", "caf\xc3\xa9",
                           "\xe6\x97\xa5\xe6\x9c\xac", "\xf0\x9f\x94\x92", "[brackets]", "100%", "'quoted'", "*",
                           " leading and trailing "}) {
    CAPTURE(name);
    CHECK_NOTHROW(validate_name(name));
  }
}

TEST_CASE("validate_name accepts exactly 1024 bytes") {
  CHECK(k_max_name_length == 1024);
  CHECK_NOTHROW(validate_name(std::string(1024, 'n')));
  std::string message = usage_error_of(std::string(1025, 'n'));
  CHECK(message.find("1025") != std::string::npos);
  CHECK(message.find("1024") != std::string::npos);
  // Bytes, not characters: 342 three-byte characters are 1026 bytes.
  std::string wide;
  for (int i = 0; i < 342; ++i) wide += "\xe6\x97\xa5";
  usage_error_of(wide);
}

TEST_CASE("validate_name rejects empty names, braces and control characters") {
  CHECK(usage_error_of("").find("empty") != std::string::npos);
  for (std::string bad : {"{"s, "}"s, "a{b"s, "{tag}"s, "x}"s}) {
    CAPTURE(bad);
    CHECK(usage_error_of(bad).find("braces") != std::string::npos);
  }
  for (std::string bad : {"a\nb"s, "\x1b[31mred"s, "del\x7f"s, "tab\there"s, "\r"s, "nul\0x"s, "\x01"s, "\x1f"s}) {
    CAPTURE(bad);
    std::string message = usage_error_of(bad);
    CHECK(message.find("control") != std::string::npos);
    // The message shows the name, but defused.
    for (char c : message) CHECK_FALSE((static_cast<unsigned char>(c) < 0x20 || c == '\x7f'));
  }
}
