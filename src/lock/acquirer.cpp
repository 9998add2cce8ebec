// SPDX-License-Identifier: MIT
// acquire(): the waiting loop.
#include "lock/acquirer.hpp"

#include "util/error.hpp"
#include "util/random.hpp"

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <thread>

namespace rlock::lock {

namespace {

// Until the first holder's lease would run out (it may have died without releasing), a
// little after, and never long.
Millis until_lease_end(const LockInfo& lock) {
  Millis sleep = k_max_fallback;
  if (lock.holders.empty()) return Millis(5); // free, but another waiter is first
  for (const HolderInfo& holder : lock.holders) {
    // A program other than rlock releases without waking anyone: look again soon.
    Millis cap = holder.has_metadata || lock.handoff ? k_max_fallback : k_foreign_recheck;
    Millis until = holder.remaining_ms < 0 ? cap // a key without a TTL
                                           : std::clamp(Millis(holder.remaining_ms) + Millis(5), Millis(5), cap);
    sleep = std::min(sleep, until);
  }
  return sleep;
}

// A fraction in [0, 1) that differs from waiter to waiter: the first hex digits of its random
// ticket. Spreads the re-checks of a line that joined at one instant.
double jitter_of(std::string_view ticket) {
  std::uint32_t bits = 0;
  for (char c : ticket.substr(0, 8)) {
    int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : 0;
    bits = bits * 16 + static_cast<std::uint32_t>(digit);
  }
  return static_cast<double>(bits) / 4294967296.0;
}

// How long to sleep before re-checking when no release wakes us, by our place in line
// (k_line): the first waiter (or one that does not know its place) until the lease's end; the
// second after the first one's ticket would have lapsed, in case it died; the third after the
// second one's would have lapsed too, in case both died (nothing else would wake the line:
// a lapsed ticket is pruned only by a script that runs); the others only to refresh their
// tickets, rarely, spread out. A release, or a waiter ahead leaving, wakes whoever moves up to
// first or second place.
Millis fallback_sleep(const LockInfo& lock, std::string_view ticket) {
  double jitter = jitter_of(ticket);
  if (lock.place <= 0) return until_lease_end(lock);
  if (lock.place == 1) {
    Millis lease = lock.holders.empty() ? Millis(0) : until_lease_end(lock);
    return lease + k_line.head_slack +
           Millis(static_cast<std::int64_t>(jitter * static_cast<double>(k_line.runner_jitter.count())));
  }
  if (lock.place == 2) {
    Millis lease = lock.holders.empty() ? Millis(0) : until_lease_end(lock);
    return lease + k_line.runner_slack + k_line.head_slack +
           Millis(static_cast<std::int64_t>(jitter * static_cast<double>(k_line.runner_jitter.count())));
  }
  auto spread = static_cast<std::int64_t>((jitter - 0.5) * 0.2 * static_cast<double>(k_line.idle_recheck.count()));
  return k_line.idle_recheck + Millis(spread);
}

// The server's clock as read by an attempt we sent at `sent`.
struct ServerClockReading {
  TimePoint sent;
  std::int64_t server_ms = 0;
};

// When a hand-off made at handoff.server_ms stops keeping the lock for us, as a lower bound on
// our clock: the server read `reading.server_ms` after we sent that attempt, so any later
// server time X came no earlier than reading.sent + (X - reading.server_ms). Less 1 ms for the
// milliseconds both were cut to, and 0.1% of the time since for the two clocks' rates.
TimePoint handoff_expiry(const Handoff& handoff, const ServerClockReading& reading, TimePoint now) {
  auto since = std::chrono::duration_cast<Millis>(now - reading.sent);
  Millis ahead(handoff.server_ms - reading.server_ms);
  return reading.sent + ahead + handoff.ttl - Millis(1) - since / 1000;
}

// Cleans up when we stop trying for any reason but success: removes our ticket from the line,
// and abandon()s the lock first if an attempt's answer was lost (it may have taken it) and no
// later attempt was answered (an answer settles it: a retry with the same token finds the lock
// ours if the lost attempt took it).
class AttemptGuard {
 public:
  AttemptGuard(LockStore& store, const AcquireRequest& request, const Clock& clock)
      : m_store(store), m_request(request), m_clock(clock) {}
  AttemptGuard(const AttemptGuard&) = delete;
  AttemptGuard& operator=(const AttemptGuard&) = delete;
  //
  // Once an attempt has gone out, a clean-up that fails is tried again for up to
  // k_abandon_bound: what it leaves behind blocks others for long (a lock until its TTL; a
  // ticket ahead of live waiters until it lapses, tens of seconds, since only the first two
  // waiters look soon), and the reset or refused connection that ended the wait is often
  // over within that. Nothing was sent: one try, so that "unreachable" is reported at once.
  ~AttemptGuard() {
    if (!m_armed) return;
    const TimePoint until = m_clock() + k_abandon_bound;
    bool lock_left = m_answer_lost;
    bool ticket_left = !m_request.ticket.empty();
    Millis pause{20};
    for (int tries = 0;; ++tries) {
      if (lock_left) lock_left = !try_abandon(until);
      if (ticket_left) ticket_left = !try_leave();
      if ((!lock_left && !ticket_left) || !m_sent || tries == 5 || m_clock() + pause >= until) return;
      std::this_thread::sleep_for(pause);
      pause *= 2;
    }
  }
  void sent() noexcept { m_sent = true; }
  void answer_lost() noexcept { m_answer_lost = true; }
  void answered() noexcept { m_answer_lost = false; }
  void disarm() noexcept { m_armed = false; }

