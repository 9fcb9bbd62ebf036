"""End-to-end tests of the ClientHello check on CONNECT tunnels: the real proxyd, a real TLS
origin (Python ssl with a certificate made for the test by openssl) and real TLS clients, all
on 127.0.0.1. A tunnel allowed for one host may not carry a ClientHello naming a host the
policy denies; every wait is a hang guard."""
import shutil
import socket
import sqlite3
import ssl
import tempfile
import time
import unittest

from harness import DnsStub, Proxyd, pattern, read_head, wait_for
from tls_util import TlsOrigin, client_hello, make_cert

RECORDS = {"allowed.test": "127.0.0.1", "blocked.test": "127.0.0.1", "other.test": "127.0.0.1"}
POLICY = "deny domain blocked.test\n"

ALERT_ACCESS_DENIED = bytes([21, 3, 3, 0, 2, 2, 49])
ALERT_DECODE_ERROR = bytes([21, 3, 3, 0, 2, 2, 50])


class PatternOrigin(TlsOrigin):
    """A TLS origin that answers a line 'N\\n' with N bytes of the pattern, then closes."""

    def _converse(self, s):
        line = b""
        while not line.endswith(b"\n"):
            got = s.recv(64)
            if not got:
                return
            line += got
        try:
            n = int(line)
        except ValueError:
            return
        s.sendall(pattern(n))


def read_until_close(s):
    got = b""
    while True:
        b = s.recv(65536)
        if not b:
            return got
        got += b


class SniTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="pxsni.")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.cert, cls.key = make_cert(cls.tmp, "allowed.test")
        # Each one is stopped even when a later one fails to start.
        cls.origin = cls.enterClassContext(PatternOrigin(cls.cert, cls.key))
        cls.dns = cls.enterClassContext(DnsStub(RECORDS))
        cls.px = cls.enterClassContext(Proxyd(dns=cls.dns, policy=POLICY,
                                              extra_args=["--connect-ports",
                                                          "443,%d" % cls.origin.port]))

    def tunnel(self, host):
        """A client socket with CONNECT host:origin established."""
        s = self.px.connect()
        s.sendall(("CONNECT %s:%d HTTP/1.1\r\nHost: %s:%d\r\n\r\n"
                   % (host, self.origin.port, host, self.origin.port)).encode())
        head, rest = read_head(s)
        self.assertTrue(head.startswith(b"HTTP/1.1 200"), head)
        self.assertEqual(rest, b"")
        return s

    def tls_client(self, name):
        ctx = ssl.create_default_context(cafile=self.cert)
        ctx.check_hostname = False  # the certificate names allowed.test only
        return ctx, name

    def rows(self, marker_host):
        db = sqlite3.connect("file:%s?mode=ro" % self.px.db_path, uri=True, timeout=5)
        try:
            return db.execute("SELECT host, sni, decision, error, bytes_up, dest FROM access_log "
                              "WHERE host = ? ORDER BY id", (marker_host,)).fetchall()
        finally:
            db.close()

    def wait_row(self, host, sni):
        got = wait_for(lambda: [r for r in self.rows(host) if r[1] == sni], timeout=60)
        self.assertTrue(got, "no row for %s with sni %s" % (host, sni))
        return got[-1]

    def test_allowed_name_passes_byte_exact(self):
        ctx, _ = self.tls_client("allowed.test")
        with self.tunnel("allowed.test") as raw:
            with ctx.wrap_socket(raw, server_hostname="allowed.test") as t:
                t.sendall(b"300000\n")
                self.assertEqual(read_until_close(t), pattern(300000))
        row = self.wait_row("allowed.test", "allowed.test")
        self.assertEqual(row[2:4], (0, ""))
        self.assertEqual(row[5], "127.0.0.1:%d" % self.origin.port)  # where it went

    def test_other_allowed_name_in_tunnel_passes(self):
        ctx, _ = self.tls_client("other.test")
        with self.tunnel("127.0.0.1") as raw:
            with ctx.wrap_socket(raw, server_hostname="other.test") as t:
                t.sendall(b"1000\n")
                self.assertEqual(read_until_close(t), pattern(1000))
        row = self.wait_row("127.0.0.1", "other.test")
        self.assertEqual(row[2], 0)

    def test_denied_name_in_allowed_tunnel_is_refused(self):
        ctx, _ = self.tls_client("blocked.test")
        names_before = len(self.origin.names)
        with self.tunnel("allowed.test") as raw:
            with self.assertRaises((ssl.SSLError, ConnectionError)) as cm:
                with ctx.wrap_socket(raw, server_hostname="blocked.test") as t:
                    t.sendall(b"10\n")
                    t.recv(10)
        self.assertIn("ACCESS_DENIED", str(cm.exception).upper().replace(" ", "_"))
        row = self.wait_row("allowed.test", "blocked.test")
        self.assertEqual(row[2:5], (1, "sni-denied", 0))  # nothing of it went up
        self.assertEqual(self.origin.names[names_before:], [])

    def test_hello_split_over_segments_is_still_read(self):
        hello = client_hello("Blocked.Test.")
        with self.tunnel("allowed.test") as s:
            for part in (hello[:3], hello[3:40], hello[40:200], hello[200:]):
                s.sendall(part)
                time.sleep(0.05)  # separate segments, not a bound on anything
            self.assertEqual(read_until_close(s), ALERT_ACCESS_DENIED)
        self.wait_row("allowed.test", "blocked.test")  # canonical form

    def test_malformed_hello_is_refused(self):
        hello = bytearray(client_hello("allowed.test"))
        hello[9:11] = b"\x02\x00"  # ClientHello version 2.0
        with self.tunnel("allowed.test") as s:
            s.sendall(bytes(hello))
            self.assertEqual(read_until_close(s), ALERT_DECODE_ERROR)
        got = wait_for(lambda: [r for r in self.rows("allowed.test")
                                if r[3].startswith("ClientHello: ")], timeout=60)
        self.assertTrue(got)
        self.assertEqual(got[-1][2], 1)

    def test_hello_cut_short_by_the_client_goes_up_as_it_came(self):
        # The client gives up mid-hello: nothing to judge, and nothing a server could act on.
        hello = client_hello("blocked.test")
        with self.tunnel("allowed.test") as s:
            s.sendall(hello[:30])
            s.shutdown(socket.SHUT_WR)
            read_until_close(s)  # the origin's own alert, if it sends one
        row = wait_for(lambda: [r for r in self.rows("allowed.test")
                                if r[1] == "" and r[4] == 30], timeout=60)
        self.assertTrue(row, "the 30 bytes went up")
        self.assertEqual(row[-1][2:4], (0, ""))

    def test_not_tls_passes(self):
        with self.tunnel("allowed.test") as s:
            s.sendall(b"SSH-2.0-test\r\n")
            # The TLS origin reads it as a broken record and closes; proxyd passed it on.
            read_until_close(s)
        row = wait_for(lambda: [r for r in self.rows("allowed.test")
                                if r[1] == "" and r[4] == 14], timeout=60)
        self.assertTrue(row)
        self.assertEqual(row[-1][2], 0)


if __name__ == "__main__":
    unittest.main()
