// The policy lifecycle's rule language in the admin UI, in headless Chromium driven by
// playwright-core (as admin_flow.mjs, which says how the browser is wired to proxyd). Run by
// tests/e2e/test_browser_lifecycle.py with one JSON config as argv[2]:
//   {admin, password, newPassword, proxyPort, originPort, shots, reportRuleId}
// where rule reportRuleId is `deny domain report.test`, rule expiredRuleId has an `expires`
// time in the past and rule idnRuleId is `deny domain xn--bcher-kva.test`. The flow turns it into a report rule
// with the policy page's button, visits report.test through proxyd (it passes), finds the
// would-be block on the dashboard and in the log (the client under its name), enforces the rule again, sees the expired
// rule marked, adds a rule that expires in 2 hours with the form's duration field, visits
// bücher.test (Chromium sends punycode; the punycode rule denies it) and finds the name in
// Unicode on the policy page and in the log, adds a group on the Groups page, uses it in a
// rule and changes its members (the visit to grp.test is then denied), and takes screenshots. Exits 0 when every expectation held; otherwise prints "FAIL: <what>", exits 1.
import { cfg, STEP_MS, check, log, run, shot, inBrowser, viaProxy } from './flow.mjs';

const ADMIN = cfg.admin;
const proxied = (host, path = '/small') => `http://${host}:${cfg.originPort}${path}`;

async function login(page) {
  await page.goto(ADMIN + '/', { timeout: STEP_MS });
  await page.waitForURL(ADMIN + '/login', { timeout: STEP_MS });
  await page.getByTestId('login-user').fill('admin');
  await page.getByTestId('login-password').fill(cfg.password);
  await page.getByTestId('login-submit').click();
  await page.getByTestId('passwd-form').waitFor({ state: 'visible', timeout: STEP_MS });
  await page.getByTestId('passwd-new').fill(cfg.newPassword);
  await page.getByTestId('passwd-repeat').fill(cfg.newPassword);
  await page.getByTestId('passwd-submit').click();
  await page.waitForURL(ADMIN + '/', { timeout: STEP_MS });
  log('logged in');
}

function ruleRow(page) {
  return page.locator(`tr[data-testid="rule-row"][data-id="${cfg.reportRuleId}"]`);
}

async function switchToReport(page) {
  await page.goto(ADMIN + '/policy', { timeout: STEP_MS });
  const row = ruleRow(page);
  await row.waitFor({ timeout: STEP_MS });
  check(/deny domain report\.test/.test(await row.innerText()), 'the deny rule is not shown');
  check(await row.getByTestId('rule-enforce').count() === 0, 'a deny rule offers "Enforce"');
  await row.getByTestId('rule-report').click();
  await row.filter({ hasText: 'report domain report.test' }).waitFor({ timeout: STEP_MS });
  await row.getByTestId('rule-enforce').waitFor({ timeout: STEP_MS });
  log('rule switched to report: ' + (await row.innerText()).replace(/\s+/g, ' '));
}

async function visitPasses(tab) {
  const r = await tab.goto(proxied('report.test') + '?t=' + Date.now(), { timeout: STEP_MS });
  check(r && r.status() === 200, `report.test through proxyd: ${r && r.status()}, wanted 200`);
  log('report.test passed through proxyd');
}

