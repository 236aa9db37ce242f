// The start page (`/`): who I am (`GET /api/session`), the rooms I may read (`GET /api/rooms`)
// grouped by cycle then team, a form creating a room for a team and cycle (`cycle.set`), and on
// an open server the old "room id + user id" form. User text reaches the page through
// textContent only.

import { $, el } from './dom.js';
import { applyDocumentLang, bindLangSwitch, fmtDate, onLangChange, t } from './i18n.js';
import './index-strings.js';

const params = new URLSearchParams(location.search);
/// On an open server the acting user comes from the address and is passed on.
const user = params.get('user') ?? '';

const PART = /^[A-Za-z0-9_-]+$/;
const TEAM = /^~?[A-Za-z0-9_-]+$/;

let session = null;
let rooms = null;
let roomsError = null;



/// `?user=` for links and API calls on an open server.
function userQuery(prefix = '?') {
  return user ? `${prefix}user=${encodeURIComponent(user)}` : '';
}

function boardHref(room) {
  return `/rooms/${encodeURIComponent(room)}${userQuery()}`;
}

function screenHref(room) {
  return `/rooms/${encodeURIComponent(room)}/screen${userQuery()}`;
}

/// The message of an error body (`{error: {code, message, field}}`), or the status line.
async function errorText(r) {
  try {
    const body = await r.json();
    const e = body?.error;
    if (e?.message) return `${e.message}${e.field ? ` (${e.field})` : ''}`;
  } catch {
    // not JSON
  }
  return `HTTP ${r.status}`;
}

// ---- cycles ----

function pad(n) {
  return String(n).padStart(2, '0');
}

function iso(y, m, d) {
  return `${y}-${pad(m)}-${pad(d)}`;
}

/// The last day of month `m` (1–12) of year `y`.
function lastDay(y, m) {
  return new Date(Date.UTC(y, m, 0)).getUTCDate();
}

/// A cycle id's kind and dates: 2026-Q3, 2026-H2, 2026-07, 2026; null for anything else.
export function cycleFromId(id) {
  let m = /^(\d{4})-Q([1-4])$/i.exec(id);
  if (m) {
    const y = Number(m[1]);
    const q = Number(m[2]);
    return { kind: 'quarter', starts: iso(y, q * 3 - 2, 1), ends: iso(y, q * 3, lastDay(y, q * 3)) };
  }
  m = /^(\d{4})-H([12])$/i.exec(id);
  if (m) {
    const y = Number(m[1]);
    const h = Number(m[2]);
    return { kind: 'half', starts: iso(y, h * 6 - 5, 1), ends: iso(y, h * 6, lastDay(y, h * 6)) };
  }
  m = /^(\d{4})-(0[1-9]|1[0-2])$/.exec(id);
  if (m) {
    const y = Number(m[1]);
    const mo = Number(m[2]);
    return { kind: 'month', starts: iso(y, mo, 1), ends: iso(y, mo, lastDay(y, mo)) };
  }
  m = /^(\d{4})$/.exec(id);
  if (m) return { kind: 'year', starts: `${m[1]}-01-01`, ends: `${m[1]}-12-31` };
  return null;
}

function currentQuarter() {
  const d = new Date();
  return `${d.getUTCFullYear()}-Q${Math.floor(d.getUTCMonth() / 3) + 1}`;
}

// ---- who am I ----

async function loadSession() {
  try {
    const r = await fetch(`/api/session${userQuery()}`, { credentials: 'same-origin' });
    if (r.status === 401) return { open: false, user: null };
    if (!r.ok) throw new Error(await errorText(r));
    return await r.json();
  } catch (e) {
    return { error: e.message ?? String(e) };
  }
}

function renderWho() {
  const who = $('whoami');
  const out = $('signout');
  out.hidden = true;
  renderWhoText(who);
  who.hidden = !who.textContent;
}

function renderWhoText(who) {
  const out = $('signout');
  if (!session) {
    who.textContent = t('index.who.loading');
    return;
  }
  if (session.error) {
    who.textContent = t('index.who.error', { message: session.error });
    return;
  }
  if (session.open) {
    who.textContent = session.user ? t('index.who.open_as', { user: session.user }) : t('index.who.open');
    return;
  }
  if (!session.user) {
    who.textContent = '';
    return;
  }
  const parts = [session.name && session.name !== session.user
    ? t('index.who.signed_in_named', { name: session.name, user: session.user })
    : t('index.who.signed_in', { user: session.user })];
  if (session.org) parts.push(t('index.who.org', { org: session.org }));
  if (session.expires_at) {
    // Epoch ms per the protocol; a JWT `exp` in seconds is accepted too.
    const ms = session.expires_at < 1e12 ? session.expires_at * 1000 : session.expires_at;
    parts.push(t('index.who.expires', { date: fmtDate(ms) }));
  }
  who.textContent = parts.join(' · ');
  out.hidden = false;
}

