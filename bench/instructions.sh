#!/usr/bin/env bash
# instructions.sh - instructions proxyd executes per request, counted by callgrind: a figure
# that does not depend on the machine's load (these machines are shared), for comparing two
# builds of proxyd on the same requests. The worker thread's count is steady from run to run;
# the log writer's (SQLite) moves with how rows happen to fall into batches, so both are shown.
#
# Rows: a new client connection per request (Connection: close) and keep-alive requests on
# one connection, N of each (default 500), 1 KiB responses through a local origin
# (python3 http.server, HTTP/1.0: one origin connection per request in both rows); and
# keep-reuse: keep-alive requests through a keep-alive origin (HTTP/1.1, an nginx-like head
# and the body in one send), so proxyd reuses one origin connection as it does in
# bench/proxy_bench.sh and peers.sh.
#
# Usage: bench/instructions.sh [--requests N] [--top K] [PROXYD [EXTRA-ARGS...]]
#   PROXYD defaults to build/proxy/proxyd; --top K also lists the K costliest functions of the
#   worker, of the log writer and of the poll thread (the clock-driven reads: policy version,
#   settings; it runs with the log off too).
# Needs valgrind (apt-get install valgrind). Only 127.0.0.1 is used.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
N=500
TOP=0
while [[ $# -gt 0 && $1 == --* ]]; do
  case "$1" in
    --requests) N="$2"; shift 2 ;;
    --top) TOP="$2"; shift 2 ;;
    *) echo "usage: $0 [--requests N] [--top K] [PROXYD [EXTRA-ARGS...]]" >&2; exit 2 ;;
  esac
done
PROXYD="${1:-$ROOT/build/proxy/proxyd}"
[[ $# -gt 0 ]] && shift
command -v valgrind >/dev/null || { echo "missing valgrind (apt-get install valgrind)" >&2; exit 1; }
[[ -x "$PROXYD" ]] || { echo "no proxyd at $PROXYD" >&2; exit 1; }

T="$(mktemp -d /tmp/pxinstr.XXXXXX)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$T"; }
trap cleanup EXIT INT TERM
# Ports the kernel hands out free, so two runs (two builds compared) can go side by side.
read -r ORIGIN_PORT REUSE_PORT PX_PORT < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')

mkdir -p "$T/www"
head -c 1024 /dev/zero | tr '\0' x > "$T/www/small"
(cd "$T/www" && exec python3 -m http.server $ORIGIN_PORT --bind 127.0.0.1 >/dev/null 2>&1) &
PIDS+=($!)
python3 - $REUSE_PORT <<'EOF' &
import socket, socketserver, sys
BODY = b"x" * 1024
HEAD = (b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Wed, 02 Dec 2026 03:00:00 GMT\r\n"
        b"Content-Type: application/octet-stream\r\nContent-Length: 1024\r\n"
        b"Last-Modified: Wed, 02 Dec 2026 02:00:00 GMT\r\nConnection: keep-alive\r\n"
        b'ETag: "692e5a00-400"\r\nAccept-Ranges: bytes\r\n\r\n')
class Origin(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                data = self.request.recv(65536)
                if not data:
                    return
                buf += data
            buf = buf.split(b"\r\n\r\n", 1)[1]
            self.request.sendall(HEAD + BODY)
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer(("127.0.0.1", int(sys.argv[1])), Origin).serve_forever()
EOF
PIDS+=($!)
echo 'deny host-regex (^|\.)localhost$' > "$T/p.policy"
valgrind --tool=callgrind --callgrind-out-file="$T/cg.out" --dump-instr=no --separate-threads=yes "$PROXYD" \
  --listen 127.0.0.1:$PX_PORT --admin off --data-dir "$T/var" --allow-loopback-targets \
  --workers 1 --log-level warn --policy "$T/p.policy" "$@" 2>"$T/valgrind.log" &
VG=$!
PIDS+=($VG)
URL=http://127.0.0.1:$ORIGIN_PORT/small
for _ in $(seq 300); do
  curl -sf -o /dev/null -x 127.0.0.1:$PX_PORT $URL && break
  kill -0 $VG 2>/dev/null || { cat "$T/valgrind.log" >&2; exit 1; }
  sleep 0.2
done

client() {  # close|keep|keep-reuse: N requests through the proxy, each answered 200 in full
  local url=$URL
  [[ $1 == keep-reuse ]] && url=http://127.0.0.1:$REUSE_PORT/small
  python3 - "$PX_PORT" "$N" "$1" "$url" <<'EOF'
import socket, sys
port, n, mode, url = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
host = url.split("/")[2]
req = ("GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (url, host,
       "Connection: close\r\n" if mode == "close" else "")).encode()
def answer(s):
    buf = b""
    while b"\r\n\r\n" not in buf:
        data = s.recv(65536)
        if not data:
            sys.exit("connection closed before the response head")
        buf += data
    head, body = buf.split(b"\r\n\r\n", 1)
    if not head.startswith(b"HTTP/1.1 200"):
        sys.exit("unexpected response: %r" % head[:80])
    length = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0][15:])
    while len(body) < length:
        body += s.recv(65536)
