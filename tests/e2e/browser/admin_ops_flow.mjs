// The admin's own tools in headless Chromium (playwright-core, /usr/bin/chromium) at 1366x768:
// API tokens on the Users page (made, secret shown once, listed without it, revoked); the
// log's Export buttons download what the filters on screen match; a viewer sees no control
// its role may not use (block/unblock, rule edits, account changes), and the API still
// refuses it one forced by hand (403).
// Run by tests/e2e/test_browser_ops.py, which starts proxyd and passes one JSON config as
// argv[2]: {admin, password, shots, exportHost, exportRows, viewer, viewerPassword}. Exits 0 when every expectation held; otherwise prints
// "FAIL: <what>" and exits 1.
import { readFileSync } from 'node:fs';
import { cfg, STEP_MS, check, log, poll, run, shot, inBrowser } from './flow.mjs';

const ADMIN = cfg.admin;

async function login(page, user, password) {
  await page.goto(ADMIN + '/', { timeout: STEP_MS });
  await page.waitForURL(ADMIN + '/login', { timeout: STEP_MS });
  await page.getByTestId('login-user').fill(user);
  await page.getByTestId('login-password').fill(password);
  await page.getByTestId('login-submit').click();
  await page.waitForURL(ADMIN + '/', { timeout: STEP_MS });
  await page.getByTestId('whoami').filter({ hasText: user }).waitFor({ timeout: STEP_MS });
}

// Makes a token, reads its secret off the page once, uses it from outside the session,
// sees it listed (never its secret), revokes it and sees it refused.
async function tokens(page) {
  await page.goto(ADMIN + '/users', { timeout: STEP_MS });
  await page.getByTestId('token-name').fill('ci-bot');
  await page.getByTestId('token-save').click();
  await page.getByTestId('token-new').waitFor({ state: 'visible', timeout: STEP_MS });
  const secret = await page.getByTestId('token-secret').inputValue();
  check(/^pxt_[0-9a-f]{64}$/.test(secret), `no token secret on the page: ${secret}`);
  const row = page.getByTestId('tokens-row').filter({ hasText: 'ci-bot' });
  await row.waitFor({ timeout: STEP_MS });
  check((await row.innerText()).includes('never'), 'a new token is not "never" used');
  const status = await page.evaluate(async (s) =>
    (await fetch('/api/stats', { headers: { Authorization: 'Bearer ' + s } })).status, secret);
  check(status === 200, `the new token was refused: ${status}`);
  await shot(page, 'tokens.png');
  await page.reload();
  await row.waitFor({ timeout: STEP_MS });
  check(!(await page.locator('body').innerText()).includes(secret), 'the secret shown again');
  check(await page.getByTestId('token-new').isHidden(), 'the new-token box outlives a reload');
  await row.getByTestId('token-revoke').click();
  await row.getByTestId('token-revoke').click(); // confirm
  await row.waitFor({ state: 'detached', timeout: STEP_MS });
  const after = await page.evaluate(async (s) =>
    (await fetch('/api/stats', { headers: { Authorization: 'Bearer ' + s } })).status, secret);
  check(after === 401, `a revoked token answered ${after}`);
  log('tokens: made, shown once, used, listed, revoked');
}

// The log filtered to one host; Export CSV and Export JSON download exactly its rows.
async function exportLog(page) {
  await page.goto(ADMIN + '/log', { timeout: STEP_MS });
  await page.getByTestId('f-host').fill(cfg.exportHost);
  await page.getByTestId('f-search').click();
  await page.getByTestId('log-row').first().waitFor({ timeout: STEP_MS });
  // The rows of the page's first, unfiltered load may still be there: wait for the search's.
  await poll(async () => (await page.getByTestId('log-row').allInnerTexts())
    .every((t) => t.includes(cfg.exportHost)), STEP_MS);
  const shown = await page.getByTestId('log-row').count();
  const [csvDl] = await Promise.all([page.waitForEvent('download', { timeout: STEP_MS }),
                                     page.getByTestId('export-csv').click()]);
  check(csvDl.suggestedFilename() === 'proxyd-log.csv', `CSV file named ${csvDl.suggestedFilename()}`);
  const csv = readFileSync(await csvDl.path(), 'utf8').trim().split('\r\n');
  check(csv[0].startsWith('id,time,time_ms,client,'), `no CSV header: ${csv[0]}`);
  check(csv.length - 1 === cfg.exportRows && shown === cfg.exportRows,
        `CSV has ${csv.length - 1} rows, the page ${shown}, the filter matches ${cfg.exportRows}`);
  check(csv.slice(1).every((l) => l.includes(cfg.exportHost)), 'a CSV row of another host');
  check(csv.some((l) => l.includes('"\'=cmd|')), 'the formula path is not neutralised');
  const [jsonDl] = await Promise.all([page.waitForEvent('download', { timeout: STEP_MS }),
                                      page.getByTestId('export-json').click()]);
  const rows = JSON.parse(readFileSync(await jsonDl.path(), 'utf8'));
  check(rows.length === cfg.exportRows && rows.every((r) => r.host === cfg.exportHost),
        `JSON export: ${rows.length} rows, hosts ${[...new Set(rows.map((r) => r.host))]}`);
  // (The search puts its filters in the address: the page is the log whatever they are.)
  check(new URL(page.url()).pathname === '/log', `the page left the log: ${page.url()}`);
  await shot(page, 'log-export.png');
  log('export: CSV and JSON hold exactly the filtered rows');
}

