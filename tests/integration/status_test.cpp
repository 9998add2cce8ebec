// SPDX-License-Identifier: MIT
// Black-box tests of `rlock status`: exit 0 held / 1 free, the listing, and the JSON document.
#include "helpers.hpp"
#include "redis_server.hpp"
#include "run.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <fmt/format.h>

namespace rlock::test {

namespace {

// Runs a Python check over a JSON document on stdin; the script exits non-zero on failure.
RunResult check_json(const std::string& document, const std::string& script, const std::vector<std::string>& args) {
  std::vector<std::string> argv{k_python, "-c", "import json, sys\ndoc = json.load(sys.stdin)\n" + script};
  argv.insert(argv.end(), args.begin(), args.end());
  RunOptions options;
  options.stdin_data = document;
  return run_program(argv, options);
}

// Every scalar in a JSON document, as text (Python repr of strings without quotes).
const char* const k_walk = R"(
def walk(node):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)
    else:
        yield str(node)
values = set(walk(doc))
)";

// Sets `count` locks held by another client, "many-00000" to "many-NNNNN" (sorted as
// numbered), in one script: thousands of names without thousands of round trips.
void set_foreign_locks(const RedisServer& redis, int count) {
  const std::string made = redis.command(
      {"EVAL",
       "for i = 0, tonumber(ARGV[1]) - 1 do redis.call('SET', string.format('rlock:{many-%05d}', i), 'sometoken', "
       "'PX', 600000) end return 1",
       "0", std::to_string(count)});
  REQUIRE(made == "1");
}

std::vector<std::string> foreign_lock_names(int count) {
  std::vector<std::string> names;
  for (int i = 0; i < count; ++i) names.push_back(fmt::format("many-{:05}", i));
  return names;
}

// The names of a text listing, in the order shown: each lock's first line is "NAME: ...",
// its detail lines are indented.
std::vector<std::string> listed_names(const std::string& out) {
  std::vector<std::string> names;
  for (const auto& line : split_lines(out)) {
    if (line.empty() || line.front() == ' ') continue;
    names.push_back(line.substr(0, line.find(": ")));
  }
  return names;
}

// Where two lists of names part ("" when they are equal), for a short failure message.
std::string first_difference(const std::vector<std::string>& got, const std::vector<std::string>& expected) {
  for (std::size_t i = 0; i < std::max(got.size(), expected.size()); ++i) {
    if (i >= got.size() || i >= expected.size() || got[i] != expected[i]) {
      return fmt::format("at {} of {} (expected {}): got '{}', expected '{}'", i, got.size(), expected.size(),
                         i < got.size() ? got[i] : "(end)", i < expected.size() ? expected[i] : "(end)");
    }
  }
  return {};
}

// Of many locks (several of status's batches), more than a pipe holds.
constexpr int k_many_locks = 3500;

} // namespace

TEST_CASE("status NAME exits 1 for a free lock and 0 for a held one") {
  RedisServer redis;
  const RunResult free = run_rlock(at(redis, {"status", "job"}));
  INFO(free.describe());
  CHECK(free.exit_code == 1);
  CHECK(free.err.empty());

  acquire_lease(redis, "job", "60s");
  const RunResult held = run_rlock(at(redis, {"status", "job"}));
  INFO(held.describe());
  CHECK(held.exit_code == 0);
  CHECK(contains(held.out, "job"));
  // By whom: the holder's host is shown.
  CHECK(contains(held.out, host_name()));
}

TEST_CASE("status -q prints nothing and only answers with the exit code") {
  RedisServer redis;
  const RunResult free = run_rlock(at(redis, {"status", "job", "-q"}));
  INFO(free.describe());
  CHECK(free.exit_code == 1);
  CHECK(free.out.empty());

  acquire_lease(redis, "job");
  const RunResult held = run_rlock(at(redis, {"-q", "status", "job"}));
  INFO(held.describe());
  CHECK(held.exit_code == 0);
  CHECK(held.out.empty());
}

