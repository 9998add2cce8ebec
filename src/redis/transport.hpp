// SPDX-License-Identifier: MIT
// Transport: a byte stream to a Redis server with deadlines on every call.
#pragma once

#include "redis/tls.hpp"
#include "redis/url.hpp"
#include "util/fd.hpp"

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace rlock::redis {

using Deadline = std::chrono::steady_clock::time_point;

// A connected stream socket (TCP or unix), non-blocking and close-on-exec, with TLS over it
// when the endpoint's TLS settings say so. Every call takes a deadline on the steady clock;
// missing it throws UnavailableError. Callers never see whether the bytes are encrypted.
class Transport {
 public:
  // Connects to the endpoint and, for TLS, handshakes and verifies (`deadline` bounds both).
  // Throws UnavailableError (refused, unreachable, timed out), and for TLS also ConfigError
  // and AuthError as TlsStream::handshake says.
  static Transport connect(const Endpoint& endpoint, Deadline deadline);

  void write_all(std::string_view bytes, Deadline deadline);

  // Reads what is available (at least one byte) into `out`. Returns false on orderly EOF.
  // When `interrupt_fd` (a signalfd; -1: none) turns readable first, reads the signal from it
  // and throws Interrupted carrying it.
  bool read_some(std::string& out, Deadline deadline, int interrupt_fd = -1);

  int fd() const noexcept { return m_fd.get(); }
  const std::string& peer() const noexcept { return m_peer; }
  bool tls() const noexcept { return m_tls != nullptr; }

 private:
  Transport(Fd fd, std::string peer) : m_fd(std::move(fd)), m_peer(std::move(peer)) {}
  // Waits until the socket is ready for `events` (or TLS holds decrypted bytes, for POLLIN).
  // Returns false when the deadline passed; throws Interrupted for the interrupt fd.
  bool poll_for(short events, Deadline deadline, int interrupt_fd = -1);
  void wait_for(short events, Deadline deadline, const char* doing, int interrupt_fd = -1);

  Fd m_fd;
  std::string m_peer;               // for messages: "127.0.0.1:6379" or the socket path
  std::unique_ptr<TlsStream> m_tls; // declared after m_fd: freed before the socket closes
};

} // namespace rlock::redis
