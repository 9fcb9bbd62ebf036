"""Opens N keep-alive connections to a proxy, sends one request on each, reads the response,
holds them idle and prints the proxy's RSS growth per connection:
    IDLE n=N open=OPEN rss0_kib=A rss1_kib=B per_conn_kib=X
Only connects to 127.0.0.1; bounded by --timeout."""
import argparse, resource, selectors, socket, sys, time


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--url", required=True)
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--timeout", type=float, default=60)
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, a.n + 256), hard))
    host = a.url.split("://", 1)[1].split("/", 1)[0]
    req = ("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (a.url, host)).encode()
    time.sleep(0.3)
    rss0 = rss_kib(a.pid)
    sel = selectors.DefaultSelector()
    pending = {}
    socks = []
    deadline = time.monotonic() + a.timeout
    for _ in range(a.n):
        s = socket.create_connection(("127.0.0.1", a.port), timeout=10)
        s.setblocking(False)
        s.send(req)
        socks.append(s)
        pending[s] = b""
        sel.register(s, selectors.EVENT_READ)
    while pending and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1):
            s = key.fileobj
            try:
                data = s.recv(65536)
            except BlockingIOError:
                continue
            if not data:
                sel.unregister(s)
                del pending[s]
                continue
            pending[s] += data
            buf = pending[s]
            if b"\r\n\r\n" in buf:
                head, body = buf.split(b"\r\n\r\n", 1)
                cl = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
                if cl and len(body) >= int(cl[0].split(b":")[1]):
                    sel.unregister(s)
                    del pending[s]
    time.sleep(2)
    open_ = 0
    for s in socks:
        try:
            open_ += 1 if s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b"" else 0
        except BlockingIOError:
            open_ += 1
        except OSError:
            pass
    rss1 = rss_kib(a.pid)
    print("IDLE n=%d open=%d rss0_kib=%d rss1_kib=%d per_conn_kib=%.1f" % (
        a.n, open_, rss0, rss1, (rss1 - rss0) / max(open_, 1)))
    for s in socks:
        s.close()


if __name__ == "__main__":
    sys.exit(main())
