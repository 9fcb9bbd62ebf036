"""End-to-end tests of the proxy port over TLS (--listen-tls): real clients (curl with
--proxy https://, Python's ssl) through proxyd's TLS port to plain and HTTPS origins, with the
same features as the plain port (absolute form, CONNECT, keep-alive, Basic auth, block page),
the self-made certificate kept in the data folder, given certificate files, and connections
that are not TLS at all closed without harm."""
import base64
import hashlib
import os
import shutil
import socket
import ssl
import stat
import subprocess
import tempfile
import unittest

from harness import (DnsStub, Origin, Proxyd, free_port, pattern, read_head, read_response,
                     wait_for)
from tls_util import TlsOrigin, make_cert, tls_connect

POLICY = """deny domain blocked.test
allow domain private.test users alice
deny domain private.test
"""


def basic(user, password):
    return "Proxy-Authorization: Basic " + base64.b64encode(
        ("%s:%s" % (user, password)).encode()).decode()


class TlsPortTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="pxtls.")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.origin_cert, cls.origin_key = make_cert(cls.tmp, "secure.test")
        names = {"allowed.test": "127.0.0.1", "blocked.test": "127.0.0.1",
                 "private.test": "127.0.0.1", "secure.test": "127.0.0.1"}
        # Each one is stopped even when a later one fails to start.
        cls.dns = cls.enterClassContext(DnsStub(names))
        cls.origin = cls.enterClassContext(Origin())
        cls.tls_origin = cls.enterClassContext(TlsOrigin(cls.origin_cert, cls.origin_key))
        cls.tls_port = free_port()
        cls.px = cls.enterClassContext(Proxyd(dns=cls.dns, policy=POLICY, extra_args=[
            "--listen-tls", "127.0.0.1:%d" % cls.tls_port,
            "--connect-ports", "443,%d,%d" % (cls.tls_origin.port, cls.origin.port)]))
        cls.px.api("PUT", "/api/users/alice", {"password": "alice-secret"})
        cls.cacert = os.path.join(cls.px.data_dir, "tls-cert.pem")
        cls.proxy = "https://127.0.0.1:%d" % cls.tls_port

    def curl(self, url, *args):
        """curl through the TLS port, trusting proxyd's self-made certificate; returns
        (exit code, HTTP status, body)."""
        out = os.path.join(self.tmp, "body")
        r = subprocess.run(["curl", "-sS", "-o", out, "-w", "%{http_code}", "--max-time", "60",
                            "--proxy", self.proxy, "--proxy-cacert", self.cacert, *args, url],
                           capture_output=True, timeout=90)
        body = b""
        if os.path.exists(out):
            with open(out, "rb") as f:
                body = f.read()
            os.unlink(out)
        return r.returncode, int(r.stdout or b"0"), body

    def test_self_made_certificate_is_kept_with_a_private_key(self):
        key = os.path.join(self.px.data_dir, "tls-key.pem")
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600)
        with open(self.cacert) as f:
            self.assertIn("BEGIN CERTIFICATE", f.read())

    def test_plain_http_origin_through_the_tls_port(self):
        rc, status, body = self.curl("http://allowed.test:%d/small" % self.origin.port)
        self.assertEqual((rc, status, len(body)), (0, 200, 1024))

    def test_long_body_through_the_tls_port_arrives_whole(self):
        n = 5 * 1024 * 1024 + 17  # long enough that a plain client would get it spliced
        rc, status, body = self.curl("http://allowed.test:%d/big?n=%d" % (self.origin.port, n))
        self.assertEqual((rc, status, len(body)), (0, 200, n))
        self.assertEqual(hashlib.sha256(body).digest(), hashlib.sha256(pattern(n)).digest())

    def test_upload_through_the_tls_port(self):
        data = os.urandom(300 * 1024)
        path = os.path.join(self.tmp, "upload")
        with open(path, "wb") as f:
            f.write(data)
        rc, status, body = self.curl("http://allowed.test:%d/echo" % self.origin.port,
                                     "--data-binary", "@" + path)
        self.assertEqual((rc, status), (0, 200))
        self.assertEqual(body, data)

    def test_https_origin_through_connect_inside_tls(self):
        rc, status, body = self.curl("https://secure.test:%d/hello" % self.tls_origin.port,
                                     "--cacert", self.origin_cert)
        self.assertEqual((rc, status, body), (0, 200, b"secure:/hello"))

    def test_connect_tunnel_carries_bytes_both_ways(self):
        # A tunnel to the plain origin: the request inside is sent through proxyd's TLS.
        with tls_connect(self.tls_port, self.cacert) as s:
            s.sendall(b"CONNECT allowed.test:%d HTTP/1.1\r\nHost: allowed.test\r\n\r\n"
                      % self.origin.port)
            head, rest = read_head(s)  # no body: the tunnel follows
            self.assertTrue(head.startswith(b"HTTP/1.1 200"), head)
            n = 1024 * 1024
            s.sendall(b"GET /big?n=%d HTTP/1.1\r\nHost: allowed.test\r\n\r\n" % n)
            status, _, body, _ = read_response(s, rest)
            self.assertEqual((status, body), (200, pattern(n)))

    def test_keep_alive_serves_several_requests_on_one_tls_connection(self):
        with tls_connect(self.tls_port, self.cacert) as s:
            rest = b""
            for i in range(3):
                s.sendall(b"GET http://allowed.test:%d/small?i=%d HTTP/1.1\r\n"
                          b"Host: allowed.test\r\n\r\n" % (self.origin.port, i))
                status, _, body, rest = read_response(s, rest)
                self.assertEqual((status, len(body)), (200, 1024))

    def test_block_page_over_tls(self):
        rc, status, body = self.curl("http://blocked.test:%d/small" % self.origin.port)
        self.assertEqual((rc, status), (0, 403))
        self.assertRegex(body, rb"access policy \(rule \d+\)\.")

    def test_basic_auth_over_tls(self):
        url = "http://private.test:%d/small" % self.origin.port
        rc, status, _ = self.curl(url)
        self.assertEqual((rc, status), (0, 407))
        rc, status, body = self.curl(url, "--proxy-user", "alice:alice-secret")
        self.assertEqual((rc, status, len(body)), (0, 200, 1024))
        rc, status, _ = self.curl(url, "--proxy-user", "alice:wrong")
        self.assertEqual((rc, status), (0, 407))

    def test_untrusted_client_check_fails_and_proxy_goes_on(self):
        # A client that does not trust the certificate gives up in the handshake.
        r = subprocess.run(["curl", "-sS", "-o", os.devnull, "--max-time", "60", "--proxy",
                            self.proxy, "http://allowed.test:%d/small" % self.origin.port],
                           capture_output=True, timeout=90)
        self.assertNotEqual(r.returncode, 0)
        rc, status, _ = self.curl("http://allowed.test:%d/small" % self.origin.port)
        self.assertEqual((rc, status), (0, 200))

    def assert_closed_without_answer(self, payload):
        with socket.create_connection(("127.0.0.1", self.tls_port), timeout=60) as s:
            s.sendall(payload)
            got = b""
            while True:
                data = s.recv(65536)
                if not data:
                    break
                got += data
        # At most a TLS alert record (content type 21), never an HTTP answer.
        self.assertFalse(got.startswith(b"HTTP/"), got[:80])
        if got:
            self.assertEqual(got[0], 21, got[:16])

    def test_plaintext_on_the_tls_port_is_closed(self):
        self.assert_closed_without_answer(
            b"GET http://allowed.test:%d/small HTTP/1.1\r\nHost: allowed.test\r\n\r\n"
            % self.origin.port)
        self.assert_closed_without_answer(os.urandom(64))
        # A handshake broken off: the client hello's first bytes, then the close.
        raw = socket.create_connection(("127.0.0.1", self.tls_port), timeout=60)
        raw.sendall(b"\x16\x03\x01\x02\x00\x01")
        raw.close()
        self.assertTrue(wait_for(lambda: "TLS handshake failed" in self.px.log(), timeout=60))
        rc, status, _ = self.curl("http://allowed.test:%d/small" % self.origin.port)
        self.assertEqual((rc, status), (0, 200))

    def test_the_plain_port_still_works(self):
        status, _, body = self.px.get("http://allowed.test:%d/small" % self.origin.port)
        self.assertEqual((status, len(body)), (200, 1024))


