// SPDX-License-Identifier: MIT
// The command line parsed, by CLI11 or, for the plain forms of `rlock exec`, by a parser that
// builds nothing first (rlock starts once per job, and setting CLI11 up was most of its start).
#pragma once

#include "cli/commands.hpp"

#include <optional>
#include <string>
#include <vector>

namespace rlock::cli {

// How and when exec stops the job.
struct StopPolicy {
  int signal = SIGTERM;                 // --lost-signal
  lock::Millis grace{10'000};           // --grace
  std::optional<lock::Millis> max_hold; // --max-hold
  lock::Millis min_hold{0};             // --min-hold

  bool operator==(const StopPolicy&) const = default;
};

// exec's options.
struct ExecOptions {
  std::string name;
  TakeOptions take;
  std::string shell_command;
  StopPolicy stop;
  // Adopting a lease taken earlier (acquire --lease) instead of taking the lock.
  std::string token;
  std::string token_file;
  bool adopt = false;         // the token from $RLOCK_TOKEN_<NAME> or $RLOCK_TOKEN
  bool release_after = false; // release the adopted lease when the job ends (default: keep it)

  bool adopting() const { return adopt || !token.empty() || !token_file.empty(); }
  bool operator==(const ExecOptions&) const = default;
};

// What the command line asks for. `action` refers to the other members, so a CommandLine
// stays where it was made.
struct CommandLine {
  GlobalOptions globals;
  std::string command;                   // the command chosen: "exec", "status" …
  ExecOptions exec;                      // exec's options, when it is the command
  std::vector<std::string> after_dashes; // what follows the first "--": exec's job
  Action action;                         // runs the command
  std::optional<int> exit_code;          // --help or --version was printed: exit with this

  CommandLine() = default;
  CommandLine(const CommandLine&) = delete;
  CommandLine& operator=(const CommandLine&) = delete;
};

// Parses argv with CLI11 into `line`, with rlock's usage errors (UsageError) for anything
// wrong; prints --help and --version.
void parse_command_line(int argc, char** argv, CommandLine& line);

// Parses `rlock [global options] exec NAME [options] [-- COMMAND…]` without CLI11 when every
// word is one it fully understands, each option given once with a well-formed, non-empty value
// that does not start with '-'. Gives exactly what parse_command_line would
// (tests/unit/cli/command_line_test.cpp compares them); returns false, with `line` to be
// thrown away, for anything else: CLI11 then parses it and reports any error.
bool parse_plain_exec(int argc, char** argv, CommandLine& line);

// `rlock exec` with its options parsed.
Outcome run_exec(const GlobalOptions& globals, const ExecOptions& options, const std::vector<std::string>& command);

} // namespace rlock::cli
