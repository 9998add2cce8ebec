// SPDX-License-Identifier: MIT
// The CLI11 application, global options, help and usage errors, and the single catch site.
#include "cli/app.hpp"
#include "cli/cli11.hpp"

#include "cli/command_line.hpp"
#include "cli/commands.hpp"
#include "redis/connection.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"
#include "util/version.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <fmt/format.h>
#include <memory>
#include <signal.h>
#include <string_view>
#include <unistd.h>

namespace rlock::cli {

namespace {

std::string version_text() {
  std::string text = fmt::format("rlock {}", k_version);
  if (!std::string_view(k_git_revision).empty()) text += fmt::format(" (git {})", k_git_revision);
  text += fmt::format("\nbuilt with {}", redis::client_library_version());
  return text;
}

// The commands, in the order `rlock --help` lists them.
constexpr std::string_view k_commands[] = {"exec",   "acquire", "release", "renew", "wait",
                                           "status", "log",     "config",  "help"};

bool is_command(std::string_view word) {
  return std::find(std::begin(k_commands), std::end(k_commands), word) != std::end(k_commands);
}

std::string command_list() {
  std::string list;
  for (std::string_view command : k_commands) list += fmt::format("{}{}", list.empty() ? "" : ", ", command);
  return list;
}

// The usage lines of `rlock help COMMAND`: rlock(1)'s SYNOPSIS, which CLI11 cannot write (the
// global options before the command, exec's command after "--").
std::string usage_of(std::string_view command) {
  constexpr std::string_view k_or = "\n       ";
  if (command == "exec") {
    return fmt::format("rlock [global options] exec NAME [options] -- COMMAND [ARG...]{}"
                       "rlock [global options] exec NAME [options] -c STRING",
                       k_or);
  }
  if (command == "status") return "rlock [global options] status [NAME] [options]";
  if (command == "config") return "rlock [global options] config show [options]";
  if (command == "help") return "rlock help [COMMAND]";
  if (command.empty()) {
    return fmt::format(
        "rlock [global options] COMMAND [NAME] [options]{0}rlock [global options] exec NAME [options] -- "
        "COMMAND [ARG...]{0}rlock help [COMMAND]",
        k_or);
  }
  return fmt::format("rlock [global options] {} NAME [options]", command);
}

// CLI11's help with rlock's usage lines.
class HelpFormatter : public CLI::Formatter {
 public:
  std::string make_usage(const CLI::App* app, std::string /*name*/) const override {
    return fmt::format("Usage: {}\n", usage_of(app->get_parent() == nullptr ? "" : app->get_name()));
  }
};

// "unknown command 'exce' (did you mean exec?)", or the list of commands when none is close.
UsageError unknown_command(std::string_view word) {
  const std::string shown = printable(word);
  std::string_view best;
  std::size_t best_distance = 3; // more edits than that is another word
  for (std::string_view command : k_commands) {
    std::size_t distance = edit_distance(word, command);
    if (!word.empty() && command.starts_with(word)) distance = std::min<std::size_t>(distance, 1);
    if (distance < best_distance && distance < std::max<std::size_t>(command.size(), 2)) {
      best = command;
      best_distance = distance;
    }
  }
  if (!best.empty()) return UsageError(fmt::format("unknown command '{}' (did you mean {}?)", shown, best));
  return UsageError(fmt::format("unknown command '{}'; the commands are: {}; try 'rlock help'", shown, command_list()));
}

// Where the command is in `args` (args.size() when none): the first word that is neither a
// global option nor the value of one. CLI11 builds every option of every subcommand up front,
// and rlock is started once per job, so only the chosen one is built. `app` says which global
// options take a value.
std::size_t command_index(const CLI::App& app, const std::vector<std::string>& args) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (!arg.starts_with('-') || arg == "-") return i;
    const CLI::Option* option = arg.starts_with("--") || arg.size() == 2 ? app.get_option_no_throw(args[i]) : nullptr;
    if (option != nullptr && option->get_items_expected_min() > 0) ++i;
  }
  return args.size();
}

