// SPDX-License-Identifier: MIT
// `rlock status`: who holds a lock (or every lock), for people and for programs (--json).
#include "cli/cli11.hpp"
#include "cli/commands.hpp"
#include "lock/name.hpp"
#include "util/duration.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/redact.hpp"
#include "util/strings.hpp"

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <fmt/format.h>
#include <map>
#include <span>
#include <unistd.h>

namespace rlock::cli {

namespace {

// One piece of a --format template: literal text, or a placeholder's field.
enum class Field { text, name, host, pid, user, command, since, held_ms, ttl_ms, remaining_ms, fence, waiters, kind };

struct Piece {
  Field field = Field::text;
  std::string text; // Field::text
};

// The placeholders of --format, as rlock(1) lists them.
constexpr std::pair<std::string_view, Field> k_placeholders[] = {
    {"name", Field::name},       {"host", Field::host},       {"pid", Field::pid},
    {"user", Field::user},       {"command", Field::command}, {"since", Field::since},
    {"held_ms", Field::held_ms}, {"ttl_ms", Field::ttl_ms},   {"remaining_ms", Field::remaining_ms},
    {"fence", Field::fence},     {"waiters", Field::waiters}, {"kind", Field::kind},
};

// `text` as a --format template: "{name}" and the others are placeholders, "{{" and "}}" a
// literal brace. Throws UsageError for an unknown placeholder or a lone brace.
std::vector<Piece> parse_template(std::string_view text) {
  std::vector<Piece> pieces;
  std::string literal;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if ((c == '{' || c == '}') && i + 1 < text.size() && text[i + 1] == c) {
      literal += c;
      ++i;
      continue;
    }
    if (c == '}') throw UsageError("--format: a lone '}' (write '}}' for a literal brace)");
    if (c != '{') {
      literal += c;
      continue;
    }
    const std::size_t close = text.find('}', i);
    if (close == std::string_view::npos) throw UsageError("--format: '{' without '}' (write '{{' for a literal brace)");
    const std::string_view word = text.substr(i + 1, close - i - 1);
    const auto* known = std::find_if(std::begin(k_placeholders), std::end(k_placeholders),
                                     [&](const auto& entry) { return entry.first == word; });
    if (known == std::end(k_placeholders)) {
      std::string list;
      for (const auto& entry : k_placeholders) list += fmt::format("{}{{{}}}", list.empty() ? "" : " ", entry.first);
      throw UsageError(fmt::format("--format: unknown placeholder {{{}}}; known: {}", printable(word), list));
    }
    if (!literal.empty()) pieces.push_back({Field::text, std::move(literal)});
    literal.clear();
    pieces.push_back({known->second, {}});
    i = close;
  }
  if (!literal.empty()) pieces.push_back({Field::text, std::move(literal)});
  return pieces;
}

struct StatusOptions {
  std::string name;
  bool name_given = false; // `status ""` is a bad name, not "list everything"
  bool json = false;
  std::optional<std::string> match;       // --match GLOB over names
  std::optional<std::string> host;        // --host H
  std::optional<lock::Millis> older_than; // --older-than DUR
  std::optional<std::string> format;      // --format TEMPLATE
};

std::string json_string(std::string_view text) { return fmt::format("\"{}\"", json_escape(text)); }

// A number from the holder data, or null when the store could not tell (`unknown`).
std::string json_number(std::int64_t value, std::int64_t unknown = 0) {
  return value == unknown ? "null" : std::to_string(value);
}

const char* mode_name(lock::LockKind kind) {
  switch (kind) {
  case lock::LockKind::semaphore: return "semaphore";
  case lock::LockKind::shared: return "shared";
  case lock::LockKind::mutex: break;
  }
  return "mutex";
}

// One holder's JSON fields (no braces): holder_kind, remaining_ms, and what rlock's metadata says.
std::string holder_json(const lock::LockInfo& lock, const lock::HolderInfo& info) {
  std::string out;
  const bool handoff = info.reserved || (lock.kind == lock::LockKind::mutex && lock.handoff);
  const char* state = handoff ? "handoff" : info.has_metadata ? "rlock" : "foreign";
  out += fmt::format("\"holder_kind\":\"{}\"", state);
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
    out += fmt::format(",\"ttl_ms\":{},\"fence\":{},\"renewals\":{}", json_number(info.ttl_ms), json_number(info.fence),
                       json_number(info.renewals, -1));
    if (info.keeper_pid > 0) out += fmt::format(",\"keeper_pid\":{}", info.keeper_pid);
  }
  return out;
}

