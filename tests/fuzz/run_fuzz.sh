#!/bin/sh
# run_fuzz.sh [SECONDS] [TARGET]: builds the libFuzzer targets with clang (PX_FUZZ=ON) in
# $BUILD_DIR (default build-fuzz at the repository root) and runs fuzz_TARGET (default
# h1_request; see FUZZ_TARGETS in CMakeLists.txt) for SECONDS (default 300), starting from a
# copy of its seed corpus corpus/TARGET. Crash inputs land in $BUILD_DIR/tests/fuzz as
# crash-*; replay one with: fuzz_TARGET crash-<hash>.
set -eu

secs=${1:-300}
name=${2:-h1_request}
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD_DIR:-$root/build-fuzz}

CC=clang cmake -S "$root" -B "$build" -DPX_FUZZ=ON >/dev/null
cmake --build "$build" --target "fuzz_$name" -j"$(nproc)"

work="$build/tests/fuzz/corpus/$name"
mkdir -p "$work"
cp "$root/tests/fuzz/corpus/$name"/* "$work"/

cd "$build/tests/fuzz"
# the dictionary of the target's family: h1.dict for h1_*, acl.dict for acl_*
exec "./fuzz_$name" -max_total_time="$secs" -max_len=8192 -print_final_stats=1 \
    -dict="$root/tests/fuzz/${name%%_*}.dict" "$work"
