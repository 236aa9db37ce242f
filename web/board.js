// The meeting-room board: one `/live/{room}` socket, the model of model.js, a render of it.
// Every piece of user text reaches the page through textContent (el() below), never as HTML.

import {
  applyMessage,
  boardView,
  emptyModel,
  feedView,
  presentUsers,
  resumeSince,
  targetTitle,
} from './model.js';

const params = new URLSearchParams(location.search);
const room = params.get('room') ?? '';
const user = params.get('user') ?? '';
const editable = params.get('edit') === '1';

const FEED_SHOWN = 25;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 30_000;

let model = emptyModel();
let socket = null;
let attempt = 0;
let retryTimer = null;
let stopped = false;
let commandCounter = 0;
/// The check-in sent and not answered yet: its command id.
let pendingCheckin = null;

// ---- DOM helpers ----

const $ = (id) => document.getElementById(id);

/// Creates an element. Strings among `children` become text nodes; `text` sets textContent.
function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v == null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

const STATUS_LABEL = { on_track: 'on track', at_risk: 'at risk', off_track: 'off track' };

function fmt(n) {
  if (n == null || Number.isNaN(n)) return '–';
  return Number.isInteger(n) ? String(n) : n.toLocaleString(undefined, { maximumFractionDigits: 2 });
}

function pct(n) {
  return `${Math.round(n ?? 0)}%`;
}

function ago(ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 45) return 'just now';
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.round(m / 60);
  if (h < 24) return `${h} h ago`;
  return new Date(ms).toLocaleDateString();
}

/// "40 / 100 users", "62%", "3 of 5 milestones", …
function measure(kr) {
  const m = kr.metric ?? {};
  const unit = m.unit ? ` ${m.unit}` : '';
  switch (m.kind) {
    case 'percent':
      return `${fmt(kr.current ?? 0)}%`;
    case 'increase':
    case 'decrease':
      return `${fmt(kr.current)} → ${fmt(m.target)}${unit}`;
    case 'stay_above':
      return `${fmt(kr.current)}${unit} (keep ≥ ${fmt(m.threshold)})`;
    case 'stay_below':
      return `${fmt(kr.current)}${unit} (keep ≤ ${fmt(m.threshold)})`;
    case 'milestone': {
      const ms = m.milestones ?? [];
      return `${ms.filter((x) => x.done).length} of ${ms.length} milestones`;
    }
    default:
      return fmt(kr.current);
  }
}

function unitOf(krId) {
  const kr = model.keyResults.get(krId);
  const kind = kr?.metric?.kind;
  if (kind === 'percent' || kind === 'milestone') return '%';
  return kr?.metric?.unit ? ` ${kr.metric.unit}` : '';
}

function progressBar(progress, status) {
  const fill = el('div', { class: `fill ${status ?? 'none'}` });
  fill.style.width = `${Math.max(0, Math.min(100, progress ?? 0))}%`;
  return el('div', {
    class: 'bar',
    role: 'progressbar',
    'aria-valuemin': 0,
    'aria-valuemax': 100,
    'aria-valuenow': Math.round(progress ?? 0),
  }, fill);
}

function badges(item) {
  return el('span', { class: 'badges' },
    item.overdue && el('span', { class: 'badge overdue', text: 'overdue' }),
    item.status && el('span', { class: `badge ${item.status}`, text: STATUS_LABEL[item.status] ?? item.status }));
}

function lintHints(messages) {
  return messages.length
    ? el('ul', { class: 'lint' }, messages.map((m) => el('li', { text: m })))
    : null;
}

// ---- rendering ----

