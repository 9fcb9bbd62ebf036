"""End-to-end tests of the access log under failure: kill -9 under load leaves a sound
database; a database that refuses writes never stops the relay."""
import os
import signal
import sqlite3
import subprocess
import threading
import time
import unittest

from harness import DnsStub, Origin, Proxyd, wait_for

RECORDS = {"allowed.test": "127.0.0.1"}


def count_rows(db_path):
    db = sqlite3.connect("file:%s?mode=ro" % db_path, uri=True, timeout=5)
    try:
        return db.execute("SELECT count(*) FROM access_log").fetchone()[0]
    finally:
        db.close()


def load(px, url, stop, counter):
    """Sends requests on keep-alive connections until stop is set."""
    while not stop.is_set():
        try:
            with px.connect(timeout=5) as s:
                for _ in range(50):
                    if stop.is_set():
                        return
                    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % url).encode())
                    from harness import read_response
                    status, _, _, _ = read_response(s)
                    if status == 200:
                        counter.append(1)
        except OSError:
            if stop.is_set():
                return
            time.sleep(0.05)


class StorageFailureTest(unittest.TestCase):
    def test_sigkill_under_load_leaves_database_intact(self):
        with DnsStub(RECORDS) as dns, Origin() as origin:
            px = Proxyd(dns=dns)
            px.start()
            url = "http://allowed.test:%d/small" % origin.port
            stop, done = threading.Event(), []
            threads = [threading.Thread(target=load, args=(px, url, stop, done)) for _ in range(4)]
            for t in threads:
                t.start()
            wait_for(lambda: len(done) > 500, timeout=20)
            time.sleep(1.5)
            os.kill(px.pid, signal.SIGKILL)
            px.proc.wait(10)
            stop.set()
            for t in threads:
                t.join(10)
            px.stop()
            served = len(done)
            self.assertGreater(served, 100)
            db = sqlite3.connect(px.db_path, timeout=5)
            try:
                self.assertEqual(db.execute("PRAGMA integrity_check").fetchone()[0], "ok")
                rows = db.execute("SELECT count(*) FROM access_log").fetchone()[0]
            finally:
                db.close()
            # At most about the last second (plus the flush interval) may be missing.
            self.assertGreater(rows, 0)
            self.assertLessEqual(rows, served + 10)
            # The database opens again for a new proxyd, which keeps logging.
            with Proxyd(dns=dns, extra_args=["--data-dir", px.data_dir]) as px2:
                self.assertEqual(px2.get(url)[0], 200)
                self.assertTrue(wait_for(lambda: count_rows(px.db_path) > rows, timeout=5))

    def test_locked_database_does_not_stop_the_relay(self):
        with DnsStub(RECORDS) as dns, Origin() as origin, Proxyd(dns=dns) as px:
            url = "http://allowed.test:%d/small" % origin.port
            self.assertEqual(px.get(url)[0], 200)
            self.assertTrue(wait_for(lambda: count_rows(px.db_path) >= 1, timeout=5))
            # Another process takes the write lock and holds it.
            holder = sqlite3.connect(px.db_path, timeout=5, isolation_level=None)
            holder.execute("BEGIN EXCLUSIVE")
            try:
                t0 = time.monotonic()
                for _ in range(200):
                    status, _, body = px.get(url, timeout=5)
                    self.assertEqual((status, len(body)), (200, 1024))
                self.assertLess(time.monotonic() - t0, 60)
            finally:
                holder.execute("ROLLBACK")
                holder.close()
            # Writing resumes once the lock is gone.
            self.assertEqual(px.get(url + "?after-lock")[0], 200)

            def logged_after_lock():
                db = sqlite3.connect("file:%s?mode=ro" % px.db_path, uri=True, timeout=5)
                try:
                    return db.execute("SELECT count(*) FROM access_log WHERE path LIKE '%after-lock'").fetchone()[0]
                finally:
                    db.close()
            self.assertTrue(wait_for(logged_after_lock, timeout=10), "writer did not resume")

    def test_full_disk_does_not_stop_the_relay(self):
        # A tiny tmpfs as the data folder (needs root and mount); otherwise a read-only file.
        with DnsStub(RECORDS) as dns, Origin() as origin:
            mnt = None
            px = Proxyd(dns=dns)
            if os.geteuid() == 0 and subprocess.run(["which", "mount"], capture_output=True).returncode == 0:
                mnt = os.path.join(px.tmp, "small")
                os.makedirs(mnt)
                r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", mnt],
                                   capture_output=True)
                if r.returncode != 0:
                    mnt = None
            if mnt is None:
                self.skipTest("cannot mount a small tmpfs here")
            try:
                px.args[px.args.index("--data-dir") + 1] = mnt
                px.data_dir = mnt
                with px:
                    url = "http://allowed.test:%d/small?%s" % (origin.port, "p" * 900)
                    ok = 0
                    for _ in range(3000):
                        status, _, body = px.get(url, timeout=5)
                        ok += status == 200 and len(body) == 1024
                    self.assertEqual(ok, 3000)
                    # The writer noticed and counts what it could not write.
                    stats = wait_for(lambda: (lambda s: s if s["dropped_db_error"] > 0 else None)(
                        px.api("GET", "/api/stats")["proxy"]["log"]), timeout=10)
                    self.assertTrue(stats, "no dropped rows reported")
                    self.assertFalse(stats["db_ok"])
            finally:
                subprocess.run(["umount", "-l", mnt], capture_output=True)


if __name__ == "__main__":
    unittest.main()
