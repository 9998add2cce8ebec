// SPDX-License-Identifier: MIT
// Black-box tests of --min-replicas against a real master and a real replica (replicaof): each
// write of the lock is followed by WAIT; an unacknowledged acquire is given back (69), a held
// job whose renewals go unacknowledged is stopped at its safety deadline (76), bad values are
// usage or configuration errors, and the minimal ACL needs +wait.
#include "helpers.hpp"
#include "redis_server.hpp"
#include "run.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <csignal>
#include <fstream>
#include <regex>

namespace rlock::test {

namespace {

// A master and a replica of it, in sync: a write on the master is acknowledged by the replica.
struct ReplicatedPair {
  explicit ReplicatedPair(RedisServerOptions master_options = {}, const std::string& replica_auth = {})
      : master(with_quick_sync(std::move(master_options))), replica(replica_options(master.port(), replica_auth)) {
    // WAIT on the master counts the replicas that acknowledged its last write: in sync once
    // the replica has loaded the master's data and acknowledges.
    REQUIRE(master.command({"SET", "sync-probe", "1"}) == "OK");
    REQUIRE(wait_until([&] { return master.command({"WAIT", "1", "100"}) == "1"; }, 20s));
    REQUIRE(master.command({"DEL", "sync-probe"}) == "1");
  }

  // Redis waits 5 s by default before a diskless full sync, for more replicas to join.
  static RedisServerOptions with_quick_sync(RedisServerOptions options) {
    options.extra_config.push_back("repl-diskless-sync-delay 0");
    return options;
  }

  static RedisServerOptions replica_options(int master_port, const std::string& auth) {
    RedisServerOptions options;
    options.extra_config = {"replicaof 127.0.0.1 " + std::to_string(master_port)};
    if (!auth.empty()) options.extra_config.push_back("masterauth " + auth);
    return options;
  }

