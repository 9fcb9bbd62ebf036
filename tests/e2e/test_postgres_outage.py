"""A PostgreSQL that goes away under traffic never stops the relay, and loses no log row: proxyd
keeps answering while its database is stopped (its postmaster signalled by PID), the rows wait
in the log spill (memory, then the data folder's log-spill file, 0600), and once the server is
back every row is in the table exactly once (each request has a path of its own).

Runs a PostgreSQL of its own (test_postgres.OwnServer), since it stops
the server, which the other tests' shared one must not be."""
import os
import re
import signal
import stat
import unittest
import urllib.error
import urllib.request

from harness import DnsStub, Origin, Proxyd, read_response, wait_for
import test_postgres

RECORDS = {"allowed.test": "127.0.0.1"}


def metric(px, name):
    """The value of an unlabelled sample of GET /metrics (open to loopback; a counter's is
    NAME_total), or None."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(px.admin_url + "/metrics", timeout=60) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "_total "):
                return float(line.split()[1])
    return None


class PostgresOutageTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.pg = test_postgres.OwnServer("pxpg-outage.")
        cls.pg.start()

    @classmethod
    def tearDownClass(cls):
        cls.pg.stop()

    def stop_server(self):
        """Stops PostgreSQL by its postmaster's PID (fast shutdown: sessions cut at once)."""
        pid = self.pg.postmaster()
        os.kill(pid, signal.SIGINT)

        def gone():
            try:
                os.kill(pid, 0)
                return False
            except ProcessLookupError:
                return True
        self.assertTrue(wait_for(gone, timeout=60), "PostgreSQL did not stop")

    def test_rows_of_an_outage_arrive_once_after_it(self):
        db = "pxoutage_%d" % os.getpid()
        test_postgres.psql("postgres", "CREATE DATABASE %s" % db)
        url = "http://allowed.test:%d/small?req=%d"
        with DnsStub(RECORDS) as dns, Origin() as origin, \
                Proxyd(dns=dns, extra_args=["--db", test_postgres.uri(db)]) as px:
            sent = 0

            def burst(n):
                nonlocal sent
                for _ in range(n):
                    sent += 1
                    status = px.get(url % (origin.port, sent))[0]
                    self.assertEqual(status, 200, "request %d" % sent)

            burst(20)
            rule = px.api("POST", "/api/block", {"domain": "before-the-outage.test"})["rule"]
            self.stop_server()
            # The relay goes on; the rows wait in the spill.
            burst(40)
            # The admin's policy calls say the database is away (503, try again), whichever
            # connection found it: the request's own (a rule that exists is not "no rule"),
            # or proxyd's for the policy (a reload is not "does not compile", 409).
            for method, path, body in (("PATCH", "/api/rules/%d" % rule["id"], {"comment": "c"}),
                                       ("POST", "/api/reload", None)):
                with self.assertRaises(urllib.error.HTTPError, msg=path) as caught:
                    px.api(method, path, body)
                self.assertEqual(caught.exception.code, 503, (path, caught.exception.read()))
                self.assertIsNotNone(caught.exception.headers.get("Retry-After"), path)
            self.assertTrue(wait_for(lambda: (metric(px, "proxyd_log_spilled") or 0) > 0,
                                     timeout=60), "nothing reached the spill")
            spill = os.path.join(px.data_dir, "log-spill")
            self.assertEqual(stat.S_IMODE(os.stat(spill).st_mode), 0o600)
            burst(10)
            self.pg.resume()
            burst(10)

            def arrived():
                out = test_postgres.psql(db, "SELECT count(*), count(DISTINCT path) FROM access_log"
                                             " WHERE path LIKE '/small?req=%'")
                total, distinct = (int(v) for v in out.split("|"))
                return distinct == sent and (total, distinct)
            counts = wait_for(arrived, timeout=60)
            self.assertTrue(counts, "rows missing after the outage")
            self.assertEqual(counts, (sent, sent), "a row written twice")
            self.assertTrue(wait_for(lambda: metric(px, "proxyd_log_spilled") == 0, timeout=60))
            self.assertEqual(metric(px, "proxyd_log_dropped_spill"), 0)
            self.assertEqual(metric(px, "proxyd_log_dropped_db_error"), 0)
            self.assertGreater(metric(px, "proxyd_log_db_errors"), 0)
            # The policy connection came back too: a block made now is in force. (A connection
            # that tried the server during the outage tries again a second after; until then
            # a change is refused with an error, so the block is asked until it is taken.)
            def block():
                try:
                    px.api("POST", "/api/block", {"domain": "allowed.test"})
                    return True
                except urllib.error.HTTPError as e:
                    # 503: the request's own connection is the one down (store_unavailable)
                    self.assertIn(e.code, (500, 503))
                    return False
            self.assertTrue(wait_for(block, timeout=30))
            check = "http://allowed.test:%d/after-the-outage" % origin.port
            self.assertTrue(wait_for(lambda: px.get(check)[0] == 403, timeout=30))
            # Still exactly once, a while later (a late duplicate would show here).
            self.assertEqual(test_postgres.psql(
                db, "SELECT count(*) FROM (SELECT path FROM access_log WHERE path LIKE"
                    " '/small?req=%' GROUP BY path HAVING count(*) > 1) d"), "0")
        test_postgres.psql("postgres", "DROP DATABASE IF EXISTS %s WITH (FORCE)" % db)

    def test_rows_beyond_a_full_spill_are_dropped_and_counted(self):
        """With no room for a spill file (--log-spill-max 0), rows the stopped server did not
        take wait in memory only (16 MiB); those beyond are dropped, counted in /metrics
        (proxyd_log_dropped_spill), and the relay goes on. Once the server is back, the rows
        kept arrive, each once, and with the ones counted dropped they are every request sent."""
        db = "pxspill_%d" % os.getpid()
        test_postgres.psql("postgres", "CREATE DATABASE %s" % db)
        path = "/" + "p" * 1000  # a row near the log's longest (path and query: 1024 bytes)
        with Proxyd(extra_args=["--db", test_postgres.uri(db), "--log-spill-max", "0"],
                    policy="deny domain blocked.test\n") as px:
            sent = 0

            def burst(n):
                """n requests pipelined on one connection; proxyd answers each 403 itself."""
                nonlocal sent
                raw = b"".join(("GET http://blocked.test%s?%d HTTP/1.1\r\nHost: blocked.test"
                                "\r\n\r\n" % (path, sent + i + 1)).encode() for i in range(n))
                with px.connect() as s:
                    s.sendall(raw)
                    rest = b""
                    for i in range(n):
                        status, _, _, rest = read_response(s, rest)
                        self.assertEqual(status, 403, "request %d" % (sent + i + 1))
                sent += n

            burst(10)
            self.stop_server()
            # 16 MiB of rows of about 1.1 kB: some 15,000 requests; at most 40,000 tried.
            for _ in range(80):
                burst(500)
                if (metric(px, "proxyd_log_dropped_spill") or 0) > 0:
                    break
            self.assertGreater(metric(px, "proxyd_log_dropped_spill") or 0, 0,
                               "the spill never filled")
            burst(10)  # the relay goes on with the spill full
            self.pg.resume()

            def rows():
                return int(test_postgres.psql(db, "SELECT count(DISTINCT path) FROM access_log"
                                                  " WHERE host = 'blocked.test'"))
            def dropped():
                return sum(metric(px, "proxyd_log_dropped_" + why) or 0
                           for why in ("spill", "queue_full", "db_error"))
            self.assertTrue(wait_for(lambda: metric(px, "proxyd_log_spilled") == 0
                                     and rows() + dropped() == sent, timeout=120),
                            "rows %d + dropped %d != sent %d" % (rows(), dropped(), sent))
            self.assertEqual(test_postgres.psql(
                db, "SELECT count(*) FROM access_log WHERE host = 'blocked.test'"), str(rows()))
        test_postgres.psql("postgres", "DROP DATABASE IF EXISTS %s WITH (FORCE)" % db)

    def test_settings_stay_in_force_while_the_server_is_away(self):
        """A settings read the stopped server does not answer is not "unset": the block page
        keeps the contact line set in the database, not the config's (none here); /proxy.pac
        names the proxy as last read; GET /api/settings is 503. Before, every poll turn of the
        outage put the config's values in force (and allow_clients too, had the server come
        back between the settings read and the policy's), the PAC file named the config's
        proxy and the settings page showed every setting unset."""
        db = "pxsettings_%d" % os.getpid()
        test_postgres.psql("postgres", "CREATE DATABASE %s" % db)
        with Proxyd(extra_args=["--db", test_postgres.uri(db)],
                    policy="deny domain blocked.test\n") as px:
            def block_page():
                with px.connect() as s:
                    s.sendall(b"GET http://blocked.test/ HTTP/1.1\r\nHost: blocked.test\r\n"
                              b"Connection: close\r\n\r\n")
                    status, _, body = read_response(s)[:3]
                self.assertEqual(status, 403)
                return body.decode("utf-8", "replace")

            def pac():
                opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
                with opener.open(px.admin_url + "/proxy.pac", timeout=60) as r:
                    return r.read().decode()

            px.api("PUT", "/api/settings", {"block_contact": "Call desk 4242",
                                            "pac_proxy": "proxy.office.test:3129"})
            self.assertIn("Call desk 4242", block_page())
            self.assertIn("PROXY proxy.office.test:3129", pac())
            logged_before = len(px.log())
            self.stop_server()
            try:
                # A poll turn (every 250 ms) has read the settings, or tried to.
                self.assertTrue(wait_for(lambda: re.search(
                    r"settings not read|block pages: contact line ''", px.log()[logged_before:]),
                    timeout=60), "no settings read during the outage")
                self.assertIn("Call desk 4242", block_page())
                # The PAC file as last read (not the config's proxy: browsers would go
                # elsewhere), and the settings page says it cannot read them, not "unset".
                self.assertIn("PROXY proxy.office.test:3129", pac())
                with self.assertRaises(urllib.error.HTTPError) as caught:
                    px.api("GET", "/api/settings")
                self.assertEqual(caught.exception.code, 503, caught.exception.read())
            finally:
                self.pg.resume()
        test_postgres.psql("postgres", "DROP DATABASE IF EXISTS %s WITH (FORCE)" % db)


if __name__ == "__main__":
    unittest.main()
