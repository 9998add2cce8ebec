// SPDX-License-Identifier: MIT
// Semaphores (--limit N): at most N holders, each with its own permit, lease and fence; waiters
// served in arrival order; a crashed holder's permit lapses with its lease; a double release or
// a renewal of a lapsed permit changes nothing (76); another kind on the same name is 78
// (SEMAPHORES AND SHARED LOCKS in rlock(1)).
#include "helpers.hpp"
#include "redis_server.hpp"
#include "run.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <csignal>
#include <map>
#include <memory>
#include <sstream>

namespace rlock::test {

namespace {

using Clock = std::chrono::steady_clock;

// A job that appends "+ NS WHO" on entry and "- NS WHO" on exit to FILE, NS from
// CLOCK_MONOTONIC, holding for HOLD seconds between them. argv: FILE WHO HOLD.
const char* const k_recorder = R"(
import sys, time
def stamp(mark):
    with open(sys.argv[1], 'a') as f:
        f.write('%s %d %s\n' % (mark, time.clock_gettime_ns(time.CLOCK_MONOTONIC), sys.argv[2]))
stamp('+')
time.sleep(float(sys.argv[3]))
stamp('-')
)";

struct Stamp {
  char mark = '+';
  long long ns = 0;
  std::string who;
};

std::vector<Stamp> read_stamps(const std::string& path) {
  std::vector<Stamp> stamps;
  for (const std::string& line : split_lines(read_file(path))) {
    std::istringstream in(line);
    Stamp stamp;
    in >> stamp.mark >> stamp.ns >> stamp.who;
    stamps.push_back(stamp);
  }
  std::sort(stamps.begin(), stamps.end(), [](const Stamp& a, const Stamp& b) { return a.ns < b.ns; });
  return stamps;
}

// The most jobs inside at once, by the stamps.
int max_inside(const std::vector<Stamp>& stamps) {
  int inside = 0;
  int most = 0;
  for (const Stamp& stamp : stamps) {
    inside += stamp.mark == '+' ? 1 : -1;
    most = std::max(most, inside);
  }
  return most;
}

std::string permits_key(std::string_view name) { return lock_key(name) + ":permits"; }

long long count_permits(const RedisServer& redis, std::string_view name) {
  return std::stoll(redis.command({"ZCARD", permits_key(name)}));
}

long long line_length(const RedisServer& redis, std::string_view name) {
  return std::stoll(redis.command({"ZCARD", lock_key(name) + ":line"}));
}

} // namespace

TEST_CASE("8 workers on --limit 3: concurrency reaches 3 and never exceeds it") {
  RedisServer redis;
  TempDir dir;
  const std::string log = dir.file("stamps");
  // Each worker runs five jobs of 150 ms one after the other, each under the semaphore.
  const std::string loop = "for i in 1 2 3 4 5; do \"$0\" --url \"$1\" exec --limit 3 --ttl 10s conc -- \"$2\" -c "
                           "\"$3\" \"$4\" \"$5\" 0.15 || exit 9; done";
  std::vector<std::unique_ptr<BackgroundProcess>> workers;
  for (int w = 0; w < 8; ++w) {
    workers.push_back(std::make_unique<BackgroundProcess>(std::vector<std::string>{
        "/bin/sh", "-c", loop, rlock_bin(), redis.url(), k_python, k_recorder, log, "w" + std::to_string(w)}));
  }
  for (auto& worker : workers) {
    INFO(worker->err());
    CHECK(worker->wait(120s) == 0);
  }
  const std::vector<Stamp> stamps = read_stamps(log);
  CHECK(stamps.size() == 80);
  const int most = max_inside(stamps);
  INFO("most inside at once: ", most);
  CHECK(most == 3);
  CHECK_FALSE(key_exists(redis, lock_key("conc")));
  CHECK(count_permits(redis, "conc") == 0);
}

TEST_CASE("a SIGKILLed holder's permit is free within its TTL + 1 s") {
  RedisServer redis;
  TempDir dir;
  const std::string pid_a = dir.file("a.pid");
  const std::string pid_b = dir.file("b.pid");
  PidFileReaper reaper({pid_a, pid_b});
  BackgroundProcess a(exec_argv(redis, "crash", {"--limit", "2", "--ttl", "2s"},
                                {"/bin/sh", "-c", "echo $$ > \"$0\"; exec sleep 60", pid_a}));
  BackgroundProcess b(exec_argv(redis, "crash", {"--limit", "2", "--ttl", "2s"},
                                {"/bin/sh", "-c", "echo $$ > \"$0\"; exec sleep 60", pid_b}));
  REQUIRE(wait_until([&] { return count_permits(redis, "crash") == 2; }, 10s));
  BackgroundProcess waiter(with_rlock(at(redis, {"acquire", "crash", "--limit", "2", "--lease", "-w", "30s"})));
  REQUIRE(wait_until([&] { return line_length(redis, "crash") == 1; }, 10s));
  const Clock::time_point killed = Clock::now();
  a.kill(); // rlock and its job, with SIGKILL: nothing releases
  const int status = waiter.wait(30s);
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - killed);
  INFO("waiter: ", waiter.err(), "; took ", took.count(), " ms");
  CHECK(status == 0);
  CHECK(is_token(trim(waiter.out())));
  CHECK(took <= 3000ms); // TTL 2 s + 1 s
  CHECK(b.running());    // the live holder kept its permit
  CHECK(count_permits(redis, "crash") == 2);
  b.kill();
}

