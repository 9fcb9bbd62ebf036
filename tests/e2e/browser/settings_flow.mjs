// The Settings page as a form, in headless Chromium (playwright-core, /usr/bin/chromium), at
// 1366x768 and at 390 px: grouped fields with labels, help and where each value comes from
// (the config file, or set here); a bad value refused by the server, the message beside the
// field it names; then a contact line, a logo (a PNG file chosen from disk), a retention and
// allowed client networks saved and in force at once: the block page the browser gets through
// the proxy shows the contact line and the logo; networks without the browser's address get
// a warning and the browser is refused by the proxy until they are cleared.
// Run by tests/e2e/test_browser_settings.py, which starts proxyd and passes one JSON config as
// argv[2]: {admin, password, shots, proxyPort, originPort, logo (a PNG file's path),
// configContact}. Exits 0 when every expectation held; otherwise prints "FAIL: <what>", exit 1.
import {
  cfg, STEP_MS, PHONE, check, log, poll, run, shot, checkNoOverflow, inBrowser, viaProxy
} from './flow.mjs';

const ADMIN = cfg.admin;
const GROUPS = ['Block page', 'Clients', 'Log & retention', 'PAC', 'Access requests', 'TLS'];

async function login(page) {
  await page.goto(ADMIN + '/settings', { timeout: STEP_MS });
  await page.waitForURL(ADMIN + '/login?next=/settings', { timeout: STEP_MS });
  await page.getByTestId('login-user').fill('admin');
  await page.getByTestId('login-password').fill(cfg.password);
  await page.getByTestId('login-submit').click();
  await page.waitForURL(ADMIN + '/settings', { timeout: STEP_MS });
  await page.getByTestId('field-block_contact').waitFor({ timeout: STEP_MS });
}

// A page through the proxy: its status, or the error Chromium gives when there is none.
async function visit(tab, url) {
  try {
    const r = await tab.goto(url, { timeout: STEP_MS });
    return { status: r ? r.status() : 0, error: '' };
  } catch (e) {
    return { status: 0, error: String(e.message || e).split('\n')[0] };
  }
}

async function save(page, expect) {
  await page.getByTestId('settings-save').click();
  return (await page.getByTestId('flash').filter({ hasText: expect }).innerText({ timeout: STEP_MS })).trim();
}

async function layout(page) {
  const legends = await page.locator('fieldset.settings-group > legend').allInnerTexts();
  check(JSON.stringify(legends) === JSON.stringify(GROUPS), `groups ${JSON.stringify(legends)}`);
  // Labelled controls, a person's words, not the keys.
  for (const [label, key] of [['Contact line', 'block_contact'], ['Logo', 'block_logo'],
                              ['Allowed client networks', 'allow_clients'],
                              ['Keep the access log (days)', 'retention_days'],
                              ['Proxy address in the PAC file', 'pac_proxy'],
                              ['Request-access form', 'access_requests'],
                              ['Block page for HTTPS', 'https_block_page']]) {
    const id = await page.getByLabel(label, { exact: true }).getAttribute('data-testid');
    check(id === 'setting-' + key, `the label "${label}" is on ${id}`);
  }
  const src = await page.getByTestId('source-block_contact').innerText();
  check(src.includes('config file') && src.includes(cfg.configContact), `contact source: ${src}`);
  const days = await page.getByTestId('source-retention_days').innerText();
  check(days.includes('retention-days') && days.includes('90'), `retention source: ${days}`);
  await checkNoOverflow(page, 'settings 1366x768');
}

