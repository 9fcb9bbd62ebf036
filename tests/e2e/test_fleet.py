"""Several proxyd nodes on one PostgreSQL (the pg fixture, tests/pg_fixture.sh): an admin's
login session lives in the database, so it works on every node and its end (logout, role
change, password reset) is seen by all of them."""
import os
import unittest

from harness import Proxyd
from test_first_run import Admin
from test_postgres import CONNINFO, psql, uri


def node(db, name, **kw):
    return Proxyd(extra_args=["--db", uri(db), "--node-name", name], **kw)


@unittest.skipUnless(CONNINFO, "needs PX_TEST_PG (the ctest fixture pg)")
class FleetTest(unittest.TestCase):

    def setUp(self):
        self.db = "pxfleet_%d" % os.getpid()
        psql("postgres", "DROP DATABASE IF EXISTS %s" % self.db)
        psql("postgres", "CREATE DATABASE %s" % self.db)

    def tearDown(self):
        psql("postgres", "DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.db)

    def test_a_session_works_on_every_node_and_ends_on_all(self):
        with node(self.db, "a") as a, node(self.db, "b") as b:
            a.api("PUT", "/api/admins/alice", {"password": "alice-pass-1", "role": "operator"})
            on_a = Admin(a)
            self.assertEqual(on_a.login("alice-pass-1", user="alice")[0], 200)
            # The same cookie on node B: the same session, CSRF token and all.
            on_b = Admin(b)
            on_b.cookie, on_b.csrf = on_a.cookie, on_a.csrf
            status, session = on_b.call("GET", "/api/session")
            self.assertEqual(status, 200)
            self.assertEqual((session["user"], session["role"]), ("alice", "operator"))
            self.assertEqual(session["csrf"], on_a.csrf)
            self.assertEqual(on_b.call("POST", "/api/block", {"domain": "x.test"})[0], 201)
            # Only a hash of the id is stored.
            sid = on_a.cookie.split("=", 1)[1]
            self.assertEqual(psql(self.db, "SELECT count(*) FROM admin_sessions"), "1")
            self.assertEqual(psql(self.db, "SELECT count(*) FROM admin_sessions WHERE"
                                           " position('%s' in encode(hash, 'escape')) > 0"
                                           " OR encode(hash, 'hex') = '%s'" % (sid, sid)), "0")
            # Logged out on B: A refuses the cookie at once.
            self.assertEqual(on_b.call("POST", "/api/logout")[0], 200)
            self.assertEqual(on_a.call("GET", "/api/session")[0], 401)
            self.assertEqual(on_b.call("GET", "/api/session")[0], 401)

            # A role change made on B ends the session on A.
            self.assertEqual(on_a.login("alice-pass-1", user="alice")[0], 200)
            self.assertEqual(on_a.call("GET", "/api/session")[0], 200)
            b.api("PUT", "/api/admins/alice/role", {"role": "viewer"})
            self.assertEqual(on_a.call("GET", "/api/session")[0], 401)
            # A password reset by another admin on B ends it on A too.
            self.assertEqual(on_a.login("alice-pass-1", user="alice")[1]["role"], "viewer")
            b.api("PUT", "/api/admins/alice", {"password": "alice-pass-2"})
            self.assertEqual(on_a.call("GET", "/api/session")[0], 401)
            # So does deleting the account.
            self.assertEqual(on_a.login("alice-pass-2", user="alice")[0], 200)
            b.api("DELETE", "/api/admins/alice")
            self.assertEqual(on_a.call("GET", "/api/session")[0], 401)
            self.assertEqual(psql(self.db, "SELECT count(*) FROM admin_sessions"), "0")


if __name__ == "__main__":
    unittest.main()
