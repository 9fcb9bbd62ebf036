#!/usr/bin/env bash
# proxy_bench.sh - proxyd against a direct connection, measured in the same run on loopback.
#
# Rows:    direct (wrk/curl straight to nginx), proxyd (SQLite access log on, one deny rule),
#          proxyd-nolog (access log off), proxyd-bigpolicy (100,000 domain rules + 1,000
#          url-regex rules, log on), proxyd-pg (as proxyd, the log in PostgreSQL: a server this
#          script starts with tests/pg_fixture.sh, fsync off as in the tests).
# Columns: small c1 / c64 req/s (keep-alive), p99 at c1 and c64, CPU us/req at c64 (proxyd's
#          threads from /proc, and of it its workers': the rest is mostly the log writer),
#          conn-close c16 req/s, bulk MB/s (median of 3 downloads of 64 MiB), CONNECT MB/s (same through a tunnel), RSS KiB
#          per idle keep-alive client connection (2000 held).
# Ratios against direct (and proxyd-nolog / proxyd-bigpolicy against proxyd) follow.
# For the rows proxyd and proxyd-pg, a last line says whether the log writer keeps up with a
# saturated proxy: a fresh proxyd takes one c64 run, is killed with -9 at its end, and the
# rows its database holds are counted against the requests wrk counted (what a crash loses;
# the requests in flight when wrk stops are answered and logged but not counted by wrk).
#
# With --profile DIR, the proxyd row is also profiled under the c64 load: DIR/perf.txt (perf
# record -g: where the CPU goes, kernel and user space, by symbol) and DIR/syscalls.txt (strace
# -c: system calls per request). docs/performance.md says how to read them.
#
# The row proxyd-scale (not in the default rows) holds --scale N keep-alive client connections
# (default 100,000, from several loopback source addresses) and prints proxyd's RSS growth per
# connection and a fresh client's p99 latency with them held against without (bench/lib/conn_scale.py),
# and proxyd's CPU while they idle. When the descriptor hard limit is below what N needs, it
# measures the largest count the limit allows and says which limit stopped it; so does it when
# the opening stops early (the proxy refusing, a client error).
#
# Usage: bench/proxy_bench.sh [--duration S] [--rows "direct proxyd ..."] [--no-pin] [--profile DIR]
#                             [--scale N]
# Needs nginx-light, wrk, curl (apt-get install nginx-light wrk curl), and perf and strace for
# --profile. As root it
# runs in a private network namespace (loopback only). Prints figures; never pass/fail.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
PROXYD="${PROXYD:-$ROOT/build/proxy/proxyd}"
DUR=8
ROWS="direct proxyd proxyd-nolog proxyd-bigpolicy"
PIN=1
PROFILE=""
SCALE_N=100000
ARGS=("$@")
# shellcheck source=lib/bench.sh
source "$HERE/lib/bench.sh"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --duration) DUR="$2"; shift 2 ;;
    --rows) ROWS="$2"; shift 2 ;;
    --no-pin) PIN=0; shift ;;
    --profile) PROFILE="$(mkdir -p "$2" && cd "$2" && pwd)"; shift 2 ;;
    --scale) SCALE_N="$2"; shift 2 ;;
    *) echo "usage: $0 [--duration S] [--rows LIST] [--no-pin] [--profile DIR] [--scale N]" >&2; exit 2 ;;
  esac
