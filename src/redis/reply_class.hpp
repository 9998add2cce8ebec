// SPDX-License-Identifier: MIT
// ReplyClass: what a Redis error reply means to the caller, as a value, decided in one place.
#pragma once

#include "util/error.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace rlock::redis {

enum class ReplyClass {
  redirect,       // MOVED / ASK: the key's slot is served by another node
  retry_later,    // LOADING, BUSY, TRYAGAIN, CLUSTERDOWN, MASTERDOWN, UNBLOCKED, NOREPLICAS, MISCONF,
                  // "max number of clients reached": the node cannot serve it now
  read_only,      // READONLY: a replica (a failover may have demoted the node)
  auth,           // NOAUTH, WRONGPASS, NOPERM, an ACL refusal inside a script
  script_missing, // NOSCRIPT: the script cache was flushed; send the text with EVAL
  wrong_type,     // WRONGTYPE, or a value rlock cannot use where it expects a counter
  out_of_memory,  // OOM with maxmemory and noeviction
  other,
};

// An error reply, classified. For a redirect, where to: "MOVED 3999 127.0.0.1:6381".
struct ErrorReply {
  ReplyClass kind = ReplyClass::other;
  std::string text; // printable, at most a few hundred bytes
  bool ask = false; // a redirect for this one command (ASK), not for good (MOVED)
  std::int64_t slot = -1;
  std::string target; // host:port of a redirect
};

// Classifies the text of an error reply ("-" line without the dash). Never throws.
ErrorReply classify_error(std::string_view text);

// Whether waiting and asking again (after Topology::refresh) can cure it: redirects,
// retry-later, read-only, out of memory. Auth, wrong type and other errors stay.
constexpr bool is_transient(ReplyClass kind) noexcept {
  return kind == ReplyClass::redirect || kind == ReplyClass::retry_later || kind == ReplyClass::read_only ||
         kind == ReplyClass::out_of_memory;
}

// Whether the reply says the node that answered may no longer be the one to ask.
constexpr bool topology_moved(ReplyClass kind) noexcept {
  return kind == ReplyClass::redirect || kind == ReplyClass::read_only;
}

// The exit status (EXIT STATUS in rlock(1)) an error reply ends with when nothing cures it: 69 for the
// transient classes (and a missing script, which EVAL cures unless the server is not Redis),
// 77 auth, 78 wrong type, 70 other.
ExitCode exit_code_of(ReplyClass kind) noexcept;

// A transient error reply, as the UnavailableError the retry loops (Lease, acquire) ride out,
// carrying its class so that a caller can route on it.
class TransientReplyError : public UnavailableError {
 public:
  TransientReplyError(ErrorReply reply, const std::string& message)
      : UnavailableError(message), m_reply(std::move(reply)) {}
  const ErrorReply& reply() const noexcept { return m_reply; }

 private:
  ErrorReply m_reply;
};

// Throws what an error reply deserves when it ends the command: TransientReplyError (69),
// AuthError (77), ConfigError (78, a key of the wrong type: another program uses the prefix),
// Error(internal) for an error rlock has no explanation for. `context` says what rlock was
// doing ("acquiring rlock:{x}").
[[noreturn]] void throw_error_reply(const ErrorReply& reply, std::string_view context);

} // namespace rlock::redis
