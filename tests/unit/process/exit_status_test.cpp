// SPDX-License-Identifier: MIT
// Tests for decoding wait statuses into exit codes.
#include "process/exit_status.hpp"

#include <csignal>
#include <doctest/doctest.h>
#include <sys/wait.h>

using rlock::process::ExitStatus;

TEST_CASE("ExitStatus decodes exits and deaths by signal") {
  ExitStatus exited = ExitStatus::from_wait_status(W_EXITCODE(3, 0));
  CHECK_FALSE(exited.signaled);
  CHECK(exited.value == 3);
  CHECK(exited.shell_code() == 3);
  CHECK(exited.describe() == "exited with status 3");

  ExitStatus killed = ExitStatus::from_wait_status(W_EXITCODE(0, SIGTERM));
  CHECK(killed.signaled);
  CHECK(killed.value == SIGTERM);
  CHECK(killed.shell_code() == 143);
  CHECK(killed.describe() == "killed by signal TERM (15)");

  ExitStatus dumped = ExitStatus::from_wait_status(W_EXITCODE(0, SIGSEGV) | WCOREFLAG);
  CHECK(dumped == ExitStatus{true, SIGSEGV});
  CHECK(dumped.shell_code() == 139);
}

TEST_CASE("ExitStatus maps to shell codes as sh does") {
  CHECK(ExitStatus{false, 0}.shell_code() == 0);
  CHECK(ExitStatus{false, 255}.shell_code() == 255);
  CHECK(ExitStatus{true, SIGKILL}.shell_code() == 137);
  CHECK(ExitStatus{true, SIGINT}.shell_code() == 130);
  CHECK(ExitStatus{false, 1}.describe() == "exited with status 1");
}
