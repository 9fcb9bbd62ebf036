#!/usr/bin/env bash
# inspect_bench.sh - HTTPS through proxyd's inspection (the tunnel decrypted, each request
# inside decided and logged, the origin's certificate verified) against the same through
# Squid's ssl-bump, and proxyd's un-inspected CONNECT (spliced after the SNI peek) against a
# direct download, in one run on loopback: nginx HTTPS on 127.0.0.1:18443 (certificate for
# 127.0.0.1 from a bench CA, which proxyd and Squid trust for upstream), proxyd splicing on
# 18890 and inspecting on 18891 (a local CA in its data folder, access log on, one deny
# rule), Squid ssl-bump on 18895 (squid-openssl: the same CA, access log on).
#
# Columns: new HTTPS connections per second (bench/lib/tls_handshakes.py: one client, one at
#          a time, each a CONNECT, a full TLS handshake with the certificate presented for
#          the host, and one 1 KiB GET; through inspection that is two handshakes and a
#          minted certificate from the cache for the proxy); bulk MB/s (median of 3 curl
#          downloads of 256 MiB over HTTPS; --bulk-mib N for another size: 64 MiB took about
#          0.1 s at 700 MB/s, where 10 ms of scheduling delay is 10% of a row); and the
#          proxy's CPU per MB over those downloads (milliseconds of CPU time of all its
#          threads per MB, from /proc/PID/task/*/schedstat), which other work on the machine
#          moves far less than MB/s; and how idle the CPU of curl and nginx was meanwhile
#          (pinned: CPU 0, from /proc/stat): near 0% it, not the proxy, set the pace (on a
#          quiet machine; other work fills it too). Ratios follow.
# The row proxyd-inspect-tls is the inspected tunnel inside TLS to proxyd's --listen-tls port
# (curl --proxy https://... --proxy-cacert; two sessions on the client's socket).
# A second bulk table has the same rows with a lean client and origin instead of curl and
# nginx (bench/tls_bulk.c on GnuTLS, origin on 127.0.0.1:18444: a static buffer out, each
# record dropped where GnuTLS decrypted it): curl and nginx together use more CPU per MB than
# proxyd, so on CPU 0 they, not the proxy, can set the curl table's pace. Both ends of it allow
# TLS 1.3 with AES-128-GCM only, so every hop of every row uses that one cipher (the curl table
# has each program's own choice). Columns: bulk MB/s (median of 3 downloads of the same size),
# the proxy's, the client's and the origin's CPU ms per MB, and CPU 0's idle share. Pinned, it
# has one more row, direct-2cpu: the client on CPU 0 and a second lean origin on the proxy's
# CPU 1, so that each byte crosses between the CPUs once as it does through a proxy (direct
# keeps both ends on CPU 0); splice / direct-2cpu is the proxy's share of the splice gap.
# A third table puts the un-inspected CONNECT (proxyd-splice) beside direct and beside the floor
# (bench/relay_floor.c: a null relay on 127.0.0.1:18897 to nginx and 18898 to the lean origin,
# pinned as proxyd is: two TCP connections spliced, no parsing, rules or log), with curl and with
# the lean pair, in --rounds rounds of one download per row (default 5), so that the rows share
# each minute's pace; it gives each row's median and each round's ratios. floor / direct is what
# a relay in the middle costs in this layout whoever writes it; splice / floor is proxyd's share.
# With --profile DIR, four more inspected downloads each through proxyd's plain port, its
# TLS port and Squid run under perf record -g (DIR/perf-proxyd.txt, perf-proxyd-tls.txt,
# perf-squid.txt: shares by library and by symbol), one more each under strace -c
# (DIR/syscalls-*.txt: system calls per MB), and DIR/ciphers.txt has the suites negotiated on
# each side.
#
# Usage: bench/inspect_bench.sh [--time S] [--bulk-mib N] [--rounds N] [--no-pin] [--no-squid]
#                               [--profile DIR]
# Needs nginx-light, curl, openssl, python3; Squid's row needs squid-openssl (Debian's
# GnuTLS-flavoured squid has no ssl-bump): apt-get install squid-openssl (it replaces squid).
# As root it runs in a private network namespace (loopback only). Prints figures; never
# pass/fail.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
# shellcheck source=lib/bench.sh
source "$HERE/lib/bench.sh"
PROXYD="${PROXYD:-$ROOT/build/proxy/proxyd}"
TIME=8
PIN=1
SQUID=1
PROFILE=
BULK_MIB=256
ROUNDS=5
ARGS=("$@")
while [[ $# -gt 0 ]]; do
  case "$1" in
    --time) TIME="$2"; shift 2 ;;
    --no-pin) PIN=0; shift ;;
    --no-squid) SQUID=0; shift ;;
    --bulk-mib) BULK_MIB="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --profile) PROFILE="$(mkdir -p "$2" && cd "$2" && pwd)"; shift 2 ;;
    *) echo "usage: $0 [--time S] [--bulk-mib N] [--rounds N] [--no-pin] [--no-squid] [--profile DIR]" >&2; exit 2 ;;
  esac
