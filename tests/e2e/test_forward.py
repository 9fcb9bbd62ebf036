"""End-to-end tests of port forwards: the real proxyd, an echoing TCP origin and a DNS stub on
127.0.0.1. A forward from the config file and forwards added and removed through the admin
API on the running proxy: byte-exact relay both ways, the client list, the policy, the SSRF
refusal and its opt-in, one access-log row per connection. Every wait is a hang guard."""
import hashlib
import json
import os
import re
import shutil
import socket
import sqlite3
import ssl
import subprocess
import tempfile
import threading
import unittest
import urllib.error
import urllib.request

from harness import PROXYCTL, DnsStub, Proxyd, TcpServer, free_port, pattern, wait_for
from tls_util import issue, make_ca

MIB = 1 << 20


class EchoOrigin(TcpServer):
    """A TCP server on 127.0.0.1 that sends back every byte it gets, as it gets it, and
    closes its side once the client has closed its own. Counts the connections it took and
    keeps the bytes it got (a stranger's connection, another test's probe of a port it took
    for unused, counts but says nothing of ours)."""

    def __init__(self):
        super().__init__()
        self.received = bytearray()

    def _serve(self, c):
        with c:
            try:
                while True:
                    data = c.recv(1 << 16)
                    if not data:
                        break
                    with self.lock:
                        self.received += data
                    c.sendall(data)
                c.shutdown(socket.SHUT_WR)
            except OSError:
                pass


def relay(port, payload, timeout=60, rcvbuf=None, read_size=1 << 16):
    """Sends payload through 127.0.0.1:port (then half-closes) while reading what comes back
    until the end, read_size bytes at a time; rcvbuf: the receive buffer, set before the
    connect (None: the system's). Returns the bytes read."""
    with socket.socket() as s:
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(timeout)
        s.connect(("127.0.0.1", port))

        def send():
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
        t = threading.Thread(target=send, daemon=True)
        t.start()
        got = bytearray()
        while True:
            data = s.recv(read_size)
            if not data:
                break
            got += data
        t.join(timeout)
        return bytes(got)


def refused_or_closed(port, timeout=60):
    """True when a connection to port is refused, or accepted and closed with nothing said."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"hello")
            return s.recv(100) == b""
    except ConnectionRefusedError:
        return True
    except ConnectionResetError:
        return True


def connect_refused(port):
    """True when a connection to port is refused; one that is taken is closed at once."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        return False
    except ConnectionRefusedError:
        return True


def forward_rows(px):
    db = sqlite3.connect("file:%s?mode=ro" % px.db_path, uri=True, timeout=5)
    try:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute(
            "SELECT client, method, scheme, host, port, bytes_up, bytes_down, duration_ms,"
            " decision, error FROM access_log WHERE method = 'FORWARD' ORDER BY id")]
    except sqlite3.OperationalError:
        return []
    finally:
        db.close()


def api_error(px, method, path, body=None):
    """The admin API's error answer: (status, decoded JSON)."""
    try:
        px.api(method, path, body)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
    raise AssertionError("%s %s succeeded" % (method, path))


