"""GET /metrics, /healthz and /readyz from the real proxyd: known traffic is sent and the
counters are read back through a real Prometheus text parser (python3-prometheus-client);
/readyz says 503 while proxyd drains; /metrics is open to loopback and --metrics-allow
networks and needs the token from anywhere else (checked inside a network namespace the test
creates, where proxyd and its callers have addresses of their own)."""
import os
import signal
import socket
import subprocess
import sys
import unittest
import urllib.error
import urllib.request

from harness import DnsStub, Origin, Proxyd, in_netns, read_head, read_response, wait_for

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    # Debian's python3-prometheus-client (scripts/deps.sh test) installs for Debian's own
    # python3; an interpreter of another origin (pyenv) finds the pure-Python module there.
    sys.path.append("/usr/lib/python3/dist-packages")
    from prometheus_client.parser import text_string_to_metric_families

RECORDS = {"allowed.test": "127.0.0.1", "blocked.test": "127.0.0.1"}
POLICY = "deny domain blocked.test\n"


def fetch(url, headers=None):
    """(status, body text) of a GET straight to the admin server (no proxy)."""
    req = urllib.request.Request(url, headers=headers or {})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=60) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def scrape(px):
    """The families of GET /metrics, parsed, as {family name: family}; the text must parse."""
    status, text = fetch(px.admin_url + "/metrics")
    assert status == 200, (status, text)
    return {f.name: f for f in text_string_to_metric_families(text)}


def value(families, family, **labels):
    """The value of the sample of family with exactly these labels (suffix "_total" of a
    counter's samples included), or None."""
    f = families.get(family)
    if f is None:
        return None
    for s in f.samples:
        if s.labels == labels and s.name in (family, family + "_total"):
            return s.value
    return None


def hist(families, family, suffix, **labels):
    for s in families[family].samples:
        if s.name == family + suffix and s.labels == labels:
            return s.value
    return None


def open_tunnel(px, port):
    s = px.connect()
    s.sendall(("CONNECT allowed.test:%d HTTP/1.1\r\nHost: allowed.test:%d\r\n\r\n"
               % (port, port)).encode())
    head, _ = read_head(s)
    assert head and head.startswith(b"HTTP/1.1 200"), head
    return s


