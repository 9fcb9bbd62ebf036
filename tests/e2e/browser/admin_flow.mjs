// The admin UI in headless Chromium, driven by Playwright (playwright-core, the system's
// /usr/bin/chromium; no browser downloads). Run by tests/e2e/test_browser.py, which starts
// the DNS stub, the origin and proxyd and passes one JSON config as argv[2]:
//   {admin, password, newPassword, proxyPort, originPort, shots, xssPath, csrfPage}
// Exits 0 when every expectation held; otherwise prints "FAIL: <what>" and exits 1.
//
// How the browser reaches what: Chromium is started with --proxy-server=proxyd and
// --host-resolver-rules mapping every name to NOTFOUND (except 127.0.0.1), so the only way
// it can reach a name such as news.test is through proxyd, which resolves it with the DNS
// stub (with a fixed proxy Chromium never resolves the target name itself). The admin pages
// are loaded from http://127.0.0.1:<admin port>, which Chromium sends DIRECT because it
// bypasses loopback addresses by default. We do not pass --proxy-bypass-list=<-loopback>:
// then the admin pages would go through proxyd too, which refuses to proxy to its own admin
// port. test_browser.py checks proxyd's access log to show the name visits were proxied.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  cfg, STEP_MS, check, log, poll, run, checkNoOverflow, shot, inBrowser, viaProxy
} from './flow.mjs';

const ADMIN = cfg.admin;
const ORIGIN_PORT = cfg.originPort;
const proxied = (host, path = '/small') => `http://${host}:${ORIGIN_PORT}${path}`;

// Visits url in tab; returns {status, text} of the page the browser shows.
async function visit(tab, url) {
  const r = await tab.goto(url, { timeout: STEP_MS });
  check(r, `no response for ${url}`);
  return { status: r.status(), text: await tab.locator('body').innerText({ timeout: STEP_MS }) };
}

async function login(page) {
  await page.goto(ADMIN + '/', { timeout: STEP_MS });
  // Without a session every page sends the browser to /login.
  await page.waitForURL(ADMIN + '/login', { timeout: STEP_MS });
  await page.getByTestId('login-user').fill('admin');
  await page.getByTestId('login-password').fill('not-the-password');
  await page.getByTestId('login-submit').click();
  await page.getByTestId('login-error').filter({ hasText: /./ }).waitFor({ timeout: STEP_MS });
  check(page.url() === ADMIN + '/login', 'a wrong password left the login page');
  await page.getByTestId('login-password').fill(cfg.password);
  await page.getByTestId('login-submit').click();
  // The first-run password opens only the form that replaces it.
  await page.getByTestId('passwd-form').waitFor({ state: 'visible', timeout: STEP_MS });
  check(await page.getByTestId('login-form').isHidden(), 'the login form is still shown');
  check(page.url() === ADMIN + '/login', 'the first login left the login page');
  mkdirSync(cfg.shots, { recursive: true });
  await page.screenshot({ path: join(cfg.shots, 'first-login-password.png'), fullPage: true,
                          timeout: STEP_MS });
  // Other pages send this session back here, and the form is asked again.
  await page.goto(ADMIN + '/policy', { timeout: STEP_MS });
  await page.waitForURL(ADMIN + '/login?next=/policy', { timeout: STEP_MS });
  await page.getByTestId('passwd-form').waitFor({ state: 'visible', timeout: STEP_MS });
  await page.getByTestId('passwd-new').fill(cfg.newPassword);
  await page.getByTestId('passwd-repeat').fill(cfg.newPassword + 'x');
  await page.getByTestId('passwd-submit').click();
  await page.getByTestId('passwd-error').filter({ hasText: 'differ' }).waitFor({ timeout: STEP_MS });
  await page.getByTestId('passwd-repeat').fill(cfg.newPassword);
  await page.getByTestId('passwd-submit').click();
  // The new password set, the browser lands on the page it asked for.
  await page.waitForURL(ADMIN + '/policy', { timeout: STEP_MS });
  await page.getByTestId('whoami').filter({ hasText: 'admin' }).waitFor({ timeout: STEP_MS });
  log('logged in with the first-run password, chose a new one through the form');
  // The new password logs in straight to the dashboard.
  await page.getByTestId('logout').click();
  await page.waitForURL(ADMIN + '/login', { timeout: STEP_MS });
  await page.getByTestId('login-password').fill(cfg.newPassword);
  await page.getByTestId('login-submit').click();
  await page.waitForURL(ADMIN + '/', { timeout: STEP_MS });
  await page.getByTestId('whoami').filter({ hasText: 'admin' }).waitFor({ timeout: STEP_MS });
  log('logged in again with the new password');
}

