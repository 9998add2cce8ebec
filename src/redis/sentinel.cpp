// SPDX-License-Identifier: MIT
// SentinelTopology: discovery of the master through Redis Sentinel.
#include "redis/sentinel.hpp"

#include "redis/reply_class.hpp"
#include "util/duration.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <random>
#include <thread>
#include <unistd.h>

namespace rlock::redis {

namespace {

std::string address_text(const HostPort& address) {
  return address.host.find(':') != std::string::npos ? fmt::format("[{}]:{}", address.host, address.port)
                                                     : fmt::format("{}:{}", address.host, address.port);
}

// The options to reach one sentinel: its address, the sentinels' credentials and TLS.
ConnectOptions sentinel_options(const ConnectOptions& url, const HostPort& sentinel) {
  ConnectOptions options = url;
  Endpoint& endpoint = options.endpoint;
  endpoint.routing = Routing::single;
  endpoint.seeds.clear();
  endpoint.host = sentinel.host;
  endpoint.port = sentinel.port;
  endpoint.db = 0;
  endpoint.user = url.endpoint.sentinel_user;
  endpoint.password = url.endpoint.sentinel_password;
  endpoint.tls.enabled = url.endpoint.sentinel_tls;
  return options;
}

// The options to reach the master at `address` with the URL's own credentials, database and
// TLS settings; the name verified is the address the sentinels announced.
ConnectOptions master_options(const ConnectOptions& url, const HostPort& address) {
  ConnectOptions options = url;
  options.endpoint.routing = Routing::single;
  options.endpoint.seeds.clear();
  options.endpoint.host = address.host;
  options.endpoint.port = address.port;
  return options;
}

SentinelAnswer ask_one(const ConnectOptions& options, const std::string& master, Deadline deadline) {
  SentinelAnswer answer;
  std::string where = address_text({options.endpoint.host, options.endpoint.port});
  try {
    Connection sentinel(options);
    Reply reply = sentinel.command({"SENTINEL", "get-master-addr-by-name", master}, deadline);
    ReplyView view = reply.view();
    if (view.is_error()) {
      ErrorReply error = classify_error(view.string());
      answer.kind =
          error.kind == ReplyClass::auth ? SentinelAnswer::Kind::auth_refused : SentinelAnswer::Kind::unreachable;
      answer.message = fmt::format("sentinel {}: {}", where, error.text);
      return answer;
    }
    if (view.is_nil() || (view.is_array() && view.size() == 0)) {
      answer.kind = SentinelAnswer::Kind::unknown_master;
      answer.message = fmt::format("sentinel {} knows no master named '{}'", where, printable(master));
      return answer;
    }
    std::int64_t port = 0;
    if (!view.is_array() || view.size() != 2 || !view[0].is_string() || !view[1].is_string() ||
        !parse_int(view[1].string(), port) || port < 1 || port > 65535 || view[0].string().empty()) {
      answer.message = fmt::format("sentinel {}: an address rlock cannot read", where);
      return answer;
    }
    answer.kind = SentinelAnswer::Kind::address;
    answer.address = {std::string(view[0].string()), static_cast<int>(port)};
  } catch (const AuthError& refused) {
    answer.kind = SentinelAnswer::Kind::auth_refused;
    answer.message = fmt::format("sentinel {}: {}", where, refused.what());
  } catch (const ConfigError& refused) {
    answer.kind = SentinelAnswer::Kind::misconfigured;
    answer.message = fmt::format("sentinel {}: {}", where, refused.what());
  } catch (const Error& failed) {
    answer.message = fmt::format("sentinel {}: {}", where, failed.what());
  }
  return answer;
}

} // namespace

std::optional<HostPort> majority_address(const std::vector<SentinelAnswer>& answers) {
  std::optional<HostPort> best;
  std::size_t best_votes = 0;
  for (const SentinelAnswer& candidate : answers) {
    if (candidate.kind != SentinelAnswer::Kind::address) continue;
    auto votes = static_cast<std::size_t>(std::count_if(answers.begin(), answers.end(), [&](const SentinelAnswer& a) {
      return a.kind == SentinelAnswer::Kind::address && a.address.host == candidate.address.host &&
             a.address.port == candidate.address.port;
    }));
    if (votes > best_votes) {
      best = candidate.address;
      best_votes = votes;
    }
  }
  return best;
}

SentinelTopology::SentinelTopology(ConnectOptions options)
    : m_options(std::move(options)), m_master(master_options(m_options, {m_options.endpoint.host, 0})) {}

Connection& SentinelTopology::node_for(std::string_view key, Deadline by) {
  (void)key;
  // A master that stopped answering may have failed over without a word to rlock (no
  // UNBLOCKED, no READONLY from a dead server): ask the sentinels again.
  if (m_found && m_master.failing()) {
    log::verbose("the master stopped answering: asking the sentinels again");
    m_found = false;
  }
  if (!m_found) discover(by);
  return m_master;
}

void SentinelTopology::each_primary(const std::function<void(Connection&)>& visit) {
  visit(node_for({}, std::chrono::steady_clock::now() + m_options.connect_timeout));
}

void SentinelTopology::refresh(const ErrorReply& reason) {
  log::verbose("asking the sentinels for the master again: {}", reason.text);
  m_master.disconnect();
  m_found = false;
}

void SentinelTopology::disconnect() noexcept { m_master.disconnect(); }

std::vector<SentinelAnswer> SentinelTopology::ask_sentinels(Deadline deadline) const {
  const std::vector<HostPort>& sentinels = m_options.endpoint.seeds;
  std::vector<SentinelAnswer> answers(sentinels.size());
  std::vector<std::thread> askers;
  askers.reserve(sentinels.size());
  for (std::size_t i = 0; i < sentinels.size(); ++i) {
    askers.emplace_back([&, i] {
      answers[i] = ask_one(sentinel_options(m_options, sentinels[i]), m_options.endpoint.master_name, deadline);
    });
  }
  for (std::thread& asker : askers) asker.join();
  return answers;
}

std::string SentinelTopology::confirm_master(const HostPort& address, Deadline deadline) {
  m_master = Connection(master_options(m_options, address));
  Reply reply = m_master.command({"ROLE"}, deadline);
  ReplyView view = reply.view();
  if (view.is_error()) {
    ErrorReply error = classify_error(view.string());
    if (error.kind == ReplyClass::auth) {
      throw AuthError(
          fmt::format("the master at {} refused ROLE: {} (the ACL needs +role)", address_text(address), error.text));
    }
    return error.text;
  }
  if (view.is_array() && view.size() > 0 && view[0].is_string() && view[0].string() == "master") return {};
  return view.is_array() && view.size() > 0 && view[0].is_string() ? std::string(view[0].string()) : "not a master";
}

void SentinelTopology::discover(Deadline by) {
  const Deadline give_up_at = std::min(by, std::chrono::steady_clock::now() + m_options.connect_timeout);
  std::minstd_rand random(static_cast<unsigned>(::getpid()) ^
                          static_cast<unsigned>(std::chrono::steady_clock::now().time_since_epoch().count()));
  std::chrono::milliseconds pause(50);
  std::string last_problem;
  for (;;) {
    std::vector<SentinelAnswer> answers = ask_sentinels(give_up_at);
    std::optional<HostPort> master = majority_address(answers);
    auto count = [&](SentinelAnswer::Kind kind) {
      return std::count_if(answers.begin(), answers.end(), [kind](const SentinelAnswer& a) { return a.kind == kind; });
    };
    for (const SentinelAnswer& answer : answers) {
      if (answer.kind != SentinelAnswer::Kind::address) log::verbose("{}", answer.message);
    }
    if (!master) {
      const auto first_of = [&](SentinelAnswer::Kind kind) {
        return std::find_if(answers.begin(), answers.end(), [kind](const SentinelAnswer& a) { return a.kind == kind; })
            ->message;
      };
      if (count(SentinelAnswer::Kind::auth_refused) > 0) {
        throw AuthError(fmt::format("{} (the sentinels' user is ?sentinel_user=, their password "
                                    "RLOCK_SENTINEL_PASSWORD or --sentinel-password-file)",
                                    first_of(SentinelAnswer::Kind::auth_refused)));
      }
      if (count(SentinelAnswer::Kind::misconfigured) > 0) {
        throw ConfigError(first_of(SentinelAnswer::Kind::misconfigured));
      }
      // Every sentinel that answered knows no such master (those that did not answer cannot
      // know better: they may be down for good).
      if (count(SentinelAnswer::Kind::unknown_master) > 0) {
        throw ConfigError(fmt::format("no sentinel knows a master named '{}' (check the name after the hosts in the "
                                      "URL; SENTINEL MASTERS lists the names a sentinel monitors)",
                                      printable(m_options.endpoint.master_name)));
      }
      last_problem =
          count(SentinelAnswer::Kind::unreachable) == static_cast<std::ptrdiff_t>(answers.size())
              ? fmt::format("no sentinel reachable ({})", first_of(SentinelAnswer::Kind::unreachable))
              : fmt::format("no sentinel named a master for '{}'", printable(m_options.endpoint.master_name));
    } else {
      log::verbose("the sentinels name {} as master '{}'", address_text(*master),
                   printable(m_options.endpoint.master_name));
      try {
        std::string role = confirm_master(*master, give_up_at);
        if (role.empty()) {
          m_found = true;
          return;
        }
        last_problem = fmt::format("{} named by the sentinels answers ROLE {}, not master (a failover in progress?)",
                                   address_text(*master), printable(role));
      } catch (const UnavailableError& unreachable) {
        last_problem =
            fmt::format("the master {} named by the sentinels: {}", address_text(*master), unreachable.what());
      }
      m_master.disconnect();
    }
    log::verbose("{}; asking the sentinels again", last_problem);
    std::uniform_int_distribution<std::int64_t> spread(pause.count() / 2, pause.count());
    auto jittered = std::chrono::milliseconds(spread(random));
    if (std::chrono::steady_clock::now() + jittered >= give_up_at) break;
    std::this_thread::sleep_for(jittered);
    pause = std::min(pause * 2, std::chrono::milliseconds(500));
  }
  throw UnavailableError(fmt::format("no confirmed master for '{}' within the connect timeout ({}): {}",
                                     printable(m_options.endpoint.master_name),
                                     format_duration(m_options.connect_timeout), last_problem));
}

} // namespace rlock::redis
