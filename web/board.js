// The planning board (/rooms/{room}): the typed model and events of `/live/{room}` (model.js),
// commands over the same socket, titles and descriptions co-edited through Yjs on `/sync`
// (y-websocket, from the import map), awareness (who is editing what), check-ins with
// @mention completion, threaded comments, alignment across the org's rooms and each KR's
// history as a small chart. A caller without `may_write` (GET /api/session) gets no editing
// control at all. Every piece of user text reaches the page through textContent (el() below),
// never as HTML; every interface string through t().
//
// data-testid, for the browser tests (tests/interop/browser/board*.test.mjs):
//   objective        <article> per objective, data-id = its id
//   title            an objective's title <input> (data-bound="1" once bound to its Y.Text)
//   description      an objective's description <textarea> (data-bound likewise)
//   kr               <li> per key result, data-id = its id
//   kr-title         a KR's title <input> (data-bound likewise)
//   editing          per item: who else is editing it (awareness)
//   add-objective    the "+ objective" button; objective-form its form
//   add-kr           an objective's "+ key result" button; kr-form its form
//   move-up / move-down / archive   per objective and KR
//   settings         an objective's / KR's "edit" <details>; save in it: settings-save
//   checkin          a KR's check-in <details>; checkin-form, checkin-comment, checkin-result
//   confidence       the 0–10 slider of a check-in form
//   mention-list     the @mention completion listbox; mention-option its options
//   comments         the comments <details> of an objective or KR; comment (data-id) each one,
//                    reply its reply button, comment-form / comment-text / comment-result
//   parents / children   an objective's alignment lists; align its "align to…" button, unalign a parent's ×
//   align-dialog     the dialog listing rooms and objectives; align-pick a parent's button
//   history          a KR's history <svg>
//   result           the ack/error line next to a control that sent a command
//   present          who is here; conn the connection status; board-result the toolbar's line

import { $, el, liveUrl } from './dom.js';
import { LiveSocket } from './live.js';
import {
  alignedChildren,
  applyMessage,
  boardView,
  commentCount,
  commentThreads,
  emptyModel,
  feedView,
  mentionAt,
  mentionMatches,
  mentionsIn,
  presentUsers,
  reorderIndex,
  resumeSince,
  roomParts,
  roomPeople,
  targetTitle,
  textEdit,
  weeklyHistory,
} from './model.js';
import {
  applyDocumentLang,
  bindLangSwitch,
  fmtDate,
  fmtNumber,
  fmtRelative,
  getLang,
  has,
  onLangChange,
  t,
} from './i18n.js';
import './board-strings.js';

const params = new URLSearchParams(location.search);
/// `/rooms/{room}`, or the old `/web/board.html?room=`.
const room = (() => {
  const m = /^\/rooms\/([^/]+)\/?$/.exec(location.pathname);
  if (m) {
    try {
      return decodeURIComponent(m[1]);
    } catch {
      return '';
    }
  }
  return params.get('room') ?? '';
})();
/// On an open server the acting user is `?user=`, passed on to /live, /sync and the API.
const userParam = params.get('user') ?? '';

/// The board is for planning: its feed shows the latest few (the room screen has the long one).
const FEED_SHOWN = 12;
const ROOMS_REFRESH_MS = 60_000;
const OTHER_ROOMS_MAX = 30;
const METRIC_KINDS = ['percent', 'increase', 'decrease', 'stay_above', 'stay_below', 'milestone'];
const VISIBILITIES = ['public', 'team', 'private'];
const COMMITMENTS = ['committed', 'aspirational'];

let model = emptyModel();
let me = userParam;
let mayWrite = false;
/// Archiving is an admin's (an editor's archive is refused): only admins get the button.
let mayArchive = false;
/// The /live socket (live.js), once started.
let live = null;
let commandCounter = 0;
/// command id → {result: element, onAck, onError}
const pending = new Map();
/// An objective or KR created here: focus its title once it shows.
let focusWhenShown = null;

// Yjs (editors only)
let Y = null;
let doc = null;
let provider = null;
/// The binding of the focused text control, whose caret a remote change must keep.
let activeBinding = null;

// Alignment across rooms: room id → its typed model (GET /api/rooms/{room}).
const otherRooms = new Map();
let orgRoomIds = [];

// ---- DOM helpers ----



const SVG_NS = 'http://www.w3.org/2000/svg';
function svg(tag, attrs = {}, ...children) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null) e.setAttribute(k, String(v));
  for (const c of children) if (c) e.append(c);
  return e;
}

/// Replaces `container`'s children with `build()` only when `sig` differs from the last time,
/// so a list that did not change keeps its focus.
function patch(container, sig, build) {
  if (container.dataset.sig === sig) return;
  container.dataset.sig = sig;
  container.replaceChildren(...[build()].flat(Infinity).filter(Boolean));
}

let uid = 0;
const nextId = (p) => `${p}-${++uid}`;

/// A labelled form control: `<label>text <control></label>`.
function field(labelKey, control, cls = '') {
  return el('label', { class: cls }, el('span', { text: t(labelKey) }), control);
}

function select(name, values, labelPrefix, value) {
  const s = el('select', { name });
  for (const v of values) s.append(el('option', { value: v, text: t(`${labelPrefix}.${v}`) }));
  if (value != null) s.value = value;
  return s;
}

function resultLine() {
  return el('p', { class: 'result', role: 'status', 'aria-live': 'polite', 'data-testid': 'result' });
}

function showResult(r, kind, text, scroll = false) {
  if (!r) return;
  r.className = `result ${kind}`;
  r.textContent = text;
  if (scroll) r.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
}

// ---- formatting ----

const pct = (n) => `${fmtNumber(Math.round(n ?? 0), { maximumFractionDigits: 0 })}%`;
const num = (n) => fmtNumber(n);

/// "40 → 100 users", "62%", "3 / 5 milestones", …
function measure(kr) {
  const m = kr.metric ?? {};
  const unit = m.unit ? ` ${m.unit}` : '';
  switch (m.kind) {
    case 'percent':
      return pct(kr.current ?? 0);
    case 'increase':
    case 'decrease':
      return t('measure.toward', { current: num(kr.current), target: num(m.target), unit });
    case 'stay_above':
      if (kr.current == null) return t('measure.above.none', { threshold: num(m.threshold), unit });
      return t('measure.above', { current: num(kr.current), threshold: num(m.threshold), unit });
    case 'stay_below':
      if (kr.current == null) return t('measure.below.none', { threshold: num(m.threshold), unit });
      return t('measure.below', { current: num(kr.current), threshold: num(m.threshold), unit });
    case 'milestone': {
      const ms = m.milestones ?? [];
      return t('measure.milestones', { done: num(ms.filter((x) => x.done).length), total: num(ms.length) });
    }
    default:
      return num(kr.current);
  }
}

function unitOf(krId) {
  const kr = model.keyResults.get(krId);
  const kind = kr?.metric?.kind;
  if (kind === 'percent' || kind === 'milestone') return '%';
  return kr?.metric?.unit ? ` ${kr.metric.unit}` : '';
}

function progressBar(progress, status, label) {
  const fill = el('div', { class: `fill ${status ?? 'none'}` });
  fill.style.width = `${Math.max(0, Math.min(100, progress ?? 0))}%`;
  return el('div', {
    class: 'bar',
    role: 'progressbar',
    'aria-label': label,
    'aria-valuemin': 0,
    'aria-valuemax': 100,
    'aria-valuenow': Math.round(progress ?? 0),
  }, fill);
}

function badges(item) {
  return el('span', { class: 'badges' },
    item.overdue && el('span', { class: 'badge overdue', text: t('overdue') }),
    item.status && el('span', { class: `badge ${item.status}`, text: t(`status.${item.status}`) }));
}

/// The lint advice about one objective or KR, in the page's language (the server's English
/// message when the code is unknown here).
function lintHints(kind, id) {
  const found = model.lint.filter((f) => f.target?.[kind] === id);
  return found.length
    ? el('ul', { class: 'lint', 'aria-label': t('lint') }, found.map((f) => el('li', {},
      el('span', { class: 'k', text: `${t('lint.hint')} · ` }),
      el('span', { text: has(`lint.${f.code}`) ? t(`lint.${f.code}`) : f.message }))))
    : null;
}

function api(path) {
  const u = new URL(path, location.origin);
  if (userParam) u.searchParams.set('user', userParam);
  return u.pathname + u.search;
}

async function getJson(path) {
  const r = await fetch(api(path), { credentials: 'same-origin', headers: { accept: 'application/json' } });
  if (!r.ok) throw new Error(`${r.status}`);
  return r.json();
}

// ---- commands ----

/// Sends a command on /live; its ack or error shows in `result`.
function send(command, result, { onAck, onError, scroll = false } = {}) {
  if (!live?.open) {
    showResult(result, 'error', t('result.offline'), scroll);
    onError?.();
    return false;
  }
  const id = `c${Date.now().toString(36)}-${++commandCounter}`;
  pending.set(id, { result, onAck, onError, scroll });
  showResult(result, 'sending', t('result.sending'));
  live.send({ id, ...command });
  return true;
}

