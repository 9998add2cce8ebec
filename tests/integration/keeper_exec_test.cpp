// SPDX-License-Identifier: MIT
// Black-box tests of the keeper behind `rlock acquire`, as scripts use it: $(...), owner exit, release.
#include "helpers.hpp"
#include "redis_server.hpp"
#include "run.hpp"

#include <doctest/doctest.h>

#include <dirent.h>
#include <sys/types.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <optional>

namespace rlock::test {

namespace {

using Clock = std::chrono::steady_clock;

std::string comm_of(pid_t pid) { return trim(try_read_file("/proc/" + std::to_string(pid) + "/comm").value_or("")); }

// The keeper pid recorded in the lock's metadata, if any.
std::optional<pid_t> keeper_pid(const RedisServer& redis, const std::string& name) {
  const std::string value = redis.command({"HGET", meta_key(name), meta_field("keeper_pid")});
  if (value.empty() || value == "(nil)" || value == "0") {
    return std::nullopt;
  }
  return static_cast<pid_t>(std::stol(value));
}

// Live processes named rlock-keeper whose command line names `port` (the keeper is a fork of
// the acquire, so it keeps its argv): the keepers of this test's server, not another test's.
std::vector<pid_t> keepers_for(int port) {
  std::vector<pid_t> result;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) {
    return result;
  }
  while (const dirent* entry = ::readdir(proc)) {
    const std::string name = entry->d_name;
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    const auto pid = static_cast<pid_t>(std::stol(name));
    if (comm_of(pid) != "rlock-keeper" || process_gone(pid)) {
      continue;
    }
    const std::string cmdline = try_read_file("/proc/" + name + "/cmdline").value_or("");
    if (contains(cmdline, ":" + std::to_string(port))) {
      result.push_back(pid);
    }
  }
  ::closedir(proc);
  return result;
}

BackgroundOptions script_env(const RedisServer& redis, const TempDir& dir) {
  BackgroundOptions options;
  options.env = {"RLOCK=" + rlock_bin(), "RLOCK_URL=" + redis.url(), "DIR=" + dir.path()};
  options.inherit_rlock_env = false;
  return options;
}

} // namespace

TEST_CASE("sh: tok=$(rlock acquire k) returns at once; the lock lives while sh does and is freed when it exits") {
  RedisServer redis;
  TempDir dir;
  const auto start = Clock::now();
  BackgroundProcess shell({"/bin/sh", "-c",
                           "tok=$(\"$RLOCK\" acquire k --ttl 60s) || exit 3; echo \"$tok\" > \"$DIR/tok.tmp\"; "
                           "mv \"$DIR/tok.tmp\" \"$DIR/tok\"; sleep 0.5"},
                          script_env(redis, dir));
  REQUIRE(wait_until([&] { return file_exists(dir.file("tok")) || !shell.running(); }, 30s));
  const auto got_token = Clock::now();
  INFO("sh stderr: ", shell.err());
  REQUIRE(file_exists(dir.file("tok")));
  // Held while sh sleeps.
  CHECK(status_of(redis, "k") == 0);
  const std::string token = trim(read_file(dir.file("tok")));
  CHECK(is_token(token));
  CHECK(redis.command({"GET", lock_key("k")}) == token);
  // $(...) did not wait for the keeper: the token came back long before any lease matter (the
  // TTL is 60 s; the bounds here leave a loaded machine room and still tell the two apart).
  CHECK(got_token - start < 20s);
  CHECK(shell.wait(30s) == 0);
  const auto shell_done = Clock::now();
  // The whole script took its 0.5s sleep plus start-up, not a TTL.
  CHECK(shell_done - start < 30s);
  // The 60s lease is freed by the keeper, promptly after the owner exits: not by its TTL.
  CHECK(wait_until([&] { return status_of(redis, "k") == 1; }, 20s));
  CHECK(Clock::now() - shell_done < 20s);
  CHECK(keepers_for(redis.port()).empty());
}

