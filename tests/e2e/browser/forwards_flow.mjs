// The Forwards page in headless Chromium, driven by Playwright (playwright-core, the system's
// /usr/bin/chromium). Run by tests/e2e/test_browser_forwards.py, which starts proxyd and an
// echoing origin, sets the admin password, stores one forward with markup in every field
// straight into the database, and passes one JSON config as argv[2]:
//   {admin, password, originPort, keepPort, dropPort, tlsTargetPort, configPort, shots, markup}
// (configPort: a forward of proxyd's config file, which the page lists without a delete).
// The page: adds two forwards through the form (one with a client list), is refused a bad
// target with the server's words and the field focused, shows the stored markup as text,
// deletes one forward with its two-click button, and is photographed on a desktop and a
// phone (no sideways scrolling). Exits 0 when every expectation held; otherwise prints
// "FAIL: <what>" and exits 1.
import { join } from 'node:path';
import { cfg, STEP_MS, Failure, check, log, run, twoWidths, inBrowser } from './flow.mjs';

const ADMIN = cfg.admin;
async function login(page) {
  await page.goto(ADMIN + '/forwards', { timeout: STEP_MS });
  await page.waitForURL(ADMIN + '/login?next=/forwards', { timeout: STEP_MS });
  await page.getByTestId('login-user').fill('admin');
  await page.getByTestId('login-password').fill(cfg.password);
  await page.getByTestId('login-submit').click();
  // Back on the page that sent the browser to log in.
  await page.waitForURL(ADMIN + '/forwards', { timeout: STEP_MS });
  await page.getByTestId('nav-forwards').click();
  await page.waitForURL(ADMIN + '/forwards', { timeout: STEP_MS });
  await page.getByTestId('forward-row').first().waitFor({ timeout: STEP_MS });
  log('logged in, on the Forwards page through its nav item');
}

async function addThroughForm(page, listen, clients, tls = '', tlsName = '') {
  const target = `127.0.0.1:${cfg.originPort}`;
  await page.getByTestId('forward-listen').fill(listen);
  await page.getByTestId('forward-target').fill(target);
  await page.getByTestId('forward-clients').fill(clients);
  await page.getByTestId('forward-tls').selectOption(tls);
  await page.getByTestId('forward-tls-name').fill(tlsName);
  await page.getByTestId('forward-add').click();
  const row = page.getByTestId('forward-row').filter({ hasText: listen });
  await row.waitFor({ timeout: STEP_MS });
  check((await row.getByTestId('forward-row-tls').count()) === (tls ? 1 : 0),
        `the row of ${listen} does not show its TLS mode '${tls}'`);
  if (tls)
    check((await row.getByTestId('forward-row-tls').innerText()) === tls,
          `the row of ${listen} shows another TLS mode`);
  check((await row.getByTestId('forward-row-tls-name').count()) === (tlsName ? 1 : 0),
        `the row of ${listen} does not show its TLS name '${tlsName}'`);
  if (tlsName)
    check((await row.getByTestId('forward-row-tls-name').innerText()) === 'name ' + tlsName,
          `the row of ${listen} shows another TLS name`);
  check((await row.getByTestId('forward-row-target').innerText()) === target,
        `the row of ${listen} does not show its target`);
  const shown = await row.getByTestId('forward-row-clients').innerText();
  check(shown === (clients || 'any the policy allows'), `the row of ${listen} shows clients '${shown}'`);
  await page.getByTestId('flash').filter({ hasText: `listening on ${listen}` })
    .waitFor({ timeout: STEP_MS });
  check((await page.getByTestId('forward-listen').inputValue()) === '', 'the form was not cleared');
  log(`added ${listen} -> ${target} through the form`);
}

