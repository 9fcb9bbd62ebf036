// The Lists page's subscriptions in headless Chromium, driven by Playwright (playwright-core,
// the system's /usr/bin/chromium). Run by tests/e2e/test_browser_subscriptions.py, which
// starts proxyd, a DNS stub and a list origin, sets the admin password, imports a list
// `mine` and subscribes `markup` to a URL full of markup through the API, and passes one
// JSON config as argv[2]: {admin, password, origin, hold, release, shots} (hold and release:
// URLs of the origin that hold /ads.txt's answer and let it go).
// The page: subscribes `ads` and sees its first fetch (status, entries, no error) and the
// list it made; subscribes `broken` and sees why its list was kept; is asked before
// subscribing over the list `mine` and cancels; refreshes `ads` (the row says "fetching…"
// while the origin holds the download; then not modified); shows the
// stored markup as text; is photographed on a desktop and a phone (no sideways scrolling);
// unsubscribes `broken` with its two-click button. Exits 0 when every expectation held;
// otherwise prints "FAIL: <what>" and exits 1.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { cfg, STEP_MS, check, log, run, twoWidths, inBrowser } from './flow.mjs';

const ADMIN = cfg.admin;

async function login(page) {
  await page.goto(ADMIN + '/lists', { timeout: STEP_MS });
  await page.waitForURL(ADMIN + '/login?next=/lists', { timeout: STEP_MS });
  await page.getByTestId('login-user').fill('admin');
  await page.getByTestId('login-password').fill(cfg.password);
  await page.getByTestId('login-submit').click();
  await page.waitForURL(ADMIN + '/lists', { timeout: STEP_MS });
  await page.getByTestId('sub-row').first().waitFor({ timeout: STEP_MS });
  log('logged in, on the Lists page');
}

function row(page, name) {
  return page.getByTestId('sub-row').and(page.locator(`[data-name="${name}"]`));
}

// The form takes one submission at a time (PX.onSubmit: aria-busy until the last one's
// answers are in, a click meanwhile is dropped): wait for it to be free.
async function formFree(page) {
  await page.locator('form[data-testid="sub-form"]:not([aria-busy])')
    .waitFor({ timeout: STEP_MS });
}

async function subscribe(page, name, path, every) {
  await formFree(page);
  await page.getByTestId('sub-name').fill(name);
  await page.getByTestId('sub-url').fill(cfg.origin + path);
  await page.getByTestId('sub-every').selectOption(every);
  await page.getByTestId('sub-add').click();
  await page.getByTestId('flash').filter({ hasText: `Subscribed list ${name}` })
    .waitFor({ timeout: STEP_MS });
  const r = row(page, name);
  await r.waitFor({ timeout: STEP_MS });
  // The page shows the first fetch once it is in (within a second or so; "fetching…" while
  // its download runs).
  await r.getByTestId('sub-row-checked').filter({ hasNotText: /not yet|fetching/ })
    .waitFor({ timeout: STEP_MS });
  return r;
}

async function addAndFetch(page) {
  const r = await subscribe(page, 'ads', '/ads.txt', '86400');
  check((await r.getByTestId('sub-row-status').innerText()) === '200', 'ads: status is not 200');
  check((await r.getByTestId('sub-row-entries').innerText()) === '2', 'ads: entries are not 2');
  check((await r.getByTestId('sub-row-error').innerText()) === 'none', 'ads: shows an error');
  check((await r.getByTestId('sub-row-url').innerText()) === cfg.origin + '/ads.txt',
        'ads: the URL is not shown');
  const list = page.getByTestId('list-row').and(page.locator('[data-name="ads"]'));
  await list.waitFor({ timeout: STEP_MS });
  log('subscribed ads: fetched, 2 entries, its list listed');

  const b = await subscribe(page, 'broken', '/broken.txt', '3600');
  const why = await b.getByTestId('sub-row-error').innerText();
  check(why.includes('HTTP status 500') && why.includes('the list was kept'),
        `broken: the row does not say why: '${why}'`);
  check((await b.getByTestId('sub-row-entries').innerText()) === '–', 'broken: shows entries');
  log('subscribed broken: the row says why nothing was imported');
}

