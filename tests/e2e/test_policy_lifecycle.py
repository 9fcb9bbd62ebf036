"""End-to-end tests of the policy lifecycle's rule language through a running proxyd: report
rules let requests through and the access log marks them with the report rule (top --report,
the API's reported kind), and a rule switched between report and deny with proxyctl keeps its
id and hit counts; a rule with an `expires` time (policy text, proxyctl --for/--until) stops
matching then without a new rule set, is listed as expired, is deleted after
expired-rule-days, and proxyctl unblock removes a timed block like a lasting one; a domain rule written in Unicode matches the punycode a browser sends and
the reverse, and the API shows logged names in Unicode; named groups stand for clients and
users in rules, and a group change is a policy change; client names show beside the address
in the log, the top clients and proxyctl."""
import calendar
import os
import re
import subprocess
import tempfile
import time
import unittest
import urllib.error

from harness import PROXYCTL, DnsStub, Origin, Proxyd, wait_for

RECORDS = {"report.test": "127.0.0.1", "plain.test": "127.0.0.1", "dest.test": "127.0.0.1",
           "xn--bcher-kva.test": "127.0.0.1", "xn--strae-oqa.test": "127.0.0.1"}


class PolicyLifecycleTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # Each one is stopped even when a later one fails to start.
        cls.dns = cls.enterClassContext(DnsStub(records=RECORDS))
        cls.origin = cls.enterClassContext(Origin())
        cls.px = cls.enterClassContext(Proxyd(dns=cls.dns))

    def setUp(self):
        # Groups last: a group that a rule still uses cannot be deleted.
        rules = self.px.api("GET", "/api/rules")["rules"]
        for rule in sorted(rules, key=lambda r: r["text"].startswith("group ")):
            try:
                self.px.api("DELETE", "/api/rules/%d" % rule["id"])
            except urllib.error.HTTPError as e:  # an expired rule proxyd deleted meanwhile
                self.assertEqual(e.code, 404)

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

        # Other tests of this class log the same hosts: wait for this test's rows.
        rows = wait_for(lambda: [r for r in self.rows("report.test", "report")
                                 if r["rule_id"] == rid], timeout=60)
        self.assertTrue(rows, "no access-log row with decision report and rule %d" % rid)
        self.assertEqual(rows[0]["status"], 200)
        # The report rule is counted like a deciding rule.
        self.assertTrue(wait_for(lambda: self.rule(rid)["hits"] >= 1, timeout=60))
        # A denied request is a denial, not a report.
        denied = wait_for(lambda: [r for r in self.rows("plain.test", "deny")
                                   if r["rule_id"] == deny_other], timeout=60)
        self.assertTrue(denied, "no access-log row with decision deny and rule %d" % deny_other)
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

    def generation(self):
        return self.px.api("GET", "/api/stats")["proxy"]["acl_generation"]

    def test_allow_for_a_while_then_the_deny_below_is_back_without_a_reload(self):
        self.add("deny domain plain.test")
        self.assertEqual(self.px.get(self.url("plain.test"))[0], 403)
        out, _ = self.ctl("allow", "plain.test", "--for", "2h")
        self.assertRegex(out, r"^allowed plain\.test: rule \d+ \(in force\)\n$")
        self.assertEqual(self.px.get(self.url("plain.test"))[0], 200)
        rule = self.px.api("GET", "/api/rules")["rules"][0]
        self.assertRegex(rule["text"], r"^allow domain plain\.test expires "
                         r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertFalse(rule["expired"])
        # Two hours from when proxyctl ran, give or take the run itself.
        self.assertLess(abs(rule["expires"] / 1000 - (time.time() + 7200)), 600)

        # A rule that expires a few seconds from now: denied until then, and after it the
        # deny below decides again, with the rule set in force unchanged (no reload).
        at = int(time.time()) + 6
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
        out, _ = self.ctl("block", "report.test", "--until", when)
        rid = int(re.search(r"rule (\d+)", out).group(1))
        gen = self.generation()
        status = self.px.get(self.url("report.test"))[0]
        if time.time() < at - 1:  # a loaded machine may have taken longer than that
            self.assertEqual(status, 403)
        self.assertTrue(wait_for(lambda: self.px.get(self.url("report.test"))[0] == 200,
                                 timeout=60), "the expired block still denies")
        self.assertGreaterEqual(time.time(), at)
        self.assertEqual(self.generation(), gen, "the expiry took a new rule set")
        rule = self.rule(rid)
        self.assertTrue(rule["expired"])
        self.assertEqual(rule["expires"], at * 1000)
        out, _ = self.ctl("test", self.url("report.test"))
        self.assertIn("action: allow", out)
        # Kept (default: 7 days) and listed as expired.
        self.assertIn(rid, [r["id"] for r in self.px.api("GET", "/api/rules")["rules"]])

    def test_unblock_removes_a_timed_block_too(self):
        # A block with --until is a block of that host: unblock lifts it (and a lasting one
        # beside it) at once, not when it expires.
        out, _ = self.ctl("block", "plain.test", "--until", "2999-01-01T00:00Z")
        timed = int(re.search(r"rule (\d+)", out).group(1))
        lasting = self.add("deny domain plain.test")
        self.assertEqual(self.px.get(self.url("plain.test"))[0], 403)
        out, _ = self.ctl("unblock", "plain.test")
        self.assertEqual(out, "unblocked plain.test: deleted rules %d, %d\n" % (timed, lasting))
        self.assertEqual(self.px.get(self.url("plain.test"))[0], 200)
        ids = [r["id"] for r in self.px.api("GET", "/api/rules")["rules"]]
        self.assertNotIn(timed, ids)
        # A rule that only says more than that (other clients) is not unblock's to delete.
        self.add("deny domain plain.test clients 10.0.0.0/8")
        _, err = self.ctl("unblock", "plain.test", expect=1)
        self.assertIn("no such 'deny domain' rule for plain.test", err)

    def test_expiry_in_policy_text_and_bad_times(self):
        # Expired a minute ago: kept and listed as expired (deleted expired-rule-days later;
        # one from 2020 would be deleted at once, while the test reads it).
        past = time.gmtime(time.time() - 60)
        policy = ("allow domain plain.test expires %s\n"
                  "deny domain plain.test expires 2999-12-31T23:59\n"
                  % time.strftime("%Y-%m-%dT%H:%M:%SZ", past))
        self.px.api("PUT", "/api/policy", policy.encode())
        self.assertEqual(self.px.get(self.url("plain.test"))[0], 403)
        rules = self.px.api("GET", "/api/rules")["rules"]
        self.assertEqual([r["expired"] for r in rules], [True, False])
        self.assertEqual(rules[0]["expires"], calendar.timegm(past) * 1000)
        _, err = self.ctl("allow", "plain.test", "--until", "2026-12-24 18:00", expect=1)
        self.assertIn("expires: bad time '2026-12-24 18:00'", err)
        # The time is pasted into the rule's text: words after it would be conditions.
        # Ids and texts only: the hit counters move on their own (the 403 above is counted
        # when the log writer next writes).
        def rules_now():
            return [(r["id"], r["text"]) for r in self.px.api("GET", "/api/rules")["rules"]]
        before = rules_now()
        with self.assertRaises(urllib.error.HTTPError) as refused:
            self.px.api("POST", "/api/allow",
                        {"domain": "plain.test", "expires": "2999-01-01T00:00Z user bob"})
        self.assertEqual(refused.exception.code, 400)
        self.assertIn("bad time '2999-01-01T00:00Z user bob'",
                      refused.exception.read().decode())
        self.assertEqual(rules_now(), before)
        _, err = self.ctl("allow", "plain.test", "--for", "2h", "--until", "2999-01-01T00:00",
                          expect=2)
        self.assertIn("--for and --until exclude each other", err)
        _, err = self.ctl("rules", "add", "deny", "any", "expires", "2026-02-29T00:00", expect=1)
        self.assertIn("no such day", err)

    def test_unicode_rule_matches_punycode_request_and_the_reverse(self):
        out, _ = self.ctl("block", "bücher.test")
        self.assertRegex(out, r"^blocked bücher\.test: rule \d+ \(in force\)\n$")
        rid = int(re.search(r"rule (\d+)", out).group(1))
        self.assertEqual(self.rule(rid)["text"], "deny domain xn--bcher-kva.test")
        self.assertEqual(self.rule(rid)["text_display"], "deny domain bücher.test")
        # What a browser sends: the A-label, in the request target and Host.
        self.assertEqual(self.px.get(self.url("xn--bcher-kva.test"))[0], 403)
        self.assertEqual(self.px.get(self.url("www.XN--BCHER-KVA.test"))[0], 403)
        rows = wait_for(lambda: [r for r in self.rows("xn--bcher-kva.test", "deny")
                                 if r["host"] == "xn--bcher-kva.test"], timeout=60)
        self.assertEqual(rows[0]["host_display"], "bücher.test")
        self.assertEqual(rows[0]["rule_id"], rid)

        # The reverse: a rule in punycode, a request whose name is written in UTF-8.
        self.add("deny domain xn--strae-oqa.test")
        # (On the wire a request's name is ASCII, RFC 9110: raw UTF-8 there is refused as
        # malformed before any rule is asked.)
        raw = ("GET http://straße.test:%d/small HTTP/1.1\r\nHost: straße.test:%d\r\n\r\n"
               % (self.origin.port, self.origin.port)).encode()
        self.assertEqual(self.px.request(raw)[0], 400)
        out, _ = self.ctl("test", "http://STRASSE.test/")
        self.assertIn("action: allow", out)  # non-transitional: ß is not ss
        out, _ = self.ctl("test", "http://Straße.test/")
        self.assertIn("action: deny", out)
        self.assertIn("deny domain xn--strae-oqa.test", out)
        # An allowed IDN goes through to the origin under its A-label.
        self.ctl("rules", "add", "allow", "domain", "straße.test", "--top")
        self.assertEqual(self.px.get(self.url("xn--strae-oqa.test"))[0], 200)
        top = self.px.api("GET", "/api/top?kind=blocked")["rows"]
        self.assertIn(("xn--bcher-kva.test", "bücher.test"),
                      [(r["key"], r["key_display"]) for r in top])
        _, err = self.ctl("block", "b\u200dcher.test", expect=1)  # not a valid IDN
        self.assertIn("not a domain name: b\u200dcher.test", err)

    def test_group_stands_for_clients_and_a_change_is_live_and_audited(self):
        # The proxy sees the test as 127.0.0.1.
        gid = self.add("group office 127.0.0.0/8, user:alice")
        rid = self.add("deny domain plain.test clients @office")
        self.assertEqual(self.px.get(self.url("plain.test"))[0], 403)
        out, _ = self.ctl("groups")
        self.assertRegex(out, r"\n *%d +on +office +127\.0\.0\.0/8, user:alice\n" % gid)
        # Edit the group, not the rule: the rule no longer holds for 127.0.0.1.
        self.px.api("PATCH", "/api/rules/%d" % gid, {"text": "group office 10.0.0.0/8"})
        self.assertEqual(self.px.get(self.url("plain.test"))[0], 200)
        out, _ = self.ctl("test", self.url("plain.test"), "--client", "10.1.2.3")
        self.assertIn("action: deny", out)
        self.assertRegex(out, r"rule: +%d " % rid)
        audit = self.px.api("GET", "/api/audit")["rows"]
        self.assertTrue(any("group office 10.0.0.0/8" in a["detail"] for a in audit), audit[:3])
        # A group a rule uses cannot go, nor can a rule name a group that does not exist.
        _, err = self.ctl("rules", "del", str(gid), expect=1)
        self.assertIn("rule %d: clients: no group named 'office'" % rid, err)
        _, err = self.ctl("rules", "add", "deny", "any", "users", "@nobody", expect=1)
        self.assertIn("users: no group named 'nobody'", err)
        _, err = self.ctl("rules", "add", "group", "office", "user:bob", expect=1)
        self.assertIn("group: 'office' is defined twice", err)
        self.assertEqual(self.px.get(self.url("plain.test"))[0], 200)  # old policy in force
        # Exported and imported as policy text, wherever the group line stands.
        out, _ = self.ctl("export")
        lines = [l for l in out.splitlines() if l and not l.startswith("#")]
        self.assertEqual(lines, ["group office 10.0.0.0/8",
                                 "deny domain plain.test clients @office"])
        self.px.api("PUT", "/api/policy",
                    b"deny domain plain.test clients @lo\ngroup lo 127.0.0.1\n")
        self.assertEqual(self.px.get(self.url("plain.test"))[0], 403)

    def test_client_name_beside_the_address(self):
        nid = self.add("name 127.0.0.1 reception-pc")
        self.assertEqual(self.px.get(self.url("plain.test"))[0], 200)  # a name never matches
        rows = wait_for(lambda: self.rows("plain.test", "allow"), timeout=60)
        self.assertEqual((rows[0]["client"], rows[0]["client_name"]),
                         ("127.0.0.1", "reception-pc"))
        top = self.px.api("GET", "/api/top?kind=clients")["rows"]
        self.assertIn(("127.0.0.1", "reception-pc"), [(r["key"], r["key_name"]) for r in top])
        out, _ = self.ctl("logs", "--host", "plain.test", "--limit", "1")
        self.assertIn("127.0.0.1 reception-pc", out)
        out, _ = self.ctl("top", "clients")
        self.assertRegex(out, r"\n127\.0\.0\.1 reception-pc +\d+")
        # Renamed: shown at once under the new name (it is read with each answer).
        self.px.api("PATCH", "/api/rules/%d" % nid, {"text": "name 127.0.0.1 front-desk"})
        self.assertEqual(self.rows("plain.test", "allow")[0]["client_name"], "front-desk")
        _, err = self.ctl("rules", "add", "name", "10.0.0.0/8", "office", expect=1)
        self.assertIn("name: bad address '10.0.0.0/8' (one client address)", err)

    def test_policy_import_with_report_rules(self):
        policy = "report domain report.test\nallow any\n"
        self.px.api("PUT", "/api/policy", policy.encode())
        rules = self.px.api("GET", "/api/rules")["rules"]
        self.assertEqual([r["text"] for r in rules], ["report domain report.test", "allow any"])
        out, _ = self.ctl("export")
        self.assertEqual([l for l in out.splitlines() if l and not l.startswith("#")],
                         ["report domain report.test", "allow any"])


class ReportForwardTest(unittest.TestCase):
    """A port forward's connection is decided like a request: a report rule marks it."""

    def test_report_rule_marks_a_forwarded_connection(self):
        from test_forward import EchoOrigin, forward_rows, free_port, relay
        port = free_port()
        with EchoOrigin() as origin, DnsStub({"db.test": "127.0.0.1"}) as dns, \
                Proxyd(dns=dns, policy="report domain db.test\n", extra_args=[
                    "--forward", "127.0.0.1:%d db.test:%d" % (port, origin.port)]) as px:
            self.assertEqual(relay(port, b"marked"), b"marked")
            rows = wait_for(lambda: forward_rows(px))
            self.assertTrue(rows)
            self.assertEqual((rows[0]["host"], rows[0]["decision"]), ("db.test", 3))
            logged = px.api("GET", "/api/logs?decision=report")["rows"]
            self.assertEqual([(r["host"], r["rule_id"]) for r in logged],
                             [("db.test", px.api("GET", "/api/rules")["rules"][0]["id"])])


class ExpiredRuleRetentionTest(unittest.TestCase):
    """expired-rule-days 0: a rule is deleted as soon as it has expired, audited."""

    def test_expired_rule_is_deleted_and_audited(self):
        with DnsStub(records=RECORDS) as dns, Origin() as origin, \
                Proxyd(dns=dns, extra_args=["--expired-rule-days", "0"]) as px:
            at = int(time.time()) + 3
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
            keep = px.api("POST", "/api/rules", {"text": "deny domain plain.test"})["rule"]
            gone = px.api("POST", "/api/rules",
                          {"text": "allow domain plain.test expires " + when})["rule"]
            ids = lambda: [r["id"] for r in px.api("GET", "/api/rules")["rules"]]  # noqa: E731
            self.assertTrue(wait_for(lambda: ids() == [keep["id"]], timeout=60), ids())
            self.assertGreaterEqual(time.time(), at)
            audit = px.api("GET", "/api/audit")["rows"]
            self.assertTrue(any(a["actor"] == "proxyd (expired)" and a["action"] == "rule.delete"
                                and "expires " + when in a["detail"] for a in audit), audit[:3])
            self.assertIn("deleted 1 expired rule", px.log())
            url = "http://plain.test:%d/small" % origin.port
            self.assertEqual(px.get(url)[0], 403)


if __name__ == "__main__":
    unittest.main()
