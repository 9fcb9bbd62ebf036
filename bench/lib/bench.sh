# bench/lib/bench.sh - the set-up the bench scripts share, sourced by them (bash): a private
# network namespace when root, the CPU pinning, a scratch folder whose processes and network
# namespaces are removed on exit, the served files, nginx's configuration, and the parsing of
# wrk's and curl's figures. Prints nothing of its own; a missing tool ends the script with
# the packages to install.

# Exits unless every tool is on PATH or in /usr/sbin.
bench_require() {
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null || [[ -x /usr/sbin/$t ]] ||
      { echo "missing $t (apt-get install nginx-light wrk curl openssl nftables iproute2)" >&2; exit 1; }
  done
}

# As root, runs the calling script again in a network namespace of its own (loopback only, so
# its ports meet nobody else's); call with "$0" "${ARGS[@]}" before any set-up.
bench_private_net() {
  if [[ $(id -u) == 0 && -z "${BENCH_IN_NETNS:-}" ]] && unshare -n true 2>/dev/null; then
    exec unshare -n env BENCH_IN_NETNS=1 bash "$@"
  fi
  [[ -n "${BENCH_IN_NETNS:-}" ]] && ip link set lo up
  return 0
}

# No proxy settings of the caller's shell leak into curl; enough descriptors for wrk -c64.
bench_env() {
  unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy no_proxy
  ulimit -n 16384 2>/dev/null || true
}

# PIN (1 or 0) -> CPU_PROXY, CPU_LOAD, WORKERS: pinned, the proxy has CPU 1 with one worker
# and the origin and the clients share CPU 0; unpinned, everything may use both CPUs.
bench_pin() {
  if [[ $1 == 1 ]]; then CPU_PROXY=1; CPU_LOAD=0; WORKERS=1; else CPU_PROXY=0-1; CPU_LOAD=0-1; WORKERS=2; fi
}

# PREFIX -> T, a fresh folder under /tmp; PIDS (append what you start) and BENCH_NETNS (append
# the network namespaces you add) are killed and deleted on exit, then T.
BENCH_NETNS=()
PIDS=()
bench_tmp() {
  T="$(mktemp -d "/tmp/$1.XXXXXX")"
  chmod 755 "$T" # nginx and squid workers may run as another user
  trap bench_cleanup EXIT INT TERM
}
bench_cleanup() {
  local p ns
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for ns in "${BENCH_NETNS[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  [[ -n "${T:-}" ]] && rm -rf "$T"
}

# DIR MIB -> DIR/small (1 KiB) and DIR/big (MIB MiB of random bytes: nothing compresses it).
bench_files() {
  mkdir -p "$1"
  head -c 1024 /dev/zero | tr '\0' x > "$1/small"
  head -c $(($2 * 1024 * 1024)) /dev/urandom > "$1/big"
}

# DIR SERVER-BLOCKS [HTTP-LINES] -> DIR/nginx.conf: one worker, no access log, keep-alive
# that outlasts any run, sendfile; the server blocks as given.
bench_nginx_conf() {
  local d=$1
  mkdir -p "$d"
  cat > "$d/nginx.conf" <<EOF
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log error;
events { worker_connections 16384; }
http {
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  sendfile on;
  client_body_temp_path $d; proxy_temp_path $d; fastcgi_temp_path $d;
  uwsgi_temp_path $d; scgi_temp_path $d;
  ${3:-}
  $2
}
EOF
}

# wrk's output on stdin -> "req/s p99-ms".
bench_wrk_figures() {
  awk '/^Requests\/sec/ {r = $2}
       /^ +99%/ {v = $2; if (v ~ /us$/) m = v / 1000; else if (v ~ /ms$/) m = v + 0; else m = v * 1000}
       END {printf "%.0f %.2f", r, m}'
}

# curl's %{speed_download} figures, one a line, on stdin -> their median in MB/s.
bench_median_mbs() {
  sort -n | awk '{ v[NR] = $1 } END { if (NR) printf "%.1f", v[int((NR + 1) / 2)] / 1e6; else printf "-" }'
}

# PID -> nanoseconds of CPU all its threads have used (/proc/PID/task/*/schedstat), or "-"
# when the process is gone (a figure missing, as bench_ratio reads it; never the end of a
# `set -e` script).
bench_cpu_ns() {
  { cat /proc/"$1"/task/*/schedstat 2>/dev/null || true; } |
    awk '{ s += $1 } END { if (NR) printf "%.0f", s; else printf "-" }'
}

# STAT-LINE ("cpu0", or "cpu" for all) -> "idle-and-iowait total" ticks of it so far.
bench_idle_ticks() {
  awk -v c="$1" '$1 == c { t = 0; for (i = 2; i <= 9; i++) t += $i; print $5 + $6, t }' /proc/stat
}

# A B -> A / B to two places (0 / B is 0.00), or "-" when B is 0 or either is missing (empty,
# "-", or not a number).
bench_ratio() {
  awk -v a="$1" -v b="$2" 'function num(x) { return x ~ /^([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$/ }
    BEGIN { if (num(a) && num(b) && b + 0 > 0) printf "%.2f", a / b; else printf "-" }'
}
