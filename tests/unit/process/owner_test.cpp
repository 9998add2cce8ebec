// SPDX-License-Identifier: MIT
// Tests for owner lookup, pidfds and liveness.
#include "process/owner.hpp"

#include "helpers.hpp"
#include "process/child.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
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

TEST_CASE("a ProcessHandle knows its process by more than the pid, and signals only it") {
  CHECK_FALSE(ProcessHandle::open(0));
  CHECK_FALSE(ProcessHandle::open(999'999'999));
  auto self = ProcessHandle::open(getpid());
  REQUIRE(self);
  CHECK(self->alive());
  CHECK(start_time_of(getpid()) == self->start_time());

  // The child records the payload of the signal it gets.
  TempDir dir;
  const std::string record = dir.file("record");
  Child child = spawn(command({"/usr/bin/python3", "-c",
                               "import signal, sys\n"
                               "signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])\n"
                               "open(sys.argv[2], 'w').close()\n"
                               "info = signal.sigwaitinfo([signal.SIGUSR1])\n"
                               "open(sys.argv[1], 'w').write('%d %d' % (info.si_code, info.si_status))\n",
                               record, dir.file("ready")}));
  auto handle = ProcessHandle::open(child.pid());
  REQUIRE(handle);
  CHECK(handle->start_time() >= self->start_time());
  REQUIRE(eventually([&] { return std::filesystem::exists(dir.file("ready")); }));
  CHECK(handle->send_signal(SIGUSR1, 42));
  REQUIRE(child.wait() == ExitStatus{false, 0});
  std::ifstream recorded(record);
  std::string text((std::istreambuf_iterator<char>(recorded)), std::istreambuf_iterator<char>());
  CHECK(text == std::to_string(SI_QUEUE) + " 42");
  // Gone (and reaped): the handle says so, and sends nothing to whoever gets the pid next.
  CHECK_FALSE(handle->alive());
  CHECK_FALSE(handle->send_signal(SIGUSR1, 1));
}

TEST_CASE("command_line_of, name_of, is_ancestor and runs_this_program read /proc") {
  // A shell that stays (sleep itself would refuse the empty argument and exit at once), with
  // an empty argument and one with a space as $0 and $1.
  const std::vector<std::string> argv{"/bin/sh", "-c", "sleep 30; true", "", "a b"};
  Child child = spawn(command(argv));
  CHECK(eventually([&] { return command_line_of(child.pid()).size() == argv.size(); }));
  CHECK(command_line_of(child.pid()) == argv);
  CHECK(name_of(child.pid()) == "sh");
  CHECK(command_line_of(999'999'999).empty());
  CHECK_FALSE(name_of(999'999'999));
  CHECK(is_ancestor(getppid()));
  // Past the parent: the walk compares start times on the way and must not stop early.
  if (auto grandparent = parent_of(getppid()); grandparent && *grandparent > 1) CHECK(is_ancestor(*grandparent));
  CHECK_FALSE(is_ancestor(getpid()));
  CHECK_FALSE(is_ancestor(child.pid()));
  CHECK_FALSE(is_ancestor(1));
  CHECK(runs_this_program(getpid()));
  CHECK_FALSE(runs_this_program(child.pid()));
  child.signal(SIGKILL);
  child.wait();
}

TEST_CASE("user_name: $USER, else $LOGNAME, else the uid's name") {
  const char* saved_user = getenv("USER");
  const char* saved_logname = getenv("LOGNAME");
  const std::string user = saved_user != nullptr ? saved_user : "";
  const std::string logname = saved_logname != nullptr ? saved_logname : "";
  setenv("USER", "alice", 1);
  setenv("LOGNAME", "bob", 1);
  CHECK(user_name() == "alice");
  setenv("USER", "", 1);
  CHECK(user_name() == "bob");
  unsetenv("USER");
  unsetenv("LOGNAME");
  const passwd* entry = getpwuid(geteuid());
  CHECK(user_name() == (entry != nullptr ? std::string(entry->pw_name) : std::to_string(geteuid())));
  if (saved_user != nullptr) setenv("USER", user.c_str(), 1);
  if (saved_logname != nullptr) setenv("LOGNAME", logname.c_str(), 1);
  CHECK_FALSE(host_name().empty());
}
