// The room screen (`/rooms/{room}/screen`): every objective of the room, large, for a 1920×1080
// screen seen across a meeting room. Read-only: it only listens on `/live/{room}` (a viewer's
// token is enough) and renders model.js's model. When the objectives do not fit, it pages through
// them on a timer; pages are packed from the cards' measured heights. What just changed glows
// for two seconds. Every piece of user text reaches the page through textContent (el() below).
//
// Test hooks: `?page_ms=N` sets the paging interval (0: no timer), `window.okrScreen` has
// `nextPage()`, `page()`, `pages()`, `layout()` and `model`.

import { $, el, liveUrl } from './dom.js';
import { LiveSocket } from './live.js';
import {
  applyMessage,
  boardView,
  emptyModel,
  feedView,
  presentUsers,
  resumeSince,
  targetTitle,
} from './model.js';
import {
  applyDocumentLang,
  bindLangSwitch,
  fmtDate,
  fmtNumber,
  fmtRelative,
  onLangChange,
  t,
} from './i18n.js';
import './screen-strings.js';

const params = new URLSearchParams(location.search);
const room = roomFromPath() ?? params.get('room') ?? '';
const user = params.get('user') ?? '';
const pageMsParam = Number.parseInt(params.get('page_ms') ?? '', 10);
const PAGE_MS = Number.isFinite(pageMsParam) && pageMsParam >= 0 ? pageMsParam : 12_000;

const FEED_SHOWN = 20;
const PRESENT_SHOWN = 8;
const HIGHLIGHT_MS = 2_000;
/// A screen on the wall should come back soon after the hub does.
const BACKOFF_MAX_MS = 10_000;
/// Cards are at least this many rem wide; the objectives area gets as many columns as fit (≤ 3).
const CARD_MIN_REM = 48;
const MAX_COLUMNS = 3;
const NARROW = matchMedia('(max-width: 820px)');

let model = emptyModel();
/// The /live socket (live.js), once started.
let live = null;
let everLive = false;
let connState = 'connecting';
let connReason = '';
let retryAt = 0;

/// key ('o:id', 'kr:id', 'feed:key') → performance.now() when it last changed.
const changedAt = new Map();

let pages = []; // [[card element per column…] per page]
let pageIndex = 0;
let pageTimer = null;

// ---- helpers ----


function roomFromPath() {
  const m = /^\/rooms\/([^/]+)\/screen\/?$/.exec(location.pathname);
  if (!m) return null;
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return null;
  }
}


function pct(n) {
  // `|| 0` turns a rounded -0 into 0 (Intl would print "-0%").
  return fmtNumber((Math.round(n ?? 0) || 0) / 100, { style: 'percent', maximumFractionDigits: 0 });
}

function todayUtc() {
  return new Date().toISOString().slice(0, 10);
}

/// The cycle has ended: today (UTC) is after its last day.
/// Closed by an admin (`cycle.close`), or past its last day.
function isClosed() {
  return Boolean(model.cycle?.closed) || (model.cycle?.ends != null && todayUtc() > model.cycle.ends);
}

/// The score (0–1) a closed cycle gave an objective or a KR, if it has one yet.
function scoreOf(item) {
  if (typeof item.score === 'number') return item.score;
  if (typeof item.score?.final === 'number') return item.score.final;
  return null;
}

/// How an objective or KR ended, once the cycle is closed: Google's grading (0.7 is success).
function finalGrade(progress) {
  if (progress == null) return 'none';
  if (progress >= 70) return 'met';
  if (progress >= 30) return 'partial';
  return 'missed';
}

function unitSuffix(unit) {
  return unit ? ` ${unit}` : '';
}

/// "40 → 100 users", "62%", "3 of 5 milestones", …
function measure(kr) {
  const m = kr.metric ?? {};
  const unit = unitSuffix(m.unit);
  switch (m.kind) {
    case 'percent':
      return pct(kr.current ?? 0);
    case 'increase':
    case 'decrease':
      return t('screen.measure.increase', { current: fmtNumber(kr.current), target: fmtNumber(m.target), unit });
    case 'stay_above':
      return t('screen.measure.stay_above', { current: fmtNumber(kr.current), threshold: fmtNumber(m.threshold), unit });
    case 'stay_below':
      return t('screen.measure.stay_below', { current: fmtNumber(kr.current), threshold: fmtNumber(m.threshold), unit });
    case 'milestone': {
      const ms = m.milestones ?? [];
      return t('screen.measure.milestone', { done: ms.filter((x) => x.done).length, total: ms.length });
    }
    default:
      return fmtNumber(kr.current);
  }
}

