// SPDX-License-Identifier: MIT
// rlock-fault-worker: the job the fault checker runs under `rlock exec`; it writes a shared
// resource through a fencing guard and logs what it did to a history file.
//
// Design. The worker models a client of a resource that honours fencing tokens:
//
//   1. B line: as soon as it starts, append "B ..." to the history (who, pid, parent pid,
//      fence, start stamp). Every stamp is CLOCK_MONOTONIC in nanoseconds, the same clock the
//      driver (Python's time.monotonic_ns) uses, so stamps from all processes compare.
//   2. Admission: under flock(guard), if our fence is lower than the highest fence the guard
//      has seen, the resource refuses us (outcome=rejected_stale stage=admit); otherwise the
//      guard records our fence and we read the counter (the last line of the resource
//      journal).
//   3. Work: sleep --work-us, outside the guard. If two holders overlapped here, the second
//      one's admission raises the fence and the first one's commit is refused; with equal
//      fences both would commit the same counter value (a lost update the checker sees).
//   4. Commit: under flock(guard), check the fence again (a holder paused past its lease
//      must be refused here: outcome=rejected_stale stage=commit), then append the new
//      counter value to the journal with one write(2), so a SIGKILL cannot tear it.
//   5. E line: the outcome and the admit/commit/end stamps.
//
// SIGTERM/SIGINT/SIGHUP (how rlock stops a job that lost its lock) write
// "E ... outcome=terminated" and exit 128+N at once. They are blocked inside the two guarded
// sections, so an outcome is never half-recorded; a SIGKILL leaves a B line without an E
// line, and the journal still tells whether the commit landed.
//
// --semaphore (the job of `rlock exec NAME --limit N`): up to N holders may run at once, each
// with its own fence, so the resource cannot refuse a lower fence (a long-running holder keeps a
// low one while others come and go): admission and commit check no fence and record none, and
// the commit reads the counter under the guard instead of admission (so concurrent holders
// lose no update). The checker counts the holders instead (check_history.py).
//
// Exit status: 0 ok, 3 rejected_stale, 2 usage, 4 I/O error, 128+N terminated by signal N.

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

namespace {

constexpr int k_exit_ok = 0;
constexpr int k_exit_usage = 2;
constexpr int k_exit_rejected = 3;
constexpr int k_exit_io = 4;

std::int64_t now_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Async-signal-safe append of a decimal number.
char* put_int(char* out, const char* end, std::int64_t value) noexcept {
  char digits[24];
  int count = 0;
  const bool negative = value < 0;
  auto magnitude = negative ? -static_cast<std::uint64_t>(value) : static_cast<std::uint64_t>(value);
  do {
    digits[count++] = static_cast<char>('0' + magnitude % 10);
    magnitude /= 10;
  } while (magnitude != 0 && count < 23);
  if (negative && out < end) {
    *out++ = '-';
  }
  while (count > 0 && out < end) {
    *out++ = digits[--count];
  }
  return out;
}

char* put_str(char* out, const char* end, const char* text) noexcept {
  while (*text != '\0' && out < end) {
    *out++ = *text++;
  }
  return out;
}

// Everything the signal handler needs, prepared before it is installed.
int g_history_fd = -1;
char g_prefix[256]; // "E w=.. i=.. lock=.. pid=.. fence=.. t_start=.."
std::size_t g_prefix_len = 0;
volatile sig_atomic_t g_admitted = 0;
volatile sig_atomic_t g_recorded = 0; // the E line is written: a late signal only exits

void write_all(int fd, const char* data, std::size_t size) noexcept {
  while (size > 0) {
    const ssize_t n = write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return;
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
}

extern "C" void on_stop_signal(int sig) {
  if (g_recorded != 0) {
    _exit(128 + sig);
  }
  const std::int64_t stamp = now_ns();
  char line[512];
  char* const end = line + sizeof line - 1;
  char* out = line;
  for (std::size_t i = 0; i < g_prefix_len; ++i) {
    *out++ = g_prefix[i];
  }
  out = put_str(out, end, " outcome=terminated sig=");
  out = put_int(out, end, sig);
  out = put_str(out, end, g_admitted != 0 ? " stage=work" : " stage=start");
  out = put_str(out, end, " t_end=");
  out = put_int(out, end, stamp);
  *out++ = '\n';
  write_all(g_history_fd, line, static_cast<std::size_t>(out - line));
  _exit(128 + sig);
}

struct Options {
  std::string dir;
  long worker = -1;
  long iteration = -1;
  long work_us = 0;
  std::string run_id;
  bool semaphore = false; // --semaphore: up to N holders at once (rlock exec --limit N)
};

[[noreturn]] void usage(const char* message) {
  (void)std::fprintf(stderr,
                     "fault-worker: %s\n"
                     "usage: rlock-fault-worker --dir RUN_DIR --worker ID --iter N [--work-us N] "
                     "[--run-id S] [--semaphore]\n"
                     "  run under `rlock exec NAME`: needs RLOCK_NAME and RLOCK_FENCE\n",
                     message);
  std::exit(k_exit_usage);
}

long parse_long(const char* text, const char* what) {
  char* end = nullptr;
  errno = 0;
  const long value = std::strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || value < 0) {
    usage((std::string("bad ") + what + ": " + text).c_str());
  }
  return value;
}

Options parse_options(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--semaphore") {
      options.semaphore = true;
      continue;
    }
    if (i + 1 >= argc) {
      usage(("missing value for " + std::string(arg)).c_str());
    }
    const char* value = argv[++i];
    if (arg == "--dir") {
      options.dir = value;
    } else if (arg == "--worker") {
      options.worker = parse_long(value, "--worker");
    } else if (arg == "--iter") {
      options.iteration = parse_long(value, "--iter");
    } else if (arg == "--work-us") {
      options.work_us = parse_long(value, "--work-us");
    } else if (arg == "--run-id") {
      options.run_id = value; // only marks our processes for the driver's leftover scan
    } else {
      usage(("unknown option " + std::string(arg)).c_str());
    }
  }
  if (options.dir.empty() || options.worker < 0 || options.iteration < 0) {
    usage("--dir, --worker and --iter are required");
  }
  return options;
}

