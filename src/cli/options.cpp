// SPDX-License-Identifier: MIT
// Command-line values parsed once, at the border, and the options for taking a lock.
#include "cli/options.hpp"
#include "cli/cli11.hpp"

#include "util/duration.hpp"
#include "util/error.hpp"
#include "util/random.hpp"
#include "util/strings.hpp"

#include <fmt/format.h>

namespace rlock::cli {

lock::Millis parse_duration_at_least(std::string_view text, std::string_view what, lock::Millis least) {
  const lock::Millis value = parse_duration(text, what);
  if (value < least) throw UsageError(fmt::format("{} must be at least {}", what, format_duration(least)));
  return value;
}

std::string_view require_value(std::string_view text, std::string_view what) {
  if (text.empty())
    throw UsageError(fmt::format("{} is empty (an unset variable?): give it a value or leave it out", what));
  return text;
}

lock::Millis parse_ttl(std::string_view text, std::string_view what) {
  return parse_duration_at_least(text, what, k_min_ttl);
}

CLI::Option* add_duration_option(CLI::App& command, const std::string& names, std::function<void(lock::Millis)> store,
                                 const std::string& description, lock::Millis least) {
  const auto comma = names.rfind(',');
  std::string what = comma == std::string::npos ? names : names.substr(comma + 1);
  return command
      .add_option_function<std::string>(
          names,
          [store = std::move(store), what = std::move(what), least](const std::string& text) {
            store(parse_duration_at_least(require_value(text, what), what, least));
          },
          description)
      ->type_name("DURATION");
}

std::string checked_token(std::string token, std::string_view source) {
  if (!is_token_form(token)) {
    throw UsageError(fmt::format("the token from {} is not an rlock token ({} characters; acquire prints 32 "
                                 "lowercase hex digits): was it mistyped, cut short or taken from another variable?",
                                 source, token.size()));
  }
  return token;
}

std::int64_t parse_min_replicas(std::string_view text, std::string_view what) {
  std::int64_t count = 0;
  if (!parse_int(text, count) || count < 0 || count > k_max_min_replicas) {
    throw UsageError(fmt::format("{} must be a number of replicas from 0 to {}, not '{}'", what, k_max_min_replicas,
                                 printable(text)));
  }
  return count;
}

std::int64_t parse_limit(std::string_view text) {
  std::int64_t value = 0;
  if (!parse_int(require_value(text, "--limit"), value) || value < 1 || value > k_max_limit) {
    throw UsageError(
        fmt::format("--limit takes a number of holders from 1 to {}, not '{}'", k_max_limit, printable(text)));
  }
  return value;
}

void ReplicaOptions::add_to(CLI::App& command) {
  command
      .add_option_function<std::string>(
          "--min-replicas",
          [this](const std::string& text) {
            count = parse_min_replicas(require_value(text, "--min-replicas"), "--min-replicas");
          },
          "replicas that must acknowledge each write of the lock (WAIT); fewer: an acquire is given back and "
          "retried, a renewal does not count (default: the config file's min-replicas, else 0)")
      ->type_name("N");
  add_duration_option(
      command, "--min-replicas-timeout", [this](lock::Millis value) { timeout = value; },
      "how long each WAIT for --min-replicas waits (default: TTL/10, at most 1s)", lock::Millis(1));
}

void TakeOptions::add_to(CLI::App& command) {
  add_duration_option(
      command, "--ttl", [this](lock::Millis value) { ttl = value; },
      "lease length; renewed every TTL/3 while held (default: the config file's ttl, else 30s)", k_min_ttl);
  add_duration_option(
      command, "-w,--wait", [this](lock::Millis value) { wait = value; },
      "wait at most DURATION for the lock (default: forever; 0 = --no-wait)");
  command.add_flag("-n,--no-wait", no_wait, "fail at once if the lock is busy");
  command
      .add_option("-E,--conflict-exit-code", conflict_exit_code,
                  "exit status when the lock is busy or the wait runs out (default 75)")
      ->type_name("N")
      ->check(CLI::Range(0, 255));
  replicas.add_to(command);
  command
      .add_option_function<std::string>(
          "--limit", [this](const std::string& text) { limit = parse_limit(text); },
          "a semaphore: at most N holders at once, each with its own permit (see SEMAPHORES AND SHARED LOCKS)")
      ->type_name("N");
  command.add_flag("--shared", shared,
                   "a shared (read) lock: readers share NAME, a plain acquire of it is exclusive; arrival order kept");
}

lock::WaitPolicy TakeOptions::wait_policy() const {
  if (no_wait && wait) throw UsageError("--no-wait and --wait contradict each other");
  if (limit && shared) throw UsageError("--limit and --shared contradict each other");
  lock::WaitPolicy policy;
  if (no_wait) policy.max_wait = lock::Millis(0);
  if (wait) policy.max_wait = *wait;
  return policy;
}

} // namespace rlock::cli
