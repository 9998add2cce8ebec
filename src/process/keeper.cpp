// SPDX-License-Identifier: MIT
// The keeper: becoming a daemon-like process, and its loop over signals, the owner and time.
//
// Design. The keeper's loop has the exec loop's shape (supervisor.cpp): one thread, every
// signal it handles blocked and read from a signalfd, the next deadline from a hook as the
// only timeout, on the steady clock. Where exec waits for its child, the keeper waits for a
// process that is not its child: the owner, through a pidfd, which can never come to name
// another process. The hook renews what is kept and may block for a while (a renewal with
// its own deadline); signals and the owner's exit that came meanwhile are looked at right
// after, before any wait.
#include "process/keeper.hpp"

#include "process/resident.hpp"
#include "util/fd.hpp"
#include "util/log.hpp"

#include <algorithm>
#include <fcntl.h>
#include <string>
#include <sys/prctl.h>
#include <unistd.h>

namespace rlock::process {

namespace {

using Clock = std::chrono::steady_clock;

// An upper bound on any one wait: a wake-up we somehow missed costs at most this, never a hang.
constexpr std::chrono::seconds k_max_wait{60};

// How often the owner is looked at without a pidfd to wait on.
constexpr std::chrono::milliseconds k_owner_check_interval{200};

} // namespace

void become_keeper() {
  ::setsid();
  close_inherited_fds();
  if (::chdir("/") != 0) {
    // Not worth failing for: the keeper works from anywhere.
  }
  const std::string name(k_keeper_name);
  ::prctl(PR_SET_NAME, name.c_str(), 0, 0, 0);
  int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd >= 0) {
    ::dup2(null_fd, STDIN_FILENO);
    ::dup2(null_fd, STDOUT_FILENO);
    ::dup2(null_fd, STDERR_FILENO);
    ::close(null_fd);
  }
  log::set_level(log::Level::quiet); // stderr is /dev/null
}

bool is_keeper(pid_t pid) { return name_of(pid) == k_keeper_name; }

KeeperEnd keep(const ProcessHandle& owner, SignalFd& signals, KeeperHooks& hooks) {
  const int owner_fd = owner.exit_fd();
  Clock::time_point next_deadline = Clock::now();
  bool touched = true; // see supervise(): pages mapped since the last shedding
  for (;;) {
    bool stop = false;
    while (auto info = signals.read()) {
      if (static_cast<int>(info->ssi_signo) == SIGCHLD) continue;
      if (!hooks.is_stop || hooks.is_stop(*info)) stop = true;
    }
    // A stop first: `rlock release` stops the keeper before its script goes on to exit, and
    // the keeper must not take the lock it gave back for one lost at the owner's exit.
    if (stop) return KeeperEnd::stop_requested;
    if (!owner.alive()) return KeeperEnd::owner_exited;
    const auto now = Clock::now();
    if (now >= next_deadline) {
      std::optional<Clock::time_point> next = hooks.on_deadline();
      if (!next) return KeeperEnd::nothing_to_keep;
      next_deadline = *next;
      touched = true;
      continue; // the hook may have taken a while: look at signals and the owner again
    }
    if (touched) { // a keeper lives as long as its lease: keep it small between renewals
      touched = false;
      shed_startup_pages();
    }
    signals.wait(std::min(next_deadline, now + (owner_fd >= 0 ? Clock::duration(k_max_wait) : k_owner_check_interval)),
                 owner_fd);
  }
}

} // namespace rlock::process
