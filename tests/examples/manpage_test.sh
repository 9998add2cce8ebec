#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# shellcheck disable=SC2119  # start_redis takes optional config lines, none here
# Runs examples of the man page's EXAMPLES section as written (only the Redis address is
# replaced by the test's server): two locks in one script with per-name exports and fences,
# a lease held across CI steps with `exec --token-file` adopting it in the long step, a job
# that uses its own lock through the URL and prefix rlock passes on, a script that locks a
# part of itself (keeper, and early release), and a hanging job's --max-hold with its fence.
# The cron and systemd examples are the forms of docs/examples/, run by their own tests.
set -euo pipefail
# shellcheck source=tests/examples/lib.sh
source "$(dirname "$0")/lib.sh"

man_page=$source_dir/man/rlock.1.adoc

# man_block TEXT: the ---- listing block that follows the first line containing TEXT.
man_block() {
  awk -v lead="$1" '
    !found && index($0, lead) { found = 1; next }
    found && /^----$/ { if (inside) exit; inside = 1; next }
    inside { print }' "$man_page"
}
# The example with the documented Redis address replaced by the test's.
local_redis() { sed "s#redis://127.0.0.1:6379#$RLOCK_URL#g"; }

start_redis
cd "$work"

# Stubs for the commands the examples run, each logging its arguments and what it sees.
for stub in migrate flush-cache deploy.sh report.sh; do
  cat >"$work/$stub" <<STUB
#!/bin/sh
echo "$stub \$* name=\${RLOCK_NAME:-} fence=\${RLOCK_FENCE:-}" >>"$work/log"
[ ! -f "$work/$stub.fail" ] || exit 3
STUB
  chmod +x "$work/$stub"
done
json_field() { rlock "${@:3}" status "$1" --json | sed -n "s/.*\"$2\":\\([^,}]*\\).*/\\1/p"; }

note "two locks in one script: each released with its own token"
two_locks=$(man_block "Two locks in one script")
[ -n "$two_locks" ] || fail "no 'Two locks in one script' example in the man page"
for shell in dash bash; do
  : >"$work/log"
  # Stop before the first release to look at the locks, then go on.
  first_part=$(sed '/^rlock release/,$d' <<<"$two_locks")
  touch "$work/hold"
  "$shell" -c "$first_part"'
    echo "$RLOCK_TOKEN_DB_MIGRATE $RLOCK_TOKEN_CACHE_FLUSH $RLOCK_FENCE_DB_MIGRATE" >"'"$work"'/seen"
    while [ -f "'"$work"'/hold" ]; do sleep 0.05; done' &
  job=$!
  wait_for 10 test -s "$work/seen"
  read -r token_a token_b fence_a <"$work/seen"
  [ "$(redis-cli -p "$redis_port" GET 'rlock:{db-migrate}')" = "$token_a" ] || fail "$shell: RLOCK_TOKEN_DB_MIGRATE is not db-migrate's token"
  [ "$(redis-cli -p "$redis_port" GET 'rlock:{cache-flush}')" = "$token_b" ] || fail "$shell: RLOCK_TOKEN_CACHE_FLUSH is not cache-flush's token"
  [ "$(json_field db-migrate fence)" = "$fence_a" ] || fail "$shell: RLOCK_FENCE_DB_MIGRATE is not db-migrate's fence"
  grep -q "^migrate --fence $fence_a " "$work/log" || fail "$shell: migrate did not get db-migrate's fence: $(cat "$work/log")"
  rm -f "$work/hold"
  wait "$job" || fail "$shell: the first part of the example failed"
  rm -f "$work/seen"

  # The whole example, as written: both releases must succeed (the first with its own token,
  # though RLOCK_TOKEN then holds cache-flush's).
  rc=0
  "$shell" -c "set -e
