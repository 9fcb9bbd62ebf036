"""--db postgresql://...: proxyd on PostgreSQL. Requests are logged into it, rules added through
the admin API are in force and stored there, the log search filters, and the rows are in
PostgreSQL's own table (read back with psql). Needs the pg fixture (tests/pg_fixture.sh), which
ctest starts first and passes as PX_TEST_PG; each test makes a database of its own."""
import glob
import os
import subprocess
import tempfile
import unittest

from harness import DnsStub, Origin, Proxyd, wait_for

RECORDS = {"allowed.test": "127.0.0.1", "blocked.test": "127.0.0.1"}
CONNINFO = os.environ.get("PX_TEST_PG", "")
FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pg_fixture.sh")


def psql(dbname, sql):
    """sql run by psql on database dbname of the fixture; its output, unaligned."""
    tools = sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"))
    exe = tools[-1] if tools else "psql"
    out = subprocess.run([exe, "%s dbname=%s" % (CONNINFO, dbname), "-XAtq", "-v",
                          "ON_ERROR_STOP=1", "-c", sql],
                         check=True, capture_output=True, text=True, timeout=60)
    return out.stdout.strip()


def uri(dbname):
    """The fixture's conninfo as a postgresql:// URI (what an admin writes in --db)."""
    kv = dict(p.split("=", 1) for p in CONNINFO.split())
    return "postgresql:///%s?host=%s&port=%s&user=%s" % (dbname, kv["host"], kv["port"],
                                                          kv["user"])


class OwnServer:
    """A PostgreSQL of a test class's own (tests/pg_fixture.sh in a fresh folder), for tests
    that stop or freeze their server, which the shared fixture's must not be. Between start()
    and stop(), CONNINFO names it, so psql() and uri() talk to it."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.folder = None
        self.saved = None

    def _fixture(self, cmd):
        subprocess.run([FIXTURE, cmd, self.folder], check=True, capture_output=True, text=True,
                       timeout=120)

    def start(self):
        global CONNINFO
        self.folder = tempfile.mkdtemp(prefix=self.prefix)
        os.rmdir(self.folder)  # pg_fixture.sh makes it, 0700
        self._fixture("start")
        self.saved = CONNINFO
        CONNINFO = "host=%s port=5432 user=px" % self.folder

    def stop(self):
        """Stops the server and removes its folder; CONNINFO is as before start()."""
        global CONNINFO
        CONNINFO = self.saved
        self._fixture("stop")

    def resume(self):
        """Starts the server again after a test stopped it by its postmaster's PID."""
        self._fixture("resume")

    def postmaster(self):
        """The PID of the server's postmaster (its data folder's postmaster.pid)."""
        with open(os.path.join(self.folder, "data", "postmaster.pid")) as f:
            return int(f.readline())


