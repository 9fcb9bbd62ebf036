"""The dashboard's Nodes panel in a real browser: headless Chromium (/usr/bin/chromium) driven
by playwright-core (tests/e2e/browser/nodes_flow.mjs) against the real proxyd. Besides the
node itself, two more rows are written into its nodes table as other nodes would write them:
one that keeps beating (a thread here) but runs the policy version before the newest, and one
last heard of 41 s ago, named with markup. The page must show this node in step and the two
others lagging, in words; screenshots at 1366 and 390 px (nodes/ in $PX_BROWSER_SHOTS, else
in <build dir>/browser-shots). Then the dashboard's node selector (issue 13): log rows of three
nodes, the cards, chart and top lists of all of them and of the one chosen, the choice kept in
the address. Skips like test_browser.py without Chromium or playwright-core."""
import os
import sqlite3
import threading
import time
import unittest

from harness import Proxyd, wait_for
from browser_case import BrowserCase, SHOTS as ALL_SHOTS

SHOTS = os.path.join(ALL_SHOTS, "nodes")
PASSWORD = "nodes-page-test-pw"
BEHIND = "branch-b"
UNSEEN = "<img src=x onerror=__xss=1>"


class NodesPanelTest(BrowserCase):
    def test_lagging_nodes_are_marked(self):
        names = ("nodes-1366.png", "nodes-390.png", "nodes-filter-1366.png",
                 "nodes-filter-390.png")
        self.clear_shots(SHOTS, names)
        with Proxyd(extra_args=["--node-name", "head-office"]) as px:
            px.api("PUT", "/api/admins/admin", {"password": PASSWORD})
            px.api("POST", "/api/block", {"domain": "one.test"})
            px.api("POST", "/api/block", {"domain": "two.test"})
            newest = px.api("GET", "/api/nodes")["newest_policy_version"]
            # This node's row runs the newest version (its heartbeat follows a change).
            self.assertTrue(wait_for(lambda: [n["policy_version"] for n in
                                              px.api("GET", "/api/nodes")["nodes"]] == [newest],
                                     timeout=60))
            db = sqlite3.connect(px.db_path, timeout=30)
            now = int(time.time() * 1000)
            row = ("INSERT INTO nodes(name, started_ms, software, listen, policy_version, beat_ms,"
                   " beat_every_ms) VALUES (?, ?, 'proxyd 0.9.0', ?, ?, ?, 5000)")
            db.execute(row, (BEHIND, now - 3600000, "10.1.0.1:3128 tls:10.1.0.1:3129",
                             newest - 1, now))
            db.execute(row, (UNSEEN, now - 7200000, "10.2.0.1:3128", newest, now - 41000))
            # Each node's requests of the last hour, as its writer would have logged them.
            log = [("head-office", "head.test", 0)] * 4 + [(BEHIND, "branch.test", 0)] * 5 + \
                [(BEHIND, "ads.test", 1)] * 2 + [(UNSEEN, "markup.test", 0)] * 3
            db.executemany("INSERT INTO access_log(time_ms, client, method, scheme, host, port,"
                           " path, status, bytes_down, decision, node)"
                           " VALUES (?, '10.0.0.1', 'GET', 'http', ?, 80, '/', 200, 1000, ?, ?)",
                           [(now - 600000 + i * 1000, h, d, n) for i, (n, h, d) in enumerate(log)])
            db.commit()
            beating = threading.Event()

            def beat():  # branch-b goes on beating, as a live node does
                with sqlite3.connect(px.db_path, timeout=30) as c:
                    while not beating.wait(1):
                        c.execute("UPDATE nodes SET beat_ms = ? WHERE name = ?",
                                  (int(time.time() * 1000), BEHIND))
                        c.commit()
            t = threading.Thread(target=beat, daemon=True)
            t.start()
            try:
                cfg = {"admin": px.admin_url, "password": PASSWORD, "self": "head-office",
                       "behind": BEHIND, "unseen": UNSEEN, "shots": SHOTS}
                self.run_flow("nodes_flow.mjs", cfg)
            finally:
                beating.set()
                t.join(30)
                db.close()
            self.assert_shots(SHOTS, names)


if __name__ == "__main__":
    unittest.main()
