// SPDX-License-Identifier: MIT
// `rlock release` and `rlock renew`: token-checked operations for the split form.
#include "cli/cli11.hpp"
#include "cli/commands.hpp"
#include "cli/token_file.hpp"
#include "lock/name.hpp"
#include "util/duration.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

#include <fmt/format.h>

namespace rlock::cli {

namespace {

struct TokenOptions {
  std::string name;
  std::string token;
  std::string token_file;
  bool force = false;
  std::optional<std::string> expect_token;  // release --force --expect-token
  std::optional<std::string> expect_holder; // release --force --expect-holder HOST:PID
  std::optional<lock::Millis> ttl;          // renew: none means the configured ttl (config file, else 30s)
  ReplicaOptions replicas;

  void add_to(CLI::App& command) {
    command.add_option("NAME", name, "the lock's name")->required();
    command
        .add_option("--token", token,
                    "the token acquire printed (visible in ps; prefer $RLOCK_TOKEN_<NAME> or $RLOCK_TOKEN)")
        ->type_name("TOKEN");
    command.add_option("--token-file", token_file, "read the token from FILE")->type_name("FILE");
    replicas.add_to(command);
  }

  // --token, then --token-file, then the lock's own $RLOCK_TOKEN_<NAME>, then $RLOCK_TOKEN;
  // never none (that would be a blind DEL). A token of another form is refused.
  std::string resolve_token(const char* verb) const {
    if (!token.empty()) return checked_token(token, "--token");
    if (!token_file.empty()) {
      return checked_token(read_token_file(token_file), fmt::format("the token file {}", printable(token_file)));
    }
    if (auto from_environment = token_from_environment(name)) {
      return checked_token(*from_environment, fmt::format("${} or $RLOCK_TOKEN", token_variable(name)));
    }
    // Only release has --force; renew must be told where the token is.
    throw UsageError(
        fmt::format("no token to {} '{}' with: pass --token TOKEN or --token-file FILE, or set {} or "
                    "RLOCK_TOKEN (eval \"$(rlock acquire {} --export)\" does){}",
                    verb, printable(name), token_variable(name), shell_quote(name),
                    std::string_view(verb) == "release" ? "; --force breaks a lock whoever holds it" : ""));
  }
};

// The lock-lost error, saying who has the lock now.
Error lost_error(Session& session, const std::string& name, lock::TokenCheck outcome, const char* verb) {
  if (outcome == lock::TokenCheck::free) {
    return Error(ExitCode::lost, fmt::format("cannot {} '{}': this token no longer holds it; the lock is free now "
                                             "(the lease expired or was force-released)",
                                             verb, printable(name)));
  }
  std::string holder;
  try {
    holder = describe_holder(session.store.inspect(name));
  } catch (const Error&) {
    holder = "held by someone else";
  }
  return Error(ExitCode::lost, fmt::format("cannot {} '{}': this token no longer holds it; it is {} now", verb,
                                           printable(name), holder));
}

// --expect-holder's HOST:PID (the host and pid `status` shows), as a condition.
lock::ForceCondition holder_condition(const std::string& text) {
  std::size_t colon = text.rfind(':');
  std::int64_t pid = 0;
  if (colon == std::string::npos || colon == 0 || !parse_int(std::string_view(text).substr(colon + 1), pid) ||
      pid <= 0) {
    throw UsageError(
        fmt::format("--expect-holder {}: expected HOST:PID, as status shows them (web1:4242)", printable(text)));
  }
  lock::ForceCondition condition;
  condition.host = text.substr(0, colon);
  condition.pid = pid;
  return condition;
}

Outcome run_force_release(const GlobalOptions& globals, const TokenOptions& options) {
  if (!options.token.empty() || !options.token_file.empty()) {
    throw UsageError("--force breaks the lock whoever holds it; it takes no token (--expect-token T breaks it only "
                     "while T holds it)");
  }
  if (options.replicas.count || options.replicas.timeout) {
    throw UsageError("--force is never checked with replicas; drop --min-replicas and --min-replicas-timeout");
  }
  if (options.expect_token && options.expect_holder) {
    throw UsageError("--expect-token and --expect-holder each name the holder to break: give one of them");
  }
  lock::ForceCondition only;
  std::string expected;
  if (options.expect_token) {
    only.token = checked_token(std::string(require_value(*options.expect_token, "--expect-token")), "--expect-token");
    expected = "the token given";
  } else if (options.expect_holder) {
    only = holder_condition(std::string(require_value(*options.expect_holder, "--expect-holder")));
    expected = fmt::format("{}:{}", printable(only.host), only.pid);
  }
  Session session(globals);
  Telemetry telemetry(session.config, "release", options.name);
  lock::ForceResult result = session.store.force_release(options.name, only);
  if (result.outcome == lock::ForceResult::Outcome::free) {
    if (!expected.empty()) {
      throw Error(ExitCode::lost,
                  fmt::format("did not break '{}': it is free now, not held by {}", printable(options.name), expected));
    }
    log::info("lock '{}' was not held", printable(options.name));
    return {};
  }
  if (result.outcome == lock::ForceResult::Outcome::other_holder) {
    throw Error(ExitCode::lost, fmt::format("did not break '{}': it is {} now, not {}; nothing changed",
                                            printable(options.name), describe_holder(result.lock), expected));
  }
  log::info("released '{}' by force; evicted: {}", printable(options.name), describe_holder(result.lock));
  telemetry.released_by_force(result.lock);
  for (const lock::HolderInfo& holder : result.lock.holders) {
    lock::ReleaseResult keeper;
    keeper.keeper_pid = holder.keeper_pid;
    keeper.keeper_host = holder.meta.host;
    stop_keeper(keeper, keeper_stop_tag("name", options.name));
  }
  return {};
}

Outcome run_release(const GlobalOptions& globals, const TokenOptions& options) {
  lock::validate_name(options.name);
  if (options.force) return run_force_release(globals, options);
  if (options.expect_token || options.expect_holder) {
    throw UsageError("--expect-token and --expect-holder go with --force (they say which holder it may break)");
  }
  std::string token = options.resolve_token("release");
  Session session(globals);
  Telemetry telemetry(session.config, "release", options.name);
  require_replicas(session, options.replicas, session.config.ttl, /*renews=*/false);
  // The events tell the fence and how long the lock was held: the store knows, just before.
  std::optional<std::int64_t> fence;
  std::optional<std::int64_t> held_ms;
  if (telemetry.events_enabled()) {
    try {
      const lock::LockInfo before = session.store.inspect(options.name);
      if (before.holders.size() == 1) {
        const lock::HolderInfo& holder = before.holders.front();
        if (holder.fence > 0) fence = holder.fence;
        if (holder.acquired_at_ms > 0 && before.server_now_ms >= holder.acquired_at_ms) {
          held_ms = before.server_now_ms - holder.acquired_at_ms;
        }
      }
    } catch (const Error& error) {
      log::verbose("could not look at '{}' before releasing it: {}", printable(options.name), error.what());
    }
  }
  // A release whose answer is lost is sent once more: one that did not happen leaves an orphan.
  lock::ReleaseResult result = lock::release_token(session.store, options.name, token, lock::Millis(0));
  if (result.outcome != lock::TokenCheck::ok) {
    telemetry.lost(result.outcome == lock::TokenCheck::free ? "free" : "taken", "found at release");
    throw lost_error(session, options.name, result.outcome, "release");
  }
  telemetry.released_by_token(fence, held_ms);
  stop_keeper(result, keeper_stop_tag("token", token));
  log::verbose("released '{}'", printable(options.name));
  return {};
}

Outcome run_renew(const GlobalOptions& globals, const TokenOptions& options) {
  lock::validate_name(options.name);
  std::string token = options.resolve_token("renew");
  Session session(globals);
  const lock::Millis ttl = options.ttl.value_or(session.config.ttl);
  require_replicas(session, options.replicas, ttl);
  lock::TokenCheck outcome = session.store.renew(lock::RenewRequest{options.name, token, ttl, 0});
  if (outcome == lock::TokenCheck::unconfirmed) {
    throw UnavailableError(fmt::format("renewed '{}', but {}: do not count on the new lease", printable(options.name),
                                       session.shortfall()));
  }
  if (outcome != lock::TokenCheck::ok) throw lost_error(session, options.name, outcome, "renew");
  log::verbose("renewed '{}' for {}", printable(options.name), format_duration(ttl));
  return {};
}

} // namespace

void add_release_command(CLI::App& app, const GlobalOptions& globals, Action& action) {
  auto options = std::make_shared<TokenOptions>();
  CLI::App* command = app.add_subcommand("release", "Release a lock taken with acquire (token from --token, "
                                                    "--token-file, $RLOCK_TOKEN_<NAME> or $RLOCK_TOKEN).");
  options->add_to(*command);
  command->add_flag("--force", options->force, "break the lock whoever holds it, and say who was evicted");
  command
      ->add_option("--expect-token", options->expect_token,
                   "with --force: break the lock only while it holds TOKEN, else exit 76 and change nothing")
      ->type_name("TOKEN");
  command
      ->add_option("--expect-holder", options->expect_holder,
                   "with --force: break the lock only while HOST:PID (as status shows) holds it, else exit 76")
      ->type_name("HOST:PID");
  command->callback(
      [&action, &globals, options] { action = [&globals, options] { return run_release(globals, *options); }; });
}

void add_renew_command(CLI::App& app, const GlobalOptions& globals, Action& action) {
  auto options = std::make_shared<TokenOptions>();
  CLI::App* command = app.add_subcommand("renew", "Extend a lease taken with acquire --lease to --ttl from now.");
  options->add_to(*command);
  add_duration_option(
      *command, "--ttl", [options](lock::Millis value) { options->ttl = value; },
      "the new lease length from now (default: the config file's ttl, else 30s)", k_min_ttl);
  command->callback(
      [&action, &globals, options] { action = [&globals, options] { return run_renew(globals, *options); }; });
}

} // namespace rlock::cli
