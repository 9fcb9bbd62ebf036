"""New HTTPS connections one after another, each a full TLS handshake and one small GET, for
SECONDS: prints connections per second.

    python3 tls_handshakes.py HOST PORT PATH SECONDS --cafile PEM [--proxy H:P]

With --proxy each connection is a CONNECT through that (plain) proxy first, then TLS with
HOST inside the tunnel, as a browser makes a new HTTPS connection through a proxy. The same
client for every row of inspect_bench.sh, so the rows compare; its own cost (Python) is in
every figure. TLS session resumption is off: every handshake is a full one."""
import socket
import ssl
import sys
import time


def one(host, port, path, ctx, proxy):
    where = proxy or (host, port)
    s = socket.create_connection(where, timeout=60)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
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
        t = ctx.wrap_socket(s, server_hostname=host)
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
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.options |= ssl.OP_NO_TICKET
    ctx.set_alpn_protocols(["http/1.1"])
    n = 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        one(host, port, path, ctx, proxy)
        n += 1
    print("%.0f" % (n / (time.monotonic() - t0)))


if __name__ == "__main__":
    main()
