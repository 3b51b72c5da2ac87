'use strict';
// vaegen serve: a map of the latent space and the actions on it. No framework: one `state` object,
// small functions, everything bound from here (the page's CSP allows no inline script or style).

const $ = (id) => document.getElementById(id);
const SVG_NS = 'http://www.w3.org/2000/svg';

const state = {
  points: [], // the map's points {x, y, text}, in the order of the circles in #points
  view: { cx: 0, cy: 0, scale: 100 }, // map centre (data units) and screen pixels per data unit
  size: { w: 800, h: 600 }, // the map's size in screen pixels
  layers: { path: [], near: [], sample: [], ci: [], encoded: [], decoded: [] }, // results drawn on the map
  items: new WeakMap(), // marker element -> the result it shows
  selected: null, // {text, x?, y?}
  tunes: [], // [{name, count?, forms: [{form, count?}]}]
  busy: 0, // requests and actions in flight
  drag: null, // {x, y, lastX, lastY, moved, target} while the mouse is down on the map
  frame: 0, // pending animation frame
};

// Each action: its inputs (hash key -> element id) and what it does. COMMON inputs go with every action.
const COMMON = { strategy: 'strategy', temperature: 'temperature', top_p: 'top-p', beam: 'beam', tune: 'tune', form: 'form' };
const ACTIONS = {
  encode: { inputs: { text: 'text' }, run: runEncode },
  interpolate: { inputs: { a: 'a', b: 'b', steps: 'steps', path: 'path' }, run: runInterpolate },
  near: { inputs: { text: 'near-text', radius: 'radius', n: 'near-n' }, run: runNear },
  sample: { inputs: { n: 'sample-n', seed: 'seed' }, run: runSample },
  ci: { inputs: {}, run: runCi },
  decode: { inputs: {}, run: runDecode }, // takes {x, y}: a click on the map
};
const USES = { 'use-a': 'a', 'use-b': 'b', 'use-near': 'near-text', 'use-text': 'text' }; // "use the selected sentence" buttons
const FORMS = { 'encode-form': 'encode', 'interpolate-form': 'interpolate', 'near-form': 'near', 'sample-form': 'sample', 'tune-section': 'ci' };

const SHAPES = {
  decoded: 'M0,-7L7,0L0,7L-7,0Z',
  encoded: 'M-6,-6H6V6H-6Z',
  step: circlePath(8),
  near: circlePath(4.5),
  sample: 'M0,-6.5L6,4H-6Z',
  ci: 'M0,-8L2.4,-2.5L8,-2.5L3.5,1L5.2,7L0,3.5L-5.2,7L-3.5,1L-8,-2.5L-2.4,-2.5Z',
};
const LABELLED = new Set(['decoded', 'encoded', 'ci']);

// ---- the server ----------------------------------------------------------------------------------

async function api(path, body) {
  const init = body === undefined ? {} : {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  };
  setBusy(1);
  try {
    const res = await fetch(path, init).catch((e) => { throw new Error(`cannot reach the server (${e.message})`); });
    const data = await res.json().catch(() => null);
    if (!res.ok) throw new Error(detailOf(data) || `${path}: ${res.status} ${res.statusText}`.trim());
    if (data === null) throw new Error(`${path}: the server sent no JSON`);
    return data;
  } finally {
    setBusy(-1);
  }
}

function detailOf(data) {
  const detail = data && data.detail;
  if (typeof detail === 'string') return detail;
  if (Array.isArray(detail)) return detail.map((e) => (e && e.msg) || JSON.stringify(e)).join('; ');
  if (detail) return detail.msg || JSON.stringify(detail);
  return '';
}

function results(data) {
  if (!data || !Array.isArray(data.results)) throw new Error('the server sent no results');
  return data.results;
}

