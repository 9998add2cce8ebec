// SPDX-License-Identifier: MIT
// The error model: exceptions that carry the exit status they map to (EXIT STATUS in rlock(1)).
#pragma once

#include <stdexcept>
#include <string>

namespace rlock {

// The exit statuses of EXIT STATUS in rlock(1) (man/rlock.1.adoc). The child's own status and
// 128+N are computed, not listed.
enum class ExitCode : int {
  success = 0,
  status_free = 1,
  usage = 64,
  unavailable = 69,
  internal = 70,
  os_error = 71,
  busy = 75,
  lost = 76,
  auth = 77,
  config = 78,
  max_hold = 124,
  cannot_run = 126,
  not_found = 127,
};

constexpr int to_int(ExitCode code) noexcept { return static_cast<int>(code); }

// An unexpected failure. The message is the text after "rlock: error: ".
class Error : public std::runtime_error {
 public:
  Error(ExitCode code, const std::string& message) : std::runtime_error(message), m_code(code) {}
  ExitCode code() const noexcept { return m_code; }

 private:
  ExitCode m_code;
};

class UsageError : public Error {
 public:
  explicit UsageError(const std::string& message) : Error(ExitCode::usage, message) {}
};

class ConfigError : public Error {
 public:
  explicit ConfigError(const std::string& message) : Error(ExitCode::config, message) {}
};

// Redis could not be reached, timed out, or did not speak RESP. Retryable within a deadline.
class UnavailableError : public Error {
 public:
  explicit UnavailableError(const std::string& message) : Error(ExitCode::unavailable, message) {}
};

class AuthError : public Error {
 public:
  explicit AuthError(const std::string& message) : Error(ExitCode::auth, message) {}
};

// A system call failed; the message names the call and strerror(errno).
class SystemError : public Error {
 public:
  SystemError(const std::string& what, int err);
  int error_number() const noexcept { return m_errno; }

 private:
  int m_errno;
};

// Whether errno value `err` says the system ran short (no file descriptor or memory left:
// EMFILE, ENFILE, ENOMEM, ENOBUFS) rather than that something is wrong with what was opened.
// Such failures are operating-system errors (71), whatever was being opened.
bool is_resource_shortage(int err) noexcept;

// Waiting or a blocking call was cut short by a signal the caller asked to watch.
class Interrupted : public std::exception {
 public:
  explicit Interrupted(int signo) : m_signo(signo) {}
  int signal_number() const noexcept { return m_signo; }
  const char* what() const noexcept override { return "interrupted by a signal"; }

 private:
  int m_signo;
};

} // namespace rlock
