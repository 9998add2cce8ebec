// SPDX-License-Identifier: MIT
// Tests for classifying Redis error replies (redis/reply_class) and the exits they end with.
#include "redis/reply_class.hpp"

#include "util/error.hpp"

#include <doctest/doctest.h>
#include <string>
#include <vector>

using rlock::ExitCode;
using rlock::redis::classify_error;
using rlock::redis::ReplyClass;

namespace {

struct Example {
  std::string text;
  ReplyClass kind;
};

// Error texts as Redis 6 and 7 send them (the leading '-' stripped, as hiredis does).
const std::vector<Example> k_examples{
    {"MOVED 3999 127.0.0.1:6381", ReplyClass::redirect},
    {"ASK 3999 127.0.0.1:6381", ReplyClass::redirect},
    {"LOADING Redis is loading the dataset in memory", ReplyClass::retry_later},
    {"BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.", ReplyClass::retry_later},
    {"TRYAGAIN Multiple keys request during rehashing of slot", ReplyClass::retry_later},
    {"CLUSTERDOWN The cluster is down", ReplyClass::retry_later},
    {"MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.", ReplyClass::retry_later},
    {"UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)",
     ReplyClass::retry_later},
    {"NOREPLICAS Not enough good replicas to write.", ReplyClass::retry_later},
    {"MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk.",
     ReplyClass::retry_later},
    {"ERR max number of clients reached", ReplyClass::retry_later},
    {"READONLY You can't write against a read only replica.", ReplyClass::read_only},
    {"READONLY You can't write against a read only replica. script: 64a1c9, on @user_script:61.",
     ReplyClass::read_only},
    {"NOAUTH Authentication required.", ReplyClass::auth},
    {"WRONGPASS invalid username-password pair or user is disabled.", ReplyClass::auth},
    {"NOPERM this user has no permissions to run the 'pexpire' command", ReplyClass::auth},
    {"NOPERM this user may not run PEXPIRE on rlock:{job}:meta, which rlock needs; see MINIMAL ACL in rlock(1)",
     ReplyClass::auth},
    {"ERR The user executing the script can't run this command or subcommand script: 01fa37, on @user_script:1.",
     ReplyClass::auth},
    {"ERR The user executing the script can't access at least one of the keys mentioned in the command "
     "arguments script: 02f99f, on @user_script:1.",
     ReplyClass::auth},
    {"ERR Protocol error: unauthenticated multibulk length", ReplyClass::auth},
    {"NOSCRIPT No matching script. Please use EVAL.", ReplyClass::script_missing},
    {"WRONGTYPE Operation against a key holding the wrong kind of value", ReplyClass::wrong_type},
    {"ERR value is not an integer or out of range", ReplyClass::wrong_type},
    {"ERR hash value is not an integer", ReplyClass::wrong_type},
    {"ERR increment or decrement would overflow", ReplyClass::wrong_type},
    {"ERR Error running script (call to f_64a1c9): @user_script:61: -WRONGTYPE Operation against a key",
     ReplyClass::wrong_type},
    {"ERR Error running script (call to f_64a1c9): @user_script:7: @user_script: 7: -NOPERM this user has no "
     "permissions",
     ReplyClass::auth},
    {"OOM command not allowed when used memory > 'maxmemory'.", ReplyClass::out_of_memory},
    {"ERR unknown command 'EVALSHA', with args beginning with:", ReplyClass::other},
    {"BUSYKEY Target key name already exists.", ReplyClass::other},
    {"ERR", ReplyClass::other},
    {"", ReplyClass::other},
};

} // namespace

TEST_CASE("error replies are classified by their code, or their text when the code is ERR") {
  for (const auto& example : k_examples) {
    CAPTURE(example.text);
    CHECK(classify_error(example.text).kind == example.kind);
  }
}

TEST_CASE("a redirect says where to") {
  auto moved = classify_error("MOVED 3999 127.0.0.1:6381");
  CHECK_FALSE(moved.ask);
  CHECK(moved.slot == 3999);
  CHECK(moved.target == "127.0.0.1:6381");
  auto ask = classify_error("ASK 12 [::1]:7000");
  CHECK(ask.ask);
  CHECK(ask.slot == 12);
  CHECK(ask.target == "[::1]:7000");
  auto broken = classify_error("MOVED");
  CHECK(broken.kind == ReplyClass::redirect);
  CHECK(broken.slot == -1);
  CHECK(broken.target.empty());
}

TEST_CASE("no class of Redis state ends with 70; only an error rlock cannot explain does") {
  CHECK(rlock::redis::exit_code_of(ReplyClass::redirect) == ExitCode::unavailable);
  CHECK(rlock::redis::exit_code_of(ReplyClass::retry_later) == ExitCode::unavailable);
  CHECK(rlock::redis::exit_code_of(ReplyClass::read_only) == ExitCode::unavailable);
  CHECK(rlock::redis::exit_code_of(ReplyClass::out_of_memory) == ExitCode::unavailable);
  CHECK(rlock::redis::exit_code_of(ReplyClass::script_missing) == ExitCode::unavailable);
  CHECK(rlock::redis::exit_code_of(ReplyClass::auth) == ExitCode::auth);
  CHECK(rlock::redis::exit_code_of(ReplyClass::wrong_type) == ExitCode::config);
  CHECK(rlock::redis::exit_code_of(ReplyClass::other) == ExitCode::internal);
  for (const auto& example : k_examples) {
    CAPTURE(example.text);
    auto reply = classify_error(example.text);
    try {
      rlock::redis::throw_error_reply(reply, "testing");
    } catch (const rlock::Error& error) {
      CHECK(error.code() == rlock::redis::exit_code_of(reply.kind));
      CHECK(std::string(error.what()).starts_with("testing: "));
      // The transient ones are UnavailableErrors, which the retry loops ride out.
      bool unavailable = dynamic_cast<const rlock::UnavailableError*>(&error) != nullptr;
      CHECK(unavailable == (error.code() == ExitCode::unavailable));
    }
  }
}

TEST_CASE("classifying never throws and keeps the text printable and bounded") {
  std::string binary("LOADING \x00\x1b[31m\xff", 14);
  auto reply = classify_error(binary);
  CHECK(reply.kind == ReplyClass::retry_later);
  for (char c : reply.text) CHECK(static_cast<unsigned char>(c) >= 0x20);
  auto long_reply = classify_error("ERR " + std::string(100'000, 'x'));
  CHECK(long_reply.text.size() <= 400);
}
