// SPDX-License-Identifier: MIT
// Small helpers for the integration tests.
#include "helpers.hpp"

#include <fstream>
#include <sstream>

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <csignal>

namespace rlock::test {

std::string trim(std::string_view text) {
  const auto is_space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (!text.empty() && is_space(text.front())) {
    text.remove_prefix(1);
  }
  while (!text.empty() && is_space(text.back())) {
    text.remove_suffix(1);
  }
  return std::string(text);
}

std::string to_lower(std::string_view text) {
  std::string result(text);
  std::transform(result.begin(), result.end(), result.begin(),
                 [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); });
  return result;
}

bool contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

bool icontains(std::string_view text, std::string_view part) { return contains(to_lower(text), to_lower(part)); }

std::vector<std::string> split_lines(std::string_view text) {
  std::vector<std::string> lines;
  while (!text.empty()) {
    const auto end = text.find('\n');
    lines.emplace_back(text.substr(0, end));
    if (end == std::string_view::npos) {
      break;
    }
    text.remove_prefix(end + 1);
  }
  return lines;
}

bool is_token(std::string_view text) {
  return text.size() == 32 && std::all_of(text.begin(), text.end(),
                                          [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; });
}

std::string host_name() {
  std::array<char, 256> buffer{};
  if (::gethostname(buffer.data(), buffer.size() - 1) != 0) {
    return {};
  }
  return std::string(buffer.data());
}

RunResult run_python(const std::string& script, const std::vector<std::string>& args) {
  std::vector<std::string> argv{k_python, "-c", script};
  argv.insert(argv.end(), args.begin(), args.end());
  RunOptions options;
  options.unset_env = {"PYTHONPATH", "PYTHONHOME"};
  return run_program(argv, options);
}

bool is_valid_json(const std::string& text) {
  RunOptions options;
  options.stdin_data = text;
  return run_program({k_python, "-c", "import json,sys; json.load(sys.stdin)"}, options).exit_code == 0;
}

std::string lock_key(std::string_view name, std::string_view prefix) { return fmt::format("{}{{{}}}", prefix, name); }

std::string meta_key(std::string_view name, std::string_view prefix) { return lock_key(name, prefix) + ":meta"; }

std::string fence_key(std::string_view name, std::string_view prefix) { return lock_key(name, prefix) + ":fence"; }

std::string meta_field(std::string_view name) {
  static const std::vector<std::pair<std::string_view, std::string_view>> k_fields{
      {"token", "t"},  {"host", "h"},  {"pid", "p"},      {"user", "u"},       {"command", "c"},   {"acquired_ms", "a"},
      {"ttl_ms", "l"}, {"fence", "f"}, {"renewals", "n"}, {"supervised", "s"}, {"keeper_pid", "k"}};
  for (const auto& [long_name, short_name] : k_fields) {
    if (long_name == name) return std::string(short_name);
  }
  throw SupportError(fmt::format("no meta hash field is called {}", name));
}

