// SPDX-License-Identifier: MIT
// --events and --metrics-textfile: JSON lines as the lock's life goes, Prometheus metrics at exit.
#include "cli/telemetry.hpp"

#include "cli/commands.hpp"
#include "lock/lease.hpp"
#include "process/owner.hpp"
#include "util/error.hpp"
#include "util/file.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

namespace rlock::cli {

namespace {

// Now, as RFC 3339 in UTC with milliseconds: 2026-12-03T15:19:56.123Z.
std::string rfc3339_now() {
  return utc_time(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

std::string json_field(std::string_view key, std::string_view text) {
  return fmt::format(",\"{}\":\"{}\"", key, json_escape(text));
}

std::string json_field(std::string_view key, std::int64_t value) { return fmt::format(",\"{}\":{}", key, value); }

std::int64_t millis_since(lock::TimePoint from, lock::TimePoint to) {
  return std::chrono::duration_cast<lock::Millis>(to - from).count();
}

// Where a setting came from, for messages: "--events", "RLOCK_EVENTS", "FILE:3".
std::string where(const Setting& setting) {
  return setting.source.origin == Origin::flag ? setting.source.detail : setting.source.describe();
}

// Checks that the metrics file can be replaced: its directory exists and is writable (the file
// is written there under another name, then renamed), and the file is not a directory.
void check_metrics_path(const std::string& path, const Setting& setting) {
  const std::string directory = directory_of(path);
  if (::access(directory.c_str(), W_OK | X_OK) != 0) {
    throw ConfigError(fmt::format("cannot write the metrics file {} ({}): its directory {}: {}", printable(path),
                                  where(setting), printable(directory), std::strerror(errno)));
  }
  struct stat info {};
  if (::stat(path.c_str(), &info) == 0 && !S_ISREG(info.st_mode)) {
    throw ConfigError(fmt::format("the metrics file {} ({}) is not a regular file", printable(path), where(setting)));
  }
}

} // namespace

Telemetry::Telemetry(const Config& config, std::string_view kind, std::string name)
    : m_kind(kind), m_name(std::move(name)), m_host(process::host_name()) {
  const Setting& events = config.settings.get("events");
  if (!events.value.empty()) {
    if (events.value == "-" && kind == "acquire") {
      const std::string message = fmt::format(
          "events '-' ({}) cannot go with acquire: its standard output carries the token, and its keeper has "
          "none; give a file",
          where(events));
      if (events.source.origin == Origin::flag) throw UsageError(message);
      throw ConfigError(message);
    }
    try {
      m_events = LineFile::open(events.value, "events file");
    } catch (const ConfigError& error) {
      throw ConfigError(fmt::format("{} ({})", error.what(), where(events)));
    }
  }
  const Setting& metrics = config.settings.get("metrics-textfile");
  if (!metrics.value.empty() && kind != "release") {
    std::error_code ignored;
    const std::filesystem::path absolute = std::filesystem::absolute(metrics.value, ignored);
    m_metrics_path = absolute.empty() ? metrics.value : absolute.string();
    check_metrics_path(m_metrics_path, metrics);
  }
}

void Telemetry::emit(std::string_view event, const std::string& fields) {
  if (!m_events.enabled()) return;
  std::string line = fmt::format(R"({{"time":"{}","event":"{}")", rfc3339_now(), event);
  line += json_field("name", m_name);
  line += json_field("kind", m_kind);
  line += json_field("host", m_host);
  line += json_field("pid", static_cast<std::int64_t>(::getpid()));
  line += fields;
  line += "}\n";
  (void)m_events.write(line);
}

std::optional<std::int64_t> Telemetry::held_ms() const {
  if (!m_acquired_at) return std::nullopt;
  return millis_since(*m_acquired_at, m_ended_at.value_or(lock::steady_now()));
}

void Telemetry::begin_wait() {
  if (!m_wait_started) m_wait_started = lock::steady_now();
}

void Telemetry::waiting(const lock::LockInfo& holder) {
  if (m_waiting_told) return;
  m_waiting_told = true;
  if (!m_events.enabled()) return;
  std::string fields;
  if (holder.holders.size() == 1 && holder.holders.front().has_metadata) {
    const lock::HolderInfo& one = holder.holders.front();
    fields += json_field("holder_host", one.meta.host);
    fields += json_field("holder_pid", one.meta.pid);
  }
  emit("waiting", fields);
}

void Telemetry::acquired(std::int64_t fence, lock::Millis ttl, bool adopted) {
  const lock::TimePoint now = lock::steady_now();
  m_waited = m_wait_started ? std::chrono::duration_cast<lock::Millis>(now - *m_wait_started) : lock::Millis(0);
  m_acquired_at = now;
  m_fence = fence;
  if (!m_events.enabled()) return; // on the way from a hand-off's wake to the job: no formatting
  std::string fields = json_field("waited_ms", m_waited->count()) + json_field("fence", fence) +
                       json_field("ttl_ms", static_cast<std::int64_t>(ttl.count()));
  if (adopted) fields += ",\"adopted\":true";
  emit("acquired", fields);
}

void Telemetry::busy(int exit_status) {
  m_busy = true;
  if (m_wait_started) m_waited = std::chrono::duration_cast<lock::Millis>(lock::steady_now() - *m_wait_started);
  emit("busy",
       json_field("waited_ms", m_waited.value_or(lock::Millis(0)).count()) + json_field("exit_status", exit_status));
}

void Telemetry::renewed() {
  emit("renewed", json_field("fence", m_fence) + json_field("held_ms", held_ms().value_or(0)));
}

void Telemetry::lost(std::string_view reason, std::string_view detail) {
  m_lost = true;
  if (!m_ended_at) m_ended_at = lock::steady_now();
  std::string fields;
  if (m_acquired_at) fields += json_field("fence", m_fence);
  if (auto held = held_ms()) fields += json_field("held_ms", *held);
  fields += json_field("reason", reason);
  if (!detail.empty()) fields += json_field("detail", detail);
  emit("lost", fields);
}

void Telemetry::released(std::optional<int> exit_status, std::string_view reason, std::string_view release_error) {
  if (!m_ended_at) m_ended_at = lock::steady_now();
  std::string fields = json_field("fence", m_fence);
  if (auto held = held_ms()) fields += json_field("held_ms", *held);
  if (exit_status) fields += json_field("exit_status", *exit_status);
  if (!reason.empty()) fields += json_field("reason", reason);
  if (!release_error.empty()) fields += json_field("release_error", release_error);
  emit("released", fields);
}

void Telemetry::released_by_token(std::optional<std::int64_t> fence, std::optional<std::int64_t> held_ms) {
  std::string fields;
  if (fence) fields += json_field("fence", *fence);
  if (held_ms) fields += json_field("held_ms", *held_ms);
  emit("released", fields);
}

void Telemetry::released_by_force(const lock::LockInfo& evicted) {
  for (const lock::HolderInfo& holder : evicted.holders) {
    std::string fields = ",\"forced\":true";
    if (holder.fence > 0) fields += json_field("fence", holder.fence);
    if (holder.acquired_at_ms > 0 && evicted.server_now_ms >= holder.acquired_at_ms) {
      fields += json_field("held_ms", evicted.server_now_ms - holder.acquired_at_ms);
    }
    if (holder.has_metadata) {
      fields += json_field("holder_host", holder.meta.host);
      fields += json_field("holder_pid", holder.meta.pid);
    }
    emit("released", fields);
  }
}

void Telemetry::ended() {
  if (!m_ended_at) m_ended_at = lock::steady_now();
}

void Telemetry::become_keeper() {
  m_kind = "keeper";
  m_finished = false;
}

std::string Telemetry::metrics_text(int exit_status) const {
  const std::string label = fmt::format("name=\"{}\"", prometheus_escape(m_name));
  const LockOutcome outcome = m_lost          ? LockOutcome::lost
                              : m_acquired_at ? LockOutcome::acquired
                              : m_busy        ? LockOutcome::busy
                                              : LockOutcome::error;
  lock::Millis waited = m_waited.value_or(lock::Millis(0));
  if (!m_waited && m_wait_started) {
    waited = std::chrono::duration_cast<lock::Millis>(lock::steady_now() - *m_wait_started); // an error ended it
  }
  const auto seconds = [](std::int64_t millis) { return fmt::format("{:.3f}", static_cast<double>(millis) / 1000.0); };
  const auto unix_now =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch());

  std::string text;
  const auto gauge = [&text](std::string_view metric, std::string_view help) {
    text += fmt::format("# HELP {0} {1}\n# TYPE {0} gauge\n", metric, help);
  };
  gauge("rlock_wait_seconds", "Seconds the last run waited for the lock.");
  text += fmt::format("rlock_wait_seconds{{{}}} {}\n", label, seconds(waited.count()));
  gauge("rlock_hold_seconds", "Seconds the last run held the lock (0 when it did not get it).");
  text += fmt::format("rlock_hold_seconds{{{}}} {}\n", label, seconds(held_ms().value_or(0)));
  gauge("rlock_outcome", "How the last run ended for the lock: 1 for its outcome, 0 for the others.");
  constexpr std::pair<LockOutcome, std::string_view> k_outcomes[] = {{LockOutcome::acquired, "acquired"},
                                                                     {LockOutcome::busy, "busy"},
                                                                     {LockOutcome::lost, "lost"},
                                                                     {LockOutcome::error, "error"}};
  for (const auto& [which, word] : k_outcomes) {
    text += fmt::format("rlock_outcome{{{},outcome=\"{}\"}} {}\n", label, word, which == outcome ? 1 : 0);
  }
  gauge("rlock_exit_status", "Exit status of the last run (exec: the job's status).");
  text += fmt::format("rlock_exit_status{{{}}} {}\n", label, exit_status);
  gauge("rlock_fence", "Fencing token of the last acquisition (0 when the lock was not acquired).");
  text += fmt::format("rlock_fence{{{}}} {}\n", label, m_acquired_at ? m_fence : 0);
  gauge("rlock_last_run_timestamp_seconds", "When the last run wrote these metrics, in seconds since the epoch.");
  text += fmt::format("rlock_last_run_timestamp_seconds{{{}}} {}\n", label, seconds(unix_now.count()));
  return text;
}

void Telemetry::finish(int exit_status) noexcept {
  if (m_finished || m_metrics_path.empty()) return;
  m_finished = true;
  try {
    replace_file_atomically(m_metrics_path, metrics_text(exit_status));
  } catch (const std::exception& error) {
    try {
      log::warn("could not write the metrics file {}: {}", printable(m_metrics_path), error.what());
    } catch (...) { // NOLINT(bugprone-empty-catch): a warning that cannot be formatted is dropped
    }
  }
}

Outcome Telemetry::report(const std::function<Outcome()>& body) {
  Outcome outcome;
  try {
    outcome = body();
  } catch (const Error& error) {
    finish(to_int(error.code()));
    throw;
  }
  finish(outcome.exit_code);
  return outcome;
}

} // namespace rlock::cli