done
[[ -x "$PROXYD" ]] || { echo "build proxyd first (scripts/run.sh or cmake --build build)" >&2; exit 1; }
bench_require wrk curl nginx python3 taskset ${PROFILE:+perf strace}
bench_private_net "$0" "${ARGS[@]}"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy no_proxy
# proxyd-scale: the client and proxyd each need a descriptor per connection, and spare ones
# (proxyd: origin connections for a batch of 2,000 requests in flight, its own files). When the
# hard limit is lower, the row measures the largest count it allows and says which limit.
SCALE_SPARE=2500
SCALE_ASKED=$SCALE_N
SCALE_LIMIT=""
if [[ " $ROWS " == *" proxyd-scale "* ]]; then
  hard=$(ulimit -Hn)
  if [[ $hard != unlimited ]] && ((hard < SCALE_N + SCALE_SPARE)); then
    ((hard > SCALE_SPARE + 1000)) ||
      { echo "descriptor hard limit $hard (ulimit -Hn) leaves no room for a scale run" >&2; exit 1; }
    SCALE_N=$((hard - SCALE_SPARE))
    SCALE_LIMIT="the descriptor hard limit (ulimit -Hn) is $hard, below the $((SCALE_ASKED + SCALE_SPARE)) that $SCALE_ASKED connections need; it cannot be raised without CAP_SYS_RESOURCE, so $SCALE_N were asked"
    echo "proxyd-scale: $SCALE_LIMIT" >&2
  fi
  ulimit -n $((SCALE_N + SCALE_SPARE)) 2>/dev/null ||
    { echo "cannot raise the descriptor limit to $((SCALE_N + SCALE_SPARE)) (ulimit -Hn; fs.nr_open)" >&2; exit 1; }
else
  ulimit -n 16384 2>/dev/null || true
fi

bench_pin $PIN
T="$(mktemp -d /tmp/pxbench.XXXXXX)"
chmod 755 "$T"  # nginx workers run as nobody
PIDS=()
PGP=""  # proxyd-pg: the PostgreSQL server's folder (its own: it runs as nobody when root)
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true
  [[ -n $PGP ]] && { "$ROOT/tests/pg_fixture.sh" stop "$PGP/pg" || true; rm -rf "$PGP"; }
  rm -rf "$T"
}
trap cleanup EXIT INT TERM

bench_files "$T/www" 64
bench_nginx_conf "$T/nginx" "server { listen 127.0.0.1:18080; root $T/www; }"
taskset -c "$CPU_LOAD" /usr/sbin/nginx -c "$T/nginx/nginx.conf" -g 'daemon off;' &
PIDS+=($!)
ORIGIN=http://127.0.0.1:18080
for _ in $(seq 50); do curl -sf -o /dev/null $ORIGIN/small && break; sleep 0.1; done

echo 'deny host-regex (^|\.)localhost$' > "$T/small.policy"
python3 - "$T/big.policy" <<'EOF'
import random, sys
random.seed(7)
with open(sys.argv[1], "w") as f:
    f.write("deny host-regex (^|\\.)localhost$\n")
    for i in range(1000):
        f.write("deny url-regex ^https?://[^/]+/(ads|track|banner)%d/v[0-9]+/\n" % i)
    for i in range(100000):
        f.write("deny domain d%d.%s.example\n" % (i, random.choice(["ads", "cdn", "trk", "pix"])))
EOF

PX_PORT=18890
# Every benchmark client is 127.0.0.1 (2000 idle connections for the RSS row): no per-client limit.
start_proxyd() {  # NAME EXTRA-ARGS...
  local name=$1; shift
  taskset -c "$CPU_PROXY" "$PROXYD" --listen 127.0.0.1:$PX_PORT --admin off \
    --data-dir "$T/var-$name" --allow-loopback-targets --connect-ports 443,18080 \
    --workers $WORKERS --log-level warn --max-conns-per-client 0 "$@" 2>"$T/$name.log" &
  PX_PID=$!
  PIDS+=($PX_PID)
  for _ in $(seq 300); do
    curl -sf -o /dev/null -x 127.0.0.1:$PX_PORT $ORIGIN/small && return 0
    kill -0 $PX_PID 2>/dev/null || break
    sleep 0.1
  done
  echo "proxyd ($name) did not start (exit: $(kill -0 $PX_PID 2>&1 && echo running || echo gone)):" >&2; cat "$T/$name.log" >&2; curl -sv -x 127.0.0.1:$PX_PORT $ORIGIN/small 2>&1 | tail -5 >&2; return 1
}
stop_proxyd() { kill -TERM "$PX_PID" 2>/dev/null; wait "$PX_PID" 2>/dev/null || true; }

