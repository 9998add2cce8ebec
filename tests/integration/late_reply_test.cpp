// SPDX-License-Identifier: MIT
// Black-box tests of writes whose outcome rlock cannot know (issue 11 item 3): replies delayed
// past --io-timeout by a proxy, so that a command takes effect on the server while rlock gives
// up on its answer. No such write may leave a lock held by nobody: rlock follows it with a
// compare-and-delete on the same token, on a fresh connection, before it exits.
#include "fault_proxy.hpp"
#include "helpers.hpp"
#include "redis_server.hpp"
#include "run.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

namespace rlock::test {

namespace {

// Far past the --io-timeout the tests give rlock (300ms), and short of any TTL they use.
constexpr const char* k_late = "delay-replies 2000";

std::vector<std::string> via(const FaultProxy& proxy, const std::vector<std::string>& args) {
  std::vector<std::string> all{"--url", proxy.url(), "--io-timeout", "300ms"};
  all.insert(all.end(), args.begin(), args.end());
  return all;
}

// Loads rlock's scripts into the server's cache, as any earlier use of it would have: through
// a proxy that delays replies, rlock cannot fall back from EVALSHA to EVAL in time, so with a
// cold cache nothing would take effect and nothing would be tested.
void warm_scripts(const RedisServer& redis) {
  const std::string token = acquire_lease(redis, "warm-up", "60s");
  REQUIRE(run_rlock(at(redis, {"renew", "warm-up", "--token", token})).exit_code == 0);
  REQUIRE(run_rlock(at(redis, {"release", "warm-up", "--token", token})).exit_code == 0);
}

// The lock key is gone within a second of rlock's exit (the bound of issue 11: --io-timeout
// plus a second after the write, and rlock has already waited the I/O timeout). Its TTL is
// far longer, so only rlock's own clean-up can make this true.
void check_no_orphan(const RedisServer& redis, const std::string& name) {
  CHECK(wait_until([&] { return !key_exists(redis, lock_key(name)); }, 1s));
  CHECK(wait_until([&] { return !key_exists(redis, meta_key(name)); }, 1s));
}

} // namespace

TEST_CASE("exec -n whose acquire reply comes after --io-timeout exits 69 and leaves no lock") {
  RedisServer redis;
  warm_scripts(redis);
  FaultProxy proxy(redis.port());
  proxy.set(k_late);
  const RunResult result =
      run_rlock(via(proxy, {"exec", "late", "-n", "--ttl", "60s", "--", "/bin/sh", "-c", "exit 0"}));
  INFO(result.describe());
  CHECK(result.exit_code == 69);
  check_error_line(result);
  CHECK(contains(result.err, "timed out"));
  // The acquire did take effect on the server: it drew a fence.
  CHECK(key_exists(redis, fence_key("late")));
  check_no_orphan(redis, "late");
}

TEST_CASE("acquire --lease whose reply comes late exits 69 and leaves no lock") {
  RedisServer redis;
  warm_scripts(redis);
  FaultProxy proxy(redis.port());
  proxy.set(k_late);
  const RunResult result = run_rlock(via(proxy, {"acquire", "late", "--lease", "--ttl", "60s", "-n"}));
  INFO(result.describe());
  CHECK(result.exit_code == 69);
  check_error_line(result);
  CHECK(result.out.empty()); // no token handed out
  CHECK(key_exists(redis, fence_key("late")));
  check_no_orphan(redis, "late");
}

TEST_CASE("a waiter whose hand-off claim is answered too late gives up without keeping the lock") {
  RedisServer redis;
  warm_scripts(redis);
  FaultProxy proxy(redis.port());
  const std::string token = acquire_lease(redis, "handed", "60s");
  BackgroundProcess waiter(with_rlock(via(proxy, {"exec", "handed", "-w", "6s", "--ttl", "60s", "--", "true"})));
  // Queued: its ticket is in the waiting line.
  REQUIRE(wait_until([&] { return redis.command({"ZCARD", "rlock:{handed}:line"}) == "1"; }, 10s));
  proxy.set(k_late);
  // The release hands the lock to the waiter; its claim takes it, and every answer comes late.
  const RunResult released = run_rlock(at(redis, {"release", "handed", "--token", token}));
  REQUIRE(released.exit_code == 0);
  const int status = waiter.wait(20s);
  INFO("waiter: ", waiter.err());
  CHECK(status == 69);
  check_no_orphan(redis, "handed");
  CHECK(redis.command({"ZCARD", "rlock:{handed}:line"}) == "0");
}

TEST_CASE("a release whose reply comes late still releases, and says it could not confirm") {
  RedisServer redis;
  warm_scripts(redis);
  FaultProxy proxy(redis.port());
  const std::string token = acquire_lease(redis, "rel", "60s");
  proxy.set(k_late);
  const RunResult result = run_rlock(via(proxy, {"release", "rel", "--token", token}));
  INFO(result.describe());
  CHECK(result.exit_code == 69);
  check_error_line(result);
  check_no_orphan(redis, "rel");
}

TEST_CASE("exec whose renewals are answered too late stops the job and leaves no lock") {
  RedisServer redis;
  warm_scripts(redis);
  FaultProxy proxy(redis.port());
  TempDir dir;
  const std::string ready = dir.file("ready");
  BackgroundProcess rlock(with_rlock(via(proxy, {"exec", "renewed", "--ttl", "3s", "--grace", "1s", "--", "/bin/sh",
                                                 "-c", fmt::format("touch {}; exec sleep 60", ready)})));
  REQUIRE(wait_until([&] { return file_exists(ready); }, 10s));
  // Every renewal's PEXPIRE takes effect (the key lives 3s past the last one), but no answer
  // comes back before the safety deadline.
  proxy.set(k_late);
  const int status = rlock.wait(20s);
  INFO("rlock: ", rlock.err());
  CHECK(status == 76);
  check_no_orphan(redis, "renewed");
}

} // namespace rlock::test
