"""End-to-end tests of proxy authentication: 407 with a Basic challenge when a rule needs a
user, verified users decided by the ACL and recorded in the access log."""
import base64
import sqlite3
import unittest

from harness import (DnsStub, Origin, Proxyd, closed_by_peer, header, read_head, read_response,
                     wait_for)

POLICY = """allow domain allowed.test users alice
deny  domain allowed.test
"""


def basic(user, password):
    return "Proxy-Authorization: Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


class AuthTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dns = DnsStub({"allowed.test": "127.0.0.1", "open.test": "127.0.0.1",
                           "slow.test": "127.0.0.1"}, delays={"slow.test": 3000}).__enter__()
        cls.origin = Origin().__enter__()
        cls.px = Proxyd(dns=cls.dns, policy=POLICY,  # tunnels to the origin's port too
                        extra_args=["--connect-ports", "443,%d" % cls.origin.port]).__enter__()
        cls.px.api("PUT", "/api/users/alice", {"password": "alice-secret"})
        cls.px.api("PUT", "/api/users/bob", {"password": "bob-secret"})
        cls.url = "http://allowed.test:%d/small" % cls.origin.port

    @classmethod
    def tearDownClass(cls):
        cls.px.__exit__(None, None, None)
        cls.origin.__exit__()
        cls.dns.__exit__()

    def test_no_credentials_gets_407_with_challenge(self):
        status, headers, _ = self.px.get(self.url)
        self.assertEqual(status, 407)
        self.assertEqual(header(headers, "Proxy-Authenticate"), 'Basic realm="proxyd"')

    def test_rule_without_users_needs_no_credentials(self):
        status, _, _ = self.px.get("http://open.test:%d/small" % self.origin.port)
        self.assertEqual(status, 200)

    def test_right_user_passes_and_is_logged(self):
        for _ in range(3):  # the first is verified by Argon2, the rest come from the cache
            status, _, body = self.px.get(self.url + "?who=alice", headers=[basic("alice", "alice-secret")])
            self.assertEqual((status, len(body)), (200, 1024))

        def users():
            db = sqlite3.connect("file:%s?mode=ro" % self.px.db_path, uri=True, timeout=5)
            try:
                return [r[0] for r in db.execute(
                    "SELECT user FROM access_log WHERE path = '/small?who=alice'")]
            finally:
                db.close()
        self.assertTrue(wait_for(lambda: users() == ["alice"] * 3, timeout=60), users())

    def test_wrong_password_gets_407(self):
        status, _, _ = self.px.get(self.url, headers=[basic("alice", "wrong")])
        self.assertEqual(status, 407)
        status, _, _ = self.px.get(self.url, headers=[basic("nobody", "x")])
        self.assertEqual(status, 407)

    def test_other_user_is_decided_by_the_next_rule(self):
        status, _, body = self.px.get(self.url, headers=[basic("bob", "bob-secret")])
        self.assertEqual(status, 403)
        # The page names the rule by number; the log holds its words.
        self.assertRegex(body, rb"access policy \(rule \d+\)\.")
        self.assertNotIn(b"deny domain", body)

        def reasons():
            db = sqlite3.connect("file:%s?mode=ro" % self.px.db_path, uri=True, timeout=5)
            try:
                return [r[0] for r in db.execute(
                    "SELECT error FROM access_log WHERE user = 'bob' AND status = 403")]
            finally:
                db.close()
        self.assertTrue(wait_for(lambda: any("deny domain allowed.test" in r for r in reasons()),
                                 timeout=60), reasons())

    def test_malformed_credentials_count_as_none(self):
        status, _, _ = self.px.get(self.url, headers=["Proxy-Authorization: Basic !!!"])
        self.assertEqual(status, 407)

    def test_changed_password_takes_effect(self):
        self.px.api("PUT", "/api/users/carol", {"password": "first-pass"})
        self.px.api("POST", "/api/rules", {"text": "allow domain allowed.test users carol", "before": -1})
        status, _, _ = self.px.get(self.url, headers=[basic("carol", "first-pass")])
        self.assertEqual(status, 200)
        self.px.api("PUT", "/api/users/carol", {"password": "second-pass"})
        self.assertTrue(wait_for(lambda: self.px.get(self.url, headers=[basic("carol", "first-pass")])[0] == 407,
                                 timeout=60))
        status, _, _ = self.px.get(self.url, headers=[basic("carol", "second-pass")])
        self.assertEqual(status, 200)

    def test_deleting_a_user_closes_their_open_tunnels(self):
        # A tunnel's password was checked once, when it opened: deleting its user closes it;
        # another user's tunnel stays.
        self.px.api("PUT", "/api/users/dave", {"password": "dave-secret"})
        rule = self.px.api("POST", "/api/rules", {"text": "allow domain allowed.test users dave",
                                                  "before": -1})

        def tunnel(user, password):
            s = self.px.connect()
            s.sendall(("CONNECT allowed.test:%d HTTP/1.1\r\nHost: allowed.test:%d\r\n%s\r\n\r\n"
                       % (self.origin.port, self.origin.port, basic(user, password))).encode())
            head, rest = read_head(s)
            self.assertTrue(head.startswith(b"HTTP/1.1 200"), head)
            return s, rest
        (doomed, _), (kept, rest) = tunnel("dave", "dave-secret"), tunnel("alice", "alice-secret")
        # And one still being set up (its name resolves in 3 s): it must not open afterwards.
        pending = self.px.connect()
        try:
            pending.sendall(("CONNECT slow.test:%d HTTP/1.1\r\nHost: slow.test:%d\r\n%s\r\n\r\n"
                             % (self.origin.port, self.origin.port,
                                basic("dave", "dave-secret"))).encode())
            # Its password checked (a cached answer, from the tunnel above) before the delete.
            self.assertTrue(wait_for(lambda: self.px.api("GET", "/api/stats")["proxy"]
                                     ["connections_by_state"].get("resolve", 0) >= 1, timeout=60))
            self.px.api("DELETE", "/api/users/dave")
            self.assertTrue(closed_by_peer(doomed, 60))
            self.assertTrue(closed_by_peer(pending, 60), "the pending CONNECT answered")
            kept.sendall(b"GET /small HTTP/1.1\r\nHost: x\r\n\r\n")
            status, _, body, _ = read_response(kept, rest)
            self.assertEqual((status, len(body)), (200, 1024))
            rows = wait_for(lambda: self.px.db_rows(
                "SELECT error FROM access_log WHERE method = 'CONNECT' AND user = 'dave'"
                " ORDER BY host"), timeout=60)
            self.assertEqual(rows, [("closed: proxy user dave was deleted",)] * 2)
        finally:
            pending.close()
            doomed.close()
            kept.close()
            self.px.api("DELETE", "/api/rules/%d" % rule["rule"]["id"])


if __name__ == "__main__":
    unittest.main()
