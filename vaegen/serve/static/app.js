// vaegen serve: a map of the latent space and the actions on it, a thin client of the JSON API whose schema
// the server publishes at /openapi.json: it sends what the schema asks and reads what it answers. No
// framework: one `state` object, one table of actions, small functions, everything bound from here (the
// page's CSP allows no inline script or style). The map has two layouts: by neighbours in z (each point's
// `layout`), where a click selects a point, and on the codes' principal axes (x, y), where a click anywhere
// decodes, since only there does a point of the plane lift back to a code.

import { colouring } from './colours.js';

const $ = (id) => document.getElementById(id);
const SVG_NS = 'http://www.w3.org/2000/svg';
const POLL_MS = 700; // how often the page asks how far the map's build has come
const HINTS = {
  neighbours: 'scroll to zoom · drag to pan · click a point to select it · '
    + 'on the principal axes a click anywhere decodes',
  axes: 'scroll to zoom · drag to pan · click empty space to decode it · click a point to select it',
};

const state = {
  points: [], // the map's points {x, y, layout: [u, v], text, tune}, in the order of the circles in #points
  layout: 'neighbours', // the layout shown: 'neighbours' or 'axes'
  kept: null, // the API's Kept: the share of each sentence's nearest in z kept on each layout
  view: { cx: 0, cy: 0, scale: 100 }, // map centre (data units) and screen pixels per data unit
  size: { w: 800, h: 600 }, // the map's size in screen pixels
  layers: { near: [], sample: [], ci: [], encode: [], decode: [], interpolate: [] }, // each action's results on the map
  items: new WeakMap(), // marker element -> the result it shows
  selected: null, // a Result {text, x, y, ...} or a Neighbour {text, distance}
  tunes: [], // the API's TuneInfo: [{name, count, forms: [{form, count, share}]}]
  busy: 0, // requests and actions in flight
  drag: null, // {x, y, lastX, lastY, moved, target} while the mouse is down on the map
  frame: 0, // pending animation frame
};

// Each action: the form that runs it (decode runs on a click on the map), the endpoint it asks, its inputs
// kept in the URL (hash key -> element id), the buttons that put the selected sentence in one of its inputs,
// how it builds its request (the tune and strategy are added to every one) and shows the results, and how
// they are marked on the map (`keep`: added to those before). In drawing order: the later on top.
const ACTIONS = {
  near: {
    form: 'near-form', endpoint: '/api/near', inputs: { text: 'near-text', radius: 'radius', n: 'near-n' },
    uses: { 'use-near': 'near-text' },
    request: () => ({
      text: readText('near-text', 'around'), n: readNumber('near-n', 'n', true), radius: readNumber('radius', 'radius'),
    }),
    show: (results) => fillList('near-list', results),
    marker: 'near', label: () => '',
  },
  sample: {
    form: 'sample-form', endpoint: '/api/sample', inputs: { n: 'sample-n', seed: 'seed' },
    request: () => ({
      n: readNumber('sample-n', 'n', true), form: formChoice(),
      seed: $('seed').value.trim() === '' ? null : readNumber('seed', 'seed', true),
    }),
    show: (results) => fillList('sample-list', results, (r) => [r.tune, r.form].filter(Boolean).join(' · ')),
    marker: 'sample', label: () => '',
  },
  ci: {
    form: 'tune-section', endpoint: '/api/sample', inputs: {},
    request: () => ({ n: 1, form: formChoice() }),
    show: ([r]) => {
      $('ci-text').textContent = r.text;
      $('ci-form').textContent = r.form ?? '';
      $('ci-form').dataset.tune = r.tune ?? '';
    },
    marker: 'ci', label: (r) => short(r.text),
  },
  encode: {
    form: 'encode-form', endpoint: '/api/reconstruct', inputs: { text: 'text' }, uses: { 'use-text': 'text' },
    request: () => ({ texts: [readText('text', 'sentence')] }),
    show: ([r]) => {
      $('reconstruction').textContent = r.reconstruction;
      fillList('neighbours', r.neighbours, (n) => `distance ${n.distance.toFixed(3)}`);
      select(r);
    },
    marker: 'encoded', label: (r) => short(r.text),
  },
  decode: {
    endpoint: '/api/decode', inputs: {}, keep: true,
    request: ({ x, y }) => ({ points: [readPoint(x, y)], form: formChoice() }),
    show: ([r]) => {
      $('decoded-list').append(listItem(r));
      select(r);
    },
    marker: 'decoded', label: (r) => short(r.text),
  },
  interpolate: {
    form: 'interpolate-form', endpoint: '/api/interpolate', inputs: { a: 'a', b: 'b', steps: 'steps', path: 'path' },
    uses: { 'use-a': 'a', 'use-b': 'b' },
    request: () => ({
      a: readText('a', 'A'), b: readText('b', 'B'), steps: readNumber('steps', 'steps', true), path: $('path').value,
      form: formChoice(),
    }),
    show: (results) => fillList('path-steps', results),
    marker: 'step', label: (r, i) => String(i + 1),
  },
};
const USES = Object.values(ACTIONS).flatMap((spec) => Object.entries(spec.uses ?? {})); // [button id, input id]
// Inputs every action uses, kept in the URL with its own (hash key -> element id)
const COMMON = {
  strategy: 'strategy', temperature: 'temperature', top_p: 'top-p', beam: 'beam', tune: 'tune', form: 'form', layout: 'layout',
};
// Inputs that take their default and bounds from the API's schema: element id -> [schema, property]
const FROM_SCHEMA = {
  temperature: ['StrategyChoice', 'temperature'], 'top-p': ['StrategyChoice', 'top_p'], beam: ['StrategyChoice', 'beam'],
  steps: ['InterpolateRequest', 'steps'], radius: ['NearRequest', 'radius'], 'near-n': ['NearRequest', 'n'],
  'sample-n': ['SampleRequest', 'n'],
};

