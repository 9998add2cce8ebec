#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# shellcheck disable=SC2119  # start_redis takes optional config lines, none here
# Runs the README's "Using it" block as written: its crontab line's command the way cron runs
# it (/bin/sh -c), with the lock free and with it busy, and the rest of the block as one
# script under /bin/sh (the "..." line, standing for the steps in between, left out). Stubs
# stand in for the jobs (/opt/report/run.sh becomes a stub of the test); each records whether
# its lock was held while it ran.
set -euo pipefail
# shellcheck source=tests/examples/lib.sh
source "$(dirname "$0")/lib.sh"

block=$(sed -n '/^## Using it/,/^```$/p' "$source_dir/README.md" | sed -n '/^```sh$/,/^```$/p' | sed '1d;$d')
[ -n "$block" ] || fail "no sh block under 'Using it' in the README"
cron_pattern='^[0-9*/,-]+([[:space:]]+[0-9*/,-]+){4}[[:space:]]'
cron_command=$(grep -E "$cron_pattern" <<<"$block" | sed -E 's/^([^[:space:]]+[[:space:]]+){5}//')
[ -n "$cron_command" ] || fail "no crontab line in the README's block"
script=$(grep -vE "$cron_pattern" <<<"$block" | grep -vx '\.\.\.')

start_redis
mkdir -p "$work/cwd" "$work/opt/report"
# stub PATH LOCK: a job that logs its name and whether LOCK was held while it ran.
stub() {
  cat >"$1" <<STUB
#!/bin/sh
if rlock status $2 -q; then echo "\$0 held" >>"$work/log"; else echo "\$0 free" >>"$work/log"; fi
STUB
  chmod +x "$1"
}
stub "$work/opt/report/run.sh" report
stub "$work/cwd/deploy.sh" deploy
stub "$work/cwd/migrate.sh" db-migrate
cron_command=${cron_command//\/opt\/report\/run.sh/$work/opt/report/run.sh}
: >"$work/log"

note "the cron line: runs the job under the lock, quietly"
out=$(/bin/sh -c "$cron_command" 2>&1) || fail "the cron command failed: $out"
[ -z "$out" ] || fail "the cron command printed (cron would mail it): $out"
[ "$(cat "$work/log")" = "$work/opt/report/run.sh held" ] || fail "the report did not run under its lock: $(cat "$work/log")"

note "the cron line with the lock busy: exit 0, no output, no job"
token=$(rlock acquire report --lease --ttl 1m)
: >"$work/log"
out=$(/bin/sh -c "$cron_command" 2>&1) || fail "the busy cron command failed: $out"
[ -z "$out" ] || fail "the busy cron command printed: $out"
[ ! -s "$work/log" ] || fail "the job ran while the lock was busy"
rlock release report --token "$token"

note "the rest of the block, as one script"
: >"$work/log"
printf '%s\n' "$script" >"$work/readme.sh"
rc=0
(cd "$work/cwd" && /bin/sh "$work/readme.sh") >"$work/out" 2>&1 || rc=$?
# The block ends with `rlock log deploy`, which exits 0: the audited exec before it recorded.
[ "$rc" -eq 0 ] || fail "the README's block exited $rc (expected 0, from its last log): $(cat "$work/out")"
expected="./deploy.sh held
./migrate.sh held
./deploy.sh held
./deploy.sh held"
[ "$(cat "$work/log")" = "$expected" ] || fail "the jobs did not each run under their lock: $(cat "$work/log")"
grep -qx '{"version":1,"locks":\[\]}' "$work/out" || fail "no empty status --json: $(cat "$work/out")"
# The audit log of deploy: the audited exec's acquisition and release, nothing before it.
[ "$(grep -cE ' (acquired|released) ' "$work/out")" -eq 2 ] || fail "rlock log deploy: $(cat "$work/out")"
tail -n 1 "$work/out" | grep -q ' released ' || fail "the last line is not the release: $(tail -n 1 "$work/out")"
grep -qE '^[0-9]+$' "$work/cwd/.deploy.token.fence" || fail "no fence beside the token file"
for lock in deploy db-migrate report; do lock_is_free "$lock" || fail "$lock is still held after the block"; done
echo "PASS: README examples"