function first(data) {
  const list = results(data);
  if (!list.length) throw new Error('the server sent no result');
  return list[0];
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

function decoding() {
  return {
    strategy: $('strategy').value,
    temperature: readNumber('temperature', 'temperature'),
    top_p: readNumber('top-p', 'top-p'),
    beam: readNumber('beam', 'beam width', true),
  };
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
    await spec.run(extra);
  } catch (e) {
    showError(e instanceof Error ? e.message : String(e));
  } finally {
    render();
    setBusy(-1);
  }
}

async function runDecode({ x, y }) {
  const point = [x, y].map((v) => (v === null || v === undefined || v === '' ? NaN : Number(v)));
  if (!point.every(Number.isFinite)) throw new Error('decode: the point needs numeric x and y');
  const body = { points: [point], decoding: decoding(), tune: tuneChoice(), form: formChoice() };
  const r = { x: point[0], y: point[1], ...first(await api('/api/decode', body)) };
  state.layers.decoded.push(r);
  $('decoded-list').append(listItem(r));
  select(r);
}

async function runEncode() {
  const text = readText('text', 'sentence');
  const r = first(await api('/api/reconstruct', { texts: [text], decoding: decoding(), tune: tuneChoice() }));
  state.layers.encoded = [r];
  $('reconstruction').textContent = r.reconstruction ?? '';
  fillList('neighbours', r.neighbours || [], (n) => (n.distance == null ? '' : `distance ${Number(n.distance).toFixed(3)}`));
  select({ ...r, text: r.text || text });
}

async function runInterpolate() {
  const body = {
    a: readText('a', 'A'), b: readText('b', 'B'), steps: readNumber('steps', 'steps', true), path: $('path').value,
    decoding: decoding(), tune: tuneChoice(), form: formChoice(),
  };
  state.layers.path = results(await api('/api/interpolate', body));
  fillList('path-steps', state.layers.path);
}

async function runNear() {
  const body = {
    text: readText('near-text', 'around'), n: readNumber('near-n', 'n', true), radius: readNumber('radius', 'radius'),
    decoding: decoding(), tune: tuneChoice(),
  };
  state.layers.near = results(await api('/api/near', body));
  fillList('near-list', state.layers.near, (r) => (r.distance == null ? '' : `distance ${Number(r.distance).toFixed(3)}`));
}

async function runSample() {
  const seed = $('seed').value.trim() === '' ? null : readNumber('seed', 'seed', true);
  const body = { n: readNumber('sample-n', 'n', true), decoding: decoding(), tune: tuneChoice(), form: formChoice(), seed };
  state.layers.sample = results(await api('/api/sample', body));
  fillList('sample-list', state.layers.sample, (r) => [r.tune, r.form].filter(Boolean).join(' · '));
}

async function runCi() {
  if (!state.tunes.length) throw new Error('this model writes no ci by tune');
  const r = first(await api('/api/sample', { n: 1, tune: tuneChoice(), form: formChoice(), decoding: decoding() }));
  state.layers.ci = [r];
  $('ci-text').textContent = r.text ?? '';
  $('ci-form').textContent = r.form ?? '';
  $('ci-form').dataset.tune = r.tune ?? '';
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
  if (!name || !Object.prototype.hasOwnProperty.call(ACTIONS, name)) return;
  for (const [key, id] of Object.entries({ ...COMMON, ...ACTIONS[name].inputs })) {
    if (params.has(key)) $(id).value = params.get(key);
    if (key === 'tune') fillForms(); // the form select holds the tune's forms: fill it before choosing one
  }
  updateDecodingUI();
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
  li.textContent = item.text ?? '';
  if (meta) li.dataset.meta = meta; // shown by CSS after the sentence, so textContent stays the sentence
  li.addEventListener('click', () => select(item));
  return li;
}

function fillList(id, items, meta = () => '') {
  $(id).replaceChildren(...items.map((item) => listItem(item, meta(item))));
}

