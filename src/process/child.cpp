// SPDX-License-Identifier: MIT
// spawn() and Child: vfork + execvp with the exec result reported through a pipe, process
// groups, the controlling terminal, and reaping.
#include "process/child.hpp"

#include "process/signals.hpp"
#include "util/fd.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <string_view>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace rlock::process {

namespace {

// What the child reports through the exec-error pipe when it cannot exec. Nothing (EOF when
// the pipe closes on exec) means the exec succeeded.
enum class ChildStep : int { death_signal, process_group, signal_mask, exec };

struct ChildFailure {
  ChildStep step;
  int error_number;
};

const char* describe_step(ChildStep step) {
  switch (step) {
  case ChildStep::death_signal: return "prctl(PR_SET_PDEATHSIG)";
  case ChildStep::process_group: return "setpgid";
  case ChildStep::signal_mask: return "sigprocmask";
  case ChildStep::exec: return "exec";
  }
  return "exec";
}

// Runs fn with SIGTTOU blocked: tcsetpgrp() from a background group then succeeds instead of
// stopping the caller.
template <typename Fn>
void with_sigttou_blocked(Fn fn) noexcept {
  sigset_t ttou;
  sigset_t saved;
  sigemptyset(&ttou);
  sigaddset(&ttou, SIGTTOU);
  pthread_sigmask(SIG_BLOCK, &ttou, &saved);
  fn();
  pthread_sigmask(SIG_SETMASK, &saved, nullptr);
}

// Whether sending ourselves `signo` would stop us: default action, not blocked.
bool stops_us(int signo) noexcept {
  struct sigaction action {};
  sigset_t mask;
  if (sigaction(signo, nullptr, &action) != 0 || pthread_sigmask(SIG_SETMASK, nullptr, &mask) != 0) {
    return false;
  }
  return action.sa_handler == SIG_DFL && sigismember(&mask, signo) == 0;
}

bool is_valid_env_name(std::string_view name) { return !name.empty() && name.find('=') == std::string_view::npos; }

std::vector<std::string> build_environment(const SpawnOptions& options) {
  for (const auto& [name, value] : options.set_env) {
    if (!is_valid_env_name(name)) {
      throw UsageError(fmt::format("invalid environment variable name '{}'", name));
    }
  }
  auto edited = [&](std::string_view entry) {
    std::string_view name = entry.substr(0, entry.find('='));
    return std::any_of(options.unset_env.begin(), options.unset_env.end(),
                       [&](const std::string& unset) { return unset == name; }) ||
           std::any_of(options.set_env.begin(), options.set_env.end(),
                       [&](const auto& set) { return set.first == name; });
  };
  std::vector<std::string> environment;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    if (!edited(*entry)) environment.emplace_back(*entry);
  }
  for (const auto& [name, value] : options.set_env) {
    std::string entry = name;
    entry.append("=").append(value);
    environment.push_back(std::move(entry));
  }
  return environment;
}

std::vector<char*> pointers_to(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  pointers.reserve(strings.size() + 1);
  for (auto& text : strings) {
    pointers.push_back(text.data());
  }
  pointers.push_back(nullptr);
  return pointers;
}

// Everything the child needs, prepared before vfork: the child shares our memory until it
// execs, so it may only make async-signal-safe system calls that change nothing of ours (no
// allocation, no stdio, no exceptions), and it never returns from spawn().
struct ChildPlan {
  char** argv;
  char** envp;
  sigset_t mask;
  const std::vector<int>* default_signals;
  pid_t parent;
  int death_signal;
  bool new_process_group;
  bool take_terminal;
  int report_fd;
};

[[noreturn]] void fail_in_child(const ChildPlan& plan, ChildStep step, int err) noexcept {
  ChildFailure failure{step, err};
  [[maybe_unused]] ssize_t ignored = write(plan.report_fd, &failure, sizeof failure);
  _exit(127);
}