const SHAPES = {
  decoded: 'M0,-7L7,0L0,7L-7,0Z',
  encoded: 'M-6,-6H6V6H-6Z',
  step: circlePath(8),
  near: circlePath(4.5),
  sample: 'M0,-6.5L6,4H-6Z',
  ci: 'M0,-8L2.4,-2.5L8,-2.5L3.5,1L5.2,7L0,3.5L-5.2,7L-3.5,1L-8,-2.5L-2.4,-2.5Z',
};

// ---- the server ----------------------------------------------------------------------------------

async function call(path, body) {
  const init = body === undefined ? {} : {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  };
  const res = await fetch(path, init).catch((e) => { throw new Error(`cannot reach the server (${e.message})`); });
  if (res.ok) return res.json();
  const data = await res.json().catch(() => null); // a crash of the server answers plain text
  throw new Error(detailOf(data) || `${path}: ${res.status} ${res.statusText}`.trim());
}

// A call the page waits on (marked busy); polling the map's build is not one
async function api(path, body) {
  setBusy(1);
  try {
    return await call(path, body);
  } finally {
    setBusy(-1);
  }
}

// An error's detail: a message, or the fields a request got wrong (422), each where it is in the body
function detailOf(data) {
  const detail = data?.detail;
  return Array.isArray(detail) ? detail.map((e) => `${e.loc.slice(1).join('.')}: ${e.msg}`).join('; ') : detail;
}

// ---- inputs --------------------------------------------------------------------------------------

function readText(id, label) {
  const value = $(id).value.trim();
  if (!value) throw new Error(`${label}: type a sentence first`);
  return value;
}

function readNumber(id, label, integer = false) {
  const raw = $(id).value.trim();
  const value = Number(raw);
  if (raw === '' || !Number.isFinite(value) || (integer && !Number.isInteger(value))) {
    throw new Error(`${label}: enter ${integer ? 'a whole number' : 'a number'}`);
  }
  return value;
}

// A point of the map from a click, or from a URL someone shared
function readPoint(x, y) {
  const point = [x, y].map((v) => (v === null || v === '' ? NaN : Number(v)));
  if (!point.every(Number.isFinite)) throw new Error('decode: the point needs numeric x and y');
  return point;
}