/// A check-in's value with its KR's unit.
function checkinValue(it) {
  if (it.value == null) return null;
  const kr = model.keyResults.get(it.target?.key_result);
  const kind = kr?.metric?.kind;
  if (kind === 'percent') return fmtNumber(it.value / 100, { style: 'percent', maximumFractionDigits: 1 });
  return `${fmtNumber(it.value)}${unitSuffix(kr?.metric?.unit)}`;
}

function progressBar(progress, cls) {
  const fill = el('div', { class: `fill ${cls}` });
  fill.style.width = `${Math.max(0, Math.min(100, progress ?? 0))}%`;
  return el('div', { class: 'bar', 'aria-hidden': 'true' }, fill);
}

/// The status badge: the traffic light while the cycle runs, the final grade once it closed.
function statusBadge(item, closed) {
  if (closed) {
    const score = scoreOf(item);
    const g = finalGrade(score == null ? item.progress : score * 100);
    const text = score == null ? t(`screen.final.${g}`) : `${t(`screen.final.${g}`)} · ${fmtNumber(score, { minimumFractionDigits: 1, maximumFractionDigits: 2 })}`;
    return { cls: `final-${g}`, badge: el('span', { class: `badge final-${g}`, 'data-testid': 'status', 'data-score': score ?? undefined, text }) };
  }
  const badge = item.status
    ? el('span', { class: `badge ${item.status}`, 'data-testid': 'status', text: t(`screen.status.${item.status}`) })
    : null;
  return { cls: item.status ?? 'none', badge };
}

function overdueTag(item, closed) {
  return !closed && item.overdue ? el('span', { class: 'badge overdue', text: t('screen.status.overdue') }) : null;
}

function ownerTag(owner) {
  return owner ? el('span', { class: 'owner' }, el('span', { class: 'label', text: t('screen.owner') }), ' ', el('b', { text: owner })) : null;
}

/// Adds `just-changed` to what changed in the last two seconds; a re-render keeps the
/// animation where it was (a negative delay), so a busy room does not restart it.
function highlight(e, key) {
  const at = changedAt.get(key);
  if (at == null) return e;
  const age = performance.now() - at;
  if (age >= HIGHLIGHT_MS) {
    changedAt.delete(key);
    return e;
  }
  e.classList.add('just-changed');
  e.style.animationDelay = `-${Math.round(age)}ms`;
  return e;
}

// ---- rendering ----

/// One KR as a row: title, measure, bar, percent, status, confidence, owner (a table on a wide
/// screen, stacked on a narrow one: screen.css).
function krItem(k, closed) {
  const { cls, badge } = statusBadge(k, closed);
  const conf = k.confidence == null
    ? el('span', { class: 'confidence none', text: t('screen.no_confidence') })
    : el('span', { class: 'confidence', text: t('screen.confidence', { n: k.confidence }) });
  return highlight(el('li', { class: `kr ${cls}${!closed && k.overdue ? ' is-overdue' : ''}`, 'data-testid': 'kr', 'data-id': k.id },
    el('span', { class: 'kr-title' }, el('span', { text: k.title || t('screen.untitled_kr') }), overdueTag(k, closed)),
    el('span', { class: 'measure', text: measure(k) }),
    progressBar(k.progress, cls),
    el('span', { class: 'pct', text: pct(k.progress) }),
    el('span', { class: 'status' }, badge),
    conf,
    ownerTag(k.owner) ?? el('span', { class: 'owner' })), `kr:${k.id}`);
}

function objectiveCard({ objective: o, keyResults }, closed) {
  const { cls, badge } = statusBadge(o, closed);
  return highlight(el('article', {
    class: `objective ${cls}${!closed && o.overdue ? ' is-overdue' : ''}`,
    'data-testid': 'objective',
    'data-id': o.id,
  },
  el('div', { class: 'o-head' },
    el('h3', { text: o.title || t('screen.untitled_objective') }),
    el('span', { class: 'o-meta' },
      o.commitment === 'aspirational' && el('span', { class: 'aspirational', text: t('screen.aspirational') }),
      ownerTag(o.owner),
      overdueTag(o, closed),
      badge),
    el('span', { class: 'big', text: pct(o.progress) })),
  progressBar(o.progress, cls),
  keyResults.length
    ? el('ul', { class: 'krs' }, keyResults.map(({ keyResult }) => krItem(keyResult, closed)))
    : el('p', { class: 'none', text: t('screen.no_krs') })), `o:${o.id}`);
}

