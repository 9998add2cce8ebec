// SPDX-License-Identifier: MIT
// Black-box tests of the operators' commands (rlock(1): wait, release --force --expect-token /
// --expect-holder, status --match/--host/--older-than/--format) against a real redis-server.
#include "helpers.hpp"
#include "redis_server.hpp"
#include "run.hpp"

#include <doctest/doctest.h>

#include <csignal>
#include <unistd.h>

namespace rlock::test {

namespace {

const std::string k_other_token = "0123456789abcdef0123456789abcdef";

} // namespace

TEST_CASE("release --force --expect-token breaks the lock only while that token holds it") {
  RedisServer redis;
  const std::string token = acquire_lease(redis, "job");

  SUBCASE("a mismatch is 76 and leaves the lock, its metadata and its TTL untouched") {
    const std::string meta_before = redis.command({"HGETALL", meta_key("job")});
    const RunResult result = run_rlock(at(redis, {"release", "job", "--force", "--expect-token", k_other_token}));
    INFO(result.describe());
    CHECK(result.exit_code == 76);
    check_error_line(result);
    CHECK(contains(result.err, host_name())); // who holds it now
    CHECK(redis.command({"GET", lock_key("job")}) == token);
    CHECK(redis.command({"HGETALL", meta_key("job")}) == meta_before);
    CHECK(pttl(redis, lock_key("job")) > 0);
  }
  SUBCASE("the holder's token breaks it and names the evicted holder") {
    const RunResult result = run_rlock(at(redis, {"release", "job", "--force", "--expect-token", token}));
    INFO(result.describe());
    CHECK(result.exit_code == 0);
    CHECK(contains(result.out + result.err, host_name()));
    CHECK_FALSE(key_exists(redis, lock_key("job")));
    CHECK_FALSE(key_exists(redis, meta_key("job")));
  }
  SUBCASE("a lock that changed hands since is not broken") {
    // The race the option exists for: the operator saw `token`; it was released and taken again.
    REQUIRE(run_rlock(at(redis, {"release", "job", "--token", token})).exit_code == 0);
    const std::string next = acquire_lease(redis, "job");
    const RunResult result = run_rlock(at(redis, {"release", "job", "--force", "--expect-token", token}));
    INFO(result.describe());
    CHECK(result.exit_code == 76);
    check_error_line(result);
    CHECK(redis.command({"GET", lock_key("job")}) == next);
  }
  SUBCASE("a free lock is 76: the expected holder is gone") {
    REQUIRE(run_rlock(at(redis, {"release", "job", "--token", token})).exit_code == 0);
    const RunResult result = run_rlock(at(redis, {"release", "job", "--force", "--expect-token", token}));
    INFO(result.describe());
    CHECK(result.exit_code == 76);
    check_error_line(result);
    CHECK_FALSE(key_exists(redis, lock_key("job")));
  }
}

TEST_CASE("release --force --expect-holder HOST:PID breaks only that holder") {
  RedisServer redis;
  const std::string token = acquire_lease(redis, "job");
  const std::string pid = redis.command({"HGET", meta_key("job"), meta_field("pid")});
  REQUIRE_FALSE(pid.empty());

  SUBCASE("another pid is 76 and nothing changes") {
    const RunResult result =
        run_rlock(at(redis, {"release", "job", "--force", "--expect-holder", host_name() + ":999999"}));
    INFO(result.describe());
    CHECK(result.exit_code == 76);
    check_error_line(result);
    CHECK(redis.command({"GET", lock_key("job")}) == token);
    CHECK(key_exists(redis, meta_key("job")));
  }
  SUBCASE("another host is 76") {
    const RunResult result =
        run_rlock(at(redis, {"release", "job", "--force", "--expect-holder", "not-" + host_name() + ":" + pid}));
    INFO(result.describe());
    CHECK(result.exit_code == 76);
    CHECK(redis.command({"GET", lock_key("job")}) == token);
  }
  SUBCASE("the holder's host and pid break it") {
    const RunResult result =
        run_rlock(at(redis, {"release", "job", "--force", "--expect-holder", host_name() + ":" + pid}));
    INFO(result.describe());
    CHECK(result.exit_code == 0);
    CHECK(contains(result.out + result.err, host_name()));
    CHECK_FALSE(key_exists(redis, lock_key("job")));
  }
}

TEST_CASE("--expect-holder never matches a holder without rlock metadata") {
  RedisServer redis;
  REQUIRE(redis.command({"SET", lock_key("job"), k_other_token, "PX", "60000"}) == "OK");
  const RunResult result = run_rlock(at(redis, {"release", "job", "--force", "--expect-holder", "h:1"}));
  INFO(result.describe());
  CHECK(result.exit_code == 76);
  CHECK(redis.command({"GET", lock_key("job")}) == k_other_token);
  // --expect-token compares the lock key's value: a foreign client's token of rlock's form matches.
  const RunResult foreign = run_rlock(at(redis, {"release", "job", "--force", "--expect-token", k_other_token}));
  INFO(foreign.describe());
  CHECK(foreign.exit_code == 0);
  CHECK_FALSE(key_exists(redis, lock_key("job")));
}

TEST_CASE("--expect-token and --expect-holder: bad use is a usage error that changes nothing") {
  RedisServer redis;
  const std::string token = acquire_lease(redis, "job");
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"release", "job", "--expect-token", token},                                      // without --force
           {"release", "job", "--force", "--expect-token", "not-a-token"},                   // malformed
           {"release", "job", "--force", "--expect-token", ""},                              // empty
           {"release", "job", "--force", "--expect-holder", "web1"},                         // no pid
           {"release", "job", "--force", "--expect-holder", "web1:x"},                       // bad pid
           {"release", "job", "--force", "--expect-token", token, "--expect-holder", "h:1"}, // both
       }) {
    const RunResult result = run_rlock(at(redis, args));
    INFO(result.describe());
    CHECK(result.exit_code == 64);
    check_error_line(result);
    CHECK(redis.command({"GET", lock_key("job")}) == token);
  }
}

