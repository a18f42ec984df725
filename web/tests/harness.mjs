// What the browser tests share: Debian's Chromium launched headless (playwright-core), and a
// page or context whose console errors, failed requests and requests off the server are
// recorded, so that each test ends by asserting there were none.
import { chromium } from 'playwright-core';

// Chromium runs as root in CI; these machines have no network. `extra` adds flags (the WebGPU
// test's software adapter).
const FLAGS = ['--no-sandbox', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Chromium, headless: without a GPU unless `extra` asks for one. */
export function launch(extra = ['--disable-gpu']) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: [...FLAGS, ...extra],
  });
}

/**
 * Records into `errors` what `page` (and its workers) log as errors, requests that fail, and
 * requests to anywhere but `origin` (when given).
 */
export function watch(page, errors, origin = null) {
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => errors.push(`page: ${e.message}`));
  page.on('requestfailed', (r) => errors.push(`request: ${r.url()} ${r.failure()?.errorText}`));
  if (origin) {
    page.on('request', (r) => {
      if (!r.url().startsWith(origin) && !r.url().startsWith('data:')) {
        errors.push(`request off the server: ${r.url()}`);
      }
    });
  }
  page.on('worker', (w) => w.on('console', (m) => {
    if (m.type() === 'error') errors.push(`worker: ${m.text()}`);
  }));
  return page;
}