done
[[ -x "$PROXYD" ]] || { echo "build proxyd first (scripts/run.sh or cmake --build build)" >&2; exit 1; }
LEAN="$(dirname "$PROXYD")/../bench/tls_bulk"  # built with proxyd, in the same tree
FLOOR="$(dirname "$PROXYD")/../bench/relay_floor"
[[ -x "$LEAN" ]] || { echo "missing $LEAN (cmake --build on proxyd's tree builds it)" >&2; exit 1; }
for t in curl nginx openssl python3 taskset ${PROFILE:+perf strace}; do
  command -v "$t" >/dev/null || [[ -x /usr/sbin/$t ]] || { echo "missing $t (apt-get install nginx-light curl openssl)" >&2; exit 1; }
done
CERTGEN=/usr/lib/squid/security_file_certgen
if [[ $SQUID == 1 ]] && ! { [[ -x /usr/sbin/squid ]] && /usr/sbin/squid -v | grep -q -- '--with-openssl' && [[ -x $CERTGEN ]]; }; then
  echo "no Squid row: it needs squid-openssl for ssl-bump (apt-get install squid-openssl)" >&2
  SQUID=0
fi
if [[ $(id -u) == 0 && -z "${BENCH_IN_NETNS:-}" ]] && unshare -n true 2>/dev/null; then
  exec unshare -n env BENCH_IN_NETNS=1 bash "$0" "${ARGS[@]}"
fi
[[ -n "${BENCH_IN_NETNS:-}" ]] && ip link set lo up
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy no_proxy
ulimit -n 16384 2>/dev/null || true

if [[ $PIN == 1 ]]; then CPU_PROXY=1; CPU_LOAD=0; WORKERS=1; else CPU_PROXY=0-1; CPU_LOAD=0-1; WORKERS=2; fi
T="$(mktemp -d /tmp/pxinspbench.XXXXXX)"
chmod 755 "$T"  # nginx and squid workers may run as another user
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$T"; }
trap cleanup EXIT INT TERM