TEST_CASE("wait on a free lock exits 0 at once and writes nothing") {
  RedisServer redis;
  const RunResult result = run_rlock(at(redis, {"wait", "job"}));
  INFO(result.describe());
  CHECK(result.exit_code == 0);
  CHECK(result.out.empty());
  CHECK(redis.command({"DBSIZE"}) == "0");
}

TEST_CASE("wait on a held lock: 75 when --wait runs out, -E changes it, the lock and its line untouched") {
  RedisServer redis;
  const std::string token = acquire_lease(redis, "job", "60s");
  for (const auto& [options, code] : std::vector<std::pair<std::vector<std::string>, int>>{
           {{"-w", "0"}, 75}, {{"-w", "200ms"}, 75}, {{"--wait", "200ms", "-E", "3"}, 3}}) {
    std::vector<std::string> args{"wait", "job"};
    args.insert(args.end(), options.begin(), options.end());
    const RunResult result = run_rlock(at(redis, args));
    INFO(result.describe());
    CHECK(result.exit_code == code);
    CHECK(contains(result.err, host_name())); // says who holds it
  }
  CHECK(redis.command({"GET", lock_key("job")}) == token);
  CHECK_FALSE(key_exists(redis, lock_key("job") + ":line"));
}

TEST_CASE("wait is woken by the release, never joins the line, and does not take the lock") {
  RedisServer redis;
  const std::string token = acquire_lease(redis, "job", "60s");
  BackgroundProcess watcher(with_rlock(at(redis, {"wait", "job", "-w", "30s"})));
  // Registered as a watcher (its own set), not as a waiter.
  REQUIRE(wait_until(
      [&] {
        return redis.command({"ZCARD", lock_key("job") + ":watchers"}) == "1" || !watcher.running();
      },
      10s));
  CHECK(watcher.running());
  CHECK(redis.command({"ZCARD", lock_key("job") + ":line"}) == "0");
  REQUIRE(run_rlock(at(redis, {"release", "job", "--token", token})).exit_code == 0);
  // The lease had 60 s left and the wait 30 s: only the release can have ended it.
  CHECK(watcher.wait(20s) == 0);
  CHECK_FALSE(key_exists(redis, lock_key("job")));
  CHECK(redis.command({"ZCARD", lock_key("job") + ":watchers"}) == "0");
}

