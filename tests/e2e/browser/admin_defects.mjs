// The admin UI's one-click actions, messages and forms in headless Chromium (playwright-core,
// /usr/bin/chromium), each checked where an admin would meet it, at 1366x768 and on a 390 px
// phone. Run by tests/e2e/test_browser_defects.py, which starts the DNS stub, the origin and
// proxyd, makes the traffic and rules below, and passes one JSON config as argv[2]:
//   {admin, password, proxyPort, originPort, shots, regexRule, listRule}
// Exits 0 when every expectation held; otherwise prints "FAIL: <what>" and exits 1.
//
// Chromium is wired as in admin_flow.mjs: --proxy-server=proxyd and every name NOTFOUND in
// its own resolver, so a.test is reached only through proxyd; the admin pages on 127.0.0.1
// go direct.
import {
  cfg, STEP_MS, check, log, poll, run, checkNoOverflow, shot, inBrowser, viaProxy
} from './flow.mjs';

const ADMIN = cfg.admin;
const proxied = (host) => `http://${host}:${cfg.originPort}/small?try=${Date.now()}`;

async function visit(tab, url) {
  const r = await tab.goto(url, { timeout: STEP_MS });
  check(r, `no response for ${url}`);
  return { status: r.status(), text: await tab.locator('body').innerText({ timeout: STEP_MS }) };
}

// The rules as the server has them now (the page's own session).
async function rules(page) {
  return page.evaluate(async () =>
    (await (await fetch('/api/rules', { credentials: 'same-origin' })).json()).rules);
}

async function countRules(page, text) {
  return (await rules(page)).filter((r) => r.text === text).length;
}

async function login(page) {
  await page.goto(ADMIN + '/', { timeout: STEP_MS });
  await page.waitForURL(ADMIN + '/login', { timeout: STEP_MS });
  await page.getByTestId('login-user').fill('admin');
  await page.getByTestId('login-password').fill(cfg.password);
  await page.getByTestId('login-submit').click();
  await page.waitForURL(ADMIN + '/', { timeout: STEP_MS });
  await page.getByTestId('whoami').filter({ hasText: 'admin' }).waitFor({ timeout: STEP_MS });
}

