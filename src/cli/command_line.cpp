// SPDX-License-Identifier: MIT
// The plain `rlock exec` command line, parsed without CLI11.
//
// Why: rlock starts once per job, and building the CLI11 application (every global option
// twice, exec's options, their names split and checked against each other) took about 80% of
// the instructions of a whole uncontended `rlock exec k -- true` (callgrind: 1.33 M of 1.68 M).
// This parser takes only what it fully understands, a subset of what CLI11 accepts, and fills
// the same structures with the same functions (parse_ttl, parse_signal…); anything else,
// including every error, goes to CLI11, so messages and exit codes stay CLI11's and rlock's
// rewording of them. The unit test compares both parsers' results on many command lines.
#include "cli/command_line.hpp"

#include "process/signals.hpp"
#include "util/error.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <string_view>

namespace rlock::cli {

namespace {

// Stores an option's value (empty for a flag) into the command line; throws UsageError for a
// value CLI11's callback would refuse, and returns false for one this parser leaves to CLI11.
using Store = bool (*)(CommandLine& line, std::string_view value);

struct PlainOption {
  std::string_view long_name;  // "--wait"
  std::string_view short_name; // "-w", or ""
  bool takes_value;
  Store store;
};

template <std::string GlobalOptions::*field>
bool store_global(CommandLine& line, std::string_view value) {
  line.globals.*field = value;
  return true;
}

// A duration option of exec, as add_duration_option parses it.
template <auto least_ms>
lock::Millis duration(std::string_view value, std::string_view what) {
  return parse_duration_at_least(require_value(value, what), what, lock::Millis(least_ms));
}

// -E: CLI11 reads an int with strtoll(…, 0), where "010" is octal: only plain decimal here.
bool store_conflict_exit_code(CommandLine& line, std::string_view value) {
  if (value.size() > 3 || (value.size() > 1 && value.front() == '0') ||
      !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  int code = 0;
  for (char c : value) code = code * 10 + (c - '0');
  if (code > 255) return false;
  line.exec.take.conflict_exit_code = code;
  return true;
}

constexpr std::array k_global_options{
    PlainOption{"--url", "", true,
                [](CommandLine& line, std::string_view value) {
                  // --url repeated (a quorum) is left to CLI11, so this is the only one.
                  line.globals.url = value;
                  return true;
                }},
    PlainOption{"--password", "", true, store_global<&GlobalOptions::password>},
    PlainOption{"--password-file", "", true, store_global<&GlobalOptions::password_file>},
    PlainOption{"--sentinel-password-file", "", true, store_global<&GlobalOptions::sentinel_password_file>},
    PlainOption{"--prefix", "", true, store_global<&GlobalOptions::prefix>},
    PlainOption{"--connect-timeout", "", true, store_global<&GlobalOptions::connect_timeout>},
    PlainOption{"--io-timeout", "", true, store_global<&GlobalOptions::io_timeout>},
    PlainOption{"--node-timeout", "", true, store_global<&GlobalOptions::node_timeout>},
    PlainOption{"--config", "", true,
                [](CommandLine& line, std::string_view value) {
                  line.globals.config_file = std::string(value);
                  return true;
                }},
    PlainOption{"--profile", "", true,
                [](CommandLine& line, std::string_view value) {
                  line.globals.profile = std::string(value);
                  return true;
                }},
    PlainOption{"--tls", "", false,
                [](CommandLine& line, std::string_view) {
                  line.globals.tls = "yes";
                  return true;
                }},
    PlainOption{"--audit", "", false,
                [](CommandLine& line, std::string_view) {
                  line.globals.audit = "yes";
                  return true;
                }},
    PlainOption{"--cacert", "", true, store_global<&GlobalOptions::cacert>},
    PlainOption{"--cacertdir", "", true, store_global<&GlobalOptions::cacertdir>},
    PlainOption{"--cert", "", true, store_global<&GlobalOptions::cert>},
    PlainOption{"--key", "", true, store_global<&GlobalOptions::key>},
    PlainOption{"--tls-server-name", "--sni", true, store_global<&GlobalOptions::tls_server_name>},
    PlainOption{"--tls-verify", "", true,
                [](CommandLine& line, std::string_view value) {
                  if (value != "full" && value != "ca" && value != "none") return false;
                  line.globals.tls_verify = value;
                  return true;
                }},
    PlainOption{"--tls-session-cache", "", true,
                [](CommandLine& line, std::string_view value) {
                  if (value != "yes" && value != "no") return false;
                  line.globals.tls_session_cache = value;
                  return true;
                }},
    PlainOption{"--insecure", "", false,
                [](CommandLine& line, std::string_view) {
                  line.globals.insecure = true;
                  return true;
                }},
    PlainOption{"--events", "", true, store_global<&GlobalOptions::events>},
    PlainOption{"--metrics-textfile", "", true, store_global<&GlobalOptions::metrics_textfile>},
    PlainOption{"--verbose", "-v", false,
                [](CommandLine& line, std::string_view) {
                  line.globals.verbose = true;
                  return true;
                }},
    PlainOption{"--quiet", "-q", false,
                [](CommandLine& line, std::string_view) {
                  line.globals.quiet = true;
                  return true;
                }},
};

constexpr std::array k_exec_options{
    PlainOption{"--ttl", "", true,
                [](CommandLine& line, std::string_view value) {
                  line.exec.take.ttl = duration<k_min_ttl.count()>(value, "--ttl");
                  return true;
                }},
    PlainOption{"--wait", "-w", true,
                [](CommandLine& line, std::string_view value) {
                  line.exec.take.wait = duration<0>(value, "--wait");
                  return true;
                }},
    PlainOption{"--no-wait", "-n", false,
                [](CommandLine& line, std::string_view) {
                  line.exec.take.no_wait = true;
                  return true;
                }},
    PlainOption{"--conflict-exit-code", "-E", true, store_conflict_exit_code},
    PlainOption{"--min-replicas", "", true,
                [](CommandLine& line, std::string_view value) {
                  line.exec.take.replicas.count =
                      parse_min_replicas(require_value(value, "--min-replicas"), "--min-replicas");
                  return true;
                }},
    PlainOption{"--min-replicas-timeout", "", true,
                [](CommandLine& line, std::string_view value) {
                  line.exec.take.replicas.timeout = duration<1>(value, "--min-replicas-timeout");
                  return true;
                }},
    PlainOption{"--limit", "", true,
                [](CommandLine& line, std::string_view value) {
                  line.exec.take.limit = parse_limit(value);
                  return true;
                }},
    PlainOption{"--shared", "", false,
                [](CommandLine& line, std::string_view) {
                  line.exec.take.shared = true;
                  return true;
                }},
    PlainOption{"--shell-command", "-c", true,
                [](CommandLine& line, std::string_view value) {
                  line.exec.shell_command = value;
                  return true;
                }},
    PlainOption{"--lost-signal", "", true,
                [](CommandLine& line, std::string_view value) {
                  line.exec.stop.signal = process::parse_signal(require_value(value, "--lost-signal"), "--lost-signal");
                  return true;
                }},
    PlainOption{"--grace", "", true,
                [](CommandLine& line, std::string_view value) {
                  line.exec.stop.grace = duration<0>(value, "--grace");
                  return true;
                }},
    PlainOption{"--max-hold", "", true,
                [](CommandLine& line, std::string_view value) {
                  line.exec.stop.max_hold = duration<1>(value, "--max-hold");
                  return true;
                }},
    PlainOption{"--min-hold", "", true,
                [](CommandLine& line, std::string_view value) {
                  line.exec.stop.min_hold = duration<0>(value, "--min-hold");
                  return true;
                }},
    PlainOption{"--token", "", true,
                [](CommandLine& line, std::string_view value) {
                  line.exec.token = value;
                  return true;
                }},
    PlainOption{"--token-file", "", true,
                [](CommandLine& line, std::string_view value) {
                  line.exec.token_file = value;
                  return true;
                }},
    PlainOption{"--adopt", "", false,
                [](CommandLine& line, std::string_view) {
                  line.exec.adopt = true;
                  return true;
                }},
    PlainOption{"--release", "", false,
                [](CommandLine& line, std::string_view) {
                  line.exec.release_after = true;
                  return true;
                }},
};

constexpr std::size_t k_option_count = k_global_options.size() + k_exec_options.size();

// The index of the option `name` names among the global options, then (after the command)
// exec's; k_option_count for none.
std::size_t find_option(std::string_view name, bool after_command) {
  for (std::size_t i = 0; i < k_option_count; ++i) {
    if (i >= k_global_options.size() && !after_command) break;
    const PlainOption& option =
        i < k_global_options.size() ? k_global_options[i] : k_exec_options[i - k_global_options.size()];
    if (name == option.long_name || (!option.short_name.empty() && name == option.short_name)) return i;
  }
  return k_option_count;
}

const PlainOption& option_at(std::size_t index) {
  return index < k_global_options.size() ? k_global_options[index] : k_exec_options[index - k_global_options.size()];
}

// The words naming a command: CLI11 may take such a word for the command rather than a NAME.
bool is_command_word(std::string_view word) {
  constexpr std::array<std::string_view, 9> k_words{"exec",   "acquire", "release", "renew", "wait",
                                                    "status", "log",     "config",  "help"};
  return std::find(k_words.begin(), k_words.end(), word) != k_words.end();
}

bool parse_words(int argc, char** argv, CommandLine& line) {
  std::array<bool, k_option_count> seen{};
  bool after_command = false;
  bool have_name = false;
  int i = 1;
  for (; i < argc; ++i) {
    const std::string_view word = argv[i];
    if (word == "--") break;
    if (!word.starts_with('-')) {
      if (!after_command) {
        if (word != "exec") return false;
        after_command = true;
        line.command = "exec";
        continue;
      }
      if (have_name || word.empty() || is_command_word(word)) return false;
      line.exec.name = word;
      have_name = true;
      continue;
    }
    // --name=value (a long option's value only), --name VALUE, -x VALUE, a flag.
    std::string_view name = word;
    std::string_view value;
    bool attached = false;
    if (word.starts_with("--")) {
      if (const auto equals = word.find('='); equals != std::string_view::npos) {
        name = word.substr(0, equals);
        value = word.substr(equals + 1);
        attached = true;
      }
    } else if (word.size() != 2) {
      return false; // -wVALUE, -nv: CLI11's
    }
    const std::size_t index = find_option(name, after_command);
    if (index == k_option_count || seen[index]) return false;
    seen[index] = true;
    const PlainOption& option = option_at(index);
    if (!option.takes_value) {
      if (attached) return false;
    } else if (!attached) {
      if (i + 1 >= argc) return false;
      value = argv[++i];
      if (value == "--") return false;
    }
    if (option.takes_value && (value.empty() || value.starts_with('-'))) return false;
    if (!option.store(line, value)) return false;
  }
  if (!after_command || !have_name) return false;
  if (line.globals.verbose && line.globals.quiet) return false;
  for (++i; i < argc; ++i) line.after_dashes.emplace_back(argv[i]);
  return true;
}

} // namespace

bool parse_plain_exec(int argc, char** argv, CommandLine& line) {
  try {
    if (!parse_words(argc, argv, line)) return false;
  } catch (const UsageError&) {
    return false; // a bad value: CLI11 says so, in its words
  }
  line.action = [&line] { return run_exec(line.globals, line.exec, line.after_dashes); };
  return true;
}

} // namespace rlock::cli
