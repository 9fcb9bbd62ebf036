// The dashboard and the log as an office admin uses them, in headless Chromium driven by
// playwright-core (as admin_flow.mjs, which says how the browser is wired to proxyd). Run by
// tests/e2e/test_browser_dashboard.py twice with one JSON config as argv[2]:
//   {admin, password, newPassword, proxyPort, originPort, shots, phase, ...}
// phase "empty": first login (the first-run password is changed to newPassword); with no
//   request logged the dashboard says how to point browsers at the proxy.
// phase "full": logs in with newPassword; the log holds a day of rows (dayRows within 24 h,
//   dayBlocked of them denied, oldRows 3 days ago, markedRequests/markedBlocked in the
//   10-minute bucket starting at markedBucket) and live rows from 127.0.0.2-5 (127.0.0.3 is
//   named reception-pc; ads.test is denied). Checks the cards, the chart and its tooltip, the
//   range presets, the top lists' links into the log, top blocked clients, who visited
//   ads.test, Diagnostics, the log's rule link; at 1366x768 and 390x844.
// Exits 0 when every expectation held; otherwise prints "FAIL: <what>", exits 1.
import {
  cfg, STEP_MS, check, log, poll, run, checkNoOverflow, shot, PHONE, inBrowser
} from './flow.mjs';

const ADMIN = cfg.admin;
const DESKTOP = { width: 1366, height: 768 };

const num = async (page, id) => Number((await page.getByTestId(id).innerText()).replace(/[, %]/g, ''));



async function login(page, first) {
  await page.goto(ADMIN + '/', { timeout: STEP_MS });
  await page.waitForURL(ADMIN + '/login', { timeout: STEP_MS });
  await page.getByTestId('login-user').fill('admin');
  await page.getByTestId('login-password').fill(first ? cfg.password : cfg.newPassword);
  await page.getByTestId('login-submit').click();
  if (first) {
    await page.getByTestId('passwd-form').waitFor({ state: 'visible', timeout: STEP_MS });
    await page.getByTestId('passwd-new').fill(cfg.newPassword);
    await page.getByTestId('passwd-repeat').fill(cfg.newPassword);
    await page.getByTestId('passwd-submit').click();
  }
  await page.waitForURL(ADMIN + '/', { timeout: STEP_MS });
  log('logged in');
}

async function emptyPhase(page) {
  await login(page, true);
  const empty = page.getByTestId('empty');
  await empty.waitFor({ state: 'visible', timeout: STEP_MS });
  const proxy = await page.getByTestId('empty-proxy').innerText();
  check(proxy.endsWith(':' + cfg.proxyPort), `the empty dashboard names proxy address '${proxy}'`);
  // The admin server listens on loopback here: no PAC URL other machines could use is offered.
  check(await page.getByTestId('empty-pac-none').isVisible(), 'no word on the PAC URL');
  check(/HTTPS/.test(await empty.innerText()), 'no HTTPS note');
  check(await num(page, 'card-requests') === 0, 'requests on an empty log');
  // The axis of an empty chart counts 0 and 1, each once (its middle read "1" too).
  const axis = await page.locator('#chart > text[text-anchor="end"]').allTextContents();
  check(axis.length === new Set(axis).size, 'the empty chart\'s axis: ' + axis.join(', '));
  await shot(page, 'dashboard-empty-desktop.png');
  await page.setViewportSize(PHONE);
  await checkNoOverflow(page, 'empty dashboard 390');
  await shot(page, 'dashboard-empty-phone.png');
  log('empty dashboard explains the set-up: ' + (await empty.innerText()).replace(/\s+/g, ' '));
}

// The dashboard for the range shown; waits until its cards are filled.
async function cards(page) {
  await poll(async () => (await page.getByTestId('card-percent').innerText()) !== '-', STEP_MS);
  const c = {
    requests: await num(page, 'card-requests'), blocked: await num(page, 'card-blocked'),
    percent: await page.getByTestId('card-percent').innerText(),
    listed: await num(page, 'card-listed'),
    points: Number(await page.getByTestId('chart').getAttribute('data-points')),
  };
  log('cards: ' + JSON.stringify(c));
  return c;
}

async function chooseRange(page, name, points) {
  await page.getByTestId('range').getByTestId('range-' + name).click();
  await poll(async () => Number(await page.getByTestId('chart').getAttribute('data-points')) === points,
             STEP_MS);
  check(new URL(page.url()).searchParams.get('range') === name, 'the range is not in the address');
  return cards(page);
}

