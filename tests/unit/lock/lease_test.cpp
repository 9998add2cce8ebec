// SPDX-License-Identifier: MIT
// Tests for the lease state machine (lock/lease) with a fake store and a hand-driven clock.
#include "lock/lease.hpp"

#include "fake_lock_store.hpp"

#include <doctest/doctest.h>

using namespace std::chrono_literals;
using rlock::lock::Lease;
using rlock::lock::Millis;
using rlock::lock::TimePoint;
using rlock::lock::TokenCheck;
using rlock::lock::test::FakeClock;
using rlock::lock::test::FakeLockStore;
using Status = rlock::lock::Lease::Status;

namespace {

constexpr Millis k_ttl = 30s; // renew every 10s, margin 3s, retry every 1s

// A store holding "job" for "tok-1" (30s TTL, confirmed at the clock's start) and its lease.
struct Fixture {
  FakeClock clock;
  FakeLockStore store{clock};
  TimePoint t0 = clock.now();

  Fixture() { store.locks["job"] = FakeLockStore::Entry{"tok-1", t0 + k_ttl, {}}; }

  Lease make_lease(Millis ttl = k_ttl) { return Lease(store, "job", "tok-1", 7, ttl, t0, clock.clock()); }
};

} // namespace

TEST_CASE("safety_margin is a tenth of the TTL, at least 1ms") {
  CHECK(rlock::lock::safety_margin(30s) == 3s);
  CHECK(rlock::lock::safety_margin(100ms) == 10ms);
  CHECK(rlock::lock::safety_margin(5ms) == 1ms);
}

TEST_CASE("a new lease is held, knows its identity and its deadlines") {
  Fixture f;
  Lease lease = f.make_lease();
  CHECK(lease.status() == Status::held);
  CHECK(lease.name() == "job");
  CHECK(lease.token() == "tok-1");
  CHECK(lease.fence() == 7);
  CHECK(lease.ttl() == k_ttl);
  CHECK(lease.confirmed_from() == f.t0);
  CHECK(lease.safety_deadline() == f.t0 + 27s);
  CHECK(lease.next_due() == f.t0 + 10s);
  lease.detach();
}

TEST_CASE("renewal is due at confirmed_from + ttl/3, not before") {
  Fixture f;
  Lease lease = f.make_lease();
  f.clock.set(f.t0 + 10s - 1ms);
  CHECK(lease.renew_if_due() == Status::held);
  CHECK(f.store.renew_calls.empty());

  f.clock.set(f.t0 + 10s);
  CHECK(lease.renew_if_due() == Status::held);
  REQUIRE(f.store.renew_calls.size() == 1);
  const auto& call = f.store.renew_calls[0];
  CHECK(call.name == "job");
  CHECK(call.token == "tok-1");
  CHECK(call.ttl == k_ttl);
  CHECK(call.keeper_pid == 0);
  REQUIRE(call.deadline.has_value());
  CHECK(*call.deadline == f.t0 + 27s); // the call cannot run past the old deadline

  CHECK(lease.confirmed_from() == f.t0 + 10s);
  CHECK(lease.safety_deadline() == f.t0 + 37s);
  CHECK(lease.next_due() == f.t0 + 20s);
  CHECK(lease.last_error().empty());

  // Not due again until the next third.
  f.clock.set(f.t0 + 19s);
  lease.renew_if_due();
  CHECK(f.store.renew_calls.size() == 1);
  f.clock.set(f.t0 + 20s);
  lease.renew_if_due();
  CHECK(f.store.renew_calls.size() == 2);
  CHECK(lease.safety_deadline() == f.t0 + 47s);
}

