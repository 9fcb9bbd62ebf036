// flow: what every browser flow here shares. A flow is `node NAME.mjs CONFIG-JSON`, run by
// its Python test; it imports these, writes its steps with log(), fails with check(), and
// ends with run(main): "all checks passed" and exit 0, or "FAIL: <what>" and exit 1. A
// watchdog bounds the whole run even if something inside Playwright hangs.
import { createRequire } from 'node:module';
import { basename } from 'node:path';

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
