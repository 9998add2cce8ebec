// SPDX-License-Identifier: MIT
// Out-of-line parts of the error types.
#include "util/error.hpp"

#include <cerrno>
#include <cstring>

namespace rlock {

SystemError::SystemError(const std::string& what, int err)
    : Error(ExitCode::os_error, what + ": " + std::strerror(err)), m_errno(err) {}

bool is_resource_shortage(int err) noexcept {
  return err == EMFILE || err == ENFILE || err == ENOMEM || err == ENOBUFS;
}

} // namespace rlock