// A lock name becomes part of file names: keep it to a safe alphabet.
bool safe_name(std::string_view name) {
  if (name.empty() || name.size() > 64) {
    return false;
  }
  for (const char c : name) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    if (!ok) {
      return false;
    }
  }
  return name != "." && name != "..";
}

class SignalBlock {
 public:
  SignalBlock() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, &m_old);
  }
  ~SignalBlock() { sigprocmask(SIG_SETMASK, &m_old, nullptr); }
  SignalBlock(const SignalBlock&) = delete;
  SignalBlock& operator=(const SignalBlock&) = delete;

 private:
  sigset_t m_old{};
};

class GuardLock {
 public:
  explicit GuardLock(int fd) : m_fd(fd) {
    while (flock(m_fd, LOCK_EX) != 0 && errno == EINTR) {
    }
  }
  ~GuardLock() { flock(m_fd, LOCK_UN); }
  GuardLock(const GuardLock&) = delete;
  GuardLock& operator=(const GuardLock&) = delete;

 private:
  int m_fd;
};

std::int64_t read_highest(int guard_fd) {
  char buf[64] = {};
  const ssize_t n = pread(guard_fd, buf, sizeof buf - 1, 0);
  if (n <= 0) {
    return 0;
  }
  const char* field = std::strstr(buf, "highest=");
  return field == nullptr ? 0 : std::strtoll(field + 8, nullptr, 10);
}

bool write_highest(int guard_fd, std::int64_t fence) {
  char buf[64];
  const int len = std::snprintf(buf, sizeof buf, "highest=%020lld\n", static_cast<long long>(fence));
  return pwrite(guard_fd, buf, static_cast<std::size_t>(len), 0) == len;
}

// The counter is the n= of the journal's last line (0 for an empty journal).
std::int64_t read_counter(int journal_fd) {
  struct stat st {};
  if (fstat(journal_fd, &st) != 0 || st.st_size == 0) {
    return 0;
  }
  char buf[512];
  const off_t start = st.st_size > static_cast<off_t>(sizeof buf) ? st.st_size - static_cast<off_t>(sizeof buf) : 0;
  const ssize_t n = pread(journal_fd, buf, static_cast<std::size_t>(st.st_size - start), start);
  if (n <= 0) {
    return -1;
  }
  std::string_view tail(buf, static_cast<std::size_t>(n));
  if (tail.back() == '\n') {
    tail.remove_suffix(1);
  }
  const auto line_start = tail.rfind('\n');
  const std::string_view line = line_start == std::string_view::npos ? tail : tail.substr(line_start + 1);
  if (line.substr(0, 2) != "n=") {
    return -1;
  }
  return std::strtoll(std::string(line.substr(2)).c_str(), nullptr, 10);
}

} // namespace

