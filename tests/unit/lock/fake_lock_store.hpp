// SPDX-License-Identifier: MIT
// A fake LockStore and a hand-driven clock for the lease and acquirer tests.
#pragma once

#include <fnmatch.h>

#include "lock/lease.hpp"
#include "lock/lock_store.hpp"
#include "util/error.hpp"

#include <csignal>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace rlock::lock::test {

using namespace std::chrono_literals;

// Time that moves only when a test (or the fake store, to simulate latency and sleep) says so.
class FakeClock {
 public:
  TimePoint now() const { return m_now; }
  void advance(Millis by) { m_now += by; }
  void set(TimePoint at) { m_now = at; }
  // Since the clock's start, for readable checks.
  Millis elapsed() const { return std::chrono::duration_cast<Millis>(m_now - k_start); }
  TimePoint at(Millis offset) const { return k_start + offset; }
  Clock clock() {
    return [this] { return m_now; };
  }

  static constexpr TimePoint k_start = TimePoint(std::chrono::hours(1000));

 private:
  TimePoint m_now = k_start;
};

// Locks in a map on the fake clock, a fence counter per name and a FIFO of tickets, with
// knobs to make calls fail, slow or lie, and a record of every call.
class FakeLockStore : public LockStore {
 public:
  struct Entry {
    std::string token;
    std::optional<TimePoint> expires; // empty: no TTL (a foreign client's key)
    HolderMeta meta;
  };
  struct RenewCall {
    std::string name, token;
    Millis ttl;
    std::int64_t keeper_pid;
    std::optional<TimePoint> deadline;
    TimePoint at;
  };
  struct ReleaseCall {
    std::string name, token;
    Millis min_hold;
    std::optional<TimePoint> deadline;
  };
  struct WaitCall {
    std::string name, ticket;
    Millis timeout;
    int interrupt_fd;
  };

  explicit FakeLockStore(FakeClock& clock) : m_clock(clock) {}

  // --- knobs ---
  int fail_next = 0;                      // the next N calls throw UnavailableError
  int fail_leave = 0;                     // the next N leave_queue calls throw UnavailableError
  int fail_send = 0;                      // the next N send_acquire calls throw UnavailableError (unsent)
  int lose_answers = 0;                   // the next N acquire/release receives take effect, then throw
  bool fail_refused = false;              // the failing calls throw AuthError (an ACL changed meanwhile)
  Millis latency{0};                      // each call advances the clock this much
  std::optional<TokenCheck> renew_answer; // renew reports this instead of the truth
  int unconfirm_acquires = 0;             // the next N attempts that take the lock give it back, unconfirmed
  Millis resend_after{0};  // > 0: the store sends each attempt again this long after (a CLUSTERDOWN ridden out)
  int free_on_attempt = 0; // try_acquire number K removes the holder first
  std::optional<int> interrupt_wait_with; // wait_for_wake throws Interrupted(signal)
  std::function<void()> on_wait;          // runs inside each wait_for_wake

  // --- state ---
  static constexpr std::int64_t k_server_epoch_ms = 1'800'000'000'000;
  static constexpr const char* claim_token = "handoff:claim";
  std::optional<Handoff> claim; // the hand-off a wake delivered, until claimed
  std::map<std::string, Entry, std::less<>> locks;
  std::map<std::string, std::int64_t, std::less<>> fences;
  std::map<std::string, std::deque<std::string>, std::less<>> queues;

  // --- record ---
  std::vector<AcquireRequest> acquire_calls;
  std::vector<std::optional<TimePoint>> receive_deadlines;
  std::vector<RenewCall> renew_calls;
  std::vector<ReleaseCall> release_calls;
  std::vector<WaitCall> wait_calls;
  std::vector<std::pair<std::string, std::string>> leave_calls;

  // Puts a lock held by someone else in place; `ttl` empty means no expiry.
  void hold_elsewhere(const std::string& name, std::optional<Millis> ttl, HolderMeta meta = {}) {
    Entry entry{"foreign-token", std::nullopt, std::move(meta)};
    if (ttl) entry.expires = m_clock.now() + *ttl;
    locks[name] = entry;
  }

  bool is_held(std::string_view name) const {
    auto it = locks.find(name);
    return it != locks.end() && (!it->second.expires || m_clock.now() < *it->second.expires);
  }
  std::string holder_token(std::string_view name) const { return is_held(name) ? locks.find(name)->second.token : ""; }

