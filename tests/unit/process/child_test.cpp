// SPDX-License-Identifier: MIT
// Tests for spawn() and Child: exit codes, exec failures, environment, groups, masks, fds.
#include "process/child.hpp"

#include "helpers.hpp"
#include "process/owner.hpp"
#include "process/signals.hpp"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace rlock::process;
using rlock::process::test::command;
using rlock::process::test::eventually;
using rlock::process::test::TempDir;

namespace {

ExitStatus run(std::vector<std::string> argv, SpawnOptions options = {}) {
  options.argv = std::move(argv);
  return spawn(options).wait();
}

ExitStatus run_sh(const std::string& script, SpawnOptions options = {}) {
  return run({"/bin/sh", "-c", script}, std::move(options));
}

rlock::ExitCode spawn_error_code(std::vector<std::string> argv) {
  try {
    run(std::move(argv));
  } catch (const SpawnError& error) {
    return error.code();
  }
  return rlock::ExitCode::success;
}

} // namespace

TEST_CASE("spawn runs a command and reports how it ended") {
  CHECK(run({"/bin/true"}) == ExitStatus{false, 0});
  CHECK(run({"true"}) == ExitStatus{false, 0}); // found in PATH
  CHECK(run({"false"}) == ExitStatus{false, 1});
  CHECK(run_sh("exit 3") == ExitStatus{false, 3});
  ExitStatus killed = run_sh("kill -TERM $$");
  CHECK(killed == ExitStatus{true, SIGTERM});
  CHECK(killed.shell_code() == 143);
}

TEST_CASE("spawn passes arguments verbatim, without a shell") {
  TempDir dir;
  std::string out = dir.file("out");
  CHECK(run({"/bin/sh", "-c", "printf '%s|' \"$@\" > \"$0\"", out, "a b", "$HOME", "*", ""}) == ExitStatus{false, 0});
  CHECK(rlock::process::test::read_text(out) == "a b|$HOME|*||");
}

TEST_CASE("a command that is not found is a SpawnError with exit code 127") {
  try {
    run({"rlock-no-such-command-4711"});
    FAIL("no exception");
  } catch (const SpawnError& error) {
    CHECK(error.code() == rlock::ExitCode::not_found);
    CHECK(error.error_number() == ENOENT);
    CHECK(std::string(error.what()) == "cannot run 'rlock-no-such-command-4711': No such file or directory");
  }
  CHECK(spawn_error_code({"/nonexistent-dir/cmd"}) == rlock::ExitCode::not_found);
  CHECK(spawn_error_code({"/etc/passwd/cmd"}) == rlock::ExitCode::not_found); // ENOTDIR
  CHECK(spawn_error_code({""}) == rlock::ExitCode::not_found);
}

TEST_CASE("a command that is found but cannot run is a SpawnError with exit code 126") {
  TempDir dir;
  std::string script = dir.file("not-executable");
  { std::ofstream(script) << "#!/bin/sh\nexit 0\n"; }
  REQUIRE(chmod(script.c_str(), 0644) == 0);
  CHECK(spawn_error_code({script}) == rlock::ExitCode::cannot_run);              // no x bit: even for root
  CHECK(spawn_error_code({dir.path().string()}) == rlock::ExitCode::cannot_run); // a directory
  try {
    run({dir.path().string()});
  } catch (const SpawnError& error) {
    CHECK(error.error_number() == EACCES);
    CHECK(std::string(error.what()).ends_with("': Permission denied"));
  }
}

TEST_CASE("an empty argv is a usage error") { CHECK_THROWS_AS(spawn(SpawnOptions{}), rlock::UsageError); }

TEST_CASE("environment edits are visible in the child, the rest is inherited") {
  REQUIRE(setenv("RLOCK_TEST_KEEP", "kept", 1) == 0);
  REQUIRE(setenv("RLOCK_TEST_DROP", "dropped", 1) == 0);
  REQUIRE(setenv("RLOCK_TEST_REPLACE", "old", 1) == 0);
  SpawnOptions options;
  options.set_env = {{"RLOCK_TEST_NEW", "a=b c"}, {"RLOCK_TEST_REPLACE", "new"}};
  options.unset_env = {"RLOCK_TEST_DROP"};
  CHECK(run_sh("test \"$RLOCK_TEST_KEEP\" = kept && test \"$RLOCK_TEST_NEW\" = 'a=b c' && "
               "test \"$RLOCK_TEST_REPLACE\" = new && test -z \"${RLOCK_TEST_DROP+set}\" && "
               "test \"$(env | grep -c '^RLOCK_TEST_REPLACE=')\" = 1",
               options) == ExitStatus{false, 0});
  unsetenv("RLOCK_TEST_KEEP");
  unsetenv("RLOCK_TEST_DROP");
  unsetenv("RLOCK_TEST_REPLACE");

  SpawnOptions bad;
  bad.argv = {"/bin/true"};
  bad.set_env = {{"A=B", "c"}};
  CHECK_THROWS_AS(spawn(bad), rlock::UsageError);
}

