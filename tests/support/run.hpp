// SPDX-License-Identifier: MIT
// Running programs from tests: run_rlock() (fork/exec, captured output, a hang fails), background
// processes, polling for observable state, temporary directories and small file helpers.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace rlock::test {

using namespace std::chrono_literals;

// A failure of the test machinery itself (a program that hangs, a missing binary, a failed
// system call). doctest reports it as an exception in the running test case.
class SupportError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Environment variables that would change what rlock talks to. They are removed from the
// environment the tests pass on, unless RunOptions::inherit_rlock_env is set, so that a
// developer's REDIS_URL never reaches a test.
extern const std::vector<std::string> k_rlock_env_vars;

struct RunOptions {
  std::vector<std::string> env;            // "K=V" entries added (replacing any K)
  std::vector<std::string> unset_env;      // names removed
  bool inherit_rlock_env = false;          // keep RLOCK_URL, REDIS_URL, RLOCK_PASSWORD, ...
  std::optional<std::string> stdin_data;   // none: stdin is /dev/null
  std::chrono::milliseconds timeout = 30s; // past it the process group is killed and we throw
  std::string cwd;                         // empty: the test's working directory
};

struct RunResult {
  int exit_code = -1; // the exit status, or 128+N when killed by signal N
  std::string out;
  std::string err;
  std::chrono::milliseconds elapsed{0};

  // "exit 3, stdout: ..., stderr: ..." for failure messages.
  std::string describe() const;
};

// Runs argv (argv[0] searched on PATH when it has no '/') with fork/exec, no shell, in its own
// process group. Returns when the process has exited and its stdout is at EOF, as `$(...)`
// does: a descendant that keeps stdout open makes the run time out. stderr is collected up to
// the exit (descendants may keep it). Throws SupportError on timeout, after killing the group.
RunResult run_program(const std::vector<std::string>& argv, const RunOptions& options = {});

// run_program with $RLOCK_BIN prepended.
RunResult run_rlock(const std::vector<std::string>& args, const RunOptions& options = {});

// The binaries under test, from CTest's environment. Throw SupportError when unset.
std::string rlock_bin();
std::string test_child_bin();
std::string fault_proxy_bin(); // tests/fault's rlock-fault-proxy
std::string source_dir();

// Polls `condition` every few milliseconds until it is true (returns true) or `timeout`
// passes (returns false). The condition is evaluated once more at the deadline.
bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

// A fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&&) = delete;

  const std::string& path() const noexcept { return m_path; }
  // path()/name
  std::string file(std::string_view name) const;

 private:
  std::string m_path;
};

// Reads a whole file; throws SupportError when it cannot be opened.
std::string read_file(const std::string& path);
// Reads a whole file, or nullopt when it does not exist.
std::optional<std::string> try_read_file(const std::string& path);
// Creates or truncates `path` with `mode` (applied with fchmod, so the umask does not matter).
void write_file(const std::string& path, std::string_view content, unsigned mode = 0644);
bool file_exists(const std::string& path);

struct BackgroundOptions {
  std::vector<std::string> env; // as RunOptions
  std::vector<std::string> unset_env;
  bool inherit_rlock_env = false;
  std::string stdin_path;  // empty: /dev/null
  std::string stdout_path; // empty: a file in a private temp dir, see out()
  std::string stderr_path;
  bool new_process_group = true; // setpgid(0, 0): signal_group() reaches descendants
  std::string cwd;
  // SIGKILL when the thread that started it ends (PR_SET_PDEATHSIG): a test program that dies
  // without its destructors (a crash, ctest's timeout) leaves no server behind.
  bool die_with_parent = false;
};

// A process running while the test goes on. The destructor kills (SIGKILL, to its group as
// well when it has its own) and reaps it if it is still running.
class BackgroundProcess {
 public:
  explicit BackgroundProcess(const std::vector<std::string>& argv, BackgroundOptions options = {});
  ~BackgroundProcess();
  BackgroundProcess(const BackgroundProcess&) = delete;
  BackgroundProcess& operator=(const BackgroundProcess&) = delete;

  pid_t pid() const noexcept { return m_pid; }
  // Sends `signo` to the process / to its process group.
  void signal(int signo) const;
  void signal_group(int signo) const;
  // True until the process has exited (reaping it when it has).
  bool running();
  // Waits for the exit and returns the status (code, or 128+N). Throws SupportError on
  // timeout, leaving the process running.
  int wait(std::chrono::milliseconds timeout = 30s);
  // As wait(), but nullopt on timeout.
  std::optional<int> try_wait(std::chrono::milliseconds timeout);
  // Sends SIGKILL (group too) and reaps; returns the status.
  int kill();

  // What it wrote so far (to the files given in the options, or to the private ones).
  std::string out() const;
  std::string err() const;

 private:
  bool poll_exit();

  pid_t m_pid = -1;
  bool m_own_group = true;
  std::optional<int> m_exit;
  std::optional<TempDir> m_capture_dir;
  std::string m_stdout_path;
  std::string m_stderr_path;
};

// Exit status of a waitpid() status word: the code, or 128+N for death by signal N.
int decode_wait_status(int status);

} // namespace rlock::test