if mode == "close":
    for _ in range(n):
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(req); answer(s)
else:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        for _ in range(n):
            s.sendall(req); answer(s)
EOF
}

total_of() {  # a thread that ran nothing in the dump shows "." as its total
  callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print ($1 ~ /^[0-9]+$/) ? $1 : 0 }'
}
drain_of() {  # the writer's instructions in store_queue_drain_runs and below: the rows' own
  # part (unpack, INSERT, rollup sums, tally), without what runs by the clock (commit, rollup
  # flush every 2 s, retention), which under valgrind's slowness lands on few rows
  callgrind_annotate --inclusive=yes --threshold=100 "$1" 2>/dev/null |
    awk '/:store_queue_drain_runs / && !done { gsub(",", "", $1); print $1; done = 1 }'
}
printf '| row | requests | worker thread, per request | log writer thread, per request | of which the rows (drain) | poll thread, per request | all threads, per request |\n|---|---:|---:|---:|---:|---:|---:|\n'
for mode in close keep keep-reuse; do
  callgrind_control -z $VG >/dev/null 2>&1
  client $mode
  rm -f "$T"/cg.out.*-*  # earlier dumps: only this one's files stay
  callgrind_control -d $mode $VG >/dev/null 2>&1
  worker=0 writer=0 drain=0 poll=0 all=0 worker_file="" writer_file="" poll_file=""
  for f in "$T"/cg.out.*-*; do
    n=$(total_of "$f"); all=$((all + ${n:-0}))
    if callgrind_annotate --threshold=100 "$f" 2>/dev/null | grep -c worker_main >/dev/null; then
      worker=$((worker + ${n:-0})); worker_file=$f
    elif callgrind_annotate --threshold=100 "$f" 2>/dev/null | grep -c writer_main >/dev/null; then
      writer=$((writer + ${n:-0})); writer_file=$f
      d=$(drain_of "$f"); drain=$((drain + ${d:-0}))
    elif callgrind_annotate --threshold=100 "$f" 2>/dev/null | grep -c poll_main >/dev/null; then
      poll=$((poll + ${n:-0})); poll_file=$f
    fi
  done
  printf '| %s | %d | %d | %d | %d | %d | %d |\n' "$mode" "$N" $((worker / N)) $((writer / N)) $((drain / N)) \
    $((poll / N)) $((all / N))
  for which in worker writer poll; do
    file=${which}_file; file=${!file}
    ((TOP > 0)) && [[ -n $file ]] || continue
    echo "    $which thread:"
    callgrind_annotate --threshold=100 "$file" 2>/dev/null | grep -E '^ *[0-9,]+ \(' |
      grep -v -e 'PROGRAM TOTALS' -e 'clone.S' -e 'start_thread' -e 'worker_main' -e 'writer_main' -e 'poll_main' -e 'below main' -e 'libc-start' -e 'ld-linux' |
      head -"$TOP" | sed 's/^/    /' || true  # head leaves early: not a failure
  done
done
