#!/bin/sh
# SPDX-License-Identifier: MIT
# Anchor: the lock a shell script writes by hand with redis-cli (as cronlock and friends do):
# SET NX PX to take it, run the command, a compare-and-delete EVAL to release it.
# No renewal, no waiting: exits 75 when the lock is busy.
#   redis-cli-lock.sh PORT KEY CMD [ARG...]
# With $REDIS_CLI_CACERT set, both redis-cli runs use TLS with that CA (bench/tls.sh).
port=$1 key=$2
shift 2
tls=""
[ -z "${REDIS_CLI_CACERT:-}" ] || tls="--tls --cacert $REDIS_CLI_CACERT" # a path without blanks
read -r token </proc/sys/kernel/random/uuid
# shellcheck disable=SC2086 # $tls: split on purpose
[ "$(redis-cli $tls -h 127.0.0.1 -p "$port" SET "$key" "$token" NX PX 30000)" = OK ] || exit 75
"$@"
rc=$?
# shellcheck disable=SC2086
redis-cli $tls -h 127.0.0.1 -p "$port" EVAL \
  "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0" \
  1 "$key" "$token" >/dev/null
exit $rc
