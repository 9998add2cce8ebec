// SPDX-License-Identifier: MIT
// Running programs from tests: fork/exec with captured output and a timeout, background
// processes, polling, temporary directories and file helpers.
#include "run.hpp"

#include "util/fd.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>
#include <utility>

extern char** environ;

namespace rlock::test {

// XDG_RUNTIME_DIR holds the TLS session cache: a test that wants one gives its own directory.
const std::vector<std::string> k_rlock_env_vars = {
    "RLOCK_URL",
    "REDIS_URL",
    "RLOCK_PASSWORD",
    "REDISCLI_AUTH",
    "RLOCK_TOKEN",
    "RLOCK_PREFIX",
    "RLOCK_NAME",
    "RLOCK_FENCE",
    "RLOCK_CONFIG",
    "RLOCK_PROFILE",
    "RLOCK_AUDIT",
    "XDG_RUNTIME_DIR",
    "RLOCK_TLS_SESSION_CACHE",
};

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void throw_errno(const std::string& what) {
  throw SupportError(fmt::format("{}: {}", what, std::strerror(errno)));
}

struct Pipe {
  Fd read_end;
  Fd write_end;
};

Pipe make_pipe() {
  std::array<int, 2> fds{};
  if (::pipe2(fds.data(), O_CLOEXEC) != 0) {
    throw_errno("pipe2");
  }
  return Pipe{Fd(fds[0]), Fd(fds[1])};
}

void set_nonblocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

void ignore_sigpipe_once() {
  static const bool done = [] {
    // Writing stdin_data to a child that exited must be an EPIPE, not the death of the test.
    ::signal(SIGPIPE, SIG_IGN);
    return true;
  }();
  static_cast<void>(done);
}

std::string env_name(std::string_view entry) { return std::string(entry.substr(0, entry.find('='))); }

std::vector<std::string> build_environment(const std::vector<std::string>& add, const std::vector<std::string>& remove,
                                           bool inherit_rlock_env) {
  std::vector<std::string> result;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string name = env_name(*entry);
    const bool rlock_var = std::find(k_rlock_env_vars.begin(), k_rlock_env_vars.end(), name) != k_rlock_env_vars.end();
    if ((rlock_var && !inherit_rlock_env) || std::find(remove.begin(), remove.end(), name) != remove.end()) {
      continue;
    }
    result.emplace_back(*entry);
  }
  for (const auto& entry : add) {
    const std::string name = env_name(entry);
    std::erase_if(result, [&](const std::string& existing) { return env_name(existing) == name; });
    result.push_back(entry);
  }
  return result;
}

std::string find_executable(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    return name;
  }
  const char* path = std::getenv("PATH");
  std::string_view dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  while (true) {
    const auto colon = dirs.find(':');
    const std::string dir(dirs.substr(0, colon));
    const std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    if (colon == std::string_view::npos) {
      break;
    }
    dirs.remove_prefix(colon + 1);
  }
  throw SupportError(fmt::format("{}: not found on PATH", name));
}

struct SpawnSpec {
  std::vector<std::string> argv;
  std::vector<std::string> env;
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
  bool new_process_group = true;
  std::string cwd;
  bool die_with_parent = false;
};

