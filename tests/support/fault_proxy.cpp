// SPDX-License-Identifier: MIT
// FaultProxy: starting rlock-fault-proxy and talking to its control socket.
#include "fault_proxy.hpp"

#include <fmt/format.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace rlock::test {

FaultProxy::FaultProxy(int backend_port) : m_control(m_dir.file("proxy.sock")) {
  BackgroundOptions options;
  options.die_with_parent = true;
  m_process.emplace(std::vector<std::string>{fault_proxy_bin(), "--listen", "127.0.0.1:0", "--backend",
                                             fmt::format("127.0.0.1:{}", backend_port), "--control", m_control},
                    options);
  // It prints "port N" once it listens.
  bool listening =
      wait_until([&] { return m_process->out().find('\n') != std::string::npos || !m_process->running(); }, 10s);
  std::string out = m_process->out();
  if (!listening || !out.starts_with("port ")) {
    throw SupportError(fmt::format("rlock-fault-proxy did not start: {}{}", out, m_process->err()));
  }
  m_port = std::stoi(out.substr(5));
}

std::string FaultProxy::url() const { return fmt::format("redis://127.0.0.1:{}", m_port); }

void FaultProxy::set(const std::string& mode) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw SupportError(fmt::format("socket: {}", std::strerror(errno)));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, m_control.c_str(), sizeof addr.sun_path - 1);
  std::string line = mode + "\n";
  std::string reply;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0 &&
      ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size())) {
    char buffer[256];
    ssize_t n = 0;
    while ((n = ::read(fd, buffer, sizeof buffer)) > 0) reply.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  if (!reply.starts_with("ok")) throw SupportError(fmt::format("rlock-fault-proxy refused '{}': {}", mode, reply));
}

} // namespace rlock::test
