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

int run_exec(const GlobalOptions& globals, const ExecOptions& options, const std::vector<std::string>& command) {
  lock::validate_name(options.name);
  std::vector<std::string> argv;
  if (!options.shell_command.empty()) {
    if (!command.empty()) throw UsageError("give either -c STRING or a command after '--', not both");
    argv = {"/bin/sh", "-c", options.shell_command};
  } else {
    if (command.empty()) {
      throw UsageError(fmt::format("no command to run: rlock exec {} -- COMMAND [ARG...]", shell_quote(options.name)));
    }
    argv = command;
  }
  const lock::Millis ttl = options.take.ttl_ms();
  (void)options.take.wait_policy(); // validate before connecting
  const int lost_signal = process::parse_signal(options.lost_signal, "--lost-signal");
  const lock::Millis grace = parse_duration(options.grace, "--grace");
  std::optional<lock::Millis> max_hold;
  if (!options.max_hold.empty()) {
    max_hold = parse_duration(options.max_hold, "--max-hold");
    if (max_hold->count() == 0) throw UsageError("--max-hold must be greater than zero");
  }
  lock::Millis min_hold{0};
  if (!options.min_hold.empty()) min_hold = parse_duration(options.min_hold, "--min-hold");
  (void)ttl;

  process::SignalBlock block;
  process::SignalFd signals(block.signals());
  Session session(globals);
  std::optional<lock::Lease> lease;
  try {
    lease = take_lock(session, options.name, options.take, holder_meta(::getpid(), shell_join(argv)), signals.fd());
  } catch (const Interrupted&) {
    auto info = signals.read();
    int signo = info ? static_cast<int>(info->ssi_signo) : SIGINT;
    log::info("interrupted while waiting for '{}'", printable(options.name));
    return 128 + signo;
  }
  if (!lease) return options.take.conflict_exit_code;

  process::SpawnOptions spawn_options;
  spawn_options.argv = argv;
  spawn_options.set_env = {
      {"RLOCK_NAME", options.name}, {"RLOCK_TOKEN", lease->token()}, {"RLOCK_FENCE", std::to_string(lease->fence())}};
  spawn_options.unset_env = {"RLOCK_PASSWORD", "REDISCLI_AUTH"};
  // The job may run rlock itself, so it keeps the URL, but not a password written in it.
  if (const char* url = std::getenv("RLOCK_URL"); url != nullptr && session.config.connect.endpoint.password) {
    try {
      redis::Endpoint endpoint = redis::parse_url(url);
      if (endpoint.password) {
        endpoint.password.reset();
        spawn_options.set_env.emplace_back("RLOCK_URL", endpoint.url());
      }
    } catch (const Error&) {
      spawn_options.unset_env.emplace_back("RLOCK_URL");
    }
  }
  spawn_options.signal_mask = block.original_mask();
  spawn_options.default_signals = {SIGPIPE};
  // The job takes the terminal only when both its ends are on it: in `rlock exec x -- cmd |
  // less` the pager must keep it, so there the job runs in the background group instead.
  spawn_options.take_terminal = ::isatty(STDIN_FILENO) == 1 && ::isatty(STDOUT_FILENO) == 1;
  // A failure to start leaves through the Lease's destructor, which releases the lock.
  process::become_subreaper();
  process::Child child = process::spawn(spawn_options);
  log::verbose("started pid {}: {}", child.pid(), shell_join(argv));

  const lock::TimePoint started = lease->confirmed_from();
  process::SupervisorHooks hooks;
  hooks.on_deadline = [&]() -> process::DeadlineOrStop {
    lock::TimePoint now = lock::steady_now();
    if (max_hold && now >= started + *max_hold) {
      return process::StopRequest{lost_signal, grace, to_int(ExitCode::max_hold),
                                  fmt::format("the job ran longer than --max-hold {}", options.max_hold)};
    }
    if (lease->renew_if_due() != lock::Lease::Status::held) {
      return process::StopRequest{lost_signal, grace, to_int(ExitCode::lost), loss_reason(*lease)};
    }
    lock::TimePoint next = lease->next_due();
    if (max_hold) next = std::min(next, started + *max_hold);
    return next;
  };
  process::SupervisorResult result = process::supervise(child, signals, hooks);

  if (result.stopped_by) {
    const auto& stop = *result.stopped_by;
    std::string how = fmt::format("stopped the job with SIG{}{}", process::signal_name(stop.signal),
                                  result.killed ? fmt::format(", then SIGKILL after {}", format_duration(grace)) : "");
    if (stop.exit_code == to_int(ExitCode::lost)) {
      auto lost_after = std::chrono::duration_cast<lock::Millis>(lock::steady_now() - started);
      log::write_line("rlock: error: ", fmt::format("lost lock '{}' after {}: {}; {}", printable(options.name),
                                                    format_duration(lost_after), stop.reason, how));
      return stop.exit_code;
    }
    log::write_line("rlock: error: ", fmt::format("{}; {}", stop.reason, how));
  }

  try {
    lock::ReleaseResult released;
    try {
      released = lease->release(min_hold);
    } catch (const UnavailableError& error) {
      // One blip must not leave the lock idle for a whole TTL: try once more, reconnected.
      log::verbose("release failed ({}); retrying once", error.what());
      released = lease->release(min_hold);
      if (released.outcome != lock::TokenCheck::ok) {
        // The first attempt may have gone through with only its reply lost (and the lock may
        // have been handed on since): not a sign that the job ran without the lock.
        log::verbose("the retried release found the lock already released");
        released.outcome = lock::TokenCheck::ok;
      }
    }
    if (released.outcome != lock::TokenCheck::ok) {
      log::write_line("rlock: error: ",
                      fmt::format("lock '{}' was lost before the job ended: at release it was {}; the job ({}) "
                                  "may have run without it",
                                  printable(options.name),
                                  released.outcome == lock::TokenCheck::free ? "free" : "held by another token",
                                  result.job.describe()));
      return to_int(ExitCode::lost);
    }
    if (released.kept_for.count() > 0) {
      log::verbose("'{}' stays locked for {} more (--min-hold)", printable(options.name),
                   format_duration(released.kept_for));
    }
  } catch (const UnavailableError& error) {
    log::warn("could not release '{}': {}; it expires on its own within {}", printable(options.name), error.what(),
              format_duration(lease->ttl()));
  }
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
