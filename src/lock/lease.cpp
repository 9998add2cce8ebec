// SPDX-License-Identifier: MIT
// Lease: renewal and the safety deadline.
//
// Design. A lease is safe to rely on only while the server cannot have expired it. We never
// read the server's clock for that: the TTL starts on the server no earlier than we *sent*
// the request that set it, so measuring from the send time on our monotonic clock gives a
// lower bound on the expiry. From that we subtract a margin for clock-rate drift and for
// the job to be told. Renewal runs every TTL/3, leaving two more chances before the deadline;
// a failed renewal (timeout, reset, READONLY during a failover, any error reply) is retried
// every TTL/20, each attempt bounded so that no call can run past the deadline. A renewal that
// the store took but could not confirm (too few replicas acknowledged it) is no renewal for
// the deadline: it is retried likewise.
#include "lock/lease.hpp"

#include "util/error.hpp"

#include <algorithm>

namespace rlock::lock {

TimePoint steady_now() { return std::chrono::steady_clock::now(); }

Millis safety_margin(Millis ttl) { return std::max(ttl / 10, Millis(1)); }

namespace {
Millis retry_interval(Millis ttl) { return std::clamp(ttl / 20, Millis(20), Millis(1000)); }
constexpr Millis k_claim_retry{20};
} // namespace

void abandon(LockStore& store, std::string_view name, std::string_view token, TimePoint deadline) noexcept {
  try {
    store.release(name, token, Millis(0), deadline);
  } catch (...) {
    // Unreachable again, or slow: the lock expires with its TTL.
  }
}

ReleaseResult release_token(LockStore& store, std::string_view name, std::string_view token, Millis min_hold) {
  try {
    return store.release(name, token, min_hold);
  } catch (const UnavailableError&) {
    // Lost on the way there or back: once more, on a fresh connection.
  }
  ReleaseResult result = store.release(name, token, min_hold);
  if (result.outcome != TokenCheck::ok) {
    result = ReleaseResult{};
    result.outcome = TokenCheck::ok;
  }
  return result;
}

Lease::Lease(LockStore& store, std::string name, std::string token, std::int64_t fence, Millis ttl,
             TimePoint confirmed_from, Clock clock)
    : m_store(&store), m_name(std::move(name)), m_token(std::move(token)), m_fence(fence), m_ttl(ttl),
      m_confirmed_from(confirmed_from), m_clock(std::move(clock)) {}

Lease Lease::claiming(LockStore& store, AcquireRequest request, std::int64_t fence, TimePoint sent,
                      TimePoint safe_until, Clock clock) {
  Lease lease(store, request.name, request.token, fence, request.ttl, sent, std::move(clock));
  lease.m_claim = Claim{std::move(request), sent, safe_until};
  return lease;
}

Lease::Lease(Lease&& other) noexcept
    : m_store(other.m_store), m_name(std::move(other.m_name)), m_token(std::move(other.m_token)),
      m_fence(other.m_fence), m_ttl(other.m_ttl), m_confirmed_from(other.m_confirmed_from),
      m_retry_at(other.m_retry_at), m_clock(std::move(other.m_clock)), m_status(other.m_status),
      m_last_error(std::move(other.m_last_error)), m_unconfirmed(other.m_unconfirmed),
      m_claim(std::move(other.m_claim)) {
  other.m_status = Status::released;
  other.m_claim.reset();
}

Lease& Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    release_quietly();
    m_store = other.m_store;
    m_name = std::move(other.m_name);
    m_token = std::move(other.m_token);
    m_fence = other.m_fence;
    m_ttl = other.m_ttl;
    m_confirmed_from = other.m_confirmed_from;
    m_retry_at = other.m_retry_at;
    m_clock = std::move(other.m_clock);
    m_status = other.m_status;
    m_last_error = std::move(other.m_last_error);
    m_unconfirmed = other.m_unconfirmed;
    m_claim = std::move(other.m_claim);
    other.m_status = Status::released;
    other.m_claim.reset();
  }
  return *this;
}

Lease::~Lease() { release_quietly(); }

void Lease::release_quietly() noexcept {
  if (m_status == Status::expired) {
    // Renewals (or the claim) went unanswered: the last one may have extended the lease.
    abandon(*m_store, m_name, m_token, m_clock() + k_abandon_bound);
    if (m_claim) {
      try {
        m_store->leave_queue(m_claim->request.name, m_claim->request.ticket);
      } catch (...) {
        // The ticket expires on its own.
      }
      m_claim.reset();
    }
    m_status = Status::released;
    return;
  }
  if (m_status != Status::held) return;
  try {
    if (m_claim) settle_claim();
    if (m_status != Status::held) return;
    m_status = Status::released;
    release_token(*m_store, m_name, m_token, Millis(0));
  } catch (...) {
    // Best effort while unwinding: the lease expires on its own.
    m_status = Status::released;
  }
}

