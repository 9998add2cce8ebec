// SPDX-License-Identifier: MIT
// What the commands share: lock options, the Redis session, holder descriptions, waiting UX.
#include "cli/commands.hpp"

#include "lock/name.hpp"
#include "process/keeper.hpp"
#include "process/owner.hpp"
#include "util/duration.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/log.hpp"
#include "util/random.hpp"
#include "util/redact.hpp"
#include "util/strings.hpp"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <ctime>
#include <fmt/format.h>
#include <limits>
#include <optional>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

namespace rlock::cli {

Session::Session(const GlobalOptions& options)
    : config(resolve_config(options)), topology(config.quorum.empty() ? redis::make_topology(config.connect) : nullptr),
      single(topology ? std::make_unique<redis::RedisLockStore>(*topology, config.prefix) : nullptr),
      quorum(config.quorum.empty()
                 ? nullptr
                 : std::make_unique<redis::QuorumLockStore>(
                       config.quorum, config.prefix, config.node_timeout.value_or(node_timeout_for(config.ttl)))),
      store(single ? static_cast<lock::LockStore&>(*single) : static_cast<lock::LockStore&>(*quorum)) {
  if (quorum) {
    log::verbose("quorum of {} nodes (a majority is {}): {}", quorum->size(), quorum->quorum(), config.shown_url);
  }
  // Who this process is, for the audit entry of a lock it breaks (release --force).
  const std::string actor = fmt::format("{}@{}:{}", process::user_name(), process::host_name(), ::getpid());
  if (single) single->set_audit(config.audit, actor);
  if (quorum) quorum->set_audit(config.audit, actor);
}

std::string Session::shortfall() const { return single ? single->shortfall() : std::string(); }

void Session::disconnect() noexcept {
  if (topology) topology->disconnect();
  if (quorum) quorum->disconnect();
}

void require_replicas(Session& session, const ReplicaOptions& options, lock::Millis ttl, bool renews) {
  const std::int64_t count = options.count.value_or(session.config.min_replicas);
  if (count == 0) return;
  const lock::Millis timeout = options.timeout.value_or(
      session.config.min_replicas_timeout.value_or(std::clamp(ttl / 10, lock::Millis(1), lock::Millis(1000))));
  if (renews && timeout >= ttl) {
    throw UsageError(fmt::format("--min-replicas-timeout {} is not shorter than the lease ({}): no renewal could "
                                 "be confirmed in time",
                                 format_duration(timeout), format_duration(ttl)));
  }
  if (session.quorum) {
    throw ConfigError("--min-replicas does not apply to a quorum of independent masters: each node is its own "
                      "master, and a majority of them is what keeps the lock");
  }
  session.single->require_replicas(count, timeout);
  log::verbose("each write of the lock waits up to {} for {} replica{} to acknowledge it", format_duration(timeout),
               count, count == 1 ? "" : "s");
}

lock::HolderMeta holder_meta(std::int64_t pid, const std::string& command) {
  lock::HolderMeta meta;
  meta.host = process::host_name();
  meta.pid = pid;
  meta.user = process::user_name(); // for people reading `status`
  // Recorded for anyone who can run `status` to read: never with a secret in it.
  meta.command = redact_command_line(command);
  return meta;
}

std::string utc_time(std::int64_t unix_ms) {
  std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm parts{};
  ::gmtime_r(&seconds, &parts);
  char buffer[32];
  if (std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%S", &parts) == 0) return std::to_string(unix_ms);
  return fmt::format("{}.{:03}Z", buffer, unix_ms % 1000);
}

std::string or_unknown(std::string_view text) { return text.empty() ? "?" : printable(text); }
std::string or_unknown(std::int64_t value) { return value == 0 ? "?" : std::to_string(value); }

namespace {

// One holder of a lock, as describe_holder shows it; `server_now_ms` is when it was read.
std::string describe_one(const lock::HolderInfo& holder, std::int64_t server_now_ms) {
  if (!holder.has_metadata) {
    if (holder.remaining_ms < 0) return "held by another client (no rlock metadata, no expiry)";
    return fmt::format("held by another client (no rlock metadata), expires in {}",
                       format_duration(lock::Millis(holder.remaining_ms)));
  }
  std::string who = fmt::format("held by {}@{} pid {}", or_unknown(holder.meta.user), or_unknown(holder.meta.host),
                                or_unknown(holder.meta.pid));
  if (!holder.meta.command.empty()) {
    std::string command = printable(redact_command_line(holder.meta.command));
    if (command.size() > 60) command = command.substr(0, 57) + "...";
    who += fmt::format(" ({})", command);
  }
  if (holder.acquired_at_ms > 0 && server_now_ms >= holder.acquired_at_ms) {
    who += fmt::format(" for {}", format_duration(lock::Millis(server_now_ms - holder.acquired_at_ms)));
  }
  return who;
}

} // namespace

std::string describe_holder(const lock::LockInfo& lock) {
  if (!lock.held()) return "free";
  if (lock.kind == lock::LockKind::mutex && lock.handoff) return "being handed to the next waiter";
  std::string out;
  for (const lock::HolderInfo& holder : lock.holders) {
    out += (out.empty() ? "" : "; ") + (holder.reserved ? std::string("a permit being handed to a waiter")
                                                        : describe_one(holder, lock.server_now_ms));
  }
  if (lock.kind == lock::LockKind::semaphore) {
    return fmt::format("{}/{} held: {}", lock.holders.size(), lock.limit, out);
  }
  if (lock.kind == lock::LockKind::shared) {
    return fmt::format("{} reader{}: {}", lock.holders.size(), lock.holders.size() == 1 ? "" : "s", out);
  }
  return out;
}

namespace {

// The waiting line on a terminal: rewritten in place, cleared when done.
class WaitingDisplay {
 public:
  WaitingDisplay(std::string name, bool live) : m_name(std::move(name)), m_live(live) {}
  WaitingDisplay(const WaitingDisplay&) = delete;
  WaitingDisplay& operator=(const WaitingDisplay&) = delete;
  ~WaitingDisplay() { clear(); }

  void update(const lock::LockInfo& lock, lock::Millis waited) {
    std::string about = describe_holder(lock);
    if (lock.waiters > 1) about += fmt::format(", {} waiting", lock.waiters);
    if (m_live) {
      std::string line = fmt::format("\r\033[Krlock: waiting for '{}': {}; waited {}", printable(m_name), about,
                                     format_duration(waited));
      ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
      (void)ignored;
      m_shown = true;
    } else if (about != m_last) {
      log::verbose("waiting for '{}': {}", printable(m_name), about);
    }
    m_last = std::move(about);
  }

  void clear() noexcept {
    if (!m_shown) return;
    static constexpr char k_clear[] = "\r\033[K";
    ssize_t ignored = ::write(STDERR_FILENO, k_clear, sizeof k_clear - 1);
    (void)ignored;
    m_shown = false;
  }

 private:
  std::string m_name;
  bool m_live;
  bool m_shown = false;
  std::string m_last;
};

} // namespace

namespace {

// Thrown out of the wait when it could never end: the holder is rlock in an ancestor process.
struct WaitingForItself {
  std::string reason;
};

// Why waiting for `lock` would never end, or "": a holder of it is a process this one runs
// under — `rlock exec x` (or a keeper's owner) running, directly or not, `rlock exec x` again.
std::string waits_for_itself(const lock::LockInfo& lock) {
  for (const lock::HolderInfo& holder : lock.holders) {
    if (!holder.has_metadata || holder.meta.host != process::host_name()) continue;
    if (holder.meta.pid <= 1 || holder.meta.pid > std::numeric_limits<pid_t>::max()) continue;
    auto pid = static_cast<pid_t>(holder.meta.pid);
    // A keeper holds for its owner while it lives; an exec holds while its job runs. A bare
    // lease (acquire --lease) ends with its TTL, so waiting for it does end.
    if (!process::is_ancestor(pid) || (holder.keeper_pid <= 0 && !process::runs_this_program(pid))) continue;
    const char* token = std::getenv("RLOCK_TOKEN");
    return fmt::format(
        "it is held by pid {}, which this process runs under{}: waiting for it would never end "
        "(run the command directly, or use another lock name)",
        pid, token != nullptr && *token != '\0' ? " (RLOCK_TOKEN is set: rlock exec inside rlock exec?)" : "");
  }
  return {};
}

} // namespace

Taken take_lock(Session& session, const std::string& name, const TakeOptions& options, lock::HolderMeta meta,
                process::SignalFd& signals, bool supervised, bool start_on_handoff,
                const std::function<bool()>& still_wanted, int wanted_until_fd, Telemetry* telemetry) {
  if (session.quorum && (options.limit || options.shared)) {
    throw UsageError(fmt::format("{} is not supported in quorum mode (several --url): a quorum holds mutexes only",
                                 options.limit ? "--limit" : "--shared"));
  }
  if (telemetry != nullptr) telemetry->begin_wait();
  lock::AcquireRequest request;
  request.name = name;
  request.token = random_token();
  request.ttl = options.ttl_ms(session.config.ttl);
  if (session.quorum && !session.config.node_timeout) session.quorum->set_node_timeout(node_timeout_for(request.ttl));
  request.meta = std::move(meta);
  request.supervised = supervised;
  request.limit = options.limit;
  request.shared = options.shared;
  lock::WaitPolicy policy = options.wait_policy();
  policy.outage_patience = lock::Millis(30'000);
  policy.start_on_handoff = start_on_handoff;
  policy.interrupt_fd = signals.fd();
  // The blocking wait watches one descriptor: to watch the owner's exit too without waking
  // every second, it watches an epoll set of both. Then an Interrupted without a signal
  // number means "look": a signal waits in the signalfd, or the owner is gone.
  Fd both;
  if (still_wanted && wanted_until_fd >= 0) {
    both = Fd(::epoll_create1(EPOLL_CLOEXEC));
    epoll_event readable{};
    readable.events = EPOLLIN;
    if (both && ::epoll_ctl(both.get(), EPOLL_CTL_ADD, signals.fd(), &readable) == 0 &&
        ::epoll_ctl(both.get(), EPOLL_CTL_ADD, wanted_until_fd, &readable) == 0) {
      policy.interrupt_fd = both.get();
    } else {
      both.reset();
    }
  }

  bool live = log::level() == log::Level::normal && ::isatty(STDERR_FILENO) == 1;
  if (live || (still_wanted && !both)) policy.max_sleep = lock::Millis(1000);
  WaitingDisplay display(name, live);
  lock::LockInfo last_holder;
  Taken taken;
  try {
    taken.lease = lock::acquire(
        session.store, std::move(request), policy, [&](const lock::LockInfo& holder, lock::Millis waited) {
          if (still_wanted && !still_wanted()) {
            throw Error(ExitCode::busy, fmt::format("gave up waiting for '{}': the process it was for "
                                                    "has exited",
                                                    printable(name)));
          }
          if (std::string reason = waits_for_itself(holder); !reason.empty()) {
            throw WaitingForItself{std::move(reason)};
          }
          last_holder = holder;
          if (!policy.max_wait || policy.max_wait->count() > 0) {
            display.update(holder, waited);
            if (telemetry != nullptr) telemetry->waiting(holder);
          }
        });
  } catch (const WaitingForItself& nested) {
    display.clear();
    log::error(fmt::format("cannot take '{}': {}", printable(name), nested.reason));
    taken.exit_code = options.conflict_exit_code;
    if (telemetry != nullptr) telemetry->busy(taken.exit_code);
    return taken;
  } catch (const Interrupted& interrupted) {
    display.clear();
    int signo = interrupted.signal_number();
    if (signo <= 0 && both) {
      std::optional<signalfd_siginfo> pending = signals.read();
      signo = pending ? static_cast<int>(pending->ssi_signo) : 0;
      if (signo == 0 && !still_wanted()) {
        throw Error(ExitCode::busy,
                    fmt::format("gave up waiting for '{}': the process it was for has exited", printable(name)));
      }
    }
    if (signo <= 0) signo = SIGINT;
    log::info("interrupted while waiting for '{}'", printable(name));
    taken.exit_code = 128 + signo;
    return taken;
  }
  display.clear();
  if (!taken.lease) {
    if (policy.max_wait && policy.max_wait->count() > 0) {
      log::info("lock '{}' is still busy after waiting {}: {}", printable(name), format_duration(*policy.max_wait),
                describe_holder(last_holder));
    } else {
      log::info("lock '{}' is busy: {}", printable(name), describe_holder(last_holder));
    }
    taken.exit_code = options.conflict_exit_code;
    if (telemetry != nullptr) telemetry->busy(taken.exit_code);
    return taken;
  }
  if (telemetry != nullptr) telemetry->acquired(taken.lease->fence(), taken.lease->ttl());
  log::verbose("{} '{}' (fence {}, ttl {})", taken.lease->claim_pending() ? "handed over, claiming" : "acquired",
               printable(name), taken.lease->fence(), format_duration(taken.lease->ttl()));
  return taken;
}

std::uint64_t keeper_stop_tag(std::string_view kind, std::string_view value) {
  std::uint64_t hash = 0xcbf29ce484222325ULL; // FNV-1a
  auto mix = [&hash](std::string_view bytes) {
    for (char c : bytes) {
      hash ^= static_cast<unsigned char>(c);
      hash *= 0x100000001b3ULL;
    }
  };
  mix(kind);
  mix(std::string_view("\0", 1));
  mix(value);
  return hash;
}

void stop_keeper(const lock::ReleaseResult& result, std::uint64_t tag) {
  if (result.keeper_pid <= 0 || result.keeper_pid > std::numeric_limits<pid_t>::max() ||
      result.keeper_host != process::host_name()) {
    return;
  }
  auto pid = static_cast<pid_t>(result.keeper_pid);
  // The pid was recorded long ago: pin the process it names now, check that it is a keeper at
  // all, and let the tag tell that keeper whether the stop is for its lock.
  auto keeper = process::ProcessHandle::open(pid);
  if (!keeper || !process::is_keeper(pid) || !keeper->alive()) return;
  try {
    if (keeper->send_signal(SIGTERM, tag)) log::verbose("stopped the keeper (pid {})", pid);
  } catch (const SystemError& error) {
    log::verbose("could not stop the keeper (pid {}): {}", pid, error.what()); // another user's
  }
}

} // namespace rlock::cli
