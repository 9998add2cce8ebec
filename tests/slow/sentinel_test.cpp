// SPDX-License-Identifier: MIT
// rlock on Redis Sentinel (rlock(1), SENTINEL): discovery, its exits, and locks that outlive a
// failover, against a real master, replicas and three sentinels (tests/support/sentinel_fixture).
#include "helpers.hpp"
#include "run.hpp"
#include "sentinel_fixture.hpp"
#include "tls_support.hpp"
#include "topology_support.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <chrono>
#include <string>
#include <vector>

using namespace rlock::test;
using namespace std::chrono_literals;

namespace {

// {"--url", URL, args...}
std::vector<std::string> via(const SentinelFixture& sentinels, const std::vector<std::string>& args) {
  std::vector<std::string> all{"--url", sentinels.url()};
  all.insert(all.end(), args.begin(), args.end());
  return all;
}

// The fence a job under `rlock exec` saw, as `echo $RLOCK_FENCE` printed it.
long long fence_of(const RunResult& result) {
  REQUIRE_MESSAGE(result.exit_code == 0, result.describe());
  return std::stoll(trim(result.out));
}

RunResult exec_fence(const SentinelFixture& sentinels, const std::string& name) {
  return run_rlock(via(sentinels, {"exec", name, "--", "sh", "-c", "echo $RLOCK_FENCE"}));
}

// RunOptions with one more variable.
RunOptions with_env(const std::string& assignment) {
  RunOptions options;
  options.env.push_back(assignment);
  return options;
}

} // namespace

TEST_CASE("sentinel: every command works through the master the sentinels name") {
  SentinelFixture sentinels;
  RunResult job = run_rlock(via(sentinels, {"exec", "report", "--", "sh", "-c", "echo in job"}));
  CHECK_MESSAGE(job.exit_code == 0, job.describe());
  CHECK(trim(job.out) == "in job");

  RunResult taken = run_rlock(via(sentinels, {"acquire", "split", "--lease", "--ttl", "30s"}));
  REQUIRE_MESSAGE(taken.exit_code == 0, taken.describe());
  const std::string token = trim(taken.out);
  CHECK(key_exists(sentinels.master(), lock_key("split")));
  RunResult status = run_rlock(via(sentinels, {"status", "split"}));
  CHECK_MESSAGE(status.exit_code == 0, status.describe());
  RunResult busy = run_rlock(via(sentinels, {"exec", "split", "-w", "0", "--", "true"}));
  CHECK_MESSAGE(busy.exit_code == 75, busy.describe());
  RunResult released = run_rlock(via(sentinels, {"release", "split", "--token", token}));
  CHECK_MESSAGE(released.exit_code == 0, released.describe());
  CHECK_FALSE(key_exists(sentinels.master(), lock_key("split")));

  // The audit log: written on the master, read through the sentinels.
  RunResult audited = run_rlock(via(sentinels, {"--audit", "exec", "audited", "--", "true"}));
  CHECK_MESSAGE(audited.exit_code == 0, audited.describe());
  CHECK(key_exists(sentinels.master(), lock_key("audited") + ":log"));
  RunResult log = run_rlock(via(sentinels, {"log", "audited"}));
  CHECK_MESSAGE(log.exit_code == 0, log.describe());
  CHECK(split_lines(log.out).size() == 2);

  // Lettuce's spelling of the same place.
  std::string lettuce = fmt::format("redis-sentinel://127.0.0.1:{},127.0.0.1:{}?sentinelMasterId=mymaster",
                                    sentinels.sentinel_ports()[0], sentinels.sentinel_ports()[1]);
  RunResult other = run_rlock({"--url", lettuce, "exec", "lettuce", "--", "true"});
  CHECK_MESSAGE(other.exit_code == 0, other.describe());
}

TEST_CASE("sentinel: a dead first sentinel is skipped; all dead is 69; an unknown master is 78") {
  SentinelFixture sentinels;
  sentinels.kill_sentinel(0);
  RunResult job = run_rlock(via(sentinels, {"exec", "a", "--", "true"}));
  CHECK_MESSAGE(job.exit_code == 0, job.describe());

  RunResult unknown = run_rlock(
      {"--url", sentinels.url().replace(sentinels.url().rfind("/mymaster"), 9, "/nosuch"), "exec", "a", "--", "true"});
  CHECK_MESSAGE(unknown.exit_code == 78, unknown.describe());
  check_error_line(unknown);
  CHECK(contains(unknown.err, "nosuch"));

  sentinels.kill_sentinel(1);
  sentinels.kill_sentinel(2);
  RunResult none = run_rlock(via(sentinels, {"--connect-timeout", "500ms", "exec", "a", "--", "true"}));
  CHECK_MESSAGE(none.exit_code == 69, none.describe());
  check_error_line(none);
  CHECK(contains(none.err, "no sentinel reachable"));
}

