// SPDX-License-Identifier: MIT
// RedisLockStore: the LockStore of the lock layer, on one Redis server, by Lua scripts.
#pragma once

#include "lock/lock_store.hpp"
#include "redis/connection.hpp"

#include <string>
#include <string_view>

namespace rlock::redis {

// The key schema (docs/redis-keys.md). Every key of a lock shares the hash tag {NAME}, so one
// script touches one cluster slot.
class KeySchema {
 public:
  explicit KeySchema(std::string prefix) : m_prefix(std::move(prefix)) {}

  std::string lock(std::string_view name) const;    // PREFIX{NAME}: the token, PX TTL
  std::string meta(std::string_view name) const;    // PREFIX{NAME}:meta: holder hash, same TTL
  std::string fence(std::string_view name) const;   // PREFIX{NAME}:fence: counter, no TTL
  std::string waiters(std::string_view name) const; // PREFIX{NAME}:waiters: zset ticket→expiry
  std::string wake(std::string_view name) const;    // PREFIX{NAME}:wake: hand-off list
  std::string scan_pattern() const;                 // matches lock keys only
  // The lock name in a lock key, or empty if the key is not one.
  std::string name_of(std::string_view key) const;

 private:
  std::string m_prefix;
};

class RedisLockStore final : public lock::LockStore {
 public:
  RedisLockStore(Connection& connection, std::string prefix);

  void send_acquire(const lock::AcquireRequest& request) override;
  lock::AcquireResult receive_acquire(std::optional<lock::TimePoint> deadline) override;
  std::optional<lock::Handoff> handoff() const override;
  void send_renew(const lock::RenewRequest& request, std::optional<lock::TimePoint> deadline) override;
  lock::TokenCheck receive_renew(std::optional<lock::TimePoint> deadline) override;
  void send_release(std::string_view name, std::string_view token, lock::Millis min_hold,
                    std::optional<lock::TimePoint> deadline) override;
  lock::ReleaseResult receive_release(std::optional<lock::TimePoint> deadline) override;
  lock::HolderInfo force_release(std::string_view name) override;
  lock::HolderInfo inspect(std::string_view name) override;
  std::vector<std::string> list_names() override;
  bool wait_for_wake(std::string_view name, std::string_view ticket, lock::Millis timeout, int interrupt_fd) override;
  void leave_queue(std::string_view name, std::string_view ticket) override;

 private:
  Connection& m_connection;
  KeySchema m_keys;
  // The hand-off value popped by the last successful wait_for_wake: the next attempt with a
  // ticket claims the lock with it, until one gets an answer.
  std::string m_claim;
  std::string m_sent_key; // the lock key of the operation in flight, for messages
};

} // namespace rlock::redis
