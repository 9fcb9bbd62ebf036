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
#         floor-copy     bulk only: http://origin:82, https://origin:445 to relay_floor --copy
#                        (read/write instead of splice: the ends' pages come back sooner)
#         intercepted    http://origin:80, https://origin:443 (redirected to proxyd)
#         explicit       http://origin:8080 through proxyd --listen (absolute-form), and
#                        https://origin:8443 through CONNECT
# Columns: small GET keep-alive req/s at 1 and 64 connections, p99 at 64 (ms), bulk MB/s
#          (median of --rounds downloads of --bulk-mib MiB), for HTTP and for TLS; then ratios
#          to direct, to the floor and to explicit. With the bulk, the ends' CPU per MB (nginx's
#          worker and curl, both on CPU 0, from /proc): what a relay in the middle costs them. The downloads go in rounds, each round one
#          download per row, so that a row is never measured in another minute than direct
#          (this shared machine's pace drifts by a quarter between minutes); the bulk ratios to
#          direct are also given round by round, and their median.
#
# Usage: bench/intercept_bench.sh [--duration S] [--rounds N] [--bulk-mib N]   (root: namespaces)
# Needs nginx-light, wrk, curl, nftables, iproute2. Prints figures; never pass/fail. Every
# namespace, process and file it makes is removed on exit.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
# shellcheck source=lib/bench.sh
source "$HERE/lib/bench.sh"
# shellcheck source=lib/netns.sh
source "$HERE/lib/netns.sh"
PROXYD="${PROXYD:-$ROOT/build/proxy/proxyd}"
FLOOR="$(dirname "$PROXYD")/../bench/relay_floor"  # built with proxyd, in the same tree
DUR=8 ROUNDS=5 BULK_MIB=256
while [[ $# -gt 0 ]]; do
  case "$1" in
    --duration) DUR="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --bulk-mib) BULK_MIB="$2"; shift 2 ;;
    *) echo "usage: $0 [--duration S] [--rounds N] [--bulk-mib N]" >&2; exit 2 ;;
  esac
done
[[ $(id -u) == 0 ]] || { echo "run as root: the benchmark builds network namespaces" >&2; exit 1; }
[[ -x "$PROXYD" ]] || { echo "build proxyd first (cmake --build build)" >&2; exit 1; }
[[ -x "$FLOOR" ]] || { echo "no $FLOOR: build the tree (cmake --build build)" >&2; exit 1; }
bench_require wrk curl nft ip openssl taskset nginx
bench_env

TAG="pxb$$"
bench_tmp pxintbench
netns_gateway "$TAG"
C=$NS_C G=$NS_G O=$NS_O
in_ns "$G" nft -f - <<EOF
table ip $TAG {
  chain nat {
    type nat hook prerouting priority dstnat; policy accept;
    iifname "${TAG}gc" tcp dport { 80, 443 } redirect to :3130
    iifname "${TAG}gc" tcp dport { 81, 444 } redirect to :3140
    iifname "${TAG}gc" tcp dport { 82, 445 } redirect to :3150
  }
}
EOF

bench_files "$T/www" "$BULK_MIB"
mkdir -p "$T/nginx"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=bench.test \
  -keyout "$T/nginx/key.pem" -out "$T/nginx/cert.pem" 2>/dev/null
bench_nginx_conf "$T/nginx" \
  "server { listen $ORIGIN:80; listen $ORIGIN:81; listen $ORIGIN:82; listen $ORIGIN:8080;
    root $T/www; }
  server { listen $ORIGIN:443 ssl; listen $ORIGIN:444 ssl; listen $ORIGIN:445 ssl;
    listen $ORIGIN:8443 ssl; root $T/www; }" \
  "ssl_certificate $T/nginx/cert.pem; ssl_certificate_key $T/nginx/key.pem;"
# Started without the in_ns function, so that $! is the server itself (ip netns exec execs it).
ip netns exec "$O" taskset -c 0 /usr/sbin/nginx -c "$T/nginx/nginx.conf" -g 'daemon off;' &
PIDS+=($!)
NGINX_PID=$!