async function addRuleThroughForm(page) {
  await page.goto(ADMIN + '/policy', { timeout: STEP_MS });
  await page.getByTestId('rules').waitFor({ timeout: STEP_MS });
  // The form checks the rule as it is typed, with the server's parser.
  await page.getByTestId('rule-text').fill('deny nonsense news.test');
  await page.getByTestId('rule-error').filter({ hasText: /./ }).waitFor({ timeout: STEP_MS });
  await page.getByTestId('rule-text').fill('deny domain news.test');
  await page.getByTestId('rule-comment').fill('added by the browser test');
  await page.waitForFunction(() => document.getElementById('rule-error').textContent === '',
                             null, { timeout: STEP_MS });
  await page.getByTestId('rule-add').click();
  const row = page.getByTestId('rule-row').filter({ hasText: 'deny domain news.test' });
  await row.waitFor({ timeout: STEP_MS });
  check(/added by the browser test/.test(await row.innerText()), 'the new rule row lacks its comment');
  await page.getByTestId('flash').filter({ hasText: /^Added rule \d+/ }).waitFor({ timeout: STEP_MS });
  log('rule added through the form: ' + (await row.innerText()).replace(/\s+/g, ' '));
}

async function checkBlockPage(tab) {
  // A rule the admin server has added is in force in the running proxy.
  let last;
  const blocked = await poll(async () => {
    last = await visit(tab, proxied('news.test') + '?try=' + Date.now());
    return last.status === 403;
  }, STEP_MS, 100);
  check(blocked, `news.test through proxyd: status ${last.status}, wanted 403`);
  check(last.text.includes('403 Forbidden'), 'the block page has no "403 Forbidden" title');
  // The rule by number only: its text is the admin's business, not the employee's.
  check(/blocked by the office's access policy \(rule \d+\)\./.test(last.text),
        'the block page does not name the rule by number: ' + last.text.slice(0, 300));
  check(!last.text.includes('deny domain'), 'the block page shows the rule text: ' + last.text.slice(0, 300));
  check(last.text.includes(`http://news.test:${ORIGIN_PORT}/small`), 'the block page lacks the URL');
  const ok = await visit(tab, proxied('allowed.test'));
  check(ok.status === 200, `allowed.test through proxyd: status ${ok.status}, wanted 200`);
  check(/^x{1024}$/.test(ok.text.trim()), 'allowed.test did not show the origin\'s body');
  log('news.test blocked (403 page names the rule), allowed.test 200');
}

// Fills the log filters, searches, and waits until a row matching rowText shows up (the
// access log is written by proxyd's storage thread in batches, so the first search may be
// too early).
async function searchLog(page, filters, rowText) {
  await page.getByTestId('f-host').fill(filters.host || '');
  await page.getByTestId('f-q').fill(filters.q || '');
  const rows = page.getByTestId('log-row');
  const found = await poll(async () => {
    // A marker row that the search's replaceChildren() removes along with the old rows: once
    // it is gone, the table holds exactly the new answer.
    await page.evaluate(() => {
      const tr = document.createElement('tr');
      tr.setAttribute('data-stale', '');
      document.getElementById('log-rows').append(tr);
    });
    await page.getByTestId('f-search').click();
    await page.waitForFunction(() => !document.querySelector('#log-rows tr[data-stale]'), null,
                               { timeout: STEP_MS });
    return (await rows.filter({ hasText: rowText }).count()) > 0;
  }, STEP_MS, 300);
  check(found, `no log row with ${JSON.stringify(rowText)} for filters ${JSON.stringify(filters)}`);
  return rows;
}

