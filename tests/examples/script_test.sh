#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# shellcheck disable=SC2119  # start_redis takes optional config lines, none here
# Runs docs/examples/critical-section.sh: concurrent copies take turns in the critical section
# (a slowed-down read-modify-write that would lose or repeat entries otherwise), a copy that
# cannot get the lock in time stops with 75 without touching the report, and a copy killed
# inside the critical section leaves the lock free (its keeper releases it).
set -euo pipefail
# shellcheck source=tests/examples/lib.sh
source "$(dirname "$0")/lib.sh"

script=$examples_dir/critical-section.sh
lock=$(sed -n 's/^eval "$(rlock acquire \([^ ]*\) .*/\1/p' "$script" | head -n 1)
[ -n "$lock" ] || fail "no 'rlock acquire NAME' in $script"
report=$work/report

# Widen the race: the script's `wc` (inside the critical section) takes 100ms, or blocks while
# $work/block exists, saying so in $work/inside.
real_wc=$(command -v wc)
cat >"$work/bin/wc" <<STUB
#!/bin/sh
if [ -f "$work/block" ]; then
  touch "$work/inside"
  while [ -f "$work/block" ]; do sleep 0.05; done
fi
sleep 0.1
exec "$real_wc" "\$@"
STUB
chmod +x "$work/bin/wc"

start_redis

note "five copies at once: each appends exactly one entry, in turn"
pids=()
for i in 1 2 3 4 5; do
  "$script" "$report" >"$work/out.$i" 2>&1 &
  pids+=($!)
done
for i in "${!pids[@]}"; do
  wait "${pids[i]}" || fail "copy $((i + 1)) failed: $(cat "$work/out.$((i + 1))")"
done
[ "$("$real_wc" -l <"$report")" -eq 5 ] || fail "expected 5 entries: $(cat "$report")"
# Each copy prints its one line and nothing else: not even the first run, which finds no
# report yet, may print an error (under dash, as /bin/sh here, and under bash).
for i in "${!pids[@]}"; do
  [ "$(cat "$work/out.$((i + 1))")" = "appended to $report" ] ||
    fail "copy $((i + 1)) printed more than its line: $(cat "$work/out.$((i + 1))")"
done
[ "$(cut -d' ' -f1 "$report" | tr '\n' ' ')" = "1 2 3 4 5 " ] ||
  fail "entries overlapped (numbers repeat or skip): $(cat "$report")"
lock_is_free "$lock" || fail "the lock is still held after every copy released it"

note "the lock stays busy past the wait: exit 75, report untouched"
token=$(rlock acquire "$lock" --lease --ttl 1m)
rc=0
REPORT_LOCK_WAIT=200ms "$script" "$report" >"$work/out.busy" 2>&1 || rc=$?
[ "$rc" -eq 75 ] || fail "a copy that could not get the lock exited $rc, expected 75: $(cat "$work/out.busy")"
grep -q "appended" "$work/out.busy" && fail "the busy copy went on past the critical section"
[ "$("$real_wc" -l <"$report")" -eq 5 ] || fail "the busy copy wrote to the report"
rlock release "$lock" --token "$token"

note "Redis unreachable: the script stops with 69"
rc=0
RLOCK_URL=redis://127.0.0.1:1 "$script" "$report" >"$work/out.down" 2>&1 || rc=$?
[ "$rc" -eq 69 ] || fail "with Redis unreachable the script exited $rc, expected 69"

note "a copy killed inside the critical section: its keeper frees the lock"
touch "$work/block"
"$script" "$report" >"$work/out.killed" 2>&1 &
victim=$!
on_exit "rm -f '$work/block'; kill $victim 2>/dev/null"
wait_for 10 test -f "$work/inside"
lock_is_held "$lock" || fail "the lock is not held inside the critical section"
kill -KILL "$victim"
wait "$victim" 2>/dev/null || true
wait_for 10 lock_is_free "$lock"
rm -f "$work/block"
echo "PASS: critical-section script example"
