"""End-to-end tests of policy versions through a running proxyd: each change (API, proxyctl,
policy import) is a numbered version with who, when and a message; `proxyctl policy log`,
`policy diff`, `policy rollback` (itself a version, in force when it returns); each access
row carries the version that decided it and `proxyctl why` prints that version's rule and
the trace even after the rule has changed; a rollback brings back the version's lists too;
a rollback that no longer compiles is refused."""
import json
import os
import re
import sqlite3
import subprocess
import tempfile
import unittest
import urllib.error
import urllib.parse

from harness import PROXYCTL, DnsStub, Origin, Proxyd, wait_for

RECORDS = {"a.test": "127.0.0.1", "b.test": "127.0.0.1", "l1.test": "127.0.0.1",
           "l2.test": "127.0.0.1"}


class VersionsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # Each one is stopped even when a later one fails to start.
        cls.dns = cls.enterClassContext(DnsStub(records=RECORDS))
        cls.origin = cls.enterClassContext(Origin())
        cls.px = cls.enterClassContext(Proxyd(dns=cls.dns))

    def ctl(self, *args, expect=0):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PROXYCTL_", "PROXYD_"))}
        r = subprocess.run([PROXYCTL, "--url", self.px.admin_url, "--data-dir", self.px.data_dir]
                           + list(args), capture_output=True, text=True, timeout=60, env=env,
                           cwd=tempfile.gettempdir())
        self.assertEqual(r.returncode, expect, "proxyctl %s: exit %d\nstdout: %s\nstderr: %s"
                         % (" ".join(args), r.returncode, r.stdout, r.stderr))
        return r.stdout, r.stderr

    def status(self, host):
        return self.px.get("http://%s:%d/small" % (host, self.origin.port))[0]

    def current(self):
        return self.px.api("GET", "/api/versions")["current"]

    def logged(self, host, status):
        """The newest access row for host with status (the writer is another thread)."""
        def row():
            rows = self.px.api("GET", "/api/logs?host=%s&limit=20" % host)["rows"]
            rows = [r for r in rows if r["status"] == status]
            return rows[0] if rows else None
        r = wait_for(row, timeout=60)
        self.assertIsNotNone(r, "no logged %d for %s" % (status, host))
        return r

    def test_versions_diff_rollback_and_why(self):
        start = self.current()
        out, _ = self.ctl("--message", "ticket 42: block a", "block", "a.test")
        self.assertIn("(in force)", out)
        v_block = self.current()
        self.assertEqual(v_block, start + 1)
        self.assertEqual(self.status("a.test"), 403)
        denied = self.logged("a.test", 403)
        self.assertEqual(denied["policy_version"], v_block)

        # Several changes in one request (a policy import) are one version.
        path = os.path.join(self.px.tmp, "p.policy")
        with open(path, "w") as f:
            f.write("deny domain b.test\nallow domain a.test  \n")
        self.ctl("import", path)
        v_import = self.current()
        self.assertEqual(v_import, v_block + 1)
        self.assertEqual(self.status("a.test"), 200)
        self.assertEqual(self.status("b.test"), 403)

        out, _ = self.ctl("policy", "log")
        lines = out.splitlines()
        self.assertRegex(lines[0], r"^version +time +actor +rules +message")
        self.assertRegex(lines[1], r"^ *%d\* .* token +2 +rules\.replace 2 rules$" % v_import)
        self.assertRegex(lines[2], r"^ *%d .* token +1 +ticket 42: block a$" % v_block)

        out, _ = self.ctl("policy", "diff", str(v_block), str(v_import))
        self.assertIn("--- version %d\n+++ version %d\n" % (v_block, v_import), out)
        self.assertRegex(out, r"(?m)^- +\d+ on +deny domain a\.test$")
        self.assertRegex(out, r"(?m)^\+ +\d+ on +deny domain b\.test$")
        self.assertRegex(out, r"(?m)^\+ +\d+ on +allow domain a\.test$")
        out, _ = self.ctl("policy", "diff", str(v_import), str(v_import))
        self.assertIn("(the rules are the same)", out)

        # Why was a.test denied? Its row names the version, whose rule is gone from the
        # rules in force now but not from the history.
        out, _ = self.ctl("why", str(denied["id"]))
        self.assertRegex(out, r"decision: deny \(status 403\)")
        self.assertRegex(out, r"policy version %d, .* by token: ticket 42: block a" % v_block)
        self.assertRegex(out, r"rule \d+ \(position 1\): deny domain a\.test")
        self.assertRegex(out, r"(?m)^ +1 decided +deny domain a\.test$")
        allowed = self.logged("a.test", 200)
        self.assertEqual(allowed["policy_version"], v_import)
        why = self.px.api("GET", "/api/logs/%d/why" % allowed["id"])
        self.assertEqual(why["rule"]["text"], "allow domain a.test")
        self.assertEqual([t["result"] for t in why["trace"]], ["did not decide", "decided"])

        # Rollback: the rules of v_block in force when proxyctl returns, as a new version.
        out, _ = self.ctl("policy", "rollback", str(v_block))
        self.assertEqual(out, "rules and lists of version %d in force again (1 rules, 0 lists): "
                         "now version %d\n" % (v_block, v_import + 1))
        self.assertEqual(self.status("a.test"), 403)
        self.assertEqual(self.status("b.test"), 200)
        rules = self.px.api("GET", "/api/rules")["rules"]
        self.assertEqual([r["text"] for r in rules], ["deny domain a.test"])
        self.assertEqual(rules[0]["id"], denied["rule_id"], "the restored rule lost its id")
        log = self.px.api("GET", "/api/versions?limit=1")["rows"][0]
        self.assertEqual(log["message"], "policy.rollback version %d: 1 rules and its lists"
                         % v_block)
        self.assertEqual(log["actor"], "token")

        _, err = self.ctl("policy", "rollback", "99999", expect=1)
        self.assertIn("no such policy version 99999", err)
        _, err = self.ctl("policy", "diff", "x", "1", expect=2)
        self.assertIn("V1 must be a number", err)
        _, err = self.ctl("why", "99999999", expect=1)
        self.assertIn("log row 99999999", err)

    def test_why_of_a_reported_request(self):
        self.px.api("PUT", "/api/policy", b"report domain b.test\n")
        self.assertEqual(self.status("b.test"), 200)
        def reported():
            rows = self.px.api("GET", "/api/logs?host=b.test&decision=report&limit=5")["rows"]
            return rows[0] if rows else None
        row = wait_for(reported, timeout=60)
        self.assertIsNotNone(row, "no logged report row for b.test")
        out, _ = self.ctl("why", str(row["id"]))
        self.assertIn("decision: report (status 200)", out)
        self.assertRegex(out, r"reported by rule \d+ \(position 1\): report domain b\.test")
        self.assertRegex(out, r"(?m)^ +1 reported +report domain b\.test$")

    def test_why_names_inspect_rules_however_they_are_spelt(self):
        # An inspect rule decides nothing about passing; quoted, it is one all the same.
        self.px.api("PUT", "/api/policy",
                    b'"inspect" domain a.test\ninspect domain b.test\ndeny domain b.test\n')
        version = self.px.api("GET", "/api/versions?limit=1")["rows"][0]["version"]
        self.assertEqual(self.status("b.test"), 403)
        def denied():  # this policy's row, not another test's
            rows = self.px.api("GET", "/api/logs?host=b.test&decision=deny&limit=5")["rows"]
            return next((r for r in rows if r["policy_version"] == version), None)
        row = wait_for(denied, timeout=60)
        self.assertIsNotNone(row, "no logged deny row for b.test")
        why = self.px.api("GET", "/api/logs/%d/why" % row["id"])
        self.assertEqual([t["result"] for t in why["trace"]],
                         ["inspect rule", "inspect rule", "decided"])

    def clear(self):
        for r in self.px.api("GET", "/api/rules")["rules"]:
            self.px.api("DELETE", "/api/rules/%d" % r["id"])
        for l in self.px.api("GET", "/api/lists")["lists"]:
            self.px.api("DELETE", "/api/lists/" + l["name"])

    def test_rollback_brings_back_the_lists_of_the_version(self):
        # A list import after the version: rolling back brings the old entries back (and
        # the list the version did not have goes), so its `list` rule matches what it did.
        self.clear()
        self.px.api("PUT", "/api/lists/listed", b"l1.test\n")
        self.ctl("rules", "add", "deny", "list", "listed")
        v_list = self.current()
        self.assertEqual(self.status("l1.test"), 403)
        self.assertEqual(self.status("l2.test"), 200)
        self.px.api("PUT", "/api/lists/listed?replace=1", b"0.0.0.0 l2.test\n")
        self.px.api("PUT", "/api/lists/extra", b"x.test\n")
        self.assertEqual(self.status("l1.test"), 200)
        self.assertEqual(self.status("l2.test"), 403)
        self.assertEqual(self.px.api("GET", "/api/versions?limit=1")["rows"][0]["lists"], 2)
        out, _ = self.ctl("policy", "diff", str(v_list), str(v_list + 2))
        self.assertIn("(the rules are the same)\n", out)
        self.assertIn("+ list extra (1 entries)\n", out)
        self.assertIn("~ list listed: 1 -> 1 entries (1 added, 1 removed)\n", out)

        out, _ = self.ctl("policy", "rollback", str(v_list))
        self.assertEqual(out, "rules and lists of version %d in force again (1 rules, 1 lists): "
                         "now version %d\n" % (v_list, v_list + 3))
        self.assertEqual(self.status("l1.test"), 403)
        self.assertEqual(self.status("l2.test"), 200)
        self.assertEqual(self.px.api("GET", "/api/lists/listed")["entries"], ["l1.test"])
        self.assertEqual([l["name"] for l in self.px.api("GET", "/api/lists")["lists"]],
                         ["listed"])
        out, _ = self.ctl("policy", "diff", str(v_list), str(v_list + 3))
        self.assertIn("(the lists are the same)\n", out)
        self.clear()

    def test_rollback_that_no_longer_compiles_is_refused(self):
        # A version recorded before versions kept lists (made so here, as an upgraded
        # database has them) rolls back its rules only: a rule naming a list deleted since
        # no longer compiles, and nothing changes.
        self.px.api("PUT", "/api/lists/ads", b"ads.test\n")
        self.ctl("rules", "add", "deny", "list", "ads")
        v_list = self.current()
        rules = self.px.api("GET", "/api/rules")["rules"]
        for r in rules:
            self.px.api("DELETE", "/api/rules/%d" % r["id"])
        self.px.api("DELETE", "/api/lists/ads")
        db = sqlite3.connect(self.px.db_path, timeout=30)
        with db:
            db.execute("UPDATE policy_versions SET lists_kept = 0 WHERE version = ?", (v_list,))
        db.close()
        before = self.current()
        _, err = self.ctl("policy", "rollback", str(v_list), expect=1)
        self.assertIn("no list named 'ads'", err)
        self.assertEqual(self.current(), before, "a refused rollback made a version")

    def test_message_is_bounded_and_escaped_as_given(self):
        q = urllib.parse.quote("x" * 501)
        with self.assertRaises(urllib.error.HTTPError) as cm:
            self.px.api("POST", "/api/block?message=" + q, {"domain": "c.test"})
        self.assertEqual(cm.exception.code, 400)
        self.assertEqual(json.loads(cm.exception.read())["field"], "message")
        msg = "<script>alert(1)</script> & \u00e9"
        self.px.api("POST", "/api/block?message=" + urllib.parse.quote(msg), {"domain": "d.test"})
        row = self.px.api("GET", "/api/versions?limit=1")["rows"][0]
        self.assertEqual(row["message"], msg)
        self.assertEqual(row["rules"], len(self.px.api("GET", "/api/rules")["rules"]))


if __name__ == "__main__":
    unittest.main()
