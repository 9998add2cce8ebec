// SPDX-License-Identifier: MIT
// Tests for redact_command_line (util/redact): every way a secret reaches a command line.
#include "util/redact.hpp"
#include "util/strings.hpp"

#include <doctest/doctest.h>
#include <string>
#include <vector>

using rlock::redact_command_line;
using rlock::shell_join;

namespace {

constexpr const char* k_secret = "S3cr3t-pw";

std::string redacted(const std::vector<std::string>& argv) { return redact_command_line(shell_join(argv)); }

} // namespace

TEST_CASE("URL userinfo loses its password, whatever the scheme and wherever the URL sits") {
  const std::string pw = k_secret;
  struct Case {
    std::vector<std::string> argv;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {{"rlock", "--url", "redis://:" + pw + "@db:6379", "acquire", "x"}, "rlock --url redis://:***@db:6379 acquire x"},
      {{"rlock", "--url", "rediss://alice:" + pw + "@db/2"}, "rlock --url rediss://alice:***@db/2"},
      {{"rlock", "--url=redis://" + pw + "@db"}, "rlock --url=redis://***@db"},
      {{"git", "clone", "https://" + pw + "@github.com/o/r.git"}, "git clone https://***@github.com/o/r.git"},
      {{"env", "REDIS_URL=redis+sentinel://u:" + pw + "@s1,s2/m"}, "env REDIS_URL=redis+sentinel://u:***@s1,s2/m"},
      // a password with '@', '/' or a blank: the userinfo ends at the URL's last '@', as rlock parses it
      {{"x", "redis://:p@ss/w" + pw + "@db"}, "x redis://:***@db"},
      {{"x", "redis://:a b" + pw + "@db"}, "x redis://:***@db"},
      {{"x", "unix:///run/r.sock?db=1&password=" + pw}, "x 'unix:///run/r.sock?db=1&password=***'"},
      {{"curl", "https://api/x?access_token=" + pw + "&a=1"}, "curl 'https://api/x?access_token=***&a=1'"},
  };
  for (const auto& item : cases) {
    std::string line = redacted(item.argv);
    CAPTURE(line);
    CHECK(line == item.expected);
    CHECK(line.find(k_secret) == std::string::npos);
  }
}

TEST_CASE("options and assignments that carry a secret lose their value, in every spelling") {
  const std::string pw = k_secret;
  struct Case {
    std::vector<std::string> argv;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {{"rlock", "--password", pw, "status"}, "rlock --password *** status"},
      {{"rlock", "--password=" + pw, "status"}, "rlock --password=*** status"},
      {{"redis-cli", "-a", pw, "ping"}, "redis-cli -a *** ping"},
      {{"redis-cli", "-a", "-" + pw, "ping"}, "redis-cli -a *** ping"},
      {{"redis-cli", "--pass", pw}, "redis-cli --pass ***"},
      {{"rlock", "--tls-key-passphrase", pw}, "rlock --tls-key-passphrase ***"},
      {{"rlock", "--sentinel-password", pw}, "rlock --sentinel-password ***"},
      {{"rlock", "release", "x", "--token", pw}, "rlock release x --token ***"},
      {{"env", "REDISCLI_AUTH=" + pw, "redis-cli"}, "env REDISCLI_AUTH=*** redis-cli"},
      {{"env", "RLOCK_PASSWORD=" + pw, "rlock"}, "env RLOCK_PASSWORD=*** rlock"},
      {{"java", "-Djavax.net.ssl.keyStorePassword=" + pw}, "java -Djavax.net.ssl.keyStorePassword=***"},
      {{"curl", "-u", "bob:" + pw, "https://h"}, "curl -u bob:*** https://h"},
      {{"curl", "-H", "Authorization: Bearer " + pw}, "curl -H 'Authorization: ***'"},
      {{"keytool", "-storepass", pw}, "keytool -storepass ***"},
  };
  for (const auto& item : cases) {
    std::string line = redacted(item.argv);
    CAPTURE(line);
    CHECK(line == item.expected);
    CHECK(line.find(k_secret) == std::string::npos);
  }
}

TEST_CASE("a command line inside a word (sh -c) is redacted too") {
  const std::string pw = k_secret;
  for (const std::string& script : {
           "redis-cli -a " + pw + " ping",
           "REDISCLI_AUTH=" + pw + " redis-cli ping",
           "redis-cli -u 'redis://:" + pw + "@db' ping",
           "redis-cli -u \"redis://:" + pw + "@db\" ping",
           "bash -c 'rlock --password " + pw + " status'",
           "x;PASSWORD=" + pw + " y",
       }) {
    std::string line = redacted({"/bin/sh", "-c", script});
    CAPTURE(line);
    CHECK(line.find(k_secret) == std::string::npos);
    CHECK(line.starts_with("/bin/sh -c '"));
  }
}

TEST_CASE("what is no secret stays as it was, and redacting twice changes nothing") {
  for (const std::vector<std::string>& argv : std::vector<std::vector<std::string>>{
           {"rlock", "--password-file", "/etc/rlock/pw", "--token-file", "t", "status"},
           {"rlock", "--url", "redis://db:6379/1", "exec", "job", "--", "backup.sh", "--full"},
           {"git", "commit", "-a", "-m", "message"},
           {"docker", "login", "--password-stdin", "-u", "bob"},
           {"mail", "me@example.com"},
           {"echo", "it's", "a \"quoted\" $word"},
       }) {
    std::string line = shell_join(argv);
    CAPTURE(line);
    CHECK(redact_command_line(line) == line);
  }
  for (const std::string& once : {redacted({"rlock", "--url", "redis://u:p w@h", "--password", "x y"}),
                                  redacted({"sh", "-c", "redis-cli -a 'a b' ping"})}) {
    CAPTURE(once);
    CHECK(redact_command_line(once) == once);
  }
  CHECK(redact_command_line("") == "");
  CHECK(redact_command_line("unterminated 'quote --password hidden").find("hidden") == std::string::npos);
}
