#!/bin/sh
# SPDX-License-Identifier: MIT
# A script that takes a lock for its own critical section only: the rest of the script runs
# in parallel on every host, the part between acquire and release runs on one at a time.
#
# `rlock acquire --export` prints `export RLOCK_TOKEN='…'`; eval puts the token in the
# environment, where `rlock release` (and `rlock renew`) find it. Until the release, a small
# keeper process renews the lease for as long as this script lives — like an open flock(1)
# descriptor: if the script dies or is killed, the keeper releases the lock at once, so there
# is no trap to forget. The lease's --ttl only matters if the whole host goes away.
#
# Usage: critical-section.sh REPORT-FILE   (RLOCK_URL names the Redis, as everywhere)
set -eu
report=${1:?usage: critical-section.sh REPORT-FILE}

# Outside the lock: work that may run on many hosts at once.
data=$(hostname; date -u +%Y-%m-%dT%H:%M:%SZ)

# The critical section: one writer at a time appends to the shared report.
# Beware: eval "$(false)" succeeds, so a failed acquire would go unnoticed even under set -e;
# `|| echo "exit $?"` makes the script stop with rlock's status (75: still busy after
# waiting, 69: Redis unreachable, ...). rlock has already said why on stderr.
eval "$(rlock acquire shared-report --wait "${REPORT_LOCK_WAIT:-2m}" --export || echo "exit $?")"
count=0
[ ! -f "$report" ] || count=$(wc -l <"$report")
printf '%s entry %s: %s\n' "$(( count + 1 ))" "$$" "$(echo "$data" | tr '\n' ' ')" >>"$report"
rlock release shared-report

# Outside the lock again.
echo "appended to $report"