// `rlock help CMD` is `rlock CMD --help`, and `rlock help` is `rlock --help`: rewrites `args` so.
// Global options may stand around CMD (`rlock help -q exec`); `app` says which take a value.
void rewrite_help(const CLI::App& app, std::vector<std::string>& args, std::size_t help_at) {
  if (help_at + 1 < args.size() && (args[help_at + 1] == "--help" || args[help_at + 1] == "-h")) {
    return; // `rlock help --help`: help's own
  }
  const std::vector<std::string> rest(args.begin() + static_cast<std::ptrdiff_t>(help_at) + 1, args.end());
  const std::size_t topic = help_at + 1 + command_index(app, rest);
  if (topic >= args.size()) {
    args[help_at] = "--help";
    return;
  }
  if (!is_command(args[topic])) throw unknown_command(args[topic]);
  args[help_at] = args[topic];
  args[topic] = "--help";
}

// The global options, on `app` and on every command (they may come after the command too,
// rlock(1) GLOBAL OPTIONS), in the group "Global options" of each --help.
void add_global_options(CLI::App& app, GlobalOptions& globals) {
  const auto add = [](CLI::Option* option) { option->group("Global options"); };
  add(app.add_option_function<std::vector<std::string>>(
             "--url",
             [&globals](const std::vector<std::string>& urls) {
               for (const std::string& url : urls) globals.url += (globals.url.empty() ? "" : " ") + url;
             },
             "Redis URL: redis://[user[:password]@]host[:port][/db], rediss://…[?cacert=FILE&…] (TLS) or "
             "unix:///path.sock[?db=N], redis+sentinel://HOST[:PORT][,…]/MASTER, redis+cluster://HOST[:PORT][,…]; "
             "3 or more times: a quorum of independent masters (env RLOCK_URL, space-separated, then REDIS_URL; "
             "default redis://127.0.0.1:6379)")
          ->type_name("URL")
          ->allow_extra_args(false)
          ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll));
  add(app.add_option("--password", globals.password,
                     "Redis password (unsafe: visible in ps; prefer RLOCK_PASSWORD or --password-file)")
          ->type_name("PASSWORD"));
  add(app.add_option("--password-file", globals.password_file, "read the Redis password from the first line of FILE")
          ->type_name("FILE"));
  add(app.add_option("--sentinel-password-file", globals.sentinel_password_file,
                     "read the sentinels' password from the first line of FILE (redis+sentinel://; env "
                     "RLOCK_SENTINEL_PASSWORD)")
          ->type_name("FILE"));
  add(app.add_option("--prefix", globals.prefix, "key prefix (env RLOCK_PREFIX; default 'rlock:')")
          ->type_name("PREFIX"));
  add(app.add_option("--connect-timeout", globals.connect_timeout, "give up connecting after DURATION (default 2s)")
          ->type_name("DURATION"));
  add(app.add_option("--io-timeout", globals.io_timeout, "give up on a Redis reply after DURATION (default 5s)")
          ->type_name("DURATION"));
  add(app.add_option("--node-timeout", globals.node_timeout,
                     "quorum: wait at most DURATION for one node's answer (default min(TTL/100, 1s), at least 20ms)")
          ->type_name("DURATION"));
  add(app.add_option_function<std::string>(
             "--config", [&globals](const std::string& path) { globals.config_file = path; },
             "read settings from FILE (env RLOCK_CONFIG; default $XDG_CONFIG_HOME/rlock/config, then "
             "/etc/rlock/config)")
          ->type_name("FILE"));
  add(app.add_option_function<std::string>(
             "--profile", [&globals](const std::string& name) { globals.profile = name; },
             "use the config file's [profile NAME] (env RLOCK_PROFILE)")
          ->type_name("NAME"));
  add(app.add_flag_callback(
      "--tls", [&globals] { globals.tls = "yes"; }, "use TLS with a redis:// URL (as rediss:// does)"));
  add(app.add_flag_callback(
      "--audit", [&globals] { globals.audit = "yes"; },
      "append each acquisition and release to the lock's audit log, PREFIX{NAME}:log (env RLOCK_AUDIT=1; "
      "read it with 'rlock log')"));
  add(app.add_option("--cacert", globals.cacert, "verify the server against the CAs in FILE (env RLOCK_CACERT)")
          ->type_name("FILE"));
  add(app.add_option("--cacertdir", globals.cacertdir,
                     "verify the server against the hashed CA directory DIR (env RLOCK_CACERTDIR)")
          ->type_name("DIR"));
  add(app.add_option("--cert", globals.cert, "TLS client certificate (env RLOCK_CERT)")->type_name("FILE"));
  add(app.add_option("--key", globals.key, "private key of the client certificate (env RLOCK_KEY)")->type_name("FILE"));
  add(app.add_option("--tls-server-name,--sni", globals.tls_server_name,
                     "verify this name and send it as SNI instead of the URL's host (env RLOCK_TLS_SERVER_NAME)")
          ->type_name("NAME"));
  add(app.add_option("--tls-verify", globals.tls_verify,
                     "full (chain and name, the default), ca (chain only) or none; weaker than full warns")
          ->type_name("MODE")
          ->check(CLI::IsMember({"full", "ca", "none"})));
  add(app.add_flag("--insecure", globals.insecure, "do not verify the server's certificate (--tls-verify none)"));
  add(app.add_option("--tls-session-cache", globals.tls_session_cache,
                     "yes (the default): resume TLS sessions kept in $XDG_RUNTIME_DIR/rlock; no: a full handshake "
                     "every run (env RLOCK_TLS_SESSION_CACHE)")
          ->type_name("yes|no")
          ->check(CLI::IsMember({"yes", "no"})));
  add(app.add_option("--events", globals.events,
                     "append one JSON line per lock event (waiting, acquired, renewed, lost, released) to FILE, "
                     "or to stdout for '-' (env RLOCK_EVENTS)")
          ->type_name("FILE|-"));
  add(app.add_option("--metrics-textfile", globals.metrics_textfile,
                     "at exit, replace FILE atomically with Prometheus metrics of the run: wait and hold seconds, "
                     "outcome, exit status, fence (env RLOCK_METRICS_TEXTFILE)")
          ->type_name("FILE"));
  add(app.add_flag("-v,--verbose", globals.verbose, "say what rlock does, in plain lines on stderr"));
  add(app.add_flag("-q,--quiet", globals.quiet, "print nothing but errors"));
}