pg_db() { echo "host=$PGP/pg port=5432 user=px dbname=postgres"; }
pg_start() {
  [[ -n $PGP ]] && return 0
  PGP="$(mktemp -d /tmp/pxbench-pg.XXXXXX)"
  chmod 711 "$PGP"  # the server runs as nobody when root
  "$ROOT/tests/pg_fixture.sh" start "$PGP/pg" >/dev/null
}
# A fresh proxyd (NAME, database args) takes one c64 run and is killed with -9 at its end:
# "requests answered, rows in its database" (start_proxyd's probe is one more request).
declare -A KILLED
kill_run() {  # NAME DB-ARGS...
  local name=$1 r rows; shift
  start_proxyd "$name" --policy "$T/small.policy" "$@"
  r=$(wrk_run $PX_PORT 64 0)
  kill -KILL "$PX_PID"; wait "$PX_PID" 2>/dev/null || true
  if [[ $name == kill-pg ]]; then
    rows=$(psql "$(pg_db)" -XAtc "SELECT count(*) FROM access_log")
  else
    rows=$(sqlite3 "$T/var-$name/proxyd.db" "SELECT count(*) FROM access_log")
  fi
  echo "$(( ${r##* } + 1 )) $rows"
}

wrk_run() {  # PORT CONNS CLOSE -> "req/s p99 errors requests"
  local port=$1 conns=$2 close=$3
  BENCH_URL=$ORIGIN/small BENCH_CLOSE=$close taskset -c "$CPU_LOAD" \
    wrk -t1 -c"$conns" -d"${DUR}s" --latency -s "$HERE/lib/absolute.lua" \
    "http://127.0.0.1:$port/small" 2>/dev/null | awk '/^RESULT/ {print $2, $3, $4, $5}'
}