// fork + execve. Everything the child needs is prepared before fork; after it, the child only
// makes async-signal-safe calls. An exec failure comes back through a close-on-exec pipe.
pid_t spawn(const SpawnSpec& spec) {
  if (spec.argv.empty()) {
    throw SupportError("spawn: empty argv");
  }
  ignore_sigpipe_once();
  const std::string path = find_executable(spec.argv[0]);
  std::vector<char*> argv;
  for (const auto& arg : spec.argv) {
    argv.push_back(const_cast<char*>(arg.c_str()));
  }
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& entry : spec.env) {
    envp.push_back(const_cast<char*>(entry.c_str()));
  }
  envp.push_back(nullptr);
  const char* cwd = spec.cwd.empty() ? nullptr : spec.cwd.c_str();
  const long max_fd = std::min(::sysconf(_SC_OPEN_MAX), 65536L);

  Pipe exec_error = make_pipe();
  const pid_t pid = ::fork();
  if (pid < 0) {
    throw_errno("fork");
  }
  if (pid == 0) {
    // The parent is alive: it waits on exec_error until the exec.
    if (spec.die_with_parent && ::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
      const int err = errno;
      static_cast<void>(::write(exec_error.write_end.get(), &err, sizeof err));
      ::_exit(127);
    }
    if (spec.new_process_group) {
      ::setpgid(0, 0);
    }
    for (int signo = 1; signo < NSIG; ++signo) {
      if (signo != SIGKILL && signo != SIGSTOP) {
        ::signal(signo, SIG_DFL);
      }
    }
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::dup2(spec.stdin_fd, 0);
    ::dup2(spec.stdout_fd, 1);
    ::dup2(spec.stderr_fd, 2);
    // Nothing of the test process leaks into the program under test.
    for (int fd = 3; fd < max_fd; ++fd) {
      if (fd != exec_error.write_end.get()) {
        ::fcntl(fd, F_SETFD, FD_CLOEXEC);
      }
    }
    if (cwd != nullptr && ::chdir(cwd) != 0) {
      const int err = errno;
      static_cast<void>(::write(exec_error.write_end.get(), &err, sizeof err));
      ::_exit(127);
    }
    ::execve(path.c_str(), argv.data(), envp.data());
    const int err = errno;
    static_cast<void>(::write(exec_error.write_end.get(), &err, sizeof err));
    ::_exit(127);
  }
  if (spec.new_process_group) {
    ::setpgid(pid, pid); // both sides, so that the group exists when fork returns
  }
  exec_error.write_end.reset();
  int child_errno = 0;
  ssize_t got = 0;
  do {
    got = ::read(exec_error.read_end.get(), &child_errno, sizeof child_errno);
  } while (got < 0 && errno == EINTR);
  if (got == static_cast<ssize_t>(sizeof child_errno)) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    throw SupportError(fmt::format("cannot execute {}: {}", path, std::strerror(child_errno)));
  }
  return pid;
}

// Reads what is available; returns false at EOF.
bool drain(int fd, std::string& into) {
  std::array<char, 65536> buffer{};
  for (;;) {
    const auto got = ::read(fd, buffer.data(), buffer.size());
    if (got > 0) {
      into.append(buffer.data(), static_cast<std::size_t>(got));
      continue;
    }
    if (got == 0) {
      return false;
    }
    if (errno == EINTR) {
      continue;
    }
    return true; // EAGAIN: open, nothing more for now
  }
}

void kill_tree(pid_t pid, bool own_group) {
  if (own_group) {
    ::kill(-pid, SIGKILL);
  }
  ::kill(pid, SIGKILL);
}

Fd open_or_throw(const std::string& path, int flags, mode_t mode = 0644) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) {
    throw_errno("open " + path);
  }
  return Fd(fd);
}

} // namespace

int decode_wait_status(int status) {
  if (WIFEXITED(status)) {
    return WEXITSTATUS(status);
  }
  if (WIFSIGNALED(status)) {
    return 128 + WTERMSIG(status);
  }
  return -1;
}

std::string RunResult::describe() const {
  return fmt::format("exit {} after {} ms\n--- stdout ---\n{}--- stderr ---\n{}--- end ---", exit_code, elapsed.count(),
                     out, err);
}

