#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs docs/examples/nightly-report.service as systemd would when nightly-report.timer fires
# on several hosts: LoadCredential= copied into a private credentials directory, %d in
# Environment= expanded to it, ExecStart= split into words and run with only the unit's
# environment, against a Redis that requires the password. Checks: the first host runs the
# job and the unit succeeds; the job can use its own lock (rlock renew) through the
# RLOCK_PASSWORD_FILE it inherits, but never sees the password; a host whose timer fires while
# the job runs, or after it finished but within --min-hold, exits 0 without output or job;
# and --min-hold covers the timer's RandomizedDelaySec.
set -euo pipefail
# shellcheck source=tests/examples/lib.sh
source "$(dirname "$0")/lib.sh"

unit=$examples_dir/nightly-report.service
timer=$examples_dir/nightly-report.timer
value_of() { sed -n "s/^$2=//p" "$1"; }

[ "$(value_of "$unit" Type)" = oneshot ] || fail "the service should be Type=oneshot"
[ -n "$(value_of "$timer" OnCalendar)" ] || fail "the timer has no OnCalendar="
exec_start=$(value_of "$unit" ExecStart)
read -r -a argv <<<"$exec_start"
[ "${argv[0]}" = /usr/bin/rlock ] || fail "ExecStart= should run /usr/bin/rlock"
lock=${argv[2]}
min_hold=
for ((i = 0; i < ${#argv[@]}; i++)); do
  case ${argv[i]} in
    --min-hold) min_hold=${argv[i + 1]} ;;
    --) job_index=$((i + 1)) ;;
  esac
done
for flag in -n "-E 0" -q; do
  [[ " $exec_start " == *" $flag "* ]] || fail "ExecStart= lacks $flag: a busy lock must end the unit quietly with success"
done

note "--min-hold ($min_hold) covers RandomizedDelaySec ($(value_of "$timer" RandomizedDelaySec))"
to_seconds() { local v=$1; case $v in *m) echo $((${v%m} * 60)) ;; *s) echo "${v%s}" ;; *) echo "$v" ;; esac; }
[ -n "$min_hold" ] || fail "ExecStart= has no --min-hold: a host whose timer fires later would run the job again"
[ "$(to_seconds "$min_hold")" -gt "$(to_seconds "$(value_of "$timer" RandomizedDelaySec)")" ] ||
  fail "--min-hold $min_hold does not cover RandomizedDelaySec"

password='unit-Cred-pw-51'
start_redis "requirepass $password"

# LoadCredential=ID:PATH: systemd copies PATH to $CREDENTIALS_DIRECTORY/ID (private, 0400).
credential=$(value_of "$unit" LoadCredential)
credential_id=${credential%%:*}
credentials_dir=$work/credentials/nightly-report.service
mkdir -p "$credentials_dir"
printf '%s\n' "$password" >"$credentials_dir/$credential_id"
chmod 0400 "$credentials_dir/$credential_id"

# The unit's environment: its Environment= lines, %d expanded, the Redis name made the test's.
unit_env=(PATH=/usr/bin:/bin CREDENTIALS_DIRECTORY="$credentials_dir")
while IFS= read -r line; do
  line=${line//%d/$credentials_dir}
  line=${line//redis:\/\/redis.internal:6379/$RLOCK_URL}
  unit_env+=("$line")
done < <(value_of "$unit" Environment)

# The job: renews its own lock (as a long job would), logs what it sees, blocks while
# $work/block exists.
job=$work/bin/$(basename "${argv[job_index]}")
cat >"$job" <<STUB
#!/bin/sh
"$RLOCK_BIN" renew "\$RLOCK_NAME" --ttl 2m || { echo "renew failed: \$?" >>"$work/log"; exit 1; }
echo "run password=\${RLOCK_PASSWORD:-} file=\${RLOCK_PASSWORD_FILE:-}" >>"$work/log"
touch "$work/started"
while [ -f "$work/block" ]; do sleep 0.05; done
STUB
chmod +x "$job"
argv[0]=$RLOCK_BIN
argv[job_index]=$job
: >"$work/log"

# fire HOST: the timer fires on HOST: the unit's ExecStart in a session of its own.
fire() {
  env -i "${unit_env[@]}" setsid "${argv[@]}" >"$work/$1.out" 2>&1
}
export RLOCK_PASSWORD=$password # for the test's own checks only

note "host one: the job runs under the lock, and can renew it through RLOCK_PASSWORD_FILE"
touch "$work/block"
fire one &
one=$!
on_exit "kill $one 2>/dev/null"
wait_for 10 test -f "$work/started"
lock_is_held "$lock" || fail "the lock is not held while the job runs"
grep -q "^run password= file=$credentials_dir/$credential_id$" "$work/log" ||
  fail "the job should get the credential's path and no password: $(cat "$work/log")"

note "host two fires while the job runs: exit 0, no output, no job"
rc=0
fire two || rc=$?
[ "$rc" -eq 0 ] || fail "host two's unit failed with $rc: $(cat "$work/two.out")"
[ ! -s "$work/two.out" ] || fail "host two printed: $(cat "$work/two.out")"

rm -f "$work/block"
rc=0
wait "$one" || rc=$?
[ "$rc" -eq 0 ] || fail "host one's unit failed with $rc: $(cat "$work/one.out")"

note "host three fires after the job is done, within --min-hold: still nothing runs"
lock_is_held "$lock" || fail "--min-hold did not keep the lock after the job"
rc=0
fire three || rc=$?
[ "$rc" -eq 0 ] || fail "host three's unit failed with $rc: $(cat "$work/three.out")"
[ "$(grep -c '^run' "$work/log")" -eq 1 ] || fail "the job ran more than once: $(cat "$work/log")"

note "an unreadable credential is a configuration error (78)"
rlock -q release "$lock" --force
chmod 0000 "$credentials_dir/$credential_id"
rm -f "$credentials_dir/$credential_id"
rc=0
fire four || rc=$?
[ "$rc" -eq 78 ] || fail "a missing credential exited $rc, expected 78: $(cat "$work/four.out")"
grep -q "RLOCK_PASSWORD_FILE" "$work/four.out" || fail "the error does not name RLOCK_PASSWORD_FILE: $(cat "$work/four.out")"
echo "PASS: systemd timer example"
