#!/usr/bin/env bash
# forward_bench.sh - a port forward of proxyd against a direct connection, in the same run on
# loopback: nginx on 127.0.0.1:18080, and proxyd forwarding 127.0.0.1:18091 to it
# (`--forward '127.0.0.1:18091 127.0.0.1:18080'`, access log on, one deny rule in the policy).
#
# Columns: small GET keep-alive req/s at 1 and 64 connections, p99 at 64, conn-close req/s
#          at 16 (each a new forwarded connection: accept, policy, connect, splice, log row),
#          bulk MB/s (median of 3 downloads of 64 MiB). Ratios forward / direct follow, and for
#          scale the same download through a CONNECT tunnel of the same proxyd (the splice
#          path forwards share).
#
# Usage: bench/forward_bench.sh [--duration S] [--no-pin]
# Needs nginx-light, wrk, curl (apt-get install nginx-light wrk curl). As root it runs in a
# private network namespace (loopback only). Prints figures; never pass/fail.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
PROXYD="${PROXYD:-$ROOT/build/proxy/proxyd}"
DUR=8
PIN=1
ARGS=("$@")
while [[ $# -gt 0 ]]; do
  case "$1" in
    --duration) DUR="$2"; shift 2 ;;
    --no-pin) PIN=0; shift ;;
    *) echo "usage: $0 [--duration S] [--no-pin]" >&2; exit 2 ;;
  esac
done
[[ -x "$PROXYD" ]] || { echo "build proxyd first (scripts/run.sh or cmake --build build)" >&2; exit 1; }
for t in wrk curl nginx python3 taskset; do
  command -v "$t" >/dev/null || [[ -x /usr/sbin/$t ]] || { echo "missing $t (apt-get install nginx-light wrk curl)" >&2; exit 1; }
done
if [[ $(id -u) == 0 && -z "${BENCH_IN_NETNS:-}" ]] && unshare -n true 2>/dev/null; then
  exec unshare -n env BENCH_IN_NETNS=1 bash "$0" "${ARGS[@]}"
fi
[[ -n "${BENCH_IN_NETNS:-}" ]] && ip link set lo up
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy no_proxy
ulimit -n 16384 2>/dev/null || true

if [[ $PIN == 1 ]]; then CPU_PROXY=1; CPU_LOAD=0; WORKERS=1; else CPU_PROXY=0-1; CPU_LOAD=0-1; WORKERS=2; fi
T="$(mktemp -d /tmp/pxfwdbench.XXXXXX)"
chmod 755 "$T"  # nginx workers run as nobody
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$T"; }
trap cleanup EXIT INT TERM

mkdir -p "$T/www" "$T/nginx"
head -c 1024 /dev/zero | tr '\0' x > "$T/www/small"
head -c $((64 * 1024 * 1024)) /dev/urandom > "$T/www/big"
cat > "$T/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log error;
events { worker_connections 16384; }
http {
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  sendfile on;
  client_body_temp_path $T/nginx; proxy_temp_path $T/nginx; fastcgi_temp_path $T/nginx;
  uwsgi_temp_path $T/nginx; scgi_temp_path $T/nginx;
  server { listen 127.0.0.1:18080; root $T/www; }
}
EOF
taskset -c "$CPU_LOAD" /usr/sbin/nginx -c "$T/nginx/nginx.conf" -g 'daemon off;' &
PIDS+=($!)
for _ in $(seq 50); do curl -sf -o /dev/null http://127.0.0.1:18080/small && break; sleep 0.1; done

echo 'deny host-regex (^|\.)localhost$' > "$T/small.policy"
FWD_PORT=18091
taskset -c "$CPU_PROXY" "$PROXYD" --listen 127.0.0.1:18890 --admin off --data-dir "$T/var" \
  --allow-loopback-targets --connect-ports 18080 --workers $WORKERS --log-level warn --max-conns-per-client 0 \
  --policy "$T/small.policy" --forward "127.0.0.1:$FWD_PORT 127.0.0.1:18080" 2>"$T/proxyd.log" &