RunResult run_program(const std::vector<std::string>& argv, const RunOptions& options) {
  SpawnSpec spec;
  spec.argv = argv;
  spec.env = build_environment(options.env, options.unset_env, options.inherit_rlock_env);
  spec.cwd = options.cwd;
  spec.new_process_group = true;

  Pipe out = make_pipe();
  Pipe err = make_pipe();
  Pipe in;
  Fd dev_null;
  if (options.stdin_data) {
    in = make_pipe();
    spec.stdin_fd = in.read_end.get();
  } else {
    dev_null = open_or_throw("/dev/null", O_RDONLY);
    spec.stdin_fd = dev_null.get();
  }
  spec.stdout_fd = out.write_end.get();
  spec.stderr_fd = err.write_end.get();

  const auto start = Clock::now();
  const pid_t pid = spawn(spec);
  out.write_end.reset();
  err.write_end.reset();
  in.read_end.reset();
  dev_null.reset();
  set_nonblocking(out.read_end.get());
  set_nonblocking(err.read_end.get());

  std::string_view to_write;
  if (options.stdin_data) {
    to_write = *options.stdin_data;
    set_nonblocking(in.write_end.get());
    if (to_write.empty()) {
      in.write_end.reset();
    }
  }

  RunResult result;
  bool out_open = true;
  bool err_open = true;
  std::optional<int> status;
  const auto deadline = start + options.timeout;
  while (!status || out_open) {
    if (!status) {
      int raw = 0;
      const pid_t reaped = ::waitpid(pid, &raw, WNOHANG);
      if (reaped == pid) {
        status = raw;
        result.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
        continue; // one more pass reads what is left
      }
    }
    if (Clock::now() >= deadline) {
      kill_tree(pid, true);
      if (!status) {
        int raw = 0;
        ::waitpid(pid, &raw, 0);
      }
      drain(out.read_end.get(), result.out);
      drain(err.read_end.get(), result.err);
      result.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
      throw SupportError(fmt::format("{} {} after {} ms: {}\n{}", argv[0],
                                     status ? "exited but its stdout stayed open" : "did not finish",
                                     options.timeout.count(), fmt::join(argv, " "), result.describe()));
    }
    std::vector<pollfd> fds;
    if (out_open) {
      fds.push_back({out.read_end.get(), POLLIN, 0});
    }
    if (err_open) {
      fds.push_back({err.read_end.get(), POLLIN, 0});
    }
    if (in.write_end.get() >= 0) {
      fds.push_back({in.write_end.get(), POLLOUT, 0});
    }
    ::poll(fds.data(), fds.size(), status ? 20 : 5);
    if (out_open) {
      out_open = drain(out.read_end.get(), result.out);
    }
    if (err_open) {
      err_open = drain(err.read_end.get(), result.err);
    }
    if (in.write_end.get() >= 0) {
      const auto written = ::write(in.write_end.get(), to_write.data(), to_write.size());
      if (written > 0) {
        to_write.remove_prefix(static_cast<std::size_t>(written));
      }
      if (to_write.empty() || (written < 0 && errno != EAGAIN && errno != EINTR)) {
        in.write_end.reset();
      }
    }
  }
  // Everything the program itself wrote to stderr is in the pipe by now; a descendant (a
  // keeper) may hold it open longer, so take what is there and stop.
  if (err_open) {
    drain(err.read_end.get(), result.err);
  }
  result.exit_code = decode_wait_status(*status);
  return result;
}

RunResult run_rlock(const std::vector<std::string>& args, const RunOptions& options) {
  std::vector<std::string> argv{rlock_bin()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_program(argv, options);
}

namespace {

std::string required_env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') {
    throw SupportError(fmt::format("${} is not set: run the integration tests through ctest", name));
  }
  return value;
}

} // namespace

std::string rlock_bin() { return required_env("RLOCK_BIN"); }
std::string test_child_bin() { return required_env("RLOCK_TEST_CHILD"); }
std::string fault_proxy_bin() { return required_env("RLOCK_FAULT_PROXY"); }
std::string source_dir() { return required_env("RLOCK_SOURCE_DIR"); }

bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (condition()) {
      return true;
    }
    std::this_thread::sleep_for(5ms);
  }
  return condition();
}

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/rlock-test-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw_errno("mkdtemp " + pattern);
  }
  m_path = pattern;
}

TempDir::~TempDir() {
  if (!m_path.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(m_path, ignored);
  }
}

TempDir::TempDir(TempDir&& other) noexcept : m_path(std::exchange(other.m_path, {})) {}

std::string TempDir::file(std::string_view name) const { return m_path + "/" + std::string(name); }

std::optional<std::string> try_read_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      return std::nullopt;
    }
    throw_errno("open " + path);
  }
  Fd owned(fd);
  std::string content;
  std::array<char, 65536> buffer{};
  for (;;) {
    const auto got = ::read(fd, buffer.data(), buffer.size());
    if (got < 0 && errno == EINTR) {
      continue;
    }
    if (got < 0) {
      throw_errno("read " + path);
    }
    if (got == 0) {
      return content;
    }
    content.append(buffer.data(), static_cast<std::size_t>(got));
  }
}

std::string read_file(const std::string& path) {
  auto content = try_read_file(path);
  if (!content) {
    throw SupportError(fmt::format("{}: no such file", path));
  }
  return *content;
}

