// proxyd over TLS in headless Chromium (playwright-core, /usr/bin/chromium). Run by
// tests/e2e/test_browser.py (test_tls_flow) with one JSON config as argv[2]:
//   {admin, password, tlsPort, originPort, spki, shots}
// Exits 0 when every expectation held; otherwise prints "FAIL: <what>" and exits 1.
//
// Chromium trusts proxyd's self-made certificate by its key alone
// (--ignore-certificate-errors-spki-list with the key's SHA-256, computed by the test), and
// nothing else; it uses proxyd's TLS port as an HTTPS proxy (--proxy-server=https://...)
// and, as in admin_flow.mjs, can reach the test names only through proxyd. The admin pages
// are loaded over HTTPS from 127.0.0.1 (direct: Chromium bypasses loopback).
import { cfg, STEP_MS, check, log, run, shot, inBrowser, viaProxy } from './flow.mjs';

async function visit(tab, url) {
  const r = await tab.goto(url, { timeout: STEP_MS });
  check(r, `no response for ${url}`);
  return { status: r.status(), text: await tab.locator('body').innerText({ timeout: STEP_MS }) };
}

async function main() {
  await inBrowser('tls-failure.png', async (page) => {
    // Through the HTTPS proxy: a page, and the block page of a denied site.
    const ok = await visit(page, `http://allowed.test:${cfg.originPort}/small`);
    check(ok.status === 200, `allowed.test through the TLS port: status ${ok.status}`);
    check(/^x{1024}$/.test(ok.text.trim()), 'allowed.test did not show the origin\'s body');
    const blocked = await visit(page, `http://news.test:${cfg.originPort}/small`);
    check(blocked.status === 403, `news.test through the TLS port: status ${blocked.status}`);
    // The rule by number: its text is for the admin (the log), not the employee.
    check(/access policy \(rule \d+\)\./.test(blocked.text), 'the block page does not name the rule');
    await shot(page, 'tls-proxy-block-page.png');
    log('through the TLS proxy port: allowed.test 200, news.test 403 block page');

    // The admin pages over HTTPS: login, a Secure session cookie.
    await page.goto(cfg.admin + '/', { timeout: STEP_MS });
    await page.waitForURL(cfg.admin + '/login', { timeout: STEP_MS });
    check(cfg.admin.startsWith('https://'), 'the admin URL is not https');
    await page.getByTestId('login-user').fill('admin');
    await page.getByTestId('login-password').fill(cfg.password);
    await page.getByTestId('login-submit').click();
    await page.getByTestId('passwd-form').waitFor({ state: 'visible', timeout: STEP_MS });
    const cookies = await page.context().cookies(cfg.admin);
    const sid = cookies.find((c) => c.name === 'pxsid');
    check(sid && sid.secure && sid.httpOnly && sid.sameSite === 'Strict',
          'the session cookie is not Secure, HttpOnly, SameSite=Strict: ' + JSON.stringify(sid));
    await shot(page, 'tls-admin-login.png');
    log('admin over HTTPS: first login shows the change-password form, cookie Secure');
  }, { args: [...viaProxy(`https://127.0.0.1:${cfg.tlsPort}`),
              `--ignore-certificate-errors-spki-list=${cfg.spki}`] });
}

run(main);