function select(item) {
  state.selected = item;
  $('selected-text').textContent = item.text ?? '';
  $('selected-text').classList.remove('placeholder');
  for (const id of Object.keys(USES)) $(id).disabled = false;
  scheduleRender();
}

function useSelected(id) {
  if (!state.selected) return;
  $(id).value = state.selected.text ?? '';
  $(id).focus();
}

function option(value, label) {
  const o = document.createElement('option');
  o.value = value;
  o.textContent = label;
  return o;
}

function updateDecodingUI() {
  const strategy = $('strategy').value;
  $('temperature-field').classList.toggle('dim', strategy !== 'sample');
  $('top-p-field').classList.toggle('dim', strategy !== 'sample');
  $('beam-field').classList.toggle('dim', strategy !== 'beam');
}

// ---- loading -------------------------------------------------------------------------------------

async function loadHealth() {
  try {
    const h = await api('/api/health');
    const source = h.map_source === 'prior' ? 'sentences decoded from the prior' : 'corpus sentences';
    $('status').textContent = [
      `model ${h.model ?? '?'}`, h.latent_dim && `${h.latent_dim}-d latent`, h.map_points && `map: ${h.map_points} ${source}`,
    ].filter(Boolean).join(' · ');
  } catch (e) {
    $('status').textContent = 'server not reachable';
    showError(e.message);
  }
}

async function loadMap() {
  try {
    const data = await api('/api/map');
    state.points = (data.points || []).filter(hasPos);
    const [e1, e2] = data.explained || [];
    $('axis-x').textContent = axisLabel(1, e1);
    $('axis-y').textContent = axisLabel(2, e2);
  } catch (e) {
    showError(`map: ${e.message}`);
  }
  drawPoints();
  fitView();
}

async function loadTunes() {
  let data = [];
  try {
    data = await api('/api/tunes');
  } catch {
    // a model without tunes may have no /api/tunes: the section stays hidden
  }
  state.tunes = normaliseTunes(data);
  $('tune-section').hidden = state.tunes.length === 0;
  $('tune').replaceChildren(option('', '— no tune —'),
    ...state.tunes.map((t) => option(t.name, t.count ? `${t.name} (${t.count})` : t.name)));
  fillForms();
}

// Accepts [{name, count, forms: [[form, count]] | [{form, count}] | [form]}], ["name"], {"tunes": [...]} or {name: forms}.
function normaliseTunes(data) {
  let list = [];
  if (Array.isArray(data)) list = data;
  else if (data && Array.isArray(data.tunes)) list = data.tunes;
  else if (data && typeof data === 'object') list = Object.entries(data).map(([name, forms]) => ({ name, forms }));
  return list
    .map((t) => (typeof t === 'string' ? { name: t, forms: [] }
      : { name: String(t.name ?? t.tune ?? ''), count: t.count, forms: (Array.isArray(t.forms) ? t.forms : []).map(normaliseForm) }))
    .filter((t) => t.name);
}

function normaliseForm(f) {
  if (typeof f === 'string') return { form: f };
  if (Array.isArray(f)) return { form: String(f[0]), count: f[1] };
  return { form: String(f.form ?? ''), count: f.count };
}

function fillForms() {
  const tune = state.tunes.find((t) => t.name === $('tune').value);
  $('form').replaceChildren(option('', 'drawn by frequency'),
    ...(tune ? tune.forms : []).map((f) => option(f.form, f.count ? `${f.form} (${f.count})` : f.form)));
}

function axisLabel(i, share) {
  const v = Number(share);
  if (share == null || !Number.isFinite(v)) return `PC${i}`;
  return `PC${i} (${Math.round(v <= 1 ? v * 100 : v)}% of variance)`;
}

// ---- the map -------------------------------------------------------------------------------------

const hasPos = (p) => p && Number.isFinite(p.x) && Number.isFinite(p.y);
const f1 = (v) => v.toFixed(1);
const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));

