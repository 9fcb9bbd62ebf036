"""GET /api/stats from the real proxyd: every counter of the tables it is generated from
(base/stats.h, and the reasons of listener.h, conn_close.h and auth.h) is in the JSON, under
its own name, and counting."""
import os
import re
import socket
import unittest

from harness import HERE, DnsStub, Origin, Proxyd, wait_for

RECORDS = {"allowed.test": "127.0.0.1"}
SOURCE = os.path.join(HERE, "..", "..")


def table_lines(path, macro):
    """The text of one X-macro table (#define MACRO and its continued lines) in a header."""
    with open(os.path.join(SOURCE, path)) as f:
        text = f.read()
    lines = []
    for line in text[text.index("#define %s " % macro):].split("\n"):
        lines.append(line)
        if not line.rstrip().endswith("\\"):
            return "\n".join(lines)


def table(path, macro):
    """The first arguments of an X(name, ...) table: field names."""
    return re.findall(r"X\((\w+)\s*,", table_lines(path, macro))


def table_texts(path, macro):
    """The second arguments of an X(ENUM, "text") table."""
    return re.findall(r'X\(\w+\s*,\s*"([^"]*)"', table_lines(path, macro))


class StatsTableTest(unittest.TestCase):

    def test_every_table_entry_is_in_api_stats(self):
        scalars = (table("base/stats.h", "STATS_WORKER_TABLE") +
                   table("base/stats.h", "STATS_PROCESS_TABLE"))
        groups = table("base/stats.h", "STATS_GROUP_TABLE")
        self.assertIn("requests_total", scalars)
        self.assertEqual(groups, ["connections_refused", "closes", "auth",
                                  "connections_by_state", "requests_finished"])
        want = {
            "connections_refused": table_texts("proxy/listener.h", "LISTENER_REFUSE_TABLE"),
            "closes": [t or "none" for t in table_texts("proxy/conn_close.h",
                                                        "CONN_CLOSE_TABLE")],
            "auth": table("proxy/auth.h", "AUTH_COUNTER_TABLE"),
            "connections_by_state": ["idle", "handshake", "bump", "peek", "read-head", "auth",
                                     "resolve", "connect", "origin-tls", "relay", "tunnel", "reply", "linger"],
            # a combination appears once it has counted: here the one GET so far
            "requests_finished": ["allow/2xx/forward"],
        }
        self.assertIn("client-closed", want["closes"])
        self.assertIn("verifications", want["auth"])
        with DnsStub(RECORDS) as dns, Origin() as origin, Proxyd(dns=dns) as px:
            url = "http://allowed.test:%d/small" % origin.port
            self.assertEqual(px.get(url)[0], 200)
            # a client that goes away without a request: counted as a close when it is seen
            socket.create_connection(("127.0.0.1", px.proxy_port), timeout=60).close()
            proxy = px.api("GET", "/api/stats")["proxy"]
            for name in scalars:
                self.assertIsInstance(proxy.get(name), int, name)
            for group in groups:
                self.assertEqual(sorted(proxy[group]), sorted(want[group]), group)
                for key, value in proxy[group].items():
                    self.assertIsInstance(value, int, "%s.%s" % (group, key))
            self.assertGreaterEqual(proxy["requests_total"], 1)

            def closed():
                closes = px.api("GET", "/api/stats")["proxy"]["closes"]
                return sum(closes.values()) >= 1

            self.assertTrue(wait_for(closed, timeout=60), "no close counted")


if __name__ == "__main__":
    unittest.main()
