// SPDX-License-Identifier: MIT
// Reading the small files a user names.
#include "util/file.hpp"

#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/strings.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

namespace rlock {

std::string read_regular_file(const std::string& path, const char* what, std::size_t limit) {
  if (path.empty()) throw UsageError(fmt::format("the {} name is empty", what));
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (!fd) {
    const int err = errno;
    if (is_resource_shortage(err)) throw SystemError(fmt::format("cannot open {} {}", what, printable(path)), err);
    throw ConfigError(fmt::format("cannot read {} {}: {}", what, printable(path), std::strerror(err)));
  }
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0 || !S_ISREG(info.st_mode)) {
    throw ConfigError(fmt::format("{} {} is not a regular file; give the path of a file", what, printable(path)));
  }
  std::string content;
  char buffer[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw ConfigError(fmt::format("cannot read {} {}: {}", what, printable(path), std::strerror(errno)));
    if (n == 0) return content;
    content.append(buffer, static_cast<std::size_t>(n));
    if (content.size() > limit) {
      throw ConfigError(
          fmt::format("{} {} is larger than {} KiB; is it the right file?", what, printable(path), limit / 1024));
    }
  }
}

} // namespace rlock