function renderObjectives() {
  const view = boardView(model);
  const closed = isClosed();
  const root = $('pages');
  if (!view.length) {
    pages = [];
    pageIndex = 0;
    root.replaceChildren(el('p', { class: 'empty', text: model.seq == null ? t('screen.waiting') : t('screen.no_objectives') }));
    renderPager();
    return;
  }
  layout(view.map((entry) => objectiveCard(entry, closed)));
}

function remPx() {
  return Number.parseFloat(getComputedStyle(document.documentElement).fontSize) || 16;
}

/// Packs the cards into pages of columns from their measured heights (column by column, in
/// board order), then shows the current page.
function layout(cards) {
  const area = $('objectives');
  const root = $('pages');
  const measureBox = $('measuring');
  const gap = remPx() * 1;
  const width = area.clientWidth;
  // A phone scrolls through everything instead (screen.css).
  const height = NARROW.matches ? Infinity : area.clientHeight;
  const columns = Math.max(1, Math.min(MAX_COLUMNS, Math.floor((width + gap) / (CARD_MIN_REM * remPx() + gap))));
  const colWidth = (width - gap * (columns - 1)) / columns;

  measureBox.style.width = `${colWidth}px`;
  measureBox.replaceChildren(...cards);
  for (const card of cards) fitCard(card, height);
  const heights = cards.map((c) => c.getBoundingClientRect().height);

  const packed = [];
  let page = null;
  let col = null;
  let used = 0;
  cards.forEach((card, i) => {
    const h = heights[i];
    if (col && used + gap + h <= height) {
      col.push(card);
      used += gap + h;
      return;
    }
    if (!page || page.length === columns) {
      page = [];
      packed.push(page);
    }
    col = [card];
    page.push(col);
    used = h;
  });

  pages = packed;
  if (pageIndex >= pages.length) pageIndex = 0;
  root.replaceChildren(...pages.map((p, i) => {
    const pageEl = el('div', { class: 'page', 'data-testid': 'page', 'data-page': i + 1 });
    pageEl.style.gridTemplateColumns = `repeat(${columns}, minmax(0, 1fr))`;
    pageEl.hidden = i !== pageIndex;
    pageEl.append(...p.map((c) => el('div', { class: 'col' }, c)));
    return pageEl;
  }));
  measureBox.replaceChildren();
  renderPager();
  schedulePaging();
}

/// A card taller than the whole area (an objective with many KRs) shows the KRs that fit and
/// says how many more there are.
function fitCard(card, height) {
  if (card.getBoundingClientRect().height <= height) return;
  const list = card.querySelector('.krs');
  if (!list) return;
  const items = [...list.children];
  let hidden = 0;
  const more = el('li', { class: 'more' });
  list.append(more);
  while (items.length > 1 && card.getBoundingClientRect().height > height) {
    items.pop().remove();
    hidden += 1;
    more.textContent = t('screen.more_krs', { n: hidden });
  }
  if (!hidden) more.remove();
}

function renderPager() {
  const p = $('pager');
  const n = pages.length;
  p.hidden = n <= 1;
  p.textContent = `${pageIndex + 1} / ${Math.max(1, n)}`;
  p.setAttribute('aria-label', t('screen.page', { page: pageIndex + 1, pages: Math.max(1, n) }));
  p.dataset.page = String(pageIndex + 1);
  p.dataset.pages = String(Math.max(1, n));
}

function showPage(i) {
  if (!pages.length) return;
  pageIndex = ((i % pages.length) + pages.length) % pages.length;
  for (const pageEl of $('pages').children) {
    const shown = Number(pageEl.dataset.page) === pageIndex + 1;
    pageEl.hidden = !shown;
    pageEl.classList.toggle('turned', shown);
  }
  renderPager();
}

function nextPage() {
  showPage(pageIndex + 1);
  restartPaging();
}

function schedulePaging() {
  if (pages.length <= 1 || PAGE_MS === 0) {
    clearInterval(pageTimer);
    pageTimer = null;
    return;
  }
  if (pageTimer == null) pageTimer = setInterval(() => showPage(pageIndex + 1), PAGE_MS);
}

function restartPaging() {
  clearInterval(pageTimer);
  pageTimer = null;
  schedulePaging();
}

