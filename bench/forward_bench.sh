#!/usr/bin/env bash
# forward_bench.sh - a port forward of proxyd and a CONNECT tunnel through it against a direct
# connection, in the same run, in two layouts:
#
#   loopback  nginx on 127.0.0.1:18080; proxyd forwarding 127.0.0.1:18091 to it; the floor
#             (bench/relay_floor.c: two TCP connections, bytes spliced unchanged, no policy or
#             log) on 18092; direct is curl/wrk to nginx. Every byte crosses loopback once
#             direct and twice through a relay, all on one host.
#   gateway   (root) three network namespaces, client -> gateway -> origin (bench/lib/netns.sh):
#             nginx in the origin on 10.201.2.2:8080; in the gateway proxyd forwarding
#             10.201.1.1:2080 to it, with its proxy port 3128 for the CONNECT row, and the
#             floor on 3140; direct is the client reaching the origin routed by the gateway's
#             kernel, which is what a forward replaces on a real gateway.
#
# Rows:    direct, floor, forward (proxyd --forward, access log on, one deny rule in the
#          policy), connect (curl through a CONNECT tunnel of the same proxyd: the splice path
#          forwards share; bulk only, wrk cannot tunnel).
# Columns: small GET keep-alive req/s at 1 and 64 connections, p99 at 64, conn-close req/s at
#          16 (each a new forwarded connection: accept, policy, connect, splice, log row), bulk
#          MB/s (median of 3 downloads of --bulk-mib MiB), the relay's CPU per MB over those
#          downloads (all its threads, /proc/PID/task/*/schedstat: far less moved by other
#          work on the machine than MB/s), and how idle CPU 0 (nginx and the clients) was
#          meanwhile: near 0% on a quiet machine it, not the relay, set the pace. Ratios to
#          direct and to the floor follow, and the load average.
#
# Usage: bench/forward_bench.sh [--duration S] [--bulk-mib N] [--layout loopback|gateway|both]
#                               [--no-pin]
# Default layout: both as root, loopback otherwise. Needs nginx-light, wrk, curl, and for the
# gateway layout iproute2 and root. Prints figures; never pass/fail.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
# shellcheck source=lib/bench.sh
source "$HERE/lib/bench.sh"
PROXYD="${PROXYD:-$ROOT/build/proxy/proxyd}"
FLOOR="$(dirname "$PROXYD")/../bench/relay_floor" # built with proxyd, in the same tree
DUR=8
PIN=1
BULK_MIB=256
LAYOUT=
ARGS=("$@")
usage() { echo "usage: $0 [--duration S] [--bulk-mib N] [--layout loopback|gateway|both] [--no-pin]" >&2; exit 2; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --duration) DUR="$2"; shift 2 ;;
    --bulk-mib) BULK_MIB="$2"; shift 2 ;;
    --layout) LAYOUT="$2"; shift 2 ;;
    --no-pin) PIN=0; shift ;;
    *) usage ;;
  esac
