// SPDX-License-Identifier: MIT
// Issue 11's classes, black-box: empty values, special files, argument edges, a token nobody
// received, a closed stdout, pids that may have been reused, zombies and stopped jobs, the
// keeper's descriptors, and a lock waited for by the process that holds it.
#include "helpers.hpp"
#include "redis_server.hpp"
#include "run.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace rlock::test {

namespace {

// `args` run by rlock with its stdout closed (`>&-`).
std::vector<std::string> with_stdout_closed(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/bin/sh", "-c", "exec \"$0\" \"$@\" >&-", rlock_bin()};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

// The children of `pid`, zombies included, from /proc/*/stat.
int children_of(pid_t pid) {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::optional<std::string> stat;
    try {
      stat = try_read_file(entry.path().string() + "/stat");
    } catch (const SupportError&) {
      continue; // gone meanwhile
    }
    if (!stat) continue;
    auto close = stat->rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream fields(stat->substr(close + 2));
    std::string state;
    pid_t parent = 0;
    fields >> state >> parent;
    if (parent == pid) ++count;
  }
  return count;
}

} // namespace

TEST_CASE("an explicitly empty value is an error, never the default") {
  RedisServer redis;
  TempDir dir;
  struct Case {
    const char* label;
    std::vector<std::string> args;
    std::vector<std::string> env;
    int code;
  };
  const std::string url = redis.url();
  const std::vector<Case> cases = {
      {"--url", {"--url", "", "status"}, {}, 64},
      {"--url before exec", {"--url", "", "exec", "x", "--", "true"}, {}, 64},
      {"RLOCK_URL", {"status"}, {"RLOCK_URL="}, 78},
      {"REDIS_URL", {"status"}, {"REDIS_URL="}, 78},
      {"--prefix", {"--url", url, "--prefix", "", "acquire", "x", "--lease"}, {}, 64},
      {"RLOCK_PREFIX", {"--url", url, "acquire", "x", "--lease"}, {"RLOCK_PREFIX="}, 78},
      {"RLOCK_PASSWORD_FILE", {"--url", url, "status"}, {"RLOCK_PASSWORD_FILE="}, 78},
      {"--password", {"--url", url, "--password", "", "status"}, {}, 64},
      {"--password-file", {"--url", url, "--password-file", "", "status"}, {}, 64},
      {"--token", {"--url", url, "release", "x", "--token", ""}, {}, 64},
      {"--token-file", {"--url", url, "release", "x", "--token-file", ""}, {}, 64},
      {"RLOCK_TOKEN", {"--url", url, "renew", "x"}, {"RLOCK_TOKEN="}, 64},
      {"acquire --token-file", {"--url", url, "acquire", "x", "--lease", "--token-file", ""}, {}, 64},
      {"exec -c", {"--url", url, "exec", "x", "-c", ""}, {}, 64},
      {"--wait", {"--url", url, "exec", "x", "--wait", "", "--", "true"}, {}, 64},
  };
  for (const auto& item : cases) {
    CAPTURE(item.label);
    RunOptions options;
    options.env = item.env;
    RunResult result = run_rlock(item.args, options);
    INFO(result.describe());
    CHECK(result.exit_code == item.code);
    check_error_line(result);
    CHECK(contains(result.err, "empty"));
  }
  CHECK_FALSE(key_exists(redis, lock_key("x")));
  CHECK_FALSE(key_exists(redis, lock_key("x", "")));
}

TEST_CASE("files rlock reads must be regular files: a FIFO, a directory or a device never blocks") {
  RedisServer redis;
  TempDir dir;
  const std::string fifo = dir.file("fifo");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  RunOptions options;
  options.timeout = 10s; // a read that blocks fails the test as a SupportError
  for (const std::string& path : {fifo, dir.path(), std::string("/dev/zero"), std::string("/dev/tty")}) {
    CAPTURE(path);
    for (const std::vector<std::string>& args : {std::vector<std::string>{"release", "x", "--token-file", path},
                                                 std::vector<std::string>{"renew", "x", "--token-file", path},
                                                 std::vector<std::string>{"--password-file", path, "status"}}) {
      RunResult result = run_rlock(at(redis, args), options);
      INFO(result.describe());
      CHECK(result.exit_code == 78);
      check_error_line(result);
      CHECK(contains(result.err, path));
    }
  }
}

