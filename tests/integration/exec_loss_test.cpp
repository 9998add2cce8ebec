// SPDX-License-Identifier: MIT
// Black-box tests of lock loss under `rlock exec`: the job is stopped (exit 76) before its lease can expire.
#include "helpers.hpp"
#include "redis_server.hpp"
#include "run.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

namespace rlock::test {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr const char* k_other_token = "0123456789abcdef0123456789abcdef";

// Waits until the job is running under rlock; REQUIREs that rlock did not end first.
void require_ready(BackgroundProcess& rlock, const std::string& ready) {
  const bool ok = wait_until([&] { return file_exists(ready) || !rlock.running(); }, 10s);
  INFO("rlock stderr: ", rlock.err());
  REQUIRE(ok);
  REQUIRE(rlock.running());
}

// CLOCK_MONOTONIC in nanoseconds: the clock of steady_clock and of Python's time.CLOCK_MONOTONIC.
long long monotonic_ns(Clock::time_point at) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(at.time_since_epoch()).count();
}

// A job that writes "SIGNAME MONOTONIC_NS REALTIME_MS" when it receives a forwarded signal, then
// dies of it: the test child cannot timestamp. REALTIME_MS is on the clock Redis sets expiry
// times by (the same host's), so it compares with PEXPIRETIME. argv: RECORD READY.
constexpr const char* k_timed_recorder = R"(import os, resource, signal, sys, time
record, ready = sys.argv[1], sys.argv[2]
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
fd = os.open(record, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
# Blocked and taken with sigwaitinfo, as k_signal_recorder does: never lost before a pause().
watched = {getattr(signal, 'SIG' + name) for name in ('INT', 'TERM', 'HUP', 'QUIT', 'USR1', 'USR2')}
signal.pthread_sigmask(signal.SIG_BLOCK, watched)
for signo in watched:
    signal.signal(signo, signal.SIG_DFL)
with open(ready + '.tmp', 'w') as f:
    f.write('%d\n' % time.clock_gettime_ns(time.CLOCK_MONOTONIC))
os.rename(ready + '.tmp', ready)
signo = signal.sigwaitinfo(watched).si_signo
now = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
wall = time.time_ns() // 1000000
os.write(fd, ('%s %d %d\n' % (signal.Signals(signo).name[3:], now, wall)).encode())
os.kill(os.getpid(), signo)
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signo})
)";

// The TERM the timed recorder wrote down.
struct TermRecord {
  long long monotonic_ns = 0;
  long long unix_ms = 0;
};

TermRecord read_term_record(const std::string& path) {
  const auto record = split_lines(try_read_file(path).value_or(""));
  INFO("record: ", fmt::format("{}", fmt::join(record, " | ")));
  REQUIRE(record.size() == 1);
  std::istringstream line(record[0]);
  std::vector<std::string> fields{std::istream_iterator<std::string>(line), std::istream_iterator<std::string>()};
  REQUIRE(fields.size() == 3);
  REQUIRE(fields[0] == "TERM");
  return TermRecord{std::stoll(fields[1]), std::stoll(fields[2])};
}

// Starts the outage of Redis in one transaction with reading the lease's expiry on the server:
// rlock cannot renew in between, so the expiry read is the one the outage leaves the lease
// with (the acquisition's, or a renewal's if the test came late). `pause` is the CLIENT PAUSE
// that starts the outage, or stops writes until the caller stops the server. Returns the
// expiry in Unix milliseconds.
long long expiry_at_outage(const RedisServer& redis, const std::string& key, const std::vector<std::string>& pause) {
  const auto replies = split_lines(redis.transaction({{"PEXPIRETIME", key}, pause}));
  INFO("MULTI PEXPIRETIME, CLIENT PAUSE: ", fmt::format("{}", fmt::join(replies, " | ")));
  REQUIRE(replies.size() == 2);
  REQUIRE(replies[1] == "OK");
  const long long expiry = std::stoll(replies[0]);
  REQUIRE(expiry > 0); // the key exists and has a TTL
  return expiry;
}

struct OutageTiming {
  milliseconds term_after_seen{0};  // lower bound of the delay from acquisition to TERM
  milliseconds term_after_pause{0}; // from the moment Redis stopped answering
  milliseconds margin{0};           // from the TERM to the lease's expiry on the server
  milliseconds exit_after_term{0};
};

enum class Outage { sigstop, client_pause };

