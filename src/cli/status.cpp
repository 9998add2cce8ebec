// SPDX-License-Identifier: MIT
// `rlock status`: who holds a lock (or every lock), for people and for programs (--json).
#include "cli/commands.hpp"
#include "lock/name.hpp"
#include "util/duration.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/redact.hpp"
#include "util/strings.hpp"

#include <cerrno>
#include <ctime>
#include <fmt/format.h>
#include <map>
#include <span>
#include <unistd.h>

namespace rlock::cli {

namespace {

struct StatusOptions {
  std::string name;
  bool name_given = false; // `status ""` is a bad name, not "list everything"
  bool json = false;
};

std::string utc_time(std::int64_t unix_ms) {
  std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm parts{};
  ::gmtime_r(&seconds, &parts);
  char buffer[32];
  if (std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%S", &parts) == 0) return std::to_string(unix_ms);
  return fmt::format("{}.{:03}Z", buffer, unix_ms % 1000);
}

std::string json_string(std::string_view text) { return fmt::format("\"{}\"", json_escape(text)); }

// A number from the holder data, or null when the store could not tell (`unknown`).
std::string json_number(std::int64_t value, std::int64_t unknown = 0) {
  return value == unknown ? "null" : std::to_string(value);
}

// One lock as a JSON object; the schema is documented in the man page (JSON OUTPUT). Version 1
// describes a mutex: the holder's fields are the lock's.
std::string to_json(const std::string& name, const lock::LockInfo& lock) {
  std::string out = fmt::format("{{\"name\":{},\"held\":{}", json_string(name), lock.held() ? "true" : "false");
  out += fmt::format(",\"waiters\":{}", lock.waiters);
  if (lock.held()) {
    const lock::HolderInfo& info = lock.holders.front();
    const char* state = lock.handoff ? "handoff" : info.has_metadata ? "rlock" : "foreign";
    out += fmt::format(",\"holder_kind\":\"{}\"", state);
    out += fmt::format(",\"remaining_ms\":{}", info.remaining_ms);
    if (info.has_metadata) {
      out += fmt::format(",\"host\":{},\"pid\":{},\"user\":{},\"command\":{}", json_string(info.meta.host),
                         json_number(info.meta.pid), json_string(info.meta.user),
                         json_string(redact_command_line(info.meta.command)));
      bool known_since = info.acquired_at_ms > 0;
      out += fmt::format(
          ",\"acquired_at\":{},\"acquired_at_ms\":{},\"held_ms\":{}",
          known_since ? json_string(utc_time(info.acquired_at_ms)) : "null", json_number(info.acquired_at_ms),
          known_since ? std::to_string(std::max<std::int64_t>(lock.server_now_ms - info.acquired_at_ms, 0)) : "null");
      out += fmt::format(",\"ttl_ms\":{},\"fence\":{},\"renewals\":{}", json_number(info.ttl_ms),
                         json_number(info.fence), json_number(info.renewals, -1));
      if (info.keeper_pid > 0) out += fmt::format(",\"keeper_pid\":{}", info.keeper_pid);
    }
  }
  return out + "}";
}

// One holder's lines of to_text.
std::string holder_text(const std::string& shown, const lock::LockInfo& lock, const lock::HolderInfo& info) {
  std::string out = fmt::format("{}: held by {}@{} pid {}", shown, or_unknown(info.meta.user),
                                or_unknown(info.meta.host), or_unknown(info.meta.pid));
  if (info.keeper_pid > 0) out += fmt::format(" (keeper pid {})", info.keeper_pid);
  out += "\n";
  out += fmt::format("  command:  {}\n", or_unknown(redact_command_line(info.meta.command)));
  if (info.acquired_at_ms > 0) {
    out +=
        fmt::format("  since:    {} (held {})\n", utc_time(info.acquired_at_ms),
                    format_duration(lock::Millis(std::max<std::int64_t>(lock.server_now_ms - info.acquired_at_ms, 0))));
  } else {
    out += "  since:    ?\n";
  }
  std::string renewed =
      info.renewals < 0 ? "? times" : fmt::format("{} time{}", info.renewals, info.renewals == 1 ? "" : "s");
  const std::string left = format_duration(lock::Millis(info.remaining_ms));
  if (info.ttl_ms > 0 && info.remaining_ms > info.ttl_ms) {
    // Only a release with --min-hold sets a lease longer than its TTL: say so, or "59.9s left
    // of 30.0s" reads as a mistake.
    out += fmt::format("  lease:    {} left, longer than its {} TTL: held on after the job to honour --min-hold; "
                       "renewed {}\n",
                       left, format_duration(lock::Millis(info.ttl_ms)), renewed);
  } else {
    out += fmt::format("  lease:    {} left of its {} TTL, renewed {}\n", left,
                       info.ttl_ms > 0 ? format_duration(lock::Millis(info.ttl_ms)) : "?", renewed);
  }
  out += fmt::format("  fence:    {}\n", or_unknown(info.fence));
  return out;
}

std::string to_text(const std::string& name, const lock::LockInfo& lock) {
  std::string shown = printable(name);
  if (!lock.held()) {
    std::string out = fmt::format("{}: free", shown);
    if (lock.waiters > 0) out += fmt::format(" ({} waiting)", lock.waiters);
    return out + "\n";
  }
  if (lock.handoff) return fmt::format("{}: {}\n", shown, describe_holder(lock));
  std::string out;
  for (const lock::HolderInfo& info : lock.holders) {
    if (!info.has_metadata) {
      lock::LockInfo one = lock;
      one.holders = {info};
      out += fmt::format("{}: {}\n", shown, describe_holder(one));
    } else {
      out += holder_text(shown, lock, info);
    }
  }
  if (lock.holders.back().has_metadata) out += fmt::format("  waiters:  {}\n", lock.waiters);
  return out;
}

// A reader that went away (`rlock status | head -1`) ends the listing quietly, as for ls(1):
// the exit status still says held or free. False when it went away.
bool print(std::string_view text) {
  std::string_view rest = text;
  while (!rest.empty()) {
    ssize_t n = ::write(STDOUT_FILENO, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EPIPE) return false;
    if (n <= 0) throw SystemError("writing to stdout", errno);
    rest.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// Locks read per round trip when listing: enough that the round trip is noise beside the
// server's work (about 13 ms per 1,000 inspect scripts on a small machine), few enough that a
// batch's replies and text stay a few hundred KiB, whatever the number of locks.
constexpr std::size_t k_list_batch = 1000;

// Every held lock under the prefix, sorted by name, printed a batch at a time: the output so
// far stays when a later batch fails. Held in memory meanwhile: the names, not their output.
Outcome list_locks(const GlobalOptions& globals, bool json, bool quiet) {
  const bool printing = json || !quiet; // -q prints nothing but JSON
  Session session(globals);
  std::vector<std::string> names = session.store.list_names();
  std::size_t held = 0;
  bool reader_left = false;
  session.store.inspect_batches(names, k_list_batch,
                                [&](std::span<const std::string> batch, std::vector<lock::LockInfo>& infos) {
                                  std::string out;
                                  for (std::size_t i = 0; i < batch.size(); ++i) {
                                    if (!infos[i].held()) continue; // released between SCAN and now
                                    if (json) out += held == 0 ? "{\"version\":1,\"locks\":[" : ",";
                                    if (printing)
                                      out += json ? to_json(batch[i], infos[i]) : to_text(batch[i], infos[i]);
                                    ++held;
                                  }
                                  if (!printing && held > 0) return false; // the exit status is all there is to tell
                                  if (!out.empty()) reader_left = !print(out);
                                  return !reader_left;
                                });
  if (json && !reader_left) {
    print(held == 0 ? "{\"version\":1,\"locks\":[]}\n" : "]}\n");
  } else if (!json && !quiet && held == 0) {
    print("no locks held\n");
  }
  return {held > 0 ? 0 : to_int(ExitCode::status_free)};
}

// `status NAME` on a quorum: the holder a majority agrees on, "held on k/N", and each node that
// disagrees (key missing, another token, unreachable). 0 only when a majority agrees on one
// holder; 69 when fewer than a majority answered; else 1.
Outcome quorum_status(redis::QuorumLockStore& quorum, const StatusOptions& options, bool quiet) {
  std::vector<redis::QuorumLockStore::NodeToken> tokens = quorum.read_tokens(options.name);
  std::map<std::string, std::size_t> votes;
  std::size_t answered = 0;
  for (const auto& node : tokens) {
    if (!node.error.empty()) continue;
    ++answered;
    if (node.token) ++votes[*node.token];
  }
  std::optional<std::string> holder;
  std::size_t held_on = 0;
  for (const auto& [token, count] : votes) {
    if (count > held_on) {
      held_on = count;
      holder = token;
    }
  }
  const bool agreed = holder && held_on >= quorum.quorum();
  lock::LockInfo info;
  if (agreed) {
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      if (tokens[i].token != holder) continue;
      try {
        info = quorum.inspect_node(i, options.name);
        break;
      } catch (const Error&) {
        // Another node of the majority may tell.
      }
    }
  }
  std::string text =
      agreed ? to_text(options.name, info) : fmt::format("{}: not held by a majority\n", printable(options.name));
  text += fmt::format("held on {}/{} (a majority is {})\n", holder ? held_on : 0, tokens.size(), quorum.quorum());
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const auto& node = tokens[i];
    if (!node.error.empty()) {
      text += fmt::format("  {}: unreachable: {}\n", quorum.label(i), node.error);
    } else if (!node.token) {
      text += fmt::format("  {}: key missing\n", quorum.label(i));
    } else if (node.token != holder) {
      text += fmt::format("  {}: held by another token\n", quorum.label(i));
    }
  }
  if (options.json) {
    print(fmt::format("{{\"version\":1,\"lock\":{},\"held_on\":{},\"nodes\":{}}}\n", to_json(options.name, info),
                      holder ? held_on : 0, tokens.size()));
  } else if (!quiet) {
    print(text);
  }
  if (answered < quorum.quorum()) return {to_int(ExitCode::unavailable)};
  return {agreed ? 0 : to_int(ExitCode::status_free)};
}

Outcome run_status(const GlobalOptions& globals, const StatusOptions& options) {
  bool quiet = log::level() == log::Level::quiet;
  if (options.name_given) {
    lock::validate_name(options.name);
    Session session(globals);
    if (session.quorum) return quorum_status(*session.quorum, options, quiet);
    lock::LockInfo info = session.store.inspect(options.name);
    if (options.json) {
      print(fmt::format("{{\"version\":1,\"lock\":{}}}\n", to_json(options.name, info)));
    } else if (!quiet) {
      print(to_text(options.name, info));
    }
    return {info.held() ? 0 : to_int(ExitCode::status_free)};
  }
  return list_locks(globals, options.json, quiet);
}

} // namespace

void add_status_command(CLI::App& app, const GlobalOptions& globals, Action& action) {
  auto options = std::make_shared<StatusOptions>();
  CLI::App* command = app.add_subcommand("status", "Show who holds NAME (exit 0 held, 1 free), or list every "
                                                   "held lock under the prefix.");
  CLI::Option* name = command->add_option("NAME", options->name, "the lock's name (default: list all)");
  command->add_flag("--json", options->json, "print one JSON document (schema in rlock(1))");
  command->callback([&action, &globals, options, name] {
    options->name_given = name->count() > 0;
    action = [&globals, options] { return run_status(globals, *options); };
  });
}

} // namespace rlock::cli