class FreshDatabase:
    """A TestCase mixin: each test has a database of its own on the fixture's server, self.db
    (db_prefix and this process's PID), made anew before it (one a killed run left is dropped
    first) and dropped after it."""
    db_prefix = "pxe2e"

    def setUp(self):
        self.db = "%s_%d" % (self.db_prefix, os.getpid())
        psql("postgres", "DROP DATABASE IF EXISTS %s" % self.db)
        psql("postgres", "CREATE DATABASE %s" % self.db)

    def tearDown(self):
        psql("postgres", "DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.db)


@unittest.skipUnless(CONNINFO, "needs PX_TEST_PG (the ctest fixture pg)")
class PostgresTest(FreshDatabase, unittest.TestCase):

    def test_logs_rules_and_search_on_postgres(self):
        with DnsStub(RECORDS) as dns, Origin() as origin, \
                Proxyd(dns=dns, extra_args=["--db", uri(self.db), "--node-name", "pg-a"]) as px:
            url = "http://%s:%d/small"
            self.assertEqual(px.get(url % ("allowed.test", origin.port))[0], 200)
            px.api("POST", "/api/block", {"domain": "blocked.test"})
            # The block is in force within a second; poll with a hang guard only.
            self.assertTrue(wait_for(
                lambda: px.get(url % ("blocked.test", origin.port))[0] == 403, timeout=30))
            for _ in range(3):
                self.assertEqual(px.get(url % ("allowed.test", origin.port))[0], 200)

            def logged():
                rows = px.api("GET", "/api/logs?limit=100")["rows"]
                return len(rows) >= 5 and rows

            rows = wait_for(logged, timeout=60)
            self.assertTrue(rows, "rows never reached the log")
            self.assertEqual({r["node"] for r in rows}, {"pg-a"})
            found = px.api("GET", "/api/logs?q=BLOCKED.test&limit=100")["rows"]
            self.assertTrue(found)
            self.assertEqual({r["host"] for r in found}, {"blocked.test"})
            self.assertTrue(all(r["status"] == 403 for r in found))
            # In PostgreSQL's own tables, not a file beside it.
            self.assertEqual(int(psql(self.db, "SELECT count(*) FROM access_log"
                                               " WHERE host = 'allowed.test'")), 4)
            self.assertIn("blocked.test", psql(self.db, "SELECT text FROM rules"))
            self.assertFalse(os.path.exists(os.path.join(px.data_dir, "proxyd.db")))

    def test_a_change_on_one_node_is_in_force_on_the_other(self):
        """Two proxyd on one database: a block made through node A's API is in force on node B
        (403) without anything done on B; B heard of it by LISTEN/NOTIFY. With B's listening
        connection cut by the server, a next change still reaches B (the poll, and B listens
        again)."""
        url = "http://%s:%d/small"
        with DnsStub(RECORDS) as dns, Origin() as origin, \
                Proxyd(dns=dns, extra_args=["--db", uri(self.db), "--node-name", "a"]) as a, \
                Proxyd(dns=dns, extra_args=["--db", uri(self.db), "--node-name", "b"]) as b:
            self.assertEqual(b.get(url % ("allowed.test", origin.port))[0], 200)
            self.assertEqual(b.get(url % ("blocked.test", origin.port))[0], 200)
            a.api("POST", "/api/block", {"domain": "blocked.test"})
            self.assertTrue(wait_for(
                lambda: b.get(url % ("blocked.test", origin.port))[0] == 403, timeout=30))
            self.assertTrue(wait_for(lambda: "policy change announced by PostgreSQL" in b.log(),
                                     timeout=30), "B did not hear of it by NOTIFY")
            self.assertEqual(b.get(url % ("allowed.test", origin.port))[0], 200)
            # Cut every listening connection (both nodes'); the next change reaches B anyway.
            cut = psql(self.db, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                                " WHERE datname = current_database() AND query LIKE 'LISTEN%'")
            self.assertEqual(cut, "2")
            a.api("POST", "/api/block", {"domain": "allowed.test"})
            self.assertTrue(wait_for(
                lambda: b.get(url % ("allowed.test", origin.port))[0] == 403, timeout=30))
            self.assertTrue(wait_for(lambda: "policy notifications: listening again" in b.log(),
                                     timeout=30), "B did not listen again")
            # Both nodes' rows are in the one log, each with its node name.
            self.assertEqual(a.get(url % ("allowed.test", origin.port))[0], 403)

            def both():
                rows = a.api("GET", "/api/logs?limit=200")["rows"]
                return {"a", "b"} <= {r["node"] for r in rows} or None
            self.assertTrue(wait_for(both, timeout=60))
            # Either node's API filters the fleet's log by node.
            only_b = b.api("GET", "/api/logs?limit=200&node=b")["rows"]
            self.assertTrue(only_b)
            self.assertEqual({r["node"] for r in only_b}, {"b"})

    def test_unreachable_database_refuses_to_start_without_echoing_the_password(self):
        bad = "postgresql://px:s3cr3t-word@127.0.0.1:1/nowhere"
        px = Proxyd(extra_args=["--db", bad])
        with self.assertRaises(RuntimeError):
            px.start()
        px.stop()
        self.assertIn("PostgreSQL", px.log())
        self.assertNotIn("s3cr3t-word", px.log())


if __name__ == "__main__":
    unittest.main()
