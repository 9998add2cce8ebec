#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# rlock on Redis Cluster and Sentinel beside single Redis, in one run (issue 16, item 7).
# Starts its own cluster (3 masters + 3 replicas) and sentinel set (master + replica + 3
# sentinels run as `redis-server FILE --sentinel`) on free loopback ports; single Redis is
# lib.sh's server. For each way in:
#   single        redis://SINGLE                    (the baseline, 1.00x: no replica)
#   cl-plain      redis://OWNER                     (plain URL to the slot's owner: never
#                                                    redirected; the cluster's server, rlock's
#                                                    single-node path)
#   cl-owner      redis+cluster://OWNER             (the seed owns the lock's slot)
#   cl-other      redis+cluster://OTHER             (a seed that does not: the map says where)
#   cl-auto       redis://OTHER                     (plain URL; cluster found on the first MOVED)
#   s-plain       redis://MASTER                    (plain URL to the sentinels' master)
#   s-one         redis+sentinel://S1/mymaster      (one sentinel asked: what asking three adds)
#   sentinel      redis+sentinel://S1,S2,S3/mymaster
# cl-plain and s-plain separate what the servers cost (cluster mode, a replica to feed) from
# what rlock's topology code costs.
# it measures
#   1. uncontended `rlock exec k -- true`, whole process, paired by benchtool ab: every exec is
#      a fresh process, so this includes first contact (slot map, sentinels, ROLE);
#   2. the commands one such exec sends to each node (MONITOR and INFO on the data nodes,
#      strace for the sentinels): the round trips first contact adds;
#   3. the commands a warm hand-off (release, wake-up, acquire, release) sends to each node;
#   4. hand-off latency (release -> the waiter's job starts) as bench/handoff.sh measures it:
#      the waiter made first contact long before, so this is the warm path, where the issue's
#      target (<= 1.10x single Redis) applies.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_setup "$@"

runs=300 warmup=20 workers=4 per_worker=120 rounds=8 hold_ms=5
((BENCH_QUICK)) && runs=60 warmup=5 per_worker=24 rounds=2
work=$BENCH_DIR/work/topology
rm -rf "$work"
mkdir -p "$work"
tool=$BENCH_DIR/bin/benchtool
name=bench-t # the one lock of every part (free between them); its key is rlock:{bench-t}

# Fresh ports, none handed out twice in this run.
used_ports=" $REDIS_PORT "
port() {
  local p
  for _ in $(seq 1 50); do
    p=$("$tool" freeport)
    if [[ $used_ports != *" $p "* ]]; then
      used_ports+="$p "
      echo "$p"
      return 0
    fi
  done
  bench_die "no free port"
}

