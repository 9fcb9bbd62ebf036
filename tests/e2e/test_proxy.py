"""End-to-end tests of the relay: the real proxyd, scripted origins and a DNS stub on
127.0.0.1. Every wait is bounded; nothing asserts on timing beyond generous deadlines."""
import os
import re
import socket
import unittest

from harness import (DnsStub, Origin, Proxyd, closed_by_peer, header, parse_headers, pattern,
                     read_head, read_response, wait_for)

RECORDS = {"allowed.test": "127.0.0.1", "v6.test": "::1", "blocked.test": "127.0.0.1",
           "rebind.test": "169.254.169.254", "tunnel.test": "127.0.0.1"}


class RelayTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dns = DnsStub(RECORDS, drops={"never.test"}).__enter__()
        cls.origin = Origin().__enter__()
        cls.px = Proxyd(dns=cls.dns, policy="deny domain blocked.test\n",
                        extra_args=["--connect-ports", "443,%d" % cls.origin.port]).__enter__()
        cls.base = "http://allowed.test:%d" % cls.origin.port

    @classmethod
    def tearDownClass(cls):
        cls.px.__exit__(None, None, None)
        cls.origin.__exit__()
        cls.dns.__exit__()

    def last_origin_request(self):
        with self.origin.lock:
            return self.origin.requests[-1]

    def test_length_body_that_comes_with_the_origin_close_is_relayed(self):
        # The end of stream can be read in the pass that sends the head, before the body that
        # came with it is framed: the body must still go out (it went missing, as from
        # Python's http.server, when the close was judged first).
        for i in range(40):
            status, _, body = self.px.get(self.base + "/length-close?n=21&i=%d" % i)
            self.assertEqual((status, body), (200, pattern(21)), i)

    def test_get_small_is_relayed_byte_exact(self):
        status, headers, body = self.px.get(self.base + "/small")
        self.assertEqual(status, 200)
        self.assertEqual(body, b"x" * 1024)
        self.assertIn("proxyd", header(headers, "Via"))

    def test_ip_literal_target_needs_no_dns(self):
        status, _, body = self.px.get("http://127.0.0.1:%d/small" % self.origin.port)
        self.assertEqual((status, len(body)), (200, 1024))

    def test_ipv6_name_and_literal(self):
        with Origin("::1") as o6:
            status, _, body = self.px.get("http://v6.test:%d/small" % o6.port)
            self.assertEqual((status, len(body)), (200, 1024))
            status, _, body = self.px.get("http://[::1]:%d/small" % o6.port)
            self.assertEqual((status, len(body)), (200, 1024))
            head, _ = o6.requests[-1]
            self.assertIn(b"Host: [::1]:%d\r\n" % o6.port, head)

    def test_large_binary_body_both_ways(self):
        data = pattern(3 * 1024 * 1024 + 17)
        status, _, body = self.px.get(self.base + "/echo", method="POST", body=data, timeout=30)
        self.assertEqual(status, 200)
        self.assertEqual(body, data)
        status, _, body = self.px.get(self.base + "/big?n=5000000", timeout=30)
        self.assertEqual(body, pattern(5000000))

    def test_long_body_to_a_slow_reader_then_the_next_request_on_both_connections(self):
        # A client that reads slowly fills the splice pipe again and again, and proxyd stops
        # listening to the origin's bytes while it is full: the body must still arrive whole,
        # and the kept origin and the client must be heard again afterwards (the second
        # request on the same connections is answered).
        n = 12 * 1024 * 1024 + 5
        with self.px.connect() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            s.sendall(("GET %s/big?n=%d HTTP/1.1\r\nHost: x\r\n\r\n" % (self.base, n)).encode())
            head, buf = read_head(s, b"")
            self.assertIsNotNone(head)
            self.assertTrue(head.startswith(b"HTTP/1.1 200"), head[:40])
            body = bytearray(buf)
            while len(body) < n:
                data = s.recv(4096)
                self.assertTrue(data, "closed after %d of %d bytes" % (len(body), n))
                body += data
            self.assertEqual(len(body), n)
            self.assertTrue(body == pattern(n), "the body differs")
            s.sendall(("GET %s/small HTTP/1.1\r\nHost: x\r\n\r\n" % self.base).encode())
            status, _, small, _ = read_response(s)
            self.assertEqual((status, small), (200, b"x" * 1024))

    def test_empty_body_and_methods(self):
        for method in ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
            status, _, body = self.px.get(self.base + "/echo", method=method, body=b"")
            self.assertEqual((method, status, body), (method, 200, b""))
            head, _ = self.last_origin_request()
            self.assertTrue(head.startswith(("%s /echo HTTP/1.1\r\n" % method).encode()), head)

    def test_chunked_request_and_response(self):
        raw = ("POST %s/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n" % self.base).encode()
        status, _, body = self.px.request(raw)
        self.assertEqual((status, body), (200, b"hello world"))
        status, headers, body = self.px.get(self.base + "/chunked?n=25000")
        self.assertEqual(header(headers, "Transfer-Encoding"), "chunked")
        self.assertEqual(body, pattern(25000))

    def test_http10_client_is_asked_for_as_10_and_closed(self):
        with self.px.connect() as s:
            s.sendall(("GET %s/chunked?n=5000 HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n"
                       % self.base).encode())
            status, headers, body, _ = read_response(s)
            self.assertEqual((status, body), (200, pattern(5000)))
            self.assertIsNone(header(headers, "Transfer-Encoding"))
            self.assertEqual(header(headers, "Connection"), "close")
            s.settimeout(5)
            self.assertEqual(s.recv(1), b"")  # closed after the response
        head, _ = self.last_origin_request()
        self.assertTrue(head.startswith(b"GET /chunked?n=5000 HTTP/1.0\r\n"), head[:60])

    def test_close_delimited_response(self):
        with self.px.connect() as s:
            s.sendall(("GET %s/close?n=70000 HTTP/1.1\r\nHost: x\r\n\r\n" % self.base).encode())
            status, headers, body, _ = read_response(s)
        self.assertEqual(status, 200)
        self.assertEqual(body, pattern(70000))
        self.assertEqual(header(headers, "Connection"), "close")

    def test_head_204_304_have_no_body_and_keep_alive(self):
        with self.px.connect() as s:
            s.sendall(("HEAD %s/small HTTP/1.1\r\nHost: x\r\n\r\n" % self.base).encode())
            status, headers, body, rest = read_response(s, head_request=True)
            self.assertEqual((status, header(headers, "Content-Length")), (200, "1024"))
            for code in (204, 304):
                s.sendall(("GET %s/status?code=%d HTTP/1.1\r\nHost: x\r\n\r\n" % (self.base, code)).encode())
                status, _, body, rest = read_response(s, rest)
                self.assertEqual((status, body), (code, b""))
            s.sendall(("GET %s/small HTTP/1.1\r\nHost: x\r\n\r\n" % self.base).encode())
            status, _, body, _ = read_response(s, rest)
            self.assertEqual((status, len(body)), (200, 1024))

    def test_keep_alive_and_pipelining_in_order(self):
        with self.px.connect() as s:
            reqs = b"".join(("GET %s/big?n=%d HTTP/1.1\r\nHost: x\r\n\r\n" % (self.base, n)).encode()
                            for n in (10, 70000, 3, 1))
            s.sendall(reqs)
            rest = b""
            for n in (10, 70000, 3, 1):
                status, _, body, rest = read_response(s, rest)
                self.assertEqual((status, body), (200, pattern(n)))

    def test_hop_by_hop_headers_are_removed_and_host_set(self):
        raw = ("GET %s/small HTTP/1.1\r\nHost: wrong.example\r\nConnection: keep-alive, X-Secret\r\n"
               "X-Secret: 1\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\n"
               "Proxy-Authorization: Basic Zm9vOmJhcg==\r\nTE: trailers\r\nUpgrade: h2c\r\n"
               "X-Kept: yes\r\n\r\n" % self.base).encode()
        status, _, _ = self.px.request(raw)
        self.assertEqual(status, 200)
        head, _ = self.last_origin_request()
        first, headers = parse_headers(head)
        self.assertEqual(first, "GET /small HTTP/1.1")
        names = [k.lower() for k, _ in headers]
        for gone in ("x-secret", "keep-alive", "proxy-connection", "proxy-authorization", "te",
                     "upgrade"):
            self.assertNotIn(gone, names)
        self.assertEqual(header(headers, "Host"), "allowed.test:%d" % self.origin.port)
        self.assertEqual(names.count("host"), 1)
        self.assertEqual(header(headers, "X-Kept"), "yes")
        self.assertIn("proxyd", header(headers, "Via"))

    def test_expect_100_continue(self):
        with self.px.connect() as s:
            s.sendall(("POST %s/continue HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                       "Expect: 100-continue\r\n\r\n" % self.base).encode())
            status, _, _, rest = read_response(s)
            self.assertEqual(status, 100)
            s.sendall(b"hello")
            status, _, body, _ = read_response(s, rest)
            self.assertEqual((status, body), (200, b"hello"))

    def test_connect_tunnel(self):
        with self.px.connect() as s:
            s.sendall(("CONNECT allowed.test:%d HTTP/1.1\r\nHost: allowed.test:%d\r\n\r\n"
                       % (self.origin.port, self.origin.port)).encode())
            head, rest = read_head(s)
            self.assertTrue(head.startswith(b"HTTP/1.1 200"), head)
            s.sendall(b"GET /big?n=300000 HTTP/1.1\r\nHost: x\r\n\r\n")
            status, _, body, _ = read_response(s, rest)
            self.assertEqual(body, pattern(300000))

    def test_connect_to_other_port_is_403(self):
        status, _, _ = self.px.request(b"CONNECT allowed.test:25 HTTP/1.1\r\nHost: allowed.test:25\r\n\r\n")
        self.assertEqual(status, 403)

    def test_websocket_upgrade_relays_both_ways(self):
        with self.px.connect() as s:
            s.sendall(("GET %s/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
                       % self.base).encode())
            head, rest = read_head(s)
            self.assertTrue(head.startswith(b"HTTP/1.1 101"), head)
            self.assertIn(b"websocket", head.lower())
            s.sendall(b"\x81\x05hello")
            got = rest
            while len(got) < 7:
                got += s.recv(100)
            self.assertEqual(got, b"\x81\x05hello")

    def test_malformed_requests_get_400_family_and_close(self):
        cases = [
            (b"GET http://allowed.test/ HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
            (b"GET http://allowed.test/ HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400),
            (b"GET http://allowed.test/ HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", 400),
            (b"GET http://allowed.test/ HTTP/1.1\nHost: x\n\n", 400),
            (b"GET http://allowed.test/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
            (b"GET http://allowed.test/" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
            (b"GET http://allowed.test/ HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"b" * 8000 + b"\r\n" + b"X-Pad2: " + b"b" * 9000 + b"\r\n\r\n", 431),
            (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ]
        before = len(self.origin.requests)
        for raw, want in cases:
            with self.px.connect() as s:
                s.sendall(raw)
                status, _, _, _ = read_response(s)
                self.assertEqual(status, want, raw[:80])
                s.settimeout(5)
                try:
                    extra = s.recv(1)
                except ConnectionResetError:
                    extra = b""
                self.assertEqual(extra, b"", "connection should close after %d" % want)
        self.assertEqual(len(self.origin.requests), before, "nothing forwarded")

    def test_bad_chunk_in_body_is_not_forwarded_ambiguously(self):
        raw = ("POST %s/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               "zz\r\nhello\r\n0\r\n\r\n" % self.base).encode()
        status, _, _ = self.px.request(raw)
        self.assertEqual(status, 400)

    def test_unknown_name_is_502_from_the_answer(self):
        # The DNS answer itself ends the request: its page says the name does not exist,
        # where a lookup that ran out of time says it could not be resolved.
        status, _, body = self.px.get("http://nonexistent.test/")
        self.assertEqual(status, 502)
        self.assertIn(b"does not exist", body)

    def test_unanswered_dns_is_502_by_the_dns_timeout(self):
        # The stub never answers: proxyd's own DNS timeout (its default, 4 s, on a proxy of
        # its own) ends the request with its page, long before the socket's hang guard.
        with Proxyd(dns=self.dns, extra_args=["--dns-timeout", "4000"]) as px:
            status, _, body = px.get("http://never.test/", timeout=60)
        self.assertIn(status, (502, 504))
        self.assertIn(b"could not be resolved", body)

    def test_refused_connect_is_502(self):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        status, _, _ = self.px.get("http://allowed.test:%d/" % port)
        self.assertEqual(status, 502)

    def test_origin_timeout_is_504(self):
        # A proxy of its own with a short origin timeout (the class's proxy keeps the default,
        # so that a slow origin thread on a busy machine is never a 504 there), and an origin
        # silent for far longer than it.
        with Proxyd(dns=self.dns, extra_args=["--origin-timeout", "1500"]) as px:
            status, _, body = px.get(self.base + "/slow?ms=60000", timeout=60)
        self.assertEqual(status, 504)
        self.assertIn(b"did not answer in time", body)

    def test_origin_closing_without_answer_is_502(self):
        status, _, _ = self.px.get(self.base + "/drop")
        self.assertEqual(status, 502)

    def test_link_local_and_own_ports_are_refused(self):
        status, _, _ = self.px.get("http://rebind.test/")
        self.assertEqual(status, 403)
        status, _, _ = self.px.get("http://127.0.0.1:%d/" % self.px.proxy_port)
        self.assertEqual(status, 403)
        status, _, _ = self.px.get("http://127.0.0.1:%d/api/health" % self.px.admin_port)
        self.assertEqual(status, 403)

    def test_denied_domain_gets_block_page_and_origin_not_contacted(self):
        before = len(self.origin.requests)
        status, headers, body = self.px.get("http://blocked.test:%d/x?<script>" % self.origin.port)
        self.assertEqual(status, 403)
        self.assertIn(b"blocked", body)
        self.assertNotIn(b"<script>", body)
        self.assertEqual(len(self.origin.requests), before)

    def test_policy_change_applies_to_open_connections_without_dropping_them(self):
        with self.px.connect() as s:
            url = "http://news.test:%d/small" % self.origin.port
            s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % url).encode())
            status, _, _, rest = read_response(s)
            self.assertEqual(status, 502)  # news.test is not in the DNS stub: proves it asked
            rule = self.px.api("POST", "/api/rules", {"text": "deny domain news.test", "before": -1})
            try:
                s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % url).encode())
                status, _, body, rest = read_response(s, rest)
                self.assertEqual(status, 403)  # same connection, new policy
                s.sendall(("GET %s/small HTTP/1.1\r\nHost: x\r\n\r\n" % self.base).encode())
                status, _, body, _ = read_response(s, rest)
                self.assertEqual((status, len(body)), (200, 1024))
            finally:
                self.px.api("DELETE", "/api/rules/%d" % rule["rule"]["id"])

    def test_a_policy_change_closes_the_open_tunnels_it_denies(self):
        def tunnel(host):
            s = self.px.connect()
            s.sendall(("CONNECT %s:%d HTTP/1.1\r\nHost: %s:%d\r\n\r\n"
                       % (host, self.origin.port, host, self.origin.port)).encode())
            head, rest = read_head(s)
            self.assertTrue(head.startswith(b"HTTP/1.1 200"), head)
            return s, rest

        (doomed, _), (kept, rest) = tunnel("tunnel.test"), tunnel("allowed.test")
        try:
            rule = self.px.api("POST", "/api/rules", {"text": "deny domain tunnel.test", "before": -1})
            try:
                # The rule is in force within a second; 60 s is the hang guard.
                self.assertTrue(closed_by_peer(doomed, 60))
                kept.sendall(b"GET /small HTTP/1.1\r\nHost: x\r\n\r\n")
                status, _, body, _ = read_response(kept, rest)
                self.assertEqual((status, len(body)), (200, 1024))

                rows = wait_for(lambda: self.px.db_rows(
                    "SELECT decision, error FROM access_log WHERE method = 'CONNECT'"
                    " AND host = 'tunnel.test'"), timeout=60)
                self.assertEqual(len(rows), 1, rows)
                self.assertRegex(rows[0][1], r"^closed by a policy change: rule \d+: deny domain")
            finally:
                self.px.api("DELETE", "/api/rules/%d" % rule["rule"]["id"])
        finally:
            doomed.close()
            kept.close()

    def test_a_policy_change_reads_all_of_an_open_websocket_path(self):
        # The record keeps a path's first 1,023 bytes; a rule that matches past them must
        # still close the WebSocket when it comes in force while the WebSocket is open.
        query = "x=" + "a" * 1500 + "&room=closeme"
        with self.px.connect() as s:
            s.sendall(("GET %s/ws?%s HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                       "Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                       "Sec-WebSocket-Version: 13\r\n\r\n" % (self.base, query)).encode())
            head, _ = read_head(s)
            self.assertTrue(head.startswith(b"HTTP/1.1 101"), head)
            rule = self.px.api("POST", "/api/rules", {"text": "deny url-regex room=closeme$",
                                                      "before": -1})
            try:
                self.assertTrue(closed_by_peer(s, 60))
                # Closed by the rule, not by the tunnel's idle timeout.
                rows = wait_for(lambda: self.px.db_rows(
                    "SELECT error FROM access_log WHERE path LIKE '/ws?x=%' AND status = 101"),
                    timeout=60)
                self.assertEqual(len(rows), 1, rows)
                self.assertRegex(rows[0][0], r"^closed by a policy change: rule \d+: deny url-regex")
            finally:
                self.px.api("DELETE", "/api/rules/%d" % rule["rule"]["id"])

    def test_slow_client_does_not_block_others(self):
        # A proxy of its own, and the hogs on an origin of their own that streams from one shared
        # buffer: neither a busy machine nor the hogs' origin can delay /small, so the
        # verdict is only about the proxy. Nobody reads the hogs: they stay stuck mid-body.
        with Origin() as hog_origin, Proxyd(dns=self.dns) as px:
            hog_url = "http://allowed.test:%d/stream?n=%d" % (hog_origin.port, 1 << 30)
            slow = px.connect()
            hogs = []
            try:
                slow.sendall(("GET %s/small HTTP/1.1\r\nHo" % self.base).encode())
                for _ in range(20):
                    h = px.connect()
                    h.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % hog_url).encode())
                    hogs.append(h)
                self.assertTrue(wait_for(lambda: hog_origin.streaming == 20, timeout=60),
                                "%d hogs streaming" % hog_origin.streaming)
                for _ in range(20):
                    status, _, body = px.get(self.base + "/small", timeout=60)
                    self.assertEqual((status, len(body)), (200, 1024))
                # ... while every hog is still stuck in the middle of its body.
                self.assertEqual((hog_origin.streaming, hog_origin.streamed), (20, 0))
                for h in hogs:
                    head, _ = read_head(h)
                    self.assertTrue(head.startswith(b"HTTP/1.1 200 "), head)
            finally:
                slow.close()
                for h in hogs:
                    h.close()

    def test_every_request_becomes_an_access_log_row(self):
        marker = "/small?marker=%d" % os.getpid()
        self.px.get(self.base + marker)
        self.px.get("http://blocked.test:%d%s" % (self.origin.port, marker))

        def rows():
            # Workers queue records separately: ids follow no order across them.
            return self.px.db_rows("SELECT host, status, decision, bytes_down, dest FROM access_log"
                                   " WHERE path = ? ORDER BY host", (marker,))

        got = wait_for(lambda: len(rows()) == 2 and rows(), timeout=60)
        self.assertTrue(got, "two rows expected")
        self.assertEqual(got[0][:3], ("allowed.test", 200, 0))
        self.assertGreater(got[0][3], 1024)
        self.assertEqual(got[1][:3], ("blocked.test", 403, 1))
        # Where each went: the origin's address, or nowhere for the one we answered.
        self.assertEqual((got[0][4], got[1][4]), ("127.0.0.1:%d" % self.origin.port, ""))


class LifecycleTest(unittest.TestCase):
    def test_help_version_and_bad_flag(self):
        import subprocess
        from harness import PROXYD
        out = subprocess.run([PROXYD, "--help"], capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0)
        self.assertIn("--listen", out.stdout)
        out = subprocess.run([PROXYD, "--version"], capture_output=True, text=True, timeout=60)
        self.assertIn("proxyd", out.stdout)
        out = subprocess.run([PROXYD, "--no-such-flag"], capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 2)
        self.assertIn("no-such-flag", out.stderr)

    def test_help_lists_every_option_of_the_table(self):
        import subprocess
        from harness import PROXYD
        # The option table in proxy/config.c is the one list of settings: every entry must
        # show in --help, however long the text grows.
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                               "proxy", "config.c")) as f:
            names = re.findall(r'^\s*\{"([a-z0-9-]+)", OPT_', f.read(), re.M)
        self.assertGreaterEqual(len(names), 30, names)
        out = subprocess.run([PROXYD, "--help"], capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0)
        shown = re.findall(r"^  --([a-z0-9-]+) +\S", out.stdout, re.M)
        self.assertEqual([n for n in names if n not in shown], [])
        self.assertTrue(out.stdout.endswith("\n"))
        self.assertIn("--config FILE", out.stdout)

    def test_second_instance_on_the_same_port_refuses_to_start(self):
        import subprocess
        import tempfile
        from harness import PROXYD
        with DnsStub(RECORDS) as dns, Proxyd(dns=dns) as px, tempfile.TemporaryDirectory() as d:
            out = subprocess.run([PROXYD, "--listen", "127.0.0.1:%d" % px.proxy_port,
                                  "--admin", "off", "--data-dir", d + "/var"],
                                 capture_output=True, text=True, timeout=60)
            self.assertEqual(out.returncode, 1)
            self.assertIn("Address already in use", out.stderr)

    def test_a_flag_that_fails_at_start_leaves_no_database_behind(self):
        """The checks that can fail at start run before the database is made: a busy admin
        address, a missing TLS certificate, an unreadable --upstream-ca, a too long node name
        each stop proxyd with their message, and the data folder it would have made (with the
        database in it) is not there."""
        import socket
        import subprocess
        import tempfile
        from harness import PROXYD
        with socket.socket() as held, tempfile.TemporaryDirectory() as d:
            held.bind(("127.0.0.1", 0))
            held.listen(1)
            busy = "127.0.0.1:%d" % held.getsockname()[1]
            cases = [
                (["--admin", busy], "admin listen address %s: cannot listen: Address already "
                                    "in use" % busy),
                (["--admin", "off", "--listen-tls", "127.0.0.1:0", "--tls-cert",
                  d + "/none.pem", "--tls-key", d + "/none.key"],
                 "while loading the TLS certificate"),
                (["--admin", "off", "--upstream-ca", d + "/none-ca.pem"],
                 "upstream-ca"),
                (["--admin", "off", "--node-name", "n" * 64], "node-name: longer than 63 bytes"),
            ]
            for args, said in cases:
                var = os.path.join(d, "var")
                out = subprocess.run([PROXYD, "--listen", "127.0.0.1:0", "--data-dir", var]
                                     + args, capture_output=True, text=True, timeout=60)
                self.assertEqual(out.returncode, 1, out.stderr)
                self.assertIn(said, out.stderr)
                self.assertFalse(os.path.exists(var), (args, os.listdir(d)))
            # The same with a data folder that exists: no database made in it.
            os.mkdir(var, 0o700)
            out = subprocess.run([PROXYD, "--listen", "127.0.0.1:0", "--data-dir", var,
                                  "--admin", busy], capture_output=True, text=True, timeout=60)
            self.assertEqual(out.returncode, 1, out.stderr)
            self.assertEqual(os.listdir(var), [])

    def test_bad_policy_file_names_the_line(self):
        import subprocess
        import tempfile
        from harness import PROXYD
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "bad.policy")
            with open(path, "w") as f:
                f.write("# comment\ndeny domain ok.test\ndeny url-regex ([\n")
            out = subprocess.run([PROXYD, "--policy", path, "--data-dir", d + "/var",
                                  "--admin", "off", "--listen", "127.0.0.1:0"],
                                 capture_output=True, text=True, timeout=60)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("bad.policy:3", out.stderr)

    def test_sigterm_finishes_request_in_flight(self):
        with DnsStub(RECORDS) as dns, Origin() as origin, Proxyd(dns=dns) as px:
            s = px.connect(timeout=60)
            s.sendall(("GET http://allowed.test:%d/slow?ms=2000 HTTP/1.1\r\nHost: x\r\n\r\n"
                       % origin.port).encode())
            # In flight: the origin has the request and takes 2 s to answer it.
            self.assertTrue(wait_for(lambda: len(origin.requests) == 1, timeout=60))
            os.kill(px.pid, 15)
            status, _, body, _ = read_response(s)
            self.assertEqual((status, body), (200, b"slow"))
            s.close()
            self.assertEqual(px.proc.wait(60), 0)

    def test_sighup_rereads_settings_without_dropping_connections(self):
        import tempfile
        with DnsStub(RECORDS) as dns, Origin() as origin, tempfile.TemporaryDirectory() as d:
            conf = os.path.join(d, "proxyd.conf")
            with open(conf, "w") as f:
                f.write("# test config\nmax-request-line 8192\n")
            with Proxyd(dns=dns, extra_args=["--config", conf]) as px:
                url = "http://allowed.test:%d/small" % origin.port
                long_url = url + "?" + "q" * 3000
                self.assertEqual(px.get(long_url)[0], 200)
                kept = px.connect()
                kept.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % url).encode())
                status, _, _, rest = read_response(kept)
                self.assertEqual(status, 200)
                with open(conf, "w") as f:
                    f.write("max-request-line 1000\n")
                os.kill(px.pid, 1)
                self.assertTrue(wait_for(lambda: "settings reloaded" in px.log(), timeout=60))
                self.assertTrue(wait_for(lambda: px.get(long_url)[0] == 414, timeout=60))
                # The connection opened before the reload still serves requests.
                kept.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % url).encode())
                status, _, body, _ = read_response(kept, rest)
                self.assertEqual((status, len(body)), (200, 1024))
                kept.close()

    def test_sighup_with_unchanged_settings_warns_about_nothing(self):
        import tempfile
        with DnsStub(RECORDS) as dns, tempfile.TemporaryDirectory() as d:
            conf = os.path.join(d, "proxyd.conf")
            with open(conf, "w") as f:
                f.write("retention-days 90\n")
            # No --workers: the default (one per CPU) must compare equal to itself.
            with Proxyd(dns=dns, workers=None, extra_args=["--config", conf]) as px:
                os.kill(px.pid, 1)
                self.assertTrue(wait_for(lambda: "settings reloaded" in px.log(), timeout=60))
                self.assertNotIn("SIGHUP:", px.log())
                self.assertNotIn("restart", px.log())
                # Control: a changed start-only setting is named.
                with open(conf, "w") as f:
                    f.write("workers 7\n")
                os.kill(px.pid, 1)
                self.assertTrue(wait_for(lambda: px.log().count("settings reloaded") == 2,
                                         timeout=60))
                self.assertIn("SIGHUP: changed workers: needs a restart", px.log())

    def test_sighup_applies_retention_rows_live(self):
        import tempfile
        with DnsStub(RECORDS) as dns, Origin() as origin, tempfile.TemporaryDirectory() as d:
            conf = os.path.join(d, "proxyd.conf")
            with open(conf, "w") as f:
                f.write("retention-rows 0\n")
            with Proxyd(dns=dns, extra_args=["--config", conf]) as px:
                for i in range(5):
                    self.assertEqual(px.get("http://allowed.test:%d/small?i=%d"
                                            % (origin.port, i))[0], 200)

                def rows():
                    return px.db_rows("SELECT count(*) FROM access_log")[0][0]

                self.assertTrue(wait_for(lambda: rows() == 5, timeout=60))
                with open(conf, "w") as f:
                    f.write("retention-rows 2\n")
                os.kill(px.pid, 1)
                self.assertTrue(wait_for(lambda: rows() == 2, timeout=60), rows())
                # The writer may prune before the main thread has logged the change: the
                # line, and the end of the reload, are waited for too.
                self.assertTrue(wait_for(lambda: "settings reloaded" in px.log(), timeout=60))
                self.assertIn("access log retention now 90 days, 2 rows", px.log())
                self.assertNotIn("SIGHUP:", px.log())

    def test_ipv6_listener(self):
        with DnsStub(RECORDS) as dns, Origin() as origin:
            px = Proxyd(dns=dns)
            port = px.proxy_port
            px.args[px.args.index("--listen") + 1] = "[::1]:%d" % port
            px.args += ["--listen", "127.0.0.1:%d" % port]
            with px:
                with socket.create_connection(("::1", port), timeout=60) as s:
                    s.sendall(("GET http://allowed.test:%d/small HTTP/1.1\r\nHost: x\r\n\r\n"
                               % origin.port).encode())
                    status, _, body, _ = read_response(s)
                self.assertEqual((status, len(body)), (200, 1024))

    def test_open_proxy_refused_for_public_clients(self):
        # Only loopback and private networks are allowed by default; narrow it to prove the
        # default action refuses a client outside the allowed networks: with no rule that
        # could allow it either, its connection is closed before a byte is read.
        with DnsStub(RECORDS) as dns, Origin() as origin, \
                Proxyd(dns=dns, extra_args=["--allow-clients", "10.0.0.0/8"]) as px:
            with px.connect() as s:
                s.sendall(("GET http://allowed.test:%d/small HTTP/1.1\r\nHost: x\r\n\r\n"
                           % origin.port).encode())
                try:
                    self.assertEqual(s.recv(1), b"")
                except ConnectionResetError:
                    pass
            self.assertEqual(origin.accepted, 0)


if __name__ == "__main__":
    unittest.main()
