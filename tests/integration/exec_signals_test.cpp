// SPDX-License-Identifier: MIT
// Black-box tests of signals and `rlock exec`: each forwarded signal reaches the job once; INT/TERM abort a wait.
#include "helpers.hpp"
#include "redis_server.hpp"
#include "run.hpp"

#include <doctest/doctest.h>

#include <sys/types.h>
#include <unistd.h>

#include <csignal>

namespace rlock::test {

namespace {

struct Forwarded {
  int signo;
  const char* name;
};

constexpr Forwarded k_forwarded[] = {
    {SIGINT, "INT"}, {SIGTERM, "TERM"}, {SIGHUP, "HUP"}, {SIGQUIT, "QUIT"}, {SIGUSR1, "USR1"}, {SIGUSR2, "USR2"},
};

// A signal other than `signo` among the forwarded ones, used to end the recorder.
const Forwarded& sentinel_for(int signo) { return signo == SIGUSR2 ? k_forwarded[4] : k_forwarded[5]; }

std::vector<std::string> recorder_command(const TempDir& dir, const std::string& sentinel, const std::string& die_of) {
  const std::string script = dir.file("recorder.py");
  if (!file_exists(script)) {
    write_file(script, k_signal_recorder);
  }
  return {k_python, script, dir.file("record"), dir.file("ready"), sentinel, die_of};
}

std::size_t line_count(const std::string& path) { return split_lines(try_read_file(path).value_or("")).size(); }

} // namespace

TEST_CASE("each forwarded signal sent to rlock reaches the job once; rlock exits with the job's status") {
  for (const auto& entry : k_forwarded) {
    INFO("signal ", std::string(entry.name));
    RedisServer redis;
    TempDir dir;
    BackgroundProcess rlock(exec_argv(redis, "sig", {},
                                      {test_child_bin(), "--record", dir.file("record"), "--ready", dir.file("ready"),
                                       "--exit-on-signal", "--sleep", "forever"}));
    REQUIRE(wait_until([&] { return file_exists(dir.file("ready")) || !rlock.running(); }, 10s));
    INFO("rlock stderr: ", rlock.err());
    INFO("rlock and its job: ", describe_process(rlock.pid()));
    REQUIRE(rlock.running());
    rlock.signal(entry.signo);
    CHECK(rlock.wait(10s) == 128 + entry.signo);
    CHECK(read_file(dir.file("record")) == std::string(entry.name) + "\n");
    CHECK_FALSE(key_exists(redis, lock_key("sig")));
  }
}

TEST_CASE("a signal to rlock's pid is delivered once to a job that survives it") {
  for (const auto& entry : k_forwarded) {
    INFO("signal ", std::string(entry.name));
    RedisServer redis;
    TempDir dir;
    const Forwarded& sentinel = sentinel_for(entry.signo);
    BackgroundProcess rlock(exec_argv(redis, "once", {}, recorder_command(dir, sentinel.name, entry.name)));
    REQUIRE(wait_until([&] { return file_exists(dir.file("ready")) || !rlock.running(); }, 10s));
    INFO("rlock stderr: ", rlock.err());
    INFO("rlock and its job: ", describe_process(rlock.pid()));
    REQUIRE(rlock.running());
    rlock.signal(entry.signo);
    REQUIRE(wait_until([&] { return line_count(dir.file("record")) >= 1 || !rlock.running(); }, 10s));
    // A duplicate would be delivered before the sentinel, which rlock forwards after it.
    CHECK(key_exists(redis, lock_key("once")));
    rlock.signal(sentinel.signo);
    CHECK(rlock.wait(10s) == 128 + entry.signo);
    CHECK(read_file(dir.file("record")) == std::string(entry.name) + "\n" + sentinel.name + "\n");
    CHECK_FALSE(key_exists(redis, lock_key("once")));
  }
}

TEST_CASE("a signal to rlock's process group (as a terminal sends it) reaches the job once") {
  // The job runs in a process group of its own, so the group signal reaches rlock alone and
  // rlock forwards it: one delivery, not two.
  for (const auto& entry : k_forwarded) {
    INFO("signal ", std::string(entry.name));
    RedisServer redis;
    TempDir dir;
    const Forwarded& sentinel = sentinel_for(entry.signo);
    BackgroundProcess rlock(exec_argv(redis, "group", {}, recorder_command(dir, sentinel.name, entry.name)));
    REQUIRE(wait_until([&] { return file_exists(dir.file("ready")) || !rlock.running(); }, 10s));
    INFO("rlock stderr: ", rlock.err());
    INFO("rlock and its job: ", describe_process(rlock.pid()));
    REQUIRE(rlock.running());
    rlock.signal_group(entry.signo);
    REQUIRE(wait_until([&] { return line_count(dir.file("record")) >= 1 || !rlock.running(); }, 10s));
    rlock.signal_group(sentinel.signo);
    CHECK(rlock.wait(10s) == 128 + entry.signo);
    CHECK(read_file(dir.file("record")) == std::string(entry.name) + "\n" + sentinel.name + "\n");
    CHECK_FALSE(key_exists(redis, lock_key("group")));
  }
}

TEST_CASE("a forwarded signal reaches the whole job: the children of a -c shell too") {
  RedisServer redis;
  TempDir dir;
  // The shell runs the recorder as a child (not exec'd: a command follows), so the recorder is
  // a grandchild of rlock, reached only through the job's process group.
  const std::string script = dir.file("recorder.py");
  write_file(script, k_signal_recorder);
  BackgroundOptions options;
  options.env = {"PY=" + std::string(k_python), "SCRIPT=" + script, "DIR=" + dir.path()};
  const std::string command =
      "trap '' USR1 USR2; \"$PY\" \"$SCRIPT\" \"$DIR/record\" \"$DIR/ready\" USR2 USR2; exit $?";
  BackgroundProcess rlock({rlock_bin(), "--url", redis.url(), "exec", "tree", "-c", command}, options);
  REQUIRE(wait_until([&] { return file_exists(dir.file("ready")) || !rlock.running(); }, 10s));
  INFO("rlock stderr: ", rlock.err());
  INFO("rlock and its job: ", describe_process(rlock.pid()));
  REQUIRE(rlock.running());
  rlock.signal(SIGUSR1);
  REQUIRE(wait_until([&] { return line_count(dir.file("record")) >= 1 || !rlock.running(); }, 10s));
  rlock.signal(SIGUSR2);
  CHECK(rlock.wait(10s) == 128 + SIGUSR2);
  CHECK(read_file(dir.file("record")) == "USR1\nUSR2\n");
}

TEST_CASE("INT or TERM while waiting for the lock exits promptly with 128+N, leaving no waiter and no lock") {
  for (const int signo : {SIGINT, SIGTERM}) {
    INFO("signal ", signo);
    RedisServer redis;
    TempDir dir;
    const std::string waiters = lock_key("wait") + ":line";
    const std::string token = acquire_lease(redis, "wait", "30s");
    BackgroundProcess rlock(exec_argv(redis, "wait", {}, {test_child_bin(), "--ready", dir.file("ran")}));
    REQUIRE(wait_until([&] { return redis.command({"ZCARD", waiters}) == "1" || !rlock.running(); }, 10s));
    INFO("rlock stderr: ", rlock.err());
    INFO("rlock and its job: ", describe_process(rlock.pid()));
    REQUIRE(rlock.running());
    rlock.signal(signo);
    // Promptly: a waiter that kept waiting would wait for the holder's 30 s lease at least, so
    // 15 s tells the two apart with room for a loaded machine.
    const auto code = rlock.try_wait(15s);
    REQUIRE(code.has_value());
    CHECK(*code == 128 + signo);
    CHECK_FALSE(file_exists(dir.file("ran")));
    CHECK(redis.command({"ZCARD", waiters}) == "0");
    CHECK(redis.command({"GET", lock_key("wait")}) == token);
    // When the holder lets go, nothing of the aborted waiter takes the lock.
    REQUIRE(run_rlock(at(redis, {"release", "wait", "--token", token})).exit_code == 0);
    CHECK_FALSE(key_exists(redis, lock_key("wait")));
    CHECK(run_rlock(at(redis, {"acquire", "wait", "--lease", "-n"})).exit_code == 0);
  }
}

TEST_CASE("INT to the process group of a waiting exec (Ctrl-C at a terminal) aborts it the same way") {
  RedisServer redis;
  const std::string waiters = lock_key("wait") + ":line";
  const std::string token = acquire_lease(redis, "wait", "30s");
  BackgroundProcess rlock(exec_argv(redis, "wait", {}, {test_child_bin()}));
  REQUIRE(wait_until([&] { return redis.command({"ZCARD", waiters}) == "1" || !rlock.running(); }, 10s));
  INFO("rlock stderr: ", rlock.err());
  rlock.signal_group(SIGINT);
  const auto code = rlock.try_wait(15s); // the holder's lease runs 30 s, as above
  REQUIRE(code.has_value());
  CHECK(*code == 128 + SIGINT);
  CHECK(redis.command({"ZCARD", waiters}) == "0");
  CHECK(redis.command({"GET", lock_key("wait")}) == token);
}

} // namespace rlock::test
