// SPDX-License-Identifier: MIT
// Black-box tests of `rlock exec`: exit statuses, the job's env and fds, max/min hold, waiting, SIGKILL.
#include "helpers.hpp"
#include "redis_server.hpp"
#include "run.hpp"

#include <doctest/doctest.h>

#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <thread>

namespace rlock::test {

namespace {

using Clock = std::chrono::steady_clock;

// VAR=VALUE lines of an --env-out file as VAR -> VALUE; nullopt when VAR is absent.
std::optional<std::string> env_value(const std::string& env_text, const std::string& name) {
  std::istringstream lines(env_text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(name + "=", 0) == 0) {
      return line.substr(name.size() + 1);
    }
  }
  return std::nullopt;
}

} // namespace

TEST_CASE("exec passes the job's exit status through") {
  RedisServer redis;
  struct Case {
    std::vector<std::string> child_args;
    int expected;
  };
  const Case cases[] = {
      {{}, 0},
      {{"--exit", "3"}, 3},
      {{"--exit", "255"}, 255},
      {{"--kill-self", "9"}, 128 + 9},
      {{"--kill-self", "15"}, 128 + 15},
      {{"--kill-self", "10"}, 128 + 10},
  };
  for (const auto& entry : cases) {
    std::vector<std::string> command{test_child_bin()};
    command.insert(command.end(), entry.child_args.begin(), entry.child_args.end());
    const RunResult result = run_rlock(exec_args(redis, "codes", {}, command));
    INFO("expected ", entry.expected, ": ", result.describe());
    CHECK(result.exit_code == entry.expected);
    // The job's own status is no rlock error: nothing on stderr.
    CHECK(trim(result.err).empty());
    CHECK_FALSE(key_exists(redis, lock_key("codes")));
  }
}

TEST_CASE("exec -c runs the string with /bin/sh and passes its status through") {
  RedisServer redis;
  const RunResult result = run_rlock(at(redis, {"exec", "shell", "-c", "test -n \"$RLOCK_TOKEN\" && exit 7"}));
  INFO(result.describe());
  CHECK(result.exit_code == 7);
  CHECK_FALSE(key_exists(redis, lock_key("shell")));
}

TEST_CASE("exec runs the command without a shell: arguments arrive verbatim") {
  RedisServer redis;
  TempDir dir;
  const std::string weird = "a b;$HOME `x` 'q' \"d\" *";
  const RunResult result = run_rlock(exec_args(redis, "argv", {}, {test_child_bin(), "--print", weird}));
  INFO(result.describe());
  CHECK(result.exit_code == 0);
  CHECK(result.out == weird + "\n");
}

TEST_CASE("exec passes stdin and stdout through to the job") {
  RedisServer redis;
  TempDir dir;
  RunOptions options;
  options.stdin_data = "line one\nline two\n";
  const RunResult result = run_rlock(
      exec_args(redis, "stdio", {}, {test_child_bin(), "--stdin-out", dir.file("stdin"), "--print", "hello"}), options);
  INFO(result.describe());
  CHECK(result.exit_code == 0);
  CHECK(result.out == "hello\n");
  CHECK(read_file(dir.file("stdin")) == "line one\nline two\n");
}

TEST_CASE("a file that cannot be executed exits 126 and leaves the lock free") {
  RedisServer redis;
  TempDir dir;
  const std::string script = dir.file("not-executable.sh");
  write_file(script, "#!/bin/sh\nexit 0\n", 0644);
  const RunResult result = run_rlock(exec_args(redis, "noexec", {}, {script}));
  INFO(result.describe());
  CHECK(result.exit_code == 126);
  CHECK(contains(result.err, "not-executable.sh"));
  check_error_line(result);
  CHECK_FALSE(key_exists(redis, lock_key("noexec")));
  CHECK_FALSE(key_exists(redis, meta_key("noexec")));
  // Free, not merely expired later: it can be taken at once.
  CHECK(run_rlock(at(redis, {"acquire", "noexec", "--lease", "-n"})).exit_code == 0);
}

TEST_CASE("a directory as the command exits 126") {
  RedisServer redis;
  TempDir dir;
  const RunResult result = run_rlock(exec_args(redis, "dir", {}, {dir.path()}));
  INFO(result.describe());
  CHECK(result.exit_code == 126);
  CHECK_FALSE(key_exists(redis, lock_key("dir")));
}

