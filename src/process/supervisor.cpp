// SPDX-License-Identifier: MIT
// The exec loop: signals, the lease's deadlines, stopping the job, reaping it.
//
// Design. One thread waits on one descriptor. Every signal rlock handles is blocked and read
// from a signalfd, so nothing is ever interrupted half-way: a renewal talking to Redis runs to
// its own deadline, and the signals that came in meanwhile are dealt with right after, in
// order. The only other input is time, so the next deadline — the lease's (from the hook) or
// the end of the grace — is the ppoll timeout, on the steady clock: a wall-clock step must
// never make a lease look younger than it is.
//
// Why forward: the job runs in a process group of its own so that stopping it reaches all of
// it (a `sh -c` pipeline, not just the shell). Signals sent to rlock's pid therefore do not
// reach the job, and forwarding is their one path — each arrives once. Keys typed at a
// terminal go to its foreground group, which is the job's (SpawnOptions::take_terminal), not
// rlock's: rlock never sees them, so they are not delivered a second time either.
//
// When is the job over: when the direct child exits, as for a shell or timeout(1); what it
// left running in the background is not ours to kill. Except while stopping: then the lease
// is going away and nothing of the job may outlive the grace, so the group gets SIGKILL when
// the grace ends even if the direct child has already exited. The kernel tells us nothing
// about members that are not our children, so in that one phase we look at the group every
// few milliseconds to return as soon as it is empty.
#include "process/supervisor.hpp"

#include "process/resident.hpp"
#include "util/log.hpp"

#include <algorithm>
#include <array>

namespace rlock::process {

namespace {

using Clock = std::chrono::steady_clock;

// How often a stopping job's process group is checked for emptiness once its direct child is
// gone; nothing is waiting on it, so this only decides how soon rlock may exit.
constexpr std::chrono::milliseconds k_group_check_interval{20};

// An upper bound on any one wait: a wake-up we somehow missed costs at most this, never a hang.
constexpr std::chrono::seconds k_max_wait{1};

// A job still running after this long is worth a smaller supervisor: the pages its start-up
// touched are shed (shed_startup_pages), and again after each renewal, which touches a
// megabyte of code of its own (the kernel maps 16 pages around each fault): a few dozen
// minor faults per renewal buy an RSS of about 1 MiB between them. Shorter jobs never pay.
constexpr std::chrono::seconds k_shed_after{1};

bool is_forwarded(int signo) {
  return std::find(k_forwarded_signals.begin(), k_forwarded_signals.end(), signo) != k_forwarded_signals.end();
}

// Waits until the signalfd is readable or `wake` has come (at most k_max_wait).
void wait_for(const SignalFd& signals, Clock::time_point wake) {
  signals.wait(std::min(wake, Clock::now() + k_max_wait));
}

} // namespace

int SupervisorResult::exit_code() const noexcept { return stopped_by ? stopped_by->exit_code : job.shell_code(); }

SupervisorResult supervise(Child& child, SignalFd& signals, SupervisorHooks& hooks) {
  SupervisorResult result;
  Clock::time_point next_deadline = Clock::now();
  Clock::time_point kill_at;
  const Clock::time_point shed_at = Clock::now() + k_shed_after;
  bool touched = true; // pages mapped since the last shedding: the start-up's, then a renewal's

  std::array<signalfd_siginfo, 8> pending{};
  for (;;) {
    // Every change of a child's state raises SIGCHLD, which stays pending until read here:
    // without one since the last look there is nothing to reap, and no wait call is made.
    bool children_changed = false;
    for (std::size_t count = pending.size(); count == pending.size();) {
      count = signals.read(pending);
      for (std::size_t i = 0; i < count; ++i) {
        const int signo = static_cast<int>(pending[i].ssi_signo);
        if (!is_forwarded(signo)) {
          children_changed = true; // SIGCHLD
          continue;
        }
        if (child.status() && !result.stopped_by) continue; // the job is over
        log::verbose("forwarding SIG{} to the job (process group {})", signal_name(signo), child.pgid());
        child.signal_group(signo);
      }
    }
    if (children_changed) {
      child.try_wait();
      child.reap_orphans(); // as a subreaper, rlock inherits the job's orphans: no zombies
    }
    const auto now = Clock::now();

    if (!result.stopped_by) {
      if (child.status()) break;
      if (now >= next_deadline) {
        DeadlineOrStop next = hooks.on_deadline();
        touched = true;
        if (auto* deadline = std::get_if<Clock::time_point>(&next)) {
          next_deadline = *deadline;
        } else {
          auto& stop = result.stopped_by.emplace(std::get<StopRequest>(std::move(next)));
          log::verbose("stopping the job ({}): SIG{} to process group {}, SIGKILL after {} ms", stop.reason,
                       signal_name(stop.signal), child.pgid(), stop.grace.count());
          child.signal_group(stop.signal);
          // A stopped job (^Z, SIGSTOP) would only get the signal at SIGKILL time: wake it so
          // that its handler runs within the grace, as timeout(1) does.
          if (stop.signal != SIGKILL && stop.signal != SIGCONT) child.signal_group(SIGCONT);
          kill_at = Clock::now() + std::max(stop.grace, std::chrono::milliseconds::zero());
        }
        continue; // the hook may have taken a while: look at signals and the child again
      }
      if (touched && now >= shed_at) {
        touched = false;
        shed_startup_pages();
      }
      wait_for(signals, next_deadline);
      continue;
    }

    if (!result.killed && now >= kill_at && child.group_alive()) {
      log::verbose("the job outlived its grace: SIGKILL to process group {}", child.pgid());
      child.signal_group(SIGKILL);
      result.killed = true;
    }
    if (child.status() && (result.killed || !child.group_alive())) break;
    Clock::time_point wake = result.killed ? now + k_max_wait : kill_at;
    if (child.status()) wake = std::min(wake, now + k_group_check_interval);
    wait_for(signals, wake);
  }

  result.job = *child.status();
  return result;
}

} // namespace rlock::process
