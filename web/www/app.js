// app.js — the page's entry: the Web Worker that does every model computation (so the page
// stays responsive while models train), the two views (Lesson and Playground) as tabs with
// the shown one kept in the address, and window.mnistBn for tests and the curious.
import { createLesson } from './lesson.js';
import { createPlayground } from './playground.js';
import { readBackend, readView, toQuery, writeUrl } from './url.js';

const $ = (id) => document.getElementById(id);
// The backend the address asks for: the CPU build (Burn's flex backend in WebAssembly), or
// Burn's wgpu backend on the browser's WebGPU device, offered where the browser has one.
const backend = readBackend(location.search);
const worker = new Worker(backend === 'webgpu' ? 'worker.js?backend=webgpu' : 'worker.js',
  { type: 'module' });
let requestId = 0;
const pending = new Map();

// A request and its reply, matched by id.
function ask(msg) {
  const id = ++requestId;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    worker.postMessage({ ...msg, id });
  });
}
const post = (msg) => worker.postMessage(msg);

// The address as the page was opened: a link's view and playground settings.
const initialSearch = location.search;
let view = readView(initialSearch);

// One run at a time in the worker: each view's Train button is off while the other trains.
const views = {};
views.lesson = createLesson({
  ask,
  post,
  otherRunning: () => views.playground?.running ?? false,
  runningChanged: () => views.playground?.refresh(),
});
views.playground = createPlayground({
  ask,
  post,
  initialSearch,
  otherRunning: () => views.lesson.running,
  runningChanged: () => views.lesson.refresh(),
  settingsChanged: (settings) => { if (view === 'playground') writeUrl(view, settings); },
});

window.mnistBn = views.lesson.api;
window.mnistBn.playground = views.playground.api;

// Replies go to their requests; the playground's messages (pg-*, and errors from its runs)
// to the playground; the rest to the lesson.
worker.onmessage = ({ data: msg }) => {
  if (msg.id && pending.has(msg.id)) {
    const { resolve, reject } = pending.get(msg.id);
    pending.delete(msg.id);
    if (msg.type === 'error') reject(new Error(msg.message));
    else resolve(msg);
    return;
  }
  if (msg.type.startsWith('pg-') || (msg.type === 'error' && isPlaygrounds(msg))) {
    views.playground.handle(msg);
  } else {
    views.lesson.handle(msg);
  }
};

// An error without an id is the playground's when it says so, or when only the playground runs.
const isPlaygrounds = (msg) => msg.source === 'playground' || msg.invalid === true
  || (views.playground.running && !views.lesson.running);

// The worker itself failed (its script or the WebAssembly did not load): nothing will answer.
worker.onerror = (e) => {
  e.preventDefault();
  const error = new Error(`the page's worker failed: ${e.message || 'it did not load'}`);
  views.lesson.fail(error);
  views.playground.fail(error);
  for (const { reject } of pending.values()) reject(new Error('the worker failed'));
  pending.clear();
};

// ---- Tabs ----

const tabs = { lesson: $('tab-lesson'), playground: $('tab-playground') };

function showView(next, { write = true } = {}) {
  view = next;
  for (const [name, tab] of Object.entries(tabs)) {
    const shown = name === view;
    tab.setAttribute('aria-selected', String(shown));
    tab.tabIndex = shown ? 0 : -1;
    $(name).hidden = !shown;
  }
  document.body.dataset.view = view;
  if (write) writeUrl(view, views.playground.settings);
}

for (const [name, tab] of Object.entries(tabs)) {
  tab.onclick = () => showView(name);
  // Arrow keys move between the tabs, as in any tab list.
  tab.onkeydown = (e) => {
    if (e.key !== 'ArrowLeft' && e.key !== 'ArrowRight') return;
    const other = name === 'lesson' ? 'playground' : 'lesson';
    showView(other);
    tabs[other].focus();
  };
}
showView(view, { write: false });

// ---- The backend: which one runs, and the other to switch to (a fresh page) ----

const backendNote = $('backend');
const switchTo = backend === 'webgpu' ? 'cpu' : 'webgpu';
if (switchTo === 'cpu' || navigator.gpu) {
  const link = $('backend-switch');
  link.hidden = false;
  link.textContent = switchTo === 'webgpu' ? 'Train on the GPU (WebGPU) instead' : 'Train on the CPU instead';
  link.onclick = (e) => {
    e.preventDefault();
    location.href = location.pathname + toQuery(view, views.playground.settings, switchTo);
  };
}
window.mnistBn.backend = null;
worker.addEventListener('message', ({ data: msg }) => {
  if (msg.type === 'ready') {
    window.mnistBn.backend = msg.backend;
    backendNote.textContent = `Running on: ${msg.backend}.`;
  }
});