TEST_CASE("a command that does not exist exits 127 and leaves the lock free") {
  RedisServer redis;
  SUBCASE("on PATH") {
    const RunResult result = run_rlock(exec_args(redis, "missing", {}, {"rlock-no-such-command-xyz"}));
    INFO(result.describe());
    CHECK(result.exit_code == 127);
    CHECK(contains(result.err, "rlock-no-such-command-xyz"));
    check_error_line(result);
  }
  SUBCASE("by path") {
    const RunResult result = run_rlock(exec_args(redis, "missing", {}, {"/nonexistent/dir/cmd"}));
    INFO(result.describe());
    CHECK(result.exit_code == 127);
    CHECK(contains(result.err, "/nonexistent/dir/cmd"));
    check_error_line(result);
  }
  CHECK_FALSE(key_exists(redis, lock_key("missing")));
  CHECK_FALSE(key_exists(redis, meta_key("missing")));
  CHECK(run_rlock(at(redis, {"acquire", "missing", "--lease", "-n"})).exit_code == 0);
}

TEST_CASE("the job sees RLOCK_NAME, RLOCK_TOKEN (the key's value) and RLOCK_FENCE (the fence counter)") {
  RedisServer redis;
  TempDir dir;
  std::string previous_fence;
  for (int round = 0; round < 2; ++round) {
    INFO("round ", round);
    const std::string env_file = dir.file("env" + std::to_string(round));
    const std::string ready = dir.file("ready" + std::to_string(round));
    PidFileReaper reaper({dir.file("pid" + std::to_string(round))});
    BackgroundProcess rlock(
        with_rlock(exec_args(redis, "env-job", {"--ttl", "30s"},
                             {test_child_bin(), "--env-out", env_file, "--pid-file",
                              dir.file("pid" + std::to_string(round)), "--ready", ready, "--sleep", "forever"})));
    REQUIRE(wait_until([&] { return file_exists(ready) || !rlock.running(); }, 10s));
    INFO("rlock stderr: ", rlock.err());
    REQUIRE(rlock.running());
    const std::string env = read_file(env_file);
    CHECK(env_value(env, "RLOCK_NAME") == std::optional<std::string>("env-job"));
    const auto token = env_value(env, "RLOCK_TOKEN");
    REQUIRE(token.has_value());
    CHECK(is_token(*token));
    CHECK(redis.command({"GET", lock_key("env-job")}) == *token);
    const auto fence = env_value(env, "RLOCK_FENCE");
    REQUIRE(fence.has_value());
    CHECK(*fence == redis.command({"GET", fence_key("env-job")}));
    if (!previous_fence.empty()) {
      CHECK(std::stoll(*fence) > std::stoll(previous_fence));
    }
    previous_fence = *fence;
    rlock.signal(SIGTERM);
    CHECK(rlock.wait(10s) == 128 + SIGTERM);
    CHECK_FALSE(key_exists(redis, lock_key("env-job")));
  }
}

TEST_CASE("the password never reaches the job's environment") {
  const std::string password = "pw-Zq81-never-leak";
  RedisServerOptions server_options;
  server_options.password = password;
  RedisServer redis(server_options);
  TempDir dir;
  const std::vector<std::vector<std::string>> sources = {
      {"RLOCK_PASSWORD=" + password},
      {"REDISCLI_AUTH=" + password},
      {"RLOCK_PASSWORD=" + password, "REDISCLI_AUTH=" + password},
  };
  int round = 0;
  for (const auto& source : sources) {
    INFO("environment: ", source.front());
    const std::string env_file = dir.file("env" + std::to_string(round++));
    RunOptions options;
    options.env = source;
    const RunResult result =
        run_rlock(exec_args(redis, "secret", {}, {test_child_bin(), "--env-out", env_file}), options);
    INFO(result.describe());
    REQUIRE(result.exit_code == 0);
    const std::string env = read_file(env_file);
    INFO("job environment:\n", env);
    CHECK_FALSE(env_value(env, "RLOCK_PASSWORD").has_value());
    CHECK_FALSE(env_value(env, "REDISCLI_AUTH").has_value());
    CHECK_FALSE(contains(env, password));
    CHECK(env_value(env, "RLOCK_TOKEN").has_value());
    CHECK_FALSE(contains(result.err, password));
  }
}

