// playground.js — the Playground view: two networks, A and B, trained side by side in the
// worker on shared settings (a preset, a link, or the controls), with live charts of their
// training loss, validation accuracy and one hidden unit's input to its activation, and, once
// trained, their test accuracy in train mode on small test batches against eval mode.
import { LineChart, runningMean } from './chart.js';
import { readSettings } from './url.js';

const $ = (id) => document.getElementById(id);
const fmt = (n) => Math.round(n).toLocaleString('en-US');
const percent = (fraction) => `${(fraction * 100).toFixed(1)}%`;

const KEYS = ['a', 'b', 'activation', 'hidden', 'init', 'std', 'lr', 'batch', 'steps', 'seed',
  'probeLayer', 'probeUnit'];
const NETS = ['a', 'b'];
const COLORS = ['#1f77b4', '#ff7f0e']; // A blue, B orange
const NORM_NAMES = { none: 'none', batch: 'batch norm', layer: 'layer norm', group: 'group norm',
  renorm: 'batch renorm' };
const MEAN_OF = 20; // the bold loss curve: the mean of the last 20 steps
const PER_DECADE = 20; // log sliders: 20 positions per factor of ten

// A log-scale slider between `low` and `high`: positions ⇄ values rounded to two digits.
function logScale(low, high) {
  const positions = Math.round(Math.log10(high / low) * PER_DECADE);
  return {
    positions,
    value: (position) => Number((low * 10 ** (position / PER_DECADE)).toPrecision(2)),
    position: (value) => Math.min(positions, Math.max(0,
      Math.round(Math.log10(value / low) * PER_DECADE))),
  };
}
const STD = logScale(1e-4, 10);
const LR = logScale(1e-3, 10);

// Only the settings' own keys, with a copy of the hidden widths.
function pick(source) {
  const out = {};
  for (const key of KEYS) {
    if (source[key] !== undefined) out[key] = key === 'hidden' ? [...source[key]] : source[key];
  }
  return out;
}
const same = (x, y) => KEYS.every((k) => JSON.stringify(x[k]) === JSON.stringify(y[k]));

/**
 * Wires the playground's elements to the worker. `ask` sends a request and resolves with its
 * reply, `post` sends a message; `initialSearch` is the address's query string at load time
 * (settings to restore); `otherRunning()` says whether the lesson trains; `runningChanged()`
 * and `settingsChanged(settings)` tell the page when a run starts or ends and when a setting
 * changes (so that it rewrites the address).
 * Returns { api (window.mnistBn.playground), handle(msg), refresh(), fail(error),
 * get running, get settings }.
 */
