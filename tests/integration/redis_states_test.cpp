// SPDX-License-Identifier: MIT
// Black-box tests of Redis in odd states: every script is all or nothing against ACL refusals
// (NOPERM, exit 77), keys of the wrong type (78), OOM and a read-only replica (69); and holder
// data rlock did not write reads as unknown, never as an error.
#include "helpers.hpp"
#include "redis_server.hpp"
#include "run.hpp"

#include <doctest/doctest.h>
#include <set>

namespace rlock::test {

namespace {

// The commands of the man page's MINIMAL ACL that the scripts call (xadd: with --audit).
const std::vector<std::string> k_script_commands{
    "get",  "set",   "del",    "incr", "hset",   "hget",          "hmget", "pexpire", "pttl", "rpush",
    "zadd", "zcard", "zcount", "zrem", "zrange", "zrangebyscore", "zrank", "time",    "xadd"};

// Those a busy attempt that joins the line uses, and those of a release that hands over.
const std::set<std::string> k_waiting_commands{"zadd",  "pttl", "pexpire",       "zcard", "zcount",
                                               "hmget", "zrem", "zrangebyscore", "zrank", "zrange"};
const std::set<std::string> k_handoff_commands{"del",   "rpush", "pexpire", "incr",          "set",   "zcount",
                                               "hmget", "zcard", "zrem",    "zrangebyscore", "zrange"};

// An ACL line for user `no-COMMAND`: the minimal ACL without COMMAND.
std::string acl_user_without(const std::string& missing) {
  std::string line =
      "user no-" + missing + " on >pw-" + missing + " ~rlock:* resetchannels -@all +evalsha +eval +blpop +scan";
  for (const auto& command : k_script_commands) {
    if (command != missing) line += " +" + command;
  }
  return line;
}

std::string url_of(const RedisServer& redis, const std::string& missing) {
  return "redis://no-" + missing + ":pw-" + missing + "@127.0.0.1:" + std::to_string(redis.port());
}

std::vector<std::string> all_keys(const RedisServer& redis) { return split_lines(redis.command({"KEYS", "*"})); }

// Every key rlock left has a TTL, except the fence counter (and `foreign`, a key the test
// wrote with another type, which must be as the test left it).
void check_every_key_expires(const RedisServer& redis, const std::string& foreign = {}) {
  for (const auto& key : all_keys(redis)) {
    if (key.ends_with(":fence") || key == foreign) continue;
    INFO("key: ", key);
    CHECK(pttl(redis, key) > 0);
  }
}

// A refusal names what was refused: stderr says NOPERM or that the user may not run it.
void check_refused(const RunResult& result) {
  INFO(result.describe());
  CHECK(result.exit_code == 77);
  check_error_line(result);
  CHECK((contains(result.err, "NOPERM") || contains(result.err, "can't run") || contains(result.err, "may not run")));
}

} // namespace

TEST_CASE("an ACL user without one of the scripts' commands gets 77 and leaves nothing half-written") {
  RedisServerOptions options;
  for (const auto& command : k_script_commands) options.extra_config.push_back(acl_user_without(command));
  RedisServer redis(options);
  TempDir dir;
  for (const auto& missing : k_script_commands) {
    CAPTURE(missing);
    REQUIRE(redis.command({"FLUSHALL"}) == "OK");
    const std::string url = url_of(redis, missing);
    const std::string ran = dir.file("ran-" + missing);

    // exec: acquire, run, release; -n so that no waiting line is involved; --audit, so that
    // the audit log's commands count too.
    const RunResult exec =
        run_rlock({"--url", url, "--audit", "exec", "job", "-n", "--ttl", "30s", "--", "touch", ran});
    INFO(exec.describe());
    CHECK((exec.exit_code == 0 || exec.exit_code == 77));
    if (exec.exit_code == 77) check_refused(exec);
    if (!file_exists(ran)) CHECK_FALSE(key_exists(redis, lock_key("job")));
    if (exec.exit_code == 0) CHECK_FALSE(key_exists(redis, lock_key("job")));
    check_every_key_expires(redis);

    // Waiting in line behind another holder (for the commands a busy attempt uses).
    if (!k_waiting_commands.contains(missing)) continue;
    REQUIRE(redis.command({"FLUSHALL"}) == "OK");
    const std::string holder = acquire_lease(redis, "job", "30s");
    const RunResult waited = run_rlock({"--url", url, "acquire", "job", "--lease", "--wait", "200ms"});
    INFO(waited.describe());
    CHECK((waited.exit_code == 75 || waited.exit_code == 77));
    if (waited.exit_code == 77) check_refused(waited);
    CHECK(redis.command({"GET", lock_key("job")}) == holder);
    check_every_key_expires(redis);

    // This user holds the lock and releases it to a waiter (the default user).
    if (!k_handoff_commands.contains(missing)) continue;
    REQUIRE(redis.command({"FLUSHALL"}) == "OK");
    const RunResult taken = run_rlock({"--url", url, "acquire", "job", "--lease", "--ttl", "30s"});
    INFO(taken.describe());
    CHECK((taken.exit_code == 0 || taken.exit_code == 77));
    if (taken.exit_code != 0) {
      check_refused(taken);
      CHECK_FALSE(key_exists(redis, lock_key("job")));
      check_every_key_expires(redis);
      continue;
    }
    BackgroundProcess waiter(exec_argv(redis, "job", {"--wait", "20s"}, {"true"}));
    REQUIRE(wait_until([&] { return redis.command({"ZCARD", "rlock:{job}:line"}) == "1"; }, 10s));
    const RunResult released = run_rlock({"--url", url, "release", "job", "--token", trim(taken.out)});
    INFO(released.describe());
    CHECK((released.exit_code == 0 || released.exit_code == 77));
    if (released.exit_code == 77) {
      check_refused(released);
      // Refused as a whole: still held by the same token, with its TTL.
      CHECK(redis.command({"GET", lock_key("job")}) == trim(taken.out));
      check_every_key_expires(redis);
      waiter.kill();
    } else {
      CHECK(waiter.wait(20s) == 0);
      check_every_key_expires(redis);
    }
  }
}

TEST_CASE("a side key of the wrong type fails the script before it wrote anything") {
  RedisServer redis;
  struct Case {
    std::string suffix;
    int exec_exit; // what `exec -n` ends with when the key is a set
  };
  // The meta hash is rlock's own and rewritten whole (and nothing reads PREFIX{NAME}:wake: the
  // waiters' lists are PREFIX{NAME}:wake:TICKET); a fence counter or a waiting line of another
  // type belongs to another program: 78, "choose another --prefix". An uncontended exec looks
  // at the line through its first key only (:line:expiry is read once someone waits: below).
  for (const Case& c :
       {Case{":meta", 0}, Case{":fence", 78}, Case{":line", 78}, Case{":line:expiry", 0}, Case{":wake", 0}}) {
    CAPTURE(c.suffix);
    REQUIRE(redis.command({"FLUSHALL"}) == "OK");
    const std::string key = lock_key("job") + c.suffix;
    REQUIRE(redis.command({"SADD", key, "someone-else"}) == "1");
    const RunResult exec = run_rlock(exec_args(redis, "job", {"-n"}, {"true"}));
    INFO(exec.describe());
    CHECK(exec.exit_code == c.exec_exit);
    if (exec.exit_code != 0) {
      check_error_line(exec);
      CHECK(contains(exec.err, "--prefix"));
      CHECK(redis.command({"TYPE", key}) == "set");
    }
    CHECK_FALSE(key_exists(redis, lock_key("job")));
    check_every_key_expires(redis, key);
  }
}

TEST_CASE("a line:expiry of another type fails a waiter and a hand-off before they wrote anything") {
  RedisServer redis;
  const std::string expiry = lock_key("job") + ":line:expiry";
  const std::string token = acquire_lease(redis, "job", "30s");
  REQUIRE(redis.command({"SADD", expiry, "someone-else"}) == "1");
  const RunResult waited = run_rlock(exec_args(redis, "job", {"-w", "200ms"}, {"true"}));
  INFO(waited.describe());
  CHECK(waited.exit_code == 78);
  check_error_line(waited);
  CHECK(contains(waited.err, "--prefix"));
  CHECK_FALSE(key_exists(redis, lock_key("job") + ":line"));
  CHECK(redis.command({"TYPE", expiry}) == "set");
  // A line that has a ticket (written by hand here) makes the release look at :line:expiry.
  REQUIRE(redis.command({"ZADD", lock_key("job") + ":line", "1", "ticket"}) == "1");
  const RunResult released = run_rlock(at(redis, {"release", "job", "--token", token}));
  INFO(released.describe());
  CHECK(released.exit_code == 78);
  check_error_line(released);
  CHECK(redis.command({"GET", lock_key("job")}) == token);
  CHECK(redis.command({"TYPE", expiry}) == "set");
}

TEST_CASE("a fence counter that holds no number fails the acquire before it wrote anything") {
  RedisServer redis;
  REQUIRE(redis.command({"SET", fence_key("job"), "not-a-number"}) == "OK");
  const RunResult exec = run_rlock(exec_args(redis, "job", {"-n"}, {"true"}));
  INFO(exec.describe());
  CHECK(exec.exit_code == 78);
  check_error_line(exec);
  CHECK(all_keys(redis) == std::vector<std::string>{fence_key("job")});
}

TEST_CASE("the waiting line turns into another type under a holder: its release is refused whole") {
  RedisServer redis;
  const std::string token = acquire_lease(redis, "job", "30s");
  REQUIRE(redis.command({"SADD", lock_key("job") + ":line", "x"}) == "1");
  const RunResult released = run_rlock(at(redis, {"release", "job", "--token", token}));
  INFO(released.describe());
  CHECK(released.exit_code == 78);
  check_error_line(released);
  CHECK(redis.command({"GET", lock_key("job")}) == token);
  check_every_key_expires(redis, lock_key("job") + ":line");
}

TEST_CASE("a meta hash of another type under a holder: renew, status and release still work") {
  RedisServer redis;
  const std::string token = acquire_lease(redis, "job", "30s");
  REQUIRE(redis.command({"DEL", meta_key("job")}) == "1");
  REQUIRE(redis.command({"SADD", meta_key("job"), "x"}) == "1");
  const RunResult renewed = run_rlock(at(redis, {"renew", "job", "--token", token, "--ttl", "40s"}));
  INFO(renewed.describe());
  CHECK(renewed.exit_code == 0);
  CHECK(pttl(redis, lock_key("job")) > 30'000);
  const RunResult status = run_rlock(at(redis, {"status", "job"}));
  INFO(status.describe());
  CHECK(status.exit_code == 0);
  const RunResult released = run_rlock(at(redis, {"release", "job", "--token", token}));
  INFO(released.describe());
  CHECK(released.exit_code == 0);
  CHECK_FALSE(key_exists(redis, lock_key("job")));
}

TEST_CASE("out of memory: every command succeeds whole or fails whole with 69") {
  RedisServer redis;
  const std::string held = acquire_lease(redis, "held", "30s");
  REQUIRE(redis.command({"CONFIG", "SET", "maxmemory-policy", "noeviction"}) == "OK");
  REQUIRE(redis.command({"CONFIG", "SET", "maxmemory", "1"}) == "OK");
  const std::vector<std::vector<std::string>> commands{
      exec_args(redis, "job", {"-n", "--connect-timeout", "300ms"}, {"true"}),
      at(redis, {"--connect-timeout", "300ms", "acquire", "other", "--lease", "-n"}),
      at(redis, {"--connect-timeout", "300ms", "renew", "held", "--token", held, "--ttl", "40s"}),
      at(redis, {"--connect-timeout", "300ms", "status", "held"}),
  };
  for (const auto& args : commands) {
    const RunResult result = run_rlock(args);
    INFO(result.describe());
    CHECK((result.exit_code == 0 || result.exit_code == 69));
    if (result.exit_code == 69) {
      check_error_line(result);
      CHECK((contains(result.err, "OOM") || contains(result.err, "memory")));
    }
    check_every_key_expires(redis);
  }
  CHECK_FALSE(key_exists(redis, lock_key("job")));
  const RunResult released = run_rlock(at(redis, {"release", "held", "--token", held}));
  INFO(released.describe());
  CHECK(released.exit_code == 0);
  CHECK_FALSE(key_exists(redis, lock_key("held")));
  REQUIRE(redis.command({"CONFIG", "SET", "maxmemory", "0"}) == "OK");
}

TEST_CASE("a read-only replica: 69 after the connect timeout, nothing written") {
  RedisServer redis;
  REQUIRE(redis.command({"REPLICAOF", "127.0.0.1", std::to_string(free_port())}) == "OK");
  for (const auto& args : {exec_args(redis, "job", {"-n", "--connect-timeout", "300ms"}, {"true"}),
                           at(redis, {"--connect-timeout", "300ms", "acquire", "job", "--lease", "--wait", "1s"}),
                           at(redis, {"--connect-timeout", "300ms", "release", "job", "--force"})}) {
    const RunResult result = run_rlock(args);
    INFO(result.describe());
    if (contains(args.back(), "--force")) {
      CHECK(result.exit_code == 0); // free: nothing to write
      continue;
    }
    CHECK(result.exit_code == 69);
    check_error_line(result);
    CHECK(contains(result.err, "read-only"));
    CHECK(all_keys(redis).empty());
  }
  REQUIRE(redis.command({"REPLICAOF", "NO", "ONE"}) == "OK");
}

TEST_CASE("holder data rlock did not write is shown as unknown and changes no exit code") {
  RedisServer redis;
  const std::string token = acquire_lease(redis, "job", "30s");
  using Field = std::pair<std::string, std::string>;
  // Three rounds: no numbers where numbers belong, numbers out of range, bytes of every kind.
  const std::vector<std::vector<Field>> rounds{
      {{"pid", "12abc"},
       {"keeper_pid", "x"},
       {"acquired_ms", "yesterday"},
       {"ttl_ms", "1e9"},
       {"fence", "0x10"},
       {"renewals", "many"}},
      {{"pid", "99999999999999999999999"},
       {"keeper_pid", "-1"},
       {"acquired_ms", "-99999999999999"},
       {"ttl_ms", "-5"},
       {"fence", "-1"},
       {"renewals", "-3"}},
      {{"pid", std::string("\x00\xff\x01", 3)},
       {"keeper_pid", "4294967297"},
       {"host", std::string("h\x00st\n\x1b[31m", 10)},
       {"user", std::string("\xff\xfe", 2)},
       {"command", std::string(100'000, 'x')},
       {"renewals", ""}},
  };
  for (std::size_t round = 0; round < rounds.size(); ++round) {
    CAPTURE(round);
    for (const auto& [field, value] : rounds[round]) {
      const std::string written = redis.command({"HSET", meta_key("job"), meta_field(field), value});
      REQUIRE((written == "0" || written == "1"));
    }

    const RunResult status = run_rlock(at(redis, {"status", "job"}));
    INFO(status.describe());
    CHECK(status.exit_code == 0);
    CHECK(contains(status.out, "job: held by"));
    CHECK(contains(status.out, " pid ?"));

    const RunResult json = run_rlock(at(redis, {"status", "job", "--json"}));
    INFO(json.describe());
    CHECK(json.exit_code == 0);
    CHECK(is_valid_json(json.out));
    CHECK(contains(json.out, "\"pid\":null"));

    const RunResult list = run_rlock(at(redis, {"status", "--json"}));
    INFO(list.describe());
    CHECK(list.exit_code == 0);
    CHECK(is_valid_json(list.out));

    const RunResult busy = run_rlock(exec_args(redis, "job", {"-n", "-E", "0"}, {"false"}));
    INFO(busy.describe());
    CHECK(busy.exit_code == 0);
    CHECK(contains(busy.err, "busy"));

    const RunResult renewed = run_rlock(at(redis, {"renew", "job", "--token", token, "--ttl", "30s"}));
    INFO(renewed.describe());
    CHECK(renewed.exit_code == 0);
  }
  const RunResult json = run_rlock(at(redis, {"status", "job", "--json"}));
  CHECK(contains(json.out, "\"pid\":null"));
  CHECK(contains(json.out, "\"acquired_at\":null"));
  CHECK(contains(json.out, "\"fence\":null"));
  const RunResult released = run_rlock(at(redis, {"release", "job", "--token", token}));
  INFO(released.describe());
  CHECK(released.exit_code == 0);
  CHECK_FALSE(key_exists(redis, lock_key("job")));
  CHECK_FALSE(key_exists(redis, meta_key("job")));
}

TEST_CASE("a corrupt acquisition time does not stretch --min-hold") {
  RedisServer redis;
  // The job writes a time far in the future over its own holder's record.
  const std::string corrupt = "import redis, sys; redis.Redis(port=int(sys.argv[1])).hset(sys.argv[2], "
                              "sys.argv[3], '999999999999999')";
  const RunResult kept = run_rlock(
      exec_args(redis, "job", {"--min-hold", "2s"},
                {k_python, "-c", corrupt, std::to_string(redis.port()), meta_key("job"), meta_field("acquired_ms")}));
  INFO(kept.describe());
  CHECK(kept.exit_code == 0);
  CHECK(pttl(redis, lock_key("job")) <= 2000);
}

} // namespace rlock::test
