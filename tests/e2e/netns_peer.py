"""The ends of test_intercept's network, run inside its namespaces (`nsenter --net=/run/netns/NS python3
netns_peer.py ...`): origins that say who they are and who called, and clients that print
what they got as one JSON line. Python stdlib and tls_util (beside it) only.

    origin --http ADDR:PORT ... --keepalive ADDR:PORT ... --tls ADDR:PORT ... --echo ADDR:PORT ...
           --cert C --key K
        (ADDR:PORT is IP:PORT or [IPv6]:PORT; DEST below an IPv4 or IPv6 address)
        HTTP: answers any request with a JSON body {"origin","peer","host","target","via"}
        keepalive: as HTTP, on persistent connections, and the body also says which of the
             port's accepted connections carried it ("conn", a number of its own for each)
        TLS: after the handshake reads "N\\n", sends a JSON line {"origin","peer"} and
             N bytes of the pattern, then closes
        echo: sends back what it reads until EOF
        prints READY once every port listens; runs until killed
    http DEST PORT HOST PATH [FROM]    one GET (Connection: close), from the address FROM if
                                       given: {"status","body"}
    tls DEST PORT SNI N                {"info","exact"} or {"error"}
    https DEST PORT SNI CAFILE         TLS trusting CAFILE only, name checked, one GET /:
                                       {"status","body"} or {"error"}
    hello DEST PORT SNI                a ClientHello in four segments: {"got": hex of the answer}
    echo DEST PORT TEXT                {"got": text}
    connect PROXY PPORT HOST PORT SNI N   CONNECT, then as tls
    --late S CLIENT-COMMAND...         a client that says nothing for S seconds after its
                                       connection is made (past the proxy's wait for first bytes)
    --pause-after N S echo ...         echo's TEXT in two parts: N bytes, S seconds, the rest
"""
import json
import socket
import ssl
import sys
import threading
import time

import harness
from tls_util import client_hello

PATTERN = bytes(range(256))


