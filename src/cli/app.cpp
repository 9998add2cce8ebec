// SPDX-License-Identifier: MIT
// The CLI11 application, global options, and the single catch site.
#include "cli/app.hpp"

#include "cli/commands.hpp"
#include "redis/connection.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"
#include "util/version.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <string_view>
#include <unistd.h>

namespace rlock::cli {

namespace {

constexpr std::string_view k_commands[] = {"exec", "acquire", "release", "renew", "status"};

bool is_command(std::string_view word) {
  return std::find(std::begin(k_commands), std::end(k_commands), word) != std::end(k_commands);
}

std::string version_text() {
  std::string text = fmt::format("rlock {}", k_version);
  if (!std::string_view(k_git_revision).empty()) text += fmt::format(" (git {})", k_git_revision);
  text += fmt::format("\nbuilt with {}", redis::client_library_version());
  return text;
}

// The global options. They are registered on the application and again on each command, so
// that they may come anywhere before "--": `rlock exec x --url U -- job` works as
// `rlock --url U exec x -- job` does, and each command's --help lists them.
void add_global_options(CLI::App& app, GlobalOptions& globals) {
  const std::string group = app.get_parent() == nullptr ? "Options" : "Global options";
  app.add_option("--url", globals.url,
                 "Redis URL: redis://[user[:password]@]host[:port][/db] or unix:///path.sock[?db=N] "
                 "(env RLOCK_URL, then REDIS_URL; default redis://127.0.0.1:6379)")
      ->type_name("URL")
      ->group(group);
  app.add_option("--password", globals.password,
                 "Redis password (unsafe: visible in ps; prefer RLOCK_PASSWORD or --password-file)")
      ->type_name("PASSWORD")
      ->group(group);
  app.add_option("--password-file", globals.password_file, "read the Redis password from the first line of FILE")
      ->type_name("FILE")
      ->group(group);
  app.add_option("--prefix", globals.prefix, "key prefix (env RLOCK_PREFIX; default 'rlock:')")
      ->type_name("PREFIX")
      ->group(group);
  app.add_option("--connect-timeout", globals.connect_timeout, "give up connecting after DURATION (default 2s)")
      ->type_name("DURATION")
      ->group(group);
  app.add_option("--io-timeout", globals.io_timeout, "give up on a Redis reply after DURATION (default 5s)")
      ->type_name("DURATION")
      ->group(group);
  app.add_flag("-v,--verbose", globals.verbose, "say what rlock does, in plain lines on stderr")->group(group);
  app.add_flag("-q,--quiet", globals.quiet, "print nothing but errors")->group(group);
}

// The spellings of the options of `app` that take a value ("--url", "-w", …), from the
// options as registered: the pre-scan below must skip their values.
std::vector<std::string> value_taking_options(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::Option* option : app.get_options()) {
    if (option->get_positional() || option->get_type_size() == 0) continue; // a flag
    for (const auto& name : option->get_lnames()) names.push_back("--" + name);
    for (const auto& name : option->get_snames()) names.push_back("-" + name);
  }
  return names;
}

// The index of the first argument that is not an option or an option's value (the command,
// for the global options), or args.size() when there is none.
std::size_t first_word(const std::vector<std::string>& args, const std::vector<std::string>& takes_value) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (!args[i].starts_with('-') || args[i] == "-") return i;
    if (std::find(takes_value.begin(), takes_value.end(), args[i]) != takes_value.end()) ++i;
  }
  return args.size();
}

