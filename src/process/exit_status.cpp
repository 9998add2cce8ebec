// SPDX-License-Identifier: MIT
// ExitStatus: decoding wait statuses and mapping them to shell exit codes.
#include "process/exit_status.hpp"

#include "process/signals.hpp"

#include <fmt/format.h>
#include <sys/wait.h>

namespace rlock::process {

ExitStatus ExitStatus::from_wait_status(int status) noexcept {
  if (WIFSIGNALED(status)) return ExitStatus{true, WTERMSIG(status)};
  return ExitStatus{false, WEXITSTATUS(status)};
}

int ExitStatus::shell_code() const noexcept { return signaled ? 128 + value : value; }

std::string ExitStatus::describe() const {
  if (signaled) return fmt::format("killed by signal {} ({})", signal_name(value), value);
  return fmt::format("exited with status {}", value);
}

} // namespace rlock::process
