// SPDX-License-Identifier: MIT
// RedisLockStore: the LockStore of the lock layer, on one Redis server, by Lua scripts.
#pragma once

#include "lock/lock_store.hpp"
#include "redis/connection.hpp"
#include "redis/topology.hpp"

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace rlock::redis {

// The key schema (docs/redis-keys.md). Every key of a lock shares the hash tag {NAME}, so one
// script touches one cluster slot.
class KeySchema {
 public:
  explicit KeySchema(std::string prefix) : m_prefix(std::move(prefix)) {}

  std::string lock(std::string_view name) const;        // PREFIX{NAME}: the token, PX TTL
  std::string meta(std::string_view name) const;        // PREFIX{NAME}:meta: holder hash, same TTL
  std::string fence(std::string_view name) const;       // PREFIX{NAME}:fence: counter, no TTL
  std::string line(std::string_view name) const;        // PREFIX{NAME}:line: zset ticket→arrival
  std::string line_expiry(std::string_view name) const; // PREFIX{NAME}:line:expiry: zset ticket→expiry
  // PREFIX{NAME}:wake, and PREFIX{NAME}:wake:TICKET, a waiter's own hand-off list.
  std::string wake(std::string_view name) const;
  std::string wake(std::string_view name, std::string_view ticket) const;
  std::string watchers(std::string_view name) const; // PREFIX{NAME}:watchers: zset ticket→lapse (rlock wait)
  std::string log(std::string_view name) const;      // PREFIX{NAME}:log: the audit stream (audit.lua)
  std::string permits(std::string_view name) const;  // PREFIX{NAME}:permits: zset token→lapse (--limit, --shared)
  std::string limit(std::string_view name) const;    // PREFIX{NAME}:limit: the kind holders and waiters set
  // Matches the lock keys (only) whose name matches `glob` (list_names).
  std::string scan_pattern(std::string_view glob = "*") const;
  // The lock name in a lock key, or empty if the key is not one.
  std::string name_of(std::string_view key) const;

 private:
  std::string m_prefix;
};

// One entry of a lock's audit log (audit.lua), as read back: like holder data, nothing in it is
// trusted, and a field that is not what rlock writes reads as unknown (empty, or 0).
struct AuditEntry {
  std::string id;           // the stream entry's ID, MILLISECONDS-SEQUENCE
  std::int64_t time_ms = 0; // the server's clock when it was written (the ID's first part)
  std::string event;        // acquired, claimed, released, handed-off, forced
  std::string token;        // the token's fingerprint: the first 12 hex digits of its SHA-1
  std::string host;
  std::int64_t pid = 0;
  std::string user;
  std::int64_t fence = 0;
  std::int64_t held_ms = -1; // releases: how long it was held; -1: unknown or not a release
  std::string by;            // forced: who broke it, "user@host:pid"
};

// Reads the holder block of holder_block.lua that starts at reply[at]. Holder data comes back
// from Redis, where anything may have been written: a field that is not what rlock writes
// reads as unknown (HolderInfo), never as an error. Throws Error(internal) only when the
// reply is not shaped like a holder block at all.
lock::LockInfo holder_from(ReplyView reply, std::size_t at);

class RedisLockStore final : public lock::LockStore {
 public:
  // Every operation goes to topology.node_for(the lock's key).
  RedisLockStore(Topology& topology, std::string prefix);

  // With count > 0 (--min-replicas), `WAIT count timeout` follows every acquire, renew and
  // release script on the same connection, in the same write (a script may not run WAIT). An
  // acquire that fewer replicas acknowledged is released at once and answered as
  // AcquireResult::unconfirmed; such a renewal is TokenCheck::unconfirmed, and the topology is
  // resolved again (the node may have been deposed); such a release is only noted (-v). A
  // WAIT the ACL user may not run fails the acquire (given back first) or the renewal with
  // AuthError (77); the release only warns. A hand-off is then always claimed with a round
  // trip (handoff() says none): a job must not start before its lock is confirmed.
  void require_replicas(std::int64_t count, lock::Millis timeout);
  // Why the last acquire or renewal was unconfirmed: "only 0 of 1 replicas acknowledged …".
  const std::string& shortfall() const noexcept { return m_shortfall; }

  // The audit log (rlock(1), AUDIT; docs/redis-keys.md): with `record`, each acquisition and
  // release appends an entry to PREFIX{NAME}:log (audit.lua), in the script that does it. A
  // forced release appends one with `record` or whenever that log exists, naming `actor`
  // ("user@host:pid", who broke the lock). Without `record` no script touches the log but that.
  void set_audit(bool record, std::string actor);
  // The newest `count` entries of NAME's audit log, oldest first; empty when it has none.
  std::vector<AuditEntry> read_log(std::string_view name, std::size_t count);

  void send_acquire(const lock::AcquireRequest& request) override;
  lock::AcquireResult receive_acquire(std::optional<lock::TimePoint> deadline) override;
  std::optional<lock::Handoff> handoff() const override;
  void send_renew(const lock::RenewRequest& request, std::optional<lock::TimePoint> deadline) override;
  lock::TokenCheck receive_renew(std::optional<lock::TimePoint> deadline) override;
  void send_release(std::string_view name, std::string_view token, lock::Millis min_hold,
                    std::optional<lock::TimePoint> deadline) override;
  lock::ReleaseResult receive_release(std::optional<lock::TimePoint> deadline) override;
  lock::ForceResult force_release(std::string_view name, const lock::ForceCondition& only) override;
  lock::LockInfo inspect(std::string_view name) override;
  // One pipeline of inspect scripts per node (one write, then the replies), with run()'s
  // retries for the whole batch: the script only reads, so asking again is harmless.
  std::vector<lock::LockInfo> inspect_many(std::span<const std::string> names) override;
  // Reads ahead: the next batch's scripts run on the server while `visit` works on this one.
  void inspect_batches(std::span<const std::string> names, std::size_t batch, const BatchVisitor& visit) override;
  std::vector<std::string> list_names(std::string_view glob) override;
  bool wait_for_wake(std::string_view name, std::string_view ticket, lock::Millis timeout, int interrupt_fd) override;
  void leave_queue(std::string_view name, std::string_view ticket) override;
  lock::LockInfo watch(std::string_view name, std::string_view ticket) override;
  lock::WatchWake wait_for_release(std::string_view name, std::string_view ticket, lock::Millis timeout,
                                   int interrupt_fd) override;

  // What a quorum of stores (QuorumLockStore) asks of each node besides the LockStore
  // operations, each in a send and a receive half with the rules of send_renew/receive_renew
  // (one in flight; the receive throws UnavailableError at `deadline`; no retries):
  // fence_confirm.lua (true: the token holds the lock here and the node's counter is now at
  // least `fence`), restore.lua (true: the key holds the token now, set again if it had
  // vanished; false: another token holds it), and the lock key's value (empty: free).
  void send_confirm_fence(std::string_view name, std::string_view token, std::int64_t fence, lock::TimePoint deadline);
  bool receive_confirm_fence(lock::TimePoint deadline);
  void send_restore(std::string_view name, std::string_view token, lock::Millis ttl, lock::TimePoint deadline);
  bool receive_restore(lock::TimePoint deadline);
  void send_read_token(std::string_view name, lock::TimePoint deadline);
  std::optional<std::string> receive_read_token(lock::TimePoint deadline);
  // watch() in halves (watch.lua), with the value of the lock key beside the holder block
  // (empty: free), for a quorum to tell whether one holder has a majority. The registration
  // lapses after `registration` (longer than the watcher blocks before looking again).
  struct Watched {
    lock::LockInfo lock;
    std::string value;
  };
  void send_watch(std::string_view name, std::string_view ticket, lock::Millis registration, lock::TimePoint deadline);
  Watched receive_watch(lock::TimePoint deadline);
  // wait_for_release in halves, for a quorum that blocks on every node at once with poll(2)
  // and no thread: send_wait_for_release sends the BLPOP on `ticket`'s list (server-side
  // timeout `timeout`); wake_fd() and wake_events() say what to poll; poll_wait_for_release
  // reads what has come without blocking (nothing yet, or the BLPOP's answer: timeout,
  // freed, recheck); receive_wait_for_release waits for that answer until `deadline`
  // (UnavailableError then, the connection dropped). Until the answer is read the connection
  // is busy: nothing else may be sent on it (disconnect it instead, which ends the BLPOP).
  void send_wait_for_release(std::string_view name, std::string_view ticket, lock::Millis timeout,
                             lock::TimePoint deadline);
  int wake_fd() const noexcept;
  short wake_events() const noexcept;
  std::optional<lock::WatchWake> poll_wait_for_release();
  lock::WatchWake receive_wait_for_release(lock::TimePoint deadline);

 private:
  // Runs `script` on the node of keys[0], each attempt bounded by `deadline` (else the I/O
  // timeout). An error reply a retry can cure (reply_class.hpp) is asked again, after
  // telling the topology when it moved, until `deadline` (else the connect timeout: the
  // budget of a command that has no lease to keep): every script is all or nothing, so an
  // error reply means it changed nothing. Other error replies, and a transient one that
  // outlasts the budget, are thrown (throw_error_reply).
  Reply run(const scripts::Script& script, const Args& keys, const Args& args, std::string_view context,
            std::optional<Deadline> deadline);
  // The reply to the script sent last (m_sent_node), read by `read_by`, with the same retries
  // as run() until `give_up_at`: `send_again` sends the script again (and may move `read_by`).
  // BLPOP on `ticket`'s own list (a waiter's or a watcher's) for up to `timeout`: the popped
  // value, or nothing on timeout.
  std::optional<std::string> pop_wake(std::string_view name, std::string_view ticket, lock::Millis timeout,
                                      int interrupt_fd);
  Reply receive_retrying(std::string_view context, Deadline give_up_at, const std::optional<Deadline>& read_by,
                         const std::function<void()>& send_again);
  // How one operation's retries went so far.
  struct Retries {
    std::chrono::milliseconds backoff{20};
    int redirects = 0;
  };
  // After `error` (telling the topology when it moved): throws it (throw_error_reply) unless a
  // retry can cure it and `backoff` still fits before `give_up_at`; else sleeps `backoff` and
  // doubles it (at most half a second), for the caller to ask again. A redirect (MOVED, ASK) is
  // followed at once, at most k_max_redirects times in a row per operation; one more is thrown
  // as the transient error it is (69 at start, 76 at the safety deadline while held).
  void retry_or_throw(const ErrorReply& error, std::string_view context, Deadline give_up_at, Retries& retries);
  // Sends the inspect scripts of `names` in one write (send_pipeline) and returns the node, if
  // one node serves them all; else sends nothing and returns null.
  Connection* send_inspects(std::span<const std::string> names);
  // The replies to send_inspects(names) from `node`; on any error reply, inspect_many(names),
  // which asks again as run() would.
  std::vector<lock::LockInfo> receive_inspects(Connection& node, std::span<const std::string> names);
  // Sleeps `pause` (at most until `deadline`, at most half a second).
  static void pause_before_retry(std::chrono::milliseconds pause, Deadline deadline);
  // `deadline`, but no later than one I/O timeout (plus the WAIT's, when one follows) from
  // now: one stuck attempt leaves time for retries within it.
  Deadline bounded(std::optional<lock::TimePoint> deadline) const;
  // The WAIT to send after a script, or nothing when no replicas are required.
  Args wait_command() const;
  // After a script's reply (an answer that took effect): whether the WAIT behind it (the one
  // receive_retrying kept) counted enough replicas. When not, m_shortfall says why, `doing`
  // ("acquiring rlock:{x}") naming the operation; a WAIT refused for the ACL user's lack of
  // +wait fills `refused`.
  bool replicas_confirmed(std::string_view doing, std::optional<ErrorReply>& refused);
  // An AuthError for a WAIT the ACL user may not run.
  static AuthError wait_refused(const ErrorReply& refused, std::string_view doing);
  // How long transient error replies are asked again when the caller gave no deadline.
  Deadline retry_budget() const;
  // Whether `token` took a permit (--limit, --shared) through this store: its renewals and
  // release go straight to the permit scripts. Other tokens try the mutex's first and the
  // permit's when the mutex's finds the name held by another value (one more round trip,
  // for `rlock renew/release` of a permit taken by another process).
  bool is_permit(std::string_view token) const;
  // sem_renew.lua / sem_release.lua, run at once (with run()'s retries until `deadline`).
  lock::TokenCheck renew_permit(const lock::RenewRequest& request, std::optional<lock::TimePoint> deadline);
  lock::ReleaseResult release_permit(std::string_view name, std::string_view token,
                                     std::optional<lock::TimePoint> deadline);
  // The permit operation the last send_renew/send_release sent, if it went to a permit script.
  bool m_sent_permit = false;
  std::vector<std::string> m_permit_tokens; // tokens this store took permits with (few)

  Topology& m_topology;
  KeySchema m_keys;
  Connection* m_sent_node = nullptr;   // where the attempt in flight went
  lock::AcquireRequest m_sent_request; // the attempt in flight, to send again after a transient error
  struct SentRelease {
    std::string name;
    std::string token;
    lock::Millis min_hold{0};
  };
  std::optional<SentRelease> m_sent_release; // likewise for a release
  lock::RenewRequest m_sent_renew;           // and a renewal
  // The hand-off value popped by the last successful wait_for_wake: the next attempt with a
  // ticket claims the lock with it, until one gets an answer.
  std::string m_claim;
  std::string m_sent_key;                                    // the lock key of the operation in flight, for messages
  std::chrono::steady_clock::time_point m_acquire_sent_at{}; // when the last acquire went out
  // The reply of a quorum step in flight (send_confirm_fence & co.): read from m_sent_node.
  Reply receive_quorum_step(lock::TimePoint deadline);
  // --min-replicas: WAIT's arguments (count "0": no WAIT), its timeout, what the last WAIT
  // answered (kept by receive_retrying), and the last shortfall.
  std::string m_wait_count = "0";
  std::string m_wait_timeout_ms;
  lock::Millis m_wait_timeout{0};
  std::optional<Reply> m_wait_reply;
  std::string m_shortfall;
  std::string m_audit; // "1": append to the audit log; "": not
  std::string m_actor; // who this process is, for a forced release's entry
};

} // namespace rlock::redis
