// Answers that cross, in headless Chromium driven by playwright-core (as admin_flow.mjs, which
// says how the browser is wired to proxyd). Run by tests/e2e/test_browser_races.py with one
// JSON config as argv[2]:
//   {admin, password, shots, marker}
// where the audit holds rows whose detail names cfg.marker and others that do not, the top
// hosts list two hosts, there are lists race-a and race-b, two policy versions at least and
// two log rows. Each case holds one answer back (page.route) until the user's next choice has
// been answered, so the race happens every run: the page must draw what was asked last, not
// what answered last (the audit's first, unfiltered page over the filtered one; "Who" of
// the host clicked first; the list viewed first; the versions compared first; the Why of
// the row clicked first), and a rule's Add clicked twice before its answer adds it once, the button looking busy meanwhile.
// <html data-dropped> counts the answers a page dropped: after a held answer is let go, the
// flow waits for it to be dropped, or drawn (the old pages), then checks. Exits 0 when every
// expectation held; otherwise prints "FAIL: <what>", exits 1.
import { cfg, STEP_MS, check, log, run, shot, inBrowser } from './flow.mjs';

const ADMIN = cfg.admin;

async function login(page) {
  await page.goto(ADMIN + '/login', { timeout: STEP_MS });
  await page.getByTestId('login-user').fill('admin');
  await page.getByTestId('login-password').fill(cfg.password);
  await page.getByTestId('login-submit').click();
  await page.waitForURL(ADMIN + '/', { timeout: STEP_MS });
}

// Holds the answer to the first request that match(request) picks until release(); the
// others pass. held resolves once that request has been sent; count() is how many matched.
async function holdFirst(page, match) {
  let release, seen;
  const gate = new Promise((r) => { release = r; });
  const held = new Promise((r) => { seen = r; });
  let n = 0;
  const pick = (u) => u.pathname.startsWith('/api/');
  const handler = async (route) => {
    if (!match(route.request())) return route.fallback();
    if (++n === 1) {
      seen();
      await gate;
    }
    const response = await route.fetch();
    await route.fulfill({ response });
  };
  await page.route(pick, handler);
  return { held, release, count: () => n, done: () => page.unroute(pick, handler) };
}

const dropped = (page) => page.evaluate(() => Number(document.documentElement.dataset.dropped || 0));

// Lets the held answer go, then waits until the page dropped it or drew it: gone([d, a]),
// run in the page, is true once <html data-dropped> is above d, or the page shows what the
// old page drew from the late answer.
async function letGo(page, hold, gone, arg) {
  const d = await dropped(page);
  hold.release();
  await page.waitForFunction(gone, [d, arg], { timeout: STEP_MS });
  await hold.done();
}

async function audit(page) {
  const hold = await holdFirst(page, (r) => new URL(r.url()).pathname === '/api/audit');
  await page.goto(ADMIN + '/audit', { timeout: STEP_MS });
  await hold.held;
  await page.getByTestId('audit-q').fill(cfg.marker);
  await page.getByTestId('audit-q').press('Enter');
  const rows = page.getByTestId('audit-row');
  await rows.first().waitFor({ timeout: STEP_MS });
  const shown = await rows.count();
  await letGo(page, hold, ([d, a]) => Number(document.documentElement.dataset.dropped || 0) > d ||
    [...document.querySelectorAll('[data-testid="audit-row"]')].some((tr) => !tr.textContent.includes(a)),
  cfg.marker);
  const texts = await rows.allInnerTexts();
  check(texts.length === shown && texts.every((t) => t.includes(cfg.marker)),
        `the audit's first, unfiltered answer was drawn after the filtered one: ${texts.length} rows ` +
        `(${shown} filtered), ${texts.filter((t) => !t.includes(cfg.marker)).length} without ${cfg.marker}`);
  await shot(page, 'audit.png');
  log(`audit: the late unfiltered answer dropped, ${shown} rows with ${cfg.marker}`);
}

