// SPDX-License-Identifier: MIT
// Command-line values parsed once, at the border: CLI11 hands over strings, the commands get
// durations and limits already checked, and the options exec and acquire share.
#pragma once

#include "lock/acquirer.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace CLI { // NOLINT(readability-identifier-naming): CLI11's, declared for the signatures below
class App;
class Option;
} // namespace CLI

namespace rlock::cli {

// The shortest lease rlock takes, from --ttl or the config file: it is renewed every TTL/3,
// and a shorter one would run out between a renewal and its answer.
inline constexpr lock::Millis k_min_ttl{10};

// `text` as a duration of at least `least`; UsageError naming `what` (the option) otherwise.
lock::Millis parse_duration_at_least(std::string_view text, std::string_view what, lock::Millis least);

// `text`, the value of option `what`, unless it is empty: an option given an empty value
// (`--wait "$UNSET"`) is an error, never "use the default". Throws UsageError.
std::string_view require_value(std::string_view text, std::string_view what);

// A lease length: a duration of at least k_min_ttl.
lock::Millis parse_ttl(std::string_view text, std::string_view what);

// Adds the DURATION option `names` ("-w,--wait") to `command`. Its value is parsed when CLI11
// reads it (at least `least`; --ttl uses k_min_ttl) and handed to `store`.
CLI::Option* add_duration_option(CLI::App& command, const std::string& names, std::function<void(lock::Millis)> store,
                                 const std::string& description, lock::Millis least = lock::Millis(0));

// `token` as given by `source` ("--token", "the token file F", …), if it has the form of the
// tokens rlock makes: a made-up or truncated one is a usage error (64), not a lost lock (76).
std::string checked_token(std::string token, std::string_view source);

// The most --min-replicas asks for: more replicas than anyone runs is a typo.
inline constexpr std::int64_t k_max_min_replicas = 100;

// `text`, the value of --min-replicas (or the config key, `what`), as a count of replicas from
// 0 to k_max_min_replicas; UsageError otherwise.
std::int64_t parse_min_replicas(std::string_view text, std::string_view what);

// --min-replicas and --min-replicas-timeout, on every command that writes a lock (exec,
// acquire, renew, release): how many replicas must acknowledge each of its writes, and how
// long WAIT waits for them. Unset: the config file's, else 0 (no WAIT).
struct ReplicaOptions {
  std::optional<std::int64_t> count;
  std::optional<lock::Millis> timeout;

  void add_to(CLI::App& command);
  bool operator==(const ReplicaOptions&) const = default;
};

// The most --limit allows: every permit script reads all of a name's permits.
inline constexpr std::int64_t k_max_limit = 1000;

// `text`, the value of --limit, as a number of holders from 1 to k_max_limit; UsageError otherwise.
std::int64_t parse_limit(std::string_view text);

// Options shared by exec and acquire: how long to wait, how long the lease runs.
struct TakeOptions {
  std::optional<lock::Millis> ttl;  // --ttl; none: the configured ttl (config file, else 30s)
  std::optional<lock::Millis> wait; // --wait; none: forever (or --no-wait)
  bool no_wait = false;
  int conflict_exit_code = 75;
  ReplicaOptions replicas;
  std::optional<std::int64_t> limit; // --limit N: a semaphore of N permits
  bool shared = false;               // --shared: a reader of a shared lock

  void add_to(CLI::App& command);
  lock::Millis ttl_ms(lock::Millis configured) const { return ttl.value_or(configured); }
  // Throws UsageError for --no-wait with --wait, and for --limit with --shared.
  lock::WaitPolicy wait_policy() const;
  bool operator==(const TakeOptions&) const = default;
};

} // namespace rlock::cli