function renderObjectives() {
  const view = boardView(model);
  const root = $('objectives');
  if (!view.length) {
    root.replaceChildren(el('p', { class: 'empty muted', text: model.seq == null ? 'Waiting for the room…' : 'No objectives yet.' }));
    return;
  }
  root.replaceChildren(...view.map(({ objective: o, lint, keyResults }) =>
    el('article', { class: `objective ${o.status ?? 'none'}${o.overdue ? ' is-overdue' : ''}` },
      el('div', { class: 'head' },
        el('h2', { text: o.title || '(untitled objective)' }),
        el('span', { class: 'big', text: pct(o.progress) })),
      el('div', { class: 'meta' },
        badges(o),
        o.owner && el('span', { class: 'owner', text: o.owner }),
        o.commitment === 'aspirational' && el('span', { class: 'muted', text: 'aspirational' })),
      progressBar(o.progress, o.status),
      lintHints(lint),
      keyResults.length
        ? el('ul', { class: 'krs' }, keyResults.map(({ keyResult: k, lint: kl }) =>
          el('li', { class: `kr ${k.status}${k.overdue ? ' is-overdue' : ''}` },
            el('div', { class: 'head' },
              el('span', { class: 'kr-title', text: k.title || '(untitled key result)' }),
              el('span', { class: 'pct', text: pct(k.progress) })),
            progressBar(k.progress, k.status),
            el('div', { class: 'meta' },
              badges(k),
              el('span', { text: measure(k) }),
              el('span', { class: 'confidence', text: k.confidence == null ? 'no confidence yet' : `confidence ${k.confidence}/10` }),
              k.owner && el('span', { class: 'owner', text: k.owner })),
            lintHints(kl))))
        : el('p', { class: 'muted', text: 'No key results yet.' }))));
}

function renderFeed() {
  const items = feedView(model, FEED_SHOWN);
  if (!items.length) {
    $('feed').replaceChildren(el('li', { class: 'muted', text: 'Nothing yet.' }));
    return;
  }
  $('feed').replaceChildren(...items.map((it) => {
    const about = targetTitle(model, it.target) ?? '(removed)';
    const mentionsMe = it.mentions.includes(user);
    let line;
    switch (it.kind) {
      case 'checkin':
        line = [el('b', { text: it.author }), ' checked in on ', el('q', { text: about }), ': ',
          el('b', { text: `${fmt(it.value)}${unitOf(it.target.key_result)}` }),
          it.confidence != null && ` · confidence ${it.confidence}/10`];
        break;
      case 'comment':
        line = [el('b', { text: it.author }), ' commented on ', el('q', { text: about })];
        break;
      case 'mention':
        line = [el('b', { text: it.author ?? 'someone' }), ' mentioned ', el('q', { text: about })];
        break;
      case 'reminder':
        line = ['Check-in due: ', el('q', { text: about }), it.author && [' (', el('b', { text: it.author }), ')']];
        break;
      default:
        line = [it.kind];
    }
    return el('li', { class: `item ${it.kind}${mentionsMe ? ' mentions-me' : ''}` },
      el('div', {}, line),
      it.text && el('div', { class: 'text', text: it.text }),
      el('div', { class: 'small muted' },
        it.mentions.map((u) => el('span', { class: 'mention', text: `@${u}` })),
        el('time', { datetime: new Date(it.at).toISOString(), text: ago(it.at) })));
  }));
}

function renderPresent() {
  const users = presentUsers(model);
  $('present').replaceChildren(...(users.length
    ? users.map((u) => el('li', { class: u === user ? 'me' : '', text: u }))
    : [el('li', { class: 'muted', text: 'nobody' })]));
}

function renderHeader() {
  $('room').textContent = model.room ?? room;
  const c = model.cycle;
  $('cycle').textContent = c ? `${c.id} · ${c.starts} → ${c.ends}` : '';
}

let krSignature = '';
function renderCheckinForm() {
  if (!editable) return;
  const form = $('checkin-form');
  const select = form.elements.key_result;
  const view = boardView(model);
  const options = view.flatMap(({ objective, keyResults }) =>
    keyResults.map(({ keyResult }) => [keyResult.id, `${objective.title} › ${keyResult.title}`]));
  const signature = JSON.stringify(options);
  if (signature !== krSignature) {
    krSignature = signature;
    const selected = select.value;
    select.replaceChildren(...options.map(([id, label]) => el('option', { value: id, text: label })));
    if (options.some(([id]) => id === selected)) select.value = selected;
    updateValueFields();
  }
}

/// Milestone KRs are checked in with their milestones' done flags, the others with a value.
function updateValueFields() {
  const form = $('checkin-form');
  const kr = model.keyResults.get(form.elements.key_result.value);
  const milestones = kr?.metric?.kind === 'milestone' ? kr.metric.milestones ?? [] : null;
  const box = $('milestones');
  const value = form.elements.value;
  $('value-label').hidden = milestones != null;
  value.required = milestones == null;
  if (kr?.metric?.kind === 'percent') {
    value.min = '0';
    value.max = '100';
  } else {
    value.removeAttribute('min');
    value.removeAttribute('max');
  }
  box.hidden = milestones == null;
  box.replaceChildren(el('legend', { text: 'Milestones done' }),
    ...(milestones ?? []).map((m, i) => el('label', { class: 'check' },
      el('input', { type: 'checkbox', name: `milestone-${i}`, checked: m.done }), ` ${m.title}`)));
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
    renderCheckinForm();
  });
}