  void send_acquire(const AcquireRequest& request) override {
    acquire_calls.push_back(request);
    if (fail_send > 0) {
      --fail_send;
      throw UnavailableError("could not connect to redis://fake:6379: connection refused");
    }
    m_sent = request;
  }

  // Answers the attempt sent last, as the server would when the answer arrives.
  AcquireResult receive_acquire(std::optional<TimePoint> deadline) override {
    receive_deadlines.push_back(deadline);
    std::optional<TimePoint> resent;
    if (resend_after.count() > 0) {
      m_clock.advance(resend_after);
      resent = m_clock.now();
    }
    begin_call();
    AcquireResult result = apply_acquire(m_sent);
    result.sent_at = resent;
    if (result.acquired && unconfirm_acquires > 0) {
      // Too few replicas acknowledged it (RedisLockStore with --min-replicas): given back.
      --unconfirm_acquires;
      locks.erase(m_sent.name);
      result = AcquireResult{};
      result.unconfirmed = "only 0 of 1 replicas acknowledged acquiring " + m_sent.name;
    }
    lose_answer();
    return result;
  }

  // What the server does with an attempt.
  AcquireResult apply_acquire(const AcquireRequest& request) {
    auto& queue = queues[request.name];
    AcquireResult result;
    if (holder_token(request.name) == request.token) {
      // Ours already (acquire.lua): a retry after an answer was lost. Same lease, same fence.
      locks.find(request.name)->second.expires = m_clock.now() + request.ttl;
      std::erase(queue, request.ticket);
      result.acquired = true;
      result.fence = fences[request.name];
      return result;
    }
    if (free_on_attempt > 0 && static_cast<int>(acquire_calls.size()) == free_on_attempt) locks.erase(request.name);
    bool first_in_line = queue.empty() || (!request.ticket.empty() && queue.front() == request.ticket);
    bool claimable = claim && !request.ticket.empty() && is_held(request.name) &&
                     locks.find(request.name)->second.token == claim_token;
    if (claimable) {
      // The hand-off value holds the lock for us: take it with the reserved fence.
      locks[request.name] = Entry{request.token, m_clock.now() + request.ttl, request.meta};
      claim.reset();
      if (!queue.empty() && queue.front() == request.ticket) queue.pop_front();
      result.acquired = true;
      result.fence = fences[request.name];
      return result;
    }
    if (!is_held(request.name) && first_in_line) {
      locks[request.name] = Entry{request.token, m_clock.now() + request.ttl, request.meta};
      result.acquired = true;
      result.fence = ++fences[request.name];
      if (!queue.empty() && queue.front() == request.ticket) queue.pop_front();
      return result;
    }
    if (!request.ticket.empty() && std::find(queue.begin(), queue.end(), request.ticket) == queue.end()) {
      queue.push_back(request.ticket);
    }
    result.lock = inspect_now(request.name);
    if (auto at = std::find(queue.begin(), queue.end(), request.ticket); !request.ticket.empty() && at != queue.end()) {
      result.lock.place = at - queue.begin();
    }
    return result;
  }

  void send_renew(const RenewRequest& request, std::optional<TimePoint> deadline) override {
    renew_calls.push_back(
        RenewCall{request.name, request.token, request.ttl, request.keeper_pid, deadline, m_clock.now()});
  }

  TokenCheck receive_renew(std::optional<TimePoint> deadline) override {
    (void)deadline; // the send's, recorded there
    begin_call();
    const RenewCall& call = renew_calls.back();
    const std::string_view name = call.name;
    const std::string_view token = call.token;
    const Millis ttl = call.ttl;
    if (renew_answer) return *renew_answer;
    if (!is_held(name)) return TokenCheck::free;
    auto& entry = locks.find(name)->second;
    if (entry.token != token) return TokenCheck::taken;
    entry.expires = m_clock.now() + ttl;
    return TokenCheck::ok;
  }

  void send_release(std::string_view name, std::string_view token, Millis min_hold,
                    std::optional<TimePoint> deadline) override {
    (void)deadline; // the receive's, recorded there
    release_calls.push_back(ReleaseCall{std::string(name), std::string(token), min_hold, std::nullopt});
  }

  ReleaseResult receive_release(std::optional<TimePoint> deadline) override {
    release_calls.back().deadline = deadline;
    begin_call();
    const ReleaseCall& call = release_calls.back();
    ReleaseResult result = apply_release(call.name, call.token, call.min_hold);
    lose_answer();
    return result;
  }