# Certificates: the origin's CA (trusted upstream), the origin's, and the proxies' CA.
ca() {  # NAME -> $T/NAME.crt, $T/NAME.key
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/$1.key" \
    -out "$T/$1.crt" -days 30 -subj "/CN=$1" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}
ca upstream-ca
ca proxy-ca
cat "$T/upstream-ca.crt" "$T/proxy-ca.crt" > "$T/both-ca.crt"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/origin.key" \
  -out "$T/origin.csr" -subj "/CN=127.0.0.1" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n' > "$T/origin.ext"
openssl x509 -req -in "$T/origin.csr" -CA "$T/upstream-ca.crt" -CAkey "$T/upstream-ca.key" \
  -CAcreateserial -days 30 -extfile "$T/origin.ext" -out "$T/origin.crt" 2>/dev/null

mkdir -p "$T/www" "$T/nginx"
head -c 1024 /dev/zero | tr '\0' x > "$T/www/small"
BIG=$((BULK_MIB * 1024 * 1024))
head -c $BIG /dev/urandom > "$T/www/big"
cat > "$T/nginx/nginx.conf" <<NGINX
worker_processes 1;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log error;
events { worker_connections 16384; }
http {
  access_log off;
  log_format ciph '\$ssl_protocol \$ssl_cipher \$http_user_agent';
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  sendfile on;
  client_body_temp_path $T/nginx; proxy_temp_path $T/nginx; fastcgi_temp_path $T/nginx;
  uwsgi_temp_path $T/nginx; scgi_temp_path $T/nginx;
  server {
    listen 127.0.0.1:18443 ssl;
    ssl_certificate $T/origin.crt;
    ssl_certificate_key $T/origin.key;
    ssl_session_tickets off;
    ssl_session_cache off;
    root $T/www;
    ${PROFILE:+access_log $T/nginx/ciphers.log ciph;}
  }
}
NGINX
taskset -c "$CPU_LOAD" /usr/sbin/nginx -c "$T/nginx/nginx.conf" -g 'daemon off;' &
PIDS+=($!)
for _ in $(seq 50); do curl -sf -o /dev/null --cacert "$T/upstream-ca.crt" https://127.0.0.1:18443/small && break; sleep 0.1; done
taskset -c "$CPU_LOAD" "$LEAN" serve 127.0.0.1:18444 "$T/origin.crt" "$T/origin.key" 2>"$T/lean-origin.log" &
PIDS+=($!)
LEAN_ORIGIN_PID=$!
for _ in $(seq 50); do "$LEAN" get 127.0.0.1:18444 1024 --count 1 --cafile "$T/upstream-ca.crt" >/dev/null 2>&1 && break; sleep 0.1; done
if [[ $PIN == 1 ]]; then  # direct-2cpu's origin, on the proxy's CPU
  taskset -c "$CPU_PROXY" "$LEAN" serve 127.0.0.1:18446 "$T/origin.crt" "$T/origin.key" 2>"$T/lean-origin2.log" &
  PIDS+=($!)
  LEAN_ORIGIN2_PID=$!
  for _ in $(seq 50); do "$LEAN" get 127.0.0.1:18446 1024 --count 1 --cafile "$T/upstream-ca.crt" >/dev/null 2>&1 && break; sleep 0.1; done
fi

taskset -c "$CPU_PROXY" "$FLOOR" 127.0.0.1:18897 127.0.0.1:18443 2>"$T/floor.log" &
PIDS+=($!)
taskset -c "$CPU_PROXY" "$FLOOR" 127.0.0.1:18898 127.0.0.1:18444 2>"$T/floor-lean.log" &
PIDS+=($!)

declare -A PX_PID
start_proxyd() {  # PORT POLICY-TEXT [PROXYD-ARGS...]
  local var="$T/var$1"
  mkdir -p "$var" && chmod 700 "$var"
  cp "$T/proxy-ca.crt" "$var/ca-cert.pem"
  install -m 600 "$T/proxy-ca.key" "$var/ca-key.pem"
  printf '%s\n' "$2" > "$T/policy$1"
  taskset -c "$CPU_PROXY" "$PROXYD" --listen "127.0.0.1:$1" --admin off --data-dir "$var" \
    --allow-loopback-targets --connect-ports 18443,18444 --workers $WORKERS --log-level warn \
    --max-conns-per-client 0 --policy "$T/policy$1" --upstream-ca "$T/upstream-ca.crt" \
    "${@:3}" 2>"$T/proxyd$1.log" &
  PIDS+=($!)
  PX_PID[$1]=$!
  for _ in $(seq 300); do
    curl -sf -o /dev/null --proxy "http://127.0.0.1:$1" --cacert "$T/both-ca.crt" \
      https://127.0.0.1:18443/small 2>/dev/null && return
    sleep 0.1
  done
  echo "proxyd on $1 did not start:" >&2; cat "$T/proxyd$1.log" >&2; exit 1
}
DENY='deny host-regex (^|\.)localhost$'
start_proxyd 18890 "$DENY"
start_proxyd 18891 "$DENY
inspect any" --listen-tls 127.0.0.1:18892

if [[ $SQUID == 1 ]]; then
  mkdir -p "$T/squid"
  cat "$T/proxy-ca.crt" "$T/proxy-ca.key" > "$T/squid/ca.pem"
  cp "$T/upstream-ca.crt" "$T/squid/"
  "$CERTGEN" -c -s "$T/squid/ssl_db" -M 16MB >/dev/null
  cat > "$T/squid/squid.conf" <<SQUIDCONF
http_port 127.0.0.1:18895 ssl-bump tls-cert=$T/squid/ca.pem generate-host-certificates=on dynamic_cert_mem_cache_size=16MB
sslcrtd_program $CERTGEN -s $T/squid/ssl_db -M 16MB
sslcrtd_children 4 startup=2 idle=1
# Server-first, as Squid's own guide has it: the origin's certificate is mimicked (its
# subjectAltName too, which a certificate for 127.0.0.1 needs).
acl step1 at_step SslBump1
ssl_bump peek step1
ssl_bump bump all
shutdown_lifetime 1 seconds
tls_outgoing_options cafile=$T/squid/upstream-ca.crt
acl denied dstdom_regex (^|\.)localhost$
acl bench_ports port 18443 18444
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
  SQUID_PID=$!
  ok=0
  for _ in $(seq 300); do
    curl -sf -o /dev/null --proxy http://127.0.0.1:18895 --cacert "$T/proxy-ca.crt" \
      https://127.0.0.1:18443/small && { ok=1; break; }
    sleep 0.1
  done
  if [[ $ok == 0 ]]; then
    echo "squid's ssl-bump port did not answer; no squid row (see $T/squid/cache.log):" >&2
    tail -n 5 "$T/squid/cache.log" "$T/squid/stderr" >&2 || true
    SQUID=0
  fi
fi

handshakes() {  # CAFILE [--proxy H:P [--proxy-tls CAFILE]] -> new HTTPS connections per second
  taskset -c "$CPU_LOAD" python3 "$HERE/lib/tls_handshakes.py" 127.0.0.1 18443 /small "$TIME" \
    --cafile "$@"
}
# The /proc/stat line of the CPU(s) curl and nginx run on: "cpu0", or "cpu" (all) unpinned.
LOAD_STAT=cpu
[[ $PIN == 1 ]] && LOAD_STAT=cpu$CPU_LOAD
download() {  # PROXY-PID-OR-0 CURL-ARGS... -> "median-MB/s CPU-ms/MB idle-%" (CPU "-" without a proxy)
  local i pid=$1 speeds=() c0 c1 i0 i1
  shift
  [[ $pid != 0 ]] && c0=$(bench_cpu_ns "$pid")
  i0=$(bench_idle_ticks "$LOAD_STAT")
  for i in 1 2 3; do
    speeds+=("$(taskset -c "$CPU_LOAD" curl -sf -o /dev/null -w '%{speed_download}' "$@" https://127.0.0.1:18443/big)")
  done
  i1=$(bench_idle_ticks "$LOAD_STAT")
  [[ $pid != 0 ]] && c1=$(bench_cpu_ns "$pid")
  printf '%s\n' "${speeds[@]}" | sort -n | sed -n 2p | awk -v pid="$pid" -v c0="${c0:-0}" \
    -v c1="${c1:-0}" -v mb=$((3 * BIG)) -v i0="$i0" -v i1="$i1" '{ printf "%.1f ", $1 / 1e6;
      if (pid != 0 && c0 != "-" && c1 != "-") printf "%.3f ", (c1 - c0) / 1e6 / (mb / 1e6); else printf "- ";
      split(i0, a, " "); split(i1, b, " ");
      if (b[2] > a[2]) printf "%.0f", 100 * (b[1] - a[1]) / (b[2] - a[2]); else printf "-" }'
}

