// SPDX-License-Identifier: MIT
// Black-box tests of the configuration file and profiles: each precedence step decides which
// redis-server gets the lock, `config show` names every source, unsafe files exit 78.
#include "helpers.hpp"
#include "redis_server.hpp"
#include "run.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>

#include <string>
#include <vector>

namespace rlock::test {

namespace {

// A home of its own for each test: XDG_CONFIG_HOME and HOME point into it, so that neither the
// developer's ~/.config/rlock/config nor a variable from the outside changes what rlock reads.
class ConfigHome {
 public:
  ConfigHome() = default;

  std::string xdg_file() const { return m_dir.file("xdg") + "/rlock/config"; }
  std::string home_file() const { return m_dir.file("home") + "/.config/rlock/config"; }
  std::string file(const std::string& name) const { return m_dir.file(name); }

  // Writes `text` to `path` (directories made as needed) with `mode`.
  static void write(const std::string& path, const std::string& text, unsigned mode = 0600) {
    const std::string dir = path.substr(0, path.rfind('/'));
    REQUIRE(run_program({"mkdir", "-p", dir}).exit_code == 0);
    write_file(path, text, mode);
  }

  RunOptions options(std::vector<std::string> env = {}) const {
    RunOptions options;
    options.env = {"XDG_CONFIG_HOME=" + m_dir.file("xdg"), "HOME=" + m_dir.file("home")};
    for (auto& entry : env) options.env.push_back(std::move(entry));
    options.unset_env = {"RLOCK_CONFIG", "RLOCK_PROFILE"};
    return options;
  }

