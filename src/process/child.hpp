// SPDX-License-Identifier: MIT
// Spawning the job (vfork + execvp, no shell) and owning it until it is reaped: Child.
#pragma once

#include <csignal>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <utility>
#include <vector>

#include "process/exit_status.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"

namespace rlock::process {

struct SpawnOptions {
  // The command and its arguments; argv[0] is looked up in $PATH (rlock's own PATH) as
  // execvp does, including its fallback of running a non-binary file with /bin/sh.
  std::vector<std::string> argv;
  // Environment edits over rlock's environment: unset_env first, then set_env (NAME, VALUE).
  std::vector<std::pair<std::string, std::string>> set_env;
  std::vector<std::string> unset_env;
  // The mask the child starts with: normally SignalBlock::original_mask(). Without one the
  // child starts with no signal blocked.
  std::optional<sigset_t> signal_mask;
  // Signals whose disposition the child resets to SIG_DFL before exec. An ignored signal stays
  // ignored across exec, so list any signal rlock itself ignores (SIGPIPE) to spare the job.
  std::vector<int> default_signals;
  // Put the child in a process group of its own, so the whole job can be signalled at once.
  bool new_process_group = true;
  // If stdin is a terminal whose foreground process group is rlock's, make the job's group the
  // foreground one for the job's lifetime (needs new_process_group). Keys such as ^C then reach
  // the job only, once, and the job may read the terminal. rlock's group gets the terminal
  // back when the child is reaped, and job-control stops are passed on (see Child::try_wait).
  bool take_terminal = false;
  // Sent to the child when rlock dies (PR_SET_PDEATHSIG, set without the classic race);
  // 0 for none. Note the kernel ties it to the thread that forks: spawn from the main thread.
  int death_signal = SIGKILL;
};

// The command could not be started: not found (exit 127) or found but not runnable (126).
class SpawnError : public Error {
 public:
  SpawnError(const std::string& command, int err);
  int error_number() const noexcept { return m_errno; }

 private:
  int m_errno;
};

// A spawned child that this object reaps. Move-only. If it is destroyed before the child has
// been reaped (an exception unwinding), it SIGKILLs the job's process group and reaps the
// child, so nothing runs on unsupervised.
class Child {
 public:
  Child(Child&& other) noexcept;
  Child& operator=(Child&& other) noexcept;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child();

  pid_t pid() const noexcept { return m_pid; }
  // The job's process group: the child's pid, or rlock's own group without new_process_group.
  pid_t pgid() const noexcept { return m_pgid; }
  // Whether the job was given the terminal's foreground (SpawnOptions::take_terminal took).
  bool held_terminal() const noexcept { return m_held_terminal; }
  // The child's status once it has been reaped.
  const std::optional<ExitStatus>& status() const noexcept { return m_status; }

  // Reaps the child if it has terminated (WNOHANG). After the first success keeps returning the
  // same status. If the child holds the terminal and a job-control signal (^Z: TSTP, TTIN,
  // TTOU) stopped it, rlock gives the terminal back to its own group, stops itself the same
  // way so that the calling shell sees the job as suspended, and on SIGCONT hands the terminal
  // to the job again (if rlock is again in the foreground) and continues the job's group;
  // it then returns nullopt. Throws SystemError if waitpid fails.
  std::optional<ExitStatus> try_wait();
  // Blocks until the child terminates (with the same job-control handling) and reaps it.
  ExitStatus wait();

  // Sends `signo` to the child. Returns false if it has already been reaped.
  bool signal(int signo);
  // Sends `signo` to the job's whole process group, even after the direct child has been
  // reaped (its descendants may still run). Returns false if nothing is left to signal.
  // Without an own group this signals the child only (never rlock's group).
  bool signal_group(int signo);
  // Whether any process of the job may still run: a member of its group, or without an own
  // group the unreaped child. Zombies count.
  bool group_alive() const noexcept;
  // Reaps every exited process orphaned to rlock (see become_subreaper()), in the job's group
  // or not, so that none stays a zombie for the job's lifetime; never the direct child, whose
  // status try_wait() takes. For a process whose only child of its own is this one (exec).
  void reap_orphans() noexcept;

 private:
  friend class PreparedSpawn;

  Child(pid_t pid, bool own_group) noexcept;

  // waitpid() on the child with `flags` (WNOHANG or 0), passing job-control stops on.
  std::optional<ExitStatus> wait_with(int flags);
  void reaped(int wait_status) noexcept;
  void hand_terminal_to_job() noexcept;
  void take_terminal_back() noexcept;
  void suspend_with_job(int stop_signal);
  void kill_and_reap() noexcept;

  pid_t m_pid = -1;
  pid_t m_pgid = -1;
  bool m_own_group = false;
  // The terminal given to the job (stdin), and the group it goes back to; -1 when none.
  int m_terminal_fd = -1;
  pid_t m_terminal_home = -1;
  bool m_held_terminal = false;
  std::optional<ExitStatus> m_status;
};

// Starts options.argv (vfork + execvp, never through a shell). Returns once the child has exec'd.
// Throws SpawnError if the exec failed (the child is reaped), UsageError for an empty argv,
// and SystemError if vfork or the child's setup failed.
//
// File descriptors: everything rlock opens itself is close-on-exec, so the job inherits
// exactly what rlock inherited from its caller — stdin/stdout/stderr and any descriptor the
// calling script passed down on purpose (a flock fd, a pipe it reads), as a shell would.
Child spawn(const SpawnOptions& options);

// A spawn made ready ahead of time: the argv and environment arrays and the exec-report pipe
// are built when it is prepared, so that start() is the terminal check, vfork and exec. For a
// job known before the moment it may start: rlock exec prepares it before waiting for the
// lock, and starts it the moment a hand-off wakes it. Move-only; start() at most once, from
// the process that prepared it.
class PreparedSpawn {
 public:
  // Throws UsageError for an empty argv or an invalid name in set_env, SystemError if the pipe
  // cannot be made.
  explicit PreparedSpawn(SpawnOptions options);

  // Gives `name`, one of the options' set_env names, the value it gets in the job's
  // environment (a value learned at the last moment: the lock's token and fence).
  void set_env(std::string_view name, std::string_view value);
  // As spawn(options).
  Child start();

 private:
  SpawnOptions m_options;
  std::vector<std::string> m_arguments;
  std::vector<char*> m_argv;
  std::vector<std::string> m_environment;
  std::vector<char*> m_envp;
  sigset_t m_mask;
  bool m_stdin_is_terminal = false;
  Fd m_report_read;
  Fd m_report_write;
};

// Makes rlock the reaper of its descendants orphaned while it runs (PR_SET_CHILD_SUBREAPER):
// a job's background processes then stay rlock's to see, signal and reap, rather than
// passing to an init that may reap them late (a zombie still counts as a group member).
void become_subreaper();

} // namespace rlock::process