// The strategy chosen; none for each action's default, the CLI's (the API's): sampling to sample, look around
// a sentence and write ci, greedy to encode, decode and interpolate
function strategyChoice() {
  const kind = $('strategy').value;
  if (kind === 'sample') {
    return { strategy: { kind, temperature: readNumber('temperature', 'temperature'), top_p: readNumber('top-p', 'top-p') } };
  }
  if (kind === 'beam') return { strategy: { kind, beam: readNumber('beam', 'beam width', true) } };
  return kind ? { strategy: { kind } } : {};
}

const tuneChoice = () => $('tune').value || null;
const formChoice = () => $('form').value || null;

// ---- actions -------------------------------------------------------------------------------------

async function perform(name, extra = {}) {
  const spec = ACTIONS[name];
  clearError();
  writeHash(name, spec, extra);
  setBusy(1);
  try {
    const { results } = await api(spec.endpoint, { ...spec.request(extra), tune: tuneChoice(), ...strategyChoice() });
    state.layers[name] = spec.keep ? [...state.layers[name], ...results] : results;
    spec.show(results);
  } catch (e) {
    showError(e.message);
  } finally {
    render();
    setBusy(-1);
  }
}

// ---- state in the URL ----------------------------------------------------------------------------

function writeHash(name, spec, extra) {
  const params = new URLSearchParams({ action: name });
  for (const [key, value] of Object.entries(extra)) params.set(key, String(value));
  for (const [key, id] of Object.entries({ ...spec.inputs, ...COMMON })) {
    if ($(id).value !== '') params.set(key, $(id).value);
  }
  history.replaceState(null, '', `#${params}`);
}

async function applyHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  const name = params.get('action');
  if (!Object.hasOwn(ACTIONS, name)) return;
  for (const [key, id] of Object.entries({ ...COMMON, ...ACTIONS[name].inputs })) {
    if (params.has(key)) $(id).value = params.get(key);
    if (key === 'tune') fillForms(); // the form select holds the tune's forms: fill it before choosing one
  }
  updateStrategyUI();
  showLayout();
  await perform(name, name === 'decode' ? { x: params.get('x'), y: params.get('y') } : {});
}

// ---- panel ---------------------------------------------------------------------------------------

function setBusy(delta) {
  state.busy = Math.max(0, state.busy + delta);
  $('busy').hidden = state.busy === 0;
  document.body.dataset.busy = state.busy ? '1' : '0';
}

function showError(message) {
  $('error').textContent = message || 'something went wrong';
  $('error').hidden = false;
}

function clearError() {
  $('error').textContent = '';
  $('error').hidden = true;
}

function listItem(item, meta = '') {
  const li = document.createElement('li');
  li.className = 'sentence';
  li.textContent = item.text;
  if (meta) li.dataset.meta = meta; // shown by CSS after the sentence, so textContent stays the sentence
  li.addEventListener('click', () => select(item));
  return li;
}

function fillList(id, items, meta = () => '') {
  $(id).replaceChildren(...items.map((item) => listItem(item, meta(item))));
}

function select(item) {
  state.selected = item;
  $('selected-text').textContent = item.text;
  $('selected-text').classList.remove('placeholder');
  for (const [button] of USES) $(button).disabled = false;
  scheduleRender();
}

function useSelected(id) {
  if (!state.selected) return;
  $(id).value = state.selected.text;
  $(id).focus();
}

function option(value, label) {
  const o = document.createElement('option');
  o.value = value;
  o.textContent = label;
  return o;
}

function updateStrategyUI() {
  const kind = $('strategy').value;
  $('temperature-field').classList.toggle('dim', kind !== 'sample');
  $('top-p-field').classList.toggle('dim', kind !== 'sample');
  $('beam-field').classList.toggle('dim', kind !== 'beam');
}

// ---- loading -------------------------------------------------------------------------------------

async function loadSchema() {
  const { components } = await api('/openapi.json');
  for (const [id, [schema, property]] of Object.entries(FROM_SCHEMA)) {
    const { default: value, minimum, maximum } = components.schemas[schema].properties[property];
    if (value !== undefined) $(id).value = value;
    if (minimum !== undefined) $(id).min = minimum;
    if (maximum !== undefined) $(id).max = maximum;
  }
}

