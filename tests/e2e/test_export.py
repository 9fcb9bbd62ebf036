"""End-to-end tests of the access-log export (GET /api/logs/export, proxyctl logs --csv and
--json): every log filter applies as on /api/logs; CSV quotes, commas, line breaks and
leading = + - @ of attacker-chosen text are escaped and neutralised; a million rows stream
out in CSV and JSON with the exact count and rows, while proxyd's peak resident size
(VmHWM) grows by less than 20 MB over both exports."""
import csv
import io
import json
import os
import sqlite3
import subprocess
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

from harness import PROXYCTL, DnsStub, Origin, Proxyd, sanitizer_build, wait_for

COLS = ("time_ms, client, user, method, scheme, host, port, path, status, bytes_up, bytes_down,"
        " duration_ms, decision, rule_id, error, sni, dest, node, policy_version")
# Attacker-chosen text as a request can carry it into the log.
NASTY = [
    ('=HYPERLINK("http://evil.example/","click")', "eve"),
    ("+SUM(1,2)", "+mal"),
    ("-2+3", "-u"),
    ("@SUM(A1)", "@me"),
    ('/a "quoted", with comma', "x,y"),
    ("/line\nbreak\r\nand cr", 'q"q'),
    ("\t=tabbed", "plain"),
]
MILLION = 1000000


def hwm_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM for %d" % pid)


def open_export(px, query):
    req = urllib.request.Request(px.admin_url + "/api/logs/export?" + urllib.parse.urlencode(query))
    req.add_header("Authorization", "Bearer " + px.token)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return opener.open(req, timeout=60)


def export(px, query):
    with open_export(px, query) as r:
        return r.status, r.headers, r.read()


def row(t, client="10.0.0.1", user="", host="a.example", path="/", status=200, decision=0,
        rule=0, error="", node="n1"):
    return (t, client, user, "GET", "http", host, 80, path, status, 10, 20, 3, decision, rule,
            error, "", "", node, 1)


class ExportTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.px = Proxyd().__enter__()
        cls.now = int(time.time() * 1000)
        rows = [row(cls.now - 10000 + i, path=p, user=u, host="nasty.example")
                for i, (p, u) in enumerate(NASTY)]
        rows += [row(cls.now - 5000, client="10.0.0.9", host="deny.example", status=403,
                     decision=1, rule=7, error="rule 7: deny domain deny.example")]
        rows += [row(cls.now - 3 * 3600 * 1000, host="old.example")]
        cls.insert(rows)

    @classmethod
    def tearDownClass(cls):
        cls.px.__exit__(None, None, None)

    @classmethod
    def insert(cls, rows):
        db = sqlite3.connect(cls.px.db_path, timeout=60)
        try:
            with db:
                db.executemany("INSERT INTO access_log(%s) VALUES (%s)"
                               % (COLS, ",".join("?" * 19)), rows)
        finally:
            db.close()

    def csv_rows(self, query):
        status, headers, body = export(self.px, dict(query, format="csv"))
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"], "text/csv; charset=utf-8")
        self.assertIn('attachment; filename="proxyd-log.csv"', headers["Content-Disposition"])
        rows = list(csv.DictReader(io.StringIO(body.decode(), newline="")))
        return rows

    def test_csv_escapes_and_neutralises_formulas(self):
        rows = self.csv_rows({"host": "nasty.example"})
        self.assertEqual(len(rows), len(NASTY))
        got = {r["time_ms"]: (r["path"], r["user"]) for r in rows}
        for i, (path, user) in enumerate(NASTY):
            want = tuple(("'" + v) if v[:1] in ("=", "+", "-", "@", "\t", "\r") else v
                         for v in (path, user))
            self.assertEqual(got[str(self.now - 10000 + i)], want)
        # No cell a spreadsheet would run: every cell starts with something else.
        for r in rows:
            for v in r.values():
                self.assertFalse(v[:1] in ("=", "+", "-", "@"), (v, r))
        # The raw bytes: the formula cell is quoted with its apostrophe inside.
        body = export(self.px, {"format": "csv", "host": "nasty.example"})[2]
        self.assertIn(b'"\'=HYPERLINK(""http://evil.example/"",""click"")"', body)
        self.assertTrue(body.endswith(b"\r\n"))

    def test_json_is_one_array_of_the_api_rows(self):
        status, headers, body = export(self.px, {"format": "json", "host": "nasty.example"})
        self.assertEqual(headers["Content-Type"], "application/json")
        rows = json.loads(body)
        self.assertEqual(sorted(r["path"] for r in rows), sorted(p for p, _ in NASTY))
        api = self.px.api("GET", "/api/logs?host=nasty.example")["rows"]
        self.assertEqual([r["id"] for r in rows], [r["id"] for r in api])
        for key in ("client", "user", "host", "path", "status", "decision", "rule_id", "error",
                    "node", "time_ms", "bytes_up", "bytes_down"):
            self.assertEqual([r[key] for r in rows], [r[key] for r in api], key)

    def test_every_filter_applies_as_on_the_log(self):
        hour = 3600 * 1000
        for q in ({"decision": "deny"}, {"client": "10.0.0.9"}, {"status": "403"},
                  {"q": "quoted"}, {"host": "old."}, {"since": self.now - 2 * hour},
                  {"since": self.now - 4 * hour, "until": self.now - 2 * hour},
                  {"decision": "allow", "host": "nasty"}):
            api = self.px.api("GET", "/api/logs?limit=1000&" + urllib.parse.urlencode(q))["rows"]
            got = [int(r["id"]) for r in self.csv_rows(q)]
            self.assertEqual(got, [r["id"] for r in api], q)
            self.assertTrue(got, q)
        denied = self.csv_rows({"decision": "deny"})
        self.assertEqual(denied[0]["error"], "rule 7: deny domain deny.example")
        self.assertEqual(denied[0]["rule_id"], "7")

    def test_refusals(self):
        for q, field in (({"format": "xml"}, "format"), ({}, "format"),
                         ({"format": "csv", "decision": "maybe"}, "decision"),
                         ({"format": "csv", "since": "yesterday"}, "since")):
            with self.assertRaises(urllib.error.HTTPError) as cm:
                export(self.px, q)
            self.assertEqual(cm.exception.code, 400)
            self.assertEqual(json.loads(cm.exception.read())["field"], field)

    def test_proxyctl_logs_csv_and_json(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PROXYCTL_", "PROXYD_"))}
        base = [PROXYCTL, "--url", self.px.admin_url, "--data-dir", self.px.data_dir]
        r = subprocess.run(base + ["logs", "--csv", "--host", "nasty.example"], capture_output=True,
                           timeout=60, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, export(self.px, {"format": "csv", "host": "nasty.example"})[2])
        r = subprocess.run(base + ["logs", "--json", "--blocked"], capture_output=True, timeout=60,
                           env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([x["host"] for x in json.loads(r.stdout)], ["deny.example"])

    def test_zz_million_rows_stream_in_constant_memory(self):
        before_ids = self.px.api("GET", "/api/logs?limit=1000")["rows"]
        base = len(before_ids)
        t0 = self.now - 3600 * 1000
        self.insert(row(t0 + i // 1000, client="10.1.%d.%d" % (i // 256 % 256, i % 256),
                        host="bulk%d.example" % (i % 97), path="/p/%d" % i)
                    for i in range(MILLION))
        # Warm up what an export costs in code and buffers (a narrow window: the time index,
        # not a scan of the table, whose pages would then count before), then take the peak.
        body = export(self.px, {"format": "json", "since": self.now - 5000,
                                "until": self.now - 4000})[2]
        self.assertEqual(len(json.loads(body)), 1)
        before = hwm_kb(self.px.pid)
        for fmt in ("csv", "json"):
            n = 0
            first = last = None
            with open_export(self.px, {"format": fmt}) as r:
                pending = b""
                while True:
                    chunk = r.read(1 << 16)
                    if not chunk:
                        break
                    lines = (pending + chunk).split(b"\n")
                    pending = lines.pop()
                    for line in lines:
                        if first is None and line not in (b"[", b"") and not line.startswith(b"id,"):
                            first = line
                        if line.startswith((b"{", b",{")) or line[:1].isdigit():
                            n += 1
                            last = line
                self.assertIn(pending, (b"",))
            self.assertEqual(n, MILLION + base, fmt)
            if fmt == "csv":
                newest = next(csv.reader([first.decode()]))
                self.assertEqual(newest[9], "/p/%d" % (MILLION - 1))
                self.assertEqual(newest[7], "bulk%d.example" % ((MILLION - 1) % 97))
                oldest = next(csv.reader([last.decode()]))
                self.assertEqual(oldest[0], "1")
            else:
                newest = json.loads(first.lstrip(b","))
                self.assertEqual((newest["path"], newest["client"]),
                                 ("/p/%d" % (MILLION - 1), "10.1.%d.%d" % ((MILLION - 1) // 256 % 256,
                                                                         (MILLION - 1) % 256)))
                self.assertEqual(json.loads(last.lstrip(b","))["id"], 1)
        after = hwm_kb(self.px.pid)
        print("VmHWM before %d kB, after %d kB (growth %d kB)" % (before, after, after - before))
        if sanitizer_build():  # the rows are checked above; the memory bound in plain builds
            self.skipTest("ASan's quarantine holds freed memory: the peak is not ours")
        self.assertLess(after - before, 20 * 1024,
                        "proxyd's peak memory grew by %d kB over the exports" % (after - before))

    def test_zzz_exports_running_at_once_are_capped(self):
        # Enough rows that an export nobody reads stays open (test_zz's million, or these).
        db = sqlite3.connect(self.px.db_path, timeout=60)
        try:
            have = db.execute("SELECT count(*) FROM access_log").fetchone()[0]
        finally:
            db.close()
        if have < 200000:
            self.insert(row(self.now - 7200 * 1000 + i // 100, path="/cap/%d" % i)
                        for i in range(300000))
        held = [open_export(self.px, {"format": "csv"}) for _ in range(4)]
        try:
            with self.assertRaises(urllib.error.HTTPError) as cm:
                export(self.px, {"format": "csv"})
            self.assertEqual(cm.exception.code, 429)
            self.assertEqual(cm.exception.headers["Retry-After"], "10")
            self.assertIn("4 exports are running", json.loads(cm.exception.read())["error"])
        finally:
            for r in held:
                r.close()  # proxyd ends each export when its next write fails

        # Every closed export gives its place back: four can run at once again.
        def four_at_once():
            again = []
            try:
                for _ in range(4):
                    again.append(open_export(self.px, {"format": "csv"}))
                return True
            except urllib.error.HTTPError as e:
                e.close()
                return False
            finally:
                for r in again:
                    r.close()
        self.assertTrue(wait_for(four_at_once, timeout=30))


if __name__ == "__main__":
    unittest.main()