async function signOut() {
  $('signout').disabled = true;
  try {
    const r = await fetch('/api/session', { method: 'DELETE', credentials: 'same-origin' });
    if (!r.ok) throw new Error(await errorText(r));
    location.assign('/');
  } catch (e) {
    showPageError(t('index.signout.failed', { message: e.message ?? String(e) }));
    $('signout').disabled = false;
  }
}

function showPageError(text) {
  const p = $('page-error');
  p.hidden = !text;
  p.textContent = text ?? '';
}

// ---- rooms ----

async function loadRooms() {
  try {
    const q = new URLSearchParams();
    for (const k of ['org', 'team', 'cycle']) if (params.get(k)) q.set(k, params.get(k));
    if (user) q.set('user', user);
    const qs = q.toString();
    const r = await fetch(`/api/rooms${qs ? `?${qs}` : ''}`, { credentials: 'same-origin' });
    if (!r.ok) throw new Error(await errorText(r));
    const body = await r.json();
    rooms = Array.isArray(body?.rooms) ? body.rooms : [];
    roomsError = null;
  } catch (e) {
    rooms = null;
    roomsError = e.message ?? String(e);
  }
  renderRooms();
}

/// Cycles newest first (ids like 2026-Q3 sort by text), then teams by name.
function groupRooms(list) {
  const byCycle = new Map();
  for (const r of list) {
    const parts = String(r.room ?? '').split('.');
    const cycle = r.cycle ?? parts[2] ?? '';
    if (!byCycle.has(cycle)) byCycle.set(cycle, []);
    byCycle.get(cycle).push({ ...r, team: r.team ?? parts[1] ?? '', org: r.org ?? parts[0] ?? '' });
  }
  return [...byCycle.entries()]
    .sort(([a], [b]) => (a < b ? 1 : a > b ? -1 : 0))
    .map(([cycle, rs]) => [cycle, rs.sort((a, b) => a.team.localeCompare(b.team) || a.org.localeCompare(b.org))]);
}

function renderRooms() {
  const box = $('room-list');
  if (roomsError) {
    box.replaceChildren(el('p', { class: 'error', role: 'alert', text: t('index.rooms.error', { message: roomsError }) }));
    return;
  }
  if (rooms == null) {
    box.replaceChildren(el('p', { class: 'muted', text: t('index.rooms.loading') }));
    return;
  }
  if (!rooms.length) {
    box.replaceChildren(el('p', { class: 'muted', 'data-testid': 'no-rooms', text: t('index.rooms.none') }));
    return;
  }
  const orgs = new Set(rooms.map((r) => r.org ?? String(r.room).split('.')[0]));
  box.replaceChildren(...groupRooms(rooms).map(([cycle, rs]) =>
    el('section', { class: 'cycle-group', 'data-testid': 'cycle-group', 'data-cycle': cycle },
      el('h3', { text: t('index.rooms.cycle', { cycle }) }),
      el('ul', { class: 'room-list' }, rs.map((r) =>
        el('li', { class: 'room', 'data-testid': 'room', 'data-room': r.room },
          el('span', { class: 'team' },
            el('b', { text: r.team }),
            orgs.size > 1 && el('span', { class: 'muted', text: ` · ${r.org}` }),
            r.personal && el('span', { class: 'tag', text: t('index.rooms.personal') }),
            el('span', { class: `tag role ${r.role ?? 'none'}`, text: t(`index.role.${r.role ?? 'none'}`) })),
          el('span', { class: 'links' },
            el('a', { href: boardHref(r.room), 'data-testid': 'board-link', text: t('index.rooms.board') }),
            el('a', { href: screenHref(r.room), 'data-testid': 'screen-link', text: t('index.rooms.screen') }))))))));
}

// ---- create a room ----

function formRoom(f) {
  const part = (input, name) => input.value.trim() || `{${name}}`;
  return `${part(f.org, 'org')}.${part(f.team, 'team')}.${part(f.cycle, 'cycle')}`;
}

/// The room id the form makes, and its period in the page's language (the date inputs show
/// the browser's own format, which need not be the page's).
function updateCreatePreview() {
  const f = $('create-form').elements;
  const period = f.starts.value && f.ends.value ? ` · ${fmtDate(f.starts.value)} – ${fmtDate(f.ends.value)}` : '';
  $('create-room').textContent = t('index.create.room', { room: formRoom(f) }) + period;
}

