#!/usr/bin/env bash
# intercept_bench.sh - intercepted HTTP and TLS against the same traffic routed straight through
# the same gateway, against the floor of any relay there, and against explicit proxying, in one
# run. Three network namespaces (client, gateway, origin; addresses 10.201.x.0/24 that exist only
# inside them): nginx in the origin on ports 80 and 443 (redirected by the gateway's nftables
# rule to proxyd --intercept), 81 and 444 (redirected to the floor) and 8080 and 8443 (the same
# files, routed without interception: "direct"), proxyd in the gateway with its access log on
# and one deny rule, wrk and curl in the client.
#
# Rows:   direct         http://origin:8080, https://origin:8443 (routed by the gateway: one TCP
#                        connection, forwarded by the gateway's kernel)
#         floor          http://origin:81, https://origin:444, redirected to bench/relay_floor.c
#                        (two TCP connections, bytes spliced unchanged: no parsing, rules or log),
#                        what ending and re-opening the connection costs in this kernel path
#         intercepted    http://origin:80, https://origin:443 (redirected to proxyd)
#         explicit       http://origin:8080 through proxyd --listen (absolute-form), and
#                        https://origin:8443 through CONNECT
# Columns: small GET keep-alive req/s at 1 and 64 connections, p99 at 64 (ms), bulk MB/s
#          (median of 3 downloads of 64 MiB), for HTTP and for TLS; then ratios to direct, to
#          the floor and to explicit.
#
# Usage: bench/intercept_bench.sh [--duration S]      (root: it makes namespaces)
# Needs nginx-light, wrk, curl, nftables, iproute2. Prints figures; never pass/fail. Every
# namespace, process and file it makes is removed on exit.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
PROXYD="${PROXYD:-$ROOT/build/proxy/proxyd}"
FLOOR="$(dirname "$PROXYD")/../bench/relay_floor"  # built with proxyd, in the same tree
DUR=8
while [[ $# -gt 0 ]]; do
  case "$1" in
    --duration) DUR="$2"; shift 2 ;;
    *) echo "usage: $0 [--duration S]" >&2; exit 2 ;;
  esac
done
[[ $(id -u) == 0 ]] || { echo "run as root: the benchmark builds network namespaces" >&2; exit 1; }
[[ -x "$PROXYD" ]] || { echo "build proxyd first (cmake --build build)" >&2; exit 1; }
[[ -x "$FLOOR" ]] || { echo "no $FLOOR: build the tree (cmake --build build)" >&2; exit 1; }
for t in wrk curl nft ip openssl taskset; do
  command -v "$t" >/dev/null || { echo "missing $t (apt-get install nginx-light wrk curl nftables iproute2)" >&2; exit 1; }
done
[[ -x /usr/sbin/nginx ]] || { echo "missing nginx (apt-get install nginx-light)" >&2; exit 1; }
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy no_proxy

TAG="pxb$$"
C="${TAG}c" G="${TAG}g" O="${TAG}o"
CLIENT=10.201.1.2 GW=10.201.1.1 GWO=10.201.2.1 ORIGIN=10.201.2.2
T="$(mktemp -d /tmp/pxintbench.XXXXXX)"
chmod 755 "$T"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for ns in "$C" "$G" "$O"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$T"
}
trap cleanup EXIT INT TERM
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

for ns in "$C" "$G" "$O"; do ip netns add "$ns"; in_ns "$ns" ip link set lo up; done
ip link add "${TAG}cg" netns "$C" type veth peer name "${TAG}gc" netns "$G"
ip link add "${TAG}og" netns "$O" type veth peer name "${TAG}go" netns "$G"
in_ns "$C" ip addr add $CLIENT/24 dev "${TAG}cg"; in_ns "$C" ip link set "${TAG}cg" up
in_ns "$G" ip addr add $GW/24 dev "${TAG}gc"; in_ns "$G" ip link set "${TAG}gc" up
in_ns "$G" ip addr add $GWO/24 dev "${TAG}go"; in_ns "$G" ip link set "${TAG}go" up
in_ns "$O" ip addr add $ORIGIN/24 dev "${TAG}og"; in_ns "$O" ip link set "${TAG}og" up
in_ns "$C" ip route add default via $GW
in_ns "$O" ip route add default via $GWO
in_ns "$G" sysctl -qw net.ipv4.ip_forward=1
in_ns "$G" nft -f - <<EOF
table ip $TAG {
  chain nat {
    type nat hook prerouting priority dstnat; policy accept;
    iifname "${TAG}gc" tcp dport { 80, 443 } redirect to :3130
    iifname "${TAG}gc" tcp dport { 81, 444 } redirect to :3140
  }
}
EOF

