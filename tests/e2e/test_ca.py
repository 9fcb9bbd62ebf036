"""End-to-end tests of the local CA on the running proxy: `proxyctl ca init` makes it (key
0600 in the data folder, a second init refused), `/ca.crt` serves it without a login as a
certificate openssl reads, `proxyctl ca show` names it, proxyd uses it at once for the HTTPS
block page, the audit records who made it, `proxyctl ca import` takes an office CA and
refuses what cannot sign, and /metrics counts its certificate cache."""
import os
import shutil
import stat
import subprocess
import tempfile
import unittest
import urllib.error
import urllib.request

from harness import PROXYCTL, DnsStub, Proxyd, wait_for
from test_https_block import make_ca
from tls_util import make_cert


class CaTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="pxca.")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.dns = cls.enterClassContext(DnsStub({"blocked.test": "127.0.0.1"}))
        cls.px = cls.enterClassContext(Proxyd(dns=cls.dns, policy="deny domain blocked.test\n"))

    def ctl(self, *args):
        r = subprocess.run([PROXYCTL, "--url", self.px.admin_url, "--data-dir", self.px.data_dir,
                            *args], capture_output=True, text=True, timeout=60)
        return r.returncode, r.stdout, r.stderr

    def fetch(self, path):
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(self.px.admin_url + path, timeout=60) as r:
                return r.status, r.headers.get("Content-Type"), r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("Content-Type"), e.read()

    def openssl_x509(self, pem):
        path = os.path.join(self.tmp, "got.crt")
        with open(path, "wb") as f:
            f.write(pem)
        r = subprocess.run(["openssl", "x509", "-in", path, "-noout", "-subject", "-fingerprint",
                            "-sha256"], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def curl_blocked(self, cacert):
        r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time",
                            "60", "--proxy", "http://127.0.0.1:%d" % self.px.proxy_port,
                            "--cacert", cacert, "https://blocked.test/"],
                           capture_output=True, text=True, timeout=90)
        return r.returncode, r.stdout

    def test_1_init_serve_use_audit(self):
        self.assertEqual(self.fetch("/ca.crt")[0], 404)
        code, out, err = self.ctl("ca", "show")
        self.assertEqual(code, 0, err)
        self.assertIn("no CA", out)

        code, out, err = self.ctl("ca", "init", "--cn", "Office Test CA")
        self.assertEqual(code, 0, err)
        self.assertIn("Office Test CA", out)
        key = os.path.join(self.px.data_dir, "ca-key.pem")
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600)

        status, ctype, pem = self.fetch("/ca.crt")  # no credentials
        self.assertEqual((status, ctype), (200, "application/x-x509-ca-cert"))
        parsed = self.openssl_x509(pem)
        self.assertIn("Office Test CA", parsed)
        fingerprint = parsed.split("Fingerprint=")[1].strip()
        code, out, err = self.ctl("ca", "show")
        self.assertIn(fingerprint, out)

        code, out, err = self.ctl("ca", "init")
        self.assertNotEqual(code, 0)
        self.assertIn("exists already", err)

        # The running proxy takes it into use within a poll: the block page comes inside TLS.
        cacert = os.path.join(self.tmp, "office.crt")
        with open(cacert, "wb") as f:
            f.write(pem)
        self.assertTrue(wait_for(lambda: self.curl_blocked(cacert) == (0, "403"), timeout=30),
                        self.curl_blocked(cacert))
        rows = self.px.api("GET", "/api/audit?q=ca.init")["rows"]
        self.assertTrue(any(r["action"] == "ca.init" and "Office Test CA" in r["detail"]
                            for r in rows), rows)
        status, _, metrics = self.fetch("/metrics")
        self.assertIn(b"proxyd_mint_cache_entries 1", metrics)
        self.assertIn(b"proxyd_mint_cache_misses_total 1", metrics)

    def test_2_import_takes_an_office_ca_and_refuses_a_server_certificate(self):
        office = os.path.join(self.tmp, "office")
        cert = make_ca(office)
        server_cert, server_key = make_cert(self.tmp, "server.test")
        code, out, err = self.ctl("ca", "import", server_cert, server_key)
        self.assertNotEqual(code, 0)
        self.assertIn("not a CA", err)
        # test_1's CA is kept there: replacing it is done on purpose.
        before = self.fetch("/ca.crt")[2]
        code, out, err = self.ctl("ca", "import", cert, os.path.join(office, "ca-key.pem"))
        self.assertNotEqual(code, 0)
        self.assertIn("exists already", err)
        self.assertEqual(self.fetch("/ca.crt")[2], before)
        code, out, err = self.ctl("ca", "import", "--replace", cert,
                                  os.path.join(office, "ca-key.pem"))
        self.assertEqual(code, 0, err)
        self.assertIn("Test Office CA", out)
        self.assertTrue(wait_for(lambda: self.curl_blocked(cert) == (0, "403"), timeout=30),
                        self.curl_blocked(cert))


if __name__ == "__main__":
    unittest.main()
