"""The dashboard's numbers (GET /api/stats totals, /api/top, /api/series), which proxyd reads
from its rollups, equal a count over the raw access-log rows of the same range: while the
writer still holds the newest rows' sums in memory, and once it has applied them."""
import sqlite3
import time
import unittest

from harness import DnsStub, Origin, Proxyd, wait_for

RECORDS = {"a.test": "127.0.0.1", "b.test": "127.0.0.1", "blocked.test": "127.0.0.1"}


def raw(px, sql, *args):
    db = sqlite3.connect("file:%s?mode=ro" % px.db_path, uri=True, timeout=60)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


class RollupTest(unittest.TestCase):

    def compare(self, px, since, until, bucket=60000):
        where = " FROM access_log WHERE time_ms >= ? AND time_ms < ?"
        span = "since=%d&until=%d" % (since, until)
        (count, blocked, up, down, clients, hosts), = raw(
            px, "SELECT count(*), total(decision = 1), total(bytes_up), total(bytes_down),"
            " count(DISTINCT client), count(DISTINCT host)" + where, since, until)
        for kind, key, only in (("hosts", "host", ""), ("clients", "client", ""),
                                ("blocked", "host", " AND decision = 1")):
            want = [list(r) for r in raw(
                px, "SELECT %s, count(*), sum(bytes_up + bytes_down)" % key + where + only +
                " GROUP BY 1 ORDER BY 2 DESC, 1", since, until)]
            got = [[r["key"], r["requests"], r["bytes"]] for r in
                   px.api("GET", "/api/top?kind=%s&limit=100&%s" % (kind, span))["rows"]]
            self.assertEqual(got, want, kind)
        want = [list(r) for r in raw(
            px, "SELECT time_ms - time_ms %% %d, count(*), total(decision = 1),"
            " total(bytes_up + bytes_down)" % bucket + where + " GROUP BY 1 ORDER BY 1",
            since, until)]
        got = [[p["t"], p["requests"], p["blocked"], p["bytes"]] for p in
               px.api("GET", "/api/series?bucket=%d&%s" % (bucket, span))["points"]
               if p["requests"]]
        self.assertEqual(got, want)
        return count, blocked, up, down, clients, hosts

    def test_dashboard_equals_raw_counts(self):
        with DnsStub(RECORDS) as dns, Origin() as origin, \
                Proxyd(dns=dns, policy="deny domain blocked.test\n") as px:
            sent = 0
            for host, n, status in (("a.test", 7, 200), ("b.test", 4, 200),
                                    ("blocked.test", 3, 403)):
                for _ in range(n):
                    url = "http://%s:%d/small" % (host, origin.port)
                    self.assertEqual(px.get(url)[0], status)
                    sent += 1

            def logged():
                return raw(px, "SELECT count(*) FROM access_log")[0][0] >= sent

            self.assertTrue(wait_for(logged, timeout=60), "rows not written")
            # The stats' own 24 h window, and an explicit one that ends inside a minute.
            stats = px.api("GET", "/api/stats")
            (count, blocked, up, down, clients, hosts), = raw(
                px, "SELECT count(*), total(decision = 1), total(bytes_up), total(bytes_down),"
                " count(DISTINCT client), count(DISTINCT host) FROM access_log"
                " WHERE time_ms >= ? AND time_ms < ?", stats["since_ms"], stats["until_ms"])
            t = stats["totals"]
            self.assertEqual([t["requests"], t["blocked"], t["bytes_up"], t["bytes_down"],
                              t["clients"], t["hosts"]],
                             [count, blocked, up, down, clients, hosts])
            self.assertEqual(count, sent)
            self.assertEqual(blocked, 3)
            now = int(time.time() * 1000)
            self.assertEqual(self.compare(px, now - 3 * 3600 * 1000 - 12345, now + 1000)[0],
                             sent)

            # Once the writer has applied its sums (at most a second later), the same
            # numbers come from the rollups.
            def rolled():
                return raw(px, "SELECT (SELECT rolled_id FROM access_rollup_watermark)"
                           " = (SELECT max(id) FROM access_log)")[0][0] == 1

            self.assertTrue(wait_for(rolled, timeout=60), "sums never applied")
            self.assertGreater(raw(px, "SELECT count(*) FROM access_rollup")[0][0], 0)
            self.assertEqual(self.compare(px, now - 3 * 3600 * 1000 - 12345, now + 1000)[0],
                             sent)
            self.assertEqual(self.compare(px, now - 2 * 86400 * 1000, now + 3600 * 1000,
                                          bucket=3600 * 1000)[0], sent)


if __name__ == "__main__":
    unittest.main()