function answered(msg) {
  const p = pending.get(msg.id);
  if (!p) {
    if (msg.type === 'error' && msg.id == null) showResult($('board-result'), 'error', errorText(msg));
    return;
  }
  pending.delete(msg.id);
  if (msg.type === 'ack') {
    showResult(p.result, 'ok', t('result.saved'), p.scroll);
    p.onAck?.(msg);
  } else {
    showResult(p.result, 'error', errorText(msg), p.scroll);
    p.onError?.(msg);
  }
}

function errorText(msg) {
  const code = t(`error.${msg.code}`);
  const where = msg.field ? ` (${msg.field})` : '';
  return `${code}: ${msg.message ?? ''}${where}`;
}

// ---- Yjs: co-edited titles and descriptions ----

/// Keeps an <input>/<textarea> and a Y.Text equal: a local edit becomes one delete + insert
/// in a transaction; a remote change sets the value and keeps the caret where it was in the
/// text (through relative positions taken before the change).
class TextBinding {
  constructor(input, ytext, item) {
    this.input = input;
    this.ytext = ytext;
    this.item = item;
    this.composing = false;
    this.deferred = false;
    this.caret = null;
    this.last = ytext.toString();
    input.value = this.last;
    input.readOnly = cycleClosed();
    input.dataset.bound = '1';
    this.onInput = (e) => {
      if (e.isComposing || this.composing) return;
      this.push();
    };
    this.onCompositionStart = () => {
      this.composing = true;
    };
    this.onCompositionEnd = () => {
      this.composing = false;
      this.push();
      if (this.deferred) this.pull();
    };
    this.onFocus = () => {
      activeBinding = this;
    };
    this.onBlur = () => {
      if (activeBinding === this) activeBinding = null;
    };
    this.observer = (_event, tr) => {
      if (tr.origin !== this) this.pull();
    };
    input.addEventListener('input', this.onInput);
    input.addEventListener('compositionstart', this.onCompositionStart);
    input.addEventListener('compositionend', this.onCompositionEnd);
    input.addEventListener('focus', this.onFocus);
    input.addEventListener('blur', this.onBlur);
    if (document.activeElement === input) activeBinding = this;
    ytext.observe(this.observer);
  }

  destroy() {
    this.ytext.unobserve(this.observer);
    this.input.removeEventListener('input', this.onInput);
    this.input.removeEventListener('compositionstart', this.onCompositionStart);
    this.input.removeEventListener('compositionend', this.onCompositionEnd);
    this.input.removeEventListener('focus', this.onFocus);
    this.input.removeEventListener('blur', this.onBlur);
    if (activeBinding === this) activeBinding = null;
    delete this.input.dataset.bound;
    this.input.readOnly = true;
  }

  push() {
    const value = this.input.value;
    const edit = textEdit(this.last, value);
    this.last = value;
    if (!edit) return;
    this.ytext.doc.transact(() => {
      if (edit.remove) this.ytext.delete(edit.index, edit.remove);
      if (edit.insert) this.ytext.insert(edit.index, edit.insert);
    }, this);
  }

  /// Before a remote change: where the caret is, relative to the text around it.
  saveCaret() {
    if (document.activeElement !== this.input || this.composing) {
      this.caret = null;
      return;
    }
    const { selectionStart: s, selectionEnd: e, selectionDirection: d } = this.input;
    this.caret = {
      start: Y.createRelativePositionFromTypeIndex(this.ytext, s ?? 0),
      end: Y.createRelativePositionFromTypeIndex(this.ytext, e ?? 0),
      direction: d ?? 'none',
    };
  }

  pull() {
    if (this.composing) {
      this.deferred = true;
      return;
    }
    this.deferred = false;
    const value = this.ytext.toString();
    this.last = value;
    if (value === this.input.value) return;
    const focused = document.activeElement === this.input;
    const caret = focused ? this.caret : null;
    this.input.value = value;
    if (this.input.tagName === 'TEXTAREA') autosize(this.input);
    if (caret) {
      const s = Y.createAbsolutePositionFromRelativePosition(caret.start, doc);
      const e = Y.createAbsolutePositionFromRelativePosition(caret.end, doc);
      if (s && e) this.input.setSelectionRange(s.index, e.index, caret.direction);
    }
    this.caret = null;
  }
}

async function startSync() {
  try {
    Y = await import('yjs');
    const { WebsocketProvider } = await import('y-websocket');
    doc = new Y.Doc();
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    provider = new WebsocketProvider(`${scheme}//${location.host}/sync`, room, doc, {
      params: userParam ? { user: userParam } : {},
    });
    provider.awareness.setLocalStateField('user', { id: me, name: me });
    provider.awareness.setLocalStateField('editing', null);
    provider.awareness.on('change', renderAwareness);
    doc.on('beforeTransaction', (tr) => {
      if (!tr.local && activeBinding) activeBinding.saveCaret();
    });
    doc.on('update', scheduleBind);
    provider.on('sync', scheduleBind);
    provider.on('status', ({ status }) => {
      document.body.dataset.sync = status;
    });
    addEventListener('pagehide', () => provider?.awareness.setLocalState(null));
  } catch (e) {
    console.warn('okrhub: Yjs is not available, titles are read-only', e);
    showResult($('board-result'), 'error', t('sync.unavailable'));
  }
}

let bindQueued = false;
function scheduleBind() {
  if (bindQueued) return;
  bindQueued = true;
  queueMicrotask(() => {
    bindQueued = false;
    bindAll();
  });
}

/// The Y.Text at `root`/`id`/`key`, if the doc has it.
function yText(root, id, key) {
  if (!doc) return null;
  const entry = doc.getMap(root).get(id);
  const text = entry instanceof Y.Map ? entry.get(key) : null;
  return text instanceof Y.Text ? text : null;
}

/// Binds every shown title/description control to its Y.Text (or unbinds it when the text
/// went away or was replaced).
function bindAll() {
  if (!doc) return;
  for (const card of cards.values()) {
    card.bindings.title = rebind(card.bindings.title, card.titleInput, yText('objectives', card.id, 'title'), card.id);
    card.bindings.description = rebind(card.bindings.description, card.descInput, yText('objectives', card.id, 'description'), card.id);
    for (const row of card.rows.values()) {
      row.binding = rebind(row.binding, row.titleInput, yText('key_results', row.id, 'title'), row.id);
    }
  }
}

function rebind(binding, input, ytext, item) {
  if (!input) return null;
  if (binding && binding.ytext === ytext) return binding;
  binding?.destroy();
  return ytext ? new TextBinding(input, ytext, item) : null;
}

// ---- awareness: who is editing what ----

function setEditing(itemId) {
  if (!provider) return;
  const now = provider.awareness.getLocalState()?.editing ?? null;
  if (now !== itemId) provider.awareness.setLocalStateField('editing', itemId);
}

/// Names of the other people editing each item: item id → [name].
function editors() {
  const out = new Map();
  if (!provider) return out;
  for (const [client, state] of provider.awareness.getStates()) {
    if (client === doc.clientID || !state?.editing) continue;
    const name = state.user?.name ?? state.user?.id ?? '?';
    const list = out.get(state.editing) ?? [];
    if (!list.includes(name)) list.push(name);
    out.set(state.editing, list);
  }
  return out;
}

function awarenessNames() {
  if (!provider) return [];
  return [...provider.awareness.getStates().values()]
    .map((s) => s?.user?.name ?? s?.user?.id)
    .filter(Boolean);
}

function renderAwareness() {
  const who = editors();
  const mark = (marker, holder, id) => {
    const names = who.get(id) ?? [];
    marker.textContent = names.length ? t('editing', { names: names.join(', ') }) : '';
    marker.hidden = !names.length;
    holder.classList.toggle('being-edited', names.length > 0);
  };
  for (const card of cards.values()) {
    mark(card.marker, card.el, card.id);
    for (const row of card.rows.values()) mark(row.marker, row.el, row.id);
  }
  renderPresent();
}

/// Focus anywhere inside an item says "editing it" to the others.
function trackEditing(holder, id) {
  holder.addEventListener('focusin', (e) => {
    e.stopPropagation();
    setEditing(id);
  });
  holder.addEventListener('focusout', (e) => {
    e.stopPropagation();
    if (!e.relatedTarget || !holder.contains(e.relatedTarget)) {
      // Moving into an enclosing item: its focusin sets it again.
      setEditing(null);
    }
  });
}

// ---- @mention completion ----