// Runs a job under --ttl `ttl`, makes Redis stop answering right after the acquisition and
// returns when the job got TERM, which must be before the lease expires on the server (its
// PEXPIRETIME when the outage began) and not at the first failed renewal.
OutageTiming measure_outage(Outage outage, milliseconds ttl) {
  RedisServer redis;
  TempDir dir;
  write_file(dir.file("recorder.py"), k_timed_recorder);
  BackgroundProcess rlock(exec_argv(redis, "outage", {"--ttl", fmt::format("{}ms", ttl.count())},
                                    {k_python, dir.file("recorder.py"), dir.file("record"), dir.file("ready")}));
  REQUIRE(wait_until([&] { return key_exists(redis, lock_key("outage")) || !rlock.running(); }, 10s));
  const auto seen = Clock::now();
  long long expiry_ms = 0;
  if (outage == Outage::sigstop) {
    // Writes stop with the read (a renewal is a write); SIGSTOP then stops everything.
    expiry_ms = expiry_at_outage(redis, lock_key("outage"), {"CLIENT", "PAUSE", "600000", "WRITE"});
    redis.pause();
  } else {
    expiry_ms =
        expiry_at_outage(redis, lock_key("outage"), {"CLIENT", "PAUSE", std::to_string(ttl.count() * 3 + 1000), "ALL"});
  }
  const auto paused = Clock::now();
  INFO("rlock stderr: ", rlock.err());
  REQUIRE(rlock.running());

  const auto code = rlock.try_wait(ttl * 3);
  const auto exited = Clock::now();
  if (outage == Outage::sigstop) {
    redis.resume();
    CHECK(redis.command({"CLIENT", "UNPAUSE"}) == "OK");
  }
  REQUIRE(code.has_value());
  CHECK(*code == 76);
  CHECK(icontains(rlock.err(), "lost"));
  const TermRecord term = read_term_record(dir.file("record"));
  auto since = [&](Clock::time_point from) {
    return milliseconds((term.monotonic_ns - monotonic_ns(from)) / 1'000'000);
  };
  OutageTiming timing;
  timing.term_after_seen = since(seen);
  timing.term_after_pause = since(paused);
  timing.margin = milliseconds(expiry_ms - term.unix_ms);
  timing.exit_after_term = milliseconds((monotonic_ns(exited) - term.monotonic_ns) / 1'000'000);
  MESSAGE(fmt::format("{} --ttl {}ms: TERM >= {} ms after acquisition ({:.0f}% of the TTL), {} ms after Redis "
                      "stopped answering, {} ms before the lease's expiry on the server; rlock exited {} ms after "
                      "the TERM",
                      outage == Outage::sigstop ? "SIGSTOP" : "CLIENT PAUSE", ttl.count(),
                      timing.term_after_seen.count(),
                      100.0 * static_cast<double>(timing.term_after_seen.count()) / static_cast<double>(ttl.count()),
                      timing.term_after_pause.count(), timing.margin.count(), timing.exit_after_term.count()));
  // The job got TERM before the lease could run out on the server...
  CHECK(term.unix_ms < expiry_ms);
  // ...but not at the first failed renewal: errors are retried until the safety deadline.
  CHECK(timing.term_after_seen >= ttl / 2);
  return timing;
}

} // namespace

TEST_CASE("the key deleted while the job runs: the job gets TERM and rlock exits 76, saying the lock was lost") {
  RedisServer redis;
  TempDir dir;
  BackgroundProcess rlock(exec_argv(
      redis, "deleted", {"--ttl", "900ms"},
      {test_child_bin(), "--record", dir.file("record"), "--ready", dir.file("ready"), "--sleep", "forever"}));
  require_ready(rlock, dir.file("ready"));
  const auto deleted = Clock::now();
  REQUIRE(redis.command({"DEL", lock_key("deleted")}) == "1");
  const auto code = rlock.try_wait(10s);
  const auto took = Clock::now() - deleted;
  INFO("rlock stderr: ", rlock.err());
  REQUIRE(code.has_value());
  CHECK(*code == 76);
  CHECK(read_file(dir.file("record")) == "TERM\n");
  CHECK(icontains(rlock.err(), "lost"));
  CHECK(contains(rlock.err(), "rlock: error: "));
  // Noticed at the next renewal, TTL/3 = 300ms later at most (with slack for a slow machine).
  CHECK(took < 3s);
  CHECK_FALSE(key_exists(redis, lock_key("deleted")));
}

