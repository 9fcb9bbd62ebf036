"""The admin UI in a real browser: headless Chromium (/usr/bin/chromium, Debian's package)
driven by playwright-core (tests/e2e/browser/admin_flow.mjs) against the real proxyd, with
the DNS stub and a scripted origin on 127.0.0.1.

What the browser does: logs in with the first-run password (read from the data folder's
admin.password, as an admin would), is shown the change-password form before anything else,
chooses a new password (the file is then gone), adds `deny domain news.test`
through the policy form, visits news.test (403 block page naming the rule) and allowed.test
(200) through proxyd, finds the blocked request in the live log, sees a logged URL full of
markup rendered as text, is refused state changes without the CSRF token and from a page on
another site, blocks allowed.test with the log row's "Block domain" button (403 within 1 s),
and takes screenshots of the dashboard (desktop and phone), log and policy pages.

test_tls_flow (tests/e2e/browser/tls_flow.mjs): Chromium uses proxyd's TLS port as its HTTPS
proxy, trusting proxyd's self-made certificate by its key, loads a page and a block page
through it, and logs in to the admin pages over HTTPS (the session cookie is Secure).

How Chromium is wired (admin_flow.mjs says more): --proxy-server=proxyd, and every name maps
to NOTFOUND in Chromium's own resolver, so names only work through proxyd (which resolves
them with the DNS stub); the admin pages on 127.0.0.1 go direct because Chromium bypasses
loopback by default. test_flow checks proxyd's access log for the browser's visits.

Screenshots go to $PX_BROWSER_SHOTS, else <build dir>/browser-shots.
Needs /usr/bin/chromium (scripts/deps.sh test installs it) and
tests/e2e/browser/node_modules/playwright-core (npm ci in tests/e2e/browser; scripts/test.sh
does it). playwright-core is pinned to 1.61.1, the last release that runs on Debian 12's
Node.js 18 (1.62 and later require Node.js 20). CI installs both, so there the test runs.
"""
import base64
import hashlib
import json
import os
import subprocess
import time
import unittest

from browser_case import SHOTS, BrowserCase
from harness import DnsStub, Origin, Proxyd, free_port, wait_for

SCREENSHOTS = ("first-login-password.png", "dashboard-desktop.png", "dashboard-phone.png", "log-desktop.png",
               "policy-desktop.png", "policy-phone.png", "log-why-desktop.png",
               "versions-desktop.png", "versions-phone.png", "block-page-form.png",
               "requests-desktop.png", "lists-replace.png", "lists-empty.png",
               "versions-lists.png")

# A query with markup in it; proxyd's parser takes any VCHAR but '#' in a request-target,
# so it arrives raw and is logged as is. Chromium would percent-encode it, so Python sends it.
XSS_PATH = ("/small?q=<img/src=x/onerror=window.__xss=1><script>window.__xss=1</script>"
            "<b>__xss</b>")


class CsrfOrigin(Origin):
    """The scripted origin plus /csrf-form: a page of another site whose form posts a JSON
    body (as text/plain, which needs no CORS preflight) to the admin API."""

    admin_url = None

    def _answer(self, c, method, target, headers, body, version="HTTP/1.1"):
        if not target.startswith("/csrf-form"):
            return super()._answer(c, method, target, headers, body, version)
        page = ("<!doctype html><html><body><h1>Win a prize</h1>"
                "<form method=POST enctype=text/plain action=\"%s/api/rules\">"
                "<input type=hidden name='{\"text\":\"deny domain evil.test\",\"comment\":\"' "
                "value='x\"}'><button id=go type=submit>Claim</button></form></body></html>"
                % self.admin_url).encode()
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n"
                  % len(page) + page)
        return True


NEW_PASSWORD = "browser-chose-this"


