// SPDX-License-Identifier: MIT
// Transport: sockets with deadlines, by poll(2).
#include "redis/transport.hpp"

#include "util/error.hpp"
#include "util/log.hpp"

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

Transport::Dial Transport::dial(const Endpoint& endpoint) {
  std::vector<Dial::Address> addresses;
  if (endpoint.kind == Endpoint::Kind::unix_socket) {
    Dial::Address address;
    auto* addr = reinterpret_cast<sockaddr_un*>(&address.addr);
    addr->sun_family = AF_UNIX;
    if (endpoint.path.size() >= sizeof addr->sun_path) {
      throw ConfigError(fmt::format("unix socket path is too long: {}", endpoint.path));
    }
    std::memcpy(addr->sun_path, endpoint.path.c_str(), endpoint.path.size() + 1);
    address.length = sizeof(sockaddr_un);
    address.family = AF_UNIX;
    addresses.push_back(address);
    Dial dial(endpoint, endpoint.path, std::move(addresses));
    dial.connect_next();
    return dial;
  }

  std::string peer = endpoint.host.find(':') != std::string::npos ? fmt::format("[{}]:{}", endpoint.host, endpoint.port)
                                                                  : fmt::format("{}:{}", endpoint.host, endpoint.port);
  // A numeric address needs no resolver: skipping getaddrinfo saves its NSS and netlink work
  // on every run (rlock is started once per job, so start-up time is its speed).
  Dial::Address numeric;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&numeric.addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&numeric.addr);
  if (::inet_pton(AF_INET, endpoint.host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<std::uint16_t>(endpoint.port));
    numeric.length = sizeof(sockaddr_in);
    numeric.family = AF_INET;
  } else if (::inet_pton(AF_INET6, endpoint.host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<std::uint16_t>(endpoint.port));
    numeric.length = sizeof(sockaddr_in6);
    numeric.family = AF_INET6;
  }
  if (numeric.length != 0) {
    addresses.push_back(numeric);
  } else {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
    addrinfo* found = nullptr;
    std::string port = std::to_string(endpoint.port);
    int rc = ::getaddrinfo(endpoint.host.c_str(), port.c_str(), &hints, &found);
    if (rc == EAI_MEMORY || (rc == EAI_SYSTEM && is_resource_shortage(errno))) {
      throw SystemError(fmt::format("could not resolve {}", endpoint.host), rc == EAI_MEMORY ? ENOMEM : errno);
    }
    if (rc != 0) {
      throw UnavailableError(fmt::format("could not resolve {}: {}", endpoint.host, ::gai_strerror(rc)));
    }
    std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owned(found, &::freeaddrinfo);
    for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
      if (ai->ai_addrlen > sizeof(sockaddr_storage)) continue;
      Dial::Address address;
      std::memcpy(&address.addr, ai->ai_addr, ai->ai_addrlen);
      address.length = ai->ai_addrlen;
      address.family = ai->ai_family;
      addresses.push_back(address);
    }
  }
  Dial dial(endpoint, std::move(peer), std::move(addresses));
  dial.connect_next();
  return dial;
}

Transport::Dial::Dial(const Endpoint& endpoint, std::string peer, std::vector<Address> addresses)
    : m_endpoint(&endpoint), m_peer(std::move(peer)), m_addresses(std::move(addresses)) {}

void Transport::Dial::connect_next() {
  const bool unix_socket = m_endpoint->kind == Endpoint::Kind::unix_socket;
  m_fd = Fd();
  while (m_next < m_addresses.size()) {
    const Address& address = m_addresses[m_next++];
    Fd fd(::socket(address.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) {
      // No descriptor left is this process's problem, not the server's: 71, not 69.
      if (is_resource_shortage(errno) || unix_socket) {
        throw SystemError(fmt::format("cannot open a socket to {}", unix_socket ? "unix://" + m_peer : m_peer), errno);
      }
      m_last_err = errno;
      continue;
    }
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address.addr), address.length) == 0 ||
        errno == EINPROGRESS || (unix_socket && errno == EAGAIN)) {
      // Done or under way: poll(2) says which (a connected socket is writable at once).
      m_fd = std::move(fd);
      return;
    }
    m_last_err = errno;
  }
  if (unix_socket) {
    throw UnavailableError(fmt::format("could not connect to unix://{}: {}", m_peer, describe_errno(m_last_err)));
  }
  throw UnavailableError(fmt::format("could not connect to {}: {}", m_peer, describe_errno(m_last_err)));
}