echo 'deny domain blocked.bench' > "$T/bench.policy"
ip netns exec "$G" taskset -c 1 "$PROXYD" --listen $GW:3128 --intercept 0.0.0.0:3130 --admin off \
  --data-dir "$T/var" --connect-ports 8443 --workers 1 --log-level warn \
  --max-conns-per-client 0 --policy "$T/bench.policy" 2>"$T/proxyd.log" &
PX_PID=$!
PIDS+=($PX_PID)
ip netns exec "$G" taskset -c 1 "$FLOOR" 0.0.0.0:3140 2>"$T/floor.log" &
PIDS+=($!)
ip netns exec "$G" taskset -c 1 "$FLOOR" --copy 0.0.0.0:3150 2>"$T/floor-copy.log" &
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
  in_ns "$C" taskset -c 0 wrk -t1 -c"$conns" -d"${DUR}s" --latency "$url" 2>/dev/null | bench_wrk_figures
}
# URL [CURL-ARGS...] -> "MB/s ends-CPU-ms-per-MB" of one download: nginx's workers' CPU (from
# their schedstat) and curl's (its shell's children's, in ticks) over the bytes.
download() {
  local url=$1 before after
  shift
  before=$(ends_cpu_ns)
  # shellcheck disable=SC2016 # $$ is the inner shell's
  in_ns "$C" taskset -c 0 bash -c 'curl -sk --max-time 300 -o /dev/null -w "%{speed_download} %{size_download}\n" "$@" &&
    read -ra s </proc/$$/stat && echo $(( (s[15] + s[16]) * 1000000000 / $(getconf CLK_TCK) ))' _ "$@" "$url" |
    { read -r speed size; read -r curl_ns; after=$(ends_cpu_ns)
      awk -v s="$speed" -v b="$size" -v c="$curl_ns" -v n=$((after - before)) \
        'BEGIN { printf "%.1f %.2f", s / 1e6, (b > 0 ? (c + n) / 1e6 / (b / 1e6) : 0) }'; }
}
ends_cpu_ns() {  # nginx's workers, all of them
  local p ns sum=0
  for p in $(pgrep -P "$NGINX_PID"); do
    ns=$(bench_cpu_ns "$p")
    [[ $ns == - ]] || sum=$((sum + ns))  # a worker gone meanwhile
  done
  echo $sum
}
median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "-" }'; }