TEST_CASE("bash: a script's lock outlives several $(...) subshells and is freed at the script's exit") {
  RedisServer redis;
  TempDir dir;
  BackgroundProcess shell({"/bin/bash", "-c",
                           "tok=$(\"$RLOCK\" acquire k --ttl 60s 2>/dev/null) || exit 3; x=$(echo sub); "
                           "y=$( (echo nested) ); echo \"$tok\" > \"$DIR/tok.tmp\"; mv \"$DIR/tok.tmp\" \"$DIR/tok\"; "
                           "while [ ! -e \"$DIR/go\" ]; do sleep 0.05; done"},
                          script_env(redis, dir));
  REQUIRE(wait_until([&] { return file_exists(dir.file("tok")) || !shell.running(); }, 10s));
  INFO("bash stderr: ", shell.err());
  REQUIRE(shell.running());
  CHECK(status_of(redis, "k") == 0);
  write_file(dir.file("go"), "");
  CHECK(shell.wait(10s) == 0);
  CHECK(wait_until([&] { return status_of(redis, "k") == 1; }, 20s)); // not by the 60 s TTL
}

TEST_CASE("the keeper is named rlock-keeper, and release --token stops it") {
  RedisServer redis;
  TempDir dir;
  BackgroundProcess owner({"sleep", "1000"});
  const RunResult acquired =
      run_rlock(at(redis, {"acquire", "k", "--ttl", "60s", "--owner-pid", std::to_string(owner.pid())}));
  INFO(acquired.describe());
  REQUIRE(acquired.exit_code == 0);
  const std::string token = trim(acquired.out);
  const auto keeper = keeper_pid(redis, "k");
  REQUIRE(keeper.has_value());
  CHECK(comm_of(*keeper) == "rlock-keeper");
  CHECK_FALSE(process_gone(*keeper));

  const RunResult released = run_rlock(at(redis, {"release", "k", "--token", token}));
  INFO(released.describe());
  CHECK(released.exit_code == 0);
  CHECK(wait_until([&] { return process_gone(*keeper); }, 20s));
  CHECK_FALSE(key_exists(redis, lock_key("k")));
  // The owner is untouched.
  CHECK(owner.running());
}

TEST_CASE("--owner-pid of a background process: the lock is freed when that process is killed") {
  RedisServer redis;
  BackgroundProcess owner({"sleep", "1000"});
  const RunResult acquired =
      run_rlock(at(redis, {"acquire", "k", "--ttl", "60s", "--owner-pid", std::to_string(owner.pid()), "-v"}));
  INFO(acquired.describe());
  REQUIRE(acquired.exit_code == 0);
  CHECK(contains(acquired.err, std::to_string(owner.pid())));
  const auto keeper = keeper_pid(redis, "k");
  REQUIRE(keeper.has_value());
  CHECK(status_of(redis, "k") == 0);

  owner.kill();
  const auto killed = Clock::now();
  CHECK(wait_until([&] { return status_of(redis, "k") == 1; }, 20s));
  CHECK(Clock::now() - killed < 20s); // not by the 60 s TTL
  CHECK(wait_until([&] { return process_gone(*keeper); }, 20s));
}