std::vector<std::string> at(const RedisServer& server, const std::vector<std::string>& args) {
  std::vector<std::string> argv{"--url", server.url()};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

bool key_exists(const RedisServer& server, const std::string& key) { return server.command({"EXISTS", key}) == "1"; }

std::vector<std::string> exec_args(const RedisServer& server, const std::string& name,
                                   const std::vector<std::string>& options, const std::vector<std::string>& command) {
  std::vector<std::string> args{"exec", name};
  args.insert(args.end(), options.begin(), options.end());
  args.emplace_back("--");
  args.insert(args.end(), command.begin(), command.end());
  return at(server, args);
}

std::vector<std::string> with_rlock(std::vector<std::string> args) {
  args.insert(args.begin(), rlock_bin());
  return args;
}

std::vector<std::string> exec_argv(const RedisServer& server, const std::string& name,
                                   const std::vector<std::string>& options, const std::vector<std::string>& command) {
  return with_rlock(exec_args(server, name, options, command));
}

PidFileReaper::~PidFileReaper() {
  for (const auto& path : m_pid_files) {
    try {
      if (const auto text = try_read_file(path); text && !trim(*text).empty()) {
        const auto pid = static_cast<pid_t>(std::stol(trim(*text)));
        ::kill(-pid, SIGKILL);
        ::kill(pid, SIGKILL);
      }
    } catch (...) {
      // best effort
    }
  }
}

std::string acquire_lease(const RedisServer& server, const std::string& name, const std::string& ttl,
                          const std::vector<std::string>& extra) {
  std::vector<std::string> args{"acquire", name, "--lease", "--ttl", ttl};
  args.insert(args.end(), extra.begin(), extra.end());
  const RunResult result = run_rlock(at(server, args));
  INFO("rlock acquire ", name, ": ", result.describe());
  REQUIRE(result.exit_code == 0);
  const auto lines = split_lines(result.out);
  REQUIRE(lines.size() == 1);
  REQUIRE(is_token(lines[0]));
  return lines[0];
}

long long pttl(const RedisServer& server, const std::string& key) { return std::stoll(server.command({"PTTL", key})); }

void check_error_line(const RunResult& result) {
  INFO(result.describe());
  const auto lines = split_lines(result.err);
  CHECK(lines.size() == 1);
  if (!lines.empty()) {
    CHECK(lines[0].rfind("rlock: error: ", 0) == 0);
  }
}

// True when no process `pid` runs any more (gone, or a zombie waiting to be reaped).
bool process_gone(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!stat || !std::getline(stat, text)) {
    return true;
  }
  const auto paren = text.rfind(')');
  if (paren == std::string::npos || paren + 2 >= text.size()) {
    return true;
  }
  const char state = text[paren + 2];
  return state == 'Z' || state == 'X';
}

std::string describe_process(pid_t pid) {
  const std::string dir = "/proc/" + std::to_string(pid);
  std::ifstream status(dir + "/status");
  if (!status) {
    return fmt::format("pid {}: gone", pid);
  }
  std::string text = fmt::format("pid {}:", pid);
  for (std::string line; std::getline(status, line);) {
    for (const char* field : {"Name:", "State:", "SigPnd:", "ShdPnd:", "SigBlk:", "SigIgn:", "SigCgt:"}) {
      if (line.starts_with(field)) {
        std::string value = trim(line.substr(std::string_view(field).size()));
        text += fmt::format(" {} {}", std::string_view(field).substr(0, std::string_view(field).size() - 1), value);
      }
    }
  }
  text += " wchan " + try_read_file(dir + "/wchan").value_or("?");
  text += " syscall " + trim(try_read_file(dir + "/syscall").value_or("?"));
  // The children (as in `rlock exec`, the job): /proc/PID/task/PID/children.
  const std::string children = try_read_file(fmt::format("{}/task/{}/children", dir, pid)).value_or("");
  std::istringstream list(children);
  for (pid_t child = 0; list >> child;) {
    text += "\n  child " + describe_process(child);
  }
  return text;
}

pid_t read_pid(const std::string& path) { return static_cast<pid_t>(std::stol(trim(read_file(path)))); }

int status_of(const RedisServer& redis, const std::string& name) {
  return run_rlock(at(redis, {"status", name, "-q"})).exit_code;
}

const char* const k_signal_recorder = R"(import os, resource, signal, sys
record, ready = sys.argv[1], sys.argv[2]
sentinel = sys.argv[3] if len(sys.argv) > 3 else ''
die_of = sys.argv[4] if len(sys.argv) > 4 else sentinel
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
fd = os.open(record, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
# Blocked, and taken one by one with sigwaitinfo: handlers with signal.pause() lose a signal that
# lands just before pause() (Python runs its handler only when pause returns, on the next one).
watched = {getattr(signal, 'SIG' + name) for name in ('INT', 'TERM', 'HUP', 'QUIT', 'USR1', 'USR2')}
signal.pthread_sigmask(signal.SIG_BLOCK, watched)
for signo in watched:
    signal.signal(signo, signal.SIG_DFL)  # not ignored, even if the job's shell ignores it
with open(ready + '.tmp', 'w') as f:
    f.write('%d\n' % os.getpid())
os.rename(ready + '.tmp', ready)
while True:
    name = signal.Signals(signal.sigwaitinfo(watched).si_signo).name[3:]
    os.write(fd, ('%s\n' % name).encode())
    if name == sentinel:
        target = getattr(signal, 'SIG' + die_of)
        os.kill(os.getpid(), target)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {target})
)";

} // namespace rlock::test