TEST_CASE("a password inside RLOCK_URL does not reach the job's environment either") {
  // exec in rlock(1): nothing secret beyond the token. RLOCK_URL is rlock's own variable (unlike
  // REDIS_URL, which the job may use for itself), so its password is rlock's to withhold.
  const std::string password = "pw-Url-9x-never-leak";
  RedisServerOptions server_options;
  server_options.password = password;
  RedisServer redis(server_options);
  TempDir dir;
  RunOptions options;
  options.env = {"RLOCK_URL=redis://:" + password + "@127.0.0.1:" + std::to_string(redis.port())};
  const RunResult result = run_rlock({"exec", "secret", "--", test_child_bin(), "--env-out", dir.file("env")}, options);
  INFO(result.describe());
  REQUIRE(result.exit_code == 0);
  const std::string env = read_file(dir.file("env"));
  INFO("job environment:\n", env);
  CHECK_FALSE(contains(env, password));
}

TEST_CASE("no fd of rlock leaks into the job: neither the Redis socket nor a signalfd or pidfd") {
  RedisServer redis;
  TempDir dir;
  SUBCASE("a command") {
    const RunResult result = run_rlock(exec_args(redis, "fds", {}, {test_child_bin(), "--fds-out", dir.file("fds")}));
    INFO(result.describe());
    REQUIRE(result.exit_code == 0);
  }
  SUBCASE("while waiting for the lock first") {
    // A waiter holds more machinery (a subscription, a second connection): none of it leaks.
    const std::string token = acquire_lease(redis, "fds", "30s");
    BackgroundProcess rlock(with_rlock(exec_args(redis, "fds", {}, {test_child_bin(), "--fds-out", dir.file("fds")})));
    REQUIRE(wait_until(
        [&] {
          return redis.command({"ZCARD", lock_key("fds") + ":line"}) == "1" || !rlock.running();
        },
        10s));
    REQUIRE(run_rlock(at(redis, {"release", "fds", "--token", token})).exit_code == 0);
    INFO("rlock stderr: ", rlock.err());
    CHECK(rlock.wait(10s) == 0);
  }
  const std::string fds = read_file(dir.file("fds"));
  INFO("fds beyond 0,1,2 in the job:\n", fds);
  CHECK(fds.empty());
  CHECK_FALSE(contains(fds, "socket:"));
  CHECK_FALSE(contains(fds, "signalfd"));
  CHECK_FALSE(contains(fds, "pidfd"));
}

TEST_CASE("--max-hold stops the job with TERM and exits 124") {
  RedisServer redis;
  TempDir dir;
  PidFileReaper reaper({dir.file("pid")});
  const RunResult result = run_rlock(exec_args(
      redis, "maxhold", {"--max-hold", "300ms", "--ttl", "30s"},
      {test_child_bin(), "--record", dir.file("record"), "--pid-file", dir.file("pid"), "--sleep", "forever"}));
  INFO(result.describe());
  CHECK(result.exit_code == 124);
  CHECK(read_file(dir.file("record")) == "TERM\n");
  CHECK(result.elapsed >= 300ms);
  CHECK(result.elapsed < 10s);
  CHECK(contains(result.err, "max-hold"));
  CHECK_FALSE(key_exists(redis, lock_key("maxhold")));
}

TEST_CASE("--max-hold with a job that ignores TERM: SIGKILL after --grace, still 124") {
  RedisServer redis;
  TempDir dir;
  PidFileReaper reaper({dir.file("pid")});
  const RunResult result = run_rlock(exec_args(redis, "maxhold", {"--max-hold", "200ms", "--grace", "300ms"},
                                               {test_child_bin(), "--record", dir.file("record"), "--pid-file",
                                                dir.file("pid"), "--ignore-term", "--sleep", "forever"}));
  INFO(result.describe());
  CHECK(result.exit_code == 124);
  CHECK(read_file(dir.file("record")) == "TERM\n");
  CHECK(result.elapsed >= 500ms);
  CHECK(result.elapsed < 10s);
  CHECK(process_gone(read_pid(dir.file("pid"))));
  CHECK_FALSE(key_exists(redis, lock_key("maxhold")));
}

