// SPDX-License-Identifier: MIT
// Black-box tests of the command line itself: help, typos, global options anywhere before
// "--", CLI11's errors in rlock's words, and the messages of issue 12 item 6.
#include "helpers.hpp"
#include "redis_server.hpp"
#include "run.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

namespace rlock::test {

namespace {

const std::vector<std::string> k_commands = {"exec", "acquire", "release", "renew", "status"};

// CHECKs a usage error: exit 64, one "rlock: error: …" line, containing `part`.
void check_usage_error(const RunResult& result, std::string_view part) {
  INFO(result.describe());
  CHECK(result.exit_code == 64);
  check_error_line(result);
  CHECK(contains(result.err, part));
}

} // namespace

TEST_CASE("a mistyped command is named, with the command it resembles") {
  check_usage_error(run_rlock({"exce", "job", "--", "true"}), "unknown command 'exce' (did you mean exec?)");
  check_usage_error(run_rlock({"--url", "redis://127.0.0.1:1", "staus", "job"}),
                    "unknown command 'staus' (did you mean status?)");
  // Nothing like any command: no guess.
  const RunResult far = run_rlock({"frobnicate", "job"});
  check_usage_error(far, "unknown command 'frobnicate'");
  CHECK_FALSE(contains(far.err, "did you mean"));
}

TEST_CASE("no command at all says what the commands are") {
  for (const std::vector<std::string>& args : {std::vector<std::string>{}, {"--url", "redis://127.0.0.1:1"}, {"-v"}}) {
    INFO("args: ", fmt::format("{}", fmt::join(args, " ")));
    const RunResult result = run_rlock(args);
    check_usage_error(result, "no command given");
    for (const auto& command : k_commands) CHECK(contains(result.err, command));
  }
}

TEST_CASE("global options are accepted after the command, before '--'") {
  RedisServer redis;
  SUBCASE("exec") {
    const RunResult result = run_rlock(
        {"exec", "job", "--url", redis.url(), "--ttl", "5s", "--prefix", "team:", "--", "sh", "-c", "exit 3"});
    INFO(result.describe());
    CHECK(result.exit_code == 3);
    CHECK(result.err.empty());
  }
  SUBCASE("acquire, status, renew and release, with global options on either side") {
    const RunResult acquired = run_rlock({"acquire", "job", "--lease", "--url", redis.url(), "--prefix", "team:"});
    INFO(acquired.describe());
    REQUIRE(acquired.exit_code == 0);
    const std::string token = trim(acquired.out);
    CHECK(key_exists(redis, lock_key("job", "team:")));
    CHECK(run_rlock({"status", "--url", redis.url(), "job", "--prefix", "team:", "-q"}).exit_code == 0);
    CHECK(run_rlock({"--prefix", "team:", "renew", "job", "--token", token, "--url", redis.url()}).exit_code == 0);
    CHECK(run_rlock({"release", "job", "--url", redis.url(), "--token", token, "--prefix", "team:"}).exit_code == 0);
    CHECK_FALSE(key_exists(redis, lock_key("job", "team:")));
  }
  SUBCASE("after '--' they belong to the job") {
    TempDir dir;
    const RunResult result =
        run_rlock(at(redis, {"exec", "job", "--", "sh", "-c", "printf '%s ' \"$@\"", "sh", "--url", "x", "-v"}));
    INFO(result.describe());
    CHECK(result.exit_code == 0);
    CHECK(result.out == "--url x -v ");
  }
}

TEST_CASE("unknown options and stray arguments are named in the order given, in rlock's words") {
  RedisServer redis;
  check_usage_error(run_rlock(at(redis, {"acquire", "job", "--tll", "5s"})),
                    "unknown option '--tll' (did you mean --ttl?)");
  check_usage_error(run_rlock(at(redis, {"acquire", "job", "--lease", "extra1", "extra2"})),
                    "unexpected argument 'extra1'");
  check_usage_error(run_rlock(at(redis, {"exec", "job", "true"})), "the command to run goes after '--'");
  check_usage_error(run_rlock(at(redis, {"acquire", "job", "--ttl"})), "--ttl needs a value");
  // No text of CLI11's own capitalised style is left beside rlock's.
  for (const std::vector<std::string>& args : {std::vector<std::string>{"acquire", "job", "--frobnicate"},
                                               {"acquire"},
                                               {"acquire", "job", "-E", "300"},
                                               {"acquire", "job", "-E", "x"}}) {
    INFO("args: ", fmt::format("{}", fmt::join(args, " ")));
    const RunResult result = run_rlock(at(redis, args));
    INFO(result.describe());
    CHECK(result.exit_code == 64);
    check_error_line(result);
    REQUIRE(result.err.size() > 14);
    CHECK(std::islower(static_cast<unsigned char>(result.err[14])) != 0); // after "rlock: error: "
    CHECK_FALSE(contains(result.err, "The following"));
  }
  CHECK(redis.command({"DBSIZE"}) == "0");
}

TEST_CASE("each command's --help lists the global options, and exec's usage line shows '-- COMMAND'") {
  for (const auto& command : k_commands) {
    INFO("command: ", command);
    const RunResult result = run_rlock({command, "--help"});
    INFO(result.describe());
    CHECK(result.exit_code == 0);
    CHECK(contains(result.out, "Global options"));
    for (const char* option : {"--url", "--password-file", "--prefix", "--io-timeout", "--verbose", "--quiet"}) {
      CHECK(contains(result.out, option));
    }
  }
  const RunResult exec = run_rlock({"exec", "--help"});
  bool usage_line_found = false;
  for (const auto& line : split_lines(exec.out)) {
    if (line.starts_with("Usage:")) {
      usage_line_found = true;
      CHECK(contains(line, "NAME"));
      CHECK(contains(line, "-- COMMAND [ARG...]"));
    }
  }
  CHECK(usage_line_found);
}

TEST_CASE("rlock help [COMMAND] prints the help --help prints") {
  for (const auto& command : k_commands) {
    INFO("command: ", command);
    const RunResult help = run_rlock({"help", command});
    const RunResult dashed = run_rlock({command, "--help"});
    INFO(help.describe());
    CHECK(help.exit_code == 0);
    CHECK(help.out == dashed.out);
    CHECK(contains(help.out, "Usage: rlock " + command));
  }
  const RunResult top = run_rlock({"help"});
  INFO(top.describe());
  CHECK(top.exit_code == 0);
  CHECK(top.out == run_rlock({"--help"}).out);
  check_usage_error(run_rlock({"help", "exce"}), "unknown command 'exce' (did you mean exec?)");
}

TEST_CASE("renew without a token does not suggest --force, which renew refuses; release does") {
  RedisServer redis;
  const RunResult renew = run_rlock(at(redis, {"renew", "job"}));
  check_usage_error(renew, "no token to renew 'job'");
  CHECK_FALSE(contains(renew.err, "--force"));
  CHECK(run_rlock(at(redis, {"renew", "job", "--force"})).exit_code == 64);
  const RunResult release = run_rlock(at(redis, {"release", "job"}));
  check_usage_error(release, "no token to release 'job'");
  CHECK(contains(release.err, "--force"));
}

TEST_CASE("a made-up token is a usage error (64), not a lost lock (76), and Redis is not asked") {
  RedisServer redis;
  const std::string token = acquire_lease(redis, "job");
  TempDir dir;
  write_file(dir.file("token"), "not-a-token\n");
  for (const char* verb : {"release", "renew"}) {
    INFO("verb: ", std::string(verb));
    check_usage_error(run_rlock(at(redis, {verb, "job", "--token", "deadbeef"})), "not an rlock token");
    check_usage_error(run_rlock(at(redis, {verb, "job", "--token-file", dir.file("token")})), "not an rlock token");
    RunOptions from_env;
    from_env.env = {"RLOCK_TOKEN=made-up"};
    const RunResult env = run_rlock(at(redis, {verb, "job"}), from_env);
    check_usage_error(env, "not an rlock token");
    CHECK(contains(env.err, "RLOCK_TOKEN"));
    CHECK_FALSE(contains(env.err, "made-up")); // a token is not echoed
  }
  // The real holder is untouched, and a well-formed token that holds nothing is still 76.
  CHECK(redis.command({"GET", lock_key("job")}) == token);
  CHECK(run_rlock(at(redis, {"release", "job", "--token", "0123456789abcdef0123456789abcdef"})).exit_code == 76);
}

TEST_CASE("running out of file descriptors for the socket is an OS error (71), not an unreachable Redis (69)") {
  RedisServer redis;
  // Three descriptors are stdin, stdout and stderr: the socket is the first one too many.
  const RunResult result = run_program(
      {"sh", "-c", "ulimit -n 3 && exec \"$0\" \"$@\"", rlock_bin(), "--url", redis.url(), "status", "job"});
  INFO(result.describe());
  CHECK(result.exit_code == 71);
  check_error_line(result);
  CHECK(contains(result.err, "socket"));
  CHECK(icontains(result.err, "too many open files"));
}

TEST_CASE("status says why a lease has more left than its TTL: --min-hold after the job ended") {
  RedisServer redis;
  const RunResult job = run_rlock(at(redis, {"exec", "job", "--ttl", "1s", "--min-hold", "60s", "--", "true"}));
  INFO(job.describe());
  REQUIRE(job.exit_code == 0);
  const RunResult status = run_rlock(at(redis, {"status", "job"}));
  INFO(status.describe());
  CHECK(status.exit_code == 0);
  CHECK(contains(status.out, "--min-hold"));
  CHECK(contains(status.out, "the job has ended"));
}

} // namespace rlock::test
