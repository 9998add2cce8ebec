// SPDX-License-Identifier: MIT
// Tests for parsing and formatting durations (util/duration).
#include "util/duration.hpp"

#include "util/error.hpp"

#include <doctest/doctest.h>
#include <string>

using namespace std::chrono_literals;
using rlock::format_duration;
using rlock::parse_duration;

namespace {

// Parses `text` expecting a UsageError (exit 64); returns its message.
std::string usage_error_of(std::string_view text, std::string_view what = "--wait") {
  try {
    auto parsed = parse_duration(text, what);
    FAIL_CHECK("'" << std::string(text) << "' parsed as " << parsed.count() << "ms");
  } catch (const rlock::UsageError& error) {
    CHECK(error.code() == rlock::ExitCode::usage);
    CHECK(rlock::to_int(error.code()) == 64);
    return error.what();
  }
  return {};
}

} // namespace

TEST_CASE("parse_duration accepts units, combinations and bare seconds") {
  CHECK(parse_duration("250ms") == 250ms);
  CHECK(parse_duration("30s") == 30s);
  CHECK(parse_duration("10m") == 10min);
  CHECK(parse_duration("1h") == 1h);
  CHECK(parse_duration("1h30m") == 90min);
  CHECK(parse_duration("1m30s250ms") == 90'250ms);
  CHECK(parse_duration("1d") == 24h);
  CHECK(parse_duration("1.5s") == 1500ms);
  CHECK(parse_duration("0.25h") == 15min);
  CHECK(parse_duration(".5s") == 500ms);
  CHECK(parse_duration("2.5") == 2500ms);
  CHECK(parse_duration("2") == 2s);
  CHECK(parse_duration("0") == 0ms);
  CHECK(parse_duration("0s") == 0ms);
  CHECK(parse_duration("0.001") == 1ms);
}

TEST_CASE("parse_duration accepts up to a century and no more") {
  CHECK(parse_duration("36500d") == std::chrono::milliseconds(36'500LL * 86'400'000LL));
  usage_error_of("36501d");
  usage_error_of("99999999999999999999h");
  usage_error_of(std::string(400, '9')); // strtod gives infinity
  usage_error_of(std::string(400, '9') + "ms");
}

TEST_CASE("parse_duration rejects malformed text with a UsageError") {
  for (const char* bad : {"",  "abc", "-1", "-1s", "+1s",  "1x",    "1S",  "1sec", "1h30", "30 s",   " 1s", "1s ",
                          "s", "ms",  ".",  ".s",  "1..2", "1.2.3", "1e3", "1s.",  "0x10", "1h-30m", "inf", "nan"}) {
    CAPTURE(bad);
    usage_error_of(bad);
  }
}

TEST_CASE("parse_duration's error names the option and the text") {
  std::string message = usage_error_of("ten", "--ttl");
  CHECK(message.find("--ttl") != std::string::npos);
  CHECK(message.find("'ten'") != std::string::npos);
  CHECK(usage_error_of("5x", "--max-hold").find("--max-hold") != std::string::npos);
}

TEST_CASE("parse_duration's error does not echo control characters to the terminal") {
  // Every other message that quotes user text passes it through printable(); an escape
  // sequence in a bad duration must not reach the terminal either.
  std::string message = usage_error_of("1\x1b[2J", "--wait");
  CHECK(message.find('\x1b') == std::string::npos);
  CHECK(usage_error_of("1s\n2s", "--wait").find('\n') == std::string::npos);
}

TEST_CASE("format_duration renders compactly") {
  CHECK(format_duration(0ms) == "0ms");
  CHECK(format_duration(250ms) == "250ms");
  CHECK(format_duration(999ms) == "999ms");
  CHECK(format_duration(1000ms) == "1.0s");
  CHECK(format_duration(12'345ms) == "12.3s");
  CHECK(format_duration(60s) == "1m00s");
  CHECK(format_duration(4min + 5s) == "4m05s");
  CHECK(format_duration(59min + 59s + 999ms) == "59m59s");
  CHECK(format_duration(2h + 1min) == "2h01m");
  CHECK(format_duration(24h + 1h) == "1d01h");
  CHECK(format_duration(-1500ms) == "-1.5s");
}

TEST_CASE("format_duration's whole-unit forms parse back to the same value") {
  for (auto value : {0ms, 250ms, std::chrono::milliseconds(1000), std::chrono::milliseconds(4min + 5s),
                     std::chrono::milliseconds(2h + 1min), std::chrono::milliseconds(26h)}) {
    CAPTURE(value.count());
    CHECK(parse_duration(format_duration(value)) == value);
  }
}
