// SPDX-License-Identifier: MIT
// The commands and what they share: options for taking a lock, a Redis session, holder info.
#pragma once

#include "cli/config.hpp"
#include "lock/acquirer.hpp"
#include "lock/lock_store.hpp"
#include "process/signals.hpp"
#include "redis/connection.hpp"
#include "redis/redis_lock_store.hpp"
#include "util/error.hpp"

#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace rlock::cli {

// What came of a command: the exit status, and a signal rlock dies of once everything is
// cleaned up (0: none). exec sets the signal when the job, holding the terminal, died of ^C or
// ^\: the shell that ran rlock must see a death by that signal, or a script looping over rlock
// would carry on after the user's ^C.
struct Outcome {
  int code = to_int(ExitCode::success);
  int die_of_signal = 0;
};

// What a command runs once the command line has been parsed.
using Action = std::function<Outcome()>;

// A --ttl: a duration of at least 10ms. Throws UsageError naming `option`.
lock::Millis parse_ttl(const std::string& text, const char* option = "--ttl");

// TakeOptions parsed and checked, once, before anything is contacted.
struct TakeRequest {
  lock::Millis ttl;
  lock::WaitPolicy wait;
  int conflict_exit_code = to_int(ExitCode::busy);
};

// Options shared by exec and acquire, as typed: how long to wait, how long the lease runs.
struct TakeOptions {
  std::string ttl = "30s";
  std::string wait;
  bool no_wait = false;
  int conflict_exit_code = to_int(ExitCode::busy);

  void add_to(CLI::App& command);
  TakeRequest parse() const; // throws UsageError
};

// A connection and the lock store on it, built from the global options.
struct Session {
  explicit Session(const GlobalOptions& options);
  Config config;
  redis::Connection connection;
  redis::RedisLockStore store;
};

// The lock layer's holder metadata for this process: host, user, and the given pid/command.
lock::HolderMeta holder_meta(std::int64_t pid, std::string command);
std::string host_name();

// What came of waiting for a lock.
struct Taken {
  std::optional<lock::Lease> lease; // empty: busy, or interrupted
  int exit_code = 0;                // when there is no lease: what rlock exits with
};

// Takes the lock with the waiting UX (live line on a terminal, plain lines with -v). A busy
// lock gives --conflict-exit-code (saying why unless quiet); a signal from `signals` while
// waiting gives 128+N, having left the waiting line.
// With `start_on_handoff` (exec), a lock handed over by a release may come back before its
// claim is answered (lock::Lease::claiming): the caller's first renew_if_due() settles it.
// `supervised`: exec or a keeper will hold the lock (lock::AcquireRequest::supervised).
Taken take_lock(Session& session, const std::string& name, const TakeRequest& request, lock::HolderMeta meta,
                process::SignalFd& signals, bool supervised, bool start_on_handoff = false);

// "held by alice@web1 pid 4242 (backup.sh) for 3m05s" — one line about who holds a lock.
std::string describe_holder(const lock::HolderInfo& holder);

// After a release, stops the keeper process of `acquire` if it runs on this host.
void stop_keeper(const lock::ReleaseResult& result);

// Each command registers its subcommand and sets `action` when it is the one chosen.
void add_exec_command(CLI::App& app, const GlobalOptions& globals, Action& action,
                      std::vector<std::string>& command_after_dashes);
void add_acquire_command(CLI::App& app, const GlobalOptions& globals, Action& action);
void add_release_command(CLI::App& app, const GlobalOptions& globals, Action& action);
void add_renew_command(CLI::App& app, const GlobalOptions& globals, Action& action);
void add_status_command(CLI::App& app, const GlobalOptions& globals, Action& action);

} // namespace rlock::cli