function circlePath(r) {
  return `M${-r},0a${r},${r} 0 1,0 ${2 * r},0a${r},${r} 0 1,0 ${-2 * r},0Z`;
}

function short(text, n = 12) {
  const chars = Array.from(text ?? '');
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

function fitView() {
  measure();
  const pts = state.points.length ? state.points : [{ x: -1, y: -1 }, { x: 1, y: 1 }];
  let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
  for (const p of pts) {
    x0 = Math.min(x0, p.x); x1 = Math.max(x1, p.x);
    y0 = Math.min(y0, p.y); y1 = Math.max(y1, p.y);
  }
  const scale = Math.min(state.size.w / (x1 - x0 || 1), state.size.h / (y1 - y0 || 1)) * 0.88; // a margin all round
  state.view = { cx: (x0 + x1) / 2, cy: (y0 + y1) / 2, scale };
  render();
}

function drawPoints() {
  const frag = document.createDocumentFragment();
  state.points.forEach((p, i) => frag.append(svg('circle', { class: 'point', r: 3, 'data-i': i })));
  $('points').replaceChildren(frag);
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
    const [sx, sy] = toScreen(state.points[i].x, state.points[i].y);
    circles[i].setAttribute('cx', f1(sx));
    circles[i].setAttribute('cy', f1(sy));
  }
}

function renderOverlay() {
  const nodes = [];
  const line = state.layers.path.filter(hasPos);
  if (line.length > 1) {
    nodes.push(svg('polyline', { class: 'path-line', points: line.map((p) => toScreen(p.x, p.y).map(f1).join(',')).join(' ') }));
  }
  for (const kind of ['near', 'sample', 'ci', 'encoded', 'decoded']) {
    for (const p of state.layers[kind].filter(hasPos)) nodes.push(marker(kind, p, LABELLED.has(kind) ? short(p.text) : ''));
  }
  state.layers.path.forEach((p, i) => hasPos(p) && nodes.push(marker('step', p, String(i + 1))));
  if (hasPos(state.selected)) {
    const [sx, sy] = toScreen(state.selected.x, state.selected.y);
    nodes.push(svg('circle', { class: 'selected-ring', cx: f1(sx), cy: f1(sy), r: 11 }));
  }
  $('overlay').replaceChildren(...nodes);
}

function marker(kind, p, label) {
  const [sx, sy] = toScreen(p.x, p.y);
  const g = svg('g', { class: `marker ${kind}`, transform: `translate(${f1(sx)},${f1(sy)})`, 'data-text': p.text ?? '' });
  g.append(svg('title', {}, p.text ?? ''), svg('path', { d: SHAPES[kind] }));
  if (label) g.append(svg('text', kind === 'step' ? { class: 'step-number', y: 3.5 } : { class: 'label', x: 10, y: 4 }, label));
  state.items.set(g, p);
  return g;
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
  const [x, y] = toData(d.x, d.y);
  perform('decode', { x: Number(x.toFixed(4)), y: Number(y.toFixed(4)) });
}

function showTooltip(target, x, y) {
  const hit = hitOf(target);
  const tip = $('tooltip');
  if (!hit) return hideTooltip();
  tip.textContent = hit.text ?? '';
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
  for (const [id, name] of Object.entries(FORMS)) {
    $(id).addEventListener('submit', (e) => { e.preventDefault(); perform(name); });
  }
  $('tune').addEventListener('change', fillForms);
  $('strategy').addEventListener('change', updateDecodingUI);
  for (const [button, input] of Object.entries(USES)) $(button).addEventListener('click', () => useSelected(input));
  $('clear-decoded').addEventListener('click', () => {
    state.layers.decoded = [];
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
    updateDecodingUI();
    await Promise.all([loadHealth(), loadMap(), loadTunes()]);
    await applyHash();
  } catch (e) {
    showError(e instanceof Error ? e.message : String(e));
  } finally {
    setBusy(-1);
  }
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
else init();