class ConfigForwardTest(unittest.TestCase):
    def test_large_payload_byte_exact_both_ways_and_one_row_per_connection(self):
        port = free_port()
        with EchoOrigin() as origin, Proxyd(extra_args=[
                "--forward", "127.0.0.1:%d 127.0.0.1:%d" % (port, origin.port)]) as px:
            payload = pattern(24 * MIB)
            got = relay(port, payload)
            self.assertEqual(len(got), len(payload))
            self.assertEqual(hashlib.sha256(got).digest(), hashlib.sha256(payload).digest())
            self.assertEqual(relay(port, b"second"), b"second")
            rows = wait_for(lambda: len(forward_rows(px)) == 2 and forward_rows(px))
            self.assertTrue(rows, forward_rows(px))
            # Each worker queues its rows for the writer on its own, so ids need not follow
            # the order the connections ended in: the long one is the one with the bytes.
            first, second = sorted(rows, key=lambda r: -r["bytes_up"])
            self.assertEqual((first["scheme"], first["method"], first["host"], first["port"]),
                             ("tcp", "FORWARD", "127.0.0.1", origin.port))
            self.assertEqual((first["bytes_up"], first["bytes_down"]), (len(payload), len(payload)))
            self.assertEqual((first["decision"], first["error"], first["client"]),
                             (0, "", "127.0.0.1"))
            self.assertEqual((second["bytes_up"], second["bytes_down"]), (6, 6))
            self.assertEqual(origin.accepted, 2)

    def test_slow_reader_gets_every_byte_and_the_half_close(self):
        # The client takes the echo back 4 KiB at a time through a small receive buffer, so
        # the pipe toward it fills again and again (proxyd then stops listening to the origin
        # until a drain makes room), while its upload keeps the other pipe busy: every byte
        # arrives in order both ways, and the origin's close comes after the last of them.
        port = free_port()
        with EchoOrigin() as origin, Proxyd(extra_args=[
                "--forward", "127.0.0.1:%d 127.0.0.1:%d" % (port, origin.port)]) as px:
            payload = pattern(16 * MIB + 3)
            got = relay(port, payload, rcvbuf=65536, read_size=4096)
            self.assertEqual(len(got), len(payload))
            self.assertEqual(hashlib.sha256(got).digest(), hashlib.sha256(payload).digest())
            rows = wait_for(lambda: forward_rows(px))
            self.assertEqual([(r["bytes_up"], r["bytes_down"]) for r in rows],
                             [(len(payload), len(payload))])

    def test_client_outside_the_list_is_refused_and_logged(self):
        port = free_port()
        with EchoOrigin() as origin, Proxyd(extra_args=[
                "--forward", "127.0.0.1:%d 127.0.0.1:%d clients 10.0.0.0/8,192.168.0.0/16"
                % (port, origin.port)]) as px:
            self.assertTrue(refused_or_closed(port))
            rows = wait_for(lambda: forward_rows(px))
            self.assertEqual(len(rows), 1)
            self.assertEqual((rows[0]["decision"], rows[0]["error"]),
                             (1, "client not in the forward's client list"))
            self.assertEqual(origin.accepted, 0)

    def test_policy_decides_for_the_target_name_resolved_by_the_stub(self):
        port_ok, port_denied = free_port(), free_port()
        with EchoOrigin() as origin, \
                DnsStub({"db.test": "127.0.0.1", "blocked.test": "127.0.0.1"}) as dns, \
                Proxyd(dns=dns, policy="deny domain blocked.test\n", extra_args=[
                    "--forward", "127.0.0.1:%d db.test:%d" % (port_ok, origin.port),
                    "--forward", "127.0.0.1:%d blocked.test:%d" % (port_denied, origin.port)]) as px:
            self.assertEqual(relay(port_ok, b"via the stub"), b"via the stub")
            self.assertTrue(refused_or_closed(port_denied))
            rows = wait_for(lambda: len(forward_rows(px)) == 2 and forward_rows(px))
            self.assertTrue(rows, forward_rows(px))
            by_host = {r["host"]: r for r in rows}
            self.assertEqual(by_host["db.test"]["decision"], 0)
            self.assertEqual((by_host["blocked.test"]["decision"], by_host["blocked.test"]["error"]),
                             (1, "denied"))
            self.assertEqual(origin.accepted, 1)

    def test_a_method_forward_rule_decides_forwarded_connections(self):
        port = free_port()
        with EchoOrigin() as origin, Proxyd(policy="deny method FORWARD\n", extra_args=[
                "--forward", "127.0.0.1:%d 127.0.0.1:%d" % (port, origin.port)]) as px:
            self.assertTrue(refused_or_closed(port))
            rows = wait_for(lambda: forward_rows(px))
            self.assertEqual(len(rows), 1)
            self.assertEqual((rows[0]["decision"], rows[0]["error"]), (1, "denied"))
            self.assertEqual(origin.accepted, 0)

    def test_loopback_target_needs_the_opt_in(self):
        port = free_port()
        with EchoOrigin() as origin:
            px = Proxyd(extra_args=["--forward", "127.0.0.1:%d 127.0.0.1:%d" % (port, origin.port)])
            px.args.remove("--allow-loopback-targets")
            with px:
                self.assertTrue(refused_or_closed(port))
                rows = wait_for(lambda: forward_rows(px))
                self.assertEqual(len(rows), 1)
                self.assertEqual((rows[0]["decision"], rows[0]["error"]),
                                 (1, "loopback target address"))
            self.assertEqual(origin.accepted, 0)

    def test_config_forwards_are_listed_as_such_and_not_deleted_through_the_api(self):
        port_a, port_b = free_port(), free_port()
        with EchoOrigin() as origin, Proxyd(extra_args=[
                "--forward", "127.0.0.1:%d 127.0.0.1:%d" % (port_a, origin.port),
                "--forward", "127.0.0.1:%d 127.0.0.1:%d clients 127.0.0.0/8"
                % (port_b, origin.port)]) as px:
            stored = px.api("POST", "/api/forwards", {"listen": "127.0.0.1:%d" % free_port(),
                                                      "target": "127.0.0.1:%d" % origin.port})
            listed = px.api("GET", "/api/forwards")["forwards"]
            self.assertEqual([(f["id"], f["listen"], f["clients"], f["source"]) for f in listed],
                             [(-1, "127.0.0.1:%d" % port_a, "", "config"),
                              (-2, "127.0.0.1:%d" % port_b, "127.0.0.0/8", "config"),
                              (stored["id"], stored["listen"], "", "api")])
            self.assertIn("config file", listed[0]["note"])
            self.assertEqual(stored["source"], "api")
            status, body = api_error(px, "DELETE", "/api/forwards/-2")
            self.assertEqual(status, 409)
            self.assertIn("forward -2 is from proxyd's config file", body["error"])
            self.assertEqual(api_error(px, "DELETE", "/api/forwards/-3")[0], 404)
            # Refused, so still open.
            self.assertEqual(relay(port_b, b"still here"), b"still here")

            env = {k: v for k, v in os.environ.items()
                   if not k.startswith(("PROXYCTL_", "PROXYD_"))}
            out = subprocess.run([PROXYCTL, "--url", px.admin_url, "--data-dir", px.data_dir,
                                  "forward", "list"], capture_output=True, text=True,
                                 timeout=60, env=env, cwd=tempfile.gettempdir(), check=True).stdout
            rows = [l.split() for l in out.splitlines()]
            self.assertIn(["config", "127.0.0.1:%d" % port_b, "127.0.0.1:%d" % origin.port,
                           "127.0.0.0/8", "-", "(config", "file)"], rows)
            self.assertIn(str(stored["id"]), [r[0] for r in rows])
            self.assertTrue(out.splitlines()[-1].startswith("config: from proxyd's config file"),
                            out)

    def test_bad_forward_setting_is_refused_at_start(self):
        px = Proxyd(extra_args=["--forward", "127.0.0.1:1 10.0.0.4:22 clients 10.0.0.1/8"])
        with self.assertRaises(RuntimeError) as e:
            px.start()
        self.assertIn("bad CIDR '10.0.0.1/8'", str(e.exception))
        px.stop()


class LiveForwardTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.origin = EchoOrigin().__enter__()
        cls.px = Proxyd().__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.px.__exit__(None, None, None)
        cls.origin.__exit__()

    def add(self, port, **extra):
        body = {"listen": "127.0.0.1:%d" % port, "target": "127.0.0.1:%d" % self.origin.port}
        body.update(extra)
        return self.px.api("POST", "/api/forwards", body)

    def test_add_and_remove_live_while_another_connection_stays_up(self):
        port_a, port_b = free_port(), free_port()
        a = self.add(port_a)
        self.assertEqual(a["listen"], "127.0.0.1:%d" % port_a)
        self.assertGreater(a["created_ms"], 0)
        # Open from the answer on: the listener was bound before the forward was stored.
        self.assertEqual(relay(port_a, b"a1"), b"a1")
        held = socket.create_connection(("127.0.0.1", port_a), timeout=60)
        held.sendall(b"before")
        self.assertEqual(held.recv(100), b"before")

        b = self.add(port_b, clients="127.0.0.0/8")
        listed = {f["id"]: f for f in self.px.api("GET", "/api/forwards")["forwards"]}
        self.assertEqual(listed[b["id"]]["clients"], "127.0.0.0/8")
        self.assertEqual(self.px.api("DELETE", "/api/forwards/%d" % a["id"]), {"deleted": a["id"]})
        self.assertNotIn(a["id"], [f["id"] for f in self.px.api("GET", "/api/forwards")["forwards"]])
        # The removed forward's listener is gone (every worker's) ...
        self.assertTrue(wait_for(lambda: refused_or_closed(port_a) and refused_or_closed(port_a)))
        # ... the connection it relayed goes on, and the other forward works.
        held.sendall(b"after")
        self.assertEqual(held.recv(100), b"after")
        self.assertEqual(relay(port_b, b"b1"), b"b1")
        held.shutdown(socket.SHUT_WR)
        self.assertEqual(held.recv(100), b"")
        held.close()
        audit = [r["action"] for r in self.px.api("GET", "/api/audit")["rows"]]
        self.assertIn("forward.add", audit)
        self.assertIn("forward.delete", audit)
        self.px.api("DELETE", "/api/forwards/%d" % b["id"])

    def test_address_that_cannot_be_bound_is_an_error_and_nothing_is_stored(self):
        holder = socket.socket()
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        try:
            before = self.px.api("GET", "/api/forwards")["forwards"]
            status, body = api_error(self.px, "POST", "/api/forwards", {
                "listen": "127.0.0.1:%d" % holder.getsockname()[1],
                "target": "127.0.0.1:%d" % self.origin.port})
            self.assertEqual((status, body["field"]), (409, "listen"))
            self.assertIn("Address already in use", body["error"])
            self.assertEqual(self.px.api("GET", "/api/forwards")["forwards"], before)
        finally:
            holder.close()

    def test_bad_input_is_refused_with_its_field(self):
        for body, field in [({"listen": "nowhere:1", "target": "a.test:1"}, "listen"),
                            ({"listen": "127.0.0.1:1", "target": "a.test"}, "target"),
                            ({"listen": "127.0.0.1:1", "target": "a.test:1", "clients": "x"},
                             "clients"),
                            ({"listen": "127.0.0.1:1"}, "target")]:
            status, answer = api_error(self.px, "POST", "/api/forwards", body)
            self.assertEqual((status, answer.get("field")), (400, field), answer)
        self.assertEqual(api_error(self.px, "DELETE", "/api/forwards/999999")[0], 404)
        self.assertEqual(api_error(self.px, "DELETE", "/api/forwards/x")[0], 404)

    def test_a_forward_port_is_never_a_target(self):
        # Through a forward or the proxy, a target on a forward's own port at this machine
        # would loop back into proxyd (and past that forward's client list): refused as the
        # proxy itself, even with --allow-loopback-targets.
        port_a, port_b = free_port(), free_port()
        a = self.add(port_a)
        b = self.px.api("POST", "/api/forwards", {"listen": "127.0.0.1:%d" % port_b,
                                                  "target": "127.0.0.1:%d" % port_a})
        try:
            self.assertTrue(refused_or_closed(port_b))
            rows = wait_for(lambda: [r for r in forward_rows(self.px) if r["port"] == port_a])
            self.assertTrue(rows)
            self.assertEqual((rows[0]["decision"], rows[0]["error"]),
                             (1, "target is the proxy itself"))
            status, _, _ = self.px.get("http://127.0.0.1:%d/" % port_a)
            self.assertEqual(status, 403)
            self.assertEqual(relay(port_a, b"still fine"), b"still fine")
        finally:
            self.px.api("DELETE", "/api/forwards/%d" % a["id"])
            self.px.api("DELETE", "/api/forwards/%d" % b["id"])

    def test_ipv6_listener_and_a_name_resolved_to_ipv6(self):
        six = socket.socket(socket.AF_INET6)
        six.bind(("::1", 0))
        six.listen(4)

        def echo_once():
            c, _ = six.accept()
            with c:
                while True:
                    data = c.recv(1 << 16)
                    if not data:
                        break
                    c.sendall(data)
        t = threading.Thread(target=echo_once, daemon=True)
        t.start()
        port = free_port()
        with DnsStub({"v6.test": "::1"}) as dns, Proxyd(dns=dns) as px:
            f = px.api("POST", "/api/forwards", {"listen": "[::1]:%d" % port,
                                                 "target": "V6.test.:%d" % six.getsockname()[1]})
            self.assertEqual(f["target"], "v6.test:%d" % six.getsockname()[1])
            with socket.create_connection(("::1", port), timeout=60) as s:
                s.sendall(b"over six")
                s.shutdown(socket.SHUT_WR)
                got = b""
                while True:
                    data = s.recv(100)
                    if not data:
                        break
                    got += data
            self.assertEqual(got, b"over six")
            rows = wait_for(lambda: forward_rows(px))
            self.assertEqual((rows[0]["client"], rows[0]["host"], rows[0]["bytes_up"]),
                             ("::1", "v6.test", 8))
        six.close()

    def test_same_listen_address_twice_is_a_conflict(self):
        port = free_port()
        f = self.add(port)
        try:
            status, body = api_error(self.px, "POST", "/api/forwards", {
                "listen": "127.0.0.1:%d" % port, "target": "127.0.0.1:9"})
            self.assertEqual(status, 409)
            self.assertIn("already listens", body["error"])
        finally:
            self.px.api("DELETE", "/api/forwards/%d" % f["id"])


