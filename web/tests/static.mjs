// The built page on a generic static server (not ours): `python3 -m http.server` serving the
// folder `cargo run -p xtask -- web --build-only` writes, with no special headers and no
// compression. The lesson's shipped models answer, and a playground preset trains.
//
//   node tests/static.mjs URL
import { launch, watch } from './harness.mjs';
import assert from 'node:assert/strict';

const url = process.argv[2];
const browser = await launch();
const errors = [];
try {
  const page = watch(await browser.newPage(), errors, new URL(url).origin);
  await page.goto(`${url}?view=playground&steps=100`);
  await page.waitForFunction(() => window.mnistBn?.timings?.firstPredictionMs !== undefined
    && window.mnistBn.playground.presets, null, { timeout: 60_000 });
  assert.equal(await page.evaluate(() => window.mnistBn.playground.settings.steps), 100);
  await page.click('#pg-train');
  await page.waitForFunction(() => window.mnistBn.playground.pitfall !== null, null,
    { timeout: 300_000, polling: 500 });
  const history = await page.evaluate(() => window.mnistBn.playground.history);
  assert.equal(history.a.length, 100);
  assert.deepEqual(errors, [], 'no console errors');
} catch (e) {
  console.error('errors seen in the page:', errors);
  throw e;
} finally {
  await browser.close();
}
console.log(`the page works from a generic static server (${url})`);
