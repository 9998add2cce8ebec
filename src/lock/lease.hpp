// SPDX-License-Identifier: MIT
// Lease: a held lock, its renewal schedule and the deadline after which it may be gone.
#pragma once

#include "lock/lock_store.hpp"

#include <functional>
#include <optional>
#include <string>

namespace rlock::lock {

using Clock = std::function<TimePoint()>;

// The steady clock; tests inject their own.
TimePoint steady_now();

// How long before the server could expire the lease we stop trusting it: covers clock-rate
// drift between us and the server and the time the job needs to notice. A tenth of the TTL.
Millis safety_margin(Millis ttl);

// The most a clean-up after a lost answer waits for its own answer (see abandon()).
constexpr Millis k_abandon_bound{1000};

// After a write whose answer was lost (a timeout, a reset, a signal after the send), `token`
// may hold `name` with nobody left to renew or release it: an orphan that would block every
// other client until its TTL. Sends a compare-and-delete with the token (the store reconnects
// after a lost answer, so this goes on a fresh connection) and waits for its answer until
// `deadline` at most. Best effort: errors are swallowed; what it cannot delete expires.
void abandon(LockStore& store, std::string_view name, std::string_view token, TimePoint deadline) noexcept;

// store.release(), tried once more when its answer was lost or the store could not be
// reached: a release that did not happen leaves an orphan. If the retry finds the lock free or
// held by another token, the first attempt is taken to have released it (and the lock may have
// been handed on since): the result is `ok`. Throws UnavailableError if the retry fails too.
ReleaseResult release_token(LockStore& store, std::string_view name, std::string_view token, Millis min_hold);

class Lease {
 public:
  enum class Status {
    held,       // renewed, or still within the safety deadline while retrying
    lost_free,  // the renewal found the lock gone (expired, or force-released)
    lost_taken, // another token holds it
    expired,    // the store stayed unreachable until the safety deadline
    released,
  };

  // `confirmed_from` is when the request that took (or last renewed) the lock was sent: the
  // server set its TTL no earlier, so the lease runs at least until confirmed_from + ttl.
  Lease(LockStore& store, std::string name, std::string token, std::int64_t fence, Millis ttl, TimePoint confirmed_from,
        Clock clock = steady_now);

  // A lease on a lock a release handed to us, whose claim (`request`, sent at `sent` with
  // store.send_acquire) is not answered yet. The hand-off keeps the lock ours until
  // `safe_until` (our clock, margin included), and `fence` is the one it reserved for us. The
  // first renew_if_due() reads the answer; until then the lease is held on the hand-off alone.
  static Lease claiming(LockStore& store, AcquireRequest request, std::int64_t fence, TimePoint sent,
                        TimePoint safe_until, Clock clock = steady_now);
  Lease(Lease&& other) noexcept;
  // Releases this lease first if it is still held, then takes over `other`.
  Lease& operator=(Lease&& other) noexcept;
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  // Releases the lock if it is still held and not detached (best effort, errors swallowed).
  // An expired lease (its renewals or its claim unanswered until the safety deadline) may still
  // be ours on the server: it is abandon()ed, so the owner of an expired lease must have
  // stopped relying on it (exec: the job has ended) before destroying it.
  ~Lease();

  const std::string& name() const noexcept { return m_name; }
  const std::string& token() const noexcept { return m_token; }
  std::int64_t fence() const noexcept { return m_fence; }
  Millis ttl() const noexcept { return m_ttl; }
  Status status() const noexcept { return m_status; }

  // When renew_if_due() next has work: the next renewal, or retry after a failed one (at
  // once while a claim is unanswered).
  TimePoint next_due() const noexcept;
  // After this instant the lease may have expired on the server.
  TimePoint safety_deadline() const noexcept {
    return m_claim ? m_claim->safe_until : m_confirmed_from + m_ttl - safety_margin(m_ttl);
  }
  TimePoint confirmed_from() const noexcept { return m_confirmed_from; }
  // Whether the claim of a handed-over lock is still unanswered (see claiming()).
  bool claim_pending() const noexcept { return m_claim.has_value(); }

  // Renews if due; for a claimed lease, first reads (or asks again for) the claim's answer.
  // Failed renewals (any rlock::Error: transient or not) are retried until the safety
  // deadline; each call is bounded so that it cannot run past it. Returns the new status.
  Status renew_if_due();

  // Why the last renewal failed, for messages ("timed out waiting for a reply from …").
  const std::string& last_error() const noexcept { return m_last_error; }
  // Whether the last renewal that was answered went through but was not confirmed
  // (TokenCheck::unconfirmed): the safety deadline stays where the last confirmed one put it,
  // and the renewal is tried again.
  bool unconfirmed() const noexcept { return m_unconfirmed; }

  // Releases (or, with min_hold, shortens the lease to the minimum) by release_token(). Marks
  // the lease released. A claim still unanswered is settled first; if it failed, so does the
  // release.
  ReleaseResult release(Millis min_hold = Millis(0));

  // Renews now, recording `keeper_pid` as the process that holds the lease from now on (the
  // keeper of acquire), so that a release can stop it. Counts as a renewal for the deadline.
  // Throws UnavailableError when the answer does not come; the lease is then unchanged.
  Status record_keeper(std::int64_t keeper_pid);

  // Forgets the lease without releasing it: another process (the keeper) takes over.
  void detach() noexcept { m_status = Status::released; }

 private:
  struct Claim {
    AcquireRequest request; // sent again when its answer is lost
    TimePoint sent;
    TimePoint safe_until;
    bool in_flight = true; // sent, answer not read yet
  };

  void release_quietly() noexcept;
  // Takes a renewal's answer (sent at `sent`) into the lease.
  void apply_renewal(TokenCheck check, TimePoint sent);
  // Reads the claim's answer (sending it again first if the last answer was lost).
  void settle_claim();

  LockStore* m_store;
  std::string m_name;
  std::string m_token;
  std::int64_t m_fence;
  Millis m_ttl;
  TimePoint m_confirmed_from;
  TimePoint m_retry_at{}; // set while retrying after a transient failure
  Clock m_clock;
  Status m_status = Status::held;
  std::string m_last_error;
  bool m_unconfirmed = false;
  std::optional<Claim> m_claim; // set while a handed-over lock's claim is unanswered
};

} // namespace rlock::lock
