// SPDX-License-Identifier: MIT
// Tests for acquire(): try-once, bounded and unbounded waits (lock/acquirer) on a fake store.
#include "lock/acquirer.hpp"

#include "fake_lock_store.hpp"

#include <csignal>
#include <doctest/doctest.h>
#include <set>

using namespace std::chrono_literals;
using rlock::lock::acquire;
using rlock::lock::AcquireRequest;
using rlock::lock::HolderMeta;
using rlock::lock::k_foreign_recheck;
using rlock::lock::k_line;
using rlock::lock::k_max_fallback;
using rlock::lock::Lease;
using rlock::lock::LockInfo;
using rlock::lock::Millis;
using rlock::lock::TimePoint;
using rlock::lock::WaitPolicy;
using rlock::lock::test::FakeClock;
using rlock::lock::test::FakeLockStore;

namespace {

AcquireRequest request_for(const std::string& name) {
  AcquireRequest request;
  request.name = name;
  request.token = "my-token";
  request.ttl = 30s;
  request.meta.host = "here";
  request.meta.pid = 100;
  request.meta.user = "me";
  request.meta.command = "job.sh";
  return request;
}

rlock::lock::HolderMeta someone_else() {
  rlock::lock::HolderMeta meta;
  meta.host = "web1";
  meta.pid = 4242;
  meta.user = "alice";
  meta.command = "backup.sh";
  return meta;
}

WaitPolicy try_once() {
  WaitPolicy policy;
  policy.max_wait = 0ms;
  return policy;
}

WaitPolicy wait_for(Millis max_wait) {
  WaitPolicy policy;
  policy.max_wait = max_wait;
  return policy;
}

bool is_hex_token(const std::string& text) {
  return text.size() == 32 && text.find_first_not_of("0123456789abcdef") == std::string::npos;
}

struct BusyCall {
  LockInfo lock;
  Millis waited;
};

} // namespace

TEST_CASE("try-once on a free lock takes it and returns a held lease") {
  FakeClock clock;
  FakeLockStore store(clock);
  store.latency = 40ms;
  auto sent = clock.now();
  std::optional<Lease> lease = acquire(store, request_for("job"), try_once(), {}, clock.clock());
  REQUIRE(lease.has_value());
  CHECK(lease->status() == Lease::Status::held);
  CHECK(lease->name() == "job");
  CHECK(lease->token() == "my-token");
  CHECK(lease->ttl() == 30s);
  CHECK(lease->fence() == 1);
  CHECK(lease->confirmed_from() == sent); // when the request left, not when it came back
  CHECK(store.holder_token("job") == "my-token");

  REQUIRE(store.acquire_calls.size() == 1);
  const AcquireRequest& sent_request = store.acquire_calls[0];
  CHECK(sent_request.ticket.empty());
  CHECK(sent_request.ttl == 30s);
  CHECK(sent_request.meta.command == "job.sh");
  CHECK(store.wait_calls.empty());
  CHECK(store.leave_calls.empty());

  lease.reset(); // the lease's clock still refers to `clock`: release while it lives
  CHECK_FALSE(store.is_held("job"));
}

TEST_CASE("a lease runs from the attempt the store sent again by itself, not from the first send") {
  FakeClock clock;
  FakeLockStore store(clock);
  store.resend_after = 45s; // longer than the TTL: from the first send the lease would be over
  std::optional<Lease> lease = acquire(store, request_for("job"), try_once(), {}, clock.clock());
  REQUIRE(lease.has_value());
  CHECK(lease->confirmed_from() == clock.at(45s));
  CHECK(lease->safety_deadline() > clock.now());
}

TEST_CASE("fences increase with each acquisition") {
  FakeClock clock;
  FakeLockStore store(clock);
  for (std::int64_t expected = 1; expected <= 3; ++expected) {
    auto lease = acquire(store, request_for("job"), try_once(), {}, clock.clock());
    REQUIRE(lease.has_value());
    CHECK(lease->fence() == expected);
  }
}

