#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Round trips of one uncontended `rlock exec k -- true`: the commands it sends, seen by
# MONITOR (commands run inside a Lua script are shown as `[N lua]` and not counted), and,
# when strace is installed, the number of request writes on its Redis socket (a pipelined
# batch would be one write, one round trip).
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_setup "$@"

work=$BENCH_DIR/work/roundtrips
mkdir -p "$work"
cli=(redis-cli -p "$REDIS_PORT")

bench_section "round trips of one uncontended acquire+release (rlock exec k -- true)"
# A first run loads the scripts (a NOSCRIPT fallback may cost one extra command once per
# server); the measured run is the second, as on any server rlock has used before.
"$RLOCK" --url "$REDIS_URL_BENCH" exec bench-rt -- true
# shellcheck disable=SC2016 # expanded by the inner bash
bench_spawn bash -c 'exec redis-cli -p "$1" monitor >"$2"' monitor "$REDIS_PORT" "$work/monitor.txt"
monitor=$BENCH_LAST_PID
# MONITOR prints OK once it is on; only then can the commands that follow be seen.
bench_wait_for 5 grep -q OK "$work/monitor.txt" || bench_die "redis-cli monitor did not start"
"${cli[@]}" echo bench-begin >/dev/null
"$RLOCK" --url "$REDIS_URL_BENCH" exec bench-rt -- true
"${cli[@]}" echo bench-end >/dev/null
bench_wait_for 5 grep -q bench-end "$work/monitor.txt" || true
bench_stop "$monitor"
awk '/"bench-begin"/ { on = 1; next } /"bench-end"/ { on = 0 } on && !/ lua\]/' "$work/monitor.txt" >"$work/commands.txt"
commands=$(wc -l <"$work/commands.txt")
echo "commands sent: $commands"
sed 's/^/  /; s/\(.\{110\}\).*/\1…/' "$work/commands.txt"
bench_result roundtrips.rlock.commands "$commands"
if command -v strace >/dev/null; then
  strace -f -e trace=sendto,write,sendmsg -o "$work/strace.txt" \
    "$RLOCK" --url "$REDIS_URL_BENCH" exec bench-rt -- true >/dev/null 2>&1 || true
  writes=$(grep -cE '^[0-9]+ +(sendto|write|sendmsg)\([0-9]+, "\*[0-9]' "$work/strace.txt" || true)
  echo "request writes on the Redis socket (strace): $writes"
  bench_result roundtrips.rlock.writes "$writes"
fi