// Searches the log for host and waits until rowText shows up in the fresh answer (proxyd
// writes the log in batches). Returns the rows locator.
async function searchLog(page, host, rowText) {
  await page.getByTestId('f-host').fill(host);
  const rows = page.getByTestId('log-row');
  const found = await poll(async () => {
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
  check(found, `no log row with ${JSON.stringify(rowText)} for host ${host}`);
  return rows;
}

async function flashText(page) {
  return (await page.getByTestId('flash').innerText()).trim();
}

async function waitFlash(page, re) {
  await page.getByTestId('flash-text').filter({ hasText: re }).waitFor({ timeout: STEP_MS });
  return flashText(page);
}

// Block, Undo, a double click, a second Block, the block page, then Unblock from the denied row.
async function blockUndoUnblock(page, tab) {
  const RULE = 'deny domain a.test';
  await page.goto(ADMIN + '/log', { timeout: STEP_MS });
  await searchLog(page, 'a.test', 'a.test');
  let row = page.locator('#log-rows tr.allow').first();
  check(await row.getByTestId('allow-btn').count() === 0, 'an allowed row offers "Allow domain"');
  check(await row.getByTestId('unblock-btn').count() === 0, 'an allowed row offers "Unblock"');

  await row.getByTestId('block-btn').click();
  await waitFlash(page, /^Added rule \d+: deny domain a\.test$/);
  check(await countRules(page, RULE) === 1, 'Block did not add exactly one rule');
  await page.getByTestId('flash-undo').click();
  await waitFlash(page, /^Removed rule \d+: deny domain a\.test$/);
  check(await countRules(page, RULE) === 0, 'Undo left the rule in place');
  log('Block domain, then Undo: the rule came and went');

  // The button is disabled while its request runs; a second click that comes after the
  // answer finds the rule the first added (either way, one rule).
  await row.getByTestId('block-btn').dblclick();
  await waitFlash(page, /^(Added rule \d+|a\.test is already blocked by rule \d+): deny domain a\.test$/);
  await poll(async () => !(await row.getByTestId('block-btn').isDisabled()), STEP_MS);
  await row.getByTestId('block-btn').click();
  const again = await waitFlash(page, /already blocked/);
  check(/^a\.test is already blocked by rule \d+: deny domain a\.test$/.test(again), again);
  const n = await countRules(page, RULE);
  check(n === 1, `a double click and a third click left ${n} "${RULE}" rules, wanted 1`);
  const id = (await rules(page)).find((r) => r.text === RULE).id;
  log(`double click + another click: one rule (${id}); the flash says it is already blocked`);

  let last;
  const blocked = await poll(async () => (last = await visit(tab, proxied('a.test'))).status === 403,
                             STEP_MS);
  check(blocked, `a.test still ${last.status} after Block`);
  check(last.text.includes(`blocked by the office's access policy (rule ${id}).`),
        'the block page does not name the rule by number: ' + last.text.slice(0, 300));
  check(!last.text.includes('deny domain'), 'the block page shows the rule text');
  await page.bringToFront();

  // The row of the visit just made, denied by rule id (older rows name older rules).
  const rows = await searchLog(page, 'a.test', `#${id} ${RULE}`);
  row = rows.filter({ hasText: `#${id} ${RULE}` }).first();
  check(await row.getByTestId('block-btn').count() === 0, 'a denied row offers "Block domain"');
  check(await row.getByTestId('allow-btn').count() === 0,
        'a row denied by its own "deny domain" rule offers "Allow domain" instead of "Unblock"');
  const ruleCell = await row.getByTestId('log-rule').innerText();
  check(ruleCell.includes(`#${id}`) && ruleCell.includes(RULE), 'the Rule column says: ' + ruleCell);
  const reason = await row.getByTestId('log-reason').innerText();
  check(reason.includes(`rule ${id}`), 'the Reason column says: ' + reason);
  await shot(page, `log-${cfg.size}.png`);
  await row.getByTestId('unblock-btn').click();
  await waitFlash(page, new RegExp(`^Unblocked a\\.test \\(removed rule ${id}\\)$`));
  check(await countRules(page, RULE) === 0, 'Unblock left the rule');
  const open = await poll(async () => (last = await visit(tab, proxied('a.test'))).status === 200,
                          STEP_MS);
  check(open, `a.test still ${last.status} after Unblock`);
  await page.bringToFront();
  log('a.test blocked (page names rule by number), unblocked from its denied log row');

  // A timed block (proxyctl block --until, or the API's "expires") is unblocked the same way.
  const timed = await page.evaluate(() =>
    PX.api('POST', '/api/block', { domain: 'a.test', expires: '2999-01-01T00:00Z' }));
  const tid = timed.rule.id;
  const denied = await poll(async () => (last = await visit(tab, proxied('a.test'))).status === 403,
                            STEP_MS);
  check(denied, `a.test still ${last.status} after a timed block`);
  await page.bringToFront();
  const trows = await searchLog(page, 'a.test', `#${tid} ${timed.rule.text}`);
  row = trows.filter({ hasText: `#${tid} ${timed.rule.text}` }).first();
  check(await row.getByTestId('allow-btn').count() === 0,
        'a row denied by a timed "deny domain" rule offers "Allow domain" instead of "Unblock"');
  await row.getByTestId('unblock-btn').click();
  await waitFlash(page, new RegExp(`^Unblocked a\\.test \\(removed rule ${tid}\\)$`));
  check(!(await rules(page)).some((r) => r.id === tid), 'Unblock left the timed rule');
  const reopened = await poll(async () => (last = await visit(tab, proxied('a.test'))).status === 200,
                              STEP_MS);
  check(reopened, `a.test still ${last.status} after Unblock of the timed block`);
  await page.bringToFront();
  log(`a timed block (rule ${tid}: ${timed.rule.text}) unblocked from its denied log row`);
}

// A denial without a rule says why; one by a rule that is not a plain domain offers Allow.
async function logExplains(page) {
  let rows = await searchLog(page, 'b.test', 'b.test');
  let row = rows.first();
  const rule = await row.getByTestId('log-rule').innerText();
  const reason = await row.getByTestId('log-reason').innerText();
  check(rule.trim() === 'no rule', 'the Rule column of a CONNECT to port 25 says: ' + rule);
  check(reason.includes('CONNECT to port 25 is not allowed'), 'its Reason column says: ' + reason);
  check(await row.locator('[data-testid$="-btn"]:not([data-testid="why-btn"])').count() === 0,
        'a denial without a rule offers a one-click action');

  rows = await searchLog(page, 'secret1.test', 'secret1.test');
  row = rows.first();
  check((await row.getByTestId('log-rule').innerText()).includes(cfg.regexRule),
        'the Rule column lacks the regex rule text');
  check(await row.getByTestId('allow-btn').count() === 1, 'no "Allow domain" on a denied row');
  check(await row.getByTestId('block-btn').count() === 0, '"Block domain" on a denied row');
  log('CONNECT to port 25: "no rule", with the reason; the regex denial shows its rule, offers Allow');
}

async function policyForm(page) {
  await page.goto(ADMIN + '/policy', { timeout: STEP_MS });
  await page.getByTestId('rule-row').first().waitFor({ timeout: STEP_MS });
  const add = page.getByTestId('rule-add');
  check(await add.isDisabled(), '"Add" is enabled with no rule typed');
  await page.getByTestId('rule-text').fill('deny nonsense x.test');
  await page.getByTestId('rule-error').filter({ hasText: /./ }).waitFor({ timeout: STEP_MS });
  check(await add.isDisabled(), '"Add" is enabled for an invalid rule');
  await page.getByTestId('rule-text').fill('deny domain form.test');
  await poll(async () => !(await add.isDisabled()), STEP_MS);
  check(!(await add.isDisabled()), '"Add" stays disabled for a valid rule');
  await add.click();
  await waitFlash(page, /^Added rule \d+$/);
  // The next action's answer replaces the message; a stale "Added" must not stay.
  const row = page.getByTestId('rule-row').filter({ hasText: 'deny domain form.test' });
  await row.getByTestId('rule-enabled').click();
  await poll(async () => (await flashText(page)) === '', STEP_MS);
  check((await flashText(page)) === '', 'the "Added rule" message outlived the next action');
  // The message goes when the switch is sent; the answer may come a moment later.
  const off = await poll(async () =>
    !(await rules(page)).find((r) => r.text === 'deny domain form.test').enabled, STEP_MS);
  check(off, 'the rule was not switched off');
  await page.locator('#rules tr.disabled').filter({ hasText: 'deny domain form.test' })
    .waitFor({ timeout: STEP_MS });

  // Inline edit: Enter saves, Escape cancels.
  await row.getByTestId('edit-comment').click();
  await row.getByTestId('edit-comment-input').fill('saved with enter');
  await row.getByTestId('edit-comment-input').press('Enter');
  await page.getByTestId('rule-row').filter({ hasText: 'saved with enter' }).waitFor({ timeout: STEP_MS });
  const r1 = (await rules(page)).find((r) => r.text === 'deny domain form.test');
  check(r1.comment === 'saved with enter', 'Enter did not save the comment: ' + r1.comment);
  await row.getByTestId('edit-comment').click();
  await row.getByTestId('edit-comment-input').fill('dropped with escape');
  await row.getByTestId('edit-comment-input').press('Escape');
  await poll(async () => (await row.getByTestId('edit-comment-input').count()) === 0, STEP_MS);
  check(await row.getByTestId('edit-comment-input').count() === 0, 'Escape left the edit box open');
  check((await row.innerText()).includes('saved with enter'), 'Escape did not restore the row');
  const r2 = (await rules(page)).find((r) => r.text === 'deny domain form.test');
  check(r2.comment === 'saved with enter', 'Escape saved: ' + r2.comment);
  await shot(page, `policy-${cfg.size}.png`);
  await page.evaluate(async (id) => {
    const s = await (await fetch('/api/session', { credentials: 'same-origin' })).json();
    await fetch('/api/rules/' + id, { method: 'DELETE', credentials: 'same-origin',
                                      headers: { 'X-CSRF-Token': s.csrf } });
  }, r2.id);
  log('policy: Add disabled until the rule checks; stale message gone; Enter saves, Escape cancels');
}

async function listsPage(page) {
  await page.goto(ADMIN + '/lists', { timeout: STEP_MS });
  await page.getByTestId('list-row').first().waitFor({ timeout: STEP_MS });
  await page.getByTestId('list-name').fill('ads');
  await page.getByTestId('list-text').fill('');
  await page.getByTestId('list-import').click();
  await page.getByTestId('list-confirm').waitFor({ state: 'visible', timeout: STEP_MS });
  const asked = await page.getByTestId('list-confirm-text').innerText();
  check(asked.includes('the text is empty: importing it empties the list'),
        'an empty import asks: ' + asked);
  await page.getByTestId('list-confirm-cancel').click();
  await page.getByTestId('list-confirm').waitFor({ state: 'hidden', timeout: STEP_MS });
  const entries = await page.evaluate(async () =>
    (await (await fetch('/api/lists/ads', { credentials: 'same-origin' })).json()).entries);
  check(entries.length === 1, `the empty import left ${entries.length} entries, wanted 1`);
  const del = page.getByTestId('list-row').filter({ hasText: 'ads' }).getByTestId('list-delete');
  await del.click();
  await del.click();
  const msg = await page.getByTestId('flash').filter({ hasText: /used by rule/ }).innerText({ timeout: STEP_MS });
  check(msg.includes(`list ads is used by rule ${cfg.listRule} (deny list ads)`) && !/no list/.test(msg),
        'deleting a used list says: ' + msg);
  await shot(page, `lists-${cfg.size}.png`);
  log('lists: an empty re-import asks first and Cancel keeps the list; a used list names its rule');
}

async function usersPage(page, name) {
  await page.goto(ADMIN + '/users', { timeout: STEP_MS });
  await page.getByTestId('user-form').waitFor({ timeout: STEP_MS });
  await page.getByTestId('user-name').fill(name);
  await page.getByTestId('user-password').fill('first-password');
  await page.getByTestId('user-save').click();
  await waitFlash(page, new RegExp(`^Added ${name}$`));
  await page.getByTestId('user-name').fill(name);
  await page.getByTestId('user-password').fill('second-password');
  await page.getByTestId('user-save').click();
  const msg = await waitFlash(page, /already exists/);
  check(msg.startsWith(`user ${name} already exists; nothing changed`), 'adding a second time says: ' + msg);
  await shot(page, `users-${cfg.size}.png`);
  log(`users: a second add of ${name} is refused`);
}

async function settingsPage(page) {
  await page.goto(ADMIN + '/settings', { timeout: STEP_MS });
  await page.getByTestId('pac-proxy-addr').filter({ hasText: /:\d+$/ }).waitFor({ timeout: STEP_MS });
  check(await page.getByTestId('pac-url').isHidden(), 'a PAC URL is offered on a loopback-only server');
  check(await page.getByTestId('pac-none').isVisible(), 'no word on why there is no PAC URL');
  const body = await page.locator('main').innerText();
  check(!/127\.0\.0\.1:\d+\/proxy\.pac/.test(body), 'Settings offers a loopback PAC URL');
  await shot(page, `settings-${cfg.size}.png`);
  log('settings: no loopback PAC URL; says how to serve one');
}

// Roles: the admin adds a viewer on the Users page; the viewer, sent to log in from the log
// page, lands back on it, sees its role and no Block button, is refused a block forced by
// hand (the message says which role it needs), and changes its own password (My account),
// which asks the current.
async function rolesFlow(browser, adminPage) {
  await adminPage.goto(ADMIN + '/users', { timeout: STEP_MS });
  await adminPage.getByTestId('admin-form').waitFor({ timeout: STEP_MS });
  await adminPage.getByTestId('admin-name').fill('vera');
  await adminPage.getByTestId('admin-password').fill('vera-password-1');
  await adminPage.getByTestId('admin-role').selectOption('viewer');
  await adminPage.getByTestId('admin-save').click();
  await waitFlash(adminPage, /^Added vera$/);
  const row = adminPage.getByTestId('admins-row').filter({ hasText: 'vera' });
  check((await row.getByTestId('row-role').inputValue()) === 'viewer', 'vera is not listed as viewer');

  const ctx = await browser.newContext({ viewport: { width: 1366, height: 768 } });
  ctx.setDefaultTimeout(STEP_MS);
  const page = await ctx.newPage();
  await page.goto(ADMIN + '/log', { timeout: STEP_MS });
  await page.waitForURL(ADMIN + '/login?next=/log', { timeout: STEP_MS });
  await page.getByTestId('login-user').fill('vera');
  await page.getByTestId('login-password').fill('vera-password-1');
  await page.getByTestId('login-submit').click();
  await page.waitForURL(ADMIN + '/log', { timeout: STEP_MS });
  await page.getByTestId('whoami').filter({ hasText: 'vera (viewer)' }).waitFor({ timeout: STEP_MS });
  await searchLog(page, 'a.test', 'a.test');
  // The viewer is not shown the Block button (admin_ops_flow.mjs checks every such control);
  // the API refuses the block forced by hand, saying which role it needs.
  check(!(await page.locator('#log-rows tr.allow').first().getByTestId('block-btn').isVisible()),
        'a viewer is shown Block domain');
  const refused = await page.evaluate(async () => {
    const s = await (await fetch('/api/session')).json();
    const r = await fetch('/api/block', { method: 'POST', headers: {
      'Content-Type': 'application/json', 'X-CSRF-Token': s.csrf },
      body: JSON.stringify({ domain: 'a.test' }) });
    return r.status + ' ' + (await r.json()).error;
  });
  check(/^403 .*needs the operator role/.test(refused) && refused.includes('vera has the viewer role'),
        'the refusal says: ' + refused);
  check(await countRules(page, 'deny domain a.test') === 0, 'a viewer\'s Block added a rule');

  await page.goto(ADMIN + '/users', { timeout: STEP_MS });
  await page.getByTestId('account-form').waitFor({ timeout: STEP_MS });
  await page.getByTestId('account-current').fill('not-my-password');
  await page.getByTestId('account-new').fill('vera-password-2');
  await page.getByTestId('account-repeat').fill('vera-password-2');
  await page.getByTestId('account-save').click();
  await page.getByTestId('flash').filter({ hasText: /current password is wrong/ }).waitFor({ timeout: STEP_MS });
  await page.getByTestId('account-current').fill('vera-password-1');
  await page.getByTestId('account-save').click();
  await waitFlash(page, /^Your password is changed$/);
  await shot(page, 'users-viewer.png');
  await ctx.close();

  log('roles: a viewer lands on the page it asked for, is refused a block (403), changes its own password');

  // The audit, filtered to vera: her login and her password change, nobody else's rows.
  await adminPage.goto(ADMIN + '/audit', { timeout: STEP_MS });
  await adminPage.getByTestId('audit-row').first().waitFor({ timeout: STEP_MS });
  await adminPage.getByTestId('audit-actor').fill('vera');
  await adminPage.getByTestId('audit-search').click();
  const rows = adminPage.getByTestId('audit-row');
  await poll(async () => {
    const t = await rows.allInnerTexts();
    return t.length > 0 && t.every((x) => x.includes('vera'));
  }, STEP_MS);
  const texts = await rows.allInnerTexts();
  check(texts.length > 0 && texts.every((t) => /\tvera\t/.test(t)), 'the audit filter let others in: ' + texts.join(' | '));
  check(texts.some((t) => /\blogin\b/.test(t)), 'vera\'s login is not in the audit');
  check(texts.some((t) => /admin\.set/.test(t)), 'vera\'s password change is not in the audit');
  await shot(adminPage, 'audit-filtered.png');
  log('audit filtered to vera: her login and password change');
}

async function main() {
  for (const [size, viewport] of [['desktop', { width: 1366, height: 768 }],
                                  ['phone', { width: 390, height: 844 }]]) {
    cfg.size = size;
    await inBrowser('failure.png', async (page) => {
      const tab = await page.context().newPage();
      await page.bringToFront();
      await login(page);
      await blockUndoUnblock(page, tab);
      await logExplains(page);
      await policyForm(page);
      await listsPage(page);
      await usersPage(page, 'bob-' + size);
      await settingsPage(page);
      if (size === 'desktop') await rolesFlow(page.context().browser(), page);
      for (const path of ['/log', '/policy', '/lists', '/users', '/settings']) {
        await page.goto(ADMIN + path, { timeout: STEP_MS });
        await page.waitForLoadState('networkidle', { timeout: STEP_MS });
        await checkNoOverflow(page, `${path} ${viewport.width}x${viewport.height}`);
      }
    }, { viewport, args: viaProxy() });
    log(`all checks passed at ${viewport.width}x${viewport.height}`);
  }
}

run(main);