TEST_CASE("sentinel: the sentinels' password is theirs, not the master's; a wrong one is 77") {
  SentinelOptions options;
  options.sentinel_password = "watch-pw";
  options.master_password = "data-pw";
  SentinelFixture sentinels(options);
  TempDir dir;
  const std::string url = sentinels.url({}, ":data-pw@");

  RunResult wrong = run_rlock({"--url", url, "exec", "a", "--", "true"}, with_env("RLOCK_SENTINEL_PASSWORD=nope"));
  CHECK_MESSAGE(wrong.exit_code == 77, wrong.describe());
  check_error_line(wrong);
  CHECK_FALSE(contains(wrong.err, "nope"));
  CHECK_FALSE(contains(wrong.err, "data-pw"));

  RunResult missing = run_rlock({"--url", url, "exec", "a", "--", "true"});
  CHECK_MESSAGE(missing.exit_code == 77, missing.describe());

  RunResult by_env = run_rlock({"--url", url, "exec", "a", "--", "true"}, with_env("RLOCK_SENTINEL_PASSWORD=watch-pw"));
  CHECK_MESSAGE(by_env.exit_code == 0, by_env.describe());

  write_file(dir.file("sentinel.pw"), "watch-pw\n", 0600);
  RunResult by_file =
      run_rlock({"--url", url, "--sentinel-password-file", dir.file("sentinel.pw"), "exec", "a", "--", "true"});
  CHECK_MESSAGE(by_file.exit_code == 0, by_file.describe());

  // The master's password given to the master only: the sentinels refuse it.
  RunResult crossed = run_rlock({"--url", url, "exec", "a", "--", "true"}, with_env("RLOCK_SENTINEL_PASSWORD=data-pw"));
  CHECK_MESSAGE(crossed.exit_code == 77, crossed.describe());
}

TEST_CASE("sentinel: a held exec rides through SENTINEL FAILOVER and its job completes") {
  SentinelFixture sentinels;
  TempDir dir;
  const std::string done = dir.file("done");
  BackgroundProcess job(with_rlock(
      via(sentinels, {"exec", "nightly", "--ttl", "3s", "--", "sh", "-c", "sleep 8; echo finished > " + done})));
  REQUIRE(wait_until([&] { return key_exists(sentinels.master(), lock_key("nightly")); }, 10s));
  const int old_master = sentinels.master_port();
  const int new_master = sentinels.failover();
  REQUIRE(new_master != old_master);
  const int status = job.wait(60s);
  CHECK_MESSAGE(status == 0, "exit ", status, "; stderr: ", job.err());
  CHECK(file_exists(done));
  CHECK_FALSE(contains(job.err(), "internal error"));
  // Released on the master of the moment: nothing is left for the next run to wait on.
  sentinels.wait_replica_of(old_master, new_master);
  CHECK_FALSE(key_exists(sentinels.server_on(new_master), lock_key("nightly")));
}

TEST_CASE("sentinel: --min-replicas 1 with two replicas: a held exec rides through SENTINEL FAILOVER") {
  SentinelOptions options;
  options.replicas = 2;
  SentinelFixture sentinels(options);
  TempDir dir;
  const std::string done = dir.file("done");
  // Renewals go unacknowledged while the replicas move to the new master (seconds): the lease
  // must outlast that. With --ttl 6s here the job was stopped (76) before they had.
  BackgroundProcess job(with_rlock(via(sentinels, {"exec", "nightly", "--ttl", "15s", "--min-replicas", "1", "-v", "--",
                                                   "sh", "-c", "sleep 20; echo finished > " + done})));
  REQUIRE(wait_until([&] { return key_exists(sentinels.master(), lock_key("nightly")); }, 10s));
  // Acknowledged: every replica has the lock before the failover starts.
  for (RedisServer* replica : sentinels.replicas()) {
    REQUIRE(wait_until([&] { return key_exists(*replica, lock_key("nightly")); }, 10s));
  }
  const int old_master = sentinels.master_port();
  const int new_master = sentinels.failover();
  REQUIRE(new_master != old_master);
  const int status = job.wait(60s);
  CHECK_MESSAGE(status == 0, "exit ", status, "; stderr: ", job.err());
  CHECK(file_exists(done));
  CHECK_FALSE(contains(job.err(), "internal error"));
  sentinels.wait_replica_of(old_master, new_master);
  CHECK_FALSE(key_exists(sentinels.server_on(new_master), lock_key("nightly")));
}

