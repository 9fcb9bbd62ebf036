"""The first-run admin password: proxyd writes it to <data-dir>/admin.password (mode 0600),
never to its log; the first login with it may only choose a new password; the file is
deleted once the password changes, through the API (as the web UI does) or proxyctl."""
import json
import os
import stat
import subprocess
import tempfile
import unittest
import urllib.error
import urllib.request

from harness import PROXYCTL, DnsStub, Origin, Proxyd, wait_for


class Admin:
    """A browser-like client of the admin API: the session cookie and its CSRF token."""

    def __init__(self, px):
        self.px = px
        self.cookie = None
        self.csrf = ""
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def call(self, method, path, body=None):
        """Returns (status, decoded JSON answer or None)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.px.admin_url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.cookie:
            req.add_header("Cookie", self.cookie)
        if method != "GET":
            req.add_header("X-CSRF-Token", self.csrf)
        try:
            with self.opener.open(req, timeout=30) as r:
                status, raw, headers = r.status, r.read(), r.headers
        except urllib.error.HTTPError as e:
            status, raw, headers = e.code, e.read(), e.headers
        if path == "/api/login" and status == 200:
            self.cookie = headers["Set-Cookie"].split(";")[0]
        answer = json.loads(raw) if raw else None
        if path == "/api/login" and status == 200:
            self.csrf = answer["csrf"]
        return status, answer

    def login(self, password, user="admin"):
        return self.call("POST", "/api/login", {"user": user, "password": password})


class FirstRunTest(unittest.TestCase):
    def test_password_is_in_a_0600_file_and_not_in_the_log(self):
        with Proxyd() as px:
            password = px.first_password  # waits: the file comes after the port listens
            mode = os.stat(px.first_password_path).st_mode
            self.assertEqual(stat.S_IMODE(mode), 0o600)
            self.assertEqual(len(password), 16)
            self.assertNotIn(password, px.log())
            # The log says where it is (the line may follow the listening sockets).
            self.assertTrue(wait_for(lambda: px.first_password_path in px.log(), timeout=60),
                            px.log())
            self.assertNotIn(password, px.log())

    def test_first_login_must_change_the_password_then_the_file_goes(self):
        with Proxyd() as px:
            password = px.first_password
            admin = Admin(px)
            status, answer = admin.login(password)
            self.assertEqual(status, 200)
            self.assertTrue(answer["must_change_password"])
            self.assertTrue(admin.call("GET", "/api/session")[1]["must_change_password"])
            # Nothing else until then.
            status, answer = admin.call("GET", "/api/rules")
            self.assertEqual(status, 403)
            self.assertEqual(answer["field"], "password")
            self.assertEqual(admin.call("POST", "/api/block", {"domain": "x.test"})[0], 403)
            self.assertTrue(os.path.exists(px.first_password_path))

            status, _ = admin.call("PUT", "/api/admins/admin", {"password": "chosen-by-admin"})
            self.assertEqual(status, 200)
            self.assertFalse(os.path.exists(px.first_password_path))
            self.assertEqual(admin.call("GET", "/api/rules")[0], 200)
            self.assertFalse(admin.call("GET", "/api/session")[1]["must_change_password"])
            self.assertEqual(Admin(px).login(password)[0], 401)
            status, answer = Admin(px).login("chosen-by-admin")
            self.assertEqual((status, answer["must_change_password"]), (200, False))

            # A restart creates no new password and no file.
            px.stop()
            px.start()
            self.assertEqual(Admin(px).login("chosen-by-admin")[0], 200)
            self.assertFalse(os.path.exists(px.first_password_path))
            self.assertEqual(px.log().count("first run"), 1)

    def test_proxyctl_admin_passwd_deletes_the_file(self):
        with Proxyd() as px:
            self.assertEqual(len(px.first_password), 16)
            r = subprocess.run([PROXYCTL, "--url", px.admin_url, "--data-dir", px.data_dir,
                                "admin", "passwd", "admin", "--password-stdin"],
                               input="set-by-proxyctl\n", capture_output=True, text=True,
                               timeout=30, cwd=tempfile.gettempdir())
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertFalse(os.path.exists(px.first_password_path))
            status, answer = Admin(px).login("set-by-proxyctl")
            self.assertEqual((status, answer["must_change_password"]), (200, False))


class LoginAuditTest(unittest.TestCase):
    def test_a_login_the_database_refused_is_not_audited_as_one(self):
        # The session is a row in the database: a database that refuses it refuses the login
        # (500), and the audit log must not say the admin logged in.
        import sqlite3
        with Proxyd() as px:
            px.api("PUT", "/api/admins/alice", {"password": "alice-pass-1", "role": "operator"})
            db = sqlite3.connect(px.db_path, timeout=60, isolation_level=None)
            db.execute("CREATE TRIGGER refuse_sessions BEFORE INSERT ON admin_sessions"
                       " BEGIN SELECT RAISE(ABORT, 'refused by the test'); END")
            self.assertEqual(Admin(px).login("alice-pass-1", user="alice")[0], 500)

            def logins():
                rows = px.api("GET", "/api/audit?limit=1000")["rows"]
                return [a for a in rows if a["actor"] == "alice" and a["action"] == "login"]
            self.assertEqual(logins(), [])
            # Taken again, the login goes in and is audited once.
            db.execute("DROP TRIGGER refuse_sessions")
            db.close()
            self.assertEqual(Admin(px).login("alice-pass-1", user="alice")[0], 200)
            self.assertEqual(len(logins()), 1)


if __name__ == "__main__":
    unittest.main()


class FirstRunUnwritableTest(unittest.TestCase):
    def test_first_admin_that_cannot_be_written_does_not_stop_the_proxy(self):
        """The first-run account cannot be written (its password file cannot be: a folder
        stands in its place, as a full disk would refuse it): proxyd starts anyway, relays,
        says why, and makes the account once the way is clear."""
        with DnsStub(records={"first.test": "127.0.0.1"}) as dns, Origin() as origin:
            px = Proxyd(dns=dns)
            os.makedirs(os.path.join(px.first_password_path, "in-the-way"))
            with px:
                self.assertTrue(wait_for(
                    lambda: "cannot create the first admin account" in px.log(), timeout=60),
                    px.log()[-2000:])
                self.assertIsNone(px.proc.poll(), "proxyd exited:\n" + px.log()[-2000:])
                status, _, _ = px.get("http://first.test:%d/small" % origin.port)
                self.assertEqual(status, 200)
                self.assertEqual(Admin(px).login("anything")[0], 401)
                # The retry makes it once the way is clear, and says where the password is.
                os.rmdir(os.path.join(px.first_password_path, "in-the-way"))
                os.rmdir(px.first_password_path)
                self.assertTrue(wait_for(lambda: "first run:" in px.log()
                                         and os.path.isfile(px.first_password_path), timeout=60),
                                px.log()[-2000:])
                with open(px.first_password_path) as f:
                    password = f.read().strip()
                status, answer = Admin(px).login(password)
                self.assertEqual(status, 200, answer)
                self.assertTrue(answer["must_change_password"])
                self.assertEqual(px.stop(), 0)