async function visitors(page) {
  await page.goto(ADMIN + '/', { timeout: STEP_MS });
  const rows = page.getByTestId('top-hosts').locator('tr').filter({ has: page.getByTestId('who-btn') });
  await rows.nth(1).waitFor({ timeout: STEP_MS });
  const hosts = await Promise.all([0, 1].map(async (i) =>
    (await rows.nth(i).getByTestId('top-link').innerText()).trim()));
  const hold = await holdFirst(page, (r) => new URL(r.url()).pathname === '/api/visitors');
  await rows.nth(0).getByTestId('who-btn').click();
  await hold.held;
  await rows.nth(1).getByTestId('who-btn').click();
  const title = page.locator('#visitors-title');
  await title.filter({ hasText: hosts[1] }).waitFor({ timeout: STEP_MS });
  await letGo(page, hold, ([d, a]) => Number(document.documentElement.dataset.dropped || 0) > d ||
    document.getElementById('visitors-title').textContent.includes(a), hosts[0]);
  const t = await title.innerText();
  check(t.includes(hosts[1]), `"Who" of ${hosts[0]} (clicked first, answered last) is shown: ${t}`);
  await shot(page, 'visitors.png');
  log(`dashboard: the visitors of ${hosts[1]} stay, the late answer for ${hosts[0]} dropped`);
}

async function listView(page) {
  await page.goto(ADMIN + '/lists', { timeout: STEP_MS });
  const row = (name) => page.locator(`tr[data-testid="list-row"][data-name="${name}"]`);
  await row('race-b').waitFor({ timeout: STEP_MS });
  const hold = await holdFirst(page, (r) => new URL(r.url()).pathname.startsWith('/api/lists/'));
  await row('race-a').getByTestId('list-view-btn').click();
  await hold.held;
  await row('race-b').getByTestId('list-view-btn').click();
  const title = page.locator('#list-view-title');
  await title.filter({ hasText: 'List race-b' }).waitFor({ timeout: STEP_MS });
  await letGo(page, hold, ([d, a]) => Number(document.documentElement.dataset.dropped || 0) > d ||
    document.getElementById('list-view-title').textContent === a, 'List race-a');
  const t = await title.innerText();
  check(t === 'List race-b', `the list viewed first (answered last) is shown: ${t}`);
  log('lists: race-b stays in view, the late race-a dropped');
}

async function versions(page) {
  await page.goto(ADMIN + '/versions', { timeout: STEP_MS });
  const changes = page.getByTestId('v-changes');
  await changes.nth(1).waitFor({ timeout: STEP_MS });
  const versionOf = (i) => changes.nth(i).locator('xpath=ancestor::tr').getAttribute('data-version');
  const [first, second] = [await versionOf(0), await versionOf(1)];
  const hold = await holdFirst(page, (r) => new URL(r.url()).pathname === '/api/versions/diff');
  await changes.nth(0).click();
  await hold.held;
  await changes.nth(1).click();
  const title = page.locator('#diff-title');
  await title.filter({ hasText: new RegExp(`to version ${second}$`) }).waitFor({ timeout: STEP_MS });
  await letGo(page, hold, ([d, a]) => Number(document.documentElement.dataset.dropped || 0) > d ||
    document.getElementById('diff-title').textContent.endsWith(a), `to version ${first}`);
  const t = await title.innerText();
  check(t.endsWith(`to version ${second}`), `the versions compared first (answered last) are shown: ${t}`);
  log(`versions: the changes to ${second} stay, the late ones to ${first} dropped`);
}

