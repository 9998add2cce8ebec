# shellcheck shell=bash
# SPDX-License-Identifier: MIT
# Shared by the example tests: a throwaway redis-server in a temp dir, waiting, and checks.
#
# Source it from a test script that runs under `set -euo pipefail`. It needs RLOCK_BIN (the
# binary under test, set by CTest) and finds the source tree from its own location. It creates
# $work (a temp dir removed on exit), puts `rlock` on PATH as a link to $RLOCK_BIN, and
# start_redis exports RLOCK_URL for a redis-server on a free loopback port. A missing
# redis-server fails the test: it is never a silent skip.

: "${RLOCK_BIN:?RLOCK_BIN must name the rlock binary under test}"
source_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck disable=SC2034  # used by the scripts that source this file
examples_dir=$source_dir/docs/examples
redis_server=${RLOCK_REDIS_SERVER:-$(command -v redis-server || true)}

work=$(mktemp -d "${TMPDIR:-/tmp}/rlock-example.XXXXXX")
mkdir -p "$work/bin"
ln -s "$RLOCK_BIN" "$work/bin/rlock"
export PATH="$work/bin:$PATH"
unset RLOCK_URL REDIS_URL RLOCK_PASSWORD REDISCLI_AUTH RLOCK_PREFIX RLOCK_TOKEN RLOCK_CONFIG RLOCK_PROFILE
# No configuration file of the developer's: the user's file is looked for in an empty directory.
export XDG_CONFIG_HOME="$work/xdg"

# Functions a test registers to run at exit, before the temp dir goes.
cleanup_steps=()
on_exit() { cleanup_steps+=("$1"); }
run_cleanup() {
  local rc=$? step
  for step in "${cleanup_steps[@]}"; do eval "$step" || true; done
  if [ -f "$work/redis.pid" ]; then
    local redis_pid _
    redis_pid=$(cat "$work/redis.pid")
    kill "$redis_pid" 2>/dev/null || true
    # It logs its shutdown into $work: let it finish before the directory goes.
    for _ in $(seq 250); do kill -0 "$redis_pid" 2>/dev/null || break; sleep 0.02; done
  fi
  if [ "$rc" -ne 0 ] && [ -n "${KEEP_WORK:-}" ]; then echo "keeping $work" >&2; trap - EXIT; exit "$rc"; fi
  if [ "$rc" -ne 0 ] && [ -f "$work/redis.log" ]; then
    echo "--- redis log (tail)" >&2
    tail -n 20 "$work/redis.log" >&2 || true
  fi
  rm -rf "$work"
  exit "$rc"
}
trap run_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

note() { echo "-- $*"; }

# wait_for SECONDS COMMAND...: polls COMMAND every 20ms until it succeeds; fails the test on
# timeout. Used to wait on observable state, never as a fixed sleep.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || fail "timed out waiting for: $*"
    sleep 0.02
  done
}

# A TCP port nobody listens on right now (the kernel picks it). /usr/bin/python3, not a shim on
# PATH (a pyenv shim takes seconds to start on a loaded machine).
free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_redis [EXTRA CONFIG LINE...]: a redis-server on a free loopback port, configured by a
# generated file in $work; exports RLOCK_URL and sets $redis_port.
start_redis() {
  [ -x "$redis_server" ] || fail "redis-server not found (install redis-server, or set RLOCK_REDIS_SERVER)"
  local attempt line
  for attempt in 1 2 3 4 5; do
    redis_port=$(free_port)
    {
      echo "port $redis_port"
      echo "bind 127.0.0.1"
      echo "dir $work"
      echo "save \"\""
      echo "appendonly no"
      echo "daemonize yes"
      echo "pidfile $work/redis.pid"
      echo "logfile $work/redis.log"
      for line in "$@"; do echo "$line"; done
    } >"$work/redis.conf"
    rm -f "$work/redis.pid"
    if "$redis_server" "$work/redis.conf" && wait_for_redis; then
      export RLOCK_URL="redis://127.0.0.1:$redis_port"
      return 0
    fi
    note "redis-server did not start on port $redis_port (attempt $attempt); retrying"
  done
  fail "could not start redis-server"
}

wait_for_redis() {
  local _
  for _ in $(seq 250); do
    # A bare RESP PING over bash's /dev/tcp: no redis-cli needed.
    if { exec 9<>"/dev/tcp/127.0.0.1/$redis_port"; } 2>/dev/null; then
      printf 'PING\r\n' >&9
      local reply=''
      read -r -t 1 reply <&9 || true
      exec 9<&- 9>&-
      case $reply in +PONG* | -NOAUTH*) return 0 ;; esac
    fi
    sleep 0.02
  done
  return 1
}

# expect_status EXPECTED DESCRIPTION COMMAND...: runs COMMAND and checks its exit status.
expect_status() {
  local expected=$1 what=$2 rc=0
  shift 2
  "$@" || rc=$?
  [ "$rc" -eq "$expected" ] || fail "$what: expected exit status $expected, got $rc (command: $*)"
  note "$what: exit $rc"
}

# Exit 1 from status means free; anything else (0 held, 69 unreachable, ...) does not.
lock_is_free() {
  local rc=0
  rlock status "$1" -q || rc=$?
  [ "$rc" -eq 1 ]
}
lock_is_held() { rlock status "$1" -q; }

# yaml_eval FILE EXPRESSION: evaluates a Python expression over `docs` (the YAML documents of
# FILE, parsed by python3-yaml) and prints the result: a list as NUL-terminated items (for
# `mapfile -d ''`), anything else as text. A missing key fails the test.
yaml_eval() {
  /usr/bin/python3 -c '
import sys, yaml
with open(sys.argv[1]) as f:
    docs = [d for d in yaml.safe_load_all(f) if d is not None]
try:
    value = eval(sys.argv[2], {"docs": docs})
except (KeyError, IndexError, TypeError) as e:
    sys.exit("yaml_eval: %s: %r" % (sys.argv[2], e))
if isinstance(value, list):
    sys.stdout.write("".join(str(v) + "\0" for v in value))
else:
    sys.stdout.write(str(value))
' "$1" "$2" || fail "cannot read $2 from $1"
}