// How many of the matching elements a person can see.
async function visible(page, selector) {
  return page.locator(selector).evaluateAll((els) => els.filter((e) => e.offsetParent !== null).length);
}

async function viewerSeesNoControls(browser) {
  const ctx = await browser.newContext({ viewport: { width: 1366, height: 768 } });
  ctx.setDefaultTimeout(STEP_MS);
  const page = await ctx.newPage();
  await login(page, cfg.viewer, cfg.viewerPassword);
  await page.goto(ADMIN + '/log', { timeout: STEP_MS });
  await page.getByTestId('log-row').first().waitFor({ timeout: STEP_MS });
  check(await page.getByTestId('block-btn').count() > 0, 'the log rows have no Block button at all');
  const blocks = await visible(page, '[data-testid=block-btn], [data-testid=unblock-btn], [data-testid=allow-btn]');
  check(blocks === 0, `a viewer sees ${blocks} block/unblock/allow buttons`);
  check(await visible(page, '[data-testid=export-csv]') === 1, 'a viewer cannot export');
  await shot(page, 'log-viewer.png');
  await page.goto(ADMIN + '/policy', { timeout: STEP_MS });
  await page.getByTestId('rule-row').first().waitFor({ timeout: STEP_MS });
  for (const id of ['add-rule', 'edit-text', 'edit-comment', 'rule-up', 'rule-down', 'policy-import']) {
    const n = await visible(page, `[data-testid=${id}]`);
    check(n === 0, `a viewer sees ${n} ${id} on the policy page`);
  }
  check(await page.getByTestId('rule-enabled').first().isDisabled(), 'a viewer can switch a rule');
  check(await visible(page, '[data-testid=test-form]') === 1, 'a viewer lost Test a URL');
  await shot(page, 'policy-viewer.png');
  await page.goto(ADMIN + '/users', { timeout: STEP_MS });
  await page.getByTestId('admins-row').first().waitFor({ timeout: STEP_MS });
  for (const id of ['user-form', 'admin-form', 'row-delete', 'row-set-password']) {
    const n = await visible(page, `[data-testid=${id}]`);
    check(n === 0, `a viewer sees ${n} ${id} on the users page`);
  }
  check(await page.getByTestId('row-role').first().isDisabled(), 'a viewer can change a role');
  check(await visible(page, '[data-testid=account-form]') === 1, 'a viewer cannot change its password');
  await shot(page, 'users-viewer.png');
  // The other pages' changes: present in the page, shown to none but their roles.
  const pages = [['/lists', 'list-row', ['list-form', 'list-delete']],
                 ['/forwards', null, ['forward-form']],
                 ['/versions', 'version-row', ['v-rollback']],
                 ['/settings', null, ['settings-save']]];
  for (const [path, wait, ids] of pages) {
    await page.goto(ADMIN + path, { timeout: STEP_MS });
    if (wait)
      await page.getByTestId(wait).first().waitFor({ timeout: STEP_MS });
    for (const id of ids) {
      const there = await page.locator(`[data-testid=${id}]`).count();
      check(there > 0, `no ${id} on ${path} at all: nothing to hide`);
      const n = await visible(page, `[data-testid=${id}]`);
      check(n === 0, `a viewer sees ${n} ${id} on ${path}`);
    }
  }
  await shot(page, 'settings-viewer.png');
  // Hidden is not refused: forced by hand, the API says no.
  const forced = await page.evaluate(async () => {
    const s = await (await fetch('/api/session')).json();
    const r = await fetch('/api/block', { method: 'POST', headers: {
      'Content-Type': 'application/json', 'X-CSRF-Token': s.csrf },
      body: JSON.stringify({ domain: 'forced.example' }) });
    return r.status;
  });
  check(forced === 403, `a viewer's forced block answered ${forced}`);
  await ctx.close();
  log('viewer: no block, edit or account controls shown; a forced block is 403');
}

// Settings shows proxyd's version and the database's size, as the server has them.
async function about(page) {
  await page.goto(ADMIN + '/settings', { timeout: STEP_MS });
  const version = page.getByTestId('about-version');
  await version.filter({ hasText: cfg.version }).waitFor({ timeout: STEP_MS });
  const db = (await page.getByTestId('about-db').innerText()).trim();
  check(/^[0-9.]+ (kB|MB)$/.test(db), `database size shown as "${db}"`);
  await shot(page, 'settings-about.png');
  log(`settings: version ${cfg.version}, database ${db}`);
}

async function main() {
  await inBrowser('failure.png', async (page) => {
    await login(page, 'admin', cfg.password);
    await tokens(page);
    await exportLog(page);
    await about(page);
    await viewerSeesNoControls(page.context().browser());
  }, { viewport: { width: 1366, height: 768 } });
}

run(main);