/// Completion of `@id` in a text control from the room's people: a listbox under it,
/// arrow keys to move, Enter or Tab to take, Escape to close.
function withMentions(input) {
  const listId = nextId('mentions');
  const list = el('ul', { id: listId, role: 'listbox', class: 'mention-list', 'data-testid': 'mention-list', hidden: true, 'aria-label': t('mention.list') });
  input.setAttribute('role', 'combobox');
  input.setAttribute('aria-autocomplete', 'list');
  input.setAttribute('aria-controls', listId);
  input.setAttribute('aria-expanded', 'false');
  let state = null; // {at, options, index}

  const close = () => {
    state = null;
    list.hidden = true;
    list.replaceChildren();
    input.setAttribute('aria-expanded', 'false');
    input.removeAttribute('aria-activedescendant');
  };
  const highlight = () => {
    [...list.children].forEach((li, i) => li.setAttribute('aria-selected', String(i === state.index)));
    input.setAttribute('aria-activedescendant', `${listId}-${state.index}`);
  };
  const take = (id) => {
    const { at } = state;
    const v = input.value;
    const insert = `@${id} `;
    input.value = v.slice(0, at.start) + insert + v.slice(at.end);
    const caret = at.start + insert.length;
    input.setSelectionRange(caret, caret);
    close();
    input.dispatchEvent(new Event('input', { bubbles: true }));
    input.focus();
  };
  const update = () => {
    const at = mentionAt(input.value, input.selectionStart ?? input.value.length);
    const options = at ? mentionMatches(roomPeople(model, awarenessNames()), at.query) : [];
    // Nothing to complete: no match, or the only one is what is typed already.
    if (!at || !options.length || (options.length === 1 && options[0] === at.query)) {
      close();
      return;
    }
    state = { at, options, index: 0 };
    list.replaceChildren(...options.map((id, i) => el('li', {
      id: `${listId}-${i}`,
      role: 'option',
      'data-testid': 'mention-option',
      'data-user': id,
      text: `@${id}`,
      on: {
        mousedown: (e) => {
          e.preventDefault();
          take(id);
        },
      },
    })));
    list.hidden = false;
    input.setAttribute('aria-expanded', 'true');
    highlight();
  };
  input.addEventListener('input', (e) => {
    if (e.isTrusted || !state) update();
  });
  input.addEventListener('click', update);
  input.addEventListener('blur', () => setTimeout(close, 150));
  input.addEventListener('keydown', (e) => {
    if (!state) return;
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      const n = state.options.length;
      state.index = (state.index + (e.key === 'ArrowDown' ? 1 : n - 1)) % n;
      highlight();
    } else if (e.key === 'Enter' || e.key === 'Tab') {
      e.preventDefault();
      take(state.options[state.index]);
    } else if (e.key === 'Escape') {
      e.preventDefault();
      close();
    }
  });
  return el('div', { class: 'mention-box' }, input, list);
}

function mentionsOf(text) {
  return mentionsIn(text, roomPeople(model, awarenessNames()));
}

// ---- metric fields (create and edit a KR) ----

/// The metric part of a KR form: kind, start/target, threshold, unit, milestones (one per
/// line, `title` or `title | weight`).
function metricFields(metric = { kind: 'increase', start: 0 }) {
  const kind = select('kind', METRIC_KINDS, 'metric', metric.kind);
  const start = el('input', { name: 'start', type: 'number', step: 'any', value: metric.start ?? 0 });
  const target = el('input', { name: 'target', type: 'number', step: 'any', value: metric.target ?? '' });
  const threshold = el('input', { name: 'threshold', type: 'number', step: 'any', value: metric.threshold ?? '' });
  const unit = el('input', { name: 'unit', maxlength: 20, value: metric.unit ?? '' });
  const milestones = el('textarea', { name: 'milestones', rows: 3 });
  milestones.value = (metric.milestones ?? [])
    .map((m) => ((m.weight ?? 1) === 1 ? m.title : `${m.title} | ${m.weight}`)).join('\n');
  const parts = {
    start: field('metric.start', start),
    target: field('metric.target', target),
    threshold: field('metric.threshold', threshold),
    unit: field('metric.unit', unit),
    milestones: field('metric.milestones', milestones, 'wide'),
  };
  const show = () => {
    const k = kind.value;
    parts.start.hidden = !(k === 'increase' || k === 'decrease');
    parts.target.hidden = parts.start.hidden;
    parts.threshold.hidden = !(k === 'stay_above' || k === 'stay_below');
    parts.unit.hidden = k === 'percent' || k === 'milestone';
    parts.milestones.hidden = k !== 'milestone';
  };
  kind.addEventListener('change', show);
  show();
  return el('div', { class: 'metric-fields' }, field('metric.kind', kind), Object.values(parts));
}

/// The metric a form describes, with the milestones' done flags of `old` kept by title.
function readMetric(form, old = null) {
  const f = form.elements;
  const kind = f.kind.value;
  const n = (x) => (x.value.trim() === '' ? undefined : Number(x.value));
  const unit = f.unit.value.trim() || undefined;
  switch (kind) {
    case 'percent':
      return { kind };
    case 'increase':
    case 'decrease':
      return { kind, start: n(f.start) ?? 0, target: n(f.target), unit };
    case 'stay_above':
    case 'stay_below':
      return { kind, threshold: n(f.threshold), unit };
    default: {
      const done = new Map((old?.milestones ?? []).map((m) => [m.title, m.done]));
      const milestones = f.milestones.value.split('\n').map((l) => l.trim()).filter(Boolean).map((line) => {
        const m = /^(.*?)\s*\|\s*(\d+(?:\.\d+)?)$/.exec(line);
        const title = m ? m[1] : line;
        const ms = { title, weight: m ? Number(m[2]) : 1 };
        if (done.get(title)) ms.done = true;
        return ms;
      });
      return { kind, milestones };
    }
  }
}

function cleanMetric(m) {
  return JSON.parse(JSON.stringify(m));
}

/// Two metrics mean the same (key order, absent vs null, default weight and done aside).
function sameMetric(a, b) {
  const canon = (m) => {
    const out = {};
    for (const k of Object.keys(m ?? {}).sort()) {
      if (m[k] == null) continue;
      out[k] = k === 'milestones'
        ? m[k].map((x) => ({ title: x.title, weight: x.weight ?? 1, done: Boolean(x.done) }))
        : m[k];
    }
    return JSON.stringify(out);
  };
  return canon(a) === canon(b);
}

// ---- KR history chart ----

const CHART_W = 220;
const CHART_H = 56;

function historyChart(points, cycle) {
  const origin = cycle?.starts ? Date.parse(`${cycle.starts}T00:00:00Z`) : null;
  const weeks = weeklyHistory(points, origin);
  const last = weeks[weeks.length - 1];
  const label = weeks.length
    ? t('history.label', { weeks: num(weeks.length), progress: pct(last.progress), confidence: last.confidence == null ? '–' : num(last.confidence) })
    : t('history.none');
  const box = svg('svg', { class: 'history', 'data-testid': 'history', viewBox: `0 0 ${CHART_W} ${CHART_H + 4}`, role: 'img', 'aria-label': label });
  box.append(svg('title', {}, document.createTextNode(label)));
  box.append(svg('line', { class: 'axis', x1: 0, x2: CHART_W, y1: CHART_H + 1, y2: CHART_H + 1 }));
  if (!weeks.length) return box;
  // Across the cycle's weeks (or past them, when check-ins came later).
  const cycleWeeks = cycle?.starts && cycle?.ends
    ? Math.ceil((Date.parse(`${cycle.ends}T00:00:00Z`) + 86_400_000 - Date.parse(`${cycle.starts}T00:00:00Z`)) / (7 * 86_400_000)) - 1
    : 0;
  const first = origin == null ? weeks[0].week : 0;
  const span = Math.max(1, cycleWeeks, weeks[weeks.length - 1].week - first);
  const x = (w) => 4 + ((w.week - first) / span) * (CHART_W - 8);
  box.append(svg('line', { class: 'grid', x1: 0, x2: CHART_W, y1: CHART_H / 2 + 1, y2: CHART_H / 2 + 1 }));
  const yP = (p) => CHART_H + 1 - (Math.max(0, Math.min(100, p)) / 100) * (CHART_H - 2);
  const yC = (c) => CHART_H + 1 - (c / 10) * (CHART_H - 2);
  box.append(svg('polyline', { class: 'progress', points: weeks.map((w) => `${x(w).toFixed(1)},${yP(w.progress).toFixed(1)}`).join(' ') }));
  const conf = weeks.filter((w) => w.confidence != null);
  if (conf.length) {
    box.append(svg('polyline', { class: 'confidence', points: conf.map((w) => `${x(w).toFixed(1)},${yC(w.confidence).toFixed(1)}`).join(' ') }));
  }
  for (const w of weeks) box.append(svg('circle', { class: 'progress', cx: x(w).toFixed(1), cy: yP(w.progress).toFixed(1), r: 2.5 }));
  for (const w of conf) box.append(svg('circle', { class: 'confidence', cx: x(w).toFixed(1), cy: yC(w.confidence).toFixed(1), r: 2 }));
  return box;
}

// ---- a closed cycle: scores (kr.score) and retrospectives (objective.retro) ----

function scoreText(score) {
  return fmtNumber(score, { minimumFractionDigits: 1, maximumFractionDigits: 2 });
}

