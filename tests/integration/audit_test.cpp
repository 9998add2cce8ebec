// SPDX-License-Identifier: MIT
// Black-box tests of the audit log (rlock(1), AUDIT; docs/redis-keys.md): --audit, RLOCK_AUDIT and
// the config file's `audit` make the scripts append to PREFIX{NAME}:log; a forced release is
// recorded whenever that stream exists; `rlock log` prints it; the ACL it needs.
#include "helpers.hpp"
#include "redis_server.hpp"
#include "run.hpp"

#include <doctest/doctest.h>

#include <unistd.h>

namespace rlock::test {

namespace {

std::string log_key(std::string_view name) { return lock_key(name) + ":log"; }

// The `event` field of every entry of NAME's stream, oldest first, read with XRANGE (not rlock).
std::vector<std::string> stream_events(const RedisServer& redis, const std::string& name) {
  const std::vector<std::string> lines = split_lines(redis.command({"XRANGE", log_key(name), "-", "+"}));
  std::vector<std::string> events;
  for (std::size_t i = 0; i + 1 < lines.size(); ++i) {
    if (lines[i] == "event") events.push_back(lines[i + 1]);
  }
  return events;
}

// The second column of `rlock log NAME` (the event), one per line.
std::vector<std::string> logged_events(const RunResult& result) {
  std::vector<std::string> events;
  for (const std::string& line : split_lines(result.out)) {
    const std::size_t start = line.find_first_not_of(' ', line.find(' '));
    events.push_back(line.substr(start, line.find(' ', start) - start));
  }
  return events;
}

// The first 12 hex digits of the SHA-1 of `text`: the fingerprint rlock logs for a token.
std::string fingerprint(const std::string& text) {
  const RunResult sha =
      run_python("import hashlib, sys; print(hashlib.sha1(sys.argv[1].encode()).hexdigest()[:12])", {text});
  REQUIRE(sha.exit_code == 0);
  return trim(sha.out);
}

RunResult log_of(const RedisServer& redis, const std::vector<std::string>& args) {
  std::vector<std::string> all{"log"};
  all.insert(all.end(), args.begin(), args.end());
  RunResult result = run_rlock(at(redis, all));
  INFO(result.describe());
  return result;
}

} // namespace

TEST_CASE("without --audit nothing writes a log, and a forced release writes none where none exists") {
  RedisServer redis;
  REQUIRE(run_rlock(at(redis, {"exec", "job", "--", "true"})).exit_code == 0);
  const std::string token = acquire_lease(redis, "job");
  BackgroundProcess waiter(exec_argv(redis, "job", {"-w", "20s"}, {"true"}));
  REQUIRE(wait_until([&] { return redis.command({"ZCARD", "rlock:{job}:line"}) == "1"; }, 10s));
  REQUIRE(run_rlock(at(redis, {"release", "job", "--token", token})).exit_code == 0);
  CHECK(waiter.wait(20s) == 0);
  acquire_lease(redis, "job");
  REQUIRE(run_rlock(at(redis, {"release", "job", "--force"})).exit_code == 0);
  CHECK_FALSE(key_exists(redis, log_key("job")));
  // Only the fence counter is left (the line and the wake lists have gone or expire).
  for (const std::string& key : split_lines(redis.command({"KEYS", "*"}))) {
    CAPTURE(key);
    CHECK_FALSE(key.ends_with(":log"));
  }
  const RunResult shown = log_of(redis, {"job"});
  CHECK(shown.exit_code == 1);
  CHECK(shown.out.empty());
}

TEST_CASE("--audit: an exec, a split acquire, a hand-off between two waiters and a forced release, in order") {
  RedisServer redis;
  REQUIRE(run_rlock(at(redis, {"--audit", "exec", "job", "--", "true"})).exit_code == 0);
  const std::string token = acquire_lease(redis, "job", "30s", {"--audit"});
  // Two waiters, the first queued before the second starts: the hand-offs go in that order.
  BackgroundProcess first(exec_argv(redis, "job", {"--audit", "-w", "20s"}, {"true"}));
  REQUIRE(wait_until([&] { return redis.command({"ZCARD", "rlock:{job}:line"}) == "1"; }, 10s));
  BackgroundProcess second(exec_argv(redis, "job", {"--audit", "-w", "20s"}, {"true"}));
  REQUIRE(wait_until([&] { return redis.command({"ZCARD", "rlock:{job}:line"}) == "2"; }, 10s));
  REQUIRE(run_rlock(at(redis, {"--audit", "release", "job", "--token", token})).exit_code == 0);
  CHECK(first.wait(20s) == 0);
  CHECK(second.wait(20s) == 0);
  // Taken with --audit, broken without it: the stream exists, so the break is recorded.
  const std::string broken = acquire_lease(redis, "job", "30s", {"--audit"});
  REQUIRE(run_rlock(at(redis, {"release", "job", "--force"})).exit_code == 0);

  const std::vector<std::string> expected{"acquired",   "released", "acquired", "handed-off", "claimed",
                                          "handed-off", "claimed",  "released", "acquired",   "forced"};
  CHECK(stream_events(redis, "job") == expected);
  const RunResult shown = log_of(redis, {"job"});
  CHECK(shown.exit_code == 0);
  CHECK(logged_events(shown) == expected);
  const std::vector<std::string> lines = split_lines(shown.out);
  REQUIRE(lines.size() == expected.size());
  // The split acquire: its holder is the test (acquire --lease records rlock's parent), its
  // token a fingerprint, never the token itself.
  CHECK(contains(lines[2], "pid " + std::to_string(::getpid())));
  CHECK(contains(lines[2], "token " + fingerprint(token)));
  CHECK(contains(lines[3], "held "));
  CHECK(contains(lines[9], "by ")); // who broke it
  CHECK(contains(lines[9], host_name()));
  CHECK(contains(lines[9], "token " + fingerprint(broken)));
  const std::string raw = redis.command({"XRANGE", log_key("job"), "-", "+"});
  CHECK_FALSE(contains(raw, token));
  CHECK_FALSE(contains(raw, broken));
  CHECK(pttl(redis, log_key("job")) > 29LL * 24 * 3600 * 1000);

  // -n: the newest N, oldest first.
  const RunResult last = log_of(redis, {"job", "-n", "2"});
  CHECK(logged_events(last) == std::vector<std::string>{"acquired", "forced"});

  // --json: one valid object a line, the same events.
  const RunResult json = log_of(redis, {"job", "--json"});
  CHECK(json.exit_code == 0);
  const std::vector<std::string> objects = split_lines(json.out);
  REQUIRE(objects.size() == expected.size());
  for (std::size_t i = 0; i < objects.size(); ++i) {
    CAPTURE(objects[i]);
    CHECK(is_valid_json(objects[i]));
    CHECK(contains(objects[i], "\"event\":\"" + expected[i] + "\""));
  }
  CHECK(contains(objects[9], "\"by\":\""));
  CHECK(contains(objects[1], "\"held_ms\":"));
}

TEST_CASE("a forced release is recorded when the stream exists, whoever forces it; a refused one is not") {
  RedisServer redis;
  REQUIRE(run_rlock(at(redis, {"--audit", "exec", "job", "--", "true"})).exit_code == 0);
  const std::string token = acquire_lease(redis, "job"); // not audited: no entry
  const RunResult mismatch =
      run_rlock(at(redis, {"release", "job", "--force", "--expect-token", "0123456789abcdef0123456789abcdef"}));
  CHECK(mismatch.exit_code == 76);
  REQUIRE(run_rlock(at(redis, {"release", "job", "--force", "--expect-token", token})).exit_code == 0);
  CHECK(stream_events(redis, "job") == std::vector<std::string>{"acquired", "released", "forced"});
  // A free lock broken: nothing happened, nothing recorded.
  REQUIRE(run_rlock(at(redis, {"release", "job", "--force"})).exit_code == 0);
  CHECK(stream_events(redis, "job").size() == 3);
}

TEST_CASE("RLOCK_AUDIT=1 and the config file's audit turn it on; a bad value is 78") {
  RedisServer redis;
  RunOptions env;
  env.env = {"RLOCK_AUDIT=1"};
  REQUIRE(run_rlock(at(redis, {"exec", "env", "--", "true"}), env).exit_code == 0);
  CHECK(stream_events(redis, "env") == std::vector<std::string>{"acquired", "released"});

  TempDir dir;
  write_file(dir.file("config"), "audit = yes\n", 0600);
  REQUIRE(run_rlock(at(redis, {"--config", dir.file("config"), "exec", "file", "--", "true"})).exit_code == 0);
  CHECK(stream_events(redis, "file") == std::vector<std::string>{"acquired", "released"});
  write_file(dir.file("config"), "audit = no\n", 0600);
  REQUIRE(run_rlock(at(redis, {"--config", dir.file("config"), "exec", "off", "--", "true"})).exit_code == 0);
  CHECK_FALSE(key_exists(redis, log_key("off")));

  RunOptions bad;
  bad.env = {"RLOCK_AUDIT=maybe"};
  const RunResult refused = run_rlock(at(redis, {"exec", "bad", "--", "true"}), bad);
  INFO(refused.describe());
  CHECK(refused.exit_code == 78);
  check_error_line(refused);
  CHECK(contains(refused.err, "RLOCK_AUDIT"));
  CHECK_FALSE(key_exists(redis, lock_key("bad")));
}

TEST_CASE("exec --audit passes RLOCK_AUDIT=1 to its job, whose own rlock then records too") {
  RedisServer redis;
  const RunResult ran = run_rlock(at(redis, {"--audit", "exec", "outer", "--", "sh", "-c",
                                             "echo \"audit=$RLOCK_AUDIT\"; \"$0\" exec inner -- true", rlock_bin()}));
  INFO(ran.describe());
  CHECK(ran.exit_code == 0);
  CHECK(contains(ran.out, "audit=1"));
  CHECK(stream_events(redis, "inner") == std::vector<std::string>{"acquired", "released"});
  const RunResult plain =
      run_rlock(at(redis, {"exec", "outer", "--", "sh", "-c", "echo \"audit=${RLOCK_AUDIT-unset}\""}));
  CHECK(contains(plain.out, "audit=unset"));
}

TEST_CASE("quorum mode: every node keeps its own log") {
  RedisServer a;
  RedisServer b;
  RedisServer c;
  const RunResult ran =
      run_rlock({"--url", a.url(), "--url", b.url(), "--url", c.url(), "--audit", "exec", "job", "--", "true"});
  INFO(ran.describe());
  REQUIRE(ran.exit_code == 0);
  for (const RedisServer* node : {&a, &b, &c}) {
    CHECK(stream_events(*node, "job") == std::vector<std::string>{"acquired", "released"});
    const RunResult one = log_of(*node, {"job"});
    CHECK(one.exit_code == 0);
  }
}

TEST_CASE("the log is capped: about 1000 entries, the oldest trimmed") {
  RedisServer redis;
  // 1500 old entries, written at once by one script; then one audited exec.
  REQUIRE(redis.command({"EVAL",
                         "for i = 1, 1500 do redis.call('XADD', KEYS[1], '*', 'event', 'old', 'token', '', 'host', "
                         "'', 'pid', '', 'user', '', 'fence', '', 'held_ms', '', 'by', '') end return 1",
                         "1", log_key("job")}) == "1");
  REQUIRE(run_rlock(at(redis, {"--audit", "exec", "job", "--", "true"})).exit_code == 0);
  const long long length = std::stoll(redis.command({"XLEN", log_key("job")}));
  CHECK(length >= 1000);
  CHECK(length <= 1100); // MAXLEN ~ trims whole nodes of stream-node-max-entries (100)
  const std::vector<std::string> events = stream_events(redis, "job");
  REQUIRE(events.size() >= 2);
  CHECK(events[events.size() - 2] == "acquired");
  CHECK(events.back() == "released");
  const RunResult all = log_of(redis, {"job", "-n", "5000"});
  CHECK(split_lines(all.out).size() == static_cast<std::size_t>(length));
}

TEST_CASE("log: an unknown name is 1 with nothing on stdout; bad use is 64; quorum mode is 64") {
  RedisServer redis;
  const RunResult unknown = log_of(redis, {"nobody-ever"});
  CHECK(unknown.exit_code == 1);
  CHECK(unknown.out.empty());
  CHECK(split_lines(unknown.err).size() == 1);
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"a{b"}, {"job", "-n", "0"}, {"job", "-n", "x"}, {}, {"job", "--bogus"}}) {
    const RunResult result = log_of(redis, args);
    CHECK(result.exit_code == 64);
    check_error_line(result);
  }
  const RunResult quorum =
      run_rlock({"--url", redis.url(), "--url", redis.url() + "/1", "--url", redis.url() + "/2", "log", "job"});
  INFO(quorum.describe());
  CHECK(quorum.exit_code == 64);
  check_error_line(quorum);
  CHECK(contains(quorum.err, "quorum"));
  // Another type under the log's key: a configuration error, as for every key rlock reads.
  REQUIRE(redis.command({"SET", log_key("odd"), "x"}) == "OK");
  const RunResult odd = log_of(redis, {"odd"});
  CHECK(odd.exit_code == 78);
  check_error_line(odd);
}

