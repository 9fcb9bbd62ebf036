// An inspected HTTPS site in headless Chromium (playwright-core, /usr/bin/chromium). Run by
// tests/e2e/test_inspect.py (InspectBrowserTest) with one JSON config as argv[2]:
//   {proxyPort, originPort, spki, shots}
// Exits 0 when every expectation held; otherwise prints "FAIL: <what>" and exits 1.
//
// Chromium uses proxyd as its proxy and trusts the certificate proxyd mints for the site by
// its key (--ignore-certificate-errors-spki-list with the leaf key's SHA-256, which the test
// read from proxyd). It loads a page of an HTTPS origin through the inspected tunnel, then a
// path a URL rule denies: the block page, inside the same HTTPS site.
import { cfg, STEP_MS, check, log, run, shot, inBrowser, viaProxy } from './flow.mjs';

async function visit(tab, url) {
  const r = await tab.goto(url, { timeout: STEP_MS });
  check(r, `no response for ${url}`);
  return { status: r.status(), text: await tab.locator('body').innerText({ timeout: STEP_MS }) };
}

async function main() {
  await inBrowser('inspect-failure.png', async (page) => {
    const site = `https://shop.test:${cfg.originPort}`;
    const ok = await visit(page, `${site}/welcome`);
    check(ok.status === 200, `the inspected page: status ${ok.status}`);
    check(ok.text.includes('inspected page /welcome'), `the inspected page shows: ${ok.text}`);
    await shot(page, 'inspect-page.png');
    log('shop.test over HTTPS through inspection: 200, the origin\'s page');
    const blocked = await visit(page, `${site}/blocked/page`);
    check(blocked.status === 403, `the denied path: status ${blocked.status}`);
    check(/access policy \(rule \d+\)\./.test(blocked.text), 'the block page does not name the rule');
    await shot(page, 'inspect-blocked-path.png');
    log('a URL rule inside the inspected site: 403 block page over HTTPS');
  }, { viewport: { width: 1000, height: 600 },
       args: [...viaProxy(), `--ignore-certificate-errors-spki-list=${cfg.spki}`] });
}

run(main);
