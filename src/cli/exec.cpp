// SPDX-License-Identifier: MIT
// `rlock exec`: run a command while holding the lock, and stop it before the lock could go.
#include "cli/cli11.hpp"
#include "cli/command_line.hpp"
#include "cli/commands.hpp"
#include "cli/token_file.hpp"
#include "lock/name.hpp"
#include "process/child.hpp"
#include "process/exit_status.hpp"
#include "process/signals.hpp"
#include "process/supervisor.hpp"
#include "util/duration.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/redact.hpp"
#include "util/strings.hpp"

#include <filesystem>
#include <fmt/format.h>
#include <unistd.h>

namespace rlock::cli {

namespace {

std::string loss_reason(const lock::Lease& lease, const Session& session) {
  switch (lease.status()) {
  case lock::Lease::Status::lost_free: return "the renewal found it gone (expired, or force-released)";
  case lock::Lease::Status::lost_taken: return "the renewal found it held by another token";
  case lock::Lease::Status::expired:
    if (lease.unconfirmed()) {
      return fmt::format("no renewal was confirmed by enough replicas before the lease's safety deadline ({})",
                         session.shortfall());
    }
    if (lease.last_error().empty()) {
      return "the lease's safety deadline passed before rlock could renew it (was rlock stopped or starved?)";
    }
    return fmt::format("Redis stayed unreachable until the lease's safety deadline ({})", lease.last_error());
  default: return "unknown";
  }
}

// The `reason` of a lost event: how the lease was found lost.
std::string_view loss_word(lock::Lease::Status status) {
  switch (status) {
  case lock::Lease::Status::lost_free: return "free";
  case lock::Lease::Status::lost_taken: return "taken";
  default: return "expired";
  }
}

// The command to run: after '--', or `/bin/sh -c STRING`.
std::vector<std::string> job_argv(const ExecOptions& options, const std::vector<std::string>& command) {
  if (!options.shell_command.empty()) {
    if (!command.empty()) throw UsageError("give either -c STRING or a command after '--', not both");
    return {"/bin/sh", "-c", options.shell_command};
  }
  if (command.empty()) {
    throw UsageError(fmt::format("no command to run: rlock exec {} -- COMMAND [ARG...]", shell_quote(options.name)));
  }
  return command;
}

// The job's environment and process setup: the lock's name, token and fence in (the token
// and fence empty until lease_into_environment), every password out (rlock(1), ENVIRONMENT:
// nothing secret beyond the token).
process::SpawnOptions job_spawn_options(std::vector<std::string> argv, const std::string& name, const Session& session,
                                        const process::SignalBlock& block) {
  process::SpawnOptions spawn;
  spawn.argv = std::move(argv);
  spawn.set_env = {{"RLOCK_NAME", name},
                   {"RLOCK_TOKEN", ""},
                   {token_variable(name), ""},
                   {"RLOCK_FENCE", ""},
                   {fence_variable(name), ""}};
  spawn.unset_env = {"RLOCK_PASSWORD", "REDISCLI_AUTH"};
  // The job may run rlock itself (`rlock renew "$RLOCK_NAME"`), so it learns where this lock
  // lives: the URL rlock resolved (from --url, the environment or the default) without its
  // password, and the prefix.
  spawn.set_env.emplace_back("RLOCK_URL", session.config.job_url);
  spawn.set_env.emplace_back("RLOCK_PREFIX", session.config.prefix);
  // An audited lock's job audits what its own rlock does (a nested lock, a forced release).
  if (session.config.audit) spawn.set_env.emplace_back("RLOCK_AUDIT", "1");
  // A password from a file reaches the job as the file's name, which is no secret: the job
  // can log in as rlock did (it runs as the same user), and nothing else learns the password.
  if (!session.config.password_file.empty()) {
    std::error_code ignored;
    std::filesystem::path file = std::filesystem::absolute(session.config.password_file, ignored);
    spawn.set_env.emplace_back("RLOCK_PASSWORD_FILE", file.empty() ? session.config.password_file : file.string());
  }
  spawn.signal_mask = block.original_mask();
  spawn.default_signals = {SIGPIPE};
  // The job takes the terminal only when both its ends are on it: in `rlock exec x -- cmd |
  // less` the pager must keep it, so there the job runs in the background group instead.
  spawn.take_terminal = ::isatty(STDIN_FILENO) == 1 && ::isatty(STDOUT_FILENO) == 1;
  return spawn;
}

// The lease's token and fence into the prepared job's environment (job_spawn_options).
void lease_into_environment(process::PreparedSpawn& job, const std::string& name, const lock::Lease& lease) {
  const std::string fence = std::to_string(lease.fence());
  job.set_env("RLOCK_TOKEN", lease.token());
  job.set_env(token_variable(name), lease.token());
  job.set_env("RLOCK_FENCE", fence);
  job.set_env(fence_variable(name), fence);
}

// Releases after the job (or shortens to --min-hold) and tells `telemetry` (released, with
// `exit_status`, or lost). Returns 76 when the lease turns out to have been lost, else nothing;
// a Redis that cannot be reached is a warning, as the lease expires on its own.
std::optional<int> release_after_job(lock::Lease& lease, const std::string& name, lock::Millis min_hold,
                                     const process::ExitStatus& job, Telemetry& telemetry, int exit_status) {
  // The job ended while the lease was certainly ours: it ran under the lock throughout.
  const bool ended_within_lease = lock::steady_now() < lease.safety_deadline();
  try {
    // A release whose answer is lost is sent once more, reconnected (lock::release_token).
    lock::ReleaseResult released = lease.release(min_hold);
    if (released.outcome == lock::TokenCheck::free && ended_within_lease &&
        lock::steady_now() >= lease.confirmed_from() + lease.ttl()) {
      // The release got through only after the lease could have run out on its own (Redis
      // answered CLUSTERDOWN, TRYAGAIN… until then): a free lock says nothing against the job.
      log::warn("lock '{}' had expired by the time its release got through; the job ({}) ended within its lease",
                printable(name), job.describe());
      telemetry.released(exit_status);
      return std::nullopt;
    }
    if (released.outcome != lock::TokenCheck::ok) {
      log::error(fmt::format("lock '{}' was lost before the job ended: at release it was {}; the job ({}) "
                             "may have run without it",
                             printable(name),
                             released.outcome == lock::TokenCheck::free ? "free" : "held by another token",
                             job.describe()));
      telemetry.lost(released.outcome == lock::TokenCheck::free ? "free" : "taken", "found at release, after the job");
      return to_int(ExitCode::lost);
    }
    if (released.kept_for.count() > 0) {
      log::verbose("'{}' stays locked for {} more, to honour --min-hold {} (counted from the acquisition)",
                   printable(name), format_duration(released.kept_for), format_duration(min_hold));
    }
    telemetry.released(exit_status);
  } catch (const UnavailableError& error) {
    log::warn("could not release '{}': {}; it expires on its own within {}", printable(name), error.what(),
              format_duration(lease.ttl()));
    telemetry.released(exit_status, {}, error.what());
  }
  return std::nullopt;
}

// The adopted lease's token: --token, --token-file, or (--adopt) the environment's, as release
// finds it. Checked before anything is contacted.
std::string adopted_token(const ExecOptions& options) {
  if (!options.token.empty() && !options.token_file.empty()) throw UsageError("give either --token or --token-file");
  if (options.take.wait || options.take.no_wait) {
    throw UsageError("--wait and --no-wait are for taking the lock; adopting a lease (--token, --token-file, --adopt) "
                     "waits for nothing");
  }
  if (!options.token.empty()) return checked_token(options.token, "--token");
  if (!options.token_file.empty()) {
    return checked_token(read_token_file(options.token_file),
                         fmt::format("the token file {}", printable(options.token_file)));
  }
  if (auto from_environment = token_from_environment(options.name)) {
    return checked_token(*from_environment, fmt::format("${} or $RLOCK_TOKEN", token_variable(options.name)));
  }
  throw UsageError(fmt::format("--adopt: no token for '{}' in {} or RLOCK_TOKEN; pass --token or --token-file",
                               printable(options.name), token_variable(options.name)));
}

// Takes over the lease that `token` holds: renews it at once (which proves the token holds it)
// for --ttl, or, without --ttl, for the lease's own length as recorded when it was taken. A
// token that holds nothing is the lock-lost error: the job must not start.
lock::Lease adopt_lease(Session& session, const ExecOptions& options, const std::string& token) {
  lock::Millis ttl = options.take.ttl_ms(session.config.ttl);
  // A mutex: the one holder is this token's (the renewal below proves it).
  auto ours = [](const lock::LockInfo& lock) { return lock.held() ? lock.holders.front() : lock::HolderInfo{}; };
  if (!options.take.ttl) {
    lock::HolderInfo holder = ours(session.store.inspect(options.name));
    if (holder.has_metadata && lock::Millis(holder.ttl_ms) >= k_min_ttl) ttl = lock::Millis(holder.ttl_ms);
  }
  const lock::TimePoint sent = lock::steady_now();
  lock::TokenCheck outcome = session.store.renew(lock::RenewRequest{options.name, token, ttl, 0});
  if (outcome == lock::TokenCheck::unconfirmed) {
    throw UnavailableError(fmt::format("cannot adopt the lease of '{}': {}; the job was not started",
                                       printable(options.name), session.shortfall()));
  }
  lock::LockInfo lock = session.store.inspect(options.name);
  if (outcome != lock::TokenCheck::ok) {
    throw Error(ExitCode::lost, fmt::format("cannot adopt the lease of '{}': this token does not hold it; it is {} "
                                            "now; the job was not started",
                                            printable(options.name), describe_holder(lock)));
  }
  const std::int64_t fence = ours(lock).fence;
  log::verbose("adopted the lease of '{}' (fence {}, ttl {})", printable(options.name), fence, format_duration(ttl));
  return lock::Lease(session.store, options.name, token, fence, ttl, sent);
}

// After the job, an adopted lease that is kept gets a last renewal, so that it runs for a whole
// --ttl from the job's end, as it did from its acquire. Returns 76 when it turns out lost.
std::optional<int> keep_after_job(Session& session, lock::Lease& lease, const process::ExitStatus& job) {
  try {
    lock::TokenCheck outcome = session.store.renew(lock::RenewRequest{lease.name(), lease.token(), lease.ttl(), 0});
    if (outcome == lock::TokenCheck::unconfirmed) {
      log::warn("the last renewal of '{}' after the job was not confirmed: {}", printable(lease.name()),
                session.shortfall());
      return std::nullopt;
    }
    if (outcome != lock::TokenCheck::ok) {
      log::error(fmt::format("lock '{}' was lost before the job ended: after it, it was {}; the job ({}) may "
                             "have run without it",
                             printable(lease.name()),
                             outcome == lock::TokenCheck::free ? "free" : "held by another token", job.describe()));
      return to_int(ExitCode::lost);
    }
    log::verbose("'{}' stays held for {} (adopted lease; --release releases it)", printable(lease.name()),
                 format_duration(lease.ttl()));
  } catch (const UnavailableError& error) {
    log::warn("could not renew '{}' after the job: {}; the lease runs out within {}", printable(lease.name()),
              error.what(), format_duration(lease.ttl()));
  }
  return std::nullopt;
}

// exec once the session is set up: takes (or adopts) the lock, runs the job under it, releases.
Outcome exec_job(Session& session, Telemetry& telemetry, const ExecOptions& options,
                 const std::vector<std::string>& argv, const std::optional<std::string>& token,
                 process::SignalBlock& block, process::SignalFd& signals) {
  const StopPolicy& stop_policy = options.stop;
  require_replicas(session, options.take.replicas, options.take.ttl_ms(session.config.ttl));
  // Everything the job's start needs but the lease is made now, before any wait: once a
  // release hands the lock over, what lies between the wake and the job is the claim's send
  // and the spawn (docs/performance.md, Hand-off).
  process::PreparedSpawn job(job_spawn_options(argv, options.name, session, block));
  process::become_subreaper();
  std::optional<lock::Lease> adopted;
  Taken taken;
  if (token) {
    adopted.emplace(adopt_lease(session, options, *token));
    telemetry.acquired(adopted->fence(), adopted->ttl(), /*adopted=*/true);
  } else {
    // A lock handed over by a release comes with its claim still on the way: the job starts
    // meanwhile, and the supervisor's first renew_if_due() reads the answer (or stops the job).
    taken = take_lock(session, options.name, options.take, holder_meta(::getpid(), shell_join(argv)), signals,
                      /*supervised=*/true, /*start_on_handoff=*/true, {}, -1, &telemetry);
    if (!taken.lease) return {taken.exit_code};
  }
  lock::Lease& lease = token ? *adopted : *taken.lease;
  // An adopted lease that is to be kept is never released on the way out, not even when the
  // job cannot be started: it belongs to whoever took it.
  struct KeepAdopted {
    lock::Lease* lease;
    ~KeepAdopted() {
      if (lease != nullptr) lease->detach();
    }
  } keep_adopted{token && !options.release_after ? &lease : nullptr};

  // A failure to start leaves through the Lease's destructor, which releases the lock.
  lease_into_environment(job, options.name, lease);
  process::Child child = job.start();
  log::verbose("started pid {}: {}", child.pid(), redact_command_line(shell_join(argv)));

  const lock::TimePoint started = lease.confirmed_from();
  const std::optional<lock::TimePoint> hold_until =
      stop_policy.max_hold ? std::optional(started + *stop_policy.max_hold) : std::nullopt;
  process::SupervisorHooks hooks;
  hooks.on_deadline = [&]() -> process::DeadlineOrStop {
    if (hold_until && lock::steady_now() >= *hold_until) {
      return process::StopRequest{
          stop_policy.signal, stop_policy.grace, to_int(ExitCode::max_hold),
          fmt::format("the job ran longer than --max-hold {}", format_duration(*stop_policy.max_hold))};
    }
    const bool claiming = lease.claim_pending();
    const lock::TimePoint renewed_from = lease.confirmed_from();
    if (const lock::Lease::Status status = lease.renew_if_due(); status != lock::Lease::Status::held) {
      std::string reason = loss_reason(lease, session);
      telemetry.lost(loss_word(status), reason);
      return process::StopRequest{stop_policy.signal, stop_policy.grace, to_int(ExitCode::lost), std::move(reason)};
    }
    if (!claiming && lease.confirmed_from() != renewed_from) telemetry.renewed();
    return hold_until ? std::min(lease.next_due(), *hold_until) : lease.next_due();
  };
  process::SupervisorResult result = process::supervise(child, signals, hooks);

  if (result.stopped_by) {
    const auto& stop = *result.stopped_by;
    std::string how =
        fmt::format("stopped the job with SIG{}{}", process::signal_name(stop.signal),
                    result.killed ? fmt::format(", then SIGKILL after {}", format_duration(stop_policy.grace)) : "");
    if (stop.exit_code == to_int(ExitCode::lost)) {
      auto lost_after = std::chrono::duration_cast<lock::Millis>(lock::steady_now() - started);
      log::error(fmt::format("lost lock '{}' after {}: {}; {}", printable(options.name), format_duration(lost_after),
                             stop.reason, how));
      return {stop.exit_code};
    }
    log::error(fmt::format("{}; {}", stop.reason, how));
  }
  if (keep_adopted.lease != nullptr) {
    telemetry.ended();
    if (auto lost = keep_after_job(session, lease, result.job)) return {*lost};
  } else if (auto lost = release_after_job(lease, options.name, stop_policy.min_hold, result.job, telemetry,
                                           result.exit_code())) {
    return {*lost};
  }
  const bool died_of_terminal_signal =
      child.held_terminal() && result.job.signaled && (result.job.value == SIGINT || result.job.value == SIGQUIT);
  return {result.exit_code(), died_of_terminal_signal ? result.job.value : 0};
}

} // namespace

Outcome run_exec(const GlobalOptions& globals, const ExecOptions& options, const std::vector<std::string>& command) {
  lock::validate_name(options.name);
  std::vector<std::string> argv = job_argv(options, command);
  (void)options.take.wait_policy(); // checked before connecting
  const StopPolicy& stop_policy = options.stop;
  if (options.release_after && !options.adopting()) {
    throw UsageError("--release goes with --token, --token-file or --adopt (exec always releases a lock it took)");
  }
  if (options.adopting() && !options.release_after && stop_policy.min_hold.count() > 0) {
    throw UsageError("--min-hold shortens the release; an adopted lease is kept unless --release is given");
  }
  if ((options.take.limit || options.take.shared) && stop_policy.min_hold.count() > 0) {
    throw UsageError("--min-hold does not go with --limit or --shared: a permit is released when its job ends");
  }
  const std::optional<std::string> token = options.adopting() ? std::optional(adopted_token(options)) : std::nullopt;

  process::SignalBlock block;
  process::SignalFd signals(block.signals());
  Session session(globals);
  Telemetry telemetry(session.config, "exec", options.name);
  return telemetry.report([&] { return exec_job(session, telemetry, options, argv, token, block, signals); });
}

void add_exec_command(CLI::App& app, const GlobalOptions& globals, Action& action, ExecOptions& exec_options,
                      std::vector<std::string>& command_after_dashes) {
  ExecOptions* options = &exec_options;
  CLI::App* command = app.add_subcommand(
      "exec", "Run COMMAND while holding the lock: renew it while the command runs, release it when the "
              "command ends, stop the command if the lock is lost. Exits with the command's status. "
              "The command goes after '--': rlock exec NAME [options] -- COMMAND [ARG...]");
  command->add_option("NAME", options->name, "the lock's name")->required();
  options->take.add_to(*command);
  command->add_option("-c,--shell-command", options->shell_command, "run STRING with /bin/sh -c instead of a command")
      ->type_name("STRING");
  command
      ->add_option_function<std::string>(
          "--lost-signal",
          [options](const std::string& text) {
            options->stop.signal = process::parse_signal(require_value(text, "--lost-signal"), "--lost-signal");
          },
          "signal for the job's process group when the lock is lost or --max-hold runs out (default TERM)")
      ->type_name("SIG");
  add_duration_option(
      *command, "--grace", [options](lock::Millis value) { options->stop.grace = value; },
      "time between that signal and SIGKILL (default 10s)");
  add_duration_option(
      *command, "--max-hold", [options](lock::Millis value) { options->stop.max_hold = value; },
      "stop the job when it runs longer than DURATION; exit 124", lock::Millis(1));
  add_duration_option(
      *command, "--min-hold", [options](lock::Millis value) { options->stop.min_hold = value; },
      "keep the lock at least DURATION after acquiring it, even if the job ends sooner");
  command
      ->add_option("--token", options->token,
                   "adopt the lease this token holds (acquire --lease) instead of taking the lock: renew it while "
                   "the job runs, stop the job if it is lost, keep it held afterwards")
      ->type_name("TOKEN");
  command->add_option("--token-file", options->token_file, "adopt the lease whose token is in FILE, as --token")
      ->type_name("FILE");
  command->add_flag("--adopt", options->adopt,
                    "adopt the lease whose token is in $RLOCK_TOKEN_<NAME> or $RLOCK_TOKEN, as --token");
  command->add_flag("--release", options->release_after,
                    "with --token, --token-file or --adopt: release the lease when the job ends (default: keep it "
                    "held, renewed to --ttl)");
  command->callback([&action, &globals, options, &command_after_dashes] {
    action = [&globals, options, &command_after_dashes] { return run_exec(globals, *options, command_after_dashes); };
  });
}

} // namespace rlock::cli