async function chartTooltip(page) {
  const svg = page.getByTestId('chart');
  const first = Number(await svg.getAttribute('data-first'));
  const n = Number(await svg.getAttribute('data-points'));
  const i = (cfg.markedBucket - first) / 600000;
  check(Number.isInteger(i) && i >= 0 && i < n, `the marked bucket is not on the chart (${i})`);
  const box = await svg.boundingBox();
  const L = 52, R = 8;
  const slot = (box.width - L - R) / n;
  await page.mouse.move(box.x + L + slot * (i + 0.5), box.y + 150);
  const tip = page.getByTestId('chart-tip');
  await tip.waitFor({ state: 'visible', timeout: STEP_MS });
  const text = await tip.innerText();
  const d = new Date(cfg.markedBucket);
  const p = (v) => String(v).padStart(2, '0');
  const start = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
  check(text.startsWith(start) && text.includes(`${cfg.markedRequests} requests, ${cfg.markedBlocked} blocked`),
        `the tooltip of the bucket at ${start} says '${text}'`);
  log('tooltip: ' + text);
  await shot(page, 'dashboard-24h-desktop.png');
  // The keyboard walks the buckets too.
  await svg.focus();
  await page.keyboard.press('End');
  const last = await tip.innerText();
  await page.keyboard.press('ArrowLeft');
  const before = await tip.innerText();
  check(last !== before && /requests/.test(before), `arrow keys do not move the tooltip ('${last}', '${before}')`);
  await page.keyboard.press('Escape');
  check(await tip.isHidden(), 'Escape leaves the tooltip');
  await page.mouse.move(0, 0);
}

async function logRows(page) {
  await page.getByTestId('log-row').first().waitFor({ timeout: STEP_MS });
  return page.getByTestId('log-row').evaluateAll((rows) => rows.map((r) => ({
    text: r.innerText, decision: r.querySelector('td.decision').textContent,
    client: r.querySelector('[data-testid="log-client"]').textContent })));
}

async function topLinks(page) {
  const blockedClients = await page.getByTestId('top-blocked-clients').innerText();
  check(/127\.0\.0\.3 reception-pc/.test(blockedClients) && /127\.0\.0\.2/.test(blockedClients) &&
        /10\.0\.0\.\d+/.test(blockedClients), 'top blocked clients: ' + blockedClients);
  check(!/127\.0\.0\.[45]/.test(blockedClients), 'a client never blocked is a top blocked client');
  // A blocked domain opens the log filtered to it, in the same range.
  await page.getByTestId('top-blocked').getByRole('link', { name: 'ads.test' }).click();
  await page.waitForURL(/\/log\?/, { timeout: STEP_MS });
  const u = new URL(page.url());
  check(u.searchParams.get('host') === 'ads.test' && u.searchParams.get('decision') === 'deny' &&
        u.searchParams.get('range') === '24h', 'the top list opened ' + page.url());
  // The log page's script fills its filters from the URL after 'load': wait for it.
  const filled = await page.waitForFunction(
    () => document.querySelector('[data-testid="f-host"]')?.value === 'ads.test' &&
          document.querySelector('[data-testid="range-24h"]')?.getAttribute('aria-pressed') === 'true',
    null, { timeout: STEP_MS }).then(() => true, () => false);
  check(await page.getByTestId('f-host').inputValue() === 'ads.test', 'the host filter is not filled');
  check(filled, 'the log range is not 24 h');
  const rows = await logRows(page);
  check(rows.length >= 3 && rows.every((r) => r.text.includes('ads.test') && r.decision === 'deny'),
        'the filtered log shows other rows: ' + rows.map((r) => r.text).slice(0, 3).join(' | '));
  // The rule number opens every request that rule decided.
  const live = page.getByTestId('log-row').filter({ hasText: '127.0.0.2' }).first();
  await live.getByTestId('log-rule-filter').click();
  await page.waitForURL(/\/log\?rule=\d+/, { timeout: STEP_MS });
  const byRule = await logRows(page);
  check(byRule.length >= 3 && byRule.every((r) => r.text.includes('deny domain ads.test')),
        'the rule link shows other rows');
  await page.goto(ADMIN + '/log?host=ads.test&decision=deny&range=24h', { timeout: STEP_MS });
  await logRows(page);
  await shot(page, 'log-filtered-desktop.png');
  log(`top blocked domain and rule links open the log (${rows.length}, ${byRule.length} rows)`);
}

