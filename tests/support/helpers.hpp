// SPDX-License-Identifier: MIT
// Small helpers for the integration tests: text checks, the host name, Python (redis-py) runs.
#pragma once

#include "redis_server.hpp"
#include "run.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace rlock::test {

// Without leading and trailing whitespace.
std::string trim(std::string_view text);
std::string to_lower(std::string_view text);
bool contains(std::string_view text, std::string_view part);
// Case-insensitive contains.
bool icontains(std::string_view text, std::string_view part);
// Lines without their '\n'; a trailing newline does not make an empty last line.
std::vector<std::string> split_lines(std::string_view text);
// 32 lowercase or uppercase hex digits: a 128-bit rlock token.
bool is_token(std::string_view text);
// gethostname(), as rlock records it.
std::string host_name();

// The Python that has python3-redis: /usr/bin/python3 (a pyenv shim on PATH may not).
inline constexpr const char* k_python = "/usr/bin/python3";

// Runs `script` with /usr/bin/python3 -c, sys.argv[1:] = args.
RunResult run_python(const std::string& script, const std::vector<std::string>& args = {});

// True when `text` is one JSON document (checked by Python's json module).
bool is_valid_json(const std::string& text);

// The lock key of NAME: PREFIX{NAME} (STORAGE IN REDIS in rlock(1)).
std::string lock_key(std::string_view name, std::string_view prefix = "rlock:");
std::string meta_key(std::string_view name, std::string_view prefix = "rlock:");
std::string fence_key(std::string_view name, std::string_view prefix = "rlock:");
// The meta hash's field that holds what docs/redis-keys.md calls `name` (token, host, pid, user,
// command, acquired_ms, ttl_ms, fence, renewals, supervised, keeper_pid): its one-letter name.
// Throws SupportError for any other name.
std::string meta_field(std::string_view name);

// {"--url", server.url(), args...}
std::vector<std::string> at(const RedisServer& server, const std::vector<std::string>& args);

// EXISTS key on the server.
bool key_exists(const RedisServer& server, const std::string& key);

// {"--url", URL, "exec", NAME, OPTIONS..., "--", COMMAND...}: arguments for run_rlock().
std::vector<std::string> exec_args(const RedisServer& server, const std::string& name,
                                   const std::vector<std::string>& options, const std::vector<std::string>& command);
// `args` with the rlock binary in front: a whole argv, for BackgroundProcess.
std::vector<std::string> with_rlock(std::vector<std::string> args);
// with_rlock(exec_args(...)).
std::vector<std::string> exec_argv(const RedisServer& server, const std::string& name,
                                   const std::vector<std::string>& options, const std::vector<std::string>& command);

// Kills what each pid file names, and its process group, on scope exit: a failed test leaves
// no job running. Files that were never written are skipped.
class PidFileReaper {
 public:
  explicit PidFileReaper(std::vector<std::string> pid_files) : m_pid_files(std::move(pid_files)) {}
  ~PidFileReaper();
  PidFileReaper(const PidFileReaper&) = delete;
  PidFileReaper& operator=(const PidFileReaper&) = delete;

 private:
  std::vector<std::string> m_pid_files;
};

// `rlock --url URL acquire NAME --lease --ttl TTL EXTRA...`; REQUIREs exit 0 and one token line,
// returns the token.
std::string acquire_lease(const RedisServer& server, const std::string& name, const std::string& ttl = "30s",
                          const std::vector<std::string>& extra = {});

// PTTL of `key` (-2 when missing, -1 without expiry).
long long pttl(const RedisServer& server, const std::string& key);

// CHECKs the error form of rlock(1) (EXIT STATUS): stderr is exactly one line, starting "rlock: error: ".
void check_error_line(const RunResult& result);

// True when no process `pid` runs any more (gone, or a zombie waiting to be reaped).
bool process_gone(pid_t pid);

// What a failure message needs to tell a stuck process from a lost signal: the state, signal
// masks and wait channel of `pid` (and of its children) from /proc, one line each.
std::string describe_process(pid_t pid);

// A Python job (run with k_python) that records every signal it gets and keeps running, so that
// a second delivery of the same signal shows as a second line (the test child ends at the
// first INT/TERM/HUP/QUIT, which would hide a duplicate). argv: RECORD READY [SENTINEL
// [DIE_OF]]: READY gets its pid once the handlers are in place; on SENTINEL it dies of DIE_OF
// (default disposition), so that its status tells which signal ended it.
extern const char* const k_signal_recorder;

// The pid written in a pid file.
pid_t read_pid(const std::string& path);

// `rlock status NAME -q`'s exit status: 0 held, 1 free.
int status_of(const RedisServer& redis, const std::string& name);

} // namespace rlock::test
