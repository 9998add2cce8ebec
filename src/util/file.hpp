// SPDX-License-Identifier: MIT
// Reading the small files a user names (token, password, configuration): bounded, never blocking.
#pragma once

#include <cstddef>
#include <string>

namespace rlock {

// The content of the regular file `path`, read whole. `what` names it in errors ("password
// file"). The file is opened non-blocking, so that a FIFO without a writer cannot hang rlock,
// and must then be a regular file: a FIFO, directory, socket or device is refused. Throws
// UsageError for an empty path, ConfigError (exit 78, naming the file) when it cannot be read,
// is not a regular file, or is larger than `limit` bytes.
std::string read_regular_file(const std::string& path, const char* what, std::size_t limit = std::size_t{64} * 1024);

} // namespace rlock
