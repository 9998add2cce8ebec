// SPDX-License-Identifier: MIT
// `rlock config show`: the effective settings and where each came from, passwords masked.
#include "cli/cli11.hpp"
#include "cli/commands.hpp"

#include "util/error.hpp"
#include "util/strings.hpp"

#include <algorithm>
#include <cerrno>
#include <fmt/format.h>
#include <memory>
#include <unistd.h>

namespace rlock::cli {

namespace {

struct ConfigOptions {
  std::string action;
  bool json = false;
};

struct Row {
  std::string key;
  std::string value; // empty: unset
  std::string source;
  std::string origin; // for JSON: flag, url, env, profile, file, other-env, default
};

std::string origin_name(Origin origin) {
  switch (origin) {
  case Origin::built_in: return "default";
  case Origin::foreign_env: return "other-env";
  case Origin::file: return "file";
  case Origin::profile: return "profile";
  case Origin::env: return "env";
  case Origin::url: return "url";
  case Origin::flag: return "flag";
  }
  return "default";
}

// The value as shown: a URL without its password; nothing else that is shown is secret.
std::string shown_value(const Config& config, const Setting& setting) {
  if (setting.spec->kind == ValueKind::url && !setting.value.empty()) return config.shown_url;
  return printable(setting.value);
}

std::vector<Row> rows_of(const Config& config) {
  std::vector<Row> rows;
  for (const Setting& setting : config.settings.settings) {
    const bool unset = setting.value.empty();
    rows.push_back(Row{std::string(setting.spec->name), shown_value(config, setting),
                       unset ? std::string() : setting.source.describe(),
                       unset ? std::string() : origin_name(setting.source.origin)});
    if (setting.spec->name == "url") {
      const bool has_password = config.connect.endpoint.password.has_value();
      rows.push_back(Row{"password", has_password ? "***" : "", has_password ? config.password_from : "", ""});
    }
  }
  return rows;
}

std::string json_string_or_null(const std::string& text) {
  return text.empty() ? std::string("null") : fmt::format("\"{}\"", json_escape(text));
}

std::string to_json(const Config& config, const std::vector<Row>& rows) {
  const Settings& settings = config.settings;
  std::string tried;
  for (const std::string& path : settings.files_tried) {
    tried += fmt::format("{}\"{}\"", tried.empty() ? "" : ",", json_escape(path));
  }
  std::string out = fmt::format(
      "{{\"version\":1,\"file\":{},\"file_source\":{},\"files_tried\":[{}],\"profile\":{},\"profile_source\":{},"
      "\"settings\":{{",
      json_string_or_null(settings.file),
      settings.file.empty() ? "null" : json_string_or_null(settings.file_source.describe()), tried,
      json_string_or_null(settings.profile),
      settings.profile.empty() ? "null" : json_string_or_null(settings.profile_source.describe()));
  bool first = true;
  for (const Row& row : rows) {
    out +=
        fmt::format("{}\"{}\":{{\"value\":{},\"source\":{},\"origin\":{}}}", first ? "" : ",", json_escape(row.key),
                    json_string_or_null(row.value), json_string_or_null(row.source), json_string_or_null(row.origin));
    first = false;
  }
  out += "}}\n";
  return out;
}

std::string to_text(const Config& config, const std::vector<Row>& rows) {
  const Settings& settings = config.settings;
  std::string out;
  if (!settings.file.empty()) {
    out += fmt::format("file     {} ({})\n", printable(settings.file), settings.file_source.describe());
  } else {
    std::string tried;
    for (const std::string& path : settings.files_tried) tried += (tried.empty() ? "" : ", ") + printable(path);
    out += fmt::format("file     none (looked for {})\n", tried.empty() ? std::string("nothing") : tried);
  }
  if (!settings.profile.empty()) {
    out += fmt::format("profile  {} ({})\n", printable(settings.profile), settings.profile_source.describe());
  } else {
    out += "profile  none\n";
  }
  out += "\n";
  std::size_t key_width = 0;
  std::size_t value_width = 0;
  for (const Row& row : rows) {
    key_width = std::max(key_width, row.key.size());
    value_width = std::max(value_width, row.value.empty() ? std::size_t{1} : row.value.size());
  }
  for (const Row& row : rows) {
    out += fmt::format("{:<{}}  {:<{}}  {}\n", row.key, key_width, row.value.empty() ? "-" : row.value, value_width,
                       row.source.empty() ? "unset" : row.source);
  }
  return out;
}

void print(std::string_view text) {
  while (!text.empty()) {
    const ssize_t n = ::write(STDOUT_FILENO, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw SystemError("writing to stdout", errno);
    text.remove_prefix(static_cast<std::size_t>(n));
  }
}

Outcome run_config_show(const GlobalOptions& globals, const ConfigOptions& options) {
  const Config config = resolve_config(globals);
  const std::vector<Row> rows = rows_of(config);
  print(options.json ? to_json(config, rows) : to_text(config, rows));
  return {};
}

} // namespace

void add_config_command(CLI::App& app, const GlobalOptions& globals, Action& action) {
  auto options = std::make_shared<ConfigOptions>();
  CLI::App* command = app.add_subcommand(
      "config", "Inspect the configuration: 'config show' prints each effective setting and where it came from "
                "(flag, environment, config file and line, profile, default), passwords masked.");
  command->add_option("ACTION", options->action, "what to do: show")->required()->check(CLI::IsMember({"show"}));
  command->add_flag("--json", options->json, "print one JSON document");
  command->callback(
      [&action, &globals, options] { action = [&globals, options] { return run_config_show(globals, *options); }; });
}

} // namespace rlock::cli