/// A KR's score once the cycle is closed; its owner or an admin may override it with a reason.
function scoreView(k) {
  if (!cycleClosed() || !k.score) return [];
  const o = k.score_override;
  const mayScore = mayWrite && (mayArchive || k.owner === me);
  const result = resultLine();
  let form = null;
  if (mayScore) {
    const value = el('input', { name: 'score', type: 'number', min: 0, max: 1, step: 0.1, required: true, value: k.score.final, 'data-testid': 'score-value' });
    const reason = el('input', { name: 'reason', maxlength: 1000, required: true, value: o?.reason ?? '', 'data-testid': 'score-reason' });
    form = el('details', { class: 'settings', 'data-testid': 'score-edit' },
      el('summary', { text: t('score.edit') }),
      el('form', { class: 'kr-form', on: {
        submit: (e) => {
          e.preventDefault();
          send({ type: 'kr.score', key_result: k.id, score: Number(value.value), reason: reason.value.trim() }, result);
        },
      } },
      field('score.value', value), field('score.reason', reason, 'wide'),
      el('div', { class: 'actions' }, el('button', { type: 'submit', 'data-testid': 'score-save', text: t('score.save') }), result)));
  }
  return [
    el('p', {},
      el('b', { 'data-testid': 'score', 'data-score': k.score.final, text: t('score.final', { score: scoreText(k.score.final) }) }),
      o ? el('span', { class: 'muted', text: ` · ${t('score.override', { proposed: scoreText(k.score.proposed), by: o.by, reason: o.reason })}` }) : null),
    form,
  ];
}

/// An objective's score and retrospective note (复盘) once the cycle is closed.
function retroView(o) {
  if (!cycleClosed()) return [];
  const r = o.retro;
  const result = resultLine();
  const parts = ['worked', 'did_not', 'next'];
  const shown = r ? el('dl', { class: 'retro', 'data-testid': 'retro' },
    parts.flatMap((p) => (r[p] ? [el('dt', { text: t(`retro.${p}`) }), el('dd', { text: r[p] })] : []))) : null;
  let form = null;
  if (mayWrite) {
    const boxes = Object.fromEntries(parts.map((p) => [p, el('textarea', { name: p, rows: 2, maxlength: 4000, 'data-testid': `retro-${p}` })]));
    for (const p of parts) boxes[p].value = r?.[p] ?? '';
    form = el('details', { class: 'settings', 'data-testid': 'retro-edit' },
      el('summary', { text: t('retro.edit') }),
      el('form', { class: 'kr-form', on: {
        submit: (e) => {
          e.preventDefault();
          send({ type: 'objective.retro', objective: o.id, ...Object.fromEntries(parts.map((p) => [p, boxes[p].value.trim()])) }, result);
        },
      } },
      parts.map((p) => field(`retro.${p}`, boxes[p], 'wide')),
      el('div', { class: 'actions' }, el('button', { type: 'submit', 'data-testid': 'retro-save', text: t('retro.save') }), result)));
  }
  return [
    o.score != null && el('p', {}, el('b', { 'data-testid': 'score', 'data-score': o.score, text: t('score.final', { score: scoreText(o.score) }) })),
    el('h4', { class: 'retro-title', text: t('retro.title') }),
    shown ?? el('p', { class: 'muted small', text: t('retro.none') }),
    form,
  ];
}

// ---- objective cards and KR rows: built once, updated in place ----

const FIELD_SIZING = globalThis.CSS?.supports?.('field-sizing', 'content') ?? false;

/// Grows a textarea with its text where CSS `field-sizing` cannot.
function autosize(ta) {
  if (FIELD_SIZING) return;
  ta.style.height = 'auto';
  ta.style.height = `${ta.scrollHeight}px`;
}

/// A title: one line of text that wraps on narrow screens (a textarea without newlines).
function titleBox(props) {
  const ta = el('textarea', { ...props, rows: 1, maxlength: 200, readonly: true, spellcheck: 'true' });
  ta.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.isComposing) e.preventDefault();
  });
  ta.addEventListener('input', () => autosize(ta));
  return ta;
}

/// objective id → ObjectiveCard
const cards = new Map();

class ObjectiveCard {
  constructor(o) {
    this.id = o.id;
    this.rows = new Map();
    this.bindings = {};
    const id = o.id;
    const titleId = nextId('otitle');
    this.titleInput = mayWrite
      ? titleBox({ id: titleId, class: 'title-input', 'data-testid': 'title', 'aria-label': t('objective.title') })
      : null;
    this.titleText = mayWrite ? null : el('h3', { id: titleId, class: 'title-text', 'data-testid': 'title' });
    this.pct = el('span', { class: 'big' });
    this.marker = el('p', { class: 'marker', 'data-testid': 'editing', hidden: true, 'aria-live': 'polite' });
    this.meta = el('div', { class: 'meta' });
    this.bar = el('div');
    this.lint = el('div');
    this.descInput = mayWrite
      ? el('textarea', { class: 'desc-input', 'data-testid': 'description', rows: 2, maxlength: 10000, readonly: true, 'aria-label': t('objective.description'), placeholder: t('objective.description.placeholder') })
      : null;
    this.descText = mayWrite ? null : el('p', { class: 'desc-text', 'data-testid': 'description' });
    this.parents = el('ul', { class: 'refs', 'data-testid': 'parents' });
    this.children = el('ul', { class: 'refs', 'data-testid': 'children' });
    this.krList = el('ul', { class: 'krs', 'aria-label': t('krs') });
    this.krEmpty = el('p', { class: 'muted small', text: t('krs.none') });
    this.retroBox = el('div', { class: 'closing', 'data-testid': 'retro-box' });
    this.result = resultLine();

    const head = el('div', { class: 'head' }, this.titleInput ?? this.titleText, this.pct);
    const tools = mayWrite ? this.buildTools() : null;
    this.settings = mayWrite ? this.buildSettings() : null;
    const align = el('section', { class: 'align', 'aria-label': t('align') },
      el('div', { class: 'refs-row' }, el('span', { class: 'label', text: t('align.parents') }), this.parents),
      el('div', { class: 'refs-row' }, el('span', { class: 'label', text: t('align.children') }), this.children),
      mayWrite && el('button', {
        type: 'button', class: 'ghost small', 'data-testid': 'align', text: t('align.pick'),
        on: { click: () => openAlign(id) },
      }));
    this.krForm = mayWrite ? krCreateForm(id) : null;
    this.addKr = mayWrite ? el('button', {
      type: 'button', class: 'ghost', 'data-testid': 'add-kr', 'aria-expanded': 'false', text: t('kr.add'),
      on: { click: () => toggleForm(this.addKr, this.krForm) },
    }) : null;
    this.comments = new Comments({ objective: id });
    this.el = el('article', { class: 'objective', 'data-testid': 'objective', 'data-id': id, 'aria-labelledby': titleId },
      head, this.marker, this.meta, this.bar, this.lint,
      this.descInput ?? this.descText, align, this.retroBox,
      el('div', { class: 'row-actions' }, tools, this.settings, this.comments.el), this.result,
      el('h4', { class: 'sr-only', text: t('krs') }),
      this.krList, this.krEmpty, this.addKr, this.krForm);
    trackEditing(this.el, id);
  }

  buildTools() {
    const id = this.id;
    const move = (dir) => () => {
      const index = reorderIndex(model.objectives.values(), id, dir);
      if (index != null) send({ type: 'objective.reorder', objective: id, index }, this.result, { onAck: () => focusLater(`[data-testid=objective][data-id="${id}"] > .tools [data-testid=move-${dir < 0 ? 'up' : 'down'}]`) });
    };
    return el('div', { class: 'tools' },
      el('button', { type: 'button', class: 'ghost icon', 'data-testid': 'move-up', 'aria-label': t('move.up'), title: t('move.up'), text: '↑', on: { click: move(-1) } }),
      el('button', { type: 'button', class: 'ghost icon', 'data-testid': 'move-down', 'aria-label': t('move.down'), title: t('move.down'), text: '↓', on: { click: move(1) } }),
      mayArchive && el('button', {
        type: 'button', class: 'ghost small', 'data-testid': 'archive', text: t('archive'),
        on: { click: () => archive('objective', id, this.result) },
      }));
  }