TEST_CASE("status with no name lists every lock under the prefix") {
  RedisServer redis;
  acquire_lease(redis, "alpha-lock");
  acquire_lease(redis, "beta-lock");
  acquire_lease(redis, "gamma-lock", "30s", {"--prefix", "other:"});
  // A lock taken by another client (no metadata) is a lock too.
  REQUIRE(redis.command({"SET", lock_key("foreign-lock"), "sometoken", "PX", "60000"}) == "OK");
  // Unrelated keys are not locks.
  REQUIRE(redis.command({"SET", "unrelated", "x"}) == "OK");

  const RunResult result = run_rlock(at(redis, {"status"}));
  INFO(result.describe());
  CHECK(result.exit_code == 0);
  CHECK(contains(result.out, "alpha-lock"));
  CHECK(contains(result.out, "beta-lock"));
  CHECK(contains(result.out, "foreign-lock"));
  CHECK_FALSE(contains(result.out, "gamma-lock"));
  CHECK_FALSE(contains(result.out, "unrelated"));
  // The side keys are not listed as locks of their own.
  CHECK_FALSE(contains(result.out, ":meta"));
  CHECK_FALSE(contains(result.out, ":fence"));

  const RunResult other = run_rlock(at(redis, {"--prefix", "other:", "status"}));
  INFO(other.describe());
  CHECK(other.exit_code == 0);
  CHECK(contains(other.out, "gamma-lock"));
  CHECK_FALSE(contains(other.out, "alpha-lock"));
}

TEST_CASE("status lists many locks (SCAN pages through them)") {
  RedisServer redis;
  for (int i = 0; i < 150; ++i) {
    redis.command({"SET", lock_key("bulk-" + std::to_string(i)), "sometoken", "PX", "60000"});
  }
  const RunResult result = run_rlock(at(redis, {"status"}));
  INFO(result.describe());
  CHECK(result.exit_code == 0);
  int found = 0;
  for (int i = 0; i < 150; ++i) {
    const std::string name = "bulk-" + std::to_string(i);
    for (const auto& line : split_lines(result.out)) {
      if (contains(line, name) && (line.size() == name.size() ||
                                   !std::isdigit(static_cast<unsigned char>(line[line.find(name) + name.size()])))) {
        ++found;
        break;
      }
    }
  }
  CHECK(found == 150);
}

TEST_CASE("status lists thousands of locks, each once, sorted by name (rlock(1): status)") {
  RedisServer redis;
  set_foreign_locks(redis, k_many_locks);
  acquire_lease(redis, "many-rlock-a", "60s");
  acquire_lease(redis, "many-rlock-b", "60s");
  std::vector<std::string> expected = foreign_lock_names(k_many_locks);
  expected.emplace_back("many-rlock-a");
  expected.emplace_back("many-rlock-b");
  std::sort(expected.begin(), expected.end());

  const RunResult text = run_rlock(at(redis, {"status"}));
  INFO(text.err);
  CHECK(text.exit_code == 0);
  CHECK(text.err.empty());
  CHECK(first_difference(listed_names(text.out), expected) == "");
  // The holders rlock recorded are shown in full wherever their batch falls.
  CHECK(contains(text.out, "many-rlock-b: held by "));

  const RunResult json = run_rlock(at(redis, {"status", "--json"}));
  CHECK(json.exit_code == 0);
  REQUIRE(is_valid_json(json.out));
  CHECK(std::count(json.out.begin(), json.out.end(), '\n') == 1);
  const RunResult names = check_json(json.out,
                                     "assert doc['version'] == 1 and all(lock['held'] for lock in doc['locks'])\n"
                                     "print('\\n'.join(lock['name'] for lock in doc['locks']))\n",
                                     {});
  INFO(names.err);
  CHECK(names.exit_code == 0);
  CHECK(first_difference(split_lines(names.out), expected) == "");

  // -q: the exit status only; --json is printed all the same.
  const RunResult quiet = run_rlock(at(redis, {"-q", "status"}));
  CHECK(quiet.exit_code == 0);
  CHECK(quiet.out.empty());
  const RunResult quiet_json = run_rlock(at(redis, {"-q", "status", "--json"}));
  CHECK(quiet_json.exit_code == 0);
  CHECK(is_valid_json(quiet_json.out));
  CHECK(quiet_json.out.size() > json.out.size() / 2);
}

