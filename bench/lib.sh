# shellcheck shell=bash
# SPDX-License-Identifier: MIT
# Shared set-up for the bench scripts: tools, a private redis-server (and etcd when
# installed) on free loopback ports in a temp dir, and a cleanup trap that stops them.
#
# Sourced, not run. A script that sources it calls `bench_setup "$@"` once; when run-all.sh
# already did (BENCH_DIR set in the environment), the servers are reused and the script
# leaves their cleanup to run-all.sh.

BENCH_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH_ROOT=$(cd "$BENCH_SRC/.." && pwd)

bench_log() { printf '%s\n' "$*" >&2; }
bench_die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

# Pids (or process-group leaders started with setsid) this shell must stop on exit.
BENCH_PIDS=()
BENCH_OWNER=0

bench_cleanup() {
  local pid
  for pid in "${BENCH_PIDS[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${BENCH_PIDS[@]}"; do
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  BENCH_PIDS=()
  if [[ $BENCH_OWNER == 1 && -n ${BENCH_DIR:-} && -d $BENCH_DIR ]]; then
    rm -rf "$BENCH_DIR"
  fi
}

# Starts "$@" in a new session (its own process group) in the background, remembers it for
# cleanup, and leaves its pid in BENCH_LAST_PID.
bench_spawn() {
  setsid "$@" &
  BENCH_LAST_PID=$!
  BENCH_PIDS+=("$BENCH_LAST_PID")
}

# Stops one process group started with bench_spawn and forgets it.
bench_stop() {
  local pid=$1 sig=${2:-TERM} keep=() p
  kill "-$sig" -- "-$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL -- "-$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for p in "${BENCH_PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
  BENCH_PIDS=("${keep[@]}")
}

# Waits up to $1 seconds for the command "${@:2}" to succeed.
bench_wait_for() {
  local limit=$1
  shift
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.05
  done
}

bench_usage() {
  cat <<EOF
usage: $(basename "$0") [--rlock PATH] [--rlock2 PATH] [--quick]
  --rlock PATH   the rlock binary to measure (default: $BENCH_ROOT/build/rlock)
  --rlock2 PATH  a second rlock binary (another build) to put beside it in the uncontended run
  --quick        fewer runs and shorter windows (under a minute for run-all.sh)
EOF
}

bench_parse_args() {
  while (($#)); do
    case $1 in
      --rlock) RLOCK=$2; shift 2 ;;
      --rlock=*) RLOCK=${1#*=}; shift ;;
      --rlock2) RLOCK2=$2; shift 2 ;;
      --rlock2=*) RLOCK2=${1#*=}; shift ;;
      --quick) BENCH_QUICK=1; shift ;;
      -h|--help) bench_usage; exit 0 ;;
      *) bench_usage >&2; exit 64 ;;
    esac
  done
}

bench_build_tools() {
  local cc=${CC:-cc}
  command -v "$cc" >/dev/null || bench_die "a C compiler is needed to build bench/benchtool.c (set CC)"
  "$cc" -O2 -o "$BENCH_DIR/bin/benchtool" "$BENCH_SRC/benchtool.c" || bench_die "building benchtool failed"
  # The yardstick is linked statically when the C library allows it, as the floor should be.
  "$cc" -O2 -static -o "$BENCH_DIR/bin/minlock" "$BENCH_SRC/minlock.c" 2>/dev/null ||
    "$cc" -O2 -o "$BENCH_DIR/bin/minlock" "$BENCH_SRC/minlock.c" || bench_die "building minlock failed"
  "$cc" -O2 -static -o "$BENCH_DIR/bin/scanfloor" "$BENCH_SRC/scanfloor.c" 2>/dev/null ||
    "$cc" -O2 -o "$BENCH_DIR/bin/scanfloor" "$BENCH_SRC/scanfloor.c" || bench_die "building scanfloor failed"
}