export function createPlayground({ ask, post, initialSearch, otherRunning, runningChanged, settingsChanged }) {
  let presets = null;
  let defaults = null;
  let settings = null; // the controls' settings (null until the presets have come)
  let state = 'idle';
  let failure = null; // the message of the last error
  let failed = false; // the worker is gone
  let pitfall = null;
  let imagesPerSec = 0;
  let seconds = null; // the last run's wall time, once done
  // The run shown by the charts: what the worker said when it started, and how far it got.
  const run = { total: 0, measureEvery: 0, names: ['A', 'B'], settings: null, done: 0,
    diverged: [null, null], started: false };
  const history = { a: [], b: [], points: [] };
  const means = { a: [], b: [] };

  const api = {
    get settings() { return settings && pick(settings); },
    apply,
    get presets() { return presets; },
    history,
    get state() { return state; },
    get pitfall() { return pitfall; },
    get imagesPerSec() { return imagesPerSec; },
    get seconds() { return seconds; },
    get status() { return $('pg-status').textContent; },
  };

  // ---- Settings ⇄ controls ----

  const controls = {
    a: $('pg-a'), b: $('pg-b'), activation: $('pg-activation'), layers: $('pg-layers'),
    width: $('pg-width'), init: $('pg-init'), std: $('pg-std'), lr: $('pg-lr'),
    batch: $('pg-batch'), steps: $('pg-steps'), seed: $('pg-seed'),
    probeLayer: $('pg-probe-layer'), probeUnit: $('pg-probe-unit'),
  };
  controls.std.min = 0;
  controls.std.max = STD.positions;
  controls.lr.min = 0;
  controls.lr.max = LR.positions;

  /** New settings over the current ones (any subset of the keys): controls and address follow. */
  function apply(next) {
    const base = settings || defaults;
    if (!base) throw new Error('the playground has not loaded its presets yet');
    settings = { ...pick(base), ...pick(next) };
    changed();
  }

  // After any change: every control shows the settings (except the one being edited, whose
  // text may be half typed), the preset list finds a match, the page rewrites the address.
  function changed(editing = null) {
    render(editing);
    settingsChanged(pick(settings));
    refresh();
  }

  function render(editing) {
    const s = settings;
    const show = (control, value) => {
      if (control !== editing) control.value = String(value);
    };
    show(controls.a, s.a);
    show(controls.b, s.b);
    show(controls.activation, s.activation);
    show(controls.layers, s.hidden.length);
    show(controls.width, s.hidden[0] ?? '');
    $('pg-hidden-value').textContent = s.hidden.join(', ');
    show(controls.init, s.init);
    controls.std.disabled = s.init !== 'normal';
    show(controls.std, STD.position(s.std));
    $('pg-std-value').textContent = String(s.std);
    show(controls.lr, LR.position(s.lr));
    $('pg-lr-value').textContent = String(s.lr);
    ensureOption(controls.batch, s.batch);
    show(controls.batch, s.batch);
    show(controls.steps, s.steps);
    show(controls.seed, s.seed);
    show(controls.probeLayer, s.probeLayer);
    show(controls.probeUnit, s.probeUnit);
    controls.probeLayer.max = String(s.hidden.length);
    controls.probeUnit.max = String(Math.max(0, (s.hidden[s.probeLayer - 1] ?? 1) - 1));
    // The preset these settings are, or "custom".
    const match = presets.find((p) => same(s, full(p)));
    $('pg-preset').value = match ? match.id : 'custom';
    showAbout(match ? match.about : 'Your own settings: change any of them, then press Train.');
  }

  // A preset's description; `a command` in backquotes is shown as code.
  function showAbout(text) {
    $('pg-about').replaceChildren(...text.split('`').map((part, i) => {
      if (i % 2 === 0) return document.createTextNode(part);
      const code = document.createElement('code');
      code.textContent = part;
      return code;
    }));
  }

  const full = (preset) => ({ ...pick(defaults), ...pick(preset.settings) });

  // A batch size from a link that the list lacks (any size from 2 to 256 is valid) joins it.
  function ensureOption(select, value) {
    if ([...select.options].some((o) => o.value === String(value))) return;
    const option = new Option(String(value), String(value));
    const after = [...select.options].find((o) => Number(o.value) > value);
    select.add(option, after || null);
  }

  // Layers and width together set every hidden layer to one width (until then, the widths of
  // a preset or a link, such as 512, 256, stay as they are). The probed unit stays inside.
  function setHidden(layers, width) {
    settings.hidden = Array(layers).fill(width);
    settings.probeLayer = Math.min(Math.max(1, settings.probeLayer), layers);
    settings.probeUnit = Math.min(Math.max(0, settings.probeUnit), width - 1);
  }

  // A number field: its value once it reads as a number (the worker checks the range).
  const numberOf = (input) => (input.value.trim() === '' ? NaN : Number(input.value));

  const onSelect = (key, parse = String) => () => {
    settings[key] = parse(controls[key].value);
    changed();
  };
  controls.a.onchange = onSelect('a');
  controls.b.onchange = onSelect('b');
  controls.activation.onchange = onSelect('activation');
  controls.init.onchange = onSelect('init');
  controls.batch.onchange = onSelect('batch', Number);
  controls.layers.oninput = () => {
    const width = Number.isInteger(numberOf(controls.width)) ? numberOf(controls.width) : settings.hidden[0];
    setHidden(Number(controls.layers.value), width);
    changed(controls.layers);
  };
  controls.width.oninput = () => {
    const width = numberOf(controls.width);
    if (!Number.isInteger(width) || width < 1) return; // half typed: wait
    setHidden(settings.hidden.length, width);
    changed(controls.width);
  };
  controls.std.oninput = () => {
    settings.std = STD.value(Number(controls.std.value));
    changed(controls.std);
  };
  controls.lr.oninput = () => {
    settings.lr = LR.value(Number(controls.lr.value));
    changed(controls.lr);
  };
  for (const key of ['steps', 'seed', 'probeLayer', 'probeUnit']) {
    controls[key].oninput = () => {
      const n = numberOf(controls[key]);
      if (!Number.isFinite(n)) return; // half typed: wait
      settings[key] = n;
      changed(controls[key]);
    };
  }
  // Leaving a field shows the setting again (a field left empty shows the value kept).
  for (const input of [controls.width, controls.steps, controls.seed, controls.probeLayer,
    controls.probeUnit]) {
    input.onchange = () => { if (settings) render(null); };
  }
  $('pg-preset').onchange = () => {
    const preset = presets.find((p) => p.id === $('pg-preset').value);
    if (preset) apply(full(preset));
    else render(null); // "custom" chosen by hand: nothing to change
  };

  // The presets (and the defaults) come from the worker; a link's settings go over them.
  ask({ type: 'pg-presets' }).then((reply) => {
    presets = reply.presets;
    defaults = pick(reply.defaults || reply.presets[0].settings);
    const select = $('pg-preset');
    select.replaceChildren(...presets.map((p) => new Option(p.title, p.id)),
      new Option('custom', 'custom'));
    settings = readSettings(initialSearch, defaults);
    $('pg-settings').disabled = false;
    changed();
  }).catch((e) => {
    if (failed) return; // the page has said so already
    state = 'error';
    failure = `the presets did not load: ${e.message || e}`;
    console.error(failure);
    refresh();
  });

  // ---- Train, stop, copy the link ----

  $('pg-train').onclick = () => {
    // One run at a time: a lesson run ends first (its Train button is off while it runs, so
    // this is only a safeguard).
    if (otherRunning()) post({ type: 'stop' });
    startRun();
    post({ type: 'pg-train', settings: pick(settings) });
  };
  $('pg-stop').onclick = () => post({ type: 'stop' });
  $('pg-form').onsubmit = (e) => e.preventDefault(); // Enter in a field: nothing to send
  $('pg-link').onclick = () => {
    const note = $('pg-link-note');
    const copied = navigator.clipboard?.writeText(location.href);
    if (!copied) {
      note.textContent = 'Copy the address bar to share these settings.';
      return;
    }
    copied.then(() => { note.textContent = 'Link copied.'; },
      () => { note.textContent = 'Could not copy: copy the address bar instead.'; });
  };

  // A new run: empty history, charts and pitfall until the worker says it started.
  function startRun(runSettings = settings) {
    const s = runSettings || settings || defaults;
    history.a.length = 0;
    history.b.length = 0;
    history.points.length = 0;
    means.a.length = 0;
    means.b.length = 0;
    Object.assign(run, { total: s ? s.steps : 0, measureEvery: 0, names: s ? namesOf(s) : ['A', 'B'],
      settings: s && pick(s), done: 0, diverged: [null, null], started: false });
    pitfall = null;
    imagesPerSec = 0;
    failure = null;
    setState('training');
    renderPitfall();
    drawCharts();
  }

  const namesOf = (s) => [`A: ${NORM_NAMES[s.a] || s.a}`, `B: ${NORM_NAMES[s.b] || s.b}`];

  function setState(next) {
    const wasRunning = state === 'training';
    state = next;
    refresh();
    if (wasRunning !== (state === 'training')) runningChanged();
  }

  // ---- The worker's messages ----

  function handle(msg) {
    switch (msg.type) {
      case 'pg-started':
        if (state !== 'training') startRun(msg.settings); // started from elsewhere (a test, say)
        Object.assign(run, { total: msg.total, measureEvery: msg.measureEvery,
          names: msg.names || run.names, settings: msg.settings || run.settings, started: true });
        refresh();
        drawCharts();
        break;
      case 'pg-progress':
        // [a1, b1, a2, b2, …]; pairs [[a1, b1], …] (the session's own JSON) are read too.
        for (let i = 0; i < msg.losses.length; i++) {
          if (Array.isArray(msg.losses[i])) {
            push(0, msg.losses[i][0]);
            push(1, msg.losses[i][1]);
          } else {
            push(0, msg.losses[i]);
            push(1, msg.losses[++i]);
          }
        }
        history.points.push(...(msg.points || []));
        Object.assign(run, { done: msg.done, total: msg.total ?? run.total,
          diverged: msg.diverged || run.diverged });
        imagesPerSec = msg.imagesPerSec ?? imagesPerSec;
        refresh();
        drawCharts();
        break;
      case 'pg-done':
        seconds = msg.seconds ?? null;
        run.done = msg.done ?? run.done;
        run.diverged = msg.diverged || run.diverged;
        setState('done');
        drawCharts();
        break;
      case 'pg-pitfall':
        if (state === 'training') break; // a late answer about the run before
        pitfall = msg;
        renderPitfall();
        refresh();
        break;
      case 'pg-stopped':
        setState('stopped');
        break;
      case 'error':
        // An invalid setting is the user's to fix: shown, not logged as a failure.
        failure = msg.invalid ? `invalid settings: ${msg.message}` : msg.message;
        if (!msg.invalid) console.error(`playground: ${msg.message}`);
        setState('error');
        break;
      default:
        break;
    }
  }

  // One step's loss of one network: the history, and the mean of the last 20 steps.
  function push(net, value) {
    const loss = value ?? null;
    const values = history[NETS[net]];
    values.push(loss);
    let mean = loss;
    if (loss !== null && values.length > 1) {
      const tail = values.slice(-MEAN_OF);
      mean = tail.reduce((sum, v) => sum + v, 0) / tail.length;
    }
    means[NETS[net]].push(mean);
  }

  // The worker is gone (its script or the WebAssembly did not load): the page said so.
  function fail(error) {
    failed = true;
    failure = error.message || String(error);
    state = 'error';
    refresh();
  }

  // Buttons, status line and body[data-pg] from the state.
  function refresh() {
    const running = state === 'training';
    $('pg-train').disabled = failed || !settings || running || otherRunning();
    $('pg-stop').disabled = failed || !running;
    document.body.dataset.pg = state;
    $('pg-status').textContent = statusText();
    $('pg-name-a').textContent = run.names[0];
    $('pg-name-b').textContent = run.names[1];
  }

  function statusText() {
    const names = `${run.names[0]} and ${run.names[1]}`;
    const diverged = run.diverged
      .map((step, i) => (step === null || step === undefined ? '' : ` ${'AB'[i]} diverged at step ${fmt(step)}.`))
      .join('');
    const speed = `${fmt(imagesPerSec)} images/s for the pair`;
    const lessonRuns = otherRunning()
      ? ' The lesson view is training: stop it there to train here.' : '';
    switch (state) {
      case 'training':
        if (!run.started) return `Starting ${names}… (the training images load first)`;
        return `Training ${names}: step ${fmt(run.done)} of ${fmt(run.total)}, ${speed}.${diverged}`;
      case 'done': {
        const accuracy = [0, 1].map((net) => {
          if (run.diverged[net] !== null && run.diverged[net] !== undefined) return null;
          const last = history.points.filter((p) => p.net === net).at(-1);
          return last ? `${'AB'[net]} ${percent(last.accuracy)}` : null;
        }).filter(Boolean);
        return `Done: ${fmt(run.done)} steps, ${speed}.`
          + (accuracy.length ? ` Validation accuracy: ${accuracy.join(', ')}.` : '')
          + diverged
          + (pitfall ? '' : ' Measuring train mode against eval mode on the test set…')
          + lessonRuns;
      }
      case 'stopped':
        return `Stopped at step ${fmt(run.done)} of ${fmt(run.total)}.${diverged}${lessonRuns}`;
      case 'error':
        return failed ? `Error: ${failure}` : `Cannot train: ${failure}${lessonRuns}`;
      default:
        if (!settings) return 'Loading the models…';
        return `Ready: choose a preset or change the settings, then press Train.${lessonRuns}`;
    }
  }

  // ---- The charts ----

  const lossChart = new LineChart($('pg-loss'), { xLabel: 'steps', yLabel: 'loss', yMin: 0, yMax: 2.5 });
  const accuracyChart = new LineChart($('pg-accuracy'), {
    xLabel: 'steps', yLabel: 'validation accuracy', yMin: 0, yMax: 100, yFormat: (v) => `${v}%`,
  });
  const probeChart = new LineChart($('pg-probe'), { xLabel: 'steps', yLabel: 'input to the activation' });

  function drawCharts() {
    const xMax = Math.max(1, run.total);
    // A diverged network's measurements stop at its divergence.
    const points = (net) => history.points.filter((p) => p.net === net
      && (run.diverged[net] === null || run.diverged[net] === undefined || p.step <= run.diverged[net]));
    lossChart.update({
      xMax,
      series: [
        ...[0, 1].map((net) => ({ values: history[NETS[net]], x0: 1, color: COLORS[net], alpha: 0.25, width: 1 })),
        ...[0, 1].map((net) => ({ values: means[NETS[net]], x0: 1, color: COLORS[net], width: 2.5 })),
      ],
      marks: run.diverged.flatMap((step, net) => (step === null || step === undefined ? []
        : [{ x: step, color: COLORS[net], label: `${'AB'[net]} diverged at step ${fmt(step)}` }])),
    });
    accuracyChart.update({
      xMax,
      series: [0, 1].map((net) => ({
        points: points(net).map((p) => [p.step, p.accuracy * 100]), color: COLORS[net], width: 2, dots: true,
      })),
    });
    const probes = (net) => points(net).filter((p) => Array.isArray(p.probe));
    probeChart.update({
      xMax,
      series: [0, 1].flatMap((net) => [
        { band: probes(net).map((p) => [p.step, p.probe[0], p.probe[2]]), color: COLORS[net], alpha: 0.2 },
        { points: probes(net).map((p) => [p.step, p.probe[1]]), color: COLORS[net], width: 2, dots: true },
      ]),
    });
    const s = run.settings || settings;
    if (s) {
      $('pg-probe-what').textContent = `layer ${s.probeLayer}, unit ${s.probeUnit}`;
      $('pg-measure-every').textContent = run.measureEvery ? `every ${fmt(run.measureEvery)} steps` : 'as it trains';
    }
  }

  // ---- The pitfall: train mode at test time ----

  // For A and B: a bar per test batch size in train mode, then eval mode; each bar's row holds
  // data-net, data-batch and data-accuracy (the fraction) for tests.
  function renderPitfall() {
    const el = $('pg-pitfall');
    el.replaceChildren();
    if (!pitfall) {
      const note = document.createElement('p');
      note.className = 'note';
      note.textContent = state === 'training' || state === 'done'
        ? 'Measured once A and B are trained.' : 'Train A and B to measure them here.';
      el.append(note);
      return;
    }
    pitfall.nets.forEach((net, i) => {
      const group = document.createElement('div');
      group.className = 'pitfall-net';
      const title = document.createElement('h4');
      title.textContent = run.names[i];
      group.append(title);
      const caption = document.createElement('p');
      caption.className = 'note';
      caption.textContent = 'train mode, test batches of:';
      group.append(caption);
      const rows = pitfall.batches.map((size, j) => [String(size),
        `${size} image${size === 1 ? '' : 's'}`, net.train[j]]);
      rows.push(['eval', 'eval mode', net.eval]);
      for (const [batch, label, accuracy] of rows) {
        const row = document.createElement('div');
        row.className = 'pitfall-bar';
        row.dataset.net = NETS[i];
        row.dataset.batch = batch;
        row.dataset.accuracy = Number.isFinite(accuracy) ? String(accuracy) : '';
        row.setAttribute('aria-label', `${run.names[i]}, ${batch === 'eval' ? 'eval mode'
          : `train mode, test batches of ${batch}`}: ${Number.isFinite(accuracy) ? percent(accuracy) : 'no value'}`);
        const name = document.createElement('span');
        name.textContent = label;
        const track = document.createElement('span');
        track.className = 'track';
        const fill = document.createElement('span');
        fill.className = 'fill';
        fill.style.width = Number.isFinite(accuracy) ? `${(accuracy * 100).toFixed(1)}%` : '0';
        track.append(fill);
        const value = document.createElement('span');
        value.className = 'value';
        value.textContent = Number.isFinite(accuracy) ? percent(accuracy) : '–';
        row.append(name, track, value);
        group.append(row);
      }
      el.append(group);
    });
  }

  renderPitfall();
  drawCharts();
  refresh();
  return {
    api, handle, refresh, fail,
    get running() { return state === 'training'; },
    get settings() { return settings && pick(settings); },
  };
}
