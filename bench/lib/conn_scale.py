"""Holds N keep-alive client connections open through a proxy and prints what they cost it.

Each connection sends one request through the proxy (absolute form), reads the whole response
and then stays open and idle. Connections come from several loopback source addresses
(127.0.0.2, .3, ...; IP_BIND_ADDRESS_NO_PORT so each address has its own port range), in
batches, so N may exceed one address's ~28,000 ephemeral ports. Before and after, a probe
client makes --probes requests on fresh connections, one at a time, and their latency is kept.
Prints one line:
    SCALE n=N open=OPEN rss0_mib=A rss1_mib=B growth_mib=C per_conn_kib=X
          probe_p50_ms=.. probe_p99_ms=.. loaded_p50_ms=.. loaded_p99_ms=.. p99_ratio=R
          open_s=T idle_cpu_pct=P
and, when fewer than N were held, a second line saying what stopped the opening:
    STOPPED <reason>
idle_cpu_pct is the proxy's CPU time (all threads) over 2 s with the connections held and no
request in flight: what holding them costs (timer sweeps, housekeeping).
Connects only to 127.0.0.1 (from 127.0.0.0/8 addresses); every wait is bounded by --timeout.
"""
import argparse, os, resource, selectors, socket, sys, time

IP_BIND_ADDRESS_NO_PORT = 24
PORTS_PER_SOURCE = 25000  # below the default ephemeral range of 28,232 ports


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def complete(buf):
    """True once buf holds a whole response with a Content-Length body."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return False
    for line in buf[:end].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(buf) - end - 4 >= int(value)
    return False


def probe(port, req, count, deadline):
    """Latencies (ms) of count requests, each on a new connection, one after another."""
    out = []
    for _ in range(count):
        if time.monotonic() > deadline:
            break
        t0 = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(req)
            buf = b""
            while not complete(buf):
                data = s.recv(65536)
                if not data:
                    break
                buf += data
        out.append((time.monotonic() - t0) * 1000)
    return out


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))]


def cpu_ticks(pid):
    """User plus system clock ticks of the process, all threads."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def open_batch(port, req, count, first, deadline):
    """Opens count connections (source address by index), sends req on each, reads each
    response; returns the sockets still open, and why some were not (None if all were)."""
    sel = selectors.DefaultSelector()
    pending, done, why = {}, [], None
    closed = 0
    for i in range(first, first + count):
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        except OSError as e:  # this client's own descriptor limit
            why = "the client could not open a socket: %s" % e
            break
        try:
            s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            s.bind(("127.0.0.%d" % (2 + i // PORTS_PER_SOURCE), 0))
            s.settimeout(10)
            s.connect(("127.0.0.1", port))
            s.setblocking(False)
            s.send(req)
        except OSError as e:
            s.close()
            why = "connection %d: %s" % (i + 1, e)
            break
        pending[s] = b""
        sel.register(s, selectors.EVENT_READ)
    while pending and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1):
            s = key.fileobj
            try:
                data = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError:  # reset: not held
                data = b""
            if not data:  # the proxy closed it: not held
                sel.unregister(s)
                del pending[s]
                s.close()
                closed += 1
                continue
            pending[s] += data
            if complete(pending[s]):
                sel.unregister(s)
                del pending[s]
                done.append(s)
    if closed and not why:
        why = ("the proxy closed %d connections unanswered (its descriptor limit or "
               "max-connections: see its log)" % closed)
    if pending and not why:
        why = "%d connections unanswered when the time ran out (--timeout)" % len(pending)
    for s in pending:
        s.close()
    sel.close()
    return done, why


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--url", required=True)
    ap.add_argument("-n", type=int, default=100000)
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--probes", type=int, default=1000)
    ap.add_argument("--timeout", type=float, default=900)
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = a.n + 256
    if hard != resource.RLIM_INFINITY and hard < want:
        sys.exit("descriptor hard limit %d is below the %d that %d connections need: raise it "
                 "(ulimit -Hn) or ask for fewer" % (hard, want, a.n))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    host = a.url.split("://", 1)[1].split("/", 1)[0]
    req = ("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (a.url, host)).encode()
    deadline = time.monotonic() + a.timeout

    idle = probe(a.port, req, a.probes, deadline)
    time.sleep(0.5)
    rss0 = rss_kib(a.pid)
    held = []
    t0 = time.monotonic()
    stopped = None
    while len(held) < a.n and time.monotonic() < deadline:
        got, why = open_batch(a.port, req, min(a.batch, a.n - len(held)), len(held), deadline)
        held += got
        if why:
            stopped = why  # report what is held at that point
            break
    if len(held) < a.n and not stopped:
        stopped = "the time ran out (--timeout %g s)" % a.timeout
    open_s = time.monotonic() - t0
    time.sleep(1)
    cpu0, t_cpu = cpu_ticks(a.pid), time.monotonic()
    time.sleep(2)
    idle_cpu = (cpu_ticks(a.pid) - cpu0) / os.sysconf("SC_CLK_TCK") / (time.monotonic() - t_cpu)
    rss1 = rss_kib(a.pid)
    loaded = probe(a.port, req, a.probes, deadline)
    # still open? a connection the proxy closed while idle reads as end of stream
    sel = selectors.DefaultSelector()
    for s in held:
        sel.register(s, selectors.EVENT_READ)
    closed = {key.fileobj for key, _ in sel.select(timeout=0)}
    still = len(held) - len(closed)
    for s in held:
        s.close()
    p99_idle, p99_loaded = pct(idle, 99), pct(loaded, 99)  # nan with --probes 0
    print("SCALE n=%d open=%d rss0_mib=%.1f rss1_mib=%.1f growth_mib=%.1f per_conn_kib=%.2f "
          "probe_p50_ms=%.3f probe_p99_ms=%.3f loaded_p50_ms=%.3f loaded_p99_ms=%.3f "
          "p99_ratio=%.2f open_s=%.1f idle_cpu_pct=%.1f" %
          (a.n, still, rss0 / 1024, rss1 / 1024, (rss1 - rss0) / 1024,
           (rss1 - rss0) / max(1, still), pct(idle, 50), p99_idle, pct(loaded, 50), p99_loaded,
           p99_loaded / p99_idle if p99_idle else float("nan"), open_s, idle_cpu * 100))
    if stopped:
        print("STOPPED after %d of %d: %s" % (len(held), a.n, stopped))


if __name__ == "__main__":
    main()
