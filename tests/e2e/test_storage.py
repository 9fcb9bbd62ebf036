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
    db = sqlite3.connect("file:%s?mode=ro" % db_path, uri=True, timeout=60)
    try:
        return db.execute("SELECT count(*) FROM access_log").fetchone()[0]
    finally:
        db.close()


def load(px, url, stop, counter):
    """Sends requests on keep-alive connections until stop is set."""
    while not stop.is_set():
        try:
            with px.connect(timeout=60) as s:
                for _ in range(50):
                    if stop.is_set():
                        return
                    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % url).encode())
                    from harness import read_response
                    status, _, _, _ = read_response(s)
                    if status == 200:
                        counter.append(1)
        except (OSError, EOFError):  # refused, reset or closed once proxyd is killed
            if stop.is_set():
                return
            time.sleep(0.05)


class StorageFailureTest(unittest.TestCase):
    @staticmethod
    def log_stats(px):
        """The access-log writer's counters, as /api/stats reports them."""
        return px.api("GET", "/api/stats")["proxy"]["log"]

    def test_sigkill_under_load_leaves_database_intact(self):
        with DnsStub(RECORDS) as dns, Origin() as origin:
            px = Proxyd(dns=dns)
            px.start()
            url = "http://allowed.test:%d/small" % origin.port
            stop, done = threading.Event(), []
            threads = [threading.Thread(target=load, args=(px, url, stop, done)) for _ in range(4)]
            for t in threads:
                t.start()
            # Killed mid-load, once the writer has committed rows: more keep coming.
            self.assertTrue(wait_for(lambda: len(done) > 500, timeout=60), len(done))
            self.assertTrue(wait_for(lambda: count_rows(px.db_path) > 0, timeout=60))
            os.kill(px.pid, signal.SIGKILL)
            px.proc.wait(60)
            stop.set()
            for t in threads:
                t.join(60)
            px.stop()
            served = len(done)
            self.assertGreater(served, 100)
            db = sqlite3.connect(px.db_path, timeout=60)
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
                self.assertTrue(wait_for(lambda: count_rows(px.db_path) > rows, timeout=60))

    def test_locked_database_does_not_stop_the_relay(self):
        with DnsStub(RECORDS) as dns, Origin() as origin, Proxyd(dns=dns) as px:
            url = "http://allowed.test:%d/small" % origin.port
            self.assertEqual(px.get(url)[0], 200)
            self.assertTrue(wait_for(lambda: count_rows(px.db_path) >= 1, timeout=60))
            # Another process takes the write lock and holds it.
            holder = sqlite3.connect(px.db_path, timeout=60, isolation_level=None)
            holder.execute("BEGIN EXCLUSIVE")
            try:
                # Every request is served while the writer cannot write (a relay that waited
                # for the lock would hang here until the socket's hang guard).
                for _ in range(200):
                    status, _, body = px.get(url, timeout=60)
                    self.assertEqual((status, len(body)), (200, 1024))
            finally:
                holder.execute("ROLLBACK")
                holder.close()

            # Writing resumes once the lock is gone. The writer retries once a second and
            # drops what it drains meanwhile, so a record sent just after the unlock may be
            # dropped: keep sending until one is written.
            sent = []

            def logged_after_lock():
                sent.append(len(sent))
                self.assertEqual(px.get(url + "?after-lock-%d" % sent[-1], timeout=60)[0], 200)
                db = sqlite3.connect("file:%s?mode=ro" % px.db_path, uri=True, timeout=60)
                try:
                    return db.execute("SELECT count(*) FROM access_log "
                                      "WHERE path LIKE '%after-lock-%'").fetchone()[0]
                finally:
                    db.close()
            self.assertTrue(wait_for(logged_after_lock, timeout=60, interval=0.2),
                            "writer did not resume")
            self.assertTrue(wait_for(lambda: self.log_stats(px)["db_ok"], timeout=60),
                            self.log_stats(px))

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
                        status, _, body = px.get(url, timeout=60)
                        ok += status == 200 and len(body) == 1024
                    self.assertEqual(ok, 3000)

                    # The writer noticed and counts what it could not write. db_ok tells how
                    # the last batch went, and a small batch can still fit in space SQLite
                    # freed: keep logging (the disk stays full) until a look shows both.
                    def failing():
                        self.assertEqual(px.get(url, timeout=60)[0], 200)
                        s = self.log_stats(px)
                        return s if s["dropped_db_error"] > 0 and not s["db_ok"] else None
                    stats = wait_for(failing, timeout=60, interval=0.2)
                    self.assertTrue(stats, "no dropped rows reported: %s" % self.log_stats(px))
                    self.assertNotEqual(stats["last_error"], "")
            finally:
                subprocess.run(["umount", "-l", mnt], capture_output=True)


if __name__ == "__main__":
    unittest.main()
