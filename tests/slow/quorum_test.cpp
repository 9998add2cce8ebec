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