  buildSettings() {
    const id = this.id;
    const owner = el('input', { name: 'owner', maxlength: 64, autocomplete: 'off', pattern: '[A-Za-z0-9._@\\-]{1,64}' });
    const visibility = select('visibility', VISIBILITIES, 'visibility');
    const commitment = select('commitment', COMMITMENTS, 'commitment');
    const form = el('form', { class: 'settings-form' },
      field('owner', owner), field('visibility', visibility), field('commitment', commitment),
      el('button', { type: 'submit', 'data-testid': 'settings-save', text: t('save') }));
    const details = el('details', { class: 'settings', 'data-testid': 'settings' },
      el('summary', { text: t('objective.edit') }), form);
    const fill = () => {
      const o = model.objectives.get(id);
      if (!o) return;
      owner.value = o.owner ?? '';
      visibility.value = o.visibility ?? 'public';
      commitment.value = o.commitment ?? 'committed';
    };
    details.addEventListener('toggle', () => details.open && fill());
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const o = model.objectives.get(id);
      const cmd = { type: 'objective.update', objective: id };
      if (owner.value.trim() && owner.value.trim() !== (o?.owner ?? '')) cmd.owner = owner.value.trim();
      if (visibility.value !== (o?.visibility ?? 'public')) cmd.visibility = visibility.value;
      if (commitment.value !== (o?.commitment ?? 'committed')) cmd.commitment = commitment.value;
      if (Object.keys(cmd).length === 2) {
        showResult(this.result, 'ok', t('result.unchanged'));
        return;
      }
      send(cmd, this.result);
    });
    return details;
  }

  update(view) {
    const { objective: o, lint, keyResults } = view;
    this.el.className = `objective ${o.status ?? 'none'}${o.overdue ? ' is-overdue' : ''}`;
    if (this.titleText) this.titleText.textContent = o.title || t('objective.untitled');
    if (this.titleInput && !this.bindings.title) this.titleInput.value = o.title ?? '';
    if (this.descText) {
      this.descText.textContent = o.description ?? '';
      this.descText.hidden = !o.description;
    }
    if (this.descInput && !this.bindings.description) this.descInput.value = o.description ?? '';
    this.pct.textContent = pct(o.progress);
    patch(this.retroBox, JSON.stringify([cycleClosed(), o.score, o.retro, getLang()]), () => retroView(o));
    patch(this.meta, JSON.stringify([o.status, o.overdue, o.owner, o.commitment, o.visibility, getLang()]), () => [
      badges(o),
      o.owner && el('span', { class: 'owner' }, el('span', { class: 'k', text: t('owner') }), ' ', el('b', { text: o.owner })),
      el('span', { class: `tag ${o.commitment}`, text: t(`commitment.${o.commitment ?? 'committed'}`) }),
      el('span', { class: 'tag', text: t(`visibility.${o.visibility ?? 'public'}`) }),
    ]);
    patch(this.bar, `${Math.round(o.progress ?? 0)} ${o.status}`, () => progressBar(o.progress, o.status, t('progress.of', { title: o.title })));
    patch(this.lint, JSON.stringify([lint, getLang()]), () => lintHints('objective', o.id));
    this.updateAlignment(o);

    // KR rows, in order, kept across renders.
    const seen = new Set();
    let prev = null;
    for (const kv of keyResults) {
      const k = kv.keyResult;
      seen.add(k.id);
      let row = this.rows.get(k.id);
      if (!row) {
        row = new KrRow(k);
        this.rows.set(k.id, row);
      }
      row.update(kv);
      const want = prev ? prev.el.nextSibling : this.krList.firstChild;
      if (want !== row.el) this.krList.insertBefore(row.el, want);
      prev = row;
    }
    for (const [id, row] of this.rows) {
      if (!seen.has(id)) {
        row.destroy();
        this.rows.delete(id);
      }
    }
    this.krEmpty.hidden = keyResults.length > 0;
    this.comments.update();
  }

  updateAlignment(o) {
    const refs = o.aligned_to ?? [];
    const local = alignedChildren(model.objectives.values(), room, room, o.id);
    const remote = [];
    for (const [r, view] of otherRooms) {
      for (const c of alignedChildren(view.objectives ?? [], r, room, o.id)) remote.push([r, c]);
    }
    const sig = JSON.stringify([refs, local.map((c) => [c.id, c.title]), remote.map(([r, c]) => [r, c.id, c.title]),
      refs.map((r) => refTitle(r)), getLang(), mayWrite]);
    patch(this.parents, sig, () => (refs.length
      ? refs.map((r) => el('li', {},
        r.room && r.room !== room && el('span', { class: 'room', text: r.room }),
        el('span', { text: refTitle(r) }),
        mayWrite && el('button', {
          type: 'button', class: 'ghost icon', 'data-testid': 'unalign', 'aria-label': t('align.remove', { title: refTitle(r) }), title: t('align.remove', { title: refTitle(r) }), text: '×',
          on: { click: () => send({ type: 'objective.align', objective: o.id, remove: [r] }, this.result) },
        })))
      : el('li', { class: 'muted', text: t('align.none') })));
    patch(this.children, sig, () => (local.length + remote.length
      ? [...local.map((c) => el('li', {}, el('span', { text: c.title }))),
        ...remote.map(([r, c]) => el('li', {}, el('span', { class: 'room', text: r }), el('span', { text: c.title })))]
      : el('li', { class: 'muted', text: t('align.none') })));
  }

  destroy() {
    for (const row of this.rows.values()) row.destroy();
    this.bindings.title?.destroy();
    this.bindings.description?.destroy();
    this.el.remove();
  }
}

/// The title of a parent ref: from this room's model or a fetched room's.
function refTitle(r) {
  const local = !r.room || r.room === room;
  const okr = local ? null : otherRooms.get(r.room);
  if (r.objective != null) {
    const o = local ? model.objectives.get(r.objective) : okr?.objectives?.find((x) => x.id === r.objective);
    return o?.title || r.objective;
  }
  const k = local ? model.keyResults.get(r.key_result) : okr?.key_results?.find((x) => x.id === r.key_result);
  return k?.title || r.key_result || '?';
}

class KrRow {
  constructor(k) {
    this.id = k.id;
    this.binding = null;
    this.historyKey = null;
    const id = k.id;
    const titleId = nextId('krtitle');
    this.titleInput = mayWrite
      ? titleBox({ id: titleId, class: 'kr-title-input', 'data-testid': 'kr-title', 'aria-label': t('kr.title') })
      : null;
    this.titleText = mayWrite ? null : el('span', { id: titleId, class: 'kr-title', 'data-testid': 'kr-title' });
    this.pct = el('span', { class: 'pct' });
    this.marker = el('p', { class: 'marker', 'data-testid': 'editing', hidden: true, 'aria-live': 'polite' });
    this.bar = el('div');
    this.meta = el('div', { class: 'meta' });
    this.lint = el('div');
    this.chart = el('div', { class: 'chart' });
    this.scoreBox = el('div', { class: 'closing', 'data-testid': 'score-box' });
    this.result = resultLine();
    this.comments = new Comments({ key_result: id });
    const tools = mayWrite ? el('div', { class: 'tools' },
      el('button', { type: 'button', class: 'ghost icon', 'data-testid': 'move-up', 'aria-label': t('move.up'), title: t('move.up'), text: '↑', on: { click: () => this.move(-1) } }),
      el('button', { type: 'button', class: 'ghost icon', 'data-testid': 'move-down', 'aria-label': t('move.down'), title: t('move.down'), text: '↓', on: { click: () => this.move(1) } }),
      mayArchive && el('button', { type: 'button', class: 'ghost small', 'data-testid': 'archive', text: t('archive'), on: { click: () => archive('kr', id, this.result) } }))
      : null;
    this.checkin = mayWrite ? new CheckinForm(id) : null;
    this.settings = mayWrite ? this.buildSettings() : null;
    this.el = el('li', { class: 'kr', 'data-testid': 'kr', 'data-id': id, 'aria-labelledby': titleId },
      el('div', { class: 'head' }, this.titleInput ?? this.titleText, this.pct),
      this.marker, this.bar, this.meta, this.lint, this.chart, this.scoreBox,
      el('div', { class: 'row-actions' }, tools, this.checkin?.el, this.settings, this.comments.el), this.result);
    trackEditing(this.el, id);
  }

  move(dir) {
    const k = model.keyResults.get(this.id);
    if (!k) return;
    const siblings = [...model.keyResults.values()].filter((x) => x.objective === k.objective);
    const index = reorderIndex(siblings, this.id, dir);
    if (index != null) send({ type: 'kr.reorder', key_result: this.id, index }, this.result, { onAck: () => focusLater(`[data-testid=kr][data-id="${this.id}"] [data-testid=move-${dir < 0 ? 'up' : 'down'}]`) });
  }

  buildSettings() {
    const id = this.id;
    const details = el('details', { class: 'settings', 'data-testid': 'settings' }, el('summary', { text: t('kr.edit') }));
    const result = resultLine();
    const fill = () => {
      const k = model.keyResults.get(id);
      if (!k) return;
      const form = el('form', { class: 'kr-form' },
        metricFields(k.metric),
        field('owner', el('input', { name: 'owner', maxlength: 64, value: k.owner ?? '', autocomplete: 'off' })),
        field('kr.weight', el('input', { name: 'weight', type: 'number', min: 0, max: 1000, step: 'any', value: k.weight ?? 1 })),
        field('kr.cadence', el('input', { name: 'cadence_days', type: 'number', min: 0, max: 366, step: 1, value: k.cadence_days ?? 7 })),
        field('kr.why', el('input', { name: 'why', maxlength: 1000 }), 'wide'),
        el('div', { class: 'actions' }, el('button', { type: 'submit', 'data-testid': 'settings-save', text: t('save') }), result));
      form.addEventListener('submit', (e) => {
        e.preventDefault();
        const now = model.keyResults.get(id);
        const f = form.elements;
        const cmd = { type: 'kr.update', key_result: id };
        const metric = cleanMetric(readMetric(form, now?.metric));
        if (!sameMetric(metric, now?.metric)) cmd.metric = metric;
        if (f.owner.value.trim() && f.owner.value.trim() !== (now?.owner ?? '')) cmd.owner = f.owner.value.trim();
        if (Number(f.weight.value) !== (now?.weight ?? 1)) cmd.weight = Number(f.weight.value);
        if (Number(f.cadence_days.value) !== (now?.cadence_days ?? 7)) cmd.cadence_days = Number(f.cadence_days.value);
        if (Object.keys(cmd).length === 2) {
          showResult(result, 'ok', t('result.unchanged'));
          return;
        }
        if (cmd.metric && f.why.value.trim()) cmd.why = f.why.value.trim();
        send(cmd, result);
      });
      details.replaceChildren(details.firstChild, form);
    };
    details.addEventListener('toggle', () => details.open && fill());
    return details;
  }

