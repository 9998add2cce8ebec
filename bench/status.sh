#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `rlock status` over many lock names (100,000 by default, BENCH_STATUS_NAMES to change):
# time and peak RSS of the listing, text and --json, beside the floor (bench/scanfloor.c: one
# connection, SCAN ... COUNT 1000, each key printed) and `redis-cli --scan`, run paired by
# benchtool ab with stdout to /dev/null (and --rlock2's beside them); then `status NAME` with
# those names and with none.
# Targets (issue 20): the listing <= 1.5x the floor, peak RSS <= 16 MiB; `status NAME` unmoved.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_setup "$@"

names=${BENCH_STATUS_NAMES:-100000}
runs=5 one_runs=200
((BENCH_QUICK)) && runs=2 one_runs=50
work=$BENCH_DIR/work/status
mkdir -p "$work"
cli=(redis-cli -p "$REDIS_PORT")
tool=$BENCH_DIR/bin/benchtool

# The names copy one lock that rlock took, so that each has the keys and the meta hash rlock
# writes, whatever their layout (docs/redis-keys.md): the lock key with the holder's token and
# TTL, the meta hash, the fence counter. KEYS: the template's lock, meta and fence keys.
# ARGV: prefix, first, last, name format.
cat >"$work/fill.lua" <<'LUA'
local token = redis.call('GET', KEYS[1])
local meta = redis.call('HGETALL', KEYS[2])
local fence = redis.call('GET', KEYS[3])
local ttl = redis.call('PTTL', KEYS[1])
for i = tonumber(ARGV[2]), tonumber(ARGV[3]) do
  local key = ARGV[1] .. '{' .. string.format(ARGV[4], i) .. '}'
  redis.call('SET', key, token, 'PX', ttl)
  redis.call('HSET', key .. ':meta', unpack(meta))
  redis.call('PEXPIRE', key .. ':meta', ttl)
  redis.call('SET', key .. ':fence', fence)
end
return tonumber(ARGV[3]) - tonumber(ARGV[2]) + 1
LUA
# Deletes what fill.lua made. ARGV: prefix, first, last, name format.
cat >"$work/clear.lua" <<'LUA'
for i = tonumber(ARGV[2]), tonumber(ARGV[3]) do
  local key = ARGV[1] .. '{' .. string.format(ARGV[4], i) .. '}'
  redis.call('DEL', key, key .. ':meta', key .. ':fence')
end
return 1
LUA
format='bench-status-%06d'
template=bench-status-template
# each_chunk SCRIPT: runs it over the names, 10,000 per call.
each_chunk() {
  local first
  for ((first = 1; first <= names; first += 10000)); do
    local last=$((first + 9999 > names ? names : first + 9999))
    "${cli[@]}" --eval "$work/$1" "rlock:{$template}" "rlock:{$template}:meta" "rlock:{$template}:fence" , \
      rlock: "$first" "$last" "$format" >/dev/null
  done
}
trap 'each_chunk clear.lua 2>/dev/null || true; bench_cleanup' EXIT

echo "status: $names names; machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$RLOCK" acquire "$template" --lease --ttl 1h >/dev/null

# A second, empty server holds the same lock alone, so that `status NAME` with and without the
# other names runs paired (A B A B ...): the machine's load drifts alike over both.
alone_port=$("$tool" freeport)
mkdir -p "$work/alone"
cat >"$work/alone/redis.conf" <<CONF
port $alone_port
bind 127.0.0.1
dir $work/alone
save ""
appendonly no
logfile $work/alone/redis.log
daemonize no
CONF
bench_spawn redis-server "$work/alone/redis.conf"
bench_wait_for 10 redis-cli -p "$alone_port" ping || bench_die "the second redis-server did not start"
"$RLOCK" --url "redis://127.0.0.1:$alone_port" acquire "$template" --lease --ttl 1h >/dev/null

each_chunk fill.lua
listed=$("$RLOCK" status | grep -c '^bench-status-') || true
[[ $listed == $((names + 1)) ]] || bench_die "status listed $listed locks, not $((names + 1))"

bench_section "status NAME, with $names other lock names and with none, paired ($one_runs runs)"
"$tool" ab -n "$one_runs" -w 10 -o "$work/stderr.log" \
  one-alone "$RLOCK --url redis://127.0.0.1:$alone_port status $template" \
  one-among "$RLOCK status $template" | tee "$work/one.txt"