TEST_CASE("another token takes the key: the job is stopped, rlock exits 76 and leaves the new holder alone") {
  RedisServer redis;
  TempDir dir;
  BackgroundProcess rlock(exec_argv(
      redis, "taken", {"--ttl", "900ms"},
      {test_child_bin(), "--record", dir.file("record"), "--ready", dir.file("ready"), "--sleep", "forever"}));
  require_ready(rlock, dir.file("ready"));
  REQUIRE(redis.command({"SET", lock_key("taken"), k_other_token, "PX", "60000"}) == "OK");
  const auto code = rlock.try_wait(10s);
  INFO("rlock stderr: ", rlock.err());
  REQUIRE(code.has_value());
  CHECK(*code == 76);
  CHECK(read_file(dir.file("record")) == "TERM\n");
  CHECK(icontains(rlock.err(), "lost"));
  CHECK(redis.command({"GET", lock_key("taken")}) == k_other_token);
  CHECK(pttl(redis, lock_key("taken")) > 50000);
}

TEST_CASE("--lost-signal chooses the signal the job gets on loss") {
  RedisServer redis;
  TempDir dir;
  // -v: a failure shows what rlock did (found the loss? sent which signal, SIGKILL after the
  // grace?). The grace is short and the wait long so that a job that did not end on USR1 shows
  // as "then SIGKILL" rather than as a timeout of this test.
  BackgroundProcess rlock(exec_argv(redis, "lostsig",
                                    {"-v", "--ttl", "900ms", "--lost-signal", "USR1", "--grace", "2s"},
                                    {test_child_bin(), "--record", dir.file("record"), "--ready", dir.file("ready"),
                                     "--exit-on-signal", "--sleep", "forever"}));
  require_ready(rlock, dir.file("ready"));
  REQUIRE(redis.command({"DEL", lock_key("lostsig")}) == "1");
  const auto code = rlock.try_wait(30s);
  INFO("rlock stderr: ", rlock.err());
  INFO("record: ", try_read_file(dir.file("record")).value_or("(none)"));
  INFO("rlock and its job: ", describe_process(rlock.pid()));
  REQUIRE(code.has_value());
  CHECK(*code == 76);
  CHECK(read_file(dir.file("record")) == "USR1\n");
  CHECK_FALSE(contains(rlock.err(), "then SIGKILL"));
}

TEST_CASE("a loss found at release (no renewal was due) exits 76 and says the lock was free") {
  RedisServer redis;
  TempDir dir;
  BackgroundProcess rlock(
      exec_argv(redis, "atrelease", {"--ttl", "60s"},
                {test_child_bin(), "--record", dir.file("record"), "--ready", dir.file("ready"), "--sleep", "1"}));
  require_ready(rlock, dir.file("ready"));
  REQUIRE(redis.command({"DEL", lock_key("atrelease")}) == "1");
  const auto code = rlock.try_wait(10s);
  INFO("rlock stderr: ", rlock.err());
  REQUIRE(code.has_value());
  CHECK(*code == 76);
  // The job ran to its end: no renewal was due to notice sooner.
  CHECK(try_read_file(dir.file("record")).value_or("").empty());
  CHECK(icontains(rlock.err(), "free"));
}

TEST_CASE("grandchildren and background processes of a -c job are stopped on loss") {
  RedisServer redis;
  TempDir dir;
  PidFileReaper reaper({dir.file("grandchild"), dir.file("background"), dir.file("child")});
  BackgroundOptions options;
  options.env = {"CHILD=" + test_child_bin(), "DIR=" + dir.path()};
  const std::string script =
      "sleep 300 & echo $! > \"$DIR/background\"; \"$CHILD\" --spawn-grandchild \"$DIR/grandchild\" --pid-file "
      "\"$DIR/child\" --ready \"$DIR/ready\" --sleep forever; echo after";
  BackgroundProcess rlock({rlock_bin(), "--url", redis.url(), "exec", "tree", "--ttl", "900ms", "-c", script}, options);
  require_ready(rlock, dir.file("ready"));
  REQUIRE(wait_until([&] { return file_exists(dir.file("grandchild")) && file_exists(dir.file("background")); }, 10s));
  const pid_t child = read_pid(dir.file("child"));
  const pid_t grandchild = read_pid(dir.file("grandchild"));
  const pid_t background = read_pid(dir.file("background"));
  REQUIRE_FALSE(process_gone(grandchild));
  REQUIRE_FALSE(process_gone(background));

  REQUIRE(redis.command({"DEL", lock_key("tree")}) == "1");
  const auto code = rlock.try_wait(15s);
  INFO("rlock stderr: ", rlock.err());
  REQUIRE(code.has_value());
  CHECK(*code == 76);
  // rlock returns once nothing of the job is left.
  CHECK(process_gone(child));
  CHECK(process_gone(grandchild));
  CHECK(process_gone(background));
}

