// SPDX-License-Identifier: MIT
// Interoperability with redis-py's Lock on the same key: each excludes the other, each releases
// only its own (INTEROPERABILITY in rlock(1)).
#include "helpers.hpp"
#include "redis_server.hpp"
#include "run.hpp"

#include <doctest/doctest.h>

namespace rlock::test {

namespace {

// argv: port name timeout_seconds. Prints "acquired" and the token, or "busy".
const char* const k_py_acquire = R"(
import sys, redis
from redis.lock import Lock
r = redis.Redis(host="127.0.0.1", port=int(sys.argv[1]))
lock = Lock(r, sys.argv[2], timeout=float(sys.argv[3]))
if lock.acquire(blocking=False):
    print("acquired")
    print(lock.local.token.decode())
else:
    print("busy")
)";

// argv: port name token. Prints "released" or "not-owned".
const char* const k_py_release = R"(
import sys, redis
from redis.lock import Lock
from redis.exceptions import LockNotOwnedError
r = redis.Redis(host="127.0.0.1", port=int(sys.argv[1]))
lock = Lock(r, sys.argv[2])
lock.local.token = sys.argv[3].encode()
try:
    lock.release()
    print("released")
except LockNotOwnedError:
    print("not-owned")
)";

std::string py_acquire(const RedisServer& redis, const std::string& key, const std::string& timeout = "60") {
  const RunResult result = run_python(k_py_acquire, {std::to_string(redis.port()), key, timeout});
  INFO("redis-py acquire: ", result.describe());
  REQUIRE(result.exit_code == 0);
  return result.out;
}

std::string py_release(const RedisServer& redis, const std::string& key, const std::string& token) {
  const RunResult result = run_python(k_py_release, {std::to_string(redis.port()), key, token});
  INFO("redis-py release: ", result.describe());
  REQUIRE(result.exit_code == 0);
  return trim(result.out);
}

} // namespace

TEST_CASE("python3-redis is available for the interop tests") {
  const RunResult result = run_python("import redis, redis.lock; print(redis.__version__)");
  INFO(result.describe());
  REQUIRE(result.exit_code == 0);
}

TEST_CASE("a redis-py Lock on rlock's key keeps rlock out, and rlock releases only its own") {
  RedisServer redis;
  const auto py = split_lines(py_acquire(redis, lock_key("job")));
  REQUIRE(py.size() == 2);
  REQUIRE(py[0] == "acquired");
  const std::string py_token = py[1];

  const RunResult busy = run_rlock(at(redis, {"acquire", "job", "--lease", "-n"}));
  INFO(busy.describe());
  CHECK(busy.exit_code == 75);
  CHECK(redis.command({"GET", lock_key("job")}) == py_token);

  const RunResult status = run_rlock(at(redis, {"status", "job"}));
  INFO(status.describe());
  CHECK(status.exit_code == 0);

  const RunResult release = run_rlock(at(redis, {"release", "job", "--token", "0123456789abcdef0123456789abcdef"}));
  INFO(release.describe());
  CHECK(release.exit_code == 76);
  CHECK(redis.command({"GET", lock_key("job")}) == py_token);

  const RunResult renew = run_rlock(at(redis, {"renew", "job", "--token", "0123456789abcdef0123456789abcdef"}));
  INFO(renew.describe());
  CHECK(renew.exit_code == 76);
  CHECK(redis.command({"GET", lock_key("job")}) == py_token);

  CHECK(py_release(redis, lock_key("job"), py_token) == "released");
  const RunResult after = run_rlock(at(redis, {"acquire", "job", "--lease", "-n"}));
  INFO(after.describe());
  CHECK(after.exit_code == 0);
}

TEST_CASE("an rlock lock keeps redis-py out, and redis-py cannot release it without the token") {
  RedisServer redis;
  const std::string token = acquire_lease(redis, "job", "60s");

  CHECK(trim(py_acquire(redis, lock_key("job"))) == "busy");
  CHECK(py_release(redis, lock_key("job"), "not-the-token") == "not-owned");
  CHECK(redis.command({"GET", lock_key("job")}) == token);

  // Same key format: redis-py given rlock's token may release it, and rlock then sees it free.
  CHECK(py_release(redis, lock_key("job"), token) == "released");
  const RunResult release = run_rlock(at(redis, {"release", "job", "--token", token}));
  INFO(release.describe());
  CHECK(release.exit_code == 76);
  CHECK(icontains(release.err, "free"));
}

TEST_CASE("an rlock waiter gets the lock after a redis-py holder releases it") {
  RedisServer redis;
  const auto py = split_lines(py_acquire(redis, lock_key("job")));
  REQUIRE(py.size() == 2);
  REQUIRE(py[0] == "acquired");

  BackgroundProcess waiter({rlock_bin(), "--url", redis.url(), "acquire", "job", "--lease", "-w", "60s"});
  REQUIRE(wait_until([&] { return split_lines(redis.command({"CLIENT", "LIST"})).size() >= 2; }, 10s));
  // redis-py's release sends no wake-up: rlock's bounded fallback re-check must notice it, and
  // "bounded" is taken to mean within 10 s here, although the holder's lease had 60 s to run.
  CHECK(py_release(redis, lock_key("job"), py[1]) == "released");
  const std::optional<int> code = waiter.try_wait(10s);
  INFO("waiter still waiting 10 s after the release: ", !code.has_value());
  INFO("waiter stderr: ", waiter.err());
  REQUIRE(code.has_value());
  CHECK(*code == 0);
  CHECK(redis.command({"GET", lock_key("job")}) == trim(waiter.out()));
}

} // namespace rlock::test
