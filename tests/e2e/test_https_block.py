"""End-to-end tests of the HTTPS block page: with a local CA in the data folder, a denied
CONNECT (by a rule, or by its port) is answered 200, the TLS handshake is made with a
certificate the CA signed for the host, and the first request inside gets the same 403 block
page plain HTTP gets. curl trusting the CA sees the page; curl without it fails on the
certificate (no worse than the tunnel error it got before). The access log keeps one deny row.
The setting https_block_page off brings back the plain 403 to the CONNECT."""
import html
import os
import re
import shutil
import sqlite3
import ssl
import subprocess
import tempfile
import unittest
import urllib.parse

from harness import DnsStub, Proxyd, free_port, read_head, read_response, wait_for

POLICY = "deny domain blocked.test\n"


def make_ca(directory):
    """A CA certificate and key the way an office PKI (openssl) makes them."""
    os.makedirs(directory, exist_ok=True)
    cert = os.path.join(directory, "ca-cert.pem")
    key = os.path.join(directory, "ca-key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "30", "-subj", "/CN=Test Office CA",
                    "-addext", "basicConstraints=critical,CA:TRUE",
                    "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
                   check=True, capture_output=True, timeout=60)
    os.chmod(key, 0o600)
    return cert


class HttpsBlockPageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="pxhbp.")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.dns = cls.enterClassContext(DnsStub({"blocked.test": "127.0.0.1",
                                                 "page.blocked.test": "127.0.0.1",
                                                 "form.blocked.test": "127.0.0.1",
                                                 "tlsport.blocked.test": "127.0.0.1",
                                                 "logo.blocked.test": "127.0.0.1",
                                                 "nosni.blocked.test": "127.0.0.1",
                                                 "allowed.test": "127.0.0.1"}))
        cls.tls_port = free_port()
        px = Proxyd(dns=cls.dns, policy=POLICY,
                    extra_args=["--listen-tls", "127.0.0.1:%d" % cls.tls_port])
        cls.cacert = make_ca(px.data_dir)  # there before the start: loaded at start
        cls.px = cls.enterClassContext(px)

    def curl(self, url, *args):
        out = os.path.join(self.tmp, "body")
        r = subprocess.run(["curl", "-sS", "-o", out, "-w", "%{http_code}", "--max-time", "60",
                            "--proxy", "http://127.0.0.1:%d" % self.px.proxy_port, *args, url],
                           capture_output=True, timeout=90)
        body = b""
        if os.path.exists(out):
            with open(out, "rb") as f:
                body = f.read()
            os.unlink(out)
        return r.returncode, int(r.stdout or b"0"), body, r.stderr.decode("utf-8", "replace")

    def rows(self, host):
        db = sqlite3.connect("file:%s?mode=ro" % self.px.db_path, uri=True, timeout=5)
        try:
            return db.execute("SELECT method, decision, status, error, rule_id FROM access_log "
                              "WHERE host = ? ORDER BY id", (host,)).fetchall()
        finally:
            db.close()

    def test_client_trusting_the_ca_sees_the_block_page(self):
        # A name of its own, so that no other test's row is counted.
        rc, status, body, err = self.curl("https://page.blocked.test/some/path", "--cacert",
                                          self.cacert)
        self.assertEqual((rc, status), (0, 403), err)
        self.assertIn(b"blocked by the office&#39;s access policy (rule 1)", body)
        self.assertIn(b"<html", body.lower())
        # One row, the CONNECT's, a deny.
        rows = wait_for(lambda: self.rows("page.blocked.test"), timeout=60)
        self.assertEqual(len(rows), 1, rows)
        self.assertEqual(rows[0][:3], ("CONNECT", 1, 403))
        self.assertEqual(rows[0][4], 1)

    def test_tls_proxy_port_shows_the_page_inside_the_tunnel(self):
        # The CONNECT comes over TLS to the proxy port: the 200 and the session as the host
        # go inside that TLS (TLS inside TLS), and the page is the same. (Retried while the
        # setting another test turned off and on again is read back, within a poll.)
        def page():
            got = self.curl("https://tlsport.blocked.test/inside", "--proxy",
                            "https://127.0.0.1:%d" % self.tls_port, "--proxy-cacert",
                            os.path.join(self.px.data_dir, "tls-cert.pem"), "--cacert",
                            self.cacert)
            return got[:2] == (0, 403) and got
        got = wait_for(page, timeout=30)
        self.assertTrue(got, "no block page inside the TLS proxy port's tunnel")
        rc, status, body, err = got
        self.assertIn(b"blocked by the office&#39;s access policy (rule 1)", body)
        rows = wait_for(lambda: self.rows("tlsport.blocked.test"), timeout=60)
        self.assertEqual(rows[-1][:3], ("CONNECT", 1, 403))

    def test_client_without_the_ca_gets_a_certificate_error(self):
        rc, status, body, err = self.curl("https://blocked.test/")
        self.assertEqual(rc, 60, err)  # CURLE_PEER_FAILED_VERIFICATION
        self.assertNotIn(b"blocked", body)

    def test_refused_port_gets_the_page_with_the_reason(self):
        rc, status, body, err = self.curl("https://allowed.test:8443/", "--cacert", self.cacert)
        self.assertEqual((rc, status), (0, 403), err)
        self.assertIn(b"CONNECT to port 8443 is not allowed", body)

    def test_certificate_names_the_host_and_is_signed_by_the_ca(self):
        s = self.px.connect()
        s.sendall(b"CONNECT blocked.test:443 HTTP/1.1\r\nHost: blocked.test:443\r\n\r\n")
        head, rest = read_head(s)
        self.assertTrue(head.startswith(b"HTTP/1.1 200"), head)
        ctx = ssl.create_default_context(cafile=self.cacert)
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        with ctx.wrap_socket(s, server_hostname="blocked.test") as t:
            self.assertEqual(t.selected_alpn_protocol(), "http/1.1")
            cert = t.getpeercert()
            self.assertIn(("DNS", "blocked.test"), cert["subjectAltName"])
            t.sendall(b"HEAD / HTTP/1.1\r\nHost: blocked.test\r\n\r\n")
            status, headers, body = read_response(t, head_request=True)[:3]
            self.assertEqual(status, 403)
            self.assertEqual(body, b"")

    def test_client_hello_without_server_name_gets_the_page_for_the_connect_host(self):
        s = self.px.connect()
        s.sendall(b"CONNECT nosni.blocked.test:443 HTTP/1.1\r\nHost: nosni.blocked.test:443\r\n\r\n")
        head, rest = read_head(s)
        self.assertTrue(head.startswith(b"HTTP/1.1 200"), head)
        ctx = ssl.create_default_context(cafile=self.cacert)
        ctx.check_hostname = False  # no name sent: the CA's signature is still checked
        with ctx.wrap_socket(s, server_hostname=None) as t:
            self.assertEqual(t.getpeercert()["subjectAltName"], (("DNS", "nosni.blocked.test"),))
            t.sendall(b"GET / HTTP/1.1\r\nHost: nosni.blocked.test\r\n\r\n")
            status, headers, body = read_response(t)[:3]
        self.assertEqual(status, 403)
        self.assertIn(b"blocked by the office", body)
        rows = wait_for(lambda: self.rows("nosni.blocked.test"), timeout=60)
        self.assertEqual([r[:3] for r in rows], [("CONNECT", 1, 403)])

    def test_request_access_form_works_inside_tls(self):
        self.px.api("PUT", "/api/settings", {"access_requests": "on"})
        try:
            def page_with_form():
                rc, status, body, err = self.curl("https://form.blocked.test/", "--cacert",
                                                  self.cacert)
                return status == 403 and re.search(rb'name="t" value="([^"]+)"', body)
            m = wait_for(page_with_form, timeout=30)
            self.assertTrue(m, "no request-access form on the HTTPS block page")
            token = html.unescape(m.group(1).decode())
            query = urllib.parse.urlencode({"t": token, "reason": "needed for work",
                                            "name": "Tester"})
            rc, status, body, err = self.curl(
                "https://form.blocked.test/.proxyd/request-access?" + query, "--cacert",
                self.cacert)
            self.assertEqual((rc, status), (0, 202), (err, body))
            self.assertIn(b"sent to the administrators", body)
            reqs = wait_for(lambda: [r for r in self.px.api("GET", "/api/requests")["rows"]
                                     if r["host"] == "form.blocked.test"], timeout=60)
            self.assertTrue(reqs)
            self.assertEqual(reqs[0]["reason"], "needed for work")
        finally:
            self.px.api("PUT", "/api/settings", {"access_requests": "off"})

    def test_block_page_inside_tls_carries_the_contact_line_and_logo(self):
        png = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4n"
               "GNgYPj/HwADAgH/eL9GtQAAAABJRU5ErkJggg==")
        self.px.api("PUT", "/api/settings", {"block_logo": png, "block_contact": "IT <desk>"})
        try:
            rc, status, body, err = self.curl("https://logo.blocked.test/", "--cacert",
                                              self.cacert)
            self.assertEqual((rc, status), (0, 403), err)
            self.assertIn(('src="%s"' % png).encode(), body)
            self.assertIn(b"Contact: IT &lt;desk&gt;", body)
        finally:
            self.px.api("PUT", "/api/settings", {"block_logo": None, "block_contact": None})

    def test_setting_off_answers_the_connect_itself(self):
        self.px.api("PUT", "/api/settings", {"https_block_page": "off"})
        try:
            # The main thread reads the setting within a poll; then CONNECT gets the 403.
            def plain_403():
                s = self.px.connect()
                with s:
                    s.sendall(b"CONNECT blocked.test:443 HTTP/1.1\r\nHost: blocked.test\r\n\r\n")
                    return read_head(s)[0].startswith(b"HTTP/1.1 403")
            self.assertTrue(wait_for(plain_403, timeout=30))
        finally:
            self.px.api("PUT", "/api/settings", {"https_block_page": "on"})


if __name__ == "__main__":
    unittest.main()
