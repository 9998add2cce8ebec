// SPDX-License-Identifier: MIT
// Black-box tests of bad input and unreachable or wrong servers: exit codes 64, 69, 78 (EXIT STATUS in rlock(1)).
#include "helpers.hpp"
#include "redis_server.hpp"
#include "run.hpp"
#include "stub_server.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

namespace rlock::test {

namespace {

void check_nothing_stored(const RedisServer& redis) { CHECK(redis.command({"DBSIZE"}) == "0"); }

} // namespace

TEST_CASE("bad lock names are usage errors") {
  RedisServer redis;
  struct Case {
    const char* label;
    std::string name;
  };
  const Case cases[] = {
      {"empty", ""},          {"open brace", "a{b"},
      {"close brace", "a}b"}, {"control character", std::string("a\x01") + "b"},
      {"newline", "a\nb"},    {"1025 bytes", std::string(1025, 'n')},
  };
  for (const auto& entry : cases) {
    INFO("entry.label: ", std::string(entry.label));
    for (const char* command : {"acquire", "release", "renew", "status"}) {
      INFO("command: ", std::string(command));
      std::vector<std::string> args{command, entry.name};
      if (std::string_view(command) == "acquire") {
        args.emplace_back("--lease");
      } else if (std::string_view(command) != "status") {
        args.insert(args.end(), {"--token", "0123456789abcdef0123456789abcdef"});
      }
      const RunResult result = run_rlock(at(redis, args));
      INFO(result.describe());
      CHECK(result.exit_code == 64);
      check_error_line(result);
    }
  }
  check_nothing_stored(redis);
}

TEST_CASE("a name of 1024 bytes is accepted") {
  RedisServer redis;
  const std::string name(1024, 'n');
  const std::string token = acquire_lease(redis, name);
  CHECK(redis.command({"GET", lock_key(name)}) == token);
}

TEST_CASE("bad durations are usage errors") {
  RedisServer redis;
  for (const char* ttl : {"abc", "-1", "", "5q", "1h-30m", "ms"}) {
    INFO("ttl: ", std::string(ttl));
    const RunResult result = run_rlock(at(redis, {"acquire", "job", "--lease", "--ttl", ttl}));
    INFO(result.describe());
    CHECK(result.exit_code == 64);
    check_error_line(result);
  }
  for (const char* wait : {"abc", "-1"}) {
    INFO("wait: ", std::string(wait));
    const RunResult result = run_rlock(at(redis, {"acquire", "job", "--lease", "-w", wait}));
    INFO(result.describe());
    CHECK(result.exit_code == 64);
  }
  const RunResult io = run_rlock(at(redis, {"--io-timeout", "soon", "status", "job"}));
  INFO(io.describe());
  CHECK(io.exit_code == 64);
  check_nothing_stored(redis);
}

TEST_CASE("unknown options, subcommands and missing arguments are usage errors") {
  RedisServer redis;
  const std::vector<std::vector<std::string>> cases = {
      {"acquire", "job", "--frobnicate"}, {"--frobnicate", "status"},    {"frobnicate", "job"}, {"acquire"},
      {"acquire", "job", "--ttl"},        {"release", "job", "--token"},
  };
  for (const auto& args : cases) {
    INFO("args: ", fmt::format("{}", fmt::join(args, " ")));
    const RunResult result = run_rlock(at(redis, args));
    INFO(result.describe());
    CHECK(result.exit_code == 64);
    CHECK(contains(result.err, "rlock: error: "));
  }
  check_nothing_stored(redis);
}

TEST_CASE("--help and --version exit 0") {
  SUBCASE("rlock --help") {
    const RunResult result = run_rlock({"--help"});
    INFO(result.describe());
    CHECK(result.exit_code == 0);
    for (const char* command : {"exec", "acquire", "release", "renew", "status"}) {
      CHECK(contains(result.out, command));
    }
  }
  for (const char* command : {"acquire", "release", "renew", "status", "exec"}) {
    INFO("command: ", std::string(command));
    const RunResult result = run_rlock({command, "--help"});
    INFO(result.describe());
    CHECK(result.exit_code == 0);
    CHECK(contains(result.out, "--"));
  }
  SUBCASE("rlock --version") {
    const RunResult result = run_rlock({"--version"});
    INFO(result.describe());
    CHECK(result.exit_code == 0);
    CHECK(contains(result.out, "rlock"));
    CHECK(contains(result.out, "0."));
  }
}

TEST_CASE("bad URLs are configuration errors") {
  const std::vector<std::string> urls = {
      "foo://x", "redis://host:99999", "redis://127.0.0.1:notaport", "redis://127.0.0.1:6379/notadb", "unix://",
  };
  for (const auto& url : urls) {
    INFO("url: ", url);
    const RunResult result = run_rlock({"--url", url, "acquire", "job", "--lease"});
    INFO(result.describe());
    CHECK(result.exit_code == 78);
    check_error_line(result);
  }
}

TEST_CASE("an unreadable password file is a configuration error") {
  RedisServer redis;
  TempDir dir;
  SUBCASE("missing") {
    const RunResult result =
        run_rlock(at(redis, {"--password-file", dir.file("missing"), "acquire", "job", "--lease"}));
    INFO(result.describe());
    CHECK(result.exit_code == 78);
    check_error_line(result);
    CHECK(contains(result.err, dir.file("missing")));
  }
  SUBCASE("a directory") {
    const RunResult result = run_rlock(at(redis, {"--password-file", dir.path(), "acquire", "job", "--lease"}));
    INFO(result.describe());
    CHECK(result.exit_code == 78);
    check_error_line(result);
  }
  check_nothing_stored(redis);
}

TEST_CASE("nothing listening on the port exits 69 and names the address") {
  const int port = free_port();
  for (const char* command : {"acquire", "status"}) {
    INFO("command: ", std::string(command));
    std::vector<std::string> args{"--url", "redis://127.0.0.1:" + std::to_string(port), command, "job"};
    if (std::string_view(command) == "acquire") {
      args.emplace_back("--lease");
    }
    const RunResult result = run_rlock(args);
    INFO(result.describe());
    CHECK(result.exit_code == 69);
    check_error_line(result);
    CHECK(contains(result.err, std::to_string(port)));
  }
  SUBCASE("a unix socket that does not exist") {
    TempDir dir;
    const RunResult result = run_rlock({"--url", "unix://" + dir.file("none.sock"), "acquire", "job", "--lease"});
    INFO(result.describe());
    CHECK(result.exit_code == 69);
    check_error_line(result);
  }
}

TEST_CASE("a server that is not Redis exits 69 and says so") {
  StubServer stub(StubMode::reply_and_close, "HTTP/1.1 400 Bad Request\r\n\r\n");
  for (const char* command : {"acquire", "status"}) {
    INFO("command: ", std::string(command));
    std::vector<std::string> args{"--url", stub.url(), command, "job"};
    if (std::string_view(command) == "acquire") {
      args.emplace_back("--lease");
    }
    RunOptions options;
    options.timeout = 20s;
    const RunResult result = run_rlock(args, options);
    INFO(result.describe());
    CHECK(result.exit_code == 69);
    check_error_line(result);
    CHECK((icontains(result.err, "not a redis") || icontains(result.err, "not redis") ||
           icontains(result.err, "protocol") || icontains(result.err, "RESP")));
  }
  CHECK(stub.connections() >= 1);
}

TEST_CASE("a server that never answers times out with --io-timeout and exits 69") {
  StubServer stub(StubMode::silent);
  RunOptions options;
  options.timeout = 20s;
  const RunResult result =
      run_rlock({"--url", stub.url(), "--io-timeout", "300ms", "acquire", "job", "--lease"}, options);
  INFO(result.describe());
  CHECK(result.exit_code == 69);
  check_error_line(result);
  CHECK(icontains(result.err, "time"));
  // Silence says nothing of TLS: a TLS port resets a plaintext client instead.
  CHECK_FALSE(contains(result.err, "TLS"));
  CHECK(result.elapsed >= 250ms);
  CHECK(result.elapsed < 10s);
  CHECK(stub.connections() >= 1);
}

TEST_CASE("a connect that never completes times out with --connect-timeout and exits 69") {
  StubServer stub(StubMode::full_backlog);
  RunOptions options;
  options.timeout = 20s;
  const RunResult result =
      run_rlock({"--url", stub.url(), "--connect-timeout", "300ms", "acquire", "job", "--lease"}, options);
  INFO(result.describe());
  CHECK(result.exit_code == 69);
  check_error_line(result);
  CHECK(icontains(result.err, "time"));
  CHECK(result.elapsed >= 250ms);
  CHECK(result.elapsed < 10s);
}

TEST_CASE("a paused server makes the command time out, not hang") {
  RedisServer redis;
  redis.pause();
  RunOptions options;
  options.timeout = 20s;
  const RunResult result = run_rlock(
      at(redis, {"--io-timeout", "300ms", "--connect-timeout", "300ms", "acquire", "job", "--lease", "-n"}), options);
  redis.resume();
  INFO(result.describe());
  CHECK(result.exit_code == 69);
  check_error_line(result);
  CHECK(result.elapsed < 10s);
}

TEST_CASE("Redis errors on write get a clear message, not a crash or a lock") {
  RedisServer redis;
  SUBCASE("READONLY replica") {
    REQUIRE(redis.command({"REPLICAOF", "127.0.0.1", std::to_string(free_port())}) == "OK");
    const RunResult result = run_rlock(at(redis, {"acquire", "job", "--lease", "-n"}));
    INFO(result.describe());
    CHECK(result.exit_code != 0);
    CHECK(result.exit_code != 75);
    CHECK(result.exit_code < 128);
    check_error_line(result);
    CHECK((icontains(result.err, "READONLY") || icontains(result.err, "read only") ||
           icontains(result.err, "read-only") || icontains(result.err, "replica")));
    REQUIRE(redis.command({"REPLICAOF", "NO", "ONE"}) == "OK");
  }
  SUBCASE("OOM") {
    // Redis 7 lets a script without flags write even over maxmemory, so the acquire may
    // succeed; either way it must be a clean outcome: a held, releasable lock, or a clear
    // OOM error and nothing left behind.
    REQUIRE(redis.command({"CONFIG", "SET", "maxmemory-policy", "noeviction"}) == "OK");
    REQUIRE(redis.command({"CONFIG", "SET", "maxmemory", "1"}) == "OK");
    const RunResult result = run_rlock(at(redis, {"acquire", "job", "--lease", "-n"}));
    INFO(result.describe());
    if (result.exit_code == 0) {
      const RunResult released = run_rlock(at(redis, {"release", "job", "--token", trim(result.out)}));
      INFO(released.describe());
      CHECK(released.exit_code == 0);
    } else {
      CHECK(result.exit_code != 75);
      CHECK(result.exit_code < 128);
      check_error_line(result);
      CHECK((icontains(result.err, "OOM") || icontains(result.err, "memory")));
    }
    REQUIRE(redis.command({"CONFIG", "SET", "maxmemory", "0"}) == "OK");
  }
  CHECK(redis.command({"EXISTS", lock_key("job")}) == "0");
}

TEST_CASE("a key of the wrong type gives a clear error, not a crash") {
  RedisServer redis;
  REQUIRE(redis.command({"HSET", lock_key("job"), "field", "value"}) == "1");
  for (const char* command : {"renew", "release"}) {
    INFO("command: ", std::string(command));
    const std::vector<std::string> args{command, "job", "--token", "0123456789abcdef0123456789abcdef"};
    const RunResult result = run_rlock(at(redis, args));
    INFO(result.describe());
    CHECK(result.exit_code != 0);
    CHECK(result.exit_code < 128);
    CHECK(contains(result.err, "rlock: error: "));
  }
  // Nobody's data was destroyed by a non-forced command.
  CHECK(redis.command({"TYPE", lock_key("job")}) == "hash");
}

} // namespace rlock::test

namespace rlock::test {

TEST_CASE("a stopped server exits 69, and the lock works again once it is back") {
  RedisServer redis;
  const std::string token = acquire_lease(redis, "job", "60s");
  redis.stop();
  const RunResult down = run_rlock(at(redis, {"release", "job", "--token", token}));
  INFO(down.describe());
  CHECK(down.exit_code == 69);
  check_error_line(down);
  redis.start();
  // No persistence: the restarted server is empty, so the old token finds the lock free.
  const RunResult after = run_rlock(at(redis, {"release", "job", "--token", token}));
  INFO(after.describe());
  CHECK(after.exit_code == 76);
  CHECK(is_token(acquire_lease(redis, "job")));
}

} // namespace rlock::test
