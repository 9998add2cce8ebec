#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Checks how the rlock binary is linked (CMakeLists.txt, docs/performance.md):
#   static      no interpreter, no shared library, not a PIE, so nothing to relocate at start
#               (only glibc's IRELATIVE ifuncs); a PT_GNU_EH_FRAME table, and GCC's crtbegin.o
#               rather than crtbeginT.o, so that the first exception does not sort every FDE;
#   static-pie  no interpreter, no shared library, a PIE;
#   dynamic     an interpreter.
# With OpenSSL inside (static, static-pie), .init calls the wrapper that defers its CPU probe.
# Then that exceptions unwind in it: --version and a bad option each throw inside rlock.
# Usage: link_check.sh RLOCK KIND
set -euo pipefail
rlock=$1 kind=$2
problems=0
problem() {
  echo "link_check: $*" >&2
  problems=$((problems + 1))
}
command -v readelf >/dev/null || { echo "link_check: readelf (binutils) is not installed" >&2; exit 1; }

header=$(readelf -hW "$rlock")
segments=$(readelf -lW "$rlock")
needed=$(readelf -dW "$rlock" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
type=$(awk '/^ *Type:/ { print $2 }' <<<"$header")
echo "$rlock: type $type, $(grep -c . <<<"$needed" || true) shared libraries, kind $kind expected"

case $kind in
  static | static-pie)
    grep -q ' INTERP ' <<<"$segments" && problem "a $kind binary has an interpreter"
    [ -z "$needed" ] || problem "a $kind binary loads $(tr '\n' ' ' <<<"$needed")"
    ;;
  dynamic)
    grep -q ' INTERP ' <<<"$segments" || problem "a dynamic binary without an interpreter"
    ;;
  *) problem "unknown kind '$kind'" ;;
esac
case $kind in
  static)
    [ "$type" = EXEC ] || problem "a static non-PIE should be EXEC, not $type"
    relocations=$(readelf -rW "$rlock" | grep -c 'R_X86_64_\|R_AARCH64_' || true)
    other=$(readelf -rW "$rlock" | grep 'R_X86_64_\|R_AARCH64_' | grep -vc 'IRELATIVE' || true)
    echo "relocations at start: $relocations (other than IRELATIVE: $other)"
    [ "$other" -eq 0 ] || problem "$other relocations other than IRELATIVE run at every start"
    grep -q ' GNU_EH_FRAME ' <<<"$segments" || problem "no PT_GNU_EH_FRAME: exceptions could not unwind"
    # crtbeginT.o's frame_dummy calls __register_frame_info; crtbegin.o's does not.
    if command -v objdump >/dev/null; then
      if objdump -d --no-show-raw-insn --disassemble=frame_dummy "$rlock" | grep -q '__register_frame_info'; then
        problem "frame_dummy registers .eh_frame (crtbeginT.o): the first exception sorts every FDE"
      fi
    fi
    ;;
  static-pie)
    [ "$type" = DYN ] || problem "a static PIE should be DYN, not $type"
    ;;
esac
# OpenSSL linked in statically: its CPU probe, called from .init, is deferred to the first TLS
# connection (src/redis/tls.cpp), so the call from .init must reach the wrapper.
if [ "$kind" != dynamic ] && command -v objdump >/dev/null; then
  init_calls=$(objdump -d --no-show-raw-insn -j .init "$rlock" | grep -o 'call .*<[^>]*>' || true)
  case $init_calls in
    *'<OPENSSL_cpuid_setup>'*) problem ".init calls OPENSSL_cpuid_setup: every run probes the CPU for OpenSSL" ;;
  esac
  grep -q '__wrap_OPENSSL_cpuid_setup' <<<"$init_calls" || problem ".init does not call __wrap_OPENSSL_cpuid_setup"
fi

version=$("$rlock" --version) || problem "rlock --version failed"
grep -q '^rlock ' <<<"$version" || problem "rlock --version printed '$version'"
set +e
err=$("$rlock" --no-such-option status x 2>&1 >/dev/null)
code=$?
set -e
[ "$code" -eq 64 ] || problem "a bad option exited $code, not 64 (did the exception unwind?): $err"
grep -q '^rlock: error: ' <<<"$err" || problem "a bad option printed '$err'"

[ "$problems" -eq 0 ] || exit 1
echo "link_check: ok"
