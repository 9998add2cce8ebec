// SPDX-License-Identifier: MIT
// Tests for the plain exec parser (cli/command_line): whatever it accepts, CLI11 accepts with
// the same options, field by field; what it declines (errors included) is left to CLI11.
#include "cli/command_line.hpp"

#include "util/error.hpp"

#include <doctest/doctest.h>
#include <initializer_list>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace {

using rlock::cli::CommandLine;

// argv for `rlock WORDS…`, as main() gets it.
class Argv {
 public:
  explicit Argv(const std::vector<std::string>& words) : m_words(words) {
    m_words.insert(m_words.begin(), "rlock");
    for (std::string& word : m_words) m_pointers.push_back(word.data());
    m_pointers.push_back(nullptr);
  }
  int argc() const { return static_cast<int>(m_words.size()); }
  char** argv() { return m_pointers.data(); }

 private:
  std::vector<std::string> m_words;
  std::vector<char*> m_pointers;
};

std::string joined(const std::vector<std::string>& words) {
  std::string text;
  for (const std::string& word : words) text += (text.empty() ? "'" : " '") + word + "'";
  return text;
}

struct Compared {
  bool plain = false;    // the plain parser took it
  bool cli11_ok = false; // CLI11 parsed it without error
  bool same = false;     // both took it, with the same result
};

// Parses `words` both ways and compares what the command would get.
Compared compare(const std::vector<std::string>& words) {
  Compared result;
  auto plain = std::make_unique<CommandLine>();
  Argv plain_argv(words);
  result.plain = rlock::cli::parse_plain_exec(plain_argv.argc(), plain_argv.argv(), *plain);
  auto cli11 = std::make_unique<CommandLine>();
  Argv cli11_argv(words);
  try {
    rlock::cli::parse_command_line(cli11_argv.argc(), cli11_argv.argv(), *cli11);
    result.cli11_ok = !cli11->exit_code;
  } catch (const rlock::Error&) {
    result.cli11_ok = false;
  }
  if (result.plain && result.cli11_ok) {
    CHECK(static_cast<bool>(plain->action));
    CHECK(static_cast<bool>(cli11->action));
    result.same = plain->command == cli11->command && plain->globals == cli11->globals && plain->exec == cli11->exec &&
                  plain->after_dashes == cli11->after_dashes;
  }
  return result;
}

void check_accepted(const std::vector<std::string>& words) {
  CAPTURE(joined(words));
  const Compared result = compare(words);
  CHECK(result.plain);
  CHECK(result.cli11_ok);
  CHECK(result.same);
}

void check_declined(const std::vector<std::string>& words) {
  CAPTURE(joined(words));
  CommandLine line;
  Argv argv(words);
  CHECK_FALSE(rlock::cli::parse_plain_exec(argv.argc(), argv.argv(), line));
}

} // namespace

