"""The Lists page's subscriptions in a real browser: headless Chromium (/usr/bin/chromium)
driven by playwright-core (tests/e2e/browser/subs_flow.mjs) against the real proxyd, a DNS
stub and a list origin on 127.0.0.1. The browser subscribes a list and sees its first fetch
and its list, subscribes a broken one and sees why it was kept, is asked before subscribing
over an existing list, refreshes (the row says "fetching" while the origin holds the
download, and the outcome once it lets go), sees a stored URL full of markup as text, unsubscribes;
then this test checks the stored state from outside and that the screenshots (desktop,
phone) were taken. Skips like test_browser.py without Chromium or playwright-core.
Screenshots go to subscriptions/ in $PX_BROWSER_SHOTS, else in <build dir>/browser-shots."""
import os
import unittest

from harness import DnsStub, Proxyd
from browser_case import BrowserCase, SHOTS as ALL_SHOTS
from test_subscriptions import ListOrigin

SHOTS = os.path.join(ALL_SHOTS, "subscriptions")
PASSWORD = "subscriptions-page-test"


class SubscriptionsPageTest(BrowserCase):
    def test_subscriptions_on_the_lists_page(self):
        self.clear_shots(SHOTS, ("subscriptions-desktop.png", "subscriptions-phone.png", "subscriptions-fetching.png"))
        with DnsStub(records={"lists.test": "127.0.0.1"}) as dns, ListOrigin() as origin, \
                Proxyd(dns=dns) as px:
            origin.set("/ads.txt", 200, b"ads.example\ntrack.example\n", ETag='"a1"')
            origin.set("/broken.txt", 500, b"down")
            base = "http://lists.test:%d" % origin.port
            markup_url = base + "/<script>__xss=1</script><img/src=x/onerror=__xss=1><b>x</b>"
            px.api("PUT", "/api/admins/admin", {"password": PASSWORD})
            px.api("PUT", "/api/lists/mine?replace=1", b"mine.example\n")
            px.api("PUT", "/api/subscriptions/markup", {"url": markup_url, "every_s": 86400})
            control = "http://127.0.0.1:%d" % origin.port
            cfg = {"admin": px.admin_url, "password": PASSWORD, "origin": base,
                   "hold": control + "/hold/ads.txt", "release": control + "/release/ads.txt",
                   "markupUrl": markup_url, "shots": SHOTS}
            self.run_flow("subs_flow.mjs", cfg)

            for name in ("subscriptions-desktop.png", "subscriptions-phone.png", "subscriptions-fetching.png"):
                path = os.path.join(SHOTS, name)
                with open(path, "rb") as f:
                    self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n", path)
                self.assertGreater(os.path.getsize(path), 5000, path + " is nearly empty")
            subs = {s["name"]: s for s in px.api("GET", "/api/subscriptions")["subscriptions"]}
            self.assertEqual(sorted(subs), ["ads", "markup"])
            self.assertEqual((subs["ads"]["entries"], subs["ads"]["status"]), (2, 304))
            self.assertEqual(subs["ads"]["every_s"], 86400)
            self.assertEqual(sorted(px.api("GET", "/api/lists/ads")["entries"]),
                             ["ads.example", "track.example"])
            self.assertEqual(px.api("GET", "/api/lists/mine")["entries"], ["mine.example"])
            actions = [r["action"] for r in px.api("GET", "/api/audit")["rows"]]
            self.assertEqual(actions.count("subscription.add"), 3)
            self.assertEqual(actions.count("subscription.delete"), 1)


if __name__ == "__main__":
    unittest.main()