TEST_CASE("waiters for a permit are served in arrival order") {
  RedisServer redis;
  std::vector<std::string> held{acquire_lease(redis, "fifo", "60s", {"--limit", "2"}),
                                acquire_lease(redis, "fifo", "60s", {"--limit", "2"})};
  std::vector<std::unique_ptr<BackgroundProcess>> waiters;
  for (long long i = 0; i < 4; ++i) {
    waiters.push_back(std::make_unique<BackgroundProcess>(
        with_rlock(at(redis, {"acquire", "fifo", "--limit", "2", "--lease", "--ttl", "60s", "-w", "60s"}))));
    REQUIRE(wait_until([&] { return line_length(redis, "fifo") == i + 1; }, 10s));
  }
  // Each release lets exactly the oldest waiter in.
  for (std::size_t next = 0; next < waiters.size(); ++next) {
    const RunResult release = run_rlock(at(redis, {"release", "fifo", "--token", held.front()}));
    INFO(release.describe());
    REQUIRE(release.exit_code == 0);
    held.erase(held.begin());
    INFO("waiter ", next, ": ", waiters[next]->err());
    REQUIRE(waiters[next]->wait(10s) == 0);
    held.push_back(trim(waiters[next]->out()));
    REQUIRE(is_token(held.back()));
    for (std::size_t later = next + 1; later < waiters.size(); ++later) CHECK(waiters[later]->running());
    CHECK(count_permits(redis, "fifo") == 2);
  }
}

TEST_CASE("a double release is 76 and gives no permit back twice; a renewal after expiry is 76") {
  RedisServer redis;
  const std::string a = acquire_lease(redis, "twice", "60s", {"--limit", "2"});
  const std::string b = acquire_lease(redis, "twice", "60s", {"--limit", "2"});
  RunResult first = run_rlock(at(redis, {"release", "twice", "--token", a}));
  INFO(first.describe());
  CHECK(first.exit_code == 0);
  RunResult again = run_rlock(at(redis, {"release", "twice", "--token", a}));
  INFO(again.describe());
  CHECK(again.exit_code == 76);
  check_error_line(again);
  // One permit is free, not two.
  const std::string c = acquire_lease(redis, "twice", "60s", {"--limit", "2"});
  RunResult full = run_rlock(at(redis, {"acquire", "twice", "--limit", "2", "--lease", "-n"}));
  INFO(full.describe());
  CHECK(full.exit_code == 75);
  CHECK(count_permits(redis, "twice") == 2);

  // A permit that lapsed cannot be renewed, and the renewal changes nothing.
  const std::string short_lived = acquire_lease(redis, "lapse", "300ms", {"--limit", "3"});
  REQUIRE(wait_until([&] { return pttl(redis, lock_key("lapse")) == -2; }, 10s));
  RunResult renew = run_rlock(at(redis, {"renew", "lapse", "--token", short_lived, "--ttl", "30s"}));
  INFO(renew.describe());
  CHECK(renew.exit_code == 76);
  check_error_line(renew);
  CHECK_FALSE(key_exists(redis, lock_key("lapse")));
  RunResult release = run_rlock(at(redis, {"release", "lapse", "--token", short_lived}));
  CHECK(release.exit_code == 76);
  (void)b;
  (void)c;
}

TEST_CASE("a name used as another kind is 78 with both values") {
  RedisServer redis;
  (void)acquire_lease(redis, "kind", "60s", {"--limit", "3"});
  RunResult other = run_rlock(at(redis, {"acquire", "kind", "--limit", "5", "--lease", "-n"}));
  INFO(other.describe());
  CHECK(other.exit_code == 78);
  CHECK(contains(other.err, "limit conflict: stored 3, given 5"));
  check_error_line(other);
  RunResult mutex = run_rlock(at(redis, {"exec", "kind", "-n", "--", "true"}));
  INFO(mutex.describe());
  CHECK(mutex.exit_code == 78);
  CHECK(contains(mutex.err, "stored 3, given 1"));

  (void)acquire_lease(redis, "plain", "60s");
  RunResult semaphore = run_rlock(at(redis, {"exec", "plain", "--limit", "2", "--", "true"}));
  INFO(semaphore.describe());
  CHECK(semaphore.exit_code == 78);
  CHECK(contains(semaphore.err, "stored 1"));
  CHECK(contains(semaphore.err, "given 2"));

  // Nobody holds or waits: any kind may take the name.
  redis.command({"DEL", lock_key("free"), lock_key("free") + ":limit"});
  const std::string token = acquire_lease(redis, "free", "60s", {"--limit", "3"});
  CHECK(run_rlock(at(redis, {"release", "free", "--token", token})).exit_code == 0);
  CHECK(run_rlock(at(redis, {"exec", "free", "--limit", "5", "-n", "--", "true"})).exit_code == 0);
  CHECK(run_rlock(at(redis, {"exec", "free", "-n", "--", "true"})).exit_code == 0);
}

