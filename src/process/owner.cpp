// SPDX-License-Identifier: MIT
// Owner lookup through /proc, pidfds and liveness checks; the host and user names.
#include "process/owner.hpp"

#include "util/error.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <vector>

namespace rlock::process {

namespace {

std::string proc_path(pid_t pid, std::string_view entry) {
  return "/proc/" + std::to_string(pid) + "/" + std::string(entry);
}

// The most of a /proc file read: a command line may be as long as ARG_MAX (megabytes).
constexpr std::size_t k_max_proc_file = std::size_t{256} * 1024;

// The file's content, cut at k_max_proc_file.
std::optional<std::string> read_proc_file(pid_t pid, std::string_view entry) {
  Fd fd(open(proc_path(pid, entry).c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd) return std::nullopt;
  std::string content;
  char buffer[4096];
  while (content.size() < k_max_proc_file) {
    ssize_t n = read(fd.get(), buffer, std::min(sizeof buffer, k_max_proc_file - content.size()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::nullopt;
    if (n == 0) break;
    content.append(buffer, static_cast<std::size_t>(n));
  }
  return content;
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
  unsigned long long start_time;
};

// The fields after "PID (COMM) " in /proc/PID/stat; COMM may itself hold ") ".
std::optional<ProcStat> stat_of(pid_t pid) {
  auto content = read_proc_file(pid, "stat");
  if (!content) return std::nullopt;
  std::size_t close = content->rfind(')');
  if (close == std::string::npos || close + 4 >= content->size()) return std::nullopt;
  std::string_view rest = std::string_view(*content).substr(close + 2); // "S PPID ..."
  ProcStat stat{rest[0], 0, 0};
  rest.remove_prefix(2);
  auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), stat.parent);
  if (ec != std::errc{}) return std::nullopt;
  // starttime is field 22 of proc(5); the parent was field 4.
  for (int field = 4; field < 22; ++field) {
    std::size_t space = rest.find(' ');
    if (space == std::string_view::npos) return std::nullopt;
    rest.remove_prefix(space + 1);
  }
  auto [start_end, start_ec] = std::from_chars(rest.data(), rest.data() + rest.size(), stat.start_time);
  if (start_ec != std::errc{}) return std::nullopt;
  return stat;
}

bool exited(char state) { return state == 'Z' || state == 'X'; }

// The name /etc/passwd gives `uid`, or "" when it lists none. Reading the file directly is a
// tenth of the cost of getpwuid, which first tries nscd's socket and reads nsswitch.conf; the
// file is where nsswitch.conf looks first nearly everywhere, and getpwuid still answers for
// users that only a directory service (LDAP, sssd) knows.
std::string passwd_file_user(uid_t uid) {
  std::FILE* file = std::fopen("/etc/passwd", "re");
  if (file == nullptr) return {};
  std::string name;
  while (const passwd* entry = ::fgetpwent(file)) {
    if (entry->pw_uid == uid) {
      name = entry->pw_name;
      break;
    }
  }
  static_cast<void>(std::fclose(file)); // read-only: nothing to lose
  return name;
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

std::string host_name() {
  // Asked for by the holder's metadata, the audit actor and the events alike: uname() once.
  static const std::string name = [] {
    char buffer[256] = {};
    if (::gethostname(buffer, sizeof buffer - 1) != 0) return std::string("unknown");
    return std::string(buffer);
  }();
  return name;
}

std::string user_name() {
  // $USER (or $LOGNAME) is what people know the user by, and costs no NSS lookup at every
  // start; then /etc/passwd, then getpwuid.
  const char* user = std::getenv("USER");
  if (user == nullptr || *user == '\0') user = std::getenv("LOGNAME");
  if (user != nullptr && *user != '\0') return user;
  // Looked up once per process and uid: an exec asks twice (the session's audit actor, the
  // holder's meta), and each lookup reads /etc/passwd.
  static uid_t looked_up_uid = 0;
  static std::string looked_up_name;
  const uid_t uid = ::geteuid();
  if (!looked_up_name.empty() && looked_up_uid == uid) return looked_up_name;
  std::string name = passwd_file_user(uid);
  if (name.empty()) {
    const passwd* entry = ::getpwuid(uid);
    name = entry != nullptr ? entry->pw_name : std::to_string(uid);
  }
  looked_up_uid = uid;
  looked_up_name = name;
  return name;
}

std::vector<std::string> command_line_of(pid_t pid) {
  std::vector<std::string> argv;
  auto raw = read_proc_file(pid, "cmdline");
  if (!raw) return argv;
  std::string_view rest = *raw;
  while (!rest.empty()) {
    std::size_t end = rest.find('\0');
    argv.emplace_back(rest.substr(0, end));
    if (end == std::string_view::npos) break;
    rest.remove_prefix(end + 1);
  }
  return argv;
}

std::optional<std::string> name_of(pid_t pid) {
  auto comm = read_proc_file(pid, "comm");
  if (comm && comm->ends_with('\n')) comm->pop_back();
  return comm;
}

bool is_ancestor(pid_t pid) {
  if (pid <= 1) return false;
  pid_t current = getppid();
  if (current == pid) return true;
  // A process starts no earlier than its parent: once the walk reaches one that started
  // before `pid`, `pid` is none of the processes above it, and the walk stops there (a waiter
  // checks every holder it meets; the holder is nearly always younger than the shell that
  // runs the waiter). Without `pid`'s start time the whole line is walked.
  const std::optional<ProcStat> target = stat_of(pid);
  for (int depth = 0; current > 1 && depth < 4096; ++depth) {
    if (current == pid) return true;
    auto stat = stat_of(current);
    if (!stat) return false;
    if (target && stat->start_time < target->start_time) return false;
    current = stat->parent;
  }
  return false;
}

bool runs_this_program(pid_t pid) {
  auto theirs = executable_of(pid);
  auto ours = executable_of(getpid());
  return theirs && ours && *theirs == *ours;
}

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
  return !exited(stat->state);
}

std::optional<unsigned long long> start_time_of(pid_t pid) {
  auto stat = stat_of(pid);
  if (!stat) return std::nullopt;
  return stat->start_time;
}

std::optional<ProcessHandle> ProcessHandle::open(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  Fd pidfd = open_pidfd(pid);
  // Read after the pidfd is taken, and checked by it: if the process was still there once
  // the stat was read, the stat was its own (its pid could not have been reused meanwhile).
  auto stat = stat_of(pid);
  if (!stat || exited(stat->state)) return std::nullopt;
  ProcessHandle handle(pid, std::move(pidfd), stat->start_time);
  if (!handle.alive()) return std::nullopt;
  return handle;
}

bool ProcessHandle::alive() const {
  if (m_pidfd) {
    pollfd exit_event{m_pidfd.get(), POLLIN, 0};
    int n = poll(&exit_event, 1, 0);
    if (n < 0 && errno != EINTR) throw SystemError("poll (pidfd)", errno);
    return n <= 0;
  }
  auto stat = stat_of(m_pid);
  return stat && !exited(stat->state) && stat->start_time == m_start_time;
}

bool ProcessHandle::send_signal(int signo, std::uint64_t value) const {
  siginfo_t info{};
  info.si_signo = signo;
  info.si_code = SI_QUEUE;
  info.si_pid = getpid();
  info.si_uid = getuid();
  info.si_value.sival_ptr = reinterpret_cast<void*>(static_cast<std::uintptr_t>(value)); // NOLINT
  long result = -1;
  if (m_pidfd) {
    result = syscall(SYS_pidfd_send_signal, m_pidfd.get(), signo, &info, 0U);
  } else {
    // Without pidfds a narrow race remains between this check and the signal.
    if (!alive()) return false;
    result = syscall(SYS_rt_sigqueueinfo, m_pid, signo, &info);
  }
  if (result == 0) return true;
  if (errno == ESRCH) return false;
  throw SystemError("could not signal process " + std::to_string(m_pid), errno);
}

} // namespace rlock::process