async function dashboardShowsWouldBeBlock(page) {
  // The access log is written by another thread: reload until the row is counted.
  const deadline = Date.now() + STEP_MS;
  let text = '';
  for (;;) {
    await page.goto(ADMIN + '/', { timeout: STEP_MS });
    const table = page.getByTestId('top-reported');
    await table.locator('tbody tr').first().waitFor({ timeout: STEP_MS });
    text = await table.innerText();
    if (/report\.test/.test(text) || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  check(/report\.test\s+\d+/.test(text), 'the dashboard does not show the would-be block: ' + text);
  const clients = await page.getByTestId('top-clients').innerText();
  check(/127\.0\.0\.1 reception-pc/.test(clients), 'the top clients lack the client name: ' + clients);
  const blocked = await page.getByTestId('top-blocked').innerText();
  check(!/report\.test/.test(blocked), 'a reported request is counted as blocked');
  await page.getByTestId('top-reported').scrollIntoViewIfNeeded();
  await shot(page, 'lifecycle-dashboard.png');
  log('dashboard: ' + text.replace(/\s+/g, ' '));
}

async function logShowsReport(page) {
  // The page's own first search (no filter) is held until the filtered one has been drawn:
  // the page must keep the filtered rows, not draw the late answer over them (it did, and
  // the row under test was replaced as it was read). Then the flow waits for the page to
  // drop that answer (<html data-dropped>), or to draw it (the old page), not for a time.
  let release, seen;
  const gate = new Promise((r) => { release = r; });
  const held = new Promise((r) => { seen = r; });
  let first = true;
  const logsApi = (u) => u.pathname === '/api/logs';
  await page.route(logsApi, async (route) => {
    const filtered = new URL(route.request().url()).searchParams.get('decision') === 'report';
    if (!filtered && first) {
      first = false;
      seen();
      await gate;
    }
    const response = await route.fetch();
    await route.fulfill({ response });
  });
  await page.goto(ADMIN + '/log', { timeout: STEP_MS });
  await held;
  await page.getByTestId('f-decision').selectOption('report');
  await page.getByTestId('f-search').click();
  // Rows drawn now are the filtered answer's: the unfiltered one is held.
  await page.getByTestId('log-row').first().waitFor({ timeout: STEP_MS });
  const dropped = () => page.evaluate(() => Number(document.documentElement.dataset.dropped || 0));
  const before = await dropped();
  release();
  await page.waitForFunction((d) => Number(document.documentElement.dataset.dropped || 0) > d ||
    [...document.querySelectorAll('[data-testid="log-row"] td.decision')].some((td) => td.textContent !== 'report'),
  before, { timeout: STEP_MS });
  await page.unroute(logsApi);
  const shownNow = await page.getByTestId('log-row').locator('td.decision').allInnerTexts();
  check(shownNow.length > 0 && shownNow.every((d) => d === 'report'),
        'a late answer to the unfiltered search replaced the filtered rows: ' + shownNow.join(','));
  const row = page.getByTestId('log-row').filter({ hasText: 'report.test' })
    .filter({ has: page.locator('td.decision', { hasText: /^report$/ }) }).first();
  await row.waitFor({ timeout: STEP_MS });
  const text = await row.innerText();
  check(/\breport\b/.test(text) && new RegExp(`\\b${cfg.reportRuleId}\\b`).test(text),
        'the log row lacks decision report and the rule id: ' + text);
  const client = await row.getByTestId('log-client').innerText();
  check(client === '127.0.0.1 reception-pc', 'the log row lacks the client name: ' + client);
  const color = await row.locator('td.decision').evaluate((e) => getComputedStyle(e).color);
  check(color === 'rgb(91, 63, 168)', 'the report decision is not highlighted: ' + color);
  await shot(page, 'lifecycle-log.png');
  log('log row: ' + text.replace(/\s+/g, ' '));
}

async function enforceAgain(page, tab) {
  await page.goto(ADMIN + '/policy', { timeout: STEP_MS });
  const row = ruleRow(page);
  await row.getByTestId('rule-enforce').waitFor({ timeout: STEP_MS });
  await shot(page, 'lifecycle-policy.png');
  await row.getByTestId('rule-enforce').click();
  await row.filter({ hasText: 'deny domain report.test' }).waitFor({ timeout: STEP_MS });
  await row.getByTestId('rule-report').waitFor({ timeout: STEP_MS });
  const r = await tab.goto(proxied('report.test') + '?t=' + Date.now(), { timeout: STEP_MS });
  check(r && r.status() === 403, `report.test after Enforce: ${r && r.status()}, wanted 403`);
  log('enforced again: 403');
}

async function checkExpiry(page) {
  await page.goto(ADMIN + '/policy', { timeout: STEP_MS });
  const old = page.locator(`tr[data-testid="rule-row"][data-id="${cfg.expiredRuleId}"]`);
  await old.getByTestId('rule-expired').waitFor({ timeout: STEP_MS });
  check(/\bexpired\b/.test(await old.getAttribute('class')), 'the expired rule row is not marked');
  await page.getByTestId('rule-text').fill('allow domain plain.test');
  await page.getByTestId('rule-for').fill('2');
  await page.getByTestId('rule-for-unit').selectOption('3600');
  const before = Date.now();
  await page.getByTestId('rule-add').click();
  const row = page.getByTestId('rule-row').filter({ hasText: 'allow domain plain.test expires' });
  await row.waitFor({ timeout: STEP_MS });
  const text = await row.innerText();
  const m = /expires (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)/.exec(text);
  check(m, 'the added rule has no UTC expires time: ' + text);
  const at = Date.parse(m[1]);
  check(at >= Math.floor(before / 1000) * 1000 + 7200000 && at <= Date.now() + 7200000,
        'the rule does not expire 2 hours after it was added: ' + m[1]);
  await row.getByTestId('rule-expires').waitFor({ timeout: STEP_MS });
  check(await page.getByTestId('rule-for').inputValue() === '', 'the duration field was kept');
  await shot(page, 'lifecycle-expiry.png');
  log('expiring rule added: ' + text.replace(/\s+/g, ' '));
}

async function checkIdn(page, tab) {
  const r = await tab.goto(proxied('bücher.test') + '?t=' + Date.now(), { timeout: STEP_MS });
  check(r && r.status() === 403, `bücher.test through proxyd: ${r && r.status()}, wanted 403`);
  await page.goto(ADMIN + '/policy', { timeout: STEP_MS });
  const cell = page.locator(`tr[data-testid="rule-row"][data-id="${cfg.idnRuleId}"] td.text`);
  await cell.waitFor({ timeout: STEP_MS });
  const text = await cell.innerText();
  check(/deny domain bücher\.test/.test(text), 'the punycode rule is not shown in Unicode: ' + text);
  check(await cell.getAttribute('title') === 'deny domain xn--bcher-kva.test',
        'the punycode is not the tooltip');
  await page.goto(ADMIN + '/log', { timeout: STEP_MS });
  await page.getByTestId('f-host').fill('xn--bcher');
  await page.getByTestId('f-search').click();
  // The rows shown before the search (Chromium's own requests among them) stay until the
  // filtered answer replaces them: wait for the row of this host, in either form.
  const row = page.getByTestId('log-row').filter({ hasText: /bücher\.test|xn--bcher/ }).first();
  await row.waitFor({ timeout: STEP_MS });
  const url = await row.locator('td.url').innerText();
  check(/^http:\/\/bücher\.test:\d+\//.test(url), 'the log does not show the name in Unicode: ' + url);
  await shot(page, 'lifecycle-idn.png');
  log('IDN: rule "' + text.replace(/\s+/g, ' ') + '", log ' + url);
}

async function checkGroups(page, tab) {
  await page.goto(ADMIN + '/groups', { timeout: STEP_MS });
  await page.getByTestId('group-name').fill('office');
  await page.getByTestId('group-members').fill('10.0.0.0/8, user:alice');
  await page.getByTestId('group-add').click();
  const row = page.locator('tr[data-testid="group-row"][data-name="office"]');
  await row.waitFor({ timeout: STEP_MS });
  check(/10\.0\.0\.0\/8, user:alice/.test(await row.innerText()), 'the group row lacks its members');
  await page.getByTestId('group-name').fill('broken');
  await page.getByTestId('group-members').fill('nonsense');
  await page.getByTestId('group-add').click();
  await page.getByTestId('group-error').filter({ hasText: "bad CIDR 'nonsense'" })
    .waitFor({ timeout: STEP_MS });

  await page.goto(ADMIN + '/policy', { timeout: STEP_MS });
  await page.getByTestId('rule-text').fill('deny domain grp.test clients @office');
  await page.getByTestId('rule-add').click();
  await page.getByTestId('rule-row').filter({ hasText: 'clients @office' }).waitFor({ timeout: STEP_MS });
  let r = await tab.goto(proxied('grp.test') + '?t=' + Date.now(), { timeout: STEP_MS });
  check(r && r.status() === 200, `grp.test from outside the group: ${r && r.status()}, wanted 200`);

  await page.goto(ADMIN + '/groups', { timeout: STEP_MS });
  await row.waitFor({ timeout: STEP_MS });
  check((await row.getByTestId('group-used-by').innerText()).trim() !== 'none',
        'the group does not show the rule that uses it');
  await row.getByTestId('group-edit').click();
  await row.getByTestId('group-edit-input').fill('127.0.0.0/8, user:alice');
  await row.getByTestId('group-save').click();
  await page.getByTestId('flash').filter({ hasText: 'Group office changed' }).waitFor({ timeout: STEP_MS });
  await row.filter({ hasText: '127.0.0.0/8' }).waitFor({ timeout: STEP_MS });
  r = await tab.goto(proxied('grp.test') + '?t=' + Date.now(), { timeout: STEP_MS });
  check(r && r.status() === 403, `grp.test once the group holds the client: ${r && r.status()}, wanted 403`);
  await shot(page, 'lifecycle-groups.png');
  log('groups: ' + (await row.innerText()).replace(/\s+/g, ' '));
}

async function main() {
  await inBrowser('lifecycle-failure.png', async (page) => {
    const tab = await page.context().newPage();
    await page.bringToFront();

    await login(page);
    await switchToReport(page);
    await visitPasses(tab);
    await dashboardShowsWouldBeBlock(page);
    await logShowsReport(page);
    await enforceAgain(page, tab);
    await checkExpiry(page);
    await checkIdn(page, tab);
    await checkGroups(page, tab);
  }, { viewport: { width: 1280, height: 900 }, args: viaProxy() });
}

run(main);
