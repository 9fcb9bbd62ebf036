"""End-to-end tests of the ClientHello check on CONNECT tunnels: the real proxyd, a real TLS
origin (Python ssl with a certificate made for the test by openssl) and real TLS clients, all
on 127.0.0.1. A tunnel allowed for one host may not carry a ClientHello naming a host the
policy denies; every wait is a hang guard."""
import os
import shutil
import socket
import sqlite3
import ssl
import struct
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


class RetryOrigin(PatternOrigin):
    """A PatternOrigin whose only key-exchange group is P-384: a client that offers a key
    share for another group (Python's offers X25519) is sent a HelloRetryRequest."""

    def __init__(self, cert, key):
        super().__init__(cert, key)
        self.ctx.set_ecdh_curve("secp384r1")


HRR_RANDOM = bytes.fromhex("CF21AD74E59A6111BE1D8C021E65B891C2A211167ABB8C5E079E09E2C8A8339C")


def tls13_hello(name, key_share, rnd, sid):
    """A TLS 1.3 ClientHello for `name` (None: no server_name) offering X25519, with that key
    share (None: an empty key_share, which makes the server ask again)."""
    def ext(kind, body):
        return struct.pack("!HH", kind, len(body)) + body
    exts = b""
    if name:
        n = name.encode()
        entry = b"\x00" + struct.pack("!H", len(n)) + n
        exts += ext(0, struct.pack("!H", len(entry)) + entry)
    exts += ext(43, b"\x02\x03\x04")  # supported_versions: TLS 1.3
    exts += ext(10, b"\x00\x02\x00\x1d")  # supported_groups: X25519
    exts += ext(13, b"\x00\x04\x04\x03\x08\x04")  # signature_algorithms
    exts += ext(45, b"\x01\x01")  # psk_key_exchange_modes
    share = b"" if key_share is None else b"\x00\x1d" + struct.pack("!H", 32) + key_share
    exts += ext(51, struct.pack("!H", len(share)) + share)
    body = (b"\x03\x03" + rnd + bytes([len(sid)]) + sid + b"\x00\x02\x13\x01\x01\x00"
            + struct.pack("!H", len(exts)) + exts)
    msg = b"\x01" + struct.pack("!I", len(body))[1:] + body
    return b"\x16\x03\x01" + struct.pack("!H", len(msg)) + msg


def read_record(s):
    """One TLS record from s: (type, body), or (None, b"") at the end."""
    head = b""
    while len(head) < 5:
        got = s.recv(5 - len(head))
        if not got:
            return None, b""
        head += got
    body = b""
    while len(body) < struct.unpack("!H", head[3:5])[0]:
        got = s.recv(struct.unpack("!H", head[3:5])[0] - len(body))
        if not got:
            return None, b""
        body += got
    return head[0], body


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
        cls.retry_origin = cls.enterClassContext(RetryOrigin(cls.cert, cls.key))
        cls.dns = cls.enterClassContext(DnsStub(RECORDS))
        cls.px = cls.enterClassContext(
            Proxyd(dns=cls.dns, policy=POLICY,
                   extra_args=["--connect-ports",
                               "443,%d,%d" % (cls.origin.port, cls.retry_origin.port)]))

    def tunnel(self, host, port=None):
        """A client socket with CONNECT host:origin (or host:port) established."""
        port = port or self.origin.port
        s = self.px.connect()
        s.sendall(("CONNECT %s:%d HTTP/1.1\r\nHost: %s:%d\r\n\r\n"
                   % (host, port, host, port)).encode())
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

    def test_hello_retry_request_with_the_same_name_passes(self):
        # The origin asks again (HelloRetryRequest): the client's second ClientHello is held
        # until judged, and the handshake completes through the tunnel.
        ctx, _ = self.tls_client("allowed.test")
        names_before = len(self.retry_origin.names)
        with self.tunnel("allowed.test", self.retry_origin.port) as raw:
            with ctx.wrap_socket(raw, server_hostname="allowed.test") as t:
                self.assertEqual(t.version(), "TLSv1.3")
                t.sendall(b"100000\n")
                self.assertEqual(read_until_close(t), pattern(100000))
        self.assertEqual(self.retry_origin.names[names_before:],
                         ["allowed.test", "allowed.test"])  # two ClientHellos, one name

    def test_second_hello_naming_another_server_is_refused(self):
        # RFC 8446 4.1.2 wants the same name in the second ClientHello, but OpenSSL's server
        # takes the new one (its sni callback runs again): a crafted client would reach
        # blocked.test through a tunnel whose first ClientHello named allowed.test. Also after
        # a user_canceled alert, which OpenSSL's server reads past (warning or fatal).
        before = b"\x14\x03\x03\x00\x01\x01"  # change_cipher_spec
        alert = b"\x15\x03\x03\x00\x02\x01\x5a"  # user_canceled, warning
        for what, between in (("change_cipher_spec", before), ("alert", alert + before)):
            with self.subTest(what):
                names_before = len(self.origin.names)
                rows_before = len(self.rows("allowed.test"))
                rnd, sid = os.urandom(32), os.urandom(32)
                with self.tunnel("allowed.test") as s:
                    s.sendall(tls13_hello("allowed.test", None, rnd, sid))
                    kind, body = read_record(s)
                    self.assertEqual((kind, body[0], body[6:38]), (22, 2, HRR_RANDOM))
                    s.sendall(between + tls13_hello("blocked.test", os.urandom(32), rnd, sid))
                    self.assertTrue(read_until_close(s).endswith(ALERT_ACCESS_DENIED))
                got = wait_for(lambda: [r for r in self.rows("allowed.test")[rows_before:]
                                        if "second ClientHello" in r[3]], timeout=60)
                self.assertTrue(got, "no row for the refused second ClientHello")
                self.assertEqual(got[-1][1:3], ("allowed.test", 1))
                self.assertIn("names blocked.test", got[-1][3])
                self.assertNotIn("blocked.test", self.origin.names[names_before:])

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
