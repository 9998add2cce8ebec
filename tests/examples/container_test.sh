#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# shellcheck disable=SC2119  # start_redis takes optional config lines, none here
# The split form in a container: the README's line `eval "$(rlock acquire … --export || echo
# "exit $?")"`, run literally by a script that is PID 1 of its own pid namespace (`unshare -fp
# --mount-proc`, as a Kubernetes `command: [sh, -c, …]` or `docker run img sh -c …` runs it),
# in dash and in bash. The lock must be held for the script's life, with the script (pid 1)
# as its owner; released by `rlock release`; and when PID 1 ends without releasing (the kernel
# then kills the keeper with the namespace), the keeper's short lease lets the lock go within
# seconds. The same for a script under an init that exits with it (tini, docker --init).
set -euo pipefail
# shellcheck source=tests/examples/lib.sh
source "$(dirname "$0")/lib.sh"

command -v unshare >/dev/null || fail "unshare(1) not found (util-linux)"
unshare -fp --mount-proc true || fail "unshare -fp --mount-proc is not permitted here (needs root or user namespaces)"

# The documented line, taken from the README so that the test runs what users read.
acquire_line=$(grep -o '^eval "$(rlock acquire [a-z-]* --export || echo "exit $?")"' "$source_dir/README.md" | head -n 1)
[ -n "$acquire_line" ] || fail "no eval \"\$(rlock acquire NAME --export ...)\" line in the README"
lock=$(sed 's/^eval "$(rlock acquire \([a-z-]*\) .*/\1/' <<<"$acquire_line")
note "the README's line: $acquire_line"

start_redis

# A script body: the README's line, then it reports its pid and what it sees, and waits for
# $work/hold to go. With `release` as $1 it releases before it ends.
script_body() {
  cat <<SCRIPT
$acquire_line
echo \$\$ >"$work/pid"
rlock status $lock -q && echo held >"$work/seen" || echo free >"$work/seen"
while [ -f "$work/hold" ]; do sleep 0.05; done
${1:-:}
SCRIPT
}
json_field() { rlock status "$lock" --json | sed -n "s/.*\"$1\":\\([^,}]*\\).*/\\1/p"; }

for shell in dash bash; do
  note "$shell as PID 1: the lock lives as long as the script"
  rm -f "$work/pid" "$work/seen"
  touch "$work/hold"
  unshare -fp --mount-proc "$shell" -c "$(script_body "rlock release $lock")" >"$work/out" 2>&1 &
  job=$!
  on_exit "kill $job 2>/dev/null"
  wait_for 10 test -s "$work/seen"
  [ "$(cat "$work/pid")" = 1 ] || fail "$shell did not run as PID 1 (pid $(cat "$work/pid"))"
  [ "$(cat "$work/seen")" = held ] || fail "$shell as PID 1: the lock was not held right after acquire"
  lock_is_held "$lock" || fail "$shell as PID 1: the lock is not held while the script runs"
  [ "$(json_field pid)" = 1 ] || fail "$shell as PID 1: the owner is pid $(json_field pid), not the script (1)"
  [ "$(json_field ttl_ms)" = 5000 ] || fail "$shell as PID 1: the keeper's lease is $(json_field ttl_ms)ms, not 5000"
  rm -f "$work/hold"
  wait "$job" || fail "$shell as PID 1 failed: $(cat "$work/out")"
  lock_is_free "$lock" || fail "$shell as PID 1: the lock is still held after rlock release"
done

note "PID 1 ends without releasing: the keeper dies with the namespace, the lock goes within seconds"
rm -f "$work/pid" "$work/seen"
touch "$work/hold"
unshare -fp --mount-proc sh -c "$(script_body)" >"$work/out" 2>&1 &
job=$!
wait_for 10 test -s "$work/seen"
[ "$(cat "$work/seen")" = held ] || fail "the lock was not held right after acquire"
rm -f "$work/hold"
wait "$job" || fail "the script failed: $(cat "$work/out")"
# Not released: it expires with the keeper's 5s lease (a 30s default would keep it for 30s).
wait_for 15 lock_is_free "$lock"

note "under an init that exits with the script (tini, docker --init): the same short lease"
rm -f "$work/pid" "$work/seen"
touch "$work/hold"
# The outer sh stands for the init: it runs the script as its child and exits after it.
unshare -fp --mount-proc sh -c 'sh -c "$1"; exit $?' sh "$(script_body "rlock release $lock")" >"$work/out" 2>&1 &
job=$!
wait_for 10 test -s "$work/seen"
[ "$(cat "$work/pid")" != 1 ] || fail "the script ran as PID 1, not under an init"
[ "$(cat "$work/seen")" = held ] || fail "under an init: the lock was not held right after acquire"
[ "$(json_field pid)" = "$(cat "$work/pid")" ] || fail "under an init: the owner is pid $(json_field pid), not the script"
[ "$(json_field ttl_ms)" = 5000 ] || fail "under an init: the keeper's lease is $(json_field ttl_ms)ms, not 5000"
rm -f "$work/hold"
wait "$job" || fail "the script under an init failed: $(cat "$work/out")"
lock_is_free "$lock" || fail "under an init: the lock is still held after rlock release"

note "outside containers the keeper keeps the full --ttl"
rm -f "$work/pid" "$work/seen"
touch "$work/hold"
sh -c "$(script_body "rlock release $lock")" >"$work/out" 2>&1 &
job=$!
wait_for 10 test -s "$work/seen"
[ "$(json_field ttl_ms)" = 30000 ] || fail "on the host the keeper's lease is $(json_field ttl_ms)ms, not the default 30000"
rm -f "$work/hold"
wait "$job" || fail "the host script failed: $(cat "$work/out")"
lock_is_free "$lock" || fail "on the host: the lock is still held after rlock release"
echo "PASS: split form as PID 1 of a container"