TEST_CASE("-v names the owner chosen by default: the calling script, not a $(...) subshell") {
  RedisServer redis;
  TempDir dir;
  for (const char* shell_path : {"/bin/sh", "/bin/bash"}) {
    INFO("shell ", shell_path);
    const std::string name = std::string("v-") + (std::string(shell_path) == "/bin/sh" ? "sh" : "bash");
    const std::string err_file = dir.file(name + ".err");
    const std::string pid_file = dir.file(name + ".pid");
    BackgroundOptions options = script_env(redis, dir);
    options.env.push_back("NAME=" + name);
    options.env.push_back("ERR=" + err_file);
    options.env.push_back("PIDFILE=" + pid_file);
    BackgroundProcess shell({shell_path, "-c",
                             "tok=$(\"$RLOCK\" -v acquire \"$NAME\" --ttl 60s 2>\"$ERR\") || exit 3; "
                             "echo $$ > \"$PIDFILE.tmp\"; mv \"$PIDFILE.tmp\" \"$PIDFILE\"; sleep 1000"},
                            options);
    REQUIRE(wait_until([&] { return file_exists(pid_file) || !shell.running(); }, 10s));
    INFO("script stderr: ", shell.err());
    REQUIRE(shell.running());
    const std::string script_pid = trim(read_file(pid_file));
    CHECK(script_pid == std::to_string(shell.pid()));
    const std::string verbose = read_file(err_file);
    INFO("rlock -v: ", verbose);
    CHECK(contains(verbose, "pid " + script_pid));
    shell.kill();
    CHECK(wait_until([&] { return status_of(redis, name) == 1; }, 20s)); // not by the 60 s TTL
  }
}

TEST_CASE("acquire --lease leaves no keeper") {
  RedisServer redis;
  const std::string token = acquire_lease(redis, "k", "30s");
  CHECK_FALSE(keeper_pid(redis, "k").has_value());
  CHECK(keepers_for(redis.port()).empty());
  // And the lease simply runs for its TTL.
  const long long remaining = pttl(redis, lock_key("k"));
  CHECK(remaining > 25000);
  CHECK(remaining <= 30000);
  CHECK(run_rlock(at(redis, {"release", "k", "--token", token})).exit_code == 0);
}

TEST_CASE("a keeper whose lease was lost exits, and leaves the new holder's lock alone") {
  RedisServer redis;
  BackgroundProcess owner({"sleep", "1000"});
  const RunResult acquired =
      run_rlock(at(redis, {"acquire", "k", "--ttl", "900ms", "--owner-pid", std::to_string(owner.pid())}));
  INFO(acquired.describe());
  REQUIRE(acquired.exit_code == 0);
  const auto keeper = keeper_pid(redis, "k");
  REQUIRE(keeper.has_value());
  REQUIRE(redis.command({"SET", lock_key("k"), "0123456789abcdef0123456789abcdef", "PX", "60000"}) == "OK");
  // Its next renewal (TTL/3) finds the lock taken.
  CHECK(wait_until([&] { return process_gone(*keeper); }, 20s));
  CHECK(redis.command({"GET", lock_key("k")}) == "0123456789abcdef0123456789abcdef");
  // The owner's exit later does not release someone else's lock.
  owner.kill();
  CHECK(redis.command({"GET", lock_key("k")}) == "0123456789abcdef0123456789abcdef");
}

TEST_CASE("the keeper holds neither the terminal-facing stdio nor the $(...) pipe") {
  RedisServer redis;
  BackgroundProcess owner({"sleep", "1000"});
  // run_rlock returns only when stdout reaches EOF: a keeper holding it would time out here.
  RunOptions options;
  options.timeout = 10s;
  const RunResult acquired =
      run_rlock(at(redis, {"acquire", "k", "--ttl", "60s", "--owner-pid", std::to_string(owner.pid())}), options);
  INFO(acquired.describe());
  REQUIRE(acquired.exit_code == 0);
  const auto keeper = keeper_pid(redis, "k");
  REQUIRE(keeper.has_value());
  for (const int fd : {0, 1, 2}) {
    char target[4096] = {};
    const std::string link = "/proc/" + std::to_string(*keeper) + "/fd/" + std::to_string(fd);
    const auto length = ::readlink(link.c_str(), target, sizeof target - 1);
    INFO("fd ", fd);
    REQUIRE(length > 0);
    CHECK(std::string(target, static_cast<std::size_t>(length)) == "/dev/null");
  }
  owner.kill();
}

} // namespace rlock::test