// ---- connection ----

function setConn(state, text) {
  const c = $('conn');
  c.className = `conn ${state}`;
  c.textContent = text;
}

function liveUrl() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const q = new URLSearchParams({ user });
  const since = resumeSince(model);
  if (since != null) q.set('since', String(since));
  return `${scheme}//${location.host}/live/${encodeURIComponent(room)}?${q}`;
}

function connect() {
  clearTimeout(retryTimer);
  retryTimer = null;
  if (stopped) return;
  setConn('connecting', attempt ? 'reconnecting…' : 'connecting…');
  const ws = new WebSocket(liveUrl());
  socket = ws;
  ws.onmessage = (e) => {
    let msg;
    try {
      msg = JSON.parse(e.data);
    } catch {
      return;
    }
    onMessage(msg);
  };
  ws.onclose = (e) => {
    if (socket !== ws) return;
    socket = null;
    if (pendingCheckin) {
      pendingCheckin = null;
      showResult('error', 'Connection lost before the answer: check the feed before sending again.');
    }
    // 1008: the room id or the user id is refused; retrying cannot help.
    if (e.code === 1008) {
      stopped = true;
      setConn('refused', `refused: ${e.reason || 'policy violation'}`);
      return;
    }
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** attempt) * (0.5 + Math.random() / 2);
    attempt += 1;
    setConn('offline', `offline — retrying in ${Math.ceil(delay / 1000)} s`);
    retryTimer = setTimeout(connect, delay);
  };
}

function onMessage(msg) {
  switch (msg.type) {
    case 'snapshot':
    case 'resumed':
      attempt = 0;
      setConn('live', 'live');
      break;
    case 'ack':
      if (msg.id === pendingCheckin) {
        pendingCheckin = null;
        showResult('ok', 'Check-in saved.');
        $('checkin-form').elements.comment.value = '';
      }
      break;
    case 'error':
      if (msg.id == null || msg.id === pendingCheckin) {
        pendingCheckin = null;
        showResult('error', `${msg.message}${msg.field ? ` (${msg.field})` : ''}`);
      }
      break;
    default:
      break;
  }
  applyMessage(model, msg);
  render();
}

// ---- check-in form ----

function showResult(kind, text) {
  const r = $('checkin-result');
  r.className = `result ${kind}`;
  r.textContent = text;
  $('checkin-form').querySelector('button').disabled = false;
}

function submitCheckin(e) {
  e.preventDefault();
  const form = e.target;
  if (!socket || socket.readyState !== WebSocket.OPEN) {
    showResult('error', 'Not connected: try again when the board is live.');
    return;
  }
  const f = form.elements;
  const kr = model.keyResults.get(f.key_result.value);
  if (!kr) {
    showResult('error', 'Pick a key result.');
    return;
  }
  const command = {
    id: `ci-${Date.now().toString(36)}-${++commandCounter}`,
    type: 'checkin.create',
    key_result: kr.id,
    confidence: Number.parseInt(f.confidence.value, 10),
    comment: f.comment.value,
  };
  if (kr.metric?.kind === 'milestone') {
    command.milestones = (kr.metric.milestones ?? []).map((_, i) => form.elements[`milestone-${i}`]?.checked ?? false);
  } else {
    command.value = Number(f.value.value);
  }
  pendingCheckin = command.id;
  form.querySelector('button').disabled = true;
  $('checkin-result').className = 'result';
  $('checkin-result').textContent = 'Sending…';
  socket.send(JSON.stringify(command));
}

// ---- start ----

function start() {
  if (!room || !user) {
    $('objectives').replaceChildren(el('p', {},
      'Which room? ', el('a', { href: '/', text: 'Pick a room and your user id' }), '.'));
    setConn('refused', 'no room');
    return;
  }
  document.title = `${room} — okrhub`;
  renderHeader();
  if (editable) {
    $('checkin').hidden = false;
    $('checkin-form').addEventListener('submit', submitCheckin);
    $('checkin-form').elements.key_result.addEventListener('change', updateValueFields);
  }
  // Relative times ("3 min ago") age without messages.
  setInterval(render, 30_000);
  // Back online: do not wait for the backoff.
  addEventListener('online', () => {
    if (!socket && !stopped) connect();
  });
  connect();
}

start();
