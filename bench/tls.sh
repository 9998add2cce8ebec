#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# TLS cost, uncontended: `rlock exec k -- true` over TLS beside the same over plaintext, and
# beside the redis-cli script doing the same work (SET NX PX, then a compare-and-delete EVAL)
# with and without --tls, all against one redis-server with a plaintext and a TLS port, run
# paired (A B C D … A B C D …) by benchtool ab. Ratios are to plaintext rlock. With --rlock2
# (another build: one from before TLS support, or before a change to the TLS code), its plaintext
# and TLS runs stand beside them too: the cost TLS support adds to a plaintext run, and what a
# change did to a TLS run.
# rlock-tls resumes the session its first run cached (TLS SESSION CACHE in rlock(1)), in a
# private XDG_RUNTIME_DIR of the bench's; rlock-tls-full turns the cache off: a full handshake
# every run, as before the cache.
# Targets (issue 14): rlock TLS <= 1.5x plaintext rlock, <= 0.25x the redis-cli TLS script;
# plaintext within 2% of before.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_setup "$@"

runs=300 warmup=20
((BENCH_QUICK)) && runs=60 warmup=5
work=$BENCH_DIR/work/tls
certs=$work/certs
mkdir -p "$certs"
command -v openssl >/dev/null || bench_die "openssl is not installed"
bash "$BENCH_ROOT/tests/support/make_tls_certs.sh" "$certs" || bench_die "making the test certificates failed"

tls_port=$("$BENCH_DIR/bin/benchtool" freeport)
mkdir -p "$work/redis"
cat >"$work/redis/redis.conf" <<CONF
port 0
tls-port $tls_port
bind 127.0.0.1
dir $work/redis
save ""
appendonly no
logfile $work/redis/redis.log
daemonize no
tls-cert-file $certs/server.crt
tls-key-file $certs/server.key
tls-ca-cert-file $certs/ca.crt
tls-auth-clients no
CONF
bench_spawn redis-server "$work/redis/redis.conf"
bench_wait_for 10 redis-cli --tls --cacert "$certs/ca.crt" -p "$tls_port" ping ||
  bench_die "the TLS redis-server did not start: $(tail -3 "$work/redis/redis.log")"

bench_section "TLS, uncontended: whole process, paired, $runs runs"
echo "ratio = median / plaintext rlock's median; pair_rt = median of per-round ratios; cpu = mean user+system"
tls_url="rediss://localhost:$tls_port?cacert=$certs/ca.crt"
rm -rf "$work/runtime"
mkdir -m 700 "$work/runtime"
export XDG_RUNTIME_DIR=$work/runtime
cmds=(rlock "$RLOCK --url $REDIS_URL_BENCH exec bench-t -- true"
      rlock-tls "$RLOCK --url $tls_url exec bench-tt -- true"
      rlock-tls-full "$RLOCK --url $tls_url --tls-session-cache no exec bench-ttf -- true")
[[ -z $RLOCK2 ]] || cmds+=(rlock2 "$RLOCK2 --url $REDIS_URL_BENCH exec bench-t2 -- true"
                            rlock2-tls "$RLOCK2 --url $tls_url exec bench-tt2 -- true")
cmds+=(redis-cli "$BENCH_SRC/anchors/redis-cli-lock.sh $REDIS_PORT bench-tc true"
       redis-cli-tls "env REDIS_CLI_CACERT=$certs/ca.crt $BENCH_SRC/anchors/redis-cli-lock.sh $tls_port bench-tct true")
"$BENCH_DIR/bin/benchtool" ab -n "$runs" -w "$warmup" -o "$work/stderr.log" "${cmds[@]}" | tee "$work/tls.txt"

median() { awk -v n="$1" '$1 == n { print $2 }' "$work/tls.txt"; }
ratio() { awk -v a="$(median "$1")" -v b="$(median "$2")" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "n/a" }'; }
echo
echo "rlock-tls / rlock         = $(ratio rlock-tls rlock)   (target <= 1.5)"
echo "rlock-tls / redis-cli-tls = $(ratio rlock-tls redis-cli-tls)   (target <= 0.25)"
echo "rlock-tls-full / rlock    = $(ratio rlock-tls-full rlock)   (no session cache: a full handshake each run)"
echo "rlock-tls / rlock-tls-full = $(ratio rlock-tls rlock-tls-full)"
echo "redis-cli-tls / redis-cli = $(ratio redis-cli-tls redis-cli)"
[[ -z $RLOCK2 ]] || echo "rlock / rlock2 (before)   = $(ratio rlock rlock2)   (target <= 1.02)"
[[ -z $RLOCK2 ]] || echo "rlock-tls / rlock2-tls    = $(ratio rlock-tls rlock2-tls)"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
bench_result tls.rlock_tls_over_plain "$(ratio rlock-tls rlock)"
bench_result tls.rlock_tls_over_cli_tls "$(ratio rlock-tls redis-cli-tls)"
bench_result tls.rlock_tls_full_over_plain "$(ratio rlock-tls-full rlock)"
[[ -z $RLOCK2 ]] || bench_result tls.plain_over_before "$(ratio rlock rlock2)"
[[ -z $RLOCK2 ]] || bench_result tls.tls_over_before "$(ratio rlock-tls rlock2-tls)"
