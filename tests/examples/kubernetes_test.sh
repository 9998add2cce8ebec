#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs the containers of docs/examples/kubernetes-cronjob.yaml as a kubelet would, as far as
# one machine allows: each pod's command (and args) literally, as PID 1 of a pid namespace of
# its own (`unshare -fp --mount-proc`), with only the env the manifest gives, the Secret as a
# file laid out as the kubelet lays it out (symlinks through ..data), and the Redis requiring
# that password. Only paths change: the image's /app and the volume's mountPath become
# directories of the test, and the Redis service name becomes the test's server.
#
# report (rlock exec as PID 1): one pod runs the job, a concurrent one ends at once with 0 and
#   no output; deleting the pod (SIGTERM to PID 1) stops the job, and rlock exits well within
#   terminationGracePeriodSeconds with the lock free; --grace < terminationGracePeriodSeconds.
# report-steps (sh -c as PID 1, the split form): the lock is held for the script's life with
#   the script (pid 1) as owner and its fence passed on; released by the script; and when the
#   pod is killed mid-way (SIGKILL to PID 1, the kernel kills the keeper), the lock goes within
#   seconds.
set -euo pipefail
# shellcheck source=tests/examples/lib.sh
source "$(dirname "$0")/lib.sh"

manifest=$examples_dir/kubernetes-cronjob.yaml
unshare -fp --mount-proc true || fail "unshare -fp --mount-proc is not permitted here (needs root or user namespaces)"

# container JOB EXPRESSION: a Python expression over `pod` (the pod spec of the CronJob JOB)
# and `c` (its first container), printed by yaml_eval.
container() {
  yaml_eval "$manifest" "(lambda pod: (lambda c: $2)(pod['containers'][0]))([d for d in docs if d['metadata']['name'] == '$1'][0]['spec']['jobTemplate']['spec']['template']['spec'])"
}
argv_of() { container "$1" "c['command'] + c.get('args', [])"; }
env_of() { container "$1" "[e['name'] + '=' + e['value'] for e in c['env']]"; }

password='k8s-Secret-pw-7q'
mount_path=$(container report "c['volumeMounts'][0]['mountPath']")
secret_name=$(container report "pod['volumes'][0]['secret']['secretName']")
[ -n "$secret_name" ] || fail "the password volume is not a Secret"
grace_period=$(container report "pod['terminationGracePeriodSeconds']")
mapfile -d '' report_command < <(container report "c['command']")
note "report: ${report_command[*]}"
[ "${report_command[0]}" = rlock ] || fail "the report container's command should be rlock itself (PID 1)"

