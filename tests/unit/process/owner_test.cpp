// SPDX-License-Identifier: MIT
// Tests for owner lookup, pidfds and liveness.
#include "process/owner.hpp"

#include "helpers.hpp"
#include "process/child.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace rlock::process;
using rlock::process::test::command;
using rlock::process::test::eventually;
using rlock::process::test::has_line;
using rlock::process::test::TempDir;

namespace {

bool readable(const rlock::Fd& fd) {
  pollfd entry{fd.get(), POLLIN, 0};
  return poll(&entry, 1, 0) == 1 && (entry.revents & POLLIN) != 0;
}

} // namespace

TEST_CASE("find_script_owner walks up past forked copies of a script") {
  TempDir dir;
  std::string report = dir.file("subshell-pid");
  // The script (sh -c …) forks a copy of itself for $(…); the inner sh reports that copy's pid
  // (its parent) and becomes a sleep: script → subshell copy → sleep.
  Child script =
      spawn(command({"/bin/sh", "-c", "x=$(/bin/sh -c 'echo $PPID > \"$0\"; exec sleep 30' \"$0\"; true)", report}));
  std::string line;
  REQUIRE(eventually([&] { return has_line(report, line); }));
  const pid_t subshell = std::stoi(line);
  REQUIRE(subshell != script.pid());
  CHECK(parent_of(subshell) == script.pid());

  CHECK(find_script_owner(subshell) == script.pid());
  CHECK(find_script_owner(script.pid()) == script.pid()); // its parent is this test, no copy
  CHECK(find_script_owner(getpid()) == getpid());
  CHECK(find_script_owner(999'999'999) == 999'999'999); // gone: nothing to walk
}

TEST_CASE("process_alive and open_pidfd follow a process to its end") {
  CHECK(process_alive(getpid()));
  CHECK_FALSE(process_alive(0));
  CHECK_FALSE(process_alive(-1));

  Child child = spawn(command({"sleep", "30"}));
  rlock::Fd pidfd = open_pidfd(child.pid());
  REQUIRE(pidfd); // Linux ≥ 5.3
  CHECK((fcntl(pidfd.get(), F_GETFD) & FD_CLOEXEC) != 0);
  CHECK(process_alive(child.pid()));
  CHECK_FALSE(readable(pidfd));

  REQUIRE(child.signal(SIGKILL));
  // Exited but not yet reaped: a zombie is dead to both.
  siginfo_t info{};
  REQUIRE(waitid(P_PID, static_cast<id_t>(child.pid()), &info, WEXITED | WNOWAIT) == 0);
  CHECK_FALSE(process_alive(child.pid()));
  pollfd entry{pidfd.get(), POLLIN, 0};
  CHECK(poll(&entry, 1, 10'000) == 1);

  const pid_t pid = child.pid();
  child.wait();
  CHECK_FALSE(process_alive(pid));
  CHECK_FALSE(open_pidfd(pid)); // gone: the caller falls back to process_alive()
}
