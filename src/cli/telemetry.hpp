// SPDX-License-Identifier: MIT
// What a run tells besides its exit status: --events (one JSON line per lock event) and
// --metrics-textfile (Prometheus textfile-collector metrics, replaced atomically at exit).
#pragma once

#include "cli/config.hpp"
#include "lock/lock_store.hpp"
#include "util/line_file.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace rlock::cli {

struct Outcome;

// The reports of one run on one lock, schemas in rlock(1) EVENTS AND METRICS. Reporting never
// changes how the lock is handled: a write that fails warns once, and the run goes on.
class Telemetry {
 public:
  // How the run's lock ended up (rlock_outcome).
  enum class LockOutcome { acquired, busy, lost, error };

  Telemetry() = default; // reports nothing
  // For command `kind` (exec, acquire, release) on lock `name`. Opens the events file now,
  // before any lock is taken, and checks that the metrics file's directory is writable (release
  // writes no metrics). Throws ConfigError (78) naming the file and where it was set when either
  // cannot be written; for `--events -` with acquire, whose stdout carries the token, UsageError
  // (64) from the flag, ConfigError from the environment or the file.
  Telemetry(const Config& config, std::string_view kind, std::string name);

  bool events_enabled() const noexcept { return m_events.enabled(); }

  // Waiting starts now (waited_ms and rlock_wait_seconds count from here).
  void begin_wait();
  // The first busy attempt of a wait: event `waiting` (once per run).
  void waiting(const lock::LockInfo& holder);
  // Event `acquired`; the hold starts now. `adopted`: a lease taken earlier (exec --token).
  void acquired(std::int64_t fence, lock::Millis ttl, bool adopted = false);
  // The lock stayed busy: event `busy`, with the exit status rlock gives for it.
  void busy(int exit_status);
  // A renewal went through: event `renewed`.
  void renewed();
  // The lock was lost: event `lost`; `reason` is free, taken or expired, `detail` for people.
  void lost(std::string_view reason, std::string_view detail);
  // The lock was given back (or its release could not be sent: `release_error`): event
  // `released`; `exit_status` is exec's, `reason` the keeper's (owner_exited, stopped).
  void released(std::optional<int> exit_status, std::string_view reason = {}, std::string_view release_error = {});
  // `release`: the lock was released by token; the holder as the store showed it just before
  // (fence, and held_ms from the server's clock), when known.
  void released_by_token(std::optional<std::int64_t> fence, std::optional<std::int64_t> held_ms);
  // `release --force`: the holders were evicted (event `released`, "forced":true).
  void released_by_force(const lock::LockInfo& evicted);
  // The lock ends without an event (the keeper stopped after `release` gave it back).
  void ended();

  // In the keeper, freshly forked from acquire: reports as kind keeper with its own pid from
  // now on, and writes the metrics file again at its own end.
  void become_keeper();

  // Replaces the metrics file (if one is set) with this run's: once per process; a failure warns.
  void finish(int exit_status) noexcept;

  // Runs `body`, then finish()es with the exit status it returns, or with that of the Error it
  // throws (rethrown).
  Outcome report(const std::function<Outcome()>& body);

 private:
  void emit(std::string_view event, const std::string& fields);
  std::string metrics_text(int exit_status) const;
  std::optional<std::int64_t> held_ms() const;

  std::string m_kind;
  std::string m_name;
  std::string m_host;
  LineFile m_events;
  std::string m_metrics_path; // absolute (the keeper works from /); "" for none
  std::optional<lock::TimePoint> m_wait_started;
  std::optional<lock::Millis> m_waited;
  std::optional<lock::TimePoint> m_acquired_at;
  std::optional<lock::TimePoint> m_ended_at;
  std::int64_t m_fence = 0;
  bool m_waiting_told = false;
  bool m_busy = false;
  bool m_lost = false;
  bool m_finished = false;
};

} // namespace rlock::cli
