// SPDX-License-Identifier: MIT
// The security rules of issue 6: no password leaks, no shell injection, the documented minimal ACL.
#include "helpers.hpp"
#include "redis_server.hpp"
#include "run.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

using namespace rlock::test;

namespace {

constexpr const char* k_password = "Sekr1t-pw-never-shown";

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

TEST_CASE("names and arguments that look like shell code are never run by a shell") {
  RedisServer redis;
  TempDir dir;
  RunOptions options;
  options.cwd = dir.path();
  for (const std::string name : {"x;touch pwned1", "$(touch pwned2)", "`touch pwned3`", "x' ; touch pwned4 ; '"}) {
    CAPTURE(name);
    RunResult result = run_rlock(at(redis, {"exec", name, "--", "true"}), options);
    CHECK(result.exit_code == 0);
    result = run_rlock(at(redis, {"acquire", name, "--lease", "-n"}), options);
    CHECK(result.exit_code == 0);
    CHECK(run_rlock(at(redis, {"status", name}), options).exit_code == 0);
    CHECK(run_rlock(at(redis, {"release", name, "--token", trim(result.out)}), options).exit_code == 0);
  }
  // Arguments after -- reach the command verbatim, unexpanded.
  RunResult echoed = run_rlock(at(redis, {"exec", "args", "--", "echo", "$(touch pwned5)", "`touch pwned6`"}), options);
  CHECK(echoed.exit_code == 0);
  CHECK(trim(echoed.out) == "$(touch pwned5) `touch pwned6`");
  for (int i = 1; i <= 6; ++i) {
    CHECK_FALSE(file_exists(dir.file("pwned" + std::to_string(i))));
  }
}

TEST_CASE("the password never shows in output, -v lines, errors, the job or the keeper's command line") {
  RedisServerOptions server_options;
  server_options.password = k_password;
  RedisServer redis(server_options);
  TempDir dir;
  const std::string url_with_password =
      "redis://:" + std::string(k_password) + "@127.0.0.1:" + std::to_string(redis.port());
  write_file(dir.file("pw"), std::string(k_password) + "\n", 0600);
  struct Source {
    const char* label;
    std::vector<std::string> global_args;
    std::vector<std::string> env;
  };
  const std::vector<Source> sources = {
      {"URL", {"--url", url_with_password}, {}},
      {"RLOCK_PASSWORD", {"--url", redis.url()}, {"RLOCK_PASSWORD=" + std::string(k_password)}},
      {"REDISCLI_AUTH", {"--url", redis.url()}, {"REDISCLI_AUTH=" + std::string(k_password)}},
      {"--password-file", {"--url", redis.url(), "--password-file", dir.file("pw")}, {}},
  };
  for (const auto& source : sources) {
    CAPTURE(source.label);
    RunOptions options;
    options.env = source.env;
    auto run = [&](std::vector<std::string> args) {
      std::vector<std::string> all = source.global_args;
      all.insert(all.begin(), "-v");
      all.insert(all.end(), args.begin(), args.end());
      RunResult result = run_rlock(all, options);
      INFO(result.describe());
      CHECK_FALSE(contains(result.out, k_password));
      CHECK_FALSE(contains(result.err, k_password));
      return result;
    };
    RunResult env = run({"exec", "job", "--", "env"});
    CHECK(env.exit_code == 0);
    CHECK(contains(env.err, "rlock: ")); // -v said something, and none of it was the password
    run({"status", "job", "--json"});
    run({"acquire", "busy", "--lease"});
    CHECK(run({"acquire", "busy", "--lease", "-n"}).exit_code == 75);
    CHECK(run({"release", "busy", "--token", "00000000000000000000000000000000"}).exit_code == 76);
    CHECK(run({"release", "busy", "--force"}).exit_code == 0);
    // A refused password is reported without being shown.
    std::vector<std::string> wrong = {
        "--url", "redis://:wrong-" + std::string(k_password) + "@127.0.0.1:" + std::to_string(redis.port()), "status",
        "job"};
    RunResult refused = run_rlock(wrong);
    CHECK(refused.exit_code == 77);
    CHECK_FALSE(contains(refused.err, k_password));
  }

  // The keeper is a fork of `acquire`: its command line is acquire's, with no password when
  // the password came from the environment.
  RunOptions env_options;
  env_options.env = {"RLOCK_PASSWORD=" + std::string(k_password), "RLOCK_URL=" + redis.url()};
  env_options.inherit_rlock_env = false;
  BackgroundProcess owner({"sleep", "30"});
  RunResult taken = run_rlock({"-v", "acquire", "kept", "--owner-pid", std::to_string(owner.pid())}, env_options);
  REQUIRE(taken.exit_code == 0);
  const std::string keeper = trim(redis.command({"HGET", meta_key("kept"), meta_field("keeper_pid")}));
  REQUIRE_FALSE(keeper.empty());
  const std::string cmdline = read_file("/proc/" + keeper + "/cmdline");
  CHECK_FALSE(contains(cmdline, k_password));
  const std::string environ = read_file("/proc/" + keeper + "/environ");
  CHECK(contains(environ, "RLOCK_PASSWORD")); // the keeper needs it to reconnect; only root and the user see environ
  owner.kill();
  CHECK(wait_until(
      [&] {
        return status_of(redis, "kept") == 1 || redis.command({"EXISTS", lock_key("kept")}) == "0";
      },
      5s));
}

TEST_CASE("the minimal ACL of the man page is enough for every command") {
  const std::string password = "acl-user-pw-42";
  RedisServerOptions server_options;
  server_options.password = "admin-pw-for-the-fixture"; // the default user: not rlock's
  server_options.extra_config = {minimal_acl_line(password)};
  RedisServer redis(server_options);
  const std::string url = "redis://rlock:" + password + "@127.0.0.1:" + std::to_string(redis.port());
  auto rlock = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"--url", url});
    RunResult result = run_rlock(args);
    INFO(result.describe());
    CHECK_FALSE(contains(result.err, "NOPERM"));
    return result;
  };
  CHECK(rlock({"exec", "job", "--ttl", "300ms", "--", "sleep", "0.4"}).exit_code == 0); // renewals too
  CHECK(rlock({"exec", "held", "--min-hold", "200ms", "--", "true"}).exit_code == 0);
  const std::string token = trim(rlock({"acquire", "split", "--lease"}).out);
  CHECK(is_token(token));
  CHECK(rlock({"renew", "split", "--token", token}).exit_code == 0);
  CHECK(rlock({"status", "split", "--json"}).exit_code == 0);
  CHECK(rlock({"status"}).exit_code == 0);
  CHECK(rlock({"acquire", "split", "-n"}).exit_code == 75);
  CHECK(rlock({"release", "split", "--token", token}).exit_code == 0);

  // Waiting and hand-off: a waiter queued behind a holder gets the lock at its release.
  const std::string holder = trim(rlock({"acquire", "queue", "--lease"}).out);
  BackgroundProcess waiter({rlock_bin(), "--url", url, "exec", "queue", "-w", "20s", "--", "true"});
  REQUIRE(wait_until([&] { return redis.command({"ZCARD", "rlock:{queue}:line"}) == "1"; }, 10s));
  CHECK(rlock({"release", "queue", "--token", holder}).exit_code == 0);
  CHECK(waiter.wait(10s) == 0);

  // Semaphores and readers (their own scripts): taking, renewing, waiting with hand-off,
  // releasing, status.
  const std::string permit = trim(rlock({"acquire", "sem", "--limit", "1", "--lease"}).out);
  CHECK(rlock({"renew", "sem", "--token", permit}).exit_code == 0);
  BackgroundProcess sem_waiter({rlock_bin(), "--url", url, "exec", "sem", "--limit", "1", "-w", "20s", "--", "true"});
  REQUIRE(wait_until([&] { return redis.command({"ZCARD", "rlock:{sem}:line"}) == "1"; }, 10s));
  CHECK(rlock({"status", "sem", "--json"}).exit_code == 0);
  CHECK(rlock({"release", "sem", "--token", permit}).exit_code == 0);
  CHECK(sem_waiter.wait(10s) == 0);
  const std::string reader = trim(rlock({"acquire", "rw", "--shared", "--lease"}).out);
  BackgroundProcess writer({rlock_bin(), "--url", url, "exec", "rw", "-w", "20s", "--", "true"});
  REQUIRE(wait_until([&] { return redis.command({"ZCARD", "rlock:{rw}:line"}) == "1"; }, 10s));
  CHECK(rlock({"release", "rw", "--token", reader}).exit_code == 0);
  CHECK(writer.wait(10s) == 0);

  // Breaking a lock and the keeper.
  BackgroundProcess owner({"sleep", "30"});
  CHECK(rlock({"acquire", "kept", "--owner-pid", std::to_string(owner.pid())}).exit_code == 0);
  CHECK(rlock({"release", "kept", "--force"}).exit_code == 0);
  CHECK(rlock({"status", "kept"}).exit_code == 1);

  // The audit log: written by the scripts (--audit, and a forced release while it exists),
  // read by `rlock log`.
  CHECK(rlock({"--audit", "exec", "audited", "--", "true"}).exit_code == 0);
  CHECK(rlock({"acquire", "audited", "--lease"}).exit_code == 0);
  CHECK(rlock({"release", "audited", "--force"}).exit_code == 0);
  const RunResult log = rlock({"log", "audited"});
  CHECK(log.exit_code == 0);
  CHECK(split_lines(log.out).size() == 3);
}

