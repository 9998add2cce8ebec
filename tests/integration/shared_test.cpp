// SPDX-License-Identifier: MIT
// Shared locks (--shared): readers share a name, a plain acquire is the exclusive writer, one
// line by arrival serves both so that writers never starve; foreign clients are kept out while
// readers hold (SEMAPHORES AND SHARED LOCKS in rlock(1)). Also: --limit and --shared are 64 in
// quorum mode.
#include "helpers.hpp"
#include "redis_server.hpp"
#include "run.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <sstream>

namespace rlock::test {

namespace {

// A job that appends "+ NS WHO FENCE" on entry and "- NS WHO FENCE" on exit to FILE (NS from
// CLOCK_MONOTONIC, FENCE its RLOCK_FENCE), holding HOLD seconds. argv: FILE WHO HOLD.
const char* const k_recorder = R"(
import os, sys, time
def stamp(mark):
    with open(sys.argv[1], 'a') as f:
        f.write('%s %d %s %s\n' % (mark, time.clock_gettime_ns(time.CLOCK_MONOTONIC), sys.argv[2],
                                   os.environ['RLOCK_FENCE']))
stamp('+')
time.sleep(float(sys.argv[3]))
stamp('-')
)";

struct Stamp {
  char mark = '+';
  long long ns = 0;
  std::string who;
  long long fence = 0;
};

std::vector<Stamp> read_stamps(const std::string& path) {
  std::vector<Stamp> stamps;
  for (const std::string& line : split_lines(read_file(path))) {
    std::istringstream in(line);
    Stamp stamp;
    in >> stamp.mark >> stamp.ns >> stamp.who >> stamp.fence;
    stamps.push_back(stamp);
  }
  std::sort(stamps.begin(), stamps.end(), [](const Stamp& a, const Stamp& b) { return a.ns < b.ns; });
  return stamps;
}

const char* const k_py_try = R"(
import sys, redis
from redis.lock import Lock
r = redis.Redis(host="127.0.0.1", port=int(sys.argv[1]))
print("acquired" if Lock(r, sys.argv[2], timeout=5).acquire(blocking=False) else "busy")
)";

} // namespace

TEST_CASE("readers every 50 ms holding 200 ms: a writer starts within one reader hold, and no reader starts "
          "between its arrival and its release") {
  RedisServer redis;
  TempDir dir;
  const std::string log = dir.file("stamps");
  // 40 readers, one every 50 ms, each holding 200 ms: about four at a time.
  const std::string readers = "for i in $(seq 1 40); do \"$0\" --url \"$1\" exec --shared rw -- \"$2\" -c \"$3\" "
                              "\"$4\" r$i 0.2 & sleep 0.05; done; wait";
  BackgroundProcess stream({"/bin/sh", "-c", readers, rlock_bin(), redis.url(), k_python, k_recorder, log});
  REQUIRE(wait_until([&] { return redis.command({"ZCARD", lock_key("rw") + ":permits"}) >= "2"; }, 20s));
  BackgroundProcess writer(exec_argv(redis, "rw", {}, {k_python, "-c", k_recorder, log, "writer", "0.2"}));
  // Readers never queue while only readers hold and nobody waits: the first ticket in line is
  // the writer's, scored by its arrival on the server's clock (ms).
  std::string arrival;
  REQUIRE(wait_until(
      [&] {
        const std::vector<std::string> first =
            split_lines(redis.command({"ZRANGE", lock_key("rw") + ":line", "0", "0", "WITHSCORES"}));
        if (first.size() == 2) arrival = first[1];
        return !arrival.empty();
      },
      10s));
  INFO("writer: ", writer.err());
  REQUIRE(writer.wait(30s) == 0);
  REQUIRE(stream.wait(60s) == 0);

  const std::vector<Stamp> stamps = read_stamps(log);
  CHECK(stamps.size() == 82);
  const long long arrived_us = std::stoll(arrival) * 1000;
  const auto writer_in =
      std::find_if(stamps.begin(), stamps.end(), [](const Stamp& s) { return s.who == "writer" && s.mark == '+'; });
  const auto writer_out =
      std::find_if(stamps.begin(), stamps.end(), [](const Stamp& s) { return s.who == "writer" && s.mark == '-'; });
  REQUIRE(writer_in != stamps.end());
  REQUIRE(writer_out != stamps.end());
  const long long writer_fence = writer_in->fence; // the server's clock (µs) at its grant
  // It started within one reader hold (200 ms) of its arrival, with a generous margin.
  const long long waited_ms = (writer_fence - arrived_us) / 1000;
  INFO("the writer waited ", waited_ms, " ms");
  CHECK(waited_ms >= 0);
  CHECK(waited_ms <= 1200);
  int readers_before = 0;
  int readers_after = 0;
  int inside = 0;
  int most_readers = 0;
  for (const Stamp& stamp : stamps) {
    if (stamp.who == "writer") continue;
    inside += stamp.mark == '+' ? 1 : -1;
    most_readers = std::max(most_readers, inside);
    if (stamp.mark != '+') continue;
    // Fences rise with every grant of the name: a reader's tells when it was let in.
    INFO("reader ", stamp.who, " fence ", stamp.fence);
    CHECK_FALSE((stamp.fence > arrived_us && stamp.fence < writer_fence)); // none let in while it waited
    if (stamp.fence < writer_fence) {
      ++readers_before;
      // Out before the writer went in.
      const auto out = std::find_if(stamps.begin(), stamps.end(),
                                    [&](const Stamp& s) { return s.who == stamp.who && s.mark == '-'; });
      CHECK(out != stamps.end());
      if (out != stamps.end()) CHECK(out->ns < writer_in->ns);
    } else {
      ++readers_after;
      CHECK(stamp.ns > writer_out->ns); // none while it held
    }
  }
  CHECK(readers_before > 0);
  CHECK(readers_after > 0);
  CHECK(most_readers >= 2); // readers shared
  CHECK_FALSE(key_exists(redis, lock_key("rw")));
}