TEST_CASE("a prepared spawn takes values set after its preparation, and starts once") {
  REQUIRE(setenv("RLOCK_TEST_LATE", "inherited", 1) == 0);
  SpawnOptions options;
  options.argv = {"/bin/sh", "-c",
                  "test \"$RLOCK_TEST_LATE\" = 'late value' && test \"$RLOCK_TEST_EARLY\" = early && "
                  "test \"$RLOCK_TEST_ADDED\" = added && test \"$(env | grep -c '^RLOCK_TEST_LATE=')\" = 1"};
  options.set_env = {{"RLOCK_TEST_LATE", ""}, {"RLOCK_TEST_EARLY", "early"}};
  PreparedSpawn job(options);
  unsetenv("RLOCK_TEST_LATE"); // prepared: rlock's own environment no longer matters
  job.set_env("RLOCK_TEST_LATE", "late value");
  job.set_env("RLOCK_TEST_ADDED", "added"); // not among set_env: added
  CHECK_THROWS_AS(job.set_env("A=B", "c"), rlock::UsageError);
  CHECK(job.start().wait() == ExitStatus{false, 0});
  CHECK_THROWS_AS(job.start(), rlock::Error);

  SpawnOptions missing;
  missing.argv = {"/nonexistent/rlock-test-command"};
  PreparedSpawn not_found(missing);
  CHECK_THROWS_AS(not_found.start(), SpawnError);
}

TEST_CASE("the child leads a process group of its own, which signal_group reaches") {
  Child child = spawn(command({"/bin/sh", "-c", "sleep 30 & wait"}));
  CHECK(child.pgid() == child.pid());
  CHECK(getpgid(child.pid()) == child.pid());
  CHECK_FALSE(child.try_wait().has_value());
  CHECK(child.group_alive());
  CHECK(child.signal_group(SIGKILL));
  CHECK(child.wait() == ExitStatus{true, SIGKILL});
  CHECK(child.try_wait() == ExitStatus{true, SIGKILL});
  CHECK_FALSE(child.signal(SIGTERM)); // reaped: never signal a pid that may be reused
  CHECK(eventually([&] { return !child.group_alive(); }));
}

TEST_CASE("without a group of its own the child stays in ours, and signal_group spares us") {
  SpawnOptions options = command({"sleep", "30"});
  options.new_process_group = false;
  Child child = spawn(options);
  CHECK(child.pgid() == getpgrp());
  CHECK(getpgid(child.pid()) == getpgrp());
  CHECK(child.signal_group(SIGTERM));
  CHECK(child.wait() == ExitStatus{true, SIGTERM});
}

TEST_CASE("the child starts with the mask it is given, not rlock's") {
  SignalBlock block;
  SpawnOptions options = command({"/bin/sh", "-c", "kill -USR1 $$; exit 0"});
  options.signal_mask = block.original_mask();
  CHECK(spawn(options).wait() == ExitStatus{true, SIGUSR1});

  SpawnOptions inherit_blocked = command({"/bin/sh", "-c", "kill -USR1 $$; exit 0"});
  inherit_blocked.signal_mask = block.signals();
  CHECK(spawn(inherit_blocked).wait() == ExitStatus{false, 0});
}

TEST_CASE("default_signals undoes an ignored disposition in the child") {
  struct sigaction ignore {};
  struct sigaction saved {};
  ignore.sa_handler = SIG_IGN;
  REQUIRE(sigaction(SIGPIPE, &ignore, &saved) == 0);
  CHECK(run_sh("kill -PIPE $$; exit 0") == ExitStatus{false, 0});
  SpawnOptions options;
  options.default_signals = {SIGPIPE};
  CHECK(run_sh("kill -PIPE $$; exit 0", options) == ExitStatus{true, SIGPIPE});
  sigaction(SIGPIPE, &saved, nullptr);
}

TEST_CASE("the child inherits inherited descriptors but none that are close-on-exec") {
  rlock::Fd passed(open("/dev/null", O_RDONLY));
  rlock::Fd private_fd(open("/dev/null", O_RDONLY | O_CLOEXEC));
  REQUIRE(passed);
  REQUIRE(private_fd);
  auto open_in_child = [](int fd) { return run_sh("test -e /proc/self/fd/" + std::to_string(fd)).value == 0; };
  CHECK(open_in_child(passed.get()));
  CHECK_FALSE(open_in_child(private_fd.get()));
}

TEST_CASE("destroying a Child that still runs kills its group and reaps it") {
  pid_t pid = -1;
  {
    Child child = spawn(command({"sleep", "30"}));
    pid = child.pid();
    Child moved = std::move(child);
    CHECK(child.pid() == -1);
    CHECK(moved.pid() == pid);
    CHECK_FALSE(child.signal_group(SIGTERM));
  }
  errno = 0;
  CHECK(kill(pid, 0) == -1); // reaped, not a zombie
  CHECK(errno == ESRCH);
}

TEST_CASE("the child dies with its parent (PR_SET_PDEATHSIG)") {
  int pipe_fds[2];
  REQUIRE(pipe2(pipe_fds, O_CLOEXEC) == 0);
  rlock::Fd read_end(pipe_fds[0]);
  rlock::Fd write_end(pipe_fds[1]);
  pid_t middle = fork();
  REQUIRE(middle >= 0);
  if (middle == 0) {
    // Plays rlock: spawns the job, reports its pid, and waits to be SIGKILLed.
    try {
      Child child = spawn(command({"sleep", "30"}));
      pid_t job = child.pid();
      if (write(write_end.get(), &job, sizeof job) != sizeof job) _exit(1);
      for (;;) pause();
    } catch (...) {
      _exit(1);
    }
  }
  write_end.reset();
  pid_t job = -1;
  REQUIRE(read(read_end.get(), &job, sizeof job) == sizeof job);
  CHECK(process_alive(job));
  REQUIRE(kill(middle, SIGKILL) == 0);
  int status = 0;
  REQUIRE(waitpid(middle, &status, 0) == middle);
  CHECK(eventually([&] { return !process_alive(job); }));
}