def tls_relay(port, cafile, payload, timeout=60):
    """As relay, through TLS to 127.0.0.1:port, checking its certificate against cafile for the
    name 127.0.0.1. Returns the bytes read."""
    ctx = ssl.create_default_context(cafile=cafile)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
        got = bytearray()
        for i in range(0, len(payload), 1 << 16):  # the echo answers as it reads
            s.sendall(payload[i:i + (1 << 16)])
            while len(got) < min(len(payload), i + (1 << 16)):
                data = s.recv(1 << 16)
                if not data:
                    return bytes(got)
                got += data
        return bytes(got)


class TlsListenForwardTest(unittest.TestCase):
    """tls-listen: clients speak TLS to the forward (proxyd's self-made certificate), the target
    gets the plain bytes."""

    def test_config_forward_decrypts_byte_exact_and_refuses_plain_clients(self):
        port = free_port()
        with EchoOrigin() as origin, Proxyd(extra_args=[
                "--forward", "127.0.0.1:%d 127.0.0.1:%d tls-listen" % (port, origin.port)]) as px:
            cafile = os.path.join(px.data_dir, "tls-cert.pem")
            payload = pattern(3 * MIB)
            got = tls_relay(port, cafile, payload)
            self.assertEqual(hashlib.sha256(got).digest(), hashlib.sha256(payload).digest())
            rows = wait_for(lambda: forward_rows(px))
            self.assertEqual([(r["scheme"], r["method"], r["decision"], r["bytes_up"],
                               r["bytes_down"]) for r in rows],
                             [("tcp", "FORWARD", 0, len(payload), len(payload))])
            # A client that does not speak TLS gets a TLS alert at most, and nothing through:
            # the origin sees no one.
            with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
                s.sendall(b"hello\r\n")
                answer = s.recv(100)
            self.assertTrue(answer == b"" or answer[0] == 0x15, answer)  # 0x15: an alert record
            self.assertEqual(origin.accepted, 1)
            listed = px.api("GET", "/api/forwards")["forwards"]
            self.assertEqual([f["tls"] for f in listed], ["tls-listen"])

    def test_client_outside_the_list_gets_no_handshake(self):
        port = free_port()
        with EchoOrigin() as origin, Proxyd(extra_args=[
                "--forward", "127.0.0.1:%d 127.0.0.1:%d clients 10.0.0.0/8 tls-listen"
                % (port, origin.port)]) as px:
            # No ServerHello, no certificate: the connection closes on the ClientHello.
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            with socket.create_connection(("127.0.0.1", port), timeout=60) as raw:
                with self.assertRaises((ssl.SSLError, ConnectionError)):
                    ctx.wrap_socket(raw, server_hostname="127.0.0.1").close()
            rows = wait_for(lambda: forward_rows(px))
            self.assertEqual([(r["decision"], r["error"]) for r in rows],
                             [(1, "client not in the forward's client list")])
            self.assertEqual(origin.accepted, 0)

    def test_added_live_with_proxyctl_and_its_certificate_made_then(self):
        with EchoOrigin() as origin, Proxyd() as px:
            self.assertFalse(os.path.exists(os.path.join(px.data_dir, "tls-cert.pem")))
            port = free_port()
            env = {k: v for k, v in os.environ.items()
                   if not k.startswith(("PROXYCTL_", "PROXYD_"))}
            out = subprocess.run([PROXYCTL, "--url", px.admin_url, "--data-dir", px.data_dir,
                                  "forward", "add", "127.0.0.1:%d" % port,
                                  "127.0.0.1:%d" % origin.port, "--tls-listen"],
                                 capture_output=True, text=True, timeout=60, env=env,
                                 cwd=tempfile.gettempdir())
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertRegex(out.stdout, r"^forward \d+: 127.0.0.1:%d -> 127.0.0.1:%d tls-listen "
                             r"\(listening\)\n$" % (port, origin.port))
            cafile = os.path.join(px.data_dir, "tls-cert.pem")
            self.assertEqual(tls_relay(port, cafile, b"over tls"), b"over tls")
            status, body = api_error(px, "POST", "/api/forwards", {
                "listen": "127.0.0.1:%d" % free_port(), "target": "127.0.0.1:1", "tls": "tls"})
            self.assertEqual((status, body["field"]), (400, "tls"))
            self.assertIn("expected 'tls-listen'", body["error"])