// One lock as a JSON object; the schema is documented in the man page (JSON OUTPUT). The
// fields of version 1 describe the first holder (a mutex's only one; of permits, the one that
// lapses first); `mode`, `limit` and `holders` list them all.
std::string to_json(const std::string& name, const lock::LockInfo& lock) {
  std::string out = fmt::format("{{\"name\":{},\"held\":{}", json_string(name), lock.held() ? "true" : "false");
  out += fmt::format(",\"waiters\":{}", lock.waiters);
  out += fmt::format(",\"mode\":\"{}\",\"limit\":{}", mode_name(lock.kind),
                     lock.kind == lock::LockKind::shared ? "null" : std::to_string(lock.limit));
  if (lock.held()) out += "," + holder_json(lock, lock.holders.front());
  out += ",\"holders\":[";
  for (std::size_t i = 0; i < lock.holders.size(); ++i) {
    out += fmt::format("{}{{{}}}", i == 0 ? "" : ",", holder_json(lock, lock.holders[i]));
  }
  return out + "]}";
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
  std::string out;
  if (lock.kind == lock::LockKind::semaphore) {
    out +=
        fmt::format("{}: {}/{} held (a semaphore, --limit {})\n", shown, lock.holders.size(), lock.limit, lock.limit);
  } else if (lock.kind == lock::LockKind::shared) {
    out += fmt::format("{}: {} reader{} (shared)\n", shown, lock.holders.size(), lock.holders.size() == 1 ? "" : "s");
  } else if (lock.handoff) {
    return fmt::format("{}: {}\n", shown, describe_holder(lock));
  }
  for (const lock::HolderInfo& info : lock.holders) {
    if (info.reserved) {
      out += fmt::format("{}: a permit kept for the first waiter (hand-off, {} left)\n", shown,
                         format_duration(lock::Millis(info.remaining_ms)));
    } else if (!info.has_metadata) {
      lock::LockInfo one = lock;
      one.holders = {info};
      out += fmt::format("{}: {}\n", shown, describe_holder(one));
    } else {
      out += holder_text(shown, lock, info);
    }
  }
  if (lock.holders.back().has_metadata || lock.kind != lock::LockKind::mutex) {
    out += fmt::format("  waiters:  {}\n", lock.waiters);
  }
  return out;
}

// Whether a held lock passes --host and --older-than (a holder without rlock metadata never
// does: nothing says its host or age).
bool passes(const StatusOptions& options, const lock::LockInfo& lock) {
  if (!options.host && !options.older_than) return true;
  return std::any_of(lock.holders.begin(), lock.holders.end(), [&](const lock::HolderInfo& info) {
    if (!info.has_metadata) return false;
    if (options.host && info.meta.host != *options.host) return false;
    if (options.older_than) {
      if (info.acquired_at_ms <= 0 || lock.server_now_ms - info.acquired_at_ms < options.older_than->count()) {
        return false;
      }
    }
    return true;
  });
}

// A number for --format: empty when the store could not tell (`unknown`).
std::string format_number(std::int64_t value, std::int64_t unknown = 0) {
  return value == unknown ? std::string() : std::to_string(value);
}