// `rlock help [COMMAND]`, for `rlock --help` to list and `rlock help --help` to explain: before
// parsing, rewrite_help() turns every other use into --help, so it never runs.
void add_help_command(CLI::App& app) {
  app.add_subcommand("help", "Show the help of COMMAND (as 'rlock COMMAND --help'), or this one.")
      ->add_option("COMMAND", "the command to explain");
}

// An option given an empty value (`--url "$UNSET"`) is an error, never "use the default": the
// default is another server, another prefix, another lock. Checks every option of `command`
// that takes a value, positionals included.
void reject_empty_values(const CLI::App& command) {
  for (const CLI::Option* option : command.get_options()) {
    if (option->get_type_size_min() <= 0 || option->count() == 0) continue;
    const auto& values = option->results();
    if (std::none_of(values.begin(), values.end(), [](const std::string& value) { return value.empty(); })) continue;
    const std::string name = option->get_positional() ? option->get_name(true) : option->get_name();
    throw UsageError(fmt::format("{} is empty (an unset variable?): give it a value{}", name,
                                 option->get_positional() ? "" : " or leave it out"));
  }
}

// "; try 'rlock help exec'": where a usage error sends the user.
std::string help_hint(std::string_view command) {
  return command.empty() ? std::string("; try 'rlock help'") : fmt::format("; try 'rlock help {}'", command);
}