// " (did you mean exec?)" when one of `known` is a likely typo of `word`, else "".
std::string did_you_mean(std::string_view word, const std::vector<std::string>& known) {
  std::string best;
  std::size_t best_distance = 3; // more than two edits away is another word, not a typo
  for (const auto& candidate : known) {
    std::size_t distance = edit_distance(word, candidate);
    if (distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best.empty() ? std::string() : fmt::format(" (did you mean {}?)", best);
}

// Shows `-- COMMAND [ARG...]` in exec's usage line, where CLI11 cannot see it.
class HelpFormatter : public CLI::Formatter {
 public:
  std::string make_usage(const CLI::App* app, std::string name) const override {
    std::string usage = CLI::Formatter::make_usage(app, std::move(name));
    if (app->get_name() == "exec" && usage.ends_with('\n')) {
      usage.insert(usage.size() - 1, " [-- COMMAND [ARG...]]");
    }
    return usage;
  }
};

// CLI11's message for a parse error, in rlock's words: lower case like every other rlock
// message, and pointing at the help of the command at hand.
std::string usage_message(const CLI::ParseError& error, std::string_view command) {
  std::string message = error.what();
  const std::string help = command.empty() ? "rlock --help" : fmt::format("rlock {} --help", command);
  if (message == "A subcommand is required") {
    return fmt::format("no command given: rlock [OPTIONS] COMMAND …, where COMMAND is one of exec, acquire, "
                       "release, renew, status (see '{}')",
                       help);
  }
  if (auto colon = message.find(": "); colon != std::string::npos && message.ends_with(" missing")) {
    // "--ttl: 1 required DURATION missing"
    return fmt::format("{} needs a value (see '{}')", message.substr(0, colon), help);
  }
  if (!message.empty()) message[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(message[0])));
  return fmt::format("{} (see '{}')", message, help);
}

// Arguments CLI11 could not place (it keeps them instead of failing): the first one, said in
// rlock's words with a likely correction.
[[noreturn]] void throw_extra_argument(const std::string& extra, const CLI::App& command) {
  const std::string help =
      command.get_parent() == nullptr ? "rlock --help" : fmt::format("rlock {} --help", command.get_name());
  if (extra.starts_with('-') && extra != "-") {
    std::vector<std::string> known;
    for (const CLI::Option* option : command.get_options()) {
      for (const auto& name : option->get_lnames()) known.push_back("--" + name);
    }
    std::string name = extra.substr(0, extra.find('='));
    throw UsageError(fmt::format("unknown option '{}'{} (see '{}')", printable(name), did_you_mean(name, known), help));
  }
  if (command.get_name() == "exec") {
    throw UsageError(fmt::format("unexpected argument '{}': the command to run goes after '--': rlock exec NAME "
                                 "[OPTIONS] -- COMMAND [ARG...]",
                                 printable(extra)));
  }
  throw UsageError(fmt::format("unexpected argument '{}' (see '{}')", printable(extra), help));
}

Outcome run_parsed(int argc, char** argv) {
  // Everything after the first "--" is exec's command, kept away from the option parser.
  std::vector<std::string> args;
  std::vector<std::string> command_after_dashes;
  bool saw_dashes = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (!saw_dashes && arg == "--") {
      saw_dashes = true;
    } else if (saw_dashes) {
      command_after_dashes.emplace_back(arg);
    } else {
      args.emplace_back(arg);
    }
  }

  CLI::App app("Named locks in Redis for shell scripts, cron jobs and CI pipelines.\n"
               "Global options may come before or after the command. See rlock(1) for the whole story,\n"
               "or 'rlock help COMMAND'.",
               "rlock");
  app.formatter(std::make_shared<HelpFormatter>());
  app.set_help_flag("-h,--help", "print this help and exit");
  app.set_version_flag("--version", version_text(), "print the version and exit");
  app.require_subcommand(1, 1);
  app.allow_extras(); // reported below, in rlock's words and in the order given
  app.option_defaults()->always_capture_default(false);

  GlobalOptions globals;
  add_global_options(app, globals);

  // CLI11 builds every option of every command up front, and rlock is started once per job,
  // so only the chosen command is built: find it, skipping the global options' values.
  const std::vector<std::string> takes_value = value_taking_options(app);
  std::size_t at = first_word(args, takes_value);
  if (at < args.size() && args[at] == "help") {
    // `rlock help [COMMAND]` is `rlock [COMMAND] --help`.
    args.erase(args.begin() + static_cast<std::ptrdiff_t>(at));
    args.emplace_back("--help");
    at = first_word(args, takes_value);
  }
  const std::string_view chosen = at < args.size() ? std::string_view(args[at]) : std::string_view();
  if (!chosen.empty() && !is_command(chosen)) {
    throw UsageError(fmt::format("unknown command '{}'{} (see 'rlock --help')", printable(chosen),
                                 did_you_mean(chosen, {std::begin(k_commands), std::end(k_commands)})));
  }

  Action action;
  if (chosen.empty() || chosen == "exec") add_exec_command(app, globals, action, command_after_dashes);
  if (chosen.empty() || chosen == "acquire") add_acquire_command(app, globals, action);
  if (chosen.empty() || chosen == "release") add_release_command(app, globals, action);
  if (chosen.empty() || chosen == "renew") add_renew_command(app, globals, action);
  if (chosen.empty() || chosen == "status") add_status_command(app, globals, action);
  for (CLI::App* command : app.get_subcommands({})) add_global_options(*command, globals);

  try {
    std::reverse(args.begin(), args.end());
    app.parse(args);
  } catch (const CLI::ParseError& error) {
    if (error.get_exit_code() == 0) {
      return {app.exit(error)}; // --help, --version
    }
    throw UsageError(usage_message(error, chosen));
  }
  if (std::vector<std::string> extras = app.remaining(); !extras.empty()) throw_extra_argument(extras.front(), app);
  for (const CLI::App* command : app.get_subcommands()) {
    if (std::vector<std::string> extras = command->remaining(); !extras.empty()) {
      throw_extra_argument(extras.front(), *command);
    }
  }
  if (globals.verbose && globals.quiet) throw UsageError("-v and -q contradict each other");
  log::set_level(globals.quiet ? log::Level::quiet : globals.verbose ? log::Level::verbose : log::Level::normal);
  if (saw_dashes && !app.got_subcommand("exec")) {
    throw UsageError("only 'exec' takes a command after '--'");
  }
  if (!action) throw Error(ExitCode::internal, "no command was selected");
  return action();
}

