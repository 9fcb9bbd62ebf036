// The dashboard's Nodes panel in headless Chromium, driven by Playwright (playwright-core,
// the system's /usr/bin/chromium). Run by tests/e2e/test_browser_nodes.py, which starts
// proxyd, sets the admin password and writes two more nodes into its nodes table: one that
// beats but runs an older policy version, one not heard of for 41 s, named with markup; it
// passes one JSON config as argv[2]: {admin, password, self, behind, unseen, shots}.
// The page: lists the three, this node in step and marked as the one answering, the other
// two marked lagging in words with why; shows the markup name as text; is photographed at
// 1366 and 390 px (no sideways scrolling on the phone). Exits 0 when every expectation
// held; otherwise prints "FAIL: <what>" and exits 1.
import { join } from 'node:path';
import {
  cfg, STEP_MS, PHONE, check, checkNoOverflow, log, run, shot, inBrowser
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
    log('screenshots in ' + cfg.shots);
  }, WIDE);
}

run(main);