# The lean table's download: 3 through tls_bulk get (median MB/s; its own CPU per MB), with
# the proxy's and the lean origin's CPU per MB (the origin's reaped connection processes
# included) and CPU 0's idle share over them.
origin_ms() {  # ORIGIN-PID -> its CPU so far (its own and its reaped children's), in ms
  local tck
  tck=$(getconf CLK_TCK)
  awk -v t="$tck" '{ sub(/^.*\) /, ""); printf "%.0f", ($12 + $13 + $14 + $15) * 1000 / t }' /proc/$1/stat
}
origin_idle() {  # ORIGIN-PID: waits (at most 5 s) until its connection processes are gone
  for _ in $(seq 50); do
    [[ -z $(cat /proc/$1/task/$1/children 2>/dev/null) ]] && return
    sleep 0.1
  done
}
lean_download() {  # PROXY-PID-OR-0 TLS_BULK-GET-ARGS... -> "MB/s proxy-ms/MB client-ms/MB origin-ms/MB idle-%"
  # (ORIGIN_PORT and ORIGIN_PID name another lean origin than the first)
  local pid=$1 c0 c1 i0 i1 o0 o1 out opid=${ORIGIN_PID:-$LEAN_ORIGIN_PID}
  shift
  origin_idle "$opid"
  [[ $pid != 0 ]] && c0=$(bench_cpu_ns "$pid")
  o0=$(origin_ms "$opid")
  i0=$(bench_idle_ticks "$LOAD_STAT")
  out=$(taskset -c "$CPU_LOAD" "$LEAN" get 127.0.0.1:"${ORIGIN_PORT:-18444}" "$BIG" --count 3 "$@")
  i1=$(bench_idle_ticks "$LOAD_STAT")
  [[ $pid != 0 ]] && c1=$(bench_cpu_ns "$pid")
  origin_idle "$opid"
  o1=$(origin_ms "$opid")
  awk -v pid="$pid" -v c0="${c0:-0}" -v c1="${c1:-0}" -v o0="$o0" -v o1="$o1" -v i0="$i0" \
    -v i1="$i1" -v out="$out" 'BEGIN { split(out, r, " "); mb = r[3];
      printf "%s ", r[1];
      if (pid != 0 && c0 != "-" && c1 != "-") printf "%.3f ", (c1 - c0) / 1e6 / mb; else printf "- ";
      printf "%s %.3f ", r[2], (o1 - o0) / mb;
      split(i0, a, " "); split(i1, b, " ");
      if (b[2] > a[2]) printf "%.0f", 100 * (b[1] - a[1]) / (b[2] - a[2]); else printf "-" }'
}

