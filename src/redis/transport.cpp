// SPDX-License-Identifier: MIT
// Transport: sockets with deadlines, by poll(2).
#include "redis/transport.hpp"

#include "util/error.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <memory>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace rlock::redis {

namespace {

int remaining_ms(Deadline deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return 0;
  // Round up so that a wait never ends just before the deadline and spins.
  return static_cast<int>(std::min<std::int64_t>(left.count() + 1, 1'000'000'000));
}

// Waits for a non-blocking connect to finish. Returns 0 or the socket's errno.
int finish_connect(int fd, Deadline deadline) {
  for (;;) {
    pollfd pfd{fd, POLLOUT, 0};
    int timeout = remaining_ms(deadline);
    int n = ::poll(&pfd, 1, timeout);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) return ETIMEDOUT;
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return errno;
    return err;
  }
}

// Takes the pending signal off a signalfd: its number, or 0 if none was pending after all.
int read_signal(int signal_fd) {
  signalfd_siginfo info{};
  ssize_t n = ::read(signal_fd, &info, sizeof info);
  return n == static_cast<ssize_t>(sizeof info) ? static_cast<int>(info.ssi_signo) : 0;
}

std::string describe_errno(int err) {
  switch (err) {
  case ECONNREFUSED: return "connection refused (is redis-server running there?)";
  case ETIMEDOUT: return "timed out";
  case ENOENT: return "no such socket file";
  default: return std::strerror(err);
  }
}

} // namespace

Transport Transport::connect(const Endpoint& endpoint, Deadline deadline) {
  if (endpoint.kind == Endpoint::Kind::unix_socket) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (endpoint.path.size() >= sizeof addr.sun_path) {
      throw ConfigError(fmt::format("unix socket path is too long: {}", endpoint.path));
    }
    std::memcpy(addr.sun_path, endpoint.path.c_str(), endpoint.path.size() + 1);
    Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) throw SystemError(fmt::format("cannot open a socket for unix://{}", endpoint.path), errno);
    int err = 0;
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
      err = errno == EINPROGRESS || errno == EAGAIN ? finish_connect(fd.get(), deadline) : errno;
    }
    if (err != 0) {
      throw UnavailableError(fmt::format("could not connect to unix://{}: {}", endpoint.path, describe_errno(err)));
    }
    return Transport(std::move(fd), endpoint.path);
  }

  std::string peer = endpoint.host.find(':') != std::string::npos ? fmt::format("[{}]:{}", endpoint.host, endpoint.port)
                                                                  : fmt::format("{}:{}", endpoint.host, endpoint.port);
  // A numeric address needs no resolver: skipping getaddrinfo saves its NSS and netlink work
  // on every run (rlock is started once per job, so start-up time is its speed).
  sockaddr_storage numeric{};
  socklen_t numeric_len = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&numeric);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&numeric);
  if (::inet_pton(AF_INET, endpoint.host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<std::uint16_t>(endpoint.port));
    numeric_len = sizeof(sockaddr_in);
  } else if (::inet_pton(AF_INET6, endpoint.host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<std::uint16_t>(endpoint.port));
    numeric_len = sizeof(sockaddr_in6);
  }
  addrinfo numeric_info{};
  numeric_info.ai_family = numeric.ss_family;
  numeric_info.ai_socktype = SOCK_STREAM;
  numeric_info.ai_addr = reinterpret_cast<sockaddr*>(&numeric);
  numeric_info.ai_addrlen = numeric_len;

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
  addrinfo* found = &numeric_info;
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> addresses(nullptr, &::freeaddrinfo);
  if (numeric_len == 0) {
    std::string port = std::to_string(endpoint.port);
    int rc = ::getaddrinfo(endpoint.host.c_str(), port.c_str(), &hints, &found);
    if (rc == EAI_MEMORY || (rc == EAI_SYSTEM && is_resource_shortage(errno))) {
      throw SystemError(fmt::format("could not resolve {}", endpoint.host), rc == EAI_MEMORY ? ENOMEM : errno);
    }
    if (rc != 0) {
      throw UnavailableError(fmt::format("could not resolve {}: {}", endpoint.host, ::gai_strerror(rc)));
    }
    addresses.reset(found);
  }
  int last_err = ECONNREFUSED;
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    Fd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol));
    if (!fd) {
      // No descriptor left is this process's problem, not the server's: 71, not 69.
      if (is_resource_shortage(errno)) throw SystemError(fmt::format("cannot open a socket to {}", peer), errno);
      last_err = errno;
      continue;
    }
    int err = 0;
    if (::connect(fd.get(), ai->ai_addr, ai->ai_addrlen) < 0) {
      err = errno == EINPROGRESS ? finish_connect(fd.get(), deadline) : errno;
    }
    if (err != 0) {
      last_err = err;
      if (err == ETIMEDOUT) break;
      continue;
    }
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    Transport transport(std::move(fd), peer);
    if (endpoint.tls.enabled) {
      transport.m_tls =
          TlsStream::handshake(transport.fd(), endpoint.tls, endpoint.host, peer, deadline,
                               [&transport](TlsStream::Want want, Deadline until) {
                                 return transport.poll_for(want == TlsStream::Want::write ? POLLOUT : POLLIN, until);
                               });
    }
    return transport;
  }
  throw UnavailableError(fmt::format("could not connect to {}: {}", peer, describe_errno(last_err)));
}