void write_file(const std::string& path, std::string_view content, unsigned mode) {
  Fd fd = open_or_throw(path, O_WRONLY | O_CREAT | O_TRUNC, static_cast<mode_t>(mode));
  if (::fchmod(fd.get(), static_cast<mode_t>(mode)) != 0) {
    throw_errno("fchmod " + path);
  }
  while (!content.empty()) {
    const auto written = ::write(fd.get(), content.data(), content.size());
    if (written < 0) {
      if (errno == EINTR) {
        continue;
      }
      throw_errno("write " + path);
    }
    content.remove_prefix(static_cast<std::size_t>(written));
  }
}

bool file_exists(const std::string& path) {
  struct stat info {};
  return ::lstat(path.c_str(), &info) == 0;
}

BackgroundProcess::BackgroundProcess(const std::vector<std::string>& argv, BackgroundOptions options)
    : m_own_group(options.new_process_group) {
  if (options.stdout_path.empty() || options.stderr_path.empty()) {
    m_capture_dir.emplace();
  }
  m_stdout_path = options.stdout_path.empty() ? m_capture_dir->file("stdout") : options.stdout_path;
  m_stderr_path = options.stderr_path.empty() ? m_capture_dir->file("stderr") : options.stderr_path;
  Fd out = open_or_throw(m_stdout_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND);
  Fd err = open_or_throw(m_stderr_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND);
  Fd in;
  if (options.stdin_path.empty()) {
    in = open_or_throw("/dev/null", O_RDONLY);
  } else {
    struct stat info {};
    // A FIFO is opened read-write so that the open does not wait for a writer.
    const bool fifo = ::stat(options.stdin_path.c_str(), &info) == 0 && S_ISFIFO(info.st_mode);
    in = open_or_throw(options.stdin_path, fifo ? O_RDWR : O_RDONLY);
  }
  SpawnSpec spec;
  spec.argv = argv;
  spec.env = build_environment(options.env, options.unset_env, options.inherit_rlock_env);
  spec.stdin_fd = in.get();
  spec.stdout_fd = out.get();
  spec.stderr_fd = err.get();
  spec.new_process_group = options.new_process_group;
  spec.cwd = options.cwd;
  spec.die_with_parent = options.die_with_parent;
  m_pid = spawn(spec);
}

BackgroundProcess::~BackgroundProcess() {
  if (m_pid > 0 && !m_exit) {
    kill_tree(m_pid, m_own_group);
    int raw = 0;
    ::waitpid(m_pid, &raw, 0);
  }
}

void BackgroundProcess::signal(int signo) const {
  if (!m_exit && ::kill(m_pid, signo) != 0) {
    throw_errno(fmt::format("kill({}, {})", m_pid, signo));
  }
}

void BackgroundProcess::signal_group(int signo) const {
  if (!m_own_group) {
    throw SupportError("signal_group: the process has no process group of its own");
  }
  if (::kill(-m_pid, signo) != 0 && errno != ESRCH) {
    throw_errno(fmt::format("kill(-{}, {})", m_pid, signo));
  }
}

bool BackgroundProcess::poll_exit() {
  if (m_exit) {
    return true;
  }
  int raw = 0;
  const pid_t reaped = ::waitpid(m_pid, &raw, WNOHANG);
  if (reaped == m_pid) {
    m_exit = decode_wait_status(raw);
    return true;
  }
  return false;
}

bool BackgroundProcess::running() { return !poll_exit(); }

std::optional<int> BackgroundProcess::try_wait(std::chrono::milliseconds timeout) {
  if (wait_until([this] { return poll_exit(); }, timeout)) {
    return m_exit;
  }
  return std::nullopt;
}

int BackgroundProcess::wait(std::chrono::milliseconds timeout) {
  if (auto code = try_wait(timeout)) {
    return *code;
  }
  throw SupportError(fmt::format("process {} still running after {} ms\n--- stdout ---\n{}--- stderr ---\n{}", m_pid,
                                 timeout.count(), out(), err()));
}

int BackgroundProcess::kill() {
  if (!m_exit) {
    kill_tree(m_pid, m_own_group);
    int raw = 0;
    ::waitpid(m_pid, &raw, 0);
    m_exit = decode_wait_status(raw);
  }
  return *m_exit;
}

std::string BackgroundProcess::out() const { return try_read_file(m_stdout_path).value_or(""); }
std::string BackgroundProcess::err() const { return try_read_file(m_stderr_path).value_or(""); }

} // namespace rlock::test