# The running proxyd ($PX_PID) under the c64 keep-alive load: a perf profile, then system
# calls per request (strace slows the proxy down, so it gets a run of its own).
profile_proxyd() {
  local r requests
  perf record -q -g -F 2000 -p "$PX_PID" -o "$PROFILE/perf.data" -- sleep "$DUR" 2>/dev/null &
  local perf_pid=$!
  wrk_run $PX_PORT 64 0 >/dev/null
  wait $perf_pid || true
  { echo "# perf record -g -F 2000 on proxyd, small c64 keep-alive, $DUR s; shares by DSO:"
    perf report -i "$PROFILE/perf.data" --stdio --no-children --sort dso -g none 2>/dev/null | grep '%'
    echo "# by symbol (>= 0.5%):"
    perf report -i "$PROFILE/perf.data" --stdio --no-children --sort dso,symbol \
      --percent-limit 0.5 -g none 2>/dev/null | grep '%'
  } > "$PROFILE/perf.txt"
  strace -f -c -o "$PROFILE/strace.raw" -p "$PX_PID" 2>/dev/null &
  local strace_pid=$!
  sleep 1  # attached to every thread before the load starts
  r=$(wrk_run $PX_PORT 64 0); requests=${r##* }
  kill -INT $strace_pid; wait $strace_pid 2>/dev/null || true
  awk -v n="$requests" 'BEGIN { printf "# system calls per request over %d requests (small c64 keep-alive, under strace)\n", n }
    $NF ~ /^[a-z_0-9]+$/ && $4 ~ /^[0-9]+$/ && $NF != "total" { printf "%-16s %8.3f\n", $NF, $4 / n }' \
    "$PROFILE/strace.raw" > "$PROFILE/syscalls.txt"
  echo "profile: $PROFILE/perf.txt, $PROFILE/syscalls.txt" >&2
}
download() {  # CURL-ARGS... -> median MB/s of 3
  local i speeds=()
  for i in 1 2 3; do
    speeds+=("$(taskset -c "$CPU_LOAD" curl -s -o /dev/null -w '%{speed_download}' "$@" $ORIGIN/big)")
  done
  printf '%s\n' "${speeds[@]}" | sort -n | sed -n 2p | awk '{printf "%.1f", $1 / 1e6}'
}

# Nanoseconds proxyd's threads ($PX_PID) have run on a CPU so far (schedstat: exact, not ticks).
cpu_ns() { { cat /proc/"$PX_PID"/task/*/schedstat 2>/dev/null || true; } | awk '{ s += $1 } END { printf "%.0f", s }'; }
# The same for its workers alone (threads named px-worker-N): the rest is mostly the log writer.
worker_cpu_ns() {
  local t s=0 n
  for t in /proc/"$PX_PID"/task/*; do
    [[ $(cat "$t/comm" 2>/dev/null) == px-worker-* ]] || continue
    n=$(cut -d' ' -f1 "$t/schedstat" 2>/dev/null) && s=$((s + n))
  done
  echo "$s"
}

declare -A C1 C64 P99 P99C1 CLOSE BULK TUNNEL RSS CPU WCPU
measure() {  # NAME PORT
  local name=$1 port=$2 r cpu0 wcpu0
  r=$(wrk_run "$port" 64 0); sleep 0.2  # warm-up
  if [[ $name != direct ]]; then
    RSS[$name]=$(taskset -c "$CPU_LOAD" python3 "$HERE/lib/conn_scale.py" --port "$port" --pid "$PX_PID" \
      --url $ORIGIN/small -n 2000 --probes 0 | sed -n 's/.*per_conn_kib=\([0-9.]*\).*/\1/p')
  fi
  r=$(wrk_run "$port" 1 0); C1[$name]=${r%% *}; P99C1[$name]=$(echo "$r" | cut -d' ' -f2)
  cpu0=$(cpu_ns); wcpu0=$(worker_cpu_ns)
  r=$(wrk_run "$port" 64 0); C64[$name]=${r%% *}; P99[$name]=$(echo "$r" | cut -d' ' -f2)
  # CPU time per request (all of proxyd's threads, its log writer too): what the machine's
  # load and wrk's speed do not move much, unlike req/s.
  if [[ $name != direct ]]; then
    CPU[$name]=$(awk -v a="$cpu0" -v b="$(cpu_ns)" -v n="${r##* }" \
      'BEGIN { if (n > 0) printf "%.2f", (b - a) / 1000 / n; else printf "-" }')
    WCPU[$name]=$(awk -v a="$wcpu0" -v b="$(worker_cpu_ns)" -v n="${r##* }" \
      'BEGIN { if (n > 0) printf "%.2f", (b - a) / 1000 / n; else printf "-" }')
  fi
  r=$(wrk_run "$port" 16 1); CLOSE[$name]=${r%% *}
  if [[ $name == direct ]]; then
    BULK[$name]=$(download); TUNNEL[$name]=-
  else
    BULK[$name]=$(download -x 127.0.0.1:$port); TUNNEL[$name]=$(download -p -x 127.0.0.1:$port)
  fi
}

for row in $ROWS; do
  echo "measuring $row ..." >&2
  case $row in
    direct) PX_PID=0; measure direct 18080 ;;
    proxyd) start_proxyd proxyd --policy "$T/small.policy"; measure proxyd $PX_PORT
            [[ -n $PROFILE ]] && profile_proxyd
            stop_proxyd ;;
    proxyd-nolog) start_proxyd nolog --policy "$T/small.policy" --access-log no
                  measure proxyd-nolog $PX_PORT; stop_proxyd ;;
    proxyd-bigpolicy) start_proxyd big --policy "$T/big.policy"
                      measure proxyd-bigpolicy $PX_PORT; stop_proxyd ;;
    proxyd-pg) pg_start; start_proxyd pg --policy "$T/small.policy" --db "$(pg_db)"
               measure proxyd-pg $PX_PORT; stop_proxyd
               psql "$(pg_db)" -Xqc "TRUNCATE access_log" ;;
    proxyd-scale) start_proxyd scale --policy "$T/small.policy" \
                    --max-connections $((SCALE_N + 4096)) --idle-timeout 900000
                  SCALE_OUT=$(taskset -c "$CPU_LOAD" python3 "$HERE/lib/conn_scale.py" --port $PX_PORT \
                    --pid "$PX_PID" --url $ORIGIN/small -n "$SCALE_N")
                  SCALE=$(grep '^SCALE' <<<"$SCALE_OUT")
                  SCALE_STOPPED=$(sed -n 's/^STOPPED //p' <<<"$SCALE_OUT")
                  SCALE_PXLOG=$(grep -m1 'room for about' "$T/scale.log" || true)
                  stop_proxyd ;;
  esac
done