 private:
  TempDir m_dir;
};

// One field of a JSON document, by a Python expression over `d` (e.g. "d['file']").
std::string json_field(const std::string& json, const std::string& expression) {
  const RunResult result = run_python("import json,sys\nd = json.loads(sys.argv[1])\nv = " + expression +
                                          "\nprint('null' if v is None else v)",
                                      {json});
  INFO(result.describe());
  REQUIRE(result.exit_code == 0);
  return trim(result.out);
}

RunResult config_show(const std::vector<std::string>& global_args, const RunOptions& options) {
  std::vector<std::string> args = global_args;
  args.insert(args.end(), {"config", "show", "--json"});
  const RunResult result = run_rlock(args, options);
  INFO(result.describe());
  REQUIRE(result.exit_code == 0);
  REQUIRE(is_valid_json(result.out));
  return result;
}

// Which of the servers holds lock `name`: its index, or -1 for none; CHECKs that at most one does.
int holder_of(const std::vector<const RedisServer*>& servers, const std::string& name) {
  int found = -1;
  for (std::size_t i = 0; i < servers.size(); ++i) {
    if (key_exists(*servers[i], lock_key(name))) {
      CHECK(found == -1);
      found = static_cast<int>(i);
    }
  }
  return found;
}

// Runs `rlock ARGS... config show` (expected to fail) and CHECKs exit code and message parts.
void check_refused(const std::vector<std::string>& global_args, const RunOptions& options, int code,
                   const std::vector<std::string>& says) {
  std::vector<std::string> args = global_args;
  args.insert(args.end(), {"config", "show"});
  const RunResult result = run_rlock(args, options);
  INFO(result.describe());
  CHECK(result.exit_code == code);
  check_error_line(result);
  for (const std::string& part : says) CHECK(contains(result.err, part));
  CHECK(result.out.empty());
}

} // namespace

TEST_CASE("config: each step of the precedence decides which redis-server gets the lock") {
  RedisServer foreign; // REDIS_URL
  RedisServer file;    // the file's defaults
  RedisServer profile; // [profile ci]
  RedisServer env;     // RLOCK_URL
  RedisServer flag;    // --url
  const std::vector<const RedisServer*> servers{&foreign, &file, &profile, &env, &flag};
  ConfigHome home;
  ConfigHome::write(home.xdg_file(),
                    "# shared settings\nurl = " + file.url() + "\n\n[profile ci]\nurl = " + profile.url() + "\n");

  struct Step {
    std::string name;
    std::vector<std::string> env;
    std::vector<std::string> args;
    int expected;
    std::string source;
  };
  const std::vector<Step> steps{
      {"foreign", {"REDIS_URL=" + foreign.url(), "XDG_CONFIG_HOME=" + home.file("empty")}, {}, 0, "env REDIS_URL"},
      {"file", {"REDIS_URL=" + foreign.url()}, {}, 1, home.xdg_file() + ":2"},
      {"profile", {"REDIS_URL=" + foreign.url(), "RLOCK_PROFILE=ci"}, {}, 2, "profile ci " + home.xdg_file() + ":5"},
      {"profile-flag", {"REDIS_URL=" + foreign.url()}, {"--profile", "ci"}, 2, "profile ci " + home.xdg_file() + ":5"},
      {"env", {"REDIS_URL=" + foreign.url(), "RLOCK_URL=" + env.url()}, {"--profile", "ci"}, 3, "env RLOCK_URL"},
      {"flag",
       {"REDIS_URL=" + foreign.url(), "RLOCK_URL=" + env.url(), "RLOCK_PROFILE=ci"},
       {"--url", flag.url()},
       4,
       "flag --url"},
  };
  for (const Step& step : steps) {
    CAPTURE(step.name);
    const RunOptions options = home.options(step.env);
    std::vector<std::string> args = step.args;
    args.insert(args.end(), {"acquire", step.name, "--lease"});
    const RunResult acquired = run_rlock(args, options);
    INFO(acquired.describe());
    REQUIRE(acquired.exit_code == 0);
    CHECK(holder_of(servers, step.name) == step.expected);

    const RunResult shown = config_show(step.args, options);
    CHECK(json_field(shown.out, "d['settings']['url']['value']") ==
          servers[static_cast<std::size_t>(step.expected)]->url());
    CHECK(json_field(shown.out, "d['settings']['url']['source']") == step.source);
  }
}

TEST_CASE("config: a profile's settings override the file's defaults one by one") {
  RedisServer redis;
  ConfigHome home;
  ConfigHome::write(home.xdg_file(), "url = " + redis.url() +
                                         "\nprefix = shared:\nttl = 5m\n"
                                         "[profile nightly]\nprefix = nightly:\n");
  const RunOptions options = home.options({"RLOCK_PROFILE=nightly"});
  const RunResult acquired = run_rlock({"acquire", "job", "--lease"}, options);
  INFO(acquired.describe());
  REQUIRE(acquired.exit_code == 0);
  CHECK(key_exists(redis, lock_key("job", "nightly:")));
  // ttl from the file's defaults: a lease of 5 minutes, not the built-in 30 s
  const long long ms = pttl(redis, lock_key("job", "nightly:"));
  CHECK(ms > 60'000);
  CHECK(ms <= 300'000);
  // --ttl beats the file
  const RunResult flagged = run_rlock({"acquire", "job2", "--lease", "--ttl", "20s"}, options);
  REQUIRE(flagged.exit_code == 0);
  CHECK(pttl(redis, lock_key("job2", "nightly:")) <= 20'000);
  // RLOCK_PREFIX beats the profile
  const RunResult env_prefix =
      run_rlock({"acquire", "job", "--lease"}, home.options({"RLOCK_PROFILE=nightly", "RLOCK_PREFIX=env:"}));
  REQUIRE(env_prefix.exit_code == 0);
  CHECK(key_exists(redis, lock_key("job", "env:")));
  // without the profile, the defaults
  const RunResult plain = run_rlock({"acquire", "job", "--lease"}, home.options());
  REQUIRE(plain.exit_code == 0);
  CHECK(key_exists(redis, lock_key("job", "shared:")));
}

TEST_CASE("config show: every setting with its source, in text and JSON") {
  ConfigHome home;
  const std::string path = home.file("cfg/config");
  ConfigHome::write(path, "prefix = p:\n[profile prod]\nio-timeout = 750ms\n");
  const RunOptions options = home.options({"RLOCK_CONFIG=" + path, "REDIS_URL=redis://10.1.2.3:7000/2"});
  const std::vector<std::string> args{"--profile", "prod", "--connect-timeout", "3s"};

  const RunResult json = config_show(args, options);
  CHECK(json_field(json.out, "d['file']") == path);
  CHECK(json_field(json.out, "d['file_source']") == "env RLOCK_CONFIG");
  CHECK(json_field(json.out, "d['profile']") == "prod");
  CHECK(json_field(json.out, "d['profile_source']") == "flag --profile");
  CHECK(json_field(json.out, "d['settings']['url']['source']") == "env REDIS_URL");
  CHECK(json_field(json.out, "d['settings']['url']['origin']") == "other-env");
  CHECK(json_field(json.out, "d['settings']['prefix']['value']") == "p:");
  CHECK(json_field(json.out, "d['settings']['prefix']['source']") == path + ":1");
  CHECK(json_field(json.out, "d['settings']['io-timeout']['value']") == "750ms");
  CHECK(json_field(json.out, "d['settings']['io-timeout']['source']") == "profile prod " + path + ":3");
  CHECK(json_field(json.out, "d['settings']['connect-timeout']['source']") == "flag --connect-timeout");
  CHECK(json_field(json.out, "d['settings']['ttl']['source']") == "default");
  CHECK(json_field(json.out, "d['settings']['password']['value']") == "null");

  std::vector<std::string> text_args = args;
  text_args.insert(text_args.end(), {"config", "show"});
  const RunResult text = run_rlock(text_args, options);
  INFO(text.describe());
  REQUIRE(text.exit_code == 0);
  CHECK(contains(text.out, "file     " + path + " (env RLOCK_CONFIG)"));
  CHECK(contains(text.out, "profile  prod (flag --profile)"));
  const auto lines = split_lines(text.out);
  bool saw_io_timeout = false;
  for (const std::string& line : lines) {
    if (line.starts_with("io-timeout ")) {
      saw_io_timeout = true;
      CHECK(contains(line, "750ms"));
      CHECK(contains(line, "profile prod " + path + ":3"));
    }
  }
  CHECK(saw_io_timeout);
}

TEST_CASE("config show masks passwords and says where they came from; the file's password-file logs in") {
  RedisServerOptions server_options;
  server_options.password = "Cfg-s3cret-PW";
  RedisServer redis(server_options);
  ConfigHome home;
  ConfigHome::write(home.file("conf/pw"), "Cfg-s3cret-PW\n");
  // a relative password-file is relative to the config file
  ConfigHome::write(home.xdg_file(), "url = " + redis.url() +
                                         "\n[profile p]\npassword-file = ../../conf/pw\n"
                                         "[profile inline]\nurl = redis://:Cfg-s3cret-PW@127.0.0.1:" +
                                         std::to_string(redis.port()) + "\n");
  for (const std::string profile : {"p", "inline"}) {
    CAPTURE(profile);
    const RunOptions options = home.options({"RLOCK_PROFILE=" + profile});
    const RunResult acquired = run_rlock({"acquire", "job-" + profile, "--lease"}, options);
    INFO(acquired.describe());
    REQUIRE(acquired.exit_code == 0);
    CHECK(redis.command({"GET", lock_key("job-" + profile)}) == trim(acquired.out));

    const RunResult shown = config_show({}, options);
    CHECK_FALSE(contains(shown.out, "Cfg-s3cret-PW"));
    CHECK(json_field(shown.out, "d['settings']['password']['value']") == "***");
    const RunResult text = run_rlock({"config", "show"}, options);
    CHECK_FALSE(contains(text.out, "Cfg-s3cret-PW"));
    CHECK_FALSE(contains(text.err, "Cfg-s3cret-PW"));
  }
  const RunResult shown = config_show({"--profile", "p"}, home.options());
  CHECK(contains(json_field(shown.out, "d['settings']['password']['source']"), "password-file " + home.file("xdg")));
  const RunResult inline_shown = config_show({"--profile", "inline"}, home.options());
  CHECK(json_field(inline_shown.out, "d['settings']['password']['source']") ==
        "the URL (profile inline " + home.xdg_file() + ":5)");
  CHECK(contains(json_field(inline_shown.out, "d['settings']['url']['value']"), "redis://***@127.0.0.1:"));
}

TEST_CASE("config: XDG_CONFIG_HOME, then ~/.config, then /etc/rlock/config; no file is fine") {
  ConfigHome home;
  // no file anywhere: defaults, and the paths looked at are named
  RunResult shown = config_show({}, home.options());
  CHECK(json_field(shown.out, "d['file']") == "null");
  CHECK(json_field(shown.out, "d['files_tried'][0]") == home.xdg_file());
  CHECK(json_field(shown.out, "d['files_tried'][-1]") == "/etc/rlock/config");
  if (file_exists("/etc/rlock/config")) {
    MESSAGE("this host has an /etc/rlock/config: the no-file case is not checked here");
  } else {
    CHECK(json_field(shown.out, "d['settings']['url']['source']") == "default");
  }
  // Reading /etc/rlock/config itself is not tested here: that would mean writing to the real
  // /etc. The unit tests check the fallback to the system file with a path of their own.

  ConfigHome::write(home.home_file(), "prefix = from-home:\n");
  shown = config_show({}, home.options({"XDG_CONFIG_HOME="}));
  CHECK(json_field(shown.out, "d['file']") == home.home_file());
  CHECK(json_field(shown.out, "d['file_source']") == "env HOME");
  CHECK(json_field(shown.out, "d['settings']['prefix']['value']") == "from-home:");

  // with XDG_CONFIG_HOME set, ~/.config is not looked at
  shown = config_show({}, home.options());
  CHECK(json_field(shown.out, "d['file']") == "null");

  ConfigHome::write(home.xdg_file(), "prefix = from-xdg:\n");
  shown = config_show({}, home.options());
  CHECK(json_field(shown.out, "d['file']") == home.xdg_file());
  CHECK(json_field(shown.out, "d['file_source']") == "env XDG_CONFIG_HOME");
  CHECK(json_field(shown.out, "d['settings']['prefix']['value']") == "from-xdg:");

  // -v says which file and profile it read
  RedisServer redis;
  const RunResult verbose = run_rlock({"-v", "--url", redis.url(), "status"}, home.options());
  INFO(verbose.describe());
  CHECK(contains(verbose.err, "config file " + home.xdg_file()));
}

TEST_CASE("config: unsafe or broken files exit 78 naming the file, the line and the fix") {
  RedisServer redis;
  ConfigHome home;
  const RunOptions options = home.options();
  const std::string path = home.xdg_file();
  bool bad_file = true; // the file at `path` is refused (checked against a real command below)

  SUBCASE("writable by group") {
    ConfigHome::write(path, "prefix = x:\n", 0620);
    check_refused({}, options, 78, {path, "writable by group or others", "chmod go-w"});
  }
  SUBCASE("writable by others") {
    ConfigHome::write(path, "prefix = x:\n", 0602);
    check_refused({}, options, 78, {path, "chmod go-w"});
  }
  SUBCASE("a password key") {
    ConfigHome::write(path, "[profile p]\npassword = Never-Shown-1\n");
    check_refused({}, options, 78, {path + ":2:", "password-file"});
    const RunResult result = run_rlock({"config", "show"}, options);
    CHECK_FALSE(contains(result.err, "Never-Shown-1"));
  }
  SUBCASE("a URL with a password in a file others can read") {
    ConfigHome::write(path, "url = redis://u:Never-Shown-2@127.0.0.1:1\n", 0644);
    check_refused({}, options, 78, {path + ":1:", "chmod 600", "password-file"});
    const RunResult result = run_rlock({"config", "show"}, options);
    CHECK_FALSE(contains(result.err, "Never-Shown-2"));
  }
  SUBCASE("an unknown key") {
    ConfigHome::write(path, "\n\nurls = " + redis.url() + "\n");
    check_refused({}, options, 78, {path + ":3:", "unknown key 'urls'"});
  }
  SUBCASE("a bad value, in a profile not even chosen") {
    ConfigHome::write(path, "[profile slow]\nio-timeout = forever\n");
    check_refused({}, options, 78, {path + ":2:", "io-timeout"});
  }
  SUBCASE("a bad URL") {
    ConfigHome::write(path, "url = http://127.0.0.1\n");
    check_refused({}, options, 78, {path + ":1:"});
  }
  SUBCASE("a malformed line") {
    ConfigHome::write(path, "url\n");
    check_refused({}, options, 78, {path + ":1:", "key = value"});
  }
  SUBCASE("a missing --config file") {
    bad_file = false;
    check_refused({"--config", home.file("nope")}, options, 78, {home.file("nope"), "No such file"});
  }
  SUBCASE("a missing RLOCK_CONFIG file") {
    bad_file = false;
    check_refused({}, home.options({"RLOCK_CONFIG=" + home.file("nope")}), 78, {home.file("nope")});
  }
  SUBCASE("a directory") {
    bad_file = false;
    check_refused({"--config", home.file("")}, options, 78, {"not a regular file"});
  }
  SUBCASE("a FIFO: refused at once, never waited on") {
    bad_file = false;
    const std::string fifo = home.file("fifo");
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    RunOptions quick = options;
    quick.timeout = 10s; // a hang fails the test instead of blocking it
    check_refused({"--config", fifo}, quick, 78, {fifo, "not a regular file"});
  }
  SUBCASE("a profile the file lacks") {
    bad_file = false;
    ConfigHome::write(path, "[profile prod]\nprefix = p:\n");
    check_refused({"--profile", "staging"}, options, 78, {"profile 'staging'", path, "prod"});
  }
  SUBCASE("a profile and no file at all") {
    bad_file = false;
    check_refused({}, home.options({"RLOCK_PROFILE=prod"}), 78, {"profile 'prod'", "needs a config file"});
  }
  SUBCASE("an empty --config is a usage error") {
    bad_file = false;
    check_refused({"--config", ""}, options, 64, {"--config"});
  }

  // The same checks guard every command, and nothing reaches Redis then.
  if (bad_file) {
    const RunResult acquire = run_rlock({"--url", redis.url(), "acquire", "job", "--lease"}, options);
    INFO(acquire.describe());
    CHECK(acquire.exit_code == 78);
    CHECK_FALSE(key_exists(redis, lock_key("job")));
  }
}

TEST_CASE("config: --config /dev/null reads no file") {
  ConfigHome home;
  ConfigHome::write(home.xdg_file(), "prefix = from-xdg:\n");
  const RunResult shown = config_show({"--config", "/dev/null"}, home.options());
  CHECK(json_field(shown.out, "d['file_source']") == "flag --config");
  CHECK(json_field(shown.out, "d['settings']['prefix']['value']") == "rlock:");
}

TEST_CASE("config: several URLs are a quorum; 2, or a Sentinel/Cluster one among them, is 78; even N warns") {
  RunResult two =
      run_rlock({"--url", "redis://127.0.0.1:1", "--url", "redis://127.0.0.1:2", "exec", "x", "--", "true"});
  CHECK_MESSAGE(two.exit_code == 78, two.describe());
  check_error_line(two);
  CHECK(contains(two.err, "at least 3"));

  RunOptions spaced;
  spaced.env.push_back("RLOCK_URL=redis://127.0.0.1:1 redis+sentinel://127.0.0.1:2/m redis://127.0.0.1:3");
  RunResult sentinel = run_rlock({"exec", "x", "--", "true"}, spaced);
  CHECK_MESSAGE(sentinel.exit_code == 78, sentinel.describe());
  check_error_line(sentinel);
  CHECK(contains(sentinel.err, "Sentinel"));

  // Four nodes nobody listens on: the warning, then 69 (no majority answered), never 70.
  RunResult even = run_rlock({"--url", "redis://127.0.0.1:1", "--url", "redis://127.0.0.1:2", "--url",
                              "redis://127.0.0.1:3", "--url", "redis://127.0.0.1:4", "exec", "x", "--", "true"});
  CHECK_MESSAGE(even.exit_code == 69, even.describe());
  CHECK(contains(even.err, "an odd number is recommended"));
  CHECK(contains(even.err, "only 0 of 4 nodes answered"));

  // The config file's url and node-timeout, shown as resolved.
  TempDir dir;
  const std::string file = dir.path() + "/config";
  write_file(file, "url = redis://127.0.0.1:1 redis://127.0.0.1:2 redis://127.0.0.1:3\nnode-timeout = 50ms\n", 0600);
  RunResult shown = run_rlock({"--config", file, "config", "show"});
  CHECK_MESSAGE(shown.exit_code == 0, shown.describe());
  CHECK(contains(shown.out, "redis://127.0.0.1:1 redis://127.0.0.1:2 redis://127.0.0.1:3"));
  CHECK(contains(shown.out, "50ms"));
  RunResult bad = run_rlock({"--node-timeout", "soon", "--config", file, "exec", "x", "--", "true"});
  CHECK_MESSAGE(bad.exit_code == 64, bad.describe());
  check_error_line(bad);
}

} // namespace rlock::test
