"""Answers that cross in the admin pages, in a real browser (headless Chromium driven by
playwright-core: tests/e2e/browser/races_flow.mjs; test_browser.py says how it is wired and
what it needs). Each case holds one answer back until the user's next choice has been
answered, so the race happens every run: the audit's first, unfiltered page answering after
the filtered one; the access requests' first (pending) answer after the "all" one; "Who" on the dashboard, View on the lists page, Changes on the versions page
and Why on the log, each clicked on one entry and then on another; a rule's Add clicked twice
(and Enter pressed), and an access request's Approve twice, before the answer. The page shows
what was asked last, the rule is added once, the request approved once. And the log's "older"
pages on the search whose rows are shown, not on a host typed since and not searched; a rule's
down arrow clicked twice before the first move's answer moves it two places.

Screenshots go to races/ in $PX_BROWSER_SHOTS, else in <build dir>/browser-shots.
"""
import html
import os
import re
import unittest
import urllib.parse

from harness import DnsStub, Origin, Proxyd, wait_for
from browser_case import BrowserCase, SHOTS as ALL_SHOTS

SHOTS = os.path.join(ALL_SHOTS, "races")
SCREENSHOTS = ("audit.png", "visitors.png")
PASSWORD = "races-test-password"
ACCESS_FORM = "/.proxyd/request-access"


class BrowserRacesTest(BrowserCase):
    def test_late_answers_are_dropped(self):
        self.clear_shots(SHOTS, SCREENSHOTS)
        with DnsStub(records={h: "127.0.0.1" for h in ("a.test", "b.test", "c.test", "d.test")}) as dns, \
                Origin() as origin, Proxyd(dns=dns) as px:
            px.api("PUT", "/api/admins/admin", {"password": PASSWORD})
            for host in ("a.test", "b.test"):
                status, _, _ = px.get("http://%s:%d/small" % (host, origin.port))
                self.assertEqual(status, 200)
            # More than a page of a.test after b.test's row, for "older" under a search.
            for _ in range(100):
                self.assertEqual(px.get("http://a.test:%d/small" % origin.port)[0], 200)
            px.api("PUT", "/api/lists/race-a", b"a1.test\n")
            px.api("PUT", "/api/lists/race-b", b"b1.test\nb2.test\n")
            px.api("POST", "/api/rules", {"text": "deny domain race-a.test"})
            px.api("POST", "/api/rules", {"text": "deny domain race-b.test"})
            # Two access requests, sent from the block pages' form (test_access_requests.py).
            px.api("PUT", "/api/settings", {"access_requests": "on"})
            for host in ("c.test", "d.test"):
                px.api("POST", "/api/block", {"domain": host})
                url = "http://%s:%d" % (host, origin.port)

                def form():
                    page = px.get(url + "/small")[2].decode()
                    return re.search(r'name="t" value="([^"]+)"', page)
                token = wait_for(form, timeout=60)
                self.assertTrue(token, "no request form on the block page of " + host)
                query = urllib.parse.urlencode({"t": html.unescape(token.group(1)), "reason": "work"})
                self.assertEqual(px.get(url + ACCESS_FORM + "?" + query)[0], 202)
            # The dashboard's top hosts and the log, once the writer has the visits.
            self.assertTrue(wait_for(lambda: len(px.api("GET", "/api/top?kind=hosts")["rows"]) >= 2,
                                     timeout=60))
            self.assertTrue(wait_for(lambda: len(px.api("GET", "/api/logs?host=a.test&limit=200")["rows"]) == 101,
                                     timeout=60))
            cfg = {"admin": px.admin_url, "password": PASSWORD, "shots": SHOTS, "marker": "race-b"}
            self.run_flow("races_flow.mjs", cfg)
            self.assert_shots(SHOTS, SCREENSHOTS)

            approved = [r for r in px.api("GET", "/api/requests?status=all")["rows"]
                        if r["status"] == "approved"]
            self.assertEqual(len(approved), 1, approved)
            texts = [r["text"] for r in px.api("GET", "/api/rules")["rules"]]
            self.assertEqual(texts.count("deny domain twice.test"), 1, texts)
            self.assertEqual(px.stop(), 0, "proxyd did not stop cleanly:\n" + px.log()[-3000:])


if __name__ == "__main__":
    unittest.main()