  update({ keyResult: k, lint }) {
    this.el.className = `kr ${k.status}${k.overdue ? ' is-overdue' : ''}`;
    patch(this.scoreBox, JSON.stringify([cycleClosed(), k.score, k.score_override, k.owner, getLang()]), () => scoreView(k));
    if (this.titleText) this.titleText.textContent = k.title || t('kr.untitled');
    if (this.titleInput && !this.binding) this.titleInput.value = k.title ?? '';
    this.pct.textContent = pct(k.progress);
    patch(this.bar, `${Math.round(k.progress ?? 0)} ${k.status}`, () => progressBar(k.progress, k.status, t('progress.of', { title: k.title })));
    patch(this.meta, JSON.stringify([k.status, k.overdue, k.current, k.metric, k.confidence, k.owner, k.weight, k.last_checkin_at, getLang(), Math.floor(Date.now() / 60_000)]), () => [
      badges(k),
      el('span', { class: 'measure', text: measure(k) }),
      el('span', { class: 'confidence', text: k.confidence == null ? t('confidence.none') : t('confidence.of', { n: num(k.confidence) }) }),
      k.owner && el('span', { class: 'owner' }, el('span', { class: 'k', text: t('owner') }), ' ', el('b', { text: k.owner })),
      (k.weight ?? 1) !== 1 && el('span', { text: t('kr.weight.is', { n: num(k.weight) }) }),
      k.last_checkin_at && el('span', { text: t('checkin.last', { when: fmtRelative(k.last_checkin_at) }) }),
    ]);
    patch(this.lint, JSON.stringify([lint, getLang()]), () => lintHints('key_result', k.id));
    const key = `${k.last_checkin_at ?? 'none'} ${JSON.stringify(k.metric)} ${getLang()}`;
    if (key !== this.historyKey) {
      this.historyKey = key;
      this.loadHistory();
    }
    this.checkin?.update(k);
    this.comments.update();
  }

  async loadHistory() {
    const key = this.historyKey;
    try {
      const h = await getJson(`/api/rooms/${encodeURIComponent(room)}/key_results/${encodeURIComponent(this.id)}/history`);
      if (key !== this.historyKey) return;
      this.chart.replaceChildren(
        historyChart(h.points ?? [], model.cycle),
        el('p', { class: 'legend small' },
          el('span', { class: 'lg-progress', text: t('history.progress') }), ' ',
          el('span', { class: 'lg-confidence', text: t('history.confidence') })));
      this.chart.hidden = !(h.points ?? []).length;
    } catch {
      this.chart.hidden = true;
    }
  }

  destroy() {
    this.binding?.destroy();
    this.el.remove();
  }
}

function archive(kind, id, result) {
  const cmd = kind === 'kr'
    ? { type: 'kr.archive', key_result: id, archived: true }
    : { type: 'objective.archive', objective: id, archived: true };
  const title = kind === 'kr' ? model.keyResults.get(id)?.title : model.objectives.get(id)?.title;
  send(cmd, result, {
    onAck: () => {
      // The item leaves the board: say so where it stays visible, with an undo.
      const line = $('board-result');
      line.className = 'result ok';
      line.replaceChildren(t('archived', { title: title ?? id }), ' ',
        el('button', {
          type: 'button', class: 'ghost small', text: t('undo'),
          on: { click: () => send({ ...cmd, archived: false }, line) },
        }));
      line.querySelector('button')?.focus();
    },
  });
}

function focusLater(selector) {
  requestAnimationFrame(() => requestAnimationFrame(() => document.querySelector(selector)?.focus()));
}

function toggleForm(button, form, open = form.hidden) {
  form.hidden = !open;
  button.setAttribute('aria-expanded', String(open));
  if (open) form.querySelector('input, select, textarea')?.focus();
}

// ---- check-in form (per KR) ----

class CheckinForm {
  constructor(krId) {
    this.krId = krId;
    this.metricSig = null;
    const valueInput = el('input', { name: 'value', type: 'number', step: 'any', 'data-testid': 'checkin-value' });
    this.valueLabel = field('checkin.value', valueInput);
    this.milestones = el('fieldset', { class: 'milestones', hidden: true });
    const conf = el('input', { name: 'confidence', type: 'range', min: 0, max: 10, step: 1, value: 7, 'data-testid': 'confidence' });
    const out = el('output', { class: 'conf-value', text: num(7) });
    const confId = nextId('conf');
    conf.id = confId;
    out.setAttribute('for', confId);
    const syncConf = () => {
      out.textContent = num(Number(conf.value));
      conf.setAttribute('aria-valuetext', t('confidence.of', { n: num(Number(conf.value)) }));
      out.className = `conf-value c${Number(conf.value) >= 7 ? 'on' : Number(conf.value) >= 4 ? 'risk' : 'off'}`;
    };
    conf.addEventListener('input', syncConf);
    syncConf();
    const comment = el('textarea', { name: 'comment', rows: 2, maxlength: 4000, 'data-testid': 'checkin-comment', placeholder: t('checkin.comment.placeholder') });
    this.result = el('p', { class: 'result', role: 'status', 'aria-live': 'polite', 'data-testid': 'checkin-result' });
    this.button = el('button', { type: 'submit', text: t('checkin.send') });
    this.form = el('form', { class: 'checkin-form', 'data-testid': 'checkin-form' },
      this.valueLabel, this.milestones,
      el('label', { class: 'range', for: confId }, el('span', { text: t('checkin.confidence') })),
      el('div', { class: 'range-row' }, conf, out),
      el('label', {}, el('span', { text: t('checkin.comment') }), withMentions(comment)),
      el('div', { class: 'actions' }, this.button, this.result));
    this.form.addEventListener('submit', (e) => this.submit(e));
    this.el = el('details', { class: 'checkin', 'data-testid': 'checkin' },
      el('summary', { text: t('checkin') }), this.form);
  }

  update(k) {
    const sig = JSON.stringify(k.metric) + getLang();
    if (sig === this.metricSig) return;
    this.metricSig = sig;
    const m = k.metric ?? {};
    const isMilestone = m.kind === 'milestone';
    this.valueLabel.hidden = isMilestone;
    const v = this.form.elements.value;
    v.required = !isMilestone;
    if (m.kind === 'percent') {
      v.min = '0';
      v.max = '100';
    } else {
      v.removeAttribute('min');
      v.removeAttribute('max');
    }
    this.milestones.hidden = !isMilestone;
    this.milestones.replaceChildren(el('legend', { text: t('checkin.milestones') }),
      ...(isMilestone ? m.milestones ?? [] : []).map((ms, i) => el('label', { class: 'check' },
        el('input', { type: 'checkbox', name: `milestone-${i}`, checked: ms.done }), el('span', { text: ms.title }))));
  }

  submit(e) {
    e.preventDefault();
    const k = model.keyResults.get(this.krId);
    if (!k) return;
    const f = this.form.elements;
    const cmd = {
      type: 'checkin.create',
      key_result: k.id,
      confidence: Number.parseInt(f.confidence.value, 10),
      comment: f.comment.value,
      mentions: mentionsOf(f.comment.value),
    };
    if (k.metric?.kind === 'milestone') {
      cmd.milestones = (k.metric.milestones ?? []).map((_, i) => f[`milestone-${i}`]?.checked ?? false);
    } else {
      if (f.value.value.trim() === '') {
        showResult(this.result, 'error', t('checkin.value.missing'), true);
        f.value.focus();
        return;
      }
      cmd.value = Number(f.value.value);
    }
    this.button.disabled = true;
    send(cmd, this.result, {
      scroll: true,
      onAck: () => {
        this.button.disabled = false;
        f.comment.value = '';
      },
      onError: () => {
        this.button.disabled = false;
      },
    });
  }
}

// ---- comments with threaded replies (per objective and KR) ----

class Comments {
  constructor(target) {
    this.target = target;
    this.replyTo = null;
    this.summary = el('summary', {});
    this.list = el('ul', { class: 'thread' });
    this.form = mayWrite ? this.buildForm() : null;
    this.el = el('details', { class: 'comments', 'data-testid': 'comments' }, this.summary, this.list, this.form);
  }

