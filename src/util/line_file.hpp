// SPDX-License-Identifier: MIT
// LineFile: an append-only file of whole lines (an events log), or standard output.
#pragma once

#include "util/fd.hpp"

#include <string>
#include <string_view>

namespace rlock {

// Lines appended to a file that others may append to and read meanwhile. Each line goes out in
// one write(2) on a descriptor opened with O_APPEND, so that concurrent writers never interleave
// within a line and a writer killed at any instant leaves whole lines only (on a pipe, lines up
// to PIPE_BUF bytes). A write never blocks: a pipe or FIFO that is full drops the line. Writing
// is never worth failing for: the first failure warns (log::warn), later ones are silent.
class LineFile {
 public:
  LineFile() noexcept = default; // writes nothing
  LineFile(LineFile&&) noexcept = default;
  LineFile& operator=(LineFile&&) noexcept = default;
  LineFile(const LineFile&) = delete;
  LineFile& operator=(const LineFile&) = delete;
  ~LineFile() = default;

  // Opens `path` for appending, created if need be (mode 0666 less the umask), or a copy of
  // standard output for "-". The descriptor is close-on-exec. `what` names it in messages
  // ("events file"). Throws ConfigError (78) when it cannot be opened for writing (a missing
  // directory, no permission, a FIFO nobody reads, a closed stdout), SystemError (71) when the
  // system ran short of descriptors or memory.
  static LineFile open(const std::string& path, std::string_view what);

  bool enabled() const noexcept { return m_fd.valid(); }
  bool is_stdout() const noexcept { return m_path == "-"; }

  // Appends `line`, which ends with '\n', in one write(2). Returns whether it went out whole.
  bool write(std::string_view line) noexcept;

 private:
  void warn_once(std::string_view why) noexcept;

  Fd m_fd;
  std::string m_path;
  std::string m_what;
  bool m_poll_first = false; // a pipe or socket we could not make non-blocking (stdout)
  bool m_warned = false;
};

} // namespace rlock
