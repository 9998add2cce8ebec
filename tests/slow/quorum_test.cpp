// SPDX-License-Identifier: MIT
// rlock over a quorum of independent masters (rlock(1), QUORUM): five real redis-servers on
// loopback, some stopped (SIGSTOP), killed or emptied while rlock runs.
#include "helpers.hpp"
#include "redis_server.hpp"
#include "run.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using namespace rlock::test;
using namespace std::chrono_literals;

namespace {

struct Quorum {
  std::vector<std::unique_ptr<RedisServer>> nodes;
  explicit Quorum(std::size_t count = 5) {
    for (std::size_t i = 0; i < count; ++i) nodes.push_back(std::make_unique<RedisServer>());
  }
  RedisServer& operator[](std::size_t i) { return *nodes.at(i); }
  // {"--url", URL1, "--url", URL2, …, args…}
  std::vector<std::string> via(const std::vector<std::string>& args) const {
    std::vector<std::string> all;
    for (const auto& node : nodes) {
      all.emplace_back("--url");
      all.push_back(node->url());
    }
    all.insert(all.end(), args.begin(), args.end());
    return all;
  }
  std::size_t holding(const std::string& name) const {
    std::size_t count = 0;
    for (const auto& node : nodes) {
      if (node->running() && key_exists(*node, lock_key(name))) ++count;
    }
    return count;
  }
};

// The requests clients sent `node` that a waiter makes (scripts and BLPOPs), from INFO
// commandstats: a poller's attempts show here as EVALSHA calls, some four a second.
long long requests(const RedisServer& node) {
  long long total = 0;
  for (const std::string& line : split_lines(node.command({"INFO", "commandstats"}))) {
    for (const char* command : {"cmdstat_evalsha:calls=", "cmdstat_eval:calls=", "cmdstat_blpop:calls="}) {
      if (line.starts_with(command)) total += std::stoll(line.substr(std::string_view(command).size()));
    }
  }
  return total;
}

// The live watcher registrations on `node` for `name` (one per waiting rlock: each wait
// registers under a ticket of its own).
std::vector<std::string> watchers(const RedisServer& node, const std::string& name) {
  return split_lines(node.command({"ZRANGE", lock_key(name) + ":watchers", "0", "-1"}));
}

// Whether at least `count` clients are blocked (a waiter's BLPOP) on every running node.
bool blocked_everywhere(const Quorum& quorum, long long count = 1) {
  for (const auto& node : quorum.nodes) {
    if (!node->running()) continue;
    long long blocked = 0;
    for (const std::string& line : split_lines(node->command({"INFO", "clients"}))) {
      if (line.starts_with("blocked_clients:")) blocked = std::stoll(line.substr(16));
    }
    if (blocked < count) return false;
  }
  return true;
}

// exec NAME running a job that says it started (touches `started`) and holds the lock until
// `release` exists.
std::vector<std::string> holder_job(const Quorum& quorum, const std::string& name, const TempDir& dir,
                                    const std::vector<std::string>& options = {}) {
  std::vector<std::string> args = options;
  for (const std::string& part : std::vector<std::string>{"exec", name, "--", "sh", "-c",
                                                          "touch \"$0\"; while [ ! -e \"$1\" ]; do sleep 0.02; done",
                                                          dir.file("started"), dir.file("release")}) {
    args.push_back(part);
  }
  return with_rlock(quorum.via(args));
}

long long fence_of(const RunResult& result) {
  REQUIRE_MESSAGE(result.exit_code == 0, result.describe());
  return std::stoll(trim(result.out));
}

} // namespace

TEST_CASE("quorum: 3 of 5 up works; 2 of 5 up is 69 and leaves no key behind") {
  Quorum quorum;
  quorum[3].kill();
  quorum[4].kill();
  RunResult job = run_rlock(quorum.via({"exec", "q", "--", "sh", "-c", "echo in job"}));
  CHECK_MESSAGE(job.exit_code == 0, job.describe());
  CHECK(trim(job.out) == "in job");
  CHECK(quorum.holding("q") == 0);

  quorum[2].kill();
  RunResult down = run_rlock(quorum.via({"exec", "q", "--", "true"}));
  CHECK_MESSAGE(down.exit_code == 69, down.describe());
  check_error_line(down);
  CHECK(quorum.holding("q") == 0); // the two grants were given back
}

