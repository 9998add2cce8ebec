// SPDX-License-Identifier: MIT
// `rlock release` and `rlock renew`: token-checked operations for the split form.
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
  std::optional<lock::Millis> ttl; // renew: none means the configured ttl (config file, else 30s)
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

Outcome run_release(const GlobalOptions& globals, const TokenOptions& options) {
  lock::validate_name(options.name);
  if (options.force) {
    if (!options.token.empty() || !options.token_file.empty()) {
      throw UsageError("--force breaks the lock whoever holds it; it takes no token");
    }
    if (options.replicas.count || options.replicas.timeout) {
      throw UsageError("--force is never checked with replicas; drop --min-replicas and --min-replicas-timeout");
    }
    Session session(globals);
    lock::LockInfo evicted = session.store.force_release(options.name);
    if (!evicted.held()) {
      log::info("lock '{}' was not held", printable(options.name));
      return {};
    }
    log::info("released '{}' by force; evicted: {}", printable(options.name), describe_holder(evicted));
    for (const lock::HolderInfo& holder : evicted.holders) {
      lock::ReleaseResult keeper;
      keeper.keeper_pid = holder.keeper_pid;
      keeper.keeper_host = holder.meta.host;
      stop_keeper(keeper, keeper_stop_tag("name", options.name));
    }
    return {};
  }
  std::string token = options.resolve_token("release");
  Session session(globals);
  require_replicas(session, options.replicas, session.config.ttl, /*renews=*/false);
  // A release whose answer is lost is sent once more: one that did not happen leaves an orphan.
  lock::ReleaseResult result = lock::release_token(session.store, options.name, token, lock::Millis(0));
  if (result.outcome != lock::TokenCheck::ok) throw lost_error(session, options.name, result.outcome, "release");
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
                                       session.store.shortfall()));
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
