#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what rlock needs to build and test, from Debian/Ubuntu packages. Idempotent: does
# nothing when everything is already there.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  libhiredis-dev libcli11-dev libfmt-dev doctest-dev libssl-dev
  openssl ca-certificates
  redis-server redis-tools
  asciidoctor
  python3 python3-redis python3-yaml
  tmux procps
)
# CI adds its own tools (clang for the sanitizer and fuzz builds, clang-tidy, clang-format)
# through RLOCK_DEPS_EXTRA, so that the quick start installs only what it needs.
if [ "${RLOCK_DEPS_EXTRA:-}" != "" ]; then
  read -r -a extra <<<"$RLOCK_DEPS_EXTRA"
  packages+=("${extra[@]}")
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