TEST_CASE("quorum: busy on a majority is 75 (-E applies); a minority holder does not make it busy") {
  Quorum quorum;
  for (std::size_t i = 0; i < 3; ++i) quorum[i].command({"SET", lock_key("b"), "someone-else", "PX", "30000"});
  RunResult busy = run_rlock(quorum.via({"exec", "b", "-w", "0", "--", "true"}));
  CHECK_MESSAGE(busy.exit_code == 75, busy.describe());
  RunResult custom = run_rlock(quorum.via({"exec", "b", "-w", "0", "-E", "3", "--", "true"}));
  CHECK_MESSAGE(custom.exit_code == 3, custom.describe());
  // Our failed attempt was released everywhere: the two free nodes hold nothing.
  CHECK_FALSE(key_exists(quorum[3], lock_key("b")));
  CHECK_FALSE(key_exists(quorum[4], lock_key("b")));

  quorum[2].command({"DEL", lock_key("b")});
  // Held by another client on 2 nodes only: 3 free nodes are a majority for us.
  RunResult minority = run_rlock(quorum.via({"exec", "b", "-w", "0", "--", "true"}));
  CHECK_MESSAGE(minority.exit_code == 0, minority.describe());
}

TEST_CASE("quorum: two nodes stopped, acquire still succeeds within about --node-timeout") {
  Quorum quorum;
  quorum[0].pause();
  quorum[1].pause();
  RunResult job = run_rlock(quorum.via({"--node-timeout", "200ms", "exec", "s", "--", "true"}));
  quorum[0].resume();
  quorum[1].resume();
  CHECK_MESSAGE(job.exit_code == 0, job.describe());
  MESSAGE("exec with 2 of 5 nodes stopped, --node-timeout 200ms: ", job.elapsed.count(), " ms");
}

TEST_CASE("quorum: a key deleted on one node during exec is set again by the next renewal") {
  Quorum quorum;
  TempDir dir;
  const std::string started = dir.path() + "/started";
  BackgroundProcess job(
      with_rlock(quorum.via({"exec", "r", "--ttl", "3s", "--", "sh", "-c", "touch \"$0\"; exec sleep 4", started})));
  REQUIRE(wait_until([&] { return file_exists(started); }, 10s));
  REQUIRE(quorum.holding("r") == 5);
  quorum[2].command({"DEL", lock_key("r")});
  CHECK_FALSE(key_exists(quorum[2], lock_key("r")));
  CHECK(wait_until([&] { return key_exists(quorum[2], lock_key("r")); }, 3s));
  CHECK(job.wait(20s) == 0);
}

TEST_CASE("quorum: majority lost while held stops the job, exit 76") {
  Quorum quorum;
  // Wait for the job itself: the keys are set before the fence is confirmed, and stopping the
  // majority in between makes that attempt fail (and the next ride out the outage for 30 s).
  TempDir dir;
  const std::string started = dir.path() + "/started";
  BackgroundProcess job(with_rlock(
      quorum.via({"-v", "exec", "m", "--ttl", "2s", "--", "sh", "-c", "touch \"$0\"; exec sleep 30", started})));
  REQUIRE(wait_until([&] { return file_exists(started); }, 10s));
  REQUIRE(quorum.holding("m") == 5);
  // Stopped, not killed: a killed node's port may be taken by another test's server, which
  // would be a node restarted empty (and rightly get the key back by the next renewal).
  const auto lost_at = std::chrono::steady_clock::now();
  quorum[0].pause();
  quorum[1].pause();
  quorum[2].pause();
  std::optional<int> status = job.try_wait(15s);
  const auto stopped_after = std::chrono::steady_clock::now() - lost_at;
  for (std::size_t i = 0; i < 3; ++i) quorum[i].resume();
  if (!status) job.kill();
  REQUIRE_MESSAGE(status.has_value(), job.err());
  CHECK(*status == 76);
  MESSAGE("majority stopped; the job was stopped after ",
          std::chrono::duration_cast<std::chrono::milliseconds>(stopped_after).count(), " ms (TTL 2s)");
}

