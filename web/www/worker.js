// The Web Worker: holds the WebAssembly session (the lesson's models, the data, the lesson's run
// and the playground's) and trains in slices of about 100 ms, so that predictions and Stop are
// answered between them. One run at a time: the lesson's or the playground's.
//
// The session runs on the CPU (Burn's flex backend), or on the browser's WebGPU device when the
// worker's address asks for it (`worker.js?backend=webgpu`). Calls that read from the device
// return promises (a WebGPU device cannot be read without yielding), and the session takes one
// call at a time: every call goes through `exclusive`.
const wantsWebGpu = new URLSearchParams(self.location.search).get('backend') === 'webgpu';
// The WebGPU build (pkg-webgpu/) carries wgpu and Burn's GPU kernels: 5.9 MB gzipped against
// the CPU build's 1.1 MB, so it is loaded only when asked for.
// (Not a top-level await: the worker's onmessage must be set before its first message comes.)
const bindings = import(wantsWebGpu ? './pkg-webgpu/mnist_bn_web.js' : './pkg/mnist_bn_web.js');

// Session calls, one after another: each waits for the one before to settle.
let queue = Promise.resolve();
function exclusive(call) {
  const result = queue.then(call);
  queue = result.catch(() => {});
  return result;
}

let session = null;
let dataReady = null;
let testReady = null;
let running = null; // 'lesson' or 'playground' while a run trains
let generation = 0; // a new run, or Stop, ends the slices of the run before

const fetchBytes = async (url) => {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
};

async function start() {
  const t0 = performance.now();
  const { default: init, Session } = await bindings;
  const [, bn, plain] = await Promise.all([
    init(),
    fetchBytes('pretrained/batchnorm.bpk'),
    fetchBytes('pretrained/plain.bpk'),
  ]);
  if (wantsWebGpu) {
    if (!navigator.gpu) throw new Error('this browser offers no WebGPU (navigator.gpu)');
    session = await Session.webgpu(bn, plain);
  } else {
    session = new Session(bn, plain);
  }
  postMessage({ type: 'ready', ms: performance.now() - t0, backend: session.backend() });
  // The training set is only needed once the user trains: fetched after the models.
  // The test set after it: the playground measures on it.
  dataReady = Promise.all([
    fetchBytes('data/train-images-idx3-ubyte.gz'),
    fetchBytes('data/train-labels-idx1-ubyte.gz'),
  ]).then(async ([images, labels]) => {
    const count = await exclusive(() => session.setTrainingData(images, labels));
    postMessage({ type: 'data', count });
  });
  testReady = dataReady.then(() => Promise.all([
    fetchBytes('data/t10k-images-idx3-ubyte.gz'),
    fetchBytes('data/t10k-labels-idx1-ubyte.gz'),
  ])).then(([images, labels]) => exclusive(() => session.setTestData(images, labels)));
  testReady.catch(() => {}); // reported by the playground's run that awaits it
  dataReady.catch((e) => postMessage({ type: 'error', message: String(e) }));
}

async function train({ epochs, limit, seed }) {
  const mine = ++generation;
  running = 'lesson';
  await dataReady;
  if (mine !== generation) return; // stopped, or another run asked for, while the data loaded
  const total = await exclusive(() => session.start(epochs, limit, BigInt(seed)));
  postMessage({ type: 'started', total });
  while (running && mine === generation) {
    const t0 = performance.now();
    const slice = [];
    do {
      const losses = await exclusive(() => session.train(1));
      if (losses.length === 0) break;
      slice.push(...losses);
    } while (performance.now() - t0 < 100);
    const [done, all, epoch, imagesPerSec] = await exclusive(() => session.progress());
    postMessage({ type: 'progress', losses: slice, done, total: all, epoch, imagesPerSec });
    if (done >= all) {
      running = null;
      postMessage({ type: 'done' });
    }
    // Let queued messages (predict, stop) in.
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}

// The playground: networks A and B on the lab's settings, stepped in turn; after the run, both
// tested in train mode on test batches of several sizes against eval mode.
async function playground({ settings }) {
  const mine = ++generation;
  running = 'playground';
  try {
    await testReady;
  } catch (e) {
    throw Object.assign(new Error(`the test images did not load: ${e.message || e}`), { playground: true });
  }
  if (mine !== generation) return;
  let started;
  try {
    started = JSON.parse(await exclusive(() => session.playgroundStart(JSON.stringify(settings))));
  } catch (e) {
    // Settings out of range: the user's to change, not a failure of the page.
    running = null;
    postMessage({ type: 'error', source: 'playground', invalid: true, message: e.message || String(e) });
    return;
  }
  postMessage({ type: 'pg-started', settings, ...started });
  const t0 = performance.now();
  while (running && mine === generation) {
    const sliceStart = performance.now();
    const losses = [];
    const points = [];
    let tick;
    do {
      tick = JSON.parse(await exclusive(() => session.playgroundTrain(1)));
      losses.push(...tick.losses.flat());
      points.push(...tick.points);
    } while (tick.losses.length > 0 && performance.now() - sliceStart < 100);
    postMessage({
      type: 'pg-progress', losses, points, done: tick.done, total: tick.total,
      diverged: tick.diverged, imagesPerSec: tick.imagesPerSec,
    });
    if (await exclusive(() => session.playgroundFinished())) {
      running = null;
      postMessage({
        type: 'pg-done', done: tick.done, diverged: tick.diverged,
        seconds: (performance.now() - t0) / 1000,
      });
      await new Promise((resolve) => setTimeout(resolve, 0));
      if (mine !== generation) return;
      const pitfall = await exclusive(() => session.playgroundPitfall());
      postMessage({ type: 'pg-pitfall', ...JSON.parse(pitfall) });
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}

const ready = start();

onmessage = async ({ data: msg }) => {
  try {
    if (msg.type !== 'stop') await ready;
    switch (msg.type) {
      case 'train':
        await train(msg);
        break;
      case 'pg-train':
        await playground(msg);
        break;
      case 'pg-presets': {
        const { presets, defaults } = JSON.parse(await exclusive(() => session.playgroundPresets()));
        postMessage({ type: 'pg-presets', id: msg.id, presets, defaults });
        break;
      }
      case 'stop':
        if (running) {
          const was = running;
          running = null;
          generation++;
          postMessage({ type: was === 'playground' ? 'pg-stopped' : 'stopped' });
        }
        break;
      case 'predict': {
        const out = await exclusive(() => session.predict(msg.width, msg.height, msg.grey));
        if (!out) throw new Error('the drawing has the wrong size');
        postMessage({
          type: 'prediction',
          id: msg.id,
          pixels: out.slice(0, 784),
          bnEval: out.slice(784, 794),
          bnTrain: out.slice(794, 804),
          plain: out.slice(804, 814),
          trained: await exclusive(() => session.trained()),
        });
        break;
      }
      case 'logits':
        postMessage({
          type: 'logits', id: msg.id, values: await exclusive(() => session.logits(msg.name, msg.pixels)),
        });
        break;
      default:
        throw new Error(`unknown message ${msg.type}`);
    }
  } catch (e) {
    // A failed prediction leaves a run going; a failed run ends.
    if (msg.type === 'train' || msg.type === 'pg-train') {
      running = null;
      generation++;
    }
    const source = msg.type === 'pg-train' ? 'playground' : undefined;
    postMessage({ type: 'error', id: msg.id, source, message: e && e.message ? e.message : String(e) });
  }
};

ready.catch((e) => postMessage({ type: 'error', message: String(e && e.message ? e.message : e) }));
