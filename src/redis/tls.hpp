// SPDX-License-Identifier: MIT
// TLS for a node's connection: the settings a rediss:// URL, flags and environment give, and
// the OpenSSL stream that runs over a connected socket. No OpenSSL type leaks out of here.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct ssl_st;

namespace rlock::redis {

using Deadline = std::chrono::steady_clock::time_point;

// full: the chain and the name dialled (or server_name); ca: the chain only; none: nothing.
enum class TlsVerify { full, ca, none };

std::string_view to_string(TlsVerify verify) noexcept;

// TLS settings of one connection. Every node of a topology gets its own copy: the name
// verified and sent as SNI is the host that node is dialled by, unless server_name says.
struct TlsSettings {
  bool enabled = false;
  std::string cacert;      // PEM file of trusted CAs; with cacertdir, replaces the system store
  std::string cacertdir;   // directory hashed by c_rehash / openssl rehash
  std::string cert;        // client certificate (chain) PEM
  std::string key;         // its private key; empty: the key is in `cert`
  std::string server_name; // verify (and send as SNI) this name instead of the host dialled
  TlsVerify verify = TlsVerify::full;
  // What a certificate that does not name the host says to do, instead of the usual advice
  // (a topology that hands out addresses knows the better fix). Not from the user.
  std::string mismatch_hint;
  // Keep sessions in the private on-disk cache and offer them back (rlock(1), TLS SESSION CACHE).
  bool session_cache = true;
};

// The trust store a TLS connection uses without cacert/cacertdir, as found on this host:
// SSL_CERT_FILE/SSL_CERT_DIR when set, else the first hashed directory, else the first bundle
// file among OpenSSL's default and the usual places of Debian/Ubuntu, Fedora/RHEL, openSUSE,
// Alpine and Arch. Both empty when none exists.
struct TrustStore {
  std::string file;
  std::string dir;
};
TrustStore find_system_trust_store();
// Every location find_system_trust_store looks at, in order, for the docs and messages.
std::vector<std::string> system_trust_store_candidates();

// An established TLS session over a connected non-blocking socket (which it does not own).
// Never sends close_notify: a forked keeper drops its copy of the parent's session without
// disturbing the parent's stream.
class TlsStream {
 public:
  enum class Want { none, read, write };

  // Sets up a client session to `host` (the name or IP literal dialled) over `fd`, with `peer`
  // naming it in messages; step() runs the handshake. Offers the cached session of this
  // endpoint and settings when there is one and `offer_cached_session` says so; stores the
  // server's ticket after a full, verified handshake. Throws ConfigError for bad files or
  // names.
  static std::unique_ptr<TlsStream> begin(int fd, const TlsSettings& settings, const std::string& host,
                                          const std::string& peer, bool offer_cached_session = true);
  // Moves the handshake on as far as the socket allows: true once it is done (verified);
  // false with `want` set when the socket must be waited on first (several handshakes can so
  // share one poll(2)). Throws ConfigError (78) for a failed verification or a non-TLS
  // answer, AuthError (77) when the server wants or refuses the client certificate,
  // UnavailableError (69) when it goes away.
  bool step(Want& want);
  // Throws the UnavailableError for a handshake whose deadline passed (no answer at all: a
  // plaintext port, perhaps).
  [[noreturn]] void timed_out() const;
  ~TlsStream();
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  // Writes some of `bytes`; returns how many, or 0 with `want` set when the socket must be
  // waited on first. Throws as step() does for failures the server signals.
  std::size_t write(std::string_view bytes, Want& want);
  // Reads some bytes into `out`; returns false on EOF. Appends nothing and sets `want` when
  // the socket must be waited on first.
  bool read(std::string& out, Want& want);
  // Decrypted bytes already inside OpenSSL, which poll(2) on the socket cannot see.
  bool pending() const noexcept;
  // Whether the handshake offered a cached session; a failure then may be the session's (a
  // corrupted resumption secret makes the server abort): the caller retries once without it.
  bool offered_cached_session() const noexcept;
  // Removes the cached session offered.
  void forget_cached_session() const;

 private:
  struct State; // what the callbacks record, and the names for messages

  TlsStream(ssl_st* ssl, std::string peer);
  [[noreturn]] void fail(int ssl_result, int ret, const char* doing);
  // After a failed write on a fresh connection: throws AuthError if the server's refusal of the
  // client certificate waits unread; returns otherwise, errno kept.
  void read_refusal();

  ssl_st* m_ssl;
  std::unique_ptr<State> m_state;
  std::string m_peer;
  bool m_app_data_seen = false;
  TlsVerify m_verify = TlsVerify::full; // for the log line
};

// Whether the host is an IPv4 or IPv6 literal (verified as an IP address, sent without SNI).
bool is_ip_literal(const std::string& host) noexcept;

} // namespace rlock::redis