TEST_CASE("--min-hold keeps the lock after a job that ends at once, for the rest of the minimum") {
  RedisServer redis;
  const auto start = Clock::now();
  const RunResult result =
      run_rlock(exec_args(redis, "minhold", {"--min-hold", "2s", "--ttl", "30s"}, {test_child_bin()}));
  INFO(result.describe());
  REQUIRE(result.exit_code == 0);
  const long long remaining = pttl(redis, lock_key("minhold"));
  CHECK(remaining > 0);
  CHECK(remaining <= 2000);
  // Held, so a second exec -n is refused until the minimum has passed...
  CHECK(run_rlock(exec_args(redis, "minhold", {"-n"}, {test_child_bin()})).exit_code == 75);
  // ...and free soon after it (the key expires on the server).
  CHECK(wait_until([&] { return !key_exists(redis, lock_key("minhold")); }, 5s));
  CHECK(Clock::now() - start >= 1500ms);
}

TEST_CASE("--min-hold shorter than the job changes nothing: the lock is released at the end") {
  RedisServer redis;
  const RunResult result =
      run_rlock(exec_args(redis, "minhold", {"--min-hold", "100ms"}, {test_child_bin(), "--sleep", "0.3"}));
  INFO(result.describe());
  CHECK(result.exit_code == 0);
  CHECK_FALSE(key_exists(redis, lock_key("minhold")));
}

TEST_CASE("SIGKILL of rlock kills the direct child, and the lease expires on its own") {
  RedisServer redis;
  TempDir dir;
  PidFileReaper reaper({dir.file("pid")});
  BackgroundProcess rlock(with_rlock(exec_args(
      redis, "killed", {"--ttl", "2s"},
      {test_child_bin(), "--pid-file", dir.file("pid"), "--ready", dir.file("ready"), "--sleep", "forever"})));
  REQUIRE(wait_until([&] { return file_exists(dir.file("ready")) || !rlock.running(); }, 10s));
  INFO("rlock stderr: ", rlock.err());
  REQUIRE(rlock.running());
  const pid_t child = read_pid(dir.file("pid"));
  REQUIRE_FALSE(process_gone(child));

  rlock.signal(SIGKILL);
  CHECK(rlock.wait(5s) == 128 + SIGKILL);
  CHECK(wait_until([&] { return process_gone(child); }, 3s));
  // Nobody released it: the key is there with at most the TTL left, and expires by itself.
  const long long remaining = pttl(redis, lock_key("killed"));
  CHECK(remaining <= 2000);
  CHECK(wait_until([&] { return !key_exists(redis, lock_key("killed")); }, 5s));
}

TEST_CASE("exec -w 300ms against a held lock exits 75 after about that long, without running the job") {
  RedisServer redis;
  TempDir dir;
  const std::string token = acquire_lease(redis, "busy", "30s");
  const RunResult result =
      run_rlock(exec_args(redis, "busy", {"-w", "300ms"}, {test_child_bin(), "--ready", dir.file("ran")}));
  INFO(result.describe());
  CHECK(result.exit_code == 75);
  CHECK(result.elapsed >= 250ms);
  CHECK(result.elapsed < 5s);
  CHECK_FALSE(file_exists(dir.file("ran")));
  CHECK(redis.command({"GET", lock_key("busy")}) == token);
  CHECK(redis.command({"ZCARD", lock_key("busy") + ":line"}) == "0");
}

TEST_CASE("exec -n and -E choose the busy exit code") {
  RedisServer redis;
  TempDir dir;
  const std::string token = acquire_lease(redis, "busy", "30s");
  SUBCASE("-n") {
    const RunResult result =
        run_rlock(exec_args(redis, "busy", {"-n"}, {test_child_bin(), "--ready", dir.file("ran")}));
    INFO(result.describe());
    CHECK(result.exit_code == 75);
  }
  SUBCASE("-w 0") {
    const RunResult result =
        run_rlock(exec_args(redis, "busy", {"-w", "0"}, {test_child_bin(), "--ready", dir.file("ran")}));
    INFO(result.describe());
    CHECK(result.exit_code == 75);
    CHECK(result.elapsed < 2s);
  }
  SUBCASE("-n -E 9") {
    const RunResult result =
        run_rlock(exec_args(redis, "busy", {"-n", "-E", "9"}, {test_child_bin(), "--ready", dir.file("ran")}));
    INFO(result.describe());
    CHECK(result.exit_code == 9);
  }
  SUBCASE("-w 200ms -E 9") {
    const RunResult result =
        run_rlock(exec_args(redis, "busy", {"-w", "200ms", "-E", "9"}, {test_child_bin(), "--ready", dir.file("ran")}));
    INFO(result.describe());
    CHECK(result.exit_code == 9);
  }
  CHECK_FALSE(file_exists(dir.file("ran")));
  CHECK(redis.command({"GET", lock_key("busy")}) == token);
}

