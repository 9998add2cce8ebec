// SPDX-License-Identifier: MIT
// Tests for resolving global options and environment into a Config (cli/config).
#include "cli/config.hpp"

#include "cli_test_helpers.hpp"
#include "util/error.hpp"
#include "util/log.hpp"

#include <doctest/doctest.h>

using namespace std::chrono_literals;
using rlock::cli::GlobalOptions;
using rlock::cli::read_secret_file;
using rlock::cli::resolve_config;
using rlock::cli::test::ScopedEnv;
using rlock::cli::test::TempDir;

namespace {

// Every variable resolve_config reads, cleared for the test and restored after it.
ScopedEnv clean_env() {
  return ScopedEnv({"RLOCK_URL", "REDIS_URL", "RLOCK_PASSWORD", "REDISCLI_AUTH", "RLOCK_PREFIX"});
}

// Keeps the --password warning off the test output; restores the level after.
class QuietLog {
 public:
  QuietLog() : m_saved(rlock::log::level()) { rlock::log::set_level(rlock::log::Level::quiet); }
  QuietLog(const QuietLog&) = delete;
  QuietLog& operator=(const QuietLog&) = delete;
  ~QuietLog() { rlock::log::set_level(m_saved); }

 private:
  rlock::log::Level m_saved;
};

template <typename E>
std::string error_of(const GlobalOptions& options, int expected_code) {
  try {
    (void)resolve_config(options);
    FAIL_CHECK("resolve_config accepted the options");
  } catch (const E& error) {
    CHECK(rlock::to_int(error.code()) == expected_code);
    return error.what();
  }
  return {};
}

} // namespace

TEST_CASE("resolve_config defaults") {
  auto env = clean_env();
  auto config = resolve_config(GlobalOptions{});
  CHECK(config.connect.endpoint.host == "127.0.0.1");
  CHECK(config.connect.endpoint.port == 6379);
  CHECK(config.connect.endpoint.db == 0);
  CHECK_FALSE(config.connect.endpoint.password.has_value());
  CHECK(config.prefix == "rlock:");
  CHECK(config.connect.connect_timeout == 2s);
  CHECK(config.connect.io_timeout == 5s);
}

TEST_CASE("resolve_config: --url over RLOCK_URL over REDIS_URL") {
  auto env = clean_env();
  env.set("REDIS_URL", "redis://from-redis-url:1");
  CHECK(resolve_config(GlobalOptions{}).connect.endpoint.host == "from-redis-url");

  env.set("RLOCK_URL", "redis://from-rlock-url:2");
  auto config = resolve_config(GlobalOptions{});
  CHECK(config.connect.endpoint.host == "from-rlock-url");
  CHECK(config.connect.endpoint.port == 2);

  GlobalOptions options;
  options.url = "redis://from-flag:3/4";
  config = resolve_config(options);
  CHECK(config.connect.endpoint.host == "from-flag");
  CHECK(config.connect.endpoint.db == 4);
}

TEST_CASE("resolve_config: a variable set to the empty string is a ConfigError, never unset") {
  for (const char* name : {"RLOCK_URL", "REDIS_URL", "RLOCK_PREFIX"}) {
    CAPTURE(name);
    auto env = clean_env();
    env.set(name, "");
    error_of<rlock::ConfigError>(GlobalOptions{}, 78);
  }
}

TEST_CASE("resolve_config: a bad URL from anywhere is a ConfigError") {
  auto env = clean_env();
  env.set("REDIS_URL", "http://nope");
  error_of<rlock::ConfigError>(GlobalOptions{}, 78);
  env.set("RLOCK_URL", "localhost:6379");
  error_of<rlock::ConfigError>(GlobalOptions{}, 78);
  GlobalOptions options;
  options.url = "redis://h:0";
  error_of<rlock::ConfigError>(options, 78);
}

TEST_CASE("resolve_config: password from the environment when the URL has none") {
  auto env = clean_env();
  env.set("REDISCLI_AUTH", "from-rediscli");
  CHECK(resolve_config(GlobalOptions{}).connect.endpoint.password.value_or("") == "from-rediscli");
  env.set("RLOCK_PASSWORD", "from-rlock");
  CHECK(resolve_config(GlobalOptions{}).connect.endpoint.password.value_or("") == "from-rlock");

  GlobalOptions with_url_password;
  with_url_password.url = "redis://:in-url@h";
  CHECK(resolve_config(with_url_password).connect.endpoint.password.value_or("") == "in-url");
}

