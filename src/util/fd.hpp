// SPDX-License-Identifier: MIT
// Fd: an owned file descriptor, closed on destruction.
#pragma once

#include <utility>

namespace rlock {

class Fd {
 public:
  Fd() noexcept = default;
  explicit Fd(int fd) noexcept : m_fd(fd) {}
  Fd(Fd&& other) noexcept : m_fd(std::exchange(other.m_fd, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset(std::exchange(other.m_fd, -1));
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }

  int get() const noexcept { return m_fd; }
  bool valid() const noexcept { return m_fd >= 0; }
  explicit operator bool() const noexcept { return valid(); }
  int release() noexcept { return std::exchange(m_fd, -1); }
  void reset(int fd = -1) noexcept;

 private:
  int m_fd = -1;
};

// Closes every descriptor from 3 up that is not close-on-exec: the ones this process inherited
// (rlock's own are all close-on-exec). For a process that outlives its caller, so that it does
// not hold the caller's pipes open.
void close_inherited_fds() noexcept;

} // namespace rlock