PXTLS_CA="$T/var18891/tls-cert.pem"  # the self-made certificate of the --listen-tls port
declare -A HS BULK CPU IDLE
rows=(direct proxyd-splice proxyd-inspect proxyd-inspect-tls)
[[ $SQUID == 1 ]] && rows+=(squid-bump)
for row in "${rows[@]}"; do
  echo "measuring $row ..." >&2
  case $row in
    direct) HS[$row]=$(handshakes "$T/upstream-ca.crt")
      r=$(download 0 --cacert "$T/upstream-ca.crt") ;;
    proxyd-splice) HS[$row]=$(handshakes "$T/upstream-ca.crt" --proxy 127.0.0.1:18890)
      r=$(download "${PX_PID[18890]}" --proxy http://127.0.0.1:18890 --cacert "$T/upstream-ca.crt") ;;
    proxyd-inspect) HS[$row]=$(handshakes "$T/proxy-ca.crt" --proxy 127.0.0.1:18891)
      r=$(download "${PX_PID[18891]}" --proxy http://127.0.0.1:18891 --cacert "$T/proxy-ca.crt") ;;
    proxyd-inspect-tls) HS[$row]=$(handshakes "$T/proxy-ca.crt" --proxy 127.0.0.1:18892 --proxy-tls "$PXTLS_CA")
      r=$(download "${PX_PID[18891]}" --proxy https://127.0.0.1:18892 --proxy-cacert "$PXTLS_CA" \
        --cacert "$T/proxy-ca.crt") ;;
    squid-bump) HS[$row]=$(handshakes "$T/proxy-ca.crt" --proxy 127.0.0.1:18895)
      r=$(download "$SQUID_PID" --proxy http://127.0.0.1:18895 --cacert "$T/proxy-ca.crt") ;;
  esac
  read -r BULK[$row] CPU[$row] IDLE[$row] <<< "$r"
done
declare -A LBULK LCPU LCLIENT LORIGIN LIDLE
lean_rows=(direct)
[[ $PIN == 1 ]] && lean_rows+=(direct-2cpu)
lean_rows+=("${rows[@]:1}")
for row in "${lean_rows[@]}"; do
  echo "measuring $row with the lean client and origin ..." >&2
  case $row in
    direct) r=$(lean_download 0 --cafile "$T/upstream-ca.crt") ;;
    direct-2cpu) r=$(ORIGIN_PORT=18446 ORIGIN_PID=$LEAN_ORIGIN2_PID lean_download 0 --cafile "$T/upstream-ca.crt") ;;
    proxyd-splice) r=$(lean_download "${PX_PID[18890]}" --proxy 127.0.0.1:18890 --cafile "$T/upstream-ca.crt") ;;
    proxyd-inspect) r=$(lean_download "${PX_PID[18891]}" --proxy 127.0.0.1:18891 --cafile "$T/proxy-ca.crt") ;;
    proxyd-inspect-tls) r=$(lean_download "${PX_PID[18891]}" --proxy 127.0.0.1:18892 --proxy-tls "$PXTLS_CA" \
      --cafile "$T/proxy-ca.crt") ;;
    squid-bump) r=$(lean_download "$SQUID_PID" --proxy 127.0.0.1:18895 --cafile "$T/proxy-ca.crt") ;;
  esac
  read -r LBULK[$row] LCPU[$row] LCLIENT[$row] LORIGIN[$row] LIDLE[$row] <<< "$r"