TEST_CASE("while readers hold, a redis-py Lock on the key fails, and so does an rlock writer's -n") {
  RedisServer redis;
  const std::string a = acquire_lease(redis, "data", "60s", {"--shared"});
  const std::string b = acquire_lease(redis, "data", "60s", {"--shared"});
  RunResult status = run_rlock(at(redis, {"status", "data"}));
  INFO(status.describe());
  CHECK(contains(status.out, "data: 2 readers (shared)"));
  RunResult py = run_python(k_py_try, {std::to_string(redis.port()), lock_key("data")});
  INFO(py.describe());
  CHECK(trim(py.out) == "busy");
  CHECK(run_rlock(at(redis, {"acquire", "data", "--lease", "-n"})).exit_code == 75);
  // Another kind: a semaphore.
  RunResult semaphore = run_rlock(at(redis, {"acquire", "data", "--limit", "2", "--lease", "-n"}));
  CHECK(semaphore.exit_code == 78);
  CHECK(contains(semaphore.err, "stored shared"));
  CHECK(run_rlock(at(redis, {"release", "data", "--token", a})).exit_code == 0);
  CHECK(trim(run_python(k_py_try, {std::to_string(redis.port()), lock_key("data")}).out) == "busy");
  CHECK(run_rlock(at(redis, {"release", "data", "--token", b})).exit_code == 0);
  CHECK(run_rlock(at(redis, {"release", "data", "--token", b})).exit_code == 76);
  CHECK(trim(run_python(k_py_try, {std::to_string(redis.port()), lock_key("data")}).out) == "acquired");
}

TEST_CASE("a writer holding keeps readers out; they all start at its release") {
  RedisServer redis;
  const std::string writer = acquire_lease(redis, "wr", "60s");
  std::vector<std::unique_ptr<BackgroundProcess>> readers;
  for (int i = 0; i < 3; ++i) {
    readers.push_back(std::make_unique<BackgroundProcess>(
        with_rlock(at(redis, {"acquire", "wr", "--shared", "--lease", "--ttl", "60s", "-w", "30s"}))));
  }
  REQUIRE(wait_until([&] { return redis.command({"ZCARD", lock_key("wr") + ":line"}) == "3"; }, 10s));
  for (auto& reader : readers) CHECK(reader->running());
  CHECK(run_rlock(at(redis, {"release", "wr", "--token", writer})).exit_code == 0);
  for (auto& reader : readers) {
    INFO(reader->err());
    CHECK(reader->wait(10s) == 0);
  }
  CHECK(redis.command({"ZCARD", lock_key("wr") + ":permits"}) == "3");
}

TEST_CASE("--limit and --shared are not supported in quorum mode (64)") {
  RedisServer a;
  RedisServer b;
  RedisServer c;
  for (const std::vector<std::string>& kind : {std::vector<std::string>{"--limit", "2"}, {"--shared"}}) {
    std::vector<std::string> args{"--url", a.url(), "--url", b.url(), "--url", c.url(), "exec", "q"};
    args.insert(args.end(), kind.begin(), kind.end());
    args.insert(args.end(), {"--", "true"});
    RunResult result = run_rlock(args);
    INFO(result.describe());
    CHECK(result.exit_code == 64);
    CHECK(contains(result.err, "not supported in quorum mode"));
    check_error_line(result);
  }
}

} // namespace rlock::test
