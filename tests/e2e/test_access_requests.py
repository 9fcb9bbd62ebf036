"""End-to-end tests of "request access" through a running proxyd: with the setting on, a page
blocked by a rule carries a form that GETs the reserved path on the blocked host through the
proxy; the request lands in the admin queue (API, proxyctl) with what the user wrote, intact;
approving it makes an allow rule for that client and host, after which the next visit works;
denying records why; the form's token is bound to host and port and a bad or missing one is
refused; each client may send 5 an hour; the log row keeps no reason."""
import calendar
import html
import os
import re
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse

from harness import PROXYCTL, DnsStub, Origin, Proxyd, wait_for

RECORDS = {"a.test": "127.0.0.1", "b.test": "127.0.0.1", "c.test": "127.0.0.1",
           "d.test": "127.0.0.1"}
PATH = "/.proxyd/request-access"


class AccessRequestsTest(unittest.TestCase):
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

    def url(self, host, path="/small"):
        return "http://%s:%d%s" % (host, self.origin.port, path)

    def visit(self, host, path="/small"):
        status, _, body = self.px.get(self.url(host, path))
        return status, body.decode("utf-8", "replace")

    def token(self, host):
        """The token of host's block page, once the page carries the form (proxyd reads the
        setting on its next poll)."""
        def form():
            status, page = self.visit(host)
            m = re.search(r'<form method="get" action="%s">.*?name="t" value="([^"]+)"'
                          % re.escape(PATH), page, re.S)
            return m and (status, page, html.unescape(m.group(1)))
        got = wait_for(form, timeout=60)
        self.assertTrue(got, "no request form on the block page of " + host)
        self.assertEqual(got[0], 403)
        return got[2]

    def submit(self, host, fields):
        return self.visit(host, PATH + "?" + urllib.parse.urlencode(fields))

    def pending(self, host):
        def find():
            rows = self.px.api("GET", "/api/requests")["rows"]
            rows = [r for r in rows if r["host"] == host]
            return rows[0] if rows else None
        row = wait_for(find, timeout=60)
        self.assertIsNotNone(row, "no pending request for " + host)
        return row

    def test_request_approve_deny_and_limits(self):
        for host in ("a.test", "b.test", "c.test"):
            self.px.api("POST", "/api/block", {"domain": host})
        # Unset (off): a plain block page, and the reserved path is just blocked. (Another
        # test may have had it on a moment ago: proxyd reads the setting on its next poll.)
        self.assertIsNone(self.px.api("GET", "/api/settings")["settings"]["access_requests"])
        self.assertTrue(wait_for(lambda: "<form" not in self.visit("a.test")[1], timeout=60))
        status, page = self.visit("a.test")
        self.assertEqual(status, 403)
        self.assertNotIn("<form", page)
        self.assertEqual(self.submit("a.test", {"t": "1.x", "reason": "r"})[0], 403)

        self.px.api("PUT", "/api/settings", {"access_requests": "on"})
        token = self.token("a.test")

        # Bad forms and tokens are refused and queue nothing (nor count against the client).
        status, page = self.submit("a.test", {"t": token})
        self.assertEqual(status, 400)
        self.assertIn("please say why", page)
        self.assertEqual(self.submit("a.test", {"t": token, "reason": "x" * 501})[0], 400)
        self.assertEqual(self.submit("a.test", {"reason": "why"})[0], 400)
        self.assertEqual(self.submit("b.test", {"t": token, "reason": "why"})[0], 403)
        status, page = self.submit("a.test", {"t": token[:-1] + ("0" if token[-1] != "0" else "1"),
                                              "reason": "why"})
        self.assertEqual(status, 403)
        self.assertIn("form has expired or was not made for this computer", page)

        reason = "Supplier portal <script>alert(1)</script> & \u00e9t\u00e9\nline 2"
        status, page = self.submit("a.test", {"t": token, "reason": reason, "name": "Zo\u00e9 <b>"})
        self.assertEqual(status, 202, page)
        self.assertIn("Your request for a.test was sent to the administrators", page)
        self.assertNotIn("<script>", page)
        row = self.pending("a.test")
        self.assertEqual((row["client"], row["port"], row["reason"], row["name"], row["status"]),
                         ("127.0.0.1", self.origin.port, reason, "Zo\u00e9 <b>", "pending"))
        self.assertGreater(row["rule_id"], 0)
        self.assertEqual(self.px.api("GET", "/api/requests")["pending"], 1)

        # The log row of the form's GET keeps the path, not the reason.
        def logged():
            rows = self.px.api("GET", "/api/logs?q=request-access&limit=50")["rows"]
            return [r for r in rows if r["status"] == 202]
        rows = wait_for(logged, timeout=60)
        self.assertTrue(rows)
        self.assertEqual(rows[0]["path"], PATH)
        self.assertEqual(rows[0]["error"], "access-request")

        out, _ = self.ctl("requests")
        self.assertRegex(out, r"(?m)^ *%d .* 127\.0\.0\.1 +a\.test +pending " % row["id"])

        # Approve: the requester's next visit works, and the rule names the request.
        _, err = self.ctl("requests", "approve", str(row["id"]), "--for", "2w", expect=2)
        self.assertIn("--for needs one of 1h, 1d, 1w, permanent", err)
        with self.assertRaises(urllib.error.HTTPError) as cm:
            self.px.api("POST", "/api/requests/%d/approve" % row["id"], {"for": "2w"})
        self.assertEqual(cm.exception.code, 400)
        before = time.time()
        out, _ = self.ctl("requests", "approve", str(row["id"]), "--note", "ok for Q4",
                          "--for", "1w")
        m = re.fullmatch(r"approved request %d: rule \d+ \(in force\): allow domain a\.test "
                         r"clients 127\.0\.0\.1 expires (\S+)Z\n" % row["id"], out)
        self.assertIsNotNone(m, out)
        until = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))
        self.assertTrue(before + 7 * 86400 - 1 <= until <= time.time() + 7 * 86400, m.group(1))
        self.assertEqual(self.visit("a.test")[0], 200)
        rules = self.px.api("GET", "/api/rules")["rules"]
        self.assertEqual(rules[0]["text"], "allow domain a.test clients 127.0.0.1 expires %sZ"
                         % m.group(1))
        self.assertEqual(rules[0]["expires"], until * 1000)
        self.assertFalse(rules[0]["expired"])
        self.assertEqual(rules[0]["comment"], "access request %d: ok for Q4" % row["id"])
        _, err = self.ctl("requests", "approve", str(row["id"]), expect=1)
        self.assertIn("was approved already", err)
        out, _ = self.ctl("requests", "--all")
        self.assertRegex(out, r"approved .* by token \(rule %d\): ok for Q4" % rules[0]["id"])

        # Deny: recorded with the reason; the host stays blocked.
        token_b = self.token("b.test")
        self.assertEqual(self.submit("b.test", {"t": token_b, "reason": "games"})[0], 202)
        row_b = self.pending("b.test")
        self.ctl("requests", "deny", str(row_b["id"]), "--reason", "not for work")
        done = [r for r in self.px.api("GET", "/api/requests?status=all")["rows"]
                if r["id"] == row_b["id"]][0]
        self.assertEqual((done["status"], done["note"], done["decided_by"]),
                         ("denied", "not for work", "token"))
        self.assertEqual(self.visit("b.test")[0], 403)
        audit = [a["action"] for a in self.px.api("GET", "/api/audit")["rows"]]
        self.assertIn("request.approve", audit)
        self.assertIn("request.deny", audit)

        # Five requests an hour per client: two sent, three more pass, the sixth does not.
        token_c = self.token("c.test")
        for i in range(3):
            self.assertEqual(self.submit("c.test", {"t": token_c, "reason": "try %d" % i})[0], 202)
        status, page = self.submit("c.test", {"t": token_c, "reason": "again"})
        self.assertEqual(status, 429)
        self.assertIn("Please wait", page)
        # Asking again for the same host replaced the pending request's reason (the main
        # thread stores what the workers queued on its next poll).
        def c_rows():
            rows = [r for r in self.px.api("GET", "/api/requests")["rows"]
                    if r["host"] == "c.test"]
            return rows if rows and rows[0]["reason"] == "try 2" else None
        pend = wait_for(c_rows, timeout=60)
        self.assertTrue(pend, "the third request for c.test was not stored")
        self.assertEqual(len(pend), 1)

        # Turned off: no form, and the path is blocked like the host.
        self.px.api("POST", "/api/block", {"domain": "d.test"})
        token_d = self.token("d.test")
        self.px.api("PUT", "/api/settings", {"access_requests": "off"})
        self.assertTrue(wait_for(lambda: "<form" not in self.visit("d.test")[1], timeout=60),
                        "the form stayed after the setting went off")
        status, page = self.submit("d.test", {"t": token_d, "reason": "x"})
        self.assertEqual(status, 403)
        self.assertIn("blocked by the office&#39;s access policy", page)

    def test_two_approvals_at_once_add_one_rule(self):
        # Two admins (or tabs) approving one request together: one approval, one rule; the
        # other is told it was decided (409) and adds nothing. A proxyd of its own, so its
        # four requests stay under the five an hour a client may send.
        hosts = ("a.test", "b.test", "c.test", "d.test")
        with Proxyd(dns=self.dns) as px:
            px.api("PUT", "/api/settings", {"access_requests": "on"})
            for host in hosts:
                px.api("POST", "/api/block", {"domain": host})
                url = "http://%s:%d/small" % (host, self.origin.port)

                def form():
                    page = px.get(url)[2].decode()
                    return re.search(r'name="t" value="([^"]+)"', page)
                token = wait_for(form, timeout=60)
                self.assertTrue(token, "no request form on the block page of " + host)
                query = urllib.parse.urlencode({"t": html.unescape(token.group(1)), "reason": "w"})
                self.assertEqual(px.get(url.replace("/small", PATH) + "?" + query)[0], 202)
            ids = wait_for(lambda: [r["id"] for r in px.api("GET", "/api/requests")["rows"]]
                           if px.api("GET", "/api/requests")["pending"] == len(hosts) else None,
                           timeout=60)
            self.assertTrue(ids, "the requests were not stored")
            for rid in ids:
                start = threading.Barrier(2)
                codes = []

                def approve():
                    start.wait(timeout=30)
                    try:
                        px.api("POST", "/api/requests/%d/approve" % rid, {})
                        codes.append(200)
                    except urllib.error.HTTPError as e:
                        codes.append(e.code)
                threads = [threading.Thread(target=approve) for _ in range(2)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(timeout=60)
                self.assertEqual(sorted(codes), [200, 409], "request %d" % rid)
            texts = [r["text"] for r in px.api("GET", "/api/rules")["rules"]]
            for host in hosts:
                self.assertEqual(texts.count("allow domain %s clients 127.0.0.1" % host), 1, texts)
            self.assertEqual(px.stop(), 0, "proxyd did not stop cleanly:\n" + px.log()[-3000:])

    def test_allowed_hosts_pass_the_path_through(self):
        # Nothing is blocked: the reserved path is the origin's business.
        self.px.api("PUT", "/api/settings", {"access_requests": "on"})
        status, _ = self.visit("d.test", PATH + "?t=1&reason=x")
        self.assertEqual(status, 404)  # the test origin's answer for an unknown path
        self.px.api("PUT", "/api/settings", {"access_requests": ""})  # back to the default


if __name__ == "__main__":
    unittest.main()
