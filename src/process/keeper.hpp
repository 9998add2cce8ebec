// SPDX-License-Identifier: MIT
// The keeper: a daemon-like process that holds something for an owner process while it lives.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string_view>
#include <sys/signalfd.h>
#include <sys/types.h>

#include "process/owner.hpp"
#include "process/signals.hpp"

namespace rlock::process {

// The name a keeper runs under (prctl PR_SET_NAME), read back from /proc/PID/comm.
inline constexpr std::string_view k_keeper_name = "rlock-keeper";

// Turns the calling process, freshly forked, into a keeper: a session of its own (no
// terminal: it must not die of a hangup or of the signals sent to the script's process
// group), none of the caller's other descriptors (a pipe held open would block whoever waits
// for its EOF), `/` as working directory (it would keep a file system from being unmounted),
// the name k_keeper_name, stdin, stdout and stderr on /dev/null (so that `$(…)` returns at
// once) and nothing logged. Signal dispositions and the mask stay as the caller set them:
// keep() reads the blocked ones from a signalfd. Nothing here is worth failing for.
void become_keeper();

// Whether `pid` runs as a keeper (/proc/PID/comm is k_keeper_name).
bool is_keeper(pid_t pid);

struct KeeperHooks {
  // Called first right after keep() starts, then each time the deadline it returned last
  // arrives, while the owner lives and no stop came. Returns the next deadline (steady clock),
  // or nullopt when what the keeper holds is gone. An exception from it propagates out of keep().
  std::function<std::optional<std::chrono::steady_clock::time_point>()> on_deadline;
  // Whether a signal read from the signalfd asks this keeper to stop; SIGCHLD never does.
  // Unset: every other signal does.
  std::function<bool(const signalfd_siginfo&)> is_stop;
};

// Why keep() returned.
enum class KeeperEnd { owner_exited, stop_requested, nothing_to_keep };

// The keeper's loop, a sibling of supervise(): waits on `signals`, the owner's exit (its
// pidfd; without pidfds, before Linux 5.3, the owner is looked at every 200 ms) and the
// hook's next deadline, until the owner exits, a stop signal comes, or the hook has nothing
// left to keep. `signals` must watch the stop signals, all blocked (SignalBlock).
KeeperEnd keep(const ProcessHandle& owner, SignalFd& signals, KeeperHooks& hooks);

} // namespace rlock::process