TEST_CASE("a job that ignores TERM is SIGKILLed after --grace") {
  RedisServer redis;
  TempDir dir;
  PidFileReaper reaper({dir.file("pid")});
  BackgroundProcess rlock(exec_argv(redis, "stubborn", {"--ttl", "900ms", "--grace", "2s"},
                                    {test_child_bin(), "--record", dir.file("record"), "--ready", dir.file("ready"),
                                     "--pid-file", dir.file("pid"), "--ignore-term", "--sleep", "forever"}));
  require_ready(rlock, dir.file("ready"));
  const pid_t child = read_pid(dir.file("pid"));
  const auto deleted = Clock::now();
  REQUIRE(redis.command({"DEL", lock_key("stubborn")}) == "1");
  // The TERM comes at the next renewal (TTL/3 after the DEL at most); the SIGKILL a grace later.
  REQUIRE(wait_until([&] { return !try_read_file(dir.file("record")).value_or("").empty() || !rlock.running(); }, 10s));
  const auto code = rlock.try_wait(20s);
  const auto took = Clock::now() - deleted;
  INFO("rlock stderr: ", rlock.err());
  REQUIRE(code.has_value());
  CHECK(*code == 76);
  CHECK(read_file(dir.file("record")) == "TERM\n");
  // Measured from the DEL, which came before the TERM: never short, however late this test
  // saw the record. A SIGKILL sent with the TERM would end it some 2 s sooner.
  CHECK(took >= 2s);
  CHECK(process_gone(child));
  CHECK(contains(rlock.err(), "SIGKILL"));
}

TEST_CASE("Redis stops answering (SIGSTOP): the job is signalled before the lease could expire, --ttl 1500ms") {
  measure_outage(Outage::sigstop, 1500ms);
}

TEST_CASE("Redis stops answering (SIGSTOP): the job is signalled before the lease could expire, --ttl 3s") {
  measure_outage(Outage::sigstop, 3000ms);
}

TEST_CASE(
    "Redis stops answering (CLIENT PAUSE ALL): the job is signalled before the lease could expire, --ttl 1500ms") {
  measure_outage(Outage::client_pause, 1500ms);
}

TEST_CASE("Redis shut down: the job is signalled before the lease could have expired, --ttl 1500ms") {
  RedisServer redis;
  TempDir dir;
  write_file(dir.file("recorder.py"), k_timed_recorder);
  BackgroundProcess rlock(exec_argv(redis, "down", {"--ttl", "1500ms"},
                                    {k_python, dir.file("recorder.py"), dir.file("record"), dir.file("ready")}));
  REQUIRE(wait_until([&] { return key_exists(redis, lock_key("down")) || !rlock.running(); }, 10s));
  const auto seen = Clock::now();
  // No renewal between the read and the shutdown: writes stop with the read.
  const long long expiry_ms = expiry_at_outage(redis, lock_key("down"), {"CLIENT", "PAUSE", "600000", "WRITE"});
  redis.stop();
  const auto code = rlock.try_wait(5s);
  INFO("rlock stderr: ", rlock.err());
  REQUIRE(code.has_value());
  CHECK(*code == 76);
  const TermRecord term = read_term_record(dir.file("record"));
  const auto term_after_seen = milliseconds((term.monotonic_ns - monotonic_ns(seen)) / 1'000'000);
  MESSAGE(fmt::format("redis-server shut down, --ttl 1500ms: TERM >= {} ms after acquisition, {} ms before the "
                      "lease's expiry on the server",
                      term_after_seen.count(), expiry_ms - term.unix_ms));
  CHECK(term.unix_ms < expiry_ms);
  CHECK(term_after_seen >= 750ms);
}

