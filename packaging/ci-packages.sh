#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# CI for the packages: builds the .deb, installs it with dpkg, uses it (version, man page,
# bash completion, a lock against a throwaway redis-server), removes it and checks that nothing
# is left; builds the .rpm and lists it; builds the source tarball and builds rlock from it;
# prints the package sizes.
#
# Idempotent, and leaves the system as it found it: it refuses to run over an rlock installed
# by other means, removes its own install even when a check fails, and purges the Debian
# packages it had to install (tools and the .deb's dependencies), unless
# RLOCK_CI_KEEP_PACKAGES=1. Needs root or sudo for dpkg/apt-get.
#
# Usage: packaging/ci-packages.sh [CMAKE ARGS...]
#   BUILD_DIR defaults to build-packages; the packages land there. CMake arguments choose the
#   build, e.g. -DRLOCK_STATIC=OFF -DRLOCK_STATIC_DEPS=OFF for a dynamically linked rlock.
#   A BUILD_DIR that holds a RelWithDebInfo build already (CI passes its build/) is packaged
#   as it is when no CMake arguments are given.
set -euo pipefail
cd "$(dirname "$0")/.."
source_dir=$PWD
build_dir=${BUILD_DIR:-build-packages}
export DEBIAN_FRONTEND=noninteractive

sudo=''
[ "$(id -u)" -eq 0 ] || sudo=sudo

step() { printf '\n== %s\n' "$*"; }
fail() {
  echo "ci-packages: FAIL: $*" >&2
  exit 1
}
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
installed_packages() { dpkg-query -W -f='${Package}:${Architecture} ${Status}\n' | awk '$NF == "installed" { print $1 }' | sort; }

