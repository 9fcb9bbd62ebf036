"""Every admin page for everyone: axe-core (npm, pinned in tests/e2e/browser/package.json)
checks each page on a desktop (1366x768) and a phone (390x844), in light and dark colour
schemes, and fails on any serious or critical finding (WCAG 2.x A and AA, 2.2's 24 px touch
targets included); the phone folds the navigation behind a Menu button and shows tables as
cards; the keyboard reaches the navigation with a visible focus. tests/e2e/browser/a11y_flow.mjs
drives headless Debian Chromium (test_browser.py says what it needs).

The pages have content to check: traffic in the log, rules of each kind, a list, a proxy
user, a group, a pending access request and a port forward.

Screenshots (every page, both widths, both schemes) go to $PX_BROWSER_SHOTS/a11y, else
<build dir>/browser-shots/a11y.
"""
import html
import os
import re
import unittest
import urllib.parse

from harness import DnsStub, Origin, Proxyd, free_port, wait_for
from browser_case import BrowserCase, SHOTS as ALL_SHOTS

SHOTS = os.path.join(ALL_SHOTS, "a11y")
PAGES = ("dashboard", "log", "policy", "lists", "users", "groups", "versions", "forwards",
         "requests", "audit", "settings", "ca")


class BrowserA11yTest(BrowserCase):
    NODE_MODULES = ("playwright-core", "axe-core")

    def test_every_page_at_both_widths_light_and_dark(self):
        self.clear_shots(SHOTS)
        records = {"allowed.test": "127.0.0.1", "ads.test": "127.0.0.1"}
        with DnsStub(records=records) as dns, Origin() as origin, Proxyd(dns=dns) as px:
            # The Settings page with each kind of field filled, the logo's preview shown.
            px.api("PUT", "/api/settings", {
                "access_requests": "on", "block_contact": "IT desk, ext. 42",
                "allow_clients": "127.0.0.0/8,10.0.0.0/8", "retention_days": "30",
                "block_logo": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAABgAAAAYCAIAAABvFa"
                              "qvAAAAI0lEQVR42mNgME6jDho1aNSgQWvQfxLBSDRoNB2NGjRsDAIAJYPxUHPRP"
                              "JEAAAAASUVORK5CYII="})
            px.api("POST", "/api/block", {"domain": "ads.test"})
            px.api("POST", "/api/rules", {"text": "name 127.0.0.1 reception-pc"})
            px.api("POST", "/api/rules", {"text": "report domain allowed.test", "before": 0})
            px.api("PUT", "/api/lists/trackers", b"t1.test\nt2.test\n")
            px.api("PUT", "/api/users/alice", {"password": "alice-secret"})
            px.api("POST", "/api/rules", {"text": "group office 127.0.0.0/8, user:alice"})
            px.api("POST", "/api/forwards", {"listen": "127.0.0.1:%d" % free_port(),
                                             "target": "127.0.0.1:%d" % origin.port})
            for url in ("http://allowed.test:%d/small" % origin.port,
                        "http://ads.test:%d/banner" % origin.port):
                px.get(url)
            # A pending access request, sent as the block page's form does (proxyd reads the
            # setting on its next poll: the form appears then).
            def token():
                page = px.get("http://ads.test:%d/small" % origin.port)[2].decode()
                m = re.search(r'name="t" value="([^"]+)"', page)
                return m and html.unescape(m.group(1))
            t = wait_for(token, timeout=60)
            self.assertTrue(t, "no request form on the block page")
            query = urllib.parse.urlencode({"t": t, "reason": "work", "name": "Zo\u00e9"})
            self.assertEqual(px.get("http://ads.test:%d/.proxyd/request-access?%s"
                                    % (origin.port, query))[0], 202)
            cfg = {"admin": px.admin_url, "password": px.first_password,
                   "newPassword": "a11y-browser", "shots": SHOTS}
            self.run_flow("a11y_flow.mjs", cfg, timeout=600)
            for page in PAGES:
                for width in ("desktop", "phone"):
                    for scheme in ("light", "dark"):
                        path = os.path.join(SHOTS, "%s-%s-%s.png" % (page, width, scheme))
                        self.assertTrue(os.path.isfile(path), "no screenshot " + path)
                        self.assertGreater(os.path.getsize(path), 5000, path + " is nearly empty")


if __name__ == "__main__":
    unittest.main()