async function checkLogPage(page) {
  await page.goto(ADMIN + '/log', { timeout: STEP_MS });
  await page.getByTestId('log-count').filter({ hasText: /rows? shown/ }).waitFor({ timeout: STEP_MS });
  const rows = await searchLog(page, { host: 'news.test' }, 'news.test');
  const texts = await rows.allInnerTexts();
  check(texts.every((t) => t.includes('news.test')), 'the host filter let other hosts through');
  const denied = rows.filter({ hasText: `http://news.test:${ORIGIN_PORT}/small` }).first();
  check(/\bdeny\b/.test(await denied.innerText()), 'the news.test row is not marked deny');
  check(/\b403\b/.test(await denied.innerText()), 'the news.test row does not show status 403');
  check((await denied.getAttribute('class')) === 'deny', 'the news.test row lacks class deny');
  log(`log filtered by host: ${texts.length} news.test rows, first: ` +
      texts[0].replace(/\s+/g, ' ').slice(0, 120));
}

// proxyd logged a URL with markup in it (test_browser.py requested it before the flow).
async function checkLogXss(page) {
  const marker = cfg.xssPath;
  await searchLog(page, { q: '__xss' }, marker);
  const probe = await page.evaluate((m) => ({
    xss: typeof window.__xss,
    injected: document.querySelectorAll('#log-rows img, #log-rows script, #log-rows b').length,
    asText: [...document.querySelectorAll('#log-rows td.url')].some((td) => td.textContent.includes(m)),
  }), marker);
  check(probe.xss === 'undefined', 'logged markup ran as script (window.__xss is set)');
  check(probe.injected === 0, `logged markup became ${probe.injected} element(s) in the log table`);
  check(probe.asText, 'the logged URL is not shown as literal text');
  log('logged markup shows as text; no elements, no script');
}

async function checkCsrf(page, ctx) {
  const res = await page.evaluate(async () => {
    const post = (headers, text) => fetch('/api/rules', {
      method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', ...headers },
      body: JSON.stringify({ text }),
    });
    const s = await (await fetch('/api/session', { credentials: 'same-origin' })).json();
    const without = await post({}, 'deny domain csrf-no-token.test');
    const wrong = await post({ 'X-CSRF-Token': 'x' + s.csrf }, 'deny domain csrf-wrong-token.test');
    // Control: the same request with the session's token is accepted, so the refusals above
    // are about the token and nothing else.
    const right = await post({ 'X-CSRF-Token': s.csrf }, 'deny domain csrf-control.test');
    const rule = right.ok ? (await right.json()).rule : null;
    if (rule) {
      await fetch('/api/rules/' + rule.id, { method: 'DELETE', credentials: 'same-origin',
                                             headers: { 'X-CSRF-Token': s.csrf } });
    }
    return { without: without.status, wrong: wrong.status, right: right.status };
  });
  check(res.without === 403, `POST /api/rules without X-CSRF-Token: ${res.without}, wanted 403`);
  check(res.wrong === 403, `POST /api/rules with a wrong X-CSRF-Token: ${res.wrong}, wanted 403`);
  check(res.right === 201, `POST /api/rules with the session's token: ${res.right}, wanted 201`);

  // A page on another site (served by the origin, reached through proxyd) posts a form to
  // the admin API, with a text/plain body that happens to be JSON: the classic CSRF.
  const evil = await ctx.newPage();
  await evil.goto(cfg.csrfPage, { timeout: STEP_MS });
  const [resp] = await Promise.all([
    evil.waitForResponse((r) => r.url() === ADMIN + '/api/rules', { timeout: STEP_MS }),
    evil.locator('#go').click(),
  ]);
  check(resp.status() === 401 || resp.status() === 403,
        `cross-site form POST to /api/rules: ${resp.status()}, wanted 401 or 403`);
  await evil.close();
  await page.bringToFront();
  const rules = await page.evaluate(async () =>
    (await (await fetch('/api/rules', { credentials: 'same-origin' })).json()).rules.map((r) => r.text));
  check(!rules.some((t) => /csrf|evil/.test(t)), 'a CSRF attempt left a rule: ' + rules.join(' | '));
  log(`CSRF: no token 403, wrong token 403, cross-site form ${resp.status()}, no rule added`);
}

