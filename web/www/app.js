// The page: settings, the loss chart, the drawing pad and the bars. Every model computation
// happens in the worker (worker.js), so the page stays responsive while both models train.

const $ = (id) => document.getElementById(id);
const worker = new Worker('worker.js', { type: 'module' });
const history = { batchnorm: [], plain: [] };
let total = 0;
let requestId = 0;
const pending = new Map();
let lastPrediction = null;
let modelsReady = false;

// For tests and the curious: the loss history, the run's batches, the last prediction,
// eval-mode logits.
window.mnistBn = {
  history,
  get totalBatches() { return total; },
  get lastPrediction() { return lastPrediction; },
  timings: {},
  logits: (name, pixels) => ask({ type: 'logits', name, pixels }),
  // Predicts what the pad holds now; plain arrays, for tests.
  predictNow: () => predict().then((m) => ({
    bnEval: Array.from(m.bnEval), bnTrain: Array.from(m.bnTrain), plain: Array.from(m.plain),
  })),
};

function ask(msg) {
  const id = ++requestId;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    worker.postMessage({ ...msg, id });
  });
}

const showError = (e) => {
  setState('error', `Error: ${e.message || e}`);
  console.error(e.message || e);
};

// The worker itself failed (its script or the WebAssembly did not load): nothing will answer.
worker.onerror = (e) => {
  e.preventDefault();
  showError(new Error(`the page's worker failed: ${e.message || 'it did not load'}`));
  for (const { reject } of pending.values()) reject(new Error('the worker failed'));
  pending.clear();
  $('train').disabled = true;
  $('stop').disabled = true;
};

function setState(state, text) {
  document.body.dataset.state = state;
  if (text !== undefined) $('status').textContent = text;
}

const fmt = (n) => Math.round(n).toLocaleString('en-US');

worker.onmessage = ({ data: msg }) => {
  if (msg.id && pending.has(msg.id)) {
    const { resolve, reject } = pending.get(msg.id);
    pending.delete(msg.id);
    if (msg.type === 'error') reject(new Error(msg.message));
    else resolve(msg);
    if (msg.type !== 'prediction') return;
  }
  switch (msg.type) {
    case 'ready':
      window.mnistBn.timings.modelsReadyMs = performance.now();
      setState('ready', 'Ready: draw a digit, or press Train (the training images are loading).');
      modelsReady = true;
      $('train').disabled = false;
      // A first prediction at once, so that drawing answers without a cold start.
      predict()
        .then(() => { window.mnistBn.timings.firstPredictionMs = performance.now(); })
        .catch(showError);
      break;
    case 'data':
      if (document.body.dataset.state === 'ready') {
        setState('ready', `Ready: ${fmt(msg.count)} training images loaded. Draw a digit, or press Train.`);
      }
      break;
    case 'started':
      total = msg.total;
      history.batchnorm.length = 0;
      history.plain.length = 0;
      setState('training', `Training: 0 of ${fmt(total)} batches…`);
      drawChart();
      break;
    case 'progress':
      for (let i = 0; i < msg.losses.length; i += 2) {
        history.batchnorm.push(msg.losses[i]);
        history.plain.push(msg.losses[i + 1]);
      }
      setState('training', `Training: epoch ${msg.epoch}, batch ${fmt(msg.done)} of ${fmt(msg.total)}, `
        + `${fmt(msg.imagesPerSec)} images/s per model. Loss now: batch norm ${mean(history.batchnorm, 20).toFixed(3)}, `
        + `plain ${mean(history.plain, 20).toFixed(3)}.`);
      window.mnistBn.imagesPerSec = msg.imagesPerSec;
      drawChart();
      break;
    case 'done':
    case 'stopped':
      $('train').disabled = false;
      $('stop').disabled = true;
      setState(msg.type, `${msg.type === 'done' ? 'Done' : 'Stopped'} after ${fmt(history.batchnorm.length)} batches `
        + `(${fmt(window.mnistBn.imagesPerSec || 0)} images/s per model). The drawing pad now asks the models trained here.`);
      predict().catch(showError);
      break;
    case 'prediction':
      lastPrediction = msg;
      showPrediction();
      break;
    case 'error':
      showError(new Error(msg.message));
      $('train').disabled = !modelsReady;
      $('stop').disabled = true;
      break;
    default:
      break;
  }
};

$('train').onclick = () => {
  $('train').disabled = true;
  $('stop').disabled = false;
  setState('training', 'Starting…');
  worker.postMessage({
    type: 'train',
    epochs: Number($('epochs').value),
    limit: Number($('limit').value),
    seed: 0,
  });
};
$('stop').onclick = () => worker.postMessage({ type: 'stop' });

// ---- The loss chart ----

function mean(values, n) {
  const tail = values.slice(-n);
  return tail.reduce((a, b) => a + b, 0) / Math.max(1, tail.length);
}