short Transport::Dial::events() const noexcept {
  if (m_tls && m_want == TlsStream::Want::read) return POLLIN;
  return POLLOUT;
}

std::optional<Transport> Transport::Dial::advance() {
  if (!m_tls) {
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(m_fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
    if (err != 0) {
      m_last_err = err;
      // The kernel gave up on this address (no answer): the next one would not do better.
      if (err == ETIMEDOUT) m_next = m_addresses.size();
      connect_next();
      return std::nullopt;
    }
    if (m_endpoint->kind == Endpoint::Kind::tcp) {
      int one = 1;
      ::setsockopt(m_fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    if (m_endpoint->tls.enabled) {
      m_tls = TlsStream::begin(m_fd.get(), m_endpoint->tls, m_endpoint->host, m_peer, !m_full_handshake);
    }
  }
  if (m_tls) {
    bool done = false;
    try {
      done = m_tls->step(m_want);
    } catch (const Error& error) {
      if (!m_tls->offered_cached_session()) throw;
      // Once, on a new connection to the same address, with the same verification: never
      // without it, never in plaintext.
      log::verbose("TLS handshake with {} offering a cached session failed ({}): retrying with a full handshake",
                   m_peer, error.what());
      m_tls->forget_cached_session();
      m_tls.reset();
      m_full_handshake = true;
      --m_next;
      connect_next();
      return std::nullopt;
    }
    if (!done) return std::nullopt;
  }
  Transport transport(std::move(m_fd), m_peer);
  transport.m_tls = std::move(m_tls);
  return transport;
}

void Transport::Dial::time_out() const {
  if (m_tls) m_tls->timed_out();
  const bool unix_socket = m_endpoint->kind == Endpoint::Kind::unix_socket;
  throw UnavailableError(
      fmt::format("could not connect to {}{}: {}", unix_socket ? "unix://" : "", m_peer, describe_errno(ETIMEDOUT)));
}

Transport Transport::connect(const Endpoint& endpoint, Deadline deadline) {
  Dial dial = Transport::dial(endpoint);
  for (;;) {
    pollfd pfd{dial.fd(), dial.events(), 0};
    int n = ::poll(&pfd, 1, remaining_ms(deadline));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw SystemError("poll", errno);
    if (n == 0) dial.time_out();
    if (std::optional<Transport> done = dial.advance()) return std::move(*done);
  }
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
  if (!poll_for(events, deadline, interrupt_fd)) throw TimedOutError(fmt::format("timed out {} {}", doing, m_peer));
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

Transport::Ready Transport::read_ready(std::string& out) {
  if (m_tls) {
    TlsStream::Want want = TlsStream::Want::none;
    std::size_t before = out.size();
    if (!m_tls->read(out, want)) return Ready::eof;
    m_tls_wants_write = want == TlsStream::Want::write;
    return out.size() > before ? Ready::data : Ready::nothing;
  }
  char buffer[16384];
  for (;;) {
    ssize_t n = ::recv(m_fd.get(), buffer, sizeof buffer, 0);
    if (n > 0) {
      out.append(buffer, static_cast<std::size_t>(n));
      return Ready::data;
    }
    if (n == 0) return Ready::eof;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Ready::nothing;
    throw UnavailableError(fmt::format("could not read from {}: {}", m_peer, std::strerror(errno)));
  }
}

short Transport::wait_events() const noexcept {
  if (m_tls && m_tls->pending()) return 0;
  return m_tls_wants_write ? POLLOUT : POLLIN;
}

} // namespace rlock::redis