TEST_CASE("user input is answered with a usage error, never 70") {
  RedisServer redis;
  BackgroundProcess owner({"sleep", "30"});
  for (const std::vector<std::string>& args : {
           std::vector<std::string>{"status", "--", "-x"},
           std::vector<std::string>{"status", "x", "--", "true"},
           std::vector<std::string>{"release", "x", "--", "true"},
           std::vector<std::string>{"acquire", "x", "--owner-pid", "0"},
           std::vector<std::string>{"acquire", "x", "--owner-pid", "-3"},
           std::vector<std::string>{"acquire", "x", "--owner-pid", "99999999999"},
           std::vector<std::string>{"acquire", "x", "--owner-pid", "12abc"},
           std::vector<std::string>{"acquire", "x", "--lease", "--owner-pid", "0"},
           std::vector<std::string>{"acquire", "x", "-E", "256"},
           std::vector<std::string>{"exec", "x", "--lost-signal", "NOPE", "--", "true"},
           std::vector<std::string>{"exec", "x", "--grace", "-1s", "--", "true"},
       }) {
    CAPTURE(args);
    RunResult result = run_rlock(at(redis, args));
    INFO(result.describe());
    CHECK(result.exit_code == 64);
    check_error_line(result);
  }
  CHECK_FALSE(key_exists(redis, lock_key("x")));
}

TEST_CASE("a token that cannot be delivered gives the lock back and says so") {
  RedisServer redis;
  TempDir dir;
  BackgroundProcess owner({"sleep", "30"});
  const std::string owner_pid = std::to_string(owner.pid());
  for (const std::vector<std::string>& args : {
           std::vector<std::string>{"acquire", "x", "--lease"},
           std::vector<std::string>{"acquire", "x", "--lease", "--export"},
           std::vector<std::string>{"acquire", "x", "--owner-pid", owner_pid},
       }) {
    CAPTURE(args);
    RunResult result = run_program(with_stdout_closed(at(redis, args)));
    INFO(result.describe());
    CHECK(result.exit_code == 71);
    check_error_line(result);
    CHECK(contains(result.err, "stdout"));
    CHECK(wait_until([&] { return !key_exists(redis, lock_key("x")); }, 10s)); // the keeper's release may lag
  }
  // A token file that cannot be written: 78, and no lock left.
  for (const std::vector<std::string>& args : {
           std::vector<std::string>{"acquire", "x", "--lease", "--token-file", dir.file("missing/dir/t")},
           std::vector<std::string>{"acquire", "x", "--owner-pid", owner_pid, "--token-file", dir.file("no/t")},
       }) {
    CAPTURE(args);
    RunResult result = run_rlock(at(redis, args));
    INFO(result.describe());
    CHECK(result.exit_code == 78);
    check_error_line(result);
    CHECK_FALSE(key_exists(redis, lock_key("x")));
  }
  // With a token file, a closed stdout is fine: the token is in the file.
  RunResult filed =
      run_program(with_stdout_closed(at(redis, {"acquire", "x", "--lease", "--token-file", dir.file("t")})));
  INFO(filed.describe());
  CHECK(filed.exit_code == 0);
  CHECK(redis.command({"GET", lock_key("x")}) == trim(read_file(dir.file("t"))));
}