function drawChart() {
  const canvas = $('chart');
  const ctx = canvas.getContext('2d');
  const { width, height } = canvas;
  const pad = { left: 50, right: 10, top: 24, bottom: 30 };
  const w = width - pad.left - pad.right;
  const h = height - pad.top - pad.bottom;
  const yMax = 2.5;
  const xMax = Math.max(total, history.batchnorm.length, 1);
  ctx.clearRect(0, 0, width, height);
  ctx.strokeStyle = '#ccc';
  ctx.fillStyle = '#444';
  ctx.font = '12px sans-serif';
  ctx.lineWidth = 1;
  for (let y = 0; y <= yMax; y += 0.5) {
    const py = pad.top + h - (y / yMax) * h;
    ctx.beginPath(); ctx.moveTo(pad.left, py); ctx.lineTo(pad.left + w, py); ctx.stroke();
    ctx.fillText(y.toFixed(1), 10, py + 4);
  }
  ctx.fillText('batches', pad.left + w / 2 - 20, height - 8);
  ctx.fillText(fmt(xMax), pad.left + w - 40, height - 8);
  ctx.fillText('loss', 10, 14);
  const x = (i) => pad.left + (i / xMax) * w;
  const y = (v) => pad.top + h - (Math.min(v, yMax) / yMax) * h;
  const line = (values, color, alpha, lineWidth, smooth) => {
    ctx.strokeStyle = color;
    ctx.globalAlpha = alpha;
    ctx.lineWidth = lineWidth;
    ctx.beginPath();
    let sum = 0;
    values.forEach((v, i) => {
      sum += v;
      if (i >= smooth) sum -= values[i - smooth];
      const shown = smooth > 1 ? sum / Math.min(i + 1, smooth) : v;
      if (i === 0) ctx.moveTo(x(i), y(shown)); else ctx.lineTo(x(i), y(shown));
    });
    ctx.stroke();
    ctx.globalAlpha = 1;
  };
  line(history.plain, '#ff7f0e', 0.25, 1, 1);
  line(history.batchnorm, '#1f77b4', 0.25, 1, 1);
  line(history.plain, '#ff7f0e', 1, 2.5, 20);
  line(history.batchnorm, '#1f77b4', 1, 2.5, 20);
}

// ---- The drawing pad ----

const pad = $('pad');
const padCtx = pad.getContext('2d', { willReadFrequently: true });
function clearPad() {
  padCtx.fillStyle = '#fff';
  padCtx.fillRect(0, 0, pad.width, pad.height);
}
clearPad();
let drawing = false;
let last = null;
const point = (e) => {
  const r = pad.getBoundingClientRect();
  return [(e.clientX - r.left) * (pad.width / r.width), (e.clientY - r.top) * (pad.height / r.height)];
};
pad.addEventListener('pointerdown', (e) => {
  drawing = true;
  pad.setPointerCapture(e.pointerId);
  last = point(e);
  stroke(last, last);
});
pad.addEventListener('pointermove', (e) => {
  if (!drawing) return;
  const p = point(e);
  stroke(last, p);
  last = p;
});
const endStroke = () => {
  if (!drawing) return;
  drawing = false;
  predict().catch(showError);
};
pad.addEventListener('pointerup', endStroke);
pad.addEventListener('pointercancel', endStroke);
function stroke(a, b) {
  padCtx.strokeStyle = '#000';
  padCtx.lineWidth = 22;
  padCtx.lineCap = 'round';
  padCtx.lineJoin = 'round';
  padCtx.beginPath();
  padCtx.moveTo(a[0], a[1]);
  padCtx.lineTo(b[0], b[1]);
  padCtx.stroke();
}
$('clear').onclick = () => { clearPad(); predict().catch(showError); };
$('trainmode').onchange = () => showPrediction();

// The pad's grey levels (black ink on white), converted in the worker like `mnist-bn predict`
// converts a picture file.
function predict() {
  const { data } = padCtx.getImageData(0, 0, pad.width, pad.height);
  const grey = new Uint8Array(pad.width * pad.height);
  for (let i = 0; i < grey.length; i++) grey[i] = data[4 * i];
  return ask({ type: 'predict', width: pad.width, height: pad.height, grey });
}

function showPrediction() {
  const p = lastPrediction;
  if (!p) return;
  const trainMode = $('trainmode').checked;
  bars($('bars-bn'), trainMode ? p.bnTrain : p.bnEval);
  bars($('bars-plain'), p.plain);
  $('pitfall').hidden = !trainMode;
  $('source').textContent = p.trained
    ? 'Answering: the models trained on this page.'
    : 'Answering: the models shipped with mnist-bn (trained 10 epochs on all of MNIST).';
  const seen = $('seen').getContext('2d');
  const img = seen.createImageData(28, 28);
  for (let i = 0; i < 784; i++) {
    img.data.set([p.pixels[i], p.pixels[i], p.pixels[i], 255], 4 * i);
  }
  const tmp = new OffscreenCanvas(28, 28);
  tmp.getContext('2d').putImageData(img, 0, 0);
  seen.imageSmoothingEnabled = false;
  seen.drawImage(tmp, 0, 0, 112, 112);
}

function bars(el, probabilities) {
  const best = probabilities.indexOf(Math.max(...probabilities));
  el.replaceChildren();
  el.dataset.digit = String(best);
  probabilities.forEach((q, d) => {
    const label = document.createElement('span');
    label.textContent = d;
    const bar = document.createElement('div');
    bar.className = 'bar';
    bar.style.width = `${(q * 100).toFixed(1)}%`;
    const value = document.createElement('span');
    value.textContent = `${(q * 100).toFixed(1)}%`;
    if (d === best) { label.className = 'best'; value.className = 'best'; }
    el.append(label, bar, value);
  });
}

drawChart();