async function loadHealth() {
  try {
    const h = await api('/api/health');
    const source = h.map_source === 'prior' ? 'sentences decoded from the prior' : 'corpus sentences';
    $('status').textContent = `model ${h.model} · ${h.latent_dim}-d latent · map: ${h.map_points} ${source}`;
  } catch (e) {
    $('status').textContent = 'server not reachable';
    throw e;
  }
}

// The map; while it is being built, its progress, asked again until the map is there
async function loadMap() {
  const view = await call('/api/map');
  if (view.status === 'building') {
    showProgress(view);
    setTimeout(() => loadMap().catch((e) => showError(e.message)), POLL_MS);
    return;
  }
  $('map-progress').hidden = true;
  if (view.status === 'failed') throw new Error(`the map could not be built: ${view.error}`);
  state.points = view.points;
  state.kept = view.kept;
  $('axis-x').textContent = axisLabel(1, view.explained[0]);
  $('axis-y').textContent = axisLabel(2, view.explained[1]);
  const tunes = view.points.some((p) => p.tune);
  $('colour-tune').hidden = !tunes;
  $('colour').value = tunes ? 'tune' : 'length';
  drawPoints();
  showLayout();
}

function showProgress({ stage, done, total }) {
  const how = { encoding: ' encoded', decoding: ' decoded from the prior' }[stage] ?? '';
  $('map-progress-text').textContent = stage === 'laying out'
    ? `laying out the map's ${total} sentences by their neighbours in z…`
    : `building the map: ${done} of ${total} sentences${how}…`;
  $('map-progress-bar').max = Math.max(total, 1);
  $('map-progress-bar').value = stage === 'laying out' ? total : done;
  $('map-progress').hidden = false;
}

async function loadTunes() {
  state.tunes = (await api('/api/tunes')).tunes; // none for a model without tunes: the section stays hidden
  $('tune-section').hidden = state.tunes.length === 0;
  $('tune').replaceChildren(option('', '— no tune —'), ...state.tunes.map((t) => option(t.name, `${t.name} (${t.count})`)));
  fillForms();
}

const percent = (share) => `${Math.round(share * 100)}%`; // share: 0..1
const axisLabel = (i, share) => `PC${i} (${percent(share)} of variance)`;

function fillForms() {
  const tune = state.tunes.find((t) => t.name === $('tune').value);
  $('form').replaceChildren(option('', 'drawn by frequency'),
    ...(tune ? tune.forms : []).map((f) => option(f.form, `${f.form} (${f.count})`)));
}

// ---- the map -------------------------------------------------------------------------------------

const f1 = (v) => v.toFixed(1);
const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));

function circlePath(r) {
  return `M${-r},0a${r},${r} 0 1,0 ${2 * r},0a${r},${r} 0 1,0 ${-2 * r},0Z`;
}

function short(text, n = 12) {
  const chars = Array.from(text);
  return chars.length > n ? `${chars.slice(0, n).join('')}…` : chars.join('');
}

function svg(tag, attrs = {}, text = null) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== null) el.textContent = text;
  return el;
}

function toScreen(x, y) {
  const { cx, cy, scale } = state.view;
  return [state.size.w / 2 + (x - cx) * scale, state.size.h / 2 - (y - cy) * scale];
}

function toData(sx, sy) {
  const { cx, cy, scale } = state.view;
  return [cx + (sx - state.size.w / 2) / scale, cy - (sy - state.size.h / 2) / scale];
}

function measure() {
  const r = $('map').getBoundingClientRect();
  state.size = { w: r.width || 800, h: r.height || 600 };
}

// Where an item falls on the layout shown, [x, y], or null: a result has no place while the map is being built,
// and a neighbour in a list none at all
function placeOf(item) {
  if (state.layout === 'axes') return typeof item.x === 'number' ? [item.x, item.y] : null;
  return item.layout ?? null;
}

// The layout chosen, with its axis labels, its share of neighbours kept and its hint, fitted to the view
function showLayout() {
  state.layout = $('layout').value;
  $('axis-x').hidden = $('axis-y').hidden = state.layout !== 'axes';
  $('hint').textContent = HINTS[state.layout];
  const kept = state.kept;
  $('kept').textContent = !kept ? '' : state.layout === 'axes'
    ? `neighbours in z kept on screen: ${percent(kept.axes)} (by neighbours: ${percent(kept.neighbours)})`
    : `neighbours in z kept on screen: ${percent(kept.neighbours)} (on the principal axes: ${percent(kept.axes)})`;
  fitView();
}

