// SPDX-License-Identifier: MIT
// rlock-test-child: a program the tests run under `rlock exec` that records what it receives.
//
// Options (all optional, any order):
//   --record FILE           append one line per received INT TERM HUP QUIT USR1 USR2 ("USR1\n"),
//                           written from the handler with one write(2) on an O_APPEND fd
//   --ready FILE            create FILE once the handlers are installed (and the grandchild,
//                           pid file, env and fd lists are written): the child is running
//   --exit N                exit status when the sleep ends (default 0)
//   --sleep SECONDS         how long to run: a number, fractional allowed, or "forever"
//                           (default 0); waits in ppoll so every signal is handled at once
//   --exit-on-signal        every recorded signal, USR1/USR2 included, ends the child
//   --ignore-term           record TERM but keep running (to test SIGKILL after --grace)
//   --kill-self N           after startup, die of signal N (default disposition, no core)
//   --env-out FILE          write the environment, one VAR=VALUE per line
//   --fds-out FILE          list the inherited open fds other than 0, 1, 2, one "N TARGET"
//                           per line; empty file = no leaks. Taken before the child opens
//                           anything of its own.
//   --spawn-grandchild PIDFILE
//                           fork a grandchild (default signal dispositions) that writes its
//                           pid to PIDFILE and sleeps until killed: tests that rlock stops the
//                           whole process group
//   --pid-file FILE         write this process's pid
//   --print TEXT            write TEXT and a newline to stdout at startup
//   --stdin-out FILE        copy stdin to FILE until EOF at startup (before --ready)
//
// Signal behaviour: INT, TERM, HUP and QUIT are recorded, then the child exits with 128+N
// (as a shell reports a death by signal N). USR1 and USR2 are recorded and the child runs on,
// unless --exit-on-signal. With --ignore-term, TERM is recorded and ignored.
// Exit 2 on a usage error.
#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <dirent.h>
#include <string>
#include <string_view>

extern char** environ;

namespace {

struct Options {
  std::string record_path;
  std::string ready_path;
  int exit_code = 0;
  double sleep_seconds = 0;
  bool sleep_forever = false;
  bool exit_on_signal = false;
  bool ignore_term = false;
  int kill_self = 0;
  std::string env_out;
  std::string fds_out;
  std::string grandchild_pid_file;
  std::string pid_file;
  std::string print_text;
  bool print = false;
  std::string stdin_out;
};

struct SignalName {
  int signo;
  const char* line; // what the handler writes, newline included
};

constexpr SignalName k_signals[] = {
    {SIGINT, "INT\n"},   {SIGTERM, "TERM\n"}, {SIGHUP, "HUP\n"},
    {SIGQUIT, "QUIT\n"}, {SIGUSR1, "USR1\n"}, {SIGUSR2, "USR2\n"},
};

int g_record_fd = -1;
bool g_exit_on_signal = false;
bool g_ignore_term = false;
volatile sig_atomic_t g_exit_signal = 0;

void on_signal(int signo) {
  const int saved_errno = errno;
  for (const auto& entry : k_signals) {
    if (entry.signo == signo) {
      if (g_record_fd >= 0) {
        // One write per line on an O_APPEND fd: lines never interleave.
        const auto written = ::write(g_record_fd, entry.line, std::strlen(entry.line));
        static_cast<void>(written);
      }
      break;
    }
  }
  const bool terminating = signo == SIGINT || signo == SIGTERM || signo == SIGHUP || signo == SIGQUIT;
  if (signo == SIGTERM && g_ignore_term) {
    // recorded, ignored
  } else if (g_exit_on_signal || terminating) {
    if (g_exit_signal == 0) {
      g_exit_signal = signo;
    }
  }
  errno = saved_errno;
}

[[noreturn]] void usage(const char* message, const char* arg) {
  std::fprintf(stderr, "rlock-test-child: %s%s%s\n", message, arg != nullptr ? ": " : "", arg != nullptr ? arg : "");
  std::exit(2);
}

[[noreturn]] void die(const char* what, const std::string& path) {
  std::fprintf(stderr, "rlock-test-child: %s %s: %s\n", what, path.c_str(), std::strerror(errno));
  std::exit(2);
}

int parse_int(const char* text) {
  char* end = nullptr;
  errno = 0;
  const long value = std::strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || value < 0 || value > 255) {
    usage("expected an integer 0..255", text);
  }
  return static_cast<int>(value);
}

