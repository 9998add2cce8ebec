#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The completions' lock names: taken from `rlock status --json` of the Redis the command line
# (or RLOCK_URL) names, unescaped (names with spaces, quotes, backslashes), and quietly nothing,
# quickly, when Redis is unreachable. bash always; fish and zsh when installed (zsh: syntax only,
# its completion needs a terminal). The options are the drift guard's business.
set -euo pipefail
# shellcheck source=tests/examples/lib.sh
source "$(dirname "$0")/lib.sh"
completions=$source_dir/completions

start_redis "user alice on >alice-secret ~* &* +@all"
for name in deploy 'nightly report' 'q"x\y'; do rlock acquire "$name" --lease --ttl 1m >/dev/null; done
expected=$'deploy\nnightly report\nq"x\\y'

# bash_complete WORD...: what the bash completion offers for `rlock WORD...` (last word: cur).
bash_complete() {
  bash --norc --noprofile -c '
    source "$1"; shift
    COMP_WORDS=(rlock "$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}
    _rlock rlock "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
    printf "%s\n" "${COMPREPLY[@]}"' _ "$completions/rlock.bash" "$@"
}
check() {
  [ "$2" = "$3" ] || fail "$1: expected [$3], got [$2]"
  note "$1"
}

check "bash: names for exec" "$(bash_complete exec '' | sort)" $'deploy\nnightly\\ report\nq\\"x\\\\y'
check "bash: names by prefix" "$(bash_complete release ni)" 'nightly\ report'
good_url=$RLOCK_URL
check "bash: --url on the line is used" \
  "$(RLOCK_URL=redis://127.0.0.1:1 bash_complete --url "$good_url" status '' | sort)" \
  $'deploy\nnightly\\ report\nq\\"x\\\\y'
check "bash: --password-file on the line is used" \
  "$(printf 'alice-secret\n' >"$work/pw"; RLOCK_URL=redis://alice:wrong@127.0.0.1:$redis_port \
     bash_complete --password-file "$work/pw" status '' | wc -l)" 3
check "bash: no second name" "$(bash_complete exec deploy '')" ''
check "bash: durations" "$(bash_complete exec x --ttl 3)" '30s
30m'
began=$SECONDS
check "bash: Redis unreachable, nothing" "$(RLOCK_URL=redis://127.0.0.1:1 bash_complete status '' 2>&1)" ''
check "bash: Redis not answering, nothing" \
  "$(RLOCK_URL=redis://10.255.255.1:6379 bash_complete status '' 2>&1)" ''
[ $((SECONDS - began)) -le 5 ] || fail "completing against an unreachable Redis took $((SECONDS - began))s"

if command -v fish >/dev/null; then
  fish_complete() { fish --no-config -c 'source $argv[1]; complete -C "rlock $argv[2..-1]"' \
    "$completions/rlock.fish" "$@" | cut -f1; }
  check "fish: names for status" "$(fish_complete status '' | sort)" "$expected"
  check "fish: Redis unreachable, nothing" "$(RLOCK_URL=redis://127.0.0.1:1 fish_complete status '' 2>&1)" ''
else
  note "fish is not installed: its completion is checked by the drift guard's text checks only"
fi
if command -v zsh >/dev/null; then
  zsh -n "$completions/_rlock" || fail "_rlock does not parse"
  note "zsh: _rlock parses"
else
  note "zsh is not installed: _rlock is checked by the drift guard's text checks only"
fi
echo "PASS: completions"
