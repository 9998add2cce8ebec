// SPDX-License-Identifier: MIT
// ExitStatus: how a child ended, as a shell would report it.
#pragma once

#include <string>

namespace rlock::process {

struct ExitStatus {
  bool signaled = false; // true: killed by signal `value`; false: exited with code `value`
  int value = 0;

  // Decodes a waitpid() status of a process that has terminated (not one that stopped).
  static ExitStatus from_wait_status(int status) noexcept;

  // The exit code, or 128+N for death by signal N (as sh reports it in $?).
  int shell_code() const noexcept;
  // "exited with status 3", "killed by signal TERM (15)".
  std::string describe() const;

  friend bool operator==(const ExitStatus&, const ExitStatus&) = default;
};

} // namespace rlock::process
