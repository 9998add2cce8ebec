// SPDX-License-Identifier: MIT
// Black-box tests of acquire's default mode: a keeper renews the lease while the owner lives
// and releases it when the owner exits (THE KEEPER in rlock(1)).
#include "helpers.hpp"
#include "redis_server.hpp"
#include "run.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>

#include <algorithm>
#include <csignal>

namespace rlock::test {

TEST_CASE("the keeper renews the lease while the owner lives") {
  RedisServer redis;
  TempDir dir;
  BackgroundProcess owner({test_child_bin(), "--sleep", "forever", "--ready", dir.file("ready")});
  REQUIRE(wait_until([&] { return file_exists(dir.file("ready")); }, 10s));

  const RunResult result =
      run_rlock(at(redis, {"acquire", "job", "--ttl", "900ms", "--owner-pid", std::to_string(owner.pid())}));
  INFO(result.describe());
  REQUIRE(result.exit_code == 0);
  const std::string token = trim(result.out);
  REQUIRE(is_token(token));

  // A renewal shows as the remaining lease going up again.
  long long lowest = pttl(redis, lock_key("job"));
  const bool renewed = wait_until(
      [&] {
        const long long now = pttl(redis, lock_key("job"));
        if (now < 0) {
          return false;
        }
        if (now > lowest + 100) {
          return true;
        }
        lowest = std::min(lowest, now);
        return false;
      },
      5s);
  CHECK(renewed);
  // Well past the first lease's end, it is still ours.
  CHECK(redis.command({"GET", lock_key("job")}) == token);
  owner.kill();
}

TEST_CASE("the keeper releases the lock when the owner exits") {
  RedisServer redis;
  TempDir dir;
  BackgroundProcess owner({test_child_bin(), "--sleep", "forever", "--ready", dir.file("ready")});
  REQUIRE(wait_until([&] { return file_exists(dir.file("ready")); }, 10s));

  const RunResult result =
      run_rlock(at(redis, {"acquire", "job", "--ttl", "60s", "--owner-pid", std::to_string(owner.pid()), "-v"}));
  INFO(result.describe());
  REQUIRE(result.exit_code == 0);
  // -v says which owner was chosen.
  CHECK(contains(result.err, std::to_string(owner.pid())));
  REQUIRE(key_exists(redis, lock_key("job")));

  owner.signal(SIGTERM);
  CHECK(owner.wait(10s) == 128 + SIGTERM);
  // The lease was 60s: only the keeper's release can free it this soon.
  CHECK(wait_until([&] { return !key_exists(redis, lock_key("job")); }, 10s));
}

TEST_CASE("tok=$(rlock acquire) ties the lock to the script, not the $(...) subshell") {
  RedisServer redis;
  TempDir dir;
  const std::string fifo = dir.file("fifo");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  // The script takes the lock, writes the token out, then blocks until killed.
  const std::string script = R"(tok=$("$RLOCK_BIN" --url "$URL" acquire job --ttl 60s 2>/dev/null) || exit 3
printf '%s' "$tok" > "$DIR/token.tmp" && mv "$DIR/token.tmp" "$DIR/token"
read -r line < "$DIR/fifo"
)";
  BackgroundOptions options;
  options.env = {"RLOCK_BIN=" + rlock_bin(), "URL=" + redis.url(), "DIR=" + dir.path()};
  BackgroundProcess shell({"/bin/bash", "-c", script}, options);

  // The $(...) returns: the keeper does not hold its stdout open.
  REQUIRE(wait_until([&] { return file_exists(dir.file("token")) || !shell.running(); }, 15s));
  INFO("script stderr: ", shell.err());
  REQUIRE(shell.running());
  const std::string token = read_file(dir.file("token"));
  CHECK(is_token(token));
  CHECK(redis.command({"GET", lock_key("job")}) == token);

  // The subshell that ran rlock is long gone; the lock lives while the script does.
  CHECK(key_exists(redis, lock_key("job")));
  shell.kill();
  CHECK(wait_until([&] { return !key_exists(redis, lock_key("job")); }, 10s));
}

TEST_CASE("release of a keeper-held lock frees it, and the keeper leaves the next holder alone") {
  RedisServer redis;
  TempDir dir;
  BackgroundProcess owner({test_child_bin(), "--sleep", "forever", "--ready", dir.file("ready")});
  REQUIRE(wait_until([&] { return file_exists(dir.file("ready")); }, 10s));
  const RunResult result =
      run_rlock(at(redis, {"acquire", "job", "--ttl", "900ms", "--owner-pid", std::to_string(owner.pid())}));
  INFO(result.describe());
  REQUIRE(result.exit_code == 0);
  const std::string token = trim(result.out);

  const RunResult release = run_rlock(at(redis, {"release", "job", "--token", token}));
  INFO(release.describe());
  CHECK(release.exit_code == 0);
  CHECK_FALSE(key_exists(redis, lock_key("job")));
  // Another holder takes it; a keeper still renewing the old token would not touch it, and the
  // owner is still alive, so nothing should release it either.
  const std::string next = acquire_lease(redis, "job", "60s");
  CHECK(redis.command({"GET", lock_key("job")}) == next);
  owner.kill();
}

} // namespace rlock::test