async function checkOneClickBlock(page, tab) {
  await page.goto(ADMIN + '/log', { timeout: STEP_MS });
  const rows = await searchLog(page, { host: 'allowed.test' }, 'allowed.test');
  const row = rows.filter({ hasText: `http://allowed.test:${ORIGIN_PORT}/small` }).first();
  await row.getByTestId('block-btn').click();
  const added = page.getByTestId('flash-text').filter({ hasText: /^Added rule \d+: deny domain allowed\.test$/ });
  await added.waitFor({ timeout: STEP_MS });
  const ruleId = /^Added rule (\d+)/.exec(await added.innerText())[1];
  const t0 = Date.now();
  let last;
  const blocked = await poll(async () => {
    last = await visit(tab, proxied('allowed.test') + '?try=' + Date.now());
    return last.status === 403;
  }, STEP_MS, 20);
  const ms = Date.now() - t0;
  check(blocked, `allowed.test still ${last.status} ${ms} ms after "Block domain"`);
  check(last.text.includes(`(rule ${ruleId})`), 'the block page does not name the new rule');
  await page.goto(ADMIN + '/policy', { timeout: STEP_MS });
  const first = page.getByTestId('rule-row').first();
  await first.waitFor({ timeout: STEP_MS });
  check((await first.innerText()).includes('deny domain allowed.test'),
        'the one-click rule is not at the top of the policy');
  log(`"Block domain" on a log row: allowed.test got 403 after ${ms} ms`);
}

// Why was allowed.test blocked (the log row names the version and its rule), what did the
// one-click block change (versions page), and a rollback to the version before it, after
// which the browser gets through again.
async function checkVersions(page, tab) {
  await page.goto(ADMIN + '/log', { timeout: STEP_MS });
  const rows = await searchLog(page, { host: 'allowed.test' }, 'allowed.test');
  const denied = rows.filter({ hasText: '403' }).first();
  await denied.getByTestId('why-btn').click();
  const why = page.getByTestId('why');
  await why.filter({ hasText: /Trace/ }).waitFor({ timeout: STEP_MS });
  const text = await why.innerText();
  check(/Policy version \d+, .* by admin: rule\.add rule \d+: deny domain allowed\.test/.test(text),
        'the why panel does not name the version of the block: ' + text);
  check(/Rule \d+ \(position 1\): deny domain allowed\.test/.test(text),
        'the why panel does not name the deciding rule: ' + text);
  await page.screenshot({ path: join(cfg.shots, 'log-why-desktop.png'), fullPage: true,
                          timeout: STEP_MS });

  await page.goto(ADMIN + '/versions', { timeout: STEP_MS });
  const top = page.getByTestId('version-row').first();
  await top.waitFor({ timeout: STEP_MS });
  check((await top.innerText()).includes('(in force)'), 'the newest version is not marked in force');
  await top.getByTestId('v-changes').click();
  const added = page.locator('[data-testid="diff-row"][data-change="added"]');
  await added.first().waitFor({ timeout: STEP_MS });
  check((await added.first().innerText()).includes('deny domain allowed.test'),
        'the changes of the newest version do not show the one-click block');
  const second = page.getByTestId('version-row').nth(1);
  const before = await second.getAttribute('data-version');
  await page.getByTestId('v-message').fill('undo the <b>one-click</b> block');
  await second.getByTestId('v-rollback').click();
  await second.getByTestId('v-rollback').filter({ hasText: 'Sure?' }).click();
  await page.getByTestId('flash').filter({ hasText: `The rules of version ${before} are in force again` })
    .waitFor({ timeout: STEP_MS });
  const removed = page.locator('[data-testid="diff-row"][data-change="removed"]');
  await removed.first().waitFor({ timeout: STEP_MS });
  check((await removed.first().innerText()).includes('deny domain allowed.test'),
        'the rollback\'s changes do not show the block removed');
  const newest = page.getByTestId('version-row').first();
  await newest.filter({ hasText: 'undo the <b>one-click</b> block' }).waitFor({ timeout: STEP_MS });
  check(await page.locator('#versions b').count() === 0, 'markup in a version message was rendered');
  await page.screenshot({ path: join(cfg.shots, 'versions-desktop.png'), fullPage: true,
                          timeout: STEP_MS });
  const r = await visit(tab, proxied('allowed.test') + '?after-rollback=' + Date.now());
  check(r.status === 200, `allowed.test is ${r.status} after the rollback, wanted 200`);
  log(`versions: why names the rule, rollback to ${before} lets allowed.test through`);
}

