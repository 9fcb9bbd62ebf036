// Every admin page, on a desktop (1366x768) and a phone (390x844), in light and dark colour
// schemes: an axe-core accessibility check (WCAG 2.x A and AA, 2.2's target size included)
// that fails on any serious or critical finding, a screenshot of each, and the phone's
// layout: the navigation collapses behind a Menu button (Escape closes it), tables turn into
// cards, nothing is wider than the screen. On the desktop the keyboard reaches the
// navigation with a visible focus ring. Run by tests/e2e/test_browser_a11y.py with one JSON
// config as argv[2]: {admin, password, newPassword, shots}. Exits 0 when every expectation
// held; otherwise prints "FAIL: <what>", exits 1.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cfg, STEP_MS, check, log, run, checkNoOverflow, shot, inBrowser } from './flow.mjs';

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const ADMIN = cfg.admin;
const PAGES = ['/', '/log', '/policy', '/lists', '/users', '/groups', '/versions', '/forwards',
               '/requests', '/audit', '/settings', '/ca'];
const WIDTHS = [{ name: 'desktop', width: 1366, height: 768 }, { name: 'phone', width: 390, height: 844 }];
const SCHEMES = ['light', 'dark'];
const TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'];

const slug = (path) => (path === '/' ? 'dashboard' : path.slice(1));

async function login(page) {
  await page.goto(ADMIN + '/', { timeout: STEP_MS });
  await page.waitForURL(ADMIN + '/login', { timeout: STEP_MS });
  await axe(page, 'login');
  await page.getByTestId('login-user').fill('admin');
  await page.getByTestId('login-password').fill(cfg.password);
  await page.getByTestId('login-submit').click();
  await page.getByTestId('passwd-form').waitFor({ state: 'visible', timeout: STEP_MS });
  await axe(page, 'login (choose a password)');
  await page.getByTestId('passwd-new').fill(cfg.newPassword);
  await page.getByTestId('passwd-repeat').fill(cfg.newPassword);
  await page.getByTestId('passwd-submit').click();
  await page.waitForURL(ADMIN + '/', { timeout: STEP_MS });
  log('logged in');
}

// axe-core on the page as it is; serious and critical findings fail, each named with its
// rule, what it says and the elements it found.
async function axe(page, what) {
  // Evaluated, not added as a script tag: the pages' Content-Security-Policy refuses inline
  // scripts, and should stay as it is for the check.
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(AXE);
  const res = await page.evaluate((tags) => window.axe.run(document, {
    runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] }), TAGS);
  const bad = res.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  for (const v of bad)
    findings.push(`${what}: ${v.id} (${v.impact}): ${v.help} at ` +
                  v.nodes.slice(0, 4).map((n) => n.target.join(' ')).join(', '));
  return res.violations.length;
}

// Every page is checked before the flow fails, so one run lists all there is to fix.
const findings = [];

// The page is loaded: its script has filled what it fetches.
async function settle(page) {
  await page.getByTestId('nav').waitFor({ state: 'attached', timeout: STEP_MS });
  await page.waitForLoadState('networkidle', { timeout: STEP_MS });
  await page.evaluate(() => document.fonts.ready);
}


async function phoneLayout(page, path) {
  const nav = page.getByTestId('nav');
  const menu = page.getByTestId('nav-toggle');
  check(await menu.isVisible(), `${path}: no Menu button on a phone`);
  check(!(await nav.isVisible()), `${path}: the navigation is not collapsed on a phone`);
  // Tables are cards: each cell on its own line with its column's name.
  const cells = await page.evaluate(() => [...document.querySelectorAll('main tbody td[data-label]')]
    .filter((td) => td.offsetParent).slice(0, 5).map((td) => ({
      display: getComputedStyle(td).display, label: td.getAttribute('data-label'),
      before: getComputedStyle(td, '::before').content })));
  for (const c of cells)
    check(c.display === 'block' || c.display === 'grid' || c.display === 'flex',
          `${path}: a table cell is ${c.display}, not a card line`);
  await checkNoOverflow(page, path + ' 390');
  return cells.length;
}

async function navMenu(page) {
  const menu = page.getByTestId('nav-toggle');
  const nav = page.getByTestId('nav');
  await menu.click();
  await nav.waitFor({ state: 'visible', timeout: STEP_MS });
  check(await menu.getAttribute('aria-expanded') === 'true', 'the Menu button does not say it is open');
  await page.keyboard.press('Escape');
  await nav.waitFor({ state: 'hidden', timeout: STEP_MS });
  check(await page.evaluate(() => document.activeElement &&
                            document.activeElement.getAttribute('data-testid')) === 'nav-toggle',
        'Escape does not give the focus back to the Menu button');
  await menu.click();
  await page.getByTestId('nav-log').click();
  await page.waitForURL(ADMIN + '/log', { timeout: STEP_MS });
  log('phone navigation opens, closes with Escape and leads to a page');
}

async function keyboard(page) {
  await page.goto(ADMIN + '/', { timeout: STEP_MS });
  await settle(page);
  // The first Tab stops go to the navigation, each with a visible focus ring.
  const seen = [];
  for (let i = 0; i < 4; i++) {
    await page.keyboard.press('Tab');
    seen.push(await page.evaluate(() => {
      const e = document.activeElement;
      const s = getComputedStyle(e);
      return { id: e.getAttribute('data-testid') || e.tagName, outline: s.outlineStyle, width: s.outlineWidth };
    }));
  }
  check(seen.some((s) => /^nav-/.test(s.id)), 'Tab does not reach the navigation: ' + JSON.stringify(seen));
  for (const s of seen)
    check(s.outline !== 'none' && parseFloat(s.width) >= 2, `no visible focus on ${s.id}: ${JSON.stringify(s)}`);
  log('keyboard: ' + seen.map((s) => s.id).join(', '));
}

async function main() {
  await inBrowser('a11y-failure.png', async (page) => {
    await login(page);
    await keyboard(page);
    let checked = 0, minor = 0;
    for (const w of WIDTHS) {
      await page.setViewportSize({ width: w.width, height: w.height });
      for (const scheme of SCHEMES) {
        await page.emulateMedia({ colorScheme: scheme });
        for (const path of PAGES) {
          await page.goto(ADMIN + path, { timeout: STEP_MS });
          await settle(page);
          const what = `${path} ${w.name} ${scheme}`;
          if (w.name === 'phone') await phoneLayout(page, path);
          minor += await axe(page, what);
          await shot(page, `${slug(path)}-${w.name}-${scheme}.png`);
          checked++;
        }
      }
      if (w.name === 'phone') await navMenu(page);
    }
    check(findings.length === 0, `${findings.length} serious or critical findings:\n` + findings.join('\n'));
    log(`${checked} page views checked by axe-core; ${minor} minor or moderate findings`);
  }, { viewport: WIDTHS[0] });
}

run(main);
