"""End-to-end tests of how proxyd reads a request's host: one canonical spelling per host,
so a rule on a name or an address holds for every way of writing it (docs/security.md,
"Host names and addresses"), `deny dest` on the addresses a name resolves to, and a regex
that cannot decide denying rather than letting the request through ("Rule evaluation").
Every refused request is also checked not to have reached the origin."""
import sqlite3
import threading
import time
import unittest

from harness import DnsStub, Origin, Proxyd, header, parse_headers, read_head, wait_for

RECORDS = {
    "blocked.example": "127.0.0.1",
    "listed.example": "127.0.0.1",
    "rx-blocked.example": "127.0.0.1",
    "allowed.example": "127.0.0.1",
    "slow.example": "127.0.0.1",
    "internal.example": "127.0.0.3",
    "exempt.example": "127.0.0.3",
    "mixed.example": ["127.0.0.1", "127.0.0.3"],
}

POLICY = """\
allow domain exempt.example
deny dest 127.0.0.3/32
deny domain blocked.example
deny host-regex ^rx-blocked\\.
deny domain 127.0.0.1
deny url-regex ^http://slow\\.example[^/]*/(a+)+$
deny url-regex ^http://[^/]+/admin/
"""


class NamesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dns = DnsStub(RECORDS).__enter__()
        cls.origin = Origin().__enter__()
        cls.origin3 = Origin("127.0.0.3").__enter__()
        ports = "443,%d,%d" % (cls.origin.port, cls.origin3.port)
        cls.px = Proxyd(dns=cls.dns, policy=POLICY, extra_args=["--connect-ports", ports]).__enter__()
        cls.px.api("PUT", "/api/lists/bad", b"listed.example\n")
        cls.px.api("POST", "/api/rules", {"text": "deny list bad", "before": -1})

    @classmethod
    def tearDownClass(cls):
        cls.px.__exit__(None, None, None)
        cls.origin3.__exit__()
        cls.origin.__exit__()
        cls.dns.__exit__()

    def origin_count(self):
        with self.origin.lock, self.origin3.lock:
            return len(self.origin.requests) + len(self.origin3.requests)

    def status_of(self, raw):
        status, _, _ = self.px.request(raw.encode())
        return status

    def get_status(self, host_port, path="/small"):
        return self.status_of("GET http://%s%s HTTP/1.1\r\nHost: x\r\n\r\n" % (host_port, path))

    def connect_status(self, authority):
        with self.px.connect() as s:
            s.sendall(("CONNECT %s HTTP/1.1\r\nHost: x\r\n\r\n" % authority).encode())
            head, _ = read_head(s)
            return int(parse_headers(head)[0].split(" ")[1])

    def test_allowed_name_is_relayed(self):
        p = self.origin.port
        self.assertEqual(self.get_status("allowed.example:%d" % p), 200)
        self.assertEqual(self.get_status("ALLOWED.Example.:%d" % p), 200)

    def test_name_spellings_of_a_denied_domain_never_reach_it(self):
        p = self.origin.port
        before = self.origin_count()
        # one trailing dot and any case: the same host, denied
        for host in ("blocked.example", "Blocked.EXAMPLE.", "www.blocked.example.",
                     "listed.example.", "sub.LISTED.example", "rx-blocked.example.",
                     "RX-Blocked.example"):
            self.assertEqual(self.get_status("%s:%d" % (host, p)), 403, host)
            self.assertEqual(self.connect_status("%s:%d" % (host, p)), 403, host)
        # spellings that are not one host: refused before any rule or lookup
        for host in ("blocked.example..", "blocked.example...", ".blocked.example",
                     "blocked..example", "listed.example..", "rx-blocked.example..",
                     "blocked%2eexample", "blocked.example%2e", "..", "."):
            self.assertEqual(self.get_status("%s:%d" % (host, p)), 400, host)
            self.assertEqual(self.connect_status("%s:%d" % (host, p)), 400, host)
        self.assertEqual(self.origin_count(), before)

    def test_address_spellings_of_a_denied_address_never_reach_it(self):
        p = self.origin.port
        before = self.origin_count()
        for host in ("127.0.0.1", "127.0.0.1.", "[::ffff:127.0.0.1]", "[::FFFF:7f00:1]",
                     "[0:0:0:0:0:ffff:127.0.0.1]"):
            self.assertEqual(self.get_status("%s:%d" % (host, p)), 403, host)
            self.assertEqual(self.connect_status("%s:%d" % (host, p)), 403, host)
        for host in ("0127.0.0.1", "127.000.000.001", "127.0.0.01", "2130706433", "0x7f.1",
                     "0x7f.0.0.1", "0x7f000001", "017700000001", "127.1", "127.0.1",
                     "[::ffff:127.000.0.1]"):
            self.assertEqual(self.get_status("%s:%d" % (host, p)), 400, host)
            self.assertEqual(self.connect_status("%s:%d" % (host, p)), 400, host)
        self.assertEqual(self.origin_count(), before)

    def test_host_header_is_checked_and_replaced_by_the_target(self):
        p = self.origin.port
        raw = "GET http://Allowed.Example.:%d/small HTTP/1.1\r\nHost: blocked.example\r\n\r\n" % p
        self.assertEqual(self.status_of(raw), 200)
        with self.origin.lock:
            head, _ = self.origin.requests[-1]
        _, headers = parse_headers(head)
        self.assertEqual(header(headers, "Host"), "allowed.example:%d" % p)
        before = self.origin_count()
        for bad in ("a..b", "0x7f.1", "a b", "[::1", "x:8o"):
            raw = "GET http://allowed.example:%d/small HTTP/1.1\r\nHost: %s\r\n\r\n" % (p, bad)
            self.assertEqual(self.status_of(raw), 400, bad)
        self.assertEqual(self.origin_count(), before)

    def logged_reason(self, host, words, path=None):
        """Whether a denial of host (at path) was logged with words in its reason."""
        db = sqlite3.connect("file:%s?mode=ro" % self.px.db_path, uri=True, timeout=5)
        try:
            rows = db.execute("SELECT path, error FROM access_log WHERE host = ? AND status = 403",
                              (host,)).fetchall()
        finally:
            db.close()
        return any(words in error and (path is None or p == path) for p, error in rows)

    def test_deny_dest_holds_for_the_addresses_a_name_resolves_to(self):
        p3 = self.origin3.port
        before = self.origin_count()
        status, _, body = self.px.request(
            ("GET http://internal.example:%d/small HTTP/1.1\r\nHost: x\r\n\r\n" % p3).encode())
        self.assertEqual(status, 403)
        # The page names the rule by number; the log holds its words.
        self.assertRegex(body, rb"access policy \(rule \d+\)\.")
        self.assertTrue(wait_for(lambda: self.logged_reason(
            "internal.example", "deny dest 127.0.0.3/32 (address 127.0.0.3)"), timeout=60))
        self.assertEqual(self.connect_status("internal.example:%d" % p3), 403)
        self.assertEqual(self.get_status("127.0.0.3:%d" % p3), 403)
        self.assertEqual(self.get_status("[::ffff:127.0.0.3]:%d" % p3), 403)
        # one denied address among several denies the name, whichever would be tried first
        self.assertEqual(self.get_status("mixed.example:%d" % p3), 403)
        self.assertEqual(self.origin_count(), before)
        # a rule above the dest rule still decides first
        self.assertEqual(self.get_status("exempt.example:%d" % p3), 200)

    def test_denied_request_is_logged_under_its_canonical_host(self):
        marker = "/small?canon=%d" % time.monotonic_ns()
        self.get_status("WWW.Blocked.Example.:%d" % self.origin.port, marker)

        def rows():
            db = sqlite3.connect("file:%s?mode=ro" % self.px.db_path, uri=True, timeout=5)
            try:
                return db.execute("SELECT host, status FROM access_log WHERE path = ?",
                                  (marker,)).fetchall()
            finally:
                db.close()

        self.assertEqual(wait_for(rows, timeout=60), [("www.blocked.example", 403)])

    def test_regex_at_its_match_limit_denies_and_is_counted(self):
        before = self.origin_count()
        path = "/" + "a" * 40 + "b"
        status, _, body = self.px.request(
            ("GET http://slow.example:%d%s HTTP/1.1\r\nHost: x\r\n\r\n"
             % (self.origin.port, path)).encode())
        self.assertEqual(status, 403)
        # The page names the rule by number; the log holds its words (the counter below
        # says it was undecided).
        self.assertRegex(body, rb"access policy \(rule \d+\)\.")
        self.assertTrue(wait_for(lambda: self.logged_reason("slow.example", "deny url-regex", path),
                                 timeout=60))
        self.assertEqual(self.origin_count(), before)
        # a URL the regex can decide on is not held up by it
        self.assertEqual(self.get_status("slow.example:%d" % self.origin.port, "/small"), 200)

        def undecided():
            for r in self.px.api("GET", "/api/rules")["rules"]:
                if "slow" in r["text"]:
                    return r["undecided"]
            return None

        self.assertTrue(wait_for(lambda: (undecided() or 0) >= 1, timeout=60))


    def test_a_path_is_judged_as_loose_servers_read_it(self):
        # Tomcat drops ";parameters" from a segment ("/x/..;/admin/" is "/admin/"), IIS takes
        # "\\" for "/", nginx decodes "%2F": each is the denied /admin/ to such a server.
        p = self.origin.port
        before = self.origin_count()
        # Tomcat ends a ";parameter" at "/" only: "/admin;\\..\\/panel" is its "/admin/panel".
        for path in ("/admin;v=1/panel", "/x/..;/admin/panel", "/x\\..\\admin\\panel",
                     "/admin%2Fpanel", "/admin%5cpanel", "/admin;\\..\\/panel"):
            self.assertEqual(self.get_status("allowed.example:%d" % p, path), 403, path)
        self.assertEqual(self.origin_count(), before)
        self.assertTrue(wait_for(lambda: self.logged_reason(
            "allowed.example", "path read without ;parameters", "/x/..;/admin/panel"), timeout=60))
        # A parameter elsewhere is no reason to refuse.
        self.assertNotEqual(self.get_status("allowed.example:%d" % p, "/small;jsessionid=A1"), 403)
        self.assertEqual(self.origin_count(), before + 1)