mkdir -p "$T/www" "$T/nginx"
head -c 1024 /dev/zero | tr '\0' x > "$T/www/small"
head -c $((64 * 1024 * 1024)) /dev/urandom > "$T/www/big"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=bench.test \
  -keyout "$T/nginx/key.pem" -out "$T/nginx/cert.pem" 2>/dev/null
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
  ssl_certificate $T/nginx/cert.pem;
  ssl_certificate_key $T/nginx/key.pem;
  server { listen $ORIGIN:80; listen $ORIGIN:81; listen $ORIGIN:8080; root $T/www; }
  server { listen $ORIGIN:443 ssl; listen $ORIGIN:444 ssl; listen $ORIGIN:8443 ssl; root $T/www; }
}
EOF
# Started without the in_ns function, so that $! is the server itself (ip netns exec execs it).
ip netns exec "$O" taskset -c 0 /usr/sbin/nginx -c "$T/nginx/nginx.conf" -g 'daemon off;' &
PIDS+=($!)

echo 'deny domain blocked.bench' > "$T/bench.policy"
ip netns exec "$G" taskset -c 1 "$PROXYD" --listen $GW:3128 --intercept 0.0.0.0:3130 --admin off \
  --data-dir "$T/var" --connect-ports 8443 --workers 1 --log-level warn \
  --max-conns-per-client 0 --policy "$T/bench.policy" 2>"$T/proxyd.log" &
PX_PID=$!
PIDS+=($PX_PID)
ip netns exec "$G" taskset -c 1 "$FLOOR" 0.0.0.0:3140 2>"$T/floor.log" &
PIDS+=($!)
for _ in $(seq 300); do
  in_ns "$C" curl -sf --max-time 10 -o /dev/null http://$ORIGIN/small && break
  kill -0 $PX_PID 2>/dev/null || { cat "$T/proxyd.log" >&2; exit 1; }
  sleep 0.1
done

wrk_run() {  # URL CONNS [proxy] -> "req/s p99ms"
  local url=$1 conns=$2 out
  if [[ ${3:-} == proxy ]]; then
    out=$(BENCH_URL="$url" in_ns "$C" taskset -c 0 wrk -t1 -c"$conns" -d"${DUR}s" \
      -s "$HERE/lib/absolute.lua" "http://$GW:3128" 2>/dev/null)
    awk '/^RESULT/ {printf "%s %s", $2, $3}' <<<"$out"
    return
  fi
  out=$(in_ns "$C" taskset -c 0 wrk -t1 -c"$conns" -d"${DUR}s" --latency "$url" 2>/dev/null)
  awk '/^Requests\/sec/ {r = $2}
       /^ +99%/ {v = $2; if (v ~ /us$/) m = v / 1000; else if (v ~ /ms$/) m = v + 0; else m = v * 1000}
       END {printf "%.0f %.2f", r, m}' <<<"$out"
}
download() {  # URL [CURL-ARGS...] -> median MB/s of 3
  local i speeds=() url=$1
  shift
  for i in 1 2 3; do
    speeds+=("$(in_ns "$C" taskset -c 0 curl -sk --max-time 300 -o /dev/null -w '%{speed_download}' "$@" "$url")")
  done
  printf '%s\n' "${speeds[@]}" | sort -n | sed -n 2p | awk '{printf "%.1f", $1 / 1e6}'
}

