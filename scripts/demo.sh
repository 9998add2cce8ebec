#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Quick start, part one: install, build, start a throwaway redis-server on a free loopback port,
# and show two jobs contending for one lock being run one after the other.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# Only the binary, configured as scripts/test.sh configures it (warnings as errors): the
# second quick-start command then reuses every object built here instead of rebuilding.
BUILD_TARGET=rlock scripts/build.sh -DRLOCK_WERROR=ON
rlock=$PWD/build/rlock

workdir=$(mktemp -d)
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$workdir" \
  --daemonize yes --pidfile "$workdir/redis.pid" --logfile "$workdir/redis.log"
cleanup() { kill "$(cat "$workdir/redis.pid")" 2>/dev/null || true; rm -rf "$workdir"; }
trap cleanup EXIT
export RLOCK_URL=redis://127.0.0.1:$port
for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done

echo "== two jobs, one lock: the second waits for the first"
job='echo "  [$(date +%T.%N | cut -c1-12)] $0 starts (fence $RLOCK_FENCE)"; sleep 1; echo "  [$(date +%T.%N | cut -c1-12)] $0 ends"'
"$rlock" exec demo -- sh -c "$job" job-A &
sleep 0.2
"$rlock" -v exec demo -- sh -c "$job" job-B
wait

echo "== while a job runs, an operator asks who holds the lock"
"$rlock" exec demo -- sleep 2 &
sleep 0.3
"$rlock" status demo || true
echo "== a cron-style run that skips when busy (-n -E 0) exits 0 without running:"
"$rlock" exec demo -n -E 0 -- echo "never printed" && echo "  skipped, exit $?"
wait
echo "== the job's exit status comes through:"
"$rlock" exec demo -- sh -c 'exit 3' || echo "  rlock exited $?"
echo "== split form for scripts:"
token=$("$rlock" acquire demo --lease --ttl 10s)
echo "  acquired, token ${token:0:8}…"; "$rlock" status demo -q && echo "  status: held"
"$rlock" release demo --token "$token" && echo "  released"
"$rlock" status demo -q || echo "  status: free (exit 1)"