PX_PID=$!
PIDS+=($PX_PID)
for _ in $(seq 300); do
  curl -sf -o /dev/null http://127.0.0.1:$FWD_PORT/small && break
  kill -0 $PX_PID 2>/dev/null || { cat "$T/proxyd.log" >&2; exit 1; }
  sleep 0.1
done

wrk_run() {  # PORT CONNS CLOSE -> "req/s p99ms"
  local port=$1 conns=$2 close=() out
  [[ $3 == 1 ]] && close=(-H "Connection: close")
  out=$(taskset -c "$CPU_LOAD" wrk -t1 -c"$conns" -d"${DUR}s" --latency "${close[@]}" \
    "http://127.0.0.1:$port/small" 2>/dev/null)
  awk '/^Requests\/sec/ {r = $2}
       /^ +99%/ {v = $2; if (v ~ /us$/) m = v / 1000; else if (v ~ /ms$/) m = v + 0; else m = v * 1000}
       END {printf "%.0f %.2f", r, m}' <<<"$out"
}
download() {  # PORT [CURL-ARGS...] -> median MB/s of 3
  local i speeds=() port=$1
  shift
  for i in 1 2 3; do
    speeds+=("$(taskset -c "$CPU_LOAD" curl -s -o /dev/null -w '%{speed_download}' "$@" "http://127.0.0.1:$port/big")")
  done
  printf '%s\n' "${speeds[@]}" | sort -n | sed -n 2p | awk '{printf "%.1f", $1 / 1e6}'
}

declare -A C1 C64 P99 CLOSE BULK
for row in direct forward; do
  echo "measuring $row ..." >&2
  port=18080; [[ $row == forward ]] && port=$FWD_PORT
  wrk_run $port 64 0 >/dev/null; sleep 0.2  # warm-up
  r=$(wrk_run $port 1 0); C1[$row]=${r%% *}
  r=$(wrk_run $port 64 0); C64[$row]=${r%% *}; P99[$row]=${r##* }
  r=$(wrk_run $port 16 1); CLOSE[$row]=${r%% *}
  BULK[$row]=$(download $port)
done
echo "measuring CONNECT ..." >&2
TUNNEL=$(download 18080 -p -x 127.0.0.1:18890)
# Stopped, proxyd's log writer has flushed: one row per forwarded connection.
kill -TERM $PX_PID; wait $PX_PID 2>/dev/null || true
rows=$(python3 -c 'import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute(
    "SELECT count(*) FROM access_log WHERE method = ?", ("FORWARD",)).fetchone()[0])' \
  "$T/var/proxyd.db" 2>/dev/null || echo "?")

printf '\n| row | small c1 req/s | small c64 req/s | p99 c64 ms | conn-close c16 req/s | bulk MB/s |\n'
printf '|---|---:|---:|---:|---:|---:|\n'
for row in direct forward; do
  printf '| %s | %s | %s | %s | %s | %s |\n' "$row" "${C1[$row]}" "${C64[$row]}" "${P99[$row]}" \
    "${CLOSE[$row]}" "${BULK[$row]}"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0) printf "%.2f", a / b; else printf "-" }'; }
printf '\nforward / direct: c1 %s, c64 %s, conn-close %s, bulk %s\n' \
  "$(ratio "${C1[forward]}" "${C1[direct]}")" "$(ratio "${C64[forward]}" "${C64[direct]}")" \
  "$(ratio "${CLOSE[forward]}" "${CLOSE[direct]}")" "$(ratio "${BULK[forward]}" "${BULK[direct]}")"
echo "bulk through a CONNECT tunnel of the same proxyd: $TUNNEL MB/s ($(ratio "$TUNNEL" "${BULK[direct]}") of direct)"
echo "access-log rows of forwarded connections: $rows"
echo "(pinning: proxy on CPU $CPU_PROXY, nginx/wrk/curl on CPU $CPU_LOAD; $DUR s per wrk run; workers $WORKERS)"