// "Request access": the setting on (Settings page), the block page's form sent from the
// browser through the proxy, the request in the queue with the badge, approved; the next
// visit gets through.
async function checkAccessRequest(page, tab) {
  await page.goto(ADMIN + '/settings', { timeout: STEP_MS });
  await page.getByTestId('setting-access_requests').selectOption('on');
  await page.getByTestId('settings-save').click();
  await page.getByTestId('flash').filter({ hasText: 'Saved' }).waitFor({ timeout: STEP_MS });
  // proxyd reads the setting on its next poll.
  const form = await poll(async () => {
    const r = await visit(tab, proxied('news.test') + '?form=' + Date.now());
    return r.status === 403 && (await tab.locator('form textarea[name="reason"]').count()) === 1;
  }, STEP_MS, 100);
  check(form, 'the block page of news.test has no request form with the setting on');
  const reason = 'For the <b>press review</b> & "quotes"';
  await tab.locator('textarea[name="reason"]').fill(reason);
  await tab.locator('input[name="name"]').fill('Zoé <i>');
  await tab.screenshot({ path: join(cfg.shots, 'block-page-form.png'), fullPage: true,
                         timeout: STEP_MS });
  await tab.locator('form button[type="submit"]').click();
  await tab.waitForLoadState('load', { timeout: STEP_MS });
  const sent = await tab.locator('body').innerText({ timeout: STEP_MS });
  check(sent.includes('Your request for news.test was sent'), 'the form was not accepted: ' + sent);

  // The badge counts the pending request (the main thread stores it on its next poll).
  const badge = await poll(async () => {
    await page.goto(ADMIN + '/requests', { timeout: STEP_MS });
    const b = page.getByTestId('req-badge');
    return (await b.isVisible()) && (await b.innerText()) === '1';
  }, STEP_MS, 200);
  check(badge, 'no badge with 1 pending request in the navigation');
  const row = page.getByTestId('request-row').first();
  await row.waitFor({ timeout: STEP_MS });
  const text = await row.innerText();
  check(text.includes(reason) && text.includes('Zoé <i>') && text.includes('news.test'),
        'the request row does not show what was sent, as text: ' + text);
  check(await page.locator('#requests b, #requests i').count() === 0,
        'markup in a request was rendered');
  await page.screenshot({ path: join(cfg.shots, 'requests-desktop.png'), fullPage: true,
                          timeout: STEP_MS });
  await row.getByTestId('req-note').fill('ok this week');
  check(await row.getByTestId('req-for').inputValue() === '1d', 'the offered length is not 1 day');
  await row.getByTestId('req-for').selectOption('1h');
  await row.getByTestId('req-approve').click();
  await page.getByTestId('flash')
    .filter({ hasText: /^Approved: rule \d+ \(allow domain news\.test clients 127\.0\.0\.1 expires \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\)/ })
    .waitFor({ timeout: STEP_MS });
  await page.getByTestId('req-badge').waitFor({ state: 'hidden', timeout: STEP_MS });
  const r = await visit(tab, proxied('news.test') + '?approved=' + Date.now());
  check(r.status === 200, `news.test is ${r.status} after the approval, wanted 200`);
  log('access request: form sent, queued with badge, approved, news.test gets through');
}