done

# The splice rows in rounds: one curl and one lean download per row and round.
declare -A RCURL RLEAN
splice_rows=(direct floor proxyd-splice)
echo "measuring direct, floor and proxyd-splice in $ROUNDS rounds ..." >&2
for ((round = 1; round <= ROUNDS; round++)); do
  for row in "${splice_rows[@]}"; do
    case $row in
      direct) url=https://127.0.0.1:18443/big lean=(127.0.0.1:18444) ;;
      floor) url=https://127.0.0.1:18897/big lean=(127.0.0.1:18898) ;;
      proxyd-splice) url=https://127.0.0.1:18443/big lean=(127.0.0.1:18444 --proxy 127.0.0.1:18890) ;;
    esac
    via=()
    [[ $row == proxyd-splice ]] && via=(--proxy http://127.0.0.1:18890)
    RCURL[$row]+=" $(taskset -c "$CPU_LOAD" curl -sf -o /dev/null -w '%{speed_download}' "${via[@]}" \
      --cacert "$T/upstream-ca.crt" "$url" | awk '{ printf "%.1f", $1 / 1e6 }')"
    origin_idle "$LEAN_ORIGIN_PID"
    RLEAN[$row]+=" $(taskset -c "$CPU_LOAD" "$LEAN" get "${lean[0]}" "$BIG" --count 1 "${lean[@]:1}" \
      --cafile "$T/upstream-ca.crt" | awk '{ print $1 }')"
  done
done
median_of() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "-" }'; }
rounds_ratio() {  # "a1 a2 ..." "b1 b2 ..." -> "a1/b1 a2/b2 ... (median m)"
  local -a a b out=()
  local i
  read -ra a <<<"$1"
  read -ra b <<<"$2"
  for i in "${!a[@]}"; do out+=("$(bench_ratio "${a[$i]}" "${b[$i]:-}")"); done
  printf '%s (median %s)' "${out[*]}" "$(median_of <<<"${out[*]}")"
}

printf '\n| row | new HTTPS conns/s | bulk MB/s | proxy CPU ms/MB | idle %% of %s (curl, nginx) |\n|---|---:|---:|---:|---:|\n' \
  "$([[ $PIN == 1 ]] && echo "CPU $CPU_LOAD" || echo "all CPUs")"
for row in "${rows[@]}"; do
  printf '| %s | %s | %s | %s | %s |\n' "$row" "${HS[$row]}" "${BULK[$row]}" "${CPU[$row]}" "${IDLE[$row]}"
done
printf '\nLean client and origin (bench/tls_bulk, TLS 1.3 AES-128-GCM on every hop), %s MiB downloads:\n' "$BULK_MIB"
printf '\n| row | bulk MB/s | proxy CPU ms/MB | client CPU ms/MB | origin CPU ms/MB | idle %% of %s (client, origin) |\n|---|---:|---:|---:|---:|---:|\n' \
  "$([[ $PIN == 1 ]] && echo "CPU $CPU_LOAD" || echo "all CPUs")"
