"""End-to-end tests of list subscriptions through a running proxyd: proxyd fetches a list
from a local origin by a name the DNS stub answers, imports it as a policy version audited as
subscription:NAME, sends the ETag back and keeps the list on a 304, imports a changed list,
keeps the list (and says why) on a 500, an empty body and an over-size body, refuses a URL or
a redirect that resolves to a refused target, and fetches on its schedule by itself, also
after a restart."""
import http.server
import json
import os
import sqlite3
import ssl
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

from harness import PROXYCTL, DnsStub, Proxyd, free_port, wait_for
from tls_util import issue, make_ca

MAX_BYTES = 4000


class ListOrigin:
    """An HTTP origin on 127.0.0.1 whose answers the test sets per path: (status, body,
    etag). It answers 304 when If-None-Match is the path's ETag, and keeps each request's
    path and headers. A held path's answer waits until release(path) (60 s at most); a
    client of the test (a browser flow) holds and releases PATH with GET /hold/PATH and
    GET /release/PATH. With tls=(cert, key) it speaks HTTPS."""

    def __init__(self, tls=None):
        self.pages = {}
        self.requests = []
        self.holds = {}
        self.lock = threading.Lock()
        origin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                for verb, act in (("/hold", origin.hold), ("/release", origin.release)):
                    if self.path.startswith(verb + "/"):
                        act(self.path[len(verb):])
                        self.send_response(204)
                        self.end_headers()
                        return
                with origin.lock:
                    origin.requests.append((self.path, dict(self.headers)))
                    hold = origin.holds.get(self.path)
                if hold:
                    hold.wait(60)
                with origin.lock:
                    page = origin.pages.get(self.path)
                if page is None:
                    status, body, extra = 404, b"", {}
                else:
                    status, body, extra = page
                etag = extra.get("ETag")
                if etag and self.headers.get("If-None-Match") == etag:
                    status, body = 304, b""
                self.send_response(status)
                for k, v in extra.items():
                    self.send_header(k, v)
                if status != 304:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)

    def __enter__(self):
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def set(self, path, status, body, **headers):
        with self.lock:
            self.pages[path] = (status, body, headers)

    def hold(self, path):
        with self.lock:
            self.holds[path] = threading.Event()

    def release(self, path):
        with self.lock:
            self.holds.pop(path).set()

    def hits(self, path):
        with self.lock:
            return [h for p, h in self.requests if p == path]


def refreshed(px, name):
    """Asks for a refresh (answered at once, 202, the row "fetching") and returns the
    subscription once its fetch is recorded."""
    asked = px.api("POST", "/api/subscriptions/%s/refresh" % name)
    assert asked["name"] == name and asked["fetching"] is True, asked

    def done():
        rows = [s for s in px.api("GET", "/api/subscriptions")["subscriptions"]
                if s["name"] == name]
        return rows and not rows[0]["fetching"] and rows[0]
    s = wait_for(done)
    assert s, "the refresh of %s did not end" % name
    assert s["checked_ms"] > asked["checked_ms"], "the refresh of %s was not recorded: %s" % (
        name, s)
    return s


class SubscriptionsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dns = cls.enterClassContext(DnsStub(records={
            "lists.test": "127.0.0.1", "meta.test": "169.254.169.254"}))
        cls.origin = cls.enterClassContext(ListOrigin())
        cls.px = cls.enterClassContext(Proxyd(dns=cls.dns, extra_args=[
            "--subscription-min-interval", "2", "--list-max-bytes", str(MAX_BYTES)]))

    def url(self, path):
        return "http://lists.test:%d%s" % (self.origin.port, path)

    def sub(self, name):
        for s in self.px.api("GET", "/api/subscriptions")["subscriptions"]:
            if s["name"] == name:
                return s
        return None

    def fetched(self, name):
        """The subscription once its first fetch has been recorded."""
        s = wait_for(lambda: (self.sub(name) or {}).get("checked_ms", 0) > 0 and self.sub(name))
        self.assertTrue(s, "no fetch of %s recorded" % name)
        return s

    def entries(self, name):
        return sorted(self.px.api("GET", "/api/lists/%s" % name)["entries"])

    def refresh(self, name):
        return refreshed(self.px, name)

    def current(self):
        return self.px.api("GET", "/api/versions")["current"]

    def api_error(self, method, path, body=None):
        with self.assertRaises(urllib.error.HTTPError) as cm:
            self.px.api(method, path, body)
        return cm.exception.code, json.loads(cm.exception.read())

    def test_fetch_etag_change_and_failures_keep_the_list(self):
        self.origin.set("/ads.txt", 200, b"# ads\n0.0.0.0 ads.example\ntrack.example\n",
                        ETag='"v1"')
        before = self.current()
        self.px.api("PUT", "/api/subscriptions/ads", {"url": self.url("/ads.txt"),
                                                      "every_s": 86400})
        s = self.fetched("ads")
        self.assertEqual((s["status"], s["entries"], s["error"]), (200, 2, ""))
        self.assertEqual(s["etag"], '"v1"')
        self.assertEqual(self.entries("ads"), ["ads.example", "track.example"])
        v1 = self.current()
        self.assertEqual(v1, before + 1)
        top = self.px.api("GET", "/api/versions?limit=1")["rows"][0]
        self.assertEqual(top["actor"], "subscription:ads")
        self.assertIn("2 entries", top["message"])
        # The list works in a rule at once.
        self.px.api("POST", "/api/rules", {"text": "deny list ads"})

        # Unchanged: the ETag goes back, the 304 keeps the list and records the check.
        s = self.refresh("ads")
        self.assertEqual(self.origin.hits("/ads.txt")[-1].get("If-None-Match"), '"v1"')
        self.assertEqual((s["status"], s["entries"], s["error"]), (304, 2, ""))
        self.assertEqual(self.current(), v1 + 1)  # the rule only

        # Changed: imported as a new version.
        self.origin.set("/ads.txt", 200, b"ads.example\ntrack.example\nspy.example\n",
                        ETag='"v2"')
        s = self.refresh("ads")
        self.assertEqual((s["status"], s["entries"], s["error"]), (200, 3, ""))
        self.assertEqual(self.entries("ads"), ["ads.example", "spy.example", "track.example"])
        self.assertEqual(self.current(), v1 + 2)
        imported = s["imported_ms"]

        # A 500, an empty body, an over-size body: the list stays, the reason is shown.
        cases = [(500, b"oops", "HTTP status 500"),
                 (200, b"", "download is empty"),
                 (200, b"# only a comment\n", "download is empty"),
                 (200, b"not a domain!\n", "no domains"),
                 (200, b"x.example\n" * (MAX_BYTES // 10 + 1), "larger than %d bytes" % MAX_BYTES)]
        for status, body, why in cases:
            with self.subTest(status=status, why=why):
                self.origin.set("/ads.txt", status, body, ETag='"bad"')
                s = self.refresh("ads")
                self.assertIn(why, s["error"])
                self.assertIn("the list was kept", s["error"])
                self.assertEqual(s["entries"], 3)
                self.assertEqual(s["imported_ms"], imported)
                self.assertEqual(s["etag"], '"v2"')  # the validators of the list kept
                self.assertEqual(self.entries("ads"),
                                 ["ads.example", "spy.example", "track.example"])
                self.assertEqual(self.current(), v1 + 2)

        # Unsubscribing keeps the list (a rule uses it).
        self.assertEqual(self.px.api("DELETE", "/api/subscriptions/ads"), {"unsubscribed": "ads"})
        self.assertIsNone(self.sub("ads"))
        self.assertEqual(len(self.entries("ads")), 3)
        audit = json.dumps(self.px.api("GET", "/api/audit?limit=50"))
        self.assertIn("subscription.add", audit)
        self.assertIn("subscription.delete", audit)

    def test_refused_targets(self):
        # A name resolving to a link-local address (a cloud's metadata service).
        self.px.api("PUT", "/api/subscriptions/meta", {"url": "http://meta.test/list",
                                                       "every_s": 86400})
        s = self.fetched("meta")
        self.assertIn("meta.test: target refused", s["error"])
        self.assertEqual((s["status"], s["entries"]), (0, -1))
        self.assertEqual(self.api_error("GET", "/api/lists/meta")[0], 404)
        # proxyd's own admin port, even with loopback targets allowed.
        self.px.api("PUT", "/api/subscriptions/self", {
            "url": "http://127.0.0.1:%d/api/health" % self.px.admin_port, "every_s": 86400})
        self.assertIn("target refused", self.fetched("self")["error"])
        # A port forward's listen port is proxyd's own too: its target is not reached.
        self.origin.set("/fwd.txt", 200, b"fwd.example\n")
        fwd = self.px.api("POST", "/api/forwards", {"listen": "127.0.0.1:%d" % free_port(),
                                                   "target": "127.0.0.1:%d" % self.origin.port})
        try:
            self.px.api("PUT", "/api/subscriptions/fwd", {
                "url": "http://%s/fwd.txt" % fwd["listen"], "every_s": 86400})
            s = self.fetched("fwd")
            self.assertIn("target refused (target is the proxy itself)", s["error"])
            self.assertEqual((s["status"], s["entries"]), (0, -1))
            self.assertEqual(self.origin.hits("/fwd.txt"), [])
        finally:
            self.px.api("DELETE", "/api/forwards/%d" % fwd["id"])
        # A redirect is checked like the first URL.
        self.origin.set("/away", 302, b"", Location="http://meta.test/list")
        self.px.api("PUT", "/api/subscriptions/away", {"url": self.url("/away"),
                                                       "every_s": 86400})
        self.assertIn("meta.test: target refused", self.fetched("away")["error"])
        self.origin.set("/there", 301, b"", Location="/there.txt")
        self.origin.set("/there.txt", 200, b"there.example\n")
        self.px.api("PUT", "/api/subscriptions/there", {"url": self.url("/there"),
                                                        "every_s": 86400})
        s = self.fetched("there")
        self.assertEqual((s["status"], s["entries"], s["error"]), (200, 1, ""))
        # Bad input is refused before anything is stored.
        for body, field in [({"url": "ftp://lists.test/x", "every_s": 60}, "url"),
                            ({"url": "file:///etc/passwd", "every_s": 60}, "url"),
                            ({"url": self.url("/x"), "every_s": 0}, "every_s"),
                            ({"url": self.url("/x")}, "every_s")]:
            code, err = self.api_error("PUT", "/api/subscriptions/bad", body)
            self.assertEqual((code, err.get("field")), (400, field), err)
        code, err = self.api_error("PUT", "/api/subscriptions/there",
                                   {"url": self.url("/x"), "every_s": 60})
        self.assertEqual((code, err.get("field")), (409, "replace"))
        self.assertIsNone(self.sub("bad"))

    def ctl(self, *args, expect=0):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PROXYCTL_", "PROXYD_"))}
        r = subprocess.run([PROXYCTL, "--url", self.px.admin_url, "--data-dir", self.px.data_dir]
                           + list(args), capture_output=True, text=True, timeout=60, env=env,
                           cwd=tempfile.gettempdir())
        self.assertEqual(r.returncode, expect, "proxyctl %s: exit %d\nstdout: %s\nstderr: %s"
                         % (" ".join(args), r.returncode, r.stdout, r.stderr))
        return r.stdout, r.stderr

    def test_a_subscription_removed_during_its_download_gets_no_import(self):
        self.origin.set("/gone.txt", 200, b"gone.example\n")
        self.origin.hold("/gone.txt")
        try:
            before = self.current()
            self.px.api("PUT", "/api/subscriptions/gone", {"url": self.url("/gone.txt"),
                                                           "every_s": 86400})
            self.assertTrue(wait_for(lambda: self.origin.hits("/gone.txt")), "no download")
            self.px.api("DELETE", "/api/subscriptions/gone")
        finally:
            self.origin.release("/gone.txt")
        # The thread fetches one list at a time: once a later subscription's fetch is
        # recorded, the removed one's download has been dealt with.
        self.origin.set("/after.txt", 200, b"after.example\n")
        self.px.api("PUT", "/api/subscriptions/after", {"url": self.url("/after.txt"),
                                                        "every_s": 86400})
        self.assertEqual(self.fetched("after")["entries"], 1)
        self.assertEqual(self.api_error("GET", "/api/lists/gone")[0], 404)
        self.assertIsNone(self.sub("gone"))
        messages = [v["message"] for v in self.px.api("GET", "/api/versions?limit=50")["rows"]
                    if v["version"] > before]
        self.assertFalse([m for m in messages if "gone.txt" in m], messages)
        self.px.api("DELETE", "/api/subscriptions/after")

    def test_slow_refreshes_leave_the_admin_server_free(self):
        """Two refreshes whose downloads the origin holds (as a slow list host would, for
        up to the 60 s list-fetch-timeout): each is answered 202 at once, /healthz,
        /metrics and the API answer meanwhile, the rows say "fetching", and the outcome is
        there once the origin lets go."""
        names = ("slow1", "slow2")
        for n in names:
            self.origin.set("/%s.txt" % n, 200, b"%s.example\n" % n.encode())
            self.px.api("PUT", "/api/subscriptions/" + n, {"url": self.url("/%s.txt" % n),
                                                          "every_s": 86400})
            self.fetched(n)
        base = {n: len(self.origin.hits("/%s.txt" % n)) for n in names}
        for n in names:
            self.origin.hold("/%s.txt" % n)
        try:
            for n in names:
                self.origin.set("/%s.txt" % n, 200, b"%s.example\nmore.example\n" % n.encode())
                asked = self.px.api("POST", "/api/subscriptions/%s/refresh" % n)
                self.assertTrue(asked["fetching"], asked)
            self.assertTrue(wait_for(lambda: len(self.origin.hits("/slow1.txt")) > base["slow1"]),
                            "the first refresh did not start")
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            for path in ("/healthz", "/metrics"):
                with opener.open(self.px.admin_url + path, timeout=20) as r:
                    self.assertEqual(r.status, 200, path)
            rows = {s["name"]: s for s in self.px.api("GET", "/api/subscriptions")["subscriptions"]}
            self.assertEqual([rows[n]["fetching"] for n in names], [True, True])
        finally:
            for n in names:
                self.origin.release("/%s.txt" % n)
        for n in names:
            s = wait_for(lambda: (self.sub(n) or {}).get("entries") == 2 and
                         not self.sub(n)["fetching"] and self.sub(n))
            self.assertTrue(s, "the refresh of %s was not recorded" % n)
            self.assertEqual((s["status"], s["error"]), (200, ""))
            self.px.api("DELETE", "/api/subscriptions/" + n)

    def test_proxyctl_verbs(self):
        self.origin.set("/ctl.txt", 200, b"one.example\ntwo.example\n", ETag='"c1"')
        out, _ = self.ctl("lists", "subscribe", "ctl", self.url("/ctl.txt"), "--every", "12h")
        self.assertIn("subscribed list ctl to %s every 12h" % self.url("/ctl.txt"), out)
        self.fetched("ctl")
        out, _ = self.ctl("lists", "subscriptions")
        line = [l for l in out.splitlines() if l.startswith("ctl ")]
        self.assertEqual(len(line), 1, out)
        self.assertRegex(line[0], r"^ctl +12h +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +200 +2 +http://")
        out, _ = self.ctl("lists", "refresh", "ctl")
        self.assertEqual(out.strip(), "list ctl: not modified (2 entries)")
        self.origin.set("/ctl.txt", 503, b"")
        out, err = self.ctl("lists", "refresh", "ctl", expect=1)
        self.assertIn("HTTP status 503; the list was kept", err)
        out, _ = self.ctl("--json", "lists", "subscriptions")
        row = [s for s in json.loads(out)["subscriptions"] if s["name"] == "ctl"][0]
        self.assertEqual((row["status"], row["entries"]), (503, 2))
        # Over a list that exists: --replace, or nothing changes.
        self.ctl("lists", "import", "mine", os.devnull, "--replace")
        _, err = self.ctl("lists", "subscribe", "mine", self.url("/ctl.txt"), expect=1)
        self.assertIn("--replace", err)
        self.assertIsNone(self.sub("mine"))
        self.ctl("lists", "subscribe", "x", "ftp://lists.test/x", expect=2)
        _, err = self.ctl("lists", "subscribe", "x", self.url("/x"), "--every", "1s", expect=1)
        self.assertIn("every_s: 2 to", err)
        self.ctl("lists", "unsubscribe", "ctl")
        _, err = self.ctl("lists", "refresh", "ctl", expect=1)
        self.assertIn("no such subscription ctl", err)
        out, _ = self.ctl("lists", "show", "ctl")
        self.assertEqual(out.split(), ["one.example", "two.example"])

    def test_credentials_in_the_url_are_shown_only_to_those_who_may_change_it(self):
        self.origin.set("/secret.txt?token=t0k3n", 200, b"secret-list.example\n")
        url = "http://reader:s3cr3t@lists.test:%d/secret.txt?token=t0k3n" % self.origin.port
        self.px.api("PUT", "/api/subscriptions/secret", {"url": url, "every_s": 86400})
        got = self.fetched("secret")
        self.assertEqual((got["status"], got["error"]), (200, ""), got)
        self.assertEqual(got["url"], url)  # the admin's own view
        self.px.api("PUT", "/api/admins/viewer-v", {"password": "viewer-password-1",
                                                    "role": "viewer", "create": True})
        token = self.px.api("POST", "/api/tokens", {"name": "viewer-v-t",
                                                    "owner": "viewer-v"})["token"]
        seen = [s for s in self.px.api("GET", "/api/subscriptions", token=token)["subscriptions"]
                if s["name"] == "secret"]
        self.assertEqual([s["url"] for s in seen],
                         ["http://***@lists.test:%d/secret.txt?***" % self.origin.port])
        # A password holding an unencoded '@': nothing of it shows either.
        self.px.api("PUT", "/api/subscriptions/secret2", {
            "url": "http://reader:s3@cr3t@lists.test:%d/s2.txt" % self.origin.port,
            "every_s": 86400})
        seen = [s["url"] for s in self.px.api("GET", "/api/subscriptions", token=token)
                ["subscriptions"] if s["name"] == "secret2"]
        self.assertEqual(seen, ["http://***@lists.test:%d/s2.txt" % self.origin.port])
        self.px.api("DELETE", "/api/subscriptions/secret2")
        # The version it made is read by every role: no password, no query in its message.
        messages = [v["message"] for v in self.px.api("GET", "/api/versions")["rows"]
                    if v["actor"] == "subscription:secret"]
        self.assertTrue(messages, "no version by subscription:secret")
        self.assertNotIn("s3cr3t", " ".join(messages))
        self.assertIn("***@lists.test", messages[0])
        self.px.api("DELETE", "/api/subscriptions/secret")

    def test_schedule_fires_by_itself_and_survives_a_restart(self):
        self.origin.set("/sched.txt", 200, b"sched.example\n")
        self.px.api("PUT", "/api/subscriptions/sched", {"url": self.url("/sched.txt"),
                                                        "every_s": 2})
        self.assertTrue(wait_for(lambda: len(self.origin.hits("/sched.txt")) >= 3),
                        "the schedule did not fire by itself")
        self.px.stop()
        self.px.start()
        n = len(self.origin.hits("/sched.txt"))
        self.assertTrue(wait_for(lambda: len(self.origin.hits("/sched.txt")) >= n + 2),
                        "no fetch after the restart")
        self.assertEqual(self.sub("sched")["entries"], 1)
        self.px.api("DELETE", "/api/subscriptions/sched")


class ReloadedSettingsTest(unittest.TestCase):
    def test_loopback_targets_follow_a_reload_as_requests_do(self):
        """allow-loopback-targets turned off by SIGHUP: the proxy refuses loopback targets at
        once, and so does the next list fetch."""
        with DnsStub(records={"lists.test": "127.0.0.1"}) as dns, ListOrigin() as origin, \
                tempfile.TemporaryDirectory(prefix="pxsubsreload.") as d:
            conf = os.path.join(d, "proxyd.conf")
            with open(conf, "w") as f:
                f.write("allow-loopback-targets yes\n")
            px = Proxyd(dns=dns, extra_args=["--config", conf])
            px.args.remove("--allow-loopback-targets")  # the config file's word decides
            with px:
                url = "http://lists.test:%d/l.txt" % origin.port
                origin.set("/l.txt", 200, b"one.example\n")
                px.api("PUT", "/api/subscriptions/l", {"url": url, "every_s": 86400})
                s = wait_for(lambda: [s for s in px.api("GET", "/api/subscriptions")
                                      ["subscriptions"] if s["checked_ms"]])
                self.assertTrue(s, "no fetch recorded")
                self.assertEqual((s[0]["status"], s[0]["entries"], s[0]["error"]), (200, 1, ""))
                with open(conf, "w") as f:
                    f.write("allow-loopback-targets no\n")
                os.kill(px.pid, 1)
                self.assertTrue(wait_for(lambda: "settings reloaded" in px.log()))
                # A request to the same origin is refused now ...
                self.assertTrue(wait_for(lambda: px.get(url)[0] == 403))
                # ... and so is the list's next download.
                s = refreshed(px, "l")
                self.assertIn("loopback target address", s["error"])
                self.assertEqual(s["entries"], 1)


class LockedDatabaseTest(unittest.TestCase):
    def test_a_fetch_the_store_cannot_record_is_not_repeated_every_second(self):
        """While the database takes no write, a due subscription whose fetch could not be
        recorded still looks due; the thread waits a minute instead of downloading it again
        at every round (about every 3 s here: the 2 s busy timeout and the 1 s poll)."""
        with DnsStub(records={"lists.test": "127.0.0.1"}) as dns, ListOrigin() as origin, \
                Proxyd(dns=dns, extra_args=["--subscription-min-interval", "2"]) as px:
            origin.set("/l.txt", 200, b"one.example\n", ETag='"v1"')
            px.api("PUT", "/api/subscriptions/l", {"url": "http://lists.test:%d/l.txt"
                                                   % origin.port, "every_s": 2})
            self.assertTrue(wait_for(lambda: len(origin.hits("/l.txt")) >= 2),
                            "the schedule did not fire")
            db = sqlite3.connect(px.db_path, timeout=60, isolation_level=None)
            try:
                db.execute("BEGIN IMMEDIATE")  # other writers wait, then fail; readers go on
                before = len(origin.hits("/l.txt"))
                time.sleep(14)
                during = len(origin.hits("/l.txt")) - before
            finally:
                db.execute("ROLLBACK")
                db.close()
            # One fetch whose record failed (and perhaps one already under way), not one a round.
            self.assertLessEqual(during, 2, "%d downloads while the database was locked" % during)


class HttpsListTest(unittest.TestCase):
    def test_https_lists_are_verified_against_the_upstream_ca_too(self):
        """An HTTPS list host whose certificate an intranet CA signed: fetched when that CA
        is given by --upstream-ca (as an inspected origin is verified), refused without it."""
        with tempfile.TemporaryDirectory(prefix="pxsubsca.") as d:
            ca = make_ca(d, "intranet-ca")
            cert = issue(d, ca, "lists", "lists.test")
            with DnsStub(records={"lists.test": "127.0.0.1"}) as dns, \
                    ListOrigin(tls=cert) as origin:
                origin.set("/l.txt", 200, b"intranet.example\n")
                url = "https://lists.test:%d/l.txt" % origin.port
                for extra, trusted in (([], False), (["--upstream-ca", ca[0]], True)):
                    with Proxyd(dns=dns, extra_args=extra) as px:
                        px.api("PUT", "/api/subscriptions/l", {"url": url, "every_s": 86400})
                        s = wait_for(lambda: [s for s in px.api("GET", "/api/subscriptions")
                                              ["subscriptions"] if s["checked_ms"]])
                        self.assertTrue(s, "no fetch recorded")
                        if trusted:
                            self.assertEqual((s[0]["status"], s[0]["entries"], s[0]["error"]),
                                             (200, 1, ""))
                        else:
                            self.assertEqual((s[0]["status"], s[0]["entries"]), (0, -1))
                            self.assertIn("certificate", s[0]["error"])


class ShutdownTest(unittest.TestCase):
    def test_stop_does_not_wait_for_a_download_s_slow_dns_answer(self):
        """A list's name whose DNS answer never comes (a 5-minute lookup timeout): SIGTERM
        ends proxyd without waiting for it (the 60 s guard is far below the lookup's)."""
        with DnsStub(records={}, drops={"never.test"}) as dns:
            px = Proxyd(dns=dns, extra_args=["--dns-timeout", "300000"])
            with px:
                px.api("PUT", "/api/subscriptions/slow", {"url": "http://never.test/l.txt",
                                                          "every_s": 86400})
                self.assertTrue(wait_for(lambda: dns.queries["never.test"] > 0),
                                "the download did not ask for the name")
                self.assertEqual(px.stop(timeout=60), 0, "proxyd did not stop while resolving")


if __name__ == "__main__":
    unittest.main()