note "--grace is below terminationGracePeriodSeconds ($grace_period s), with room for the release"
grace=
for ((i = 0; i < ${#report_command[@]}; i++)); do
  [ "${report_command[i]}" = --grace ] && grace=${report_command[i + 1]}
done
[ -n "$grace" ] || fail "the report container gives no --grace (the default 10s should be chosen knowingly)"
grace_seconds=${grace%s}
[ "$grace_seconds" -lt "$grace_period" ] || fail "--grace $grace is not below terminationGracePeriodSeconds $grace_period"

start_redis "requirepass $password"
export RLOCK_PASSWORD=$password # for the test's own checks, never for the pods

# The Secret volume as the kubelet writes it: a timestamped directory, ..data pointing to it,
# and each key a symlink through ..data.
secret=$work/volumes/$secret_name
mkdir -p "$secret/..2026_12_02_00_00_00.000000001"
printf '%s' "$password" >"$secret/..2026_12_02_00_00_00.000000001/password"
chmod 0400 "$secret/..2026_12_02_00_00_00.000000001/password"
ln -s ..2026_12_02_00_00_00.000000001 "$secret/..data"
ln -s ..data/password "$secret/password"

# The image's /app: stubs that log what they see and block while $work/block.NAME exists.
mkdir -p "$work/app"
for stub in report.sh fetch.sh publish.sh; do
  cat >"$work/app/$stub" <<STUB
#!/bin/sh
echo "\$\$ $stub \$* fence=\${RLOCK_FENCE:-} password=\${RLOCK_PASSWORD:-}" >>"$work/log"
trap 'echo "\$\$ $stub got TERM" >>"$work/log"; exit 143' TERM
touch "$work/started.$stub"
while [ -f "$work/block.$stub" ]; do sleep 0.05; done
STUB
  chmod +x "$work/app/$stub"
done
: >"$work/log"

# pod JOB: starts the container of JOB as PID 1 of a new pid namespace, with only the env of
# the manifest; sets $pod (the unshare process). The kubelet's paths are the test's.
to_test_paths() { sed -e "s#/app/#$work/app/#g" -e "s#$mount_path#$secret#g" -e "s#redis://[a-z.]*:6379#$RLOCK_URL#g"; }
pods=0
pod() {
  local -a argv=() env=()
  mapfile -d '' argv < <(argv_of "$1")
  mapfile -d '' env < <(env_of "$1")
  local i
  for i in "${!argv[@]}"; do argv[i]=$(to_test_paths <<<"${argv[i]}"); done
  for i in "${!env[@]}"; do env[i]=$(to_test_paths <<<"${env[i]}"); done
  pods=$((pods + 1))
  pod_out=$work/pod.$pods.out
  env -i PATH="$work/bin:/usr/bin:/bin" "${env[@]}" unshare -fp --mount-proc "${argv[@]}" >"$pod_out" 2>&1 &
  pod=$!
  on_exit "kill -KILL $pod 2>/dev/null"
}
# The host pid of a pod's PID 1: the child unshare forked.
pid1_of() { pgrep -P "$1" | head -n 1; }
json_field() { rlock status "$1" --json | sed -n "s/.*\"$2\":\\([^,}]*\\).*/\\1/p"; }
lock_name() { sed -n "s/.*rlock \\(exec\\|acquire\\) \\([a-z-]*\\) .*/\\2/p" | head -n 1; }
report_lock=$(lock_name <<<"${report_command[*]}")
[ -n "$report_lock" ] || fail "no lock name in the report command"

note "report: a pod runs the job with the lock held, rlock as PID 1"
touch "$work/block.report.sh"
pod report
first=$pod
first_out=$pod_out
wait_for 10 test -f "$work/started.report.sh"
lock_is_held "$report_lock" || fail "the lock is not held while the job runs"
[ "$(json_field "$report_lock" pid)" = 1 ] || fail "the holder is pid $(json_field "$report_lock" pid), not PID 1"
grep -q "password=$" "$work/log" || fail "the password reached the job: $(cat "$work/log")"
grep -q -- "$password" "$work/log" && fail "the password reached the job"

note "report: a concurrent pod finds it busy and completes at once, quietly"
pod report
rc=0
wait "$pod" || rc=$?
[ "$rc" -eq 0 ] || fail "the concurrent pod exited $rc: $(cat "$pod_out")"
[ ! -s "$pod_out" ] || fail "the concurrent pod printed (-q): $(cat "$pod_out")"
[ "$(grep -c 'report.sh' "$work/log")" -eq 1 ] || fail "the concurrent pod ran the job too"

note "report: deleting the pod (SIGTERM to PID 1) stops the job and frees the lock"
rlock_pid=$(pid1_of "$first")
[ "$(readlink "/proc/$rlock_pid/exe")" = "$(readlink -f "$RLOCK_BIN")" ] || fail "PID 1 of the pod is not rlock"
began=$SECONDS
kill -TERM "$rlock_pid"
rc=0
wait "$first" || rc=$?
took=$((SECONDS - began))
[ "$rc" -eq 143 ] || fail "rlock as PID 1 exited $rc after SIGTERM, expected 143: $(cat "$first_out")"
[ "$took" -lt "$grace_period" ] || fail "stopping took ${took}s, past terminationGracePeriodSeconds"
grep -q "report.sh got TERM" "$work/log" || fail "the job never got SIGTERM"
lock_is_free "$report_lock" || fail "the lock is still held after the pod was deleted"
rm -f "$work/block.report.sh"

note "report-steps: sh -c as PID 1 holds the lock for the script's life, and releases it"
mapfile -d '' steps_command < <(argv_of report-steps)
steps_lock=$(lock_name <<<"${steps_command[*]}")
[ -n "$steps_lock" ] || fail "no lock name in the report-steps script"
touch "$work/block.publish.sh"
pod report-steps
steps=$pod
wait_for 10 test -f "$work/started.publish.sh"
lock_is_held "$steps_lock" || fail "the split form's lock is not held while the script runs as PID 1"
[ "$(json_field "$steps_lock" pid)" = 1 ] || fail "the owner is pid $(json_field "$steps_lock" pid), not the script (PID 1)"
[ "$(json_field "$steps_lock" ttl_ms)" = 5000 ] || fail "the keeper of a PID-1 owner should use a 5s lease"
fence=$(json_field "$steps_lock" fence)
grep -q "publish.sh --fence $fence " "$work/log" || fail "publish.sh did not get the fence $fence: $(cat "$work/log")"
rm -f "$work/block.publish.sh"
wait "$steps" || fail "report-steps failed: $(cat "$pod_out")"
lock_is_free "$steps_lock" || fail "the lock is still held after the script released it"

note "report-steps: the pod killed mid-way (SIGKILL to PID 1): the lock goes within seconds"
rm -f "$work/started.publish.sh"
touch "$work/block.publish.sh"
pod report-steps
steps=$pod
wait_for 10 test -f "$work/started.publish.sh"
lock_is_held "$steps_lock" || fail "the lock is not held in the second run"
kill -KILL "$(pid1_of "$steps")"
wait "$steps" 2>/dev/null || true
rm -f "$work/block.publish.sh"
wait_for 15 lock_is_free "$steps_lock"
echo "PASS: Kubernetes CronJob example"