TEST_CASE("a closed stdout ends status quietly, with the usual exit status and the lock untouched") {
  RedisServer redis;
  const std::string token = acquire_lease(redis, "held");
  // The reader is gone before rlock writes: EPIPE for certain.
  const char* script = "import os, subprocess, sys\n"
                       "r, w = os.pipe()\n"
                       "os.close(r)\n"
                       "p = subprocess.run(sys.argv[1:], stdout=w, stderr=subprocess.PIPE)\n"
                       "sys.stdout.write('%d\\n%s' % (p.returncode, p.stderr.decode()))\n";
  struct Case {
    std::vector<std::string> args;
    int code;
  };
  for (const Case& item :
       {Case{{"status"}, 0}, Case{{"status", "held"}, 0}, Case{{"status", "--json"}, 0}, Case{{"status", "free"}, 1}}) {
    CAPTURE(item.args);
    std::vector<std::string> argv = {rlock_bin()};
    for (const auto& arg : at(redis, item.args)) argv.push_back(arg);
    RunResult result = run_python(script, argv);
    INFO(result.describe());
    CHECK(trim(result.out) == std::to_string(item.code)); // and nothing on stderr
  }
  CHECK(redis.command({"GET", lock_key("held")}) == token);
}

TEST_CASE("a keeper is stopped by its lock's token, not by a pid that now names another keeper") {
  RedisServer redis;
  BackgroundProcess owner_a({"sleep", "30"});
  BackgroundProcess owner_b({"sleep", "30"});
  auto take = [&](const std::string& name, pid_t owner) {
    RunResult taken = run_rlock(at(redis, {"acquire", name, "--ttl", "600ms", "--owner-pid", std::to_string(owner)}));
    REQUIRE_MESSAGE(taken.exit_code == 0, taken.describe());
    return trim(taken.out);
  };
  const std::string token_a = take("a", owner_a.pid());
  const std::string token_b = take("b", owner_b.pid());
  const std::string keeper_b = trim(redis.command({"HGET", meta_key("b"), meta_field("keeper_pid")}));
  REQUIRE_FALSE(keeper_b.empty());
  // As if a's keeper had died and its pid gone to b's keeper.
  redis.command({"HSET", meta_key("a"), meta_field("keeper_pid"), keeper_b});
  RunResult released = run_rlock(at(redis, {"-v", "release", "a", "--token", token_a}));
  INFO(released.describe());
  CHECK(released.exit_code == 0);
  // b's keeper read that signal before its next renewal: a renewal after it shows it went on.
  long long lowest = pttl(redis, lock_key("b"));
  CHECK(wait_until(
      [&] {
        long long now = pttl(redis, lock_key("b"));
        if (now > lowest + 100) return true;
        lowest = std::min(lowest, now);
        return false;
      },
      10s));
  CHECK(redis.command({"GET", lock_key("b")}) == token_b);
  CHECK_FALSE(process_gone(static_cast<pid_t>(std::stol(keeper_b))));
  // Its own release stops it.
  CHECK(run_rlock(at(redis, {"release", "b", "--token", token_b})).exit_code == 0);
  CHECK(wait_until([&] { return process_gone(static_cast<pid_t>(std::stol(keeper_b))); }, 10s));
}

TEST_CASE("an acquire whose owner exits while it waits gives up, and takes nothing") {
  RedisServer redis;
  const std::string holder = acquire_lease(redis, "busy");
  BackgroundProcess owner({"sleep", "30"});
  BackgroundProcess waiter(with_rlock(at(redis, {"acquire", "busy", "--owner-pid", std::to_string(owner.pid())})));
  REQUIRE(wait_until([&] { return redis.command({"ZCARD", "rlock:{busy}:line"}) == "1"; }, 10s));
  owner.kill();
  CHECK(waiter.wait(10s) == 75);
  CHECK(contains(waiter.err(), "exited"));
  CHECK(redis.command({"ZCARD", "rlock:{busy}:line"}) == "0");
  CHECK(run_rlock(at(redis, {"release", "busy", "--token", holder})).exit_code == 0);
  CHECK_FALSE(key_exists(redis, lock_key("busy")));
}

