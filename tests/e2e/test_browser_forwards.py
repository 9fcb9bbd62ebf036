"""The Forwards admin page in a real browser: headless Chromium (/usr/bin/chromium) driven by
playwright-core (tests/e2e/browser/forwards_flow.mjs) against the real proxyd and an echoing
origin on 127.0.0.1. The browser adds two forwards through the form, is refused a bad one,
sees a stored forward full of markup shown as text, deletes one forward; then this test checks
from outside that the kept forward relays and the deleted one's port is closed, and that the
screenshots (desktop, phone) were taken. Skips like test_browser.py without Chromium or
playwright-core. Screenshots go to forwards/ in $PX_BROWSER_SHOTS, else in <build dir>/browser-shots."""
import os
import sqlite3
import unittest

from harness import Proxyd, free_port, wait_for
from browser_case import BrowserCase, SHOTS as ALL_SHOTS
from test_forward import EchoOrigin, refused_or_closed, relay

# A folder of its own: test_browser.py empties browser-shots of PNGs as it starts, and ctest
# runs the browser tests side by side.
SHOTS = os.path.join(ALL_SHOTS, "forwards")
MARKUP = "<script>__xss=1</script><img src=x onerror=__xss=1><b>fwd</b>"  # fits every field
PASSWORD = "forwards-page-test"


class ForwardsPageTest(BrowserCase):
    def test_forwards_page(self):
        self.clear_shots(SHOTS, ("forwards-desktop.png", "forwards-phone.png"))
        keep, drop, conf = free_port(), free_port(), free_port()
        with EchoOrigin() as origin, Proxyd(extra_args=[
                "--forward", "127.0.0.1:%d 127.0.0.1:%d" % (conf, origin.port)]) as px:
            px.api("PUT", "/api/admins/admin", {"password": PASSWORD})
            # A row the API would never take (it checks every field), as another tool or an
            # older version could have left it: the page must still show it only as text.
            db = sqlite3.connect(px.db_path, timeout=30)
            with db:
                db.execute("INSERT INTO forwards(listen, target, clients, created_ms)"
                           " VALUES (?, ?, ?, 0)", (MARKUP, MARKUP, MARKUP))
            db.close()
            self.assertTrue(wait_for(lambda: "is not in force" in px.log()))
            cfg = {"admin": px.admin_url, "password": PASSWORD, "originPort": origin.port,
                   "keepPort": keep, "dropPort": drop, "tlsTargetPort": free_port(),
                   "configPort": conf, "shots": SHOTS,
                   "markup": MARKUP}
            self.run_flow("forwards_flow.mjs", cfg)

            for name in ("forwards-desktop.png", "forwards-phone.png"):
                path = os.path.join(SHOTS, name)
                with open(path, "rb") as f:
                    self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n", path)
                self.assertGreater(os.path.getsize(path), 5000, path + " is nearly empty")

            listed = {f["listen"]: f for f in px.api("GET", "/api/forwards")["forwards"]}
            self.assertEqual(sorted(listed), sorted([MARKUP, "127.0.0.1:%d" % keep,
                                                     "127.0.0.1:%d" % conf]))
            self.assertEqual(listed["127.0.0.1:%d" % conf]["source"], "config")
            self.assertEqual(listed["127.0.0.1:%d" % keep]["clients"], "127.0.0.0/8")
            self.assertEqual(relay(keep, b"added in the browser"), b"added in the browser")
            self.assertTrue(wait_for(lambda: refused_or_closed(drop) and refused_or_closed(drop)))
            actions = [r["action"] for r in px.api("GET", "/api/audit")["rows"]]
            self.assertEqual(actions.count("forward.add"), 3)
            self.assertEqual(actions.count("forward.delete"), 2)
            added = [r["detail"] for r in px.api("GET", "/api/audit")["rows"]
                     if r["action"] == "forward.add"]
            self.assertTrue(any(d.endswith(" tls-target tls-name mail.test") for d in added), added)


if __name__ == "__main__":
    unittest.main()
