// SPDX-License-Identifier: MIT
// TLS test support: the per-program certificate directory and the recording proxy.
#include "tls_support.hpp"

#include "run.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <memory>

namespace rlock::test {

namespace {

sockaddr_in loopback(int port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return address;
}

} // namespace

const std::string& tls_cert_dir() {
  static const std::unique_ptr<TempDir> dir = [] {
    auto made = std::make_unique<TempDir>();
    RunOptions options;
    options.timeout = 120s; // a loaded machine: some thirty openssl runs
    RunResult result = run_program({"bash", source_dir() + "/tests/support/make_tls_certs.sh", made->path()}, options);
    if (result.exit_code != 0) throw SupportError("make_tls_certs.sh failed: " + result.describe());
    return made;
  }();
  return dir->path();
}

std::string tls_cert(const std::string& name) { return tls_cert_dir() + "/" + name; }

RecordingProxy::RecordingProxy(int target_port) : m_target_port(target_port) {
  m_listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address = loopback(0);
  if (m_listen_fd < 0 || ::bind(m_listen_fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(m_listen_fd, 64) != 0 || ::pipe2(m_stop_pipe, O_CLOEXEC) != 0) {
    throw SupportError(fmt::format("proxy: listen: {}", std::strerror(errno)));
  }
  socklen_t length = sizeof address;
  ::getsockname(m_listen_fd, reinterpret_cast<sockaddr*>(&address), &length);
  m_port = ntohs(address.sin_port);
  m_thread = std::thread([this] { serve(); });
}

RecordingProxy::~RecordingProxy() {
  (void)::write(m_stop_pipe[1], "x", 1);
  m_thread.join();
  ::close(m_listen_fd);
  ::close(m_stop_pipe[0]);
  ::close(m_stop_pipe[1]);
}

std::vector<int> RecordingProxy::first_bytes() const {
  std::lock_guard<std::mutex> lock(m_mutex);
  return m_first_bytes;
}

void RecordingProxy::serve() {
  // Each pair: client fd -> upstream fd and back; index into m_first_bytes per client.
  struct Pair {
    int client;
    int upstream;
    std::size_t index;
  };
  std::vector<Pair> pairs;
  auto close_pair = [&pairs](std::size_t i) {
    ::close(pairs[i].client);
    ::close(pairs[i].upstream);
    pairs.erase(pairs.begin() + static_cast<std::ptrdiff_t>(i));
  };
  for (;;) {
    std::vector<pollfd> fds{{m_stop_pipe[0], POLLIN, 0}, {m_listen_fd, POLLIN, 0}};
    for (const auto& pair : pairs) {
      fds.push_back({pair.client, POLLIN, 0});
      fds.push_back({pair.upstream, POLLIN, 0});
    }
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[0].revents != 0) break;
    if ((fds[1].revents & POLLIN) != 0) {
      int client = ::accept4(m_listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (client >= 0) {
        int upstream = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in target = loopback(m_target_port);
        if (::connect(upstream, reinterpret_cast<const sockaddr*>(&target), sizeof target) != 0) {
          ::close(upstream);
          ::close(client);
        } else {
          std::lock_guard<std::mutex> lock(m_mutex);
          m_first_bytes.push_back(-1);
          pairs.push_back({client, upstream, m_first_bytes.size() - 1});
        }
      }
      continue; // the pair list changed: rebuild the poll set
    }
    for (std::size_t i = pairs.size(); i-- > 0;) {
      const pollfd& from_client = fds[2 + 2 * i];
      const pollfd& from_upstream = fds[3 + 2 * i];
      char buffer[16384];
      bool closed = false;
      if (from_client.revents != 0) {
        ssize_t n = ::read(pairs[i].client, buffer, sizeof buffer);
        if (n <= 0) {
          closed = true;
        } else {
          {
            std::lock_guard<std::mutex> lock(m_mutex);
            int& first = m_first_bytes[pairs[i].index];
            if (first < 0) first = static_cast<unsigned char>(buffer[0]);
          }
          closed = ::send(pairs[i].upstream, buffer, static_cast<std::size_t>(n), MSG_NOSIGNAL) != n;
        }
      }
      if (!closed && from_upstream.revents != 0) {
        ssize_t n = ::read(pairs[i].upstream, buffer, sizeof buffer);
        closed = n <= 0 || ::send(pairs[i].client, buffer, static_cast<std::size_t>(n), MSG_NOSIGNAL) != n;
      }
      if (closed) close_pair(i);
    }
  }
  while (!pairs.empty()) close_pair(pairs.size() - 1);
}

} // namespace rlock::test