Options parse(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        usage("missing value for", argv[i]);
      }
      return argv[++i];
    };
    if (arg == "--record") {
      options.record_path = value();
    } else if (arg == "--ready") {
      options.ready_path = value();
    } else if (arg == "--exit") {
      options.exit_code = parse_int(value());
    } else if (arg == "--sleep") {
      const char* text = value();
      if (std::string_view(text) == "forever") {
        options.sleep_forever = true;
      } else {
        char* end = nullptr;
        options.sleep_seconds = std::strtod(text, &end);
        if (end == text || *end != '\0' || options.sleep_seconds < 0) {
          usage("bad --sleep value", text);
        }
      }
    } else if (arg == "--exit-on-signal") {
      options.exit_on_signal = true;
    } else if (arg == "--ignore-term") {
      options.ignore_term = true;
    } else if (arg == "--kill-self") {
      options.kill_self = parse_int(value());
    } else if (arg == "--env-out") {
      options.env_out = value();
    } else if (arg == "--fds-out") {
      options.fds_out = value();
    } else if (arg == "--spawn-grandchild") {
      options.grandchild_pid_file = value();
    } else if (arg == "--pid-file") {
      options.pid_file = value();
    } else if (arg == "--print") {
      options.print_text = value();
      options.print = true;
    } else if (arg == "--stdin-out") {
      options.stdin_out = value();
    } else {
      usage("unknown option", argv[i]);
    }
  }
  return options;
}

void write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const auto written = ::write(fd, data.data(), data.size());
    if (written < 0) {
      if (errno == EINTR) {
        continue;
      }
      return;
    }
    data.remove_prefix(static_cast<std::size_t>(written));
  }
}

// Writes `content` to `path` through a temporary file and rename(2), so that a reader never
// sees a partial file.
void write_file_atomically(const std::string& path, std::string_view content) {
  const std::string temp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    die("cannot create", temp);
  }
  write_all(fd, content);
  ::close(fd);
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    die("cannot rename to", path);
  }
}

void write_fd_list(const std::string& path) {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) {
    die("cannot open", "/proc/self/fd");
  }
  const int listing_fd = ::dirfd(dir);
  std::string content;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string_view name = entry->d_name;
    if (name == "." || name == "..") {
      continue;
    }
    const int fd = std::atoi(entry->d_name);
    if (fd <= 2 || fd == listing_fd) {
      continue;
    }
    char target[4096];
    const std::string link = std::string("/proc/self/fd/") + entry->d_name;
    const auto length = ::readlink(link.c_str(), target, sizeof target - 1);
    content += entry->d_name;
    content += ' ';
    content += length >= 0 ? std::string(target, static_cast<std::size_t>(length)) : "?";
    content += '\n';
  }
  ::closedir(dir);
  write_file_atomically(path, content);
}

void write_environment(const std::string& path) {
  std::string content;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    content += *entry;
    content += '\n';
  }
  write_file_atomically(path, content);
}

void copy_stdin(const std::string& path) {
  std::string content;
  char buffer[4096];
  for (;;) {
    const auto got = ::read(0, buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) {
      continue;
    }
    if (got <= 0) {
      break;
    }
    content.append(buffer, static_cast<std::size_t>(got));
  }
  write_file_atomically(path, content);
}

void reset_signals_to_default() {
  for (const auto& entry : k_signals) {
    ::signal(entry.signo, SIG_DFL);
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
}

void spawn_grandchild(const std::string& pid_file) {
  const pid_t pid = ::fork();
  if (pid < 0) {
    die("cannot fork for", pid_file);
  }
  if (pid > 0) {
    return;
  }
  // The grandchild: default dispositions, so that a signal to the group ends it.
  reset_signals_to_default();
  if (g_record_fd >= 0) {
    ::close(g_record_fd);
  }
  const std::string temp = pid_file + ".tmp";
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd >= 0) {
    write_all(fd, std::to_string(::getpid()) + "\n");
    ::close(fd);
    ::rename(temp.c_str(), pid_file.c_str());
  }
  for (;;) {
    ::pause();
  }
}

