// The dashboard's Nodes panel in headless Chromium, driven by Playwright (playwright-core,
// the system's /usr/bin/chromium). Run by tests/e2e/test_browser_nodes.py, which starts
// proxyd, sets the admin password and writes two more nodes into its nodes table: one that
// beats but runs an older policy version, one not heard of for 41 s, named with markup; it
// passes one JSON config as argv[2]: {admin, password, self, behind, unseen, shots}.
// The page: lists the three, this node in step and marked as the one answering, the other
// two marked lagging in words with why; shows the markup name as text; is photographed at
// 1366 and 390 px (no sideways scrolling on the phone). Then the node selector (issue 13): the
// log holds 4 rows of this node, 7 of the one behind (2 denied, ads.test) and 3 of the unseen
// one; "All nodes" counts 14, choosing the node behind shows its 7 in the cards, the chart and
// the top lists, the address keeps the choice (a reload on a phone shows it again), and the
// markup name is an option's text. Exits 0 when every expectation held; otherwise prints
// "FAIL: <what>" and exits 1.
import { join } from 'node:path';
import {
  cfg, STEP_MS, PHONE, check, checkNoOverflow, log, poll, run, shot, inBrowser
} from './flow.mjs';

const ADMIN = cfg.admin;
const WIDE = { width: 1366, height: 768 };

async function rows(page) {
  return page.getByTestId('node-row').evaluateAll((trs) => trs.map((tr) => ({
    node: tr.dataset.node, state: tr.dataset.state, lagging: tr.classList.contains('lagging'),
    text: tr.innerText.replace(/\s+/g, ' ').trim(),
    stateText: tr.querySelector('[data-testid="node-state"]').innerText.trim(),
  })));
}

async function ready(page) {
  await page.getByTestId('node-row').nth(2).waitFor({ timeout: STEP_MS });
}

async function main() {
  await inBrowser('nodes-failure.png', async (page) => {
    await page.goto(ADMIN + '/', { timeout: STEP_MS });
    await page.waitForURL(/\/login/, { timeout: STEP_MS });
    await page.getByTestId('login-user').fill('admin');
    await page.getByTestId('login-password').fill(cfg.password);
    await page.getByTestId('login-submit').click();
    await page.waitForURL(ADMIN + '/', { timeout: STEP_MS });
    await ready(page);
    log('logged in, the dashboard lists three nodes');

    const got = await rows(page);
    const by = Object.fromEntries(got.map((r) => [r.node, r]));
    check(got.length === 3, `three node rows, got ${JSON.stringify(got)}`);
    const self = by[cfg.self];
    check(self && self.state === 'ok' && !self.lagging && self.stateText === 'in step' &&
          self.text.includes('(this one)'), `this node in step: ${JSON.stringify(self)}`);
    const behind = by[cfg.behind];
    check(behind && behind.state === 'behind' && behind.lagging &&
          /^lagging: runs policy version \d+, the newest is \d+$/.test(behind.stateText) &&
          behind.text.includes('(1 behind)'), `the node behind: ${JSON.stringify(behind)}`);
    const unseen = by[cfg.unseen];
    check(unseen && unseen.state === 'unseen' && unseen.lagging &&
          /^lagging: not seen for \d+ s$/.test(unseen.stateText),
          `the unseen node: ${JSON.stringify(unseen)}`);
    check(await page.evaluate(() => window.__xss === undefined), 'a node name ran as markup');
    const summary = await page.getByTestId('nodes-summary').innerText();
    check(/^3 nodes on this database, newest policy version \d+; 2 lagging\.$/.test(summary),
          `summary: ${summary}`);
    log('states, reasons and the summary as expected; the markup name is text');

    await page.getByTestId('nodes-panel').scrollIntoViewIfNeeded();
    await shot(page, 'nodes-1366.png');
    await page.setViewportSize(PHONE);
    await page.reload({ timeout: STEP_MS });
    await ready(page);
    await checkNoOverflow(page, `dashboard ${PHONE.width}x${PHONE.height}`);
    await page.getByTestId('nodes-panel').scrollIntoViewIfNeeded();
    await shot(page, 'nodes-390.png');

    await page.setViewportSize(WIDE);
    await page.goto(ADMIN + '/', { timeout: STEP_MS });
    await ready(page);
    const requests = () => page.getByTestId('card-requests').innerText();
    const choices = await page.getByTestId('node-select').locator('option')
      .evaluateAll((os) => os.map((o) => [o.value, o.textContent]));
    check(JSON.stringify(choices.map((c) => c[0]).sort()) ===
          JSON.stringify(['', cfg.self, cfg.behind, cfg.unseen].sort()) &&
          choices[0][1] === 'All nodes' && choices.some((c) => c[1] === cfg.unseen),
          `the node choices: ${JSON.stringify(choices)}`);
    check(await poll(async () => (await requests()) === '14', STEP_MS),
          `all nodes: 14 requests, the card says ${await requests()}`);
    await page.getByTestId('node-select').selectOption(cfg.behind);
    check(await poll(async () => (await requests()) === '7', STEP_MS),
          `node ${cfg.behind}: 7 requests, the card says ${await requests()}`);
    check((await page.getByTestId('card-blocked').innerText()) === '2', 'its 2 blocked');
    check(new URL(page.url()).searchParams.get('node') === cfg.behind, `address: ${page.url()}`);
    const tops = await page.getByTestId('top-hosts').locator('tbody tr')
      .evaluateAll((trs) => trs.map((tr) => tr.innerText.replace(/\s+/g, ' ').trim()));
    check(tops.length === 2 && tops[0].startsWith('branch.test 5') && tops[1].startsWith('ads.test 2'),
          `its top domains: ${JSON.stringify(tops)}`);
    const blockedTop = await page.getByTestId('top-blocked').locator('tbody tr').innerText();
    check(blockedTop.replace(/\s+/g, ' ').startsWith('ads.test 2'), `its top blocked: ${blockedTop}`);
    check((await page.getByTestId('node-shown').innerText()).includes(cfg.behind) &&
          (await page.locator('#chart-title').innerText()).endsWith(', node ' + cfg.behind),
          'the page says which node it shows');
    check((await page.getByTestId('chart').getAttribute('aria-label')).includes('7 requests, 2 blocked'),
          'the chart counts its 7 requests');
    await shot(page, 'nodes-filter-1366.png');
    await page.setViewportSize(PHONE);
    await page.reload({ timeout: STEP_MS });
    check(await poll(async () => (await requests()) === '7', STEP_MS),
          `reloaded: 7 requests, the card says ${await requests()}`);
    check((await page.getByTestId('node-select').inputValue()) === cfg.behind,
          'the reloaded page has the node chosen');
    await checkNoOverflow(page, `dashboard of one node ${PHONE.width}x${PHONE.height}`);
    await shot(page, 'nodes-filter-390.png');
    await page.getByTestId('node-select').selectOption(cfg.unseen);
    check(await poll(async () => (await requests()) === '3', STEP_MS),
          `the markup-named node: 3 requests, the card says ${await requests()}`);
    await page.getByTestId('node-select').selectOption('');
    check(await poll(async () => (await requests()) === '14', STEP_MS),
          `all nodes again: 14 requests, the card says ${await requests()}`);
    check(!new URL(page.url()).searchParams.has('node'), `address: ${page.url()}`);
    check(await page.evaluate(() => window.__xss === undefined), 'a node name ran as markup');
    log('the node selector filters the cards, chart and top lists and stays in the address');
    log('screenshots in ' + cfg.shots);
  }, { viewport: WIDE });
}

run(main);