async function whoVisited(page) {
  await page.goto(ADMIN + '/?range=24h', { timeout: STEP_MS });
  await cards(page);
  const row = page.getByTestId('top-blocked').locator('tr', { hasText: 'ads.test' });
  await row.getByTestId('who-btn').click();
  const v = page.getByTestId('visitors');
  await v.waitFor({ state: 'visible', timeout: STEP_MS });
  const clients = await page.getByTestId('visitors-clients').innerText();
  check(/127\.0\.0\.3 reception-pc\s+1\s+1\s+\d{4}-/.test(clients) && /127\.0\.0\.2\s+2\s+2/.test(clients),
        'who visited ads.test: ' + clients);
  const users = await page.getByTestId('visitors-users').innerText();
  check(/\(no proxy user\)/.test(users), 'users of ads.test: ' + users);
  check(/Who visited ads\.test/.test(await page.getByTestId('visitors-panel').innerText()), 'no title');
  await shot(page, 'dashboard-who-desktop.png');
  await page.getByTestId('visitors-clients').getByRole('link', { name: /127\.0\.0\.3/ }).click();
  await page.waitForURL(/\/log\?/, { timeout: STEP_MS });
  const rows = await logRows(page);
  check(rows.length === 1 && rows[0].client.includes('127.0.0.3') && rows[0].text.includes('ads.test'),
        'the visitor link shows ' + rows.map((r) => r.text).join(' | '));
  log('who visited ads.test: ' + clients.replace(/\s+/g, ' '));
}

// Runs action (a search) and returns once the log shows its answer, not an earlier one.
async function answered(page, action) {
  const rows = page.getByTestId('log-rows');
  const before = await rows.getAttribute('data-searched');
  await action();
  await poll(async () => (await rows.getAttribute('data-searched')) !== before, STEP_MS);
}

// The log explains itself and filters without typing dates: presets, client by prefix and
// network, user, the trace of a row under it.
async function logFilters(page) {
  await page.goto(ADMIN + '/log', { timeout: STEP_MS });
  await logRows(page);
  const search = async (fields) => {
    for (const [k, v] of Object.entries(fields)) {
      if (k === 'decision') await page.getByTestId('f-decision').selectOption(v);
      else await page.getByTestId('f-' + k).fill(v);
    }
    await answered(page, () => page.getByTestId('f-search').click());
    return page.getByTestId('log-row').evaluateAll((rows) => rows.map((r) => ({
      client: r.querySelector('[data-testid="log-client"]').textContent,
      rule: r.querySelector('[data-testid="log-rule"]').textContent,
      reason: r.querySelector('[data-testid="log-reason"]').textContent,
      decision: r.querySelector('td.decision').textContent })));
  };
  let rows = await search({ client: '127.0.0.*' });
  check(rows.length === 6 && rows.every((r) => r.client.startsWith('127.0.0.')),
        'client 127.0.0.*: ' + rows.map((r) => r.client).join(', '));
  check(new URL(page.url()).searchParams.get('client') === '127.0.0.*', 'the filter is not in the address');
  rows = await search({ client: '127.0.0.2/31' });
  check(rows.length === 4 && rows.every((r) => /^127\.0\.0\.[23]/.test(r.client)),
        'client 127.0.0.2/31: ' + rows.map((r) => r.client).join(', '));
  const denied = rows.filter((r) => r.decision === 'deny');
  check(denied.length === 3 && denied.every((r) => /deny domain ads\.test/.test(r.rule) &&
                                             /ads\.test/.test(r.reason)),
        'a denied row lacks its rule or reason: ' + JSON.stringify(denied[0]));
  rows = await search({ client: '', user: 'nobody' });
  check(rows.length === 0, `user nobody: ${rows.length} rows`);
  await search({ user: '', client: '10.0.0.1' });
  // A preset fills the From date; the last hour holds only the live rows.
  await answered(page, () => page.getByTestId('range-1h').click());
  const since = await page.getByTestId('f-since').inputValue();
  check(/^\d{4}-\d\d-\d\dT\d\d:\d\d$/.test(since), 'the 1 h preset left From as ' + since);
  check(await page.getByTestId('log-row').count() === 0, '10.0.0.1 has rows in the last hour');
  await answered(page, () => page.getByTestId('range-any').click());
  check(await page.getByTestId('log-row').count() > 0, '"any time" shows no rows');
  check(await page.getByTestId('f-since').inputValue() === '', '"any time" left a From date');
  // Why opens the trace under its row, and closes it again.
  await search({ client: '127.0.0.3', decision: 'deny' });
  const row = page.getByTestId('log-row').first();
  await row.getByTestId('why-btn').click();
  const why = page.locator('tr[data-testid="log-row"] + tr.why-row [data-testid="why"]');
  await why.filter({ hasText: /Trace/ }).waitFor({ timeout: STEP_MS });
  const text = await why.innerText();
  check(/decided\s+deny domain ads\.test/.test(text), 'the trace: ' + text);
  check(await row.getByTestId('why-btn').getAttribute('aria-expanded') === 'true', 'Why is not expanded');
  await shot(page, 'log-why-inline-desktop.png');
  await row.getByTestId('why-btn').click();
  await why.waitFor({ state: 'detached', timeout: STEP_MS });
  log('log filters: prefix, network, user, presets and the trace under its row');
}

