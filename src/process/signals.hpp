// SPDX-License-Identifier: MIT
// Signal handling for a single-threaded supervisor: a blocked mask, a signalfd, signal names.
#pragma once

#include <array>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <sys/signalfd.h>

#include "util/fd.hpp"

namespace rlock::process {

// The signals rlock passes on to the job (SIGNALS in rlock(1)): each one it receives reaches the
// job's process group exactly once.
inline constexpr std::array<int, 6> k_forwarded_signals{SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

// k_forwarded_signals plus SIGCHLD: what the exec loop waits for.
sigset_t supervised_signals();

// Blocks a set of signals in the calling thread for its lifetime, so that they are only ever
// taken synchronously (SignalFd, sigtimedwait) and never interrupt anything. Create it before
// any other thread and before spawning; give children original_mask().
//
// On destruction the original mask comes back. Signals of the set that are still pending then
// are discarded first: they arrived while rlock was finishing, and letting their default action
// kill rlock at the last moment would replace the exit status it decided on.
// Neither copyable nor movable: it is a scope.
class SignalBlock {
 public:
  // Blocks supervised_signals().
  SignalBlock();
  explicit SignalBlock(const sigset_t& signals);
  SignalBlock(const SignalBlock&) = delete;
  SignalBlock& operator=(const SignalBlock&) = delete;
  ~SignalBlock();

  // The mask in force before this block: the one a spawned child should start with.
  const sigset_t& original_mask() const noexcept { return m_original; }
  // The signals this block asked to block (a SignalFd over them sees every one).
  const sigset_t& signals() const noexcept { return m_signals; }

 private:
  sigset_t m_signals;
  sigset_t m_original;
};

// A non-blocking, close-on-exec signalfd over signals the caller has blocked (see SignalBlock).
class SignalFd {
 public:
  explicit SignalFd(const sigset_t& signals);

  int fd() const noexcept { return m_fd.get(); }
  // The next pending signal, or nullopt when none is pending. Throws SystemError on failure.
  std::optional<signalfd_siginfo> read();
  // Up to into.size() pending signals in one read(2); 0 when none is pending.
  // Fewer than asked means that none was left pending. Throws SystemError on failure.
  std::size_t read(std::span<signalfd_siginfo> into);
  // Waits until a signal is pending, `other_fd` (when >= 0) is readable, or `wake` (steady
  // clock) has come; returns at once when it has. The one wait of the exec loop and the
  // keeper's. Throws SystemError on failure.
  void wait(std::chrono::steady_clock::time_point wake, int other_fd = -1) const;

 private:
  Fd m_fd;
};

// "TERM" for SIGTERM; "RTMIN+3" for real-time signals; the number for anything else.
std::string signal_name(int signo);

// Accepts a name with or without "SIG" ("TERM", "SIGTERM", "sigterm", "RTMIN+2") or a number
// ("15"), and returns the signal number. Throws UsageError naming `what` on anything else.
int parse_signal(std::string_view text, std::string_view what = "signal");

} // namespace rlock::process