TEST_CASE("quorum: fences pre-seeded far apart stay strictly increasing with rotating unreachable pairs") {
  Quorum quorum;
  // In TIME-microsecond terms, 100/50/0/0/0: counters far above the clock on two nodes.
  quorum[0].command({"SET", fence_key("f"), "9000000000000000"});
  quorum[1].command({"SET", fence_key("f"), "5000000000000000"});
  long long last = 0;
  for (int round = 0; round < 20; ++round) {
    std::size_t a = static_cast<std::size_t>(round) % 5;
    std::size_t b = (a + 1 + static_cast<std::size_t>(round / 5) % 4) % 5;
    quorum[a].pause();
    quorum[b].pause();
    RunResult job =
        run_rlock(quorum.via({"--node-timeout", "100ms", "exec", "f", "--", "sh", "-c", "echo $RLOCK_FENCE"}));
    quorum[a].resume();
    quorum[b].resume();
    long long fence = fence_of(job);
    CHECK_MESSAGE(fence > last, "round ", round, ": fence ", fence, " after ", last, " (paused ", a, ",", b, ")");
    last = fence;
  }
  CHECK(last > 9000000000000000LL);
}

TEST_CASE("quorum: 2 URLs, or a Sentinel/Cluster URL in the list, is 78; status says held on k/N") {
  Quorum quorum(3);
  RunResult two = run_rlock({"--url", quorum[0].url(), "--url", quorum[1].url(), "exec", "x", "--", "true"});
  CHECK_MESSAGE(two.exit_code == 78, two.describe());
  check_error_line(two);
  RunResult cluster =
      run_rlock({"--url", quorum[0].url(), "--url", quorum[1].url(), "--url",
                 fmt::format("redis+cluster://127.0.0.1:{}", quorum[2].port()), "exec", "x", "--", "true"});
  CHECK_MESSAGE(cluster.exit_code == 78, cluster.describe());
  check_error_line(cluster);
  RunOptions env;
  env.env.push_back(fmt::format("RLOCK_URL={} {} {}", quorum[0].url(), quorum[1].url(), quorum[2].url()));
  RunResult spaced = run_rlock({"acquire", "st", "--lease", "--ttl", "30s"}, env);
  REQUIRE_MESSAGE(spaced.exit_code == 0, spaced.describe());
  CHECK(quorum.holding("st") == 3);

  quorum[1].command({"DEL", lock_key("st")});
  RunResult status = run_rlock(quorum.via({"status", "st"}));
  CHECK_MESSAGE(status.exit_code == 0, status.describe());
  CHECK(contains(status.out, "held on 2/3"));
  CHECK(contains(status.out, quorum[1].url() + ": key missing"));
  quorum[2].command({"SET", lock_key("st"), "other", "PX", "30000"});
  RunResult split = run_rlock(quorum.via({"status", "st"}));
  CHECK_MESSAGE(split.exit_code == 1, split.describe());
  CHECK(contains(split.out, "held on 1/3"));
  CHECK(contains(split.out, "another token"));

  RunResult released = run_rlock(quorum.via({"release", "st", "--token", trim(spaced.out)}));
  CHECK_MESSAGE(released.exit_code == 0, released.describe());
  CHECK_FALSE(key_exists(quorum[0], lock_key("st")));
}

TEST_CASE("quorum: a granting node restarted empty at once lets a second holder in; the fence orders them") {
  Quorum quorum;
  // A takes the lock on nodes 0, 1, 2 (3 and 4 stopped).
  quorum[3].pause();
  quorum[4].pause();
  RunResult first =
      run_rlock(quorum.via({"--node-timeout", "100ms", "acquire", "u", "--lease", "--ttl", "60s", "--json"}));
  quorum[3].resume();
  quorum[4].resume();
  REQUIRE_MESSAGE(first.exit_code == 0, first.describe());
  const auto at = first.out.find("\"fence\":");
  REQUIRE(at != std::string::npos);
  const long long fence_a = std::stoll(first.out.substr(at + 8));
  // Node 2 restarts empty (no AOF): it forgets A's key and its own counter. With 0 and 1
  // unreachable, B gets a majority {2, 3, 4} while A still holds its lease: the documented
  // unsafe case. A resource that checks fences still refuses A from now on.
  quorum[2].command({"FLUSHALL"});
  quorum[0].pause();
  quorum[1].pause();
  RunResult second =
      run_rlock(quorum.via({"--node-timeout", "100ms", "exec", "u", "-w", "0", "--", "sh", "-c", "echo $RLOCK_FENCE"}));
  quorum[0].resume();
  quorum[1].resume();
  const long long fence_b = fence_of(second);
  CHECK_MESSAGE(fence_b > fence_a, "A's fence ", fence_a, ", B's ", fence_b);
}

