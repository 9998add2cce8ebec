// SPDX-License-Identifier: MIT
// Tests for the exec loop: forwarding signals, deadlines from the hook, stopping the job.
#include "process/supervisor.hpp"

#include "helpers.hpp"
#include "process/owner.hpp"

#include <doctest/doctest.h>
#include <unistd.h>

using namespace rlock::process;
using namespace std::chrono_literals;
using rlock::process::test::command;
using rlock::process::test::eventually;
using rlock::process::test::has_line;
using rlock::process::test::TempDir;
using Clock = std::chrono::steady_clock;

namespace {

// A job running `script` with $0 set to a file it writes "ready" (or a pid) to once set up.
Child spawn_job(const SignalBlock& block, const std::string& script, const std::string& report) {
  SpawnOptions options = command({"/bin/sh", "-c", script, report});
  options.signal_mask = block.original_mask();
  return spawn(options);
}

std::string wait_for_line(const std::string& path) {
  std::string line;
  REQUIRE(eventually([&] { return has_line(path, line); }));
  return line;
}

// A hook that waits for the job to be ready on its first call, then runs `first`, and keeps
// the lease "renewed" far into the future.
SupervisorHooks far_deadlines(const std::string& report, std::function<void()> first = {}) {
  auto called = std::make_shared<bool>(false);
  return SupervisorHooks{[=]() -> DeadlineOrStop {
    if (!*called) {
      *called = true;
      wait_for_line(report);
      if (first) first();
    }
    return Clock::now() + 1h;
  }};
}

} // namespace

TEST_CASE("supervise returns the job's status when it ends by itself") {
  SignalBlock block;
  SignalFd signals(block.signals());
  TempDir dir;
  std::string report = dir.file("ready");
  Child child = spawn_job(block, "echo ready > \"$0\"; exit 3", report);
  SupervisorHooks hooks = far_deadlines(report);
  SupervisorResult result = supervise(child, signals, hooks);
  CHECK(result.job == ExitStatus{false, 3});
  CHECK_FALSE(result.stopped_by.has_value());
  CHECK_FALSE(result.killed);
  CHECK(result.exit_code() == 3);
}

TEST_CASE("a signal rlock receives is forwarded to the job") {
  SignalBlock block;
  SignalFd signals(block.signals());
  TempDir dir;
  std::string report = dir.file("ready");
  Child child = spawn_job(block,
                          "trap 'exit 7' USR1; echo ready > \"$0\"; "
                          "while :; do sleep 0.05; done",
                          report);
  SupervisorHooks hooks = far_deadlines(report, [] { kill(getpid(), SIGUSR1); });
  SupervisorResult result = supervise(child, signals, hooks);
  CHECK(result.job == ExitStatus{false, 7});
  CHECK(result.exit_code() == 7);
  CHECK_FALSE(result.stopped_by.has_value());
}

TEST_CASE("a forwarded signal reaches the whole process group") {
  SignalBlock block;
  SignalFd signals(block.signals());
  TempDir dir;
  std::string report = dir.file("background-pid");
  // The background sleep reports its pid; both the shell and the sleep must get the TERM.
  Child child = spawn_job(block, "sleep 30 & echo $! > \"$0\"; wait", report);
  pid_t background = -1;
  SupervisorHooks hooks = far_deadlines(report, [&] {
    background = std::stoi(wait_for_line(report));
    kill(getpid(), SIGTERM);
  });
  SupervisorResult result = supervise(child, signals, hooks);
  CHECK(result.job == ExitStatus{true, SIGTERM});
  CHECK(result.exit_code() == 143);
  REQUIRE(background > 0);
  CHECK(eventually([&] { return !process_alive(background); }));
}