  RedisServer master;
  RedisServer replica;
};

// Every key the server holds, sorted.
std::vector<std::string> keys_of(const RedisServer& server) {
  std::vector<std::string> keys = split_lines(server.command({"KEYS", "*"}));
  std::sort(keys.begin(), keys.end());
  return keys;
}

// One line on stderr, "rlock: error: …".
bool one_error_line(const RunResult& result) {
  return result.err.starts_with("rlock: error: ") && split_lines(result.err).size() == 1;
}

// The `user rlock …` line of the man page's MINIMAL ACL section, with the password filled in.
std::string minimal_acl_line(const std::string& password) {
  std::ifstream man(source_dir() + "/man/rlock.1.adoc");
  REQUIRE(man);
  std::string line;
  while (std::getline(man, line)) {
    if (line.starts_with("user rlock on >PASSWORD ")) {
      return std::regex_replace(line, std::regex(">PASSWORD"), ">" + password);
    }
  }
  FAIL("man/rlock.1.adoc has no 'user rlock on >PASSWORD …' line");
  return {};
}

} // namespace

TEST_CASE("--min-replicas 1 with the replica in sync: exec, acquire, renew and release work, and the replica has "
          "the lock") {
  ReplicatedPair pair;
  TempDir dir;
  const std::string ran = dir.file("ran");
  const RunResult job = run_rlock(exec_args(pair.master, "job", {"--min-replicas", "1", "-v"}, {"touch", ran}));
  INFO(job.describe());
  CHECK(job.exit_code == 0);
  CHECK(file_exists(ran));
  CHECK(contains(job.err, "waits up to 1.0s for 1 replica to acknowledge it"));
  CHECK_FALSE(contains(job.err, "replicas acknowledged"));

  const RunResult taken = run_rlock(at(pair.master, {"acquire", "split", "--lease", "--min-replicas", "1"}));
  INFO(taken.describe());
  REQUIRE(taken.exit_code == 0);
  const std::string token = trim(taken.out);
  // Acknowledged means there: the replica holds the token already.
  CHECK(pair.replica.command({"GET", lock_key("split")}) == token);
  const RunResult renewed = run_rlock(at(pair.master, {"renew", "split", "--token", token, "--min-replicas", "1"}));
  INFO(renewed.describe());
  CHECK(renewed.exit_code == 0);
  const RunResult released =
      run_rlock(at(pair.master, {"release", "split", "--token", token, "--min-replicas", "1", "-v"}));
  INFO(released.describe());
  CHECK(released.exit_code == 0);
  CHECK_FALSE(contains(released.err, "replicas acknowledged"));
  CHECK_FALSE(key_exists(pair.replica, lock_key("split")));
}

TEST_CASE("with the replica stopped, an acquire exits 69 (only 0 of 1 replicas acknowledged) and leaves no lock") {
  ReplicatedPair pair;
  TempDir dir;
  pair.replica.pause();
  const std::vector<std::string> before = keys_of(pair.master);

  SUBCASE("acquire within --wait") {
    const RunResult result = run_rlock(at(pair.master, {"acquire", "job", "--lease", "--min-replicas", "1",
                                                        "--min-replicas-timeout", "200ms", "-w", "1s"}));
    INFO(result.describe());
    CHECK(result.exit_code == 69);
    CHECK(one_error_line(result));
    CHECK(contains(result.err, "only 0 of 1 replicas acknowledged acquiring rlock:{job}"));
    CHECK(contains(result.err, "given back"));
    CHECK(result.out.empty());
  }
  SUBCASE("exec -n: the job does not start") {
    const std::string ran = dir.file("ran");
    const RunResult result = run_rlock(exec_args(pair.master, "job", {"-n", "--min-replicas", "1"}, {"touch", ran}));
    INFO(result.describe());
    CHECK(result.exit_code == 69);
    CHECK(one_error_line(result));
    CHECK(contains(result.err, "only 0 of 1 replicas acknowledged"));
    CHECK_FALSE(file_exists(ran));
  }
  SUBCASE("min-replicas from the configuration file") {
    const std::string config = dir.file("config");
    write_file(config, "min-replicas = 1\nmin-replicas-timeout = 100ms\n", 0600);
    const RunResult result =
        run_rlock({"--url", pair.master.url(), "--config", config, "acquire", "job", "--lease", "-n"});
    INFO(result.describe());
    CHECK(result.exit_code == 69);
    CHECK(contains(result.err, "only 0 of 1 replicas acknowledged"));
    CHECK(contains(result.err, "within 100ms"));
  }
  // Nothing of the lock is left but its fence counter, which never expires.
  std::vector<std::string> after = keys_of(pair.master);
  std::erase(after, fence_key("job"));
  CHECK(after == before);
  CHECK_FALSE(key_exists(pair.master, lock_key("job")));
  CHECK_FALSE(key_exists(pair.master, meta_key("job")));
}

TEST_CASE("a held exec whose replica stops mid-job: renewals do not count, the job is stopped at the safety "
          "deadline, exit 76") {
  ReplicatedPair pair;
  TempDir dir;
  const std::string ready = dir.file("ready");
  const std::string record = dir.file("record");
  PidFileReaper reaper({dir.file("pid")});
  BackgroundProcess holder(with_rlock(exec_args(
      pair.master, "job", {"--ttl", "2s", "--min-replicas", "1", "--grace", "5s", "-v"},
      {test_child_bin(), "--ready", ready, "--record", record, "--pid-file", dir.file("pid"), "--sleep", "forever"})));
  REQUIRE(wait_until([&] { return file_exists(ready) || !holder.running(); }, 10s));
  INFO("holder stderr: ", holder.err());
  REQUIRE(holder.running());
  // Renewed and acknowledged while the replica runs: the job outlives a TTL.
  const std::string renewals = meta_field("renewals");
  REQUIRE(wait_until(
      [&] {
        const std::string count = pair.master.command({"HGET", meta_key("job"), renewals});
        return (count != "(nil)" && std::stoll(count) >= 3) || !holder.running();
      },
      15s));
  REQUIRE(holder.running());

  pair.replica.pause();
  const std::optional<int> status = holder.try_wait(20s);
  REQUIRE(status.has_value());
  CHECK(*status == 76);
  CHECK(contains(holder.err(), "only 0 of 1 replicas acknowledged renewing rlock:{job}"));
  CHECK(contains(holder.err(), "no renewal was confirmed by enough replicas before the lease's safety deadline"));
  CHECK(contains(holder.err(), "stopped the job with SIGTERM"));
  CHECK(read_file(record) == "TERM\n");
  // The job's process is gone, and so is the lock (released on the way out, unacknowledged).
  const pid_t job_pid = static_cast<pid_t>(std::stol(trim(read_file(dir.file("pid")))));
  CHECK(::kill(job_pid, 0) != 0);
  CHECK_FALSE(key_exists(pair.master, lock_key("job")));
}

TEST_CASE("with the replica stopped, renew exits 69 and release exits 0 with a -v note") {
  ReplicatedPair pair;
  const std::string token = acquire_lease(pair.master, "split", "30s", {"--min-replicas", "1"});
  pair.replica.pause();
  const RunResult renewed = run_rlock(
      at(pair.master, {"renew", "split", "--token", token, "--min-replicas", "1", "--min-replicas-timeout", "100ms"}));
  INFO(renewed.describe());
  CHECK(renewed.exit_code == 69);
  CHECK(one_error_line(renewed));
  CHECK(contains(renewed.err, "only 0 of 1 replicas acknowledged renewing rlock:{split}"));

  const RunResult released = run_rlock(at(pair.master, {"release", "split", "--token", token, "--min-replicas", "1",
                                                        "--min-replicas-timeout", "100ms", "-v"}));
  INFO(released.describe());
  CHECK(released.exit_code == 0);
  CHECK(contains(released.err, "only 0 of 1 replicas acknowledged releasing rlock:{split}"));
  CHECK_FALSE(key_exists(pair.master, lock_key("split")));
}

TEST_CASE("bad --min-replicas values: 64 on the command line, 78 in the configuration file, one line each") {
  RedisServer redis;
  TempDir dir;
  for (const std::vector<std::string>& options :
       {std::vector<std::string>{"--min-replicas", "abc"},
        {"--min-replicas", "-1"},
        {"--min-replicas", "101"},
        {"--min-replicas", "1.5"},
        {"--min-replicas", ""},
        {"--min-replicas"},
        {"--min-replicas-timeout", "0"},
        {"--min-replicas-timeout", "soon"},
        {"--ttl", "1s", "--min-replicas", "1", "--min-replicas-timeout", "1s"}}) {
    for (const char* command : {"exec", "acquire", "renew", "release"}) {
      std::vector<std::string> args = {"--url", redis.url(), command, "job"};
      if (std::string_view(command) == "renew" || std::string_view(command) == "release") {
        if (options.front() == "--ttl" && std::string_view(command) == "release") continue; // release has no --ttl
        args.insert(args.end(), {"--token", std::string(32, 'a')});
      }
      args.insert(args.end(), options.begin(), options.end());
      if (std::string_view(command) == "exec") args.insert(args.end(), {"--", "true"});
      const RunResult result = run_rlock(args);
      CAPTURE(command);
      INFO(result.describe());
      CHECK(result.exit_code == 64);
      CHECK(one_error_line(result));
    }
  }
  const RunResult forced = run_rlock(at(redis, {"release", "job", "--force", "--min-replicas", "1"}));
  INFO(forced.describe());
  CHECK(forced.exit_code == 64);
  CHECK(one_error_line(forced));

  const std::string config = dir.file("config");
  for (const std::string& line : {std::string("min-replicas = many"), std::string("min-replicas = -2"),
                                  std::string("min-replicas-timeout = 0"), std::string("min-replicas-timeout = x")}) {
    write_file(config, "# replicas\n" + line + "\n", 0600);
    const RunResult result = run_rlock({"--url", redis.url(), "--config", config, "acquire", "job", "--lease"});
    CAPTURE(line);
    INFO(result.describe());
    CHECK(result.exit_code == 78);
    CHECK(one_error_line(result));
    CHECK(contains(result.err, config + ":2:"));
  }
  CHECK(keys_of(redis).empty());
}

TEST_CASE("the man page's minimal ACL covers --min-replicas; a user without +wait gets 77 and no lock") {
  const std::string password = "acl-user-pw-43";
  const std::string admin = "admin-pw-for-the-fixture";
  RedisServerOptions master_options;
  master_options.password = admin;
  const std::string acl = minimal_acl_line(password);
  REQUIRE(contains(acl, " +wait"));
  // A second user: the same line under another name, without +wait.
  const std::string without_wait = std::regex_replace(std::regex_replace(acl, std::regex(" \\+wait"), ""),
                                                      std::regex("^user rlock "), "user nowait ");
  master_options.extra_config = {acl, without_wait};
  ReplicatedPair pair(master_options, admin);
  const std::string host_port = "127.0.0.1:" + std::to_string(pair.master.port());

  const RunResult allowed = run_rlock(
      {"--url", "redis://rlock:" + password + "@" + host_port, "exec", "job", "--min-replicas", "1", "--", "true"});
  INFO(allowed.describe());
  CHECK(allowed.exit_code == 0);
  CHECK_FALSE(contains(allowed.err, "NOPERM"));

  const RunResult refused = run_rlock(
      {"--url", "redis://nowait:" + password + "@" + host_port, "acquire", "job", "--lease", "--min-replicas", "1"});
  INFO(refused.describe());
  CHECK(refused.exit_code == 77);
  CHECK(one_error_line(refused));
  CHECK(contains(refused.err, "WAIT"));
  CHECK(contains(refused.err, "+wait"));
  CHECK_FALSE(key_exists(pair.master, lock_key("job")));
  // Without --min-replicas that user is fine.
  CHECK(run_rlock({"--url", "redis://nowait:" + password + "@" + host_port, "exec", "job", "--", "true"}).exit_code ==
        0);
}

} // namespace rlock::test