function colourPoints() {
  const by = $('colour').value;
  $('word-field').hidden = by !== 'word';
  const { fills, legend } = colouring(state.points, by, $('word').value);
  const circles = $('points').children;
  fills.forEach((fill, i) => {
    if (fill) circles[i].style.setProperty('--fill', fill);
    else circles[i].style.removeProperty('--fill');
  });
  $('colour-legend').replaceChildren(...legend.map(({ label, colour }) => {
    const swatch = document.createElement('span');
    swatch.className = 'swatch';
    swatch.style.background = colour;
    const li = document.createElement('li');
    li.append(swatch, label);
    return li;
  }));
}

function fitView() {
  measure();
  const placed = state.points.map(placeOf).filter(Boolean);
  let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
  for (const [x, y] of placed.length ? placed : [[-1, -1], [1, 1]]) {
    x0 = Math.min(x0, x); x1 = Math.max(x1, x);
    y0 = Math.min(y0, y); y1 = Math.max(y1, y);
  }
  const scale = Math.min(state.size.w / (x1 - x0 || 1), state.size.h / (y1 - y0 || 1)) * 0.88; // a margin all round
  state.view = { cx: (x0 + x1) / 2, cy: (y0 + y1) / 2, scale };
  render();
}

function drawPoints() {
  const frag = document.createDocumentFragment();
  state.points.forEach((p, i) => frag.append(svg('circle', { class: 'point', r: 3, 'data-i': i })));
  $('points').replaceChildren(frag);
  colourPoints();
}

function scheduleRender() {
  if (!state.frame) state.frame = requestAnimationFrame(render);
}

function render() {
  if (state.frame) cancelAnimationFrame(state.frame);
  state.frame = 0;
  renderPoints();
  renderOverlay();
}

function renderPoints() {
  const circles = $('points').children;
  for (let i = 0; i < circles.length; i++) {
    const [sx, sy] = toScreen(...placeOf(state.points[i]));
    circles[i].setAttribute('cx', f1(sx));
    circles[i].setAttribute('cy', f1(sy));
  }
}

function renderOverlay() {
  const nodes = [];
  const path = state.layers.interpolate.map(placeOf).filter(Boolean);
  if (path.length > 1) {
    const points = path.map((at) => toScreen(...at).map(f1).join(',')).join(' ');
    nodes.push(svg('polyline', { class: 'path-line', points }));
  }
  for (const [name, spec] of Object.entries(ACTIONS)) {
    state.layers[name].forEach((r, i) => nodes.push(...marker(spec.marker, r, spec.label(r, i))));
  }
  const at = state.selected && placeOf(state.selected);
  if (at) {
    const [sx, sy] = toScreen(...at);
    nodes.push(svg('circle', { class: 'selected-ring', cx: f1(sx), cy: f1(sy), r: 11 }));
  }
  $('overlay').replaceChildren(...nodes);
}

// A result's marker, in a list of one, or none while it has no place on the layout shown
function marker(kind, p, label) {
  const at = placeOf(p);
  if (!at) return [];
  const [sx, sy] = toScreen(...at);
  const g = svg('g', { class: `marker ${kind}`, transform: `translate(${f1(sx)},${f1(sy)})`, 'data-text': p.text });
  g.append(svg('title', {}, p.text), svg('path', { d: SHAPES[kind] }));
  if (label) g.append(svg('text', kind === 'step' ? { class: 'step-number', y: 3.5 } : { class: 'label', x: 10, y: 4 }, label));
  state.items.set(g, p);
  return [g];
}

// ---- map interaction -----------------------------------------------------------------------------

function localXY(e) {
  const r = $('map').getBoundingClientRect();
  return [e.clientX - r.left, e.clientY - r.top];
}

function hitOf(target) {
  const el = target && target.closest ? target.closest('.point, .marker') : null;
  if (!el) return null;
  return el.classList.contains('point') ? state.points[Number(el.dataset.i)] : state.items.get(el) || null;
}