TEST_CASE("try-once on a busy lock makes one attempt and never queues") {
  FakeClock clock;
  FakeLockStore store(clock);
  store.hold_elsewhere("job", 20s, someone_else());
  std::vector<BusyCall> busy;
  auto lease = acquire(
      store, request_for("job"), try_once(),
      [&](const LockInfo& lock, Millis waited) {
        busy.push_back({lock, waited});
      },
      clock.clock());
  CHECK_FALSE(lease.has_value());
  REQUIRE(store.acquire_calls.size() == 1);
  CHECK(store.acquire_calls[0].ticket.empty());
  CHECK(store.queues["job"].empty());
  CHECK(store.wait_calls.empty());
  CHECK(store.leave_calls.empty());
  CHECK(store.holder_token("job") == "foreign-token");

  REQUIRE(busy.size() == 1);
  REQUIRE(busy[0].lock.held());
  REQUIRE(busy[0].lock.holders.size() == 1);
  CHECK(busy[0].lock.holders.at(0).meta.user == "alice");
  CHECK(busy[0].lock.holders.at(0).meta.pid == 4242);
  CHECK(busy[0].lock.holders.at(0).remaining_ms == 20'000);
  CHECK(busy[0].waited == 0ms);
}

TEST_CASE("a bounded wait gives up after max_wait on the clock and leaves the line") {
  FakeClock clock;
  FakeLockStore store(clock);
  store.hold_elsewhere("job", 1h, someone_else());
  std::vector<BusyCall> busy;
  auto lease = acquire(
      store, request_for("job"), wait_for(5s),
      [&](const LockInfo& lock, Millis waited) {
        busy.push_back({lock, waited});
      },
      clock.clock());
  CHECK_FALSE(lease.has_value());

  // Gave up once the wait was over, and not long after.
  CHECK(clock.elapsed() >= 5s);
  CHECK(clock.elapsed() <= 5s + 10ms);
  // Slept once, cut to the remaining wait, then re-checked a last time.
  REQUIRE(store.wait_calls.size() == 1);
  CHECK(store.wait_calls[0].timeout >= 5s);
  CHECK(store.wait_calls[0].timeout <= 5s + 1ms);
  REQUIRE(store.acquire_calls.size() == 2);

  // One ticket, queued for the whole wait, removed on giving up.
  std::string ticket = store.acquire_calls[0].ticket;
  CHECK(is_hex_token(ticket));
  CHECK(store.acquire_calls[1].ticket == ticket);
  CHECK(store.wait_calls[0].ticket == ticket);
  CHECK(store.wait_calls[0].name == "job");
  REQUIRE(store.leave_calls.size() == 1);
  CHECK(store.leave_calls[0] == std::pair<std::string, std::string>("job", ticket));
  CHECK(store.queues["job"].empty());

  REQUIRE(busy.size() == 2);
  CHECK(busy[0].waited == 0ms);
  CHECK(busy[1].waited >= 5s);
  CHECK(busy[1].lock.holders.at(0).meta.host == "web1");
}

TEST_CASE("a bounded wait succeeds when the holder's lease runs out within it") {
  FakeClock clock;
  FakeLockStore store(clock);
  store.hold_elsewhere("job", 2s, someone_else());
  auto lease = acquire(store, request_for("job"), wait_for(10s), {}, clock.clock());
  REQUIRE(lease.has_value());
  // Slept until just after the holder's expiry, not the whole wait.
  REQUIRE(store.wait_calls.size() == 1);
  CHECK(store.wait_calls[0].timeout == 2005ms);
  CHECK(clock.elapsed() == 2005ms);
  CHECK(store.leave_calls.empty()); // the store took our ticket off the line on success
  CHECK(store.queues["job"].empty());
  CHECK(store.holder_token("job") == "my-token");
}

TEST_CASE("waiting forever succeeds when the lock is freed after K attempts") {
  FakeClock clock;
  FakeLockStore store(clock);
  store.hold_elsewhere("job", std::nullopt, someone_else());
  store.free_on_attempt = 4;
  int busy_calls = 0;
  WaitPolicy forever;
  auto lease = acquire(
      store, request_for("job"), forever, [&](const LockInfo&, Millis) { ++busy_calls; }, clock.clock());
  REQUIRE(lease.has_value());
  CHECK(lease->fence() == 1);
  CHECK(store.acquire_calls.size() == 4);
  CHECK(store.wait_calls.size() == 3);
  CHECK(busy_calls == 3);
  std::set<std::string> tickets;
  for (const auto& request : store.acquire_calls) tickets.insert(request.ticket);
  CHECK(tickets.size() == 1);
  CHECK(is_hex_token(*tickets.begin()));
  CHECK(store.leave_calls.empty());
  CHECK(store.queues["job"].empty());
}

TEST_CASE("a foreign holder without a TTL makes the waiter re-check every k_foreign_recheck, not spin") {
  FakeClock clock;
  FakeLockStore store(clock);
  store.hold_elsewhere("job", std::nullopt); // a foreign client's key: no metadata, no expiry
  store.free_on_attempt = 3;
  std::vector<BusyCall> busy;
  auto lease = acquire(
      store, request_for("job"), WaitPolicy{},
      [&](const LockInfo& lock, Millis waited) {
        busy.push_back({lock, waited});
      },
      clock.clock());
  REQUIRE(lease.has_value());
  REQUIRE(store.wait_calls.size() == 2);
  for (const auto& call : store.wait_calls) CHECK(call.timeout == k_foreign_recheck);
  REQUIRE(busy.size() == 2);
  CHECK(busy[0].lock.holders.at(0).remaining_ms == -1);
  CHECK_FALSE(busy[0].lock.holders.at(0).has_metadata);
  CHECK(busy[1].waited == k_foreign_recheck);
}

TEST_CASE("an rlock holder without a TTL makes the waiter sleep k_max_fallback (its release wakes us)") {
  FakeClock clock;
  FakeLockStore store(clock);
  HolderMeta meta;
  meta.host = "web1";
  store.hold_elsewhere("job", std::nullopt, meta);
  store.free_on_attempt = 2;
  auto lease = acquire(store, request_for("job"), WaitPolicy{}, {}, clock.clock());
  REQUIRE(lease.has_value());
  REQUIRE(store.wait_calls.size() == 1);
  CHECK(store.wait_calls[0].timeout == k_max_fallback);
}

TEST_CASE("the fallback sleep follows the holder's remaining lease, within bounds") {
  struct Case {
    std::optional<Millis> holder_ttl;
    Millis max_sleep;
    Millis expected;
    bool foreign = false;
  };
  for (Case c : {Case{std::nullopt, k_max_fallback, k_max_fallback}, Case{std::nullopt, 1s, 1s},
                 Case{2s, k_max_fallback, 2005ms}, Case{2s, 500ms, 500ms}, Case{1h, k_max_fallback, k_max_fallback},
                 Case{1h, k_max_fallback, k_foreign_recheck, true}, Case{300ms, k_max_fallback, 305ms, true}}) {
    CAPTURE(c.expected.count());
    FakeClock clock;
    FakeLockStore store(clock);
    HolderMeta meta;
    if (!c.foreign) meta.host = "web1";
    store.hold_elsewhere("job", c.holder_ttl, meta);
    store.free_on_attempt = 2;
    store.on_wait = [&] { store.queues["job"].clear(); };
    WaitPolicy policy;
    policy.max_sleep = c.max_sleep;
    auto lease = acquire(store, request_for("job"), policy, {}, clock.clock());
    REQUIRE(lease.has_value());
    REQUIRE(store.wait_calls.size() == 1);
    CHECK(store.wait_calls[0].timeout == c.expected);
    CHECK(store.wait_calls[0].timeout > 0ms);
  }
}

TEST_CASE("a waiter behind the first sleeps by its place in line, spread by its ticket") {
  struct Case {
    int ahead;                   // tickets in line before ours
    std::optional<Millis> lease; // the holder's remaining lease; empty: the lock is free
    Millis low, high;            // the sleep, in [low, high)
  };
  for (Case c :
       {Case{1, 2s, 2005ms + k_line.head_slack, 2005ms + k_line.head_slack + k_line.runner_jitter},
        Case{1, std::nullopt, k_line.head_slack, k_line.head_slack + k_line.runner_jitter},
        // Third: after the second's ticket would have lapsed (the two ahead may both be dead).
        Case{2, 2s, 2005ms + k_line.runner_slack + k_line.head_slack,
             2005ms + k_line.runner_slack + k_line.head_slack + k_line.runner_jitter},
        Case{2, std::nullopt, k_line.runner_slack + k_line.head_slack,
             k_line.runner_slack + k_line.head_slack + k_line.runner_jitter},
        Case{3, 2s, k_line.idle_recheck - k_line.idle_recheck / 10, k_line.idle_recheck + k_line.idle_recheck / 10},
        Case{7, std::nullopt, k_line.idle_recheck - k_line.idle_recheck / 10,
             k_line.idle_recheck + k_line.idle_recheck / 10}}) {
    CAPTURE(c.ahead);
    FakeClock clock;
    FakeLockStore store(clock);
    for (int i = 0; i < c.ahead; ++i) store.queues["job"].push_back("ticket-ahead-" + std::to_string(i));
    if (c.lease) store.hold_elsewhere("job", c.lease, someone_else());
    store.free_on_attempt = 2;
    store.on_wait = [&] { store.queues["job"].clear(); };
    auto lease = acquire(store, request_for("job"), WaitPolicy{}, {}, clock.clock());
    REQUIRE(lease.has_value());
    REQUIRE(store.wait_calls.size() == 1);
    CHECK(store.wait_calls[0].timeout >= c.low);
    CHECK(store.wait_calls[0].timeout < c.high);
  }
}

TEST_CASE("a signal while waiting leaves the line and propagates Interrupted") {
  FakeClock clock;
  FakeLockStore store(clock);
  store.hold_elsewhere("job", 1h, someone_else());
  store.interrupt_wait_with = SIGTERM;
  WaitPolicy policy;
  policy.interrupt_fd = 42; // passed with the wait, to the store's blocking call
  int signal_number = 0;
  try {
    (void)acquire(store, request_for("job"), policy, {}, clock.clock());
    FAIL_CHECK("acquire returned instead of throwing Interrupted");
  } catch (const rlock::Interrupted& interrupted) {
    signal_number = interrupted.signal_number();
  }
  CHECK(signal_number == SIGTERM);
  REQUIRE(store.wait_calls.size() == 1);
  CHECK(store.wait_calls[0].interrupt_fd == 42);
  REQUIRE(store.acquire_calls.size() == 1);
  std::string ticket = store.acquire_calls[0].ticket;
  CHECK(is_hex_token(ticket));
  REQUIRE(store.leave_calls.size() == 1);
  CHECK(store.leave_calls[0] == std::pair<std::string, std::string>("job", ticket));
  CHECK(store.queues["job"].empty());
  CHECK(store.holder_token("job") == "foreign-token");
}

TEST_CASE("Redis failing mid-wait leaves the line and propagates the error") {
  FakeClock clock;
  FakeLockStore store(clock);
  store.hold_elsewhere("job", 1h, someone_else());
  store.on_wait = [&] { store.fail_next = 1; };
  CHECK_THROWS_AS((void)acquire(store, request_for("job"), WaitPolicy{}, {}, clock.clock()), rlock::UnavailableError);
  REQUIRE(store.acquire_calls.size() == 2);
  REQUIRE(store.leave_calls.size() == 1);
  CHECK(store.leave_calls[0].second == store.acquire_calls[0].ticket);
}

TEST_CASE("a ticket the line still holds is removed again while Redis refuses, for a moment at most") {
  SUBCASE("Redis back within the moment: the ticket is gone") {
    FakeClock clock;
    FakeLockStore store(clock);
    store.hold_elsewhere("job", 1h, someone_else());
    store.on_wait = [&] {
      store.fail_next = 1;  // the wait ends in a reset...
      store.fail_leave = 2; // ...and the first two clean-ups find Redis refusing
    };
    CHECK_THROWS_AS((void)acquire(store, request_for("job"), WaitPolicy{}, {}, clock.clock()), rlock::UnavailableError);
    REQUIRE(store.leave_calls.size() == 3);
    CHECK(store.leave_calls[2].second == store.acquire_calls[0].ticket);
    CHECK(store.queues["job"].empty());
  }
  SUBCASE("Redis still refusing: a bounded number of tries, then the ticket is left to lapse") {
    FakeClock clock;
    FakeLockStore store(clock);
    store.hold_elsewhere("job", 1h, someone_else());
    store.on_wait = [&] {
      store.fail_next = 1;
      store.fail_leave = 100;
    };
    CHECK_THROWS_AS((void)acquire(store, request_for("job"), WaitPolicy{}, {}, clock.clock()), rlock::UnavailableError);
    CHECK(store.leave_calls.size() == 6);
    CHECK_FALSE(store.queues["job"].empty());
  }
  SUBCASE("nothing ever sent (Redis down from the start): one try, the error at once") {
    FakeClock clock;
    FakeLockStore store(clock);
    store.fail_send = 1;
    store.fail_leave = 100;
    CHECK_THROWS_AS((void)acquire(store, request_for("job"), WaitPolicy{}, {}, clock.clock()), rlock::UnavailableError);
    CHECK(store.leave_calls.size() == 1);
  }
}

TEST_CASE("with outage_patience, a blip mid-wait is ridden out, but Redis down from the start is not") {
  FakeClock clock;
  FakeLockStore store(clock);
  store.hold_elsewhere("job", 1h, someone_else());
  store.free_on_attempt = 3;
  store.on_wait = [&] {
    if (store.acquire_calls.size() == 1) store.fail_next = 1; // the re-check after the first sleep fails
  };
  WaitPolicy policy;
  policy.outage_patience = 30s;
  auto lease = acquire(store, request_for("job"), policy, {}, clock.clock());
  REQUIRE(lease.has_value());
  CHECK(store.leave_calls.empty());

  FakeClock other_clock;
  FakeLockStore down(other_clock);
  down.fail_next = 1;
  CHECK_THROWS_AS((void)acquire(down, request_for("job"), policy, {}, other_clock.clock()), rlock::UnavailableError);
}

TEST_CASE("an attempt the store took but could not confirm is tried again, within the outage patience") {
  FakeClock clock;
  FakeLockStore store(clock);
  SUBCASE("confirmed on the third attempt: the lease comes from that one") {
    store.unconfirm_acquires = 2;
    WaitPolicy policy = wait_for(60s);
    policy.outage_patience = 30s;
    std::optional<Lease> lease = acquire(store, request_for("job"), policy, {}, clock.clock());
    REQUIRE(lease.has_value());
    CHECK(store.acquire_calls.size() == 3);
    CHECK(store.holder_token("job") == "my-token");
    CHECK(lease->fence() == 3);
  }
  SUBCASE("a single try gives up at once, saying why, and leaves nothing") {
    store.unconfirm_acquires = 1;
    CHECK_THROWS_WITH_AS((void)acquire(store, request_for("job"), try_once(), {}, clock.clock()),
                         "only 0 of 1 replicas acknowledged acquiring job", rlock::UnavailableError);
    CHECK(store.acquire_calls.size() == 1);
    CHECK_FALSE(store.is_held("job"));
    CHECK(store.release_calls.empty()); // not an answer lost: nothing to abandon
  }
  SUBCASE("when the wait runs out") {
    store.unconfirm_acquires = 1000;
    store.latency = 400ms;
    WaitPolicy policy = wait_for(1s);
    policy.outage_patience = 30s;
    CHECK_THROWS_AS((void)acquire(store, request_for("job"), policy, {}, clock.clock()), rlock::UnavailableError);
    CHECK(store.acquire_calls.size() == 3);
    CHECK_FALSE(store.is_held("job"));
  }
}

TEST_CASE("an attempt whose answer is lost is abandoned when acquire() gives up: no orphan") {
  FakeClock clock;
  FakeLockStore store(clock);
  store.lose_answers = 1; // the server takes the lock; its answer never arrives
  CHECK_THROWS_AS((void)acquire(store, request_for("job"), try_once(), {}, clock.clock()), rlock::UnavailableError);
  REQUIRE(store.release_calls.size() == 1);
  CHECK(store.release_calls[0].name == "job");
  CHECK(store.release_calls[0].token == "my-token");
  CHECK(store.release_calls[0].deadline == clock.now() + rlock::lock::k_abandon_bound);
  CHECK_FALSE(store.is_held("job"));
}

TEST_CASE("a waiter whose attempt's answer is lost abandons the lock when it gives up") {
  SUBCASE("Redis unreachable from the start: reported at once, after the clean-up") {
    FakeClock clock;
    FakeLockStore store(clock);
    WaitPolicy policy;
    policy.outage_patience = 30s;
    store.lose_answers = 1;
    CHECK_THROWS_AS((void)acquire(store, request_for("job"), policy, {}, clock.clock()), rlock::UnavailableError);
    REQUIRE(store.release_calls.size() == 1);
    CHECK(store.release_calls[0].token == "my-token");
    CHECK_FALSE(store.is_held("job"));
    REQUIRE(store.leave_calls.size() == 1); // and it left the line
    CHECK(store.leave_calls[0].second == store.acquire_calls[0].ticket);
  }
  SUBCASE("a claim of a hand-off whose answer is lost, then the wait runs out") {
    FakeClock clock;
    FakeLockStore store(clock);
    store.hold_elsewhere("job", 1h, someone_else());
    store.on_wait = [&] {
      clock.advance(6s); // woken at the end of the wait
      store.hand_off("job");
      store.lose_answers = 1; // the claim takes the lock, its answer is lost
    };
    WaitPolicy policy = wait_for(5s);
    policy.outage_patience = 30s;
    CHECK_THROWS_AS((void)acquire(store, request_for("job"), policy, {}, clock.clock()), rlock::UnavailableError);
    REQUIRE(store.acquire_calls.size() == 2);
    CHECK_FALSE(store.acquire_calls[1].ticket.empty());
    REQUIRE(store.release_calls.size() == 1);
    CHECK(store.release_calls[0].token == "my-token");
    CHECK_FALSE(store.is_held("job"));
    CHECK(store.leave_calls.size() == 1);
  }
}

TEST_CASE("a lost answer settled by a later attempt is not abandoned") {
  FakeClock clock;
  FakeLockStore store(clock);
  store.hold_elsewhere("job", 1h, someone_else());
  store.on_wait = [&] {
    if (store.acquire_calls.size() == 1) {
      store.locks.erase("job");
      store.lose_answers = 1; // the next attempt takes it and its answer is lost
    }
  };
  WaitPolicy policy;
  policy.outage_patience = 30s;
  auto lease = acquire(store, request_for("job"), policy, {}, clock.clock());
  REQUIRE(lease.has_value());
  CHECK(store.acquire_calls.size() == 3); // the retry found it ours already
  CHECK(lease->fence() == 1);
  CHECK(store.release_calls.empty());
  CHECK(store.holder_token("job") == "my-token");
}

TEST_CASE("each acquire() uses a fresh ticket") {
  FakeClock clock;
  FakeLockStore store(clock);
  store.hold_elsewhere("job", 1h);
  (void)acquire(store, request_for("job"), wait_for(1s), {}, clock.clock());
  (void)acquire(store, request_for("job"), wait_for(1s), {}, clock.clock());
  REQUIRE(store.acquire_calls.size() == 4);
  CHECK(store.acquire_calls[0].ticket != store.acquire_calls[2].ticket);
}

namespace {

// A waiter that, once queued behind someone else's lock, is woken by a release's hand-off
// after `wait` on the clock; with start_on_handoff as given.
struct HandoffFixture {
  FakeClock clock;
  FakeLockStore store{clock};
  WaitPolicy policy;

  explicit HandoffFixture(Millis wait = 3s, bool start_on_handoff = true) {
    store.hold_elsewhere("job", 30s, someone_else());
    store.fences["job"] = 41;
    policy.start_on_handoff = start_on_handoff;
    store.on_wait = [this, wait] {
      clock.advance(wait);
      store.hand_off("job");
    };
  }
};

} // namespace

TEST_CASE("woken by a fresh hand-off, start_on_handoff returns a lease whose claim is still on its way") {
  HandoffFixture fixture;
  auto& [clock, store, policy] = fixture;
  auto lease = acquire(store, request_for("job"), policy, {}, clock.clock());
  REQUIRE(lease.has_value());
  CHECK(lease->claim_pending());
  CHECK(lease->fence() == 42);                // the one the hand-off reserved, known before any answer
  REQUIRE(store.acquire_calls.size() == 2);   // the busy attempt, then the claim
  CHECK(store.receive_deadlines.size() == 1); // the claim's answer is not read yet
  CHECK(store.acquire_calls[1].ticket == store.acquire_calls[0].ticket);
  // Safe until the hand-off's 2 s window ends, less its margin (200 ms), the millisecond
  // rounding and the drift allowance (3 ms for the 3 s since the server's clock was read).
  CHECK(lease->safety_deadline() == clock.now() + 2000ms - 200ms - 1ms - 3ms);
  CHECK(lease->next_due() <= clock.now());

  clock.advance(1ms);
  const TimePoint claimed_at = clock.now() - 1ms;
  CHECK(lease->renew_if_due() == Lease::Status::held);
  CHECK_FALSE(lease->claim_pending());
  CHECK(store.holder_token("job") == "my-token");
  CHECK(lease->confirmed_from() == claimed_at);
  CHECK(lease->safety_deadline() == claimed_at + 30s - 3s);
  CHECK(lease->fence() == 42);
  CHECK(store.queues["job"].empty());
}

TEST_CASE("without start_on_handoff, a hand-off is claimed with a round trip before acquire() returns") {
  HandoffFixture fixture(3s, false);
  auto& [clock, store, policy] = fixture;
  auto lease = acquire(store, request_for("job"), policy, {}, clock.clock());
  REQUIRE(lease.has_value());
  CHECK_FALSE(lease->claim_pending());
  CHECK(store.receive_deadlines.size() == 2);
  CHECK(lease->fence() == 42);
  CHECK(store.holder_token("job") == "my-token");
}

TEST_CASE("a hand-off with less than half its window left is claimed with a round trip first") {
  // The waiter took 1.2 s to see the hand-off: too little is left to start before the answer.
  HandoffFixture fixture(3s);
  auto& [clock, store, policy] = fixture;
  store.on_wait = [&fixture] { // (clang 14 cannot capture structured bindings)
    fixture.clock.advance(3s);
    fixture.store.hand_off("job");
    fixture.clock.advance(1200ms);
  };
  auto lease = acquire(store, request_for("job"), policy, {}, clock.clock());
  REQUIRE(lease.has_value());
  CHECK_FALSE(lease->claim_pending());
  CHECK(store.receive_deadlines.size() == 2);
  CHECK(store.holder_token("job") == "my-token");
}

TEST_CASE("a claim whose answer is lost is sent again; one that never comes expires the lease") {
  SUBCASE("lost once, answered the second time") {
    HandoffFixture fixture;
    auto& [clock, store, policy] = fixture;
    auto lease = acquire(store, request_for("job"), policy, {}, clock.clock());
    REQUIRE(lease.has_value());
    store.fail_next = 1;
    CHECK(lease->renew_if_due() == Lease::Status::held);
    CHECK(lease->claim_pending());
    CHECK_FALSE(lease->last_error().empty());
    CHECK(lease->next_due() == clock.now() + 20ms);
    CHECK(lease->renew_if_due() == Lease::Status::held); // not due yet: nothing sent
    CHECK(store.acquire_calls.size() == 2);
    clock.advance(20ms);
    CHECK(lease->renew_if_due() == Lease::Status::held);
    CHECK(store.acquire_calls.size() == 3);
    CHECK_FALSE(lease->claim_pending());
    CHECK(store.holder_token("job") == "my-token");
  }
  SUBCASE("never answered: expired at the hand-off's safety deadline, never later") {
    HandoffFixture fixture;
    auto& [clock, store, policy] = fixture;
    auto lease = acquire(store, request_for("job"), policy, {}, clock.clock());
    REQUIRE(lease.has_value());
    const TimePoint deadline = lease->safety_deadline();
    store.fail_next = 1'000;
    while (lease->renew_if_due() == Lease::Status::held) {
      REQUIRE(clock.now() < deadline);
      CHECK(lease->next_due() <= deadline);
      clock.set(lease->next_due());
    }
    CHECK(lease->status() == Lease::Status::expired);
    CHECK(clock.now() == deadline);
    for (const auto& until : store.receive_deadlines) {
      if (until) CHECK(*until <= deadline);
    }
    // The claim may have taken the lock: abandoned on destruction, and the line left.
    store.fail_next = 0;
    CHECK(store.release_calls.empty());
    lease.reset();
    REQUIRE(store.release_calls.size() == 1);
    CHECK(store.release_calls[0].token == "my-token");
    REQUIRE(store.leave_calls.size() == 1);
    CHECK(store.leave_calls[0].second == store.acquire_calls[0].ticket);
  }
}

TEST_CASE("a claim that finds the hand-off gone loses the lease and leaves the line") {
  HandoffFixture fixture;
  auto& [clock, store, policy] = fixture;
  auto lease = acquire(store, request_for("job"), policy, {}, clock.clock());
  REQUIRE(lease.has_value());
  store.hold_elsewhere("job", 30s, someone_else()); // force-released and taken meanwhile
  store.claim.reset();
  CHECK(lease->renew_if_due() == Lease::Status::lost_taken);
  REQUIRE(store.leave_calls.size() == 1);
  CHECK(store.leave_calls[0].second == store.acquire_calls[0].ticket);
  store.release_calls.clear();
  lease.reset(); // nothing left to release
  CHECK(store.release_calls.empty());
}

TEST_CASE("releasing a lease whose claim is unanswered reads the answer first") {
  SUBCASE("claimed: released as usual") {
    HandoffFixture fixture;
    auto& [clock, store, policy] = fixture;
    auto lease = acquire(store, request_for("job"), policy, {}, clock.clock());
    REQUIRE(lease.has_value());
    auto result = lease->release();
    CHECK(result.outcome == rlock::lock::TokenCheck::ok);
    CHECK(store.receive_deadlines.size() == 2);
    CHECK_FALSE(store.is_held("job"));
  }
  SUBCASE("the hand-off was gone: the release reports the lock taken, and sends nothing") {
    HandoffFixture fixture;
    auto& [clock, store, policy] = fixture;
    auto lease = acquire(store, request_for("job"), policy, {}, clock.clock());
    REQUIRE(lease.has_value());
    store.hold_elsewhere("job", 30s, someone_else());
    store.claim.reset();
    auto result = lease->release();
    CHECK(result.outcome == rlock::lock::TokenCheck::taken);
    CHECK(store.release_calls.empty());
    CHECK(store.holder_token("job") == "foreign-token");
  }
  SUBCASE("the destructor settles the claim, then releases") {
    HandoffFixture fixture;
    auto& [clock, store, policy] = fixture;
    {
      auto lease = acquire(store, request_for("job"), policy, {}, clock.clock());
      REQUIRE(lease.has_value());
    }
    CHECK(store.release_calls.size() == 1);
    CHECK_FALSE(store.is_held("job"));
  }
}
