// SPDX-License-Identifier: MIT
// StubServer: accept loop on a thread, woken for shutdown through a pipe.
#include "stub_server.hpp"

#include "run.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace rlock::test {

namespace {

sockaddr_in loopback(int port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return address;
}

// Starts a non-blocking connect; the caller keeps the fd.
int start_connect(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  const sockaddr_in address = loopback(port);
  ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address);
  return fd;
}

// True when a fresh connect to `port` completes within `timeout_ms`.
bool connect_completes(int port, int timeout_ms) {
  const int fd = start_connect(port);
  pollfd entry{fd, POLLOUT, 0};
  const int ready = ::poll(&entry, 1, timeout_ms);
  int error = 0;
  socklen_t length = sizeof error;
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length);
  ::close(fd);
  return ready == 1 && error == 0;
}

} // namespace

StubServer::StubServer(StubMode mode, std::string reply) : m_mode(mode), m_reply(std::move(reply)) {
  m_listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address = loopback(0);
  if (m_listen_fd < 0 || ::bind(m_listen_fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(m_listen_fd, mode == StubMode::full_backlog ? 0 : 16) != 0) {
    throw SupportError(fmt::format("stub server: listen: {}", std::strerror(errno)));
  }
  socklen_t length = sizeof address;
  ::getsockname(m_listen_fd, reinterpret_cast<sockaddr*>(&address), &length);
  m_port = ntohs(address.sin_port);

  if (mode == StubMode::full_backlog) {
    // Fill the accept queue until a further connect no longer completes.
    for (int filler = 0; filler < 16; ++filler) {
      m_held_fds.push_back(start_connect(m_port));
      if (filler >= 1 && !connect_completes(m_port, 200)) {
        return;
      }
    }
    throw SupportError("stub server: could not fill the listen backlog");
  }
  if (::pipe2(m_stop_pipe, O_CLOEXEC) != 0) {
    throw SupportError(fmt::format("stub server: pipe: {}", std::strerror(errno)));
  }
  m_thread = std::thread([this] { serve(); });
}

StubServer::~StubServer() {
  if (m_thread.joinable()) {
    static_cast<void>(::write(m_stop_pipe[1], "x", 1));
    m_thread.join();
  }
  for (const int fd : m_held_fds) {
    ::close(fd);
  }
  for (const int fd : m_stop_pipe) {
    if (fd >= 0) {
      ::close(fd);
    }
  }
  ::close(m_listen_fd);
}

std::string StubServer::url() const { return fmt::format("redis://127.0.0.1:{}", m_port); }

void StubServer::serve() {
  for (;;) {
    pollfd fds[2] = {{m_listen_fd, POLLIN, 0}, {m_stop_pipe[0], POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) {
        continue;
      }
      return;
    }
    if ((fds[1].revents & POLLIN) != 0) {
      return;
    }
    if ((fds[0].revents & POLLIN) == 0) {
      continue;
    }
    const int client = ::accept4(m_listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) {
      continue;
    }
    ++m_connections;
    if (m_mode == StubMode::silent) {
      m_held_fds.push_back(client);
      continue;
    }
    // Give the client a moment to send its request, so that closing does not reset the
    // connection before the reply is read.
    pollfd request{client, POLLIN, 0};
    if (::poll(&request, 1, 1000) == 1) {
      char buffer[4096];
      static_cast<void>(::recv(client, buffer, sizeof buffer, MSG_DONTWAIT));
    }
    static_cast<void>(::send(client, m_reply.data(), m_reply.size(), MSG_NOSIGNAL));
    ::shutdown(client, SHUT_WR);
    // Read until the client closes (bounded), so that unread input does not turn the close
    // into a reset that could discard the reply before the client reads it.
    for (int round = 0; round < 100; ++round) {
      pollfd more{client, POLLIN, 0};
      char buffer[4096];
      if (::poll(&more, 1, 10) == 1 && ::recv(client, buffer, sizeof buffer, 0) <= 0) {
        break;
      }
    }
    ::close(client);
  }
}

} // namespace rlock::test
