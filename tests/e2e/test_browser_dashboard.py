"""The dashboard and the log as an office admin uses them, in a real browser (headless Debian
Chromium driven by playwright-core: tests/e2e/browser/dashboard_flow.mjs; test_browser.py says
how it is wired and what it needs).

First with an empty log: the dashboard explains how to point browsers at the proxy (its
address). Then with a day of traffic: rows written into the log's table for the past days
while proxyd is stopped (a log cannot be made hours old otherwise) and real requests through proxyd from several
loopback addresses (each its own client, one of them named by the policy). The flow checks
the cards (requests, blocked, % blocked, domains on lists) against the API for each time
range preset, the chart's 10-minute buckets and a tooltip of a bucket whose counts the test
wrote, the top lists' links into the log filtered to their entry, top blocked clients, who
visited a domain, and the Diagnostics panel; at 1366x768 and 390 px wide.

Screenshots go to $PX_BROWSER_SHOTS/dashboard, else <build dir>/browser-shots/dashboard.
"""
import os
import socket
import sqlite3
import time
import unittest

from harness import DnsStub, Origin, Proxyd, read_response, wait_for
from browser_case import BrowserCase, SHOTS as ALL_SHOTS

SHOTS = os.path.join(ALL_SHOTS, "dashboard")
SCREENSHOTS = ("dashboard-empty-desktop.png", "dashboard-empty-phone.png",
               "dashboard-24h-desktop.png", "dashboard-7d-desktop.png",
               "dashboard-who-desktop.png", "dashboard-24h-phone.png",
               "log-filtered-desktop.png", "log-filtered-phone.png", "log-why-inline-desktop.png",
               "dashboard-diagnostics-desktop.png")
POLICY = "deny domain ads.test\nname 127.0.0.3 reception-pc\n"
MIN_MS = 60 * 1000
BUCKET_MS = 10 * MIN_MS
DENY = 1  # store_decision
NODE = "front-desk"


def get_from(px, source, url):
    host = url.split("/")[2]
    with socket.create_connection(("127.0.0.1", px.proxy_port), timeout=60,
                                  source_address=(source, 0)) as s:
        s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                   % (url, host)).encode())
        return read_response(s)[0]


def seed_history(db_path, now_ms):
    """Rows for the past: 16 clients over the last day, a bucket 5 hours ago whose counts
    the flow finds in the chart's tooltip, and rows 3 days ago (in 7 d, not in 24 h).
    Returns (the marked bucket's start, its requests, its blocked, (rows within 24 h, how
    many of them denied), rows 3 days ago)."""
    hosts = ["intranet.test", "mail.test", "news.test", "video.test", "ads.test"]
    rows = []
    for i in range(600):  # one every 2 minutes from 22 h ago; none in the marked bucket
        t = now_ms - 22 * 3600 * 1000 + i * 2 * MIN_MS
        host = hosts[i % len(hosts)]
        # Denied rows from 3 clients only, so the live ones make the top 10 blocked clients.
        client = "10.0.0.%d" % (1 + (i % 3 if host == "ads.test" else i % 16))
        rows.append((t, client, host, DENY if host == "ads.test" else 0))
    marked = (now_ms - 5 * 3600 * 1000) // BUCKET_MS * BUCKET_MS
    rows = [r for r in rows if not marked <= r[0] < marked + BUCKET_MS]
    for i in range(37):
        rows.append((marked + 1000 + i * 1000, "10.0.0.%d" % (1 + i % 4),
                     "ads.test" if i < 5 else "mail.test", DENY if i < 5 else 0))
    within_day = (len(rows), sum(1 for r in rows if r[3] == DENY))
    old = [(now_ms - 3 * 24 * 3600 * 1000 + i * MIN_MS, "10.0.0.20", "old.test", 0)
           for i in range(50)]
    db = sqlite3.connect(db_path, timeout=30)
    with db:
        db.executemany("INSERT INTO access_log(time_ms, client, method, scheme, host, port, path,"
                       " status, bytes_down, decision) VALUES (?, ?, 'GET', 'http', ?, 80, '/',"
                       " ?, 1500, ?)",
                       [(t, c, h, 403 if d else 200, d) for t, c, h, d in rows + old])
    db.close()
    return marked, 37, 5, within_day, len(old)


class BrowserDashboardTest(BrowserCase):
    def test_dashboard_and_log(self):
        self.clear_shots(SHOTS)
        records = {"allowed.test": "127.0.0.1", "ads.test": "127.0.0.1"}
        with DnsStub(records=records) as dns, Origin() as origin, \
                Proxyd(dns=dns, policy=POLICY, extra_args=("--node-name", NODE)) as px:
            px.api("PUT", "/api/lists/trackers", b"t1.test\nt2.test\nt3.test\n")
            base = {"admin": px.admin_url, "password": px.first_password,
                    "newPassword": "dashboard-browser", "proxyPort": px.proxy_port,
                    "originPort": origin.port, "shots": SHOTS, "nodeName": NODE}
            self.run_flow("dashboard_flow.mjs", dict(base, phase="empty"))

            # Written while proxyd is stopped: its log writer rolls up every row above the
            # rollups' watermark when it starts, as it does for a log from before them.
            px.stop()
            now = int(time.time() * 1000)
            marked, marked_requests, marked_blocked, day_rows, old_rows = \
                seed_history(px.db_path, now)
            px.start()
            ok = "http://allowed.test:%d/small" % origin.port
            ads = "http://ads.test:%d/banner" % origin.port
            live = [("127.0.0.2", ads, 403), ("127.0.0.2", ads, 403), ("127.0.0.3", ads, 403),
                    ("127.0.0.3", ok, 200), ("127.0.0.4", ok, 200), ("127.0.0.5", ok, 200)]
            for source, url, status in live:
                self.assertEqual(get_from(px, source, url), status, (source, url))
            self.assertTrue(wait_for(lambda: len(px.api("GET", "/api/logs?host=ads.test&since=%d"
                                                        % (now - 1000))["rows"]) >= 3,
                                     timeout=60))
            self.run_flow("dashboard_flow.mjs", dict(base, phase="full", markedBucket=marked,
                               markedRequests=marked_requests, markedBlocked=marked_blocked,
                               dayRows=day_rows[0] + len(live), dayBlocked=day_rows[1] + 3,
                               oldRows=old_rows, listed=3))
            self.assert_shots(SHOTS, SCREENSHOTS)


if __name__ == "__main__":
    unittest.main()
