// SPDX-License-Identifier: MIT
// Black-box tests of transient Redis errors: a server that refuses clients for a moment, drops
// every connection, runs a busy script or stalls is ridden out (while held, until the safety
// deadline; while waiting, within the wait); a refused connection is 69, never 70.
#include "helpers.hpp"
#include "redis_server.hpp"
#include "run.hpp"

#include <doctest/doctest.h>

namespace rlock::test {

namespace {

// A Python program that, on one connection of its own, makes the server refuse every other
// client for SECONDS: maxclients 1 (itself), every other connection killed; then lets them in
// again and writes DONE. argv: PORT SECONDS DONE.
const char* const k_refuse_clients = R"py(import redis, sys, time
r = redis.Redis(port=int(sys.argv[1]))
old = r.config_get('maxclients')['maxclients']
r.config_set('maxclients', 1)
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    r.execute_command('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes')
    time.sleep(0.05)
r.config_set('maxclients', old)
open(sys.argv[3], 'w').close()
)py";

// A Python program that keeps the server busy in a script for SECONDS (other clients get
// BUSY once busy-reply-threshold has passed), then writes DONE. argv: PORT SECONDS DONE.
const char* const k_busy_script = R"py(import redis, sys
r = redis.Redis(port=int(sys.argv[1]), socket_timeout=60)
r.eval("local t = redis.call('TIME') repeat local n = redis.call('TIME') "
       "until (n[1] - t[1]) * 1000000 + (n[2] - t[2]) > tonumber(ARGV[1])", 0, int(float(sys.argv[2]) * 1e6))
open(sys.argv[3], 'w').close()
)py";

// A job that runs until FILE exists, then exits 0; killed or stopped by rlock it shows.
std::vector<std::string> job_until(const std::string& file) {
  return {"sh", "-c", "while [ ! -e \"$1\" ]; do sleep 0.02; done", "job", file};
}

} // namespace

TEST_CASE("a server that refuses clients and drops every connection for a moment: the job runs on") {
  RedisServer redis;
  TempDir dir;
  const std::string go = dir.file("go");
  const std::string done = dir.file("blip-done");
  // A short lease: the blip outlasts a renewal interval, not the safety deadline.
  BackgroundProcess holder(exec_argv(redis, "job", {"--ttl", "3s"}, job_until(go)));
  REQUIRE(wait_until([&] { return key_exists(redis, lock_key("job")); }, 10s));
  BackgroundProcess waiter(exec_argv(redis, "job", {"--wait", "60s"}, {"true"}));
  REQUIRE(wait_until([&] { return redis.command({"ZCARD", "rlock:{job}:line"}) == "1"; }, 10s));

  const RunResult blip = run_program({k_python, "-c", k_refuse_clients, std::to_string(redis.port()), "1.5", done});
  INFO(blip.describe());
  REQUIRE(blip.exit_code == 0);
  // Refused meanwhile, and 69 (not 70) once its connect timeout has passed:
  // checked after the blip so that the blip's own connection was the only one.
  CHECK(holder.running());
  write_file(go, "");
  CHECK(holder.wait(30s) == 0);
  CHECK(waiter.wait(30s) == 0);
  INFO("holder: ", holder.err());
  INFO("waiter: ", waiter.err());
  CHECK_FALSE(contains(holder.err(), "internal error"));
  CHECK_FALSE(contains(waiter.err(), "internal error"));
  CHECK_FALSE(key_exists(redis, lock_key("job")));
}

TEST_CASE("a command that meets a refusing server retries within --connect-timeout, then exits 69") {
  RedisServer redis;
  TempDir dir;
  const std::string done = dir.file("blip-done");
  BackgroundProcess blip({k_python, "-c", k_refuse_clients, std::to_string(redis.port()), "3", done});
  // The blip holds the only client slot once CONFIG SET went through.
  REQUIRE(wait_until([&] { return redis.command({"CONFIG", "GET", "maxclients"}) != "maxclients\n10000"; }, 10s));
  const RunResult refused = run_rlock(at(redis, {"--connect-timeout", "300ms", "acquire", "job", "--lease", "-n"}));
  INFO(refused.describe());
  if (!file_exists(done)) {
    // The refusal comes as an error reply, or as a reset when the server closed first.
    CHECK(refused.exit_code == 69);
    check_error_line(refused);
  }
  CHECK(blip.wait(30s) == 0);
  CHECK_FALSE(key_exists(redis, lock_key("job")));
  // Once the server lets clients in again, a retry within the budget gets through.
  const RunResult after = run_rlock(at(redis, {"acquire", "job", "--lease", "-n"}));
  INFO(after.describe());
  CHECK(after.exit_code == 0);
}

TEST_CASE("a busy script on the server: held leases ride it out, new commands retry, nothing is 70") {
  RedisServerOptions options;
  options.extra_config = {"busy-reply-threshold 100"};
  RedisServer redis(options);
  TempDir dir;
  const std::string go = dir.file("go");
  const std::string done = dir.file("busy-done");
  BackgroundProcess holder(exec_argv(redis, "job", {"--ttl", "3s"}, job_until(go)));
  REQUIRE(wait_until([&] { return key_exists(redis, lock_key("job")); }, 10s));
  BackgroundProcess busy({k_python, "-c", k_busy_script, std::to_string(redis.port()), "1.5", done});
  REQUIRE(wait_until([&] { return redis.command({"PING"}).starts_with("BUSY"); }, 10s));
  // The server answers BUSY while the script runs; a command with a budget that outlasts it
  // gets through afterwards.
  const RunResult status = run_rlock(at(redis, {"--connect-timeout", "10s", "status", "job"}));
  INFO(status.describe());
  CHECK(status.exit_code == 0);
  CHECK(busy.wait(30s) == 0);
  CHECK(holder.running());
  write_file(go, "");
  CHECK(holder.wait(30s) == 0);
  INFO("holder: ", holder.err());
  CHECK_FALSE(contains(holder.err(), "internal error"));
}

TEST_CASE("a stalled server (DEBUG SLEEP) shorter than the lease: the job runs on") {
  RedisServerOptions options;
  options.extra_config = {"enable-debug-command yes"};
  RedisServer redis(options);
  TempDir dir;
  const std::string go = dir.file("go");
  BackgroundProcess holder(exec_argv(redis, "job", {"--ttl", "3s"}, job_until(go)));
  REQUIRE(wait_until([&] { return key_exists(redis, lock_key("job")); }, 10s));
  REQUIRE(redis.command({"DEBUG", "SLEEP", "1.5"}) == "OK");
  CHECK(holder.running());
  write_file(go, "");
  CHECK(holder.wait(30s) == 0);
}

TEST_CASE("a refused TCP connection exits 69, whatever the command") {
  const std::string url = "redis://127.0.0.1:" + std::to_string(free_port());
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"--url", url, "exec", "job", "-n", "--", "true"},
           {"--url", url, "exec", "job", "--wait", "300ms", "--", "true"},
           {"--url", url, "acquire", "job", "--lease"},
           {"--url", url, "status"},
           {"--url", url, "status", "job", "--json"},
           {"--url", url, "release", "job", "--force"},
           {"--url", url, "renew", "job", "--token", "0123456789abcdef0123456789abcdef"},
       }) {
    const RunResult result = run_rlock(args);
    INFO(result.describe());
    CHECK(result.exit_code == 69);
    check_error_line(result);
  }
}

} // namespace rlock::test