// A CLI11 parse error in rlock's words: lowercase, one line, and where to look.
UsageError usage_error(const CLI::ParseError& error, std::string_view command) {
  std::string text = error.what();
  std::replace(text.begin(), text.end(), '\n', ' ');
  if (text == "A subcommand is required") {
    return UsageError(fmt::format("no command given; the commands are: {}; try 'rlock help'", command_list()));
  }
  // "--ttl: 1 required DURATION missing"
  if (const auto colon = text.find(": 1 required "); colon != std::string::npos && text.ends_with(" missing")) {
    const std::string what = text.substr(colon + 13, text.size() - colon - 13 - 8);
    return UsageError(fmt::format("{} needs a value ({}){}", text.substr(0, colon), what, help_hint(command)));
  }
  // "-E: Value 300 not in range 0 to 255"
  if (const auto value = text.find(": Value "), range = text.find(" not in range ");
      value != std::string::npos && range != std::string::npos && range > value) {
    return UsageError(fmt::format("{} must be from {}, not '{}'{}", text.substr(0, value), text.substr(range + 14),
                                  text.substr(value + 8, range - value - 8), help_hint(command)));
  }
  // "--tls-verify: bad not in {full,ca,none}"
  if (const auto colon = text.find(": "), set = text.rfind(" not in {");
      colon != std::string::npos && set != std::string::npos && set > colon && text.ends_with('}')) {
    std::string choices = text.substr(set + 9, text.size() - set - 10);
    std::replace(choices.begin(), choices.end(), ',', '|');
    return UsageError(fmt::format("{} must be {}, not '{}'{}", text.substr(0, colon), choices,
                                  text.substr(colon + 2, set - colon - 2), help_hint(command)));
  }
  // "Could not convert: --owner-pid = abc"
  if (text.starts_with("Could not convert: ")) {
    const std::string rest = text.substr(19);
    const auto equals = rest.find(" = ");
    if (equals != std::string::npos) {
      return UsageError(fmt::format("{}: '{}' is not a valid value{}", rest.substr(0, equals), rest.substr(equals + 3),
                                    help_hint(command)));
    }
  }
  if (text.ends_with(" is required")) { // "NAME is required"
    return UsageError(fmt::format("missing {}{}", text.substr(0, text.size() - 12), help_hint(command)));
  }
  if (text.size() > 1 && std::isupper(static_cast<unsigned char>(text[0])) != 0 &&
      std::islower(static_cast<unsigned char>(text[1])) != 0) {
    text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  }
  if (text.ends_with('.')) text.pop_back();
  return UsageError(fmt::format("{}{}", text, help_hint(command)));
}

// What CLI11 left over (allow_extras): an unknown option or an argument too many.
UsageError extras_error(const std::vector<std::string>& extras, const CLI::App* command) {
  const std::string& first = extras.front();
  const std::string name = command == nullptr ? std::string() : command->get_name();
  if (first.starts_with('-')) {
    const std::string option = first.substr(0, first.find('='));
    if (command != nullptr && command->get_option_no_throw(option) != nullptr) {
      return UsageError(
          fmt::format("{} is an option of '{}': give it after '{}'{}", printable(option), name, name, help_hint(name)));
    }
    return UsageError(fmt::format("unknown option '{}'{}", printable(option), help_hint(name)));
  }
  return UsageError(fmt::format("unexpected argument '{}'{}", printable(first), help_hint(name)));
}

} // namespace

