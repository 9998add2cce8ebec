// SPDX-License-Identifier: MIT
// Black-box tests of the meta hash (docs/redis-keys.md): compact in Redis, complete in status.
#include "helpers.hpp"
#include "redis_server.hpp"
#include "run.hpp"

#include <doctest/doctest.h>

#include <string>

namespace rlock::test {

namespace {

constexpr std::string_view k_ellipsis = "\xe2\x80\xa6"; // U+2026, how a cut value ends

// Runs a Python check over `status --json`'s document on stdin; it exits non-zero on failure.
RunResult check_json(const std::string& document, const std::string& script, const std::vector<std::string>& args) {
  std::vector<std::string> argv{k_python, "-c", "import json, sys\nlock = json.load(sys.stdin)['lock']\n" + script};
  argv.insert(argv.end(), args.begin(), args.end());
  RunOptions options;
  options.stdin_data = document;
  return run_program(argv, options);
}

// The server's clock in Unix milliseconds.
long long server_ms(const RedisServer& redis) {
  const std::string time = redis.command({"TIME"});
  const std::size_t newline = time.find('\n');
  return std::stoll(time.substr(0, newline)) * 1000 + std::stoll(time.substr(newline + 1)) / 1000;
}

} // namespace

TEST_CASE("a long command keeps the meta hash a listpack; status shows every field, the command cut") {
  RedisServer redis;
  const std::string words(200, 'x');
  BackgroundProcess job(exec_argv(redis, "job", {"--ttl", "30s"}, {"sh", "-c", "echo " + words + "; sleep 30"}));
  REQUIRE(wait_until([&] { return key_exists(redis, lock_key("job")); }, 10s));

  // A value over hash-max-listpack-value (64 bytes by default) would make it a hashtable.
  REQUIRE(redis.command({"CONFIG", "GET", "hash-max-listpack-value"}) == "hash-max-listpack-value\n64");
  CHECK(redis.command({"OBJECT", "ENCODING", meta_key("job")}) == "listpack");
  const std::string stored = redis.command({"HGET", meta_key("job"), meta_field("command")});
  CHECK(stored.size() <= 64);
  CHECK(stored.starts_with("sh -c 'echo xxxx"));
  CHECK(stored.ends_with(k_ellipsis));

  const std::string fence = redis.command({"GET", fence_key("job")});
  const RunResult text = run_rlock(at(redis, {"status", "job"}));
  INFO(text.describe());
  CHECK(text.exit_code == 0);
  CHECK(contains(text.out, "job: held by "));
  CHECK(contains(text.out, "@" + host_name() + " pid " + std::to_string(job.pid()) + "\n"));
  CHECK(contains(text.out, "  command:  " + stored + "\n"));
  CHECK(contains(text.out, "  since:    20"));
  CHECK(contains(text.out, "  lease:    "));
  CHECK(contains(text.out, "30.0s"));
  CHECK(contains(text.out, ", renewed 0 times\n"));
  CHECK(contains(text.out, "  fence:    " + fence + "\n"));
  CHECK(contains(text.out, "  waiters:  0\n"));

  const RunResult json = run_rlock(at(redis, {"status", "job", "--json"}));
  INFO(json.describe());
  CHECK(json.exit_code == 0);
  const RunResult checked = check_json(json.out, R"(
expected = {'name', 'held', 'waiters', 'holder_kind', 'remaining_ms', 'host', 'pid', 'user', 'command',
            'acquired_at', 'acquired_at_ms', 'held_ms', 'ttl_ms', 'fence', 'renewals', 'mode', 'limit', 'holders'}
assert set(lock) == expected, sorted(set(lock) ^ expected)
assert all(value is not None for value in lock.values()), lock
assert lock['mode'] == 'mutex' and lock['limit'] == 1 and len(lock['holders']) == 1, lock
assert {k: v for k, v in lock.items() if k not in ('name', 'held', 'waiters', 'mode', 'limit', 'holders')} == \
    lock['holders'][0], lock
assert lock['holder_kind'] == 'rlock' and lock['pid'] == int(sys.argv[1]), lock
assert lock['command'] == sys.argv[2] and lock['command'].endswith('\u2026'), lock
assert lock['ttl_ms'] == 30000 and lock['renewals'] == 0 and lock['fence'] == int(sys.argv[3]), lock
)",
                                       {std::to_string(job.pid()), stored, fence});
  CHECK_MESSAGE(checked.exit_code == 0, checked.describe());
  job.kill();
}