TimePoint Lease::next_due() const noexcept {
  if (m_claim) return m_claim->in_flight ? m_claim->sent : std::min(m_retry_at, safety_deadline());
  TimePoint renewal = m_confirmed_from + m_ttl / 3;
  if (m_retry_at > renewal) renewal = m_retry_at;
  return std::min(renewal, safety_deadline());
}

void Lease::settle_claim() {
  Claim& claim = *m_claim;
  if (!claim.in_flight) {
    claim.sent = m_clock();
    m_store->send_acquire(claim.request);
    claim.in_flight = true;
  }
  claim.in_flight = false; // whatever comes now, the answer is read or lost
  AcquireResult result = m_store->receive_acquire(claim.safe_until);
  if (result.acquired) {
    // The claim set the full TTL no earlier than it was sent; the fence stays the one the
    // hand-off reserved (and the job was given), which is also what the claim recorded.
    m_confirmed_from = claim.sent;
    m_retry_at = {};
    m_last_error.clear();
    m_claim.reset();
    return;
  }
  // The hand-off was gone (force-released, or the server lost it): so is the lock.
  m_status = result.lock.held() ? Status::lost_taken : Status::lost_free;
  AcquireRequest request = std::move(claim.request);
  m_claim.reset();
  try {
    m_store->leave_queue(request.name, request.ticket);
  } catch (const UnavailableError&) {
    // The ticket expires on its own.
  }
}

Lease::Status Lease::renew_if_due() {
  if (m_status != Status::held) return m_status;
  TimePoint now = m_clock();
  if (now >= safety_deadline()) {
    m_status = Status::expired;
    return m_status;
  }
  if (now < next_due()) return m_status;
  if (m_claim) {
    try {
      settle_claim();
    } catch (const UnavailableError& error) {
      m_last_error = error.what();
      // The hand-off's window is short (about 2 s): ask again soon.
      if (m_clock() >= safety_deadline()) {
        m_status = Status::expired;
      } else {
        m_retry_at = m_clock() + k_claim_retry;
      }
    }
    return m_status;
  }
  try {
    apply_renewal(m_store->renew(RenewRequest{m_name, m_token, m_ttl, 0}, safety_deadline()), now);
  } catch (const Error& error) {
    // Transient or not (a password rotated, an ACL changed, a key clobbered), a renewal that
    // failed is tried again until the safety deadline: only the lease running out, never an
    // error reply, ends the holder's work, and then by the lock-loss path.
    m_last_error = error.what(); // m_unconfirmed stays: what the last answer said
    if (m_clock() >= safety_deadline()) {
      m_status = Status::expired;
    } else {
      m_retry_at = m_clock() + retry_interval(m_ttl);
    }
  }
  return m_status;
}

void Lease::apply_renewal(TokenCheck check, TimePoint sent) {
  m_unconfirmed = false;
  switch (check) {
  case TokenCheck::ok:
    m_confirmed_from = sent;
    m_retry_at = {};
    m_last_error.clear();
    break;
  case TokenCheck::unconfirmed:
    // Extended on the server, but a failover now could lose the extension: the deadline stays
    // where the last confirmed renewal put it, and the next try comes soon, as after an error.
    m_unconfirmed = true;
    m_last_error = "renewed, but not confirmed by enough replicas";
    m_retry_at = m_clock() + retry_interval(m_ttl);
    break;
  case TokenCheck::free: m_status = Status::lost_free; break;
  case TokenCheck::taken: m_status = Status::lost_taken; break;
  }
}

Lease::Status Lease::record_keeper(std::int64_t keeper_pid) {
  if (m_status != Status::held || m_claim) return m_status;
  TimePoint sent = m_clock();
  apply_renewal(m_store->renew(RenewRequest{m_name, m_token, m_ttl, keeper_pid}, safety_deadline()), sent);
  return m_status;
}

ReleaseResult Lease::release(Millis min_hold) {
  if (m_claim && m_status == Status::held) {
    settle_claim();
    if (m_status != Status::held) {
      ReleaseResult lost;
      lost.outcome = m_status == Status::lost_free ? TokenCheck::free : TokenCheck::taken;
      m_status = Status::released;
      return lost;
    }
  }
  ReleaseResult result = release_token(*m_store, m_name, m_token, min_hold);
  m_status = Status::released;
  return result;
}

} // namespace rlock::lock