async function why(page) {
  await page.goto(ADMIN + '/log', { timeout: STEP_MS });
  const rows = page.getByTestId('log-row');
  await rows.nth(1).waitFor({ timeout: STEP_MS });
  const ids = [await rows.nth(0).getAttribute('data-id'), await rows.nth(1).getAttribute('data-id')];
  const hold = await holdFirst(page, (r) => /^\/api\/logs\/\d+\/why$/.test(new URL(r.url()).pathname));
  const byId = (id) => page.locator(`tr[data-testid="log-row"][data-id="${id}"]`);
  await byId(ids[0]).getByTestId('why-btn').click();
  await hold.held;
  await byId(ids[1]).getByTestId('why-btn').click();
  await page.locator(`tr[data-id="${ids[1]}"] + tr.why-row`).waitFor({ timeout: STEP_MS });
  await letGo(page, hold, ([d]) => Number(document.documentElement.dataset.dropped || 0) > d ||
    document.querySelectorAll('tr.why-row').length > 1, null);
  const open = await page.evaluate(() => [...document.querySelectorAll('tr.why-row')]
    .map((tr) => tr.previousElementSibling.dataset.id));
  check(open.length === 1 && open[0] === ids[1],
        `Why of row ${ids[1]} clicked last; the traces open are under rows ${open.join(', ')}`);
  log(`log: one trace open, under row ${ids[1]}`);
}

// "Older" pages on the search whose rows are shown, not on a filter typed since and not
// searched: a.test has 101 rows (a page is 100).
async function olderKeepsItsSearch(page) {
  await page.goto(ADMIN + '/log', { timeout: STEP_MS });
  const searched = await page.getByTestId('log-rows').getAttribute('data-searched');
  await page.locator('#f-host').fill('a.test');
  await page.locator('#f-host').press('Enter');
  await page.waitForFunction((n) => document.getElementById('log-rows').dataset.searched !== n &&
    document.querySelectorAll('[data-testid="log-row"]').length === 100, searched, { timeout: STEP_MS });
  await page.locator('#f-host').fill('b.test');
  const asked = page.waitForRequest((r) => new URL(r.url()).pathname === '/api/logs' &&
    new URL(r.url()).searchParams.has('before'), { timeout: STEP_MS });
  await page.getByTestId('older').click();
  const host = new URL((await asked).url()).searchParams.get('host');
  check(host === 'a.test', `"older" after typing b.test (not searched) asked for host ${host}`);
  await page.getByTestId('log-count').filter({ hasText: /^101 rows shown$/ }).waitFor({ timeout: STEP_MS });
  const urls = await page.locator('[data-testid="log-row"] td.url').allInnerTexts();
  const others = urls.filter((u) => !u.includes('a.test'));
  check(others.length === 0, `"older" drew rows not of a.test: ${others.join(', ')}`);
  log('log: "older" pages on the search shown, not on a filter typed since');
}

// A rule's down arrow clicked twice before the first move is answered moves it two places:
// each move is worked out from the order the one before it drew.
async function moveTwice(page) {
  await page.goto(ADMIN + '/policy', { timeout: STEP_MS });
  const rows = page.getByTestId('rule-row');
  await rows.nth(2).waitFor({ timeout: STEP_MS });
  const order = () => page.evaluate(() =>
    [...document.querySelectorAll('[data-testid="rule-row"]')].map((tr) => tr.dataset.id));
  const ids = await order();
  const hold = await holdFirst(page, (r) => r.method() === 'POST' && /\/move$/.test(new URL(r.url()).pathname));
  const down = rows.first().getByTestId('rule-down');
  await down.click();
  await hold.held;
  await down.click({ timeout: STEP_MS });
  hold.release();
  // The old page settles with the rule one place down: the wait ends by its timeout there.
  await page.waitForFunction((id) => [...document.querySelectorAll('[data-testid="rule-row"]')]
    .findIndex((tr) => tr.dataset.id === id) === 2, ids[0], { timeout: STEP_MS }).catch(() => {});
  const now = await order();
  await hold.done();
  check(now.indexOf(ids[0]) === 2,
        `rule ${ids[0]}, down twice from the top, is at place ${now.indexOf(ids[0])} of ${now.join(', ')}`);
  log(`policy: down clicked twice before the answer moved rule ${ids[0]} two places`);
}