function onWheel(e) {
  e.preventDefault();
  const [sx, sy] = localXY(e);
  const delta = e.deltaY * (e.deltaMode === 1 ? 16 : e.deltaMode === 2 ? 400 : 1);
  const [x, y] = toData(sx, sy);
  const v = state.view;
  v.scale = clamp(v.scale * Math.exp(-delta * 0.0015), 1e-3, 1e7);
  v.cx = x - (sx - state.size.w / 2) / v.scale; // keep the point under the cursor in place
  v.cy = y + (sy - state.size.h / 2) / v.scale;
  hideTooltip();
  scheduleRender();
}

function onDown(e) {
  if (e.button !== 0) return;
  const [x, y] = localXY(e);
  state.drag = { x, y, lastX: x, lastY: y, moved: false, target: e.target };
  $('map').setPointerCapture(e.pointerId);
}

function onMove(e) {
  const [x, y] = localXY(e);
  const d = state.drag;
  if (!d) return showTooltip(e.target, x, y);
  if (!d.moved && Math.hypot(x - d.x, y - d.y) < 4) return;
  d.moved = true;
  hideTooltip();
  $('map').classList.add('dragging');
  state.view.cx -= (x - d.lastX) / state.view.scale;
  state.view.cy += (y - d.lastY) / state.view.scale;
  d.lastX = x;
  d.lastY = y;
  scheduleRender();
}

function onUp() {
  const d = state.drag;
  state.drag = null;
  $('map').classList.remove('dragging');
  if (!d || d.moved) return;
  const hit = hitOf(d.target);
  if (hit) return select(hit);
  if (state.layout !== 'axes') return; // a point of the neighbour layout has no code to decode
  const [x, y] = toData(d.x, d.y);
  perform('decode', { x: Number(x.toFixed(4)), y: Number(y.toFixed(4)) });
}

function showTooltip(target, x, y) {
  const hit = hitOf(target);
  const tip = $('tooltip');
  if (!hit) return hideTooltip();
  tip.textContent = hit.text;
  tip.hidden = false;
  const top = y + 16 + tip.offsetHeight > state.size.h ? y - tip.offsetHeight - 10 : y + 16;
  tip.style.left = `${clamp(x + 14, 4, Math.max(4, state.size.w - tip.offsetWidth - 4))}px`;
  tip.style.top = `${Math.max(4, top)}px`;
}

function hideTooltip() {
  $('tooltip').hidden = true;
}

// ---- start ---------------------------------------------------------------------------------------

function bindControls() {
  for (const [name, spec] of Object.entries(ACTIONS)) {
    if (spec.form) $(spec.form).addEventListener('submit', (e) => { e.preventDefault(); perform(name); });
  }
  for (const [button, input] of USES) $(button).addEventListener('click', () => useSelected(input));
  $('tune').addEventListener('change', fillForms);
  $('strategy').addEventListener('change', updateStrategyUI);
  $('layout').addEventListener('change', showLayout);
  $('colour').addEventListener('change', colourPoints);
  $('word').addEventListener('input', colourPoints);
  $('clear-decoded').addEventListener('click', () => {
    state.layers.decode = [];
    $('decoded-list').replaceChildren();
    render();
  });
  $('error').addEventListener('click', clearError);
  $('reset-view').addEventListener('click', fitView);
  window.addEventListener('hashchange', applyHash);
}

function bindMap() {
  const map = $('map');
  map.addEventListener('wheel', onWheel, { passive: false });
  map.addEventListener('pointerdown', onDown);
  map.addEventListener('pointermove', onMove);
  map.addEventListener('pointerup', onUp);
  map.addEventListener('pointercancel', () => { state.drag = null; map.classList.remove('dragging'); });
  map.addEventListener('pointerleave', hideTooltip);
  new ResizeObserver(() => { measure(); scheduleRender(); }).observe(map);
}

async function init() {
  setBusy(1);
  try {
    bindControls();
    bindMap();
    updateStrategyUI();
    showLayout();
    await Promise.all([loadSchema(), loadHealth(), loadMap(), loadTunes()]);
    await applyHash();
  } catch (e) {
    showError(e.message);
  } finally {
    setBusy(-1);
  }
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
else init();