$two_locks" >"$work/out" 2>&1 || rc=$?
  [ "$rc" -eq 0 ] || fail "$shell: the two-lock example exited $rc: $(cat "$work/out")"
  lock_is_free db-migrate || fail "$shell: db-migrate is still held"
  lock_is_free cache-flush || fail "$shell: cache-flush is still held"
done

note "acquire --json and --export carry the fence"
json=$(rlock acquire json-one --lease --ttl 1m --json)
token=$(sed -n 's/.*"token":"\([0-9a-f]*\)".*/\1/p' <<<"$json")
fence=$(sed -n 's/.*"fence":\([0-9]*\).*/\1/p' <<<"$json")
[ "$fence" = "$(json_field json-one fence)" ] || fail "acquire --json's fence $fence is not the lock's: $json"
grep -q '"token_variable":"RLOCK_TOKEN_JSON_ONE"' <<<"$json" || fail "acquire --json lacks token_variable: $json"
grep -q '"keeper_pid"' <<<"$json" && fail "acquire --lease --json names a keeper: $json"
rlock release json-one --token "$token"
expect_status 64 "--export with --json" rlock acquire json-two --lease --export --json

note "a lease across CI steps, the long step under exec --token-file"
ci=$(man_block "Hold a lock across CI steps")
[ -n "$ci" ] || fail "no 'Hold a lock across CI steps' example in the man page"
mkdir -p "$work/runner"
export RUNNER_TEMP=$work/runner
step() { bash --noprofile --norc -eo pipefail -c "$(sed -n "/^# $1/,/^# /p" <<<"$ci" | grep -v '^#')"; }
: >"$work/log"
step "first step"
[ "$(json_field deploy-prod ttl_ms)" = 1800000 ] || fail "the first step's lease is not 30m"
fence=$(cat "$RUNNER_TEMP/deploy.token.fence")
[ "$fence" = "$(json_field deploy-prod fence)" ] || fail "the token file's companion does not hold the fence"
[ "$(stat -c %a "$RUNNER_TEMP/deploy.token.fence")" = 600 ] || fail "the fence file is not mode 0600"
step "a step that may run long"
grep -q "^deploy.sh --fence $fence name=deploy-prod fence=$fence" "$work/log" ||
  fail "deploy.sh did not run under the lease with its fence: $(cat "$work/log")"
lock_is_held deploy-prod || fail "exec --token-file released the adopted lease (it should keep it)"
[ "$(json_field deploy-prod ttl_ms)" = 1800000 ] || fail "the adopted lease did not keep its 30m"
step "a step that only needs more time"
step "last step"
lock_is_free deploy-prod || fail "the last step did not release the lease"
rc=0
step "a step that may run long" 2>"$work/err" || rc=$?
[ "$rc" -eq 76 ] || fail "exec adopting a released lease exited $rc, expected 76: $(cat "$work/err")"
[ "$(grep -c deploy.sh "$work/log")" -eq 1 ] || fail "the deploy ran without the lease"

note "exec adopting a lease: --release, --adopt, and what does not go with them"
token=$(rlock acquire adopt-me --lease --ttl 1m)
expect_status 0 "exec --token --release" rlock exec adopt-me --token "$token" --release -- true
lock_is_free adopt-me || fail "exec --release kept the adopted lease"
token=$(rlock acquire adopt-me --lease --ttl 1m)
RLOCK_TOKEN=$token expect_status 3 "exec --adopt (token from RLOCK_TOKEN), the job's status" \
  rlock exec adopt-me --adopt -- sh -c 'exit 3'
lock_is_held adopt-me || fail "exec --adopt did not keep the lease"
RLOCK_TOKEN=wrong RLOCK_TOKEN_ADOPT_ME=$token expect_status 0 "exec --adopt prefers RLOCK_TOKEN_<NAME>" \
  rlock exec adopt-me --adopt -- true
expect_status 64 "exec --release without a lease to adopt" rlock exec adopt-me --release -- true
expect_status 64 "exec --adopt with no token in the environment" rlock exec adopt-me --adopt -- true
expect_status 64 "exec --token with --wait" rlock exec adopt-me --token "$token" -w 1s -- true
expect_status 64 "exec --token with --min-hold but without --release" rlock exec adopt-me --token "$token" --min-hold 1m -- true
rlock release adopt-me --token "$token"

note "an adopted lease lost while the job runs: the job is stopped, exit 76"
token=$(rlock acquire adopt-me --lease --ttl 300ms)
rlock exec adopt-me --token "$token" --grace 5s -- sh -c "touch '$work/adopted'; exec sleep 60" 2>"$work/err" &
adopter=$!
on_exit "kill $adopter 2>/dev/null"
wait_for 10 test -f "$work/adopted"
rlock -q release adopt-me --force
rc=0
wait "$adopter" || rc=$?
[ "$rc" -eq 76 ] || fail "exec with a lost adopted lease exited $rc, expected 76: $(cat "$work/err")"
grep -q "lost lock 'adopt-me'" "$work/err" || fail "no lock-lost message: $(cat "$work/err")"

note "a job that uses its own lock reaches it through RLOCK_URL and RLOCK_PREFIX"
own=$(man_block "A job that uses its own lock" | local_redis)
[ -n "$own" ] || fail "no 'A job that uses its own lock' example in the man page"
: >"$work/log"
# From a directory where RLOCK_URL names no Redis: only what rlock passes on can work.
rc=0
(unset RLOCK_URL; sh -c "$own") >"$work/out" 2>&1 || rc=$?
[ "$rc" -eq 0 ] || fail "the job could not renew its own lock (exit $rc): $(cat "$work/out")"
grep -q "^report.sh  name=report" "$work/log" || fail "report.sh did not run: $(cat "$work/log")"
note "lock part of a script: the lock goes when the script does"
part=$(man_block "Lock part of a script")
[ -n "$part" ] || fail "no 'Lock part of a script' example in the man page"
for stub in migrate switch; do
  printf '#!/bin/sh\nrlock status deploy -q && echo "%s held" >>"%s"\n' "$stub" "$work/log" >"$work/$stub"
  chmod +x "$work/$stub"
done
: >"$work/log"
printf '%s\n' "$part" >"$work/part.sh"
sh "$work/part.sh" || fail "the 'Lock part of a script' example failed"
[ "$(cat "$work/log")" = "migrate held
switch held" ] || fail "migrate and switch did not both run under the lock: $(cat "$work/log")"
wait_for 10 lock_is_free deploy

note "the token in the environment, to release early: cleanup runs without the lock"
early=$(man_block "The same with the token in the environment")
[ -n "$early" ] || fail "no 'release early' example in the man page"
printf '#!/bin/sh\nrlock status deploy -q && echo "migrate held" >>"%s"\n' "$work/log" >"$work/migrate"
printf '#!/bin/sh\nrlock status deploy -q || echo "cleanup free" >>"%s"\n' "$work/log" >"$work/cleanup"
chmod +x "$work/migrate" "$work/cleanup"
: >"$work/log"
sh -c "$early" || fail "the 'release early' example failed"
[ "$(cat "$work/log")" = "migrate held
cleanup free" ] || fail "the early release did not happen between migrate and cleanup: $(cat "$work/log")"

note "stop a job that hangs, and pass the fence"
hang=$(man_block "Stop a job that hangs")
[ -n "$hang" ] || fail "no 'Stop a job that hangs' example in the man page"
printf '#!/bin/sh\necho "sync-tool $*" >>"%s"\n' "$work/log" >"$work/bin/sync-tool"
chmod +x "$work/bin/sync-tool"
: >"$work/log"
sh -c "$hang" || fail "the 'Stop a job that hangs' example failed"
grep -qE '^sync-tool --fence [0-9]+$' "$work/log" || fail "sync-tool did not get a fence: $(cat "$work/log")"
echo "PASS: man page examples"
