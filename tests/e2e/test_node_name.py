"""--node-name: every access-log row carries the proxyd that wrote it (the host name unless
set), as GET /api/logs shows."""
import socket
import unittest

from harness import DnsStub, Origin, Proxyd, wait_for

RECORDS = {"allowed.test": "127.0.0.1"}


def nodes_of_rows(px, want):
    """The node of each of the first `want` rows, once that many are written."""
    rows = []

    def written():
        rows[:] = px.api("GET", "/api/logs")["rows"]
        return len(rows) >= want

    assert wait_for(written, timeout=60), rows
    return [r["node"] for r in rows]


class NodeNameTest(unittest.TestCase):

    def test_rows_carry_the_node_name_given(self):
        with DnsStub(RECORDS) as dns, Origin() as origin, \
                Proxyd(dns=dns, extra_args=["--node-name", "edge-7"]) as px:
            for _ in range(2):
                self.assertEqual(px.get("http://allowed.test:%d/small" % origin.port)[0], 200)
            self.assertEqual(nodes_of_rows(px, 2), ["edge-7", "edge-7"])

    def test_rows_carry_the_host_name_by_default(self):
        with DnsStub(RECORDS) as dns, Origin() as origin, Proxyd(dns=dns) as px:
            self.assertEqual(px.get("http://allowed.test:%d/small" % origin.port)[0], 200)
            self.assertEqual(nodes_of_rows(px, 1), [socket.gethostname()])

    def test_overlong_node_name_refuses_to_start(self):
        px = Proxyd(extra_args=["--node-name", "n" * 64])
        with self.assertRaisesRegex(RuntimeError, "node-name: longer than 63 bytes"):
            px.start()
        px.stop()


if __name__ == "__main__":
    unittest.main()
