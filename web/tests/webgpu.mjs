// The page on the browser's WebGPU device: Debian's headless Chromium exposes a software
// WebGPU adapter (SwiftShader, a CPU emulation of a GPU) with --enable-unsafe-webgpu
// --use-webgpu-adapter=swiftshader, so the wgpu path runs for real here.
//
//   node tests/webgpu.mjs URL [OUT_DIR]
//
// Opens the page with ?backend=webgpu and checks that it says so; the shipped models' logits
// against the native build's; the lesson's default run's first 20 batches and the playground's
// default preset's first 20 steps and step-0 measurements against the native build's
// (tests/fixtures/native_losses.json, native_playground.json); a prediction on the models
// trained on the GPU. Writes the speed figures to OUT_DIR/webgpu.json.
import { launch, watch } from './harness.mjs';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';

const url = process.argv[2] || 'http://127.0.0.1:8080/';
const outDir = process.argv[3] || 'target/web-test';
mkdirSync(outDir, { recursive: true });
const fixture = (name) => JSON.parse(readFileSync(new URL(`./fixtures/${name}`, import.meta.url)));
// A GPU sums in another order than the CPU build: within float rounding, grown over 20 steps.
const TOLERANCE = 1e-4;

const browser = await launch(['--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader']);
const errors = [];
const figures = {};
const worst = (pairs) => pairs.reduce((m, [x, y]) => Math.max(m, Math.abs(x - y)), 0);

try {
  const page = watch(await browser.newPage({ viewport: { width: 1280, height: 1000 } }), errors,
    new URL(url).origin);
  await page.goto(`${url}?backend=webgpu`);
  await page.waitForFunction(() => window.mnistBn?.timings?.firstPredictionMs !== undefined,
    null, { timeout: 120_000 });
  figures.backend = await page.evaluate(() => window.mnistBn.backend);
  assert.match(figures.backend, /WebGPU/);
  assert.match(await page.textContent('#backend'), /WebGPU/);
  figures.adapter = await page.evaluate(async () => {
    const adapter = await navigator.gpu.requestAdapter();
    return `${adapter.info.vendor} ${adapter.info.architecture}`.trim();
  });

  // ---- The shipped models' logits ----
  const logits = fixture('native_logits.json');
  const pairs = [];
  for (const name of ['batchnorm', 'plain']) {
    const values = await page.evaluate(async ([n, images]) => {
      const reply = await window.mnistBn.logits(n, new Uint8Array(images.flat()));
      return Array.from(reply.values);
    }, [name, logits.images]);
    logits[name].flat().forEach((v, i) => pairs.push([values[i], v]));
  }
  figures.maxLogitDifference = worst(pairs);
  assert.ok(figures.maxLogitDifference <= TOLERANCE, `logits differ by ${figures.maxLogitDifference}`);

  // ---- The lesson's default run: its first 20 batches ----
  const losses = fixture('native_losses.json');
  await page.click('#train');
  await page.waitForFunction(() => window.mnistBn.history.batchnorm.length >= 20, null,
    { timeout: 600_000, polling: 200 });
  figures.lessonImagesPerSecPerModel = Math.round(await page.evaluate(() => window.mnistBn.imagesPerSec));
  await page.click('#stop');
  await page.waitForFunction(() => document.body.dataset.state === 'stopped', null, { timeout: 60_000 });
  const history = await page.evaluate(() => window.mnistBn.history);
  figures.lessonMaxLossDifference = worst(['batchnorm', 'plain'].flatMap(
    (name) => losses[name].map((v, i) => [history[name][i], v])));
  assert.ok(figures.lessonMaxLossDifference <= TOLERANCE,
    `the lesson's losses differ from the CPU build's by ${figures.lessonMaxLossDifference}`);
  // The models trained on the GPU answer the pad.
  const answer = await page.evaluate(() => window.mnistBn.predictNow());
  assert.equal(answer.bnEval.length, 10);
  assert.ok(Math.abs(answer.bnEval.reduce((a, b) => a + b, 0) - 1) < 1e-3);

  // ---- The playground's default preset: its first 20 steps and step-0 measurements ----
  const playground = fixture('native_playground.json');
  await page.click('#tab-playground');
  await page.waitForFunction(() => window.mnistBn.playground.presets?.length > 0, null,
    { timeout: 60_000 });
  await page.click('#pg-train');
  await page.waitForFunction(() => window.mnistBn.playground.history.a.length >= 20, null,
    { timeout: 600_000, polling: 200 });
  figures.playgroundPairStepsPerSecond = +(await page.evaluate(
    () => window.mnistBn.playground.imagesPerSec) / 120).toFixed(1);
  await page.click('#pg-stop');
  await page.waitForFunction(() => window.mnistBn.playground.state === 'stopped', null,
    { timeout: 60_000 });
  const pg = await page.evaluate(() => window.mnistBn.playground.history);
  figures.playgroundMaxLossDifference = worst(playground.losses.flatMap(
    ([a, b], i) => [[pg.a[i], a], [pg.b[i], b]]));
  assert.ok(figures.playgroundMaxLossDifference <= TOLERANCE,
    `the playground's losses differ from the CPU build's by ${figures.playgroundMaxLossDifference}`);
  figures.playgroundMaxPointDifference = worst(playground.points.flatMap((expected) => {
    const got = pg.points.find((p) => p.net === expected.net && p.step === expected.step);
    return [[got.accuracy, expected.accuracy], ...got.probe.map((v, i) => [v, expected.probe[i]])];
  }));
  assert.ok(figures.playgroundMaxPointDifference <= TOLERANCE,
    `the playground's measurements differ by ${figures.playgroundMaxPointDifference}`);
  await page.screenshot({ path: join(outDir, 'webgpu.png'), fullPage: true });

  assert.deepEqual(errors, [], 'no console errors');
} catch (e) {
  console.error('errors seen in the page:', errors);
  throw e;
} finally {
  await browser.close();
}
writeFileSync(join(outDir, 'webgpu.json'), JSON.stringify(figures, null, 2) + '\n');
console.log(JSON.stringify(figures, null, 2));
console.log('WebGPU test passed');
