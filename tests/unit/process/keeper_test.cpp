// SPDX-License-Identifier: MIT
// Tests for the keeper: becoming one, and its loop over signals, the owner and the hook's deadlines.
#include "process/keeper.hpp"

#include "helpers.hpp"

#include <climits>
#include <doctest/doctest.h>
#include <filesystem>
#include <sys/wait.h>
#include <unistd.h>

using namespace rlock::process;
using namespace std::chrono_literals;
using rlock::process::test::command;
using rlock::process::test::eventually;
using Clock = std::chrono::steady_clock;

namespace {

// A hook that counts its calls in `calls` and asks for the next one `step` later, until its
// call number `last` (then: nothing left to keep).
KeeperHooks counting(int& calls, int last = INT_MAX, Clock::duration step = 1h) {
  KeeperHooks hooks;
  hooks.on_deadline = [&calls, last, step]() -> std::optional<Clock::time_point> {
    if (++calls >= last) return std::nullopt;
    return Clock::now() + step;
  };
  return hooks;
}

// The signals a keeper reads, blocked, and a handle on this process as an owner that lives.
struct KeeperOfSelf {
  SignalBlock block;
  SignalFd signals{block.signals()};
  std::optional<ProcessHandle> self = ProcessHandle::open(getpid());
};

} // namespace

TEST_CASE("keep returns when the owner exits") {
  SignalBlock block;
  SignalFd signals(block.signals());
  Child owner = spawn(command({"sleep", "30"}));
  std::optional<ProcessHandle> handle = ProcessHandle::open(owner.pid());
  REQUIRE(handle);
  int calls = 0;
  KeeperHooks hooks = counting(calls);
  auto first = hooks.on_deadline;
  hooks.on_deadline = [&]() {
    if (calls == 0) {
      REQUIRE(owner.signal(SIGKILL));
      owner.wait();
    }
    return first();
  };
  CHECK(keep(*handle, signals, hooks) == KeeperEnd::owner_exited);
  CHECK(calls == 1); // called at once, then never again
}

TEST_CASE("keep calls the hook at each deadline and ends when it has nothing to keep") {
  KeeperOfSelf keeper;
  REQUIRE(keeper.self);
  int calls = 0;
  KeeperHooks hooks = counting(calls, 3, 1ms);
  CHECK(keep(*keeper.self, keeper.signals, hooks) == KeeperEnd::nothing_to_keep);
  CHECK(calls == 3);
}

TEST_CASE("keep stops for the signals is_stop accepts, never for SIGCHLD") {
  KeeperOfSelf keeper;
  REQUIRE(keeper.self);
  int calls = 0;
  KeeperHooks hooks = counting(calls, 2);
  std::vector<int> asked;
  hooks.is_stop = [&asked](const signalfd_siginfo& info) {
    asked.push_back(static_cast<int>(info.ssi_signo));
    return info.ssi_signo == SIGTERM;
  };

  SUBCASE("a stop signal") {
    REQUIRE(kill(getpid(), SIGCHLD) == 0);
    REQUIRE(kill(getpid(), SIGTERM) == 0);
    CHECK(keep(*keeper.self, keeper.signals, hooks) == KeeperEnd::stop_requested);
    CHECK(asked == std::vector<int>{SIGTERM});
    CHECK(calls == 0); // a stop that came first is seen before any renewal
  }
  SUBCASE("a signal that is not for it") {
    REQUIRE(kill(getpid(), SIGUSR1) == 0);
    // Woken by it, the keeper carries on: the hook is asked once more, at its deadline.
    hooks.on_deadline = counting(calls, 2, 1ms).on_deadline;
    CHECK(keep(*keeper.self, keeper.signals, hooks) == KeeperEnd::nothing_to_keep);
    CHECK(asked == std::vector<int>{SIGUSR1});
  }
}

TEST_CASE("become_keeper: own session, cwd /, stdio on /dev/null, named rlock-keeper") {
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    become_keeper();
    pause();
    _exit(0);
  }
  const std::string proc = "/proc/" + std::to_string(pid);
  auto link = [&proc](const std::string& entry) {
    std::error_code error;
    return std::filesystem::read_symlink(proc + entry, error);
  };
  // stderr is the last thing become_keeper sets.
  REQUIRE(eventually([&] { return link("/fd/2") == "/dev/null"; }));
  CHECK(is_keeper(pid));
  CHECK(getsid(pid) == pid);
  CHECK(link("/cwd") == "/");
  CHECK(link("/fd/0") == "/dev/null");
  CHECK(link("/fd/1") == "/dev/null");
  CHECK_FALSE(is_keeper(getpid()));
  REQUIRE(kill(pid, SIGKILL) == 0);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK_FALSE(is_keeper(pid));
}
