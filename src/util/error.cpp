// SPDX-License-Identifier: MIT
// Out-of-line parts of the error types.
#include "util/error.hpp"

#include <cstring>

namespace rlock {

SystemError::SystemError(const std::string& what, int err)
    : Error(ExitCode::os_error, what + ": " + std::strerror(err)), m_errno(err) {}

} // namespace rlock