TEST_CASE("a waiting exec runs the job as soon as the holder releases") {
  RedisServer redis;
  TempDir dir;
  const std::string token = acquire_lease(redis, "handoff", "30s");
  BackgroundProcess rlock(
      with_rlock(exec_args(redis, "handoff", {}, {test_child_bin(), "--ready", dir.file("ran"), "--exit", "5"})));
  REQUIRE(wait_until(
      [&] {
        return redis.command({"ZCARD", lock_key("handoff") + ":line"}) == "1" || !rlock.running();
      },
      10s));
  INFO("rlock stderr: ", rlock.err());
  CHECK_FALSE(file_exists(dir.file("ran")));
  REQUIRE(run_rlock(at(redis, {"release", "handoff", "--token", token})).exit_code == 0);
  CHECK(rlock.wait(10s) == 5);
  CHECK(file_exists(dir.file("ran")));
  CHECK_FALSE(key_exists(redis, lock_key("handoff")));
}

TEST_CASE("a job started on a hand-off has the fence the release reserved, and the lock is its own") {
  RedisServer redis;
  TempDir dir;
  const std::string holder_ready = dir.file("holder-ready");
  const std::string holder_env = dir.file("holder-env");
  PidFileReaper holder_reaper({dir.file("holder-pid")});
  BackgroundProcess holder(
      with_rlock(exec_args(redis, "relay", {},
                           {test_child_bin(), "--env-out", holder_env, "--pid-file", dir.file("holder-pid"), "--ready",
                            holder_ready, "--sleep", "forever"})));
  REQUIRE(wait_until([&] { return file_exists(holder_ready) || !holder.running(); }, 10s));
  INFO("holder stderr: ", holder.err());
  const std::string waiter_env = dir.file("waiter-env");
  const std::string waiter_ready = dir.file("waiter-ready");
  PidFileReaper reaper({dir.file("waiter-pid")});
  BackgroundProcess waiter(
      with_rlock(exec_args(redis, "relay", {"-v"},
                           {test_child_bin(), "--env-out", waiter_env, "--pid-file", dir.file("waiter-pid"), "--ready",
                            waiter_ready, "--sleep", "forever"})));
  REQUIRE(wait_until(
      [&] {
        return redis.command({"ZCARD", lock_key("relay") + ":line"}) == "1" || !waiter.running();
      },
      10s));
  INFO("waiter stderr: ", waiter.err());
  holder.signal(SIGTERM); // its job ends, and its release hands the lock to the waiter
  CHECK(holder.wait(10s) == 128 + SIGTERM);
  REQUIRE(wait_until([&] { return file_exists(waiter_ready) || !waiter.running(); }, 10s));
  REQUIRE(waiter.running());
  const std::string env = read_file(waiter_env);
  const auto fence = env_value(env, "RLOCK_FENCE");
  const auto previous = env_value(read_file(holder_env), "RLOCK_FENCE");
  REQUIRE(fence.has_value());
  REQUIRE(previous.has_value());
  CHECK(std::stoll(*fence) > std::stoll(*previous));
  CHECK(*fence == redis.command({"GET", fence_key("relay")}));
  CHECK(*fence == redis.command({"HGET", meta_key("relay"), meta_field("fence")}));
  CHECK(env_value(env, "RLOCK_TOKEN") == std::optional<std::string>(redis.command({"GET", lock_key("relay")})));
  // The claim was answered: the key holds the waiter's token with the full TTL, not the
  // hand-off value's 2 s.
  REQUIRE(wait_until([&] { return contains(waiter.err(), "handed over, claiming 'relay'"); }, 5s));
  CHECK(std::stoll(redis.command({"PTTL", lock_key("relay")})) > 20'000);
  waiter.signal(SIGTERM);
  CHECK(waiter.wait(10s) == 128 + SIGTERM);
  CHECK_FALSE(key_exists(redis, lock_key("relay")));
}

TEST_CASE("two waiting execs get the lock in arrival order") {
  RedisServer redis;
  TempDir dir;
  const std::string order = dir.file("order");
  const std::string waiters = lock_key("fifo") + ":line";
  const std::string token = acquire_lease(redis, "fifo", "30s");
  BackgroundOptions options;
  options.env = {"ORDER=" + order};
  BackgroundProcess first(with_rlock(at(redis, {"exec", "fifo", "-c", "echo A >> \"$ORDER\""})), options);
  REQUIRE(wait_until([&] { return redis.command({"ZCARD", waiters}) == "1" || !first.running(); }, 10s));
  BackgroundProcess second(with_rlock(at(redis, {"exec", "fifo", "-c", "echo B >> \"$ORDER\""})), options);
  REQUIRE(wait_until([&] { return redis.command({"ZCARD", waiters}) == "2" || !second.running(); }, 10s));
  INFO("A stderr: ", first.err(), "\nB stderr: ", second.err());
  REQUIRE(run_rlock(at(redis, {"release", "fifo", "--token", token})).exit_code == 0);
  CHECK(first.wait(10s) == 0);
  CHECK(second.wait(10s) == 0);
  CHECK(read_file(order) == "A\nB\n");
  CHECK_FALSE(key_exists(redis, lock_key("fifo")));
  CHECK(redis.command({"ZCARD", waiters}) == "0");
}

// The order of service is the order of arrival, kept however often the waiters re-check and
// re-enter their blocking calls meanwhile: here every waiter is made to re-check three times,
// last arrival first, before the release, and the holder's short lease has the first waiter
// re-check by itself at each of its ends too.
TEST_CASE("waiters are served in arrival order after any number of re-checks") {
  RedisServer redis;
  TempDir dir;
  const std::string order = dir.file("order");
  const std::string line = lock_key("fifo") + ":line";
  const std::string wake = lock_key("fifo") + ":wake:";
  BackgroundProcess holder(with_rlock(at(redis, {"exec", "fifo", "--ttl", "300ms", "--", "sleep", "30"})));
  REQUIRE(wait_until([&] { return key_exists(redis, lock_key("fifo")) || !holder.running(); }, 10s));
  BackgroundOptions options;
  options.env = {"ORDER=" + order};
  std::vector<std::unique_ptr<BackgroundProcess>> waiters;
  const std::vector<std::string> names{"A", "B", "C", "D", "E"};
  for (const std::string& name : names) {
    waiters.push_back(std::make_unique<BackgroundProcess>(
        with_rlock(at(redis, {"exec", "fifo", "-c", "echo " + name + " >> \"$ORDER\""})), options));
    const std::string count = std::to_string(waiters.size());
    REQUIRE(wait_until([&] { return redis.command({"ZCARD", line}) == count || !waiters.back()->running(); }, 10s));
  }
  const std::string arrival = redis.command({"ZRANGE", line, "0", "-1"});
  std::vector<std::string> tickets = split_lines(arrival);
  REQUIRE(tickets.size() == names.size());
  for (int round = 0; round < 3; ++round) {
    for (auto it = tickets.rbegin(); it != tickets.rend(); ++it) {
      REQUIRE(redis.command({"RPUSH", wake + *it, "recheck"}) == "1");
      // Popped: that waiter has re-checked and is blocked again, behind the ones after it.
      REQUIRE(wait_until([&] { return redis.command({"LLEN", wake + *it}) == "0"; }, 10s));
      std::this_thread::sleep_for(20ms);
    }
  }
  CHECK(redis.command({"ZRANGE", line, "0", "-1"}) == arrival);
  REQUIRE(holder.running());
  holder.signal(SIGTERM);
  CHECK(holder.wait(10s) == 128 + SIGTERM);
  for (auto& waiter : waiters) CHECK(waiter->wait(20s) == 0);
  CHECK(read_file(order) == "A\nB\nC\nD\nE\n");
  CHECK(redis.command({"ZCARD", line}) == "0");
}

} // namespace rlock::test
