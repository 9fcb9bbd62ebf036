"""End-to-end tests of the settings an admin changes on the running proxy (PUT /api/settings):
each bad value is refused with a message naming the field and nothing is stored; each change
is audited as before -> after; and each is in force through the running proxy at once, with
no restart: the block page's contact line (escaped) and logo, the allowed client networks (a
client outside them is refused, one inside is served), retention (rows are trimmed, old
policy versions pruned), and
unsetting a setting brings the config's value back (precedence: setting over config)."""
import base64
import json
import os
import re
import socket
import sqlite3
import subprocess
import tempfile
import unittest
import urllib.error
import urllib.request

from harness import PROXYCTL, DnsStub, Origin, Proxyd, read_response, wait_for

RECORDS = {"allowed.test": "127.0.0.1", "blocked.test": "127.0.0.1"}
POLICY = "deny domain blocked.test\n"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYPj/HwADAgH/eL9GtQAAAABJRU5ErkJggg==")
SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="8" height="8">' \
      b'<rect width="8" height="8" fill="#036"/></svg>'


def data_uri(kind, raw):
    return "data:%s;base64,%s" % (kind, base64.b64encode(raw).decode())


class SettingsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="pxset.")
        cls.addClassCleanup(cls.tmp.cleanup)
        cls.conf = os.path.join(cls.tmp.name, "proxyd.conf")
        with open(cls.conf, "w") as f:
            f.write("contact From the config file\nretention-rows 0\n")
        cls.dns = cls.enterClassContext(DnsStub(records=RECORDS))
        cls.origin = cls.enterClassContext(Origin())
        cls.px = cls.enterClassContext(Proxyd(dns=cls.dns, policy=POLICY,
                                              extra_args=["--config", cls.conf]))

    def put(self, body, expect=200):
        """PUT /api/settings; returns the decoded answer (the error's for a 4xx)."""
        try:
            got = self.px.api("PUT", "/api/settings", body)
            status = 200
        except urllib.error.HTTPError as e:
            status, got = e.code, json.loads(e.read() or b"null")
        self.assertEqual(status, expect, got)
        return got

    def block_page(self, source="127.0.0.1", host="blocked.test"):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(60)
        with s:
            s.bind((source, 0))
            s.connect(("127.0.0.1", self.px.proxy_port))
            s.sendall(("GET http://%s:%d/small HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                       % (host, self.origin.port, host)).encode())
            status, headers, body = read_response(s)[:3]
        return status, dict((k.lower(), v) for k, v in headers), body.decode("utf-8", "replace")

    def audit(self):
        return [r for r in self.px.api("GET", "/api/audit?limit=100")["rows"]
                if r["action"] == "setting.set"]

    def test_bad_values_are_refused_naming_the_field(self):
        before = self.px.api("GET", "/api/settings")["settings"]
        audited = len(self.audit())
        cases = [
            ({"retention_days": "ten"}, "retention_days", "whole number"),
            ({"retention_days": "-1"}, "retention_days", "whole number"),
            ({"retention_rows": "1e9"}, "retention_rows", "whole number"),
            ({"expired_rule_days": "99999"}, "expired_rule_days", "36500"),
            ({"version_keep": "many"}, "version_keep", "whole number"),
            ({"version_keep_days": "-3"}, "version_keep_days", "whole number"),
            ({"allow_clients": "10.0.0.0/33"}, "allow_clients", "10.0.0.0/33"),
            ({"allow_clients": "0.0.0.0/0"}, "allow_clients", "open proxy"),
            ({"allow_clients": "::/0"}, "allow_clients", "open proxy"),
            ({"allow_clients": " , "}, "allow_clients", "no network"),
            ({"block_contact": "x" * 201}, "block_contact", "200 bytes"),
            ({"block_contact": "two\nlines"}, "block_contact", "control"),
            ({"block_logo": "http://example.com/logo.png"}, "block_logo", "data: URI"),
            ({"block_logo": data_uri("image/png", b"GIF89a" + b"\0" * 30)}, "block_logo",
             "not a PNG, JPEG or SVG"),
            ({"block_logo": data_uri("image/jpeg", PNG)}, "block_logo",
             "said to be image/jpeg, but its bytes are image/png"),
            ({"block_logo": data_uri("image/png", PNG + b"\0" * 17000)}, "block_logo",
             "at most 16384 bytes"),
            ({"block_logo": "data:image/png;base64,!!!!"}, "block_logo", "does not decode"),
            ({"access_requests": "yes"}, "access_requests", "on or off"),
            ({"pac_proxy": "x\";alert(1)//:1"}, "pac_proxy", "host:port"),
            ({"retention_days": 5}, "retention_days", "string"),
            # One bad key spoils the whole change: the good one is not stored either.
            ({"retention_days": "5", "allow_clients": "nonsense"}, "allow_clients", "nonsense"),
        ]
        for body, field, words in cases:
            with self.subTest(body=str(body)[:80]):
                got = self.put(body, 400)
                self.assertEqual(got.get("field"), field, got)
                self.assertIn(field, got["error"])
                self.assertIn(words, got["error"])
        self.assertEqual(self.px.api("GET", "/api/settings")["settings"], before)
        self.assertEqual(len(self.audit()), audited)

    def test_contact_line_and_logo_are_live_and_audited(self):
        # The config's contact line while the setting is unset.
        status, headers, page = self.block_page()
        self.assertEqual(status, 403)
        self.assertIn("Contact: From the config file", page)
        self.assertIn("default-src 'none'", headers["content-security-policy"])
        fields = {f["key"]: f for f in self.px.api("GET", "/api/settings")["fields"]}
        self.assertEqual(fields["block_contact"]["config_value"], "From the config file")
        self.assertEqual(fields["block_contact"]["in_force"], "From the config file")
        self.assertEqual(fields["block_contact"]["group"], "Block page")

        contact = 'IT desk <b>"ext. 42"</b> & co'
        logo = data_uri("image/png", PNG)
        got = self.put({"block_contact": contact, "block_logo": logo})
        self.assertEqual(got["settings"]["block_contact"], contact)
        # In force when the PUT returns: no poll to wait for.
        status, headers, page = self.block_page()
        self.assertIn("Contact: IT desk &lt;b&gt;&quot;ext. 42&quot;&lt;/b&gt; &amp; co", page)
        self.assertNotIn("<b>", page)
        self.assertIn('src="%s"' % logo, page)
        # Audited as before -> after, one row each; a long value by its start and size.
        details = [r["detail"] for r in self.audit()[:2]]
        self.assertIn("block_contact: (unset) -> " + contact, details)
        self.assertIn("block_logo: (unset) -> " + logo, details)

        # An SVG too; then unset: the config's line again, and no logo.
        svg = data_uri("image/svg+xml", SVG + b"<!--" + b"-" * 200 + b"-->")
        self.put({"block_logo": svg})
        self.assertIn('src="%s"' % svg, self.block_page()[2])
        # proxyctl's table shows a long value by its start and size; --json has it whole.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PROXYCTL_", "PROXYD_"))}
        base = [PROXYCTL, "--url", self.px.admin_url, "--data-dir", self.px.data_dir]
        r = subprocess.run(base + ["settings"], capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        line = [l for l in r.stdout.splitlines() if l.startswith("block_logo")]
        self.assertEqual([l.split(None, 1)[1] for l in line],
                         ["%s... (%d bytes; --json shows it whole)" % (svg[:40], len(svg))],
                         r.stdout)
        r = subprocess.run(base + ["--json", "settings"], capture_output=True, text=True,
                           timeout=60, env=env)
        self.assertEqual(json.loads(r.stdout)["settings"]["block_logo"], svg)
        self.assertEqual(self.audit()[0]["detail"], "block_logo: %s... (%d bytes) -> %s... (%d bytes)"
                         % (logo[:40], len(logo), svg[:40], len(svg)) if len(logo) > 120 else
                         "block_logo: %s -> %s... (%d bytes)" % (logo, svg[:40], len(svg)))
        self.put({"block_contact": None, "block_logo": ""})
        page = self.block_page()[2]
        self.assertIn("Contact: From the config file", page)
        self.assertNotIn("<img", page)
        self.assertEqual(self.audit()[0]["detail"].split(":")[0], "block_logo")

    def test_allowed_client_networks_apply_to_new_connections(self):
        allowed = "http://allowed.test:%d/small" % self.origin.port
        self.assertEqual(self.px.get(allowed)[0], 200)
        got = self.put({"allow_clients": "127.0.0.2/32\n10.0.0.0/8"})
        self.assertEqual(got["settings"]["allow_clients"], "127.0.0.2/32,10.0.0.0/8")
        # The admin's own address (127.0.0.1) is outside: allowed, with a word about it.
        self.assertTrue(any("127.0.0.1" in w for w in got["warnings"]), got["warnings"])
        try:
            # No request of a client outside could pass: refused when it connects.
            with self.assertRaises((EOFError, ConnectionResetError)):
                self.block_page(source="127.0.0.1", host="allowed.test")
            status, _, page = self.block_page(source="127.0.0.2", host="allowed.test")
            self.assertEqual(status, 200)
            rows = self.audit()
            self.assertEqual(rows[0]["detail"],
                             "allow_clients: (unset) -> 127.0.0.2/32,10.0.0.0/8")
        finally:
            self.put({"allow_clients": None})
        self.assertEqual(self.px.get(allowed)[0], 200)
        self.assertIn("allowed client networks now", self.px.log())

    def test_retention_trims_the_log(self):
        for i in range(5):
            self.assertEqual(self.px.get("http://allowed.test:%d/small?r=%d"
                                         % (self.origin.port, i))[0], 200)

        def rows():
            db = sqlite3.connect("file:%s?mode=ro" % self.px.db_path, uri=True, timeout=5)
            try:
                return db.execute("SELECT count(*) FROM access_log").fetchone()[0]
            finally:
                db.close()

        self.assertTrue(wait_for(lambda: rows() >= 5, timeout=60))
        fields = {f["key"]: f for f in self.px.api("GET", "/api/settings")["fields"]}
        self.assertEqual(fields["retention_rows"]["config_value"], "0")
        self.assertEqual(fields["retention_days"]["config_value"], "90")
        self.put({"retention_rows": "2"})
        try:
            self.assertTrue(wait_for(lambda: rows() == 2, timeout=60), rows())
            self.assertIn("access log retention now 90 days, 2 rows", self.px.log())
        finally:
            self.put({"retention_rows": ""})
        self.assertTrue(wait_for(lambda: "access log retention now 90 days, 0 rows"
                                 in self.px.log(), timeout=60))

    def test_version_retention_prunes_old_policy_versions(self):
        # A proxyd of its own without traffic: versions that logged requests name, and every
        # later one, are always kept (test_version_prune.py), and this class's have traffic.
        with Proxyd(dns=self.dns) as px:
            def versions():
                return [r["version"] for r in px.api("GET", "/api/versions?limit=1000")["rows"]]

            for i in range(4):
                px.api("POST", "/api/block", {"domain": "v%d.example" % i})
            fields = {f["key"]: f for f in px.api("GET", "/api/settings")["fields"]}
            self.assertEqual(fields["version_keep"]["config_value"], "100")
            self.assertEqual(fields["version_keep_days"]["config_value"], "30")
            self.assertGreater(len(versions()), 3)  # all young, and fewer than 100
            px.api("PUT", "/api/settings", {"version_keep": "2", "version_keep_days": "0"})
            current = px.api("GET", "/api/versions")["current"]
            self.assertTrue(wait_for(lambda: versions() == [current, current - 1], timeout=60),
                            versions())
            self.assertIn("policy versions kept now: the newest 2 (0: all), and 0 days",
                          px.log())
            px.api("PUT", "/api/settings", {"version_keep": None, "version_keep_days": None})
            self.assertTrue(wait_for(lambda: "policy versions kept now: the newest 100 (0: all), "
                                     "and 30 days" in px.log(), timeout=60))

if __name__ == "__main__":
    unittest.main()