TEST_CASE("quorum: a waiter is woken by the holder's release, and does not poll while it waits") {
  Quorum quorum;
  TempDir dir;
  BackgroundProcess holder(holder_job(quorum, "wk", dir));
  REQUIRE(wait_until([&] { return file_exists(dir.file("started")); }, 10s));
  BackgroundProcess waiter(with_rlock(quorum.via({"-v", "exec", "wk", "--", "sh", "-c", "echo waiter ran"})));
  // Registered as a watcher on every node, and blocked there: it does not poll.
  REQUIRE_MESSAGE(wait_until([&] { return blocked_everywhere(quorum); }, 10s), waiter.err());
  for (std::size_t i = 0; i < 5; ++i) CHECK(watchers(quorum[i], "wk").size() == 1);
  // A window to count in (not a timing assertion): a waiter that re-checked every 250 ms would
  // send some 12 attempts; this one sends none (a renewal of the holder's may fall in it).
  // Its BLPOP counted: what it sent before is counted too.
  REQUIRE(wait_until([&] { return contains(quorum[0].command({"INFO", "commandstats"}), "cmdstat_blpop:"); }, 10s));
  const long long before = requests(quorum[0]);
  std::this_thread::sleep_for(3s);
  const long long during = requests(quorum[0]) - before;
  CHECK_MESSAGE(during <= 3, during, " requests to one node in 3 s of waiting");
  MESSAGE("requests to one node during 3 s of waiting: ", during);
  const auto released_at = std::chrono::steady_clock::now();
  write_file(dir.file("release"), "");
  CHECK(holder.wait(10s) == 0);
  REQUIRE(waiter.wait(20s) == 0);
  MESSAGE("the waiter ended ",
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - released_at).count(),
          " ms after the holder's job was told to end (job polls every 20 ms)");
  CHECK(contains(waiter.out(), "waiter ran"));
  CHECK_MESSAGE(contains(waiter.err(), "woken by a release on"), waiter.err());
  for (std::size_t i = 0; i < 5; ++i) CHECK_FALSE(key_exists(quorum[i], lock_key("wk") + ":line"));
}

TEST_CASE("quorum: the wake still comes with a node stopped while the waiter blocks on it") {
  Quorum quorum;
  TempDir dir;
  BackgroundProcess holder(holder_job(quorum, "ws", dir, {"--node-timeout", "500ms"}));
  REQUIRE(wait_until([&] { return file_exists(dir.file("started")); }, 10s));
  BackgroundProcess waiter(
      with_rlock(quorum.via({"-v", "--node-timeout", "500ms", "exec", "ws", "--", "sh", "-c", "echo waiter ran"})));
  REQUIRE_MESSAGE(wait_until([&] { return blocked_everywhere(quorum); }, 10s), waiter.err());
  // Its BLPOP on node 2 stays pending: node 2 never answers it, nor the release.
  quorum[2].pause();
  write_file(dir.file("release"), "");
  std::optional<int> held = holder.try_wait(10s);
  std::optional<int> waited = waiter.try_wait(20s);
  quorum[2].resume();
  REQUIRE_MESSAGE(held.has_value(), holder.err());
  CHECK(*held == 0);
  REQUIRE_MESSAGE(waited.has_value(), waiter.err());
  CHECK_MESSAGE(*waited == 0, waiter.err());
  CHECK(contains(waiter.out(), "waiter ran"));
  CHECK_MESSAGE(contains(waiter.err(), "woken by a release on"), waiter.err());
}

TEST_CASE("quorum: a wake on one node only costs one look; the BLPOPs left pending are never misread") {
  Quorum quorum;
  TempDir dir;
  BackgroundProcess holder(holder_job(quorum, "wp", dir));
  REQUIRE(wait_until([&] { return file_exists(dir.file("started")); }, 10s));
  BackgroundProcess waiter(with_rlock(quorum.via({"-v", "exec", "wp", "--", "sh", "-c", "echo waiter ran"})));
  REQUIRE_MESSAGE(wait_until([&] { return blocked_everywhere(quorum); }, 10s), waiter.err());
  REQUIRE(watchers(quorum[0], "wp").size() == 1);
  const std::string first = watchers(quorum[0], "wp").at(0);
  // A wake pushed by hand on node 0 alone: the four other BLPOPs are still pending when the
  // waiter looks again; their connections must be closed (or drained), not read as the answer
  // to the next attempt.
  quorum[0].command({"RPUSH", lock_key("wp") + ":wake:" + first, "recheck"});
  REQUIRE_MESSAGE(wait_until([&] { return watchers(quorum[4], "wp").size() == 2 && blocked_everywhere(quorum); }, 10s),
                  waiter.err());
  CHECK(waiter.running());
  write_file(dir.file("release"), "");
  CHECK(holder.wait(10s) == 0);
  REQUIRE(waiter.wait(20s) == 0);
  CHECK(contains(waiter.out(), "waiter ran"));
  CHECK_MESSAGE(contains(waiter.err(), "did not answer its wait in time; reconnecting"), waiter.err());
  CHECK_FALSE(contains(waiter.err(), "error"));
}

