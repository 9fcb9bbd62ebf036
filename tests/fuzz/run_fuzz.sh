#!/bin/sh
# run_fuzz.sh [SECONDS]: builds fuzz_h1_request with clang (PX_FUZZ=ON) in $BUILD_DIR
# (default build-fuzz at the repository root) and fuzzes proxy/h1_parse for SECONDS
# (default 300), starting from a copy of the seed corpus. Crash inputs land in
# $BUILD_DIR/tests/fuzz as crash-*; replay one with: fuzz_h1_request crash-<hash>.
set -eu

secs=${1:-300}
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD_DIR:-$root/build-fuzz}

CC=clang cmake -S "$root" -B "$build" -DPX_FUZZ=ON >/dev/null
cmake --build "$build" --target fuzz_h1_request -j"$(nproc)"

work="$build/tests/fuzz/corpus/h1_request"
mkdir -p "$work"
cp "$root"/tests/fuzz/corpus/h1_request/* "$work"/

cd "$build/tests/fuzz"
exec ./fuzz_h1_request -max_total_time="$secs" -max_len=8192 -print_final_stats=1 \
    -dict="$root/tests/fuzz/h1.dict" "$work"
