// SPDX-License-Identifier: MIT
// Tests for the pure parts shared by the commands: TTL and wait options, holder descriptions.
#include "cli/cli11.hpp"
#include "cli/commands.hpp"

#include "util/error.hpp"

#include <algorithm>
#include <doctest/doctest.h>

using namespace std::chrono_literals;
using rlock::cli::describe_holder;
using rlock::cli::TakeOptions;
using rlock::lock::HolderInfo;
using rlock::lock::LockInfo;

namespace {

// `options` after CLI11 has read `args` (in order) for a command that has them.
TakeOptions parsed(std::vector<std::string> args) {
  TakeOptions options;
  CLI::App command;
  options.add_to(command);
  std::reverse(args.begin(), args.end());
  command.parse(args);
  return options;
}

} // namespace

TEST_CASE("TakeOptions: --ttl parsed as CLI11 reads it, at least 10ms; the configured ttl unless given") {
  CHECK(parsed({}).ttl_ms(30s) == 30s);
  CHECK(parsed({}).ttl_ms(2min) == 2min);
  CHECK(parsed({"--ttl", "10ms"}).ttl_ms(30s) == 10ms);
  CHECK(parsed({"--ttl", "2m"}).ttl_ms(30s) == 2min);
  for (const char* bad : {"9ms", "0", "0.001", "abc", ""}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(parsed({"--ttl", bad}), rlock::UsageError);
  }
  CHECK_THROWS_WITH(parsed({"--ttl", "5ms"}), doctest::Contains("--ttl"));
}

TEST_CASE("TakeOptions::wait_policy: forever, -n, -w 0 and -w DURATION") {
  const TakeOptions forever = parsed({});
  CHECK_FALSE(forever.wait_policy().max_wait.has_value());
  CHECK(forever.wait_policy().max_sleep == rlock::lock::WaitPolicy{}.max_sleep);
  CHECK(parsed({"-n"}).wait_policy().max_wait == 0ms);
  CHECK(parsed({"-w", "0"}).wait_policy().max_wait == 0ms); // -w 0 equals -n
  CHECK(parsed({"--wait", "1m30s"}).wait_policy().max_wait == 90s);
  CHECK_THROWS_AS(parsed({"-n", "-w", "5s"}).wait_policy(), rlock::UsageError);
  CHECK_THROWS_WITH_AS(parsed({"--wait", "forever"}), doctest::Contains("--wait"), rlock::UsageError);
  CHECK(forever.conflict_exit_code == 75);
}

namespace {

LockInfo rlock_holder() {
  LockInfo lock;
  HolderInfo& holder = lock.holders.emplace_back();
  holder.has_metadata = true;
  holder.meta.user = "alice";
  holder.meta.host = "web1";
  holder.meta.pid = 4242;
  holder.meta.command = "backup.sh";
  holder.acquired_at_ms = 1'700'000'000'000;
  lock.server_now_ms = holder.acquired_at_ms + 185'000;
  holder.remaining_ms = 20'000;
  return lock;
}

} // namespace

TEST_CASE("describe_holder: free, handing off, foreign clients") {
  CHECK(describe_holder(LockInfo{}) == "free");

  LockInfo handoff = rlock_holder();
  handoff.handoff = true;
  CHECK(describe_holder(handoff) == "being handed to the next waiter");

  LockInfo foreign;
  foreign.holders.emplace_back().remaining_ms = -1;
  CHECK(describe_holder(foreign) == "held by another client (no rlock metadata, no expiry)");
  foreign.holders[0].remaining_ms = 2'000;
  CHECK(describe_holder(foreign) == "held by another client (no rlock metadata), expires in 2.0s");
}

TEST_CASE("describe_holder: who, what and for how long") {
  CHECK(describe_holder(rlock_holder()) == "held by alice@web1 pid 4242 (backup.sh) for 3m05s");

  LockInfo no_command = rlock_holder();
  no_command.holders[0].meta.command.clear();
  CHECK(describe_holder(no_command) == "held by alice@web1 pid 4242 for 3m05s");

  LockInfo clock_skew = rlock_holder(); // server clock reads before the acquisition
  clock_skew.server_now_ms = clock_skew.holders[0].acquired_at_ms - 1;
  CHECK(describe_holder(clock_skew) == "held by alice@web1 pid 4242 (backup.sh)");
}

TEST_CASE("describe_holder: a lock with several holders names each") {
  LockInfo shared = rlock_holder();
  shared.limit = 3;
  HolderInfo& second = shared.holders.emplace_back(shared.holders[0]);
  second.meta.user = "bob";
  second.meta.pid = 77;
  second.meta.command.clear();
  second.acquired_at_ms = shared.server_now_ms - 2'000;
  shared.holders.emplace_back().remaining_ms = 5'000;
  CHECK(describe_holder(shared) == "held by alice@web1 pid 4242 (backup.sh) for 3m05s; held by bob@web1 pid 77 for "
                                   "2.0s; held by another client (no rlock metadata), expires in 5.0s");
}

TEST_CASE("describe_holder: defuses control characters and shortens long commands") {
  LockInfo hostile = rlock_holder();
  hostile.holders[0].meta.user = "al\x1b[2Jice";
  hostile.holders[0].meta.host = "web\n1";
  hostile.holders[0].meta.command = "rm\r-rf";
  std::string text = describe_holder(hostile);
  CHECK(text == "held by al?[2Jice@web?1 pid 4242 (rm?-rf) for 3m05s");

  LockInfo verbose = rlock_holder();
  verbose.holders[0].meta.command = std::string(200, 'c');
  std::string shortened = describe_holder(verbose);
  CHECK(shortened.find("(" + std::string(57, 'c') + "...)") != std::string::npos);
  CHECK(shortened.find(std::string(58, 'c')) == std::string::npos);

  LockInfo exactly = rlock_holder();
  exactly.holders[0].meta.command = std::string(60, 'c');
  CHECK(describe_holder(exactly).find("(" + std::string(60, 'c') + ")") != std::string::npos);
}
