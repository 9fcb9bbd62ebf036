#!/usr/bin/env bash
# idle_cpu.sh - the CPU time proxyd spends with no traffic at all (what an office box burns
# doing nothing): its clock-driven work, the poll thread's reads every 250 ms, the log
# writer's timers and retention, the heartbeat. Each PROXYD given is started side by side
# (own ports and data folder, SQLite log, admin server on), left 5 s to settle, and its
# utime + stime from /proc/PID/stat read over the window; side by side so two builds meet the
# same machine.
#
# Usage: bench/idle_cpu.sh [--seconds N] PROXYD [PROXYD...]   (default 60 s)
# Only 127.0.0.1 is used.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_WINDOW=60
if [[ ${1:-} == --seconds ]]; then SECONDS_WINDOW="$2"; shift 2; fi
[[ $# -gt 0 ]] || { echo "usage: $0 [--seconds N] PROXYD [PROXYD...]" >&2; exit 2; }

T="$(mktemp -d /tmp/pxidle.XXXXXX)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$T"; }
trap cleanup EXIT INT TERM
TICK=$(getconf CLK_TCK)

i=0
for px in "$@"; do
  [[ -x "$px" ]] || { echo "no proxyd at $px" >&2; exit 1; }
  "$px" --listen 127.0.0.1:$((18960 + 2 * i)) --admin 127.0.0.1:$((18961 + 2 * i)) \
    --static-dir "$ROOT/web-admin/static" --data-dir "$T/var$i" --log-level warn 2>"$T/err$i" &
  PIDS+=($!)
  i=$((i + 1))
done
sleep 5
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }  # utime + stime, in ticks
# The scheduler's run time of every thread, in ns: the ticks above are 10 ms each, coarse for
# the few hundred ms an idle minute holds.
run_ns() { cat /proc/"$1"/task/*/schedstat | awk '{ n += $1 } END { printf "%d\n", n }'; }
declare -a start start_ns
for k in "${!PIDS[@]}"; do
  kill -0 "${PIDS[$k]}" 2>/dev/null || { cat "$T/err$k" >&2; exit 1; }
  start[$k]=$(cpu "${PIDS[$k]}")
  start_ns[$k]=$(run_ns "${PIDS[$k]}")
done
sleep "$SECONDS_WINDOW"
printf '| proxyd | utime + stime over %d s (ms) | threads'"'"' run time (schedstat, ms) | CPU share | RSS at the end (KiB) |\n' "$SECONDS_WINDOW"
printf '|---|---:|---:|---:|---:|\n'
k=0
for px in "$@"; do
  ticks=$(($(cpu "${PIDS[$k]}") - start[k]))
  ns=$(($(run_ns "${PIDS[$k]}") - start_ns[k]))
  rss=$(awk '/^VmRSS/ { print $2 }' "/proc/${PIDS[$k]}/status")
  awk -v p="$px" -v t="$ticks" -v hz="$TICK" -v ns="$ns" -v s="$SECONDS_WINDOW" -v rss="$rss" \
    'BEGIN { printf "| %s | %d | %.1f | %.3f%% | %d |\n", p, t * 1000 / hz, ns / 1e6, ns / 1e7 / s, rss }'
  k=$((k + 1))
done
