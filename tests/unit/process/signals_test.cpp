// SPDX-License-Identifier: MIT
// Tests for signal names, parsing, SignalBlock and SignalFd.
#include "process/signals.hpp"

#include "util/error.hpp"

#include <array>
#include <doctest/doctest.h>
#include <pthread.h>

using namespace rlock::process;

namespace {

bool is_blocked(int signo) {
  sigset_t current;
  pthread_sigmask(SIG_SETMASK, nullptr, &current);
  return sigismember(&current, signo) == 1;
}

} // namespace

TEST_CASE("parse_signal accepts names with or without SIG, in any case, and numbers") {
  CHECK(parse_signal("TERM") == SIGTERM);
  CHECK(parse_signal("SIGTERM") == SIGTERM);
  CHECK(parse_signal("sigterm") == SIGTERM);
  CHECK(parse_signal("Term") == SIGTERM);
  CHECK(parse_signal("15") == SIGTERM);
  CHECK(parse_signal("9") == SIGKILL);
  CHECK(parse_signal("int") == SIGINT);
  CHECK(parse_signal("SIGUSR2") == SIGUSR2);
  CHECK(parse_signal("IOT") == SIGABRT);
  CHECK(parse_signal("CLD") == SIGCHLD);
  CHECK(parse_signal("RTMIN") == SIGRTMIN);
  CHECK(parse_signal("SIGRTMIN+2") == SIGRTMIN + 2);
  CHECK(parse_signal("rtmax-1") == SIGRTMAX - 1);
  CHECK(parse_signal(std::to_string(NSIG - 1)) == NSIG - 1);
}

TEST_CASE("parse_signal rejects everything else with a usage error") {
  for (const char* bad : {"", "0", "-15", "+15", "15x", "1.5", "65", "999999999999", "FOO", "SIG", "SIGSIGTERM",
                          " TERM", "TERM ", "RTMIN+", "RTMIN-1", "RTMAX+1", "RTMIN+100"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(parse_signal(bad), rlock::UsageError);
  }
  try {
    parse_signal("TREM", "--lost-signal");
    FAIL("no exception");
  } catch (const rlock::UsageError& error) {
    CHECK(std::string(error.what()).starts_with("invalid --lost-signal 'TREM'"));
    CHECK(error.code() == rlock::ExitCode::usage);
  }
}

TEST_CASE("signal_name gives the short canonical name and round-trips through parse_signal") {
  CHECK(signal_name(SIGTERM) == "TERM");
  CHECK(signal_name(SIGINT) == "INT");
  CHECK(signal_name(SIGABRT) == "ABRT");
  CHECK(signal_name(SIGCHLD) == "CHLD");
  CHECK(signal_name(SIGRTMIN) == "RTMIN");
  CHECK(signal_name(SIGRTMIN + 3) == "RTMIN+3");
  CHECK(signal_name(SIGRTMAX) == "RTMAX");
  CHECK(signal_name(200) == "200");
  for (int signo = 1; signo < NSIG; ++signo) {
    CAPTURE(signo);
    CHECK(parse_signal(signal_name(signo)) == signo);
  }
}

TEST_CASE("SignalBlock blocks the supervised signals and restores the mask") {
  REQUIRE_FALSE(is_blocked(SIGUSR1));
  {
    SignalBlock block;
    for (int signo : k_forwarded_signals) {
      CHECK(is_blocked(signo));
    }
    CHECK(is_blocked(SIGCHLD));
    CHECK(sigismember(&block.original_mask(), SIGUSR1) == 0);
    CHECK(sigismember(&block.signals(), SIGCHLD) == 1);
  }
  CHECK_FALSE(is_blocked(SIGUSR1));
  CHECK_FALSE(is_blocked(SIGCHLD));
}

TEST_CASE("SignalFd reads blocked signals; SignalBlock discards what is left pending") {
  {
    SignalBlock block;
    SignalFd signals(block.signals());
    CHECK_FALSE(signals.read().has_value());
    REQUIRE(kill(getpid(), SIGUSR1) == 0);
    auto info = signals.read();
    REQUIRE(info.has_value());
    CHECK(info->ssi_signo == SIGUSR1);
    CHECK(static_cast<pid_t>(info->ssi_pid) == getpid());
    CHECK_FALSE(signals.read().has_value());
    // Left pending: would kill the test process if it survived the block.
    REQUIRE(kill(getpid(), SIGUSR2) == 0);
    REQUIRE(kill(getpid(), SIGTERM) == 0);
  }
  sigset_t pending;
  sigpending(&pending);
  CHECK(sigismember(&pending, SIGUSR2) == 0);
  CHECK(sigismember(&pending, SIGTERM) == 0);
}

TEST_CASE("SignalFd reads what is pending in one call, up to the room given") {
  SignalBlock block;
  SignalFd signals(block.signals());
  std::array<signalfd_siginfo, 2> room{};
  CHECK(signals.read(room) == 0);
  REQUIRE(kill(getpid(), SIGUSR1) == 0);
  REQUIRE(kill(getpid(), SIGUSR2) == 0);
  REQUIRE(kill(getpid(), SIGHUP) == 0);
  REQUIRE(signals.read(room) == 2); // room for two of the three
  REQUIRE(signals.read(room) == 1); // fewer than asked: none left
  CHECK(signals.read(room) == 0);
  std::array<signalfd_siginfo, 4> more{};
  REQUIRE(kill(getpid(), SIGUSR1) == 0);
  REQUIRE(signals.read(more) == 1);
  CHECK(more[0].ssi_signo == SIGUSR1);
}