void kill_self(int signo) {
  const rlimit no_core{0, 0};
  ::setrlimit(RLIMIT_CORE, &no_core);
  ::signal(signo, SIG_DFL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, signo);
  sigprocmask(SIG_UNBLOCK, &set, nullptr);
  ::raise(signo);
  // A signal whose default action is to ignore (e.g. CHLD) lands here.
  std::fprintf(stderr, "rlock-test-child: still alive after signal %d\n", signo);
  std::exit(2);
}

// Waits until the deadline (or forever) with the handled signals unblocked only inside ppoll,
// so that a signal is never lost between the check and the wait.
void run_until_done(const Options& options, const sigset_t& wait_mask) {
  timespec start{};
  clock_gettime(CLOCK_MONOTONIC, &start);
  const double deadline =
      static_cast<double>(start.tv_sec) + static_cast<double>(start.tv_nsec) / 1e9 + options.sleep_seconds;
  while (g_exit_signal == 0) {
    timespec timeout{};
    timespec* timeout_ptr = nullptr;
    if (!options.sleep_forever) {
      timespec now{};
      clock_gettime(CLOCK_MONOTONIC, &now);
      const double remaining = deadline - (static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9);
      if (remaining <= 0) {
        return;
      }
      timeout.tv_sec = static_cast<time_t>(remaining);
      timeout.tv_nsec = static_cast<long>((remaining - static_cast<double>(timeout.tv_sec)) * 1e9);
      timeout_ptr = &timeout;
    }
    ::ppoll(nullptr, 0, timeout_ptr, &wait_mask);
  }
}

// ppoll lets one signal in per call: record those still pending when the loop ends, so that
// "INT then TERM" in quick succession shows both.
void record_pending_signals() {
  for (const auto& entry : k_signals) {
    sigset_t pending;
    sigpending(&pending);
    if (sigismember(&pending, entry.signo) == 1) {
      sigset_t just_this;
      sigemptyset(&just_this);
      sigaddset(&just_this, entry.signo);
      const timespec no_wait{0, 0};
      if (sigtimedwait(&just_this, nullptr, &no_wait) == entry.signo) {
        on_signal(entry.signo);
      }
    }
  }
}

} // namespace

int main(int argc, char** argv) {
  const Options options = parse(argc, argv);

  // First, before this program opens anything of its own.
  if (!options.fds_out.empty()) {
    write_fd_list(options.fds_out);
  }
  if (!options.env_out.empty()) {
    write_environment(options.env_out);
  }
  if (!options.pid_file.empty()) {
    write_file_atomically(options.pid_file, std::to_string(::getpid()) + "\n");
  }
  if (options.print) {
    write_all(1, options.print_text + "\n");
  }
  if (!options.stdin_out.empty()) {
    copy_stdin(options.stdin_out);
  }
  if (!options.record_path.empty()) {
    g_record_fd = ::open(options.record_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (g_record_fd < 0) {
      die("cannot open", options.record_path);
    }
  }
  g_exit_on_signal = options.exit_on_signal;
  g_ignore_term = options.ignore_term;

  // Block the handled signals; they are delivered only inside ppoll.
  sigset_t handled;
  sigemptyset(&handled);
  for (const auto& entry : k_signals) {
    sigaddset(&handled, entry.signo);
  }
  sigset_t original;
  sigprocmask(SIG_BLOCK, &handled, &original);
  sigset_t wait_mask = original;
  for (const auto& entry : k_signals) {
    sigdelset(&wait_mask, entry.signo);
  }
  for (const auto& entry : k_signals) {
    struct sigaction action {};
    action.sa_handler = on_signal;
    sigfillset(&action.sa_mask);
    action.sa_flags = 0;
    sigaction(entry.signo, &action, nullptr);
  }

  if (!options.grandchild_pid_file.empty()) {
    spawn_grandchild(options.grandchild_pid_file);
  }
  if (!options.ready_path.empty()) {
    write_file_atomically(options.ready_path, "ready\n");
  }
  if (options.kill_self != 0) {
    kill_self(options.kill_self);
  }

  run_until_done(options, wait_mask);
  record_pending_signals();
  if (g_exit_signal != 0) {
    return 128 + g_exit_signal;
  }
  return options.exit_code;
}
