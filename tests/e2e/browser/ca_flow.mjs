// The local CA in headless Chromium (playwright-core, /usr/bin/chromium). Run twice by
// tests/e2e/test_browser_ca.py with one JSON config as argv[2]:
//   {phase: "ca", admin, password, shots}
//     logs in, follows the Settings page's link to the Local CA page, which offers "Create
//     CA", creates it, sees its name and fingerprint, and is photographed (desktop, phone);
//   {phase: "block", proxyPort, spki, shots}
//     uses proxyd as its proxy and trusts the key of the certificates proxyd's CA mints
//     (--ignore-certificate-errors-spki-list, the key computed by the test), opens
//     https://blocked.test/ and sees the block page, photographed.
// Exits 0 when every expectation held; otherwise prints "FAIL: <what>" and exits 1.
import { cfg, STEP_MS, check, log, run, checkNoOverflow, shot, inBrowser, viaProxy } from './flow.mjs';

async function caPage(page) {
  await page.goto(cfg.admin + '/settings', { timeout: STEP_MS });
  await page.waitForURL(cfg.admin + '/login?next=/settings', { timeout: STEP_MS });
  await page.getByTestId('login-user').fill('admin');
  await page.getByTestId('login-password').fill(cfg.password);
  await page.getByTestId('login-submit').click();
  await page.waitForURL(cfg.admin + '/settings', { timeout: STEP_MS });
  await page.getByTestId('settings-ca-link').click();
  await page.waitForURL(cfg.admin + '/ca', { timeout: STEP_MS });
  await page.getByTestId('ca-none').waitFor({ state: 'visible', timeout: STEP_MS });
  check(await page.getByTestId('ca-info').isHidden(), 'CA details shown before there is a CA');
  await page.getByTestId('ca-create').click();
  await page.getByTestId('ca-info').waitFor({ state: 'visible', timeout: STEP_MS });
  const subject = await page.getByTestId('ca-subject').innerText();
  check(/proxyd CA on /.test(subject), `the CA's name is '${subject}'`);
  const sha = await page.getByTestId('ca-sha256').innerText();
  check(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/.test(sha), `the fingerprint is '${sha}'`);
  check(await page.getByTestId('ca-none').isHidden(), '"Create CA" still offered');
  for (const os of ['Windows', 'macOS', 'Linux', 'Android', 'iOS', 'Firefox'])
    check((await page.getByTestId('ca-install').innerText()).includes(os),
          `no instructions for ${os}`);
  await shot(page, 'ca-desktop.png');
  await page.setViewportSize({ width: 390, height: 844 });
  await checkNoOverflow(page, 'the CA page 390x844');
  await shot(page, 'ca-phone.png');
  log(`created the CA in the page: ${subject}, ${sha}`);
}

async function blockPage(page) {
  const r = await page.goto('https://blocked.test/some/page', { timeout: STEP_MS });
  check(r, 'no response for https://blocked.test/');
  check(r.status() === 403, `https://blocked.test/: status ${r.status()}`);
  const text = await page.locator('body').innerText({ timeout: STEP_MS });
  check(/blocked by the office's access policy \(rule \d+\)/.test(text),
        'the HTTPS block page does not say why');
  check(page.url() === 'https://blocked.test/some/page', `the address bar shows ${page.url()}`);
  await shot(page, 'https-block-page.png');
  log('https://blocked.test/ shows the block page inside TLS');
}

async function main() {
  if (cfg.phase === 'block')
    await inBrowser('ca-block-failure.png', blockPage,
                    { args: [...viaProxy(), `--ignore-certificate-errors-spki-list=${cfg.spki}`] });
  else
    await inBrowser('ca-failure.png', caPage, { viewport: { width: 1280, height: 900 } });
}

run(main);
