"""proxyd as a system service: the systemd notifications (a datagram socket of the test's own
as $NOTIFY_SOCKET), --user (run as root: bind, then become that user for good), and the
packaged proxyd.conf (every option documented, and proxyd starts with it)."""
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import unittest

from harness import BUILD_DIR, HERE, PROXYD, STATIC_DIR, DnsStub, Origin, Proxyd, free_port

RECORDS = {"allowed.test": "127.0.0.1"}
SOURCE = os.path.join(HERE, "..", "..")
SAMPLE_CONF = os.path.join(BUILD_DIR, "dist", "proxyd.conf")


class NotifySocket:
    """A unix datagram socket that proxyd finds in $NOTIFY_SOCKET, as under systemd."""

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="pxnotify.")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(60)  # a hang guard per message
        return self

    def __exit__(self, *exc):
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def next(self):
        return self.sock.recv(4096).decode()

    def until(self, predicate):
        """Messages until one satisfies predicate (each wait bounded); returns that one."""
        while True:
            msg = self.next()
            if predicate(msg):
                return msg


def proc_ids(pid):
    """The Uid, Gid and Groups lines of /proc/PID/status, as lists of ints."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("Uid", "Gid", "Groups", "CapEff", "CapPrm"):
                out[key] = value.split()
    return out


def privileged_port():
    for port in range(1023, 600, -1):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise unittest.SkipTest("no free port below 1024")


class NotifyTest(unittest.TestCase):
    def test_ready_status_reloading_stopping(self):
        with NotifySocket() as notify, DnsStub(RECORDS) as dns, Origin() as origin:
            os.environ["NOTIFY_SOCKET"] = notify.path
            try:
                px = Proxyd(dns=dns).__enter__()
            finally:
                del os.environ["NOTIFY_SOCKET"]
            try:
                ready = notify.next()
                self.assertTrue(ready.startswith("READY=1\nSTATUS=0 requests"), ready)
                # Ready means both the proxy and the admin server answer.
                self.assertEqual(px.api("GET", "/api/stats")["proxy"]["workers"], 2)
                status, _, _ = px.get("http://allowed.test:%d/small" % origin.port)
                self.assertEqual(status, 200)
                notify.until(lambda m: m.startswith("STATUS=1 requests (0 denied)"))
                os.kill(px.pid, signal.SIGHUP)
                self.assertRegex(notify.until(lambda m: "RELOADING" in m),
                                 r"^RELOADING=1\nMONOTONIC_USEC=\d+$")
                self.assertEqual(notify.until(lambda m: not m.startswith("STATUS=")), "READY=1")
                os.kill(px.pid, signal.SIGTERM)
                self.assertEqual(notify.until(lambda m: not m.startswith("STATUS=")),
                                 "STOPPING=1")
                self.assertEqual(px.stop(), 0)
            finally:
                px.__exit__(None, None, None)


class UserTest(unittest.TestCase):
    def test_unknown_user_is_refused(self):
        with tempfile.TemporaryDirectory() as d:
            out = subprocess.run([PROXYD, "--user", "no-such-user-px", "--data-dir", d + "/var",
                                  "--admin", "off", "--listen", "127.0.0.1:0"],
                                 capture_output=True, text=True, timeout=60)
            self.assertEqual(out.returncode, 1)
            self.assertIn("--user no-such-user-px: no such user", out.stderr)
            self.assertFalse(os.path.exists(d + "/var"))

    @unittest.skipUnless(os.geteuid() == 0, "needs root")
    def test_root_binds_then_runs_as_the_user_for_good(self):
        nobody = pwd.getpwnam("nobody")
        with DnsStub(RECORDS) as dns, Origin() as origin:
            px = Proxyd(dns=dns, policy="deny domain blocked.test\n",
                        extra_args=["--user", "nobody"])
            # The user must reach what proxyd reads after the switch: the policy file in the
            # test's folder, and the pages (the source tree may sit in a private home).
            os.chmod(px.tmp, 0o755)
            pages = os.path.join(px.tmp, "static")
            shutil.copytree(STATIC_DIR, pages)
            px.args += ["--static-dir", pages]
            # A port below 1024, which only root may bind: the listeners come first.
            px.proxy_port = privileged_port()
            px.args[px.args.index("--listen") + 1] = "127.0.0.1:%d" % px.proxy_port
            with px:
                ids = proc_ids(px.pid)
                self.assertEqual(ids["Uid"], [str(nobody.pw_uid)] * 4)
                self.assertEqual(ids["Gid"], [str(nobody.pw_gid)] * 4)
                self.assertNotIn("0", ids.get("Groups", []))
                self.assertEqual(int(ids["CapEff"][0], 16), 0)
                self.assertEqual(int(ids["CapPrm"][0], 16), 0)
                # Everything proxyd created belongs to the user. The first-run password is
                # written a moment after the admin port listens: wait for it (first_password).
                self.assertTrue(px.first_password)
                for name in ("", "proxyd.db", "admin.token", "admin.password"):
                    st = os.stat(os.path.join(px.data_dir, name))
                    self.assertEqual(st.st_uid, nobody.pw_uid, name)
                status, _, body = px.get("http://allowed.test:%d/small" % origin.port)
                self.assertEqual((status, len(body)), (200, 1024))
                self.assertEqual(px.api("GET", "/api/stats")["proxy"]["requests_total"], 1)

    @unittest.skipUnless(os.geteuid() == 0, "needs root")
    def test_data_dir_the_user_cannot_write_is_refused(self):
        with tempfile.TemporaryDirectory() as d:
            os.chmod(d, 0o755)
            os.mkdir(d + "/var", 0o700)  # root's, and it stays root's
            out = subprocess.run([PROXYD, "--user", "nobody", "--data-dir", d + "/var",
                                  "--admin", "off", "--listen", "127.0.0.1:0"],
                                 capture_output=True, text=True, timeout=60)
            self.assertEqual(out.returncode, 1)
            self.assertIn("not usable by user nobody", out.stderr)
            self.assertEqual(os.stat(d + "/var").st_uid, 0)

    @unittest.skipUnless(os.geteuid() == 0 and shutil.which("setpriv"),
                         "needs root and setpriv (util-linux)")
    def test_tproxy_without_cap_net_admin_is_a_start_up_error_naming_it(self):
        # Root, but without the capabilities IP_TRANSPARENT takes (the kernel accepts either).
        with tempfile.TemporaryDirectory() as d:
            out = subprocess.run(["setpriv", "--bounding-set=-net_admin,-net_raw", PROXYD,
                                  "--tproxy", "127.0.0.1:%d" % free_port(), "--data-dir",
                                  d + "/var", "--admin", "off", "--listen", "127.0.0.1:0"],
                                 capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 1, out.stderr)
        self.assertIn("--tproxy needs the capability CAP_NET_ADMIN", out.stderr)
        self.assertIn("AmbientCapabilities=CAP_NET_ADMIN", out.stderr)

    @unittest.skipUnless(os.geteuid() == 0, "needs root")
    def test_tproxy_with_user_keeps_cap_net_admin_and_nothing_else(self):
        px = Proxyd(extra_args=["--user", "nobody", "--tproxy", "127.0.0.1:%d" % free_port()])
        os.chmod(px.tmp, 0o755)
        pages = os.path.join(px.tmp, "static")
        shutil.copytree(STATIC_DIR, pages)
        px.args += ["--static-dir", pages]
        with px:
            ids = proc_ids(px.pid)
            self.assertEqual(ids["Uid"], [str(pwd.getpwnam("nobody").pw_uid)] * 4)
            cap_net_admin = 1 << 12
            self.assertEqual(int(ids["CapEff"][0], 16), cap_net_admin)
            self.assertEqual(int(ids["CapPrm"][0], 16), cap_net_admin)
            self.assertIn("keeping CAP_NET_ADMIN for --tproxy", px.log())


class SampleConfigTest(unittest.TestCase):
    def test_every_option_is_documented(self):
        with open(os.path.join(SOURCE, "proxy", "config.c")) as f:
            names = re.findall(r'^\s*\{"([a-z-]+)", OPT_', f.read(), re.M)
        self.assertGreater(len(names), 20)
        with open(SAMPLE_CONF) as f:
            text = f.read()
        for name in names:
            self.assertRegex(text, r"(?m)^#?%s " % re.escape(name), name)

    def test_proxyd_starts_with_it(self):
        # The packaged data folder and listeners are replaced by the test's own (flags win).
        with DnsStub(RECORDS) as dns, Origin() as origin, \
                Proxyd(dns=dns, extra_args=["--config", SAMPLE_CONF]) as px:
            status, _, _ = px.get("http://allowed.test:%d/small" % origin.port)
            self.assertEqual(status, 200)
            self.assertTrue(os.path.exists(px.db_path))


if __name__ == "__main__":
    unittest.main()