  buildForm() {
    const text = el('textarea', { name: 'text', rows: 2, maxlength: 4000, required: true, 'data-testid': 'comment-text', 'aria-label': t('comment.text'), placeholder: t('comment.placeholder') });
    this.replyLine = el('p', { class: 'reply-to small', hidden: true });
    this.formResult = el('p', { class: 'result', role: 'status', 'aria-live': 'polite', 'data-testid': 'comment-result' });
    const form = el('form', { class: 'comment-form', 'data-testid': 'comment-form' },
      this.replyLine, withMentions(text),
      el('div', { class: 'actions' }, el('button', { type: 'submit', text: t('comment.send') }), this.formResult));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const value = text.value;
      if (!value.trim()) return;
      const cmd = { type: 'comment.create', target: this.target, text: value, mentions: mentionsOf(value) };
      if (this.replyTo) cmd.reply_to = this.replyTo;
      send(cmd, this.formResult, {
        scroll: true,
        onAck: () => {
          text.value = '';
          this.setReply(null);
        },
      });
    });
    return form;
  }

  setReply(comment) {
    this.replyTo = comment?.id ?? null;
    if (!this.replyLine) return;
    this.replyLine.hidden = !comment;
    this.replyLine.replaceChildren();
    if (comment) {
      this.replyLine.append(t('comment.replying', { author: comment.author }), ' ',
        el('button', { type: 'button', class: 'ghost small', text: t('cancel'), on: { click: () => this.setReply(null) } }));
      this.form.elements.text.focus();
    }
  }

  update() {
    const n = commentCount(model, this.target);
    this.summary.textContent = t('comments', { n: num(n) });
    const threads = commentThreads(model, this.target);
    const sig = JSON.stringify([n, getLang(), Math.floor(Date.now() / 60_000)]);
    patch(this.list, sig, () => threads.map((th) => this.node(th)));
  }

  node({ comment: c, replies }) {
    return el('li', { class: 'comment', 'data-testid': 'comment', 'data-id': c.id },
      el('div', { class: 'by small' }, el('b', { text: c.author }), ' ',
        el('time', { datetime: new Date(c.at).toISOString(), title: fmtDate(c.at), text: fmtRelative(c.at) })),
      el('div', { class: 'text', text: c.text }),
      (c.mentions ?? []).length > 0 && el('div', { class: 'small' }, c.mentions.map((u) => el('span', { class: 'mention', text: `@${u}` }))),
      mayWrite && el('button', {
        type: 'button', class: 'ghost small', 'data-testid': 'reply', text: t('comment.reply'),
        'aria-label': t('comment.reply.to', { author: c.author }),
        on: { click: () => this.setReply(c) },
      }),
      replies.length > 0 && el('ul', { class: 'thread replies' }, replies.map((r) => this.node(r))));
  }
}

// ---- create forms ----

function objectiveCreateForm() {
  const form = $('objective-form');
  const result = resultLine();
  form.replaceChildren(
    field('objective.title', el('input', { name: 'title', required: true, maxlength: 200, autocomplete: 'off', 'data-testid': 'objective-form-title' }), 'wide'),
    field('owner', el('input', { name: 'owner', maxlength: 64, autocomplete: 'off', placeholder: me })),
    field('visibility', select('visibility', VISIBILITIES, 'visibility', 'public')),
    field('commitment', select('commitment', COMMITMENTS, 'commitment', 'committed')),
    el('div', { class: 'actions wide' },
      el('button', { type: 'submit', text: t('objective.create') }),
      el('button', { type: 'button', class: 'ghost', text: t('cancel'), on: { click: () => toggleForm($('add-objective'), form, false) } }),
      result));
  form.onsubmit = (e) => {
    e.preventDefault();
    const f = form.elements;
    const cmd = { type: 'objective.create', title: f.title.value.trim(), visibility: f.visibility.value, commitment: f.commitment.value };
    if (f.owner.value.trim()) cmd.owner = f.owner.value.trim();
    send(cmd, result, {
      onAck: (ack) => {
        form.reset();
        toggleForm($('add-objective'), form, false);
        focusWhenShown = ack.created_id;
        render();
      },
    });
  };
}

function krCreateForm(objectiveId) {
  const result = resultLine();
  const form = el('form', { class: 'create kr-form', 'data-testid': 'kr-form', hidden: true },
    field('kr.title', el('input', { name: 'title', required: true, maxlength: 200, autocomplete: 'off', 'data-testid': 'kr-form-title' }), 'wide'),
    metricFields(),
    field('owner', el('input', { name: 'owner', maxlength: 64, autocomplete: 'off', placeholder: me })),
    field('kr.weight', el('input', { name: 'weight', type: 'number', min: 0, max: 1000, step: 'any', value: 1 })),
    field('kr.cadence', el('input', { name: 'cadence_days', type: 'number', min: 0, max: 366, step: 1, value: 7 })),
    el('div', { class: 'actions wide' },
      el('button', { type: 'submit', text: t('kr.create') }),
      el('button', { type: 'button', class: 'ghost', text: t('cancel'), on: { click: () => toggleForm(form.parentElement.querySelector('[data-testid=add-kr]'), form, false) } }),
      result));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const f = form.elements;
    const cmd = {
      type: 'kr.create',
      objective: objectiveId,
      title: f.title.value.trim(),
      metric: cleanMetric(readMetric(form)),
      weight: Number(f.weight.value),
      cadence_days: Number(f.cadence_days.value),
    };
    if (f.owner.value.trim()) cmd.owner = f.owner.value.trim();
    send(cmd, result, {
      onAck: (ack) => {
        form.reset();
        form.elements.kind.dispatchEvent(new Event('change'));
        toggleForm(form.parentElement.querySelector('[data-testid=add-kr]'), form, false);
        focusWhenShown = ack.created_id;
        render();
      },
    });
  });
  return form;
}

// ---- alignment: other rooms of the org and cycle ----

async function loadOtherRooms() {
  const parts = roomParts(room);
  if (!parts) return;
  try {
    const list = await getJson(`/api/rooms?org=${encodeURIComponent(parts.org)}&cycle=${encodeURIComponent(parts.cycle)}`);
    orgRoomIds = (list.rooms ?? []).map((r) => r.room).filter((r) => r !== room).slice(0, OTHER_ROOMS_MAX);
  } catch {
    orgRoomIds = [];
  }
  await Promise.all(orgRoomIds.map(async (r) => {
    try {
      const view = await getJson(`/api/rooms/${encodeURIComponent(r)}`);
      otherRooms.set(r, view.okr ?? {});
    } catch {
      otherRooms.delete(r);
    }
  }));
  render();
}

let alignFor = null;
function openAlign(objectiveId) {
  alignFor = objectiveId;
  const dialog = $('align-dialog');
  const o = model.objectives.get(objectiveId);
  $('align-for').textContent = t('align.for', { title: o?.title ?? objectiveId });
  $('align-result').textContent = '';
  renderAlignRooms();
  if (!dialog.open) dialog.showModal();
  loadOtherRooms().then(renderAlignRooms);
}

function renderAlignRooms() {
  if (!alignFor) return;
  const o = model.objectives.get(alignFor);
  const parents = o?.aligned_to ?? [];
  const sections = [[room, [...model.objectives.values()]], ...orgRoomIds.map((r) => [r, otherRooms.get(r)?.objectives ?? []])];
  $('align-rooms').replaceChildren(...sections.map(([r, objectives]) => {
    const local = r === room;
    const candidates = objectives.filter((x) => !x.archived && !(local && x.id === alignFor));
    return el('section', { class: 'align-room' },
      el('h3', {}, el('span', { text: r }), local && el('span', { class: 'muted small', text: ` (${t('align.this_room')})` })),
      candidates.length
        ? el('ul', {}, candidates.map((x) => {
          const ref = local ? { objective: x.id } : { room: r, objective: x.id };
          const already = parents.some((p) => p.objective === x.id && (p.room ?? room) === r);
          return el('li', {},
            el('span', { text: x.title }),
            el('button', {
              type: 'button',
              class: already ? 'ghost small' : 'small',
              'data-testid': 'align-pick',
              'data-room': r,
              'data-id': x.id,
              'aria-label': already ? t('align.remove', { title: x.title }) : t('align.add', { title: x.title }),
              text: already ? t('align.remove.short') : t('align.add.short'),
              on: {
                click: () => send(already
                  ? { type: 'objective.align', objective: alignFor, remove: [ref] }
                  : { type: 'objective.align', objective: alignFor, add: [ref] }, $('align-result'), { onAck: () => requestAnimationFrame(renderAlignRooms) }),
              },
            }));
        }))
        : el('p', { class: 'muted small', text: t('align.empty') }));
  }));
}

// ---- rendering ----

