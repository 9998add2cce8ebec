// SPDX-License-Identifier: MIT
// Owner lookup through /proc, pidfds and liveness checks.
#include "process/owner.hpp"

#include "util/error.hpp"

#include <cerrno>
#include <charconv>
#include <csignal>
#include <fcntl.h>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace rlock::process {

namespace {

std::string proc_path(pid_t pid, std::string_view entry) {
  return "/proc/" + std::to_string(pid) + "/" + std::string(entry);
}

std::optional<std::string> read_proc_file(pid_t pid, std::string_view entry) {
  Fd fd(open(proc_path(pid, entry).c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return std::nullopt;
  std::string content;
  char buffer[4096];
  for (;;) {
    ssize_t n = read(fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::nullopt;
    if (n == 0) return content;
    content.append(buffer, static_cast<std::size_t>(n));
  }
}

std::optional<std::string> executable_of(pid_t pid) {
  std::string target(4096, '\0');
  ssize_t n = readlink(proc_path(pid, "exe").c_str(), target.data(), target.size());
  if (n <= 0 || static_cast<std::size_t>(n) == target.size()) return std::nullopt;
  target.resize(static_cast<std::size_t>(n));
  return target;
}

struct ProcStat {
  char state;
  pid_t parent;
};

// The fields after "PID (COMM) " in /proc/PID/stat; COMM may itself hold ") ".
std::optional<ProcStat> stat_of(pid_t pid) {
  auto content = read_proc_file(pid, "stat");
  if (!content) return std::nullopt;
  std::size_t close = content->rfind(')');
  if (close == std::string::npos || close + 4 >= content->size()) return std::nullopt;
  std::string_view rest = std::string_view(*content).substr(close + 2); // "S PPID ..."
  char state = rest[0];
  rest.remove_prefix(2);
  pid_t parent = 0;
  auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), parent);
  if (ec != std::errc{}) return std::nullopt;
  return ProcStat{state, parent};
}

// A forked copy: same executable, same command line, both readable and non-empty (kernel
// threads and zombies have an empty command line).
bool is_copy_of(pid_t child, pid_t parent) {
  auto child_exe = executable_of(child);
  auto parent_exe = executable_of(parent);
  if (!child_exe || !parent_exe || *child_exe != *parent_exe) return false;
  auto child_cmdline = read_proc_file(child, "cmdline");
  auto parent_cmdline = read_proc_file(parent, "cmdline");
  return child_cmdline && parent_cmdline && !child_cmdline->empty() && *child_cmdline == *parent_cmdline;
}

} // namespace

std::optional<pid_t> parent_of(pid_t pid) {
  auto stat = stat_of(pid);
  if (!stat) return std::nullopt;
  return stat->parent;
}

pid_t find_script_owner(pid_t start) {
  pid_t owner = start;
  for (;;) {
    auto parent = parent_of(owner);
    // PID 1 is walked to like any other parent: in a container the script is often PID 1
    // (`sh -c` as a Kubernetes command), and its `$(…)` subshell is a copy of it. Only the
    // parent of PID 1 (0: none in this namespace) ends the walk.
    if (!parent || *parent < 1 || !is_copy_of(owner, *parent)) return owner;
    owner = *parent;
  }
}

bool proc_shows_own_pid_namespace() {
  std::string target(32, '\0');
  ssize_t n = readlink("/proc/self", target.data(), target.size());
  if (n <= 0 || static_cast<std::size_t>(n) == target.size()) return false;
  target.resize(static_cast<std::size_t>(n));
  return target == std::to_string(::getpid());
}

bool owner_exit_ends_namespace(pid_t owner) {
  // The initial pid namespace has a fixed inode number (PROC_PID_INIT_INO in the kernel's
  // proc_ns.h); any other is a container's (or unshare's).
  constexpr ino_t k_initial_pid_namespace_inode = 0xEFFFFFFCU;
  struct stat info {};
  if (::stat("/proc/self/ns/pid", &info) != 0 || info.st_ino == k_initial_pid_namespace_inode) return false;
  if (owner == 1) return true;
  auto parent = parent_of(owner);
  return parent && *parent == 1;
}

Fd open_pidfd(pid_t pid) {
  long fd = syscall(SYS_pidfd_open, pid, 0U);
  if (fd >= 0) return Fd(static_cast<int>(fd));
  if (errno == ENOSYS || errno == ESRCH) return Fd();
  throw SystemError("could not watch process " + std::to_string(pid) + " (pidfd_open)", errno);
}

bool process_alive(pid_t pid) {
  if (pid <= 0) return false;
  if (kill(pid, 0) != 0 && errno != EPERM) return false;
  auto stat = stat_of(pid);
  // kill() found it; without /proc we cannot tell a zombie, so trust kill().
  if (!stat) return true;
  return stat->state != 'Z' && stat->state != 'X';
}

} // namespace rlock::process
