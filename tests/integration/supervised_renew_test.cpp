// SPDX-License-Identifier: MIT
// Black-box tests of renewals of a supervised lease (issue 11 item 13): a job that renews its
// own lock with a short --ttl must not shorten the lease below what its supervisor (exec, or
// the keeper of acquire) counts on, or a second holder gets in while the job still runs.
#include "helpers.hpp"
#include "redis_server.hpp"
#include "run.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <unistd.h>

namespace rlock::test {

namespace {

// Returns once `ms` milliseconds have passed on the server's clock: a key set to expire then
// is gone (observable state instead of a sleep).
void let_pass_on_server(const RedisServer& redis, int ms) {
  REQUIRE(redis.command({"SET", "rlock-test-clock", "x", "PX", std::to_string(ms)}) == "OK");
  REQUIRE(wait_until([&] { return !key_exists(redis, "rlock-test-clock"); }, 10s));
}

} // namespace

TEST_CASE("inside exec --ttl 6s, renew --ttl 300ms keeps the lease: a second exec -n stays out") {
  RedisServer redis;
  TempDir dir;
  const std::string renewed = dir.file("renewed");
  const std::string go = dir.file("go");
  const std::string script = fmt::format("'{}' --url '{}' renew \"$RLOCK_NAME\" --ttl 300ms; echo $? > '{}'; "
                                         "while [ ! -e '{}' ]; do sleep 0.02; done",
                                         rlock_bin(), redis.url(), renewed, go);
  BackgroundProcess first(exec_argv(redis, "undercut", {"--ttl", "6s"}, {"/bin/sh", "-c", script}));
  REQUIRE(wait_until([&] { return trim(try_read_file(renewed).value_or("")).size() > 0; }, 10s));
  CHECK(trim(read_file(renewed)) == "0"); // the renewal itself succeeds
  // Not cut to 300ms: the supervisor's lease is still running.
  CHECK(pttl(redis, lock_key("undercut")) > 1000);
  let_pass_on_server(redis, 400);
  CHECK(key_exists(redis, lock_key("undercut")));
  const RunResult second = run_rlock(exec_args(redis, "undercut", {"-n"}, {"true"}));
  INFO(second.describe());
  CHECK(second.exit_code == 75);
  write_file(go, "");
  CHECK(first.wait(20s) == 0);
  INFO("first: ", first.err());
  CHECK_FALSE(key_exists(redis, lock_key("undercut")));
}

TEST_CASE("a renewal may lengthen a supervised lease") {
  RedisServer redis;
  TempDir dir;
  const std::string renewed = dir.file("renewed");
  const std::string go = dir.file("go");
  const std::string script = fmt::format("'{}' --url '{}' renew \"$RLOCK_NAME\" --ttl 60s; echo $? > '{}'; "
                                         "while [ ! -e '{}' ]; do sleep 0.02; done",
                                         rlock_bin(), redis.url(), renewed, go);
  BackgroundProcess first(exec_argv(redis, "longer", {"--ttl", "6s"}, {"/bin/sh", "-c", script}));
  REQUIRE(wait_until([&] { return trim(try_read_file(renewed).value_or("")).size() > 0; }, 10s));
  CHECK(trim(read_file(renewed)) == "0");
  CHECK(pttl(redis, lock_key("longer")) > 6000);
  write_file(go, "");
  CHECK(first.wait(20s) == 0);
}

TEST_CASE("the lease of a keeper is not shortened either") {
  RedisServer redis;
  // The keeper holds the lock while this test's process lives.
  const RunResult acquired =
      run_rlock(at(redis, {"acquire", "kept", "--ttl", "6s", "--owner-pid", std::to_string(::getpid())}));
  REQUIRE(acquired.exit_code == 0);
  const std::string token = trim(acquired.out);
  const RunResult renew = run_rlock(at(redis, {"renew", "kept", "--token", token, "--ttl", "300ms"}));
  INFO(renew.describe());
  CHECK(renew.exit_code == 0);
  CHECK(pttl(redis, lock_key("kept")) > 1000);
  let_pass_on_server(redis, 400);
  CHECK(redis.command({"GET", lock_key("kept")}) == token);
  CHECK(run_rlock(at(redis, {"release", "kept", "--token", token})).exit_code == 0);
}

TEST_CASE("a lease without a supervisor (acquire --lease) is the script's to shorten") {
  RedisServer redis;
  const std::string token = acquire_lease(redis, "bare", "60s");
  const RunResult renew = run_rlock(at(redis, {"renew", "bare", "--token", token, "--ttl", "300ms"}));
  INFO(renew.describe());
  CHECK(renew.exit_code == 0);
  const long long left = pttl(redis, lock_key("bare"));
  CHECK(left > 0);
  CHECK(left <= 300);
}

} // namespace rlock::test
