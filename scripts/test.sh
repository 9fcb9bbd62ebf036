#!/usr/bin/env bash
# Builds everything with warnings as errors and runs the whole test suite (ctest): unit tests
# (Check), end-to-end tests through the real proxyd, the browser tests, the fuzz replay.
# With PX_SANITIZE=1 it builds into build-san with ASan+UBSan instead.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
dir=build; flags=(-DPX_WERROR=ON)
if [[ "${PX_SANITIZE:-0}" == 1 ]]; then dir=build-san; flags+=(-DPX_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug); fi
if [[ -f tests/e2e/browser/package.json && ! -d tests/e2e/browser/node_modules ]]; then
  (cd tests/e2e/browser && npm install --no-audit --no-fund --loglevel=error)
fi
cmake -S . -B "$dir" "${flags[@]}" >/dev/null
cmake --build "$dir" -j"$(nproc)"
cd "$dir" && ctest --output-on-failure --timeout 900 -j2
