// url.js — the page's address: which view is shown, and the playground's settings, in the
// query string and back, so that a link restores a run's settings exactly.
//
//   ?view=playground&a=batch&b=none&act=relu&hidden=100,100,100&init=normal&std=0.05
//    &lr=2&batch=60&steps=2000&seed=0&pl=3&pu=0
//
// Numbers are written with String(x), which reads back as the same number. No `view` (or
// view=lesson) is the lesson view. `backend=webgpu` (training on the browser's WebGPU device
// instead of the CPU) is kept as it is, in either view.

// Query parameter, settings key, and how the value is written.
const FIELDS = [
  ['a', 'a', 'text'],
  ['b', 'b', 'text'],
  ['act', 'activation', 'text'],
  ['hidden', 'hidden', 'list'],
  ['init', 'init', 'text'],
  ['std', 'std', 'number'],
  ['lr', 'lr', 'number'],
  ['batch', 'batch', 'number'],
  ['steps', 'steps', 'number'],
  ['seed', 'seed', 'number'],
  ['pl', 'probeLayer', 'number'],
  ['pu', 'probeUnit', 'number'],
];

/** 'playground' or 'lesson', from a query string such as location.search. */
export function readView(search) {
  return new URLSearchParams(search).get('view') === 'playground' ? 'playground' : 'lesson';
}

/**
 * The settings a query string holds, over `defaults`: a parameter that is missing, empty or
 * not a number where a number belongs keeps the default. Ranges are not checked here: the
 * worker checks every setting and says what is wrong.
 */
export function readSettings(search, defaults) {
  const params = new URLSearchParams(search);
  const settings = { ...defaults, hidden: [...defaults.hidden] };
  for (const [param, key, kind] of FIELDS) {
    const raw = params.get(param);
    if (raw === null || raw.trim() === '') continue;
    if (kind === 'text') {
      settings[key] = raw;
    } else if (kind === 'number') {
      const n = Number(raw);
      if (Number.isFinite(n)) settings[key] = n;
    } else {
      const list = raw.split(',').map((s) => (s.trim() === '' ? NaN : Number(s)));
      if (list.every(Number.isFinite)) settings[key] = list;
    }
  }
  return settings;
}

/** 'webgpu' when the address asks for the WebGPU backend, else 'cpu'. */
export function readBackend(search) {
  return new URLSearchParams(search).get('backend') === 'webgpu' ? 'webgpu' : 'cpu';
}

/**
 * The query string for a view: the lesson's holds nothing but the backend, the playground's
 * also its settings.
 */
export function toQuery(view, settings, backend = readBackend(location.search)) {
  const gpu = backend === 'webgpu' ? ['backend=webgpu'] : [];
  if (view !== 'playground') return gpu.length ? `?${gpu.join('&')}` : '';
  const parts = ['view=playground', ...gpu];
  if (settings) {
    for (const [param, key, kind] of FIELDS) {
      const value = settings[key];
      if (value === undefined || value === null) continue;
      const text = kind === 'list' ? value.map(String).join(',') : encodeURIComponent(String(value));
      parts.push(`${param}=${text}`);
    }
  }
  return `?${parts.join('&')}`;
}

/** Writes the view and settings into the address bar, without a new history entry. */
export function writeUrl(view, settings) {
  const url = location.pathname + toQuery(view, settings) + location.hash;
  if (url !== location.pathname + location.search + location.hash) {
    history.replaceState(history.state, '', url);
  }
}
