// SPDX-License-Identifier: MIT
// Transport: a byte stream to a Redis server with deadlines on every call.
#pragma once

#include "redis/tls.hpp"
#include "redis/url.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <vector>

namespace rlock::redis {

using Deadline = std::chrono::steady_clock::time_point;

// A deadline missed while waiting on the socket: the peer said nothing, which tells nothing of
// what it is (unlike a reset, which a TLS port gives a plaintext client).
class TimedOutError : public UnavailableError {
 public:
  using UnavailableError::UnavailableError;
};

// A connected stream socket (TCP or unix), non-blocking and close-on-exec, with TLS over it
// when the endpoint's TLS settings say so. Every call takes a deadline on the steady clock;
// missing it throws UnavailableError. Callers never see whether the bytes are encrypted.
class Transport {
 public:
  class Dial;

  // Connects to the endpoint and, for TLS, handshakes and verifies (`deadline` bounds both).
  // Throws UnavailableError (refused, unreachable, timed out), and for TLS also ConfigError
  // and AuthError as TlsStream::step says.
  static Transport connect(const Endpoint& endpoint, Deadline deadline);
  // The same connect, begun and left in progress: the caller polls several at once.
  static Dial dial(const Endpoint& endpoint);

  void write_all(std::string_view bytes, Deadline deadline);

  // Reads what is available (at least one byte) into `out`. Returns false on orderly EOF.
  // When `interrupt_fd` (a signalfd; -1: none) turns readable first, reads the signal from it
  // and throws Interrupted carrying it.
  bool read_some(std::string& out, Deadline deadline, int interrupt_fd = -1);

  // read_some without waiting, for a caller that polls several sockets at once: appends what
  // has arrived to `out` (data), nothing when nothing has (poll fd() for wait_events() first),
  // or says the server closed the stream (eof). Throws UnavailableError as read_some does.
  enum class Ready { data, nothing, eof };
  Ready read_ready(std::string& out);
  // What to poll fd() for before read_ready can make progress: POLLIN, POLLOUT while TLS must
  // write first, 0 when OpenSSL already holds decrypted bytes (call read_ready at once).
  short wait_events() const noexcept;

  int fd() const noexcept { return m_fd.get(); }
  const std::string& peer() const noexcept { return m_peer; }
  bool tls() const noexcept { return m_tls != nullptr; }
  // Decrypted bytes already read off the socket, which poll(2) on fd() cannot see.
  bool pending() const noexcept { return m_tls && m_tls->pending(); }

 private:
  Transport(Fd fd, std::string peer) : m_fd(std::move(fd)), m_peer(std::move(peer)) {}
  // Waits until the socket is ready for `events` (or TLS holds decrypted bytes, for POLLIN).
  // Returns false when the deadline passed; throws Interrupted for the interrupt fd.
  bool poll_for(short events, Deadline deadline, int interrupt_fd = -1);
  void wait_for(short events, Deadline deadline, const char* doing, int interrupt_fd = -1);

  Fd m_fd;
  std::string m_peer;               // for messages: "127.0.0.1:6379" or the socket path
  std::unique_ptr<TlsStream> m_tls; // declared after m_fd: freed before the socket closes
  bool m_tls_wants_write = false;   // read_ready's last TLS read must write first
};

// A connect in progress (Transport::dial): the socket's non-blocking connect, then the TLS
// handshake when the endpoint asks for one, each address the name resolves to in turn. The
// caller polls fd() for events() and calls advance() when poll(2) says it is ready, and
// time_out() when its deadline passes first. Throws as Transport::connect does.
class Transport::Dial {
 public:
  int fd() const noexcept { return m_fd.get(); }
  short events() const noexcept;
  // Moves the connect on: the Transport once it is connected (and, for TLS, verified).
  std::optional<Transport> advance();
  [[noreturn]] void time_out() const;

 private:
  friend class Transport;
  struct Address {
    sockaddr_storage addr{};
    socklen_t length = 0;
    int family = 0;
  };
  Dial(const Endpoint& endpoint, std::string peer, std::vector<Address> addresses);
  // Starts connecting to the next address; throws when none is left.
  void connect_next();

  const Endpoint* m_endpoint; // outlives the dial
  std::string m_peer;
  std::vector<Address> m_addresses;
  std::size_t m_next = 0;
  int m_last_err = ECONNREFUSED;
  Fd m_fd;
  std::unique_ptr<TlsStream> m_tls; // the handshake under way; freed before the socket closes
  TlsStream::Want m_want = TlsStream::Want::none;
  bool m_full_handshake = false; // a handshake offering a cached session failed: offer none
};

} // namespace rlock::redis
