"""End-to-end tests of the policy lifecycle's rule language through a running proxyd: report
rules let requests through and the access log marks them with the report rule (top --report,
the API's reported kind), and a rule switched between report and deny with proxyctl keeps its
id and hit counts."""
import os
import re
import subprocess
import tempfile
import unittest

from harness import PROXYCTL, DnsStub, Origin, Proxyd, wait_for

RECORDS = {"report.test": "127.0.0.1", "plain.test": "127.0.0.1", "dest.test": "127.0.0.1"}


class PolicyLifecycleTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dns = DnsStub(records=RECORDS)
        cls.dns.__enter__()
        cls.origin = Origin()
        cls.origin.__enter__()
        cls.px = Proxyd(dns=cls.dns)
        cls.px.__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.px.__exit__(None, None, None)
        cls.origin.__exit__(None, None, None)
        cls.dns.__exit__(None, None, None)

    def setUp(self):
        for rule in self.px.api("GET", "/api/rules")["rules"]:
            self.px.api("DELETE", "/api/rules/%d" % rule["id"])

    def ctl(self, *args, expect=0):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PROXYCTL_", "PROXYD_"))}
        r = subprocess.run([PROXYCTL, "--url", self.px.admin_url, "--data-dir", self.px.data_dir]
                           + list(args), capture_output=True, text=True, timeout=60, env=env,
                           cwd=tempfile.gettempdir())
        self.assertEqual(r.returncode, expect, "proxyctl %s: exit %d\nstdout: %s\nstderr: %s"
                         % (" ".join(args), r.returncode, r.stdout, r.stderr))
        return r.stdout, r.stderr

    def url(self, host, path="/small"):
        return "http://%s:%d%s" % (host, self.origin.port, path)

    def rule(self, rule_id):
        return self.px.api("GET", "/api/rules/%d" % rule_id)["rule"]

    def add(self, text):
        out, _ = self.ctl("rules", "add", *text.split())
        return int(re.search(r"added rule (\d+)", out).group(1))

    def rows(self, host, decision):
        return [r for r in self.px.api("GET", "/api/logs?host=%s&decision=%s" % (host, decision))["rows"]]

    def test_report_rule_lets_requests_through_and_marks_them(self):
        rid = self.add("report domain report.test")
        deny_other = self.add("deny domain plain.test")
        status, _, body = self.px.get(self.url("report.test"))
        self.assertEqual(status, 200, body[:200])
        self.assertEqual(self.px.get(self.url("plain.test"))[0], 403)

        rows = wait_for(lambda: self.rows("report.test", "report"), timeout=60)
        self.assertTrue(rows, "no access-log row with decision report")
        self.assertEqual(rows[0]["rule_id"], rid)
        self.assertEqual(rows[0]["status"], 200)
        # The report rule is counted like a deciding rule.
        self.assertTrue(wait_for(lambda: self.rule(rid)["hits"] >= 1, timeout=60))
        # A denied request is a denial, not a report.
        denied = wait_for(lambda: self.rows("plain.test", "deny"), timeout=60)
        self.assertEqual(denied[0]["rule_id"], deny_other)
        self.assertEqual(self.rows("plain.test", "report"), [])

        out, _ = self.ctl("test", self.url("report.test"))
        self.assertIn("action: allow", out)
        self.assertIn("report: rule %d would deny it" % rid, out)

        keys = [r["key"] for r in self.px.api("GET", "/api/top?kind=reported")["rows"]]
        self.assertIn("report.test", keys)
        self.assertNotIn("plain.test", keys)
        out, _ = self.ctl("top", "--report")
        self.assertRegex(out, r"reported domain")
        self.assertRegex(out, r"\nreport\.test +\d+")
        self.assertNotIn("plain.test", out)
        _, err = self.ctl("top", "clients", "--report", expect=2)
        self.assertIn("--report", err)

    def test_switch_between_report_and_deny_keeps_id_and_hits(self):
        rid = self.add("report domain report.test clients 127.0.0.0/8")
        self.assertEqual(self.px.get(self.url("report.test"))[0], 200)
        self.assertTrue(wait_for(lambda: self.rule(rid)["hits"] >= 1, timeout=60))

        out, _ = self.ctl("rules", "enforce", str(rid))
        self.assertEqual(out, "rule %d: deny domain report.test clients 127.0.0.0/8\n" % rid)
        self.assertEqual(self.px.get(self.url("report.test"))[0], 403)
        self.assertTrue(wait_for(lambda: self.rule(rid)["hits"] >= 2, timeout=60),
                        "the hits before the switch were lost or the denial not counted")

        out, _ = self.ctl("rules", "report", str(rid))
        self.assertEqual(out, "rule %d: report domain report.test clients 127.0.0.0/8\n" % rid)
        self.assertEqual(self.px.get(self.url("report.test"))[0], 200)
        self.assertTrue(wait_for(lambda: self.rule(rid)["hits"] >= 3, timeout=60))
        self.assertEqual([r["id"] for r in self.px.api("GET", "/api/rules")["rules"]], [rid])

        # Only a deny rule can be made report-only, and only a report rule enforced.
        _, err = self.ctl("rules", "report", str(rid), expect=1)
        self.assertIn("is not a 'deny' rule", err)
        other = self.add("allow domain plain.test")
        _, err = self.ctl("rules", "enforce", str(other), expect=1)
        self.assertIn("is not a 'report' rule", err)

    def test_report_dest_checks_the_resolved_address(self):
        rid = self.add("report dest 127.0.0.0/8")
        status, _, _ = self.px.get(self.url("dest.test"))
        self.assertEqual(status, 200)
        rows = wait_for(lambda: self.rows("dest.test", "report"), timeout=60)
        self.assertTrue(rows, "report dest did not mark the request to a name in its network")
        self.assertEqual(rows[0]["rule_id"], rid)

    def test_policy_import_with_report_rules(self):
        policy = "report domain report.test\nallow any\n"
        self.px.api("PUT", "/api/policy", policy.encode())
        rules = self.px.api("GET", "/api/rules")["rules"]
        self.assertEqual([r["text"] for r in rules], ["report domain report.test", "allow any"])
        out, _ = self.ctl("export")
        self.assertEqual([l for l in out.splitlines() if l and not l.startswith("#")],
                         ["report domain report.test", "allow any"])


if __name__ == "__main__":
    unittest.main()
