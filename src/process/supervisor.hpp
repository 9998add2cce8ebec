// SPDX-License-Identifier: MIT
// The exec loop: runs a spawned job to its end while keeping a lease alive through a hook.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <variant>

#include "process/child.hpp"
#include "process/exit_status.hpp"
#include "process/signals.hpp"

namespace rlock::process {

// Stop the job: `signal` to its process group, `grace` to exit, then SIGKILL to the group.
struct StopRequest {
  int signal = SIGTERM;
  std::chrono::milliseconds grace{0};
  int exit_code = 0; // what rlock exits with (lock lost: 76, max hold: 124)
  std::string reason;
};

using DeadlineOrStop = std::variant<std::chrono::steady_clock::time_point, StopRequest>;

struct SupervisorHooks {
  // Called first right after the supervisor starts, then each time the deadline it returned
  // last arrives, as long as the job runs and no stop was requested. Returns the next deadline
  // (steady clock) or a StopRequest. It may block for a while (a renewal with its own
  // deadline); signals that arrive meanwhile are handled right after. An exception from it
  // propagates out of supervise() with the job still running (the Child's destructor kills it).
  std::function<DeadlineOrStop()> on_deadline;
};

struct SupervisorResult {
  ExitStatus job;                        // how the direct child ended
  std::optional<StopRequest> stopped_by; // set when a StopRequest ended the job
  bool killed = false;                   // the grace ran out and the group got SIGKILL

  // stopped_by->exit_code if the job was stopped, else the job's shell code (128+N on signal).
  int exit_code() const noexcept;
};

// Runs the loop until the job is over: the direct child has been reaped and, if a stop was
// requested, its whole process group is gone or has been sent SIGKILL after the grace.
// `signals` must watch SIGCHLD and the k_forwarded_signals, all blocked (see SignalBlock);
// each forwarded signal rlock receives goes to the job's process group once.
SupervisorResult supervise(Child& child, SignalFd& signals, SupervisorHooks& hooks);

} // namespace rlock::process