TEST_CASE("wait beside a queued waiter: the waiter still gets the lock first") {
  RedisServer redis;
  TempDir dir;
  const std::string ran = dir.file("ran");
  const std::string token = acquire_lease(redis, "job", "60s");
  BackgroundOptions options;
  options.env = {"RAN=" + ran};
  // The waiter's job takes a moment, so that a wait that ended at the holder's release would
  // end before the job wrote its file.
  BackgroundProcess waiter(with_rlock(at(redis, {"exec", "job", "-w", "30s", "-c", "sleep 0.5; echo ran > \"$RAN\""})),
                           options);
  REQUIRE(wait_until(
      [&] {
        return redis.command({"ZCARD", lock_key("job") + ":line"}) == "1" || !waiter.running();
      },
      10s));
  BackgroundProcess watcher(with_rlock(at(redis, {"wait", "job", "-w", "30s"})));
  REQUIRE(wait_until(
      [&] {
        return redis.command({"ZCARD", lock_key("job") + ":watchers"}) == "1" || !watcher.running();
      },
      10s));
  CHECK(redis.command({"ZCARD", lock_key("job") + ":line"}) == "1"); // the watcher did not queue
  REQUIRE(run_rlock(at(redis, {"release", "job", "--token", token})).exit_code == 0);
  INFO("waiter: ", waiter.err(), "\nwatcher: ", watcher.err());
  CHECK(watcher.wait(30s) == 0);
  // Free only once the waiter had the lock, ran its job and released it.
  CHECK(file_exists(ran));
  CHECK(waiter.wait(10s) == 0);
  CHECK_FALSE(key_exists(redis, lock_key("job")));
}

TEST_CASE("wait: a lock that expires (its holder died) is free at its lease's end") {
  RedisServer redis;
  acquire_lease(redis, "job", "300ms");
  const RunResult result = run_rlock(at(redis, {"wait", "job", "-w", "20s"}));
  INFO(result.describe());
  CHECK(result.exit_code == 0);
  CHECK_FALSE(key_exists(redis, lock_key("job")));
}

TEST_CASE("wait: a signal ends it with 128+N; bad input is 64") {
  RedisServer redis;
  acquire_lease(redis, "job", "60s");
  BackgroundProcess watcher(with_rlock(at(redis, {"wait", "job"})));
  REQUIRE(wait_until(
      [&] {
        return redis.command({"ZCARD", lock_key("job") + ":watchers"}) == "1" || !watcher.running();
      },
      10s));
  watcher.signal(SIGTERM);
  CHECK(watcher.wait(10s) == 128 + SIGTERM);
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"wait"}, {"wait", "bad{name"}, {"wait", "job", "-w", "soon"}, {"wait", "job", "-E", "300"}}) {
    const RunResult result = run_rlock(at(redis, args));
    INFO(result.describe());
    CHECK(result.exit_code == 64);
    check_error_line(result);
  }
}

TEST_CASE("status --match lists only the names that match, with glob characters literal when escaped") {
  RedisServer redis;
  for (const char* name : {"deploy-web", "deploy-db", "backup", "a*b", "axb"}) acquire_lease(redis, name);

  const RunResult deploys = run_rlock(at(redis, {"status", "--match", "deploy-*", "--format", "{name}"}));
  INFO(deploys.describe());
  CHECK(deploys.exit_code == 0);
  CHECK(deploys.out == "deploy-db\ndeploy-web\n");

  // Unescaped, * matches any text; escaped, only the name with a star in it.
  const RunResult any = run_rlock(at(redis, {"status", "--match", "a*b", "--format", "{name}"}));
  CHECK(any.out == "a*b\naxb\n");
  const RunResult literal = run_rlock(at(redis, {"status", "--match", "a\\*b", "--format", "{name}"}));
  INFO(literal.describe());
  CHECK(literal.out == "a*b\n");

  const RunResult none = run_rlock(at(redis, {"status", "--match", "nothing-*"}));
  INFO(none.describe());
  CHECK(none.exit_code == 1);
  const RunResult none_json = run_rlock(at(redis, {"status", "--match", "nothing-*", "--json"}));
  CHECK(none_json.exit_code == 1);
  CHECK(none_json.out == "{\"version\":1,\"locks\":[]}\n");
}

