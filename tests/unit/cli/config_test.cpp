// SPDX-License-Identifier: MIT
// Tests for resolving global options and environment into a Config (cli/config).
#include "cli/config.hpp"

#include "cli_test_helpers.hpp"
#include "util/error.hpp"
#include "util/log.hpp"

#include <doctest/doctest.h>
#include <filesystem>
#include <map>
#include <sys/stat.h>

using namespace std::chrono_literals;
using rlock::cli::GlobalOptions;
using rlock::cli::read_secret_file;
using rlock::cli::resolve_config;
using rlock::cli::test::ScopedEnv;
using rlock::cli::test::TempDir;

namespace {

// Every variable resolve_config reads, cleared for the test and restored after it.
ScopedEnv clean_env() {
  return ScopedEnv({"RLOCK_URL", "REDIS_URL", "RLOCK_PASSWORD", "REDISCLI_AUTH", "RLOCK_PREFIX", "RLOCK_CONFIG",
                    "RLOCK_PROFILE", "XDG_CONFIG_HOME", "HOME"});
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

// --- the configuration file and the sources of each setting ---

namespace {

using rlock::cli::ConfigSources;
using rlock::cli::Origin;
using rlock::cli::resolve_settings;

// An environment of its own and a system file inside `dir`, for resolve_settings/resolve_config.
struct FakeWorld {
  TempDir dir;
  std::map<std::string, std::string> env;
  ConfigSources sources() const {
    ConfigSources sources;
    sources.getenv = [this](const char* name) -> const char* {
      auto found = env.find(name);
      return found == env.end() ? nullptr : found->second.c_str();
    };
    sources.system_file = dir.file("etc-rlock-config");
    return sources;
  }
  // Writes a config file with `mode` (default 0600) and returns its path.
  std::string write(const std::string& name, const std::string& text,
                    std::filesystem::perms mode = std::filesystem::perms::owner_read |
                                                  std::filesystem::perms::owner_write) const {
    std::filesystem::create_directories(std::filesystem::path(dir.file(name)).parent_path());
    std::string path = dir.write(name, text);
    std::filesystem::permissions(path, mode);
    return path;
  }
};

template <typename E>
std::string settings_error(const FakeWorld& world, const GlobalOptions& options, int expected_code) {
  try {
    (void)rlock::cli::resolve_config(options, world.sources());
    FAIL_CHECK("resolve_config accepted the options");
  } catch (const E& error) {
    CHECK(rlock::to_int(error.code()) == expected_code);
    return error.what();
  }
  return {};
}

GlobalOptions with_config(const std::string& path) {
  GlobalOptions options;
  options.config_file = path;
  return options;
}

} // namespace

TEST_CASE("settings: flag > RLOCK_* env > profile > file defaults > other programs' variables > built-in") {
  FakeWorld world;
  const std::string path = world.write("config", "url = redis://file:1\nprefix = file:\nio-timeout = 3s\n"
                                                 "[profile p]\nurl = redis://profile:2\nconnect-timeout = 750ms\n");
  GlobalOptions options;
  world.env["REDIS_URL"] = "redis://foreign:9";

  // built-in, then the other program's variable
  world.env["RLOCK_CONFIG"] = "/dev/null";
  auto settings = resolve_settings(options, world.sources());
  CHECK(settings.value("url") == "redis://foreign:9");
  CHECK(settings.get("url").source.origin == Origin::foreign_env);
  CHECK(settings.get("url").source.describe() == "env REDIS_URL");
  CHECK(settings.value("prefix") == "rlock:");
  CHECK(settings.get("prefix").source.describe() == "default");

  // the file's defaults beat REDIS_URL
  world.env["RLOCK_CONFIG"] = path;
  settings = resolve_settings(options, world.sources());
  CHECK(settings.file == path);
  CHECK(settings.file_source.describe() == "env RLOCK_CONFIG");
  CHECK(settings.value("url") == "redis://file:1");
  CHECK(settings.get("url").source.describe() == path + ":1");
  CHECK(settings.get("io-timeout").source.describe() == path + ":3");

  // the profile beats the file's defaults, and leaves the rest to them
  world.env["RLOCK_PROFILE"] = "p";
  settings = resolve_settings(options, world.sources());
  CHECK(settings.profile == "p");
  CHECK(settings.profile_source.describe() == "env RLOCK_PROFILE");
  CHECK(settings.value("url") == "redis://profile:2");
  CHECK(settings.get("url").source.describe() == "profile p " + path + ":5");
  CHECK(settings.value("prefix") == "file:");
  CHECK(settings.value("connect-timeout") == "750ms");

  // RLOCK_* variables beat the profile
  world.env["RLOCK_URL"] = "redis://env:3";
  world.env["RLOCK_PREFIX"] = "env:";
  settings = resolve_settings(options, world.sources());
  CHECK(settings.value("url") == "redis://env:3");
  CHECK(settings.get("url").source.describe() == "env RLOCK_URL");
  CHECK(settings.value("prefix") == "env:");

  // flags beat everything
  options.url = "redis://flag:4";
  options.io_timeout = "9s";
  settings = resolve_settings(options, world.sources());
  CHECK(settings.value("url") == "redis://flag:4");
  CHECK(settings.get("url").source.describe() == "flag --url");
  CHECK(settings.value("io-timeout") == "9s");

  const auto config = rlock::cli::resolve_config(options, world.sources());
  CHECK(config.connect.endpoint.host == "flag");
  CHECK(config.connect.connect_timeout == 750ms);
  CHECK(config.connect.io_timeout == 9s);
  CHECK(config.prefix == "env:");
}

TEST_CASE("settings: --profile beats RLOCK_PROFILE; --config beats RLOCK_CONFIG") {
  FakeWorld world;
  const std::string one = world.write("one", "[profile a]\nprefix = a:\n[profile b]\nprefix = b:\n");
  const std::string two = world.write("two", "prefix = two:\n");
  world.env["RLOCK_CONFIG"] = two;
  world.env["RLOCK_PROFILE"] = "a";
  GlobalOptions options = with_config(one);
  options.profile = "b";
  auto settings = resolve_settings(options, world.sources());
  CHECK(settings.file == one);
  CHECK(settings.file_source.describe() == "flag --config");
  CHECK(settings.value("prefix") == "b:");
  CHECK(settings.profile_source.describe() == "flag --profile");
}

TEST_CASE("settings: XDG_CONFIG_HOME, else ~/.config, then the system file; a missing one is fine") {
  FakeWorld world;
  world.env["HOME"] = world.dir.file("home");
  world.env["XDG_CONFIG_HOME"] = world.dir.file("xdg");

  auto settings = resolve_settings(GlobalOptions{}, world.sources());
  CHECK(settings.file.empty());
  REQUIRE(settings.files_tried.size() == 2);
  CHECK(settings.files_tried[0] == world.dir.file("xdg") + "/rlock/config");
  CHECK(settings.files_tried[1] == world.dir.file("etc-rlock-config"));

  world.write("etc-rlock-config", "prefix = system:\n");
  settings = resolve_settings(GlobalOptions{}, world.sources());
  CHECK(settings.file == world.dir.file("etc-rlock-config"));
  CHECK(settings.file_source.describe() == "default");
  CHECK(settings.value("prefix") == "system:");

  // ~/.config is not read when XDG_CONFIG_HOME is set...
  world.write("home/.config/rlock/config", "prefix = home:\n");
  CHECK(resolve_settings(GlobalOptions{}, world.sources()).value("prefix") == "system:");
  // ...and is when it is not, or when it is relative (the XDG spec says to ignore that)
  world.env["XDG_CONFIG_HOME"] = "relative/dir";
  settings = resolve_settings(GlobalOptions{}, world.sources());
  CHECK(settings.value("prefix") == "home:");
  CHECK(settings.file_source.describe() == "env HOME");
  world.env.erase("XDG_CONFIG_HOME");
  CHECK(resolve_settings(GlobalOptions{}, world.sources()).value("prefix") == "home:");

  // the user's file wins over the system one, whole: nothing is merged from the system file
  world.env["XDG_CONFIG_HOME"] = world.dir.file("xdg");
  world.write("xdg/rlock/config", "io-timeout = 1s\n");
  settings = resolve_settings(GlobalOptions{}, world.sources());
  CHECK(settings.file == world.dir.file("xdg") + "/rlock/config");
  CHECK(settings.file_source.describe() == "env XDG_CONFIG_HOME");
  CHECK(settings.value("prefix") == "rlock:");
}

TEST_CASE("settings: relative paths in the file are relative to the file") {
  FakeWorld world;
  const std::string path = world.write("conf/config", "password-file = pw\n[profile p]\npassword-file = /abs/pw\n");
  CHECK(resolve_settings(with_config(path), world.sources()).value("password-file") == world.dir.file("conf") + "/pw");
  GlobalOptions options = with_config(path);
  options.profile = "p";
  CHECK(resolve_settings(options, world.sources()).value("password-file") == "/abs/pw");
}

TEST_CASE("settings: events and metrics-textfile: paths relative to the file, '-' is standard output") {
  FakeWorld world;
  const std::string path =
      world.write("conf/config", "events = ev.jsonl\nmetrics-textfile = m.prom\n[profile out]\nevents = -\n");
  rlock::cli::Settings settings = resolve_settings(with_config(path), world.sources());
  CHECK(settings.value("events") == world.dir.file("conf") + "/ev.jsonl");
  CHECK(settings.value("metrics-textfile") == world.dir.file("conf") + "/m.prom");
  GlobalOptions options = with_config(path);
  options.profile = "out";
  CHECK(resolve_settings(options, world.sources()).value("events") == "-");
  world.env["RLOCK_EVENTS"] = "env.jsonl";
  settings = resolve_settings(options, world.sources());
  CHECK(settings.value("events") == "env.jsonl");
  CHECK(settings.get("events").source.describe() == "env RLOCK_EVENTS");
  options.events = "flag.jsonl";
  CHECK(resolve_settings(options, world.sources()).value("events") == "flag.jsonl");
}

TEST_CASE("settings: the password's order: flag, flag file, URL, RLOCK_PASSWORD, file's password-file, "
          "REDISCLI_AUTH") {
  FakeWorld world;
  world.write("pw", "from-file-setting\n");
  const std::string path = world.write("config", "password-file = pw\n");
  world.env["REDISCLI_AUTH"] = "from-rediscli";
  GlobalOptions options;
  options.config_file = "/dev/null";
  auto config = rlock::cli::resolve_config(options, world.sources());
  CHECK(config.connect.endpoint.password.value_or("") == "from-rediscli");
  CHECK(config.password_from == "env REDISCLI_AUTH");

  options.config_file = path;
  config = rlock::cli::resolve_config(options, world.sources());
  CHECK(config.connect.endpoint.password.value_or("") == "from-file-setting");
  CHECK(config.password_from == "password-file " + world.dir.file("pw") + " (" + path + ":1)");

  world.env["RLOCK_PASSWORD"] = "from-rlock-password";
  config = rlock::cli::resolve_config(options, world.sources());
  CHECK(config.connect.endpoint.password.value_or("") == "from-rlock-password");
  CHECK(config.password_from == "env RLOCK_PASSWORD");

  options.url = "redis://:from-url@h";
  config = rlock::cli::resolve_config(options, world.sources());
  CHECK(config.connect.endpoint.password.value_or("") == "from-url");
  CHECK(config.password_from == "the URL (flag --url)");

  options.password_file = world.write("flag-pw", "from-flag-file\n");
  config = rlock::cli::resolve_config(options, world.sources());
  CHECK(config.connect.endpoint.password.value_or("") == "from-flag-file");
  CHECK(config.password_from.find("flag --password-file") != std::string::npos);
}

TEST_CASE("settings: a missing --config or RLOCK_CONFIG file is a ConfigError; an empty --config a UsageError") {
  FakeWorld world;
  std::string message = settings_error<rlock::ConfigError>(world, with_config(world.dir.file("nope")), 78);
  CHECK(message.find(world.dir.file("nope")) != std::string::npos);
  CHECK(message.find("No such file") != std::string::npos);

  world.env["RLOCK_CONFIG"] = world.dir.file("nope");
  settings_error<rlock::ConfigError>(world, GlobalOptions{}, 78);

  settings_error<rlock::UsageError>(world, with_config(""), 64);
  GlobalOptions empty_profile = with_config("/dev/null");
  empty_profile.profile = "";
  settings_error<rlock::UsageError>(world, empty_profile, 64);

  // an empty RLOCK_CONFIG counts as unset, like every other variable
  world.env["RLOCK_CONFIG"] = "";
  CHECK(resolve_settings(GlobalOptions{}, world.sources()).file.empty());
}

TEST_CASE("settings: a profile the file lacks, or with no file at all, is a ConfigError") {
  FakeWorld world;
  const std::string path = world.write("config", "[profile prod]\nprefix = p:\n[profile dev]\nprefix = d:\n");
  GlobalOptions options = with_config(path);
  options.profile = "stage";
  std::string message = settings_error<rlock::ConfigError>(world, options, 78);
  CHECK(message.find("profile 'stage'") != std::string::npos);
  CHECK(message.find(path) != std::string::npos);
  CHECK(message.find("prod, dev") != std::string::npos);

  GlobalOptions no_file;
  world.env["RLOCK_PROFILE"] = "prod";
  message = settings_error<rlock::ConfigError>(world, no_file, 78);
  CHECK(message.find("needs a config file") != std::string::npos);
  CHECK(message.find(world.dir.file("etc-rlock-config")) != std::string::npos);
}

TEST_CASE("settings: unsafe files are refused, naming the file and the fix") {
  using std::filesystem::perms;
  FakeWorld world;
  const perms private_mode = perms::owner_read | perms::owner_write;

  std::string path = world.write("group-writable", "prefix = x:\n", private_mode | perms::group_write);
  std::string message = settings_error<rlock::ConfigError>(world, with_config(path), 78);
  CHECK(message.find(path) != std::string::npos);
  CHECK(message.find("chmod go-w") != std::string::npos);

  path = world.write("other-writable", "prefix = x:\n", private_mode | perms::others_write);
  CHECK(settings_error<rlock::ConfigError>(world, with_config(path), 78).find("chmod go-w") != std::string::npos);

  path = world.write("password-key", "\npassword = hunter2\n");
  message = settings_error<rlock::ConfigError>(world, with_config(path), 78);
  CHECK(message.find(path + ":2") != std::string::npos);
  CHECK(message.find("password-file") != std::string::npos);
  CHECK(message.find("hunter2") == std::string::npos);

  // a URL with a password: fine in a private file, refused in one others can read
  const std::string text = "[profile p]\nurl = redis://u:hunter2@h\n";
  path = world.write("private-url", text);
  CHECK(resolve_settings(with_config(path), world.sources()).file == path);
  for (perms readable : {perms::group_read, perms::others_read}) {
    path = world.write("readable-url", text, private_mode | readable);
    message = settings_error<rlock::ConfigError>(world, with_config(path), 78);
    CHECK(message.find(path + ":2") != std::string::npos);
    CHECK(message.find("chmod 600") != std::string::npos);
    CHECK(message.find("hunter2") == std::string::npos);
  }
  // without a password, a readable file is fine
  path = world.write("readable", "url = redis://u:@h\n", private_mode | perms::group_read | perms::others_read);
  CHECK(resolve_settings(with_config(path), world.sources()).value("url") == "redis://u:@h");
}

TEST_CASE("settings: the file must be a regular file, small, and is never waited on") {
  FakeWorld world;
  std::string message = settings_error<rlock::ConfigError>(world, with_config(world.dir.path().string()), 78);
  CHECK(message.find("not a regular file") != std::string::npos);

  const std::string fifo = world.dir.file("fifo");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  message = settings_error<rlock::ConfigError>(world, with_config(fifo), 78);
  CHECK(message.find("not a regular file") != std::string::npos);

  const std::string big = world.write("big", "# " + std::string(70'000, 'x') + "\n");
  CHECK(settings_error<rlock::ConfigError>(world, with_config(big), 78).find("64 KiB") != std::string::npos);
}

TEST_CASE("settings: unknown keys and bad values are ConfigErrors with FILE:LINE, in any profile") {
  FakeWorld world;
  struct Case {
    const char* text;
    int line;
    const char* says;
  };
  const Case cases[] = {
      {"urll = redis://x\n", 1, "unknown key 'urll'"},
      {"url = http://x\n", 1, ""},
      {"# c\n[profile unused]\nio-timeout = soon\n", 3, "io-timeout"},
      {"connect-timeout = 0\n", 1, "at least"},
      {"ttl = 5ms\n", 1, "ttl must be at least 10ms"},
      {"prefix = {x}\n", 1, "invalid prefix"},
      {"profile = prod\n", 1, "unknown key 'profile'"},
      {"config = /x\n", 1, "unknown key 'config'"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    const std::string path = world.write("bad", c.text);
    const std::string message = settings_error<rlock::ConfigError>(world, with_config(path), 78);
    CHECK(message.find(path + ":" + std::to_string(c.line) + ": ") != std::string::npos);
    CHECK(message.find(c.says) != std::string::npos);
  }
}

TEST_CASE("settings: ttl from the file, default 30s") {
  FakeWorld world;
  CHECK(rlock::cli::resolve_config(with_config("/dev/null"), world.sources()).ttl == 30s);
  const std::string path = world.write("config", "ttl = 2m\n");
  CHECK(rlock::cli::resolve_config(with_config(path), world.sources()).ttl == 2min);
}

TEST_CASE("settings: offer() respects precedence, as TLS settings from the URL's query will") {
  FakeWorld world;
  world.env["RLOCK_CONFIG"] = world.write("config", "prefix = file:\n");
  auto settings = resolve_settings(GlobalOptions{}, world.sources());
  settings.offer("prefix", "from-url:", rlock::cli::Source{Origin::url, "the URL's query"});
  CHECK(settings.value("prefix") == "from-url:");
  settings.offer("prefix", "from-env:", rlock::cli::Source{Origin::env, "RLOCK_PREFIX"});
  CHECK(settings.value("prefix") == "from-url:");
  CHECK_THROWS_AS(settings.offer("no-such-setting", "x", {}), rlock::Error);
  CHECK_THROWS_AS((void)settings.get("no-such-setting"), rlock::Error);
}

TEST_CASE("settings: a TLS setting's order is flag > the URL's query > RLOCK_* env > profile > file") {
  FakeWorld world;
  const std::string path = world.write("config", "cacert = file.pem\ntls-server-name = file.example\n"
                                                 "[profile p]\nurl = rediss://h:1\ncacert = /profile.pem\n"
                                                 "[profile plain]\nurl = redis://h:1\n");
  world.env["RLOCK_CONFIG"] = path;
  world.env["RLOCK_PROFILE"] = "p";
  GlobalOptions options;
  auto config = rlock::cli::resolve_config(options, world.sources());
  const auto& tls = config.connect.endpoint.tls;
  CHECK(tls.enabled);
  CHECK(config.settings.get("tls").source.origin == Origin::url);
  CHECK(tls.cacert == "/profile.pem");
  CHECK(tls.server_name == "file.example"); // text, not a path made relative to the file
  CHECK(tls.verify == rlock::redis::TlsVerify::full);

  world.env["RLOCK_CACERT"] = "/env.pem";
  config = rlock::cli::resolve_config(options, world.sources());
  CHECK(config.connect.endpoint.tls.cacert == "/env.pem");
  CHECK(config.settings.get("cacert").source.describe() == "env RLOCK_CACERT");

  options.url = "rediss://h:1?cacert=/url.pem&verify=ca";
  {
    QuietLog quiet; // verify=ca warns
    config = rlock::cli::resolve_config(options, world.sources());
  }
  CHECK(config.connect.endpoint.tls.cacert == "/url.pem");
  CHECK(config.settings.get("cacert").source.origin == Origin::url);
  CHECK(config.settings.get("cacert").source.describe() == "the URL (flag --url)");
  CHECK(config.connect.endpoint.tls.verify == rlock::redis::TlsVerify::ca);

  options.cacert = "/flag.pem";
  options.tls_verify = "full";
  config = rlock::cli::resolve_config(options, world.sources());
  CHECK(config.connect.endpoint.tls.cacert == "/flag.pem");
  CHECK(config.connect.endpoint.tls.verify == rlock::redis::TlsVerify::full);
  CHECK(config.settings.get("tls-verify").source.describe() == "flag --tls-verify");

  // A plaintext URL leaves the file's and the environment's TLS settings unused, but TLS flags
  // for it are a mistake.
  world.env["RLOCK_PROFILE"] = "plain";
  options = GlobalOptions{};
  config = rlock::cli::resolve_config(options, world.sources());
  CHECK_FALSE(config.connect.endpoint.tls.enabled);
  options.cacert = "/flag.pem";
  CHECK(settings_error<rlock::ConfigError>(world, options, 78).find("--cacert given for redis://h:1") !=
        std::string::npos);
  options = GlobalOptions{};
  options.tls = "yes";
  config = rlock::cli::resolve_config(options, world.sources());
  CHECK(config.connect.endpoint.tls.enabled);
  CHECK(config.connect.endpoint.tls.cacert == "/env.pem");
}

TEST_CASE("settings: no variable weakens TLS verification; --insecure is tls-verify none from a flag") {
  FakeWorld world;
  world.env["RLOCK_CONFIG"] = "/dev/null";
  world.env["RLOCK_TLS_VERIFY"] = "none"; // not a variable rlock reads
  GlobalOptions options;
  options.url = "rediss://h:1";
  auto config = rlock::cli::resolve_config(options, world.sources());
  CHECK(config.connect.endpoint.tls.verify == rlock::redis::TlsVerify::full);
  options.insecure = true;
  {
    QuietLog quiet;
    config = rlock::cli::resolve_config(options, world.sources());
  }
  CHECK(config.connect.endpoint.tls.verify == rlock::redis::TlsVerify::none);
  CHECK(config.settings.get("tls-verify").source.describe() == "flag --insecure");
  options.tls_verify = "full";
  CHECK(settings_error<rlock::UsageError>(world, options, 64).find("--insecure contradicts --tls-verify full") !=
        std::string::npos);
}
