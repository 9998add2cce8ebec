// SPDX-License-Identifier: MIT
// LineFile: whole lines, one write(2) each, never blocking.
#include "util/line_file.hpp"

#include "util/error.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

namespace rlock {

LineFile LineFile::open(const std::string& path, std::string_view what) {
  LineFile file;
  file.m_path = path;
  file.m_what = what;
  if (path == "-") {
    // Standard output is shared with whoever else writes to it (exec's job): its flags are not
    // ours to change, so a pipe is asked whether it has room before each line instead.
    const int flags = ::fcntl(STDOUT_FILENO, F_GETFL);
    if (flags < 0 || (flags & O_ACCMODE) == O_RDONLY) {
      throw ConfigError(fmt::format("cannot write the {} to standard output: it is closed", what));
    }
    file.m_fd = Fd(::fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3));
    if (!file.m_fd) throw SystemError(fmt::format("duplicating standard output for the {}", what), errno);
    struct stat info {};
    file.m_poll_first = ::fstat(file.m_fd.get(), &info) == 0 && (S_ISFIFO(info.st_mode) || S_ISSOCK(info.st_mode));
    return file;
  }
  if (path.empty()) throw UsageError(fmt::format("the {} name is empty", what));
  // O_NONBLOCK: opening a FIFO nobody reads fails instead of hanging, and a full one drops a
  // line instead of stalling the renewals; a regular file does not care.
  file.m_fd = Fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC | O_NOCTTY, 0666));
  if (!file.m_fd) {
    const int err = errno;
    if (is_resource_shortage(err)) throw SystemError(fmt::format("cannot open {} {}", what, printable(path)), err);
    throw ConfigError(fmt::format("cannot open {} {} for appending: {}", what, printable(path),
                                  err == ENXIO ? "it is a FIFO that no process reads" : std::strerror(err)));
  }
  return file;
}

bool LineFile::write(std::string_view line) noexcept {
  if (!m_fd) return false;
  if (m_poll_first) {
    pollfd ready{m_fd.get(), POLLOUT, 0};
    if (::poll(&ready, 1, 0) != 1 || (ready.revents & POLLOUT) == 0) {
      warn_once((ready.revents & (POLLERR | POLLHUP)) != 0 ? "nobody reads it any more"
                                                           : "it is full (its reader is slow or stopped)");
      return false;
    }
  }
  ssize_t written = -1;
  do {
    written = ::write(m_fd.get(), line.data(), line.size());
  } while (written < 0 && errno == EINTR); // nothing was written
  if (written == static_cast<ssize_t>(line.size())) return true;
  if (written >= 0) {
    warn_once("a line went out only in part (is the disk full?)");
  } else {
    warn_once(errno == EAGAIN ? "it is full (its reader is slow or stopped)" : std::strerror(errno));
  }
  return false;
}

void LineFile::warn_once(std::string_view why) noexcept {
  if (m_warned) return;
  m_warned = true;
  try {
    log::warn("cannot write to the {} {}: {}; the lock is handled as before, but events are missing", m_what,
              m_path == "-" ? std::string("(standard output)") : printable(m_path), why);
  } catch (...) { // NOLINT(bugprone-empty-catch): a warning that cannot be formatted is dropped
  }
}

} // namespace rlock