bench_start_redis() {
  command -v redis-server >/dev/null || bench_die "redis-server is not installed (Debian: redis-server)"
  command -v redis-cli >/dev/null || bench_die "redis-cli is not installed (Debian: redis-tools)"
  REDIS_PORT=$("$BENCH_DIR/bin/benchtool" freeport)
  mkdir -p "$BENCH_DIR/redis"
  cat >"$BENCH_DIR/redis/redis.conf" <<EOF
port $REDIS_PORT
bind 127.0.0.1
dir $BENCH_DIR/redis
save ""
appendonly no
logfile $BENCH_DIR/redis/redis.log
daemonize no
EOF
  bench_spawn redis-server "$BENCH_DIR/redis/redis.conf"
  bench_wait_for 10 redis-cli -p "$REDIS_PORT" ping || bench_die "redis-server did not start: $(tail -3 "$BENCH_DIR/redis/redis.log")"
  REDIS_URL_BENCH="redis://127.0.0.1:$REDIS_PORT"
}

bench_start_etcd() {
  ETCD_ENDPOINT=""
  if ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null; then
    ETCD_MISSING="etcd/etcdctl not installed (Debian: apt-get install etcd-server etcd-client): etcdctl anchors skipped"
    bench_log "bench: $ETCD_MISSING"
    return 0
  fi
  local client peer
  client=$("$BENCH_DIR/bin/benchtool" freeport)
  peer=$("$BENCH_DIR/bin/benchtool" freeport)
  [[ $peer != "$client" ]] || peer=$("$BENCH_DIR/bin/benchtool" freeport)
  mkdir -p "$BENCH_DIR/etcd"
  bench_spawn etcd --name bench --data-dir "$BENCH_DIR/etcd/data" \
    --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "bench=http://127.0.0.1:$peer" --log-outputs "$BENCH_DIR/etcd/etcd.log" \
    --logger zap >"$BENCH_DIR/etcd/etcd.out" 2>&1
  if bench_wait_for 20 env ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$client" endpoint health; then
    ETCD_ENDPOINT="127.0.0.1:$client"
  else
    ETCD_MISSING="etcd did not start (see its log): etcdctl anchors skipped"
    bench_log "bench: $ETCD_MISSING"
  fi
}

bench_setup() {
  bench_parse_args "$@"
  RLOCK=${RLOCK:-$BENCH_ROOT/build/rlock}
  BENCH_QUICK=${BENCH_QUICK:-0}
  [[ -x $RLOCK ]] || bench_die "no rlock binary at $RLOCK (build it, or pass --rlock PATH)"
  RLOCK=$(cd "$(dirname "$RLOCK")" && pwd)/$(basename "$RLOCK")
  RLOCK2=${RLOCK2:-}
  [[ -z $RLOCK2 || -x $RLOCK2 ]] || bench_die "no rlock binary at $RLOCK2"
  command -v flock >/dev/null || bench_die "flock(1) is not installed (Debian: util-linux)"
  # Every script stops what it started, whoever started the servers.
  trap bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  if [[ -n ${BENCH_DIR:-} && -d ${BENCH_DIR:-/nonexistent} && -n ${REDIS_PORT:-} ]]; then
    return 0  # run-all.sh started the servers
  fi
  BENCH_OWNER=1
  BENCH_DIR=$(mktemp -d "${TMPDIR:-/tmp}/rlock-bench.XXXXXX")
  mkdir -p "$BENCH_DIR/bin" "$BENCH_DIR/work"
  : >"$BENCH_DIR/results"
  bench_build_tools
  bench_start_redis
  ETCD_MISSING=""
  bench_start_etcd
  PYTHON=/usr/bin/python3
  if ! "$PYTHON" -c 'import redis' 2>/dev/null; then
    PYTHON=""
    PY_MISSING="redis-py not importable by /usr/bin/python3 (Debian: python3-redis): redis-py anchors skipped"
    bench_log "bench: $PY_MISSING"
  fi
  export RLOCK RLOCK2 BENCH_QUICK BENCH_DIR REDIS_PORT REDIS_URL_BENCH ETCD_ENDPOINT ETCD_MISSING PYTHON PY_MISSING
  export ETCDCTL_API=3
  # rlock must never see a terminal on stderr here: it would refresh its live line every second.
  export RLOCK_URL=$REDIS_URL_BENCH
}

# Records one result: bench_result KEY VALUE (read back by run-all.sh's summary).
bench_result() { printf '%s %s\n' "$1" "$2" >>"$BENCH_DIR/results"; }

# Reads a result back (empty when absent).
bench_get() { awk -v k="$1" '$1 == k { v = $2 } END { print v }' "$BENCH_DIR/results"; }

bench_section() { printf '\n== %s ==\n' "$*"; }