[[noreturn]] void run_child(const ChildPlan& plan) noexcept {
  if (plan.death_signal != 0) {
    if (prctl(PR_SET_PDEATHSIG, plan.death_signal) != 0) {
      fail_in_child(plan, ChildStep::death_signal, errno);
    }
    // rlock may have died between fork and prctl, and then no signal will ever come: we
    // were reparented already. Nobody is left to supervise us, so do not run.
    if (getppid() != plan.parent) _exit(127);
  }
  if (plan.new_process_group && setpgid(0, 0) != 0) {
    fail_in_child(plan, ChildStep::process_group, errno);
  }
  if (plan.take_terminal) {
    // Our new group is in the background, so block SIGTTOU for tcsetpgrp. The parent makes the
    // same call; whichever runs first wins, and a failure only costs terminal reads.
    sigset_t ttou;
    sigemptyset(&ttou);
    sigaddset(&ttou, SIGTTOU);
    sigprocmask(SIG_BLOCK, &ttou, nullptr);
    tcsetpgrp(STDIN_FILENO, getpid());
  }
  for (int signo : *plan.default_signals) {
    struct sigaction action {};
    action.sa_handler = SIG_DFL;
    sigaction(signo, &action, nullptr);
  }
  if (sigprocmask(SIG_SETMASK, &plan.mask, nullptr) != 0) {
    fail_in_child(plan, ChildStep::signal_mask, errno);
  }
  execvpe(plan.argv[0], plan.argv, plan.envp);
  fail_in_child(plan, ChildStep::exec, errno);
}

// vfork, not fork: the child borrows our memory until it execs instead of copying our page
// tables and making every page we touch afterwards fault copy-on-write, on the path from
// acquiring the lock to starting the job (figures: docs/performance.md). We are suspended
// meanwhile, which costs nothing: we would wait for the exec's outcome anyway. A function of
// its own, so that no caller's locals live across vfork's second return.
[[gnu::noinline]] pid_t start_child(const ChildPlan& plan) noexcept {
  pid_t pid = vfork(); // NOLINT(clang-analyzer-security.insecureAPI.vfork): run_child is vfork-safe
  // run_child makes only async-signal-safe system calls on data prepared before, then execs
  // or _exits: what the analyzer's rule (nothing but exec or _exit after vfork) protects.
  if (pid == 0) run_child(plan); // NOLINT(clang-analyzer-unix.Vfork)
  return pid;
}

} // namespace

SpawnError::SpawnError(const std::string& command, int err)
    : Error(err == ENOENT || err == ENOTDIR ? ExitCode::not_found : ExitCode::cannot_run,
            fmt::format("cannot run '{}': {}", command, std::strerror(err))),
      m_errno(err) {}

Child::Child(pid_t pid, bool own_group) noexcept
    : m_pid(pid), m_pgid(own_group ? pid : getpgrp()), m_own_group(own_group) {}

Child::Child(Child&& other) noexcept
    : m_pid(std::exchange(other.m_pid, -1)), m_pgid(std::exchange(other.m_pgid, -1)), m_own_group(other.m_own_group),
      m_terminal_fd(std::exchange(other.m_terminal_fd, -1)), m_terminal_home(other.m_terminal_home),
      m_held_terminal(other.m_held_terminal), m_status(std::exchange(other.m_status, {})) {}

Child& Child::operator=(Child&& other) noexcept {
  if (this != &other) {
    kill_and_reap();
    m_pid = std::exchange(other.m_pid, -1);
    m_pgid = std::exchange(other.m_pgid, -1);
    m_own_group = other.m_own_group;
    m_terminal_fd = std::exchange(other.m_terminal_fd, -1);
    m_terminal_home = other.m_terminal_home;
    m_held_terminal = other.m_held_terminal;
    m_status = std::exchange(other.m_status, {});
  }
  return *this;
}

Child::~Child() { kill_and_reap(); }

