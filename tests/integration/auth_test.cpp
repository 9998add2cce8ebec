// SPDX-License-Identifier: MIT
// Black-box tests of passwords and ACL users: every source works, 77 on refusal, no leaks.
#include "helpers.hpp"
#include "redis_server.hpp"
#include "run.hpp"

#include <doctest/doctest.h>

namespace rlock::test {

namespace {

const std::string k_password = "s3cret-PW-xyz";
const std::string k_wrong_password = "wr0ng-PW-abc";

RedisServerOptions with_password() {
  RedisServerOptions options;
  options.password = k_password;
  return options;
}

std::string url_with(const RedisServer& redis, const std::string& userinfo) {
  return "redis://" + userinfo + "@127.0.0.1:" + std::to_string(redis.port());
}

// Neither password may appear anywhere in what rlock printed.
void check_no_password(const RunResult& result) {
  INFO(result.describe());
  CHECK_FALSE(contains(result.out, k_password));
  CHECK_FALSE(contains(result.err, k_password));
  CHECK_FALSE(contains(result.out, k_wrong_password));
  CHECK_FALSE(contains(result.err, k_wrong_password));
}

} // namespace

TEST_CASE("no password for a requirepass server exits 77") {
  RedisServer redis(with_password());
  const RunResult result = run_rlock(at(redis, {"acquire", "job", "--lease"}));
  INFO(result.describe());
  CHECK(result.exit_code == 77);
  check_error_line(result);
  CHECK(redis.command({"EXISTS", lock_key("job")}) == "0");
}

TEST_CASE("a wrong password exits 77 and is never printed") {
  RedisServer redis(with_password());
  RunOptions options;
  std::vector<std::string> args{"acquire", "job", "--lease"};
  TempDir dir;
  SUBCASE("RLOCK_PASSWORD") {
    options.env = {"RLOCK_PASSWORD=" + k_wrong_password};
    args = at(redis, args);
  }
  SUBCASE("REDISCLI_AUTH") {
    options.env = {"REDISCLI_AUTH=" + k_wrong_password};
    args = at(redis, args);
  }
  SUBCASE("--password-file") {
    write_file(dir.file("pw"), k_wrong_password + "\n", 0600);
    args = at(redis, {"--password-file", dir.file("pw"), "acquire", "job", "--lease"});
  }
  SUBCASE("in the URL") { args.insert(args.begin(), {"--url", url_with(redis, ":" + k_wrong_password)}); }
  SUBCASE("in the URL with a user") {
    args.insert(args.begin(), {"--url", url_with(redis, "default:" + k_wrong_password)});
  }
  SUBCASE("--password") { args = at(redis, {"--password", k_wrong_password, "acquire", "job", "--lease"}); }
  const RunResult result = run_rlock(args, options);
  INFO(result.describe());
  CHECK(result.exit_code == 77);
  CHECK(contains(result.err, "rlock: error: "));
  check_no_password(result);
  CHECK(redis.command({"EXISTS", lock_key("job")}) == "0");
}

TEST_CASE("the right password works from every source") {
  RedisServer redis(with_password());
  RunOptions options;
  std::vector<std::string> args{"acquire", "job", "--lease"};
  TempDir dir;
  SUBCASE("RLOCK_PASSWORD") {
    options.env = {"RLOCK_PASSWORD=" + k_password};
    args = at(redis, args);
  }
  SUBCASE("REDISCLI_AUTH") {
    options.env = {"REDISCLI_AUTH=" + k_password};
    args = at(redis, args);
  }
  SUBCASE("--password-file with a trailing newline") {
    write_file(dir.file("pw"), k_password + "\n", 0600);
    args = at(redis, {"--password-file", dir.file("pw"), "acquire", "job", "--lease"});
  }
  SUBCASE("--password-file without a newline") {
    write_file(dir.file("pw"), k_password, 0600);
    args = at(redis, {"--password-file", dir.file("pw"), "acquire", "job", "--lease"});
  }
  SUBCASE("in the URL") { args.insert(args.begin(), {"--url", url_with(redis, ":" + k_password)}); }
  SUBCASE("in the URL as the default user") {
    args.insert(args.begin(), {"--url", url_with(redis, "default:" + k_password)});
  }
  const RunResult result = run_rlock(args, options);
  INFO(result.describe());
  REQUIRE(result.exit_code == 0);
  CHECK(result.err.empty());
  CHECK(redis.command({"GET", lock_key("job")}) == trim(result.out));
  check_no_password(result);
}

TEST_CASE("--password works but warns on stderr without echoing it") {
  RedisServer redis(with_password());
  const RunResult result = run_rlock(at(redis, {"--password", k_password, "acquire", "job", "--lease"}));
  INFO(result.describe());
  REQUIRE(result.exit_code == 0);
  CHECK(icontains(result.err, "warning"));
  CHECK(is_token(trim(result.out)));
  CHECK(redis.command({"GET", lock_key("job")}) == trim(result.out));
  check_no_password(result);
}

TEST_CASE("errors never print the password from the URL") {
  const int port = free_port();
  const RunResult result = run_rlock(
      {"--url", "redis://user:" + k_password + "@127.0.0.1:" + std::to_string(port), "acquire", "job", "--lease"});
  INFO(result.describe());
  CHECK(result.exit_code == 69);
  check_error_line(result);
  check_no_password(result);

  const RunResult bad_url = run_rlock({"--url", "redis://user:" + k_password + "@127.0.0.1:99999", "status"});
  INFO(bad_url.describe());
  CHECK(bad_url.exit_code == 78);
  check_no_password(bad_url);
}

TEST_CASE("an ACL user limited to the rlock keys can use every core command") {
  RedisServerOptions server_options = with_password();
  server_options.extra_config = {
      "user locker on >locker-PW-123 resetkeys ~rlock:* resetchannels &rlock:* -@all +@connection +@scripting "
      "+@read +@write +ping +select +scan +blpop +time"};
  RedisServer redis(server_options);
  const std::string url = url_with(redis, "locker:locker-PW-123");

  const RunResult acquire = run_rlock({"--url", url, "acquire", "job", "--lease", "--ttl", "10s"});
  INFO(acquire.describe());
  REQUIRE(acquire.exit_code == 0);
  const std::string token = trim(acquire.out);
  CHECK(redis.command({"GET", lock_key("job")}) == token);

  const RunResult busy = run_rlock({"--url", url, "acquire", "job", "--lease", "-n"});
  INFO(busy.describe());
  CHECK(busy.exit_code == 75);

  const RunResult status = run_rlock({"--url", url, "status", "job"});
  INFO(status.describe());
  CHECK(status.exit_code == 0);

  const RunResult list = run_rlock({"--url", url, "status"});
  INFO(list.describe());
  CHECK(list.exit_code == 0);
  CHECK(contains(list.out, "job"));

  const RunResult renew = run_rlock({"--url", url, "renew", "job", "--token", token, "--ttl", "60s"});
  INFO(renew.describe());
  CHECK(renew.exit_code == 0);

  const RunResult release = run_rlock({"--url", url, "release", "job", "--token", token});
  INFO(release.describe());
  CHECK(release.exit_code == 0);
  CHECK(redis.command({"EXISTS", lock_key("job")}) == "0");

  SUBCASE("a prefix outside the user's keys is refused with 77") {
    const RunResult refused = run_rlock({"--url", url, "--prefix", "other:", "acquire", "job", "--lease"});
    INFO(refused.describe());
    CHECK(refused.exit_code == 77);
    check_error_line(refused);
    CHECK((icontains(refused.err, "NOPERM") || icontains(refused.err, "permission") || icontains(refused.err, "ACL")));
  }
  SUBCASE("a wrong password for the user exits 77") {
    const RunResult refused =
        run_rlock({"--url", url_with(redis, "locker:" + k_wrong_password), "acquire", "job", "--lease"});
    INFO(refused.describe());
    CHECK(refused.exit_code == 77);
    check_no_password(refused);
  }
}

} // namespace rlock::test