TEST_CASE("after a renewal the deadline counts from when it was sent, not answered") {
  Fixture f;
  Lease lease = f.make_lease();
  f.store.latency = 2500ms;
  f.clock.set(f.t0 + 10s);
  CHECK(lease.renew_if_due() == Status::held);
  CHECK(f.clock.now() == f.t0 + 12'500ms);
  CHECK(lease.confirmed_from() == f.t0 + 10s);
  CHECK(lease.safety_deadline() == f.t0 + 10s + k_ttl - 3s);
}

TEST_CASE("a transient failure keeps the lease held and retries after the retry interval") {
  Fixture f;
  Lease lease = f.make_lease();
  f.store.fail_next = 1;
  f.clock.set(f.t0 + 10s);
  CHECK(lease.renew_if_due() == Status::held);
  CHECK(f.store.renew_calls.size() == 1);
  CHECK(lease.last_error().find("timed out") != std::string::npos);
  CHECK(lease.confirmed_from() == f.t0);        // not renewed
  CHECK(lease.safety_deadline() == f.t0 + 27s); // so the deadline did not move
  CHECK(lease.next_due() == f.t0 + 11s);        // ttl/20 = 1.5s, clamped to 1s

  f.clock.set(f.t0 + 10'999ms);
  lease.renew_if_due();
  CHECK(f.store.renew_calls.size() == 1);

  f.clock.set(f.t0 + 11s);
  CHECK(lease.renew_if_due() == Status::held);
  CHECK(f.store.renew_calls.size() == 2);
  CHECK(lease.confirmed_from() == f.t0 + 11s);
  CHECK(lease.last_error().empty());
  CHECK(lease.next_due() == f.t0 + 21s);
}

TEST_CASE("a refused renewal is retried like a transient one: only the deadline ends the lease") {
  Fixture f;
  Lease lease = f.make_lease();
  f.store.fail_next = 1'000;
  f.store.fail_refused = true;
  f.clock.set(f.t0 + 10s);
  CHECK(lease.renew_if_due() == Status::held);
  CHECK(lease.last_error().find("NOPERM") != std::string::npos);
  CHECK(lease.next_due() == f.t0 + 11s);
  while (lease.status() == Status::held) {
    f.clock.set(lease.next_due());
    lease.renew_if_due();
  }
  CHECK(lease.status() == Status::expired);
  CHECK(f.clock.now() == f.t0 + 27s);
}

TEST_CASE("the retry interval is ttl/20 within [20ms, 1s]") {
  SUBCASE("short TTL: 20ms floor") {
    Fixture f;
    Lease lease = f.make_lease(200ms); // renew at 66ms, deadline 180ms
    f.store.fail_next = 1;
    f.clock.set(f.t0 + 66ms);
    lease.renew_if_due();
    CHECK(lease.next_due() == f.t0 + 86ms);
  }
  SUBCASE("medium TTL: ttl/20") {
    Fixture f;
    Lease lease = f.make_lease(10s);
    f.store.fail_next = 1;
    f.clock.set(f.t0 + 3333ms);
    lease.renew_if_due();
    CHECK(lease.next_due() == f.t0 + 3333ms + 500ms);
  }
}

TEST_CASE("Redis unreachable until the safety deadline: the lease expires, never later") {
  Fixture f;
  Lease lease = f.make_lease();
  f.store.fail_next = 1'000;
  int steps = 0;
  while (lease.status() == Status::held && steps++ < 1'000) {
    f.clock.set(lease.next_due());
    lease.renew_if_due();
    CHECK(lease.next_due() <= lease.safety_deadline());
  }
  CHECK(lease.status() == Status::expired);
  CHECK(f.clock.now() == f.t0 + 27s);
  // One attempt at 10s, then every second from 11s to 26s; none at or after the deadline.
  CHECK(f.store.renew_calls.size() == 17);
  for (const auto& call : f.store.renew_calls) {
    CHECK(call.at < f.t0 + 27s);
    CHECK(call.deadline.value_or(TimePoint::max()) == f.t0 + 27s);
  }
  CHECK_FALSE(lease.last_error().empty());

  // Expired is final: no more renewals.
  f.clock.advance(1s);
  CHECK(lease.renew_if_due() == Status::expired);
  CHECK(f.store.renew_calls.size() == 17);
}

TEST_CASE("an expired lease is abandoned on destruction: a compare-and-delete bounded by k_abandon_bound") {
  // A renewal whose answer was lost may have extended the lease on the server.
  Fixture f;
  {
    Lease lease = f.make_lease();
    f.clock.set(f.t0 + 26s);
    f.store.fail_next = 1;
    f.store.latency = 2s; // the renewal went out, its answer never came
    CHECK(lease.renew_if_due() == Status::expired);
    f.store.latency = 0ms;
    CHECK(f.store.release_calls.empty()); // not while the owner may still rely on it
  }
  REQUIRE(f.store.release_calls.size() == 1);
  CHECK(f.store.release_calls[0].token == "tok-1");
  CHECK(f.store.release_calls[0].min_hold == 0ms);
  CHECK(f.store.release_calls[0].deadline == f.clock.now() + rlock::lock::k_abandon_bound);
  CHECK_FALSE(f.store.is_held("job"));

  SUBCASE("another token's lock is left alone") {
    Fixture g;
    {
      Lease lease = g.make_lease();
      g.clock.set(g.t0 + 27s);
      CHECK(lease.renew_if_due() == Status::expired);
      g.store.locks["job"] = FakeLockStore::Entry{"intruder", g.clock.now() + 30s, {}};
    }
    CHECK(g.store.release_calls.size() == 1);
    CHECK(g.store.holder_token("job") == "intruder");
  }
  SUBCASE("an unreachable store is not waited for beyond the call") {
    Fixture g;
    {
      Lease lease = g.make_lease();
      g.clock.set(g.t0 + 27s);
      CHECK(lease.renew_if_due() == Status::expired);
      g.store.fail_next = 10;
    } // would std::terminate if the error escaped
    CHECK(g.store.release_calls.size() == 1);
  }
}

TEST_CASE("a failure that returns after the deadline expires the lease at once") {
  Fixture f;
  Lease lease = f.make_lease();
  f.clock.set(f.t0 + 26s);
  f.store.fail_next = 1;
  f.store.latency = 2s; // the failed call returns at 28s
  CHECK(lease.renew_if_due() == Status::expired);
}

TEST_CASE("a late first check past the deadline expires without calling Redis") {
  Fixture f;
  Lease lease = f.make_lease();
  f.clock.set(f.t0 + 27s);
  CHECK(lease.renew_if_due() == Status::expired);
  CHECK(f.store.renew_calls.empty());
}

TEST_CASE("next_due never falls after the safety deadline, even when the retry would") {
  Fixture f;
  Lease lease = f.make_lease(100ms); // renew at 33ms, retry every 20ms, deadline 90ms
  f.store.fail_next = 1'000;
  f.clock.set(f.t0 + 85ms);
  CHECK(lease.renew_if_due() == Status::held);
  CHECK(lease.next_due() == f.t0 + 90ms); // not 105ms
  CHECK(lease.next_due() == lease.safety_deadline());

  Fixture tiny;
  Lease short_lease = tiny.make_lease(10ms); // margin 1ms, deadline 9ms; retry 20ms > ttl
  tiny.store.fail_next = 1;
  tiny.clock.set(tiny.t0 + 3ms);
  CHECK(short_lease.renew_if_due() == Status::held);
  CHECK(short_lease.next_due() <= short_lease.safety_deadline());
  CHECK(short_lease.next_due() == tiny.t0 + 9ms);
}

TEST_CASE("a renewal that finds the lock free or taken loses the lease for good") {
  SUBCASE("free: expired or force-released") {
    Fixture f;
    Lease lease = f.make_lease();
    f.store.locks.clear();
    f.clock.set(f.t0 + 10s);
    CHECK(lease.renew_if_due() == Status::lost_free);
  }
  SUBCASE("taken by another token") {
    Fixture f;
    Lease lease = f.make_lease();
    f.store.locks["job"].token = "intruder";
    f.clock.set(f.t0 + 10s);
    CHECK(lease.renew_if_due() == Status::lost_taken);
    f.clock.advance(10s);
    CHECK(lease.renew_if_due() == Status::lost_taken);
    CHECK(f.store.renew_calls.size() == 1);
  }
  SUBCASE("the store's answer is what counts") {
    Fixture f;
    Lease lease = f.make_lease();
    f.store.renew_answer = TokenCheck::taken;
    f.clock.set(f.t0 + 10s);
    CHECK(lease.renew_if_due() == Status::lost_taken);
  }
  SUBCASE("a lost lease is not released on destruction (the lock may be someone else's)") {
    Fixture f;
    {
      Lease lease = f.make_lease();
      f.store.renew_answer = TokenCheck::free;
      f.clock.set(f.t0 + 10s);
      CHECK(lease.renew_if_due() == Status::lost_free);
    }
    CHECK(f.store.release_calls.empty());
  }
}

TEST_CASE("a renewal the store could not confirm (too few replicas) does not move the safety deadline") {
  Fixture f;
  Lease lease = f.make_lease();
  f.store.renew_answer = TokenCheck::unconfirmed;
  f.clock.set(f.t0 + 10s);
  CHECK(lease.renew_if_due() == Status::held);
  CHECK(lease.unconfirmed());
  CHECK(lease.safety_deadline() == f.t0 + 27s);
  CHECK(lease.confirmed_from() == f.t0);
  // Tried again soon (every TTL/20, at most 1s), as after an error.
  CHECK(lease.next_due() == f.t0 + 11s);
  f.clock.set(f.t0 + 11s);
  CHECK(lease.renew_if_due() == Status::held);
  CHECK(f.store.renew_calls.size() == 2);

  SUBCASE("never confirmed: the lease expires at the deadline of the last confirmed renewal") {
    f.clock.set(f.t0 + 27s);
    CHECK(lease.renew_if_due() == Status::expired);
    CHECK(lease.unconfirmed());
  }
  SUBCASE("confirmed again: the deadline moves from that renewal") {
    f.store.renew_answer.reset();
    f.clock.set(f.t0 + 12s);
    CHECK(lease.renew_if_due() == Status::held);
    CHECK_FALSE(lease.unconfirmed());
    CHECK(lease.safety_deadline() == f.t0 + 12s + 27s);
  }
  lease.detach();
}

TEST_CASE("record_keeper() renews through the lease, naming the keeper") {
  Fixture f;
  Lease lease = f.make_lease();
  f.clock.set(f.t0 + 5s);
  CHECK(lease.record_keeper(4242) == Status::held);
  REQUIRE(f.store.renew_calls.size() == 1);
  CHECK(f.store.renew_calls[0].keeper_pid == 4242);
  CHECK(f.store.renew_calls[0].token == "tok-1");
  CHECK(f.store.renew_calls[0].ttl == k_ttl);
  CHECK(f.store.renew_calls[0].deadline == f.t0 + 27s);
  // It counts as a renewal: the deadline moves, the next renewal is due a third later.
  CHECK(lease.confirmed_from() == f.t0 + 5s);
  CHECK(lease.next_due() == f.t0 + 15s);

  SUBCASE("a lease lost meanwhile says so") {
    f.store.locks["job"].token = "intruder";
    CHECK(lease.record_keeper(4243) == Status::lost_taken);
  }
}

TEST_CASE("the destructor releases a held lease") {
  Fixture f;
  {
    Lease lease = f.make_lease();
    CHECK(f.store.is_held("job"));
  }
  REQUIRE(f.store.release_calls.size() == 1);
  CHECK(f.store.release_calls[0].name == "job");
  CHECK(f.store.release_calls[0].token == "tok-1");
  CHECK(f.store.release_calls[0].min_hold == 0ms);
  CHECK_FALSE(f.store.is_held("job"));
}

TEST_CASE("the destructor swallows a failing release, after one retry") {
  Fixture f;
  {
    Lease lease = f.make_lease();
    f.store.fail_next = 2;
  } // would std::terminate if the error escaped the noexcept destructor
  CHECK(f.store.release_calls.size() == 2);
}

TEST_CASE("a release whose answer is lost is sent once more; finding the lock gone then is success") {
  Fixture f;
  Lease lease = f.make_lease();
  f.store.lose_answers = 1; // the first release takes effect, its answer is lost
  auto result = lease.release();
  CHECK(result.outcome == TokenCheck::ok);
  CHECK(f.store.release_calls.size() == 2);
  CHECK_FALSE(f.store.is_held("job"));
  CHECK(lease.status() == Status::released);

  SUBCASE("the retry's answer lost as well: the error propagates, the lease stays held") {
    Fixture g;
    Lease held = g.make_lease();
    g.store.fail_next = 2;
    CHECK_THROWS_AS((void)held.release(), rlock::UnavailableError);
    CHECK(g.store.release_calls.size() == 2);
    CHECK(held.status() == Status::held);
  }
}

TEST_CASE("detach() hands the lock over without releasing it") {
  Fixture f;
  {
    Lease lease = f.make_lease();
    lease.detach();
    CHECK(lease.status() == Status::released);
    f.clock.set(f.t0 + 10s);
    CHECK(lease.renew_if_due() == Status::released);
  }
  CHECK(f.store.release_calls.empty());
  CHECK(f.store.renew_calls.empty());
  CHECK(f.store.is_held("job"));
}

TEST_CASE("release() passes min_hold through and releases only once") {
  Fixture f;
  {
    Lease lease = f.make_lease();
    auto result = lease.release(5min);
    CHECK(result.outcome == TokenCheck::ok);
    CHECK(result.kept_for == 5min);
    CHECK(lease.status() == Status::released);
  }
  REQUIRE(f.store.release_calls.size() == 1);
  CHECK(f.store.release_calls[0].min_hold == 5min);
  CHECK(f.store.release_calls[0].token == "tok-1");
}

TEST_CASE("release() reports a lock that was taken over") {
  Fixture f;
  Lease lease = f.make_lease();
  f.store.locks["job"].token = "intruder";
  CHECK(lease.release().outcome == TokenCheck::taken);
  CHECK(f.store.locks["job"].token == "intruder"); // the other holder's lock is left alone
  CHECK(lease.status() == Status::released);
}

TEST_CASE("moving a lease moves the duty to release it") {
  Fixture f;
  {
    Lease first = f.make_lease();
    Lease second(std::move(first));
    CHECK(second.status() == Status::held);
    CHECK(second.token() == "tok-1");
    CHECK(first.status() == Status::released); // NOLINT(bugprone-use-after-move): the contract
  }
  CHECK(f.store.release_calls.size() == 1);
}

TEST_CASE("move-assigning over a held lease releases the old one first") {
  Fixture f;
  f.store.locks["other"] = FakeLockStore::Entry{"tok-2", f.t0 + k_ttl, {}};
  {
    Lease target = f.make_lease();
    Lease source(f.store, "other", "tok-2", 8, k_ttl, f.t0, f.clock.clock());
    target = std::move(source);
    REQUIRE(f.store.release_calls.size() == 1);
    CHECK(f.store.release_calls[0].name == "job");
    CHECK(target.name() == "other");
    CHECK(target.fence() == 8);
    CHECK(source.status() == Status::released); // NOLINT(bugprone-use-after-move)
  }
  REQUIRE(f.store.release_calls.size() == 2);
  CHECK(f.store.release_calls[1].name == "other");
  CHECK(f.store.release_calls[1].token == "tok-2");
}
