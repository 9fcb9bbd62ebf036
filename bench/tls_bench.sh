#!/usr/bin/env bash
# tls_bench.sh - proxyd's TLS proxy port (--listen-tls) against its plain port and a direct
# connection, in the same run on loopback, and (when /usr/sbin/squid is there) Squid's TLS
# proxy port (https_port) with the same certificate: nginx on 127.0.0.1:18080, proxyd plain on
# 18890 and TLS on 18893 (self-made ECDSA P-256 certificate, access log on, one deny rule),
# Squid TLS on 18894 (access log on, the same deny rule).
#
# Columns: new TLS connections per second to the proxy port (openssl s_time -new: a full
#          handshake and one request each, one client at a time; s_time's own figure of
#          connections per real second), small GETs on one keep-alive connection
#          (bench/lib/keepalive.py, 3000 in a row: req/s, the same Python client for every
#          row), bulk MB/s
#          (median of 3 downloads of 64 MiB) as absolute-form requests and through CONNECT.
#          Ratios against the plain port, and against direct for bulk, follow.
#
# Usage: bench/tls_bench.sh [--time S] [--no-pin] [--no-squid]
# Needs nginx-light, curl, openssl, and squid for its row. As root it runs in a private network
# namespace (loopback only). Prints figures; never pass/fail.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
# shellcheck source=lib/bench.sh
source "$HERE/lib/bench.sh"
PROXYD="${PROXYD:-$ROOT/build/proxy/proxyd}"
TIME=8
PIN=1
SQUID=1
ARGS=("$@")
while [[ $# -gt 0 ]]; do
  case "$1" in
    --time) TIME="$2"; shift 2 ;;
    --no-pin) PIN=0; shift ;;
    --no-squid) SQUID=0; shift ;;
    *) echo "usage: $0 [--time S] [--no-pin] [--no-squid]" >&2; exit 2 ;;
  esac
done
[[ -x "$PROXYD" ]] || { echo "build proxyd first (scripts/run.sh or cmake --build build)" >&2; exit 1; }
bench_require curl nginx openssl python3 taskset
[[ -x /usr/sbin/squid ]] || SQUID=0
bench_private_net "$0" "${ARGS[@]}"
bench_env
bench_pin $PIN
bench_tmp pxtlsbench

bench_files "$T/www" 64
bench_nginx_conf "$T/nginx" "server { listen 127.0.0.1:18080; root $T/www; }"
taskset -c "$CPU_LOAD" /usr/sbin/nginx -c "$T/nginx/nginx.conf" -g 'daemon off;' &
PIDS+=($!)
for _ in $(seq 50); do curl -sf -o /dev/null http://127.0.0.1:18080/small && break; sleep 0.1; done

echo 'deny host-regex (^|\.)localhost$' > "$T/small.policy"
taskset -c "$CPU_PROXY" "$PROXYD" --listen 127.0.0.1:18890 --listen-tls 127.0.0.1:18893 \
  --admin off --data-dir "$T/var" --allow-loopback-targets --connect-ports 18080 \
  --workers $WORKERS --log-level warn --max-conns-per-client 0 --policy "$T/small.policy" \
  2>"$T/proxyd.log" &
PX_PID=$!
PIDS+=($PX_PID)
for _ in $(seq 300); do
  [[ -f "$T/var/tls-cert.pem" ]] && curl -sf -o /dev/null --proxy https://127.0.0.1:18893 \
    --proxy-cacert "$T/var/tls-cert.pem" http://127.0.0.1:18080/small && break
  kill -0 $PX_PID 2>/dev/null || { cat "$T/proxyd.log" >&2; exit 1; }
  sleep 0.1
done
CERT="$T/var/tls-cert.pem"

if [[ $SQUID == 1 ]]; then
  mkdir -p "$T/squid"
  cp "$T/var/tls-cert.pem" "$T/var/tls-key.pem" "$T/squid/"
  chmod 644 "$T/squid/"*
  cat > "$T/squid/squid.conf" <<SQUIDCONF
https_port 127.0.0.1:18894 tls-cert=$T/squid/tls-cert.pem tls-key=$T/squid/tls-key.pem
http_port 127.0.0.1:18895
acl denied dstdom_regex (^|\.)localhost$
acl bench_ports port 18080
acl CONNECT method CONNECT
http_access deny denied
http_access deny CONNECT !bench_ports
http_access allow localhost
http_access deny all
access_log stdio:$T/squid/access.log
cache_log $T/squid/cache.log
cache deny all
cache_mem 0
pid_filename $T/squid/squid.pid
coredump_dir $T/squid
workers 1
max_filedescriptors 16384
SQUIDCONF
  [[ $(id -u) == 0 ]] && chown -R proxy: "$T/squid" 2>/dev/null || true
  taskset -c "$CPU_PROXY" /usr/sbin/squid -N -f "$T/squid/squid.conf" 2>"$T/squid/stderr" &
  PIDS+=($!)
  ok=0
  for _ in $(seq 300); do
    curl -sf -o /dev/null --proxy https://127.0.0.1:18894 --proxy-cacert "$CERT" \
      http://127.0.0.1:18080/small && { ok=1; break; }
    sleep 0.1
  done
  if [[ $ok == 0 ]]; then
    echo "squid's https_port did not answer; no squid row (see $T/squid/cache.log):" >&2
    tail -5 "$T/squid/cache.log" "$T/squid/stderr" >&2 || true
    SQUID=0
  fi
