"""The local CA and the HTTPS block page in a real browser: headless Chromium driven by
playwright-core (tests/e2e/browser/ca_flow.mjs) against the real proxyd. First an admin
creates the CA from the Local CA page (reached from Settings) and it is photographed; then
Chromium, using proxyd as its proxy and trusting the key of the certificates the CA mints,
opens a blocked HTTPS site and shows the block page, photographed. Skips like test_browser.py
without Chromium or playwright-core. Screenshots go to ca/ in $PX_BROWSER_SHOTS, else in
<build dir>/browser-shots."""
import base64
import hashlib
import os
import ssl
import subprocess
import unittest

from harness import DnsStub, Proxyd, read_head, wait_for
from browser_case import BrowserCase, SHOTS as ALL_SHOTS

SHOTS = os.path.join(ALL_SHOTS, "ca")
PASSWORD = "ca-page-test"


def minted_key_spki(px):
    """The SHA-256 (base64) of the key in the certificate proxyd presents for a blocked site:
    one key for every host this run, so Chromium trusting it trusts the page's certificate."""
    s = px.connect()
    s.sendall(b"CONNECT blocked.test:443 HTTP/1.1\r\nHost: blocked.test:443\r\n\r\n")
    head, _ = read_head(s)
    assert head.startswith(b"HTTP/1.1 200"), head
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with ctx.wrap_socket(s, server_hostname="blocked.test") as t:
        der = t.getpeercert(binary_form=True)
    pem = ssl.DER_cert_to_PEM_cert(der).encode()
    pub = subprocess.run(["openssl", "x509", "-pubkey", "-noout"], input=pem,
                         capture_output=True, check=True, timeout=60).stdout
    key = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pub,
                         capture_output=True, check=True, timeout=60).stdout
    return base64.b64encode(hashlib.sha256(key).digest()).decode()


class CaPageTest(BrowserCase):
    def node(self, cfg):
        self.run_flow("ca_flow.mjs", cfg)

    def test_create_ca_and_see_the_https_block_page(self):
        names = ("ca-desktop.png", "ca-phone.png", "https-block-page.png")
        self.clear_shots(SHOTS, names)
        with DnsStub({"blocked.test": "127.0.0.1"}) as dns, \
                Proxyd(dns=dns, policy="deny domain blocked.test\n") as px:
            px.api("PUT", "/api/admins/admin", {"password": PASSWORD})
            self.node({"phase": "ca", "admin": px.admin_url, "password": PASSWORD,
                       "shots": SHOTS})
            self.assertTrue(px.api("GET", "/api/ca")["present"])
            audit = px.api("GET", "/api/audit?q=ca.init")["rows"]
            self.assertEqual([r["actor"] for r in audit if r["action"] == "ca.init"], ["admin"])
            # proxyd takes the new CA into use within a poll.
            self.assertTrue(wait_for(lambda: "local CA in use" in px.log(), timeout=30))
            self.node({"phase": "block", "proxyPort": px.proxy_port, "spki": minted_key_spki(px),
                       "shots": SHOTS})
        for name in names:
            path = os.path.join(SHOTS, name)
            with open(path, "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n", path)
            self.assertGreater(os.path.getsize(path), 5000, path + " is nearly empty")


if __name__ == "__main__":
    unittest.main()
