// SPDX-License-Identifier: MIT
// Fd: closing, and closing what a process inherited.
#include "util/fd.hpp"

#include <charconv>
#include <dirent.h>
#include <fcntl.h>
#include <string_view>
#include <unistd.h>
#include <vector>

namespace rlock {

void Fd::reset(int fd) noexcept {
  if (m_fd >= 0) {
    ::close(m_fd);
  }
  m_fd = fd;
}

void close_inherited_fds() noexcept {
  std::vector<int> inherited;
  if (DIR* dir = ::opendir("/proc/self/fd"); dir != nullptr) {
    while (const dirent* entry = ::readdir(dir)) {
      std::string_view name = entry->d_name;
      int fd = -1;
      auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), fd);
      if (ec != std::errc{} || end != name.data() + name.size() || fd < 3 || fd == ::dirfd(dir)) continue;
      inherited.push_back(fd);
    }
    ::closedir(dir);
  } else {
    long max = ::sysconf(_SC_OPEN_MAX);
    for (int fd = 3; fd < (max > 0 && max < 65536 ? static_cast<int>(max) : 65536); ++fd) inherited.push_back(fd);
  }
  for (int fd : inherited) {
    int flags = ::fcntl(fd, F_GETFD);
    if (flags >= 0 && (flags & FD_CLOEXEC) == 0) ::close(fd);
  }
}

} // namespace rlock
