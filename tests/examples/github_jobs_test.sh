#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# shellcheck disable=SC2119  # start_redis takes optional config lines, none here
# Runs docs/examples/github-actions-jobs.yml as the GitHub runner would, job by job: each
# `run:` block written to a file and run by `bash --noprofile --norc -eo pipefail FILE`, with
# the workflow's and the job's env (the ${{ }} expressions evaluated: secrets from the test,
# needs.lock.outputs from the lock job's $GITHUB_OUTPUT), a $RUNNER_TEMP and a $GITHUB_OUTPUT
# per job. Checks: the token and fence go through the outputs unmasked and are masked in the
# receiving jobs; the deploy runs under the lease with its fence and the lease is kept for the
# unlock job; a cancelled run (SIGINT to the step's shell, as the runner sends it) reaches the
# deploy once and the unlock job still frees the lock; a lease lost before the deploy stops
# the deploy step with 76 before the deploy starts.
set -euo pipefail
# shellcheck source=tests/examples/lib.sh
source "$(dirname "$0")/lib.sh"

workflow=$examples_dir/github-actions-jobs.yml
wf() { yaml_eval "$workflow" "$1"; }
# The workflow, read once (python starts slowly on a loaded machine): per job, its env (the
# workflow's, then the job's) in $work/wf/JOB/env as NAME=VALUE records, and each step with
# a run: block in $work/wf/JOB/INDEX.sh.
/usr/bin/python3 - "$workflow" "$work/wf" <<'PY' || fail "cannot read $workflow"
import os, sys, yaml
with open(sys.argv[1]) as f:
    workflow = yaml.safe_load(f)
for name, job in workflow["jobs"].items():
    os.makedirs(os.path.join(sys.argv[2], name))
    env = list(workflow.get("env", {}).items()) + list(job.get("env", {}).items())
    with open(os.path.join(sys.argv[2], name, "env"), "w") as f:
        f.write("".join("%s=%s\0" % (k, v) for k, v in env))
    for index, step in enumerate(job["steps"]):
        if "run" in step:
            with open(os.path.join(sys.argv[2], name, "%02d.sh" % index), "w") as f:
                f.write(step["run"])
PY

start_redis
password_secret='' # the test's Redis has no password; the workflow passes the secret anyway