class MetricsTest(unittest.TestCase):

    def test_counters_match_the_traffic_sent(self):
        with DnsStub(RECORDS) as dns, Origin() as origin, \
                Proxyd(dns=dns, policy=POLICY,
                       extra_args=["--connect-ports", "443,%d" % origin.port]) as px:
            for _ in range(3):
                self.assertEqual(px.get("http://allowed.test:%d/small" % origin.port)[0], 200)
            for _ in range(2):
                self.assertEqual(px.get("http://blocked.test:%d/small" % origin.port)[0], 403)
            self.assertEqual(px.get("http://missing.test:%d/small" % origin.port)[0], 502)
            self.assertEqual(px.request(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")[0], 400)
            tunnel = open_tunnel(px, origin.port)

            # Eight requests, seven of them finished (the tunnel's record comes at its end).
            def seven_written():
                f = scrape(px)
                return value(f, "proxyd_log_written") == 7 and value(f, "proxyd_log_pending") == 0

            self.assertTrue(wait_for(seven_written, timeout=60), "rows not written")
            f = scrape(px)
            self.assertEqual(f["proxyd_requests_finished"].type, "counter")
            self.assertEqual(f["proxyd_connections_by_state"].type, "gauge")
            self.assertEqual(f["proxyd_acl_eval_seconds"].type, "histogram")
            fwd = {"listener": "forward"}
            self.assertEqual(value(f, "proxyd_requests_finished", decision="allow",
                                   status="2xx", **fwd), 3)
            # Two denied by the rule, one bad request (decided 'deny' before any rule).
            self.assertEqual(value(f, "proxyd_requests_finished", decision="deny",
                                   status="4xx", **fwd), 3)
            self.assertEqual(value(f, "proxyd_requests_finished", decision="allow",
                                   status="5xx", **fwd), 1)
            self.assertEqual(sum(s.value for s in f["proxyd_requests_finished"].samples), 7)
            self.assertEqual(value(f, "proxyd_requests"), 8)
            self.assertEqual(value(f, "proxyd_requests_denied"), 3)
            self.assertEqual(value(f, "proxyd_closes", reason="denied"), 2)
            self.assertEqual(value(f, "proxyd_closes", reason="dns-nxdomain"), 1)
            self.assertEqual(value(f, "proxyd_closes", reason="bad-request"), 1)
            # Lookups: three allowed GETs, the missing name, the tunnel; one found nothing.
            self.assertEqual(value(f, "proxyd_dns_lookups"), 5)
            self.assertEqual(value(f, "proxyd_dns_failures"), 1)
            sent = hist(f, "proxyd_dns_lookup_seconds", "_count")
            self.assertGreaterEqual(sent, 2)  # allowed.test and missing.test went to the stub
            self.assertLessEqual(sent, 5)
            self.assertEqual(hist(f, "proxyd_dns_lookup_seconds", "_bucket", le="+Inf"), sent)
            # Every request with a host was evaluated once: all but the bad request.
            self.assertEqual(hist(f, "proxyd_acl_eval_seconds", "_count"), 7)
            self.assertGreater(hist(f, "proxyd_acl_eval_seconds", "_sum"), 0)
            buckets = [s.value for s in f["proxyd_acl_eval_seconds"].samples
                       if s.name.endswith("_bucket")]
            self.assertEqual(buckets, sorted(buckets), "buckets are cumulative")
            # The tunnel is the one connection open, in state 'tunnel'.
            self.assertEqual(value(f, "proxyd_connections_by_state", state="tunnel"), 1)
            self.assertEqual(value(f, "proxyd_tunnels_active"), 1)
            self.assertEqual(sum(s.value for s in f["proxyd_connections_by_state"].samples),
                             value(f, "proxyd_connections_active"))
            self.assertGreaterEqual(value(f, "proxyd_bytes_down"), 3 * 1024)
            # The policy in force is the store's version.
            self.assertEqual(value(f, "proxyd_policy_version"), px.api("GET", "/api/rules")["version"])
            self.assertGreaterEqual(value(f, "proxyd_policy_age_seconds"), 0)
            self.assertEqual(value(f, "proxyd_log_dropped_queue_full"), 0)
            self.assertEqual(value(f, "proxyd_log_db_errors"), 0)
            # The same numbers under the same names in GET /api/stats.
            stats = px.api("GET", "/api/stats")["proxy"]
            self.assertEqual(stats["requests_finished"]["allow/2xx/forward"], 3)
            self.assertEqual(stats["acl_eval"]["count"], 7)

            tunnel.close()

            def tunnel_counted():
                f = scrape(px)
                return (value(f, "proxyd_requests_finished", decision="allow", status="2xx",
                              **fwd) == 4 and value(f, "proxyd_log_written") == 8
                        and value(f, "proxyd_connections_by_state", state="tunnel") == 0)

            self.assertTrue(wait_for(tunnel_counted, timeout=60), "tunnel's end not counted")

    def test_healthz_and_readyz_and_readyz_503_while_draining(self):
        with DnsStub(RECORDS) as dns, Origin() as origin, \
                Proxyd(dns=dns, extra_args=["--connect-ports", "443,%d" % origin.port]) as px:
            self.assertEqual(fetch(px.admin_url + "/healthz"), (200, "ok\n"))
            self.assertEqual(fetch(px.admin_url + "/readyz"), (200, "ready\n"))
            # An open tunnel keeps proxyd draining after SIGTERM: meanwhile it is not ready.
            tunnel = open_tunnel(px, origin.port)
            # This node's heartbeat row is read back for the fleet gauges.
            self.assertTrue(wait_for(lambda: value(scrape(px), "proxyd_fleet_nodes") == 1,
                                     timeout=60))
            os.kill(px.pid, signal.SIGTERM)
            seen = []

            def not_ready():
                try:
                    seen.append(fetch(px.admin_url + "/readyz"))
                except OSError:
                    return False
                return seen[-1][0] == 503

            self.assertTrue(wait_for(not_ready, timeout=60), seen[-3:])
            self.assertRegex(seen[-1][1], r"^not ready: not listening")
            self.assertEqual(fetch(px.admin_url + "/healthz"), (200, "ok\n"))
            # /metrics while it drains reads the heartbeat's fleet counts, which stay until
            # the admin server has stopped (a sanitizer build saw them read after their free).
            self.assertEqual(value(scrape(px), "proxyd_fleet_nodes"), 1)
            tunnel.close()
            self.assertEqual(px.proc.wait(60), 0)

    def test_idle_keep_alive_connections_hold_no_buffers(self):
        """Idle keep-alive clients hold a socket and a struct, no 32 KiB I/O buffer: after one
        relayed request, one denied (our own 403) and one pipelined pair each, every buffer is
        back in the pool (proxyd_buffers_in_use 0) while the connections stay open."""
        with DnsStub(RECORDS) as dns, Origin() as origin, \
                Proxyd(dns=dns, policy=POLICY, workers=1) as px:
            url = "http://allowed.test:%d/small" % origin.port
            get = ("GET %s HTTP/1.1\r\nHost: allowed.test\r\n\r\n" % url).encode()
            denied = ("GET http://blocked.test:%d/small HTTP/1.1\r\nHost: blocked.test\r\n\r\n"
                      % origin.port).encode()
            held = []
            try:
                for i in range(24):
                    s = px.connect()
                    held.append(s)
                    raw = (get, denied, get + get)[i % 3]
                    s.sendall(raw)
                    rest = b""
                    for _ in range(raw.count(b"GET ")):
                        status, _, body, rest = read_response(s, rest)
                        self.assertIn(status, (200, 403))
                        self.assertEqual(status == 200, raw is not denied)

                def all_idle_and_unbuffered():
                    f = scrape(px)
                    return (value(f, "proxyd_connections_by_state", state="idle") == 24
                            and value(f, "proxyd_buffers_in_use") == 0)

                ok = wait_for(all_idle_and_unbuffered, timeout=30)
                f = scrape(px)
                self.assertTrue(ok, "idle: %s, buffers in use: %s" % (
                    value(f, "proxyd_connections_by_state", state="idle"),
                    value(f, "proxyd_buffers_in_use")))
                # Still usable: the next request on each gets a buffer again and answers.
                for s in held[:3]:
                    s.sendall(get)
                    self.assertEqual(read_response(s)[0], 200)
            finally:
                for s in held:
                    s.close()

    def test_metrics_bad_allow_network_refuses_to_start(self):
        px = Proxyd(extra_args=["--metrics-allow", "10.0.0.0/33"])
        with self.assertRaisesRegex(RuntimeError, r"metrics-allow: '10\.0\.0\.0/33' is not a network"):
            px.start()
        px.stop()


NS = "pxmetrics%d" % os.getpid()
# TEST-NET-1 addresses on the namespace's own loopback device: not loopback addresses, so
# proxyd sees callers from elsewhere, and nothing leaves the namespace.
SERVER, ALLOWED, OTHER = "192.0.2.1", "192.0.2.20", "192.0.2.30"

CLIENT = r"""
import socket, sys
src, dst, port, token = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
s = socket.create_connection((dst, port), timeout=60, source_address=(src, 0))
auth = "Authorization: Bearer %s\r\n" % token if token else ""
s.sendall(("GET /metrics HTTP/1.1\r\nHost: %s:%d\r\n%sConnection: close\r\n\r\n"
           % (dst, port, auth)).encode())
data = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
print(data.split(b" ", 2)[1].decode())
"""


def ns_run(*cmd):
    return subprocess.run(in_netns(NS, *cmd), capture_output=True, text=True, timeout=60)


class NamespacedProxyd(Proxyd):
    """proxyd inside NS, its admin server on every address there."""

    def __init__(self, **kw):
        super().__init__(**kw)
        i = self.args.index("--admin")
        self.args[i + 1] = "0.0.0.0:%d" % self.admin_port
        self.args = in_netns(NS, *self.args) + ["--admin-allow-remote"]

    def _listening(self, port):
        return ns_run(sys.executable, "-c", "import socket; socket.create_connection("
                      "('127.0.0.1', %d), timeout=5).close()" % port).returncode == 0


@unittest.skipUnless(os.geteuid() == 0, "network namespaces need root")
class MetricsAccessTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        subprocess.run(["ip", "netns", "add", NS], check=True)
        # A class cleanup runs even when the set-up below fails (tearDownClass would not):
        # the namespace never outlives the test.
        cls.addClassCleanup(subprocess.run, ["ip", "netns", "del", NS], check=False)
        for cmd in (["ip", "link", "set", "lo", "up"],
                    ["ip", "addr", "add", SERVER + "/32", "dev", "lo"],
                    ["ip", "addr", "add", ALLOWED + "/32", "dev", "lo"],
                    ["ip", "addr", "add", OTHER + "/32", "dev", "lo"]):
            subprocess.run(in_netns(NS, *cmd), check=True)

    def status_from(self, px, src, token=""):
        r = ns_run(sys.executable, "-c", CLIENT, src, SERVER, str(px.admin_port), token)
        self.assertEqual(r.returncode, 0, r.stderr)
        return int(r.stdout.strip())

    def test_metrics_open_to_loopback_and_allowed_networks_else_token(self):
        with NamespacedProxyd(extra_args=["--metrics-allow", "198.51.100.0/24," + ALLOWED]) as px:
            self.assertEqual(self.status_from(px, "127.0.0.1"), 200)
            self.assertEqual(self.status_from(px, ALLOWED), 200)
            self.assertEqual(self.status_from(px, OTHER), 401)
            self.assertEqual(self.status_from(px, OTHER, token="0" * 64), 401)
            self.assertEqual(self.status_from(px, OTHER, token=px.token), 200)


if __name__ == "__main__":
    unittest.main()