  ReleaseResult apply_release(std::string_view name, std::string_view token, Millis min_hold) {
    ReleaseResult result;
    if (!is_held(name)) {
      result.outcome = TokenCheck::free;
      return result;
    }
    auto it = locks.find(name);
    if (it->second.token != token) {
      result.outcome = TokenCheck::taken;
      return result;
    }
    result.outcome = TokenCheck::ok;
    if (min_hold > Millis(0)) {
      it->second.expires = m_clock.now() + min_hold;
      result.kept_for = min_hold;
    } else {
      locks.erase(it);
    }
    return result;
  }

  ForceResult force_release(std::string_view name, const ForceCondition& only) override {
    begin_call();
    ForceResult result;
    result.lock = inspect_now(name);
    auto it = locks.find(name);
    if (!result.lock.held() || it == locks.end()) return result;
    if (!only.token.empty() && it->second.token != only.token) {
      result.outcome = ForceResult::Outcome::other_holder;
      return result;
    }
    result.outcome = ForceResult::Outcome::broken;
    locks.erase(it);
    return result;
  }

  LockInfo inspect(std::string_view name) override {
    begin_call();
    return inspect_now(name);
  }

  std::vector<std::string> list_names(std::string_view glob) override {
    begin_call();
    std::vector<std::string> names;
    const std::string pattern(glob);
    for (const auto& [name, entry] : locks) {
      if (is_held(name) && ::fnmatch(pattern.c_str(), std::string(name).c_str(), 0) == 0) names.push_back(name);
    }
    return names;
  }

  bool wait_for_wake(std::string_view name, std::string_view ticket, Millis timeout, int interrupt_fd) override {
    wait_calls.push_back(WaitCall{std::string(name), std::string(ticket), timeout, interrupt_fd});
    if (interrupt_wait_with) throw Interrupted(*interrupt_wait_with);
    if (on_wait) on_wait();
    if (claim) return true;   // on_wait handed the lock over
    m_clock.advance(timeout); // sleeping until the timeout: nobody woke us
    return false;
  }

  std::optional<Handoff> handoff() const override { return claim; }

  // What a release does for a waiter (release.lua): the holder's key becomes a hand-off value
  // that expires after `ttl`, with the next fence reserved. `server_ms` is the server clock
  // at the release: the fake server clock is k_server_epoch_ms plus the fake clock's elapsed time.
  void hand_off(const std::string& name, Millis ttl = 2000ms) {
    locks[name] = Entry{claim_token, m_clock.now() + ttl, {}};
    claim = Handoff{++fences[name], server_ms(), ttl};
  }
  std::int64_t server_ms() const { return k_server_epoch_ms + m_clock.elapsed().count(); }

  void leave_queue(std::string_view name, std::string_view ticket) override {
    leave_calls.emplace_back(std::string(name), std::string(ticket));
    if (fail_leave > 0) {
      --fail_leave;
      throw UnavailableError("could not connect to redis://fake:6379: connection refused");
    }
    auto& queue = queues[std::string(name)];
    std::erase(queue, std::string(ticket));
  }

 private:
  void begin_call() {
    m_clock.advance(latency);
    if (fail_next > 0) {
      --fail_next;
      if (fail_refused) throw AuthError("renewing rlock:{job}: Redis refused: NOPERM");
      throw UnavailableError("timed out waiting for a reply from redis://fake:6379");
    }
  }

  void lose_answer() {
    if (lose_answers > 0) {
      --lose_answers;
      throw UnavailableError("timed out waiting for a reply from redis://fake:6379");
    }
  }

  LockInfo inspect_now(std::string_view name) const {
    LockInfo info;
    info.server_now_ms = server_ms();
    if (auto queue = queues.find(name); queue != queues.end()) {
      info.waiters = static_cast<std::int64_t>(queue->second.size());
    }
    if (!is_held(name)) return info;
    const Entry& entry = locks.find(name)->second;
    HolderInfo& holder = info.holders.emplace_back();
    holder.has_metadata = !entry.meta.host.empty();
    holder.meta = entry.meta;
    holder.remaining_ms =
        entry.expires ? std::chrono::duration_cast<Millis>(*entry.expires - m_clock.now()).count() : -1;
    if (auto fence = fences.find(name); fence != fences.end()) holder.fence = fence->second;
    return info;
  }

  FakeClock& m_clock;
  AcquireRequest m_sent;
};

} // namespace rlock::lock::test