TEST_CASE("parse_plain_exec: the usual exec lines, exactly as CLI11 parses them") {
  check_accepted({"exec", "k", "--", "true"});
  check_accepted({"--url", "redis://127.0.0.1:6390", "exec", "k", "--", "true"});
  check_accepted({"exec", "nightly-backup", "--ttl", "5m", "-w", "30s", "--", "backup.sh", "--full", "--"});
  check_accepted({"-q", "exec", "--wait=1m", "k", "-n", "-E", "3", "--", "sh", "-c", "echo hi"});
  check_accepted({"exec", "k", "-c", "make -j2 && make install"});
  check_accepted({"exec", "k", "--url", "rediss://h:6380", "--cacert", "/ca.pem", "--tls-verify", "ca",
                  "--tls-session-cache", "no", "-v", "--", "true"});
  check_accepted({"--prefix",
                  "app:",
                  "--config=/etc/x",
                  "--profile",
                  "prod",
                  "exec",
                  "k",
                  "--limit",
                  "3",
                  "--grace",
                  "2s",
                  "--max-hold",
                  "1h",
                  "--min-hold",
                  "1s",
                  "--lost-signal",
                  "KILL",
                  "--min-replicas",
                  "1",
                  "--min-replicas-timeout",
                  "50ms",
                  "--",
                  "true"});
  check_accepted({"--audit",
                  "--tls",
                  "--insecure",
                  "--sni",
                  "redis.internal",
                  "--events",
                  "/tmp/ev",
                  "--metrics-textfile",
                  "/tmp/m.prom",
                  "--connect-timeout",
                  "1s",
                  "--io-timeout",
                  "2s",
                  "--node-timeout",
                  "30ms",
                  "--password-file",
                  "/run/pw",
                  "exec",
                  "k",
                  "--shared",
                  "--",
                  "true"});
  check_accepted({"exec", "k", "--token", "0123456789abcdef0123456789abcdef", "--release", "--", "true"});
  check_accepted({"exec", "k", "--token-file", "/tmp/t", "--", "true"});
  check_accepted({"exec", "k", "--adopt", "--", "true"});
  check_accepted({"exec", "k", "-E", "0", "--", "true"});
  check_accepted({"exec", "k", "-E", "255", "--", "true"});
  check_accepted({"exec", "k"}); // no job: exec's own error, later
  check_accepted({"exec", "k", "--", "exec", "k", "--", "--help"});
}

TEST_CASE("parse_plain_exec: anything else is left to CLI11") {
  for (const auto& words : std::initializer_list<std::vector<std::string>>{
           {},
           {"--help"},
           {"-h"},
           {"--version"},
           {"help", "exec"},
           {"exec", "--help"},
           {"exec", "k", "-h", "--", "true"},
           {"status"},
           {"acquire", "k"},
           {"exec"},
           {"exec", "--", "true"},
           {"exec", "a", "b", "--", "true"},
           {"exec", "", "--", "true"},
           {"exec", "status", "--", "true"},
           {"exec", "-k", "--", "true"},
           {"--ttl", "5s", "exec", "k", "--", "true"},
           {"exec", "k", "--ttl", "--", "true"},
           {"exec", "k", "--ttl", "", "--", "true"},
           {"exec", "k", "--ttl=", "--", "true"},
           {"exec", "k", "--ttl", "soon", "--", "true"},
           {"exec", "k", "--ttl", "5ms", "--", "true"},
           {"exec", "k", "--ttl", "5s", "--ttl", "6s", "--", "true"},
           {"--url", "redis://a", "--url", "redis://b", "--url", "redis://c", "exec", "k", "--", "true"},
           {"--url", "redis://a", "exec", "k", "--url", "redis://b", "--", "true"},
           {"exec", "k", "-w5s", "--", "true"},
           {"exec", "k", "-nv", "--", "true"},
           {"exec", "k", "--no-wait=true", "--", "true"},
           {"exec", "k", "-E", "256", "--", "true"},
           {"exec", "k", "-E", "010", "--", "true"},
           {"exec", "k", "-E", "0x1", "--", "true"},
           {"exec", "k", "-E", "-1", "--", "true"},
           {"exec", "k", "--limit", "0", "--", "true"},
           {"exec", "k", "--lost-signal", "NOPE", "--", "true"},
           {"exec", "k", "--tls-verify", "some", "--", "true"},
           {"exec", "k", "--tls-session-cache", "maybe", "--", "true"},
           {"exec", "k", "--wait", "-5s", "--", "true"},
           {"-v", "-q", "exec", "k", "--", "true"},
           {"exec", "k", "--unknown", "--", "true"},
           {"--verbose=1", "exec", "k", "--", "true"},
           {"exec", "k", "--url"},
       }) {
    check_declined(words);
  }
}

