"""End-to-end tests of admins' API tokens: made with proxyctl (secret printed once, only a
hash stored), a token acts with its owner's role (a viewer's token reads but its POST is 403,
even after its owner is given another role the answer follows), the audit names the token,
a revoked token is 401 at once, tokens go with their owner, and admin.token still works."""
import json
import os
import sqlite3
import subprocess
import tempfile
import unittest
import urllib.error
import urllib.request

from harness import PROXYCTL, Proxyd


def call(px, method, path, token, body=None):
    """(status, decoded JSON) of one admin API call with a bearer token."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(px.admin_url + path, data=data, method=method)
    req.add_header("Authorization", "Bearer " + token)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=60) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


class TokensTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.px = Proxyd().__enter__()
        cls.tmp = tempfile.TemporaryDirectory(prefix="pxtok.")
        pw = os.path.join(cls.tmp.name, "pw")
        with open(pw, "w") as f:
            f.write("vera-password-1\n")
        for name, role in (("vera", "viewer"), ("otto", "operator")):
            cls.ctl("admin", "add", name, "--role", role, "--password-file", pw)

    @classmethod
    def tearDownClass(cls):
        cls.px.__exit__(None, None, None)
        cls.tmp.cleanup()

    @classmethod
    def ctl(cls, *args, token=None, expect=0):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PROXYCTL_", "PROXYD_"))}
        cmd = [PROXYCTL, "--url", cls.px.admin_url, "--data-dir", cls.px.data_dir]
        if token:
            cmd += ["--token", token]
        r = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=30, env=env)
        if r.returncode != expect:
            raise AssertionError("proxyctl %s: exit %d\n%s%s" % (args, r.returncode, r.stdout, r.stderr))
        return r.stdout, r.stderr

    def audit(self, action):
        return [(r["actor"], r["detail"]) for r in self.px.api("GET", "/api/audit?limit=1000")["rows"]
                if r["action"] == action]

    def test_viewer_token_reads_but_cannot_change(self):
        out, err = self.ctl("token", "add", "vera-ro", "--owner", "vera")
        secret = out.strip()
        self.assertRegex(secret, r"^pxt_[0-9a-f]{64}$")
        self.assertIn("shown", err)
        # Only a hash is stored: the secret is nowhere in the database file.
        with open(self.px.db_path, "rb") as f:
            stored = f.read()
        self.assertNotIn(secret[4:].encode(), stored)

        status, body = call(self.px, "GET", "/api/rules", secret)
        self.assertEqual(status, 200, body)
        status, body = call(self.px, "POST", "/api/block", secret, {"domain": "x.example"})
        self.assertEqual(status, 403, body)
        self.assertIn("viewer", body["error"])
        self.assertNotIn("deny domain x.example",
                         [r["text"] for r in self.px.api("GET", "/api/rules")["rules"]])

    def test_token_acts_with_owner_role_now_and_audit_names_it(self):
        out, _ = self.ctl("token", "add", "ci-bot", "--owner", "otto")
        secret = out.strip()
        status, body = call(self.px, "POST", "/api/block", secret, {"domain": "ci.example"})
        self.assertEqual(status, 201, body)
        rows = [r for r in self.px.api("GET", "/api/audit?limit=1000")["rows"]
                if "ci.example" in r["detail"]]
        self.assertTrue(rows, "no audit row for the block")
        self.assertEqual(rows[0]["actor"], "otto/token:ci-bot")
        self.assertIn(("token", "otto/token:ci-bot"), self.audit("token.add"))
        # The owner's role as it is at each request: made a viewer, the same token is refused.
        self.ctl("admin", "role", "otto", "viewer")
        try:
            status, _ = call(self.px, "POST", "/api/unblock", secret, {"domain": "ci.example"})
            self.assertEqual(status, 403)
        finally:
            self.ctl("admin", "role", "otto", "operator")
        status, body = call(self.px, "POST", "/api/unblock", secret, {"domain": "ci.example"})
        self.assertEqual(status, 200, body)

    def test_revoked_token_is_401_at_once(self):
        secret = self.ctl("token", "add", "short-lived", "--owner", "vera")[0].strip()
        self.assertEqual(call(self.px, "GET", "/api/rules", secret)[0], 200)
        out, _ = self.ctl("token", "del", "short-lived")
        self.assertEqual(out, "revoked token short-lived\n")
        self.assertEqual(call(self.px, "GET", "/api/rules", secret)[0], 401)
        self.assertIn(("token", "vera/token:short-lived"), self.audit("token.delete"))
        self.ctl("token", "del", "short-lived", expect=1)

    def test_list_shows_names_and_use_never_secrets(self):
        secret = self.ctl("token", "add", "lister", "--owner", "vera")[0].strip()
        call(self.px, "GET", "/api/stats", secret)
        out, _ = self.ctl("token", "list")
        line = [l for l in out.splitlines() if l.startswith("lister ")]
        self.assertEqual(len(line), 1, out)
        self.assertIn("vera", line[0])
        self.assertNotIn("never", line[0])  # used once just now
        self.assertNotIn(secret, out)
        js = json.loads(self.ctl("--json", "token", "list")[0])
        self.assertNotIn(secret, json.dumps(js))
        # A viewer's token sees its owner's tokens only, and cannot revoke another's.
        other = self.ctl("token", "add", "otto-list", "--owner", "otto")[0].strip()
        status, body = call(self.px, "GET", "/api/tokens", secret)
        self.assertEqual(status, 200)
        self.assertEqual({t["owner"] for t in body["tokens"]}, {"vera"})
        self.assertEqual(call(self.px, "DELETE", "/api/tokens/otto-list", secret)[0], 404)
        self.assertEqual(call(self.px, "GET", "/api/rules", other)[0], 200)
        # Nor make one for another admin; for itself it may.
        status, body = call(self.px, "POST", "/api/tokens", secret, {"name": "x1", "owner": "otto"})
        self.assertEqual(status, 403, body)
        status, body = call(self.px, "POST", "/api/tokens", secret, {"name": "vera-own"})
        self.assertEqual((status, body["owner"]), (201, "vera"), body)

    def test_refusals(self):
        # admin.token belongs to no account: an owner must be named.
        _, err = self.ctl("token", "add", "nobody", expect=1)
        self.assertIn("owner", err)
        self.ctl("token", "add", "dup", "--owner", "vera")
        _, err = self.ctl("token", "add", "dup", "--owner", "vera", expect=1)
        self.assertIn("vera has a token named dup already", err)
        _, err = self.ctl("token", "add", "ghost-t", "--owner", "ghost", expect=1)
        self.assertIn("no admin ghost", err)
        for bad in ("pxt_" + "0" * 64, "pxt_short", "pxt_" + "g" * 64, "nonsense-token-value-xx"):
            self.assertEqual(call(self.px, "GET", "/api/rules", bad)[0], 401, bad)

    def test_token_names_are_each_admin_s_own(self):
        """Two admins may each have a token "ci": the second is made (a 409 told one admin
        another's token names), each acts as its owner and is revoked as its owner's."""
        vera = self.ctl("token", "add", "ci", "--owner", "vera")[0].strip()
        status, body = call(self.px, "POST", "/api/tokens", vera, {"name": "ci"})
        self.assertEqual(status, 409, body)
        self.assertEqual(body["error"], "vera has a token named ci already")
        otto = self.ctl("token", "add", "ci", "--owner", "otto")[0].strip()
        self.assertEqual(call(self.px, "GET", "/api/tokens", otto)[1]["tokens"][0]["owner"], "otto")
        # Each caller without the admin role revokes its own.
        status, _ = call(self.px, "DELETE", "/api/tokens/ci?owner=vera", otto)
        self.assertEqual(status, 404)
        # The admin role names the owner when several have the name.
        _, err = self.ctl("token", "del", "ci", expect=1)
        self.assertIn("several admins have a token named ci", err)
        self.assertEqual(call(self.px, "GET", "/api/rules", vera)[0], 200)
        self.ctl("token", "del", "ci", "--owner", "vera")
        self.assertEqual(call(self.px, "GET", "/api/rules", vera)[0], 401)
        self.assertEqual(call(self.px, "GET", "/api/rules", otto)[0], 200)
        self.assertIn(("token", "vera/token:ci"), self.audit("token.delete"))
        status, body = call(self.px, "DELETE", "/api/tokens/ci", otto)
        self.assertEqual((status, body), (200, {"deleted": "ci"}))
        self.assertEqual(call(self.px, "GET", "/api/rules", otto)[0], 401)

    def test_tokens_go_with_their_owner(self):
        pw = os.path.join(self.tmp.name, "pw")
        self.ctl("admin", "add", "temp", "--role", "admin", "--password-file", pw)
        secret = self.ctl("token", "add", "temp-t", "--owner", "temp")[0].strip()
        self.assertEqual(call(self.px, "GET", "/api/rules", secret)[0], 200)
        self.ctl("admin", "del", "temp")
        self.assertEqual(call(self.px, "GET", "/api/rules", secret)[0], 401)
        db = sqlite3.connect("file:%s?mode=ro" % self.px.db_path, uri=True, timeout=5)
        try:
            self.assertEqual(db.execute("SELECT count(*) FROM admin_tokens WHERE owner = 'temp'")
                             .fetchone()[0], 0)
        finally:
            db.close()

    def test_password_reset_by_another_admin_revokes_tokens(self):
        pw = os.path.join(self.tmp.name, "pw")
        self.ctl("admin", "add", "reset-me", "--role", "operator", "--password-file", pw)
        secret = self.ctl("token", "add", "reset-t", "--owner", "reset-me")[0].strip()
        self.assertEqual(call(self.px, "GET", "/api/rules", secret)[0], 200)
        # Another admin sets its password (as after a lost or leaked one): its tokens go too.
        status, body = call(self.px, "PUT", "/api/admins/reset-me", self.px.token,
                            {"password": "a-new-password-2"})
        self.assertEqual(status, 200, body)
        self.assertEqual(call(self.px, "GET", "/api/rules", secret)[0], 401)
        self.assertIn(("token", "reset-me: 1 token"), self.audit("token.revoke"))
        out, _ = self.ctl("token", "list")
        self.assertNotIn("reset-t", out)


if __name__ == "__main__":
    unittest.main()
