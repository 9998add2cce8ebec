// SPDX-License-Identifier: MIT
// Black-box tests of the command line itself: usage errors in rlock's words, `rlock help`,
// global options after the command, made-up tokens, running out of descriptors, --min-hold.
#include "helpers.hpp"
#include "redis_server.hpp"
#include "run.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

namespace rlock::test {

namespace {

// CHECKs a usage error: exit 64, one line "rlock: error: " followed by rlock's own lowercase
// words (not CLI11's "The following arguments were not expected").
void check_usage_error(const RunResult& result) {
  INFO(result.describe());
  CHECK(result.exit_code == 64);
  check_error_line(result);
  const std::string_view prefix = "rlock: error: ";
  if (result.err.size() > prefix.size() + 1) { // "NAME" may start it, "The" may not
    const char first = result.err[prefix.size()];
    const char second = result.err[prefix.size() + 1];
    CHECK_FALSE((first >= 'A' && first <= 'Z' && second >= 'a' && second <= 'z'));
  }
  CHECK_FALSE(contains(result.err, "not expected"));
}

// `args` run by /bin/sh with at most `limit` open descriptors (0, 1 and 2 are taken already).
RunResult run_rlock_with_fd_limit(int limit, const std::vector<std::string>& args) {
  std::vector<std::string> argv{"/bin/sh", "-c", fmt::format("ulimit -n {} && exec \"$0\" \"$@\"", limit), rlock_bin()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_program(argv);
}

} // namespace

TEST_CASE("renew without a token says where a token comes from, and never suggests --force") {
  const RunResult renew = run_rlock({"renew", "job"});
  check_usage_error(renew);
  CHECK(contains(renew.err, "--token"));
  CHECK(contains(renew.err, "RLOCK_TOKEN_JOB"));
  CHECK_FALSE(contains(renew.err, "--force")); // renew refuses it
  // release does take --force: there the hint stays.
  const RunResult release = run_rlock({"release", "job"});
  check_usage_error(release);
  CHECK(contains(release.err, "--force"));
}

TEST_CASE("a mistyped command gets 'did you mean', an unknown one the list of commands") {
  RedisServer redis;
  SUBCASE("exce") {
    const RunResult result = run_rlock(at(redis, {"exce", "job", "--", "true"}));
    check_usage_error(result);
    CHECK(result.err == "rlock: error: unknown command 'exce' (did you mean exec?)\n");
  }
  SUBCASE("stauts, after a global option") {
    const RunResult result = run_rlock(at(redis, {"-q", "stauts", "job"}));
    check_usage_error(result);
    CHECK(contains(result.err, "unknown command 'stauts' (did you mean status?)"));
  }
  SUBCASE("frobnicate") {
    const RunResult result = run_rlock(at(redis, {"frobnicate", "job"}));
    check_usage_error(result);
    CHECK(contains(result.err, "unknown command 'frobnicate'"));
    CHECK(contains(result.err, "exec, acquire, release, renew, wait, status, log, config, help"));
  }
  SUBCASE("no command at all") {
    const RunResult result = run_rlock(at(redis, {}));
    check_usage_error(result);
    CHECK(contains(result.err, "exec, acquire, release, renew, wait, status, log, config, help"));
  }
  CHECK(redis.command({"DBSIZE"}) == "0");
}

TEST_CASE("global options after the command: every kind, and never after '--'") {
  RedisServer redis;
  TempDir dir;
  SUBCASE("exec NAME --url U --prefix P -v -- COMMAND: the job runs under that lock") {
    const RunResult result = run_rlock({"exec",
                                        "job",
                                        "--url",
                                        redis.url(),
                                        "--prefix",
                                        "late:",
                                        "-v",
                                        "--connect-timeout",
                                        "3s",
                                        "--io-timeout",
                                        "3s",
                                        "--",
                                        "sh",
                                        "-c",
                                        "printf '%s\\n' \"$RLOCK_PREFIX\" \"$@\"",
                                        "sh",
                                        "--url",
                                        "--prefix",
                                        "x",
                                        "-q"});
    INFO(result.describe());
    CHECK(result.exit_code == 0);
    // The words after "--" are the job's, even those that look like rlock's options.
    CHECK(split_lines(result.out) == std::vector<std::string>{"late:", "--url", "--prefix", "x", "-q"});
    CHECK(contains(result.err, "rlock: ")); // -v after the command took effect
  }
  SUBCASE("status --json --url U") {
    const RunResult result = run_rlock({"status", "--json", "--url", redis.url()});
    INFO(result.describe());
    CHECK(result.exit_code == 1); // nothing held
    CHECK(is_valid_json(result.out));
  }
  SUBCASE("--config and --profile after the command") {
    const std::string config = dir.file("config");
    write_file(config, fmt::format("[profile here]\nurl = {}\nprefix = prof:\n", redis.url()), 0600);
    const RunResult result = run_rlock({"acquire", "job", "--lease", "--config", config, "--profile", "here"});
    INFO(result.describe());
    REQUIRE(result.exit_code == 0);
    CHECK(redis.command({"GET", lock_key("job", "prof:")}) == trim(result.out));
  }
  SUBCASE("--password-file after the command") {
    RedisServerOptions options;
    options.password = "s3cret-pw";
    RedisServer locked(options);
    write_file(dir.file("pw"), "s3cret-pw\n", 0600);
    const RunResult result = run_rlock({"status", "job", "--url", locked.url(), "--password-file", dir.file("pw")});
    INFO(result.describe());
    CHECK(result.exit_code == 1);
  }
  SUBCASE("a TLS flag after the command is read as the global one") {
    const RunResult result = run_rlock({"status", "job", "--url", redis.url(), "--cacert", dir.file("ca.pem")});
    INFO(result.describe());
    CHECK(result.exit_code == 78); // --cacert for a plaintext URL: a configuration error, not "unknown option"
    CHECK(contains(result.err, "--cacert"));
  }
  SUBCASE("-q after the command") {
    const RunResult result = run_rlock({"status", "job", "-q", "--url", redis.url()});
    INFO(result.describe());
    CHECK(result.exit_code == 1);
    CHECK(result.out.empty());
  }
  SUBCASE("a command's option before the command is named, in order") {
    const RunResult result = run_rlock(at(redis, {"--ttl", "5s", "exec", "job", "--", "true"}));
    check_usage_error(result);
    CHECK(contains(result.err, "--ttl"));
    CHECK(contains(result.err, "after the command 'exec'"));
    CHECK_FALSE(key_exists(redis, lock_key("job")));
  }
}

TEST_CASE("usage errors are rlock's lowercase one-liners with a pointer to 'rlock help'") {
  const std::vector<std::vector<std::string>> cases = {
      {"exec"},
      {"exec", "job", "--ttl"},
      {"status", "a", "b"},
      {"acquire", "job", "--owner-pid", "abc"},
      {"--tls-verify", "bad", "status"},
      {"exec", "job", "--frobnicate", "--", "true"},
      {"status", "job", "--", "true"},
      {"config", "shwo"},
      {"exec", "job", "-E", "300", "--", "true"},
  };
  for (const auto& args : cases) {
    INFO("args: ", fmt::format("{}", fmt::join(args, " ")));
    const RunResult result = run_rlock(args);
    check_usage_error(result);
    CHECK(contains(result.err, fmt::format("try 'rlock help {}'", args[0] == "--tls-verify" ? "status" : args[0])));
  }
}

TEST_CASE("CLI11's checks come out in rlock's words") {
  const RunResult range = run_rlock({"exec", "job", "-E", "300", "--", "true"});
  check_usage_error(range);
  CHECK(contains(range.err, "--conflict-exit-code must be from 0 to 255, not '300'"));
  const RunResult choice = run_rlock({"status", "--tls-verify", "bad"});
  check_usage_error(choice);
  CHECK(contains(choice.err, "--tls-verify must be full|ca|none, not 'bad'"));
  const RunResult number = run_rlock({"acquire", "job", "--owner-pid", "abc"});
  check_usage_error(number);
  CHECK(contains(number.err, "--owner-pid: 'abc' is not a valid value"));
  const RunResult missing = run_rlock({"exec"});
  check_usage_error(missing);
  CHECK(contains(missing.err, "missing NAME"));
}

TEST_CASE("rlock help CMD is rlock CMD --help, with the global options and exec's '-- COMMAND'") {
  for (const char* command : {"exec", "acquire", "release", "renew", "status", "config", "help"}) {
    INFO("command: ", std::string(command));
    const RunResult help = run_rlock({"help", command});
    const RunResult flag = run_rlock({command, "--help"});
    INFO(help.describe());
    CHECK(help.exit_code == 0);
    CHECK(flag.exit_code == 0);
    CHECK(help.out == flag.out);
    CHECK(contains(help.out, fmt::format("Usage: rlock [global options] {}", command)) ==
          (command != std::string("help")));
    CHECK(contains(help.out, "Global options:"));
    CHECK(contains(help.out, "--url URL"));
    CHECK(contains(help.out, "--cacert FILE"));
  }
  const RunResult exec = run_rlock({"exec", "--help"});
  const RunResult around = run_rlock({"help", "--url", "redis://127.0.0.1:1", "exec", "-q"});
  CHECK(around.exit_code == 0);
  CHECK(around.out == exec.out); // global options around the name change nothing
  CHECK(contains(exec.out, "Usage: rlock [global options] exec NAME [options] -- COMMAND [ARG...]"));
  const RunResult bare = run_rlock({"help"});
  const RunResult main = run_rlock({"--help"});
  CHECK(bare.exit_code == 0);
  CHECK(bare.out == main.out);
  CHECK(contains(bare.out, "help"));
  const RunResult typo = run_rlock({"help", "exce"});
  check_usage_error(typo);
  CHECK(contains(typo.err, "did you mean exec?"));
}

TEST_CASE("a made-up token is a usage error (64), not a lost lock; the lock and the job are untouched") {
  RedisServer redis;
  TempDir dir;
  const std::string token = acquire_lease(redis, "job", "1m");
  const std::string made_up_file = dir.file("token");
  write_file(made_up_file, "hello\n", 0600);
  std::string upper = token;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const std::string marker = dir.file("ran");
  struct Case {
    const char* label;
    std::vector<std::string> args;
    std::vector<std::string> env;
  };
  const std::vector<Case> cases = {
      {"release --token", {"release", "job", "--token", "not-a-token"}, {}},
      {"release --token, a token cut short", {"release", "job", "--token", token.substr(0, 31)}, {}},
      {"release --token, upper case", {"release", "job", "--token", upper}, {}},
      {"renew --token", {"renew", "job", "--token", "1234"}, {}},
      {"release --token-file", {"release", "job", "--token-file", made_up_file}, {}},
      {"renew, RLOCK_TOKEN", {"renew", "job"}, {"RLOCK_TOKEN=oops"}},
      {"exec --token", {"exec", "job", "--token", "not-a-token", "--", "touch", marker}, {}},
      {"exec --token-file", {"exec", "job", "--token-file", made_up_file, "--", "touch", marker}, {}},
      {"exec --adopt", {"exec", "job", "--adopt", "--", "touch", marker}, {"RLOCK_TOKEN_JOB=0xdeadbeef"}},
  };
  for (const Case& entry : cases) {
    INFO("case: ", std::string(entry.label));
    RunOptions options;
    options.env = entry.env;
    const RunResult result = run_rlock(at(redis, entry.args), options);
    check_usage_error(result);
    CHECK(contains(result.err, "not an rlock token"));
    CHECK(redis.command({"GET", lock_key("job")}) == token);
  }
  CHECK_FALSE(file_exists(marker));
}

TEST_CASE("no file descriptor left for the socket, the config file or the password file: exit 71") {
  // A dynamically linked rlock (the sanitizer build) cannot even be loaded without a free
  // descriptor: the dynamic loader opens its libraries first. The default build is static.
  const RunResult probe = run_rlock_with_fd_limit(3, {"--version"});
  if (probe.exit_code == 127 && contains(probe.err, "error while loading shared libraries")) {
    MESSAGE("skipped: this rlock is linked dynamically and cannot start with no descriptor free");
    return;
  }
  REQUIRE(probe.exit_code == 0);
  RedisServer redis;
  TempDir dir;
  SUBCASE("the socket") {
    const RunResult result = run_rlock_with_fd_limit(3, at(redis, {"--config", "/dev/null", "status", "job"}));
    INFO(result.describe());
    CHECK(result.exit_code == 71);
    check_error_line(result);
    CHECK(contains(result.err, "socket"));
  }
  SUBCASE("the config file") {
    write_file(dir.file("config"), "prefix = cfg:\n", 0600);
    const RunResult result = run_rlock_with_fd_limit(3, at(redis, {"--config", dir.file("config"), "status", "job"}));
    INFO(result.describe());
    CHECK(result.exit_code == 71);
    check_error_line(result);
    CHECK(contains(result.err, "config file"));
  }
  SUBCASE("the password file") {
    write_file(dir.file("pw"), "pw\n", 0600);
    const RunResult result = run_rlock_with_fd_limit(
        3, at(redis, {"--config", "/dev/null", "--password-file", dir.file("pw"), "status", "job"}));
    INFO(result.describe());
    CHECK(result.exit_code == 71);
    check_error_line(result);
    CHECK(contains(result.err, "password file"));
  }
  SUBCASE("with descriptors enough, the same run works") {
    const RunResult result = run_rlock_with_fd_limit(64, at(redis, {"--config", "/dev/null", "status", "job"}));
    INFO(result.describe());
    CHECK(result.exit_code == 1);
  }
}

TEST_CASE("--min-hold: status and -v say that the lease outlives its TTL to honour --min-hold") {
  RedisServer redis;
  const RunResult exec = run_rlock(at(redis, {"-v", "exec", "job", "--ttl", "2s", "--min-hold", "1m", "--", "true"}));
  INFO(exec.describe());
  REQUIRE(exec.exit_code == 0);
  CHECK(contains(exec.err, "to honour --min-hold 1m"));
  const RunResult status = run_rlock(at(redis, {"status", "job"}));
  INFO(status.describe());
  CHECK(status.exit_code == 0);
  CHECK(contains(status.out, "longer than its 2.0s TTL"));
  CHECK(contains(status.out, "to honour --min-hold"));
}

} // namespace rlock::test