function feedLine(it) {
  const about = targetTitle(model, it.target) ?? t('screen.removed');
  const who = el('b', { class: 'author', text: it.author ?? t('screen.someone') });
  const action = el('span', { class: 'action', text: t(`screen.feed.${it.kind}`) });
  const time = el('time', { datetime: new Date(it.at).toISOString(), text: fmtRelative(it.at) });
  const value = it.kind === 'checkin' ? checkinValue(it) : null;
  return [
    el('div', { class: 'f-head' }, el('span', {}, who, ' ', action), time),
    el('div', { class: 'about', text: about }),
    (value != null || it.confidence != null) && el('div', { class: 'f-values' },
      value != null && el('span', { class: 'value', text: value }),
      it.confidence != null && el('span', { class: 'confidence', text: t('screen.confidence', { n: it.confidence }) })),
    it.text && el('div', { class: 'text', text: it.text }),
    it.mentions?.length > 0 && el('div', { class: 'mentions' }, it.mentions.map((u) => el('span', { class: 'mention', text: `@${u}` }))),
  ];
}

function renderFeed() {
  const items = feedView(model, FEED_SHOWN);
  const list = $('feed');
  if (!items.length) {
    list.replaceChildren(el('li', { class: 'none', text: t('screen.no_feed') }));
    return;
  }
  list.replaceChildren(...items.map((it) =>
    highlight(el('li', { class: `item ${it.kind}`, 'data-testid': 'feed-item', 'data-key': it.key }, feedLine(it)), `feed:${it.key}`)));
  // Whole items only: what does not fit is left off (not cut in half).
  const bottom = list.getBoundingClientRect().bottom;
  for (const li of list.children) li.hidden = false;
  for (const li of [...list.children].slice(1)) {
    if (li.getBoundingClientRect().bottom > bottom + 1) li.hidden = true;
  }
}

function renderPresent() {
  const users = presentUsers(model);
  const shown = users.slice(0, PRESENT_SHOWN);
  $('present').replaceChildren(...(users.length
    ? [...shown.map((u) => el('li', { text: u })),
      users.length > shown.length && el('li', { class: 'more', text: t('screen.present.more', { n: users.length - shown.length }) })]
      .filter(Boolean)
    : [el('li', { class: 'none', text: t('screen.present.nobody') })]));
}

function daysLeft(c) {
  const today = todayUtc();
  if (today < c.starts) return t('screen.not_started', { date: fmtDate(c.starts) });
  const ms = Date.parse(`${c.ends}T00:00:00Z`) - Date.parse(`${today}T00:00:00Z`);
  const n = Math.round(ms / 86_400_000);
  if (n === 0) return t('screen.last_day');
  return n === 1 ? t('screen.day_left') : t('screen.days_left', { n: fmtNumber(n) });
}

function renderHeader() {
  const name = model.room ?? room;
  $('room').textContent = name;
  document.title = t('screen.title', { room: name });
  const c = model.cycle;
  const closed = isClosed();
  $('cycle').textContent = c
    ? [t('screen.cycle', { cycle: c.id ?? '', starts: fmtDate(c.starts), ends: fmtDate(c.ends) }), !closed && daysLeft(c)]
      .filter(Boolean).join(' · ')
    : '';
  const banner = $('closed');
  banner.hidden = !closed;
  if (closed) banner.textContent = t('screen.closed', { cycle: c.id ?? '', date: fmtDate(c.closed_at ?? c.ends) });
  document.body.classList.toggle('is-closed', closed);
}

function renderConn() {
  const pill = $('conn');
  const banner = $('stale');
  pill.dataset.state = connState;
  pill.className = `conn ${connState}`;
  pill.textContent = {
    live: t('screen.conn.live'),
    connecting: t('screen.conn.connecting'),
    reconnecting: t('screen.conn.reconnecting'),
    refused: connReason,
  }[connState] ?? connState;
  // Not live after having been live: say so across the room, and dim what may be stale.
  const stale = everLive && connState !== 'live';
  const retry = retryAt > Date.now()
    ? t('screen.conn.offline_retry', { s: fmtNumber(Math.ceil((retryAt - Date.now()) / 1000)) })
    : t('screen.conn.reconnecting');
  banner.hidden = !(stale || connState === 'refused');
  banner.textContent = connState === 'refused' ? connReason : `${retry} — ${t('screen.conn.stale')}`;
  document.body.classList.toggle('is-stale', stale);
}

let renderQueued = false;
let renderFull = false;
function render(full = true) {
  renderFull ||= full;
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    const all = renderFull;
    renderFull = false;
    renderHeader();
    renderConn();
    renderPresent();
    if (all) renderObjectives();
    renderFeed();
  });
}

// ---- what just changed ----

