"""End-to-end tests of interception through real kernel redirection: the test builds its own
network in three namespaces it creates and always removes (a client, a gateway, origins;
veth pairs, addresses in 10.200.x.0/24 and fd20:x::/64 that exist only inside them), puts nftables
`redirect` and `tproxy` rules in the gateway, and runs proxyd there. The client does not know
about the proxy: it connects to the origins' addresses, and the gateway sends its
connections to proxyd's --intercept and --tproxy listeners.

Needs root (CI runs as root); skips, saying why, only when the kernel refuses namespaces.
Every wait is a hang guard."""
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import unittest

from harness import HERE, Proxyd, in_netns, wait_for
from test_https_block import make_ca

PEER = os.path.join(HERE, "netns_peer.py")
TAG = "px%05x" % (os.getpid() & 0xfffff)
CLI, GW, ORG = TAG + "c", TAG + "g", TAG + "o"
CLIENT, GW_CLI, GW_ORG, ORIGIN, OTHER = ("10.200.1.2", "10.200.1.1", "10.200.2.1",
                                          "10.200.2.2", "10.200.2.3")
# The same network in IPv6, on the same links (fd20::/16: unique local, only in here).
CLIENT6, GW_CLI6, GW_ORG6, ORIGIN6, OTHER6 = ("fd20:1::2", "fd20:1::1", "fd20:2::1",
                                              "fd20:2::2", "fd20:2::3")
INTERCEPT_PORT, TPROXY_PORT, PROXY_PORT, STRICT_PORT = 3129, 3130, 3128, 3131
TPROXY_USER_PORT = 3132  # a proxyd started as root that runs as nobody (--user)
POLICY = ("deny domain blocked.test\ndeny dest %s/32\ndeny dest %s/128\ninspect domain inspect.test\n"
          "inspect domain %s\n" % (OTHER, OTHER6, ORIGIN))
CA_PORT = 3133  # a proxyd with a local CA: the HTTPS block page
# A one-worker proxyd (so that every connection meets the same pool of origin connections):
# port 82 is redirected to its intercept listener, but from CLIENT2 diverted by TPROXY.
POOL_PORT, POOL_TPROXY_PORT, CLIENT2 = 3134, 3135, "10.200.1.3"

ALERT_ACCESS_DENIED = "15030300020231"
# Longer than proxyd's wait for an intercepted connection's first bytes (PEEK_MS, 2 s). Should a
# loaded machine let the bytes come within the wait after all, the outcome checked is the same.
LATE = "2.5"


def sh(*cmd, check=True):
    return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=60)


in_ns = in_netns


NFT_RULES = """
table ip %(tag)s {
  chain nat {
    type nat hook prerouting priority dstnat; policy accept;
    iifname "%(tag)sgc" tcp dport { 80, 443, 7 } redirect to :%(intercept)d
    iifname "%(tag)sgc" tcp dport { 81, 444 } redirect to :%(strict)d
    iifname "%(tag)sgc" tcp dport 445 redirect to :%(ca)d
    iifname "%(tag)sgc" ip saddr != %(client2)s tcp dport 82 redirect to :%(pool)d
  }
  chain mangle {
    type filter hook prerouting priority mangle; policy accept;
    meta l4proto tcp socket transparent 1 meta mark set 1 accept
    iifname "%(tag)sgc" tcp dport 8443 tproxy to :%(tproxy)d meta mark set 1 accept
    iifname "%(tag)sgc" tcp dport 8444 tproxy to :%(tproxy_user)d meta mark set 1 accept
    iifname "%(tag)sgc" ip saddr %(client2)s tcp dport 82 tproxy to :%(pool_tproxy)d \
      meta mark set 1 accept
  }
}
table ip6 %(tag)s {
  chain nat {
    type nat hook prerouting priority dstnat; policy accept;
    iifname "%(tag)sgc" tcp dport { 80, 443, 7 } redirect to :%(intercept)d
  }
  chain mangle {
    type filter hook prerouting priority mangle; policy accept;
    meta l4proto tcp socket transparent 1 meta mark set 1 accept
    iifname "%(tag)sgc" tcp dport 8443 tproxy to :%(tproxy)d meta mark set 1 accept
  }
}
"""