# start_node DIR PORT [CONFIG-LINE]...: a redis-server with the bench's defaults.
start_node() {
  local dir=$1 p=$2
  shift 2
  mkdir -p "$dir"
  {
    printf '%s\n' "port $p" "bind 127.0.0.1" "dir $dir" 'save ""' "appendonly no" "logfile $dir/redis.log" \
      "daemonize no"
    (($#)) && printf '%s\n' "$@"
  } >"$dir/redis.conf"
  bench_spawn redis-server "$dir/redis.conf"
}

# ---- the cluster ---------------------------------------------------------------------------
cluster_ports=()
for i in 0 1 2 3 4 5; do
  p=$(port)
  bus=$(port)
  cluster_ports+=("$p")
  start_node "$work/cluster/$i" "$p" "cluster-enabled yes" "cluster-port $bus" "cluster-config-file nodes.conf" \
    "cluster-node-timeout 5000"
done
for p in "${cluster_ports[@]}"; do
  bench_wait_for 10 redis-cli -p "$p" ping || bench_die "cluster node $p did not start"
done
create=()
for p in "${cluster_ports[@]}"; do create+=("127.0.0.1:$p"); done
redis-cli --cluster create "${create[@]}" --cluster-replicas 1 --cluster-yes >"$work/cluster/create.log" 2>&1 ||
  bench_die "redis-cli --cluster create failed: $(tail -3 "$work/cluster/create.log")"
cluster_ok() {
  local p
  for p in "${cluster_ports[@]}"; do
    redis-cli -p "$p" cluster info | grep -q '^cluster_state:ok' || return 1
  done
}
bench_wait_for 30 cluster_ok || bench_die "the cluster did not reach cluster_state:ok"

masters=() owner=""
for p in "${cluster_ports[@]}"; do
  [[ $(redis-cli -p "$p" role | head -1) == master ]] || continue
  masters+=("$p")
  # The owner of the lock's slot answers a read of its key; the others answer MOVED.
  redis-cli -p "$p" exists "rlock:{$name}" | grep -q MOVED || owner=$p
done
((${#masters[@]} == 3)) || bench_die "expected 3 cluster masters, found ${#masters[@]}"
[[ -n $owner ]] || bench_die "no cluster master owns the slot of rlock:{$name}"
other=""
for p in "${masters[@]}"; do [[ $p == "$owner" ]] || { other=$p; break; }; done

# ---- the sentinel set ----------------------------------------------------------------------
s_master=$(port)
s_replica=$(port)
start_node "$work/sentinel/master" "$s_master"
start_node "$work/sentinel/replica" "$s_replica" "replicaof 127.0.0.1 $s_master"
sentinels=()
for i in 1 2 3; do
  p=$(port)
  sentinels+=("$p")
  dir=$work/sentinel/s$i
  mkdir -p "$dir"
  printf '%s\n' "port $p" "bind 127.0.0.1" "dir $dir" "logfile $dir/sentinel.log" "daemonize no" \
    "sentinel monitor mymaster 127.0.0.1 $s_master 2" "sentinel down-after-milliseconds mymaster 5000" \
    >"$dir/sentinel.conf"
  bench_spawn redis-server "$dir/sentinel.conf" --sentinel
done
sentinels_ready() {
  local p
  redis-cli -p "$s_replica" info replication | grep -q '^master_link_status:up' || return 1
  for p in "${sentinels[@]}"; do
    [[ $(redis-cli -p "$p" sentinel get-master-addr-by-name mymaster | tail -1) == "$s_master" ]] || return 1
  done
}
bench_wait_for 30 sentinels_ready || bench_die "the sentinels did not come up naming the master"

single_url=$REDIS_URL_BENCH
sentinel_url="redis+sentinel://127.0.0.1:${sentinels[0]},127.0.0.1:${sentinels[1]},127.0.0.1:${sentinels[2]}/mymaster"
ways=(single "$single_url"
      cl-plain "redis://127.0.0.1:$owner"
      cl-owner "redis+cluster://127.0.0.1:$owner"
      cl-other "redis+cluster://127.0.0.1:$other"
      cl-auto "redis://127.0.0.1:$other"
      s-plain "redis://127.0.0.1:$s_master"
      s-one "redis+sentinel://127.0.0.1:${sentinels[0]}/mymaster"
      sentinel "$sentinel_url")

echo "single Redis 127.0.0.1:$REDIS_PORT; cluster masters ${masters[*]/#/127.0.0.1:} (slot of rlock:{$name}:" \
  "$(redis-cli -p "$owner" cluster keyslot "rlock:{$name}") on $owner), replicas of each;" \
  "sentinel master $s_master, replica $s_replica, sentinels ${sentinels[*]}"
echo "load average $(cut -d' ' -f1-3 /proc/loadavg)"
for ((i = 0; i < ${#ways[@]}; i += 2)); do printf '  %-9s %s\n' "${ways[i]}" "${ways[i + 1]}"; done

# Every way works before anything is timed (and the scripts are loaded on every node).
for ((i = 0; i < ${#ways[@]}; i += 2)); do
  "$RLOCK" --url "${ways[i + 1]}" exec "$name" -- true 2>>"$work/check.err" ||
    bench_die "rlock exec via ${ways[i]} (${ways[i + 1]}) failed: $(tail -2 "$work/check.err")"
done

# ---- 1. uncontended, whole process ---------------------------------------------------------
bench_section "uncontended: whole process (first contact included), paired, $runs runs; ratio to single Redis"
ab=()
for ((i = 0; i < ${#ways[@]}; i += 2)); do ab+=("${ways[i]}" "$RLOCK --url ${ways[i + 1]} exec $name -- true"); done
"$tool" ab -n "$runs" -w "$warmup" -o "$work/ab.err" "${ab[@]}" | tee "$work/ab.txt"
single_ms=$(awk '$1 == "single" { print $2 }' "$work/ab.txt")
awk 'NR > 1 { print $1, $2, $5, $6, $8, $10 }' "$work/ab.txt" | tr -d x | while read -r way ms ratio pair cpu fail; do
  bench_result "topology.$way.ms" "$ms"
  bench_result "topology.$way.ratio" "$ratio"
  bench_result "topology.$way.pair" "$pair"
  bench_result "topology.$way.cpu" "$cpu"
  ((fail == 0)) || echo "warning: $way failed $fail times (see $work/ab.err)" >&2
done
echo "first contact, the extra over single Redis (median - single's median):"
awk -v base="$single_ms" 'NR > 2 { printf "  %-9s %+.3f ms\n", $1, $2 - base }' "$work/ab.txt"

# ---- 2. what one exec sends to which node -------------------------------------------------
bench_section "commands one uncontended exec sends, per node (scripts' own commands not counted)"
# MONITOR on every data node rlock may talk to shows the commands it ran (not those refused
# with a redirect: INFO commandstats' rejected_calls counts those). The sentinels have neither
# MONITOR nor commandstats: what rlock wrote to each is read from strace (when installed; else
# their INFO stats totals are diffed around the exec, where a sentinel's own ping to another
# may add one). conns = connections accepted from rlock; writes = request writes (strace), a
# pipelined batch being one write: one round trip.
data_nodes=("${masters[@]}" "$s_master" "$REDIS_PORT")
# snapshot PORT: "connections commands rejected" of one node, in one connection.
snapshot() {
  redis-cli -p "$1" info all | tr -d '\r' | awk -F'[:=,]' '
    $1 == "total_connections_received" { c = $2 } $1 == "total_commands_processed" { n = $2 }
    /^cmdstat_/ { for (i = 2; i < NF; ++i) if ($i == "rejected_calls") r += $(i + 1) }
    END { print c + 0, n + 0, r + 0 }'
}
# strace_writes WAY URL: "PORT WRITES FIRST-COMMAND" per node one exec wrote to (a write is a
# request or a pipelined batch of them: one round trip), from strace's connect/sendto/close.
strace_writes() {
  strace -f -e trace=connect,sendto,write,close -s 64 -o "$work/strace.$1" "$RLOCK" --url "$2" exec "$name" -- true \
    >/dev/null 2>&1 || true
  awk '
    { sub(/^[0-9]+ +/, "") }
    /^connect\(/ && match($0, /sin_port=htons\([0-9]+\)/) {
      fd = substr($0, 9) + 0; port[fd] = substr($0, RSTART + 15, RLENGTH - 16) + 0; next }
    /^close\(/ { delete port[substr($0, 7) + 0]; next }
    /^(sendto|write)\([0-9]+, "\*[0-9]/ {
      fd = substr($0, index($0, "(") + 1) + 0; if (!(fd in port)) next
      p = port[fd]; writes[p]++
      n = split($0, w, /\\r\\n/); if (n >= 3 && !(p in first)) first[p] = toupper(w[3])
      if (n >= 5 && (first[p] == "SENTINEL" || first[p] == "CLUSTER")) first[p] = first[p] " " toupper(w[5])
    }
    END { for (p in writes) print p, writes[p], first[p] }' "$work/strace.$1" | tr ' ' '_' | sed 's/_/ /; s/_/ /'
}
count_commands() { # count_commands WAY URL
  local way=$1 url=$2 p mons=() pid skip total=0 cmds b a n was trips=0
  local -A before=() after=() writes=() first=()
  if command -v strace >/dev/null; then
    while read -r p n a; do
      writes[$p]=$n
      first[$p]=${a//_/ }
    done < <(strace_writes "$way" "$url")
  fi
  for p in "${data_nodes[@]}"; do
    # shellcheck disable=SC2016 # expanded by the inner bash
    bench_spawn bash -c 'exec redis-cli -p "$1" monitor >"$2"' monitor "$p" "$work/mon.$way.$p"
    mons+=("$BENCH_LAST_PID")
  done
  for p in "${data_nodes[@]}"; do
    bench_wait_for 5 grep -q OK "$work/mon.$way.$p" || bench_die "redis-cli monitor on $p did not start"
  done
  # The sentinels' and the replica's own connections to their master are not rlock's.
  skip=$(redis-cli -p "$s_master" client list |
    awk '/name=sentinel-|flags=S/ { for (i = 1; i <= NF; ++i) if ($i ~ /^addr=/) print substr($i, 6) }' | paste -sd'|')
  for p in "${data_nodes[@]}"; do before[$p]=$(snapshot "$p"); done
  for p in "${data_nodes[@]}"; do redis-cli -p "$p" echo bench-begin >/dev/null; done
  for p in "${sentinels[@]}"; do before[$p]=$(snapshot "$p"); done
  "$RLOCK" --url "$url" exec "$name" -- true
  for p in "${sentinels[@]}"; do after[$p]=$(snapshot "$p"); done
  for p in "${data_nodes[@]}"; do redis-cli -p "$p" echo bench-end >/dev/null; done
  for p in "${data_nodes[@]}"; do after[$p]=$(snapshot "$p"); done
  local report="" conns rejected w
  for p in "${data_nodes[@]}" "${sentinels[@]}"; do
    read -r a n b <<<"${after[$p]}"
    read -r -a was <<<"${before[$p]}"
    conns=$((a - was[0] - 1)) rejected=$((b - was[2])) w=${writes[$p]:-}
    if [[ " ${sentinels[*]} " == *" $p "* ]]; then
      ((conns > 0)) || continue # (commands without a connection of rlock's are the sentinels' own)
      if [[ -n $w ]]; then
        cmds=$w
        report+=$(printf '  :%-5s conns=%d writes=%s  %s x%d (sentinel)' "$p" "$conns" "$w" "${first[$p]}" "$w")$'\n'
      else
        cmds=$((n - was[1] - 1)) # the snapshot before is one; a sentinel's own ping may add one
        report+=$(printf '  :%-5s conns=%d  %d commands (sentinel)' "$p" "$conns" "$cmds")$'\n'
      fi
      total=$((total + cmds))
      trips=$((trips + ${w:-0}))
      continue
    fi
    conns=$((conns - 2)) # the two markers
    bench_wait_for 5 grep -q bench-end "$work/mon.$way.$p" || true
    cmds=$(awk -v skip="${skip:-^$}" '/"bench-begin"/ { on = 1; next } /"bench-end"/ { on = 0 }
      on && !/ lua\]/ {
        split($0, parts, "]"); split(parts[1], who, " "); if (who[3] ~ "^(" skip ")$") next
        split(parts[2], w, "\""); c = toupper(w[2]); if (c == "CLUSTER" || c == "CLIENT" || c == "SCRIPT") c = c " " toupper(w[4])
        count[c]++; all++ } END { for (c in count) printf "%s x%d, ", c, count[c]; printf "|%d", all }' "$work/mon.$way.$p")
    ((rejected > 0)) && cmds="redirected x$rejected, $cmds"
    n=$((${cmds##*|} + rejected))
    cmds=${cmds%|*}
    ((n > 0 || conns > 0)) || continue
    report+=$(printf '  :%-5s conns=%d%s  %s' "$p" "$conns" "${w:+ writes=$w}" "${cmds%, }")$'\n'
    total=$((total + n))
    trips=$((trips + ${w:-0}))
  done
  for pid in "${mons[@]}"; do bench_stop "$pid"; done
  if ((${#writes[@]})); then
    printf '%-9s %d commands in %d round trips\n%s' "$way" "$total" "$trips" "$report"
    bench_result "topology.$way.trips" "$trips"
  else
    printf '%-9s %d commands\n%s' "$way" "$total" "$report"
  fi
  bench_result "topology.$way.commands" "$total"
}
for ((i = 0; i < ${#ways[@]}; i += 2)); do count_commands "${ways[i]}" "${ways[i + 1]}"; done

# ---- 3. what a warm hand-off sends to which node --------------------------------------------
# A holder and one waiter, both through the same way in: once the waiter sits in BLPOP on the
# lock's node, MONITOR every data node, let the holder's job end, and count what reaches each
# node until the waiter has run its job and exited (release, wake-up, acquire, release).
bench_section "commands from release to the waiter's exit (a warm hand-off), per node"
lock_node() {
  case $1 in
    single) echo "$REDIS_PORT" ;;
    cl-*) echo "$owner" ;;
    *) echo "$s_master" ;;
  esac
}
warm_commands() { # warm_commands WAY URL
  local way=$1 url=$2 node holder waiter p mons=() pid report="" total=0 cmds n
  node=$(lock_node "$way")
  rm -f "$work/go.$way" "$work/held.$way"
  # shellcheck disable=SC2016 # expanded by the inner bash
  bench_spawn "$RLOCK" --url "$url" exec "$name" -- bash -c ': >"$1"; until [[ -e $2 ]]; do sleep 0.01; done' \
    hold "$work/held.$way" "$work/go.$way"
  holder=$BENCH_LAST_PID
  bench_wait_for 10 test -e "$work/held.$way" || bench_die "$way: the holder did not start its job"
  bench_spawn "$RLOCK" --url "$url" exec "$name" -- true
  waiter=$BENCH_LAST_PID
  bench_wait_for 10 eval "redis-cli -p $node client list | grep -q 'cmd=blpop'" ||
    bench_die "$way: the waiter did not block on 127.0.0.1:$node"
  for p in "${data_nodes[@]}"; do
    # shellcheck disable=SC2016 # expanded by the inner bash
    bench_spawn bash -c 'exec redis-cli -p "$1" monitor >"$2"' monitor "$p" "$work/warm.$way.$p"
    mons+=("$BENCH_LAST_PID")
  done
  for p in "${data_nodes[@]}"; do
    bench_wait_for 5 grep -q OK "$work/warm.$way.$p" || bench_die "redis-cli monitor on $p did not start"
    redis-cli -p "$p" echo bench-begin >/dev/null
  done
  : >"$work/go.$way"
  wait "$waiter" || echo "warning: $way: the waiter failed" >&2
  wait "$holder" || echo "warning: $way: the holder failed" >&2
  for p in "${data_nodes[@]}"; do redis-cli -p "$p" echo bench-end >/dev/null; done
  for p in "${data_nodes[@]}"; do
    bench_wait_for 5 grep -q bench-end "$work/warm.$way.$p" || true
    cmds=$(awk -v skip="${skip:-^$}" '/"bench-begin"/ { on = 1; next } /"bench-end"/ { on = 0 }
      on && !/ lua\]/ {
        split($0, parts, "]"); split(parts[1], who, " "); if (who[3] ~ "^(" skip ")$") next
        split(parts[2], w, "\""); c = toupper(w[2]); if (c == "CLUSTER" || c == "CLIENT" || c == "SCRIPT") c = c " " toupper(w[4])
        count[c]++; all++ } END { for (c in count) printf "%s x%d, ", c, count[c]; printf "|%d", all }' "$work/warm.$way.$p")
    n=${cmds##*|}
    cmds=${cmds%|*}
    ((n > 0)) || continue
    report+=$(printf '  :%-5s %s' "$p" "${cmds%, }")$'\n'
    total=$((total + n))
  done
  for pid in "${mons[@]}" "$holder" "$waiter"; do bench_stop "$pid"; done
  printf '%-9s %d commands\n%s' "$way" "$total" "$report"
  bench_result "topology.warm.$way.commands" "$total"
}
skip=$(redis-cli -p "$s_master" client list |
  awk '/name=sentinel-|flags=S/ { for (i = 1; i <= NF; ++i) if ($i ~ /^addr=/) print substr($i, 6) }' | paste -sd'|')
for ((i = 0; i < ${#ways[@]}; i += 2)); do warm_commands "${ways[i]}" "${ways[i + 1]}"; done

# ---- 4. hand-off, warm ---------------------------------------------------------------------
# The ways take turns, A B C … A B C …, in $rounds rounds (as the uncontended pairing does), so
# that drift in the machine's load hits every way alike; each round's gaps are pooled.
bench_section "hand-off latency (warm: the waiter's process made first contact before): $workers workers x $per_worker jobs holding ${hold_ms} ms, in $rounds rounds"
loop_round() { # loop_round WAY URL ROUND: every worker runs per_worker/rounds jobs
  local way=$1 url=$2 out=$work/$1.$3.sections pids=() i pid failed=0
  : >"$out"
  for ((i = 0; i < workers; ++i)); do
    # shellcheck disable=SC2016 # expanded by the inner bash
    bench_spawn bash -c 'for ((n = 0; n < $1; ++n)); do "$5" --url "$6" exec "$7" -- "$2" hold "$3" "$4" >/dev/null 2>>"$3.err" || exit 1; done' \
      loop "$((per_worker / rounds))" "$tool" "$out" "$hold_ms" "$RLOCK" "$url" "$name"
    pids+=("$BENCH_LAST_PID")
  done
  for pid in "${pids[@]}"; do
    wait "$pid" || failed=1
    bench_stop "$pid"
  done
  ((failed == 0)) || echo "warning: a $way worker failed (see $out.err)" >&2
}
for ((r = 1; r <= rounds; ++r)); do
  for ((i = 0; i < ${#ways[@]}; i += 2)); do loop_round "${ways[i]}" "${ways[i + 1]}" "$r"; done
done
for ((i = 0; i < ${#ways[@]}; i += 2)); do
  way=${ways[i]}
  line=$("$tool" handoff "$work/$way".*.sections) || echo "error: $way: two jobs overlapped: mutual exclusion broken" >&2
  printf '%-9s %s\n' "$way" "$line"
  for k in p50 p90 p99; do
    bench_result "topology.handoff.$way.$k" "$(sed -n "s/.*${k}_ms=\([0-9.]*\).*/\1/p" <<<"$line")"
  done
done

# ---- summary -------------------------------------------------------------------------------
bench_section "summary (issue 16: <= 1.10x single Redis once warm within one process)"
ratio() { [[ -n $1 && -n $2 ]] && awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b }'; }
# plain_of WAY: the same server reached by a plain redis:// URL.
plain_of() {
  case $1 in
    cl-*) echo cl-plain ;;
    s-* | sentinel) echo s-plain ;;
    *) echo single ;;
  esac
}
{
  printf '%s|%s|%s|%s|%s|%s|%s|%s|%s\n' "way" "exec ms" "exec/single" "exec/plain" "round trips" \
    "hand-off p50" "p50/single" "p50/plain" "warm <= 1.10x single"
  for ((i = 0; i < ${#ways[@]}; i += 2)); do
    w=${ways[i]} plain=$(plain_of "${ways[i]}")
    r50=$(ratio "$(bench_get "topology.handoff.$w.p50")" "$(bench_get topology.handoff.single.p50)")
    p50=$(ratio "$(bench_get "topology.handoff.$w.p50")" "$(bench_get "topology.handoff.$plain.p50")")
    verdict=$(awk -v r="$r50" 'BEGIN { print (r != "" && r <= 1.10) ? "met" : "NOT met" }')
    printf '%s|%s|%sx|%sx|%s|%s ms|%sx|%sx|%s\n' "$w" "$(bench_get "topology.$w.ms")" \
      "$(bench_get "topology.$w.ratio")" "$(ratio "$(bench_get "topology.$w.ms")" "$(bench_get "topology.$plain.ms")")" \
      "$(bench_get "topology.$w.trips")" "$(bench_get "topology.handoff.$w.p50")" "$r50" "$p50" "$verdict"
    bench_result "topology.handoff.$w.ratio" "$r50"
    bench_result "topology.handoff.$w.plain" "$p50"
  done
} | column -t -s'|'
echo "(exec: a fresh process, first contact included; hand-off: warm, the target's case; plain: the"
echo " same server by a plain redis:// URL, so that x/plain is rlock's topology code alone; round"
echo " trips: request writes, the sentinels' three asked in parallel)"
