// flow: what every browser flow here shares. A flow is `node NAME.mjs CONFIG-JSON`, run by
// its Python test; it imports these, writes its steps with log(), fails with check(), and
// ends with run(main): "all checks passed" and exit 0, or "FAIL: <what>" and exit 1. A
// watchdog bounds the whole run even if something inside Playwright hangs.
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, join } from 'node:path';

const require = createRequire(import.meta.url);
export const { chromium } = require('playwright-core');

export const cfg = JSON.parse(process.argv[2] || '{}');
// A hang guard per step, not a deadline: Chromium on a loaded machine (sanitizer builds,
// other suites) can take many times longer than on an idle one.
export const STEP_MS = 30000;
const RUN_MS = 300000;
const NAME = basename(process.argv[1] || 'flow', '.mjs');

export class Failure extends Error {}

export function check(cond, what) {
  if (!cond) throw new Failure(what);
}

export function log(msg) {
  process.stdout.write(`[${NAME} ${(performance.now() / 1000).toFixed(1)}s] ${msg}\n`);
}

// Calls fn until it returns a truthy value or timeoutMs passes; returns the last value.
export async function poll(fn, timeoutMs, intervalMs = 50) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v || Date.now() >= deadline) return v;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

// A full-page screenshot into the test's folder (cfg.shots), which the Python side checks.
export async function shot(page, name) {
  mkdirSync(cfg.shots, { recursive: true });
  await page.screenshot({ path: join(cfg.shots, name), fullPage: true, timeout: STEP_MS });
}

// After a failure: a screenshot of the page as it was (best effort, bounded) and its URL, for
// the log. Only where the test gave a folder for shots.
export async function failureShot(page, name) {
  if (!page || !cfg.shots) return;
  mkdirSync(cfg.shots, { recursive: true });
  await page.screenshot({ path: join(cfg.shots, name), timeout: 3000 }).catch(() => {});
  process.stderr.write(`page at failure: ${page.url()} (screenshot ${name})\n`);
}

// A flow's body in a fresh headless Chromium (the system's /usr/bin/chromium, every name but
// 127.0.0.1 unresolvable): body(page) gets a page of its own context at opts.viewport
// (DESKTOP by default; opts.context adds options of that context, opts.args Chromium
// arguments, viaProxy's for one); script errors and console errors (other than failed loads)
// in it fail the flow once body is done. A second tab is page.context().newPage(). On a
// failure, a screenshot named failure (failureShot). The browser is closed in any case.
// Playwright gives every launch a fresh temporary profile (--user-data-dir) and removes it on
// close.
export async function inBrowser(failure, body, { viewport = DESKTOP, context = {}, args = [] } = {}) {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    timeout: STEP_MS,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-gpu',
           '--disable-component-update', '--disable-sync', '--no-first-run',
           '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1', ...args],
  });
  let page;
  try {
    const ctx = await browser.newContext({ viewport, ...context });
    ctx.setDefaultTimeout(STEP_MS);
    page = await ctx.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(m.text());
    });
    await body(page);
    check(errors.length === 0, 'errors in the page: ' + errors.join(' | '));
  } catch (e) {
    await failureShot(page, failure);
    throw e;
  } finally {
    await browser.close();
  }
}

// The Chromium arguments for inBrowser that send every request through a proxy (proxyd's plain
// port from the test's config by default; an https:// URL for its TLS port). QUIC is off: a
// proxy relays TCP only.
export function viaProxy(url = `http://127.0.0.1:${cfg.proxyPort}`) {
  return ['--disable-quic', `--proxy-server=${url}`];
}

// No part of the page is wider than the screen. A wide table may scroll in its own box, so
// an element inside a box that clips or scrolls sideways does not count.
export async function checkNoOverflow(page, what) {
  const r = await page.evaluate(() => {
    const vw = document.documentElement.clientWidth;
    const boxed = (e) => {
      for (let a = e.parentElement; a && a !== document.body; a = a.parentElement)
        if (getComputedStyle(a).overflowX !== 'visible') return true;
      return false;
    };
    const wide = [...document.querySelectorAll('header, main, section, .card, h1, h2, nav, form, table')]
      .filter((e) => e.getBoundingClientRect().right > vw + 1 && !boxed(e))
      .map((e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : ''));
    return { vw, sw: document.documentElement.scrollWidth, wide };
  });
  check(r.sw <= r.vw + 1 && r.wide.length === 0,
        `${what}: page wider than the ${r.vw} px screen (${r.sw} px; ${r.wide.join(', ')})`);
}

// The page at desktop and phone width: a screenshot of each (NAME-desktop.png,
// NAME-phone.png) and no sideways scrolling on the phone. ready(page) waits until the
// reloaded page has drawn what the shots are for. Leaves the page at desktop width.
export async function twoWidths(page, name, ready) {
  await page.setViewportSize(DESKTOP);
  await shot(page, `${name}-desktop.png`);
  await page.setViewportSize(PHONE);
  await page.reload({ timeout: STEP_MS });
  await ready(page);
  await checkNoOverflow(page, `${name} ${PHONE.width}x${PHONE.height}`);
  await shot(page, `${name}-phone.png`);
  await page.setViewportSize(DESKTOP);
  log('screenshots in ' + cfg.shots);
}

const watchdog = setTimeout(() => {
  process.stderr.write(`FAIL: ${NAME} did not finish within ${RUN_MS / 1000} s\n`);
  process.exit(1);
}, RUN_MS);

export function run(main) {
  main().then(() => {
    clearTimeout(watchdog);
    log('all checks passed');
  }, (e) => {
    process.stderr.write(`FAIL: ${e instanceof Failure ? e.message : e.stack || e}\n`);
    process.exit(1);
  });
}
