#!/usr/bin/env bash
# Builds proxyd and runs it with its embedded defaults: proxy on port 3128, admin on
# 127.0.0.1:8080, data in ./var, admin pages from this tree. Extra arguments go to proxyd (see
# --help).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
exec build/proxy/proxyd --static-dir web-admin/static "$@"
