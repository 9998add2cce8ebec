// SPDX-License-Identifier: MIT
// LockStore: the lock layer's view of where locks live. The lock layer reaches a server only
// through this interface; redis::RedisLockStore implements it, unit tests use a fake, and a
// quorum of stores (one per server) can implement it over others: each operation comes in a
// send and a receive half, so that it can go out to N stores and be collected by one deadline.
#pragma once

#include "util/error.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace rlock::lock {

using Millis = std::chrono::milliseconds;
using TimePoint = std::chrono::steady_clock::time_point;

// The longest a waiter sleeps before re-checking by itself when it is first in line and no
// release wakes it. An rlock holder wakes the line when it releases, so only its lease's end
// needs a timer.
constexpr Millis k_max_fallback{30'000};

// The waiting line's timing, shared by the waiting loop (lock/acquirer.cpp), which sleeps by
// it, and the stores, which let a waiter's ticket lapse by it: a ticket must outlive its
// waiter's sleep, and a dead waiter's must lapse before the next waiter looks.
//   The first waiter re-checks when the holder's lease would end (at most k_max_fallback
//   away); its ticket counts head_slack longer.
//   The second re-checks head_slack plus up to runner_jitter after that (by then a dead first
//   waiter's ticket has lapsed, so the second takes its place); its ticket counts
//   runner_slack past the lease's end.
//   The others only refresh their tickets, every idle_recheck give or take a tenth; their
//   tickets count far_ttl. A release or a departure that moves a waiter up to first or second
//   place tells it to re-check at once, and gives it promotion_slack to do so.
struct LineTiming {
  Millis head_slack{5'000};
  Millis runner_jitter{1'000};
  Millis runner_slack{16'000};
  Millis idle_recheck{270'000};
  Millis far_ttl{330'000};
  Millis promotion_slack{5'000};
};
inline constexpr LineTiming k_line{};

// Who asks for the lock; stored beside it for `rlock status`.
struct HolderMeta {
  std::string host;
  std::int64_t pid = 0;
  std::string user;
  std::string command;
};

// One holder of a lock, as the store read it back. Holder data is never trusted: a value the
// store could not make sense of is unknown, 0 for pids, times, the TTL and the fence (none of
// them is ever 0), -1 for renewals.
struct HolderInfo {
  bool has_metadata = false; // false when a program other than rlock holds the lock
  HolderMeta meta;
  std::int64_t acquired_at_ms = 0; // server clock, Unix milliseconds
  std::int64_t ttl_ms = 0;         // lease length asked for at acquisition
  std::int64_t remaining_ms = 0;   // time left on the lease; -1 when it never expires
  std::int64_t fence = 0;
  std::int64_t renewals = 0; // -1: unknown
  std::int64_t keeper_pid = 0;
  // A semaphore's permit that a release keeps for the first waiter until it claims it (no
  // metadata yet).
  bool reserved = false;
};

// What holds a name: one holder (a mutex, or a writer), up to `limit` holders each with its
// own permit (a semaphore, --limit N), or any number of readers (--shared).
enum class LockKind { mutex, semaphore, shared };

// What the store knows about one lock: who holds it (a mutex has at most one holder, a lock
// with a limit up to that many) and how many wait. No holders: the lock is free.
struct LockInfo {
  std::vector<HolderInfo> holders; // a name held by permits: by when each lapses, first first
  LockKind kind = LockKind::mutex;
  std::int64_t limit = 1;         // how many may hold it at once (0: any number of readers)
  bool handoff = false;           // a release is passing the lock to the first waiter
  std::int64_t server_now_ms = 0; // server clock when this was read
  std::int64_t waiters = 0;
  // The asking waiter's place in line (0: first), as an attempt with a ticket left it; -1
  // when unknown (no ticket, or not an attempt's answer).
  std::int64_t place = -1;

  bool held() const noexcept { return !holders.empty(); }
};

struct AcquireRequest {
  std::string name;
  std::string token;
  Millis ttl{0};
  HolderMeta meta;
  // Waiting line ticket; empty means "try once, do not queue". Waiters are served in the
  // order their tickets first joined the line, whatever they did since (re-checks, a
  // reconnect); a dead waiter's ticket lapses by k_line's timing.
  std::string ticket;
  // At most this many holders at once (a semaphore, each with its own permit); empty: a mutex,
  // one holder. A name held or waited for as another kind (a mutex, another limit) is refused
  // with ConfigError ("limit conflict: stored 3, given 5"); a store without semaphores
  // refuses any limit.
  std::optional<std::int64_t> limit;
  // A reader of a shared lock: readers share it, a plain (mutex) acquire of the same name is
  // the exclusive writer; arrival order is kept between them. Not with `limit`.
  bool shared = false;
  // Whether a supervisor (exec, or the keeper of acquire) will hold the lock, counting on each
  // of its renewals to run for the whole TTL: a renewal of a supervised lease (by the job, with
  // the same token) then never shortens it, keeping the longer of the asked TTL and the rest.
  bool supervised = false;
};

struct AcquireResult {
  bool acquired = false;
  std::int64_t fence = 0; // when acquired
  LockInfo lock;          // when busy: who holds it (or, free but another waiter is first)
  // Set when the attempt took the lock but the store could not confirm it as it was asked to
  // (too few replicas acknowledged the write: a failover could lose it), and so gave it back
  // at once: why, for the user ("only 0 of 1 replicas acknowledged …"). `acquired` is false.
  std::string unconfirmed;
  // When the attempt that was answered was sent, if the store sent it again by itself (after
  // a transient error reply such as CLUSTERDOWN) or knows better than the caller: the server
  // set the lease's TTL no earlier than this. Empty: when the caller sent it.
  std::optional<TimePoint> sent_at;
};

// A release's hand-off as wait_for_wake popped it: the lock is kept for the waiter that
// popped it until `server_ms` + `ttl` on the server's clock, and `fence` is reserved for it.
struct Handoff {
  std::int64_t fence = 0;
  std::int64_t server_ms = 0;
  Millis ttl{0};
};

// A renewal: extend `token`'s lease on `name` to `ttl` from now.
struct RenewRequest {
  std::string name;
  std::string token;
  Millis ttl{0};
  // Non-zero: also record this process as the lease's keeper (HolderInfo::keeper_pid), so
  // that a release can stop it; such a renewal is not counted in `renewals`.
  std::int64_t keeper_pid = 0;
};

// The outcome of a token-checked operation (renew, release).
enum class TokenCheck {
  ok,    // the token owned the lock; the operation took effect
  free,  // the lock is gone (expired or released)
  taken, // another token holds the lock now
  // Renewals only: the token owned the lock and the lease was extended, but the store could not
  // confirm it as it was asked to (too few replicas acknowledged it): a failover could lose the
  // extension, so it must not be counted on.
  unconfirmed,
};

struct ReleaseResult {
  TokenCheck outcome = TokenCheck::free;
  Millis kept_for{0};          // with min-hold: how long the lease still runs
  std::int64_t keeper_pid = 0; // the keeper to stop after a release, if any
  std::string keeper_host;
};

// Whom a forced release may break: anyone (both empty), or only the holder an operator saw,
// checked in the same atomic step as the break.
struct ForceCondition {
  std::string token; // non-empty: only while the lock holds exactly this token
  std::string host;  // non-empty: only while the holder's metadata says this host and `pid`
  std::int64_t pid = 0;
};

struct ForceResult {
  enum class Outcome {
    broken,       // the lock was held (as the condition asked) and is broken: `lock` says by whom
    free,         // nobody held it; nothing changed
    other_holder, // someone other than the condition's holder holds it; nothing changed
  };
  Outcome outcome = Outcome::free;
  LockInfo lock; // who held it as the store found it
};

// What ended a watcher's wait (LockStore::wait_for_release).
enum class WatchWake {
  timeout, // nothing woke it
  freed,   // a release freed the lock
  recheck, // the lock changed (a release shortened its lease): look again
};

class LockStore {
 public:
  virtual ~LockStore() = default;

  // One atomic attempt: take the lock if it is free (and this ticket is first in the queue,
  // or the queue is empty). Otherwise, with a ticket, join the queue. After a wait_for_wake
  // that popped a hand-off, an attempt with a ticket claims the lock with it.
  AcquireResult try_acquire(const AcquireRequest& request) {
    send_acquire(request);
    return receive_acquire(std::nullopt);
  }

  // try_acquire in two halves, so that the caller can work while the attempt travels: at most
  // one in flight, and nothing else may be called before its receive_acquire. The receive
  // gives up (throwing UnavailableError) at `deadline`, or after the I/O timeout if none.
  // A send that throws sent nothing; a receive that throws leaves the outcome unknown: the
  // attempt may have taken the lock (see abandon() in lock/lease.hpp).
  virtual void send_acquire(const AcquireRequest& request) = 0;
  virtual AcquireResult receive_acquire(std::optional<TimePoint> deadline) = 0;

  // The hand-off the last wait_for_wake woke with, if any (and if it says when it was made);
  // it stays until an attempt to claim it gets an answer.
  virtual std::optional<Handoff> handoff() const = 0;

  // Extends the lease to `request.ttl` if `request.token` still owns it. Gives up (throwing
  // UnavailableError) at `deadline`, or after the I/O timeout if that comes first.
  TokenCheck renew(const RenewRequest& request, std::optional<TimePoint> deadline = std::nullopt) {
    send_renew(request, deadline);
    return receive_renew(deadline);
  }

  // renew in two halves, with the rules of send_acquire/receive_acquire; the send, too, gives
  // up at `deadline` (a renewal must not outlast the lease's safety deadline, connecting
  // included). A receive that throws after its send went out leaves the outcome unknown: the
  // lease may have been extended.
  virtual void send_renew(const RenewRequest& request, std::optional<TimePoint> deadline) = 0;
  virtual TokenCheck receive_renew(std::optional<TimePoint> deadline) = 0;

  // Deletes the lock if `token` owns it; with min_hold > 0 shortens the lease so that the lock
  // lives until min_hold after its acquisition (on the server's clock) instead. Gives up
  // (throwing UnavailableError) at `deadline`, or after the I/O timeout if that comes first.
  ReleaseResult release(std::string_view name, std::string_view token, Millis min_hold,
                        std::optional<TimePoint> deadline = std::nullopt) {
    send_release(name, token, min_hold, deadline);
    return receive_release(deadline);
  }

  // release in two halves, with the rules of send_renew/receive_renew. A receive that throws
  // after its send went out leaves the outcome unknown: the lock may be released or not.
  virtual void send_release(std::string_view name, std::string_view token, Millis min_hold,
                            std::optional<TimePoint> deadline) = 0;
  virtual ReleaseResult receive_release(std::optional<TimePoint> deadline) = 0;

  // Deletes the lock whoever holds it, or only the holder `only` names (nothing else
  // changes otherwise); hands it to the first waiter in line as a release does.
  virtual ForceResult force_release(std::string_view name, const ForceCondition& only) = 0;

  virtual LockInfo inspect(std::string_view name) = 0;

  // inspect() of each of `names`, in their order. A store may ask them all at once (one round
  // trip, not one per name); this default asks one after the other. A lock that went since
  // the names were listed reads as free.
  virtual std::vector<LockInfo> inspect_many(std::span<const std::string> names) {
    std::vector<LockInfo> infos;
    infos.reserve(names.size());
    for (const std::string& name : names) infos.push_back(inspect(name));
    return infos;
  }

  // Called with a batch of names and what inspect_many read of them (which it may move from);
  // false stops the walk.
  using BatchVisitor = std::function<bool(std::span<const std::string>, std::vector<LockInfo>&)>;

  // inspect_many over `names`, `batch` names at a time, handing each batch to `visit` in order
  // until it returns false. A store may read the next batch while `visit` works on this one
  // (this default does not): then nothing but `visit` may call the store meanwhile.
  virtual void inspect_batches(std::span<const std::string> names, std::size_t batch, const BatchVisitor& visit) {
    while (!names.empty()) {
      std::span<const std::string> part = names.first(std::min(names.size(), batch));
      names = names.subspan(part.size());
      std::vector<LockInfo> infos = inspect_many(part);
      if (!visit(part, infos)) return;
    }
  }

  // Every lock name the store holds that matches `glob`, sorted, each once (by an incremental
  // walk that never blocks the server). `glob` is Redis's glob over the name ("*": every
  // name; a backslash makes the next character literal); it never contains braces.
  virtual std::vector<std::string> list_names(std::string_view glob) = 0;

  // Blocks until a release wakes `ticket`, or `timeout` passes. True when woken. When
  // `interrupt_fd` (a signalfd; -1: none) turns readable first, throws Interrupted carrying
  // the signal read from it.
  virtual bool wait_for_wake(std::string_view name, std::string_view ticket, Millis timeout, int interrupt_fd) = 0;

  // Removes a waiter's ticket (given up, interrupted, or acquired elsewhere).
  virtual void leave_queue(std::string_view name, std::string_view ticket) = 0;

  // Watching (`rlock wait`): waiting for a lock to be free without taking it, joining its
  // line or taking a hand-off. watch() reads the lock as inspect() does and, when it is held,
  // registers `ticket` as a watcher in the same atomic step, so that a release after the read
  // wakes wait_for_release(): none is missed. A registration lapses by itself (about
  // k_max_fallback after it was made). A store that cannot watch throws UsageError.
  virtual LockInfo watch(std::string_view /*name*/, std::string_view /*ticket*/) {
    throw UsageError("this lock store cannot wait for a lock to be free (rlock wait)");
  }
  // Blocks until a release wakes the watcher `ticket`, or `timeout` passes; a readable
  // `interrupt_fd` throws Interrupted, as for wait_for_wake.
  virtual WatchWake wait_for_release(std::string_view /*name*/, std::string_view /*ticket*/, Millis /*timeout*/,
                                     int /*interrupt_fd*/) {
    throw UsageError("this lock store cannot wait for a lock to be free (rlock wait)");
  }
};

} // namespace rlock::lock
