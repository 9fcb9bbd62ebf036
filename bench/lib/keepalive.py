"""Small GETs on one keep-alive connection, one at a time: prints requests per second.

    python3 keepalive.py URL N [--proxy http://H:P | https://H:P] [--cafile PEM]

The request is absolute-form when a proxy is given (plain, or TLS to the proxy), origin-form
otherwise. The same client for every row of tls_bench.sh, so the rows compare; its own cost
(Python) is in every figure."""
import socket
import ssl
import sys
import time
from urllib.parse import urlsplit


def main():
    args = sys.argv[1:]
    url, n = args[0], int(args[1])
    proxy = args[args.index("--proxy") + 1] if "--proxy" in args else None
    cafile = args[args.index("--cafile") + 1] if "--cafile" in args else None
    u = urlsplit(url)
    target = url if proxy else (u.path or "/") + ("?" + u.query if u.query else "")
    where = urlsplit(proxy) if proxy else u
    s = socket.create_connection((where.hostname, where.port), timeout=60)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if proxy and where.scheme == "https":
        s = ssl.create_default_context(cafile=cafile).wrap_socket(s, server_hostname=where.hostname)
    req = ("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, u.netloc)).encode()
    buf = b""
    t0 = time.monotonic()
    for _ in range(n):
        s.sendall(req)
        while b"\r\n\r\n" not in buf:
            buf += s.recv(65536)
        head, buf = buf.split(b"\r\n\r\n", 1)
        length = 0
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v)
        while len(buf) < length:
            buf += s.recv(65536)
        buf = buf[length:]
    print("%.0f" % (n / (time.monotonic() - t0)))


if __name__ == "__main__":
    main()