class TlsEchoOrigin(EchoOrigin):
    """EchoOrigin over TLS with the certificate cert/key: echoes the plaintext. Counts the
    plaintext bytes it received (none when the proxy refused its certificate)."""

    def __init__(self, cert, key):
        super().__init__()
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.received = 0
        self.sni = []

        def note_sni(sock, name, ctx):
            with self.lock:
                self.sni.append(name)
        self.ctx.sni_callback = note_sni

    def _serve(self, c):
        c.settimeout(60)
        try:
            with self.ctx.wrap_socket(c, server_side=True) as s:
                while True:
                    data = s.recv(1 << 16)
                    if not data:
                        break
                    with self.lock:
                        self.received += len(data)
                    s.sendall(data)
        except (OSError, ssl.SSLError):
            pass
        finally:
            c.close()


class TlsTargetForwardTest(unittest.TestCase):
    """tls-target: clients speak plain TCP to the forward, proxyd speaks TLS to the target and
    verifies its certificate (system store plus --upstream-ca) for the target's name or the
    forward's tls-name; a certificate that fails closes the client's connection, its row a
    denial naming the reason."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="pxtlstarget.")
        ca = make_ca(cls.tmp, "office-ca")
        cls.origins = {
            "mail.test": TlsEchoOrigin(*issue(cls.tmp, ca, "mail", "mail.test")),
            "expired.test": TlsEchoOrigin(*issue(cls.tmp, ca, "expired", "expired.test",
                                                 start="-30d", end="-2d")),
            "wrongname.test": TlsEchoOrigin(*issue(cls.tmp, ca, "wrongname", "other.test")),
        }
        for o in cls.origins.values():
            o.__enter__()
        cls.dns = DnsStub({name: "127.0.0.1" for name in cls.origins})
        cls.dns.__enter__()
        cls.ports = {name: free_port() for name in cls.origins}
        cls.by_ip_port = free_port()
        forwards = []
        for name, port in cls.ports.items():
            forwards += ["--forward", "127.0.0.1:%d %s:%d tls-target"
                         % (port, name, cls.origins[name].port)]
        # An address target verified for the name its certificate bears.
        forwards += ["--forward", "127.0.0.1:%d 127.0.0.1:%d tls-target tls-name mail.test"
                     % (cls.by_ip_port, cls.origins["mail.test"].port)]
        cls.px = Proxyd(dns=cls.dns, extra_args=forwards + ["--upstream-ca", ca[0]])
        cls.px.__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.px.__exit__(None, None, None)
        cls.dns.__exit__(None, None, None)
        for o in cls.origins.values():
            o.__exit__()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def rows_for(self, host, n):
        rows = wait_for(lambda: [r for r in forward_rows(self.px) if r["host"] == host][n - 1:]
                        and [r for r in forward_rows(self.px) if r["host"] == host])
        self.assertEqual(len(rows), n, rows)
        return rows

    def test_valid_target_relays_byte_exact_both_ways(self):
        origin = self.origins["mail.test"]
        payload = pattern(3 * MIB)
        got = relay(self.ports["mail.test"], payload)
        self.assertEqual(len(got), len(payload))
        self.assertEqual(hashlib.sha256(got).digest(), hashlib.sha256(payload).digest())
        rows = self.rows_for("mail.test", 1)
        self.assertEqual([(r["scheme"], r["method"], r["decision"], r["bytes_up"],
                           r["bytes_down"]) for r in rows],
                         [("tcp", "FORWARD", 0, len(payload), len(payload))])
        self.assertIn("mail.test", origin.sni)

    def test_address_target_is_verified_for_its_tls_name(self):
        self.assertEqual(relay(self.by_ip_port, b"by address"), b"by address")
        rows = self.rows_for("127.0.0.1", 1)
        self.assertEqual(rows[0]["decision"], 0)

    def test_failed_certificates_close_the_client_and_log_the_reason(self):
        for name, reason in (("expired.test", "certificate expired"),
                             ("wrongname.test", "certificate is for another name (not "
                                                "wrongname.test)")):
            self.assertTrue(refused_or_closed(self.ports[name]))
            rows = self.rows_for(name, 1)
            self.assertEqual(rows[0]["decision"], 1)  # deny
            self.assertIn(reason, rows[0]["error"])
            self.assertEqual(rows[0]["bytes_up"], 0)
            self.assertEqual(self.origins[name].received, 0)

    def test_listed_and_added_with_proxyctl_and_bad_names_refused(self):
        listed = [f for f in self.px.api("GET", "/api/forwards")["forwards"]
                  if f["tls"] == "tls-target"]
        self.assertEqual(sorted(f["tls_name"] for f in listed), ["", "", "", "mail.test"])
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PROXYCTL_", "PROXYD_"))}
        out = subprocess.run([PROXYCTL, "--url", self.px.admin_url, "--data-dir",
                              self.px.data_dir, "forward", "add", "127.0.0.1:%d" % port,
                              "127.0.0.1:%d" % self.origins["mail.test"].port, "--tls-target",
                              "--tls-name", "Mail.Test"],
                             capture_output=True, text=True, timeout=60, env=env,
                             cwd=tempfile.gettempdir())
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertRegex(out.stdout, r"^forward \d+: 127.0.0.1:%d -> 127.0.0.1:%d tls-target "
                         r"tls-name mail.test \(listening\)\n$"
                         % (port, self.origins["mail.test"].port))
        self.assertEqual(relay(port, b"added live"), b"added live")
        # An address without a name has nothing to be verified for: refused, nothing stored.
        status, body = api_error(self.px, "POST", "/api/forwards", {
            "listen": "127.0.0.1:%d" % free_port(), "target": "127.0.0.1:995",
            "tls": "tls-target"})
        self.assertEqual((status, body["field"]), (400, "tls"))
        self.assertIn("give tls-name", body["error"])
        status, body = api_error(self.px, "POST", "/api/forwards", {
            "listen": "127.0.0.1:%d" % free_port(), "target": "mail.test:995",
            "tls": "tls-listen", "tls_name": "mail.test"})
        self.assertEqual((status, body["field"]), (400, "tls_name"))
        status, body = api_error(self.px, "POST", "/api/forwards", {
            "listen": "127.0.0.1:%d" % free_port(), "target": "mail.test:995",
            "tls": "tls-target", "tls_name": "bad..name"})
        self.assertEqual((status, body["field"]), (400, "tls_name"))


class GatedTlsEchoOrigin(TlsEchoOrigin):
    """TlsEchoOrigin that takes the TCP connection at once but begins its TLS handshake only
    once `gate` is set: the proxy's side of the handshake waits meanwhile."""

    def __init__(self, cert, key):
        super().__init__(cert, key)
        self.gate = threading.Event()

    def _serve(self, c):
        self.gate.wait(60)
        super()._serve(c)