void parse_command_line(int argc, char** argv, CommandLine& line) {
  // The standard streams CLI11 prints --help, --version and its errors on (cli/cli11.hpp).
  static const std::ios_base::Init k_streams;
  // Everything after the first "--" is exec's command, kept away from the option parser: a
  // value after it belongs to the job, never to rlock.
  std::vector<std::string> args;
  std::vector<std::string>& command_after_dashes = line.after_dashes;
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
               "See rlock(1) for the whole story, or 'rlock help COMMAND'.",
               "rlock");
  app.formatter(std::make_shared<HelpFormatter>()); // before the commands, which copy it
  app.set_help_flag("-h,--help", "print this help and exit");
  app.set_version_flag("--version", version_text(), "print the version and exit");
  app.require_subcommand(1, 1);
  app.allow_extras(); // left over: reported by extras_error, in rlock's words
  app.option_defaults()->always_capture_default(false);

  GlobalOptions& globals = line.globals;
  add_global_options(app, globals);

  std::size_t at = command_index(app, args);
  if (at < args.size() && args[at] == "help") {
    rewrite_help(app, args, at);
    at = command_index(app, args);
  }
  const std::string chosen = at < args.size() ? args[at] : std::string();
  if (!chosen.empty() && !is_command(chosen)) {
    // `rlock --ttl 5s exec …`: a command's option (and its value) before the command.
    const auto later = std::find_if(args.begin() + static_cast<std::ptrdiff_t>(at), args.end(), is_command);
    if (at > 0 && args[at - 1].starts_with('-') && later != args.end()) {
      throw UsageError(fmt::format("{} is not a global option: give it after the command '{}'{}",
                                   printable(args[at - 1]), *later, help_hint(*later)));
    }
    throw unknown_command(chosen);
  }

  line.command = chosen;
  Action& action = line.action;
  const bool all = chosen.empty();
  if (all || chosen == "exec") add_exec_command(app, globals, action, line.exec, command_after_dashes);
  if (all || chosen == "acquire") add_acquire_command(app, globals, action);
  if (all || chosen == "release") add_release_command(app, globals, action);
  if (all || chosen == "renew") add_renew_command(app, globals, action);
  if (all || chosen == "wait") add_wait_command(app, globals, action);
  if (all || chosen == "status") add_status_command(app, globals, action);
  if (all || chosen == "log") add_log_command(app, globals, action);
  if (all || chosen == "config") add_config_command(app, globals, action);
  if (all || chosen == "help") add_help_command(app);
  for (CLI::App* command : app.get_subcommands({})) {
    command->allow_extras();
    add_global_options(*command, globals);
  }
  CLI::App* command = chosen.empty() ? nullptr : app.get_subcommand_ptr(chosen).get();

  try {
    std::reverse(args.begin(), args.end());
    app.parse(args);
  } catch (const CLI::ParseError& error) {
    if (error.get_exit_code() == 0) { // --help, --version
      line.exit_code = app.exit(error);
      return;
    }
    throw usage_error(error, chosen);
  }
  if (std::vector<std::string> extras = app.remaining(true); !extras.empty()) throw extras_error(extras, command);
  reject_empty_values(app);
  if (command != nullptr) reject_empty_values(*command);
  if (globals.verbose && globals.quiet) throw UsageError("-v and -q contradict each other");
  if (saw_dashes && chosen != "exec") {
    throw UsageError(fmt::format("only 'exec' takes a command after '--'{}", help_hint(chosen)));
  }
  if (!action) throw Error(ExitCode::internal, "no command was selected");
}

namespace {

Outcome run_parsed(int argc, char** argv) {
  auto line = std::make_unique<CommandLine>();
  if (!parse_plain_exec(argc, argv, *line)) {
    line = std::make_unique<CommandLine>();
    parse_command_line(argc, argv, *line);
    if (line->exit_code) return {*line->exit_code};
  }
  const GlobalOptions& globals = line->globals;
  log::set_level(globals.quiet ? log::Level::quiet : globals.verbose ? log::Level::verbose : log::Level::normal);
  return line->action();
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

} // namespace

namespace {

// With stdin, stdout or stderr closed, the first file rlock opens would take its number and
// the job (or a token written to "stdout") would land in a socket or a signalfd: keep 0, 1
// and 2 taken, by /dev/null if need be. It is opened the wrong way round (stdout read-only),
// so that using the descriptor still fails as on a closed one: a token printed to a closed
// stdout must fail, not vanish into /dev/null.
void keep_standard_fds_open() noexcept {
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) >= 0 || errno != EBADF) continue;
    int null_fd = ::open("/dev/null", fd == 0 ? O_WRONLY : O_RDONLY);
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
    return outcome.die_of_signal != 0 ? die_of(outcome.die_of_signal, outcome.exit_code) : outcome.exit_code;
  } catch (const Error& error) {
    log::error(error.what());
    return to_int(error.code());
  } catch (const std::bad_alloc&) {
    log::error("out of memory");
    return to_int(ExitCode::os_error);
  } catch (const std::exception& error) {
    log::error(fmt::format("internal error: {}", error.what()));
    return to_int(ExitCode::internal);
  }
}

} // namespace rlock::cli
