// SPDX-License-Identifier: MIT
// `rlock log`: print a lock's audit log (rlock(1), AUDIT), oldest entry first, as text or JSON lines.
#include "util/log.hpp"
#include "cli/cli11.hpp"
#include "cli/commands.hpp"
#include "lock/name.hpp"
#include "util/duration.hpp"
#include "util/error.hpp"
#include "util/strings.hpp"

#include <cerrno>
#include <fmt/format.h>
#include <unistd.h>

namespace rlock::cli {

namespace {

// How many entries `log` prints without -n, and the most -n takes (the log holds about 1000).
constexpr int k_default_entries = 20;
constexpr int k_max_entries = 100'000;

struct LogOptions {
  std::string name;
  int count = k_default_entries;
  bool json = false;
};

std::string json_text(std::string_view text) {
  return text.empty() ? std::string("null") : fmt::format("\"{}\"", json_escape(text));
}
std::string json_count(std::int64_t value, std::int64_t unknown) {
  return value == unknown ? std::string("null") : std::to_string(value);
}

std::string to_json(const std::string& name, const redis::AuditEntry& entry) {
  return fmt::format("{{\"name\":{},\"time\":{},\"id\":{},\"event\":{},\"token\":{},\"host\":{},\"pid\":{},"
                     "\"user\":{},\"fence\":{},\"held_ms\":{},\"by\":{}}}",
                     json_text(name), entry.time_ms > 0 ? json_text(utc_time(entry.time_ms)) : "null",
                     json_text(entry.id), json_text(entry.event), json_text(entry.token), json_text(entry.host),
                     json_count(entry.pid, 0), json_text(entry.user), json_count(entry.fence, 0),
                     json_count(entry.held_ms, -1), json_text(entry.by));
}

// "2026-12-03T15:20:04.567Z  released    alice@web1 pid 4242  fence 17…  held 3.4s  token 3fa2b1c0d9e8"
std::string to_text(const redis::AuditEntry& entry) {
  std::string holder = "(no rlock metadata)";
  if (!entry.host.empty() || !entry.user.empty() || entry.pid != 0) {
    holder = fmt::format("{}@{} pid {}", or_unknown(entry.user), or_unknown(entry.host), or_unknown(entry.pid));
  }
  std::string out = fmt::format("{}  {:<10}  {}  fence {}", entry.time_ms > 0 ? utc_time(entry.time_ms) : "?",
                                or_unknown(entry.event), holder, or_unknown(entry.fence));
  if (entry.held_ms >= 0) out += fmt::format("  held {}", format_duration(lock::Millis(entry.held_ms)));
  if (!entry.by.empty()) out += fmt::format("  by {}", printable(entry.by));
  out += fmt::format("  token {}\n", or_unknown(entry.token));
  return out;
}

void print(const std::string& text) {
  std::string_view left = text;
  while (!left.empty()) {
    ssize_t wrote = ::write(STDOUT_FILENO, left.data(), left.size());
    if (wrote < 0 && errno == EINTR) continue;
    if (wrote <= 0) throw SystemError("writing to stdout", errno);
    left.remove_prefix(static_cast<std::size_t>(wrote));
  }
}

Outcome run_log(const GlobalOptions& globals, const LogOptions& options) {
  lock::validate_name(options.name);
  Session session(globals);
  if (session.quorum) {
    throw UsageError("rlock log reads one server, and in quorum mode each node keeps a log of its own: give one "
                     "node's --url to read that node's log");
  }
  const std::vector<redis::AuditEntry> entries =
      session.single->read_log(options.name, static_cast<std::size_t>(options.count));
  if (entries.empty()) {
    log::info("no audit log for '{}': nothing was recorded (see --audit), or it expired", printable(options.name));
    return {1};
  }
  std::string out;
  for (const redis::AuditEntry& entry : entries)
    out += options.json ? to_json(options.name, entry) + "\n" : to_text(entry);
  print(out);
  return {};
}

} // namespace

void add_log_command(CLI::App& app, const GlobalOptions& globals, Action& action) {
  auto options = std::make_shared<LogOptions>();
  CLI::App* command =
      app.add_subcommand("log", "Print NAME's audit log (see --audit), oldest entry first; exit 1 when it has none.");
  command->add_option("NAME", options->name, "the lock's name")->required();
  command
      ->add_option("-n,--entries", options->count,
                   fmt::format("print the newest N entries (default {})", k_default_entries))
      ->type_name("N")
      ->check(CLI::Range(1, k_max_entries));
  command->add_flag("--json", options->json, "print one JSON object per entry, one a line (fields in rlock(1))");
  command->callback(
      [&action, &globals, options] { action = [&globals, options] { return run_log(globals, *options); }; });
}

} // namespace rlock::cli
