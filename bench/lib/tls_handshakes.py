"""New HTTPS connections one after another, each a full TLS handshake and one small GET, for
SECONDS: prints connections per second.

    python3 tls_handshakes.py HOST PORT PATH SECONDS --cafile PEM [--proxy H:P [--proxy-tls PEM]]

With --proxy each connection is a CONNECT through that (plain) proxy first, then TLS with
HOST inside the tunnel, as a browser makes a new HTTPS connection through a proxy. With
--proxy-tls the proxy port speaks TLS too (verified against PEM): the CONNECT goes inside that
session and HOST's session inside the tunnel, TLS inside TLS, as a browser with PAC "HTTPS". The same
client for every row of inspect_bench.sh, so the rows compare; its own cost (Python) is in
every figure. TLS session resumption is off: every handshake is a full one."""
import socket
import ssl
import sys
import time


class Nested:
    """A client session whose records travel inside the open session s (ssl.SSLSocket)."""

    def __init__(self, ctx, s, host):
        self.s = s
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.o = ctx.wrap_bio(self.inc, self.out, server_hostname=host)

    def run(self, fn, *args):
        while True:
            try:
                r = fn(*args)
            except ssl.SSLWantReadError:
                self.flush()
                data = self.s.recv(65536)
                if data:
                    self.inc.write(data)
                else:
                    self.inc.write_eof()
                continue
            self.flush()
            return r

    def flush(self):
        data = self.out.read()
        if data:
            self.s.sendall(data)

    def sendall(self, data):
        self.run(self.o.do_handshake)
        self.run(self.o.write, data)

    def recv(self, n):
        try:
            return self.run(self.o.read, n)
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            return b""

    def close(self):
        pass


def one(host, port, path, ctx, proxy, proxy_ctx):
    where = proxy or (host, port)
    s = socket.create_connection(where, timeout=60)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        if proxy_ctx:
            s = proxy_ctx.wrap_socket(s, server_hostname=proxy[0])
        if proxy:
            s.sendall(b"CONNECT %s:%d HTTP/1.1\r\nHost: %s:%d\r\n\r\n"
                      % (host.encode(), port, host.encode(), port))
            head = b""
            while b"\r\n\r\n" not in head:
                data = s.recv(4096)
                if not data:
                    raise OSError("proxy closed")
                head += data
            if not head.startswith(b"HTTP/1.1 200"):
                raise OSError("CONNECT: " + head.split(b"\r\n")[0].decode())
        t = Nested(ctx, s, host) if proxy_ctx else ctx.wrap_socket(s, server_hostname=host)
        t.sendall(b"GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                  % (path.encode(), host.encode()))
        while t.recv(65536):
            pass
        t.close()
    finally:
        s.close()


def main():
    a = sys.argv[1:]
    host, port, path, seconds = a[0], int(a[1]), a[2], float(a[3])
    cafile = a[a.index("--cafile") + 1]
    proxy = None
    if "--proxy" in a:
        h, p = a[a.index("--proxy") + 1].rsplit(":", 1)
        proxy = (h, int(p))
    proxy_ctx = None
    if "--proxy-tls" in a:
        proxy_ctx = ssl.create_default_context(cafile=a[a.index("--proxy-tls") + 1])
        proxy_ctx.options |= ssl.OP_NO_TICKET
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.options |= ssl.OP_NO_TICKET
    ctx.set_alpn_protocols(["http/1.1"])
    n = 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        one(host, port, path, ctx, proxy, proxy_ctx)
        n += 1
    print("%.0f" % (n / (time.monotonic() - t0)))


if __name__ == "__main__":
    main()