TEST_CASE("the hook is called at each deadline it returns until it asks for a stop") {
  SignalBlock block;
  SignalFd signals(block.signals());
  Child child = spawn(command({"sleep", "30"}, block.original_mask()));
  int calls = 0;
  SupervisorHooks hooks{[&]() -> DeadlineOrStop {
    if (++calls < 5) return Clock::now() + 5ms;
    return StopRequest{SIGTERM, 10s, 124, "max hold"};
  }};
  const auto start = Clock::now();
  SupervisorResult result = supervise(child, signals, hooks);
  CHECK(calls == 5);
  REQUIRE(result.stopped_by.has_value());
  CHECK(result.stopped_by->reason == "max hold");
  CHECK(result.job == ExitStatus{true, SIGTERM});
  CHECK_FALSE(result.killed);
  CHECK(result.exit_code() == 124);
  CHECK(Clock::now() - start < 8s); // well within the grace: it did not wait for it
}

TEST_CASE("a StopRequest escalates to SIGKILL when the job ignores the signal") {
  SignalBlock block;
  SignalFd signals(block.signals());
  TempDir dir;
  std::string report = dir.file("ready");
  Child child = spawn_job(block, "trap '' TERM; echo ready > \"$0\"; while :; do sleep 0.05; done", report);
  bool asked = false;
  SupervisorHooks hooks{[&]() -> DeadlineOrStop {
    REQUIRE_FALSE(asked);
    asked = true;
    wait_for_line(report);
    return StopRequest{SIGTERM, 200ms, 76, "lock lost"};
  }};
  const auto start = Clock::now();
  SupervisorResult result = supervise(child, signals, hooks);
  const auto elapsed = Clock::now() - start;
  CHECK(result.job == ExitStatus{true, SIGKILL});
  CHECK(result.killed);
  CHECK(result.exit_code() == 76);
  CHECK(elapsed >= 200ms);
  CHECK(elapsed < 10s);
}

TEST_CASE("a stop outlasts the direct child: what it leaves in its group is killed too") {
  SignalBlock block;
  SignalFd signals(block.signals());
  TempDir dir;
  std::string report = dir.file("leftover-pid");
  // The shell dies of TERM at once; the subshell it left in the background ignores TERM.
  Child child = spawn_job(block,
                          "(trap '' TERM; while :; do sleep 0.05; done) & "
                          "echo $! > \"$0\"; wait",
                          report);
  pid_t leftover = -1;
  SupervisorHooks hooks{[&]() -> DeadlineOrStop {
    leftover = std::stoi(wait_for_line(report));
    return StopRequest{SIGTERM, 300ms, 76, "lock lost"};
  }};
  SupervisorResult result = supervise(child, signals, hooks);
  CHECK(result.job == ExitStatus{true, SIGTERM});
  CHECK(result.killed);
  CHECK(result.exit_code() == 76);
  REQUIRE(leftover > 0);
  CHECK(eventually([&] { return !process_alive(leftover); }));
}

TEST_CASE("signals that arrive while stopping are still forwarded") {
  SignalBlock block;
  SignalFd signals(block.signals());
  TempDir dir;
  std::string report = dir.file("ready");
  Child child = spawn_job(block,
                          "trap '' TERM; trap 'exit 9' INT; echo ready > \"$0\"; "
                          "while :; do sleep 0.05; done",
                          report);
  SupervisorHooks hooks{[&]() -> DeadlineOrStop {
    wait_for_line(report);
    kill(getpid(), SIGINT); // read by the loop after the stop has begun
    return StopRequest{SIGTERM, 30s, 76, "lock lost"};
  }};
  SupervisorResult result = supervise(child, signals, hooks);
  CHECK(result.job == ExitStatus{false, 9});
  CHECK_FALSE(result.killed);
  CHECK(result.exit_code() == 76);
}

TEST_CASE("an exception from the hook leaves the job to the Child, which kills it") {
  SignalBlock block;
  SignalFd signals(block.signals());
  pid_t pid = -1;
  {
    Child child = spawn(command({"sleep", "30"}, block.original_mask()));
    pid = child.pid();
    SupervisorHooks hooks{[]() -> DeadlineOrStop { throw std::runtime_error("redis exploded"); }};
    CHECK_THROWS_WITH(supervise(child, signals, hooks), "redis exploded");
    CHECK(process_alive(pid));
  }
  errno = 0;
  CHECK(kill(pid, 0) == -1);
  CHECK(errno == ESRCH);
}
