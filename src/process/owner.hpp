// SPDX-License-Identifier: MIT
// Finding and watching the process that owns a keeper's lock: /proc walking, pidfds, liveness.
#pragma once

#include <optional>
#include <sys/types.h>

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

// The parent of `pid` according to /proc/PID/stat, or nullopt if that cannot be read.
std::optional<pid_t> parent_of(pid_t pid);

// A pidfd for `pid` (close-on-exec; poll() reports it readable once the process has exited),
// which, unlike the pid, can never come to name another process. Returns an invalid Fd when
// the kernel has no pidfds (before Linux 5.3) and when the process no longer exists: in both
// cases the caller falls back to process_alive(), which then answers at once for the latter.
// Throws SystemError on other failures (out of descriptors).
Fd open_pidfd(pid_t pid);

// Whether `pid` exists and has not exited. A zombie (exited, not yet reaped by its parent)
// counts as exited, as for a pidfd. Subject to pid reuse: prefer open_pidfd().
bool process_alive(pid_t pid);

} // namespace rlock::process
