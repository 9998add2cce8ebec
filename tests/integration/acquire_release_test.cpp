// SPDX-License-Identifier: MIT
// Black-box tests of acquire, release and renew against a real redis-server (rlock(1): the
// commands, EXIT STATUS, STORAGE IN REDIS).
#include "helpers.hpp"
#include "redis_server.hpp"
#include "run.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

namespace rlock::test {

namespace {

const std::string k_other_token = "0123456789abcdef0123456789abcdef";

} // namespace

TEST_CASE("acquire --lease prints a 128-bit token and stores it in the lock key with its TTL") {
  RedisServer redis;
  const RunResult result = run_rlock(at(redis, {"acquire", "job", "--lease", "--ttl", "10s"}));
  INFO(result.describe());
  REQUIRE(result.exit_code == 0);
  const auto lines = split_lines(result.out);
  REQUIRE(lines.size() == 1);
  CHECK(is_token(lines[0]));

  CHECK(redis.command({"TYPE", lock_key("job")}) == "string");
  CHECK(redis.command({"GET", lock_key("job")}) == lines[0]);
  const long long lease = pttl(redis, lock_key("job"));
  CHECK(lease > 0);
  CHECK(lease <= 10000);
  // The metadata lives beside the lock with the same lifetime.
  CHECK(key_exists(redis, meta_key("job")));
  const long long meta_lease = pttl(redis, meta_key("job"));
  CHECK(meta_lease > 0);
  CHECK(meta_lease <= 10000);
}

TEST_CASE("tokens are fresh for every acquisition") {
  RedisServer redis;
  const std::string first = acquire_lease(redis, "a");
  const std::string second = acquire_lease(redis, "b");
  CHECK(first != second);
}

TEST_CASE("release with the owner's token deletes the lock and its metadata") {
  RedisServer redis;
  const std::string token = acquire_lease(redis, "job");
  const RunResult result = run_rlock(at(redis, {"release", "job", "--token", token}));
  INFO(result.describe());
  CHECK(result.exit_code == 0);
  CHECK_FALSE(key_exists(redis, lock_key("job")));
  CHECK_FALSE(key_exists(redis, meta_key("job")));
  // Free again: a new acquisition succeeds at once.
  CHECK(is_token(acquire_lease(redis, "job")));
}

TEST_CASE("a second acquire -n of a held lock exits 75 and leaves the holder's key alone") {
  RedisServer redis;
  const std::string token = acquire_lease(redis, "job", "20s");
  const RunResult result = run_rlock(at(redis, {"acquire", "job", "--lease", "-n"}));
  INFO(result.describe());
  CHECK(result.exit_code == 75);
  CHECK(trim(result.out).empty());
  CHECK(redis.command({"GET", lock_key("job")}) == token);
  CHECK(pttl(redis, lock_key("job")) <= 20000);
}

TEST_CASE("-E changes the busy exit code") {
  RedisServer redis;
  acquire_lease(redis, "job");
  SUBCASE("short option") {
    const RunResult result = run_rlock(at(redis, {"acquire", "job", "--lease", "-n", "-E", "3"}));
    INFO(result.describe());
    CHECK(result.exit_code == 3);
  }
  SUBCASE("long option") {
    const RunResult result = run_rlock(at(redis, {"acquire", "job", "--lease", "-n", "--conflict-exit-code", "42"}));
    INFO(result.describe());
    CHECK(result.exit_code == 42);
  }
}

TEST_CASE("-w 300ms waits about that long for a held lock, then exits 75") {
  RedisServer redis;
  const std::string token = acquire_lease(redis, "job");
  const RunResult result = run_rlock(at(redis, {"acquire", "job", "--lease", "-w", "300ms"}));
  INFO(result.describe());
  CHECK(result.exit_code == 75);
  CHECK(result.elapsed >= 250ms);
  CHECK(result.elapsed < 10s);
  CHECK(redis.command({"GET", lock_key("job")}) == token);
}

TEST_CASE("-w 0 tries once, like -n") {
  RedisServer redis;
  acquire_lease(redis, "job");
  RunOptions options;
  options.timeout = 10s; // "-w 0" read as "wait forever" would hang here
  const RunResult result = run_rlock(at(redis, {"acquire", "job", "--lease", "-w", "0"}), options);
  INFO(result.describe());
  CHECK(result.exit_code == 75);
}

TEST_CASE("a waiting acquire takes the lock when the holder releases it") {
  RedisServer redis;
  const std::string first = acquire_lease(redis, "job");
  BackgroundProcess waiter({rlock_bin(), "--url", redis.url(), "acquire", "job", "--lease", "-w", "20s"});
  // The waiter is connected (this check's own connection is the other client).
  REQUIRE(wait_until([&] { return split_lines(redis.command({"CLIENT", "LIST"})).size() >= 2; }, 10s));
  const RunResult release = run_rlock(at(redis, {"release", "job", "--token", first}));
  INFO(release.describe());
  CHECK(release.exit_code == 0);
  const int code = waiter.wait(15s);
  INFO("waiter stderr: ", waiter.err());
  CHECK(code == 0);
  const std::string second = trim(waiter.out());
  CHECK(is_token(second));
  CHECK(second != first);
  CHECK(redis.command({"GET", lock_key("job")}) == second);
}

TEST_CASE("a lock whose lease ran out can be acquired again") {
  RedisServer redis;
  acquire_lease(redis, "job", "300ms");
  REQUIRE(wait_until([&] { return !key_exists(redis, lock_key("job")); }, 5s));
  const RunResult result = run_rlock(at(redis, {"acquire", "job", "--lease", "-n"}));
  INFO(result.describe());
  CHECK(result.exit_code == 0);
  CHECK(is_token(trim(result.out)));
}

TEST_CASE("release with a token whose lease expired exits 76 and says the lock is free") {
  RedisServer redis;
  const std::string token = acquire_lease(redis, "job", "200ms");
  REQUIRE(wait_until([&] { return !key_exists(redis, lock_key("job")); }, 5s));
  const RunResult result = run_rlock(at(redis, {"release", "job", "--token", token}));
  INFO(result.describe());
  CHECK(result.exit_code == 76);
  CHECK(icontains(result.err, "free"));
  CHECK_FALSE(key_exists(redis, lock_key("job")));
}

TEST_CASE("release after a takeover exits 76, says someone else holds it, and leaves their key") {
  RedisServer redis;
  const std::string stale = acquire_lease(redis, "job", "200ms");
  REQUIRE(wait_until([&] { return !key_exists(redis, lock_key("job")); }, 5s));
  const std::string current = acquire_lease(redis, "job", "30s");
  const RunResult result = run_rlock(at(redis, {"release", "job", "--token", stale}));
  INFO(result.describe());
  CHECK(result.exit_code == 76);
  CHECK(
      (icontains(result.err, "someone else") || icontains(result.err, "another") || icontains(result.err, "held by")));
  CHECK_FALSE(icontains(result.err, "is free"));
  CHECK(redis.command({"GET", lock_key("job")}) == current);
  CHECK(pttl(redis, lock_key("job")) > 0);
  CHECK(key_exists(redis, meta_key("job")));
}

TEST_CASE("release without any token is a usage error and deletes nothing") {
  RedisServer redis;
  const std::string token = acquire_lease(redis, "job");
  const RunResult result = run_rlock(at(redis, {"release", "job"}));
  INFO(result.describe());
  CHECK(result.exit_code == 64);
  check_error_line(result);
  CHECK(redis.command({"GET", lock_key("job")}) == token);
}

TEST_CASE("release --force evicts the holder and says who it was") {
  RedisServer redis;
  acquire_lease(redis, "job");
  const RunResult result = run_rlock(at(redis, {"release", "job", "--force"}));
  INFO(result.describe());
  CHECK(result.exit_code == 0);
  // Who was evicted: the holder's host (from the metadata) is named.
  CHECK(contains(result.out + result.err, host_name()));
  CHECK_FALSE(key_exists(redis, lock_key("job")));
  CHECK_FALSE(key_exists(redis, meta_key("job")));
}

TEST_CASE("release --force also breaks a lock held by another client without metadata") {
  RedisServer redis;
  REQUIRE(redis.command({"SET", lock_key("job"), k_other_token, "PX", "60000"}) == "OK");
  const RunResult result = run_rlock(at(redis, {"release", "job", "--force"}));
  INFO(result.describe());
  CHECK(result.exit_code == 0);
  CHECK_FALSE(key_exists(redis, lock_key("job")));
}

TEST_CASE("renew with the owner's token extends the lease") {
  RedisServer redis;
  const std::string token = acquire_lease(redis, "job", "2s");
  const RunResult result = run_rlock(at(redis, {"renew", "job", "--token", token, "--ttl", "60s"}));
  INFO(result.describe());
  CHECK(result.exit_code == 0);
  const long long lease = pttl(redis, lock_key("job"));
  CHECK(lease > 2000);
  CHECK(lease <= 60000);
  CHECK(redis.command({"GET", lock_key("job")}) == token);
  // The metadata keeps the lock's lifetime.
  CHECK(pttl(redis, meta_key("job")) > 2000);
}

TEST_CASE("renew with a token that does not own the lock exits 76 and leaves the lease alone") {
  RedisServer redis;
  const std::string token = acquire_lease(redis, "job", "10s");
  const RunResult result = run_rlock(at(redis, {"renew", "job", "--token", k_other_token, "--ttl", "60s"}));
  INFO(result.describe());
  CHECK(result.exit_code == 76);
  CHECK(
      (icontains(result.err, "someone else") || icontains(result.err, "another") || icontains(result.err, "held by")));
  CHECK(redis.command({"GET", lock_key("job")}) == token);
  CHECK(pttl(redis, lock_key("job")) <= 10000);
}

TEST_CASE("renew after the lease expired exits 76 and says the lock is free") {
  RedisServer redis;
  const std::string token = acquire_lease(redis, "job", "200ms");
  REQUIRE(wait_until([&] { return !key_exists(redis, lock_key("job")); }, 5s));
  const RunResult result = run_rlock(at(redis, {"renew", "job", "--token", token, "--ttl", "60s"}));
  INFO(result.describe());
  CHECK(result.exit_code == 76);
  CHECK(icontains(result.err, "free"));
  // A failed renew must not resurrect the lock.
  CHECK_FALSE(key_exists(redis, lock_key("job")));
}

TEST_CASE("renew without any token is a usage error") {
  RedisServer redis;
  const std::string token = acquire_lease(redis, "job", "10s");
  const RunResult result = run_rlock(at(redis, {"renew", "job", "--ttl", "60s"}));
  INFO(result.describe());
  CHECK(result.exit_code == 64);
  CHECK(pttl(redis, lock_key("job")) <= 10000);
}

TEST_CASE("the fencing token strictly increases with each acquisition") {
  RedisServer redis;
  long long previous = -1;
  for (int round = 0; round < 3; ++round) {
    INFO("round: ", round);
    const std::string token = acquire_lease(redis, "job");
    const std::string fence_text = redis.command({"GET", fence_key("job")});
    INFO("fence: ", fence_text);
    REQUIRE(fence_text != "(nil)");
    const long long fence = std::stoll(fence_text);
    CHECK(fence > previous);
    previous = fence;
    const RunResult release = run_rlock(at(redis, {"release", "job", "--token", token}));
    INFO(release.describe());
    REQUIRE(release.exit_code == 0);
  }
  // Also across an expiry instead of a release.
  acquire_lease(redis, "job", "200ms");
  const long long before_expiry = std::stoll(redis.command({"GET", fence_key("job")}));
  CHECK(before_expiry > previous);
  REQUIRE(wait_until([&] { return !key_exists(redis, lock_key("job")); }, 5s));
  acquire_lease(redis, "job");
  CHECK(std::stoll(redis.command({"GET", fence_key("job")})) > before_expiry);
}

namespace {

// The server's clock, from TIME, in microseconds.
long long server_time_us(const RedisServer& redis) {
  const std::vector<std::string> parts = split_lines(redis.command({"TIME"}));
  REQUIRE(parts.size() == 2);
  return std::stoll(parts[0]) * 1'000'000 + std::stoll(parts[1]);
}

} // namespace

TEST_CASE("a fence counter set back (a failover to a replica that missed the last grants) still gives a higher "
          "fence, from the server's clock") {
  RedisServer redis;
  const std::string first = acquire_lease(redis, "job");
  const long long previous = std::stoll(redis.command({"GET", fence_key("job")}));
  REQUIRE(run_rlock(at(redis, {"release", "job", "--token", first})).exit_code == 0);
  // What the promoted replica has: the counter of long ago.
  REQUIRE(redis.command({"SET", fence_key("job"), "5"}) == "OK");
  const long long clock_before = server_time_us(redis);
  const RunResult taken = run_rlock(at(redis, {"acquire", "job", "--lease", "--json"}));
  INFO(taken.describe());
  REQUIRE(taken.exit_code == 0);
  const long long fence = std::stoll(redis.command({"GET", fence_key("job")}));
  CHECK(contains(taken.out, "\"fence\":" + std::to_string(fence) + ","));
  CHECK(fence > previous);
  CHECK(fence >= clock_before);
  CHECK(fence <= server_time_us(redis));
  CHECK(redis.command({"HGET", meta_key("job"), meta_field("fence")}) == std::to_string(fence));

  // A counter ahead of the clock (a clock that stepped back) counts on from itself.
  const std::string ahead = std::to_string(server_time_us(redis) + 3'600'000'000LL);
  REQUIRE(redis.command({"DEL", lock_key("job"), meta_key("job")}) == "2");
  REQUIRE(redis.command({"SET", fence_key("job"), ahead}) == "OK");
  acquire_lease(redis, "job");
  CHECK(std::stoll(redis.command({"GET", fence_key("job")})) == std::stoll(ahead) + 1);
}

TEST_CASE("release and renew take the token from RLOCK_TOKEN") {
  RedisServer redis;
  const std::string token = acquire_lease(redis, "job", "5s");
  RunOptions options;
  options.env = {"RLOCK_TOKEN=" + token};
  const RunResult renew = run_rlock(at(redis, {"renew", "job", "--ttl", "60s"}), options);
  INFO(renew.describe());
  CHECK(renew.exit_code == 0);
  CHECK(pttl(redis, lock_key("job")) > 5000);
  const RunResult release = run_rlock(at(redis, {"release", "job"}), options);
  INFO(release.describe());
  CHECK(release.exit_code == 0);
  CHECK_FALSE(key_exists(redis, lock_key("job")));
}

TEST_CASE("--token and --token-file take precedence over RLOCK_TOKEN") {
  RedisServer redis;
  TempDir dir;
  const std::string token = acquire_lease(redis, "job");
  RunOptions options;
  options.env = {"RLOCK_TOKEN=" + k_other_token};
  SUBCASE("--token") {
    const RunResult result = run_rlock(at(redis, {"release", "job", "--token", token}), options);
    INFO(result.describe());
    CHECK(result.exit_code == 0);
  }
  SUBCASE("--token-file") {
    write_file(dir.file("token"), token + "\n", 0600);
    const RunResult result = run_rlock(at(redis, {"release", "job", "--token-file", dir.file("token")}), options);
    INFO(result.describe());
    CHECK(result.exit_code == 0);
  }
  CHECK_FALSE(key_exists(redis, lock_key("job")));
}

TEST_CASE("--token-file writes the token with mode 0600 and release reads it back") {
  RedisServer redis;
  TempDir dir;
  const std::string path = dir.file("job.token");
  SUBCASE("new file") {}
  SUBCASE("an existing file is replaced") { write_file(path, "old contents\n", 0644); }
  const RunResult result = run_rlock(at(redis, {"acquire", "job", "--lease", "--token-file", path}));
  INFO(result.describe());
  REQUIRE(result.exit_code == 0);
  const std::string token = trim(read_file(path));
  CHECK(is_token(token));
  CHECK(redis.command({"GET", lock_key("job")}) == token);
  struct stat info {};
  REQUIRE(::lstat(path.c_str(), &info) == 0);
  CHECK(S_ISREG(info.st_mode));
  CHECK((info.st_mode & 07777) == 0600);

  const RunResult release = run_rlock(at(redis, {"release", "job", "--token-file", path}));
  INFO(release.describe());
  CHECK(release.exit_code == 0);
  CHECK_FALSE(key_exists(redis, lock_key("job")));
}

TEST_CASE("--token-file refuses a symlink planted at its path") {
  RedisServer redis;
  TempDir dir;
  const std::string target = dir.file("precious");
  const std::string link = dir.file("job.token");
  write_file(target, "precious contents\n", 0644);
  REQUIRE(::symlink(target.c_str(), link.c_str()) == 0);

  const RunResult result = run_rlock(at(redis, {"acquire", "job", "--lease", "--token-file", link}));
  INFO(result.describe());
  CHECK(result.exit_code != 0);
  check_error_line(result);
  CHECK(read_file(target) == "precious contents\n");
  struct stat info {};
  REQUIRE(::lstat(link.c_str(), &info) == 0);
  CHECK(S_ISLNK(info.st_mode));
  // The token could not be handed over, so no lock is left behind (rlock(1), acquire).
  CHECK_FALSE(key_exists(redis, lock_key("job")));
}

TEST_CASE("--export prints a line that sh can eval into RLOCK_TOKEN") {
  RedisServer redis;
  const RunResult result = run_rlock(at(redis, {"acquire", "job", "--lease", "--export"}));
  INFO(result.describe());
  REQUIRE(result.exit_code == 0);
  CHECK(result.out.rfind("export RLOCK_TOKEN=", 0) == 0);
  const RunResult shell =
      run_program({"/bin/sh", "-c", "eval \"$1\" && printf '%s' \"$RLOCK_TOKEN\"", "sh", result.out});
  INFO(shell.describe());
  CHECK(shell.exit_code == 0);
  CHECK(is_token(shell.out));
  CHECK(redis.command({"GET", lock_key("job")}) == shell.out);
}

TEST_CASE("--prefix and RLOCK_PREFIX choose the key namespace") {
  RedisServer redis;
  SUBCASE("--prefix") {
    const std::string token = acquire_lease(redis, "job", "30s", {"--prefix", "app:"});
    CHECK(redis.command({"GET", lock_key("job", "app:")}) == token);
  }
  SUBCASE("RLOCK_PREFIX") {
    RunOptions options;
    options.env = {"RLOCK_PREFIX=env:"};
    const RunResult result = run_rlock(at(redis, {"acquire", "job", "--lease"}), options);
    INFO(result.describe());
    REQUIRE(result.exit_code == 0);
    CHECK(redis.command({"GET", lock_key("job", "env:")}) == trim(result.out));
  }
  CHECK_FALSE(key_exists(redis, lock_key("job")));
}

TEST_CASE("global options may come after the subcommand") {
  RedisServer redis;
  const RunResult result = run_rlock({"acquire", "job", "--lease", "--url", redis.url(), "--prefix", "late:"});
  INFO(result.describe());
  REQUIRE(result.exit_code == 0);
  CHECK(redis.command({"GET", lock_key("job", "late:")}) == trim(result.out));
}

TEST_CASE("the URL comes from --url, then RLOCK_URL, then REDIS_URL") {
  RedisServer redis;
  const std::string dead = "redis://127.0.0.1:" + std::to_string(free_port());
  RunOptions options;
  std::vector<std::string> args{"acquire", "job", "--lease"};
  SUBCASE("RLOCK_URL beats REDIS_URL") { options.env = {"RLOCK_URL=" + redis.url(), "REDIS_URL=" + dead}; }
  SUBCASE("REDIS_URL alone") { options.env = {"REDIS_URL=" + redis.url()}; }
  SUBCASE("--url beats both") {
    options.env = {"RLOCK_URL=" + dead, "REDIS_URL=" + dead};
    args = at(redis, args);
  }
  const RunResult result = run_rlock(args, options);
  INFO(result.describe());
  REQUIRE(result.exit_code == 0);
  CHECK(redis.command({"GET", lock_key("job")}) == trim(result.out));
}

TEST_CASE("a unix:// URL reaches the server through its socket") {
  RedisServerOptions server_options;
  server_options.unix_socket = true;
  RedisServer redis(server_options);
  const std::string url = "unix://" + redis.unix_socket_path();
  const RunResult result = run_rlock({"--url", url, "acquire", "job", "--lease"});
  INFO(result.describe());
  REQUIRE(result.exit_code == 0);
  const std::string token = trim(result.out);
  CHECK(redis.command({"GET", lock_key("job")}) == token);
  const RunResult release = run_rlock({"--url", url, "release", "job", "--token", token});
  INFO(release.describe());
  CHECK(release.exit_code == 0);
  CHECK_FALSE(key_exists(redis, lock_key("job")));
}

TEST_CASE("redis://host:port/N selects database N") {
  RedisServer redis;
  const RunResult result = run_rlock({"--url", redis.url() + "/3", "acquire", "job", "--lease"});
  INFO(result.describe());
  REQUIRE(result.exit_code == 0);
  CHECK_FALSE(key_exists(redis, lock_key("job"))); // not in db 0
  CHECK(contains(redis.command({"INFO", "keyspace"}), "db3:keys="));
}

TEST_CASE("unix:///path?db=N selects the database") {
  RedisServerOptions server_options;
  server_options.unix_socket = true;
  RedisServer redis(server_options);
  const RunResult result =
      run_rlock({"--url", "unix://" + redis.unix_socket_path() + "?db=3", "acquire", "job", "--lease"});
  INFO(result.describe());
  REQUIRE(result.exit_code == 0);
  CHECK_FALSE(key_exists(redis, lock_key("job")));
  CHECK(contains(redis.command({"INFO", "keyspace"}), "db3:keys="));
}

TEST_CASE("the scripts are reloaded after SCRIPT FLUSH (NOSCRIPT)") {
  RedisServer redis;
  const std::string first = acquire_lease(redis, "a");
  REQUIRE(redis.command({"SCRIPT", "FLUSH"}) == "OK");
  const std::string second = acquire_lease(redis, "b");
  REQUIRE(redis.command({"SCRIPT", "FLUSH"}) == "OK");
  const RunResult release = run_rlock(at(redis, {"release", "b", "--token", second}));
  INFO(release.describe());
  CHECK(release.exit_code == 0);
  CHECK_FALSE(key_exists(redis, lock_key("b")));
  CHECK(redis.command({"GET", lock_key("a")}) == first);
}

TEST_CASE("durations accept the documented forms") {
  RedisServer redis;
  struct Case {
    const char* ttl;
    long long min_ms;
    long long max_ms;
  };
  const Case cases[] = {
      {"250ms", 1, 250},        {"30s", 29000, 30000},       {"10m", 599000, 600000},
      {"1h", 3599000, 3600000}, {"1h30m", 5399000, 5400000}, {"2.5", 1500, 2500},
  };
  for (const auto& entry : cases) {
    INFO("entry.ttl: ", std::string(entry.ttl));
    const std::string name = std::string("ttl-") + entry.ttl;
    const RunResult result = run_rlock(at(redis, {"acquire", name, "--lease", "--ttl", entry.ttl}));
    INFO(result.describe());
    REQUIRE(result.exit_code == 0);
    const long long lease = pttl(redis, lock_key(name));
    // 250ms may have run out by the time we look; the key is then gone (-2).
    if (std::string_view(entry.ttl) != "250ms" || lease != -2) {
      CHECK(lease >= entry.min_ms);
      CHECK(lease <= entry.max_ms);
    }
  }
}

} // namespace rlock::test