// A tls-target forward to an address without a name: refused, the name's field focused.
async function checkTlsNameRefusal(page) {
  await page.getByTestId('forward-listen').fill('127.0.0.1:1');
  await page.getByTestId('forward-target').fill('127.0.0.1:995');
  await page.getByTestId('forward-tls').selectOption('tls-target');
  await page.getByTestId('forward-add').click();
  await page.getByTestId('flash').filter({ hasText: 'give tls-name NAME' })
    .waitFor({ timeout: STEP_MS });
  await page.getByTestId('forward-tls').selectOption('');
  log('tls-target to an address without a name is refused with the reason');
}

async function checkRefusal(page) {
  await page.getByTestId('forward-listen').fill('127.0.0.1:1');
  await page.getByTestId('forward-target').fill('no-port.test');
  await page.getByTestId('forward-add').click();
  await page.getByTestId('flash').filter({ hasText: "target 'no-port.test': expected HOST:PORT" })
    .waitFor({ timeout: STEP_MS });
  check(await page.evaluate(() => document.activeElement.id) === 'forward-target',
        'the refused field is not focused');
  check((await page.getByTestId('forward-row').filter({ hasText: '127.0.0.1:1' }).count()) === 0,
        'a refused forward is listed');
  await page.getByTestId('forward-form').evaluate((f) => f.reset());
  log('a bad target is refused in the server\'s words, its field focused');
}

async function checkMarkup(page) {
  const probe = await page.evaluate((m) => ({
    xss: typeof window.__xss,
    injected: document.querySelectorAll('#forwards img, #forwards script, #forwards b').length,
    asText: document.getElementById('forwards').textContent.includes(m),
  }), cfg.markup);
  check(probe.xss === 'undefined', 'stored markup ran as script');
  check(probe.injected === 0, `stored markup became ${probe.injected} element(s)`);
  check(probe.asText, 'stored markup is not shown as literal text');
  log('stored markup shows as text');
}

async function checkConfigForward(page) {
  const row = page.getByTestId('forward-row').filter({ hasText: `127.0.0.1:${cfg.configPort}` });
  await row.waitFor({ timeout: STEP_MS });
  check((await row.getByTestId('forward-row-target').innerText()) === `127.0.0.1:${cfg.originPort}`,
        'the config file\'s forward does not show its target');
  check((await row.getByTestId('forward-delete').count()) === 0,
        'the config file\'s forward has a delete button');
  const why = await row.getByTestId('forward-row-config').innerText();
  check(why.includes('config file') && why.includes('restart'),
        `the config file's forward does not say why it cannot be deleted here: '${why}'`);
  log('the config file\'s forward is listed, without a delete, saying why');
}

async function deleteForward(page, listen) {
  const row = page.getByTestId('forward-row').filter({ hasText: listen });
  const del = row.getByTestId('forward-delete');
  await del.click();
  check((await del.innerText()) === 'Sure?', 'the first click did not ask');
  check((await row.count()) === 1, 'one click deleted the forward');
  await del.click();
  await row.waitFor({ state: 'detached', timeout: STEP_MS });
  await page.getByTestId('flash').filter({ hasText: 'its listener is closed' })
    .waitFor({ timeout: STEP_MS });
  log(`deleted ${listen} with two clicks`);
}


async function main() {
  await inBrowser('forwards-failure.png', async (page) => {
    await login(page);
    await checkMarkup(page);
    await checkConfigForward(page);
    await addThroughForm(page, `127.0.0.1:${cfg.keepPort}`, '127.0.0.0/8');
    await addThroughForm(page, `127.0.0.1:${cfg.dropPort}`, '', 'tls-listen');
    await addThroughForm(page, `127.0.0.1:${cfg.tlsTargetPort}`, '', 'tls-target', 'mail.test');
    await checkTlsNameRefusal(page);
    await checkRefusal(page);
    await twoWidths(page, 'forwards',
                    (p) => p.getByTestId('forward-row').first().waitFor({ timeout: STEP_MS }));
    await deleteForward(page, `127.0.0.1:${cfg.dropPort}`);
    await deleteForward(page, `127.0.0.1:${cfg.tlsTargetPort}`);
  });
}

run(main);