TEST_CASE("an outage shorter than the margin does not stop the job") {
  // --ttl 3s: renewals every 1s, safety deadline 2.7s after the last good one. Redis stops
  // answering for 400ms across the first renewal; the retry after it keeps the lease, and the
  // job, which runs longer than one TTL, ends on its own.
  RedisServer redis;
  TempDir dir;
  BackgroundProcess rlock(exec_argv(
      redis, "blip", {"--ttl", "3s"},
      {test_child_bin(), "--record", dir.file("record"), "--ready", dir.file("ready"), "--sleep", "4", "--exit", "0"}));
  REQUIRE(wait_until([&] { return key_exists(redis, lock_key("blip")) || !rlock.running(); }, 10s));
  const auto seen = Clock::now();
  // Inject the outage at a chosen time (not a wait for some state): from 800ms to 1200ms after
  // the acquisition, around the first renewal at 1000ms.
  std::this_thread::sleep_until(seen + 800ms);
  redis.pause();
  std::this_thread::sleep_until(seen + 1200ms);
  redis.resume();
  REQUIRE(rlock.running());
  const auto code = rlock.try_wait(15s);
  INFO("rlock stderr: ", rlock.err());
  REQUIRE(code.has_value());
  CHECK(*code == 0);
  CHECK(try_read_file(dir.file("record")).value_or("").empty());
  CHECK_FALSE(key_exists(redis, lock_key("blip")));
}

TEST_CASE("an outage during every renewal, each shorter than the margin, does not stop the job") {
  // Three 500ms outages, one across each renewal: each renewal is late, none is missed for
  // longer than the margin.
  RedisServer redis;
  TempDir dir;
  BackgroundProcess rlock(
      exec_argv(redis, "flaky", {"--ttl", "3s"},
                {test_child_bin(), "--record", dir.file("record"), "--ready", dir.file("ready"), "--sleep", "4"}));
  REQUIRE(wait_until([&] { return key_exists(redis, lock_key("flaky")) || !rlock.running(); }, 10s));
  const auto seen = Clock::now();
  for (const auto at : {750ms, 1750ms, 2750ms}) {
    std::this_thread::sleep_until(seen + at);
    redis.pause();
    std::this_thread::sleep_until(seen + at + 500ms);
    redis.resume();
  }
  const auto code = rlock.try_wait(15s);
  INFO("rlock stderr: ", rlock.err());
  REQUIRE(code.has_value());
  CHECK(*code == 0);
  CHECK(try_read_file(dir.file("record")).value_or("").empty());
}

// A waiter woken by a release's hand-off starts its job before the claim's answer (saving a
// round trip); if the claim then fails, the job must be stopped at once. A real hand-off
// leaves no time to break the lock in between, so the test forges one: a fresh
// 'handoff:FENCE:NOW_MS' pushed to the waiter's wake list while someone else's token holds the key.
TEST_CASE("a hand-off whose claim fails (the key is someone else's): the job is stopped, rlock exits 76") {
  RedisServer redis;
  TempDir dir;
  REQUIRE(redis.command({"SET", lock_key("forged"), k_other_token, "PX", "60000"}) == "OK");
  PidFileReaper reaper({dir.file("pid")});
  BackgroundProcess rlock(exec_argv(redis, "forged", {"--ttl", "30s"},
                                    {test_child_bin(), "--record", dir.file("record"), "--pid-file", dir.file("pid"),
                                     "--ready", dir.file("ready"), "--sleep", "forever"}));
  REQUIRE(wait_until(
      [&] {
        return redis.command({"ZCARD", lock_key("forged") + ":line"}) == "1" || !rlock.running();
      },
      10s));
  INFO("rlock stderr: ", rlock.err());
  REQUIRE(rlock.running());
  std::this_thread::sleep_for(100ms); // from the line into BLPOP
  const std::string forged = redis.command(
      {"EVAL",
       "local t = redis.call('TIME') return string.format('handoff:99:%d', t[1] * 1000 + math.floor(t[2] / 1000))",
       "0"});
  REQUIRE(forged.starts_with("handoff:99:"));
  const std::string ticket = redis.command({"ZRANGE", lock_key("forged") + ":line", "0", "0"});
  REQUIRE(ticket.size() == 32);
  REQUIRE(redis.command({"RPUSH", lock_key("forged") + ":wake:" + ticket, forged}) == "1");
  const auto code = rlock.try_wait(10s);
  REQUIRE(code.has_value());
  CHECK(*code == 76);
  CHECK(icontains(rlock.err(), "lost"));
  // The job may have been stopped before it got to record anything; if it ran, TERM stopped it.
  const auto record = try_read_file(dir.file("record"));
  if (record) CHECK((record->empty() || *record == "TERM\n"));
  CHECK(redis.command({"GET", lock_key("forged")}) == k_other_token);
  CHECK(redis.command({"ZCARD", lock_key("forged") + ":line"}) == "0");
}

} // namespace rlock::test
