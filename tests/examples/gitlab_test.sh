#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# shellcheck disable=SC2119  # start_redis takes optional config lines, none here
# Runs the job of docs/examples/gitlab-ci.yml as a GitLab runner does: the script: lines, in
# order, fed on standard input to one shell (bash with -eo pipefail, and POSIX sh for images
# without bash), then the after_script: lines in another, later shell. Checks: concurrent
# jobs run the critical part one at a time while the rest runs in parallel; the fence reaches
# the migration; a failing migration ends the shell and the keeper frees the lock before
# after_script runs; a job killed mid-way (cancelled) leaves the lock free; after_script sees
# no token and succeeds.
set -euo pipefail
# shellcheck source=tests/examples/lib.sh
source "$(dirname "$0")/lib.sh"

pipeline=$examples_dir/gitlab-ci.yml
job=$(yaml_eval "$pipeline" "[k for k, v in docs[0].items() if isinstance(v, dict) and 'script' in v][0]")
lock=$(yaml_eval "$pipeline" "docs[0]['$job']['variables']['MIGRATION_LOCK']")
[ -n "$lock" ] || fail "no MIGRATION_LOCK in the job's variables"
export MIGRATION_LOCK=$lock
mapfile -d '' script_lines < <(yaml_eval "$pipeline" "docs[0]['$job']['script']")
mapfile -d '' after_lines < <(yaml_eval "$pipeline" "docs[0]['$job']['after_script']")
[ "${#script_lines[@]}" -gt 0 ] || fail "no script: lines"

start_redis

# A build directory per job, with stubs for the job's commands: migrate.sh logs start and end
# with its fence, and blocks while $work/JOB/block exists; $work/JOB/fail makes it fail.
new_job() {
  mkdir -p "$work/$1"
  local stub
  for stub in build-migrations.sh notify.sh; do
    printf '#!/bin/sh\necho "%s %s" >>"%s"\n' "$1" "$stub" "$work/log" >"$work/$1/$stub"
  done
  cat >"$work/$1/migrate.sh" <<STUB
#!/bin/sh
echo "$1 migrate start \$* RLOCK_FENCE=\$RLOCK_FENCE" >>"$work/log"
echo \$\$ >"$work/$1/migrate.pid"
sleep 0.2
while [ -f "$work/$1/block" ]; do sleep 0.05; done
[ ! -f "$work/$1/fail" ] || { echo "$1 migrate failed" >>"$work/log"; exit 1; }
echo "$1 migrate end" >>"$work/log"
STUB
  chmod +x "$work/$1"/*.sh
}
# run_script JOB SHELL...: the script: lines on SHELL's standard input, in the job's directory.
run_script() {
  local name=$1
  shift
  (cd "$work/$name" && printf '%s\n' "${script_lines[@]}" | "$@") >"$work/$name.out" 2>&1
}
run_after_script() {
  (cd "$work/$1" && printf '%s\n' 'echo "token in after_script: ${RLOCK_TOKEN:-none}"' "${after_lines[@]}" |
    bash --noprofile --norc -eo pipefail) >"$work/$1.after" 2>&1
}
: >"$work/log"

for shell in "bash --noprofile --norc -eo pipefail" "sh -e"; do
  note "$shell: two jobs at once: the migrations take turns, each with its fence"
  : >"$work/log"
  read -r -a shell_argv <<<"$shell"
  new_job one
  new_job two
  run_script one "${shell_argv[@]}" &
  first=$!
  run_script two "${shell_argv[@]}" &
  second=$!
  wait "$first" || fail "job one failed: $(cat "$work/one.out")"
  wait "$second" || fail "job two failed: $(cat "$work/two.out")"
  migrations=$(grep migrate "$work/log" | sed 's/ --fence.*//' | tr '\n' '|')
  case $migrations in
    "one migrate start|one migrate end|two migrate start|two migrate end|" | \
      "two migrate start|two migrate end|one migrate start|one migrate end|") ;;
    *) fail "the migrations overlapped: $migrations" ;;
  esac
  fences=$(sed -n 's/.*migrate start --fence \([0-9]*\) RLOCK_FENCE=\([0-9]*\)$/\1 \2/p' "$work/log")
  [ "$(wc -l <<<"$fences")" -eq 2 ] || fail "the migrations did not get their fence: $(cat "$work/log")"
  while read -r given env_fence; do
    [ -n "$given" ] && [ "$given" = "$env_fence" ] || fail "fence mismatch: $given vs $env_fence"
  done <<<"$fences"
  [ "$(grep -c notify.sh "$work/log")" -eq 2 ] || fail "a job stopped before its last line"
  lock_is_free "$lock" || fail "the lock is still held after both jobs"
  run_after_script one || fail "after_script failed: $(cat "$work/one.after")"
  grep -q "token in after_script: none" "$work/one.after" || fail "after_script saw a token: $(cat "$work/one.after")"
done

note "a failing migration ends the shell; the keeper has freed the lock by after_script"
new_job failing
touch "$work/failing/fail"
rc=0
run_script failing bash --noprofile --norc -eo pipefail || rc=$?
[ "$rc" -ne 0 ] || fail "the job with a failing migration succeeded"
grep -q "failing notify.sh" "$work/log" && fail "the job went on after the failed migration"
wait_for 10 lock_is_free "$lock"
run_after_script failing || fail "after_script failed: $(cat "$work/failing.after")"

note "a job killed during the migration (cancelled): the lock is freed"
new_job cancelled
touch "$work/cancelled/block"
printf '%s\n' "${script_lines[@]}" >"$work/cancelled.script"
(cd "$work/cancelled" && exec bash --noprofile --norc -eo pipefail <"$work/cancelled.script") \
  >"$work/cancelled.out" 2>&1 &
shell_pid=$!
on_exit "kill -KILL $shell_pid 2>/dev/null; rm -f '$work/cancelled/block'"
wait_for 10 test -s "$work/cancelled/migrate.pid"
lock_is_held "$lock" || fail "the lock is not held during the migration"
# The runner kills the job's processes: the shell and the migration.
kill -KILL "$shell_pid" "$(cat "$work/cancelled/migrate.pid")"
wait "$shell_pid" 2>/dev/null || true
wait_for 10 lock_is_free "$lock"
echo "PASS: GitLab CI example"
