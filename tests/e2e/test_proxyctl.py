"""End-to-end tests of proxyctl against a real proxyd: a block is in force in the proxy by
the time proxyctl returns and an unblock undoes it, rules/test/move/import/export/logs do what the man
page says, --json is JSON, and the exit codes (1 refused, 2 usage, 3 unreachable) hold."""
import json
import os
import re
import signal
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

from harness import PROXYCTL, DnsStub, Origin, Proxyd, wait_for

RECORDS = {"allowed.test": "127.0.0.1"}


def run_ctl(args, px=None, stdin=None, env_extra=None, timeout=30):
    """Runs proxyctl with the daemon's URL and data folder; returns (exit, stdout, stderr)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROXYCTL_", "PROXYD_"))}
    env.update(env_extra or {})
    cmd = [PROXYCTL]
    if px is not None:
        cmd += ["--url", px.admin_url, "--data-dir", px.data_dir]
    r = subprocess.run(cmd + list(args), input=stdin, capture_output=True, text=True,
                       timeout=timeout, env=env, cwd=tempfile.gettempdir())
    return r.returncode, r.stdout, r.stderr


class ProxyctlTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dns = DnsStub(records=RECORDS)
        cls.dns.__enter__()
        cls.origin = Origin()
        cls.origin.__enter__()
        cls.px = Proxyd(dns=cls.dns)
        cls.px.__enter__()
        cls.url = "http://allowed.test:%d/small" % cls.origin.port
        cls.tmp = tempfile.TemporaryDirectory(prefix="pxctl.")

    @classmethod
    def tearDownClass(cls):
        cls.px.__exit__(None, None, None)
        cls.origin.__exit__(None, None, None)
        cls.dns.__exit__(None, None, None)
        cls.tmp.cleanup()

    def setUp(self):
        # Every test starts from an empty policy.
        for rule in self.px.api("GET", "/api/rules")["rules"]:
            self.px.api("DELETE", "/api/rules/%d" % rule["id"])

    def ctl(self, *args, expect=0, **kw):
        code, out, err = run_ctl(args, self.px, **kw)
        self.assertEqual(code, expect, "proxyctl %s: exit %d\nstdout: %s\nstderr: %s"
                         % (" ".join(args), code, out, err))
        return out, err

    def status(self):
        return self.px.get(self.url)[0]

    def write(self, name, text):
        path = os.path.join(self.tmp.name, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_block_denies_once_proxyctl_returns_and_unblock_restores(self):
        self.assertEqual(self.status(), 200)
        out, _ = self.ctl("block", "allowed.test")
        m = re.fullmatch(r"blocked allowed\.test: rule (\d+) \(in force\)\n", out)
        self.assertIsNotNone(m, out)
        rule_id = int(m.group(1))
        # "(in force)" is the proxy's word that the new rule set is published: the very next
        # request is judged by it, however slow the machine.
        self.assertEqual(self.status(), 403, "not 403 after proxyctl block said in force")

        out, _ = self.ctl("rules")
        rows = [line.split() for line in out.splitlines()[1:]]
        self.assertIn([str(rule_id), "1", "on"], [r[:3] for r in rows], out)
        self.assertIn("deny domain allowed.test", out)

        out, _ = self.ctl("test", self.url)
        self.assertIn("action: deny", out)
        self.assertRegex(out, r"rule: +%d \(position 1\): deny domain allowed\.test" % rule_id)

        # The access log is written by another thread: poll for the blocked request.
        def blocked_row():
            return [line for line in self.ctl("logs", "--blocked")[0].splitlines()
                    if "allowed.test" in line]
        rows = wait_for(blocked_row, timeout=60)
        self.assertTrue(rows, "logs --blocked does not show the blocked request")
        self.assertIn("403", rows[-1])
        self.assertIn("deny #%d" % rule_id, rows[-1])

        out, _ = self.ctl("unblock", "allowed.test")
        self.assertEqual(out, "unblocked allowed.test: deleted rule %d\n" % rule_id)
        self.assertEqual(self.status(), 200, "not 200 after proxyctl unblock")
        _, err = self.ctl("unblock", "allowed.test", expect=1)
        self.assertIn("no such 'deny domain' rule for allowed.test", err)

    def test_test_names_the_deciding_rule(self):
        self.ctl("rules", "add", "deny", "domain", "other.test")
        out, _ = self.ctl("rules", "add", "deny", "client", "10.0.0.0/8")
        client_rule = int(re.search(r"added rule (\d+)", out).group(1))
        out, _ = self.ctl("test", self.url)
        self.assertIn("action: allow", out)
        self.assertIn("none (the default action)", out)
        out, _ = self.ctl("test", self.url, "--client", "10.1.2.3")
        self.assertIn("action: deny", out)
        self.assertRegex(out, r"rule: +%d .*deny client 10\.0\.0\.0/8" % client_rule)

    def test_test_says_whether_a_tunnel_is_inspected(self):
        self.ctl("rules", "add", "allow", "any")
        out, _ = self.ctl("rules", "add", "inspect", "domain", "example.test")
        rule = int(re.search(r"added rule (\d+)", out).group(1))
        self.px.api("PUT", "/api/lists/no-inspect", b"bank.example.test\n")
        try:
            out, _ = self.ctl("test", "https://www.example.test/")
            self.assertIn("action: allow", out)
            self.assertIn("tunnel: inspected (rule %d: inspect domain example.test)" % rule, out)
            # The no-inspect list beats the inspect rule.
            out, _ = self.ctl("test", "https://bank.example.test/")
            self.assertIn("tunnel: spliced (no-inspect list (bank.example.test))", out)
            out, _ = self.ctl("test", "https://other.test/")
            self.assertIn("tunnel: spliced (no inspect rule)", out)
            # Plain HTTP has no tunnel to speak of.
            out, _ = self.ctl("test", "http://www.example.test/")
            self.assertNotIn("tunnel:", out)
            got = json.loads(self.ctl("--json", "test", "https://www.example.test/")[0])
            self.assertEqual(got["inspect"], {"inspect": True, "rule_id": rule,
                                              "no_inspect": False,
                                              "reason": "rule %d: inspect domain example.test"
                                              % rule})
        finally:
            self.px.api("DELETE", "/api/lists/no-inspect")

    def test_rules_add_move_enable_del(self):
        ids = []
        for dom in ("a.test", "b.test", "c.test"):
            out, _ = self.ctl("rules", "add", "deny", "domain", dom, "--comment", "from " + dom)
            ids.append(int(re.fullmatch(r"added rule (\d+) at position \d+: deny domain \S+\n",
                                        out).group(1)))
        a, b, c = ids

        def order():
            return [r["id"] for r in self.px.api("GET", "/api/rules")["rules"]]
        self.assertEqual(order(), [a, b, c])
        out, _ = self.ctl("rules", "move", str(c), "--before", str(a))
        self.assertEqual(out, "moved rule %d to position 1\n" % c)
        self.assertEqual(order(), [c, a, b])
        self.ctl("rules", "move", str(c), "--end")
        self.assertEqual(order(), [a, b, c])
        out, _ = self.ctl("rules", "add", "allow", "domain", "top.test", "--top")
        top = int(re.search(r"added rule (\d+) at position 1:", out).group(1))
        self.assertEqual(order(), [top, a, b, c])

        self.ctl("rules", "disable", str(b))
        out, _ = self.ctl("rules")
        line = next(l for l in out.splitlines() if "b.test" in l)
        self.assertEqual(line.split()[:3], [str(b), "3", "off"])
        self.assertIn("from b.test", line)
        self.ctl("rules", "enable", str(b))

        out, _ = self.ctl("rules", "del", str(a))
        self.assertEqual(out, "deleted rule %d\n" % a)
        self.assertEqual(order(), [top, b, c])
        _, err = self.ctl("rules", "del", "99999", expect=1)
        self.assertEqual(err, "proxyctl: no such rule 99999\n")
        _, err = self.ctl("rules", "move", str(b), "--before", "99999", expect=1)
        self.assertEqual(err, "proxyctl: no such rule 99999\n")
        _, err = self.ctl("rules", "add", "deny", "domian", "x.test", expect=1)
        self.assertIn("field text", err)

    def test_import_policy_and_export_round_trip(self):
        path = self.write("office.policy",
                          "# office policy\n"
                          "deny   domain allowed.test\n"
                          "deny   url-regex ^https?://[^/]+/ads/\n"
                          "allow  client 10.0.0.0/8\n")
        out, _ = self.ctl("import", path)
        self.assertEqual(out, "imported policy %s: 3 rules in force (they replace the previous "
                         "rules)\n" % path)
        self.assertEqual(self.status(), 403)  # in force when import returns
        exported, _ = self.ctl("export")
        rules = [l.split("#")[0].split() for l in exported.splitlines()
                 if l.strip() and not l.startswith("#")]
        self.assertEqual(rules, [["deny", "domain", "allowed.test"],
                                 ["deny", "url-regex", "^https?://[^/]+/ads/"],
                                 ["allow", "client", "10.0.0.0/8"]])
        # What export prints, import takes back unchanged.
        again = self.write("exported.policy", exported)
        self.ctl("import", again)
        self.assertEqual(self.ctl("export")[0].splitlines()[1:], exported.splitlines()[1:])

        bad = self.write("bad.policy", "deny domain ok.test\ndeny frob x\n")
        _, err = self.ctl("import", bad, expect=1)
        self.assertIn("line 2", err)
        self.assertEqual(len(self.px.api("GET", "/api/rules")["rules"]), 3,
                         "a refused import changed the rules")

    def test_import_list_prints_summary(self):
        path = self.write("ads.txt", "# ad servers\n"
                                     "ads.allowed.test\n"
                                     "0.0.0.0 tracker.test\n"
                                     "ads.allowed.test\n"
                                     "not a domain line\n"
                                     "||banner.test^\n")
        out, _ = self.ctl("import", path)
        self.assertEqual(out.splitlines()[0], "imported list ads from %s: 3 added, "
                         "1 duplicates, 1 skipped" % path)
        self.assertRegex(out.splitlines()[1], r"first skipped: line 5: .*not a domain line")
        out, _ = self.ctl("lists")
        self.assertRegex(out, r"\nads +3 ")
        out, _ = self.ctl("lists", "show", "ads")
        self.assertEqual(sorted(out.split()), ["ads.allowed.test", "banner.test", "tracker.test"])

        # Importing over a list needs --replace: the list is kept as it was until then.
        path_again = self.write("ads2.txt", "other.test\n")
        _, err = self.ctl("import", path_again, "--list", "ads", expect=1)
        self.assertEqual(err, "proxyctl: list ads exists: importing replaces its entries; nothing "
                         "changed: give --replace to go ahead\n")
        _, err = self.ctl("lists", "import", "ads", path_again, expect=1)
        self.assertIn("list ads exists: importing replaces its entries", err)
        self.assertEqual(sorted(self.ctl("lists", "show", "ads")[0].split()),
                         ["ads.allowed.test", "banner.test", "tracker.test"])
        self.ctl("import", path_again, "--list", "ads", "--replace")
        self.assertEqual(self.ctl("lists", "show", "ads")[0].split(), ["other.test"])
        # A file without domains would empty the list: it needs --replace too, on each path.
        junk = self.write("junk.txt", "not a domain line\n")
        empty = self.write("empty.txt", "# nothing\n")
        for args in (["import", junk, "--list", "ads"], ["lists", "import", "ads", empty]):
            _, err = self.ctl(*args, expect=1)
            self.assertRegex(err, r"^proxyctl: list ads: (no domains in the text|the text is empty)"
                             r".*: importing it empties the list; nothing changed: give --replace "
                             r"to go ahead\n$")
            self.assertEqual(self.ctl("lists", "show", "ads")[0].split(), ["other.test"])
        out, _ = self.ctl("lists", "import", "ads", path_again, "--replace")
        self.assertEqual(out, "imported list ads from %s: 1 added, 0 duplicates, 0 skipped\n"
                         % path_again)
        self.ctl("lists", "import", "ads", empty, "--replace")
        self.assertEqual(self.ctl("lists", "show", "ads")[0], "")

        # --list names it; a list acts through a rule.
        path2 = self.write("hosts", "127.0.0.1 allowed.test\n")
        out, _ = self.ctl("import", path2, "--list", "local")
        self.assertIn("imported list local", out)
        out, _ = self.ctl("rules", "add", "deny", "list", "local")
        self.assertEqual(self.status(), 403)  # in force when rules add returns
        self.ctl("rules", "del", re.search(r"added rule (\d+)", out).group(1))
        self.ctl("lists", "del", "local")
        self.ctl("lists", "del", "ads")
        _, err = self.ctl("lists", "show", "ads", expect=1)
        self.assertEqual(err, "proxyctl: no such list ads\n")

    def test_json_output_is_json(self):
        self.ctl("block", "allowed.test")
        self.status()
        for args, key in ((["rules"], "rules"), (["logs", "--limit", "5"], "rows"),
                          (["stats"], "proxy"), (["health"], "ok"), (["lists"], "lists"),
                          (["test", self.url], "action"), (["top", "blocked"], "rows")):
            out, _ = self.ctl("--json", *args)
            self.assertIn(key, json.loads(out), args)
        out, _ = self.ctl("allow", "x.test", "--json")  # global option after the verb
        self.assertEqual(json.loads(out)["rule"]["text"], "allow domain x.test")

    def test_logs_follow_prints_new_requests(self):
        cmd = [PROXYCTL, "--url", self.px.admin_url, "--data-dir", self.px.data_dir,
               "logs", "--follow", "--grep", "/follow-me"]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            os.set_blocking(p.stdout.fileno(), False)
            seen = []

            def shows(path):
                try:
                    seen.append(os.read(p.stdout.fileno(), 65536))
                except BlockingIOError:
                    pass
                return path.encode() in b"".join(seen)
            # The first row may land in the first page or in a poll; once it has shown, the
            # second can only come from polling.
            for path in ("/follow-me-1", "/follow-me-2"):
                self.px.get("http://allowed.test:%d%s" % (self.origin.port, path))
                self.assertTrue(wait_for(lambda: shows(path), timeout=60), b"".join(seen))
            self.assertIsNone(p.poll(), "--follow ended by itself")
            p.send_signal(signal.SIGINT)
            self.assertEqual(p.wait(timeout=60), 0, p.stderr.read())
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()
            p.stderr.close()

    def test_logs_node_filter_keeps_only_that_nodes_rows(self):
        self.px.get("http://allowed.test:%d/node-filter" % self.origin.port)
        rows = lambda q: self.px.api("GET", "/api/logs?q=/node-filter" + q)["rows"]
        self.assertTrue(wait_for(lambda: rows(""), timeout=60))
        node = rows("")[0]["node"]
        self.assertTrue(node)  # the host name when --node-name is not given
        self.assertEqual(len(rows("&node=" + urllib.parse.quote(node))), 1)
        self.assertEqual(rows("&node=another-node"), [])
        out, _ = self.ctl("--json", "logs", "--grep", "/node-filter", "--node", node, "--limit", "5")
        self.assertEqual([r["node"] for r in json.loads(out)["rows"]], [node])
        out, _ = self.ctl("--json", "logs", "--grep", "/node-filter", "--node", "nope", "--limit", "5")
        self.assertEqual(json.loads(out)["rows"], [])
        with self.assertRaises(urllib.error.HTTPError) as e:
            self.px.api("GET", "/api/logs?node=" + "n" * 64)
        self.assertEqual(e.exception.code, 400)

    def test_bad_arguments_exit_2_naming_the_argument(self):
        cases = [
            (["rules", "move", "3", "--before", "x"],
             "proxyctl: rules move: --before needs a rule id, got 'x'"),
            (["rules", "move", "3"], "rules move: needs --before ID or --end"),
            (["rules", "del", "abc"], "rules del: ID must be a rule id, got 'abc'"),
            (["frobnicate"], "unknown verb 'frobnicate'; verbs: block unblock allow rules"),
            (["rules", "frob"], "rules: unknown sub-verb 'frob'"),
            (["block"], "block: missing DOMAIN"),
            (["block", "no such/domain"], "block: DOMAIN must be a domain name"),
            (["logs", "--since", "5x"], "logs: --since needs a duration like 30s"),
            (["logs", "--status", "700"], "logs: --status needs an HTTP status"),
            (["logs", "--bogus"], "logs: unknown option '--bogus'"),
            (["test", "ftp://x"], "test: URL must be an http:// or https:// URL, got 'ftp://x'"),
            (["test", self.url, "--client", "10.0.0.999"], "test: --client needs an IP address"),
            (["top", "weird"], "top: KIND must be one of domains, clients, blocked"),
            (["rules", "add", "deny", "domain", "x", "--top", "--before", "3"],
             "rules add: --top and --before 3 exclude each other"),
            (["settings", "novalue"], "settings: expected KEY=VALUE, got 'novalue'"),
        ]
        for args, message in cases:
            code, out, err = run_ctl(args, self.px)
            self.assertEqual(code, 2, (args, out, err))
            self.assertIn(message, err, args)
        code, _, err = run_ctl(["rules"], None, env_extra={"PROXYCTL_URL": self.px.admin_url,
                                                           "PROXYD_DATA_DIR": "/nonexistent"})
        self.assertEqual(code, 2)
        self.assertIn("cannot read /nonexistent/admin.token", err)

    def test_help_for_every_verb(self):
        code, out, _ = run_ctl(["--help"])
        self.assertEqual(code, 0)
        verbs = sorted({m.group(1) for m in re.finditer(r"^  ([a-z]+)", out, re.M)})
        self.assertIn("rules", verbs)
        for verb in verbs:
            code, out, _ = run_ctl([verb, "--help"])
            self.assertEqual(code, 0, verb)
            self.assertIn("usage: proxyctl " + verb, out)

    def test_token_from_option_and_environment(self):
        out, _ = self.ctl("rules", "--token", self.px.token)
        code, out, err = run_ctl(["--url", self.px.admin_url, "rules"],
                                 env_extra={"PROXYCTL_TOKEN": self.px.token})
        self.assertEqual(code, 0, err)

    def test_wrong_token_exits_1(self):
        code, _, err = run_ctl(["--token", "wrong", "rules"], self.px)
        self.assertEqual(code, 1)
        self.assertEqual(err, "proxyctl: token rejected by %s (check --token or %s)\n"
                         % (self.px.admin_url, os.path.join(self.px.data_dir, "admin.token")))

    def test_http_proxy_environment_is_ignored(self):
        # The admin's shell may point http_proxy at proxyd itself, which refuses loopback.
        proxy = "http://127.0.0.1:%d" % self.px.proxy_port
        out, _ = self.ctl("health", env_extra={"http_proxy": proxy, "HTTP_PROXY": proxy,
                                               "ALL_PROXY": proxy})
        self.assertIn(": ok, database ok", out)

    def test_admin_add_role_del(self):
        """Dashboard admins with roles from the command line: the password from a file, a name
        that exists refused, a role change, a viewer refused a block by the API, the last
        admin-role account kept."""
        pw_file = self.write("vic.pw", "vic-password-1\n")
        os.chmod(pw_file, 0o600)
        out, _ = self.ctl("admin", "add", "vic", "--role", "viewer", "--password-file", pw_file)
        self.assertEqual(out, "added admin vic (role viewer)\n")
        self.assertEqual(self.px.api("GET", "/api/admins")["roles"]["vic"], "viewer")
        _, err = self.ctl("admin", "add", "vic", "--password-file", pw_file, expect=1)
        self.assertIn("already exists", err)
        _, err = self.ctl("admin", "add", "x", "--role", "root", "--password-file", pw_file,
                          expect=2)
        self.assertIn("--role is admin, operator or viewer", err)

        def block_as_vic():
            login = urllib.request.Request(
                self.px.admin_url + "/api/login", method="POST",
                data=json.dumps({"user": "vic", "password": "vic-password-1"}).encode(),
                headers={"Content-Type": "application/json"})
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            with opener.open(login, timeout=60) as r:
                cookie = r.headers["Set-Cookie"].split(";")[0]
                csrf = json.loads(r.read())["csrf"]
            req = urllib.request.Request(
                self.px.admin_url + "/api/block", method="POST",
                data=json.dumps({"domain": "vic.test"}).encode(),
                headers={"Content-Type": "application/json", "Cookie": cookie,
                         "X-CSRF-Token": csrf})
            try:
                with opener.open(req, timeout=60) as r:
                    return r.status
            except urllib.error.HTTPError as e:
                return e.code

        self.assertEqual(block_as_vic(), 403)
        out, _ = self.ctl("admin", "role", "vic", "operator")
        self.assertEqual(out, "admin vic now has the role operator\n")
        self.assertEqual(block_as_vic(), 201)
        self.ctl("admin", "role", "vic", "boss", expect=2)
        _, err = self.ctl("admin", "role", "admin", "viewer", expect=1)
        self.assertIn("last admin with the admin role", err)
        out, _ = self.ctl("admin", "del", "vic")
        self.assertEqual(out, "deleted admin vic\n")
        self.assertNotIn("vic", self.px.api("GET", "/api/admins")["admins"])
        self.ctl("admin", "del", "vic", expect=1)

    def test_passwords_from_stdin(self):
        out, _ = self.ctl("users", "add", "alice", stdin="s3cret-pw\n")
        self.assertEqual(out, "added user alice\n")
        self.assertIn("alice", self.ctl("users")[0].split())
        _, err = self.ctl("users", "add", "alice", stdin="x\n", expect=1)
        self.assertIn("already exists", err)
        self.ctl("users", "passwd", "alice", "--password-stdin", stdin="other-pw\n")
        self.ctl("users", "passwd", "nobody", stdin="x\n", expect=1)
        _, err = self.ctl("users", "add", "bob", stdin="", expect=2)
        self.assertIn("no password on standard input", err)
        self.ctl("users", "del", "alice")
        self.assertNotIn("alice", self.ctl("users")[0].split())

        self.ctl("admin", "passwd", stdin="new-admin-pw-1\n")
        req = urllib.request.Request(
            self.px.admin_url + "/api/login", method="POST",
            data=json.dumps({"user": "admin", "password": "new-admin-pw-1"}).encode(),
            headers={"Content-Type": "application/json"})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=60) as r:
            self.assertEqual(json.loads(r.read())["user"], "admin")

    def test_version_and_health(self):
        out, _ = self.ctl("version")
        self.assertRegex(out, r"^proxyctl \S+\nproxyd \S+ at %s\n$" % re.escape(self.px.admin_url))
        self.assertRegex(self.ctl("reload")[0], r"^reloaded: policy generation \d+ in force\n$")


class StoppedDaemonTest(unittest.TestCase):
    def test_stopped_daemon_exits_3(self):
        with Proxyd() as px:
            self.assertEqual(run_ctl(["health"], px)[0], 0)
            px.stop()
            code, _, err = run_ctl(["rules"], px)
        self.assertEqual(code, 3)
        self.assertEqual(err, "proxyctl: cannot reach proxyd admin API at %s: Connection refused "
                         "(is proxyd running? see --url)\n" % px.admin_url)


if __name__ == "__main__":
    unittest.main()
