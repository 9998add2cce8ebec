// SPDX-License-Identifier: MIT
// The CLI11 application, global options, and the single catch site.
#include "cli/app.hpp"

#include "cli/commands.hpp"
#include "redis/connection.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
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

std::string version_text() {
  std::string text = fmt::format("rlock {}", k_version);
  if (!std::string_view(k_git_revision).empty()) text += fmt::format(" (git {})", k_git_revision);
  text += fmt::format("\nbuilt with {}", redis::client_library_version());
  return text;
}

// The subcommand the arguments name, or "" when they name none. CLI11 builds every option of
// every subcommand up front, and rlock is started once per job, so only the chosen one is built.
// The global options before it are skipped with their values: `app` says which take one.
std::string_view chosen_subcommand(const CLI::App& app, const std::vector<std::string>& args) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (!arg.starts_with('-')) return arg;
    const CLI::Option* option = arg.starts_with("--") || arg.size() == 2 ? app.get_option_no_throw(args[i]) : nullptr;
    if (option != nullptr && option->get_items_expected_min() > 0) ++i;
  }
  return {};
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
               "See rlock(1) for the whole story, or 'rlock COMMAND --help'.",
               "rlock");
  app.set_version_flag("--version", version_text());
  app.require_subcommand(1, 1);
  app.fallthrough();
  app.option_defaults()->always_capture_default(false);

  GlobalOptions globals;
  app.add_option("--url", globals.url,
                 "Redis URL: redis://[user[:password]@]host[:port][/db], rediss://…[?cacert=FILE&…] (TLS) or "
                 "unix:///path.sock[?db=N] "
                 "(env RLOCK_URL, then REDIS_URL; default redis://127.0.0.1:6379)")
      ->type_name("URL");
  app.add_option("--password", globals.password,
                 "Redis password (unsafe: visible in ps; prefer RLOCK_PASSWORD or --password-file)")
      ->type_name("PASSWORD");
  app.add_option("--password-file", globals.password_file, "read the Redis password from the first line of FILE")
      ->type_name("FILE");
  app.add_option("--prefix", globals.prefix, "key prefix (env RLOCK_PREFIX; default 'rlock:')")->type_name("PREFIX");
  app.add_option("--connect-timeout", globals.connect_timeout, "give up connecting after DURATION (default 2s)")
      ->type_name("DURATION");
  app.add_option("--io-timeout", globals.io_timeout, "give up on a Redis reply after DURATION (default 5s)")
      ->type_name("DURATION");
  app.add_option_function<std::string>(
         "--config", [&globals](const std::string& path) { globals.config_file = path; },
         "read settings from FILE (env RLOCK_CONFIG; default $XDG_CONFIG_HOME/rlock/config, then "
         "/etc/rlock/config)")
      ->type_name("FILE");
  app.add_option_function<std::string>(
         "--profile", [&globals](const std::string& name) { globals.profile = name; },
         "use the config file's [profile NAME] (env RLOCK_PROFILE)")
      ->type_name("NAME");
  app.add_flag_callback(
      "--tls", [&globals] { globals.tls = "yes"; }, "use TLS with a redis:// URL (as rediss:// does)");
  app.add_option("--cacert", globals.cacert, "verify the server against the CAs in FILE (env RLOCK_CACERT)")
      ->type_name("FILE");
  app.add_option("--cacertdir", globals.cacertdir,
                 "verify the server against the hashed CA directory DIR "
                 "(env RLOCK_CACERTDIR)")
      ->type_name("DIR");
  app.add_option("--cert", globals.cert, "TLS client certificate (env RLOCK_CERT)")->type_name("FILE");
  app.add_option("--key", globals.key, "private key of the client certificate (env RLOCK_KEY)")->type_name("FILE");
  app.add_option("--tls-server-name,--sni", globals.tls_server_name,
                 "verify this name and send it as SNI instead of the URL's host (env RLOCK_TLS_SERVER_NAME)")
      ->type_name("NAME");
  app.add_option("--tls-verify", globals.tls_verify,
                 "full (chain and name, the default), ca (chain only) or none; weaker than full warns")
      ->type_name("MODE")
      ->check(CLI::IsMember({"full", "ca", "none"}));
  app.add_flag("--insecure", globals.insecure, "do not verify the server's certificate (--tls-verify none)");
  app.add_flag("-v,--verbose", globals.verbose, "say what rlock does, in plain lines on stderr");
  app.add_flag("-q,--quiet", globals.quiet, "print nothing but errors");

  Action action;
  const std::string chosen(chosen_subcommand(app, args)); // a copy: args is reversed below
  const bool known = chosen == "exec" || chosen == "acquire" || chosen == "release" || chosen == "renew" ||
                     chosen == "status" || chosen == "config";
  if (!known || chosen == "exec") add_exec_command(app, globals, action, command_after_dashes);
  if (!known || chosen == "acquire") add_acquire_command(app, globals, action);
  if (!known || chosen == "release") add_release_command(app, globals, action);
  if (!known || chosen == "renew") add_renew_command(app, globals, action);
  if (!known || chosen == "status") add_status_command(app, globals, action);
  if (!known || chosen == "config") add_config_command(app, globals, action);

  try {
    std::reverse(args.begin(), args.end());
    app.parse(args);
  } catch (const CLI::ParseError& error) {
    if (error.get_exit_code() == 0) {
      return {app.exit(error)}; // --help, --version
    }
    std::string message = error.what();
    throw UsageError(fmt::format("{} (see 'rlock --help')", message));
  }
  reject_empty_values(app);
  for (const CLI::App* command : app.get_subcommands()) reject_empty_values(*command);
  if (globals.verbose && globals.quiet) throw UsageError("-v and -q contradict each other");
  log::set_level(globals.quiet ? log::Level::quiet : globals.verbose ? log::Level::verbose : log::Level::normal);
  // Only the chosen subcommand is registered: ask by name, never app.got_subcommand("exec").
  if (saw_dashes && chosen != "exec") {
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