// Delivers the ^C the job took to rlock's own process group, as the terminal would have had
// rlock not handed it to the job: rlock dies of it, and a script running rlock sees it too
// (bash abandons a loop only when it got the SIGINT itself). Every destructor has run by now.
int die_of(int signo, int code) {
  (void)std::signal(signo, SIG_DFL);
  sigset_t only;
  sigemptyset(&only);
  sigaddset(&only, signo);
  pthread_sigmask(SIG_UNBLOCK, &only, nullptr);
  ::kill(0, signo);
  return code; // not reached unless the signal is somehow held off
}

// With stdin, stdout or stderr closed, the first file rlock opens would take its number and
// the job (or a token written to "stdout") would land in a socket or a signalfd: keep 0, 1
// and 2 taken, by /dev/null if need be.
void keep_standard_fds_open() noexcept {
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) >= 0 || errno != EBADF) continue;
    int null_fd = ::open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
    if (null_fd >= 0 && null_fd != fd) {
      ::dup2(null_fd, fd);
      ::close(null_fd);
    }
  }
}

} // namespace

int run(int argc, char** argv) {
  keep_standard_fds_open();
  // A closed pipe is an error to report (EPIPE), not a reason to die silently.
  (void)std::signal(SIGPIPE, SIG_IGN);
  try {
    const Outcome outcome = run_parsed(argc, argv);
    return outcome.die_of_signal != 0 ? die_of(outcome.die_of_signal, outcome.code) : outcome.code;
  } catch (const Error& error) {
    log::error(error.what());
    return to_int(error.code());
  } catch (const std::bad_alloc&) {
    log::error("out of memory");
    return to_int(ExitCode::os_error);
  } catch (const std::exception& error) {
    log::error("internal error: {}", error.what());
    return to_int(ExitCode::internal);
  }
}

} // namespace rlock::cli
