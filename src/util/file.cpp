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

std::string directory_of(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

void replace_file_atomically(const std::string& path, std::string_view content) {
  const std::string directory = directory_of(path);
  const auto slash = path.rfind('/');
  const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  const std::string temporary = fmt::format("{}/.{}.{}.tmp", directory, base, ::getpid());
  // A leftover of a pid that ran before (killed between its write and its rename) is ours now.
  (void)::unlink(temporary.c_str());
  Fd fd(::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0666));
  if (!fd) throw SystemError(fmt::format("creating {}", printable(temporary)), errno);
  struct Remove {
    const std::string& path;
    bool armed = true;
    ~Remove() {
      if (armed) (void)::unlink(path.c_str());
    }
  } remove{temporary};
  while (!content.empty()) {
    const ssize_t n = ::write(fd.get(), content.data(), content.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw SystemError(fmt::format("writing {}", printable(temporary)), n < 0 ? errno : EIO);
    content.remove_prefix(static_cast<std::size_t>(n));
  }
  if (::fsync(fd.get()) != 0) throw SystemError(fmt::format("fsync of {}", printable(temporary)), errno);
  if (::close(fd.release()) != 0) throw SystemError(fmt::format("closing {}", printable(temporary)), errno);
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    throw SystemError(fmt::format("renaming {} to {}", printable(temporary), printable(path)), errno);
  }
  remove.armed = false;
  // The rename is durable once the directory is: best effort (some file systems refuse).
  Fd dir(::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir) (void)::fsync(dir.get());
}

} // namespace rlock