declare -A H1 H64 HP99 HBULK S1 S64 SP99 SBULK HURL SURL VIA HCPU SCPU
rows=(direct floor intercepted explicit)
bulk_rows=(direct floor floor-copy intercepted explicit)
HURL[floor-copy]=http://$ORIGIN:82/big SURL[floor-copy]=https://$ORIGIN:445/big VIA[floor-copy]=
for row in "${rows[@]}"; do
  echo "measuring $row ..." >&2
  case $row in
    direct) http=http://$ORIGIN:8080 https=https://$ORIGIN:8443 mode= ;;
    floor) http=http://$ORIGIN:81 https=https://$ORIGIN:444 mode= ;;
    intercepted) http=http://$ORIGIN https=https://$ORIGIN mode= ;;
    explicit) http=http://$ORIGIN:8080 https=https://$ORIGIN:8443 mode=proxy ;;
  esac
  HURL[$row]=$http/big SURL[$row]=$https/big VIA[$row]=${mode:+http://$GW:3128}
  wrk_run "$http/small" 64 $mode >/dev/null  # warm-up
  r=$(wrk_run "$http/small" 1 $mode); H1[$row]=${r%% *}
  r=$(wrk_run "$http/small" 64 $mode); H64[$row]=${r%% *}; HP99[$row]=${r##* }
  if [[ $row == explicit ]]; then
    S1[$row]=-; S64[$row]=-; SP99[$row]=-  # wrk cannot tunnel through CONNECT
  else
    r=$(wrk_run "$https/small" 1); S1[$row]=${r%% *}
    r=$(wrk_run "$https/small" 64); S64[$row]=${r%% *}; SP99[$row]=${r##* }
  fi
done
echo "bulk: $ROUNDS rounds of one $BULK_MIB MiB download per row and scheme ..." >&2
for ((round = 1; round <= ROUNDS; round++)); do
  for row in "${bulk_rows[@]}"; do
    via=()
    [[ -n ${VIA[$row]} ]] && via=(-x "${VIA[$row]}")
    read -r mbs cpu <<<"$(download "${HURL[$row]}" "${via[@]}")"
    HBULK[$row]+=" $mbs" HCPU[$row]+=" $cpu"
    read -r mbs cpu <<<"$(download "${SURL[$row]}" "${via[@]}")"
    SBULK[$row]+=" $mbs" SCPU[$row]+=" $cpu"
  done
done
# Round by round: ROW SCHEME-ARRAY -> "r1 r2 ... (median m)" of ROW / direct.
paired() {
  local -n runs=$2
  local -a a b
  read -ra a <<<"${runs[$1]}"
  read -ra b <<<"${runs[direct]}"
  local i out=()
  for i in "${!a[@]}"; do
    out+=("$(bench_ratio "${a[$i]}" "${b[$i]}")")
  done
  printf '%s (median %s)' "${out[*]}" "$(median <<<"${out[*]}")"
}
declare -A HPAIR SPAIR HRAW SRAW
for row in "${bulk_rows[@]}"; do
  HPAIR[$row]=$(paired "$row" HBULK) SPAIR[$row]=$(paired "$row" SBULK)
  HRAW[$row]=${HBULK[$row]} SRAW[$row]=${SBULK[$row]}
done
for row in "${bulk_rows[@]}"; do
  HBULK[$row]=$(median <<<"${HBULK[$row]}") SBULK[$row]=$(median <<<"${SBULK[$row]}")
  HCPU[$row]=$(median <<<"${HCPU[$row]}") SCPU[$row]=$(median <<<"${SCPU[$row]}")
done
H1[floor-copy]=- H64[floor-copy]=- HP99[floor-copy]=- S1[floor-copy]=- S64[floor-copy]=- SP99[floor-copy]=-
kill -TERM $PX_PID; wait $PX_PID 2>/dev/null || true
logrows=$(python3 -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
print(" ".join("%s=%d" % r for r in db.execute(
    "SELECT scheme || \"/\" || method, count(*) FROM access_log GROUP BY 1 ORDER BY 1")))' \
  "$T/var/proxyd.db" 2>/dev/null || echo "?")

printf '\n| row | HTTP c1 req/s | HTTP c64 req/s | HTTP p99 ms | HTTP bulk MB/s | TLS c1 req/s | TLS c64 req/s | TLS p99 ms | TLS bulk MB/s | ends CPU ms/MB HTTP | ends CPU ms/MB TLS |\n'
printf '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
for row in "${bulk_rows[@]}"; do
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' $row "${H1[$row]}" "${H64[$row]}" \
    "${HP99[$row]}" "${HBULK[$row]}" "${S1[$row]}" "${S64[$row]}" "${SP99[$row]}" "${SBULK[$row]}" \
    "${HCPU[$row]}" "${SCPU[$row]}"
done
ratio() { bench_ratio "$@"; }
printf '\n| ratio | HTTP c1 | HTTP c64 | HTTP bulk | TLS c1 | TLS c64 | TLS bulk |\n|---|---:|---:|---:|---:|---:|---:|\n'
for row in floor floor-copy intercepted explicit; do
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
printf '\nBulk MB/s round by round (%s rounds of %s MiB), and / direct in the same round:\n' "$ROUNDS" "$BULK_MIB"
for row in "${bulk_rows[@]}"; do
  printf '  %-11s HTTP: %-40s TLS: %s\n' "$row" "${HRAW[$row]}" "${SRAW[$row]}"
done
for row in floor floor-copy intercepted explicit; do
  printf '  %-11s / direct HTTP: %s; TLS: %s\n' "$row" "${HPAIR[$row]}" "${SPAIR[$row]}"
done
printf '\naccess-log rows: %s\n' "$logrows"
printf 'proxyd and the floors pinned to CPU 1 (one worker), nginx, wrk and curl to CPU 0; %ss per wrk run.\n' "$DUR"
printf "ends CPU ms/MB: nginx's and curl's CPU over the bytes of a download (median of the rounds).\n"