// Importing over a list, or a text without domains, asks first in the page's dialog: the
// list stays as it was until the admin confirms there (Cancel keeps it).
async function checkListReplace(page) {
  await page.goto(ADMIN + '/lists', { timeout: STEP_MS });
  const importAs = async (text) => {
    await page.getByTestId('list-name').fill('ads');
    await page.getByTestId('list-text').fill(text);
    await page.getByTestId('list-import').click();
  };
  const dialog = page.getByTestId('list-confirm');
  await importAs('ads.test\ntracker.test\n');
  await page.getByTestId('list-summary').filter({ hasText: 'List ads: 2 domains' })
    .waitFor({ timeout: STEP_MS });
  await importAs('news.test\n');
  await dialog.waitFor({ state: 'visible', timeout: STEP_MS });
  const asked = await page.getByTestId('list-confirm-text').innerText();
  check(asked === 'list ads exists: importing replaces its entries; nothing changed.',
        'the replace dialog says: ' + asked);
  check((await page.getByTestId('list-confirm-title').innerText()) === 'Replace list ads?',
        'the replace dialog is titled: ' + (await page.getByTestId('list-confirm-title').innerText()));
  const entries = async () => (await page.evaluate(async () =>
    (await (await fetch('/api/lists/ads', { credentials: 'same-origin' })).json()).entries));
  check((await entries()).length === 2, 'the list changed before the replace was confirmed');
  await page.screenshot({ path: join(cfg.shots, 'lists-replace.png'), fullPage: true,
                          timeout: STEP_MS });
  await page.getByTestId('list-confirm-ok').click();
  await page.getByTestId('list-summary').filter({ hasText: 'List ads: 1 domains' })
    .waitFor({ timeout: STEP_MS });
  check(!(await dialog.isVisible()), 'the dialog stayed open after Replace');
  let now = await entries();
  check(now.length === 1 && now[0] === 'news.test', 'the confirmed replace did not replace: ' + now);

  // An empty paste: asked about, cancelled, nothing changed and the page says why.
  await importAs('# nothing but a comment\n');
  await dialog.waitFor({ state: 'visible', timeout: STEP_MS });
  const emptyAsked = await page.getByTestId('list-confirm-text').innerText();
  check(emptyAsked.includes('importing it empties the list; nothing changed.'),
        'the empty-import dialog says: ' + emptyAsked);
  await page.screenshot({ path: join(cfg.shots, 'lists-empty.png'), fullPage: true,
                          timeout: STEP_MS });
  await page.getByTestId('list-confirm-cancel').click();
  await page.getByTestId('list-error').filter({ hasText: 'importing it empties the list' })
    .waitFor({ timeout: STEP_MS });
  now = await entries();
  check(now.length === 1 && now[0] === 'news.test', 'a cancelled empty import changed the list: ' + now);
  log('lists: re-import and empty import asked in a dialog; replaced after OK, kept after Cancel');

  // The version the replace made shows which list changed and how (versions keep lists).
  await page.goto(ADMIN + '/versions', { timeout: STEP_MS });
  const top = page.getByTestId('version-row').first();
  await top.waitFor({ timeout: STEP_MS });
  await top.getByTestId('v-changes').click();
  const changed = page.locator('[data-testid="diff-list"][data-change="changed"]');
  await changed.first().waitFor({ timeout: STEP_MS });
  const said = await changed.first().innerText();
  check(said.includes('list ads: 2 \u2192 1 entries (1 added, 2 removed)'),
        'the replace\'s changes say: ' + said);
  await page.screenshot({ path: join(cfg.shots, 'versions-lists.png'), fullPage: true,
                          timeout: STEP_MS });
  log('versions: the list replace shows as ' + said.trim());
}

