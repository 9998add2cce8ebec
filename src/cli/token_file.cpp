// SPDX-License-Identifier: MIT
// Token files: atomic, private, never through a symlink.
#include "cli/token_file.hpp"

#include "cli/config.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/random.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

namespace rlock::cli {

void write_token_file(const std::string& path, const std::string& token) {
  struct stat info {};
  if (::lstat(path.c_str(), &info) == 0 && S_ISLNK(info.st_mode)) {
    throw ConfigError(fmt::format("refusing to write the token to {}: it is a symbolic link; remove it or "
                                  "choose another path",
                                  path));
  }
  std::string temporary = fmt::format("{}.tmp-{}", path, random_token().substr(0, 8));
  Fd fd(::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) {
    throw ConfigError(fmt::format("cannot create token file {}: {}", temporary, std::strerror(errno)));
  }
  std::string content = token + "\n";
  bool ok = ::write(fd.get(), content.data(), content.size()) == static_cast<ssize_t>(content.size()) &&
            ::fsync(fd.get()) == 0;
  int err = errno;
  fd.reset();
  if (!ok || ::rename(temporary.c_str(), path.c_str()) != 0) {
    if (ok) err = errno;
    ::unlink(temporary.c_str());
    throw ConfigError(fmt::format("cannot write token file {}: {}", path, std::strerror(err)));
  }
}

std::string read_token_file(const std::string& path) { return read_secret_file(path, "token file"); }

} // namespace rlock::cli
