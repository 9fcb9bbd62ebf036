"""admin_bench.py - the admin API over a 1,000,000-row access log, through real HTTP.

Creates a data folder with proxyd (schema, token), stops it, fills access_log with N rows
spread over the last 24 h (realistic hosts/clients/statuses, 8% denied), starts proxyd on it
and times what the dashboard and the log page ask for: median and max of 5 calls each, in
ms, client-side (HTTP round trip included). Prints a table; never pass/fail.

Usage: python3 bench/admin_bench.py [--rows N] [--proxyd build/proxy/proxyd]
Only 127.0.0.1; the proxy listener is bound but unused.
"""
import argparse, json, os, random, shutil, signal, socket, sqlite3, subprocess, sys, tempfile, time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(proxyd, data_dir, log):
    admin = free_port()
    args = [proxyd, "--listen", "127.0.0.1:%d" % free_port(), "--admin", "127.0.0.1:%d" % admin,
            "--data-dir", data_dir, "--workers", "1", "--log-level", "warn",
            "--static-dir", os.path.join(HERE, "..", "web-admin", "static")]
    p = subprocess.Popen(args, stdout=log, stderr=log)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", admin), timeout=0.2).close()
            return p, admin
        except OSError:
            time.sleep(0.05)
    p.kill()
    raise SystemExit("proxyd did not start")


def stop(p):
    p.send_signal(signal.SIGTERM)
    p.wait(30)


def fill(db_path, n):
    random.seed(1)
    hosts = ["www.site%d.example" % i for i in range(3000)] + ["ads%d.tracker.example" % i for i in range(200)]
    clients = ["10.0.%d.%d" % (i // 250, i % 250 + 1) for i in range(400)]
    now = int(time.time() * 1000)
    db = sqlite3.connect(db_path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    cols = ("time_ms, client, user, method, scheme, host, port, path, status, bytes_up, "
            "bytes_down, duration_ms, decision, rule_id, error")
    batch = []
    t0 = time.time()
    for i in range(n):
        t = now - 86400000 + i * 86400000 // n
        denied = random.random() < 0.08
        host = random.choice(hosts[3000:] if denied else hosts[:3000])
        batch.append((t, random.choice(clients), "", "GET", "http", host, 80,
                      "/p/%d?q=%d" % (random.randrange(1000), i), 403 if denied else 200,
                      random.randrange(300, 900), 0 if denied else random.randrange(500, 200000),
                      random.randrange(1, 300), 1 if denied else 0, 7 if denied else 0, ""))
        if len(batch) == 50000:
            db.executemany("INSERT INTO access_log (%s) VALUES (%s)" % (cols, ",".join("?" * 15)), batch)
            batch = []
    if batch:
        db.executemany("INSERT INTO access_log (%s) VALUES (%s)" % (cols, ",".join("?" * 15)), batch)
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return time.time() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1000000)
    ap.add_argument("--proxyd", default=os.path.join(HERE, "..", "build", "proxy", "proxyd"))
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="adminbench.")
    data = os.path.join(tmp, "var")
    log = open(os.path.join(tmp, "proxyd.log"), "wb")
    try:
        p, _ = start(a.proxyd, data, log)
        stop(p)
        secs = fill(os.path.join(data, "proxyd.db"), a.rows)
        size = os.path.getsize(os.path.join(data, "proxyd.db"))
        print("filled %d rows in %.1f s; database %.1f MB (%.0f bytes/row)" % (
            a.rows, secs, size / 1e6, size / a.rows))
        p, admin = start(a.proxyd, data, log)
        token = open(os.path.join(data, "admin.token")).read().strip()
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        now = int(time.time() * 1000)
        day, hour = now - 86400000, now - 3600000
        calls = [
            ("dashboard: stats (totals 24 h)", "/api/stats"),
            ("dashboard: series 24 h per hour", "/api/series?since=%d&until=%d&bucket=3600000" % (day, now)),
            ("dashboard: top hosts 24 h", "/api/top?kind=hosts&since=%d&limit=10" % day),
            ("dashboard: top clients 24 h", "/api/top?kind=clients&since=%d&limit=10" % day),
            ("dashboard: top blocked 24 h", "/api/top?kind=blocked&since=%d&limit=10" % day),
            ("log: newest page", "/api/logs?limit=100"),
            ("log: one client", "/api/logs?client=10.0.1.7&limit=100"),
            ("log: host substring", "/api/logs?host=site123.&limit=100"),
            ("log: text search, no match", "/api/logs?q=zzzz-no-such&limit=100"),
            ("log: denied only", "/api/logs?decision=deny&limit=100"),
            ("log: last hour, denied", "/api/logs?since=%d&decision=deny&limit=100" % hour),
            ("series 1 h per minute", "/api/series?since=%d&until=%d&bucket=60000" % (hour, now)),
        ]
        print("\n| request (%d rows) | median ms | max ms | rows returned |" % a.rows)
        print("|---|---:|---:|---:|")
        for name, path in calls:
            times, count = [], 0
            for _ in range(5):
                req = urllib.request.Request("http://127.0.0.1:%d%s" % (admin, path))
                req.add_header("Authorization", "Bearer " + token)
                t0 = time.perf_counter()
                with opener.open(req, timeout=60) as r:
                    body = json.loads(r.read())
                times.append((time.perf_counter() - t0) * 1000)
                count = len(body.get("rows", body.get("points", []))) if isinstance(body, dict) else 0
            times.sort()
            print("| %s | %.1f | %.1f | %d |" % (name, times[2], times[-1], count))
        stop(p)
    finally:
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