TEST_CASE("a secret on the holder's command line is never recorded nor shown by status") {
  RedisServerOptions server_options;
  server_options.password = k_password;
  RedisServer redis(server_options);
  const std::string host_port = "127.0.0.1:" + std::to_string(redis.port());
  const std::string pw = k_password;
  RunOptions with_password;
  with_password.env = {"RLOCK_PASSWORD=" + pw};
  // With --lease the recorded command is rlock's parent's: `timeout 10 rlock …`, or a shell.
  // rlock runs by its name, found on PATH, and the secret comes early: the meta hash keeps a
  // command's first 64 bytes, and the secret must fall within them for "***" to show there.
  RunOptions on_path;
  on_path.env = {"PATH=" + std::filesystem::path(rlock_bin()).parent_path().string() + ":" + std::getenv("PATH")};
  struct Holder {
    const char* name;
    std::vector<std::string> argv;
  };
  const std::vector<Holder> holders = {
      {"url", {"timeout", "10", "rlock", "--url", "redis://:" + pw + "@" + host_port, "acquire", "url", "--lease"}},
      {"acl-url",
       {"timeout", "10", "rlock", "--url", "redis://default:" + pw + "@" + host_port, "acquire", "acl-url", "--lease"}},
      {"option",
       {"timeout", "10", "rlock", "--password", pw, "--url", "redis://" + host_port, "acquire", "option", "--lease"}},
      {"option-equals",
       {"timeout", "10", "rlock", "--password=" + pw, "--url", "redis://" + host_port, "acquire", "option-equals",
        "--lease"}},
      {"env-prefix",
       {"/bin/sh", "-c",
        "REDISCLI_AUTH=" + pw + " \"$0\" --url redis://" + host_port + " acquire env-prefix --lease; true",
        rlock_bin()}},
  };
  for (const auto& holder : holders) {
    CAPTURE(holder.name);
    RunResult taken = run_program(holder.argv, on_path);
    REQUIRE_MESSAGE(taken.exit_code == 0, taken.describe());
  }
  // exec records its job's command line: redis-cli's -a and an auth prefix inside sh -c.
  BackgroundOptions job_options;
  job_options.env = {"RLOCK_PASSWORD=" + pw};
  BackgroundProcess job(
      exec_argv(redis, "job", {},
                {"sh", "-c", "REDISCLI_AUTH=" + pw + " true; redis-cli -a " + pw + " ping; sleep 30"}),
      job_options);
  REQUIRE(wait_until([&] { return key_exists(redis, lock_key("job")); }, 10s));
  // Meta written by an older rlock, or by hand, is redacted when shown.
  redis.command({"SET", lock_key("old"), "tok", "PX", "30000"});
  redis.command({"HSET",        meta_key("old"),
                 "token",       "tok",
                 "host",        "h",
                 "pid",         "1",
                 "user",        "u",
                 "command",     "redis-cli -a " + pw + " ping",
                 "acquired_ms", "1",
                 "ttl_ms",      "30000",
                 "fence",       "1",
                 "renewals",    "0"});

  for (const char* name : {"url", "acl-url", "option", "option-equals", "env-prefix", "job"}) {
    CAPTURE(name);
    const std::string recorded = redis.command({"HGET", meta_key(name), meta_field("command")});
    CHECK(contains(recorded, "***"));
    CHECK_FALSE(contains(recorded, pw));
  }
  std::vector<RunResult> shown;
  for (const char* name : {"url", "acl-url", "option", "option-equals", "env-prefix", "job", "old"}) {
    shown.push_back(run_rlock(at(redis, {"status", name}), with_password));
    CHECK(shown.back().exit_code == 0);
    CHECK(contains(shown.back().out, "***"));
    shown.push_back(run_rlock(at(redis, {"status", name, "--json"}), with_password));
    CHECK(is_valid_json(shown.back().out));
    shown.push_back(run_rlock(at(redis, {"-v", "acquire", name, "-w", "100ms"}), with_password)); // busy lines
    CHECK(shown.back().exit_code == 75);
  }
  shown.push_back(run_rlock(at(redis, {"status"}), with_password));
  shown.push_back(run_rlock(at(redis, {"status", "--json"}), with_password));
  shown.push_back(run_rlock(at(redis, {"release", "old", "--force"}), with_password));
  for (const auto& result : shown) {
    INFO(result.describe());
    CHECK_FALSE(contains(result.out, pw));
    CHECK_FALSE(contains(result.err, pw));
  }
  job.kill();
}