class TlsTargetForwardRemovedTest(unittest.TestCase):
    """A tls-target connection whose forward is removed, and whose worker's listener slot a
    new plain forward takes, while its handshake with the target is still in flight: it goes
    on as the forward it was accepted by (TLS, verified for that forward's name), as a plain
    forward's connection goes on after its removal."""

    def test_handshake_in_flight_keeps_its_forwards_tls_after_the_slot_is_reused(self):
        tmp = tempfile.mkdtemp(prefix="pxtlsreuse.")
        try:
            ca = make_ca(tmp, "office-ca")
            with GatedTlsEchoOrigin(*issue(tmp, ca, "gate", "gate.test")) as gated, \
                    EchoOrigin() as plain, \
                    Proxyd(workers=1, extra_args=[
                        "--upstream-ca", ca[0],
                        # The held handshake must outlast the steps below on a slow machine
                        # (the target's deadline is the connect timeout, 5 s by default).
                        "--connect-timeout", "60000"]) as px:
                port_a, port_b = free_port(), free_port()
                a = px.api("POST", "/api/forwards", {
                    "listen": "127.0.0.1:%d" % port_a, "target": "127.0.0.1:%d" % gated.port,
                    "tls": "tls-target", "tls_name": "gate.test"})
                held = socket.create_connection(("127.0.0.1", port_a), timeout=60)
                try:
                    held.sendall(b"before the handshake")
                    # proxyd has connected to the target and waits in its handshake.
                    self.assertTrue(wait_for(lambda: gated.accepted == 1))
                    px.api("DELETE", "/api/forwards/%d" % a["id"])
                    # Connect only: a probe that the closing listener still took would wait in
                    # its own gated handshake (refused_or_closed reads an answer).
                    self.assertTrue(wait_for(lambda: connect_refused(port_a)))
                    b = px.api("POST", "/api/forwards", {
                        "listen": "127.0.0.1:%d" % port_b,
                        "target": "127.0.0.1:%d" % plain.port})
                    # The one worker has taken forward b, into the slot a left.
                    self.assertEqual(relay(port_b, b"plain"), b"plain")
                    gated.gate.set()
                    got = b""
                    while len(got) < len(b"before the handshake"):
                        data = held.recv(100)
                        if not data:
                            break
                        got += data
                    self.assertEqual(got, b"before the handshake")
                    self.assertIn("gate.test", gated.sni)
                finally:
                    held.close()
                px.api("DELETE", "/api/forwards/%d" % b["id"])
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


