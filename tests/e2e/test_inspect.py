"""End-to-end tests of inspected tunnels: proxyd with a CA in its data folder decrypts the
CONNECTs an `inspect` rule names (never those on the no-inspect list): curl trusting the
proxy's CA talks to a local HTTPS origin through the tunnel, each request inside is decided
by the policy (a URL-regex deny of one path gives the block page, the other path passes) and
logged like plain HTTP with scheme https and its full path, two requests share one tunnel
and one origin connection, and an origin whose certificate is expired or for another name
gets the block page naming the reason, logged as a denial with it. Certificates are made by
the test with openssl: an "upstream" CA that the origins' certificates come from (given to
proxyd with --upstream-ca) and the proxy's own CA."""
import base64
import hashlib
import json
import os
import shutil
import socket
import ssl
import sqlite3
import subprocess
import tempfile
import unittest

from harness import DnsStub, Origin, Proxyd, free_port, read_head, read_response, wait_for
from tls_util import TlsOrigin, issue, make_ca

NAMES = ("origin.test", "expired.test", "wrongname.test", "bank.test", "nocert.test", "shop.test",
         "tlsport.test", "nosni.test", "closed.test", "echo.test", "bulk.test", "ws.test")

# The body each way of the two-way test: more than the socket buffers from the client to the
# origin hold (Linux grows a loopback socket's to at most 4 MiB sending and 6 MiB receiving,
# about 14 MiB over the two connections; the origin keeps 64 KiB), so a relay that stops
# reading one way while the other is blocked stalls instead of passing by luck (checked: a
# relay that reads no response before the request's end fails it after curl's 60 s).
DUPLEX_BYTES = 24 * 1024 * 1024


class HtmlOrigin(TlsOrigin):
    """An HTTPS origin that answers every request with a small HTML page naming its path."""

    def _answer(self, s, target):
        body = b"<!DOCTYPE html><title>shop</title><h1>inspected page %s</h1>" % target
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body) + body)
        return True


