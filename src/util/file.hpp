// SPDX-License-Identifier: MIT
// Reading the small files a user names (token, password, configuration): bounded, never blocking;
// replacing a file that others read (metrics) atomically.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace rlock {

// The content of the regular file `path`, read whole. `what` names it in errors ("password
// file"). The file is opened non-blocking, so that a FIFO without a writer cannot hang rlock,
// and must then be a regular file: a FIFO, directory, socket or device is refused. Throws
// UsageError for an empty path, ConfigError (exit 78, naming the file) when it cannot be read,
// is not a regular file, or is larger than `limit` bytes.
std::string read_regular_file(const std::string& path, const char* what, std::size_t limit = std::size_t{64} * 1024);

// Replaces `path` with `content` so that a reader sees the old file or the new one whole, never a
// part: writes a hidden temporary file in the same directory (".NAME.PID.tmp", which no
// `*.prom` glob matches), fsyncs it, renames it over `path`, then fsyncs the directory. The file
// gets mode 0666 less the umask. Throws SystemError naming the step that failed; the temporary
// file is removed on the way out.
void replace_file_atomically(const std::string& path, std::string_view content);

// The directory part of `path`: "." for a bare name, "/" for a file in the root.
std::string directory_of(const std::string& path);

} // namespace rlock