for row in "${lean_rows[@]}"; do
  printf '| %s | %s | %s | %s | %s | %s |\n' "$row" "${LBULK[$row]}" "${LCPU[$row]}" "${LCLIENT[$row]}" \
    "${LORIGIN[$row]}" "${LIDLE[$row]}"
done
ratio() { bench_ratio "$@"; }
printf '\nproxyd-splice / direct: new conns %s, bulk %s\n' \
  "$(ratio "${HS[proxyd-splice]}" "${HS[direct]}")" "$(ratio "${BULK[proxyd-splice]}" "${BULK[direct]}")"
printf 'proxyd-inspect / direct: new conns %s, bulk %s\n' \
  "$(ratio "${HS[proxyd-inspect]}" "${HS[direct]}")" "$(ratio "${BULK[proxyd-inspect]}" "${BULK[direct]}")"
printf 'proxyd-inspect-tls / proxyd-inspect: new conns %s, bulk %s, CPU per MB %s\n' \
  "$(ratio "${HS[proxyd-inspect-tls]}" "${HS[proxyd-inspect]}")" \
  "$(ratio "${BULK[proxyd-inspect-tls]}" "${BULK[proxyd-inspect]}")" \
  "$(ratio "${CPU[proxyd-inspect-tls]}" "${CPU[proxyd-inspect]}")"
if [[ $SQUID == 1 ]]; then
  printf 'proxyd-inspect / squid-bump: new conns %s, bulk %s, CPU per MB (squid / proxyd) %s\n' \
    "$(ratio "${HS[proxyd-inspect]}" "${HS[squid-bump]}")" "$(ratio "${BULK[proxyd-inspect]}" "${BULK[squid-bump]}")" \
    "$(ratio "${CPU[squid-bump]}" "${CPU[proxyd-inspect]}")"
fi
[[ $PIN == 1 ]] && printf 'lean: direct-2cpu / direct bulk %s; proxyd-splice / direct-2cpu bulk %s\n' \
  "$(ratio "${LBULK[direct-2cpu]}" "${LBULK[direct]}")" "$(ratio "${LBULK[proxyd-splice]}" "${LBULK[direct-2cpu]}")"
printf 'lean: proxyd-splice / direct bulk %s; proxyd-inspect / direct bulk %s; proxyd-inspect-tls / proxyd-inspect bulk %s, CPU per MB %s\n' \
  "$(ratio "${LBULK[proxyd-splice]}" "${LBULK[direct]}")" "$(ratio "${LBULK[proxyd-inspect]}" "${LBULK[direct]}")" \
  "$(ratio "${LBULK[proxyd-inspect-tls]}" "${LBULK[proxyd-inspect]}")" \
  "$(ratio "${LCPU[proxyd-inspect-tls]}" "${LCPU[proxyd-inspect]}")"
if [[ $SQUID == 1 ]]; then
  printf 'lean: proxyd-inspect / squid-bump bulk %s, CPU per MB (squid / proxyd) %s\n' \
    "$(ratio "${LBULK[proxyd-inspect]}" "${LBULK[squid-bump]}")" "$(ratio "${LCPU[squid-bump]}" "${LCPU[proxyd-inspect]}")"
fi
printf '\nUn-inspected CONNECT, direct and the floor in %s rounds of %s MiB (MB/s of each round):\n\n' "$ROUNDS" "$BULK_MIB"
printf '| row | curl median MB/s | lean median MB/s | curl rounds | lean rounds |\n|---|---:|---:|---|---|\n'
for row in "${splice_rows[@]}"; do
  printf '| %s | %s | %s | %s | %s |\n' "$row" "$(median_of <<<"${RCURL[$row]}")" "$(median_of <<<"${RLEAN[$row]}")" \
    "${RCURL[$row]# }" "${RLEAN[$row]# }"
