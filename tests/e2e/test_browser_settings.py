"""The Settings page in a real browser (headless Chromium driven by playwright-core,
tests/e2e/browser/settings_flow.mjs) against the real proxyd, at 1366x768 and 390 px: the
settings as a grouped form with labels, help and where each value comes from; a bad value
refused with the message beside the field; a contact line, a logo file, a retention and
allowed client networks saved and in force through the proxy at once (the block page the
browser gets shows them; networks without its address refuse it until cleared). The server
then holds what the browser set, audited before -> after.

Screenshots go to settings/ in $PX_BROWSER_SHOTS, else in <build dir>/browser-shots.
Needs /usr/bin/chromium and tests/e2e/browser/node_modules/playwright-core (test_browser.py
says how to get them).
"""
import base64
import os
import tempfile
import unittest

from harness import DnsStub, Origin, Proxyd
from browser_case import BrowserCase, SHOTS as ALL_SHOTS

SHOTS = os.path.join(ALL_SHOTS, "settings")
SCREENSHOTS = ["settings-1366.png", "settings-refused-1366.png", "settings-saved-1366.png",
               "block-page-logo.png", "settings-390.png"]
CONTACT = "Reception, room 1"
# A 24x24 PNG: a blue square with a white bar (what an office logo might be, only smaller).
LOGO = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAABgAAAAYCAIAAABvFaqvAAAAI0lEQVR42mNgME6jDho1aNSgQWvQfxLBSDRoNB2NGjRsDAIAJYPxUHPRPJEAAAAASUVORK5CYII=")


class BrowserSettingsTest(BrowserCase):
    def test_settings_form(self):
        self.clear_shots(SHOTS, SCREENSHOTS)
        with tempfile.TemporaryDirectory(prefix="pxbset.") as tmp, \
                DnsStub(records={"blocked.test": "127.0.0.1",
                                 "allowed.test": "127.0.0.1"}) as dns, Origin() as origin:
            conf = os.path.join(tmp, "proxyd.conf")
            with open(conf, "w") as f:
                f.write("contact %s\n" % CONTACT)
            logo = os.path.join(tmp, "logo.png")
            with open(logo, "wb") as f:
                f.write(LOGO)
            with Proxyd(dns=dns, policy="deny domain blocked.test\n",
                        extra_args=["--config", conf]) as px:
                px.api("PUT", "/api/admins/admin", {"password": "settings-browser"})
                cfg = {"admin": px.admin_url, "password": "settings-browser", "shots": SHOTS,
                       "proxyPort": px.proxy_port, "originPort": origin.port, "logo": logo,
                       "configContact": CONTACT}
                self.run_flow("settings_flow.mjs", cfg)
                self.assert_shots(SHOTS, SCREENSHOTS, min_bytes=3000)
                # What the browser set, as the server holds it.
                s = px.api("GET", "/api/settings")["settings"]
                self.assertEqual(s["block_contact"], 'IT desk <ext. 42> & "help"')
                self.assertEqual(s["block_logo"],
                                 "data:image/png;base64," + base64.b64encode(LOGO).decode())
                self.assertEqual(s["retention_days"], "30")
                self.assertIsNone(s["allow_clients"])
                audit = [a["detail"] for a in px.api("GET", "/api/audit?limit=100")["rows"]
                         if a["action"] == "setting.set" and a["actor"] == "admin"]
                self.assertIn("retention_days: (unset) -> 30", audit)
                self.assertIn("allow_clients: (unset) -> 127.0.0.0/8,10.0.0.0/8", audit)
                self.assertIn("allow_clients: 127.0.0.0/8,10.0.0.0/8 -> 10.0.0.0/8", audit)
                self.assertIn("allow_clients: 10.0.0.0/8 -> (unset)", audit)
                self.assertEqual(px.stop(), 0, "proxyd did not stop cleanly:\n" + px.log()[-3000:])


if __name__ == "__main__":
    unittest.main()