class Network:
    """The three namespaces, their links, routes and the gateway's rules."""

    def __init__(self):
        self.made = []

    def build(self):
        for ns in (CLI, GW, ORG):
            sh("ip", "netns", "add", ns)
            self.made.append(ns)
            sh(*in_ns(ns, "ip", "link", "set", "lo", "up"))
        sh("ip", "link", "add", TAG + "cg", "netns", CLI, "type", "veth", "peer", "name",
           TAG + "gc", "netns", GW)
        sh("ip", "link", "add", TAG + "og", "netns", ORG, "type", "veth", "peer", "name",
           TAG + "go", "netns", GW)
        for ns, dev, a in ((CLI, TAG + "cg", CLIENT + "/24"), (CLI, TAG + "cg", CLIENT2 + "/24"),
                           (GW, TAG + "gc", GW_CLI + "/24"),
                           (GW, TAG + "go", GW_ORG + "/24"), (ORG, TAG + "og", ORIGIN + "/24"),
                           (ORG, TAG + "og", OTHER + "/24")):
            sh(*in_ns(ns, "ip", "addr", "add", a, "dev", dev))
            sh(*in_ns(ns, "ip", "link", "set", dev, "up"))
        # nodad: usable at once, not after duplicate address detection.
        for ns, dev, a in ((CLI, TAG + "cg", CLIENT6), (GW, TAG + "gc", GW_CLI6),
                           (GW, TAG + "go", GW_ORG6), (ORG, TAG + "og", ORIGIN6),
                           (ORG, TAG + "og", OTHER6)):
            sh(*in_ns(ns, "ip", "-6", "addr", "add", a + "/64", "dev", dev, "nodad"))
        sh(*in_ns(CLI, "ip", "route", "add", "default", "via", GW_CLI))
        sh(*in_ns(ORG, "ip", "route", "add", "default", "via", GW_ORG))
        sh(*in_ns(CLI, "ip", "-6", "route", "add", "default", "via", GW_CLI6))
        sh(*in_ns(ORG, "ip", "-6", "route", "add", "default", "via", GW_ORG6))
        sh(*in_ns(GW, "sysctl", "-qw", "net.ipv4.ip_forward=1"))
        sh(*in_ns(GW, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"))
        # TPROXY: marked packets (diverted, or answers to proxyd's transparent sockets) are
        # delivered locally.
        sh(*in_ns(GW, "ip", "rule", "add", "fwmark", "1", "lookup", "100"))
        sh(*in_ns(GW, "ip", "route", "add", "local", "0.0.0.0/0", "dev", "lo", "table", "100"))
        sh(*in_ns(GW, "ip", "-6", "rule", "add", "fwmark", "1", "lookup", "100"))
        sh(*in_ns(GW, "ip", "-6", "route", "add", "local", "::/0", "dev", "lo", "table", "100"))
        subprocess.run(in_ns(GW, "nft", "-f", "-"), check=True, capture_output=True, timeout=60,
                       text=True, input=NFT_RULES % {"tag": TAG, "intercept": INTERCEPT_PORT,
                                                     "tproxy": TPROXY_PORT, "strict": STRICT_PORT,
                                                     "tproxy_user": TPROXY_USER_PORT,
                                                     "ca": CA_PORT, "pool": POOL_PORT,
                                                     "pool_tproxy": POOL_TPROXY_PORT,
                                                     "client2": CLIENT2})

    def remove(self):
        for ns in self.made:
            sh("ip", "netns", "del", ns, check=False)  # its veths and rules go with it
        self.made = []


class GatewayProxyd(Proxyd):
    """proxyd inside the gateway namespace. Its listeners are checked by its start-up line
    only: the test's own namespace cannot reach them."""

    def __init__(self, extra_args, policy):
        super().__init__(extra_args=extra_args, policy=policy, admin=False)
        self.args = in_ns(GW, *self.args)

    @staticmethod
    def _listening(port):
        return True


class InterceptTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root to create network namespaces")
        probe = sh("ip", "netns", "add", TAG + "p", check=False)
        if probe.returncode != 0:
            raise unittest.SkipTest("the kernel refuses network namespaces: " + probe.stderr)
        sh("ip", "netns", "del", TAG + "p", check=False)
        cls.net = Network()
        cls.addClassCleanup(cls.net.remove)
        cls.procs = []
        cls.addClassCleanup(cls.stop_procs)
        cls.tmp = tempfile.mkdtemp(prefix="pxint.")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.net.build()
        cert, key = os.path.join(cls.tmp, "cert.pem"), os.path.join(cls.tmp, "key.pem")
        sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
           "/CN=allowed.test", "-keyout", key, "-out", cert)
        args = ["origin", "--cert", cert, "--key", key]
        for ip in (ORIGIN, OTHER):
            args += ["--http", ip + ":80", "--http", ip + ":81", "--tls", ip + ":443", "--tls", ip + ":444",
                     "--tls", ip + ":8443",
                     "--echo", ip + ":7"]
        args += ["--tls", ORIGIN + ":8444", "--tls", ORIGIN + ":445"]  # 445: inspected
        args += ["--keepalive", ORIGIN + ":82"]
        for ip in ("[%s]" % ORIGIN6, "[%s]" % OTHER6):
            args += ["--http", ip + ":80", "--tls", ip + ":443", "--tls", ip + ":8443",
                     "--echo", ip + ":7"]
        cls.start(ORG, args)
        dns = cls.start(GW, [], script=os.path.join(HERE, "dnsstub.py"), ready="PORT",
                        extra=["--record", "other.test=" + OTHER, "--record",
                               "late-other.test=" + OTHER, "--record", "origin.test=" + ORIGIN,
                               "--record", "late-origin.test=" + ORIGIN])
        cls.px = GatewayProxyd(
            ["--listen", "%s:%d" % (GW_CLI, PROXY_PORT),
             "--intercept", "0.0.0.0:%d" % INTERCEPT_PORT,
             "--tproxy", "0.0.0.0:%d" % TPROXY_PORT,
             "--intercept", "[::]:%d" % INTERCEPT_PORT,
             "--tproxy", "[::]:%d" % TPROXY_PORT,
             "--connect-ports", "443", "--dns-server", "127.0.0.1:%s" % dns,
             "--dns-timeout", "30000"], POLICY)
        cls.px.start()
        cls.addClassCleanup(cls.px.__exit__, None, None, None)
        # A second proxyd whose intercepted requests must name where they go.
        cls.strict = GatewayProxyd(
            ["--intercept", "0.0.0.0:%d" % STRICT_PORT, "--intercept-host-strict",
             "--dns-server", "127.0.0.1:%s" % dns, "--dns-timeout", "30000"], POLICY)
        cls.strict.start()
        cls.addClassCleanup(cls.strict.__exit__, None, None, None)
        # Started as root, running as nobody: it keeps CAP_NET_ADMIN to connect from the
        # clients' addresses (without it the origins would see the gateway's).
        cls.as_user = GatewayProxyd(
            ["--tproxy", "0.0.0.0:%d" % TPROXY_USER_PORT, "--user", "nobody",
             "--dns-server", "127.0.0.1:%s" % dns, "--dns-timeout", "30000"], POLICY)
        os.chmod(cls.as_user.tmp, 0o755)  # nobody reads the policy file in it
        cls.as_user.start()
        cls.addClassCleanup(cls.as_user.__exit__, None, None, None)
        # A third with a local CA: a denied name gets the block page inside TLS.
        cls.with_ca = GatewayProxyd(
            ["--intercept", "0.0.0.0:%d" % CA_PORT, "--dns-server", "127.0.0.1:%s" % dns,
             "--dns-timeout", "30000"], POLICY)
        cls.cacert = make_ca(cls.with_ca.data_dir)
        cls.with_ca.start()
        cls.addClassCleanup(cls.with_ca.__exit__, None, None, None)
        cls.pooling = GatewayProxyd(
            ["--intercept", "0.0.0.0:%d" % POOL_PORT,
             "--tproxy", "0.0.0.0:%d" % POOL_TPROXY_PORT, "--workers", "1",
             "--dns-server", "127.0.0.1:%s" % dns, "--dns-timeout", "30000"],
            POLICY)
        cls.pooling.start()
        cls.addClassCleanup(cls.pooling.__exit__, None, None, None)

    @classmethod
    def start(cls, ns, args, script=PEER, ready="READY", extra=()):
        """Starts a peer (or the DNS stub) in ns; returns what its ready line says."""
        p = subprocess.Popen(in_ns(ns, sys.executable, script, *args, *extra),
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        cls.procs.append(p)
        line = p.stdout.readline()
        if not line.startswith(ready):
            raise RuntimeError("%s did not start: %r" % (script, line))
        return line.split()[-1]

    @classmethod
    def stop_procs(cls):
        for p in cls.procs:
            if p.poll() is None:
                p.kill()
            p.wait()

    def client(self, *args):
        out = subprocess.run(in_ns(CLI, sys.executable, PEER, *args), capture_output=True,
                             text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        return json.loads(out.stdout)

    def rows(self, where, params=()):
        db = sqlite3.connect("file:%s?mode=ro" % self.px.db_path, uri=True, timeout=5)
        try:
            return db.execute("SELECT scheme, method, host, port, path, status, decision, error,"
                              " sni, dest FROM access_log WHERE " + where + " ORDER BY id",
                              params).fetchall()
        finally:
            db.close()

    def wait_rows(self, where, params=()):
        got = wait_for(lambda: self.rows(where, params), timeout=60)
        self.assertTrue(got, "no access-log row where " + where)
        return got

    # ---- HTTP ----

    def test_http_goes_to_the_original_destination(self):
        out = self.client("http", ORIGIN, "80", "origin.test", "/a?x=1")
        self.assertEqual(out["status"], 200)
        body = json.loads(out["body"])
        self.assertEqual(body["origin"], ORIGIN + ":80")
        self.assertEqual((body["host"], body["target"]), ("origin.test", "/a?x=1"))
        self.assertIn("proxyd", body["via"])  # it went through proxyd
        row = self.wait_rows("path = '/a?x=1'")[-1]
        self.assertEqual(row[:7], ("http", "GET", "origin.test", 80, "/a?x=1", 200, 0))
        self.assertEqual(row[9], ORIGIN + ":80")

    def test_host_lie_is_not_followed_and_both_are_logged(self):
        # Host names OTHER's name (which resolves to OTHER): the request still goes to ORIGIN.
        out = self.client("http", ORIGIN, "80", "other.test", "/lie")
        body = json.loads(out["body"])
        self.assertEqual(body["origin"], ORIGIN + ":80")
        row = self.wait_rows("path = '/lie'")[-1]
        self.assertEqual((row[2], row[9]), ("other.test", ORIGIN + ":80"))

    def test_denied_host_gets_the_block_page(self):
        out = self.client("http", ORIGIN, "80", "blocked.test", "/blocked")
        self.assertEqual(out["status"], 403)
        self.assertIn("blocked", out["body"])
        self.assertNotIn('"origin"', out["body"])  # the origin never answered
        row = self.wait_rows("path = '/blocked'")[-1]
        self.assertEqual(row[2:7], ("blocked.test", 80, "/blocked", 403, 1))

    def test_denied_destination_is_refused_whatever_the_host(self):
        out = self.client("http", OTHER, "80", "origin.test", "/other")
        self.assertEqual(out["status"], 403)
        self.assertEqual(self.wait_rows("path = '/other'")[-1][6], 1)

    def test_a_request_behind_empty_lines_is_still_http(self):
        # Servers skip CRLFs before a request-line (RFC 9112 2.2): such a request is judged by
        # its Host like any, not spliced as other bytes judged by the destination alone.
        out = self.client("echo", ORIGIN, "80", "\r\n\r\nGET /crlf HTTP/1.1\r\n"
                          "Host: crlf.blocked.test\r\nConnection: close\r\n\r\n")
        self.assertTrue(out["got"].startswith("HTTP/1.1 403"), out["got"][:200])
        row = self.wait_rows("path = '/crlf'")[-1]
        self.assertEqual(row[:7], ("http", "GET", "crlf.blocked.test", 80, "/crlf", 403, 1))
        # Line ends and then not a request: HTTP all the same, refused as malformed.
        out = self.client("echo", ORIGIN, "80", "\r\n\x16\x03\x01 not a request\r\n\r\n")
        self.assertTrue(out["got"].startswith("HTTP/1.1 400"), out["got"][:200])

    def test_any_request_line_a_server_would_take_is_http(self):
        # Servers take methods that are not capitals (M-SEARCH, lower case, long ones) and tabs
        # between the parts; such a line is judged as HTTP (the rules, or 400 from the parser),
        # never spliced as other bytes past its Host's deny rule.
        lines = ["M-SEARCH /ml HTTP/1.1", "get /ml HTTP/1.1", "GET\t/ml\tHTTP/1.1",
                 "ABCDEFGHIJKLMNOPQ /ml HTTP/1.1", "PROPFIND  /ml  HTTP/1.1"]
        for line in lines:
            out = self.client("echo", ORIGIN, "80", line + "\r\nHost: ml.blocked.test\r\n"
                              "Connection: close\r\n\r\n")
            self.assertRegex(out["got"][:12], r"^HTTP/1\.1 4\d\d", line)
            self.assertNotIn('"origin"', out["got"], line)
        # The start of a request, then silence past the peek's window: still read as one.
        out = self.client("--pause-after", "2", LATE, "echo", ORIGIN, "80",
                          "GET /ml-split HTTP/1.1\r\nHost: ml.blocked.test\r\n"
                          "Connection: close\r\n\r\n")
        self.assertTrue(out["got"].startswith("HTTP/1.1 403"), out["got"][:200])
        # A client-first text protocol's line names no HTTP version: its bytes go through.
        self.assertEqual(self.client("echo", ORIGIN, "7", "get key\r\n")["got"], "get key\r\n")

    def test_first_bytes_after_the_peek_window_are_judged_as_in_time(self):
        # LATE seconds of silence outlast proxyd's wait for a connection's first bytes, after
        # which it goes on by its destination alone (a server-speaks-first protocol); the
        # request that comes then is still judged by its Host, not let through by its address.
        out = self.client("--late", LATE, "http", ORIGIN, "80", "late.blocked.test", "/late-blocked")
        self.assertEqual(out["status"], 403)
        self.assertNotIn('"origin"', out["body"])
        row = self.wait_rows("path = '/late-blocked'")[-1]
        self.assertEqual(row[2:7], ("late.blocked.test", 80, "/late-blocked", 403, 1))
        out = self.client("--late", LATE, "http", ORIGIN, "80", "origin.test", "/late-ok")
        self.assertEqual(out["status"], 200)
        self.assertEqual(json.loads(out["body"])["origin"], ORIGIN + ":80")
        self.assertEqual(self.wait_rows("path = '/late-ok'")[-1][2:7],
                         ("origin.test", 80, "/late-ok", 200, 0))
        out = self.client("--late", LATE, "tls", ORIGIN, "443", "late.blocked.test", "10")
        self.assertIn("ACCESS_DENIED", out.get("error", "").upper().replace(" ", "_"))

    def test_late_server_name_is_still_checked_strictly(self):
        out = self.client("--late", LATE, "tls", ORIGIN, "444", "late-other.test", "10")
        self.assertIn("ACCESS_DENIED", out.get("error", "").upper().replace(" ", "_"))
        out = self.client("--late", LATE, "http", ORIGIN, "81", "late-other.test",
                          "/late-strict-lie")
        self.assertEqual(out["status"], 409)
        out = self.client("--late", LATE, "tls", ORIGIN, "444", "late-origin.test", "300000")
        self.assertNotIn("error", out)
        self.assertTrue(out["exact"])

    def test_strict_host_must_resolve_to_the_destination(self):
        out = self.client("http", ORIGIN, "81", "other.test", "/strict-lie")
        self.assertEqual(out["status"], 409)
        self.assertNotIn('"origin"', out["body"])
        out = self.client("http", ORIGIN, "81", "origin.test", "/strict-ok")
        self.assertEqual(json.loads(out["body"])["origin"], ORIGIN + ":81")

        def strict_rows(path):
            db = sqlite3.connect("file:%s?mode=ro" % self.strict.db_path, uri=True, timeout=5)
            try:
                return db.execute("SELECT host, status, decision, error, dest FROM access_log"
                                  " WHERE path = ?", (path,)).fetchall()
            finally:
                db.close()
        lie = wait_for(lambda: strict_rows("/strict-lie"), timeout=60)
        self.assertEqual(lie, [("other.test", 409, 1, "host-mismatch", ORIGIN + ":81")])
        ok = wait_for(lambda: strict_rows("/strict-ok"), timeout=60)
        self.assertEqual(ok, [("origin.test", 200, 0, "", ORIGIN + ":81")])

    def test_strict_server_name_must_resolve_to_the_destination(self):
        out = self.client("tls", ORIGIN, "444", "other.test", "10")
        self.assertIn("ACCESS_DENIED", out.get("error", "").upper().replace(" ", "_"))
        out = self.client("tls", ORIGIN, "444", "origin.test", "300000")
        self.assertNotIn("error", out)
        self.assertTrue(out["exact"])
        self.assertEqual(out["info"]["origin"], ORIGIN + ":444")

        def strict_rows(sni):
            db = sqlite3.connect("file:%s?mode=ro" % self.strict.db_path, uri=True, timeout=5)
            try:
                return db.execute("SELECT host, decision, error, dest FROM access_log"
                                  " WHERE sni = ? AND method = 'TLS'", (sni,)).fetchall()
            finally:
                db.close()
        lie = wait_for(lambda: strict_rows("other.test"), timeout=60)
        self.assertEqual(lie, [("other.test", 1, "host-mismatch", ORIGIN + ":444")])
        ok = wait_for(lambda: strict_rows("origin.test"), timeout=60)
        self.assertEqual(ok, [("origin.test", 0, "", ORIGIN + ":444")])

    def test_straight_to_the_intercept_port_is_refused_not_looped(self):
        out = self.client("http", GW_CLI, str(INTERCEPT_PORT), "origin.test", "/loop")
        self.assertEqual(out["status"], 403)
        row = self.wait_rows("path = '/loop'")[-1]
        self.assertEqual((row[6], row[7]), (1, "target is the proxy itself"))

    def test_intercepted_requests_share_origin_connections_but_tproxy_never(self):
        def get(path, source=()):
            out = self.client("http", ORIGIN, "82", "origin.test", path, *source)
            self.assertEqual(out["status"], 200, out)
            body = json.loads(out["body"])
            self.assertEqual(body["target"], path)
            return body
        # Each client connection closes after its request; the origin connection stays in
        # the pool for the next one to the same original destination.
        first, second = get("/pool-1"), get("/pool-2")
        self.assertEqual((first["peer"], second["peer"]), (GW_ORG, GW_ORG))
        self.assertEqual(second["conn"], first["conn"])
        # TPROXY speaks from its client's address: a connection of its own every time.
        t1, t2 = get("/pool-t1", (CLIENT2,)), get("/pool-t2", (CLIENT2,))
        self.assertEqual((t1["peer"], t2["peer"]), (CLIENT2, CLIENT2))
        self.assertEqual(len({first["conn"], t1["conn"], t2["conn"]}), 3)
        self.assertEqual(get("/pool-3")["conn"], first["conn"])

    # ---- TLS ----

    def test_tls_by_sni_passes_byte_exact(self):
        out = self.client("tls", ORIGIN, "443", "allowed.test", "300000")
        self.assertNotIn("error", out)
        self.assertTrue(out["exact"])
        self.assertEqual(out["info"]["origin"], ORIGIN + ":443")
        # (The IPv6 test's row has the same name and port: told apart by dest.)
        row = self.wait_rows("sni = 'allowed.test' AND method = 'TLS' AND dest = ?",
                             (ORIGIN + ":443",))[-1]
        self.assertEqual(row[:3], ("https", "TLS", "allowed.test"))
        self.assertEqual((row[6], row[9]), (0, ORIGIN + ":443"))

    def test_tls_denied_sni_is_closed_with_an_alert(self):
        out = self.client("tls", ORIGIN, "443", "blocked.test", "10")
        self.assertIn("ACCESS_DENIED", out.get("error", "").upper().replace(" ", "_"))
        row = self.wait_rows("sni = 'blocked.test' AND method = 'TLS'")[-1]
        self.assertEqual(row[6:8], (1, "denied"))

    def test_tls_denied_sni_gets_the_block_page_with_a_ca(self):
        out = self.client("https", ORIGIN, "445", "blocked.test", self.cacert)
        self.assertEqual(out.get("status"), 403, out)
        self.assertIn("blocked by the office", out["body"])
        db = sqlite3.connect("file:%s?mode=ro" % self.with_ca.db_path, uri=True, timeout=5)
        try:
            rows = wait_for(lambda: db.execute(
                "SELECT method, decision, error, sni, policy_version > 0 FROM access_log"
                " WHERE host = 'blocked.test'").fetchall(), timeout=60)
        finally:
            db.close()
        # The row names the policy version that decided it, as a proxied request's does.
        self.assertEqual(rows, [("TLS", 1, "denied", "blocked.test", 1)])

    def test_tls_inspected_by_sni_verifies_the_original_destination(self):
        # The proxy with a CA decrypts inspect.test (the client trusts the CA): the request
        # inside is read and goes to the original destination over TLS, whose self-signed
        # certificate for another name fails verification: the block page says so.
        out = self.client("https", ORIGIN, "445", "inspect.test", self.cacert)
        self.assertEqual(out.get("status"), 403, out)
        self.assertIn("certificate cannot be trusted", out["body"])
        db = sqlite3.connect("file:%s?mode=ro" % self.with_ca.db_path, uri=True, timeout=5)
        try:
            rows = wait_for(lambda: db.execute(
                "SELECT scheme, method, path, status, decision, error FROM access_log"
                " WHERE host = 'inspect.test' AND method = 'GET'").fetchall(), timeout=60)
        finally:
            db.close()
        self.assertEqual(rows[0][:5], ("https", "GET", "/", 403, 1))
        self.assertIn("self-signed certificate", rows[0][5])

    def test_tls_without_server_name_gets_the_block_page_for_the_address(self):
        # No SNI: the certificate is minted for the original destination's address (an IP
        # SAN), so a client trusting the CA sees the block page of a denied destination.
        out = self.client("https", OTHER, "445", "-", self.cacert)
        self.assertEqual(out.get("status"), 403, out)
        self.assertIn("blocked by the office", out["body"])
        self.assertEqual(out["san"], [["IP Address", OTHER]])
        rows = self.with_ca_rows("SELECT method, host, decision, sni FROM access_log"
                                 " WHERE host = ? AND method = 'TLS'", (OTHER,))
        self.assertEqual(rows, [("TLS", OTHER, 1, "")])

    def test_tls_without_server_name_is_inspected_for_the_address(self):
        # An inspect rule for the destination's address: the session is minted for it, the
        # request inside is read and goes to the original destination, verified for the
        # address (its self-signed certificate for a name fails: the page says so).
        out = self.client("https", ORIGIN, "445", "-", self.cacert)
        self.assertEqual(out.get("status"), 403, out)
        self.assertEqual(out["san"], [["IP Address", ORIGIN]])
        self.assertIn("certificate cannot be trusted", out["body"])
        rows = self.with_ca_rows("SELECT scheme, method, path, status, decision FROM access_log"
                                 " WHERE host = ? AND method = 'GET'", (ORIGIN,))
        self.assertEqual(rows[0], ("https", "GET", "/", 403, 1))

    def with_ca_rows(self, sql, params=()):
        db = sqlite3.connect("file:%s?mode=ro" % self.with_ca.db_path, uri=True, timeout=5)
        try:
            return wait_for(lambda: db.execute(sql, params).fetchall(), timeout=60)
        finally:
            db.close()

    def test_tls_hello_split_over_segments_is_still_read(self):
        out = self.client("hello", ORIGIN, "443", "Blocked.Test")
        self.assertEqual(out["got"], ALERT_ACCESS_DENIED)

    # ---- neither ----

    def test_other_protocol_is_judged_by_destination(self):
        self.assertEqual(self.client("echo", ORIGIN, "7", "ping\n")["got"], "ping\n")
        row = self.wait_rows("scheme = 'tcp' AND host = ?", (ORIGIN,))[-1]
        self.assertEqual((row[3], row[6], row[9]), (7, 0, ORIGIN + ":7"))
        self.assertEqual(self.client("echo", OTHER, "7", "ping\n")["got"], "")
        row = self.wait_rows("scheme = 'tcp' AND host = ?", (OTHER,))[-1]
        self.assertEqual(row[6:8], (1, "denied"))

    # ---- TPROXY ----

    def test_tproxy_keeps_the_client_address(self):
        out = self.client("tls", ORIGIN, "8443", "allowed.test", "5000")
        self.assertNotIn("error", out)
        self.assertTrue(out["exact"])
        self.assertEqual(out["info"], {"origin": ORIGIN + ":8443", "peer": CLIENT})
        row = self.wait_rows("port = 8443 AND sni = 'allowed.test'")[-1]
        self.assertEqual(row[6], 0)
        out = self.client("tls", ORIGIN, "8443", "blocked.test", "10")
        self.assertIn("error", out)

    def test_tproxy_run_as_another_user_still_keeps_the_client_address(self):
        out = self.client("tls", ORIGIN, "8444", "allowed.test", "5000")
        self.assertNotIn("error", out)
        self.assertTrue(out["exact"])
        self.assertEqual(out["info"], {"origin": ORIGIN + ":8444", "peer": CLIENT})

    # ---- IPv6: IP6T_SO_ORIGINAL_DST, IPV6_TRANSPARENT ----

    def test_ipv6_http_goes_to_the_original_destination(self):
        out = self.client("http", ORIGIN6, "80", "origin.test", "/v6?x=1")
        self.assertEqual(out["status"], 200, out)
        body = json.loads(out["body"])
        self.assertEqual(body["origin"], "[%s]:80" % ORIGIN6)
        self.assertEqual((body["host"], body["target"]), ("origin.test", "/v6?x=1"))
        self.assertIn("proxyd", body["via"])
        row = self.wait_rows("path = '/v6?x=1'")[-1]
        self.assertEqual(row[:7], ("http", "GET", "origin.test", 80, "/v6?x=1", 200, 0))
        self.assertEqual(row[9], "[%s]:80" % ORIGIN6)

    def test_ipv6_denied_destination_is_refused_whatever_the_host(self):
        out = self.client("http", OTHER6, "80", "origin.test", "/v6-other")
        self.assertEqual(out["status"], 403)
        row = self.wait_rows("path = '/v6-other'")[-1]
        self.assertEqual((row[6], row[9]), (1, "[%s]:80" % OTHER6))

    def test_ipv6_tls_by_sni(self):
        out = self.client("tls", ORIGIN6, "443", "allowed.test", "300000")
        self.assertNotIn("error", out)
        self.assertTrue(out["exact"])
        self.assertEqual(out["info"]["origin"], "[%s]:443" % ORIGIN6)
        row = self.wait_rows("sni = 'allowed.test' AND dest = ?", ("[%s]:443" % ORIGIN6,))[-1]
        self.assertEqual(row[:3] + (row[6],), ("https", "TLS", "allowed.test", 0))
        out = self.client("tls", ORIGIN6, "443", "blocked.test", "10")
        self.assertIn("ACCESS_DENIED", out.get("error", "").upper().replace(" ", "_"))
        row = self.wait_rows("sni = 'blocked.test' AND dest = ?", ("[%s]:443" % ORIGIN6,))[-1]
        self.assertEqual(row[6:8], (1, "denied"))

    def test_ipv6_other_protocol_is_judged_by_destination(self):
        self.assertEqual(self.client("echo", ORIGIN6, "7", "ping6\n")["got"], "ping6\n")
        row = self.wait_rows("scheme = 'tcp' AND host = ?", (ORIGIN6,))[-1]
        self.assertEqual((row[3], row[6], row[9]), (7, 0, "[%s]:7" % ORIGIN6))

    def test_ipv6_tproxy_keeps_the_client_address(self):
        out = self.client("tls", ORIGIN6, "8443", "allowed.test", "5000")
        self.assertNotIn("error", out)
        self.assertTrue(out["exact"])
        self.assertEqual(out["info"], {"origin": "[%s]:8443" % ORIGIN6, "peer": CLIENT6})
        row = self.wait_rows("dest = ? AND sni = 'allowed.test'", ("[%s]:8443" % ORIGIN6,))[-1]
        self.assertEqual(row[6], 0)

    # ---- explicit CONNECT ----

    def test_connect_with_mismatched_sni_is_refused(self):
        out = self.client("connect", GW_CLI, str(PROXY_PORT), ORIGIN, "443", "blocked.test",
                          "10")
        self.assertIn("ACCESS_DENIED", out.get("error", "").upper().replace(" ", "_"))
        out = self.client("connect", GW_CLI, str(PROXY_PORT), ORIGIN, "443", "allowed.test",
                          "1000")
        self.assertTrue(out.get("exact"), out)
        # Each tunnel's row is written when it closes, by either worker: wait for both.
        rows = wait_for(lambda: len(self.rows("method = 'CONNECT' AND host = ?", (ORIGIN,))) == 2
                        and self.rows("method = 'CONNECT' AND host = ?", (ORIGIN,)), timeout=60)
        self.assertTrue(rows)
        self.assertEqual(sorted((r[8], r[6]) for r in rows),
                         [("allowed.test", 0), ("blocked.test", 1)])


if __name__ == "__main__":
    unittest.main()