# expand VALUE PIPELINE: the ${{ }} expressions this workflow uses.
expand() {
  local value=$1 outputs=$work/$2/lock/output
  value=${value//'${{ secrets.RLOCK_URL }}'/$RLOCK_URL}
  value=${value//'${{ secrets.RLOCK_PASSWORD }}'/$password_secret}
  if [ -f "$outputs" ]; then
    local token fence
    token=$(sed -n 's/^token=//p' "$outputs")
    fence=$(sed -n 's/^fence=//p' "$outputs")
    value=${value//'${{ needs.lock.outputs.token }}'/$token}
    value=${value//'${{ needs.lock.outputs.fence }}'/$fence}
  fi
  case $value in *'${{'*) fail "unknown expression in: $value" ;; esac
  printf '%s' "$value"
}

# job_env JOB PIPELINE: the workflow's env then the job's, as NAME=VALUE lines.
job_env() {
  local line
  while IFS= read -r -d '' line; do
    printf '%s=%s\n' "${line%%=*}" "$(expand "${line#*=}" "$2")"
  done <"$work/wf/$1/env"
}

# run_step PIPELINE JOB INDEX: one step's run: block as the runner runs it; the step's shell
# pid in $work/PIPELINE/JOB/step.pid.
run_step() {
  local dir=$work/$1/$2
  mkdir -p "$dir/tmp" "$dir/workspace"
  touch "$dir/output"
  cp "$work/wf/$2/$(printf %02d "$3").sh" "$dir/step-$3.sh"
  local -a env=()
  mapfile -t env < <(job_env "$2" "$1")
  # A non-interactive shell starts background jobs with SIGINT ignored; the runner's steps
  # start with it at its default, so put it back.
  (
    cd "$dir/workspace"
    exec env --default-signal=INT,QUIT "${env[@]}" RUNNER_TEMP="$dir/tmp" GITHUB_OUTPUT="$dir/output" \
      bash --noprofile --norc -eo pipefail -c 'echo $$ >"$1"; exec bash --noprofile --norc -eo pipefail "$2"' \
      sh "$dir/step.pid" "$dir/step-$3.sh"
  )
}
# run_job PIPELINE JOB: every step with a run: block, in order, output in $work/PIPELINE/JOB.log.
run_job() {
  local step
  mkdir -p "$work/$1"
  for step in "$work/wf/$2"/*.sh; do
    step=${step##*/}
    run_step "$1" "$2" "$((10#${step%.sh}))" >>"$work/$1/$2.log" 2>&1 || return
  done
}
# The checkout: a deploy.sh in the job's workspace that logs its arguments and environment;
# it blocks while $work/PIPELINE/block exists and logs an INT it gets.
checkout() {
  mkdir -p "$work/$1/deploy/workspace"
  cat >"$work/$1/deploy/workspace/deploy.sh" <<STUB
#!/bin/bash
trap 'echo "$1 deploy got INT" >>"$work/log"; exit 130' INT
echo "$1 deploy \$* RLOCK_FENCE=\$RLOCK_FENCE" >>"$work/log"
touch "$work/$1/started"
while [ -f "$work/$1/block" ]; do sleep 0.05; done
STUB
  chmod +x "$work/$1/deploy/workspace/deploy.sh"
}
DEPLOY_LOCK=$(wf "docs[0]['env']['DEPLOY_LOCK']")
json_field() { rlock status "$DEPLOY_LOCK" --json | sed -n "s/.*\"$1\":\\([^,}]*\\).*/\\1/p"; }
[ "$(wf "docs[0]['jobs']['unlock']['if']")" = "always() && needs.lock.result == 'success'" ] ||
  fail "the unlock job must run even when the deploy failed or was cancelled"
: >"$work/log"

note "pipeline A: lock job: token and fence go out as outputs, not masked there"
run_job A lock
grep -qE '^token=[0-9a-f]{32}$' "$work/A/lock/output" || fail "no token output: $(cat "$work/A/lock/output")"
fence=$(sed -n 's/^fence=//p' "$work/A/lock/output")
[ "$fence" = "$(json_field fence)" ] || fail "the fence output is not the lease's fence"
grep -q "add-mask" "$work/A/lock.log" && fail "the lock job masks the token: GitHub would drop the output"
lock_is_held "$DEPLOY_LOCK" || fail "the lock is not held after the lock job"

note "pipeline A: deploy job: masks the token, deploys under the lease, keeps it"
checkout A
run_job A deploy || fail "the deploy job failed: $(cat "$work/A/deploy.log")"
token=$(sed -n 's/^token=//p' "$work/A/lock/output")
grep -qx "::add-mask::$token" "$work/A/deploy.log" || fail "the deploy job did not mask the token first"
grep -q "^A deploy production --fence $fence RLOCK_FENCE=$fence$" "$work/log" ||
  fail "the deploy did not run with the lease's fence: $(cat "$work/log")"
lock_is_held "$DEPLOY_LOCK" || fail "the deploy job released the lease; the unlock job owns that"
[ "$(json_field ttl_ms)" = 900000 ] || fail "the lease lost its 15m after the deploy"

note "pipeline A: unlock job releases it"
run_job A unlock || fail "the unlock job failed: $(cat "$work/A/unlock.log")"
lock_is_free "$DEPLOY_LOCK" || fail "the lock is still held after the unlock job"

note "pipeline B: cancelled during the deploy: SIGINT reaches the deploy once, unlock still frees the lock"
run_job B lock
checkout B
touch "$work/B/block"
index=$(wf "[i for i, s in enumerate(docs[0]['jobs']['deploy']['steps']) if s.get('name') == 'Deploy'][0]")
run_step B deploy "$index" >"$work/B/deploy.log" 2>&1 &
step=$!
wait_for 10 test -f "$work/B/started"
kill -INT "$(cat "$work/B/deploy/step.pid")"
rc=0
wait "$step" || rc=$?
[ "$rc" -eq 130 ] || fail "the cancelled deploy step exited $rc, expected 130: $(cat "$work/B/deploy.log")"
[ "$(grep -c "B deploy got INT" "$work/log")" -eq 1 ] || fail "the deploy did not get exactly one SIGINT: $(cat "$work/log")"
rm -f "$work/B/block"
lock_is_held "$DEPLOY_LOCK" || fail "the cancelled deploy released the lease itself"
run_job B unlock || fail "the unlock job failed after the cancellation: $(cat "$work/B/unlock.log")"
lock_is_free "$DEPLOY_LOCK" || fail "the lock is still held after the cancelled run's unlock job"

note "pipeline C: the lease is gone before the deploy: the deploy step exits 76, nothing deployed"
run_job C lock
checkout C
rlock -q release "$DEPLOY_LOCK" --force
rc=0
run_job C deploy || rc=$?
[ "$rc" -eq 76 ] || fail "the deploy job with a lost lease exited $rc, expected 76: $(cat "$work/C/deploy.log")"
grep -q "^C deploy" "$work/log" && fail "pipeline C deployed without the lease"
rc=0
run_job C unlock || rc=$?
[ "$rc" -eq 76 ] || fail "releasing a lost lease exited $rc, expected 76"
echo "PASS: GitHub Actions across jobs example"