 private:
  bool try_abandon(TimePoint until) noexcept {
    try {
      m_store.release(m_request.name, m_request.token, Millis(0), until);
      return true;
    } catch (...) {
      return false; // what is left expires with its TTL
    }
  }
  bool try_leave() noexcept {
    try {
      m_store.leave_queue(m_request.name, m_request.ticket);
      return true;
    } catch (...) {
      return false; // what is left lapses on its own (k_line)
    }
  }

  LockStore& m_store;
  const AcquireRequest& m_request;
  const Clock& m_clock;
  bool m_armed = true;
  bool m_sent = false;
  bool m_answer_lost = false;
};

} // namespace

std::optional<Lease> acquire(LockStore& store, AcquireRequest request, const WaitPolicy& policy,
                             const BusyObserver& on_busy, const Clock& clock) {
  const TimePoint start = clock();
  const bool try_once = policy.max_wait && policy.max_wait->count() == 0;
  if (!try_once) {
    request.ticket = random_token();
  }
  std::optional<TimePoint> give_up_at;
  if (policy.max_wait) give_up_at = start + *policy.max_wait;

  AttemptGuard guard(store, request, clock);
  std::optional<ServerClockReading> reading;
  bool contacted = false;
  std::optional<TimePoint> outage_since;
  TimePoint unconfirmed_since{}; // since when every attempt that took the lock was unconfirmed ({}: none)
  Millis backoff{50};
  for (;;) {
    TimePoint sent = clock();
    AcquireResult result;
    bool on_its_way = false;
    try {
      store.send_acquire(request);
      on_its_way = true;
      guard.sent();
      result = store.receive_acquire(std::nullopt);
      guard.answered();
      contacted = true;
      outage_since.reset();
      backoff = Millis(50);
    } catch (const UnavailableError&) {
      if (on_its_way) guard.answer_lost();
      // A blip while waiting (a failover, a reset connection) is worth riding out; a store
      // being unreachable from the start is reported at once.
      TimePoint now = clock();
      if (!outage_since) outage_since = now;
      bool out_of_time = (give_up_at && now >= *give_up_at) || now - *outage_since >= policy.outage_patience;
      if (!contacted || try_once || out_of_time) throw;
      std::this_thread::sleep_for(backoff);
      backoff = std::min(backoff * 2, Millis(1000));
      continue;
    }
    // The store may have sent the attempt again by itself (a CLUSTERDOWN ridden out): the
    // answer is that later send's, and the lease runs from it, not from ours.
    if (result.sent_at) sent = *result.sent_at;
    if (result.acquired) {
      guard.disarm();
      return Lease(store, request.name, request.token, result.fence, request.ttl, sent, clock);
    }
    if (!result.unconfirmed.empty()) {
      // Taken, but not confirmed as asked (too few replicas acknowledged it), and given back by
      // the store: like an outage, tried again within the wait and the outage patience.
      TimePoint now = clock();
      if (unconfirmed_since == TimePoint{}) unconfirmed_since = now;
      bool out_of_time = (give_up_at && now >= *give_up_at) || now - unconfirmed_since >= policy.outage_patience;
      if (try_once || out_of_time) throw UnavailableError(result.unconfirmed);
      Millis pause = backoff;
      if (give_up_at) pause = std::min(pause, std::chrono::duration_cast<Millis>(*give_up_at - now) + Millis(1));
      std::this_thread::sleep_for(pause);
      backoff = std::min(backoff * 2, Millis(1000));
      continue;
    }
    unconfirmed_since = TimePoint{};
    TimePoint now = clock();
    reading = ServerClockReading{sent, result.lock.server_now_ms};
    if (on_busy) on_busy(result.lock, std::chrono::duration_cast<Millis>(now - start));
    if (try_once || (give_up_at && now >= *give_up_at)) return std::nullopt;
    Millis sleep = std::min(fallback_sleep(result.lock, request.ticket), policy.max_sleep);
    if (give_up_at) sleep = std::min(sleep, std::chrono::duration_cast<Millis>(*give_up_at - now) + Millis(1));
    bool woken = false;
    try {
      woken = store.wait_for_wake(request.name, request.ticket, sleep, policy.interrupt_fd);
    } catch (const UnavailableError&) {
      if (policy.outage_patience.count() == 0) throw;
      if (!outage_since) outage_since = clock(); // the next attempt decides whether to go on
    }
    if (!woken || !policy.start_on_handoff || !reading) continue;
    std::optional<Handoff> handoff = store.handoff();
    if (!handoff) continue;
    // The lock is ours until the hand-off value expires. With most of that window left, send
    // the claim and return without its answer; otherwise claim it the usual way, round trip
    // first (the loop's next attempt).
    now = clock();
    TimePoint safe_until = handoff_expiry(*handoff, *reading, now) - safety_margin(handoff->ttl);
    if (safe_until - now < handoff->ttl / 2) continue;
    try {
      store.send_acquire(request);
    } catch (const UnavailableError&) {
      continue; // the next attempt claims it, or finds the outage
    }
    guard.disarm();
    return Lease::claiming(store, std::move(request), handoff->fence, now, safe_until, clock);
  }
}

bool wait_until_free(LockStore& store, const std::string& name, const WaitPolicy& policy, const BusyObserver& on_busy,
                     const Clock& clock) {
  const TimePoint start = clock();
  const bool try_once = policy.max_wait && policy.max_wait->count() == 0;
  std::optional<TimePoint> give_up_at;
  if (policy.max_wait) give_up_at = start + *policy.max_wait;
  // A watcher's own ticket: its list is one no waiter pops, and no release hands it the lock.
  const std::string ticket = random_token();
  bool contacted = false;
  std::optional<TimePoint> outage_since;
  Millis backoff{50};
  for (;;) {
    LockInfo lock;
    WatchWake woken = WatchWake::timeout;
    try {
      lock = store.watch(name, ticket);
      contacted = true;
      outage_since.reset();
      backoff = Millis(50);
      if (!lock.held()) return true;
      TimePoint now = clock();
      if (on_busy) on_busy(lock, std::chrono::duration_cast<Millis>(now - start));
      if (try_once || (give_up_at && now >= *give_up_at)) return false;
      Millis sleep = std::min(until_lease_end(lock), policy.max_sleep);
      if (give_up_at) sleep = std::min(sleep, std::chrono::duration_cast<Millis>(*give_up_at - now) + Millis(1));
      woken = store.wait_for_release(name, ticket, sleep, policy.interrupt_fd);
    } catch (const UnavailableError&) {
      TimePoint now = clock();
      if (!outage_since) outage_since = now;
      bool out_of_time = (give_up_at && now >= *give_up_at) || now - *outage_since >= policy.outage_patience;
      if (!contacted || try_once || out_of_time) throw;
      std::this_thread::sleep_for(backoff);
      backoff = std::min(backoff * 2, Millis(1000));
      continue;
    }
    // 'free' was pushed by the release that freed it: it was free then, whoever took it since.
    if (woken == WatchWake::freed) return true;
  }
}

} // namespace rlock::lock