TEST_CASE("exec reaps the orphans its job leaves, and wakes a stopped job to stop it") {
  RedisServer redis;
  TempDir dir;
  const std::string ready = dir.file("ready");
  // Twenty background processes whose parent exits at once: orphans, reparented to rlock.
  BackgroundProcess job(
      exec_argv(redis, "orphans", {},
                {"/bin/sh", "-c",
                 "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do /bin/sh -c 'true &'; done; "
                 "echo > \"$0\"; exec sleep 30",
                 ready}));
  REQUIRE(wait_until([&] { return file_exists(ready); }, 10s));
  CHECK(wait_until([&] { return children_of(job.pid()) == 1; }, 10s)); // the job only, no zombie
  job.kill();

  // A job stopped by SIGSTOP gets SIGCONT after the stop signal: its TERM handler runs.
  const std::string handled = dir.file("handled");
  RunOptions options;
  options.timeout = 20s; // without SIGCONT it would sit out the 60s grace
  RunResult stopped = run_rlock(
      exec_args(redis, "stopped", {"--max-hold", "300ms", "--grace", "60s"},
                {"/bin/sh", "-c", "trap 'echo term > \"$0\"; exit 7' TERM; kill -STOP $$; sleep 30", handled}),
      options);
  INFO(stopped.describe());
  CHECK(stopped.exit_code == 124);
  CHECK(file_exists(handled));
}

TEST_CASE("the keeper holds none of the caller's descriptors") {
  RedisServer redis;
  BackgroundProcess owner({"sleep", "30"});
  // The caller passes a pipe's write end (fd 5, inherited, not close-on-exec) and then waits
  // for EOF on it, as $(...) or a CI log reader would.
  const char* script = "import os, select, subprocess, sys\n"
                       "r, w = os.pipe()\n"
                       "os.dup2(w, 5)\n"
                       "os.close(w)\n"
                       "p = subprocess.run(sys.argv[1:], pass_fds=(5,), stdout=subprocess.DEVNULL)\n"
                       "os.close(5)\n"
                       "ready, _, _ = select.select([r], [], [], 10)\n"
                       "print(p.returncode, 'eof' if ready and os.read(r, 1) == b'' else 'held')\n";
  std::vector<std::string> argv = {rlock_bin()};
  for (const auto& arg : at(redis, {"acquire", "fds", "--owner-pid", std::to_string(owner.pid())})) argv.push_back(arg);
  RunResult result = run_python(script, argv);
  INFO(result.describe());
  CHECK(trim(result.out) == "0 eof");
  CHECK(key_exists(redis, lock_key("fds"))); // and the keeper holds the lock all the same
  owner.kill();
  CHECK(wait_until([&] { return !key_exists(redis, lock_key("fds")); }, 10s));
}

TEST_CASE("waiting for a lock held by one's own ancestor says so instead of waiting forever") {
  RedisServer redis;
  RunOptions options;
  options.env = {"RLOCK_URL=" + redis.url()};
  options.timeout = 20s;
  // exec inside exec of the same lock.
  RunResult nested = run_rlock({"exec", "n", "--", rlock_bin(), "exec", "n", "-w", "60s", "--", "true"}, options);
  INFO(nested.describe());
  CHECK(nested.exit_code == 75);
  CHECK(contains(nested.err, "runs under"));
  CHECK(contains(nested.err, "RLOCK_TOKEN"));
  // A script that takes its own keeper-held lock twice.
  RunResult twice =
      run_program({"/bin/sh", "-c", "\"$0\" acquire k >/dev/null && \"$0\" acquire k -w 60s", rlock_bin()}, options);
  INFO(twice.describe());
  CHECK(twice.exit_code == 75);
  CHECK(contains(twice.err, "runs under"));
  CHECK(wait_until([&] { return !key_exists(redis, lock_key("k")); }, 10s));
  // A bare lease ends with its TTL: waiting for it is no mistake.
  RunResult lease =
      run_program({"/bin/sh", "-c",
                   "\"$0\" acquire l --lease --ttl 300ms >/dev/null && \"$0\" acquire l --lease -w 10s", rlock_bin()},
                  options);
  INFO(lease.describe());
  CHECK(lease.exit_code == 0);
}

} // namespace rlock::test
