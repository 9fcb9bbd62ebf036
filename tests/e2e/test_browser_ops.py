"""The admin's own tools in a real browser (headless Chromium driven by playwright-core,
tests/e2e/browser/admin_ops_flow.mjs) against the real proxyd: API tokens on the Users page
are made, their secret shown once and usable, listed without it, and revoked (then 401); the
log page's Export CSV and Export JSON download exactly the rows its filters match; Settings
shows proxyd's version and the database's size; a viewer
sees no block/unblock buttons, no rule editing and no account controls but its own password,
and a block it forces by hand is still 403 (nothing added).

Screenshots go to ops/ in $PX_BROWSER_SHOTS, else in <build dir>/browser-shots.
Needs /usr/bin/chromium and tests/e2e/browser/node_modules/playwright-core (test_browser.py
says how to get them).
"""
import os
import sqlite3
import time
import unittest

from harness import Proxyd
from browser_case import BrowserCase, SHOTS as ALL_SHOTS

# A folder of its own: test_browser.py empties its folder of PNGs when it starts.
SHOTS = os.path.join(ALL_SHOTS, "ops")
PASSWORD = "ops-test-password"
SCREENSHOTS = ["tokens.png", "log-export.png", "log-viewer.png", "policy-viewer.png",
               "users-viewer.png", "settings-viewer.png", "settings-about.png"]
EXPORT_HOST = "keep.example"


def add_rows(db_path):
    """Log rows of two hosts, one path a spreadsheet would run; returns how many are of
    EXPORT_HOST."""
    now = int(time.time() * 1000)
    rows = [(now - i * 1000, "10.0.0.%d" % i, EXPORT_HOST if i % 3 else "other.example",
             "=cmd|' /C calc'!A0" if i == 4 else "/p%d" % i) for i in range(1, 31)]
    db = sqlite3.connect(db_path, timeout=60)
    try:
        with db:
            db.executemany("INSERT INTO access_log(time_ms, client, method, scheme, host, port,"
                           " path, status) VALUES (?, ?, 'GET', 'http', ?, 80, ?, 200)", rows)
    finally:
        db.close()
    return sum(1 for r in rows if r[2] == EXPORT_HOST)


class BrowserOpsTest(BrowserCase):
    def test_ops(self):
        self.clear_shots(SHOTS, SCREENSHOTS)
        with Proxyd() as px:
            px.api("PUT", "/api/admins/admin", {"password": PASSWORD})
            n = add_rows(px.db_path)
            px.api("PUT", "/api/admins/vera", {"password": "vera-password", "role": "viewer",
                                               "create": True})
            px.api("POST", "/api/rules", {"text": "deny domain other.example"})
            px.api("PUT", "/api/lists/ads", b"ads.example\n")
            cfg = {"admin": px.admin_url, "password": PASSWORD, "shots": SHOTS,
                   "exportHost": EXPORT_HOST, "exportRows": n, "viewer": "vera",
                   "viewerPassword": "vera-password",
                   "version": px.api("GET", "/api/health")["version"]}
            self.run_flow("admin_ops_flow.mjs", cfg)
            self.assert_shots(SHOTS, SCREENSHOTS)
            # Seen from the server: made and revoked by the browser's admin, audited so.
            audit = [(a["actor"], a["action"], a["detail"])
                     for a in px.api("GET", "/api/audit?limit=1000")["rows"]]
            self.assertIn(("admin", "token.add", "admin/token:ci-bot"), audit)
            self.assertIn(("admin", "token.delete", "admin/token:ci-bot"), audit)
            self.assertEqual(px.api("GET", "/api/tokens")["tokens"], [])
            self.assertEqual([r["text"] for r in px.api("GET", "/api/rules")["rules"]],
                             ["deny domain other.example"])
            self.assertEqual(px.stop(), 0, "proxyd did not stop cleanly:\n" + px.log()[-3000:])


if __name__ == "__main__":
    unittest.main()