done
[[ -z $LAYOUT ]] && { [[ $(id -u) == 0 ]] && LAYOUT=both || LAYOUT=loopback; }
[[ $LAYOUT =~ ^(loopback|gateway|both)$ ]] || usage
[[ -x "$PROXYD" ]] || { echo "build proxyd first (scripts/run.sh or cmake --build build)" >&2; exit 1; }
[[ -x "$FLOOR" ]] || { echo "no $FLOOR: build the tree (cmake --build build)" >&2; exit 1; }
bench_require wrk curl nginx python3 taskset
if [[ $LAYOUT == both ]]; then
  # Each layout in a process of its own: the loopback one moves into a namespace of its own.
  pass=()
  for ((i = 0; i < ${#ARGS[@]}; i++)); do
    if [[ ${ARGS[i]} == --layout ]]; then ((i++)) || true; else pass+=("${ARGS[i]}"); fi
  done
  bash "$0" "${pass[@]}" --layout loopback
  echo
  bash "$0" "${pass[@]}" --layout gateway
  exit 0
fi
if [[ $LAYOUT == gateway ]]; then
  [[ $(id -u) == 0 ]] || { echo "the gateway layout builds network namespaces: run as root" >&2; exit 1; }
  bench_require ip
else
  bench_private_net "$0" "${ARGS[@]}"
fi
bench_env
bench_pin $PIN
bench_tmp pxfwdbench
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# IN_CLIENT, IN_GW, IN_ORIGIN: the prefix that runs a command where that party is (empty on
# loopback). An array, not a function, so that `"${IN_ORIGIN[@]}" server &` gives the
# server's own PID in $! (ip netns exec execs it).
if [[ $LAYOUT == gateway ]]; then
  source "$HERE/lib/netns.sh"
  netns_gateway "pxf$$"
  IN_CLIENT=(ip netns exec "$NS_C") IN_GW=(ip netns exec "$NS_G") IN_ORIGIN=(ip netns exec "$NS_O")
  ORIGIN_HP=$ORIGIN:8080 FWD_HP=$GW:2080 FLOOR_HP=$GW:3140 PROXY_HP=$GW:3128
  PX_EXTRA=()
else
  IN_CLIENT=() IN_GW=() IN_ORIGIN=()
  ORIGIN_HP=127.0.0.1:18080 FWD_HP=127.0.0.1:18091 FLOOR_HP=127.0.0.1:18092 PROXY_HP=127.0.0.1:18890
  PX_EXTRA=(--allow-loopback-targets)
fi

bench_files "$T/www" "$BULK_MIB"
bench_nginx_conf "$T/nginx" "server { listen $ORIGIN_HP; root $T/www; }"
"${IN_ORIGIN[@]}" taskset -c "$CPU_LOAD" /usr/sbin/nginx -c "$T/nginx/nginx.conf" -g 'daemon off;' &
PIDS+=($!)
for _ in $(seq 50); do "${IN_CLIENT[@]}" curl -sf -o /dev/null "http://$ORIGIN_HP/small" && break; sleep 0.1; done

echo 'deny host-regex (^|\.)localhost$' > "$T/small.policy"
"${IN_GW[@]}" taskset -c "$CPU_PROXY" "$PROXYD" --listen "$PROXY_HP" --admin off --data-dir "$T/var" \
  "${PX_EXTRA[@]}" --connect-ports "${ORIGIN_HP##*:}" --workers $WORKERS --log-level warn \
  --max-conns-per-client 0 --policy "$T/small.policy" --forward "$FWD_HP $ORIGIN_HP" 2>"$T/proxyd.log" &
PX_PID=$!
PIDS+=($PX_PID)
"${IN_GW[@]}" taskset -c "$CPU_PROXY" "$FLOOR" "$FLOOR_HP" "$ORIGIN_HP" 2>"$T/floor.log" &
FLOOR_PID=$!
PIDS+=($FLOOR_PID)
for _ in $(seq 300); do
  "${IN_CLIENT[@]}" curl -sf -o /dev/null "http://$FWD_HP/small" &&
    "${IN_CLIENT[@]}" curl -sf -o /dev/null "http://$FLOOR_HP/small" && break
  kill -0 $PX_PID 2>/dev/null || { cat "$T/proxyd.log" >&2; exit 1; }
  sleep 0.1
done

wrk_run() {  # HOST:PORT CONNS CLOSE -> "req/s p99ms"
  local close=()
  [[ $3 == 1 ]] && close=(-H "Connection: close")
  "${IN_CLIENT[@]}" taskset -c "$CPU_LOAD" wrk -t1 -c"$2" -d"${DUR}s" --latency "${close[@]}" \
    "http://$1/small" 2>/dev/null | bench_wrk_figures
}
LOAD_STAT=cpu
[[ $PIN == 1 ]] && LOAD_STAT=cpu$CPU_LOAD
download() {  # RELAY-PID-OR-0 HOST:PORT [CURL-ARGS...] -> "median-MB/s relay-CPU-ms/MB idle-%"
  local pid=$1 hp=$2 c0=0 c1=0 i0 i1 i mbs
  shift 2
  [[ $pid != 0 ]] && c0=$(bench_cpu_ns "$pid")
  i0=$(bench_idle_ticks $LOAD_STAT)
  mbs=$(for i in 1 2 3; do
    "${IN_CLIENT[@]}" taskset -c "$CPU_LOAD" curl -sf --max-time 300 -o /dev/null -w '%{speed_download}\n' \
      "$@" "http://$hp/big"
  done | bench_median_mbs)
  i1=$(bench_idle_ticks $LOAD_STAT)
  [[ $pid != 0 ]] && c1=$(bench_cpu_ns "$pid")
  awk -v mbs="$mbs" -v pid="$pid" -v c0="$c0" -v c1="$c1" -v mb=$((3 * BULK_MIB * 1048576)) \
    -v i0="$i0" -v i1="$i1" 'BEGIN { printf "%s ", mbs;
      if (pid != 0 && c0 != "-" && c1 != "-") printf "%.3f ", (c1 - c0) / 1e6 / (mb / 1e6); else printf "- ";
      split(i0, a, " "); split(i1, b, " ");
      if (b[2] > a[2]) printf "%.0f", 100 * (b[1] - a[1]) / (b[2] - a[2]); else printf "-" }'
}

declare -A C1 C64 P99 CLOSE BULK CPU IDLE
ROWS=(direct floor forward connect)
for row in "${ROWS[@]}"; do
  echo "measuring $LAYOUT $row ..." >&2
  case $row in
    direct) hp=$ORIGIN_HP pid=0 via=() ;;
    floor) hp=$FLOOR_HP pid=$FLOOR_PID via=() ;;
    forward) hp=$FWD_HP pid=$PX_PID via=() ;;
    connect) hp=$ORIGIN_HP pid=$PX_PID via=(-p -x "http://$PROXY_HP") ;;
  esac
  if [[ $row == connect ]]; then
    C1[$row]=- C64[$row]=- P99[$row]=- CLOSE[$row]=-
  else
    wrk_run "$hp" 64 0 >/dev/null  # warm-up
    r=$(wrk_run "$hp" 1 0); C1[$row]=${r%% *}
    r=$(wrk_run "$hp" 64 0); C64[$row]=${r%% *}; P99[$row]=${r##* }
    r=$(wrk_run "$hp" 16 1); CLOSE[$row]=${r%% *}
  fi
  r=$(download "$pid" "$hp" "${via[@]}")
  read -r BULK[$row] CPU[$row] IDLE[$row] <<<"$r"
done
# Stopped, proxyd's log writer has flushed: one row per forwarded connection.
kill -TERM $PX_PID; wait $PX_PID 2>/dev/null || true
rows=$(python3 -c 'import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute(
    "SELECT count(*) FROM access_log WHERE method = ?", ("FORWARD",)).fetchone()[0])' \
  "$T/var/proxyd.db" 2>/dev/null || echo "?")

