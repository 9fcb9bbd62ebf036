"""The admin UI's one-click actions, messages and forms in a real browser (headless Chromium
driven by playwright-core, tests/e2e/browser/admin_defects.mjs), at 1366x768 and 390 px wide,
against the real proxyd with the DNS stub and a scripted origin on 127.0.0.1.

What it shows (each was a defect): "Block domain" twice adds one rule, and the answer says it
is already blocked; a block can be undone from its message; a row denied by its own domain
rule offers Unblock, a row denied by another rule Allow, an allowed row Block only; the Rule
column shows the rule's text and the Reason column why (a CONNECT to a refused port: no rule,
with the port); the block page names the rule by number, never its text; an empty list
re-import is refused and the list kept; deleting a list a rule uses names that rule; adding a
proxy user that exists is refused; Settings offers no loopback PAC URL; the policy form's Add
is enabled only for a rule that checks; inline edits save on Enter and cancel on Escape; a
success message does not outlive the next action. Roles: a viewer added on the Users page,
sent to log in from the log page, lands back on it, is refused a block by the API with the
role it needs, and changes its own password (asked the current one).

Screenshots go to defects/ in $PX_BROWSER_SHOTS, else in <build dir>/browser-shots (names
below).
Needs /usr/bin/chromium and tests/e2e/browser/node_modules/playwright-core (test_browser.py
says how to get them).
"""
import json
import os
import unittest
import urllib.request

from harness import DnsStub, Origin, Proxyd, read_response
from browser_case import BrowserCase, SHOTS as ALL_SHOTS

# A folder of its own: test_browser.py empties its folder of PNGs when it starts, and ctest
# runs the two at once.
SHOTS = os.path.join(ALL_SHOTS, "defects")

PASSWORD = "defects-test-password"
REGEX_RULE = r"deny host-regex ^secret[0-9]+[.]test$"
SCREENSHOTS = ["%s-%s.png" % (page, size) for size in ("desktop", "phone")
               for page in ("log", "policy", "lists", "users", "settings")] + ["users-viewer.png", "audit-filtered.png"]


class BrowserDefectsTest(BrowserCase):
    def test_defects(self):
        self.clear_shots(SHOTS, SCREENSHOTS)
        records = {"a.test": "127.0.0.1", "b.test": "127.0.0.1", "secret1.test": "127.0.0.1"}
        with DnsStub(records=records) as dns, Origin() as origin, Proxyd(dns=dns) as px:
            px.api("PUT", "/api/admins/admin", {"password": PASSWORD})
            regex = px.api("POST", "/api/rules", {"text": REGEX_RULE})["rule"]["id"]
            px.api("PUT", "/api/lists/ads", b"ads1.test\n")
            listed = px.api("POST", "/api/rules", {"text": "deny list ads", "before": 0})["rule"]["id"]

            # The block page names the rule by number; a regex is the admin's business.
            status, _, body = px.get("http://secret1.test:%d/small" % origin.port)
            self.assertEqual(status, 403)
            self.assertIn(b"(rule %d)." % regex, body)
            self.assertNotIn(b"host-regex", body)
            self.assertNotIn(b"secret[0-9]", body)
            # Allowed traffic to block from the log.
            status, _, _ = px.get("http://a.test:%d/small" % origin.port)
            self.assertEqual(status, 200)
            # A denial no rule made: the page and the log say why.
            with px.connect() as s:
                s.sendall(b"CONNECT b.test:25 HTTP/1.1\r\nHost: b.test:25\r\n\r\n")
                status, _, body = read_response(s)[:3]
            self.assertEqual(status, 403)
            self.assertIn(b"CONNECT to port 25 is not allowed", body)

            cfg = {"admin": px.admin_url, "password": PASSWORD, "proxyPort": px.proxy_port,
                   "originPort": origin.port, "shots": SHOTS, "regexRule": REGEX_RULE,
                   "listRule": listed}
            self.run_flow("admin_defects.mjs", cfg)
            self.assert_shots(SHOTS, SCREENSHOTS)

            # Seen from the server: no a.test rule left, the list kept, the users added once.
            texts = [r["text"] for r in px.api("GET", "/api/rules")["rules"]]
            self.assertNotIn("deny domain a.test", texts)
            self.assertIn("deny list ads", texts)
            self.assertEqual(px.api("GET", "/api/lists/ads")["entries"], ["ads1.test"])
            self.assertEqual(sorted(px.api("GET", "/api/users")["users"]),
                             ["bob-desktop", "bob-phone"])
            # The viewer the browser added, with the password it chose under My account.
            self.assertEqual(px.api("GET", "/api/admins")["roles"]["vera"], "viewer")
            req = urllib.request.Request(
                px.admin_url + "/api/login", method="POST",
                data=json.dumps({"user": "vera", "password": "vera-password-2"}).encode(),
                headers={"Content-Type": "application/json"})
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            with opener.open(req, timeout=60) as r:
                self.assertEqual(json.loads(r.read())["role"], "viewer")
            audit = px.api("GET", "/api/audit?limit=1000")["rows"]
            self.assertTrue([a for a in audit if a["actor"] == "vera" and a["action"] == "login"])
            self.assertEqual(px.stop(), 0, "proxyd did not stop cleanly:\n" + px.log()[-3000:])


if __name__ == "__main__":
    unittest.main()
