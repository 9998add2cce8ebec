#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# shellcheck disable=SC2119  # start_redis takes optional config lines, none here
# Runs the steps of docs/examples/github-actions-deploy.yml as GitHub Actions does (each `run:`
# block in its own `bash --noprofile --norc -eo pipefail`, $RUNNER_TEMP per run), for
# concurrent pipelines: the second pipeline's lock step waits until the first releases, the
# deploys never overlap, a failed deploy still releases, and a lost lease stops a deploy.
set -euo pipefail
# shellcheck source=tests/examples/lib.sh
source "$(dirname "$0")/lib.sh"

workflow=$examples_dir/github-actions-deploy.yml

# step_script NAME: the `run: |` block of the step called NAME, dedented.
step_script() {
  awk -v step="$1" '
    $0 ~ "^ *- name: " step "$" { in_step = 1; next }
    in_step && /^ *- name: / { exit }
    in_step && match($0, /^ *run: \|$/) { in_run = 1; indent = RLENGTH - length("run: |"); next }
    in_run {
      if ($0 ~ /^ *$/) { print ""; next }
      match($0, /^ */)
      if (RLENGTH <= indent) exit
      print substr($0, indent + 3)
    }' "$workflow"
}
# step_field NAME FIELD: a one-line field (if:, id:) of the step called NAME.
step_field() {
  awk -v step="$1" -v field="$2" '
    $0 ~ "^ *- name: " step "$" { in_step = 1; next }
    in_step && /^ *- name: / { exit }
    in_step && $1 == field ":" { sub("^ *" field ": *", ""); print; exit }' "$workflow"
}

take=$(step_script "Take the deploy lock")
deploy=$(step_script "Deploy")
release=$(step_script "Release the deploy lock")
for s in take deploy release; do [ -n "${!s}" ] || fail "no run: block for the $s step"; done
case $(step_field "Release the deploy lock" if) in
  *"always()"*) ;;
  *) fail "the release step must run even when the deploy fails (if: always() ...)" ;;
esac
DEPLOY_LOCK=$(sed -n 's/^ *DEPLOY_LOCK: *//p' "$workflow")
[ -n "$DEPLOY_LOCK" ] || fail "no DEPLOY_LOCK in the job's env"
export DEPLOY_LOCK

start_redis

# A pipeline: a workspace with a deploy.sh that logs start and end, and its own RUNNER_TEMP.
new_pipeline() {
  mkdir -p "$work/$1/workspace" "$work/$1/tmp"
  cat >"$work/$1/workspace/deploy.sh" <<STUB
#!/bin/sh
echo "$1 start \$1" >>"$work/deploys"
sleep 0.3
[ ! -f "$work/$1/fail" ] || { echo "$1 failed" >>"$work/deploys"; exit 1; }
echo "$1 end" >>"$work/deploys"
STUB
  chmod +x "$work/$1/workspace/deploy.sh"
}
# run_step PIPELINE SCRIPT: one step, in a fresh shell, in the pipeline's workspace.
run_step() {
  (cd "$work/$1/workspace" && RUNNER_TEMP=$work/$1/tmp bash --noprofile --norc -eo pipefail -c "$2")
}
token_file() { echo "$work/$1/tmp/deploy-lock.token"; }
has_waiters() { rlock status "$DEPLOY_LOCK" --json | grep -q "\"waiters\":$1[,}]"; }
deploys() { tr '\n' '|' <"$work/deploys"; }

note "pipeline A takes the lock"
new_pipeline A
run_step A "$take" >/dev/null
[ "$(stat -c %a "$(token_file A)")" = 600 ] || fail "the token file is not mode 0600"
lock_is_held "$DEPLOY_LOCK" || fail "the lock is not held after the lock step"

note "pipeline B's lock step waits while A deploys"
new_pipeline B
run_step B "$take" >"$work/B/take.out" 2>&1 &
b_take=$!
on_exit "kill $b_take 2>/dev/null"
wait_for 10 has_waiters 1
run_step A "$deploy"
kill -0 "$b_take" 2>/dev/null || fail "B's lock step finished while A held the lock: $(cat "$work/B/take.out")"
run_step A "$release"

note "A released: B's lock step completes and B deploys"
wait "$b_take" || fail "B's lock step failed: $(cat "$work/B/take.out")"
run_step B "$deploy"
run_step B "$release"
[ "$(deploys)" = "A start production|A end|B start production|B end|" ] ||
  fail "the deploys overlapped or went missing: $(deploys)"
lock_is_free "$DEPLOY_LOCK" || fail "the lock is still held after both pipelines"

note "pipeline C: the deploy fails, the release step (if: always()) still frees the lock"
new_pipeline C
touch "$work/C/fail"
run_step C "$take" >/dev/null
rc=0
run_step C "$deploy" || rc=$?
[ "$rc" -ne 0 ] || fail "the failing deploy step succeeded"
run_step C "$release"
lock_is_free "$DEPLOY_LOCK" || fail "the lock is still held after a failed deploy"

note "pipeline D: the lease is gone before the deploy (expired, or broken by an operator)"
new_pipeline D
run_step D "$take" >/dev/null
rlock -q release "$DEPLOY_LOCK" --force
rc=0
run_step D "$deploy" 2>"$work/D/deploy.err" || rc=$?
[ "$rc" -eq 76 ] || fail "the deploy step with a lost lease exited $rc, expected 76"
grep -q "D start" "$work/deploys" && fail "pipeline D deployed without the lock"
rc=0
run_step D "$release" 2>/dev/null || rc=$?
[ "$rc" -eq 76 ] || fail "releasing a lost lease exited $rc, expected 76"
echo "PASS: CI deploy example"