async function overExisting(page) {
  await formFree(page);
  await page.getByTestId('sub-name').fill('mine');
  await page.getByTestId('sub-url').fill(cfg.origin + '/ads.txt');
  await page.getByTestId('sub-add').click();
  const dlg = page.getByTestId('list-confirm');
  await dlg.waitFor({ timeout: STEP_MS });
  const title = await page.getByTestId('list-confirm-title').innerText();
  check(title === 'Subscribe over list mine?', `the dialog asks '${title}'`);
  await page.getByTestId('list-confirm-cancel').click();
  await page.getByTestId('flash').filter({ hasText: 'list mine exists' })
    .waitFor({ timeout: STEP_MS });
  check((await row(page, 'mine').count()) === 0, 'a cancelled subscription is listed');
  log('subscribing over list mine asks first; cancelled, nothing changed');
}

async function refresh(page) {
  check((await fetch(cfg.hold)).ok, 'the origin did not hold /ads.txt');
  await row(page, 'ads').getByTestId('sub-refresh').click();
  // Answered at once: the row says so while proxyd's thread waits for the origin.
  await row(page, 'ads').getByTestId('sub-row-checked').filter({ hasText: 'fetching…' })
    .waitFor({ timeout: STEP_MS });
  check(await row(page, 'ads').getByTestId('sub-refresh').isDisabled(),
        'ads: Refresh is not disabled while fetching');
  if (cfg.shots) {
    mkdirSync(cfg.shots, { recursive: true });
    await page.screenshot({ path: join(cfg.shots, 'subscriptions-fetching.png'), fullPage: true });
  }
  log('refresh: the row says fetching while the origin holds the download');
  check((await fetch(cfg.release)).ok, 'the origin did not let /ads.txt go');
  await page.getByTestId('flash').filter({ hasText: 'List ads: not modified, 2 entries' })
    .waitFor({ timeout: STEP_MS });
  // The flash comes with the answer; the table is drawn again after it.
  const recorded = await row(page, 'ads').getByTestId('sub-row-status').filter({ hasText: /^304$/ })
    .waitFor({ timeout: STEP_MS }).then(() => true, () => false);
  check(recorded, 'ads: the refresh did not record the 304');
  log('refresh: not modified (304)');
}

async function checkMarkup(page) {
  const probe = await page.evaluate(() => ({
    xss: typeof window.__xss,
    injected: document.querySelectorAll('#subs script, #subs img, #subs b').length,
    text: document.getElementById('subs').textContent,
  }));
  check(probe.xss === 'undefined', 'stored markup ran as script');
  check(probe.injected === 0, `stored markup became ${probe.injected} element(s)`);
  check(probe.text.includes(cfg.markupUrl), 'the stored URL is not shown as literal text');
  log('a stored URL full of markup shows as text');
}


async function unsubscribe(page) {
  const r = row(page, 'broken');
  const del = r.getByTestId('sub-delete');
  await del.click();
  check((await del.innerText()) === 'Sure?', 'the first click did not ask');
  await del.click();
  await r.waitFor({ state: 'detached', timeout: STEP_MS });
  await page.getByTestId('flash').filter({ hasText: 'no longer fetched' })
    .waitFor({ timeout: STEP_MS });
  log('unsubscribed broken with two clicks');
}

async function main() {
  await inBrowser('subscriptions-failure.png', async (page) => {
    await login(page);
    await addAndFetch(page);
    await overExisting(page);
    await refresh(page);
    await checkMarkup(page);
    await twoWidths(page, 'subscriptions',
                    (p) => p.getByTestId('sub-row').first().waitFor({ timeout: STEP_MS }));
    await unsubscribe(page);
  });
}

run(main);
