// SPDX-License-Identifier: MIT
// Fd: closing.
#include "util/fd.hpp"

#include <unistd.h>

namespace rlock {

void Fd::reset(int fd) noexcept {
  if (m_fd >= 0) {
    ::close(m_fd);
  }
  m_fd = fd;
}

} // namespace rlock
