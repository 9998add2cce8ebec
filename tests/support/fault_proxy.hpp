// SPDX-License-Identifier: MIT
// FaultProxy: tests/fault's rlock-fault-proxy in front of a test's redis-server, for tests
// that need late replies, partitions or resets between rlock and Redis.
#pragma once

#include "run.hpp"

#include <optional>
#include <string>

namespace rlock::test {

// Runs rlock-fault-proxy ($RLOCK_FAULT_PROXY) on a free loopback port, forwarding to
// 127.0.0.1:backend_port, until destruction.
class FaultProxy {
 public:
  explicit FaultProxy(int backend_port);
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  int port() const noexcept { return m_port; }
  std::string url() const; // redis://127.0.0.1:PORT

  // Switches the mode ("pass", "delay MS", "delay-replies MS", "blackhole", "reset"); returns
  // once it is in effect. Throws SupportError when the proxy refuses.
  void set(const std::string& mode);

 private:
  TempDir m_dir;
  std::string m_control;
  std::optional<BackgroundProcess> m_process;
  int m_port = 0;
};

} // namespace rlock::test