TEST_CASE("quorum: rlock wait is 75 while held, 0 once released (woken), never joining a line") {
  Quorum quorum;
  RunResult held = run_rlock(quorum.via({"acquire", "ww", "--lease", "--ttl", "60s"}));
  REQUIRE_MESSAGE(held.exit_code == 0, held.describe());
  RunResult busy = run_rlock(quorum.via({"wait", "ww", "-w", "500ms"}));
  CHECK_MESSAGE(busy.exit_code == 75, busy.describe());
  RunResult once = run_rlock(quorum.via({"wait", "ww", "-w", "0", "-E", "3"}));
  CHECK_MESSAGE(once.exit_code == 3, once.describe());
  BackgroundProcess watcher(with_rlock(quorum.via({"-v", "wait", "ww"})));
  REQUIRE_MESSAGE(wait_until([&] { return blocked_everywhere(quorum); }, 10s), watcher.err());
  RunResult released = run_rlock(quorum.via({"release", "ww", "--token", trim(held.out)}));
  CHECK_MESSAGE(released.exit_code == 0, released.describe());
  std::optional<int> status = watcher.try_wait(20s);
  REQUIRE_MESSAGE(status.has_value(), watcher.err());
  CHECK_MESSAGE(*status == 0, watcher.err());
  CHECK_MESSAGE(contains(watcher.err(), "woken by a release on"), watcher.err());
  for (std::size_t i = 0; i < 5; ++i) CHECK_FALSE(key_exists(quorum[i], lock_key("ww") + ":line"));
  RunResult free = run_rlock(quorum.via({"wait", "ww", "-w", "0"}));
  CHECK_MESSAGE(free.exit_code == 0, free.describe());
  // Held on a minority only (another client on 2 of 5): no majority holds it, so it is free.
  for (std::size_t i = 0; i < 2; ++i) quorum[i].command({"SET", lock_key("ww"), "someone-else", "PX", "30000"});
  RunResult minority = run_rlock(quorum.via({"wait", "ww", "-w", "0"}));
  CHECK_MESSAGE(minority.exit_code == 0, minority.describe());
}

TEST_CASE("quorum: three waiters behind one holder are all served, one at a time, each woken by a release") {
  Quorum quorum;
  TempDir dir;
  BackgroundProcess holder(holder_job(quorum, "w3", dir));
  REQUIRE(wait_until([&] { return file_exists(dir.file("started")); }, 10s));
  // Each job fails (9) if another is inside at the same time, and logs its turn.
  const std::string job = "mkdir \"$0\" || exit 9; echo turn >> \"$1\"; sleep 0.2; rmdir \"$0\"";
  std::vector<std::unique_ptr<BackgroundProcess>> waiters;
  for (int i = 0; i < 3; ++i) {
    waiters.push_back(std::make_unique<BackgroundProcess>(
        with_rlock(quorum.via({"-v", "exec", "w3", "--", "sh", "-c", job, dir.file("inside"), dir.file("turns")}))));
  }
  REQUIRE(wait_until([&] { return blocked_everywhere(quorum, 3); }, 10s));
  write_file(dir.file("release"), "");
  CHECK(holder.wait(10s) == 0);
  for (auto& waiter : waiters) {
    std::optional<int> status = waiter->try_wait(30s);
    REQUIRE_MESSAGE(status.has_value(), waiter->err());
    CHECK_MESSAGE(*status == 0, waiter->err());
    CHECK_MESSAGE(contains(waiter->err(), "woken by a release on"), waiter->err());
  }
  CHECK(split_lines(read_file(dir.file("turns"))).size() == 3);
}
