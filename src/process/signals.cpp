// SPDX-License-Identifier: MIT
// Signal masks, the signalfd, and signal names.
#include "process/signals.hpp"

#include "util/error.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <ctime>
#include <fmt/format.h>
#include <poll.h>
#include <pthread.h>
#include <unistd.h>

namespace rlock::process {

namespace {

struct SignalEntry {
  std::string_view name;
  int signo;
};

// Linux's standard signals by name. The first entry for a number is its canonical name; the
// aliases after it are only accepted when parsing.
constexpr std::array k_signal_table{
    SignalEntry{"HUP", SIGHUP},       SignalEntry{"INT", SIGINT},       SignalEntry{"QUIT", SIGQUIT},
    SignalEntry{"ILL", SIGILL},       SignalEntry{"TRAP", SIGTRAP},     SignalEntry{"ABRT", SIGABRT},
    SignalEntry{"BUS", SIGBUS},       SignalEntry{"FPE", SIGFPE},       SignalEntry{"KILL", SIGKILL},
    SignalEntry{"USR1", SIGUSR1},     SignalEntry{"SEGV", SIGSEGV},     SignalEntry{"USR2", SIGUSR2},
    SignalEntry{"PIPE", SIGPIPE},     SignalEntry{"ALRM", SIGALRM},     SignalEntry{"TERM", SIGTERM},
    SignalEntry{"STKFLT", SIGSTKFLT}, SignalEntry{"CHLD", SIGCHLD},     SignalEntry{"CONT", SIGCONT},
    SignalEntry{"STOP", SIGSTOP},     SignalEntry{"TSTP", SIGTSTP},     SignalEntry{"TTIN", SIGTTIN},
    SignalEntry{"TTOU", SIGTTOU},     SignalEntry{"URG", SIGURG},       SignalEntry{"XCPU", SIGXCPU},
    SignalEntry{"XFSZ", SIGXFSZ},     SignalEntry{"VTALRM", SIGVTALRM}, SignalEntry{"PROF", SIGPROF},
    SignalEntry{"WINCH", SIGWINCH},   SignalEntry{"IO", SIGIO},         SignalEntry{"PWR", SIGPWR},
    SignalEntry{"SYS", SIGSYS},       SignalEntry{"IOT", SIGABRT},      SignalEntry{"CLD", SIGCHLD},
    SignalEntry{"POLL", SIGIO},
};

std::optional<int> parse_number(std::string_view text) {
  if (text.empty() || text.front() == '+' || text.front() == '-') return std::nullopt;
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// "RTMIN", "RTMIN+N", "RTMAX", "RTMAX-N" (upper case already).
std::optional<int> parse_realtime(std::string_view name) {
  auto offset = [&](std::string_view base, char sign) -> std::optional<int> {
    std::string_view rest = name.substr(base.size());
    if (rest.empty()) return 0;
    if (rest.front() != sign) return std::nullopt;
    return parse_number(rest.substr(1));
  };
  std::optional<int> signo;
  if (name.starts_with("RTMIN")) {
    if (auto n = offset("RTMIN", '+')) signo = SIGRTMIN + *n;
  } else if (name.starts_with("RTMAX")) {
    if (auto n = offset("RTMAX", '-')) signo = SIGRTMAX - *n;
  }
  if (signo && *signo >= SIGRTMIN && *signo <= SIGRTMAX) return signo;
  return std::nullopt;
}

} // namespace

sigset_t supervised_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int signo : k_forwarded_signals) {
    sigaddset(&set, signo);
  }
  sigaddset(&set, SIGCHLD);
  return set;
}

SignalBlock::SignalBlock() : SignalBlock(supervised_signals()) {}

SignalBlock::SignalBlock(const sigset_t& signals) : m_signals(signals) {
  if (int err = pthread_sigmask(SIG_BLOCK, &m_signals, &m_original); err != 0) {
    throw SystemError("could not block signals (pthread_sigmask)", err);
  }
}

SignalBlock::~SignalBlock() {
  // Discard what is pending among the signals this block added (not those blocked before it).
  sigset_t added;
  sigemptyset(&added);
  bool any = false;
  for (int signo = 1; signo < NSIG; ++signo) {
    if (sigismember(&m_signals, signo) == 1 && sigismember(&m_original, signo) != 1) {
      sigaddset(&added, signo);
      any = true;
    }
  }
  if (any) {
    const timespec no_wait{0, 0};
    while (sigtimedwait(&added, nullptr, &no_wait) > 0 || errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &m_original, nullptr);
}

SignalFd::SignalFd(const sigset_t& signals) : m_fd(signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC)) {
  if (!m_fd) {
    throw SystemError("could not create a signalfd", errno);
  }
}

std::optional<signalfd_siginfo> SignalFd::read() {
  signalfd_siginfo info{};
  for (;;) {
    ssize_t n = ::read(m_fd.get(), &info, sizeof info);
    if (n == static_cast<ssize_t>(sizeof info)) return info;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return std::nullopt;
    throw SystemError("could not read the signalfd", n < 0 ? errno : EIO);
  }
}

std::size_t SignalFd::read(std::span<signalfd_siginfo> into) {
  for (;;) {
    ssize_t n = ::read(m_fd.get(), into.data(), into.size_bytes());
    if (n >= 0 && static_cast<std::size_t>(n) % sizeof(signalfd_siginfo) == 0) {
      return static_cast<std::size_t>(n) / sizeof(signalfd_siginfo);
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    throw SystemError("could not read the signalfd", n < 0 ? errno : EIO);
  }
}

void SignalFd::wait(std::chrono::steady_clock::time_point wake, int other_fd) const {
  using Clock = std::chrono::steady_clock;
  auto remaining = std::max<Clock::duration>(wake - Clock::now(), Clock::duration::zero());
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(remaining);
  auto nanoseconds = std::chrono::duration_cast<std::chrono::nanoseconds>(remaining - seconds);
  const timespec timeout{static_cast<time_t>(seconds.count()), static_cast<long>(nanoseconds.count())};
  pollfd fds[2] = {{m_fd.get(), POLLIN, 0}, {other_fd, POLLIN, 0}};
  if (::ppoll(fds, other_fd >= 0 ? 2 : 1, &timeout, nullptr) < 0 && errno != EINTR) {
    throw SystemError("could not wait for signals (ppoll)", errno);
  }
}

std::string signal_name(int signo) {
  for (const auto& entry : k_signal_table) {
    if (entry.signo == signo) return std::string(entry.name);
  }
  if (signo == SIGRTMIN) return "RTMIN";
  if (signo == SIGRTMAX) return "RTMAX";
  if (signo > SIGRTMIN && signo < SIGRTMAX) return fmt::format("RTMIN+{}", signo - SIGRTMIN);
  return std::to_string(signo);
}

int parse_signal(std::string_view text, std::string_view what) {
  if (auto number = parse_number(text)) {
    if (*number >= 1 && *number < NSIG) return *number;
  } else {
    std::string name;
    name.reserve(text.size());
    for (char c : text) {
      name.push_back(c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c);
    }
    std::string_view bare = name;
    if (bare.size() > 3 && bare.starts_with("SIG")) bare.remove_prefix(3);
    for (const auto& entry : k_signal_table) {
      if (entry.name == bare) return entry.signo;
    }
    if (auto signo = parse_realtime(bare)) return *signo;
  }
  throw UsageError(fmt::format("invalid {} '{}': use a name such as TERM or SIGINT, or a number "
                               "from 1 to {}",
                               what, text, NSIG - 1));
}

} // namespace rlock::process