if [[ " $ROWS " != " proxyd-scale " ]]; then
printf '\n| row | small c1 req/s | p99 c1 ms | small c64 req/s | p99 c64 ms | CPU us/req c64 | of it workers | conn-close c16 req/s | bulk MB/s | CONNECT MB/s | RSS KiB/idle conn |\n'
printf '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
for row in $ROWS; do
  [[ $row == proxyd-scale ]] && continue
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$row" "${C1[$row]:-}" \
    "${P99C1[$row]:-}" "${C64[$row]:-}" "${P99[$row]:-}" "${CPU[$row]:--}" "${WCPU[$row]:--}" \
    "${CLOSE[$row]:-}" "${BULK[$row]:-}" "${TUNNEL[$row]:-}" "${RSS[$row]:--}"
done
ratio() { bench_ratio "$@"; }
echo
for row in $ROWS; do
  [[ $row == direct || $row == proxyd-scale ]] && continue
  if [[ " $ROWS " == *" direct "* ]]; then
    printf '%s / direct: c1 %s, c64 %s, conn-close %s, bulk %s, CONNECT vs direct bulk %s\n' "$row" \
      "$(ratio "${C1[$row]}" "${C1[direct]}")" "$(ratio "${C64[$row]}" "${C64[direct]}")" \
      "$(ratio "${CLOSE[$row]}" "${CLOSE[direct]}")" "$(ratio "${BULK[$row]}" "${BULK[direct]}")" \
      "$(ratio "${TUNNEL[$row]}" "${BULK[direct]}")"
  fi
  if [[ $row != proxyd && " $ROWS " == *" proxyd "* ]]; then
    printf '%s / proxyd: c64 %s, conn-close %s, CPU us/req c64 %s\n' "$row" \
      "$(ratio "${C64[$row]}" "${C64[proxyd]}")" "$(ratio "${CLOSE[$row]}" "${CLOSE[proxyd]}")" \
      "$(ratio "${CPU[$row]}" "${CPU[proxyd]}")"
  fi
done
fi
if [[ -n ${SCALE:-} ]]; then
  field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$SCALE"; }
  printf '\nproxyd-scale: %s of %s keep-alive client connections held; RSS %s -> %s MiB (+%s MiB, %s KiB per connection);\n' \
    "$(field open)" "$(field n)" "$(field rss0_mib)" "$(field rss1_mib)" "$(field growth_mib)" "$(field per_conn_kib)"
  printf 'a fresh client (new connection per request): p50/p99 %s/%s ms without them, %s/%s ms with them held (p99 x%s, goal <= x1.5); opening took %s s; proxyd CPU while they idle: %s%%\n' \
    "$(field probe_p50_ms)" "$(field probe_p99_ms)" "$(field loaded_p50_ms)" "$(field loaded_p99_ms)" "$(field p99_ratio)" "$(field open_s)" "$(field idle_cpu_pct)"
  awk -v k="$(field per_conn_kib)" -v a="$SCALE_ASKED" 'BEGIN { printf "at this rate %d connections would take %.0f MB of RSS growth (goal < 400 MB)\n", a, k * 1024 * a / 1e6 }'
  [[ -n $SCALE_LIMIT ]] && printf 'limited: %s\n' "$SCALE_LIMIT"
  [[ -n ${SCALE_STOPPED:-} ]] && printf 'stopped opening: %s\n' "$SCALE_STOPPED"
  [[ -n ${SCALE_PXLOG:-} ]] && printf 'proxyd warned at start (its estimate counts an origin descriptor per client; idle ones hold none): %s\n' "${SCALE_PXLOG#*warn: }"
fi
for row in proxyd proxyd-pg; do
  [[ " $ROWS " == *" $row "* ]] || continue
  if [[ $row == proxyd ]]; then k=$(kill_run kill-sqlite); else k=$(kill_run kill-pg --db "$(pg_db)"); fi
  read -r asked kept <<<"$k"
  printf '%s, killed -9 at the end of a c64 run: %s rows in its database for %s requests wrk counted (up to 64 more were in flight at its end): %s lost (the writer'"'"'s backlog)\n' \
    "$row" "$kept" "$asked" "$((asked > kept ? asked - kept : 0))"
done
echo "(pinning: proxy on CPU $CPU_PROXY, nginx/wrk/curl on CPU $CPU_LOAD; $DUR s per wrk run; workers $WORKERS)"
