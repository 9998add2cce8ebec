// SPDX-License-Identifier: MIT
// `rlock wait`: wait until a lock is free, without taking it or joining its waiting line.
#include "cli/cli11.hpp"
#include "cli/commands.hpp"
#include "lock/name.hpp"
#include "process/signals.hpp"
#include "util/duration.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

#include <fmt/format.h>

namespace rlock::cli {

namespace {

struct WaitOptions {
  std::string name;
  std::optional<lock::Millis> wait; // none: forever
  int conflict_exit_code = 75;
};

Outcome run_wait(const GlobalOptions& globals, const WaitOptions& options) {
  lock::validate_name(options.name);
  process::SignalBlock block;
  process::SignalFd signals(block.signals());
  Session session(globals);
  lock::WaitPolicy policy;
  policy.max_wait = options.wait;
  policy.outage_patience = lock::Millis(30'000);
  policy.interrupt_fd = signals.fd();
  lock::LockInfo last_holder;
  bool said_waiting = false;
  bool free = false;
  try {
    free = lock::wait_until_free(session.store, options.name, policy, [&](const lock::LockInfo& holder, lock::Millis) {
      last_holder = holder;
      if (!said_waiting)
        log::verbose("waiting for '{}' to be free: {}", printable(options.name), describe_holder(holder));
      said_waiting = true;
    });
  } catch (const Interrupted& interrupted) {
    int signo = interrupted.signal_number();
    if (signo <= 0) {
      std::optional<signalfd_siginfo> pending = signals.read();
      signo = pending ? static_cast<int>(pending->ssi_signo) : SIGINT;
    }
    log::info("interrupted while waiting for '{}' to be free", printable(options.name));
    return {128 + signo};
  }
  if (free) {
    log::verbose("'{}' is free", printable(options.name));
    return {};
  }
  if (options.wait && options.wait->count() > 0) {
    log::info("lock '{}' is still held after waiting {}: {}", printable(options.name), format_duration(*options.wait),
              describe_holder(last_holder));
  } else {
    log::info("lock '{}' is held: {}", printable(options.name), describe_holder(last_holder));
  }
  return {options.conflict_exit_code};
}

} // namespace

void add_wait_command(CLI::App& app, const GlobalOptions& globals, Action& action) {
  auto options = std::make_shared<WaitOptions>();
  CLI::App* command = app.add_subcommand("wait", "Wait until NAME is free (exit 0), without taking it or joining "
                                                 "its waiting line; 75 when --wait runs out.");
  command->add_option("NAME", options->name, "the lock's name")->required();
  add_duration_option(
      *command, "-w,--wait", [options](lock::Millis value) { options->wait = value; },
      "wait at most DURATION (default: forever; 0 = look once)");
  command
      ->add_option("-E,--conflict-exit-code", options->conflict_exit_code,
                   "exit status when the lock is still held when the wait runs out (default 75)")
      ->type_name("N")
      ->check(CLI::Range(0, 255));
  command->callback(
      [&action, &globals, options] { action = [&globals, options] { return run_wait(globals, *options); }; });
}

} // namespace rlock::cli