void Child::kill_and_reap() noexcept {
  if (m_pid <= 0 || m_status) return;
  kill(m_own_group ? -m_pgid : m_pid, SIGKILL);
  int wait_status = 0;
  pid_t result;
  do {
    result = waitpid(m_pid, &wait_status, 0);
  } while (result < 0 && errno == EINTR);
  if (result == m_pid) reaped(wait_status);
}

void Child::reaped(int wait_status) noexcept {
  m_status = ExitStatus::from_wait_status(wait_status);
  take_terminal_back();
  m_terminal_fd = -1;
}

void Child::hand_terminal_to_job() noexcept {
  if (m_terminal_fd < 0) return;
  with_sigttou_blocked([&] { tcsetpgrp(m_terminal_fd, m_pgid); });
}

void Child::take_terminal_back() noexcept {
  // Only if the job still has it: after `bg` the shell owns the terminal, not us.
  if (m_terminal_fd < 0 || tcgetpgrp(m_terminal_fd) != m_pgid) return;
  with_sigttou_blocked([&] { tcsetpgrp(m_terminal_fd, m_terminal_home); });
}

void Child::suspend_with_job(int stop_signal) {
  // A stop by SIGSTOP is someone's explicit act on the job, not the user at the terminal.
  if (stop_signal != SIGTSTP && stop_signal != SIGTTIN && stop_signal != SIGTTOU) return;
  take_terminal_back();
  // Stops rlock before kill() returns; the shell that runs rlock reports the job as stopped
  // (as "Stopped", like any ^Z, when we can use the job's own signal) and takes the terminal.
  // We run on here after its SIGCONT (fg or bg).
  kill(getpid(), stops_us(stop_signal) ? stop_signal : SIGSTOP);
  if (tcgetpgrp(m_terminal_fd) == m_terminal_home) hand_terminal_to_job();
  kill(-m_pgid, SIGCONT);
}

std::optional<ExitStatus> Child::try_wait() {
  if (m_status || m_pid <= 0) return m_status;
  return wait_with(WNOHANG);
}

ExitStatus Child::wait() {
  if (m_status) return *m_status;
  if (m_pid <= 0) throw SystemError("could not wait for a process", ECHILD);
  return *wait_with(0);
}

std::optional<ExitStatus> Child::wait_with(int flags) {
  // While the job holds the terminal, stops (^Z) are reported too, to be passed on.
  if (m_terminal_fd >= 0) flags |= WUNTRACED;
  for (;;) {
    int wait_status = 0;
    pid_t result = waitpid(m_pid, &wait_status, flags);
    if (result == 0) return std::nullopt;
    if (result < 0) {
      if (errno == EINTR) continue;
      throw SystemError(fmt::format("could not wait for process {}", m_pid), errno);
    }
    if (WIFSTOPPED(wait_status)) {
      suspend_with_job(WSTOPSIG(wait_status));
      continue;
    }
    reaped(wait_status);
    return m_status;
  }
}

bool Child::signal(int signo) {
  if (m_pid <= 0 || m_status) return false;
  if (kill(m_pid, signo) == 0) return true;
  if (errno == ESRCH) return false;
  throw SystemError(fmt::format("could not send SIG{} to process {}", signal_name(signo), m_pid), errno);
}

bool Child::signal_group(int signo) {
  if (m_pid <= 0) return false;
  if (!m_own_group) return signal(signo);
  if (kill(-m_pgid, signo) == 0) return true;
  // EPERM: what is left of the group changed its credentials; there is nothing we can do.
  if (errno == ESRCH || errno == EPERM) return false;
  throw SystemError(fmt::format("could not send SIG{} to process group {}", signal_name(signo), m_pgid), errno);
}

bool Child::group_alive() const noexcept {
  if (m_pid <= 0) return false;
  if (!m_own_group) return !m_status;
  return kill(-m_pgid, 0) == 0 || errno == EPERM;
}