# --- state to restore on exit
we_installed_rlock=''
added_packages=()
work=$(mktemp -d "${TMPDIR:-/tmp}/rlock-ci-packages.XXXXXX")
restore() {
  local rc=$?
  if [ -f "$work/redis.pid" ]; then kill "$(cat "$work/redis.pid")" 2>/dev/null || true; fi
  if [ -n "$we_installed_rlock" ] && installed rlock; then
    echo "ci-packages: removing the rlock package this run installed" >&2
    $sudo dpkg -r rlock >/dev/null || rc=1
  fi
  if [ ${#added_packages[@]} -gt 0 ] && [ "${RLOCK_CI_KEEP_PACKAGES:-}" != 1 ]; then
    echo "ci-packages: purging the packages this run installed: ${added_packages[*]}" >&2
    $sudo apt-get purge -y -qq "${added_packages[@]}" >/dev/null || rc=1
  fi
  rm -rf "$work"
  exit "$rc"
}
trap restore EXIT

# apt_install PACKAGE...: installs what is missing and remembers everything that came with it.
apt_install() {
  local missing=() p
  for p in "$@"; do installed "$p" || missing+=("$p"); done
  [ ${#missing[@]} -gt 0 ] || return 0
  installed_packages >"$work/before"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  installed_packages >"$work/after"
  mapfile -t -O ${#added_packages[@]} added_packages < <(comm -13 "$work/before" "$work/after")
}

step "preconditions"
if installed rlock; then
  fail "an rlock package is already installed ($(dpkg-query -W -f='${Version}' rlock)); this script installs and removes its own, so remove that one first (dpkg -r rlock)"
fi
[ ! -e /usr/bin/rlock ] || fail "/usr/bin/rlock exists but belongs to no package (a 'cmake --install'?); remove it first"
# cmake and the compilers come from scripts/install-deps.sh; these are the packaging tools.
apt_install dpkg-dev rpm man-db file redis-server
if grep -h -s '^path-exclude=/usr/share/man' /etc/dpkg/dpkg.cfg.d/* >/dev/null; then
  fail "dpkg is configured to drop man pages (path-exclude=/usr/share/man in /etc/dpkg/dpkg.cfg.d): man -w cannot work on this machine"
fi

step "configure and build ($build_dir)"
cached_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build_dir/CMakeCache.txt" 2>/dev/null || true)
if [ -n "${BUILD_DIR:-}" ] && [ $# -eq 0 ] && [ "$cached_type" = RelWithDebInfo ]; then
  # A RelWithDebInfo build that is there already (CI's own, tests included): packaged as it
  # is, not configured anew and built a second time. The tarball below is still built from a
  # fresh configure.
  echo "packaging the existing build in $build_dir"
else
  cmake -S "$source_dir" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRLOCK_BUILD_TESTS=OFF "$@" >/dev/null
fi
cmake --build "$build_dir" -j"$(nproc)" >/dev/null
[ -f "$build_dir/rlock.1" ] || fail "the man page was not built (is asciidoctor installed?)"
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build_dir/CMakeCache.txt")
[ -n "$version" ] || fail "cannot read the project version from $build_dir/CMakeCache.txt"
rm -f "$build_dir"/rlock[-_]*.deb "$build_dir"/rlock-*.rpm "$build_dir"/rlock-*.tar.gz "$build_dir"/*.sha256

step "build the .deb"
(cd "$build_dir" && cpack -G DEB >/dev/null)
deb=$(ls "$build_dir"/rlock_"$version"-*.deb)
dpkg-deb --info "$deb" | sed -n '/^ Architecture:/,$p'
dpkg-deb --contents "$deb" | awk '{ print $6 }' | grep -v '/$' | sed 's|^\.||' >"$work/deb-files"
echo "files:"
sed 's/^/  /' "$work/deb-files"
# Depends: comes from dpkg-shlibdeps: it must cover the shared libraries the binary loads (none
# for the default static build; libc6, hiredis, ... with -DRLOCK_STATIC=OFF).
depends=$(dpkg-deb -f "$deb" Depends)
needed=$(readelf -d "$build_dir/rlock" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
echo "the binary loads: ${needed:-nothing (statically linked)}"
if [ -n "$needed" ]; then
  case $depends in *libc6*) ;; *) fail "the binary loads $needed but Depends: is '$depends' (dpkg-shlibdeps not run?)" ;; esac
  case $needed in
    *libhiredis*) case $depends in *libhiredis*) ;; *) fail "Depends: lacks hiredis: $depends" ;; esac ;;
  esac
fi
[ "$(dpkg-deb -f "$deb" Section)" = utils ] || fail "Section: is not utils"

step "install it with dpkg -i"
we_installed_rlock=1
installed_packages >"$work/before"
if ! $sudo dpkg -i "$deb"; then
  echo "dpkg -i left dependencies missing; apt-get install -f"
  $sudo apt-get update -qq
  $sudo apt-get install -f -y -qq >/dev/null
fi
installed rlock || fail "rlock is not installed after dpkg -i"
installed_packages >"$work/after"
mapfile -t -O ${#added_packages[@]} added_packages < <(comm -13 "$work/before" "$work/after" | grep -v '^rlock:')

step "use it"
[ "$(command -v rlock)" = /usr/bin/rlock ] || fail "rlock on PATH is $(command -v rlock), not /usr/bin/rlock"
version_text=$(rlock --version)
echo "$version_text"
grep -q "^rlock $version" <<<"$version_text" || fail "rlock --version does not print $version"
grep -q 'hiredis' <<<"$version_text" || fail "rlock --version does not name the hiredis version"
man_path=$(man -w rlock) || fail "man -w rlock finds no man page"
echo "man -w rlock: $man_path"
man_text=$(MANPAGER=cat MANWIDTH=80 man rlock 2>/dev/null) || fail "man rlock fails"
grep -q 'EXIT STATUS' <<<"$man_text" || fail "man rlock does not render an EXIT STATUS section"
completion=$(bash -c 'source /usr/share/bash-completion/completions/rlock && complete -p rlock')
echo "bash: $completion"
[ "$completion" = "complete -F _rlock rlock" ] || fail "the bash completion did not register: $completion"
for f in /usr/share/zsh/vendor-completions/_rlock /usr/share/fish/vendor_completions.d/rlock.fish \
  /usr/share/doc/rlock/copyright /usr/share/doc/rlock/LICENSE; do
  [ -f "$f" ] || fail "$f is missing"
done
# A lock against a throwaway redis-server on a free loopback port.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" \
  --daemonize yes --pidfile "$work/redis.pid" --logfile "$work/redis.log"
export RLOCK_URL=redis://127.0.0.1:$port
for _ in $(seq 100); do
  rc=0
  rlock --connect-timeout 100ms status ci-probe -q || rc=$?
  [ "$rc" -eq 69 ] || break
  sleep 0.05
done
# shellcheck disable=SC2016  # $RLOCK_NAME is for the job's shell
out=$(rlock exec ci-package -- sh -c 'rlock status "$RLOCK_NAME" | head -n 1')
echo "rlock exec: $out"
case $out in "ci-package: held by "*) ;; *) fail "rlock exec did not hold the lock: $out" ;; esac
rc=0
rlock status ci-package -q || rc=$?
[ "$rc" -eq 1 ] || fail "the lock is not free after rlock exec (status exit $rc)"
kill "$(cat "$work/redis.pid")"
rm -f "$work/redis.pid"
unset RLOCK_URL

step "remove it with dpkg -r"
$sudo dpkg -r rlock
we_installed_rlock=''
! installed rlock || fail "rlock is still installed after dpkg -r"
left=()
while read -r f; do [ ! -e "$f" ] || left+=("$f"); done <"$work/deb-files"
[ ${#left[@]} -eq 0 ] || fail "files left after dpkg -r: ${left[*]}"
[ ! -e /usr/share/doc/rlock ] || fail "/usr/share/doc/rlock is left after dpkg -r"
echo "removed; none of its $(wc -l <"$work/deb-files") files is left"

step "build the .rpm"
(cd "$build_dir" && cpack -G RPM >/dev/null)
rpm_file=$(ls "$build_dir"/rlock-"$version"-*.rpm)
rpm -qip "$rpm_file" 2>/dev/null | sed -n '/^Name/,/^Description/p'
echo "rpm -qlp:"
rpm_files=$(rpm -qlp "$rpm_file" 2>/dev/null)
echo "${rpm_files//$'\n'/$'\n'  }" | sed '1s/^/  /'
grep -q '^/usr/bin/rlock$' <<<"$rpm_files" || fail "the .rpm has no /usr/bin/rlock"
rpm_requires=$(rpm -qp --requires "$rpm_file" 2>/dev/null)
for lib in $needed; do
  grep -q "^$lib" <<<"$rpm_requires" || fail "the binary loads $lib but the .rpm does not require it"
done

step "build the source tarball, and rlock from it"
(cd "$build_dir" && cpack --config CPackSourceConfig.cmake >/dev/null)
tarball=$build_dir/rlock-$version.tar.gz
tar -tzf "$tarball" >"$work/tar-files"
if grep -E "^rlock-$version/(\.git/|build[^/]*/|_CPack_Packages/)" "$work/tar-files" | head -n 3 | grep .; then
  fail "the source tarball holds build output or .git"
fi
tar -xzf "$tarball" -C "$work"
cmake -S "$work/rlock-$version" -B "$work/tarball-build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DRLOCK_BUILD_TESTS=OFF "$@" >/dev/null
cmake --build "$work/tarball-build" -j"$(nproc)" --target rlock >/dev/null
"$work/tarball-build/rlock" --version | head -n 1
echo "$(wc -l <"$work/tar-files") entries; top level: $(sed -n "s|^rlock-$version/\([^/]*\).*|\1|p" "$work/tar-files" | sort -u | tr '\n' ' ')"

step "package sizes"
for f in "$deb" "$rpm_file" "$tarball"; do
  printf '  %-40s %8s bytes (%s)\n' "$(basename "$f")" "$(stat -c %s "$f")" "$(du -h "$f" | cut -f1)"
done
echo "  installed size (.deb): $(dpkg-deb -f "$deb" Installed-Size) KiB"
echo
echo "ci-packages: OK"
