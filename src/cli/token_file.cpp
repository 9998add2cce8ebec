// SPDX-License-Identifier: MIT
// Token files: atomic, private, never through a symlink.
#include "cli/token_file.hpp"

#include "cli/config.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/random.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

namespace rlock::cli {

namespace {

// `content` to `path` through a 0600 temporary beside it and a rename; `what` names the file.
void write_private_file(const std::string& path, const std::string& content, const char* what) {
  struct stat info {};
  if (::lstat(path.c_str(), &info) == 0 && S_ISLNK(info.st_mode)) {
    throw ConfigError(fmt::format("refusing to write the {} to {}: it is a symbolic link; remove it or "
                                  "choose another path",
                                  what, path));
  }
  std::string temporary = fmt::format("{}.tmp-{}", path, random_token().substr(0, 8));
  Fd fd(::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) {
    throw ConfigError(fmt::format("cannot create {} file {}: {}", what, temporary, std::strerror(errno)));
  }
  bool ok = ::write(fd.get(), content.data(), content.size()) == static_cast<ssize_t>(content.size()) &&
            ::fsync(fd.get()) == 0;
  int err = errno;
  fd.reset();
  if (!ok || ::rename(temporary.c_str(), path.c_str()) != 0) {
    if (ok) err = errno;
    ::unlink(temporary.c_str());
    throw ConfigError(fmt::format("cannot write {} file {}: {}", what, path, std::strerror(err)));
  }
}

std::string environment_suffix(std::string_view name) {
  std::string suffix;
  suffix.reserve(name.size());
  for (char c : name) {
    if (c >= 'a' && c <= 'z') {
      suffix += static_cast<char>(c - 'a' + 'A');
    } else if ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
      suffix += c;
    } else {
      suffix += '_';
    }
  }
  return suffix;
}

} // namespace

std::string fence_file_of(const std::string& token_path) { return token_path + ".fence"; }

void write_token_file(const std::string& path, const std::string& token, std::int64_t fence) {
  write_private_file(fence_file_of(path), std::to_string(fence) + "\n", "fence");
  write_private_file(path, token + "\n", "token");
}

std::string token_variable(std::string_view name) { return "RLOCK_TOKEN_" + environment_suffix(name); }

std::optional<std::string> token_from_environment(std::string_view name) {
  for (const std::string& variable : {token_variable(name), std::string("RLOCK_TOKEN")}) {
    const char* value = std::getenv(variable.c_str());
    if (value == nullptr) continue;
    // Set but empty is no "unset": that token went missing on its way here.
    if (*value == '\0') throw UsageError(fmt::format("{} is set but empty: give it a token or unset it", variable));
    return value;
  }
  return std::nullopt;
}

std::string fence_variable(std::string_view name) { return "RLOCK_FENCE_" + environment_suffix(name); }

std::string read_token_file(const std::string& path) {
  struct stat info {};
  if (::lstat(path.c_str(), &info) == 0 && S_ISLNK(info.st_mode)) {
    throw ConfigError(
        fmt::format("refusing to read the token from {}: it is a symbolic link; give the file itself", path));
  }
  return read_secret_file(path, "token file");
}

} // namespace rlock::cli