done
for pair in proxyd-splice/direct floor/direct proxyd-splice/floor; do
  printf '%s, round by round: curl %s; lean %s\n' "$pair" "$(rounds_ratio "${RCURL[${pair%/*}]}" "${RCURL[${pair#*/}]}")" \
    "$(rounds_ratio "${RLEAN[${pair%/*}]}" "${RLEAN[${pair#*/}]}")"
done
echo "(pinning: proxy on CPU $CPU_PROXY, nginx/curl/client on CPU $CPU_LOAD; $TIME s per handshake run; workers $WORKERS; load average $(cut -d' ' -f1-3 /proc/loadavg))"

# One inspected download under perf record (the proxy only), and the suites on each side.
profile() {  # NAME PID CURL-ARGS...
  local name=$1 pid=$2
  shift 2
  perf record -q -g -F 4000 -p "$pid" -o "$PROFILE/perf-$name.data" 2>/dev/null &
  local perf_pid=$!
  sleep 1  # attached before the download starts
  for _ in 1 2 3 4; do taskset -c "$CPU_LOAD" curl -sf -o /dev/null "$@" https://127.0.0.1:18443/big; done
  kill -INT $perf_pid; wait $perf_pid 2>/dev/null || true
  { echo "# perf record -g -F 4000 on $name, four inspected $BULK_MIB MiB downloads; shares by DSO:"
    perf report -i "$PROFILE/perf-$name.data" --stdio --no-children --sort dso -g none 2>/dev/null | grep '%'
    echo "# by symbol (>= 0.3%):"
    perf report -i "$PROFILE/perf-$name.data" --stdio --no-children --sort dso,symbol \
      --percent-limit 0.3 -g none 2>/dev/null | grep '%'
  } > "$PROFILE/perf-$name.txt"
  # System calls per MB over another download (strace slows it: a run of its own).
  strace -f -c -o "$PROFILE/strace-$name.raw" -p "$pid" 2>/dev/null &
  local strace_pid=$!
  sleep 1
  taskset -c "$CPU_LOAD" curl -sf -o /dev/null "$@" https://127.0.0.1:18443/big
  kill -INT $strace_pid; wait $strace_pid 2>/dev/null || true
  awk -v mb="$(awk -v b="$BIG" 'BEGIN { print b / 1e6 }')" -v name="$name" 'BEGIN { printf "# system calls per MB on %s, one inspected %.0f MB download (under strace)\n", name, mb }
    $NF ~ /^[a-z_0-9]+$/ && $4 ~ /^[0-9]+$/ && $NF != "total" && $4 / mb >= 0.05 { printf "%-16s %8.2f\n", $NF, $4 / mb }' \
    "$PROFILE/strace-$name.raw" > "$PROFILE/syscalls-$name.txt"
}
if [[ -n $PROFILE ]]; then
  profile proxyd "${PX_PID[18891]}" --proxy http://127.0.0.1:18891 --cacert "$T/proxy-ca.crt"
  profile proxyd-tls "${PX_PID[18891]}" --proxy https://127.0.0.1:18892 --proxy-cacert "$PXTLS_CA" \
    --cacert "$T/proxy-ca.crt"
  [[ $SQUID == 1 ]] && profile squid "$SQUID_PID" --proxy http://127.0.0.1:18895 --cacert "$T/proxy-ca.crt"
  { echo "# the suite each side negotiated: client (curl) -> proxy from curl -v, proxy -> origin from nginx's log"
    for p in 18891 18895; do
      [[ $p == 18895 && $SQUID == 0 ]] && continue
      printf 'client -> proxy %s: %s\n' $p "$(curl -sv -o /dev/null -A "via-$p" --proxy http://127.0.0.1:$p \
        --cacert "$T/proxy-ca.crt" https://127.0.0.1:18443/small 2>&1 | sed -n 's/.*SSL connection using //p' | tail -1)"
      printf 'proxy %s -> origin: %s\n' $p "$(grep "via-$p" "$T/nginx/ciphers.log" | tail -1)"
    done
  } > "$PROFILE/ciphers.txt"
  echo "profile: $PROFILE/perf-*.txt, $PROFILE/syscalls-*.txt, $PROFILE/ciphers.txt" >&2
fi
