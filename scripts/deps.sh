#!/usr/bin/env bash
# Installs the Debian packages proxyd needs to build, run and test, skipping those present.
# Usage: scripts/deps.sh [build|test]   (test adds what the test suite needs)
set -euo pipefail
want=(gcc make cmake pkg-config libmicrohttpd-dev libc-ares-dev libsqlite3-dev libpcre2-dev
      libidn2-dev libsodium-dev libjansson-dev libcurl4-gnutls-dev libsystemd-dev
      libgnutls28-dev libpq-dev check python3)
if [[ "${1:-build}" == test ]]; then
  want+=(clang clang-format libclang-rt-14-dev chromium nodejs npm sqlite3 curl
        openssl python3-prometheus-client nftables iproute2 postgresql)
fi
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# A node from elsewhere (e.g. a preinstalled toolchain) is as good as Debian's.
if command -v node >/dev/null && command -v npm >/dev/null; then
  missing=("${missing[@]/nodejs/}"); missing=("${missing[@]/npm/}")
fi
read -ra missing <<<"${missing[*]}"
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}" >&2
  sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
