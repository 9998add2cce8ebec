#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Redis bytes per lock: what one held lock costs (lock key + meta hash + fence counter, by
# MEMORY USAGE … SAMPLES 0) with a short and with a 200-character command, the meta hash's
# encoding (listpack is the compact one), what each waiting ticket adds (the :line and
# :line:expiry sorted sets, and any :wake:TICKET list), and the server's used_memory growth per
# held lock over many leases, which also counts Redis's own per-key tables. Byte counts are
# deterministic for one Redis version and allocator; the script prints both.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_setup "$@"

leases=500 waiter_counts=(10 140)
((BENCH_QUICK)) && leases=100 waiter_counts=(10)
cli=(redis-cli -p "$REDIS_PORT")
work=$BENCH_DIR/work/keys
mkdir -p "$work"

# bytes KEY...: the sum of MEMORY USAGE KEY SAMPLES 0 (0 for a missing key).
bytes() {
  local total=0 key value
  for key in "$@"; do
    value=$("${cli[@]}" memory usage "$key" samples 0)
    total=$((total + ${value:-0}))
  done
  echo "$total"
}
used_memory() { "${cli[@]}" info memory | tr -d '\r' | sed -n 's/^used_memory://p'; }
key() { printf 'rlock:{%s}%s' "$1" "${2:-}"; }
# The meta hash's command field: `c`, or `command` as an rlock before the lean layout wrote it.
command_field() { [[ $("${cli[@]}" hexists "$1" c) == 1 ]] && echo c || echo command; }
held() { "$RLOCK" status "$1" -q; }

# held_lock NAME RESULT LABEL: prints one held lock's bytes and records them as keys.RESULT.*.
held_lock() {
  local name=$1 result=$2 label=$3 lock meta fence
  lock=$(bytes "$(key "$name")")
  meta=$(bytes "$(key "$name" :meta)")
  fence=$(bytes "$(key "$name" :fence)")
  printf '%-26s lock=%-4s meta=%-4s fence=%-4s total=%-5s meta encoding=%s, command %s bytes as stored\n' \
    "$label" "$lock" "$meta" "$fence" $((lock + meta + fence)) "$("${cli[@]}" object encoding "$(key "$name" :meta)")" \
    "$("${cli[@]}" hstrlen "$(key "$name" :meta)" "$(command_field "$(key "$name" :meta)")")"
  bench_result "keys.$result.bytes" $((lock + meta + fence))
  bench_result "keys.$result.meta" "$meta"
  bench_result "keys.$result.encoding" "$("${cli[@]}" object encoding "$(key "$name" :meta)")"
}

bench_section "Redis bytes per lock (redis-server $(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p');" \
  "$("${cli[@]}" config get hash-max-listpack-value | tr '\n' ' ')" \
  "$("${cli[@]}" config get hash-max-listpack-entries | tr '\n' ' '))"

# A held lock with a short command, then with a 200-character one (sh -c '…' as exec records it).
bench_spawn "$RLOCK" exec keys-short -- sleep 600
short_holder=$BENCH_LAST_PID
padding=$(printf '%*s' 174 '' | tr ' ' x)
bench_spawn "$RLOCK" exec keys-long -- sh -c ": $padding; exec sleep 600"
long_holder=$BENCH_LAST_PID
bench_wait_for 10 held keys-short || bench_die "the short-command holder did not take its lock"
bench_wait_for 10 held keys-long || bench_die "the long-command holder did not take its lock"
command_line="sh -c ': $padding; exec sleep 600'"
held_lock keys-short short "short command"
held_lock keys-long long "${#command_line}-character command"
bench_stop "$long_holder"

# Waiters behind the short-command holder: what the line costs per ticket.
for count in "${waiter_counts[@]}"; do
  pids=()
  for ((i = 0; i < count; ++i)); do
    bench_spawn bash -c '"$@" 2>>"'"$work"'/waiter.err"' waiter "$RLOCK" exec keys-short -- true
    pids+=("$BENCH_LAST_PID")
  done
  queued() { [[ $("${cli[@]}" zcard "$(key keys-short :line)") == "$count" ]]; }
  bench_wait_for 60 queued || bench_die "the $count waiters did not queue"
  mapfile -t wake_keys < <("${cli[@]}" --scan --pattern "$(key keys-short ':wake:*')")
  line=$(bytes "$(key keys-short :line)" "$(key keys-short :line:expiry)" "${wake_keys[@]}")
  held_lock keys-short "waiting$count" "short command, $count waiting"
  printf '%-26s line+line:expiry+wake lists=%s bytes, per ticket %s (line encoding %s)\n' "$count waiting tickets" \
    "$line" $((line / count)) "$("${cli[@]}" object encoding "$(key keys-short :line)")"
  bench_result "keys.ticket.$count.bytes" $((line / count))
  for pid in "${pids[@]}"; do bench_stop "$pid"; done
  "${cli[@]}" del "$(key keys-short :line)" "$(key keys-short :line:expiry)" >/dev/null
done
bench_stop "$short_holder"

# Server-wide: used_memory growth per held lock over many leases, which also counts the main
# and expiry dictionaries' entries and buckets of the three keys. The leases record their
# parent's command line: a script run by a relative path, so that it is the same for any build.
# Redis's dictionaries grow by powers of two, so this figure depends on the number of leases
# (--quick takes fewer): compare runs with the same count.
cat >"$work/leases" <<'EOF'
#!/bin/bash
for ((i = 0; i < $1; ++i)); do "$RLOCK" acquire "keys-lease-$i" --lease --ttl 10m >/dev/null || exit 1; done
EOF
chmod +x "$work/leases"
"${cli[@]}" flushall >/dev/null
before=$(used_memory)
(cd "$work" && ./leases "$leases") || bench_die "taking $leases leases failed"
after=$(used_memory)
printf '%-26s %s bytes of used_memory per held lock over %d leases (command %q)\n' "server-wide" \
  $(((after - before) / leases)) "$leases" \
  "$("${cli[@]}" hget "$(key keys-lease-0 :meta)" "$(command_field "$(key keys-lease-0 :meta)")")"
bench_result "keys.used_memory.per_lock" $(((after - before) / leases))
"${cli[@]}" flushall >/dev/null
