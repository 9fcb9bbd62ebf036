"""A PostgreSQL that freezes (every process of its cluster stopped with SIGSTOP: its socket
still takes connections and bytes, nothing answers, no keepalive notices) never stops the
relay, the admin's /healthz or proxyd's own stop: requests are answered while it is frozen,
the log rows wait in the spill, /metrics shows the database errors, SIGTERM ends proxyd within
a bound (each wait for the server ends DB_GIVE_UP_MS after the stop asks, proxy/main.c), and a
proxyd started on the same data folder once the server runs again sends the spilled rows,
each once. A server frozen before proxyd starts makes the start fail with a message naming
PostgreSQL (the connection's connect_timeout), never a silent hang.

Runs a PostgreSQL of its own (test_postgres.OwnServer), since it freezes
the server, which the other tests' shared one must not be. Every process it stops it finds by
the postmaster's PID and that process's children, and continues them in a finally."""
import os
import signal
import subprocess
import json
import unittest
import urllib.error
import urllib.request

from harness import DnsStub, Origin, Proxyd, wait_for
import test_postgres
from test_postgres_outage import metric

RECORDS = {"allowed.test": "127.0.0.1"}


def children(pid):
    """The PIDs whose parent is pid (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


class PostgresFreezeTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.pg = test_postgres.OwnServer("pxpg-freeze.")
        cls.pg.start()

    @classmethod
    def tearDownClass(cls):
        cls.pg.stop()

    def setUp(self):
        self.frozen = []

    def tearDown(self):
        self.thaw()

    def freeze(self):
        """SIGSTOP to the postmaster, then to each of its children (a child forked between
        the two reads is stopped by the second round, as the postmaster forks no more)."""
        postmaster = self.pg.postmaster()
        os.kill(postmaster, signal.SIGSTOP)
        self.frozen.append(postmaster)
        for _ in range(2):
            for pid in children(postmaster):
                if pid not in self.frozen:
                    os.kill(pid, signal.SIGSTOP)
                    self.frozen.append(pid)

    def thaw(self):
        for pid in reversed(self.frozen):
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        self.frozen = []

    def healthz(self, px):
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(px.admin_url + "/healthz", timeout=30) as r:
            return r.status

    def test_a_frozen_server_holds_neither_relay_nor_stop(self):
        db = "pxfreeze_%d" % os.getpid()
        test_postgres.psql("postgres", "CREATE DATABASE %s" % db)
        url = "http://allowed.test:%d/small?req=%d"
        with DnsStub(RECORDS) as dns, Origin() as origin:
            px = Proxyd(dns=dns, extra_args=["--db", test_postgres.uri(db)])
            sent = 0

            def burst(n):
                nonlocal sent
                for _ in range(n):
                    sent += 1
                    status = px.get(url % (origin.port, sent), timeout=60)[0]
                    self.assertEqual(status, 200, "request %d" % sent)

            def rows():
                return test_postgres.psql(db, "SELECT count(*), count(DISTINCT path) FROM"
                                              " access_log WHERE path LIKE '/small?req=%'")
            try:
                px.start()
                burst(20)
                self.assertTrue(wait_for(lambda: rows() == "20|20", timeout=60),
                                "the first rows did not arrive")
                self.freeze()
                burst(40)
                self.assertEqual(self.healthz(px), 200)
                # The writer's wait ends at its bound (15 s), the batch goes to the spill.
                self.assertTrue(wait_for(lambda: (metric(px, "proxyd_log_spilled") or 0) > 0,
                                         timeout=60), "nothing reached the spill")
                self.assertGreater(metric(px, "proxyd_log_db_errors"), 0)
                # A request that needs the database: 503 once the server has been seen not
                # answering (the writer's cut above), within the hang guard.
                with self.assertRaises(urllib.error.HTTPError) as caught:
                    px.api("GET", "/api/rules")
                self.assertEqual(caught.exception.code, 503)
                self.assertIsNotNone(caught.exception.headers.get("Retry-After"))
                self.assertIn("PostgreSQL", json.loads(caught.exception.read())["error"])
                burst(10)
                self.assertEqual(self.healthz(px), 200)
                # The stop is not held by the frozen server (a hang guard, not a timing).
                os.kill(px.pid, signal.SIGTERM)
                try:
                    code = px.proc.wait(60)
                except subprocess.TimeoutExpired:
                    self.fail("proxyd did not stop within 60 s of SIGTERM while PostgreSQL was"
                              " frozen:\n" + px.log()[-3000:])
                self.assertEqual(code, 0, px.log()[-3000:])
                self.assertIn("stopped", px.log())
            finally:
                self.thaw()
                px.stop()
            # A new run on the same data folder sends what the spill kept, each row once.
            px.start()
            try:
                burst(5)

                def arrived():
                    total, distinct = (int(v) for v in rows().split("|"))
                    return distinct == sent and (total, distinct)
                counts = wait_for(arrived, timeout=60)
                self.assertTrue(counts, "rows missing after the freeze: %s of %d" % (rows(), sent))
                self.assertEqual(counts, (sent, sent), "a row written twice")
                self.assertTrue(wait_for(lambda: metric(px, "proxyd_log_spilled") == 0,
                                         timeout=60))
            finally:
                px.__exit__(None, None, None)
        test_postgres.psql("postgres", "DROP DATABASE IF EXISTS %s WITH (FORCE)" % db)

    def test_a_stop_while_reconnections_hang_leaves_them_behind(self):
        """A reconnection to a frozen server waits in libpq up to connect_timeout (5 s) for each
        host of the conninfo, past any give-up: with the host named eight times the poll
        thread, the heartbeat and the log writer are still in one when the stop's bounded joins
        end. They are left behind, and the stop frees nothing they still use (a sanitizer build
        checks what they touch once their reconnection fails), nor waits for them."""
        hosts = ",".join([self.pg.folder] * 8)
        px = Proxyd(extra_args=["--db", "host=%s port=5432 user=px dbname=postgres" % hosts])
        try:
            px.start()
            px.api("POST", "/api/block", {"domain": "before.test"})
            self.freeze()
            # A statement is cut at its bound (the threads' next ones reconnect, and each
            # reconnection waits for all eight hosts).
            self.assertTrue(wait_for(lambda: "did not answer within" in px.log()
                                     or "no connection to the server" in px.log(), timeout=120),
                            px.log()[-3000:])
            os.kill(px.pid, signal.SIGTERM)
            try:
                code = px.proc.wait(240)
            except subprocess.TimeoutExpired:
                self.fail("proxyd did not stop within 240 s of SIGTERM while its reconnections"
                          " to a frozen PostgreSQL hung:\n" + px.log()[-3000:])
            self.assertEqual(code, 0, px.log()[-3000:])
            self.assertIn("stopped", px.log())
        finally:
            self.thaw()
            px.stop()
        px.__exit__(None, None, None)  # a sanitizer build's findings fail the test

    def test_a_sighup_does_not_wait_for_a_frozen_server(self):
        """SIGHUP puts the config file's live settings in force on the main thread at once;
        only the settings table's overlay waits for the poll thread, here held by reconnections
        to a frozen server (the host named eight times: connect_timeout for each)."""
        hosts = ",".join([self.pg.folder] * 8)
        conf = os.path.join(self.pg.folder, "sighup.conf")
        with open(conf, "w") as f:
            f.write("max-request-line 8192\n")
        with DnsStub(RECORDS) as dns, Origin() as origin:
            px = Proxyd(dns=dns, extra_args=[
                "--db", "host=%s port=5432 user=px dbname=postgres" % hosts, "--config", conf])
            long_url = "http://allowed.test:%d/small?%s" % (origin.port, "q" * 3000)
            try:
                px.start()
                self.assertEqual(px.get(long_url)[0], 200)
                self.freeze()
                self.assertTrue(wait_for(lambda: "did not answer within" in px.log()
                                         or "no connection to the server" in px.log(),
                                         timeout=120), px.log()[-3000:])
                with open(conf, "w") as f:
                    f.write("max-request-line 1000\n")
                os.kill(px.pid, signal.SIGHUP)
                # A hang guard: the poll thread stays in its reconnections far longer.
                self.assertTrue(wait_for(lambda: px.get(long_url)[0] == 414, timeout=60),
                                px.log()[-3000:])
                self.assertIn("settings reloaded", px.log())
            finally:
                self.thaw()
                px.stop()
            px.__exit__(None, None, None)

    def test_a_server_frozen_at_start_is_refused_clearly(self):
        px = Proxyd(extra_args=["--db", test_postgres.uri("postgres")])
        self.freeze()
        try:
            with self.assertRaises(RuntimeError) as caught:
                px.start()  # its own hang guard: 60 s
        finally:
            self.thaw()
            px.stop()
        self.assertIn("proxyd exited with 1", str(caught.exception))
        self.assertRegex(px.log(), r"PostgreSQL: .*timeout")


if __name__ == "__main__":
    unittest.main()
