// SPDX-License-Identifier: MIT
// The commands and what they share: options for taking a lock, a Redis session, holder info.
#pragma once

#include "cli/config.hpp"
#include "cli/options.hpp"
#include "cli/telemetry.hpp"
#include "lock/acquirer.hpp"
#include "lock/lock_store.hpp"
#include "process/signals.hpp"
#include "redis/connection.hpp"
#include "redis/quorum_lock_store.hpp"
#include "redis/redis_lock_store.hpp"
#include "redis/topology.hpp"

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace CLI { // NOLINT(readability-identifier-naming): CLI11's, declared for the signatures below
class App;
class Option;
} // namespace CLI

namespace rlock::cli {

struct ExecOptions;

// What came of a command: cli::run() exits with it, once every destructor has run.
struct Outcome {
  int exit_code = 0;
  // A signal rlock dies of instead of exiting (0: none). exec gives it when the job, holding
  // the terminal, died of ^C or ^\: the shell that ran rlock must see a death by that signal,
  // or a script looping over rlock would carry on after the user's ^C.
  int die_of_signal = 0;
};

// What a command runs once the command line has been parsed.
using Action = std::function<Outcome()>;

// A connection, the topology over it and the lock store on that, built from the global options;
// or, in quorum mode (three or more URLs), a QuorumLockStore over one store per node.
struct Session {
  explicit Session(const GlobalOptions& options);
  Config config;
  std::unique_ptr<redis::Topology> topology;     // null in quorum mode
  std::unique_ptr<redis::RedisLockStore> single; // the store on `topology`; null in quorum mode
  std::unique_ptr<redis::QuorumLockStore> quorum;
  lock::LockStore& store; // *single or *quorum

  // Why the last acquire or renewal was unconfirmed (RedisLockStore::shortfall); "" in quorum mode.
  std::string shortfall() const;
  // Drops every connection (before a fork).
  void disconnect() noexcept;
};

// Makes the session's store ask for --min-replicas (else the config file's min-replicas) after
// each write, each WAIT waiting --min-replicas-timeout (else the file's, else min(ttl/10, 1s)).
// For a command that `renews` a lease of `ttl`, throws UsageError for a timeout not shorter
// than it, which no renewal could then meet.
void require_replicas(Session& session, const ReplicaOptions& options, lock::Millis ttl, bool renews = true);

// The lock layer's holder metadata for this process: host, user, and the given pid/command;
// the command is redacted of secrets (redact_command_line) here, where every holder is recorded.
lock::HolderMeta holder_meta(std::int64_t pid, const std::string& command);

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
// With `still_wanted`, it is asked after every attempt while waiting; once it says no, the
// wait ends with Error(busy) ("nobody is left to hold it for"). `wanted_until_fd` turns
// readable when it would say no (an owner's pidfd): the wait then ends at once. Without one,
// still_wanted is asked at least every second. `telemetry`, when given, hears of the wait
// (waiting, once), then of the lock acquired or busy.
Taken take_lock(Session& session, const std::string& name, const TakeOptions& options, lock::HolderMeta meta,
                process::SignalFd& signals, bool supervised, bool start_on_handoff = false,
                const std::function<bool()>& still_wanted = {}, int wanted_until_fd = -1,
                Telemetry* telemetry = nullptr);

// `unix_ms` as RFC 3339 in UTC with milliseconds: "2026-12-03T15:20:01.123Z".
std::string utc_time(std::int64_t unix_ms);

// "held by alice@web1 pid 4242 (backup.sh) for 3m05s" — one line about who holds a lock (its
// holders separated by "; ").
std::string describe_holder(const lock::LockInfo& lock);
// Holder data as shown: printable, and "?" for what the store could not tell (empty, or 0).
std::string or_unknown(std::string_view text);
std::string or_unknown(std::int64_t value);

// The payload of the SIGTERM that stops a keeper: keeper_stop_tag("token", TOKEN) after a
// release, keeper_stop_tag("name", NAME) after a forced one. A keeper stops only for a tag of
// its own lock, so a pid recorded long ago that now names another keeper stops nothing.
std::uint64_t keeper_stop_tag(std::string_view kind, std::string_view value);

// After a release, stops the keeper process of `acquire` if it runs on this host, with `tag`.
void stop_keeper(const lock::ReleaseResult& result, std::uint64_t tag);

// Each command registers its subcommand and sets `action` when it is the one chosen.
// exec's options go to `exec_options` (cli/command_line.hpp), its job to `command_after_dashes`.
void add_exec_command(CLI::App& app, const GlobalOptions& globals, Action& action, ExecOptions& exec_options,
                      std::vector<std::string>& command_after_dashes);
void add_acquire_command(CLI::App& app, const GlobalOptions& globals, Action& action);
void add_release_command(CLI::App& app, const GlobalOptions& globals, Action& action);
void add_renew_command(CLI::App& app, const GlobalOptions& globals, Action& action);
void add_wait_command(CLI::App& app, const GlobalOptions& globals, Action& action);
void add_status_command(CLI::App& app, const GlobalOptions& globals, Action& action);
void add_log_command(CLI::App& app, const GlobalOptions& globals, Action& action);
void add_config_command(CLI::App& app, const GlobalOptions& globals, Action& action);

} // namespace rlock::cli
