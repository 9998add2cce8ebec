// SPDX-License-Identifier: MIT
// StubServer: a TCP listener on a free loopback port that is not Redis, for the error tests.
#pragma once

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace rlock::test {

enum class StubMode {
  reply_and_close, // accept, read whatever arrives (briefly), send the reply bytes, close
  silent,          // accept and hold every connection open without ever answering
  full_backlog,    // never accept; the listen queue is filled so that connect() hangs
};

// Serves from a background thread until destruction.
class StubServer {
 public:
  explicit StubServer(StubMode mode, std::string reply = {});
  ~StubServer();
  StubServer(const StubServer&) = delete;
  StubServer& operator=(const StubServer&) = delete;

  int port() const noexcept { return m_port; }
  std::string url() const; // redis://127.0.0.1:PORT
  // Connections accepted so far (reply_and_close and silent modes).
  int connections() const noexcept { return m_connections.load(); }

 private:
  void serve();

  StubMode m_mode;
  std::string m_reply;
  int m_listen_fd = -1;
  int m_port = 0;
  int m_stop_pipe[2] = {-1, -1};
  std::vector<int> m_held_fds; // silent mode: accepted connections; full_backlog: fillers
  std::atomic<int> m_connections{0};
  std::thread m_thread;
};

} // namespace rlock::test
