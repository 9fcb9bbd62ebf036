#!/usr/bin/env python3
"""Memory of a large import through the admin API: starts proxyd (from PX_BUILD_DIR or
./build) on 127.0.0.1 with ephemeral ports, PUTs a generated policy (or list) of about
--mb megabytes, and prints proxyd's RSS before, its peak (VmHWM) during, and its RSS right
after and --settle seconds after the import:
    IMPORT kind=policy bytes=B status=S secs=T rss_before_mib=A peak_mib=P rss_after_mib=R rss_settled_mib=Q
Then the same import a second time (peak and RSS after it), to show the memory is reused.
Only talks to 127.0.0.1; stops proxyd by PID."""
import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status_kib(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def put(port, path, token, body):
    """PUT body; returns (status, answer). A server that refuses early (413) may close
    while the body is still going out: the answer is read all the same."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        c.putrequest("PUT", path)
        c.putheader("Authorization", "Bearer " + token)
        c.putheader("Content-Type", "text/plain")
        c.putheader("Content-Length", str(len(body)))
        c.endheaders()
        try:
            c.send(body)
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def body_of(kind, mb):
    lines, n, size = [], 0, 0
    while size < mb * 1000 * 1000:
        line = ("deny domain d%07d.import.example\n" % n) if kind == "policy" \
            else ("d%07d.import.example\n" % n)
        lines.append(line)
        size += len(line)
        n += 1
    return "".join(lines).encode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", choices=("policy", "list"), default="policy")
    ap.add_argument("--mb", type=float, default=28)
    ap.add_argument("--settle", type=float, default=5)
    a = ap.parse_args()
    build = os.environ.get("PX_BUILD_DIR", os.path.join(ROOT, "build"))
    tmp = tempfile.mkdtemp(prefix="pximport.")
    admin = free_port()
    args = [os.path.join(build, "proxy", "proxyd"), "--listen", "127.0.0.1:%d" % free_port(),
            "--admin", "127.0.0.1:%d" % admin, "--data-dir", os.path.join(tmp, "var"),
            "--workers", "1", "--static-dir", os.path.join(ROOT, "web-admin", "static")]
    log = open(os.path.join(tmp, "proxyd.log"), "wb")
    proc = subprocess.Popen(args, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", admin), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.05)
        with open(os.path.join(tmp, "var", "admin.token")) as f:
            token = f.read().strip()
        body = body_of(a.kind, a.mb)
        # Round 2 replaces the list round 1 made: the API wants that said (replace=1).
        path = "/api/policy" if a.kind == "policy" else "/api/lists/big?replace=1"
        time.sleep(1)
        for round_ in (1, 2):
            before = status_kib(proc.pid, "VmRSS")
            t0 = time.monotonic()
            status, answer = put(admin, path, token, body)
            secs = time.monotonic() - t0
            after = status_kib(proc.pid, "VmRSS")
            time.sleep(a.settle)
            print("IMPORT round=%d kind=%s bytes=%d status=%d secs=%.1f rss_before_mib=%.0f "
                  "peak_mib=%.0f rss_after_mib=%.0f rss_settled_mib=%.0f (anon %.0f, file %.0f) "
                  "answer=%s"
                  % (round_, a.kind, len(body), status, secs, before / 1024,
                     status_kib(proc.pid, "VmHWM") / 1024, after / 1024,
                     status_kib(proc.pid, "VmRSS") / 1024, status_kib(proc.pid, "RssAnon") / 1024,
                     status_kib(proc.pid, "RssFile") / 1024,
                     answer[:60].decode("utf-8", "replace")))
            sys.stdout.flush()
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
