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
#          minted certificate from the cache for the proxy), and bulk MB/s (median of 3 curl
#          downloads of 64 MiB over HTTPS). Ratios follow.
#
# Usage: bench/inspect_bench.sh [--time S] [--no-pin] [--no-squid]
# Needs nginx-light, curl, openssl, python3; Squid's row needs squid-openssl (Debian's
# GnuTLS-flavoured squid has no ssl-bump): apt-get install squid-openssl (it replaces squid).
# As root it runs in a private network namespace (loopback only). Prints figures; never
# pass/fail.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
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
for t in curl nginx openssl python3 taskset; do
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
head -c $((64 * 1024 * 1024)) /dev/urandom > "$T/www/big"
cat > "$T/nginx/nginx.conf" <<NGINX
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
  server {
    listen 127.0.0.1:18443 ssl;
    ssl_certificate $T/origin.crt;
    ssl_certificate_key $T/origin.key;
    ssl_session_tickets off;
    ssl_session_cache off;
    root $T/www;
  }
}
NGINX
taskset -c "$CPU_LOAD" /usr/sbin/nginx -c "$T/nginx/nginx.conf" -g 'daemon off;' &
PIDS+=($!)
for _ in $(seq 50); do curl -sf -o /dev/null --cacert "$T/upstream-ca.crt" https://127.0.0.1:18443/small && break; sleep 0.1; done

start_proxyd() {  # PORT POLICY-TEXT
  local var="$T/var$1"
  mkdir -p "$var" && chmod 700 "$var"
  cp "$T/proxy-ca.crt" "$var/ca-cert.pem"
  install -m 600 "$T/proxy-ca.key" "$var/ca-key.pem"
  printf '%s\n' "$2" > "$T/policy$1"
  taskset -c "$CPU_PROXY" "$PROXYD" --listen "127.0.0.1:$1" --admin off --data-dir "$var" \
    --allow-loopback-targets --connect-ports 18443 --workers $WORKERS --log-level warn \
    --max-conns-per-client 0 --policy "$T/policy$1" --upstream-ca "$T/upstream-ca.crt" \
    2>"$T/proxyd$1.log" &
  PIDS+=($!)
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
inspect any"

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
acl bench_ports port 18443
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

handshakes() {  # CAFILE [--proxy H:P] -> new HTTPS connections per second
  taskset -c "$CPU_LOAD" python3 "$HERE/lib/tls_handshakes.py" 127.0.0.1 18443 /small "$TIME" \
    --cafile "$@"
}
download() {  # CURL-ARGS... -> median MB/s of 3
  local i speeds=()
  for i in 1 2 3; do
    speeds+=("$(taskset -c "$CPU_LOAD" curl -sf -o /dev/null -w '%{speed_download}' "$@" https://127.0.0.1:18443/big)")
  done
  printf '%s\n' "${speeds[@]}" | sort -n | sed -n 2p | awk '{printf "%.1f", $1 / 1e6}'
}

declare -A HS BULK
rows=(direct proxyd-splice proxyd-inspect)
[[ $SQUID == 1 ]] && rows+=(squid-bump)
for row in "${rows[@]}"; do
  echo "measuring $row ..." >&2
  case $row in
    direct) HS[$row]=$(handshakes "$T/upstream-ca.crt")
      BULK[$row]=$(download --cacert "$T/upstream-ca.crt") ;;
    proxyd-splice) HS[$row]=$(handshakes "$T/upstream-ca.crt" --proxy 127.0.0.1:18890)
      BULK[$row]=$(download --proxy http://127.0.0.1:18890 --cacert "$T/upstream-ca.crt") ;;
    proxyd-inspect) HS[$row]=$(handshakes "$T/proxy-ca.crt" --proxy 127.0.0.1:18891)
      BULK[$row]=$(download --proxy http://127.0.0.1:18891 --cacert "$T/proxy-ca.crt") ;;
    squid-bump) HS[$row]=$(handshakes "$T/proxy-ca.crt" --proxy 127.0.0.1:18895)
      BULK[$row]=$(download --proxy http://127.0.0.1:18895 --cacert "$T/proxy-ca.crt") ;;
  esac
done

printf '\n| row | new HTTPS conns/s | bulk MB/s |\n|---|---:|---:|\n'
for row in "${rows[@]}"; do printf '| %s | %s | %s |\n' "$row" "${HS[$row]}" "${BULK[$row]}"; done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0 && a + 0 > 0) printf "%.2f", a / b; else printf "-" }'; }
printf '\nproxyd-splice / direct: new conns %s, bulk %s\n' \
  "$(ratio "${HS[proxyd-splice]}" "${HS[direct]}")" "$(ratio "${BULK[proxyd-splice]}" "${BULK[direct]}")"
printf 'proxyd-inspect / direct: new conns %s, bulk %s\n' \
  "$(ratio "${HS[proxyd-inspect]}" "${HS[direct]}")" "$(ratio "${BULK[proxyd-inspect]}" "${BULK[direct]}")"
if [[ $SQUID == 1 ]]; then
  printf 'proxyd-inspect / squid-bump: new conns %s, bulk %s\n' \
    "$(ratio "${HS[proxyd-inspect]}" "${HS[squid-bump]}")" "$(ratio "${BULK[proxyd-inspect]}" "${BULK[squid-bump]}")"
fi
echo "(pinning: proxy on CPU $CPU_PROXY, nginx/curl/client on CPU $CPU_LOAD; $TIME s per handshake run; workers $WORKERS)"
