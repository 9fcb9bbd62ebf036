#!/usr/bin/env bash
# Builds everything with warnings as errors and runs the whole test suite (ctest): unit tests
# (Check), end-to-end tests through the real proxyd, the browser tests, the fuzz replay.
# With PX_SANITIZE=1 it builds into build-san with ASan+UBSan instead.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
dir=build; flags=(-DPX_WERROR=ON)
if [[ "${PX_SANITIZE:-0}" == 1 ]]; then dir=build-san; flags+=(-DPX_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug); fi
# The browser test's packages, exactly as locked; again whenever the lock file changes.
browser=tests/e2e/browser
if [[ -f $browser/package-lock.json ]] &&
   ! cmp -s $browser/package-lock.json $browser/node_modules/.proxyd-installed-lock; then
  (cd $browser && npm ci --no-audit --no-fund --loglevel=error &&
   cp package-lock.json node_modules/.proxyd-installed-lock)
fi
cmake -S . -B "$dir" "${flags[@]}" >/dev/null
cmake --build "$dir" -j"$(nproc)"
cd "$dir" && ctest --output-on-failure --timeout 900 -j2
