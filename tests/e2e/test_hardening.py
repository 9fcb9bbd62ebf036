"""End-to-end tests of proxyd's files and the admin server's hardening: the data folder and
the database are private (0700, 0600) and wider existing ones are reported in the log; the
admin server answers only to its own names (Host), /proxy.pac included."""
import os
import socket
import stat
import unittest

from harness import Proxyd, read_response, wait_for


def admin_get(px, path, host):
    """GET path from the admin server with the given Host; returns (status, body)."""
    s = socket.create_connection(("127.0.0.1", px.admin_port), timeout=60)
    try:
        s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                   % (path, host)).encode())
        status, _, body, _ = read_response(s)
        return status, body
    finally:
        s.close()


class FilesTest(unittest.TestCase):
    def test_fresh_data_folder_and_database_are_private(self):
        with Proxyd() as px:
            # proxyd keeps the database open, so its -wal and -shm exist while it runs.
            paths = [px.db_path + s for s in ("", "-wal", "-shm")]
            self.assertTrue(wait_for(lambda: all(os.path.exists(p) for p in paths)), paths)
            self.assertEqual(stat.S_IMODE(os.stat(px.data_dir).st_mode), 0o700)
            for p in paths + [os.path.join(px.data_dir, "admin.token")]:
                self.assertEqual(stat.S_IMODE(os.stat(p).st_mode), 0o600, p)
            self.assertNotIn("open to other users", px.log())

    def test_wider_existing_folder_and_database_are_reported(self):
        px = Proxyd()
        os.makedirs(px.data_dir)
        os.chmod(px.data_dir, 0o755)
        open(px.db_path, "w").close()  # SQLite takes an empty file as a new database
        os.chmod(px.db_path, 0o644)
        with px:
            self.assertTrue(wait_for(lambda: "chmod 600 " + px.db_path in px.log()), px.log())
            self.assertIn("chmod 700 " + px.data_dir, px.log())
            # Reported, not changed: that is the admin's call.
            self.assertEqual(stat.S_IMODE(os.stat(px.data_dir).st_mode), 0o755)


class AdminHostTest(unittest.TestCase):
    def test_only_our_names_are_answered(self):
        with Proxyd(extra_args=["--admin-host", "pac.test,Admin.Test"]) as px:
            port = px.admin_port
            for host in ("127.0.0.1:%d" % port, "localhost:%d" % port, "pac.test:%d" % port,
                         "admin.test:%d" % port, "%s:%d" % (socket.gethostname(), port)):
                status, body = admin_get(px, "/proxy.pac", host)
                self.assertEqual(status, 200, host)
                self.assertIn(b"FindProxyForURL", body)
            for host in ("evil.test:%d" % port, "pac.test.evil.test:%d" % port,
                         "pac.test:%d" % (port + 1 if port < 65535 else 1)):
                for path in ("/proxy.pac", "/", "/login", "/api/health"):
                    status, body = admin_get(px, path, host)
                    self.assertEqual(status, 421, (host, path))
                    self.assertIn(b"--admin-host", body)


if __name__ == "__main__":
    unittest.main()
