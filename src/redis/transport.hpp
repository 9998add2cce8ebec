// SPDX-License-Identifier: MIT
// Transport: a byte stream to a Redis server with deadlines on every call.
#pragma once

#include "redis/url.hpp"
#include "util/fd.hpp"

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

namespace rlock::redis {

using Deadline = std::chrono::steady_clock::time_point;

// A connected stream socket (TCP or unix), non-blocking and close-on-exec. Every call takes a
// deadline on the steady clock; missing it throws UnavailableError. A TLS stream would sit
// behind the same three calls, so callers never see which one they have.
class Transport {
 public:
  // Connects to the endpoint. Throws UnavailableError (refused, unreachable, timed out).
  static Transport connect(const Endpoint& endpoint, Deadline deadline);

  void write_all(std::string_view bytes, Deadline deadline);

  // Reads what is available (at least one byte) into `out`. Returns false on orderly EOF.
  // When `interrupt_fd` (a signalfd; -1: none) turns readable first, reads the signal from it
  // and throws Interrupted carrying it.
  bool read_some(std::string& out, Deadline deadline, int interrupt_fd = -1);

  int fd() const noexcept { return m_fd.get(); }
  const std::string& peer() const noexcept { return m_peer; }

 private:
  Transport(Fd fd, std::string peer) : m_fd(std::move(fd)), m_peer(std::move(peer)) {}
  void wait_for(short events, Deadline deadline, const char* doing, int interrupt_fd = -1);

  Fd m_fd;
  std::string m_peer; // for messages: "127.0.0.1:6379" or the socket path
};

} // namespace rlock::redis