TEST_CASE("sentinel: a waiter blocked on the old master still gets the lock after a failover") {
  SentinelFixture sentinels;
  RunResult taken = run_rlock(via(sentinels, {"acquire", "deploy", "--lease", "--ttl", "60s"}));
  REQUIRE_MESSAGE(taken.exit_code == 0, taken.describe());
  const std::string token = trim(taken.out);
  BackgroundProcess waiter(with_rlock(via(sentinels, {"exec", "deploy", "-w", "90s", "--", "echo", "waited"})));
  // The waiter is in line (its ticket is in the line's zset) before the master changes.
  REQUIRE(wait_until(
      [&] {
        return trim(sentinels.master().command({"ZCARD", lock_key("deploy") + ":line"})) == "1";
      },
      10s));
  const int old_master = sentinels.master_port();
  const int new_master = sentinels.failover();
  REQUIRE(new_master != old_master);
  sentinels.wait_replica_of(old_master, new_master);
  RunResult released = run_rlock(via(sentinels, {"release", "deploy", "--token", token}));
  CHECK_MESSAGE(released.exit_code == 0, released.describe());
  const int status = waiter.wait(90s);
  CHECK_MESSAGE(status == 0, "exit ", status, "; stderr: ", waiter.err());
  CHECK(trim(waiter.out()) == "waited");
}

TEST_CASE("sentinel: fences keep rising across a failover to a replica that missed the last grants") {
  SentinelOptions options;
  options.replication_through_proxy = true;
  SentinelFixture sentinels(options);
  long long last = 0;
  for (int i = 0; i < 3; ++i) {
    long long fence = fence_of(exec_fence(sentinels, "billing"));
    CHECK(fence > last);
    last = fence;
  }
  // Replication stops here: the grants below reach the master only.
  sentinels.replication_proxy(0).set("blackhole");
  for (int i = 0; i < 3; ++i) {
    long long fence = fence_of(exec_fence(sentinels, "billing"));
    CHECK(fence > last);
    last = fence;
  }
  const std::string counter_on_master = trim(sentinels.master().command({"GET", fence_key("billing")}));
  const int old_master = sentinels.master_port();
  const int new_master = sentinels.failover();
  REQUIRE(new_master != old_master);
  // The promoted replica really is behind: its counter is older than the master's.
  CHECK(trim(sentinels.server_on(new_master).command({"GET", fence_key("billing")})) != counter_on_master);
  long long after = fence_of(exec_fence(sentinels, "billing"));
  CHECK(after > last);
}

TEST_CASE("sentinel: rediss+sentinel:// verifies the sentinels and the master it names, each by its own address") {
  SentinelOptions options;
  options.tls = true;
  SentinelFixture sentinels(options);
  const std::string cacert = "?cacert=" + tls_cert("ca.crt");
  RunResult job = run_rlock({"--url", sentinels.url(cacert), "exec", "secure", "--", "sh", "-c", "echo ok"});
  CHECK_MESSAGE(job.exit_code == 0, job.describe());
  CHECK(trim(job.out) == "ok");

  // The sentinels speak TLS: a plaintext question gets no sentinel (69), never a plaintext fallback.
  RunResult plain = run_rlock({"--url", sentinels.url(cacert + "&sentinel_tls=no"), "--connect-timeout", "500ms",
                               "exec", "secure", "--", "true"});
  CHECK_MESSAGE(plain.exit_code == 69, plain.describe());
  check_error_line(plain);

  // Without the CA the chain fails: 78 with OpenSSL's reason, at the first sentinel asked.
  RunResult untrusted = run_rlock({"--url", sentinels.url(), "exec", "secure", "--", "true"});
  CHECK_MESSAGE(untrusted.exit_code == 78, untrusted.describe());
  check_error_line(untrusted);
}

TEST_CASE("sentinel: a held exec rides through its master's crash when a replica takes over within the lease") {
  SentinelFixture sentinels;
  TempDir dir;
  const std::string done = dir.file("done");
  BackgroundProcess job(with_rlock(
      via(sentinels, {"exec", "crash", "--ttl", "15s", "--", "sh", "-c", "sleep 8; echo finished > " + done})));
  REQUIRE(wait_until([&] { return key_exists(sentinels.master(), lock_key("crash")); }, 10s));
  // The replica must have the lock before the master dies, or the lock dies with it.
  REQUIRE(wait_until([&] { return key_exists(*sentinels.replicas().at(0), lock_key("crash")); }, 10s));
  const int old_master = sentinels.master_port();
  sentinels.master().kill();
  const int new_master = sentinels.wait_new_master(old_master);
  REQUIRE(new_master != old_master);
  const int status = job.wait(60s);
  CHECK_MESSAGE(status == 0, "exit ", status, "; stderr: ", job.err());
  CHECK(file_exists(done));
  CHECK_FALSE(key_exists(sentinels.server_on(new_master), lock_key("crash")));
}
