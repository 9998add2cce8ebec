// SPDX-License-Identifier: MIT
// `rlock acquire`: take a lock for a script, held by a keeper process or as a bare lease.
//
// Design. A script that runs `tok=$(rlock acquire x)` expects the lock to behave like an open
// flock(1) descriptor: held while the script lives, gone when it dies, whatever the TTL. So
// by default acquire leaves a keeper (process/keeper.hpp): a small daemon-like process (own
// session, stdio on /dev/null so that `$(…)` returns at once) that renews the lease, watches
// the owner through a pidfd, and releases the moment the owner exits. The keeper is the same process image
// forked after the lock is taken, so it keeps the lease object and the Redis connection.
// `release` signals it after releasing; a lost lease ends it too. With --lease there is no
// keeper: the lock lives for --ttl unless renewed, which suits CI steps in separate shells.
#include "cli/cli11.hpp"
#include "cli/commands.hpp"
#include "cli/token_file.hpp"
#include "lock/name.hpp"
#include "process/keeper.hpp"
#include "process/owner.hpp"
#include "process/signals.hpp"
#include "util/duration.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/redact.hpp"
#include "util/strings.hpp"

#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <limits>
#include <unistd.h>

namespace rlock::cli {

namespace {

// The keeper's lease when the owner's exit will kill the keeper too (process::owner_exit_ends_namespace):
// how long the lock can outlive a container whose init has exited.
constexpr lock::Millis k_contained_ttl{5000};

struct AcquireOptions {
  std::string name;
  TakeOptions take;
  bool lease_only = false;
  bool export_form = false;
  bool json = false;
  std::string token_file;
  std::int64_t owner_pid = 0;
  bool owner_pid_given = false; // --owner-pid 0 is a bad pid, not "not given"
};

std::string command_line_of(pid_t pid) { return shell_join(process::command_line_of(pid)); }

// Whether a stop signal is for this keeper: any signal from a user (kill(1)), and a releaser's
// SIGTERM only when its tag names this keeper's lock (see keeper_stop_tag).
bool stop_meant_for(const signalfd_siginfo& info, const lock::Lease& lease, const std::string& name) {
  if (info.ssi_code != SI_QUEUE) return true;
  return info.ssi_ptr == keeper_stop_tag("token", lease.token()) || info.ssi_ptr == keeper_stop_tag("name", name);
}

// The `reason` and `detail` of the keeper's lost event.
std::pair<std::string_view, std::string_view> keeper_loss(lock::Lease::Status status) {
  switch (status) {
  case lock::Lease::Status::lost_free: return {"free", "the renewal found it gone (expired, or force-released)"};
  case lock::Lease::Status::lost_taken: return {"taken", "the renewal found it held by another token"};
  default: return {"expired", "the lease's safety deadline passed before a renewal was confirmed"};
  }
}

// The keeper's life (process::keep): renew while the owner lives; release when it exits or
// on a stop meant for this lock (stop_meant_for). Tells `telemetry` of renewals and of the end.
int run_keeper(lock::Lease& lease, const std::string& name, const process::ProcessHandle& owner,
               process::SignalFd& signals, Telemetry& telemetry) {
  process::KeeperHooks hooks;
  hooks.on_deadline = [&lease, &telemetry]() -> std::optional<lock::TimePoint> {
    const lock::TimePoint renewed_from = lease.confirmed_from();
    if (lease.renew_if_due() != lock::Lease::Status::held) return std::nullopt;
    if (lease.confirmed_from() != renewed_from) telemetry.renewed();
    return lease.next_due();
  };
  hooks.is_stop = [&lease, &name](const signalfd_siginfo& info) { return stop_meant_for(info, lease, name); };
  const process::KeeperEnd end = process::keep(owner, signals, hooks);
  if (end == process::KeeperEnd::nothing_to_keep) {
    const auto [reason, detail] = keeper_loss(lease.status());
    telemetry.lost(reason, detail);
    return to_int(ExitCode::lost);
  }
  const std::string_view why = end == process::KeeperEnd::owner_exited ? "owner_exited" : "stopped";
  try {
    const lock::ReleaseResult released = lease.release();
    if (released.outcome == lock::TokenCheck::ok) {
      telemetry.released(std::nullopt, why);
    } else if (end == process::KeeperEnd::owner_exited) {
      telemetry.lost(released.outcome == lock::TokenCheck::free ? "free" : "taken",
                     "found at release, after the owner exited");
    } else {
      telemetry.ended(); // `rlock release` gave it back and said so; it stopped this keeper
    }
  } catch (const Error& error) {
    // The lease expires on its own within its TTL.
    telemetry.released(std::nullopt, why, error.what());
  }
  return 0;
}

// What --export prints for eval: the token in RLOCK_TOKEN and in the lock's own variable (so
// that a second acquire in the same script does not hide the first one's token from its
// release), the name, and the fence, likewise.
std::string export_lines(const std::string& name, const lock::Lease& lease) {
  std::string fence = std::to_string(lease.fence());
  return fmt::format("export RLOCK_TOKEN='{0}'\nexport {1}='{0}'\nexport RLOCK_NAME={2}\nexport RLOCK_FENCE={3}\n"
                     "export {4}={3}\n",
                     lease.token(), token_variable(name), shell_quote(name), fence, fence_variable(name));
}

// What --json prints: one line with what a program needs to use and later release the lock.
std::string json_line(const std::string& name, const lock::Lease& lease, pid_t keeper) {
  std::string out =
      fmt::format(R"({{"version":1,"name":"{}","token":"{}","fence":{},"ttl_ms":{},"token_variable":"{}")",
                  json_escape(name), lease.token(), lease.fence(), lease.ttl().count(), token_variable(name));
  if (keeper > 0) out += fmt::format(R"(,"keeper_pid":{})", keeper);
  return out + "}\n";
}

// acquire once the session is set up: takes the lock, forks the keeper, prints the token.
Outcome acquire_lock(Session& session, Telemetry& telemetry, const AcquireOptions& options,
                     std::optional<process::ProcessHandle>& owner, pid_t owner_pid, process::SignalFd& signals) {
  // A keeper that will be killed with its owner's namespace cannot release at the owner's
  // exit: keep its lease short, so that the lock outlives the container by seconds, not a TTL.
  TakeOptions take = options.take;
  if (const lock::Millis ttl = take.ttl_ms(session.config.ttl);
      !options.lease_only && process::owner_exit_ends_namespace(owner_pid) && ttl > k_contained_ttl) {
    take.ttl = k_contained_ttl;
    log::verbose("pid {} is this pid namespace's init or its child: the keeper dies with it, so it renews a {} "
                 "lease instead of --ttl {}",
                 owner_pid, format_duration(k_contained_ttl), format_duration(ttl));
  }
  require_replicas(session, take.replicas, take.ttl_ms(session.config.ttl));
  std::int64_t meta_pid = options.lease_only ? ::getppid() : owner_pid;
  // Nobody is left to hold the lock for once the owner is gone: stop waiting then.
  std::function<bool()> still_wanted;
  if (owner) still_wanted = [&owner] { return owner->alive(); };
  Taken taken = take_lock(session, options.name, take,
                          holder_meta(meta_pid, command_line_of(static_cast<pid_t>(meta_pid))), signals,
                          /*supervised=*/!options.lease_only, /*start_on_handoff=*/false, still_wanted,
                          owner ? owner->exit_fd() : -1, &telemetry);
  if (!taken.lease) return {taken.exit_code};
  lock::Lease& lease = *taken.lease;

  if (!options.token_file.empty()) write_token_file(options.token_file, lease.token(), lease.fence());

  pid_t keeper = 0;
  if (!options.lease_only) {
    // This run's metrics now, before the keeper could write its own at its end.
    telemetry.finish(0);
    keeper = ::fork();
    if (keeper < 0) throw SystemError("fork (keeper)", errno);
    if (keeper == 0) {
      process::become_keeper();
      telemetry.become_keeper();
      // The parent still talks on the inherited socket; the keeper opens its own.
      session.disconnect();
      return {run_keeper(lease, options.name, *owner, signals, telemetry)};
    }
    // Record the keeper so that `release` can stop it at once. Best effort: the keeper holds
    // the lock now, so the token must reach the caller whatever happens here; an unrecorded
    // keeper still ends at its next renewal after a release.
    try {
      lease.record_keeper(keeper);
    } catch (const Error& error) {
      log::warn("could not record the keeper (pid {}): {}", keeper, error.what());
    }
    log::verbose("keeper pid {} holds '{}' for pid {}", keeper, printable(options.name), owner_pid);
  }
  std::string line = options.export_form ? export_lines(options.name, lease)
                     : options.json      ? json_line(options.name, lease, keeper)
                                         : lease.token() + "\n";
  if (::write(STDOUT_FILENO, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    int err = errno;
    // A token file delivered it already; a stdout closed on purpose (`>&-`) is then fine.
    if (!options.token_file.empty() && err == EBADF) {
      // nothing to say
    } else if (!options.token_file.empty()) {
      log::warn("could not print the token ({}); it is in {}", std::strerror(err), printable(options.token_file));
    } else {
      // Nobody got the token: give the lock back (the lease's destructor releases it as this
      // error unwinds) rather than leave it held by no one's script, and end the keeper, our
      // own child, not yet reaped: its pid cannot name another process.
      if (keeper > 0) ::kill(keeper, SIGTERM);
      throw Error(ExitCode::os_error,
                  fmt::format("cannot print the token to stdout ({}), so the lock was released; keep stdout "
                              "open, or give --token-file FILE",
                              err == EBADF ? "it is closed" : std::strerror(err)));
    }
  }
  lease.detach();
  return {};
}

Outcome run_acquire(const GlobalOptions& globals, const AcquireOptions& options) {
  lock::validate_name(options.name);
  if (options.export_form && options.json) throw UsageError("--export and --json contradict each other; give one");
  if (options.lease_only && options.owner_pid_given) {
    throw UsageError("--owner-pid goes with the keeper; --lease has none");
  }
  // The owner is pinned now (ProcessHandle), before any wait: its pid may name another process
  // by the time the lock is ours.
  std::optional<process::ProcessHandle> owner;
  pid_t owner_pid = 0;
  if (!options.lease_only) {
    if (options.owner_pid_given && (options.owner_pid <= 0 || options.owner_pid > std::numeric_limits<pid_t>::max())) {
      throw UsageError(fmt::format("--owner-pid {} is not a process id", options.owner_pid));
    }
    if (!options.owner_pid_given && !process::proc_shows_own_pid_namespace()) {
      throw Error(ExitCode::os_error, "cannot find the calling script: /proc belongs to another pid namespace than "
                                      "rlock's (give the container a /proc of its own, as unshare --mount-proc "
                                      "does, or use --lease)");
    }
    owner_pid =
        options.owner_pid_given ? static_cast<pid_t>(options.owner_pid) : process::find_script_owner(::getppid());
    owner = process::ProcessHandle::open(owner_pid);
    if (!owner) throw UsageError(fmt::format("--owner-pid {}: no such process", owner_pid));
    // An owner found by walking up from our parent started before us, or its pid was reused.
    auto own_start = process::start_time_of(::getpid());
    if (!options.owner_pid_given && own_start && owner->start_time() > *own_start) {
      throw UsageError(fmt::format("the calling process (pid {}) has exited; use --owner-pid PID", owner_pid));
    }
    log::verbose("the lock will be held while pid {} lives ({})", owner_pid,
                 redact_command_line(command_line_of(owner_pid)));
  }
  process::SignalBlock block;
  process::SignalFd signals(block.signals());
  Session session(globals);
  Telemetry telemetry(session.config, "acquire", options.name);
  return telemetry.report([&] { return acquire_lock(session, telemetry, options, owner, owner_pid, signals); });
}

} // namespace

void add_acquire_command(CLI::App& app, const GlobalOptions& globals, Action& action) {
  auto options = std::make_shared<AcquireOptions>();
  CLI::App* command = app.add_subcommand(
      "acquire", "Take a lock and print its token. By default a keeper process holds it while the calling "
                 "script lives; with --lease it lives for --ttl unless renewed.");
  command->add_option("NAME", options->name, "the lock's name")->required();
  options->take.add_to(*command);
  command->add_flag("--lease", options->lease_only,
                    "no keeper: the lock lives for --ttl unless renewed (for acquiring in one CI step and "
                    "releasing in another)");
  command->add_flag("--export", options->export_form,
                    "print export lines (RLOCK_TOKEN, RLOCK_TOKEN_<NAME>, RLOCK_NAME, RLOCK_FENCE, "
                    "RLOCK_FENCE_<NAME>) for eval \"$(rlock acquire NAME --export)\"");
  command->add_flag("--json", options->json,
                    "print one JSON line instead of the token: name, token, fence, ttl_ms, token_variable, "
                    "keeper_pid");
  command
      ->add_option("--token-file", options->token_file,
                   "also write the token to FILE and the fence to FILE.fence (mode 0600)")
      ->type_name("FILE");
  CLI::Option* owner_pid = command
                               ->add_option("--owner-pid", options->owner_pid,
                                            "hold the lock while process PID lives (default: the calling script)")
                               ->type_name("PID");
  command->callback([&action, &globals, options, owner_pid] {
    options->owner_pid_given = owner_pid->count() > 0;
    action = [&globals, options] { return run_acquire(globals, *options); };
  });
}

} // namespace rlock::cli
