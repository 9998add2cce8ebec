// SPDX-License-Identifier: MIT
// Finding and watching the process that owns a keeper's lock (/proc walking, pidfds,
// liveness), and who and where this process is: the host and user names a holder records.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

#include "util/fd.hpp"

namespace rlock::process {

// The script that should own a lock taken by a process whose parent is `start`. Walks up from
// `start` while a process has the same executable (/proc/PID/exe) and the same command line
// (/proc/PID/cmdline) as its parent — a forked copy, such as the subshell bash runs for
// `tok=$(rlock acquire x)` — and returns the topmost copy. PID 1 is no exception: a script that
// is a container's init owns the lock like any other. Returns `start` itself when it is no
// copy, or when /proc cannot tell (a process gone, another user's process). A script started
// by an identical invocation of itself would also be walked past; --owner-pid is the way out.
pid_t find_script_owner(pid_t start);

// Whether /proc belongs to this process's pid namespace (/proc/self names getpid()). When it
// does not (a container that shares the host's /proc, `unshare -p` without --mount-proc),
// /proc/PID names other processes than kill() and pidfd_open() do, and the owner walk would
// read strangers.
bool proc_shows_own_pid_namespace();

// Whether the exit of `owner` will likely end the pid namespace this process runs in, and so
// kill this process with it: we are not in the host's initial pid namespace, and `owner` is
// that namespace's init (PID 1: a container's command) or a direct child of it (under tini or
// `docker run --init`, which exit with their child). When a namespace's init exits, the kernel
// SIGKILLs every other process in it, a keeper included, before the keeper can see the owner
// go, so whatever the keeper would do at the owner's exit it must not rely on.
bool owner_exit_ends_namespace(pid_t owner);

// The arguments of `pid` from /proc/PID/cmdline (cut at 256 KiB); empty when unreadable
// (gone, a kernel thread, a zombie).
std::vector<std::string> command_line_of(pid_t pid);

// The name of `pid` from /proc/PID/comm (what prctl(PR_SET_NAME) set), or nullopt.
std::optional<std::string> name_of(pid_t pid);

// Whether `pid` is an ancestor of the calling process (its parent, the parent's parent, ...;
// never init). False when /proc cannot tell. Reads /proc/PID/stat of `pid` and of the
// ancestors that started no earlier than it.
bool is_ancestor(pid_t pid);

// Whether `pid` runs the same executable as the calling process (/proc/PID/exe).
bool runs_this_program(pid_t pid);

// The parent of `pid` according to /proc/PID/stat, or nullopt if that cannot be read.
std::optional<pid_t> parent_of(pid_t pid);

// A pidfd for `pid` (close-on-exec; poll() reports it readable once the process has exited),
// which, unlike the pid, can never come to name another process. Returns an invalid Fd when
// the kernel has no pidfds (before Linux 5.3) and when the process no longer exists: in both
// cases the caller falls back to process_alive(), which then answers at once for the latter.
// Throws SystemError on other failures (out of descriptors).
Fd open_pidfd(pid_t pid);

// A process identified by more than its pid, which the kernel hands to another process once
// this one is gone and reaped: a pidfd where the kernel has them, and its start time
// (/proc/PID/stat) either way, both taken at the moment the pid was known to name it.
// Move-only.
class ProcessHandle {
 public:
  // Pins the process `pid` names now; nullopt when there is none (or a zombie).
  static std::optional<ProcessHandle> open(pid_t pid);

  pid_t pid() const noexcept { return m_pid; }
  // Start time in clock ticks after boot: later for a process started later.
  unsigned long long start_time() const noexcept { return m_start_time; }
  // Readable (poll) once the process has exited; -1 without pidfds: then poll alive().
  int exit_fd() const noexcept { return m_pidfd.get(); }
  // Whether this very process still runs (not a later one with the same pid).
  bool alive() const;
  // Sends `signo` to this very process with `value` as its sigqueue(3) payload (si_code
  // SI_QUEUE), so that the receiver can tell who it is meant for. Returns false when the
  // process is gone. Throws SystemError when the kernel refuses (EPERM).
  bool send_signal(int signo, std::uint64_t value) const;

 private:
  ProcessHandle(pid_t pid, Fd pidfd, unsigned long long start_time)
      : m_pid(pid), m_pidfd(std::move(pidfd)), m_start_time(start_time) {}
  pid_t m_pid;
  Fd m_pidfd;
  unsigned long long m_start_time;
};

// The start time of `pid` (clock ticks after boot, /proc/PID/stat), or nullopt.
std::optional<unsigned long long> start_time_of(pid_t pid);

// This machine's name (gethostname), or "unknown"; looked up at the first call.
std::string host_name();

// The name of the user this process runs as, for people to read: $USER, else $LOGNAME
// (which cron sets), else the effective uid's name in /etc/passwd, else getpwuid's (users
// that only a directory service such as LDAP or sssd knows), else the uid as a number; the
// last three looked up once per process.
std::string user_name();

// Whether `pid` exists and has not exited. A zombie (exited, not yet reaped by its parent)
// counts as exited, as for a pidfd. Subject to pid reuse: prefer open_pidfd().
bool process_alive(pid_t pid);

} // namespace rlock::process
