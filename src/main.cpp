// SPDX-License-Identifier: MIT
// The program entry point: everything lives in the library behind cli::run().
#include "cli/app.hpp"

int main(int argc, char** argv) { return rlock::cli::run(argc, argv); }