class TlsListenForwardRemovedTest(unittest.TestCase):
    """A tls-listen connection whose forward is removed, and whose worker's listener slot a new
    forward takes, while its client's handshake is still in flight: it never reaches the new
    forward's target (which its client did not connect to); it closes, its row saying why."""

    @staticmethod
    def in_handshake(px):
        with urllib.request.urlopen(px.admin_url + "/metrics", timeout=60) as r:
            text = r.read().decode()
        return re.search(r'^proxyd_connections_by_state\{state="handshake"\} 1$', text, re.M)

    def test_handshake_in_flight_does_not_go_to_the_next_forward_of_its_slot(self):
        with EchoOrigin() as origin_a, EchoOrigin() as origin_b, Proxyd(workers=1) as px:
            port_a, port_b = free_port(), free_port()
            a = px.api("POST", "/api/forwards", {
                "listen": "127.0.0.1:%d" % port_a, "target": "127.0.0.1:%d" % origin_a.port,
                "tls": "tls-listen"})
            raw = socket.create_connection(("127.0.0.1", port_a), timeout=60)
            try:
                # Accepted, waiting for the client's ClientHello.
                self.assertTrue(wait_for(lambda: self.in_handshake(px)))
                px.api("DELETE", "/api/forwards/%d" % a["id"])
                self.assertTrue(wait_for(lambda: refused_or_closed(port_a)))
                b = px.api("POST", "/api/forwards", {
                    "listen": "127.0.0.1:%d" % port_b, "target": "127.0.0.1:%d" % origin_b.port})
                # The one worker has taken forward b, into the slot a left.
                self.assertEqual(relay(port_b, b"plain"), b"plain")
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                got = b""
                try:
                    with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                        s.sendall(b"after the handshake")
                        while len(got) < len(b"after the handshake"):
                            data = s.recv(100)
                            if not data:
                                break
                            got += data
                except (ssl.SSLError, ConnectionError):
                    pass
                self.assertEqual(got, b"")
                # Neither target got the client's bytes (counted by content: the suite's other
                # tests run beside this one and may probe a port the system gave an origin here).
                self.assertNotIn(b"after the handshake", origin_a.received + origin_b.received)
                self.assertEqual(bytes(origin_b.received), b"plain")
                # Its row names no target: the forward that had one is gone.
                rows = wait_for(lambda: [r for r in forward_rows(px) if r["host"] == ""])
                self.assertEqual([(r["decision"], r["error"]) for r in rows],
                                 [(1, "forward removed during the TLS handshake")])
            finally:
                raw.close()
            px.api("DELETE", "/api/forwards/%d" % b["id"])


class ProxyctlForwardTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.origin = EchoOrigin().__enter__()
        cls.px = Proxyd().__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.px.__exit__(None, None, None)
        cls.origin.__exit__()

    def ctl(self, *args, expect=0):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PROXYCTL_", "PROXYD_"))}
        r = subprocess.run([PROXYCTL, "--url", self.px.admin_url, "--data-dir", self.px.data_dir]
                           + list(args), capture_output=True, text=True, timeout=60, env=env,
                           cwd=tempfile.gettempdir())
        self.assertEqual(r.returncode, expect, "proxyctl %s: exit %d\nstdout: %s\nstderr: %s"
                         % (" ".join(args), r.returncode, r.stdout, r.stderr))
        return r.stdout, r.stderr

    def test_add_list_logs_del(self):
        port = free_port()
        listen, target = "127.0.0.1:%d" % port, "127.0.0.1:%d" % self.origin.port
        out, _ = self.ctl("forward", "add", listen, target, "--clients", "127.0.0.0/8,::1")
        m = re.match(r"forward (\d+): (\S+) -> (\S+) clients (\S+) \(listening\)\n$", out)
        self.assertTrue(m, out)
        fid = int(m.group(1))
        self.assertEqual(m.groups()[1:], (listen, target, "127.0.0.0/8,::1"))
        # In force when proxyctl returns.
        self.assertEqual(relay(port, b"through proxyctl's forward"), b"through proxyctl's forward")

        out, _ = self.ctl("forward", "list")
        lines = out.splitlines()
        self.assertEqual(lines[0].split()[:4], ["id", "listen", "target", "clients"])
        self.assertIn([str(fid), listen, target, "127.0.0.0/8,::1"],
                      [l.split()[:4] for l in lines[1:]])
        listed = json.loads(self.ctl("--json", "forward", "list")[0])["forwards"]
        self.assertIn(fid, [f["id"] for f in listed])

        _, err = self.ctl("forward", "add", listen, "127.0.0.1:9", expect=1)
        self.assertIn("already listens on " + listen, err)
        _, err = self.ctl("forward", "add", "127.0.0.1:1", "no-port.test", expect=1)
        self.assertIn("target 'no-port.test': expected HOST:PORT", err)
        _, err = self.ctl("forward", "add", listen, expect=2)
        self.assertIn("missing TARGET", err)

        self.assertTrue(wait_for(lambda: "FORWARD" in self.ctl("logs", "--host", "127.0.0.1")[0]))

        out, _ = self.ctl("forward", "del", str(fid))
        self.assertEqual(out, "deleted forward %d (its listener is closed)\n" % fid)
        self.assertTrue(wait_for(lambda: refused_or_closed(port) and refused_or_closed(port)))
        _, err = self.ctl("forward", "del", str(fid), expect=1)
        self.assertIn("no such forward %d" % fid, err)
        self.ctl("forward", "del", "zero", expect=2)


if __name__ == "__main__":
    unittest.main()