void Child::reap_orphans() noexcept {
  for (;;) {
    siginfo_t info{};
    // Look first (WNOWAIT): the direct child's status is try_wait()'s to take.
    if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == 0) return;
    if (info.si_pid == m_pid && !m_status) return;
    if (waitpid(info.si_pid, nullptr, WNOHANG) <= 0) return;
  }
}

void become_subreaper() {
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) throw SystemError("prctl(PR_SET_CHILD_SUBREAPER)", errno);
}

Child spawn(const SpawnOptions& options) { return PreparedSpawn(options).start(); }

PreparedSpawn::PreparedSpawn(SpawnOptions options) : m_options(std::move(options)) {
  if (m_options.argv.empty()) throw UsageError("no command to run");
  m_arguments = m_options.argv;
  m_argv = pointers_to(m_arguments);
  m_environment = build_environment(m_options);
  m_envp = pointers_to(m_environment);
  if (m_options.signal_mask) {
    m_mask = *m_options.signal_mask;
  } else {
    sigemptyset(&m_mask);
  }
  m_stdin_is_terminal = m_options.take_terminal && m_options.new_process_group && isatty(STDIN_FILENO) == 1;
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    throw SystemError("could not create a pipe", errno);
  }
  m_report_read = Fd(pipe_fds[0]);
  m_report_write = Fd(pipe_fds[1]);
}

void PreparedSpawn::set_env(std::string_view name, std::string_view value) {
  if (!is_valid_env_name(name)) throw UsageError(fmt::format("invalid environment variable name '{}'", name));
  // build_environment left one entry per set_env pair, and none of rlock's own by that name.
  bool found = false;
  for (std::size_t i = 0; i < m_environment.size(); ++i) {
    std::string& entry = m_environment[i];
    if (entry.size() <= name.size() || entry[name.size()] != '=' || !std::string_view(entry).starts_with(name)) {
      continue;
    }
    entry.resize(name.size() + 1);
    entry.append(value);
    m_envp[i] = entry.data();
    found = true;
  }
  if (found) return;
  std::string entry(name);
  entry.append("=").append(value);
  m_environment.push_back(std::move(entry));
  m_envp = pointers_to(m_environment);
}

Child PreparedSpawn::start() {
  if (!m_report_write) throw Error(ExitCode::internal, "a prepared spawn was started twice");
  // Asked now, not when prepared: the shell may have moved rlock to the background meanwhile.
  const bool take_terminal = m_stdin_is_terminal && tcgetpgrp(STDIN_FILENO) == getpgrp();
  const ChildPlan plan{m_argv.data(),
                       m_envp.data(),
                       m_mask,
                       &m_options.default_signals,
                       getpid(),
                       m_options.death_signal,
                       m_options.new_process_group,
                       take_terminal,
                       m_report_write.get()};
  pid_t pid = start_child(plan);
  if (pid < 0) throw SystemError("could not start a process (vfork)", errno);

  m_report_write.reset();
  const Fd report_read = std::move(m_report_read);
  Child child(pid, m_options.new_process_group);
  if (take_terminal) {
    child.m_terminal_fd = STDIN_FILENO;
    child.m_terminal_home = getpgrp();
    child.m_held_terminal = true;
    child.hand_terminal_to_job();
  }

  ChildFailure failure{};
  ssize_t n;
  do {
    n = read(report_read.get(), &failure, sizeof failure);
  } while (n < 0 && errno == EINTR);
  if (n == 0) return child;

  child.wait();
  if (n != static_cast<ssize_t>(sizeof failure)) {
    throw SystemError("could not learn whether the command started", n < 0 ? errno : EIO);
  }
  if (failure.step == ChildStep::exec) {
    throw SpawnError(m_options.argv.front(), failure.error_number);
  }
  throw SystemError(fmt::format("could not prepare the child process ({})", describe_step(failure.step)),
                    failure.error_number);
}

} // namespace rlock::process