TEST_CASE("resolve_config: --password-file reads the first line") {
  auto env = clean_env();
  env.set("RLOCK_PASSWORD", "from-env");
  TempDir dir;
  GlobalOptions options;
  options.password_file = dir.write("pw", "s3cret\nsecond line\n");
  CHECK(resolve_config(options).connect.endpoint.password.value_or("") == "s3cret");

  options.password_file = dir.write("pw-crlf", "s3cret\r\n");
  CHECK(resolve_config(options).connect.endpoint.password.value_or("") == "s3cret");

  options.password_file = dir.write("pw-bare", "no-newline");
  CHECK(resolve_config(options).connect.endpoint.password.value_or("") == "no-newline");

  options.password_file = dir.write("pw-spaces", " keep spaces \n");
  CHECK(resolve_config(options).connect.endpoint.password.value_or("") == " keep spaces ");
}

TEST_CASE("resolve_config: --password beats --password-file") {
  auto env = clean_env();
  QuietLog quiet;
  TempDir dir;
  GlobalOptions options;
  options.password = "typed";
  options.password_file = dir.write("pw", "from-file\n");
  CHECK(resolve_config(options).connect.endpoint.password.value_or("") == "typed");
}

TEST_CASE("resolve_config: an unreadable password file is a ConfigError naming it") {
  auto env = clean_env();
  TempDir dir;
  GlobalOptions options;

  options.password_file = dir.file("missing");
  std::string message = error_of<rlock::ConfigError>(options, 78);
  CHECK(message.find(dir.file("missing")) != std::string::npos);
  CHECK(message.find("No such file") != std::string::npos);

  options.password_file = dir.path().string(); // a directory
  error_of<rlock::ConfigError>(options, 78);

  options.password_file = dir.write("empty", "");
  CHECK(error_of<rlock::ConfigError>(options, 78).find("empty") != std::string::npos);

  options.password_file = dir.write("blank-first-line", "\nsecret-on-line-two\n");
  error_of<rlock::ConfigError>(options, 78);

  options.password_file = dir.write("huge", std::string(70'000, 'x'));
  CHECK(error_of<rlock::ConfigError>(options, 78).find("64 KiB") != std::string::npos);
}

TEST_CASE("read_secret_file names what it reads") {
  TempDir dir;
  CHECK(read_secret_file(dir.write("t", "abc\n"), "token file") == "abc");
  try {
    (void)read_secret_file(dir.file("nope"), "token file");
    FAIL_CHECK("read a missing file");
  } catch (const rlock::ConfigError& error) {
    CHECK(std::string(error.what()).find("token file") != std::string::npos);
  }
}

TEST_CASE("resolve_config: prefix from --prefix, RLOCK_PREFIX, default") {
  auto env = clean_env();
  env.set("RLOCK_PREFIX", "env:");
  CHECK(resolve_config(GlobalOptions{}).prefix == "env:");
  GlobalOptions options;
  options.prefix = "flag:";
  CHECK(resolve_config(options).prefix == "flag:");
}

TEST_CASE("resolve_config: a prefix with braces or control characters is a UsageError") {
  auto env = clean_env();
  for (const char* bad : {"{rlock}:", "a{", "}", "bad\nprefix", "tab\t"}) {
    CAPTURE(bad);
    GlobalOptions options;
    options.prefix = bad;
    error_of<rlock::UsageError>(options, 64);
  }
  env.set("RLOCK_PREFIX", "{x}");
  error_of<rlock::UsageError>(GlobalOptions{}, 64);
}

TEST_CASE("resolve_config: the prefix error does not echo control characters") {
  auto env = clean_env();
  GlobalOptions options;
  options.prefix = "rlock\x1b[2J:";
  std::string message = error_of<rlock::UsageError>(options, 64);
  CHECK(message.find('\x1b') == std::string::npos);
}

TEST_CASE("resolve_config: DEL in a prefix is rejected like other control characters") {
  // validate_name rejects 0x7f; a prefix is printed the same way.
  auto env = clean_env();
  GlobalOptions options;
  options.prefix = "rlock\x7f:";
  error_of<rlock::UsageError>(options, 64);
}

TEST_CASE("resolve_config: timeouts") {
  auto env = clean_env();
  GlobalOptions options;
  options.connect_timeout = "250ms";
  options.io_timeout = "1.5";
  auto config = resolve_config(options);
  CHECK(config.connect.connect_timeout == 250ms);
  CHECK(config.connect.io_timeout == 1500ms);

  for (const char* bad : {"0", "0s", "abc", "-1"}) {
    CAPTURE(bad);
    GlobalOptions io;
    io.io_timeout = bad;
    error_of<rlock::UsageError>(io, 64);
    GlobalOptions connect;
    connect.connect_timeout = bad;
    error_of<rlock::UsageError>(connect, 64);
  }
  GlobalOptions named;
  named.io_timeout = "soon";
  CHECK(error_of<rlock::UsageError>(named, 64).find("--io-timeout") != std::string::npos);
}