class TlsCertificateTest(unittest.TestCase):
    """Where the certificate comes from: kept across restarts, or given as files."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="pxtlscert.")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def request_through(self, port, cafile):
        with tls_connect(port, cafile) as s:
            s.sendall(b"GET http://127.0.0.1:1/ HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n")
            return read_response(s)[0]

    def test_self_made_certificate_is_reused_after_a_restart(self):
        port = free_port()
        px = Proxyd(admin=False, extra_args=["--listen-tls", "127.0.0.1:%d" % port])
        with px:
            with open(os.path.join(px.data_dir, "tls-cert.pem")) as f:
                first = f.read()
            px.stop()
            px.start()
            with open(os.path.join(px.data_dir, "tls-cert.pem")) as f:
                self.assertEqual(f.read(), first)
            # Trusted as it was: a request gets proxyd's own answer (port 1 is refused).
            self.assertIn(self.request_through(port, os.path.join(px.data_dir, "tls-cert.pem")),
                          (403, 502, 503))

    def test_given_certificate_files_are_served(self):
        cert, key = make_cert(self.tmp, "proxy.test", san="IP:127.0.0.1")
        port = free_port()
        with Proxyd(admin=False, extra_args=["--listen-tls", "127.0.0.1:%d" % port,
                                             "--tls-cert", cert, "--tls-key", key]) as px:
            self.assertIn(self.request_through(port, cert), (403, 502, 503))
            self.assertFalse(os.path.exists(os.path.join(px.data_dir, "tls-key.pem")))
            other, _ = make_cert(self.tmp, "other.test")
            with self.assertRaises(ssl.SSLError):  # a client trusting another one refuses
                self.request_through(port, other)

    def test_bad_certificate_settings_stop_the_start_with_a_reason(self):
        cert, key = make_cert(self.tmp, "proxy.test")
        other_cert, _ = make_cert(self.tmp, "other.test")
        cases = [
            (["--tls-cert", cert], "tls-cert and tls-key go together"),
            (["--tls-cert", cert, "--tls-key", os.path.join(self.tmp, "missing.key")],
             "missing.key"),
            (["--tls-cert", other_cert, "--tls-key", key], "its key"),
        ]
        for args, reason in cases:
            px = Proxyd(admin=False, extra_args=["--listen-tls", "127.0.0.1:%d" % free_port()]
                        + args)
            r = subprocess.run(px.args, capture_output=True, timeout=60)
            shutil.rmtree(px.tmp, ignore_errors=True)
            self.assertNotEqual(r.returncode, 0, args)
            self.assertIn(reason, (r.stdout + r.stderr).decode(), args)



class AdminTlsTest(unittest.TestCase):
    """The admin server over HTTPS (--admin-tls): pages, API, login cookie, proxyctl, PAC."""

    @classmethod
    def setUpClass(cls):
        cls.tls_port = free_port()
        cls.px = cls.enterClassContext(
            Proxyd(extra_args=["--admin-tls", "--listen-tls", "127.0.0.1:%d" % cls.tls_port]))
        cls.cacert = os.path.join(cls.px.data_dir, "tls-cert.pem")
        cls.base = "https://127.0.0.1:%d" % cls.px.admin_port

    def fetch(self, path, method="GET", body=None, headers=None, cafile=None):
        """An HTTPS request to the admin server; returns (status, headers, body)."""
        import json
        import urllib.error
        import urllib.request
        ctx = ssl.create_default_context(cafile=cafile or self.cacert)
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers=dict(headers or {}))
        if data is not None:
            req.add_header("Content-Type", "application/json")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                             urllib.request.HTTPSHandler(context=ctx))
        try:
            with opener.open(req, timeout=60) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def test_api_over_https_with_the_token(self):
        import json
        status, _, body = self.fetch("/api/stats",
                                     headers={"Authorization": "Bearer " + self.px.token})
        self.assertEqual(status, 200)
        self.assertIn("proxy", json.loads(body))
        status, _, _ = self.fetch("/api/stats")
        self.assertEqual(status, 401)

    def test_login_cookie_is_secure(self):
        status, headers, _ = self.fetch("/api/login", "POST",
                                        {"user": "admin", "password": self.px.first_password})
        self.assertEqual(status, 200)
        cookie = headers["Set-Cookie"]
        self.assertIn("pxsid=", cookie)
        self.assertIn("; Secure", cookie)
        self.assertIn("HttpOnly", cookie)

    def test_plain_http_gets_no_page(self):
        with socket.create_connection(("127.0.0.1", self.px.admin_port), timeout=60) as s:
            s.sendall(b"GET /proxy.pac HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            got = b""
            try:
                while True:
                    data = s.recv(65536)
                    if not data:
                        break
                    got += data
            except ConnectionResetError:
                pass
        self.assertNotIn(b"FindProxyForURL", got)
        self.assertFalse(got.startswith(b"HTTP/1.1 200"), got[:80])

    def test_pac_can_hand_out_the_tls_port(self):
        auth = {"Authorization": "Bearer " + self.px.token}
        status, _, body = self.fetch("/proxy.pac")
        self.assertEqual(status, 200)
        self.assertIn(b'"PROXY ', body)  # a plain listener exists: it is the default
        proxy = "127.0.0.1:%d" % self.tls_port
        status, _, _ = self.fetch("/api/settings", "PUT", {"pac_proxy": "https://" + proxy},
                                  headers=auth)
        self.assertEqual(status, 200)
        try:
            status, _, body = self.fetch("/proxy.pac")
            self.assertIn(('return "HTTPS %s";' % proxy).encode(), body)
        finally:
            self.fetch("/api/settings", "PUT", {"pac_proxy": None}, headers=auth)

    def test_proxyctl_trusts_the_self_made_certificate(self):
        from harness import PROXYCTL
        base = [PROXYCTL, "--url", self.base, "--data-dir", self.px.data_dir]
        r = subprocess.run(base + ["stats"], capture_output=True, timeout=60, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("connections_total", r.stdout)
        # Told to trust only the system's CAs, it refuses the self-signed certificate.
        r = subprocess.run(base + ["--cacert", "/etc/ssl/certs/ca-certificates.crt", "stats"],
                           capture_output=True, timeout=60, text=True)
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertIn("certificate", r.stderr)


class AdminTlsAddressTest(unittest.TestCase):
    def test_non_loopback_admin_needs_tls_or_allow_remote(self):
        port = free_port()
        px = Proxyd(admin=False, extra_args=["--admin", "0.0.0.0:%d" % port])
        r = subprocess.run(px.args, capture_output=True, timeout=60)
        shutil.rmtree(px.tmp, ignore_errors=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"--admin-tls", r.stdout + r.stderr)
        # With TLS it starts, and answers over HTTPS on every address (here: loopback).
        px = Proxyd(admin=False, extra_args=["--admin", "0.0.0.0:%d" % port, "--admin-tls"])
        with px:
            ctx = ssl.create_default_context(cafile=os.path.join(px.data_dir, "tls-cert.pem"))
            with socket.create_connection(("127.0.0.1", port), timeout=60) as raw:
                with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                    s.sendall(b"GET /proxy.pac HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % port)
                    status, _, body, _ = read_response(s)
            self.assertEqual(status, 200)
            self.assertIn(b"FindProxyForURL", body)

    def test_tls_only_proxy_hands_out_its_tls_port(self):
        tls_port = free_port()
        px = Proxyd(extra_args=["--listen-tls", "127.0.0.1:%d" % tls_port])
        i = px.args.index("--listen")
        del px.args[i:i + 2]  # no plain listener
        px.proxy_port = tls_port
        with px:
            status, _, body = self.pac(px)
            self.assertEqual(status, 200)
            self.assertRegex(body, rb'return "HTTPS [^":]+:%d";' % tls_port)

    @staticmethod
    def pac(px):
        import urllib.request
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(px.admin_url + "/proxy.pac", timeout=60) as r:
            return r.status, r.headers, r.read()


if __name__ == "__main__":
    unittest.main()
