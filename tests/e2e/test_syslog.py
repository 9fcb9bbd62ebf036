"""End-to-end tests of --syslog: each access record reaches a UDP collector and a TCP
collector (RFC 6587 octet counting) as one RFC 5424 message, checked by a strict pattern for
the header and structured data, with the fields of the traffic sent (escaping of ] " \\ in
what the client chose); a dead collector never holds up the proxy, and what it could not
take is counted in /metrics; a bad target stops the start with a message naming it.
proxyd's own lines (start-up, policy reloads, SIGHUP, shutdown) reach the same collector as
RFC 5424 messages of MSGID "daemon" with their severity; under systemd (JOURNAL_STREAM naming
stderr) each stderr line starts with its syslog priority for the journal."""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import unittest
import urllib.request

from harness import PROXYD, DnsStub, Origin, Proxyd, wait_for

# RFC 5424: <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD [SP MSG]
HEADER = re.compile(
    r'^<(?P<pri>\d{1,3})>1 (?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (?P<host>[!-~]{1,255}) '
    r'proxyd (?P<pid>\d+) access (?P<sd>\[access@32473(?: [!-~]+?="(?:[^"\\\]]|\\["\\\]])*")+\])'
    r'(?: (?P<msg>.*))?$', re.S)
PARAM = re.compile(r' ([!-~]+?)="((?:[^"\\\]]|\\["\\\]])*)"')
# proxyd's own events: no structured data, the line as MSG.
DAEMON = re.compile(
    r'^<(?P<pri>\d{1,3})>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (?P<host>[!-~]{1,255}) '
    r'proxyd (?P<pid>\d+) daemon - (?P<msg>[^\x00-\x1f]*)$')


def access_msgs(col):
    """The collector's access records (it gets proxyd's own lines too)."""
    return [m for m in col.msgs if " access [" in m]


def parse(msg):
    m = HEADER.match(msg)
    assert m, "not an RFC 5424 message with our SD: %r" % msg
    fields = {k: re.sub(r'\\(["\\\]])', r"\1", v) for k, v in PARAM.findall(m.group("sd"))}
    return m, fields


class Collector:
    """A UDP or TCP syslog collector on 127.0.0.1 keeping the messages it gets."""

    def __init__(self, kind):
        self.kind = kind
        self.msgs = []
        self.sock = socket.socket(socket.AF_INET,
                                  socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.target = "%s://127.0.0.1:%d" % (kind, self.port)
        if kind == "tcp":
            self.sock.listen(4)
        self.sock.settimeout(0.2)
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop:
            try:
                if self.kind == "udp":
                    self.msgs.append(self.sock.recv(65536).decode())
                    continue
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            # proxyd holds two connections: its access records' and its own lines'.
            threading.Thread(target=self._read_frames, args=(conn,), daemon=True).start()

    def _read_frames(self, conn):
        buf = b""
        conn.settimeout(0.2)
        while not self.stop:
            try:
                data = conn.recv(65536)
            except socket.timeout:
                continue
            if not data:
                break
            buf += data
            while True:
                m = re.match(rb"(\d+) ", buf)
                if not m:
                    assert not buf or re.match(rb"\d*$", buf), "bad framing: %r" % buf[:80]
                    break
                n = int(m.group(1))
                if len(buf) < m.end() + n:
                    break
                self.msgs.append(buf[m.end():m.end() + n].decode())
                buf = buf[m.end() + n:]
        conn.close()

    def close(self):
        self.stop = True
        self.thread.join(5)
        self.sock.close()


def metric(px, name):
    req = urllib.request.Request(px.admin_url + "/metrics")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=60) as r:
        for line in r.read().decode().splitlines():
            if line.startswith((name + " ", name + "_total ")):
                return float(line.split()[1])
    raise AssertionError("no metric " + name)


class SyslogTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dns = DnsStub({"allowed.test": "127.0.0.1", "blocked.test": "127.0.0.1"}).__enter__()
        cls.origin = Origin().__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.origin.__exit__()
        cls.dns.__exit__()

    def traffic_and_check(self, kind):
        col = Collector(kind)
        try:
            with Proxyd(dns=self.dns, policy="deny domain blocked.test\n",
                        extra_args=["--syslog", col.target, "--node-name", "node-7"]) as px:
                user_path = '/small?q="a]b\\c"'
                status, _, _ = px.get("http://allowed.test:%d%s" % (self.origin.port, user_path))
                self.assertEqual(status, 200)
                status, _, _ = px.get("http://blocked.test:%d/x" % self.origin.port)
                self.assertEqual(status, 403)
                self.assertTrue(wait_for(lambda: len(access_msgs(col)) >= 2, timeout=60),
                                col.msgs)
                parsed = [parse(m) for m in access_msgs(col)]
                by_host = {f["host"]: (m, f) for m, f in parsed}
                m, f = by_host["allowed.test"]
                self.assertEqual(int(m.group("pri")), 3 * 8 + 6)
                self.assertEqual(m.group("host"), "node-7")
                self.assertEqual(int(m.group("pid")), px.pid)
                self.assertEqual((f["method"], f["scheme"], f["path"], f["status"], f["decision"],
                                  f["port"], f["client"], f["node"]),
                                 ("GET", "http", user_path, "200", "allow",
                                  str(self.origin.port), "127.0.0.1", "node-7"))
                self.assertGreater(int(f["bytes_down"]), 1024)  # the 1 KiB body and its head
                m, f = by_host["blocked.test"]
                self.assertEqual(int(m.group("pri")), 3 * 8 + 5)
                self.assertEqual((f["status"], f["decision"], f["path"]), ("403", "deny", "/x"))
                self.assertRegex(f["error"], r"^rule \d+: deny domain blocked.test")
                self.assertNotEqual(f["rule_id"], "0")
                self.assertEqual(m.group("msg"), "deny GET blocked.test:%d 403" % self.origin.port)
                # The escapes themselves, as sent.
                raw = [x for x in access_msgs(col) if "allowed.test" in x][0]
                self.assertIn(r'path="/small?q=\"a\]b\\c\""', raw)
                self.assertTrue(wait_for(lambda: metric(px, "proxyd_log_syslog_sent") >= 2,
                                         timeout=60))
                self.assertEqual(metric(px, "proxyd_log_syslog_dropped"), 0)
        finally:
            col.close()

    def test_udp_collector_gets_each_record(self):
        self.traffic_and_check("udp")

    def test_tcp_collector_gets_octet_counted_frames(self):
        self.traffic_and_check("tcp")

    def test_dead_tcp_collector_drops_and_counts_never_blocks(self):
        # A port nobody listens on: every connect is refused.
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        with Proxyd(dns=self.dns, extra_args=["--syslog", "tcp://127.0.0.1:%d" % port]) as px:
            for i in range(20):
                status, _, _ = px.get("http://allowed.test:%d/small?i=%d" % (self.origin.port, i))
                self.assertEqual(status, 200)
            # Every request was answered at once and every row reached SQLite; the frames
            # wait (bounded) for a collector that may come back, none counted as sent.
            self.assertTrue(wait_for(lambda: metric(px, "proxyd_log_written") >= 20, timeout=60))
            self.assertEqual(metric(px, "proxyd_log_syslog_sent"), 0)

    def test_missing_local_socket_counts_drops(self):
        with Proxyd(dns=self.dns, extra_args=["--syslog", "/nonexistent-dir/log.sock"]) as px:
            for i in range(5):
                status, _, _ = px.get("http://allowed.test:%d/small?i=%d" % (self.origin.port, i))
                self.assertEqual(status, 200)
            self.assertTrue(wait_for(lambda: metric(px, "proxyd_log_syslog_dropped") >= 5,
                                     timeout=60))
            self.assertEqual(metric(px, "proxyd_log_syslog_sent"), 0)

    def test_daemon_events_reach_the_collector(self):
        col = Collector("udp")
        try:
            px = Proxyd(dns=self.dns, extra_args=["--syslog", col.target, "--node-name", "node-9"])
            with px:
                def daemon(words):
                    for m in col.msgs:
                        d = DAEMON.match(m)
                        if d and words in d.group("msg"):
                            return d
                    return None
                start = wait_for(lambda: daemon("workers, admin"), timeout=60)
                self.assertTrue(start, "no start-up line among %r" % col.msgs)
                self.assertEqual(int(start.group("pri")), 3 * 8 + 6)  # daemon.info
                self.assertEqual(start.group("host"), "node-9")
                self.assertEqual(int(start.group("pid")), px.pid)
                self.assertRegex(start.group("msg"), r"^proxyd \S+: 2 workers, admin ")
                # A policy reload asked for, a policy change, a SIGHUP.
                px.api("POST", "/api/reload", {})
                self.assertTrue(wait_for(lambda: daemon("policy reloaded on request"),
                                         timeout=60), col.msgs)
                px.api("POST", "/api/block", {"domain": "syslog.test"})
                self.assertTrue(wait_for(lambda: daemon("policy changed by the admin server"),
                                         timeout=60), col.msgs)
                os.kill(px.pid, signal.SIGHUP)
                self.assertTrue(wait_for(lambda: daemon("settings reloaded"), timeout=60))
                # Every message from proxyd is one of the two kinds, none malformed.
                for m in col.msgs:
                    self.assertTrue(DAEMON.match(m) or HEADER.match(m), m)
                self.assertEqual(px.stop(), 0)
            self.assertTrue(wait_for(lambda: daemon("stopped"), timeout=60), col.msgs)
        finally:
            col.close()

    def test_journal_lines_carry_their_priority(self):
        px = Proxyd(dns=self.dns, extra_args=["--allow-clients", "not-a-network"])
        with open(px.log_path, "ab"):
            pass
        sb = os.stat(px.log_path)
        old = os.environ.get("JOURNAL_STREAM")
        os.environ["JOURNAL_STREAM"] = "%d:%d" % (sb.st_dev, sb.st_ino)
        try:
            with self.assertRaises(RuntimeError):  # the bad networks stop the start
                px.start()
        finally:
            if old is None:
                del os.environ["JOURNAL_STREAM"]
            else:
                os.environ["JOURNAL_STREAM"] = old
            px.stop()
        lines = px.log().splitlines()
        shutil.rmtree(px.tmp, ignore_errors=True)
        self.assertTrue(lines)
        for line in lines:
            self.assertRegex(line, r"^<[3467]>\S")  # no time stamp: the journal's own
        self.assertTrue(any(line.startswith("<3>") and "not-a-network" in line for line in lines),
                        lines)

    def test_bad_target_is_refused_at_start(self):
        for target, words in (("ftp://x:1", "expected /path/to/socket"),
                              ("udp://127.0.0.1", "needs a port"),
                              ("tcp://127.0.0.1:99999", "needs a port")):
            # A data folder of its own: runs of other builds beside this one use their own.
            with tempfile.TemporaryDirectory(prefix="pxsyslog.") as data:
                r = subprocess.run([PROXYD, "--listen", "127.0.0.1:0", "--admin", "off",
                                    "--data-dir", data, "--syslog", target],
                                   capture_output=True, text=True, timeout=60)
                # Refused before anything is opened: no database, no token, nothing.
                self.assertEqual(os.listdir(data), [], target)
            self.assertNotEqual(r.returncode, 0, target)
            self.assertIn(words, r.stderr, target)


if __name__ == "__main__":
    unittest.main()