TEST_CASE("bad --limit values are usage errors") {
  RedisServer redis;
  for (const std::string bad : {"0", "-1", "x", "1001", ""}) {
    RunResult result = run_rlock(at(redis, {"exec", "bad", "--limit", bad, "--", "true"}));
    INFO(bad, ": ", result.describe());
    CHECK(result.exit_code == 64);
  }
  RunResult both = run_rlock(at(redis, {"exec", "bad", "--limit", "2", "--shared", "--", "true"}));
  CHECK(both.exit_code == 64);
  RunResult hold = run_rlock(at(redis, {"exec", "bad", "--limit", "2", "--min-hold", "1s", "--", "true"}));
  CHECK(hold.exit_code == 64);
}

TEST_CASE("status shows N/LIMIT held and every holder; --json has mode, limit and holders") {
  RedisServer redis;
  const std::string a = acquire_lease(redis, "seen", "60s", {"--limit", "3"});
  const std::string b = acquire_lease(redis, "seen", "60s", {"--limit", "3"});
  RunResult text = run_rlock(at(redis, {"status", "seen"}));
  INFO(text.describe());
  CHECK(text.exit_code == 0);
  CHECK(contains(text.out, "seen: 2/3 held"));
  CHECK(std::count(text.out.begin(), text.out.end(), '\n') >= 2);
  const std::vector<std::string> lines = split_lines(text.out);
  CHECK(std::count_if(lines.begin(), lines.end(),
                      [](const std::string& line) { return line.starts_with("seen: held by"); }) == 2);
  RunResult json = run_rlock(at(redis, {"status", "seen", "--json"}));
  INFO(json.describe());
  CHECK(is_valid_json(json.out));
  const RunResult parsed = run_python("import json,sys; d=json.loads(sys.argv[1])['lock']; "
                                      "print(d['mode'], d['limit'], len(d['holders']), d['held'], d['holder_kind'], "
                                      "len(set(h['fence'] for h in d['holders'])))",
                                      {json.out});
  INFO(parsed.describe());
  CHECK(trim(parsed.out) == "semaphore 3 2 True rlock 2");
  RunResult mutex = run_rlock(at(redis, {"status", "nothing", "--json"}));
  const RunResult free_parsed = run_python(
      "import json,sys; d=json.loads(sys.argv[1])['lock']; print(d['mode'], d['limit'], d['holders'])", {mutex.out});
  CHECK(trim(free_parsed.out) == "mutex 1 []");
  (void)a;
  (void)b;
}

TEST_CASE("release --force of a semaphore is refused (64) and breaks nothing") {
  RedisServer redis;
  const std::string token = acquire_lease(redis, "forced", "60s", {"--limit", "2"});
  RunResult forced = run_rlock(at(redis, {"release", "forced", "--force"}));
  INFO(forced.describe());
  CHECK(forced.exit_code == 64);
  check_error_line(forced);
  CHECK(redis.command({"GET", lock_key("forced")}) == "sem:2");
  CHECK(count_permits(redis, "forced") == 1);
  CHECK(run_rlock(at(redis, {"release", "forced", "--token", token})).exit_code == 0);
}

TEST_CASE("a redis-py Lock on a semaphore's key fails while a permit is held") {
  RedisServer redis;
  const std::string token = acquire_lease(redis, "py", "60s", {"--limit", "3"});
  const char* const py = R"(
import sys, redis
from redis.lock import Lock
r = redis.Redis(host="127.0.0.1", port=int(sys.argv[1]))
print("acquired" if Lock(r, sys.argv[2], timeout=5).acquire(blocking=False) else "busy")
)";
  RunResult busy = run_python(py, {std::to_string(redis.port()), lock_key("py")});
  INFO(busy.describe());
  CHECK(trim(busy.out) == "busy");
  CHECK(run_rlock(at(redis, {"release", "py", "--token", token})).exit_code == 0);
  RunResult free = run_python(py, {std::to_string(redis.port()), lock_key("py")});
  CHECK(trim(free.out) == "acquired");
}

} // namespace rlock::test