def pattern(n):
    return (PATTERN * (n // 256 + 1))[:n]


def addr(text):
    """"IP:PORT" or "[IPv6]:PORT" -> (IP, port)."""
    host, port = text.rsplit(":", 1)
    return host.strip("[]"), int(port)


def name(sockname):
    """A socket's address as proxyd logs it: "IP:PORT" or "[IPv6]:PORT"."""
    host, port = sockname[:2]
    return ("[%s]:%d" if ":" in host else "%s:%d") % (host, port)


def listen(text):
    host, _ = addr(text)
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(addr(text))
    s.listen(64)
    return s


def serve(sock, handler):
    def loop():
        while True:
            c, peer = sock.accept()
            c.settimeout(60)
            threading.Thread(target=guarded, args=(handler, c, peer), daemon=True).start()
    threading.Thread(target=loop, daemon=True).start()


def guarded(handler, c, peer):
    try:
        handler(c, peer)
    except (OSError, ValueError):
        pass
    finally:
        c.close()


def read_head(c):
    """The head on c through its blank line, or what came before the end if none did."""
    head, rest = harness.read_head(c)
    return rest if head is None else head


def http_handler(c, peer):
    head = read_head(c).decode("latin-1")
    lines = head.split("\r\n")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    body = json.dumps({"origin": name(c.getsockname()), "peer": peer[0],
                       "host": headers.get("host", ""), "target": lines[0].split(" ")[1],
                       "via": headers.get("via", "")}).encode()
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
              % (len(body), body))


def keepalive_handler():
    """A handler of its own per port, so that each counts its own connections."""
    count, lock = [0], threading.Lock()

    def handler(c, peer):
        with lock:
            count[0] += 1
            conn = count[0]
        while True:
            head = read_head(c).decode("latin-1")
            if not head:
                return
            lines = head.split("\r\n")
            host = [v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
                    if k.strip().lower() == "host"]
            body = json.dumps({"origin": name(c.getsockname()), "peer": peer[0],
                               "host": host[0] if host else "", "target": lines[0].split(" ")[1],
                               "conn": conn}).encode()
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    return handler


def tls_handler(ctx):
    def handler(c, peer):
        with ctx.wrap_socket(c, server_side=True) as t:
            line = b""
            while not line.endswith(b"\n"):
                got = t.recv(64)
                if not got:
                    return
                line += got
            info = {"origin": name(t.getsockname()), "peer": peer[0]}
            t.sendall(json.dumps(info).encode() + b"\n" + pattern(int(line)))
    return handler


def echo_handler(c, peer):
    while True:
        got = c.recv(65536)
        if not got:
            return
        c.sendall(got)


def origin(argv):
    opts = {"--http": [], "--keepalive": [], "--tls": [], "--echo": [], "--cert": [], "--key": []}
    for flag, value in zip(argv[::2], argv[1::2]):
        opts[flag].append(value)
    for a in opts["--http"]:
        serve(listen(a), http_handler)
    for a in opts["--keepalive"]:
        serve(listen(a), keepalive_handler())
    if opts["--tls"]:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(opts["--cert"][0], opts["--key"][0])
        for a in opts["--tls"]:
            serve(listen(a), tls_handler(ctx))
    for a in opts["--echo"]:
        serve(listen(a), echo_handler)
    print("READY", flush=True)
    while True:
        time.sleep(3600)


SILENT_FIRST = 0.0  # --late
PAUSE_AFTER = None  # --pause-after: (bytes, seconds)


def connect(dest, port, source=None):
    s = socket.create_connection((dest, int(port)), timeout=60,
                                 source_address=(source, 0) if source else None)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    time.sleep(SILENT_FIRST)
    return s


def read_all(s):
    data = b""
    while True:
        got = s.recv(65536)
        if not got:
            return data
        data += got


def tls_over(s, sni, n):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with ctx.wrap_socket(s, server_hostname=sni) as t:
            t.sendall(b"%d\n" % n)
            data = read_all(t)
    except (ssl.SSLError, OSError) as e:
        return {"error": "%s: %s" % (type(e).__name__, e)}
    line, _, rest = data.partition(b"\n")
    return {"info": json.loads(line), "exact": rest == pattern(n)}


def main(argv):
    global SILENT_FIRST, PAUSE_AFTER
    if argv[0] == "--late":
        SILENT_FIRST = float(argv[1])
        argv = argv[2:]
    if argv[0] == "--pause-after":
        PAUSE_AFTER = (int(argv[1]), float(argv[2]))
        argv = argv[3:]
    cmd = argv[0]
    if cmd == "origin":
        return origin(argv[1:])
    if cmd == "http":
        dest, port, host, path = argv[1:5]
        with connect(dest, port, argv[5] if len(argv) > 5 else None) as s:
            s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                       % (path, host)).encode())
            data = read_all(s)
        head, _, body = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ")[1]) if head.startswith(b"HTTP/") else 0
        out = {"status": status, "body": body.decode("latin-1")}
    elif cmd == "tls":
        dest, port, sni, n = argv[1:5]
        out = tls_over(connect(dest, port), sni, int(n))
    elif cmd == "https":
        # sni "-": a ClientHello without a server name (the certificate is still verified
        # against cafile; its names come back in "san" for the caller to check).
        dest, port, sni, cafile = argv[1:5]
        ctx = ssl.create_default_context(cafile=cafile)
        if sni == "-":
            ctx.check_hostname = False
        try:
            with ctx.wrap_socket(connect(dest, port),
                                 server_hostname=None if sni == "-" else sni) as t:
                san = [list(n) for n in t.getpeercert().get("subjectAltName", ())]
                t.sendall(("GET / HTTP/1.1\r\nHost: %s\r\n\r\n"
                           % (dest if sni == "-" else sni)).encode())
                data = read_all(t)
            head, _, body = data.partition(b"\r\n\r\n")
            out = {"status": int(head.split(b" ")[1]), "body": body.decode("latin-1"),
                   "san": san}
        except (ssl.SSLError, OSError) as e:
            out = {"error": "%s: %s" % (type(e).__name__, e)}
    elif cmd == "hello":
        dest, port, sni = argv[1:4]
        hello = client_hello(sni)
        with connect(dest, port) as s:
            for part in (hello[:3], hello[3:40], hello[40:200], hello[200:]):
                s.sendall(part)
                time.sleep(0.05)  # separate segments
            out = {"got": read_all(s).hex()}
    elif cmd == "echo":
        dest, port, text = argv[1:4]
        with connect(dest, port) as s:
            data = text.encode()
            if PAUSE_AFTER:
                s.sendall(data[:PAUSE_AFTER[0]])
                time.sleep(PAUSE_AFTER[1])
                data = data[PAUSE_AFTER[0]:]
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            out = {"got": read_all(s).decode("latin-1")}
    elif cmd == "connect":
        proxy, pport, host, port, sni, n = argv[1:7]
        s = connect(proxy, pport)
        s.sendall(("CONNECT %s:%s HTTP/1.1\r\nHost: %s:%s\r\n\r\n" % (host, port, host, port))
                  .encode())
        head = read_head(s)
        if not head.startswith(b"HTTP/1.1 200"):
            out = {"error": head.decode("latin-1")}
        else:
            out = tls_over(s, sni, int(n))
    else:
        raise SystemExit("unknown command " + cmd)
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