class EchoOrigin(TlsOrigin):
    """An HTTPS origin that answers a request with a body by sending that body back as it
    reads it: the response flows while the request body still does, and stops when the
    origin's sending stops (small socket buffers of its own, so little hides in them)."""

    def _serve(self, raw):
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        super()._serve(raw)

    def _converse(self, s):
        head, buf = read_head(s)
        if head is None:
            return
        length = int(next(line.split(b":", 1)[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:")))
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % length)
        left = length
        while left > 0:
            if not buf:
                buf = s.recv(min(left, 65536))
                if not buf:
                    return
            s.sendall(buf)
            left -= len(buf)
            buf = b""


class WsOrigin(TlsOrigin):
    """An HTTPS origin that answers a WebSocket upgrade with 101, then echoes what comes."""

    def _converse(self, s):
        head, buf = read_head(s)
        if head is None:
            return
        s.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n" + buf)
        while True:
            data = s.recv(65536)
            if not data:
                return
            s.sendall(data)


def pattern(n):
    """n bytes whose every offset below 251 * k differs from its neighbours'."""
    return (bytes(range(251)) * (n // 251 + 1))[:n]


class BulkOrigin(TlsOrigin):
    """An HTTPS origin for long bodies, which an inspected tunnel relays record by record
    without its buffer (RELAY_PASS), by path: /len/N N bytes with a Content-Length
    (keep-alive); /close/N N bytes ended by the origin's close; /extra/N a Content-Length of N
    with 1,000 bytes more behind it in the same write, so that the last record holds the end
    of the body and more; /short/N a Content-Length of N but only half of them, then the
    close."""

    def _answer(self, s, target):
        try:
            _, kind, n = target.split(b"/")
            body = pattern(int(n))
        except ValueError:
            return False
        if kind == b"close":
            s.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body)
            return False
        head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
        if kind == b"extra":
            s.sendall(head + body + b"z" * 1000)
            return False
        if kind == b"short":
            s.sendall(head + body[:len(body) // 2])
            return False
        s.sendall(head + body)
        return True


class InspectTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="pxinspect.")
        upstream = make_ca(cls.tmp, "upstream-ca")
        cls.upstream_ca = upstream[0]
        cls.origins = {
            "origin.test": TlsOrigin(*issue(cls.tmp, upstream, "origin", "origin.test")),
            "expired.test": TlsOrigin(*issue(cls.tmp, upstream, "expired", "expired.test",
                                                  start="-30d", end="-2d")),
            "wrongname.test": TlsOrigin(*issue(cls.tmp, upstream, "wrongname",
                                                    "other.test")),
            "bank.test": TlsOrigin(*issue(cls.tmp, upstream, "bank", "bank.test")),
            "shop.test": HtmlOrigin(*issue(cls.tmp, upstream, "shop", "shop.test")),
            "tlsport.test": TlsOrigin(*issue(cls.tmp, upstream, "tlsport", "tlsport.test")),
            "nosni.test": TlsOrigin(*issue(cls.tmp, upstream, "nosni", "nosni.test")),
            "echo.test": EchoOrigin(*issue(cls.tmp, upstream, "echo", "echo.test")),
            "bulk.test": BulkOrigin(*issue(cls.tmp, upstream, "bulk", "bulk.test")),
            "ws.test": WsOrigin(*issue(cls.tmp, upstream, "ws", "ws.test")),
        }
        cls.ports = {}
        for name, o in cls.origins.items():
            o.__enter__()
            cls.ports[name] = o.port
        cls.plain = Origin()  # plain HTTP
        cls.plain.__enter__()
        cls.closed_port = free_port()  # nothing listens there
        cls.dns = DnsStub(records={n: "127.0.0.1" for n in NAMES})
        cls.dns.__enter__()
        cls.px = Proxyd(dns=cls.dns, policy="inspect any\ndeny url-regex ^https://[^/]+/blocked\n",
                        extra_args=["--connect-ports",
                                    ",".join(str(p) for p in
                                             list(cls.ports.values()) + [cls.closed_port]),
                                    "--upstream-ca", cls.upstream_ca,
                                    "--listen-tls", "127.0.0.1:%d" % free_port()])
        # The proxy's CA, kept in its data folder as proxyd keeps one.
        os.makedirs(cls.px.data_dir, mode=0o700)
        ca = make_ca(cls.tmp, "proxy-ca")
        cls.proxy_ca = os.path.join(cls.px.data_dir, "ca-cert.pem")
        shutil.copy(ca[0], cls.proxy_ca)
        shutil.copy(ca[1], os.path.join(cls.px.data_dir, "ca-key.pem"))
        os.chmod(os.path.join(cls.px.data_dir, "ca-key.pem"), 0o600)
        cls.px.__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.px.__exit__(None, None, None)
        cls.dns.__exit__(None, None, None)
        for o in list(cls.origins.values()) + [cls.plain]:
            o.__exit__(None, None, None)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def url(self, name, path):
        return "https://%s:%d%s" % (name, self.ports[name], path)

    def curl(self, *urls, cacert=None, expect_exit=0, proxy=None):
        """curl through proxyd (its plain port, or proxy: its TLS port, trusting its self-made
        certificate); returns stdout (bodies, each followed by its status line)."""
        cmd = ["curl", "-sS", "--max-time", "60", "--proxy",
               proxy or "http://127.0.0.1:%d" % self.px.proxy_port,
               "--cacert", cacert or self.proxy_ca, "--noproxy", ""]
        if proxy:
            cmd += ["--proxy-cacert", os.path.join(self.px.data_dir, "tls-cert.pem")]
        for u in urls:
            cmd += [u, "-w", "\n[%{http_code}]\n"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
        self.assertEqual(r.returncode, expect_exit, "curl: %s\n%s" % (r.stderr, r.stdout))
        return r.stdout

    def rows(self, host):
        """The rows for host: each test has hosts of its own."""
        db = sqlite3.connect("file:%s?mode=ro" % self.px.db_path, uri=True, timeout=5)
        try:
            return db.execute("SELECT method, scheme, host, path, status, decision, error"
                              " FROM access_log WHERE host = ? ORDER BY id", (host,)).fetchall()
        finally:
            db.close()

    def wait_rows(self, host, n):
        """The rows for host once there are n (the writer batches them)."""
        got = wait_for(lambda: len(self.rows(host)) >= n and self.rows(host), timeout=60)
        self.assertTrue(got, "fewer than %d rows for %s: %s" % (n, host, self.rows(host)))
        return got

    def test_requests_inside_are_ruled_and_logged_with_their_path_over_one_connection(self):
        name = "origin.test"
        before = self.origins[name].accepted
        out = self.curl(self.url(name, "/a?x=1"), self.url(name, "/blocked/page"),
                        self.url(name, "/b"))
        parts = out.split("\n[")
        self.assertEqual(parts[0], "secure:/a?x=1")
        self.assertTrue(parts[1].startswith("200]"), out)
        self.assertIn("blocked by the office", parts[1])
        self.assertTrue(parts[2].startswith("403]"), out)
        self.assertTrue(parts[2].endswith("secure:/b"), out)
        # One tunnel, one connection to the origin for all three requests.
        self.assertEqual(self.origins[name].accepted - before, 1)
        rows = self.wait_rows(name, 4)
        connect, inside = rows[0], rows[1:]
        self.assertEqual(connect[:2], ("CONNECT", "https"))
        self.assertEqual(connect[4], 200)
        self.assertEqual([r[:5] for r in inside],
                         [("GET", "https", name, "/a?x=1", 200),
                          ("GET", "https", name, "/blocked/page", 403),
                          ("GET", "https", name, "/b", 200)])
        self.assertEqual([r[5] for r in inside], [0, 1, 0])  # allow, deny, allow

    def test_a_policy_change_closes_a_websocket_inside_an_inspected_tunnel(self):
        # A WebSocket opened inside an inspected tunnel is a tunnel too: a rule added while it
        # is open that denies it closes it, as it closes a plain CONNECT's.
        name, port = "ws.test", self.ports["ws.test"]
        raw = self.px.connect()
        raw.sendall(("CONNECT %s:%d HTTP/1.1\r\nHost: %s:%d\r\n\r\n"
                     % (name, port, name, port)).encode())
        head, _ = read_head(raw)
        self.assertTrue(head.startswith(b"HTTP/1.1 200"), head)
        ctx = ssl.create_default_context(cafile=self.proxy_ca)
        with ctx.wrap_socket(raw, server_hostname=name) as s:
            s.sendall(("GET /ws HTTP/1.1\r\nHost: %s:%d\r\nConnection: Upgrade\r\n"
                       "Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                       "Sec-WebSocket-Version: 13\r\n\r\n" % (name, port)).encode())
            head, got = read_head(s)
            self.assertTrue(head.startswith(b"HTTP/1.1 101"), head)
            s.sendall(b"\x81\x05hello")
            while len(got) < 7:
                got += s.recv(100)
            self.assertEqual(got, b"\x81\x05hello")
            rule = self.px.api("POST", "/api/rules", {"text": "deny domain ws.test", "before": -1})
            try:
                s.settimeout(60)  # hang guard: the rule is in force within a second
                try:
                    self.assertEqual(s.recv(1), b"")
                except (ConnectionResetError, ssl.SSLError):
                    pass
            finally:
                self.px.api("DELETE", "/api/rules/%d" % rule["rule"]["id"])
        rows = wait_for(lambda: [r for r in self.rows(name)
                                 if r[6].startswith("closed by a policy change")], timeout=60)
        self.assertTrue(rows, self.rows(name))
        self.assertEqual(rows[-1][3], "/ws")

    def test_origin_certificate_failures_get_the_block_page_with_the_reason(self):
        for name, reason in (("expired.test", "certificate expired"),
                             ("wrongname.test", "certificate is for another name")):
            out = self.curl(self.url(name, "/x"))
            self.assertIn("[403]", out)
            self.assertIn(reason, out)
            rows = self.wait_rows(name, 2)
            self.assertEqual(rows[-1][:5], ("GET", "https", name, "/x", 403))
            self.assertEqual(rows[-1][5], 1)  # deny
            self.assertIn(reason, rows[-1][6])

    def test_tls_proxy_port_inspects_too(self):
        # curl speaks TLS to the proxy port, and inside it to the host as proxyd minted it
        # (TLS inside TLS): the requests inside are ruled and logged as on the plain port.
        name = "tlsport.test"
        tls_port = int(self.px.args[self.px.args.index("--listen-tls") + 1].rsplit(":", 1)[1])
        out = self.curl(self.url(name, "/ok"), self.url(name, "/blocked/x"),
                        proxy="https://127.0.0.1:%d" % tls_port)
        self.assertIn("secure:/ok\n[200]", out)
        self.assertIn("[403]", out)
        rows = self.wait_rows(name, 3)
        self.assertEqual([r[:5] for r in rows], [("CONNECT", "https", name, "", 200),
                                                  ("GET", "https", name, "/ok", 200),
                                                  ("GET", "https", name, "/blocked/x", 403)])
        self.assertEqual(self.origins[name].accepted, 1)

    def test_large_bodies_both_ways_at_once_through_tls_inside_tls(self):
        # curl sends a body larger than the sockets on the way hold while the origin sends it
        # back as it reads: through an inspected tunnel inside TLS to the proxy port (and on
        # the plain port), both sessions of the client's socket read and write at once, and
        # everything arrives (curl's --max-time is the hang guard).
        name = "echo.test"
        tls_port = int(self.px.args[self.px.args.index("--listen-tls") + 1].rsplit(":", 1)[1])
        body = os.path.join(self.tmp, "duplex.bin")
        with open(body, "wb") as f:
            f.write(os.urandom(DUPLEX_BYTES))
        with open(body, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        for proxy in ("https://127.0.0.1:%d" % tls_port, None):
            with self.subTest(proxy=proxy or "plain port"):
                out = os.path.join(self.tmp, "duplex.out")
                cmd = ["curl", "-sS", "--max-time", "60", "--noproxy", "", "--cacert",
                       self.proxy_ca, "-H", "Expect:", "-T", body, "-o", out, "-w", "%{http_code}",
                       "--proxy", proxy or "http://127.0.0.1:%d" % self.px.proxy_port]
                if proxy:
                    cmd += ["--proxy-cacert", os.path.join(self.px.data_dir, "tls-cert.pem")]
                r = subprocess.run(cmd + [self.url(name, "/echo")], capture_output=True,
                                   text=True, timeout=90)
                self.assertEqual((r.returncode, r.stdout), (0, "200"), r.stderr)
                with open(out, "rb") as f:
                    self.assertEqual(hashlib.sha256(f.read()).hexdigest(), digest)
                os.unlink(out)
        os.unlink(body)
        # Each tunnel's CONNECT and PUT, in any order: the two connections may be served by
        # two workers, whose rows reach the writer in the order it drains their rings (the
        # order asserted here once failed in scripts/test.sh: both CONNECTs first).
        rows = self.wait_rows(name, 4)
        self.assertEqual(sorted(r[:5] for r in rows),
                         sorted([("CONNECT", "https", name, "", 200),
                                 ("PUT", "https", name, "/echo", 200)] * 2))

    def test_long_bodies_pass_record_by_record_and_end_where_their_framing_says(self):
        # Long bodies between the two sessions skip the relay's buffer (RELAY_PASS); its
        # framing still decides where each ends: two Content-Length bodies on one tunnel and
        # one origin connection, a body ended by the origin's close, a record holding the
        # body's end and bytes past it (only the body reaches the client), and a body cut
        # short (the client sees the cut, not a complete download). On the plain port and
        # inside TLS to the TLS port, where each record is resent as two smaller ones.
        name = "bulk.test"
        tls_port = int(self.px.args[self.px.args.index("--listen-tls") + 1].rsplit(":", 1)[1])
        sizes = (1024 * 1024 + 123, 300 * 1000)
        for proxy in (None, "https://127.0.0.1:%d" % tls_port):
            with self.subTest(proxy=proxy or "plain port"):
                before = self.origins[name].accepted
                outs = self.download([self.url(name, "/len/%d" % n) for n in sizes], proxy)
                self.assertEqual(outs, [pattern(n) for n in sizes])
                self.assertEqual(self.origins[name].accepted - before, 1)
                self.assertEqual(self.download([self.url(name, "/close/200003")], proxy),
                                 [pattern(200003)])
                self.assertEqual(self.download([self.url(name, "/extra/500001")], proxy),
                                 [pattern(500001)])
                short = self.download([self.url(name, "/short/400000")], proxy, expect_ok=False)
                self.assertLess(len(short[0]), 400000)
                self.assertEqual(short[0], pattern(len(short[0])))
        # curl stops at the Content-Length: a raw client sees whether anything came past it.
        s = self.tunnel(name)
        ctx = ssl.create_default_context(cafile=self.proxy_ca)
        with ctx.wrap_socket(s, server_hostname=name) as t:
            t.sendall(b"GET /extra/500001 HTTP/1.1\r\nHost: %s\r\n\r\n" % name.encode())
            status, _, body, rest = read_response(t)
            self.assertEqual((status, body == pattern(500001)), (200, True))
            t.sendall(b"GET /len/70000 HTTP/1.1\r\nHost: %s\r\n\r\n" % name.encode())
            status, _, body, rest = read_response(t, rest)
            self.assertEqual((status, body == pattern(70000), rest), (200, True, b""))

    def tunnel(self, name):
        """A socket through proxyd to name's origin (a CONNECT answered 200), before TLS."""
        port = self.ports[name]
        s = socket.create_connection(("127.0.0.1", self.px.proxy_port), timeout=60)
        s.sendall(b"CONNECT %s:%d HTTP/1.1\r\nHost: %s:%d\r\n\r\n"
                  % (name.encode(), port, name.encode(), port))
        head, _ = read_head(s)
        self.assertTrue(head and head.startswith(b"HTTP/1.1 200"), head)
        return s

    def download(self, urls, proxy, expect_ok=True):
        """The bodies of urls fetched by one curl through proxyd (one tunnel)."""
        cmd = ["curl", "-sS", "--max-time", "60", "--noproxy", "", "--cacert", self.proxy_ca,
               "--proxy", proxy or "http://127.0.0.1:%d" % self.px.proxy_port]
        if proxy:
            cmd += ["--proxy-cacert", os.path.join(self.px.data_dir, "tls-cert.pem")]
        files = [os.path.join(self.tmp, "bulk%d.out" % i) for i in range(len(urls))]
        for u, f in zip(urls, files):
            cmd += [u, "-o", f]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
        if expect_ok:
            self.assertEqual(r.returncode, 0, r.stderr)
        else:
            self.assertNotEqual(r.returncode, 0, "a cut body was taken as complete")
        outs = []
        for f in files:
            with open(f, "rb") as fh:
                outs.append(fh.read())
            os.unlink(f)
        return outs

    def test_client_hello_without_server_name_is_inspected_as_the_connect_host(self):
        name, port = "nosni.test", self.ports["nosni.test"]
        s = self.tunnel(name)
        ctx = ssl.create_default_context(cafile=self.proxy_ca)
        ctx.check_hostname = False  # no name sent: the CA's signature is still checked
        with ctx.wrap_socket(s, server_hostname=None) as t:
            self.assertEqual(t.getpeercert()["subjectAltName"], (("DNS", name),))
            t.sendall(b"GET /nosni HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n"
                      % (name.encode(), port))
            status, headers, body = read_response(t)[:3]
        self.assertEqual((status, body), (200, b"secure:/nosni"))
        rows = self.wait_rows(name, 2)
        self.assertEqual([r[:5] for r in rows], [("CONNECT", "https", name, "", 200),
                                                  ("GET", "https", name, "/nosni", 200)])

    def test_client_without_the_ca_sees_a_certificate_error(self):
        # curl's exit 60: the peer's certificate could not be verified. (A name of its own, at
        # origin.test's port: the rows of origin.test stay the other test's.)
        url = "https://nocert.test:%d/nope" % self.ports["origin.test"]
        self.curl(url, cacert=self.upstream_ca, expect_exit=60)
        rows = self.wait_rows("nocert.test", 1)
        self.assertEqual(rows[0][:2], ("CONNECT", "https"))
        self.assertEqual(len(rows), 1)  # nothing was asked inside

    def test_failed_inspected_connect_leaves_the_next_request_plain(self):
        # The CONNECT is to be inspected but its origin refuses: a 502, and the connection
        # goes on; the next request on it is plain HTTP, not the start of a tunnel.
        s = socket.create_connection(("127.0.0.1", self.px.proxy_port), timeout=60)
        with s:
            s.sendall(b"CONNECT closed.test:%d HTTP/1.1\r\nHost: closed.test\r\n\r\n"
                      % self.closed_port)
            head, rest = read_head(s, b"")
            self.assertTrue(head.startswith(b"HTTP/1.1 502"), head)
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            while len(rest) < length:
                rest += s.recv(65536)
            s.sendall(b"GET http://closed.test:%d/small HTTP/1.1\r\nHost: closed.test\r\n\r\n"
                      % self.plain.port)
            head, body = read_head(s, rest[length:])
            self.assertTrue(head.startswith(b"HTTP/1.1 200"), head)
            while len(body) < 1024:
                body += s.recv(65536)
            self.assertEqual(body, b"x" * 1024)

    def test_shipped_no_inspect_list_holds_until_the_policy_has_its_own(self):
        def tunnel(url):
            return self.px.api("POST", "/api/test", {"url": url, "method": "CONNECT"})["inspect"]
        got = tunnel("https://www.paypal.com/")
        self.assertEqual((got["inspect"], got["no_inspect"]), (False, True))
        self.assertEqual(got["reason"], "no-inspect list (paypal.com)")
        self.px.api("PUT", "/api/lists/no-inspect", b"bank.test\n")
        try:
            got = tunnel("https://www.paypal.com/")
            self.assertEqual((got["inspect"], got["no_inspect"]), (True, False))
        finally:
            self.px.api("DELETE", "/api/lists/no-inspect")

    def test_no_inspect_list_wins_and_the_tunnel_is_spliced(self):
        self.px.api("PUT", "/api/lists/no-inspect", b"bank.test\n")
        try:
            # The origin's own certificate reaches curl: only its CA verifies it.
            out = self.curl(self.url("bank.test", "/private"), cacert=self.upstream_ca)
            self.assertEqual(out, "secure:/private\n[200]\n")
            rows = self.wait_rows("bank.test", 1)
            self.assertEqual([r[:2] for r in rows], [("CONNECT", "https")])
        finally:
            self.px.api("DELETE", "/api/lists/no-inspect")

    def test_chromium_loads_an_inspected_page_and_sees_the_block_page_inside(self):
        from browser_case import BROWSER_DIR, CHROMIUM, SHOTS, run_node
        if not os.access(CHROMIUM, os.X_OK):
            self.skipTest("no %s: install Debian's chromium package" % CHROMIUM)
        if not os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", "playwright-core")):
            self.skipTest("no playwright-core: run `npm ci` in tests/e2e/browser")
        port = self.ports["shop.test"]
        # Chromium trusts the certificate proxyd mints by its key: read it through proxyd.
        raw = self.tunnel("shop.test")
        ctx = ssl.create_default_context(cafile=self.proxy_ca)
        with ctx.wrap_socket(raw, server_hostname="shop.test") as t:
            der = t.getpeercert(binary_form=True)
        pub = subprocess.run(["openssl", "x509", "-inform", "der", "-pubkey", "-noout"],
                             input=der, capture_output=True, check=True, timeout=60).stdout
        key = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pub,
                             capture_output=True, check=True, timeout=60).stdout
        spki = base64.b64encode(hashlib.sha256(key).digest()).decode()
        cfg = {"proxyPort": self.px.proxy_port, "originPort": port, "spki": spki,
               "shots": SHOTS}
        code, out = run_node(["node", "inspect_flow.mjs", json.dumps(cfg)], timeout=330)
        print(out)
        self.assertIsNotNone(code, "inspect_flow.mjs did not finish in 330 s:\n" + out)
        self.assertEqual(code, 0, "inspect_flow.mjs failed:\n" + out)
        for name in ("inspect-page.png", "inspect-blocked-path.png"):
            with open(os.path.join(SHOTS, name), "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n", name)
        rows = self.wait_rows("shop.test", 3)
        inside = [r[:5] for r in rows if r[0] != "CONNECT"]
        self.assertIn(("GET", "https", "shop.test", "/welcome", 200), inside)
        self.assertIn(("GET", "https", "shop.test", "/blocked/page", 403), inside)


if __name__ == "__main__":
    unittest.main()