async function screenshots(page) {
  mkdirSync(cfg.shots, { recursive: true });
  const shot = (name) => page.screenshot({ path: join(cfg.shots, name), fullPage: true,
                                           timeout: STEP_MS });
  const dashboard = async () => {
    await page.goto(ADMIN + '/', { timeout: STEP_MS });
    await page.locator('#chart rect.allowed').first().waitFor({ timeout: STEP_MS });
    await page.getByTestId('top-hosts').locator('td', { hasText: 'allowed.test' }).first()
      .waitFor({ timeout: STEP_MS });
    // The counters are under Diagnostics, closed until asked for.
    await page.getByTestId('diagnostics').locator('summary').click();
    await page.locator('#proxy-stats tr').first().waitFor({ timeout: STEP_MS });
    // On a phone too: the counters fit their panel (no sideways scrolling to read a value)
    // and the chart is drawn at its own width (labels not squeezed).
    const fit = await page.evaluate(() => {
      const box = document.querySelector('[data-testid="proxy-stats"]').parentElement;
      const svg = document.getElementById('chart');
      return { over: box.scrollWidth - box.clientWidth, svg: svg.getBoundingClientRect().width,
               viewBox: Number(svg.getAttribute('viewBox').split(' ')[2]) };
    });
    check(fit.over <= 1, `the proxy counters overflow their panel by ${fit.over} px`);
    check(Math.abs(fit.svg - fit.viewBox) <= 1,
          `the chart is drawn ${fit.viewBox} units wide but shown ${fit.svg} px wide`);
    const n = Number(await page.getByTestId('chart').getAttribute('data-points'));
    check(n === 144, `the chart has ${n} points, wanted 144 buckets of 10 minutes`);
    const blocked = Number((await page.getByTestId('card-blocked').innerText()).replace(/,/g, ''));
    check(blocked >= 2, `the Blocked card shows ${blocked}, wanted at least 2`);
  };

  await page.setViewportSize({ width: 1280, height: 800 });
  await dashboard();
  await checkNoOverflow(page, 'dashboard 1280x800');
  await shot('dashboard-desktop.png');

  await page.goto(ADMIN + '/log', { timeout: STEP_MS });
  await page.getByTestId('log-row').first().waitFor({ timeout: STEP_MS });
  await shot('log-desktop.png');

  await page.goto(ADMIN + '/policy', { timeout: STEP_MS });
  await page.getByTestId('rule-row').first().waitFor({ timeout: STEP_MS });
  await shot('policy-desktop.png');

  await page.setViewportSize({ width: 390, height: 844 });
  await dashboard();
  await checkNoOverflow(page, 'dashboard 390x844');
  await shot('dashboard-phone.png');
  for (const path of ['/log', '/policy', '/versions', '/requests']) {
    await page.goto(ADMIN + path, { timeout: STEP_MS });
    await page.getByTestId('nav').waitFor({ state: 'attached', timeout: STEP_MS });
    await page.waitForLoadState('networkidle', { timeout: STEP_MS });
    await checkNoOverflow(page, path + ' 390x844');
  }
  await shot('versions-phone.png');
  await page.goto(ADMIN + '/policy', { timeout: STEP_MS });
  await page.getByTestId('nav').waitFor({ state: 'attached', timeout: STEP_MS });  // behind Menu on a phone
  await page.waitForLoadState('networkidle', { timeout: STEP_MS });
  await shot('policy-phone.png');
  log('screenshots in ' + cfg.shots);
}

async function main() {
  await inBrowser('failure.png', async (page) => {
    // Refused requests (a wrong password, a bad rule, the CSRF probes) log "Failed to load
    // resource", which inBrowser expects; script errors fail the flow.
    const ctx = page.context();
    const tab = await ctx.newPage();  // visits through the proxy, beside the admin pages
    // The admin page stays in front: Chromium throttles a background page's timers and
    // animation frames, which slowed every click there to about a second.
    await page.bringToFront();

    await login(page);
    await addRuleThroughForm(page);
    await checkBlockPage(tab);
    await checkLogPage(page);
    await checkLogXss(page);
    await checkCsrf(page, ctx);
    await checkOneClickBlock(page, tab);
    await checkVersions(page, tab);
    await checkAccessRequest(page, tab);
    await checkListReplace(page);
    await screenshots(page);
  }, { args: viaProxy() });
}

run(main);