TEST_CASE("status --host and --older-than keep only those holders; nothing left is exit 1") {
  RedisServer redis;
  acquire_lease(redis, "mine");
  acquire_lease(redis, "old");
  // Make `old` an hour old and held from elsewhere, as the meta hash would say.
  const std::string now_ms = redis.command({"EVAL", "local t = redis.call('TIME') return t[1] * 1000", "0"});
  REQUIRE(redis.command({"HSET", meta_key("old"), meta_field("acquired_ms"),
                         std::to_string(std::stoll(now_ms) - 3'600'000), meta_field("host"), "elsewhere"}) == "0");

  const RunResult here = run_rlock(at(redis, {"status", "--host", host_name(), "--format", "{name}"}));
  INFO(here.describe());
  CHECK(here.exit_code == 0);
  CHECK(here.out == "mine\n");

  const RunResult stale = run_rlock(at(redis, {"status", "--older-than", "30m", "--format", "{name} {host}"}));
  INFO(stale.describe());
  CHECK(stale.exit_code == 0);
  CHECK(stale.out == "old elsewhere\n");

  const RunResult both = run_rlock(at(redis, {"status", "--older-than", "30m", "--host", host_name()}));
  INFO(both.describe());
  CHECK(both.exit_code == 1);

  // With NAME, the filters decide the exit status too.
  CHECK(run_rlock(at(redis, {"status", "mine", "--older-than", "30m", "-q"})).exit_code == 1);
  CHECK(run_rlock(at(redis, {"status", "old", "--older-than", "30m", "-q"})).exit_code == 0);
  // JSON keeps its schema; filters only choose the locks.
  const RunResult json = run_rlock(at(redis, {"status", "--older-than", "30m", "--json"}));
  CHECK(json.exit_code == 0);
  CHECK(is_valid_json(json.out));
  CHECK(contains(json.out, "\"name\":\"old\""));
  CHECK_FALSE(contains(json.out, "\"name\":\"mine\""));
}

TEST_CASE("status --format prints one line per lock with the documented placeholders") {
  RedisServer redis;
  const std::string token = acquire_lease(redis, "job", "60s");
  const std::string fence = redis.command({"HGET", meta_key("job"), meta_field("fence")});
  const std::string pid = redis.command({"HGET", meta_key("job"), meta_field("pid")});
  const RunResult result =
      run_rlock(at(redis, {"status", "--format",
                           "{name}|{host}|{pid}|{user}|{since}|{held_ms}|{ttl_ms}|{fence}|{waiters}|{kind}|{{x}}"}));
  INFO(result.describe());
  REQUIRE(result.exit_code == 0);
  const auto lines = split_lines(result.out);
  REQUIRE(lines.size() == 1);
  const std::string& line = lines[0];
  CHECK(line.starts_with("job|" + host_name() + "|" + pid + "|"));
  CHECK(contains(line, "|60000|" + fence + "|0|rlock|{x}"));
  CHECK(contains(line, "Z|")); // {since}: RFC 3339 UTC
  // The single-lock form, and --expect-holder fed from {host}:{pid}.
  const RunResult holder = run_rlock(at(redis, {"status", "job", "--format", "{host}:{pid}"}));
  REQUIRE(holder.exit_code == 0);
  const RunResult broken = run_rlock(at(redis, {"release", "job", "--force", "--expect-holder", trim(holder.out)}));
  INFO(broken.describe());
  CHECK(broken.exit_code == 0);
  // A free lock prints nothing and exits 1.
  const RunResult free = run_rlock(at(redis, {"status", "job", "--format", "{name}"}));
  CHECK(free.exit_code == 1);
  CHECK(free.out.empty());
}

TEST_CASE("status filters and --format: bad use is 64 with one error line") {
  RedisServer redis;
  acquire_lease(redis, "job");
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"status", "--format", "{nope}"},
           {"status", "--format", "{name"},
           {"status", "--format", "name}"},
           {"status", "--format", ""},
           {"status", "--format", "{name}", "--json"},
           {"status", "--match", "a{b}"},
           {"status", "--match", ""},
           {"status", "job", "--match", "j*"},
           {"status", "--older-than", "soon"},
           {"status", "--host", ""},
       }) {
    const RunResult result = run_rlock(at(redis, args));
    INFO(result.describe());
    CHECK(result.exit_code == 64);
    check_error_line(result);
  }
}

} // namespace rlock::test