TEST_CASE("status skips a lock released while it lists, and lists the rest") {
  // Deterministic: rlock's standard output is a pipe of one page that nobody reads yet, so
  // rlock stops in the write of its first batch, after the SCAN, having asked for one batch
  // more at most. The last lock by name (in the fourth batch) is released then.
  RedisServer redis;
  set_foreign_locks(redis, k_many_locks);
  REQUIRE(redis.command({"SET", lock_key("zz-released"), "sometoken", "PX", "600000"}) == "OK");
  TempDir dir;
  const std::string fifo = dir.file("out");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  const int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  REQUIRE(reader >= 0);
  REQUIRE(::fcntl(reader, F_SETPIPE_SZ, 4096) >= 0);
  BackgroundOptions options;
  options.stdout_path = fifo;
  BackgroundProcess rlock(with_rlock(at(redis, {"status"})), options);
  const bool writing = wait_until(
      [&] {
        int queued = 0;
        return ::ioctl(reader, FIONREAD, &queued) == 0 && queued > 0;
      },
      10s);
  REQUIRE(writing);
  REQUIRE(redis.command({"DEL", lock_key("zz-released")}) == "1");
  std::string out;
  for (;;) {
    pollfd readable{reader, POLLIN, 0};
    REQUIRE(::poll(&readable, 1, 10'000) == 1);
    char buffer[65536];
    const ssize_t n = ::read(reader, buffer, sizeof buffer);
    if (n == 0) break;
    if (n < 0 && errno == EAGAIN) continue;
    REQUIRE(n > 0);
    out.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(reader);
  const int status = rlock.wait();
  INFO(rlock.err());
  CHECK(status == 0);
  CHECK(rlock.err().empty());
  CHECK(first_difference(listed_names(out), foreign_lock_names(k_many_locks)) == "");
}

TEST_CASE("a closed stdout ends a listing of many locks quietly, the batch read ahead dropped") {
  RedisServer redis;
  set_foreign_locks(redis, k_many_locks);
  // rlock's stdout is a pipe whose reader has gone: its first write fails with EPIPE, while the
  // second batch is on its way. Prints rlock's exit status, then its stderr.
  const std::string script = "import os, subprocess, sys\n"
                             "reader, writer = os.pipe()\n"
                             "os.close(reader)\n"
                             "done = subprocess.run(sys.argv[1:], stdout=writer, stderr=subprocess.PIPE)\n"
                             "print(done.returncode)\n"
                             "sys.stdout.write(done.stderr.decode())\n";
  for (const std::vector<std::string>& args : {std::vector<std::string>{"status"}, {"status", "--json"}}) {
    CAPTURE(args);
    std::vector<std::string> argv = with_rlock(at(redis, args));
    const RunResult result = run_python(script, argv);
    INFO(result.describe());
    CHECK(result.out == "0\n");
  }
}

TEST_CASE("status --json of a held lock is one JSON document with the name and the fence") {
  RedisServer redis;
  acquire_lease(redis, "job", "60s");
  const std::string fence = redis.command({"GET", fence_key("job")});
  const RunResult result = run_rlock(at(redis, {"status", "job", "--json"}));
  INFO(result.describe());
  CHECK(result.exit_code == 0);
  CHECK(is_valid_json(result.out));
  const RunResult check = check_json(result.out,
                                     std::string(k_walk) + "sys.exit(0 if sys.argv[1] in values and sys.argv[2] in "
                                                           "values and sys.argv[3] in values else 1)\n",
                                     {"job", fence, host_name()});
  INFO("fence ", fence, "; ", check.describe());
  CHECK(check.exit_code == 0);
}

TEST_CASE("status --json of a free lock is valid JSON and exits 1") {
  RedisServer redis;
  const RunResult result = run_rlock(at(redis, {"status", "job", "--json"}));
  INFO(result.describe());
  CHECK(result.exit_code == 1);
  CHECK(is_valid_json(result.out));
}

TEST_CASE("status --json with no name is one JSON document listing the locks") {
  RedisServer redis;
  acquire_lease(redis, "alpha-lock");
  acquire_lease(redis, "beta-lock");
  const RunResult result = run_rlock(at(redis, {"status", "--json"}));
  INFO(result.describe());
  CHECK(result.exit_code == 0);
  CHECK(is_valid_json(result.out));
  const RunResult check =
      check_json(result.out, std::string(k_walk) + "sys.exit(0 if set(sys.argv[1:]) <= values else 1)\n",
                 {"alpha-lock", "beta-lock"});
  INFO(check.describe());
  CHECK(check.exit_code == 0);
}

TEST_CASE("status of a lock held by another client reports it held") {
  RedisServer redis;
  REQUIRE(redis.command({"SET", lock_key("job"), "sometoken", "PX", "60000"}) == "OK");
  const RunResult result = run_rlock(at(redis, {"status", "job"}));
  INFO(result.describe());
  CHECK(result.exit_code == 0);
  const RunResult json = run_rlock(at(redis, {"status", "job", "--json"}));
  INFO(json.describe());
  CHECK(json.exit_code == 0);
  CHECK(is_valid_json(json.out));
}

TEST_CASE("status does not write to Redis") {
  RedisServer redis;
  const RunResult free = run_rlock(at(redis, {"status", "job"}));
  INFO(free.describe());
  CHECK(free.exit_code == 1);
  CHECK(redis.command({"DBSIZE"}) == "0");
}

} // namespace rlock::test
