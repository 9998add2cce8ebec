// SPDX-License-Identifier: MIT
// acquire(): take a lock, waiting in line for it as the user asked.
#pragma once

#include "lock/lease.hpp"
#include "lock/lock_store.hpp"

#include <functional>
#include <optional>

namespace rlock::lock {

// A lock held by another client (no rlock metadata) is re-checked this often.
constexpr Millis k_foreign_recheck{1'000};

struct WaitPolicy {
  std::optional<Millis> max_wait; // empty: wait forever; zero: try once
  // At most this long between re-checks (see k_line for how long a waiter sleeps by its place
  // in line); shorter to refresh a live display.
  Millis max_sleep = k_line.idle_recheck + k_line.idle_recheck / 10;
  // How long the store may stay unreachable *while waiting* (after the first contact succeeded)
  // before the error is reported; 0 reports the first failure.
  Millis outage_patience{0};
  // Woken by a release's hand-off, return at once a lease whose claim is still on its way
  // (Lease::claiming): the caller starts its work meanwhile and the lease's first
  // renew_if_due() reads the answer. Saves a round trip per hand-off; for callers that renew.
  bool start_on_handoff = false;
  // A signalfd whose signals end the wait (Interrupted, carrying the signal); -1: none. Only
  // the blocking wait watches it: every other call is short and bounded by its deadline.
  int interrupt_fd = -1;
};

// Called after each busy attempt with who holds the lock and how long we have waited.
using BusyObserver = std::function<void(const LockInfo& lock, Millis waited)>;

// Takes the lock described by `request` (its token, ttl and meta; the ticket is made here).
// Waiting joins the lock's line and sleeps until a release hands the lock over, or, failing
// that, re-checks by its place in line (k_line): the first waiter when the holder's lease
// would run out (at most k_max_fallback away), the others later. Served in arrival order.
// Returns nothing when the lock stayed busy for the whole wait. An attempt that took the lock
// but could not have it confirmed (AcquireResult::unconfirmed) is tried again like an outage;
// when the wait or the outage patience runs out (at once for a single try), UnavailableError
// says why. Any exception (Interrupted from the store's wait, UnavailableError) leaves the
// line before it propagates, and when the last attempt's answer was lost, abandon()s the lock
// that attempt may have taken.
std::optional<Lease> acquire(LockStore& store, AcquireRequest request, const WaitPolicy& policy,
                             const BusyObserver& on_busy = {}, const Clock& clock = steady_now);

// Waits until the lock `name` is free, without taking it, joining its line or taking a
// hand-off meant for a waiter (LockStore::watch): true once it is free (at once when it is
// free now), false when policy.max_wait ran out (zero: look once). Woken by the release that
// frees it, like a waiter; otherwise it looks again when the holder's lease would end (every
// second for a holder without rlock metadata, whose release wakes nobody), at most every
// policy.max_sleep. A lock handed from holder to waiter is never free in between: a watcher
// beside a line sees it free only when the line is empty. An outage within
// policy.outage_patience is ridden out; Interrupted propagates from the blocking wait.
bool wait_until_free(LockStore& store, const std::string& name, const WaitPolicy& policy,
                     const BusyObserver& on_busy = {}, const Clock& clock = steady_now);

} // namespace rlock::lock
