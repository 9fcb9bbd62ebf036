"""What every browser test shares: where Chromium, playwright-core and the screenshots are,
running a flow script (tests/e2e/browser/*.mjs) under node with a hang guard, and a test case
that skips, saying what to install, on a machine without Chromium or playwright-core.

playwright-core is pinned to 1.61.1, the last release that runs on Debian 12's Node.js 18
(1.62 and later require Node.js 20); scripts/test.sh runs `npm ci` in tests/e2e/browser."""
import json
import os
import signal
import subprocess
import unittest

from harness import BUILD_DIR

HERE = os.path.dirname(os.path.abspath(__file__))
BROWSER_DIR = os.path.join(HERE, "browser")
CHROMIUM = "/usr/bin/chromium"
# Absolute: node runs in tests/e2e/browser, where a relative build folder means elsewhere.
SHOTS = os.path.abspath(os.environ.get("PX_BROWSER_SHOTS", os.path.join(BUILD_DIR, "browser-shots")))


def run_node(args, timeout):
    """Runs node; on timeout asks it to stop (Playwright closes Chromium on SIGTERM), then
    kills it. Returns (returncode, output); returncode None when it did not finish."""
    env = dict(os.environ, NO_COLOR="1", FORCE_COLOR="0")
    proc = subprocess.Popen(args, cwd=BROWSER_DIR, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        return None, out
    return proc.returncode, out


class BrowserCase(unittest.TestCase):
    """A test driving headless Chromium; NODE_MODULES names the npm packages its flow needs."""
    NODE_MODULES = ("playwright-core",)

    def setUp(self):
        if not os.access(CHROMIUM, os.X_OK):
            self.skipTest("no %s: install Debian's chromium package (scripts/deps.sh test)"
                          % CHROMIUM)
        for pkg in self.NODE_MODULES:
            if not os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", pkg)):
                self.skipTest("no %s: run `npm ci` in tests/e2e/browser (scripts/test.sh does)"
                              % pkg)

    @staticmethod
    def clear_shots(folder, names=None):
        """Makes folder, and removes the screenshots named (every .png when names is None)
        and a failure.png, so that what the run leaves there is its own."""
        os.makedirs(folder, exist_ok=True)
        gone = [n for n in os.listdir(folder) if n.endswith(".png")] if names is None \
            else list(names) + ["failure.png"]
        for name in gone:
            if os.path.exists(os.path.join(folder, name)):
                os.unlink(os.path.join(folder, name))

    def run_flow(self, script, cfg, timeout=330):
        """Runs browser/script with cfg (JSON) as its argument; fails the test when it does not
        finish in timeout seconds or exits non-zero. Returns its output (printed too)."""
        code, out = run_node(["node", script, json.dumps(cfg)], timeout=timeout)
        print(out)
        self.assertIsNotNone(code, "%s did not finish in %d s:\n%s" % (script, timeout, out))
        self.assertEqual(code, 0, "%s failed:\n%s" % (script, out))
        return out

    def assert_shots(self, folder, names, min_bytes=5000):
        """Each screenshot named is a PNG, and not nearly empty (a blank page is smaller)."""
        for name in names:
            path = os.path.join(folder, name)
            self.assertTrue(os.path.isfile(path), "no screenshot " + path)
            with open(path, "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n", path + " is not a PNG")
            self.assertGreater(os.path.getsize(path), min_bytes, path + " is nearly empty")
