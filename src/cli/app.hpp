// SPDX-License-Identifier: MIT
// The command-line entry point: parses, runs one command, and maps every error to an exit code.
#pragma once

namespace rlock::cli {

// Runs rlock with the given arguments and returns the process exit status. The only place
// that catches errors and prints them (log::error: "rlock: error: …").
int run(int argc, char** argv);

} // namespace rlock::cli
