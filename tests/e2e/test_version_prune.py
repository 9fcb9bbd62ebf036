"""End-to-end tests of pruning old policy versions through a running proxyd: the retention
job keeps the newest --version-keep versions, the current one and every version a logged
request was decided by, deletes the others with the rule texts and list entries only they
held (audited as version.prune), and `proxyctl why` says so for a row whose version is gone
anyway."""
import os
import sqlite3
import subprocess
import tempfile
import time
import unittest
import urllib.error

from harness import PROXYCTL, DnsStub, Origin, Proxyd, wait_for

DAY_MS = 86400 * 1000


class VersionPruneTest(unittest.TestCase):
    def ctl(self, px, *args, expect=0):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PROXYCTL_", "PROXYD_"))}
        r = subprocess.run([PROXYCTL, "--url", px.admin_url, "--data-dir", px.data_dir]
                           + list(args), capture_output=True, text=True, timeout=60, env=env,
                           cwd=tempfile.gettempdir())
        self.assertEqual(r.returncode, expect, "proxyctl %s: exit %d\nstdout: %s\nstderr: %s"
                         % (" ".join(args), r.returncode, r.stdout, r.stderr))
        return r.stdout, r.stderr

    @staticmethod
    def versions(px):
        return [r["version"] for r in px.api("GET", "/api/versions?limit=1000")["rows"]]

    @staticmethod
    def sql(px, statement, args=()):
        db = sqlite3.connect(px.db_path, timeout=30)
        with db:
            rows = db.execute(statement, args).fetchall()
        db.close()
        return rows

    def test_prune_keeps_newest_current_and_logged_versions(self):
        with DnsStub(records={"a.test": "127.0.0.1"}) as dns, Origin() as origin, \
                Proxyd(dns=dns, extra_args=["--version-keep", "2",
                                            "--version-keep-days", "0"]) as px:
            # Each list import copies that list's entries; then rules change on top of them.
            for i in range(4):
                px.api("PUT", "/api/lists/ads?replace=1",
                       ("".join("d%d-%d.example\n" % (i, k) for k in range(50))).encode())
            px.api("POST", "/api/rules", {"text": "deny domain blocked.test"})
            # Nothing logged yet: all but the newest 2 go, with their list copies.
            self.assertTrue(wait_for(lambda: len(self.versions(px)) == 2),
                            "versions left: %s" % self.versions(px))
            current = px.api("GET", "/api/versions")["current"]
            self.assertEqual(self.versions(px), [current, current - 1])
            # The copies of the pruned versions are freed next, in steps: the one left is
            # the copy the two kept versions share.
            copies = lambda: self.sql(px, "SELECT count(*) FROM policy_version_list_entries")[0][0]
            self.assertTrue(wait_for(lambda: copies() == 50), "list copies left: %d" % copies())
            audit = px.api("GET", "/api/audit?limit=100")["rows"]
            prunes = [r for r in audit if r["action"] == "version.prune"]
            self.assertTrue(prunes and prunes[0]["actor"] == "proxyd (retention)", prunes)
            with self.assertRaises(urllib.error.HTTPError) as cm:
                px.api("POST", "/api/versions/%d/rollback" % (current - 2))
            self.assertIn(cm.exception.code, (404, 409))

            # A request decided by the current version, then more changes: that version
            # and all later ones must stay, whatever --version-keep says.
            status = px.get("http://a.test:%d/small" % origin.port)[0]
            self.assertEqual(status, 200)
            logged = wait_for(lambda: px.api("GET", "/api/logs?host=a.test&limit=5")["rows"])
            self.assertTrue(logged)
            row = logged[0]
            self.assertEqual(row["policy_version"], current)
            for i in range(4):
                px.api("POST", "/api/rules", {"text": "deny domain more%d.test" % i})
            newest = px.api("GET", "/api/versions")["current"]
            self.assertEqual(self.versions(px), list(range(newest, current - 2, -1)))
            # Nothing above may go: the version before the logged one ended as the request
            # came. To see a prune run over them, give the job an old version to take: one
            # from three days ago, followed by current - 1, made two days old.
            now_ms = int(time.time() * 1000)
            self.sql(px, "UPDATE policy_versions SET time_ms = ? WHERE version = ?",
                     (now_ms - 2 * DAY_MS, current - 1))
            self.sql(px, "INSERT INTO policy_versions(version, time_ms, actor, message,"
                     " rules_of, lists_kept) VALUES (?, ?, 'test', 'old', ?, 0)",
                     (current - 3, now_ms - 3 * DAY_MS, current - 3))
            self.assertTrue(wait_for(lambda: current - 3 not in self.versions(px)),
                            "the old version was not pruned")
            self.assertEqual(self.versions(px), list(range(newest, current - 2, -1)))
            out, _ = self.ctl(px, "why", str(row["id"]))
            self.assertIn("policy version %d," % current, out)
            self.assertIn("rule: none matched", out)

            # A row whose version is gone anyway (a log kept by other means) says so.
            self.sql(px, "UPDATE access_log SET policy_version = ? WHERE id = ?",
                     (current - 3, row["id"]))
            out, _ = self.ctl(px, "why", str(row["id"]))
            self.assertIn("policy version %d: pruned (no longer kept)" % (current - 3), out)
            why = px.api("GET", "/api/logs/%d/why" % row["id"])
            self.assertEqual((why["version"], why["version_pruned"]), (None, True))


if __name__ == "__main__":
    unittest.main()
