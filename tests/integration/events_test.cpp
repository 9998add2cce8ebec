// SPDX-License-Identifier: MIT
// Black-box tests of --events (JSON lines of a lock's life) and --metrics-textfile (Prometheus
// textfile metrics replaced atomically) against a real redis-server (rlock(1) EVENTS AND METRICS).
#include "helpers.hpp"
#include "redis_server.hpp"
#include "run.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <atomic>
#include <csignal>
#include <fcntl.h>
#include <map>
#include <memory>
#include <regex>
#include <thread>
#include <unistd.h>

namespace rlock::test {

namespace {

// Checks an events file with Python's json module: every line one JSON object with the common
// fields (event, name, time as RFC 3339 UTC with milliseconds, pid, host, kind), the last line
// ended. Prints one line per event, "key=value" for the fields the tests look at, or "BAD …".
constexpr const char* k_events_checker = R"(import json, re, sys
text = open(sys.argv[1], 'rb').read().decode('utf-8')
if text and not text.endswith('\n'):
    print('BAD the last line is not ended: %r' % text[-80:]); sys.exit(1)
for number, line in enumerate(text.splitlines(), 1):
    try:
        event = json.loads(line)
    except ValueError:
        print('BAD line %d is not JSON: %r' % (number, line)); sys.exit(1)
    if not isinstance(event, dict):
        print('BAD line %d is not an object' % number); sys.exit(1)
    for key, kind in (('event', str), ('name', str), ('time', str), ('pid', int), ('host', str), ('kind', str)):
        if not isinstance(event.get(key), kind):
            print('BAD line %d: %s is missing or not a %s' % (number, key, kind.__name__)); sys.exit(1)
    if not re.fullmatch(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z', event['time']):
        print('BAD line %d: time %r' % (number, event['time'])); sys.exit(1)
    print(' '.join('%s=%s' % (key, event[key]) for key in
                   ('event', 'name', 'kind', 'pid', 'fence', 'held_ms', 'waited_ms', 'exit_status', 'reason')
                   if key in event))
)";

using Event = std::map<std::string, std::string>;

// The events of `path`, checked by k_events_checker; FAILs (and returns none) on a bad line.
std::vector<Event> read_events(const std::string& path) {
  const RunResult checked = run_program({k_python, "-c", k_events_checker, path});
  INFO(path, ": ", checked.describe());
  REQUIRE(checked.exit_code == 0);
  std::vector<Event> events;
  for (const std::string& line : split_lines(checked.out)) {
    Event event;
    std::size_t at = 0;
    while (at < line.size()) {
      std::size_t end = line.find(' ', at);
      if (end == std::string::npos) end = line.size();
      const std::string field = line.substr(at, end - at);
      const auto equals = field.find('=');
      if (equals != std::string::npos) event[field.substr(0, equals)] = field.substr(equals + 1);
      at = end + 1;
    }
    events.push_back(std::move(event));
  }
  return events;
}

// "waiting acquired renewed released": the event names in order, runs of renewed as one.
std::string sequence_of(const std::vector<Event>& events) {
  std::string sequence;
  for (const Event& event : events) {
    const std::string& name = event.at("event");
    if (name == "renewed" && sequence.ends_with("renewed")) continue;
    sequence += (sequence.empty() ? "" : " ") + name;
  }
  return sequence;
}

std::string events_text(const std::string& path) { return try_read_file(path).value_or("(no file)"); }

bool has_event(const std::string& path, std::string_view event) {
  return contains(try_read_file(path).value_or(""), fmt::format("\"event\":\"{}\"", event));
}

// One metrics file as rlock writes it: HELP and TYPE lines, then samples of the six metrics
// for one name; returns what is wrong with `text`, or "".
std::string metrics_problem(const std::string& text) {
  static const std::regex k_sample(
      R"re(rlock_[a-z_]+\{name="([^"\\]|\\.)*"(,outcome="(acquired|busy|lost|error)")?\} -?[0-9]+(\.[0-9]+)?)re");
  static const std::regex k_comment(R"(# (HELP|TYPE) rlock_[a-z_]+ .+)");
  if (text.empty()) return "empty";
  if (!text.ends_with('\n')) return "not ended by a newline";
  int samples = 0;
  for (const std::string& line : split_lines(text)) {
    if (std::regex_match(line, k_comment)) continue;
    if (!std::regex_match(line, k_sample)) return fmt::format("bad line '{}'", line);
    ++samples;
  }
  if (samples != 9) return fmt::format("{} samples, not 9", samples); // 4 of them rlock_outcome
  if (!contains(text, "rlock_last_run_timestamp_seconds{")) return "no rlock_last_run_timestamp_seconds";
  return {};
}

// The value of the sample that starts with `prefix` ("rlock_exit_status{name=\"x\"} ").
std::string sample(const std::string& text, const std::string& prefix) {
  for (const std::string& line : split_lines(text)) {
    if (line.starts_with(prefix)) return line.substr(prefix.size());
  }
  return "(none)";
}

} // namespace

TEST_CASE("exec: waiting, acquired, renewed, released with the job's exit status") {
  RedisServer redis;
  TempDir dir;
  const std::string events = dir.file("events.jsonl");
  const std::string token = acquire_lease(redis, "job");
  // The job runs until the test has seen a renewal, so that one is always there to check.
  BackgroundProcess exec(
      with_rlock(at(redis, {"--events", events, "exec", "job", "--ttl", "300ms", "--", "/bin/sh", "-c",
                            fmt::format("while [ ! -e {0} ]; do sleep 0.02; done; exit 3", dir.file("go"))})));
  REQUIRE(wait_until([&] { return has_event(events, "waiting") || !exec.running(); }, 10s));
  INFO("events: ", events_text(events), "\nstderr: ", exec.err());
  REQUIRE(exec.running());
  REQUIRE(run_rlock(at(redis, {"release", "job", "--token", token})).exit_code == 0);
  REQUIRE(wait_until([&] { return has_event(events, "renewed") || !exec.running(); }, 10s));
  write_file(dir.file("go"), "");
  CHECK(exec.wait() == 3);

  const std::vector<Event> seen = read_events(events);
  CHECK(sequence_of(seen) == "waiting acquired renewed released");
  REQUIRE(seen.size() >= 4);
  const std::string pid = std::to_string(exec.pid());
  for (const Event& event : seen) {
    CHECK(event.at("name") == "job");
    CHECK(event.at("kind") == "exec");
    CHECK(event.at("pid") == pid);
  }
  const Event& acquired = seen[1];
  const Event& released = seen.back();
  CHECK(acquired.count("waited_ms") == 1);
  REQUIRE(acquired.count("fence") == 1);
  CHECK(acquired.at("fence") == redis.command({"GET", fence_key("job")}));
  CHECK(released.at("fence") == acquired.at("fence"));
  CHECK(released.at("exit_status") == "3");
  CHECK(released.count("held_ms") == 1);
  CHECK_FALSE(key_exists(redis, lock_key("job")));
}

TEST_CASE("acquire, its keeper and release report one lock's life, each as itself") {
  RedisServer redis;
  TempDir dir;
  const std::string events = dir.file("events.jsonl");
  const std::string rlock = fmt::format("{} --url {} --events {}", rlock_bin(), redis.url(), events);
  // The script waits for its keeper's first renewal before it goes on.
  const std::string wait_for_renewal = fmt::format("until grep -q '\"renewed\"' {}; do sleep 0.02; done", events);

  SUBCASE("released by `rlock release`") {
    const RunResult script = run_program(
        {"/bin/bash", "-c",
         fmt::format("tok=$({0} acquire pair --ttl 600ms) || exit 9\n{1}\n{0} release pair --token \"$tok\"", rlock,
                     wait_for_renewal)});
    INFO(script.describe(), "\nevents: ", events_text(events));
    REQUIRE(script.exit_code == 0);
    const std::vector<Event> seen = read_events(events);
    REQUIRE(seen.size() >= 3);
    CHECK(sequence_of(seen) == "acquired renewed released");
    CHECK(seen.front().at("kind") == "acquire");
    CHECK(seen[1].at("kind") == "keeper");
    CHECK(seen[1].at("pid") != seen.front().at("pid")); // the keeper is a process of its own
    CHECK(seen.back().at("kind") == "release");
    CHECK(seen.back().at("fence") == seen.front().at("fence"));
    CHECK(seen.back().count("held_ms") == 1);
    CHECK_FALSE(key_exists(redis, lock_key("pair")));
  }
  SUBCASE("released by the keeper when the script exits") {
    const RunResult script =
        run_program({"/bin/bash", "-c",
                     fmt::format("tok=$({0} acquire pair --ttl 600ms) || exit 9\n{1}", rlock, wait_for_renewal)});
    INFO(script.describe());
    REQUIRE(script.exit_code == 0);
    REQUIRE(wait_until([&] { return has_event(events, "released"); }, 10s));
    INFO("events: ", events_text(events));
    const std::vector<Event> seen = read_events(events);
    REQUIRE(seen.size() >= 3);
    CHECK(sequence_of(seen) == "acquired renewed released");
    CHECK(seen.back().at("kind") == "keeper");
    CHECK(seen.back().at("reason") == "owner_exited");
    CHECK(seen.back().at("fence") == seen.front().at("fence"));
    CHECK_FALSE(key_exists(redis, lock_key("pair")));
  }
}

TEST_CASE("a lost lease: event lost (reason free), no released, exit 76") {
  RedisServer redis;
  TempDir dir;
  const std::string events = dir.file("events.jsonl");
  BackgroundProcess exec(
      with_rlock(at(redis, {"--events", events, "exec", "gone", "--ttl", "900ms", "--", "sleep", "30"})));
  REQUIRE(wait_until([&] { return has_event(events, "acquired") || !exec.running(); }, 10s));
  REQUIRE(exec.running());
  REQUIRE(redis.command({"DEL", lock_key("gone")}) == "1");
  const std::optional<int> code = exec.try_wait(10s);
  INFO("events: ", events_text(events), "\nstderr: ", exec.err());
  REQUIRE(code.has_value());
  CHECK(*code == 76);
  const std::vector<Event> seen = read_events(events);
  REQUIRE_FALSE(seen.empty());
  CHECK(seen.back().at("event") == "lost");
  CHECK(seen.back().at("reason") == "free");
  CHECK(seen.back().at("fence") == seen.front().at("fence"));
  CHECK_FALSE(contains(sequence_of(seen), "released"));
}

TEST_CASE("rlock killed with SIGKILL leaves whole lines only, several writers appending at once") {
  RedisServer redis;
  TempDir dir;
  const std::string events = dir.file("events.jsonl");
  // Renewals every 20 ms from four processes interleave their lines in one file; each is then
  // killed at once, somewhere in its loop. Each writer is a shell that runs the exec again when
  // it ends: on a loaded machine a 60 ms lease can be lost (exit 76, a "lost" line), and the
  // lines must keep coming until the kill (SIGKILL to the writer's process group: rlock too).
  for (int round = 0; round < 3; ++round) {
    std::vector<std::unique_ptr<BackgroundProcess>> writers;
    for (int i = 0; i < 4; ++i) {
      std::vector<std::string> argv{"/bin/sh", "-c", "while :; do \"$@\"; done", "sh"};
      for (std::string& arg : with_rlock(
               at(redis, {"--events", events, "exec", fmt::format("k{}", i), "--ttl", "60ms", "--", "sleep", "30"}))) {
        argv.push_back(std::move(arg));
      }
      writers.push_back(std::make_unique<BackgroundProcess>(argv));
    }
    const std::size_t before = split_lines(try_read_file(events).value_or("")).size();
    INFO("round ", round, ", lines before it: ", before,
         ", now: ", split_lines(try_read_file(events).value_or("")).size(),
         "\nfirst writer's stderr: ", writers.front()->err());
    REQUIRE(wait_until([&] { return split_lines(try_read_file(events).value_or("")).size() >= before + 40; }, 20s));
    for (auto& writer : writers) writer->kill();
  }
  const std::vector<Event> seen = read_events(events);
  CHECK(seen.size() >= 120);
  CHECK(contains(sequence_of(seen), "renewed"));
}

TEST_CASE("the metrics file is never seen half-written while 50 jobs replace it") {
  RedisServer redis;
  TempDir dir;
  const std::string metrics = dir.file("rlock.prom");
  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  std::string problem;
  std::thread reader([&] {
    while (!done.load() && problem.empty()) {
      const std::optional<std::string> text = try_read_file(metrics);
      if (!text) continue; // not written yet
      problem = metrics_problem(*text);
      ++reads;
    }
  });
  int failures = 0;
  for (int batch = 0; batch < 10; ++batch) {
    std::vector<std::unique_ptr<BackgroundProcess>> jobs;
    for (int i = 0; i < 5; ++i) {
      jobs.push_back(std::make_unique<BackgroundProcess>(with_rlock(
          at(redis, {"--metrics-textfile", metrics, "exec", fmt::format("m{}", batch * 5 + i), "--", "true"}))));
    }
    for (auto& job : jobs) failures += job->wait() == 0 ? 0 : 1;
  }
  done = true;
  reader.join();
  CHECK(failures == 0);
  INFO("after ", reads.load(), " reads");
  CHECK(problem == "");
  CHECK(reads.load() > 0);
  const std::string text = read_file(metrics);
  CHECK(metrics_problem(text) == "");
  // Nothing left behind: the temporary files were renamed over it.
  const RunResult listing = run_program({"ls", "-A", dir.path()});
  CHECK(trim(listing.out) == "rlock.prom");
}

TEST_CASE("the metrics of one run: outcome, exit status, fence, wait and hold") {
  RedisServer redis;
  TempDir dir;
  const std::string metrics = dir.file("job.prom");

  SUBCASE("acquired: the job's exit status and the fence") {
    const RunResult result =
        run_rlock(at(redis, {"--metrics-textfile", metrics, "exec", "wei\"rd\\name", "--", "sh", "-c", "exit 5"}));
    INFO(result.describe());
    CHECK(result.exit_code == 5);
    const std::string text = read_file(metrics);
    INFO(text);
    CHECK(metrics_problem(text) == "");
    const std::string label = R"(name="wei\"rd\\name")"; // escaped as the exposition format says
    CHECK(sample(text, fmt::format("rlock_outcome{{{},outcome=\"acquired\"}} ", label)) == "1");
    CHECK(sample(text, fmt::format("rlock_outcome{{{},outcome=\"busy\"}} ", label)) == "0");
    CHECK(sample(text, fmt::format("rlock_exit_status{{{}}} ", label)) == "5");
    CHECK(sample(text, fmt::format("rlock_fence{{{}}} ", label)) == redis.command({"GET", fence_key("wei\"rd\\name")}));
  }
  SUBCASE("busy: outcome busy, exit 75, no fence") {
    acquire_lease(redis, "held");
    const RunResult result =
        run_rlock(at(redis, {"--metrics-textfile", metrics, "exec", "held", "-w", "100ms", "--", "true"}));
    INFO(result.describe());
    CHECK(result.exit_code == 75);
    const std::string text = read_file(metrics);
    INFO(text);
    CHECK(sample(text, "rlock_outcome{name=\"held\",outcome=\"busy\"} ") == "1");
    CHECK(sample(text, "rlock_outcome{name=\"held\",outcome=\"acquired\"} ") == "0");
    CHECK(sample(text, "rlock_exit_status{name=\"held\"} ") == "75");
    CHECK(sample(text, "rlock_fence{name=\"held\"} ") == "0");
    CHECK(sample(text, "rlock_hold_seconds{name=\"held\"} ") == "0.000");
  }
  SUBCASE("error: Redis unreachable, exit 69") {
    const std::string url = redis.url();
    redis.stop();
    const RunResult result = run_rlock(
        {"--url", url, "--connect-timeout", "300ms", "--metrics-textfile", metrics, "exec", "x", "--", "true"});
    INFO(result.describe());
    CHECK(result.exit_code == 69);
    const std::string text = read_file(metrics);
    INFO(text);
    CHECK(sample(text, "rlock_outcome{name=\"x\",outcome=\"error\"} ") == "1");
    CHECK(sample(text, "rlock_exit_status{name=\"x\"} ") == "69");
  }
  SUBCASE("lost: the keeper rewrites acquire's file at its end") {
    BackgroundProcess script({"/bin/bash", "-c",
                              fmt::format("{} --url {} --metrics-textfile {} acquire kept --ttl 600ms >/dev/null "
                                          "&& exec sleep 30",
                                          rlock_bin(), redis.url(), metrics)});
    const std::string acquired = "rlock_outcome{name=\"kept\",outcome=\"acquired\"} 1";
    REQUIRE(wait_until([&] { return contains(try_read_file(metrics).value_or(""), acquired); }, 10s));
    const std::string fence = sample(read_file(metrics), "rlock_fence{name=\"kept\"} ");
    CHECK(fence == redis.command({"GET", fence_key("kept")}));
    REQUIRE(redis.command({"DEL", lock_key("kept")}) == "1");
    const std::string lost = "rlock_outcome{name=\"kept\",outcome=\"lost\"} 1";
    CHECK(wait_until([&] { return contains(try_read_file(metrics).value_or(""), lost); }, 10s));
    const std::string text = read_file(metrics);
    INFO(text);
    CHECK(metrics_problem(text) == "");
    CHECK(sample(text, "rlock_exit_status{name=\"kept\"} ") == "76");
    CHECK(sample(text, "rlock_fence{name=\"kept\"} ") == fence);
    CHECK(sample(text, "rlock_hold_seconds{name=\"kept\"} ") != "0.000");
  }
}

TEST_CASE("an events or metrics file that cannot be written: 78 before anything is locked") {
  RedisServer redis;
  TempDir dir;
  const std::string marker = dir.file("ran");
  struct Case {
    std::vector<std::string> options;
    int code;
  };
  const Case cases[] = {
      {{"--events", dir.file("missing/events.jsonl")}, 78},
      {{"--events", dir.path()}, 78}, // a directory
      {{"--metrics-textfile", dir.file("missing/rlock.prom")}, 78},
      {{"--metrics-textfile", dir.path()}, 78},
  };
  for (const Case& one : cases) {
    std::vector<std::string> args = one.options;
    for (const char* arg : {"exec", "x", "--", "touch"}) args.emplace_back(arg);
    args.push_back(marker);
    const RunResult result = run_rlock(at(redis, args));
    INFO(one.options[0], " ", one.options[1], ": ", result.describe());
    CHECK(result.exit_code == one.code);
    check_error_line(result);
    CHECK_FALSE(file_exists(marker));
  }
  SUBCASE("acquire with --events -: its stdout carries the token") {
    const RunResult result = run_rlock(at(redis, {"--events", "-", "acquire", "x", "--lease"}));
    INFO(result.describe());
    CHECK(result.exit_code == 64);
    check_error_line(result);
    CHECK(result.out.empty());
  }
  SUBCASE("the same from RLOCK_EVENTS is a configuration error") {
    RunOptions env;
    env.env = {"RLOCK_EVENTS=-"};
    const RunResult result = run_rlock(at(redis, {"acquire", "x", "--lease"}), env);
    INFO(result.describe());
    CHECK(result.exit_code == 78);
    check_error_line(result);
  }
  // No lock was taken, nor even tried: a first acquisition would have made the fence counter.
  CHECK_FALSE(key_exists(redis, lock_key("x")));
  CHECK_FALSE(key_exists(redis, fence_key("x")));
}

TEST_CASE("events that cannot be written never hold up the lock: one warning, the same exit status") {
  RedisServer redis;
  TempDir dir;
  SUBCASE("a disk that is full (/dev/full): every write fails") {
    const RunResult result = run_rlock(
        at(redis, {"--events", "/dev/full", "exec", "full", "--ttl", "150ms", "--", "sh", "-c", "sleep 1; exit 4"}));
    INFO(result.describe());
    CHECK(result.exit_code == 4);
    const std::vector<std::string> lines = split_lines(result.err);
    REQUIRE(lines.size() == 1); // once, not once per event
    CHECK(lines[0].starts_with("rlock: warning: cannot write to the events file /dev/full"));
  }
  SUBCASE("a FIFO whose reader never reads: lines are dropped, the renewals go on") {
    const std::string fifo = dir.file("events.fifo");
    REQUIRE(run_program({"mkfifo", fifo}).exit_code == 0);
    const int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    REQUIRE(reader >= 0);
    REQUIRE(::fcntl(reader, F_SETPIPE_SZ, 4096) >= 0); // full after a few dozen lines
    // 3 s of renewals every 50 ms: about 60 lines, more than the pipe takes. A blocking write
    // would stall rlock until the run times out.
    const RunResult result =
        run_rlock(at(redis, {"--events", fifo, "exec", "fifo", "--ttl", "150ms", "--", "sleep", "3"}));
    ::close(reader);
    INFO(result.describe());
    CHECK(result.exit_code == 0);
    const std::vector<std::string> lines = split_lines(result.err);
    REQUIRE(lines.size() == 1);
    CHECK(contains(lines[0], "it is full"));
    CHECK_FALSE(key_exists(redis, lock_key("fifo")));
  }
}

TEST_CASE("events on stdout ('-') with exec: whole lines beside the job's output") {
  RedisServer redis;
  const RunResult result = run_rlock(at(redis, {"--events", "-", "exec", "out", "--", "echo", "from the job"}));
  INFO(result.describe());
  REQUIRE(result.exit_code == 0);
  const std::vector<std::string> lines = split_lines(result.out);
  REQUIRE(lines.size() == 3);
  CHECK(contains(lines[0], "\"event\":\"acquired\""));
  CHECK(lines[1] == "from the job");
  CHECK(contains(lines[2], "\"event\":\"released\""));
  CHECK(is_valid_json(lines[0]));
  CHECK(is_valid_json(lines[2]));
}

TEST_CASE("events and metrics-textfile from RLOCK_* and the config file; config show names them") {
  RedisServer redis;
  TempDir dir;
  write_file(dir.file("config"), "events = events.jsonl\nmetrics-textfile = m/rlock.prom\n", 0600);
  REQUIRE(run_program({"mkdir", dir.file("m")}).exit_code == 0);

  SUBCASE("the file's paths are relative to the file") {
    const RunResult result = run_rlock(at(redis, {"--config", dir.file("config"), "exec", "cf", "--", "true"}));
    INFO(result.describe());
    REQUIRE(result.exit_code == 0);
    CHECK(sequence_of(read_events(dir.file("events.jsonl"))) == "acquired released");
    CHECK(metrics_problem(read_file(dir.file("m/rlock.prom"))) == "");
    const RunResult shown = run_rlock({"--config", dir.file("config"), "config", "show"});
    INFO(shown.describe());
    CHECK(contains(shown.out, dir.file("events.jsonl")));
    CHECK(contains(shown.out, dir.file("m/rlock.prom")));
  }
  SUBCASE("RLOCK_EVENTS and RLOCK_METRICS_TEXTFILE are over the file") {
    RunOptions env;
    env.env = {"RLOCK_EVENTS=" + dir.file("env.jsonl"), "RLOCK_METRICS_TEXTFILE=" + dir.file("env.prom")};
    const RunResult result = run_rlock(at(redis, {"--config", dir.file("config"), "exec", "cf", "--", "true"}), env);
    INFO(result.describe());
    REQUIRE(result.exit_code == 0);
    CHECK(sequence_of(read_events(dir.file("env.jsonl"))) == "acquired released");
    CHECK(file_exists(dir.file("env.prom")));
    CHECK_FALSE(file_exists(dir.file("events.jsonl")));
    const RunResult shown = run_rlock({"--config", dir.file("config"), "config", "show"}, env);
    CHECK(contains(shown.out, "env RLOCK_EVENTS"));
    CHECK(contains(shown.out, "env RLOCK_METRICS_TEXTFILE"));
  }
}

} // namespace rlock::test