class BrowserTest(BrowserCase):
    def test_flow(self):
        self.clear_shots(SHOTS)
        records = {"allowed.test": "127.0.0.1", "news.test": "127.0.0.1"}
        with DnsStub(records=records) as dns, CsrfOrigin() as origin, Proxyd(dns=dns) as px:
            origin.admin_url = px.admin_url
            password = px.first_password
            # Traffic for the log and the dashboard, and the URL with markup in it.
            status, _, _ = px.get("http://allowed.test:%d%s" % (origin.port, XSS_PATH))
            self.assertEqual(status, 200)
            cfg = {"admin": px.admin_url, "password": password, "newPassword": NEW_PASSWORD,
                   "proxyPort": px.proxy_port,
                   "originPort": origin.port, "shots": SHOTS, "xssPath": XSS_PATH,
                   "csrfPage": "http://allowed.test:%d/csrf-form" % origin.port}
            self.run_flow("admin_flow.mjs", cfg)

            self.assert_shots(SHOTS, SCREENSHOTS)

            # What the browser did, seen from the server. The first-run password is void and
            # its file gone; the chosen one logs in without being asked to change it.
            self.assertFalse(os.path.exists(px.first_password_path))
            self.assertNotIn(password, px.log())
            self.assertEqual(px.api("GET", "/api/admins")["admins"], ["admin"])
            rules = [r["text"] for r in px.api("GET", "/api/rules")["rules"]]
            # The one-click block, then a rollback to the version before it.
            self.assertNotIn("deny domain allowed.test", rules)
            newest = px.api("GET", "/api/versions?limit=1")["rows"][0]
            self.assertEqual(newest["actor"], "admin")
            self.assertIn("undo the <b>one-click</b> block",
                          [v["message"] for v in px.api("GET", "/api/versions")["rows"]])
            # The access request the browser sent from news.test's block page, approved.
            done = px.api("GET", "/api/requests?status=all")["rows"]
            self.assertEqual([(r["host"], r["status"], r["name"]) for r in done],
                             [("news.test", "approved", "Zo\u00e9 <i>")])
            # For the hour chosen on the page: the rule expires within it.
            self.assertRegex(rules[0], r"^allow domain news\.test clients 127\.0\.0\.1 expires "
                             r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
            granted = px.api("GET", "/api/rules")["rules"][0]
            self.assertLessEqual(granted["expires"] / 1000, time.time() + 3600)
            self.assertGreater(granted["expires"] / 1000, time.time() + 3000)
            self.assertIn("deny domain news.test", rules)
            self.assertFalse([t for t in rules if "evil" in t or "csrf" in t], rules)
            news = lambda: [r for r in px.api("GET", "/api/rules")["rules"]  # noqa: E731
                            if r["text"] == "deny domain news.test"][0]
            self.assertEqual(news()["comment"], "added by the browser test")
            # Hits are counted by the log writer, in its own time.
            self.assertTrue(wait_for(lambda: news()["hits"] >= 1, timeout=60), news())

            # The browser's visits to names went through proxyd (Chromium could not resolve
            # them itself), and its admin page loads did not.
            # The log is written in batches by another thread: wait until it holds them all.
            def blocked_allowed(rows):
                return any(r["host"] == "allowed.test" and r["status"] == 403 and r["rule_id"]
                           for r in rows)

            def logged():
                rows = px.api("GET", "/api/logs?limit=1000")["rows"]
                if ("news.test" in {r["host"] for r in rows} and blocked_allowed(rows)
                        and any("/csrf-form" in r["path"] for r in rows)):
                    return rows
                return None
            rows = wait_for(logged, timeout=60) or px.api("GET", "/api/logs?limit=1000")["rows"]
            hosts = {r["host"] for r in rows}
            self.assertIn("news.test", hosts)
            self.assertTrue(blocked_allowed(rows), "no blocked allowed.test row")
            self.assertTrue(any("/csrf-form" in r["path"] for r in rows))
            self.assertFalse([r for r in rows if r["port"] == int(px.admin_url.rsplit(":", 1)[1])])
            # Chromium's own calls (autofill, accounts, updates) came to proxyd too and went
            # nowhere: the DNS stub knows only the test names, so nothing else answered.
            # news.test answered once its access request was approved.
            answered = {r["host"] for r in rows if r["status"] < 400}
            self.assertEqual(answered, {"allowed.test", "news.test"}, answered)
            self.assertTrue([r for r in rows if r["host"] == "news.test" and r["status"] == 202
                             and r["path"] == "/.proxyd/request-access"], "no logged request")

            audit = px.api("GET", "/api/audit")["rows"]
            self.assertTrue(any(a["actor"] == "admin" and "news.test" in a["detail"]
                                for a in audit), audit[:5])

            # A clean stop after all that (with sanitizers: no error or leak report).
            self.assertEqual(px.stop(), 0, "proxyd did not stop cleanly:\n" + px.log()[-3000:])

    def test_tls_flow(self):
        """proxyd's TLS port as Chromium's HTTPS proxy (a page, a block page) and the admin
        pages over HTTPS (tests/e2e/browser/tls_flow.mjs), trusting proxyd's self-made
        certificate by its key."""
        os.makedirs(SHOTS, exist_ok=True)
        records = {"allowed.test": "127.0.0.1", "news.test": "127.0.0.1"}
        tls_port = free_port()
        with DnsStub(records=records) as dns, Origin() as origin, \
                Proxyd(dns=dns, policy="deny domain news.test\n",
                       extra_args=["--admin-tls", "--listen-tls", "127.0.0.1:%d" % tls_port]) as px:
            cert = os.path.join(px.data_dir, "tls-cert.pem")
            # The key's SHA-256, base64: what --ignore-certificate-errors-spki-list takes.
            pub = subprocess.run(["openssl", "x509", "-in", cert, "-pubkey", "-noout"],
                                 capture_output=True, check=True, timeout=60).stdout
            der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pub,
                                 capture_output=True, check=True, timeout=60).stdout
            spki = base64.b64encode(hashlib.sha256(der).digest()).decode()
            cfg = {"admin": "https://127.0.0.1:%d" % px.admin_port,
                   "password": px.first_password, "tlsPort": tls_port,
                   "originPort": origin.port, "spki": spki, "shots": SHOTS}
            self.run_flow("tls_flow.mjs", cfg)
            for name in ("tls-proxy-block-page.png", "tls-admin-login.png"):
                with open(os.path.join(SHOTS, name), "rb") as f:
                    self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n", name)
            # The browser's visits went through the TLS port and were logged.
            def hosts():
                return {r["host"] for r in self.admin_get(px, "/api/logs?limit=100")["rows"]}
            self.assertTrue(wait_for(lambda: {"allowed.test", "news.test"} <= hosts(),
                                     timeout=60), hosts())
            self.assertEqual(px.stop(), 0, "proxyd did not stop cleanly:\n" + px.log()[-3000:])

    @staticmethod
    def admin_get(px, path):
        """GET on the admin server over HTTPS with the token."""
        import ssl
        import urllib.request
        ctx = ssl.create_default_context(cafile=os.path.join(px.data_dir, "tls-cert.pem"))
        req = urllib.request.Request("https://127.0.0.1:%d%s" % (px.admin_port, path),
                                     headers={"Authorization": "Bearer " + px.token})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                             urllib.request.HTTPSHandler(context=ctx))
        with opener.open(req, timeout=60) as r:
            return json.loads(r.read())


if __name__ == "__main__":
    unittest.main()
