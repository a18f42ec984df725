// lesson.js — the Lesson view: the lesson's two MLPs (with and without batch norm) trained
// live, their loss chart, and the drawing pad with each model's probabilities. The models
// live in the worker (worker.js); this file only asks it and draws its answers.
import { LineChart, runningMean } from './chart.js';

const $ = (id) => document.getElementById(id);
const fmt = (n) => Math.round(n).toLocaleString('en-US');
const SHIPPED = 'Answering: the models shipped with mnist-bn (trained 10 epochs on all of MNIST).';

/**
 * Wires the lesson's elements to the worker. `ask` sends a request and resolves with its
 * reply, `post` sends a message; `otherRunning()` says whether the playground trains, and
 * `runningChanged()` tells the page when the lesson starts or stops training.
 * Returns { api (window.mnistBn), handle(msg), refresh(), fail(error), get running }.
 */
export function createLesson({ ask, post, otherRunning, runningChanged }) {
  const history = { batchnorm: [], plain: [] };
  let total = 0;
  let lastPrediction = null;
  let lastBlank = true; // the last prediction was of an empty pad
  let modelsReady = false;
  let training = false;
  let failed = false; // the worker is gone: nothing will answer

  // For tests and the curious: the loss history, the run's batches, the last prediction,
  // eval-mode logits.
  const api = {
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

  function setState(state, text) {
    document.body.dataset.state = state;
    if (text !== undefined) $('status').textContent = text;
  }

  const showError = (e) => {
    setState('error', `Error: ${e.message || e}`);
    console.error(e.message || e);
  };

  function setTraining(on) {
    training = on;
    refresh();
    runningChanged();
  }

  // Train is free when the models are loaded and nothing trains, here or in the playground.
  function refresh() {
    $('train').disabled = failed || !modelsReady || training || otherRunning();
    $('stop').disabled = failed || !training;
  }

  // The worker's messages for the lesson (replies to `ask` are answered there).
  function handle(msg) {
    switch (msg.type) {
      case 'ready':
        api.timings.modelsReadyMs = performance.now();
        setState('ready', 'Ready: draw a digit, or press Train (the training images are loading).');
        modelsReady = true;
        refresh();
        // A first prediction at once, so that drawing answers without a cold start.
        predict()
          .then(() => { api.timings.firstPredictionMs = performance.now(); })
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
        api.imagesPerSec = msg.imagesPerSec;
        drawChart();
        break;
      case 'done':
      case 'stopped':
        setTraining(false);
        setState(msg.type, `${msg.type === 'done' ? 'Done' : 'Stopped'} after ${fmt(history.batchnorm.length)} batches `
          + `(${fmt(api.imagesPerSec || 0)} images/s per model). The drawing pad now asks the models trained here.`);
        predict().catch(showError);
        break;
      case 'error':
        showError(new Error(msg.message));
        setTraining(false);
        break;
      default:
        break;
    }
  }

  // The worker itself failed (its script or the WebAssembly did not load).
  function fail(error) {
    showError(error);
    failed = true;
    training = false;
    refresh();
  }

  $('train').onclick = () => {
    // One run at a time: a playground run ends first (its Train button is off while it runs,
    // so this is only a safeguard).
    if (otherRunning()) post({ type: 'stop' });
    setTraining(true);
    setState('training', 'Starting…');
    post({
      type: 'train',
      epochs: Number($('epochs').value),
      limit: Number($('limit').value),
      seed: 0,
    });
  };
  $('stop').onclick = () => post({ type: 'stop' });

  // ---- The loss chart ----

  const chart = new LineChart($('chart'), { xLabel: 'batches', yLabel: 'loss', yMin: 0, yMax: 2.5 });

  function mean(values, n) {
    const tail = values.slice(-n);
    return tail.reduce((a, b) => a + b, 0) / Math.max(1, tail.length);
  }

  // Faint: every batch's loss; bold: the mean of the last 20 batches.
  function drawChart() {
    const bn = '#1f77b4';
    const plain = '#ff7f0e';
    chart.update({
      xMax: Math.max(total, history.batchnorm.length, 1),
      series: [
        { values: history.plain, x0: 1, color: plain, alpha: 0.25, width: 1 },
        { values: history.batchnorm, x0: 1, color: bn, alpha: 0.25, width: 1 },
        { values: runningMean(history.plain, 20), x0: 1, color: plain, width: 2.5 },
        { values: runningMean(history.batchnorm, 20), x0: 1, color: bn, width: 2.5 },
      ],
    });
  }

  // ---- The drawing pad ----
  // Its pixel buffer is 280×280 whatever size CSS gives it; pointer positions are scaled to it.

  const pad = $('pad');
  const padCtx = pad.getContext('2d', { willReadFrequently: true });
  let inked = false; // something drawn since the last clear
  function clearPad() {
    padCtx.fillStyle = '#fff';
    padCtx.fillRect(0, 0, pad.width, pad.height);
    inked = false;
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
    inked = true;
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
  $('clear').onclick = () => {
    clearPad();
    lastBlank = true; // no answer for an empty pad, at once
    showPrediction();
    predict().catch(showError);
  };
  $('trainmode').onchange = () => showPrediction();

  // The pad's grey levels (black ink on white), converted in the worker like `mnist-bn predict`
  // converts a picture file. The answer is shown when it comes (unless the pad was empty).
  function predict() {
    const blank = !inked;
    const { data } = padCtx.getImageData(0, 0, pad.width, pad.height);
    const grey = new Uint8Array(pad.width * pad.height);
    for (let i = 0; i < grey.length; i++) grey[i] = data[4 * i];
    return ask({ type: 'predict', width: pad.width, height: pad.height, grey }).then((m) => {
      lastPrediction = m;
      lastBlank = blank;
      showPrediction();
      return m;
    });
  }

  function showPrediction() {
    const p = lastPrediction;
    const trainMode = $('trainmode').checked;
    const blank = lastBlank || !p;
    $('draw-hint').hidden = !blank;
    bars($('bars-bn'), blank ? null : (trainMode ? p.bnTrain : p.bnEval));
    bars($('bars-plain'), blank ? null : p.plain);
    $('pitfall').hidden = !trainMode;
    if (!p) return;
    $('source').textContent = p.trained ? 'Answering: the models trained on this page.' : SHIPPED;
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

  // Ten rows: digit, bar, percentage; the most likely digit in bold and in data-digit.
  // Without probabilities (an empty pad): empty bars and no data-digit.
  function bars(el, probabilities) {
    el.replaceChildren();
    const best = probabilities ? probabilities.indexOf(Math.max(...probabilities)) : -1;
    if (probabilities) el.dataset.digit = String(best);
    else delete el.dataset.digit;
    el.classList.toggle('empty', !probabilities);
    for (let d = 0; d < 10; d++) {
      const q = probabilities ? probabilities[d] : 0;
      const label = document.createElement('span');
      label.textContent = d;
      const bar = document.createElement('div');
      bar.className = 'bar';
      bar.style.width = `${(q * 100).toFixed(1)}%`;
      const value = document.createElement('span');
      value.textContent = probabilities ? `${(q * 100).toFixed(1)}%` : '–';
      if (d === best) { label.className = 'best'; value.className = 'best'; }
      el.append(label, bar, value);
    }
  }

  drawChart();
  showPrediction();
  refresh();
  return { api, handle, refresh, fail, get running() { return training; } };
}
