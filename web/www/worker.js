// The Web Worker: holds the WebAssembly session (both models, the training data, the run) and
// trains in slices of about 100 ms, so that predictions and Stop are answered between them.
import init, { Session } from './pkg/mnist_bn_web.js';

let session = null;
let dataReady = null;
let running = false;
let generation = 0; // a new run, or Stop, ends the slices of the run before

const fetchBytes = async (url) => {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
};

async function start() {
  const t0 = performance.now();
  const [, bn, plain] = await Promise.all([
    init(),
    fetchBytes('pretrained/batchnorm.bpk'),
    fetchBytes('pretrained/plain.bpk'),
  ]);
  session = new Session(bn, plain);
  postMessage({ type: 'ready', ms: performance.now() - t0 });
  // The training set is only needed once the user trains: fetched after the models.
  dataReady = Promise.all([
    fetchBytes('data/train-images-idx3-ubyte.gz'),
    fetchBytes('data/train-labels-idx1-ubyte.gz'),
  ]).then(([images, labels]) => {
    const count = session.setTrainingData(images, labels);
    postMessage({ type: 'data', count });
  });
  dataReady.catch((e) => postMessage({ type: 'error', message: String(e) }));
}

async function train({ epochs, limit, seed }) {
  const mine = ++generation;
  running = true;
  await dataReady;
  if (mine !== generation) return; // stopped, or another run asked for, while the data loaded
  const total = session.start(epochs, limit, BigInt(seed));
  postMessage({ type: 'started', total });
  while (running && mine === generation) {
    const t0 = performance.now();
    const slice = [];
    do {
      const losses = session.train(1);
      if (losses.length === 0) break;
      slice.push(...losses);
    } while (performance.now() - t0 < 100);
    const [done, all, epoch, imagesPerSec] = session.progress();
    postMessage({ type: 'progress', losses: slice, done, total: all, epoch, imagesPerSec });
    if (done >= all) {
      running = false;
      postMessage({ type: 'done' });
    }
    // Let queued messages (predict, stop) in.
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
      case 'stop':
        if (running) {
          running = false;
          generation++;
          postMessage({ type: 'stopped' });
        }
        break;
      case 'predict': {
        const out = session.predict(msg.width, msg.height, msg.grey);
        if (!out) throw new Error('the drawing has the wrong size');
        postMessage({
          type: 'prediction',
          id: msg.id,
          pixels: out.slice(0, 784),
          bnEval: out.slice(784, 794),
          bnTrain: out.slice(794, 804),
          plain: out.slice(804, 814),
          trained: session.trained(),
        });
        break;
      }
      case 'logits':
        postMessage({ type: 'logits', id: msg.id, values: session.logits(msg.name, msg.pixels) });
        break;
      default:
        throw new Error(`unknown message ${msg.type}`);
    }
  } catch (e) {
    // A failed prediction leaves a run going; a failed run ends.
    if (msg.type === 'train') {
      running = false;
      generation++;
    }
    postMessage({ type: 'error', id: msg.id, message: e && e.message ? e.message : String(e) });
  }
};

ready.catch((e) => postMessage({ type: 'error', message: String(e && e.message ? e.message : e) }));