TEST_CASE("a meta hash an older rlock wrote is shown, renewed in its own form and released") {
  RedisServer redis;
  const std::string token = "0123456789abcdef0123456789abcdef";
  const std::string acquired = std::to_string(server_ms(redis) - 5000);
  REQUIRE(redis.command({"SET", lock_key("old"), token, "PX", "30000"}) == "OK");
  REQUIRE(redis.command({"SET", fence_key("old"), "17"}) == "OK");
  // The long field names and the whole token, as rlock wrote them before the lean layout.
  REQUIRE(redis.command({"HSET",   meta_key("old"), "token",   token,     "host",           "oldhost",     "pid",
                         "4242",   "user",          "olduser", "command", "old-job --full", "acquired_ms", acquired,
                         "ttl_ms", "30000",         "fence",   "17",      "renewals",       "2",           "supervised",
                         "1",      "keeper_pid",    "4243"}) == "11");
  REQUIRE(redis.command({"PEXPIRE", meta_key("old"), "30000"}) == "1");

  const RunResult text = run_rlock(at(redis, {"status", "old"}));
  INFO(text.describe());
  CHECK(text.exit_code == 0);
  CHECK(contains(text.out, "old: held by olduser@oldhost pid 4242 (keeper pid 4243)\n"));
  CHECK(contains(text.out, "  command:  old-job --full\n"));
  CHECK(contains(text.out, "  lease:    "));
  CHECK(contains(text.out, "30.0s"));
  CHECK(contains(text.out, ", renewed 2 times\n"));
  CHECK(contains(text.out, "  fence:    17\n"));

  // A renewal by the token: counted in the long form; the lease, supervised, is not shortened.
  const RunResult renewed = run_rlock(at(redis, {"renew", "old", "--token", token, "--ttl", "10s"}));
  INFO(renewed.describe());
  CHECK(renewed.exit_code == 0);
  CHECK(redis.command({"HGET", meta_key("old"), "renewals"}) == "3");
  CHECK(redis.command({"HEXISTS", meta_key("old"), meta_field("renewals")}) == "0");
  CHECK(pttl(redis, lock_key("old")) > 10000);

  const RunResult json = run_rlock(at(redis, {"status", "old", "--json"}));
  INFO(json.describe());
  const RunResult checked = check_json(json.out, R"(
assert lock['holder_kind'] == 'rlock' and lock['host'] == 'oldhost' and lock['user'] == 'olduser', lock
assert lock['pid'] == 4242 and lock['keeper_pid'] == 4243 and lock['command'] == 'old-job --full', lock
assert lock['acquired_at_ms'] == int(sys.argv[1]) and lock['ttl_ms'] == 30000, lock
assert lock['fence'] == 17 and lock['renewals'] == 3, lock
)",
                                       {acquired});
  CHECK_MESSAGE(checked.exit_code == 0, checked.describe());

  const RunResult released = run_rlock(at(redis, {"release", "old", "--token", token}));
  INFO(released.describe());
  CHECK(released.exit_code == 0);
  CHECK_FALSE(key_exists(redis, lock_key("old")));
  CHECK_FALSE(key_exists(redis, meta_key("old")));
}

TEST_CASE("a meta hash describes only the token it was written for") {
  RedisServer redis;
  const std::string token = acquire_lease(redis, "job", "30s");
  CHECK(redis.command({"HGET", meta_key("job"), meta_field("token")}) == token.substr(0, 16));
  // Another client's value in the lock key, the hash left as it was: no rlock metadata.
  REQUIRE(redis.command({"SET", lock_key("job"), "someone-else", "KEEPTTL"}) == "OK");
  const RunResult foreign = run_rlock(at(redis, {"status", "job", "--json"}));
  INFO(foreign.describe());
  CHECK(foreign.exit_code == 0);
  CHECK(contains(foreign.out, "\"holder_kind\":\"foreign\""));
  CHECK_FALSE(contains(foreign.out, "\"host\""));
}

} // namespace rlock::test