// A held lock by the --format template, one line per holder.
std::string to_format(const std::vector<Piece>& pieces, const std::string& name, const lock::LockInfo& lock) {
  std::string out;
  for (const lock::HolderInfo& info : lock.holders) {
    const bool meta = info.has_metadata;
    for (const Piece& piece : pieces) {
      switch (piece.field) {
      case Field::text: out += piece.text; break;
      case Field::name: out += printable(name); break;
      case Field::host: out += meta ? printable(info.meta.host) : ""; break;
      case Field::pid: out += meta ? format_number(info.meta.pid) : ""; break;
      case Field::user: out += meta ? printable(info.meta.user) : ""; break;
      case Field::command: out += meta ? printable(redact_command_line(info.meta.command)) : ""; break;
      case Field::since: out += meta && info.acquired_at_ms > 0 ? utc_time(info.acquired_at_ms) : ""; break;
      case Field::held_ms:
        out += meta && info.acquired_at_ms > 0
                   ? std::to_string(std::max<std::int64_t>(lock.server_now_ms - info.acquired_at_ms, 0))
                   : "";
        break;
      case Field::ttl_ms: out += meta ? format_number(info.ttl_ms) : ""; break;
      case Field::remaining_ms: out += std::to_string(info.remaining_ms); break;
      case Field::fence: out += meta ? format_number(info.fence) : ""; break;
      case Field::waiters: out += std::to_string(lock.waiters); break;
      case Field::kind:
        out += info.reserved || (lock.kind == lock::LockKind::mutex && lock.handoff) ? "handoff"
               : meta                                                                ? "rlock"
                                                                                     : "foreign";
        break;
      }
    }
    out += '\n';
  }
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

// How one lock is printed: JSON, the --format template, or text.
std::string shown(const StatusOptions& options, const std::vector<Piece>& pieces, const std::string& name,
                  const lock::LockInfo& lock) {
  if (options.json) return to_json(name, lock);
  if (options.format) return to_format(pieces, name, lock);
  return to_text(name, lock);
}

// Every held lock under the prefix that passes the filters, sorted by name, printed a batch at
// a time: the output so far stays when a later batch fails. Held in memory meanwhile: the
// names, not their output.
Outcome list_locks(const GlobalOptions& globals, const StatusOptions& options, const std::vector<Piece>& pieces,
                   bool quiet) {
  const bool json = options.json;
  const bool printing = json || options.format || !quiet; // -q prints nothing but JSON or --format
  Session session(globals);
  std::vector<std::string> names = session.store.list_names(options.match.value_or("*"));
  std::size_t held = 0;
  bool reader_left = false;
  session.store.inspect_batches(names, k_list_batch,
                                [&](std::span<const std::string> batch, std::vector<lock::LockInfo>& infos) {
                                  std::string out;
                                  for (std::size_t i = 0; i < batch.size(); ++i) {
                                    // Released between SCAN and now, or filtered out.
                                    if (!infos[i].held() || !passes(options, infos[i])) continue;
                                    if (json) out += held == 0 ? "{\"version\":1,\"locks\":[" : ",";
                                    if (printing) out += shown(options, pieces, batch[i], infos[i]);
                                    ++held;
                                  }
                                  if (!printing && held > 0) return false; // the exit status is all there is to tell
                                  if (!out.empty()) reader_left = !print(out);
                                  return !reader_left;
                                });
  const bool filtered = options.match || options.host || options.older_than;
  if (json && !reader_left) {
    print(held == 0 ? "{\"version\":1,\"locks\":[]}\n" : "]}\n");
  } else if (!json && !options.format && !quiet && held == 0) {
    print(filtered ? "no held lock matches\n" : "no locks held\n");
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
  if (options.json && options.format) throw UsageError("--json and --format each choose the output: give one");
  std::vector<Piece> pieces;
  if (options.format) pieces = parse_template(require_value(*options.format, "--format"));
  if (options.match) {
    if (options.name_given) throw UsageError("--match lists the locks whose names match GLOB: give it without NAME");
    std::string_view glob = require_value(*options.match, "--match");
    if (glob.find_first_of("{}") != std::string_view::npos) {
      throw UsageError(
          fmt::format("--match {}: lock names have no braces, so neither has the pattern", printable(glob)));
    }
  }
  if (options.host) require_value(*options.host, "--host");
  if (options.name_given) {
    lock::validate_name(options.name);
    Session session(globals);
    if (session.quorum) return quorum_status(*session.quorum, options, quiet);
    lock::LockInfo info = session.store.inspect(options.name);
    const bool held = info.held() && passes(options, info);
    if (options.json) {
      if (!held) info.holders.clear(); // filtered out: shown as not held
      print(fmt::format("{{\"version\":1,\"lock\":{}}}\n", to_json(options.name, info)));
    } else if (options.format) {
      if (held) print(to_format(pieces, options.name, info));
    } else if (!quiet) {
      print(held || !info.held()
                ? to_text(options.name, info)
                : fmt::format("{}: held, but not as --host/--older-than ask\n", printable(options.name)));
    }
    return {held ? 0 : to_int(ExitCode::status_free)};
  }
  return list_locks(globals, options, pieces, quiet);
}

} // namespace

void add_status_command(CLI::App& app, const GlobalOptions& globals, Action& action) {
  auto options = std::make_shared<StatusOptions>();
  CLI::App* command = app.add_subcommand("status", "Show who holds NAME (exit 0 held, 1 free), or list every "
                                                   "held lock under the prefix.");
  CLI::Option* name = command->add_option("NAME", options->name, "the lock's name (default: list all)");
  command->add_flag("--json", options->json, "print one JSON document (schema in rlock(1))");
  command
      ->add_option("--match", options->match,
                   "list only the locks whose names match GLOB (*, ?, [abc]; \\ makes the next character literal)")
      ->type_name("GLOB");
  command->add_option("--host", options->host, "only the locks held from host H (as status shows it)")->type_name("H");
  add_duration_option(
      *command, "--older-than", [options](lock::Millis value) { options->older_than = value; },
      "only the locks held for at least DURATION (stale candidates)");
  command
      ->add_option("--format", options->format,
                   "print each held lock as TEMPLATE, one line per lock: {name} {host} {pid} {user} {command} "
                   "{since} {held_ms} {ttl_ms} {remaining_ms} {fence} {waiters} {kind}; {{ and }} for braces")
      ->type_name("TEMPLATE");
  command->callback([&action, &globals, options, name] {
    options->name_given = name->count() > 0;
    action = [&globals, options] { return run_status(globals, *options); };
  });
}

} // namespace rlock::cli