function renderObjectives() {
  const view = boardView(model);
  const root = $('objectives');
  const heading = $('objectives-h');
  const empty = root.querySelector(':scope > .empty') ?? el('p', { class: 'empty muted' });
  empty.textContent = model.seq == null ? t('waiting') : t('objectives.none');
  empty.hidden = view.length > 0;
  if (!empty.parentNode) root.append(empty);
  const seen = new Set();
  let prev = heading;
  for (const v of view) {
    const id = v.objective.id;
    seen.add(id);
    let card = cards.get(id);
    if (!card) {
      card = new ObjectiveCard(v.objective);
      cards.set(id, card);
    }
    card.update(v);
    if (prev.nextSibling !== card.el) root.insertBefore(card.el, prev.nextSibling);
    prev = card.el;
  }
  for (const [id, card] of cards) {
    if (!seen.has(id)) {
      card.destroy();
      cards.delete(id);
    }
  }
  scheduleBind();
  renderAwareness();
  if (focusWhenShown) {
    const target = document.querySelector(`[data-id="${CSS.escape(focusWhenShown)}"] [data-testid$=title]`);
    if (target) {
      focusWhenShown = null;
      target.focus();
    }
  }
}

function renderFeed() {
  const items = feedView(model, FEED_SHOWN);
  if (!items.length) {
    $('feed').replaceChildren(el('li', { class: 'muted', text: t('feed.none') }));
    return;
  }
  $('feed').replaceChildren(...items.map((it) => {
    const about = targetTitle(model, it.target) ?? t('removed');
    const mentionsMe = it.mentions.includes(me);
    let line;
    switch (it.kind) {
      case 'checkin':
        line = [el('b', { text: it.author }), ' ', t('feed.checkin'), ' ', el('q', { text: about }), ': ',
          el('b', { text: `${num(it.value)}${unitOf(it.target.key_result)}` }),
          it.confidence != null && ` · ${t('confidence.of', { n: num(it.confidence) })}`];
        break;
      case 'comment':
        line = [el('b', { text: it.author }), ' ', t(it.replyTo ? 'feed.reply' : 'feed.comment'), ' ', el('q', { text: about })];
        break;
      case 'mention':
        line = [el('b', { text: it.author ?? t('someone') }), ' ', t('feed.mention'), ' ', el('q', { text: about })];
        break;
      case 'reminder':
        line = [t('feed.reminder'), ' ', el('q', { text: about }), it.author && [' (', el('b', { text: it.author }), ')']];
        break;
      default:
        line = [it.kind];
    }
    return el('li', { class: `item ${it.kind}${mentionsMe ? ' mentions-me' : ''}` },
      el('div', {}, line),
      it.text && el('div', { class: 'text', text: it.text }),
      el('div', { class: 'small muted' },
        it.mentions.map((u) => el('span', { class: 'mention', text: `@${u}` })),
        el('time', { datetime: new Date(it.at).toISOString(), title: fmtDate(it.at), text: fmtRelative(it.at) })));
  }));
}

function renderPresent() {
  const users = presentUsers(model);
  const editing = new Map();
  if (provider) {
    for (const [client, s] of provider.awareness.getStates()) {
      if (client === doc.clientID || !s?.editing) continue;
      const name = s.user?.id ?? s.user?.name;
      if (name) editing.set(name, s.editing);
    }
  }
  const sig = JSON.stringify([users, [...editing], getLang(), me]);
  patch($('present'), sig, () => (users.length
    ? users.map((u) => el('li', { class: u === me ? 'me' : '' },
      el('span', { text: u }),
      u === me && el('span', { class: 'muted small', text: ` (${t('you')})` }),
      editing.has(u) && el('span', { class: 'muted small', text: ` · ${t('present.editing', { title: titleOf(editing.get(u)) })}` })))
    : el('li', { class: 'muted', text: t('nobody') })));
}

function titleOf(id) {
  return model.objectives.get(id)?.title ?? model.keyResults.get(id)?.title ?? id;
}

/// Closed by an admin: the room takes scores, retros and comments only.
function cycleClosed() {
  return Boolean(model.cycle?.closed);
}

function renderHeader() {
  $('room').textContent = model.room ?? room;
  const c = model.cycle;
  $('cycle').textContent = c ? `${c.id} · ${fmtDate(c.starts)} – ${fmtDate(c.ends)}` : '';
  $('whoami').textContent = me ? t(mayWrite ? 'whoami.editor' : 'whoami.viewer', { user: me }) : '';
  // A closed cycle (cycle.close): say so, link its review (复盘), and take the planning
  // controls away (the room refuses them now); comments stay.
  const closed = cycleClosed();
  $('closed').hidden = !closed;
  document.body.classList.toggle('is-closed', closed);
  for (const input of document.querySelectorAll('[data-bound="1"]')) input.readOnly = closed;
  if (closed) {
    $('closed-text').textContent = t('closed.text', { date: fmtDate(c.closed_at) });
    const q = new URLSearchParams({ lang: getLang() });
    if (userParam) q.set('user', userParam);
    $('review-link').href = `/api/rooms/${encodeURIComponent(room)}/review.md?${q}`;
  }
}

let renderQueued = false;
function render() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    renderHeader();
    renderObjectives();
    renderFeed();
    renderPresent();
  });
}

/// A language switch rebuilds everything (labels live in the built controls).
function rebuild() {
  applyDocumentLang();
  for (const card of cards.values()) card.destroy();
  cards.clear();
  for (const e of $('present').querySelectorAll('*')) e.remove();
  delete $('present').dataset.sig;
  if (mayWrite) objectiveCreateForm();
  setConn(connState, null);
  render();
}

// ---- connection ----

let connState = 'connecting';
let connVars = {};
function setConn(state, key, vars = {}) {
  connState = state;
  if (key) {
    connVars = { key, vars };
  }
  const c = $('conn');
  c.className = `conn ${state}`;
  c.textContent = t(connVars.key ?? 'conn.connecting', connVars.vars ?? {});
}

function connect() {
  live = new LiveSocket(() => liveUrl(room, { user: userParam, since: resumeSince(model) }), {
    message: onMessage,
    connecting: (attempt) => setConn('connecting', attempt ? 'conn.reconnecting' : 'conn.connecting'),
    closed: () => {
      for (const [id, p] of pending) {
        pending.delete(id);
        showResult(p.result, 'error', t('result.lost'), p.scroll);
        p.onError?.();
      }
    },
    // 1008: the room id or the user is refused; retrying cannot help.
    refused: (reason) => setConn('refused', 'conn.refused', { reason }),
    retrying: (delay) => setConn('offline', 'conn.offline', { s: num(Math.ceil(delay / 1000)) }),
  });
  live.now();
}

function onMessage(msg) {
  switch (msg.type) {
    case 'snapshot':
    case 'resumed':
      live.live();
      setConn('live', 'conn.live');
      break;
    case 'ack':
    case 'error':
      answered(msg);
      break;
    default:
      break;
  }
  applyMessage(model, msg);
  if (msg.type === 'ack' || msg.type === 'error') return;
  render();
  if (alignFor && $('align-dialog').open && /^objective\./.test(msg.type ?? '')) renderAlignRooms();
}

// ---- start ----

/// On an open server without `?user=`: ask who is using the board.
function askUser() {
  const form = el('form', { class: 'create who' },
    field('who.user', el('input', { name: 'user', required: true, maxlength: 64, pattern: '[A-Za-z0-9._@\\-]{1,64}', autocomplete: 'username' })),
    el('button', { type: 'submit', text: t('who.open') }));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const q = new URLSearchParams(location.search);
    q.set('user', form.elements.user.value.trim());
    location.search = q.toString();
  });
  $('objectives').replaceChildren(el('p', { text: t('who.lede') }), form);
  setConn('refused', 'conn.nouser');
}

async function start() {
  bindLangSwitch($('lang'));
  applyDocumentLang();
  onLangChange(rebuild);
  if (!room) {
    $('objectives').replaceChildren(el('p', {}, t('room.missing'), ' ', el('a', { href: '/', text: t('nav.rooms') })));
    setConn('refused', 'conn.noroom');
    return;
  }
  document.title = `${room} — okrhub`;
  $('screen-link').href = `/rooms/${encodeURIComponent(room)}/screen${userParam ? `?user=${encodeURIComponent(userParam)}` : ''}`;
  renderHeader();
  let session = null;
  try {
    session = await getJson(`/api/session?room=${encodeURIComponent(room)}`);
  } catch {
    session = null;
  }
  if (session?.open && !userParam) {
    askUser();
    return;
  }
  me = session?.user ?? userParam;
  mayWrite = session ? (session.may_write ?? Boolean(session.open)) : false;
  mayArchive = mayWrite && (session?.role === 'admin' || Boolean(session?.open));
  document.body.classList.toggle('read-only', !mayWrite);
  document.body.dataset.role = session?.role ?? (mayWrite ? 'editor' : 'viewer');
  if (mayWrite) {
    $('toolbar').hidden = false;
    objectiveCreateForm();
    $('add-objective').addEventListener('click', () => toggleForm($('add-objective'), $('objective-form')));
    startSync();
  }
  $('align-close').addEventListener('click', () => $('align-dialog').close());
  $('align-dialog').addEventListener('close', () => {
    alignFor = null;
  });
  renderHeader();
  // Relative times ("3 min ago") age without messages; other rooms' alignment moves slowly.
  setInterval(render, 30_000);
  setInterval(loadOtherRooms, ROOMS_REFRESH_MS);
  connect();
  loadOtherRooms();
}

start();
