"""policy_propagation.py - how soon a policy change made on one proxyd node is in force on
another that shares its PostgreSQL database.

Starts a PostgreSQL of its own (tests/pg_fixture.sh, a Unix socket in a temporary folder),
two proxyd nodes A and B on one database, and makes N changes on A through its admin API
(POST /api/block of a new domain each). For each change it measures, client-side, the time
from A's API answer (the change committed) until B answers 403 for that domain through its
proxy port (B polled back to back over loopback). Prints median, 90th percentile and max in
ms; never pass/fail. The machine is shared: say so next to any figure.

Usage: python3 bench/policy_propagation.py [--changes N] [--build build]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
FIXTURE = os.path.join(ROOT, "tests", "pg_fixture.sh")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--changes", type=int, default=100)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    args = ap.parse_args()
    os.environ["PX_BUILD_DIR"] = os.path.abspath(args.build)
    sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
    from harness import DnsStub, Origin, Proxyd  # needs PX_BUILD_DIR first

    folder = tempfile.mkdtemp(prefix="pxbench-pg.")
    os.rmdir(folder)  # pg_fixture.sh makes it, 0700
    subprocess.run([FIXTURE, "start", folder], check=True, capture_output=True, timeout=120)
    try:
        db = "postgresql:///postgres?host=%s&port=5432&user=px" % folder
        with DnsStub({}) as dns, Origin() as origin, \
                Proxyd(dns=dns, extra_args=["--db", db, "--node-name", "a"]) as a, \
                Proxyd(dns=dns, extra_args=["--db", db, "--node-name", "b"]) as b:
            lat = []
            for i in range(args.changes):
                host = "d%d-%d.test" % (os.getpid(), i)
                url = "http://%s:%d/" % (host, origin.port)
                a.api("POST", "/api/block", {"domain": host})
                t0 = time.monotonic()
                deadline = t0 + 60  # a hang guard, not a verdict
                while b.get(url)[0] != 403:
                    if time.monotonic() > deadline:
                        raise SystemExit("change %d never reached node B" % i)
                lat.append((time.monotonic() - t0) * 1000)
            lat.sort()
            p90 = lat[min(len(lat) - 1, int(len(lat) * 0.9))]
            print("policy propagation A -> B over one PostgreSQL (LISTEN/NOTIFY, poll fallback"
                  " 250 ms), %d changes:" % len(lat))
            print("  median %.1f ms   p90 %.1f ms   max %.1f ms   min %.1f ms"
                  % (statistics.median(lat), p90, lat[-1], lat[0]))
            print("  (client-side: from A's API answer to B's first 403; this machine is shared"
                  " with other builds and tests)")
    finally:
        subprocess.run([FIXTURE, "stop", folder], capture_output=True, timeout=120)


if __name__ == "__main__":
    main()