fi

handshakes() {  # PORT -> new TLS connections per second (openssl s_time, one at a time)
  taskset -c "$CPU_LOAD" openssl s_time -connect "127.0.0.1:$1" -new -time "$TIME" \
    -CAfile "$CERT" -www / 2>/dev/null |
    awk '/connections in [0-9.]+ real seconds/ {n = $1; s = $4}
         END {if (s > 0) printf "%.0f", n / s; else printf "-"}'
}
keepalive() {  # [--proxy URL [--cafile PEM]] -> small GETs per second on one keep-alive connection
  taskset -c "$CPU_LOAD" python3 "$HERE/lib/keepalive.py" http://127.0.0.1:18080/small 3000 "$@"
}
download() {  # CURL-PROXY-ARGS... -> median MB/s of 3
  local i speeds=()
  for i in 1 2 3; do
    speeds+=("$(taskset -c "$CPU_LOAD" curl -sf -o /dev/null -w '%{speed_download}' "$@" http://127.0.0.1:18080/big)")
  done
  printf '%s\n' "${speeds[@]}" | sort -n | sed -n 2p | awk '{printf "%.1f", $1 / 1e6}'
}

declare -A HS KA BULK TUN
rows=(direct proxyd-plain proxyd-tls)
[[ $SQUID == 1 ]] && rows+=(squid-tls)
for row in "${rows[@]}"; do
  echo "measuring $row ..." >&2
  case $row in
    direct) args=(); ka=(); HS[$row]="-" ;;
    proxyd-plain) args=(--proxy http://127.0.0.1:18890); ka=("${args[@]}"); HS[$row]="-" ;;
    proxyd-tls) args=(--proxy https://127.0.0.1:18893 --proxy-cacert "$CERT")
      ka=(--proxy https://127.0.0.1:18893 --cafile "$CERT"); HS[$row]=$(handshakes 18893) ;;
    squid-tls) args=(--proxy https://127.0.0.1:18894 --proxy-cacert "$CERT")
      ka=(--proxy https://127.0.0.1:18894 --cafile "$CERT"); HS[$row]=$(handshakes 18894) ;;
  esac
  KA[$row]=$(keepalive "${ka[@]}")
  BULK[$row]=$(download "${args[@]}")
  if [[ $row == direct ]]; then TUN[$row]="-"; else TUN[$row]=$(download -p "${args[@]}"); fi
done

printf '\n| row | new TLS conns/s | keep-alive small req/s | bulk MB/s | bulk via CONNECT MB/s |\n'
printf '|---|---:|---:|---:|---:|\n'
for row in "${rows[@]}"; do
  printf '| %s | %s | %s | %s | %s |\n' "$row" "${HS[$row]}" "${KA[$row]}" "${BULK[$row]}" "${TUN[$row]}"
done
ratio() { bench_ratio "$@"; }
printf '\nproxyd-tls / proxyd-plain: keep-alive %s, bulk %s, CONNECT %s\n' \
  "$(ratio "${KA[proxyd-tls]}" "${KA[proxyd-plain]}")" "$(ratio "${BULK[proxyd-tls]}" "${BULK[proxyd-plain]}")" \
  "$(ratio "${TUN[proxyd-tls]}" "${TUN[proxyd-plain]}")"
printf 'proxyd-tls / direct: keep-alive %s, bulk %s\n' \
  "$(ratio "${KA[proxyd-tls]}" "${KA[direct]}")" "$(ratio "${BULK[proxyd-tls]}" "${BULK[direct]}")"
if [[ $SQUID == 1 ]]; then
  printf 'proxyd-tls / squid-tls: new TLS conns %s, keep-alive %s, bulk %s, CONNECT %s\n' \
    "$(ratio "${HS[proxyd-tls]}" "${HS[squid-tls]}")" "$(ratio "${KA[proxyd-tls]}" "${KA[squid-tls]}")" \
    "$(ratio "${BULK[proxyd-tls]}" "${BULK[squid-tls]}")" "$(ratio "${TUN[proxyd-tls]}" "${TUN[squid-tls]}")"
fi
echo "(pinning: proxy on CPU $CPU_PROXY, nginx/curl/openssl on CPU $CPU_LOAD; $TIME s per s_time run; workers $WORKERS)"