class PolicyChangeDuringLookupTest(unittest.TestCase):
    def test_deny_dest_published_while_a_name_resolves_applies_to_it(self):
        # The set that decided had no dest rule; one published while the name was being
        # resolved must still hold for its addresses. The lookup is held long enough (a hang
        # guard, not a speed bound) for the rule to be added after the question was asked.
        with DnsStub({"late.example": "127.0.0.3"}, delays={"late.example": 15000}) as dns, \
                Origin("127.0.0.3") as origin3:
            with Proxyd(dns=dns, policy="deny domain blocked.example\n",
                        extra_args=["--dns-timeout", "60000", "--header-timeout", "60000"]) as px:
                result = {}
                raw = ("GET http://late.example:%d/small HTTP/1.1\r\nHost: x\r\n\r\n"
                       % origin3.port).encode()
                t = threading.Thread(
                    target=lambda: result.update(status=px.request(raw, timeout=120)[0]))
                t.start()
                self.assertTrue(wait_for(lambda: dns.queries["late.example"] > 0, timeout=60))
                px.api("POST", "/api/rules", {"text": "deny dest 127.0.0.3/32", "before": -1})
                t.join(180)
                self.assertEqual(result.get("status"), 403)
                with origin3.lock:
                    self.assertEqual(origin3.requests, [])


if __name__ == "__main__":
    unittest.main()
