#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# shellcheck disable=SC2119  # start_redis takes optional config lines, none here
# Runs the ExecStart= line of docs/examples/queue-worker.service as systemd would (no shell
# word tricks, its own session), then does what `systemctl stop` does with KillMode=mixed:
# SIGTERM to the main process, which is rlock. Checks that the worker and its descendants
# stop, that rlock exits with a status the unit's SuccessExitStatus= accepts, well within
# TimeoutStopSec=, and that the lock is free; then that a standby instance takes over.
set -euo pipefail
# shellcheck source=tests/examples/lib.sh
source "$(dirname "$0")/lib.sh"

unit=$examples_dir/queue-worker.service
value_of() { sed -n "s/^$1=//p" "$unit" | head -n 1; }
exec_start=$(value_of ExecStart)
success_status=$(value_of SuccessExitStatus)
timeout_stop=$(value_of TimeoutStopSec)
[ -n "$exec_start" ] || fail "no ExecStart= in $unit"
grep -qx 'KillMode=mixed' "$unit" || fail "the unit should use KillMode=mixed"
note "ExecStart=$exec_start"

# systemd splits ExecStart= itself; the example uses no quoting, so plain word splitting agrees.
read -r -a argv <<<"$exec_start"
[ "${argv[0]}" = /usr/bin/rlock ] || fail "ExecStart= should start /usr/bin/rlock, not ${argv[0]}"
lock=${argv[2]}
worker_path=
for ((i = 0; i < ${#argv[@]}; i++)); do
  if [ "${argv[i]}" = -- ]; then worker_path=${argv[i + 1]}; break; fi
done
[ -n "$worker_path" ] || fail "no '-- COMMAND' in ExecStart="
# Run the binary under test and a stub worker in place of the two absolute paths.
argv[0]=$RLOCK_BIN
worker=$work/bin/$(basename "$worker_path")
argv[i + 1]=$worker

# The stub worker: logs its start, leaves a grandchild behind, logs SIGTERM and exits by it.
cat >"$worker" <<STUB
#!/bin/bash
echo "\$\$ started \$*" >>"$work/worker.log"
sleep 1000 &
echo \$! >"$work/grandchild.\$\$"
trap 'echo "\$\$ got TERM" >>"$work/worker.log"; trap - TERM; kill -TERM \$\$' TERM
while :; do sleep 0.05; done
STUB
chmod +x "$worker"

start_redis

# start_unit NAME: the ExecStart= command in a session of its own, as systemd runs it; its pid
# (rlock's, as the main process) in $work/NAME.pid.
start_unit() {
  setsid sh -c 'echo $$ >"$1"; shift; exec "$@"' sh "$work/$1.pid" "${argv[@]}" \
    </dev/null >"$work/$1.out" 2>&1 &
  eval "$1_job=\$!"
  on_exit "kill -TERM $! 2>/dev/null; wait $! 2>/dev/null"
}
started_workers() {
  local n
  n=$(grep -c started "$work/worker.log" 2>/dev/null) || true
  echo "${n:-0}"
}
workers_started() { [ "$(started_workers)" -eq "$1" ]; }
has_waiters() { rlock status "$lock" --json | grep -q "\"waiters\":$1[,}]"; }
process_gone() { ! kill -0 "$1" 2>/dev/null; }
status_allowed() {
  local s
  [ "$1" -eq 0 ] && return 0
  for s in $success_status; do [ "$s" = "$1" ] && return 0; done
  return 1
}

# stop_unit NAME: `systemctl stop` under KillMode=mixed; checks how the main process ended.
stop_unit() {
  local job_var=$1_job main rc=0 began=$SECONDS
  main=$(cat "$work/$1.pid")
  [ "$main" = "${!job_var}" ] || fail "setsid forked: cannot tell rlock's pid"
  [ "$(readlink "/proc/$main/exe")" = "$(readlink -f "$RLOCK_BIN")" ] || fail "pid $main is not rlock"
  kill -TERM "$main"
  wait "$main" || rc=$?
  local took=$((SECONDS - began))
  status_allowed "$rc" || fail "$1: rlock exited $rc, which SuccessExitStatus=$success_status does not accept; output: $(cat "$work/$1.out")"
  [ "$took" -lt "${timeout_stop%s}" ] || fail "$1: stopping took ${took}s, past TimeoutStopSec=$timeout_stop"
  note "$1: rlock exited $rc after SIGTERM, in ${took}s"
}

note "one host: start the unit, wait for the worker"
start_unit active
wait_for 10 workers_started 1
active_worker=$(sed -n 's/ started.*//p' "$work/worker.log" | head -n 1)
grep -q "started --queue outgoing" "$work/worker.log" || fail "the worker did not get its arguments"
lock_is_held "$lock" || fail "the lock is not held while the worker runs"
grandchild=$(cat "$work/grandchild.$active_worker")

note "systemctl stop: SIGTERM to rlock"
stop_unit active
grep -q "^$active_worker got TERM" "$work/worker.log" || fail "the worker never got SIGTERM"
process_gone "$active_worker" || fail "the worker still runs after rlock exited"
wait_for 5 process_gone "$grandchild"
lock_is_free "$lock" || fail "the lock is still held after systemctl stop"

note "two hosts: the standby waits, and takes over when the active one stops"
start_unit active
wait_for 10 workers_started 2
start_unit standby
wait_for 10 has_waiters 1
[ "$(started_workers)" -eq 2 ] || fail "the standby started a worker while the lock was held"
stop_unit active
wait_for 10 workers_started 3
lock_is_held "$lock" || fail "the standby's worker runs without the lock"
stop_unit standby
lock_is_free "$lock" || fail "the lock is still held after the last instance stopped"
echo "PASS: systemd service example"
