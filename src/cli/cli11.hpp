// SPDX-License-Identifier: MIT
// CLI11 for the files that build the command-line application, without <iostream>'s start-up.
//
// Why: with libstdc++ before GCC 13, every file that includes <iostream> (CLI11 does) runs a
// static std::ios_base::Init at start-up, which builds the standard streams and the classic
// locale: about 44,000 instructions and their page faults in every run, 12% of a whole plain
// `rlock exec k -- true`, which never touches a stream. Here the streams are only declared, as
// <iostream> declares them, and parse_command_line() constructs the one std::ios_base::Init
// before CLI11 can print (--help, --version). Nothing else in rlock uses the standard streams.
#pragma once

#include <istream>
#include <ostream>

#if defined(_GLIBCXX_RELEASE) && _GLIBCXX_RELEASE < 13 && !defined(_GLIBCXX_IOSTREAM)
// NOLINTBEGIN: libstdc++'s own names, declared as <iostream> declares them
#define _GLIBCXX_IOSTREAM 1
namespace std {
extern istream cin;
extern ostream cout;
extern ostream cerr;
extern ostream clog;
} // namespace std
// NOLINTEND
#endif

#include <CLI/CLI.hpp>