declare -A H1 H64 HP99 HBULK S1 S64 SP99 SBULK
for row in direct floor intercepted explicit; do
  echo "measuring $row ..." >&2
  case $row in
    direct) http=http://$ORIGIN:8080 https=https://$ORIGIN:8443 via=() mode= ;;
    floor) http=http://$ORIGIN:81 https=https://$ORIGIN:444 via=() mode= ;;
    intercepted) http=http://$ORIGIN https=https://$ORIGIN via=() mode= ;;
    explicit) http=http://$ORIGIN:8080 https=https://$ORIGIN:8443 via=(-x http://$GW:3128) mode=proxy ;;
  esac
  wrk_run "$http/small" 64 $mode >/dev/null  # warm-up
  r=$(wrk_run "$http/small" 1 $mode); H1[$row]=${r%% *}
  r=$(wrk_run "$http/small" 64 $mode); H64[$row]=${r%% *}; HP99[$row]=${r##* }
  HBULK[$row]=$(download "$http/big" "${via[@]}")
  if [[ $row == explicit ]]; then
    S1[$row]=-; S64[$row]=-; SP99[$row]=-  # wrk cannot tunnel through CONNECT
  else
    r=$(wrk_run "$https/small" 1); S1[$row]=${r%% *}
    r=$(wrk_run "$https/small" 64); S64[$row]=${r%% *}; SP99[$row]=${r##* }
  fi
  SBULK[$row]=$(download "$https/big" "${via[@]}")
done
kill -TERM $PX_PID; wait $PX_PID 2>/dev/null || true
rows=$(python3 -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
print(" ".join("%s=%d" % r for r in db.execute(
    "SELECT scheme || \"/\" || method, count(*) FROM access_log GROUP BY 1 ORDER BY 1")))' \
  "$T/var/proxyd.db" 2>/dev/null || echo "?")

printf '\n| row | HTTP c1 req/s | HTTP c64 req/s | HTTP p99 ms | HTTP bulk MB/s | TLS c1 req/s | TLS c64 req/s | TLS p99 ms | TLS bulk MB/s |\n'
printf '|---|---:|---:|---:|---:|---:|---:|---:|---:|\n'
for row in direct floor intercepted explicit; do
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' $row "${H1[$row]}" "${H64[$row]}" \
    "${HP99[$row]}" "${HBULK[$row]}" "${S1[$row]}" "${S64[$row]}" "${SP99[$row]}" "${SBULK[$row]}"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0 && a != "-") printf "%.2f", a / b; else printf "-" }'; }
printf '\n| ratio | HTTP c1 | HTTP c64 | HTTP bulk | TLS c1 | TLS c64 | TLS bulk |\n|---|---:|---:|---:|---:|---:|---:|\n'
for row in floor intercepted explicit; do
  printf '| %s / direct | %s | %s | %s | %s | %s | %s |\n' $row "$(ratio "${H1[$row]}" "${H1[direct]}")" \
    "$(ratio "${H64[$row]}" "${H64[direct]}")" "$(ratio "${HBULK[$row]}" "${HBULK[direct]}")" \
    "$(ratio "${S1[$row]}" "${S1[direct]}")" "$(ratio "${S64[$row]}" "${S64[direct]}")" \
    "$(ratio "${SBULK[$row]}" "${SBULK[direct]}")"
done
printf '| intercepted / floor | %s | %s | %s | %s | %s | %s |\n' \
  "$(ratio "${H1[intercepted]}" "${H1[floor]}")" "$(ratio "${H64[intercepted]}" "${H64[floor]}")" \
  "$(ratio "${HBULK[intercepted]}" "${HBULK[floor]}")" "$(ratio "${S1[intercepted]}" "${S1[floor]}")" \
  "$(ratio "${S64[intercepted]}" "${S64[floor]}")" "$(ratio "${SBULK[intercepted]}" "${SBULK[floor]}")"
printf '| intercepted / explicit | %s | %s | %s | | | %s |\n' \
  "$(ratio "${H1[intercepted]}" "${H1[explicit]}")" "$(ratio "${H64[intercepted]}" "${H64[explicit]}")" \
  "$(ratio "${HBULK[intercepted]}" "${HBULK[explicit]}")" "$(ratio "${SBULK[intercepted]}" "${SBULK[explicit]}")"
printf '\naccess-log rows: %s\n' "$rows"
printf 'proxyd and the floor pinned to CPU 1 (one worker), nginx, wrk and curl to CPU 0; %ss per wrk run.\n' "$DUR"
