"""The dashboard's questions to the admin API, answered from real traffic: GET /api/stats for a
chosen range (its totals count only that range) with what each proxy counter counts, GET
/api/top?kind=blocked_clients, and GET /api/visitors (who asked for one domain: per client,
with the client's name, and per user). Requests come from several loopback addresses
(127.0.0.2 ...), so each is its own client."""
import base64
import json
import socket
import time
import unittest
import urllib.error

from harness import DnsStub, Origin, Proxyd, read_response, wait_for

RECORDS = {"allowed.test": "127.0.0.1", "ads.test": "127.0.0.1"}
POLICY = "deny domain ads.test\nname 127.0.0.3 reception-pc\n"


def get_from(px, source, url):
    """GET url through proxyd from the loopback address source; returns the status."""
    host = url.split("/")[2]
    with socket.create_connection(("127.0.0.1", px.proxy_port), timeout=60,
                                  source_address=(source, 0)) as s:
        s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                   % (url, host)).encode())
        return read_response(s)[0]


class DashboardApiTest(unittest.TestCase):
    def test_range_top_blocked_clients_and_visitors(self):
        with DnsStub(RECORDS) as dns, Origin() as origin, Proxyd(dns=dns, policy=POLICY) as px:
            ok = "http://allowed.test:%d/small" % origin.port
            ads = "http://ads.test:%d/banner" % origin.port
            started = int(time.time() * 1000)
            for source, url, status in [("127.0.0.2", ads, 403), ("127.0.0.2", ads, 403),
                                        ("127.0.0.3", ads, 403), ("127.0.0.2", ok, 200),
                                        ("127.0.0.4", ok, 200)]:
                self.assertEqual(get_from(px, source, url), status, (source, url))
            self.assertTrue(wait_for(lambda: px.api("GET", "/api/stats")["totals"]["requests"]
                                     >= 5, timeout=60))

            stats = px.api("GET", "/api/stats")
            self.assertEqual((stats["totals"]["requests"], stats["totals"]["blocked"],
                              stats["totals"]["clients"]), (5, 3, 3))
            self.assertEqual(stats["proxy_help"]["bytes_down"], "bytes sent to clients")
            self.assertEqual(stats["proxy_help"]["log"]["written"], "access log rows committed")
            # A range before the traffic counts none of it, and says which range it is.
            past = px.api("GET", "/api/stats?since=%d&until=%d" % (started - 7200000,
                                                                    started - 3600000))
            self.assertEqual(past["totals"]["requests"], 0)
            self.assertEqual((past["since_ms"], past["until_ms"]),
                             (started - 7200000, started - 3600000))
            with self.assertRaises(urllib.error.HTTPError) as e:
                px.api("GET", "/api/stats?since=2000&until=1000")
            self.assertEqual(e.exception.code, 400)

            top = px.api("GET", "/api/top?kind=blocked_clients")
            self.assertEqual([(r["key"], r["requests"], r["key_name"]) for r in top["rows"]],
                             [("127.0.0.2", 2, None), ("127.0.0.3", 1, "reception-pc")])

            # Any spelling of the name asks for the same host.
            v = px.api("GET", "/api/visitors?host=ADS.test.")
            self.assertEqual(v["host"], "ads.test")
            self.assertEqual([(c["client"], c["client_name"], c["requests"], c["blocked"])
                              for c in v["clients"]],
                             [("127.0.0.2", None, 2, 2), ("127.0.0.3", "reception-pc", 1, 1)])
            for c in v["clients"]:
                self.assertLessEqual(started - 1000, c["first_ms"])
                self.assertLessEqual(c["first_ms"], c["last_ms"])
            self.assertEqual([(u["user"], u["requests"]) for u in v["users"]], [("", 3)])
            self.assertEqual(px.api("GET", "/api/visitors?host=ads.test&since=%d&until=%d"
                                    % (started - 7200000, started - 3600000))["clients"], [])
            for bad in ("", "?host=", "?host=a..b", "?host=x&since=5&until=1"):
                with self.assertRaises(urllib.error.HTTPError) as e:
                    px.api("GET", "/api/visitors" + bad)
                self.assertEqual(e.exception.code, 400, bad)
                self.assertIn("error", json.loads(e.exception.read()))

            # The log's client filter: an address, the start of one, or a network; the user
            # filter; the deciding rule.
            def clients(query):
                rows = px.api("GET", "/api/logs?" + query)["rows"]
                return sorted(r["client"] for r in rows)
            self.assertEqual(clients("client=127.0.0.2"), ["127.0.0.2"] * 3)
            # Other spellings of the same address find the rows logged in canonical form.
            self.assertEqual(clients("client=::ffff:127.0.0.2"), ["127.0.0.2"] * 3)
            self.assertEqual(clients("client=::FFFF:7f00:2"), ["127.0.0.2"] * 3)
            self.assertEqual(clients("client=127.0.0.*"), ["127.0.0.2"] * 3 + ["127.0.0.3",
                                                                             "127.0.0.4"])
            self.assertEqual(clients("client=127.0.0.2/31"), ["127.0.0.2"] * 3 + ["127.0.0.3"])
            self.assertEqual(clients("client=127.0.0.4/32"), ["127.0.0.4"])
            self.assertEqual(clients("client=::ffff:127.0.0.0/120"), clients("client=127."))
            self.assertEqual(clients("client=10.0.0.0/8"), [])
            self.assertEqual(clients("client=127.0.0.2/31&decision=allow"), ["127.0.0.2"])
            self.assertEqual(clients("user=nobody"), [])
            # The export takes the same filters (a copy of them, read page by page).
            exported = px.api("GET", "/api/logs/export?format=json&client=127.0.0.2/31")
            self.assertEqual(sorted(r["client"] for r in exported),
                             ["127.0.0.2"] * 3 + ["127.0.0.3"])
            self.assertEqual(px.api("GET", "/api/logs/export?format=json&client=127.0.0.*"
                                    "&user=nobody"), [])
            rule = [r for r in px.api("GET", "/api/rules")["rules"]
                    if r["text"] == "deny domain ads.test"][0]["id"]
            self.assertEqual(clients("rule=%d" % rule), ["127.0.0.2"] * 2 + ["127.0.0.3"])
            for bad in ("client=127.0.0.1/33", "client=127.0.0.1/24", "client=office-pc",
                        "rule=-1", "rule=x"):
                with self.assertRaises(urllib.error.HTTPError) as e:
                    px.api("GET", "/api/logs?" + bad)
                self.assertEqual(e.exception.code, 400, bad)
                self.assertIn(json.loads(e.exception.read())["field"], ("client", "rule"), bad)

    def test_user_filter(self):
        """Requests of proxy users: the log's user filter and who visited, per user."""
        with DnsStub(RECORDS) as dns, Origin() as origin, \
                Proxyd(dns=dns, policy="allow domain allowed.test users alice\n"
                                      "deny domain allowed.test\n") as px:
            px.api("PUT", "/api/users/alice", {"password": "alice-secret"})
            px.api("PUT", "/api/users/bob", {"password": "bob-secret-2"})
            url = "http://allowed.test:%d/small" % origin.port
            for user, password, status in [("alice", "alice-secret", 200),
                                           ("alice", "alice-secret", 200),
                                           ("bob", "bob-secret-2", 403)]:
                auth = base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
                got = px.get(url, headers=["Proxy-Authorization: Basic " + auth])[0]
                self.assertEqual(got, status, user)
            self.assertTrue(wait_for(lambda: len(px.api("GET", "/api/logs?user=bob")["rows"])
                                     == 1, timeout=60))
            rows = px.api("GET", "/api/logs?user=alice")["rows"]
            self.assertEqual([(r["user"], r["status"]) for r in rows], [("alice", 200)] * 2)
            v = px.api("GET", "/api/visitors?host=allowed.test")
            self.assertEqual([(u["user"], u["requests"], u["blocked"]) for u in v["users"]],
                             [("alice", 2, 0), ("bob", 1, 1)])


if __name__ == "__main__":
    unittest.main()