async function addTwice(page) {
  await page.goto(ADMIN + '/policy', { timeout: STEP_MS });
  await page.getByTestId('rule-row').first().waitFor({ timeout: STEP_MS });
  const hold = await holdFirst(page, (r) => r.method() === 'POST' && new URL(r.url()).pathname === '/api/rules');
  await page.locator('#rule-text').fill('deny domain twice.test');
  const add = page.locator('#rule-add');
  await page.waitForFunction(() => !document.getElementById('rule-add').disabled, null, { timeout: STEP_MS });
  await add.click();
  await hold.held;
  const looks = () => add.evaluate((b) => `${getComputedStyle(b).cursor} ${getComputedStyle(b).opacity}`);
  const busyLook = await looks();
  check(busyLook === 'progress 0.6', `Add while its rule is on its way looks "${busyLook}", not busy`);
  // A second click, then Enter in the rule's field, before the first is answered.
  await add.click({ timeout: STEP_MS });
  await page.locator('#rule-text').press('Enter');
  hold.release();
  await page.getByTestId('rule-row').filter({ hasText: 'deny domain twice.test' }).first()
    .waitFor({ timeout: STEP_MS });
  await page.getByTestId('flash-text').filter({ hasText: /^Added rule/ }).waitFor({ timeout: STEP_MS });
  const sent = hold.count();
  await hold.done();
  const shown = await page.getByTestId('rule-row').filter({ hasText: 'deny domain twice.test' }).count();
  const idleLook = await looks();
  check(idleLook !== busyLook, `Add still looks busy ("${idleLook}") after the answer`);
  check(sent === 1 && shown === 1, `Add clicked twice and Enter sent the rule ${sent} times; ${shown} rows show it`);
  log('policy: Add twice before the answer added the rule once');
}

async function requestsAll(page) {
  const listing = (r) => new URL(r.url()).pathname === '/api/requests' &&
    new URL(r.url()).searchParams.get('status') !== null;
  const hold = await holdFirst(page, listing);
  await page.goto(ADMIN + '/requests', { timeout: STEP_MS });
  await hold.held;
  await page.locator('#req-all').check();
  const rows = page.getByTestId('request-row');
  await rows.first().waitFor({ timeout: STEP_MS });
  const shown = await rows.count();
  await letGo(page, hold, ([d, n]) => Number(document.documentElement.dataset.dropped || 0) > d ||
    document.querySelectorAll('[data-testid="request-row"]').length > n, shown);
  const ids = await rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.id));
  check(ids.length === shown && new Set(ids).size === ids.length,
        `the first (pending) answer was added to the "all" one: rows ${ids.join(', ')}`);
  log(`requests: ${shown} rows once each, the late pending answer dropped`);
}

async function approveTwice(page) {
  await page.goto(ADMIN + '/requests', { timeout: STEP_MS });
  const row = page.locator('tr[data-testid="request-row"].req-pending').first();
  await row.waitFor({ timeout: STEP_MS });
  const id = await row.getAttribute('data-id');
  const hold = await holdFirst(page, (r) => r.method() === 'POST' &&
    new URL(r.url()).pathname === `/api/requests/${id}/approve`);
  const approve = row.getByTestId('req-approve');
  await approve.click();
  await hold.held;
  await approve.click();
  hold.release();
  await page.getByTestId('flash-text').filter({ hasText: /^Approved: rule/ })
    .or(page.locator('#flash.error')).first().waitFor({ timeout: STEP_MS });
  const sent = hold.count();
  await hold.done();
  const flash = await page.locator('#flash').innerText();
  check(sent === 1 && /^Approved: rule/.test(flash.trim()),
        `Approve clicked twice sent ${sent} approvals; the message: ${flash}`);
  log(`requests: Approve twice sent one approval: ${flash.trim()}`);
}

run(async () => {
  await inBrowser('failure.png', async (page) => {
    await login(page);
    await audit(page);
    await visitors(page);
    await listView(page);
    await versions(page);
    await why(page);
    await olderKeepsItsSearch(page);
    await moveTwice(page);
    await addTwice(page);
    await requestsAll(page);
    await approveTwice(page);
  });
});