bench_section "status over $names locks, paired, $runs runs (stdout to /dev/null)"
echo "ratio = median / the floor's median; rss = peak RSS (KiB, ru_maxrss)"
listings=(floor "$BENCH_DIR/bin/scanfloor $REDIS_PORT rlock:{*}"
          redis-cli "redis-cli -p $REDIS_PORT --scan --pattern rlock:{*}"
          status "$RLOCK status"
          status-json "$RLOCK status --json")
[[ -z $RLOCK2 ]] || listings+=(status2 "$RLOCK2 status" status2-json "$RLOCK2 status --json")
"$tool" ab -n "$runs" -w 1 -o "$work/stderr.log" "${listings[@]}" | tee "$work/list.txt"
echo "(floor: bench/scanfloor.c, a static C client: SCAN ... MATCH rlock:{*} COUNT 1000, each key printed)"

# Where the listing's time goes: the server's own time in its commands, from INFO
# commandstats around one more run (usec is Redis's time executing each command).
"${cli[@]}" config resetstat >/dev/null
"$RLOCK" status >/dev/null
"${cli[@]}" info commandstats | tr -d '\r' >"$work/commandstats.txt"
# server_ms COMMAND: the server's time in COMMAND (ms), and its calls.
server_ms() {
  awk -F'[:,=]' -v c="cmdstat_$1" '$1 == c { printf "%.0f ms in %d calls (%.1f us each)", $5 / 1000, $3, $5 / $3 }' \
    "$work/commandstats.txt"
}
bench_section "the server's time in one \`rlock status\` (INFO commandstats)"
echo "SCAN:    $(server_ms scan)"
echo "EVALSHA: $(server_ms evalsha) (the inspect script, one per lock)"

# field FILE NAME COLUMN: a column of benchtool's line for NAME (2 median_ms, 5 ratio, 9 rss_kib).
field() { awk -v n="$2" -v c="$3" '$1 == n { gsub(/x$/, "", $c); print $c }' "$1"; }
one_alone=$(field "$work/one.txt" one-alone 2)
one_many=$(field "$work/one.txt" one-among 2)
one_ratio=$(field "$work/one.txt" one-among 5)
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
verdict() { awk -v v="$1" -v l="$2" 'BEGIN { print (v <= l) ? "met" : "NOT met" }'; }

bench_section "summary ($names names)"
{
  printf '%s|%s|%s|%s\n' "metric" "measured" "target" "verdict"
  for name in status status-json; do
    ratio=$(field "$work/list.txt" "$name" 5)
    rss=$(mib "$(field "$work/list.txt" "$name" 9)")
    printf '%s|%s|%s|%s\n' "rlock $name time / floor" "${ratio}x" "<= 1.5x" "$(verdict "$ratio" 1.5)"
    printf '%s|%s|%s|%s\n' "rlock $name peak RSS (MiB)" "$rss" "<= 16" "$(verdict "$rss" 16)"
    bench_result "status.$name.ratio" "$ratio"
    bench_result "status.$name.rss_mib" "$rss"
  done
  # What no client can save: Redis's own time in the SCANs and the inspect scripts.
  server=$(awk -F'[:,=]' '$1 == "cmdstat_scan" || $1 == "cmdstat_evalsha" { t += $5 } END { printf "%.0f", t / 1000 }' \
    "$work/commandstats.txt")
  floor=$(field "$work/list.txt" floor 2)
  printf '%s|%s|%s|%s\n' "Redis's own time in status / floor" \
    "$(awk -v s="$server" -v f="$floor" 'BEGIN { printf "%.2fx (%d ms)", s / f, s }')" "-" "-"
  printf '%s|%s|%s|%s\n' "redis-cli --scan time / floor" "$(field "$work/list.txt" redis-cli 5)x" "-" "-"
  printf '%s|%s|%s|%s\n' "floor time (ms)" "$floor" "-" "-"
  printf '%s|%s|%s|%s\n' "status NAME, $names names / none" "${one_ratio}x ($one_many / $one_alone ms)" \
    "<= 1.2x" "$(verdict "$one_ratio" 1.2)"
} | column -t -s'|'
bench_result status.one.ratio "$one_ratio"
bench_result status.names "$names"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
