// SPDX-License-Identifier: MIT
// `rlock exec` in the foreground of an interactive shell on a real terminal (tmux): typing, Ctrl-C.
#include "helpers.hpp"
#include "redis_server.hpp"
#include "run.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <unistd.h>

#include <atomic>
#include <string_view>

namespace rlock::test {

namespace {

constexpr const char* k_prompt = "rlt$";

std::size_t count_of(const std::string& text, const std::string& part) {
  std::size_t count = 0;
  for (auto at = text.find(part); at != std::string::npos; at = text.find(part, at + part.size())) {
    ++count;
  }
  return count;
}

std::string single_quoted(const std::string& text) {
  std::string result = "'";
  for (const char c : text) {
    if (c == '\'') {
      result += "'\\''";
    } else {
      result += c;
    }
  }
  return result + "'";
}

// An interactive bash in a detached tmux session on a private tmux server (its own socket),
// killed with everything in it on destruction.
class TmuxShell {
 public:
  TmuxShell() : m_socket(fmt::format("rlock-test-{}-{}", ::getpid(), next_id())) {
    const RunResult started = tmux({"new-session", "-d", "-s", "T", "-x", "120", "-y", "30",
                                    fmt::format("env PS1='{} ' bash --norc --noprofile", k_prompt)});
    INFO(started.describe());
    REQUIRE(started.exit_code == 0);
    const bool prompt = wait_until([&] { return at_prompt(); }, 10s);
    INFO("screen:\n", screen());
    REQUIRE(prompt);
  }
  ~TmuxShell() {
    try {
      tmux({"kill-server"});
    } catch (...) {
      // best effort
    }
  }
  TmuxShell(const TmuxShell&) = delete;
  TmuxShell& operator=(const TmuxShell&) = delete;

  // Types `text` literally, then Enter.
  void type_line(const std::string& text) const {
    REQUIRE(tmux({"send-keys", "-t", "T", "-l", text}).exit_code == 0);
    REQUIRE(tmux({"send-keys", "-t", "T", "Enter"}).exit_code == 0);
  }
  // Presses a key by tmux's name for it: "C-c", "C-\\".
  void press(const std::string& key) const { REQUIRE(tmux({"send-keys", "-t", "T", key}).exit_code == 0); }

  std::string screen() const { return tmux({"capture-pane", "-p", "-t", "T"}).out; }

  // The last non-empty line of the screen ends with the prompt: the shell waits for input.
  // (It may follow a "^C" on the same line: bash starts a fresh line only after a command that
  // died of SIGINT, and rlock exits with 130 instead.)
  bool at_prompt() const {
    const auto lines = split_lines(screen());
    for (auto line = lines.rbegin(); line != lines.rend(); ++line) {
      const std::string text = trim(*line);
      if (!text.empty()) {
        return text.size() >= std::string_view(k_prompt).size() &&
               text.compare(text.size() - std::string_view(k_prompt).size(), std::string::npos, k_prompt) == 0;
      }
    }
    return false;
  }

  // Asks the shell for $? of the last command and returns it (-1 if it never shows).
  int last_status() {
    const std::string marker = fmt::format("status-{}=", ++m_marker);
    type_line(fmt::format("echo {}$?", marker));
    int result = -1;
    wait_until(
        [&] {
          for (const auto& line : split_lines(screen())) {
            if (line.rfind(marker, 0) == 0) {
              result = std::stoi(line.substr(marker.size()));
              return true;
            }
          }
          return false;
        },
        10s);
    return result;
  }

 private:
  static int next_id() {
    static std::atomic<int> counter{0};
    return ++counter;
  }

  RunResult tmux(const std::vector<std::string>& args) const {
    std::vector<std::string> argv{"tmux", "-L", m_socket, "-f", "/dev/null"};
    argv.insert(argv.end(), args.begin(), args.end());
    RunOptions options;
    options.env = {"TERM=xterm"};
    options.timeout = 20s;
    return run_program(argv, options);
  }

