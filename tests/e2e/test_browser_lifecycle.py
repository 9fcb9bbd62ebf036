"""The policy lifecycle's rule language in the admin UI, in a real browser (headless Debian
Chromium driven by playwright-core: tests/e2e/browser/lifecycle_flow.mjs; test_browser.py
says how it is wired and what it needs). A `deny` rule is made report-only with the policy
page's button, the browser's visit through proxyd then passes, the dashboard's "Would be
blocked" table and the log's report filter show it (the client under its name), and "Enforce" makes the rule deny again;
the rule keeps its id and its hits throughout. A rule past its `expires` time is marked
expired, and the add form's "Expires after" field adds a rule that expires in 2 hours. A rule
in punycode denies the browser's visit to bücher.test and both the rule and the log row show
the name in Unicode. A group added on the Groups page and used by a rule takes effect on
the browser's next visit when its members change.

Screenshots go to $PX_BROWSER_SHOTS/lifecycle, else <build dir>/browser-shots/lifecycle.
"""
import os
import time
import unittest

from harness import DnsStub, Origin, Proxyd, wait_for
from browser_case import BrowserCase, SHOTS as ALL_SHOTS

SHOTS = os.path.join(ALL_SHOTS, "lifecycle")
SCREENSHOTS = ("lifecycle-dashboard.png", "lifecycle-log.png", "lifecycle-policy.png",
               "lifecycle-expiry.png", "lifecycle-idn.png", "lifecycle-groups.png")


class BrowserLifecycleTest(BrowserCase):
    def test_report_rule_in_the_ui(self):
        self.clear_shots(SHOTS)
        with DnsStub(records={"report.test": "127.0.0.1",
                              "xn--bcher-kva.test": "127.0.0.1",
                              "grp.test": "127.0.0.1"}) as dns, Origin() as origin, \
                Proxyd(dns=dns) as px:
            # Expired a minute ago: listed as expired (deleted only expired-rule-days later).
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
            old = px.api("POST", "/api/rules",
                         {"text": "deny domain old.test expires " + when})["rule"]
            px.api("POST", "/api/rules", {"text": "name 127.0.0.1 reception-pc"})
            idn = px.api("POST", "/api/block", {"domain": "xn--bcher-kva.test"})["rule"]
            rule = px.api("POST", "/api/rules", {"text": "deny domain report.test"})["rule"]
            cfg = {"admin": px.admin_url, "password": px.first_password,
                   "newPassword": "lifecycle-browser", "proxyPort": px.proxy_port,
                   "originPort": origin.port, "shots": SHOTS, "reportRuleId": rule["id"],
                   "expiredRuleId": old["id"], "idnRuleId": idn["id"]}
            self.run_flow("lifecycle_flow.mjs", cfg)
            self.assert_shots(SHOTS, SCREENSHOTS)

            # Seen from the server: the same rule, denying again, with both visits counted.
            rules = {r["id"]: r for r in px.api("GET", "/api/rules")["rules"]}
            self.assertEqual(rules[rule["id"]]["text"], "deny domain report.test")
            self.assertTrue(rules[old["id"]]["expired"])
            added = [r for r in rules.values() if r["text"].startswith("allow domain plain.test")]
            self.assertEqual(len(added), 1)
            self.assertFalse(added[0]["expired"])
            self.assertTrue(wait_for(lambda: px.api("GET", "/api/rules/%d" % rule["id"])
                                     ["rule"]["hits"] >= 2, timeout=60))
            rows = px.api("GET", "/api/logs?host=report.test")["rows"]
            # (Chromium asks for /favicon.ico too: a visit may be more than one row.)
            self.assertEqual({r["decision"] for r in rows if r["rule_id"] == rule["id"]},
                             {"deny", "report"})
            self.assertIn("group office 127.0.0.0/8, user:alice",
                          [r["text"] for r in rules.values()])
            audit = px.api("GET", "/api/audit")["rows"]
            self.assertTrue(any("report domain report.test" in a["detail"] for a in audit),
                            audit[:5])


if __name__ == "__main__":
    unittest.main()