TEST_CASE("parse_plain_exec: random command lines: taken only as CLI11 takes them") {
  // Words an exec line is made of, good and bad; values that CLI11 takes or refuses.
  const std::vector<std::string> options{"--url",
                                         "--password",
                                         "--password-file",
                                         "--sentinel-password-file",
                                         "--prefix",
                                         "--connect-timeout",
                                         "--io-timeout",
                                         "--node-timeout",
                                         "--config",
                                         "--profile",
                                         "--tls",
                                         "--audit",
                                         "--cacert",
                                         "--cacertdir",
                                         "--cert",
                                         "--key",
                                         "--tls-server-name",
                                         "--sni",
                                         "--tls-verify",
                                         "--insecure",
                                         "--events",
                                         "--metrics-textfile",
                                         "-v",
                                         "--verbose",
                                         "-q",
                                         "--quiet",
                                         "--ttl",
                                         "-w",
                                         "--wait",
                                         "-n",
                                         "--no-wait",
                                         "-E",
                                         "--conflict-exit-code",
                                         "--min-replicas",
                                         "--min-replicas-timeout",
                                         "--limit",
                                         "--shared",
                                         "-c",
                                         "--shell-command",
                                         "--lost-signal",
                                         "--grace",
                                         "--max-hold",
                                         "--min-hold",
                                         "--token",
                                         "--token-file",
                                         "--adopt",
                                         "--release",
                                         "--force",
                                         "-x",
                                         "-vq",
                                         "--lease",
                                         "--json"};
  const std::vector<std::string> values{"5s",
                                        "1m",
                                        "0",
                                        "1",
                                        "3",
                                        "10ms",
                                        "9ms",
                                        "255",
                                        "256",
                                        "010",
                                        "0x10",
                                        "-1",
                                        "",
                                        "full",
                                        "ca",
                                        "none",
                                        "TERM",
                                        "SIGKILL",
                                        "9",
                                        "soon",
                                        "redis://127.0.0.1:6390",
                                        "a b",
                                        "x=y",
                                        "'q'",
                                        "\"",
                                        "\\",
                                        "exec",
                                        "k",
                                        "--",
                                        "-",
                                        "status",
                                        "1.5s",
                                        "1e3",
                                        "+5",
                                        " 5s",
                                        "1001",
                                        "0123456789abcdef0123456789abcdef"};
  // ("help" would print the help: CLI11 parses every line here.)
  const std::vector<std::string> words{"exec", "exec", "exec", "k", "k", "lock-1", "status", "", "--", "-"};

  std::mt19937 random(20261203); // fixed: the same lines on every run
  auto pick = [&random](const std::vector<std::string>& from) {
    return from[std::uniform_int_distribution<std::size_t>(0, from.size() - 1)(random)];
  };
  int taken = 0;
  int both = 0;
  for (int round = 0; round < 6000; ++round) {
    std::vector<std::string> line;
    // Mostly the shape of a real line: global options, exec, NAME, exec's options, -- job.
    const bool shaped = round % 4 != 0;
    const int length = std::uniform_int_distribution<int>(0, 7)(random);
    if (shaped && round % 3 == 0) line.emplace_back(pick(options));
    if (shaped) line.emplace_back("exec");
    if (shaped && round % 5 != 0) line.emplace_back("k");
    for (int i = 0; i < length; ++i) {
      switch (std::uniform_int_distribution<int>(0, 4)(random)) {
      case 0: line.push_back(pick(words)); break;
      case 1: line.push_back(pick(options)); break;
      case 2:
        line.push_back(pick(options));
        line.push_back(pick(values));
        break;
      case 3: line.push_back(pick(options) + "=" + pick(values)); break;
      default: line.push_back(pick(values)); break;
      }
    }
    if (shaped && round % 2 == 0) {
      line.emplace_back("--");
      line.emplace_back("true");
    }
    CAPTURE(joined(line));
    const Compared result = compare(line);
    if (result.plain) {
      ++taken;
      CHECK(result.cli11_ok);
      CHECK(result.same);
    }
    if (result.cli11_ok) ++both;
  }
  // Not vacuous: the plain parser took a good share of the lines CLI11 took.
  MESSAGE("plain parser took ", taken, " of ", both, " lines CLI11 took");
  CHECK(taken > 500);
}