  std::string m_socket;
  int m_marker = 0;
};

// The command line typed at the shell: RLOCK_URL=... 'rlock' exec NAME -- ARGS...
std::string exec_line(const RedisServer& redis, const std::string& name, const std::vector<std::string>& command) {
  std::string line = fmt::format("RLOCK_URL={} {} exec {} --", redis.url(), single_quoted(rlock_bin()), name);
  for (const auto& arg : command) {
    line += " " + single_quoted(arg);
  }
  return line;
}

} // namespace

TEST_CASE("tmux is installed: the terminal tests run, never skip") {
  const RunResult result = run_program({"tmux", "-V"});
  INFO(result.describe());
  REQUIRE(result.exit_code == 0);
  CHECK(contains(result.out, "tmux"));
}

TEST_CASE("rlock exec t -- cat at a terminal: typed lines echo, Ctrl-C ends it, the prompt returns, the lock is free") {
  RedisServer redis;
  TmuxShell shell;
  shell.type_line(exec_line(redis, "t", {"cat"}));
  REQUIRE(wait_until([&] { return status_of(redis, "t") == 0; }, 10s));

  shell.type_line("hello-from-the-terminal");
  // Once as the terminal echoes what was typed, once as cat writes it back.
  const bool echoed = wait_until([&] { return count_of(shell.screen(), "hello-from-the-terminal") == 2; }, 10s);
  INFO("screen:\n", shell.screen());
  CHECK(echoed);
  CHECK(status_of(redis, "t") == 0);

  shell.press("C-c");
  const bool prompt = wait_until([&] { return shell.at_prompt(); }, 10s);
  INFO("screen after Ctrl-C:\n", shell.screen());
  CHECK(prompt);
  CHECK(shell.last_status() == 130);
  CHECK(status_of(redis, "t") == 1);
}

TEST_CASE("a job that reads a line from the terminal gets it") {
  RedisServer redis;
  TmuxShell shell;
  shell.type_line(exec_line(redis, "t", {"sh", "-c", "read line; echo \"got:[$line]\""}));
  REQUIRE(wait_until([&] { return status_of(redis, "t") == 0; }, 10s));
  shell.type_line("typed words");
  const bool got = wait_until([&] { return contains(shell.screen(), "got:[typed words]"); }, 10s);
  const bool prompt = wait_until([&] { return shell.at_prompt(); }, 10s);
  INFO("screen:\n", shell.screen());
  CHECK(got);
  CHECK(prompt);
  CHECK(shell.last_status() == 0);
  CHECK(status_of(redis, "t") == 1);
}

TEST_CASE("Ctrl-C at the terminal reaches the job once") {
  RedisServer redis;
  TempDir dir;
  TmuxShell shell;
  SUBCASE("the test child, which exits on INT") {
    shell.type_line(exec_line(
        redis, "t",
        {test_child_bin(), "--record", dir.file("record"), "--ready", dir.file("ready"), "--sleep", "forever"}));
    REQUIRE(wait_until([&] { return file_exists(dir.file("ready")); }, 10s));
    shell.press("C-c");
    const bool prompt = wait_until([&] { return shell.at_prompt(); }, 10s);
    INFO("screen:\n", shell.screen());
    CHECK(prompt);
    CHECK(read_file(dir.file("record")) == "INT\n");
    CHECK(shell.last_status() == 130);
  }
  SUBCASE("a job that survives INT, so that a second delivery would show") {
    write_file(dir.file("recorder.py"), k_signal_recorder);
    shell.type_line(exec_line(
        redis, "t", {k_python, dir.file("recorder.py"), dir.file("record"), dir.file("ready"), "QUIT", "INT"}));
    REQUIRE(wait_until([&] { return file_exists(dir.file("ready")); }, 10s));
    shell.press("C-c");
    REQUIRE(wait_until([&] { return !try_read_file(dir.file("record")).value_or("").empty(); }, 10s));
    // Ctrl-\ (QUIT) is the sentinel: the job dies of INT on it.
    shell.press("C-\\");
    const bool prompt = wait_until([&] { return shell.at_prompt(); }, 10s);
    INFO("screen:\n", shell.screen());
    CHECK(prompt);
    CHECK(read_file(dir.file("record")) == "INT\nQUIT\n");
    CHECK(shell.last_status() == 130);
  }
  CHECK(status_of(redis, "t") == 1);
}

TEST_CASE("Ctrl-C stops a script that runs rlock exec in a loop, as it stops one that runs the bare command") {
  // What a person expects from flock(1) or the bare command: one Ctrl-C ends the script. The
  // terminal sends INT to its foreground process group; the script's shell must see it (or see
  // its child die of it) to stop, otherwise it goes on with the next iteration.
  RedisServer redis;
  TempDir dir;
  write_file(dir.file("loop.sh"), "for i in 1 2 3; do \"$@\"; echo \"after $i\"; done; echo loop-finished\n");
  // A job that dies of the SIGINT, as most commands do (the test child exits 130 instead, which
  // tells bash it handled the signal).
  const std::string job = "touch " + single_quoted(dir.file("ready")) + "; exec sleep 1000";
  TmuxShell shell;
  struct Case {
    const char* label;
    std::vector<std::string> command;
  };
  const Case cases[] = {
      {"the bare command", {"sh", "-c", job}},
      {"rlock exec", {"env", "RLOCK_URL=" + redis.url(), rlock_bin(), "exec", "t", "--", "sh", "-c", job}},
  };
  for (const auto& entry : cases) {
    INFO(std::string(entry.label));
    ::unlink(dir.file("ready").c_str());
    std::string line = "bash " + single_quoted(dir.file("loop.sh"));
    for (const auto& arg : entry.command) {
      line += " " + single_quoted(arg);
    }
    shell.type_line("clear");
    REQUIRE(wait_until([&] { return shell.at_prompt(); }, 10s));
    shell.type_line(line);
    REQUIRE(wait_until([&] { return file_exists(dir.file("ready")); }, 10s));
    shell.press("C-c");
    const bool prompt = wait_until([&] { return shell.at_prompt(); }, 5s);
    INFO("screen:\n", shell.screen());
    CHECK(prompt);
    CHECK_FALSE(contains(shell.screen(), "after 1"));
    CHECK_FALSE(contains(shell.screen(), "loop-finished"));
    if (!prompt) {
      // Leave the shell usable for the next case: stop whatever the loop runs.
      for (int i = 0; i < 3 && !shell.at_prompt(); ++i) {
        shell.press("C-c");
        wait_until([&] { return shell.at_prompt(); }, 3s);
      }
    }
  }
  CHECK(status_of(redis, "t") == 1);
}

TEST_CASE("Ctrl-C while exec waits for a busy lock aborts the wait, leaving no waiter") {
  RedisServer redis;
  TempDir dir;
  const std::string token = acquire_lease(redis, "t", "60s");
  TmuxShell shell;
  shell.type_line(exec_line(redis, "t", {test_child_bin(), "--ready", dir.file("ran")}));
  REQUIRE(wait_until([&] { return redis.command({"ZCARD", lock_key("t") + ":line"}) == "1"; }, 10s));
  shell.press("C-c");
  const bool prompt = wait_until([&] { return shell.at_prompt(); }, 10s);
  INFO("screen:\n", shell.screen());
  CHECK(prompt);
  CHECK(shell.last_status() == 130);
  CHECK_FALSE(file_exists(dir.file("ran")));
  CHECK(redis.command({"ZCARD", lock_key("t") + ":line"}) == "0");
  CHECK(redis.command({"GET", lock_key("t")}) == token);
}

} // namespace rlock::test