function fillFromCycle() {
  const f = $('create-form').elements;
  const c = cycleFromId(f.cycle.value.trim());
  if (c) {
    f.kind.value = c.kind;
    f.starts.value = c.starts;
    f.ends.value = c.ends;
  } else {
    f.kind.value = 'custom';
  }
  updateCreatePreview();
}

function setCreateResult(kind, text) {
  const r = $('create-result');
  r.className = `result ${kind}`;
  r.textContent = text;
}

async function submitCreate(e) {
  e.preventDefault();
  const form = e.target;
  const f = form.elements;
  const org = f.org.value.trim();
  const team = f.team.value.trim();
  const cycle = f.cycle.value.trim();
  if (!PART.test(org) || !TEAM.test(team) || !PART.test(cycle)) {
    setCreateResult('error', t('index.create.bad_room'));
    return;
  }
  if (!f.starts.value || !f.ends.value || f.ends.value < f.starts.value) {
    setCreateResult('error', t('index.create.bad_dates'));
    return;
  }
  const room = `${org}.${team}.${cycle}`;
  const button = form.querySelector('button[type=submit]');
  button.disabled = true;
  setCreateResult('', t('index.create.sending'));
  try {
    const r = await fetch(`/api/rooms/${encodeURIComponent(room)}/commands${userQuery()}`, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ type: 'cycle.set', cycle, kind: f.kind.value, starts: f.starts.value, ends: f.ends.value }),
    });
    if (!r.ok) {
      const message = await errorText(r);
      setCreateResult('error', r.status === 403
        ? `${t('index.create.forbidden')} (${message})`
        : t('index.create.error', { message }));
      button.disabled = false;
      return;
    }
    location.assign(boardHref(room));
  } catch (err) {
    setCreateResult('error', t('index.create.error', { message: err.message ?? String(err) }));
    button.disabled = false;
  }
}

function setupCreate() {
  const form = $('create-form');
  const f = form.elements;
  if (session?.org) {
    f.org.value = session.org;
    f.org.readOnly = true;
  } else if (!f.org.value) {
    f.org.value = params.get('org') ?? '';
  }
  if (!f.cycle.value) f.cycle.value = params.get('cycle') ?? currentQuarter();
  if (params.get('team')) f.team.value = params.get('team');
  fillFromCycle();
  f.cycle.addEventListener('input', fillFromCycle);
  f.org.addEventListener('input', updateCreatePreview);
  f.team.addEventListener('input', updateCreatePreview);
  f.starts.addEventListener('change', updateCreatePreview);
  f.ends.addEventListener('change', updateCreatePreview);
  form.addEventListener('submit', submitCreate);
}

// ---- the old form (open server) ----

function setupOpen() {
  const form = $('open-form');
  if (user) form.elements.user.value = user;
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const to = e.submitter?.value === 'screen' ? 'screen' : 'board';
    go(form.elements.room.value.trim(), form.elements.user.value.trim(), to);
  });
}

function go(room, who, to = 'board') {
  const q = who ? `?user=${encodeURIComponent(who)}` : '';
  location.assign(`/rooms/${encodeURIComponent(room)}${to === 'screen' ? '/screen' : ''}${q}`);
}

// ---- start ----

function renderStatic() {
  applyDocumentLang();
  document.title = t('index.title');
  $('create-hint').textContent = t('index.create.hint', { org: '{org}', team: '{team}', cycle: '{cycle}' });
  renderWho();
  renderRooms();
  updateCreatePreview();
}

async function start() {
  // `/?room=R&user=U` (the old picker's links) opens the room.
  if (params.get('room')) {
    go(params.get('room'), user, params.get('to') === 'screen' ? 'screen' : 'board');
    return;
  }
  bindLangSwitch($('lang'));
  onLangChange(renderStatic);
  renderStatic();
  $('signout').addEventListener('click', signOut);
  setupOpen();

  session = await loadSession();
  const signedIn = !session.error && Boolean(session.open ? user : session.user);
  $('signin').hidden = Boolean(signedIn) || Boolean(session.error);
  $('rooms').hidden = !signedIn;
  $('create').hidden = !signedIn;
  // The room-id form: an open server's way in (there is no sign-in to ask for).
  $('open').hidden = !session.open;
  if (session.error) showPageError(t('index.who.error', { message: session.error }));
  setupCreate();
  renderStatic();
  if (signedIn) await loadRooms();
  document.body.dataset.ready = '1';
}

start();