function markChanged(msg) {
  const now = performance.now();
  const mark = (key) => changedAt.set(key, now);
  switch (msg.type) {
    case 'objective.created':
      mark(`o:${msg.objective.id}`);
      break;
    case 'objective.updated':
    case 'objective.archived':
      mark(`o:${msg.objective}`);
      break;
    case 'kr.created':
      mark(`kr:${msg.key_result.id}`);
      if (msg.key_result.objective) mark(`o:${msg.key_result.objective}`);
      break;
    case 'kr.updated':
    case 'kr.archived':
      mark(`kr:${msg.key_result}`);
      if (msg.objective) mark(`o:${msg.objective}`);
      break;
    case 'checkin.created':
      mark(`feed:checkin:${msg.checkin.id}`);
      mark(`kr:${msg.checkin.key_result}`);
      break;
    case 'comment.created':
      mark(`feed:comment:${msg.comment.id}`);
      if (msg.comment.target?.key_result) mark(`kr:${msg.comment.target.key_result}`);
      if (msg.comment.target?.objective) mark(`o:${msg.comment.target.objective}`);
      break;
    default:
      break;
  }
}

/// Feed-only events need not re-pack the objectives.
function touchesObjectives(msg) {
  return !['presence', 'present', 'ack', 'error', 'mention', 'reminder', 'lint.changed'].includes(msg.type);
}

// ---- connection ----

function setConn(state, reason = '') {
  connState = state;
  connReason = reason;
  render(false);
}

function connect() {
  live = new LiveSocket(() => liveUrl(room, { user, since: resumeSince(model) }), {
    message: onMessage,
    maxMs: BACKOFF_MAX_MS,
    connecting: (attempt) => {
      retryAt = 0;
      setConn(everLive || attempt ? 'reconnecting' : 'connecting');
    },
    // 1008: the room id is refused or the token expired; retrying cannot help.
    refused: (reason) => setConn('refused', t('screen.conn.refused', { reason })),
    retrying: (delay) => {
      retryAt = Date.now() + delay;
      setConn('reconnecting');
    },
  });
  live.now();
}

function onMessage(msg) {
  if (msg.type === 'snapshot' || msg.type === 'resumed') {
    live.live();
    everLive = true;
    connState = 'live';
  } else if (msg.type !== 'snapshot' && typeof msg.seq === 'number' && msg.type !== 'presence' && msg.type !== 'present') {
    markChanged(msg);
  }
  applyMessage(model, msg);
  render(msg.type === 'snapshot' || touchesObjectives(msg));
}

// ---- start ----

/// Who is asking, before connecting: an open server needs `?user=`, a closed one a sign-in.
async function checkSession() {
  const q = new URLSearchParams({ room });
  if (user) q.set('user', user);
  try {
    const r = await fetch(`/api/session?${q}`, { credentials: 'same-origin' });
    if (r.status === 401) return 'signin';
    if (!r.ok) return 'ok';
    const s = await r.json();
    if (s.open && !user) return 'no_user';
    if (!s.open && !s.user) return 'signin';
    return 'ok';
  } catch {
    return 'ok'; // the hub is down: the socket's back-off handles it
  }
}

function showMessage(text) {
  $('pages').replaceChildren(el('p', { class: 'empty', text }));
}

async function start() {
  bindLangSwitch($('lang'));
  applyDocumentLang();
  onLangChange(() => {
    applyDocumentLang();
    render();
  });
  window.okrScreen = {
    nextPage,
    page: () => pageIndex + 1,
    pages: () => Math.max(1, pages.length),
    layout: () => renderObjectives(),
    get model() {
      return model;
    },
  };
  if (!room) {
    setConn('refused', t('screen.conn.refused', { reason: 'no room' }));
    return;
  }
  $('room').textContent = room;
  document.title = t('screen.title', { room });
  const session = await checkSession();
  if (session === 'no_user') {
    setConn('refused', t('screen.conn.no_user'));
    showMessage(t('screen.conn.no_user'));
    return;
  }
  if (session === 'signin') {
    setConn('refused', t('screen.conn.signin'));
    showMessage(t('screen.signin_hint'));
    return;
  }
  // Relative times age, the countdown ticks, a cycle closes at midnight: re-render now and then.
  setInterval(() => render(isClosed() !== document.body.classList.contains('is-closed')), 15_000);
  setInterval(() => {
    if (connState === 'reconnecting') renderConn();
  }, 1_000);
  let resizeTimer = null;
  addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => render(), 150);
  });
  document.fonts?.ready?.then(() => render());
  connect();
}

start();
