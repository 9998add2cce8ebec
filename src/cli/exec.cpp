// SPDX-License-Identifier: MIT
// `rlock exec`: run a command while holding the lock, and stop it before the lock could go.
#include "cli/commands.hpp"
#include "lock/name.hpp"
#include "process/child.hpp"
#include "process/signals.hpp"
#include "process/supervisor.hpp"
#include "util/duration.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

#include <cstdlib>
#include <fmt/format.h>
#include <unistd.h>

namespace rlock::cli {

namespace {

struct ExecOptions {
  std::string name;
  TakeOptions take;
  std::string shell_command;
  std::string lost_signal = "TERM";
  std::string grace = "10s";
  std::string max_hold;
  std::string min_hold;
};

std::string loss_reason(const lock::Lease& lease) {
  switch (lease.status()) {
  case lock::Lease::Status::lost_free: return "the renewal found it gone (expired, or force-released)";
  case lock::Lease::Status::lost_taken: return "the renewal found it held by another token";
  case lock::Lease::Status::expired:
    if (lease.last_error().empty()) {
      return "the lease's safety deadline passed before rlock could renew it (was rlock stopped or starved?)";
    }
    return fmt::format("Redis stayed unreachable until the lease's safety deadline ({})", lease.last_error());
  default: return "unknown";
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

// How and when the job is stopped, parsed (and so validated) before anything is contacted.
struct StopPolicy {
  int signal = SIGTERM;
  lock::Millis grace{0};
  std::optional<lock::Millis> max_hold;
  lock::Millis min_hold{0};
};

StopPolicy parse_stop_policy(const ExecOptions& options) {
  StopPolicy policy;
  policy.signal = process::parse_signal(options.lost_signal, "--lost-signal");
  policy.grace = parse_duration(options.grace, "--grace");
  if (!options.max_hold.empty()) {
    policy.max_hold = parse_duration(options.max_hold, "--max-hold");
    if (policy.max_hold->count() == 0) throw UsageError("--max-hold must be greater than zero");
  }
  if (!options.min_hold.empty()) policy.min_hold = parse_duration(options.min_hold, "--min-hold");
  return policy;
}

// The job's environment and process setup: the lock's name, token and fence in, every
// password out (SPEC: nothing secret beyond the token).
process::SpawnOptions job_spawn_options(std::vector<std::string> argv, const std::string& name,
                                        const lock::Lease& lease, const Session& session,
                                        const process::SignalBlock& block) {
  process::SpawnOptions spawn;
  spawn.argv = std::move(argv);
  spawn.set_env = {
      {"RLOCK_NAME", name}, {"RLOCK_TOKEN", lease.token()}, {"RLOCK_FENCE", std::to_string(lease.fence())}};
  spawn.unset_env = {"RLOCK_PASSWORD", "REDISCLI_AUTH"};
  // The job may run rlock itself, so it keeps the URL, but not a password written in it.
  if (const char* url = std::getenv("RLOCK_URL"); url != nullptr && session.config.connect.endpoint.password) {
    try {
      redis::Endpoint endpoint = redis::parse_url(url);
      if (endpoint.password) {
        endpoint.password.reset();
        spawn.set_env.emplace_back("RLOCK_URL", endpoint.url());
      }
    } catch (const Error&) {
      spawn.unset_env.emplace_back("RLOCK_URL");
    }
  }
  spawn.signal_mask = block.original_mask();
  spawn.default_signals = {SIGPIPE};
  // The job takes the terminal only when both its ends are on it: in `rlock exec x -- cmd |
  // less` the pager must keep it, so there the job runs in the background group instead.
  spawn.take_terminal = ::isatty(STDIN_FILENO) == 1 && ::isatty(STDOUT_FILENO) == 1;
  return spawn;
}

// Releases after the job (or shortens to --min-hold). Returns 76 when the lease turns out to
// have been lost, else nothing; a Redis that cannot be reached is a warning, as the lease
// expires on its own.
std::optional<int> release_after_job(lock::Lease& lease, const std::string& name, lock::Millis min_hold,
                                     const process::ExitStatus& job) {
  try {
    // A release whose answer is lost is sent once more, reconnected (lock::release_token).
    lock::ReleaseResult released = lease.release(min_hold);
    if (released.outcome != lock::TokenCheck::ok) {
      log::write_line("rlock: error: ",
                      fmt::format("lock '{}' was lost before the job ended: at release it was {}; the job ({}) "
                                  "may have run without it",
                                  printable(name),
                                  released.outcome == lock::TokenCheck::free ? "free" : "held by another token",
                                  job.describe()));
      return to_int(ExitCode::lost);
    }
    if (released.kept_for.count() > 0) {
      log::verbose("'{}' stays locked for {} more (--min-hold)", printable(name), format_duration(released.kept_for));
    }
  } catch (const UnavailableError& error) {
    log::warn("could not release '{}': {}; it expires on its own within {}", printable(name), error.what(),
              format_duration(lease.ttl()));
  }
  return std::nullopt;
}

int run_exec(const GlobalOptions& globals, const ExecOptions& options, const std::vector<std::string>& command) {
  lock::validate_name(options.name);
  std::vector<std::string> argv = job_argv(options, command);
  (void)options.take.ttl_ms();      // validate before connecting
  (void)options.take.wait_policy(); // likewise
  const StopPolicy stop_policy = parse_stop_policy(options);

  process::SignalBlock block;
  process::SignalFd signals(block.signals());
  Session session(globals);
  // A lock handed over by a release comes with its claim still on the way: the job starts
  // meanwhile, and the supervisor's first renew_if_due() reads the answer (or stops the job).
  Taken taken = take_lock(session, options.name, options.take, holder_meta(::getpid(), shell_join(argv)), signals,
                          /*start_on_handoff=*/true);
  if (!taken.lease) return taken.exit_code;
  lock::Lease& lease = *taken.lease;

  process::become_subreaper();
  // A failure to start leaves through the Lease's destructor, which releases the lock.
  process::Child child = process::spawn(job_spawn_options(argv, options.name, lease, session, block));
  log::verbose("started pid {}: {}", child.pid(), shell_join(argv));

  const lock::TimePoint started = lease.confirmed_from();
  const std::optional<lock::TimePoint> hold_until =
      stop_policy.max_hold ? std::optional(started + *stop_policy.max_hold) : std::nullopt;
  process::SupervisorHooks hooks;
  hooks.on_deadline = [&]() -> process::DeadlineOrStop {
    if (hold_until && lock::steady_now() >= *hold_until) {
      return process::StopRequest{stop_policy.signal, stop_policy.grace, to_int(ExitCode::max_hold),
                                  fmt::format("the job ran longer than --max-hold {}", options.max_hold)};
    }
    if (lease.renew_if_due() != lock::Lease::Status::held) {
      return process::StopRequest{stop_policy.signal, stop_policy.grace, to_int(ExitCode::lost), loss_reason(lease)};
    }
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
      log::write_line("rlock: error: ", fmt::format("lost lock '{}' after {}: {}; {}", printable(options.name),
                                                    format_duration(lost_after), stop.reason, how));
      return stop.exit_code;
    }
    log::write_line("rlock: error: ", fmt::format("{}; {}", stop.reason, how));
  }
  if (auto lost = release_after_job(lease, options.name, stop_policy.min_hold, result.job)) return *lost;
  if (child.held_terminal() && result.job.signaled && (result.job.value == SIGINT || result.job.value == SIGQUIT)) {
    g_die_of_signal = result.job.value;
  }
  return result.exit_code();
}

} // namespace

void add_exec_command(CLI::App& app, const GlobalOptions& globals, Action& action,
                      std::vector<std::string>& command_after_dashes) {
  auto options = std::make_shared<ExecOptions>();
  CLI::App* command = app.add_subcommand(
      "exec", "Run COMMAND while holding the lock: renew it while the command runs, release it when the "
              "command ends, stop the command if the lock is lost. Exits with the command's status. "
              "The command goes after '--': rlock exec NAME [options] -- COMMAND [ARG...]");
  command->add_option("NAME", options->name, "the lock's name")->required();
  options->take.add_to(*command);
  command->add_option("-c,--shell-command", options->shell_command, "run STRING with /bin/sh -c instead of a command")
      ->type_name("STRING");
  command
      ->add_option("--lost-signal", options->lost_signal,
                   "signal for the job's process group when the lock is lost or --max-hold runs out (default TERM)")
      ->type_name("SIG");
  command->add_option("--grace", options->grace, "time between that signal and SIGKILL (default 10s)")
      ->type_name("DURATION");
  command->add_option("--max-hold", options->max_hold, "stop the job when it runs longer than DURATION; exit 124")
      ->type_name("DURATION");
  command
      ->add_option("--min-hold", options->min_hold,
                   "keep the lock at least DURATION after acquiring it, even if the job ends sooner")
      ->type_name("DURATION");
  command->callback([&action, &globals, options, &command_after_dashes] {
    action = [&globals, options, &command_after_dashes] { return run_exec(globals, *options, command_after_dashes); };
  });
}

} // namespace rlock::cli