async function diagnostics(page) {
  await page.goto(ADMIN + '/', { timeout: STEP_MS });
  await cards(page);
  const table = page.getByTestId('proxy-stats');
  check(!(await table.isVisible()), 'the counters are not tucked under Diagnostics');
  await page.getByTestId('diagnostics').locator('summary').click();
  await table.waitFor({ state: 'visible', timeout: STEP_MS });
  const whose = await page.locator('#diagnostics-of').innerText();
  check(whose.includes('node ' + cfg.nodeName + "'s own counters"), 'Diagnostics says whose: ' + whose);
  const down = await table.locator('tr[data-key="bytes_down"]').innerText();
  check(/bytes sent to clients/.test(down) && /\d+(\.\d)? (B|kB|MB)/.test(down), 'bytes_down: ' + down);
  const started = await table.locator('tr[data-key="started_ms"]').innerText();
  check(/\d{4}-\d\d-\d\d .*up \d+/.test(started), 'started_ms: ' + started);
  const dns = await table.locator('tr[data-key="dns_lookup"]').innerText();
  check(/on average/.test(dns), 'dns_lookup: ' + dns);
  log('diagnostics: ' + down.replace(/\s+/g, ' '));
  await page.getByTestId('diagnostics').scrollIntoViewIfNeeded();
  await shot(page, 'dashboard-diagnostics-desktop.png');
}

async function fullPhase(page) {
  await login(page, false);
  const day = await cards(page);
  check(day.points === 144, `24 h chart has ${day.points} buckets, wanted 144 of 10 minutes`);
  check(day.requests >= cfg.dayRows && day.requests < cfg.dayRows + cfg.oldRows,
        `24 h requests ${day.requests}, wanted ${cfg.dayRows} (and not the older rows)`);
  check(day.blocked >= cfg.dayBlocked, `24 h blocked ${day.blocked}, wanted ${cfg.dayBlocked}`);
  check(day.percent === (100 * day.blocked / day.requests).toFixed(1) + ' %', 'blocked share ' + day.percent);
  check(day.listed === cfg.listed, `domains on lists ${day.listed}, wanted ${cfg.listed}`);
  const bars = await page.locator('#chart rect.blocked').count();
  check(bars >= 10, `${bars} blocked bars`);
  await chartTooltip(page);

  const week = await chooseRange(page, '7d', 168);
  check(week.requests >= day.requests + cfg.oldRows, `7 d requests ${week.requests}, 24 h ${day.requests}`);
  await shot(page, 'dashboard-7d-desktop.png');
  const hour = await chooseRange(page, '1h', 60);
  check(hour.requests >= 6 && hour.requests < day.requests, `1 h requests ${hour.requests}`);
  await chooseRange(page, '30d', 120);
  await page.reload({ timeout: STEP_MS });
  const kept = await cards(page);
  check(kept.points === 120, 'a reload forgets the range');
  await chooseRange(page, '24h', 144);

  await topLinks(page);
  await logFilters(page);
  await whoVisited(page);
  await diagnostics(page);

  await page.setViewportSize(PHONE);
  await page.goto(ADMIN + '/?range=24h', { timeout: STEP_MS });
  await cards(page);
  await checkNoOverflow(page, 'dashboard 390');
  await shot(page, 'dashboard-24h-phone.png');
  await page.goto(ADMIN + '/log?host=ads.test&range=24h', { timeout: STEP_MS });
  await logRows(page);
  await shot(page, 'log-filtered-phone.png');
}

async function main() {
  await inBrowser('dashboard-failure.png', async (page) => {
    if (cfg.phase === 'empty') await emptyPhase(page);
    else await fullPhase(page);
  }, { viewport: DESKTOP });
}

run(main);