bool Transport::poll_for(short events, Deadline deadline, int interrupt_fd) {
  // Bytes OpenSSL has already read and decrypted are invisible to poll(2).
  if ((events & POLLIN) != 0 && m_tls && m_tls->pending()) return true;
  for (;;) {
    pollfd pfds[2] = {{m_fd.get(), events, 0}, {interrupt_fd, POLLIN, 0}};
    nfds_t count = interrupt_fd >= 0 ? 2 : 1;
    int timeout = remaining_ms(deadline);
    int n = ::poll(pfds, count, timeout);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw SystemError("poll", errno);
    if (count == 2 && (pfds[1].revents & POLLIN) != 0) throw Interrupted(read_signal(interrupt_fd));
    return n != 0;
  }
}

void Transport::wait_for(short events, Deadline deadline, const char* doing, int interrupt_fd) {
  if (!poll_for(events, deadline, interrupt_fd)) throw UnavailableError(fmt::format("timed out {} {}", doing, m_peer));
}

void Transport::write_all(std::string_view bytes, Deadline deadline) {
  if (m_tls) {
    while (!bytes.empty()) {
      TlsStream::Want want = TlsStream::Want::none;
      std::size_t n = m_tls->write(bytes, want);
      bytes.remove_prefix(n);
      if (want != TlsStream::Want::none) {
        wait_for(want == TlsStream::Want::write ? POLLOUT : POLLIN, deadline, "writing to");
      }
    }
    return;
  }
  while (!bytes.empty()) {
    ssize_t n = ::send(m_fd.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n > 0) {
      bytes.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      wait_for(POLLOUT, deadline, "writing to");
      continue;
    }
    throw UnavailableError(fmt::format("could not write to {}: {}", m_peer, std::strerror(errno)));
  }
}

bool Transport::read_some(std::string& out, Deadline deadline, int interrupt_fd) {
  if (m_tls) {
    for (;;) {
      TlsStream::Want want = TlsStream::Want::none;
      std::size_t before = out.size();
      if (!m_tls->read(out, want)) return false;
      if (out.size() > before) return true;
      wait_for(want == TlsStream::Want::write ? POLLOUT : POLLIN, deadline, "waiting for a reply from", interrupt_fd);
    }
  }
  char buffer[16384];
  for (;;) {
    ssize_t n = ::recv(m_fd.get(), buffer, sizeof buffer, 0);
    if (n > 0) {
      out.append(buffer, static_cast<std::size_t>(n));
      return true;
    }
    if (n == 0) return false;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      wait_for(POLLIN, deadline, "waiting for a reply from", interrupt_fd);
      continue;
    }
    throw UnavailableError(fmt::format("could not read from {}: {}", m_peer, std::strerror(errno)));
  }
}

} // namespace rlock::redis
