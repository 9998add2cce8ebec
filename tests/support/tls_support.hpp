// SPDX-License-Identifier: MIT
// For the TLS tests: certificates made once per test program, and a TCP proxy that records the
// first byte every client sends on each connection.
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace rlock::test {

// The directory of make_tls_certs.sh's certificates, made on first use for this program and
// removed at its exit. path("server.crt") and so on.
std::string tls_cert(const std::string& name);
const std::string& tls_cert_dir();

// Forwards every connection on port() to 127.0.0.1:target_port, both ways, and records the
// first byte the client sent on each (-1 when it sent none before closing).
class RecordingProxy {
 public:
  explicit RecordingProxy(int target_port);
  ~RecordingProxy();
  RecordingProxy(const RecordingProxy&) = delete;
  RecordingProxy& operator=(const RecordingProxy&) = delete;

  int port() const noexcept { return m_port; }
  // One entry per connection accepted so far, in order of acceptance.
  std::vector<int> first_bytes() const;

 private:
  void serve();

  int m_target_port;
  int m_listen_fd = -1;
  int m_port = 0;
  int m_stop_pipe[2] = {-1, -1};
  mutable std::mutex m_mutex;
  std::vector<int> m_first_bytes;
  std::thread m_thread;
};

} // namespace rlock::test
