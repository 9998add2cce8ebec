#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# shellcheck disable=SC2119  # start_redis takes optional config lines, none here
# Runs the job line of docs/examples/crontab the way cron does (/bin/sh -c, output captured
# as cron would mail it): it runs the job when the lock is free, and when the lock is busy it
# exits 0 without output and without running the job.
set -euo pipefail
# shellcheck source=tests/examples/lib.sh
source "$(dirname "$0")/lib.sh"

# The command part of the first job line: five time fields, then the command.
job_line=$(grep -E '^[0-9*/,-]+([[:space:]]+[0-9*/,-]+){4}[[:space:]]' "$examples_dir/crontab" | head -n 1)
[ -n "$job_line" ] || fail "no job line in docs/examples/crontab"
command=$(printf '%s\n' "$job_line" | sed -E 's/^([^[:space:]]+[[:space:]]+){5}//')
note "cron command: $command"
lock=$(printf '%s\n' "$command" | sed -E 's/.*rlock .*exec ([^ ]+) .*/\1/')
job=$(printf '%s\n' "$command" | sed -E 's/.* -- ([^ ]+).*/\1/')
if [ -z "$lock" ] || [ -z "$job" ]; then fail "cannot find the lock name and the job in: $command"; fi

# The job, as a stub on PATH: records each run; its exit status comes from $work/job-exit.
cat >"$work/bin/$job" <<STUB
#!/bin/sh
echo "run \$*" >>"$work/runs"
exit \$(cat "$work/job-exit" 2>/dev/null || echo 0)
STUB
chmod +x "$work/bin/$job"

start_redis

# run_cron: the command as cron runs it; sets $cron_rc and $cron_mail (stdout + stderr).
run_cron() {
  cron_rc=0
  cron_mail=$(/bin/sh -c "$command" 2>&1) || cron_rc=$?
}
runs() { [ -f "$work/runs" ] && wc -l <"$work/runs" || echo 0; }

note "the lock is free: the job runs, quietly"
run_cron
[ "$cron_rc" -eq 0 ] || fail "first run exited $cron_rc: $cron_mail"
[ -z "$cron_mail" ] || fail "first run printed (cron would mail it): $cron_mail"
[ "$(runs)" -eq 1 ] || fail "the job did not run exactly once"
grep -q -- "--incremental" "$work/runs" || fail "the job did not get its arguments"

note "--min-hold keeps the lock after a short run: a second host in the same minute skips"
lock_is_held "$lock" || fail "the lock was released before --min-hold ran out"
run_cron
[ "$cron_rc" -eq 0 ] || fail "the run during --min-hold exited $cron_rc: $cron_mail"
[ -z "$cron_mail" ] || fail "the skipped run printed (cron would mail it): $cron_mail"
[ "$(runs)" -eq 1 ] || fail "the job ran although the lock was held"

note "another host holds the lock (a long run): skip quietly, exit 0"
rlock -q release "$lock" --force
token=$(rlock acquire "$lock" --lease --ttl 1m)
run_cron
[ "$cron_rc" -eq 0 ] || fail "the busy run exited $cron_rc: $cron_mail"
[ -z "$cron_mail" ] || fail "the busy run printed (cron would mail it): $cron_mail"
[ "$(runs)" -eq 1 ] || fail "the job ran although the lock was busy"
rlock release "$lock" --token "$token"

note "a failing job still reports its failure to cron"
rlock -q release "$lock" --force
echo 3 >"$work/job-exit"
run_cron
[ "$cron_rc" -eq 3 ] || fail "a job that exits 3 made the cron line exit $cron_rc"
[ "$(runs)" -eq 2 ] || fail "the job did not run"

note "Redis down: an error (cron mails it), not a silent skip"
kill "$(cat "$work/redis.pid")"
wait_for 10 sh -c "! kill -0 $(cat "$work/redis.pid") 2>/dev/null"
run_cron
[ "$cron_rc" -eq 69 ] || fail "with Redis down the cron line exited $cron_rc, expected 69"
case $cron_mail in "rlock: error: "*) ;; *) fail "with Redis down, no error line: $cron_mail" ;; esac
[ "$(runs)" -eq 2 ] || fail "the job ran without the lock"
echo "PASS: crontab example"
