// SPDX-License-Identifier: MIT
// Black-box tests of `rlock status`: exit 0 held / 1 free, the listing, and the JSON document.
#include "helpers.hpp"
#include "redis_server.hpp"
#include "run.hpp"

#include <doctest/doctest.h>

#include <cctype>

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