TEST_CASE("an ACL user without +xadd: --audit is 77 and changes nothing; without +xrevrange, log is 77") {
  const std::string base =
      " ~rlock:* resetchannels -@all +evalsha +eval +blpop +scan +get +set +del +incr +hset +hget +hmget +pexpire "
      "+pttl +rpush +time +zadd +zcard +zcount +zrem +zrange +zrangebyscore +zrank";
  RedisServerOptions options;
  options.extra_config = {"user no-xadd on >pw1" + base + " +xrevrange", "user no-xrevrange on >pw2" + base + " +xadd"};
  RedisServer redis(options);
  const std::string port = std::to_string(redis.port());
  const std::string no_xadd = "redis://no-xadd:pw1@127.0.0.1:" + port;
  const std::string no_xrevrange = "redis://no-xrevrange:pw2@127.0.0.1:" + port;

  const RunResult audited = run_rlock({"--url", no_xadd, "--audit", "exec", "job", "--", "true"});
  INFO(audited.describe());
  CHECK(audited.exit_code == 77);
  check_error_line(audited);
  CHECK(contains(audited.err, "XADD"));
  CHECK_FALSE(key_exists(redis, lock_key("job")));
  CHECK_FALSE(key_exists(redis, log_key("job")));
  CHECK(run_rlock({"--url", no_xadd, "exec", "job", "--", "true"}).exit_code == 0); // without --audit: fine

  // A lock whose log exists cannot be broken by a user who may not write to it: refused whole.
  REQUIRE(run_rlock({"--url", no_xrevrange, "--audit", "exec", "job", "--", "true"}).exit_code == 0);
  const std::string token = acquire_lease(redis, "job");
  const RunResult force = run_rlock({"--url", no_xadd, "release", "job", "--force"});
  INFO(force.describe());
  CHECK(force.exit_code == 77);
  CHECK(redis.command({"GET", lock_key("job")}) == token);

  const RunResult read = run_rlock({"--url", no_xrevrange, "log", "job"});
  INFO(read.describe());
  CHECK(read.exit_code == 77);
  check_error_line(read);
  CHECK(run_rlock({"--url", no_xadd, "log", "job"}).exit_code == 0);
}

} // namespace rlock::test