int main(int argc, char** argv) {
  const std::int64_t t_start = now_ns();
  const Options options = parse_options(argc, argv);

  const char* name_env = std::getenv("RLOCK_NAME");
  const char* fence_env = std::getenv("RLOCK_FENCE");
  if (name_env == nullptr || !safe_name(name_env)) {
    usage("RLOCK_NAME is missing or not a plain name (run me under `rlock exec NAME`)");
  }
  char* fence_end = nullptr;
  const long long fence = fence_env == nullptr ? -1 : std::strtoll(fence_env, &fence_end, 10);
  if (fence_env == nullptr || fence_end == fence_env || *fence_end != '\0' || fence < 0) {
    usage("RLOCK_FENCE is missing or not a number");
  }
  const std::string name = name_env;
  const std::string history_path = options.dir + "/history.log";
  const std::string guard_path = options.dir + "/guard." + name;
  const std::string journal_path = options.dir + "/resource." + name;

  g_history_fd = open(history_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  const int guard_fd = open(guard_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  const int journal_fd = open(journal_path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (g_history_fd < 0 || guard_fd < 0 || journal_fd < 0) {
    (void)std::fprintf(stderr, "fault-worker: cannot open files in %s: %s\n", options.dir.c_str(),
                       std::strerror(errno));
    return k_exit_io;
  }

  const long long pid = getpid();
  g_prefix_len = static_cast<std::size_t>(
      std::snprintf(g_prefix, sizeof g_prefix, "E w=%ld i=%ld lock=%s pid=%lld fence=%lld t_start=%lld", options.worker,
                    options.iteration, name.c_str(), pid, fence, static_cast<long long>(t_start)));
  if (g_prefix_len >= sizeof g_prefix) {
    usage("prefix too long");
  }

  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigfillset(&action.sa_mask);
  for (const int sig : {SIGTERM, SIGINT, SIGHUP}) {
    sigaction(sig, &action, nullptr);
  }

  char line[512];
  int len =
      std::snprintf(line, sizeof line, "B w=%ld i=%ld lock=%s pid=%lld ppid=%lld pgid=%lld fence=%lld t_start=%lld\n",
                    options.worker, options.iteration, name.c_str(), pid, static_cast<long long>(getppid()),
                    static_cast<long long>(getpgrp()), fence, static_cast<long long>(t_start));
  write_all(g_history_fd, line, static_cast<std::size_t>(len));

  // Admission.
  std::int64_t counter = 0;
  std::int64_t t_admit = 0;
  {
    SignalBlock blocked;
    GuardLock guard(guard_fd);
    t_admit = now_ns();
    const std::int64_t highest = options.semaphore ? 0 : read_highest(guard_fd);
    if (fence < highest) {
      len = std::snprintf(
          line, sizeof line, "%s outcome=rejected_stale stage=admit highest=%lld t_admit=%lld t_end=%lld\n", g_prefix,
          static_cast<long long>(highest), static_cast<long long>(t_admit), static_cast<long long>(now_ns()));
      write_all(g_history_fd, line, static_cast<std::size_t>(len));
      g_recorded = 1;
      return k_exit_rejected;
    }
    counter = read_counter(journal_fd);
    if ((!options.semaphore && !write_highest(guard_fd, fence)) || counter < 0) {
      (void)std::fprintf(stderr, "fault-worker: guard or journal unreadable in %s\n", options.dir.c_str());
      return k_exit_io;
    }
    g_admitted = 1;
  }

  // Work: the window in which an overlapping holder would interleave.
  if (options.work_us > 0) {
    timespec pause{options.work_us / 1'000'000, (options.work_us % 1'000'000) * 1000};
    while (nanosleep(&pause, &pause) != 0 && errno == EINTR) {
    }
  }

  // Commit. Signals stay blocked until exit: the outcome is written exactly once.
  SignalBlock blocked;
  GuardLock guard(guard_fd);
  const std::int64_t t_commit = now_ns();
  const std::int64_t highest = options.semaphore ? 0 : read_highest(guard_fd);
  if (options.semaphore) {
    counter = read_counter(journal_fd); // N holders at once: the counter as it is now
    if (counter < 0) {
      (void)std::fprintf(stderr, "fault-worker: journal unreadable in %s\n", options.dir.c_str());
      return k_exit_io;
    }
  }
  if (fence < highest) {
    len = std::snprintf(
        line, sizeof line,
        "%s outcome=rejected_stale stage=commit highest=%lld read=%lld t_admit=%lld t_commit=%lld t_end=%lld\n",
        g_prefix, static_cast<long long>(highest), static_cast<long long>(counter), static_cast<long long>(t_admit),
        static_cast<long long>(t_commit), static_cast<long long>(now_ns()));
    write_all(g_history_fd, line, static_cast<std::size_t>(len));
    g_recorded = 1;
    return k_exit_rejected;
  }
  len = std::snprintf(line, sizeof line, "n=%lld fence=%lld w=%ld i=%ld pid=%lld t=%lld\n",
                      static_cast<long long>(counter) + 1, fence, options.worker, options.iteration, pid,
                      static_cast<long long>(t_commit));
  if (write(journal_fd, line, static_cast<std::size_t>(len)) != len) {
    (void)std::fprintf(stderr, "fault-worker: journal write failed: %s\n", std::strerror(errno));
    return k_exit_io;
  }
  len = std::snprintf(line, sizeof line, "%s outcome=ok read=%lld wrote=%lld t_admit=%lld t_commit=%lld t_end=%lld\n",
                      g_prefix, static_cast<long long>(counter), static_cast<long long>(counter) + 1,
                      static_cast<long long>(t_admit), static_cast<long long>(t_commit),
                      static_cast<long long>(now_ns()));
  write_all(g_history_fd, line, static_cast<std::size_t>(len));
  g_recorded = 1;
  return k_exit_ok;
}