async function desktop(page) {
  await login(page);
  await layout(page);
  await shot(page, 'settings-1366.png');

  // Refused by the server, the field named and marked; nothing saved.
  await page.getByTestId('setting-allow_clients').fill('10.0.0.0/33');
  const refused = await save(page, 'allow_clients');
  check(refused.includes('Allowed client networks'), `refusal says: ${refused}`);
  const err = page.getByTestId('error-allow_clients');
  check(await err.isVisible(), 'no message beside the bad field');
  check((await page.getByTestId('setting-allow_clients').getAttribute('aria-invalid')) === 'true',
        'the bad field is not marked invalid');
  await shot(page, 'settings-refused-1366.png');
  log(`refused: ${refused}`);

  // A good change of several fields at once.
  await page.getByTestId('setting-allow_clients').fill('127.0.0.0/8\n10.0.0.0/8');
  await page.getByTestId('setting-block_contact').fill('IT desk <ext. 42> & "help"');
  await page.getByTestId('setting-retention_days').fill('30');
  await page.getByTestId('setting-block_logo').setInputFiles(cfg.logo);
  await page.getByTestId('logo-preview').waitFor({ state: 'visible', timeout: STEP_MS });
  const saved = await save(page, 'Saved');
  check(!saved.includes('outside'), `a warning for networks with the browser in them: ${saved}`);
  check(await err.isHidden(), 'the old message stays after a good save');
  const src = await page.getByTestId('source-block_contact').innerText();
  check(src.startsWith('Set here') && src.includes(cfg.configContact), `contact source after: ${src}`);
  check((await page.getByTestId('logo-preview').getAttribute('src')).startsWith('data:image/png;base64,'),
        'the saved logo is not shown');
  await shot(page, 'settings-saved-1366.png');

  // In force at once: the block page the browser gets through the proxy.
  const tab = await page.context().newPage();
  const r = await visit(tab, `http://blocked.test:${cfg.originPort}/small?t=${Date.now()}`);
  check(r.status === 403, `the block page answered ${r.status} ${r.error}`);
  const text = await tab.locator('body').innerText();
  check(text.includes('Contact: IT desk <ext. 42> & "help"'), `block page text: ${text}`);
  const logoOk = await tab.locator('img').evaluate((img) => img.complete && img.naturalWidth > 0);
  check(logoOk, 'the logo on the block page did not load');
  await shot(tab, 'block-page-logo.png');
  log('saved: contact line and logo on the block page at once');

  // Networks without the browser: a warning, and the proxy refuses it; cleared, it serves.
  await page.getByTestId('setting-allow_clients').fill('10.0.0.0/8');
  const warned = await save(page, 'Saved');
  check(warned.includes('127.0.0.1') && warned.includes('outside'), `no warning: ${warned}`);
  const out = await visit(tab, `http://allowed.test:${cfg.originPort}/small?t=${Date.now()}`);
  check(out.status === 0, `a client outside the networks got ${out.status}`);
  await page.getByTestId('setting-allow_clients').fill('');
  await save(page, 'Saved');
  const back = await poll(async () => (await visit(tab, `http://allowed.test:${cfg.originPort}/small?t=${Date.now()}`)).status === 200,
                          STEP_MS, 200);
  check(back, 'the browser is still refused once the networks are cleared');
  log(`networks: ${warned}; refused outside them, served once cleared`);
}

async function phone(page) {
  await login(page);
  await page.getByTestId('logo-preview').waitFor({ state: 'attached', timeout: STEP_MS });
  await checkNoOverflow(page, 'settings 390 px');
  const small = await page.locator('#settings-form input, #settings-form select, #settings-form textarea, #settings-form button')
    .evaluateAll((els) => els.filter((e) => e.offsetParent !== null)
      // A checkbox (18 px and a 3 px margin, app.css) counts with its label's row.
      .map((e) => (e.type === 'checkbox' ? e.closest('label') : e).getBoundingClientRect())
      .filter((b) => b.height < 24).length);
  check(small === 0, `${small} controls under 24 px high on a phone`);
  await shot(page, 'settings-390.png');
  log('phone: one column, no sideways scrolling, touch targets at least 24 px');
}

async function main() {
  await inBrowser('settings-failure.png', desktop,
                  { viewport: { width: 1366, height: 768 }, args: viaProxy() });
  await inBrowser('settings-390-failure.png', phone,
                  { viewport: PHONE, context: { isMobile: true, hasTouch: true } });
}

run(main);