case $LAYOUT in
  loopback) printf '\n## loopback (one host: nginx, relays, wrk and curl on 127.0.0.1)\n' ;;
  gateway) printf '\n## gateway (client -> gateway -> origin namespaces; direct = routed by the gateway kernel)\n' ;;
esac
printf '\n| row | small c1 req/s | small c64 req/s | p99 c64 ms | conn-close c16 req/s | bulk MB/s | relay CPU ms/MB | idle %% of %s |\n' \
  "$([[ $PIN == 1 ]] && echo "CPU $CPU_LOAD" || echo "all CPUs")"
printf '|---|---:|---:|---:|---:|---:|---:|---:|\n'
for row in "${ROWS[@]}"; do
  printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$row" "${C1[$row]}" "${C64[$row]}" "${P99[$row]}" \
    "${CLOSE[$row]}" "${BULK[$row]}" "${CPU[$row]}" "${IDLE[$row]}"
done
printf '\n| ratio | c1 | c64 | conn-close | bulk | CPU per MB |\n|---|---:|---:|---:|---:|---:|\n'
for pair in floor/direct forward/direct connect/direct forward/floor connect/floor; do
  a=${pair%/*} b=${pair#*/}
  printf '| %s / %s | %s | %s | %s | %s | %s |\n' "$a" "$b" "$(bench_ratio "${C1[$a]}" "${C1[$b]}")" \
    "$(bench_ratio "${C64[$a]}" "${C64[$b]}")" "$(bench_ratio "${CLOSE[$a]}" "${CLOSE[$b]}")" \
    "$(bench_ratio "${BULK[$a]}" "${BULK[$b]}")" "$(bench_ratio "${CPU[$a]}" "${CPU[$b]}")"
done
echo
echo "access-log rows of forwarded connections: $rows"
echo "(pinning: relays on CPU $CPU_PROXY, nginx/wrk/curl on CPU $CPU_LOAD; $DUR s per wrk run; workers $WORKERS; bulk $BULK_MIB MiB x 3)"
echo "load average before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)"
