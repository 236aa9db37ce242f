// The dashboard's in-memory model of one room, fed by `/live/{room}` messages
// (src/live/messages.rs). No DOM, no I/O: board.js renders it, tests/interop/board.test.mjs
// checks it in Node.
//
// Every function mutates the model it is given and returns it. Applying a message twice is
// harmless (objectives and KRs are replaced whole, check-ins and comments are keyed by id,
// feed items by what they are about), so a reconnect may resume from one seq early and replay
// the events of the last seq it saw — some of which it may have missed when the socket broke.

/// How many feed items are kept (the board shows fewer).
export const FEED_KEEP = 100;

export function emptyModel() {
  return {
    room: null,
    /// The highest seq of an event or snapshot applied; resume from here.
    seq: null,
    asOf: null,
    cycle: null,
    objectives: new Map(),
    keyResults: new Map(),
    lint: [],
    problems: [],
    /// presenceKey → {user, via, client?}
    present: new Map(),
    /// feed key → item; see feedView().
    feed: new Map(),
    /// Every check-in and comment by id (the feed keeps only the latest FEED_KEEP).
    checkins: new Map(),
    comments: new Map(),
  };
}

export function presenceKey(p) {
  return `${p.via}\u0000${p.user}\u0000${p.client ?? ''}`;
}

/// A fresh snapshot replaces everything.
export function applySnapshot(model, msg) {
  const okr = msg.okr ?? {};
  model.room = msg.room;
  model.seq = msg.seq;
  model.asOf = okr.as_of ?? null;
  model.cycle = okr.cycle ?? null;
  model.objectives = new Map((okr.objectives ?? []).map((o) => [o.id, o]));
  model.keyResults = new Map((okr.key_results ?? []).map((k) => [k.id, k]));
  model.lint = okr.lint ?? [];
  model.problems = okr.problems ?? [];
  model.present = new Map((msg.present ?? []).map((p) => [presenceKey(p), p]));
  model.feed = new Map();
  model.checkins = new Map();
  model.comments = new Map();
  for (const c of okr.checkins ?? []) addCheckin(model, c);
  for (const c of okr.comments ?? []) addComment(model, c);
  trimFeed(model);
  return model;
}

/// Applies any server message: snapshot, event, presence, `resumed` and `present` (who is
/// present now: `present` replaces a burst of presence changes the server coalesced).
/// `ack` and `error` do not change the model (the caller handles them).
export function applyMessage(model, msg) {
  switch (msg.type) {
    case 'snapshot':
      return applySnapshot(model, msg);
    case 'presence':
      return applyPresence(model, msg);
    case 'resumed':
    case 'present':
      // Presence is not replayed on a resume, and a burst of it comes coalesced: the server
      // says who is here now.
      if (Array.isArray(msg.present)) {
        model.present = new Map(msg.present.map((p) => [presenceKey(p), p]));
      }
      return model;
    case 'ack':
    case 'error':
      return model;
    default:
      return typeof msg.seq === 'number' ? applyEvent(model, msg) : model;
  }
}

export function applyPresence(model, msg) {
  const who = { user: msg.user, via: msg.via };
  if (msg.client != null) who.client = msg.client;
  const key = presenceKey(who);
  if (msg.state === 'joined') model.present.set(key, who);
  else if (msg.state === 'left') model.present.delete(key);
  return model;
}

/// Applies one event (`{seq, by, at, type, …}`). Unknown types are ignored, so a newer server
/// does not break an older page.
export function applyEvent(model, ev) {
  if (typeof ev.seq === 'number' && (model.seq == null || ev.seq > model.seq)) model.seq = ev.seq;
  if (typeof ev.at === 'number' && (model.asOf == null || ev.at > model.asOf)) model.asOf = ev.at;
  switch (ev.type) {
    case 'cycle.updated':
      model.cycle = ev.cycle ?? null;
      break;
    case 'objective.created':
      model.objectives.set(ev.objective.id, ev.objective);
      break;
    case 'objective.updated':
    case 'objective.archived':
      // An update carries only the fields that changed.
      patch(model.objectives, ev.objective, ev.fields);
      break;
    case 'objective.removed':
      model.objectives.delete(ev.objective);
      break;
    case 'kr.created':
      model.keyResults.set(ev.key_result.id, ev.key_result);
      break;
    case 'kr.updated':
    case 'kr.archived':
      patch(model.keyResults, ev.key_result, ev.fields);
      break;
    case 'kr.removed':
      model.keyResults.delete(ev.key_result);
      break;
    case 'checkin.created':
      addCheckin(model, ev.checkin);
      break;
    case 'comment.created':
      addComment(model, ev.comment);
      break;
    case 'mention':
      addMention(model, ev);
      break;
    case 'reminder':
      setItem(model, `reminder:${ev.key_result}:${ev.due_at}`, {
        kind: 'reminder',
        at: ev.at ?? ev.due_at,
        author: ev.owner ?? null,
        target: { key_result: ev.key_result },
        dueAt: ev.due_at,
        mentions: [],
      });
      break;
    case 'lint.changed':
      model.lint = ev.lint ?? [];
      break;
    default:
      return model;
  }
  trimFeed(model);
  return model;
}

/// Applies an update's `fields` to the entry `id` of `map` (a copy, so views can compare).
function patch(map, id, fields) {
  const had = map.get(id);
  if (had && fields && typeof fields === 'object') map.set(id, { ...had, ...fields });
}

function addCheckin(model, c) {
  if (model.checkins) model.checkins.set(c.id, c);
  const key = `checkin:${c.id}`;
  const old = model.feed.get(key);
  setItem(model, key, {
    kind: 'checkin',
    id: c.id,
    at: c.at,
    author: c.author,
    target: { key_result: c.key_result },
    value: c.value,
    confidence: c.confidence ?? null,
    text: c.comment ?? '',
    mentions: union(c.mentions, old?.mentions),
  });
}

function addComment(model, c) {
  if (model.comments) model.comments.set(c.id, c);
  const key = `comment:${c.id}`;
  const old = model.feed.get(key);
  setItem(model, key, {
    kind: 'comment',
    id: c.id,
    at: c.at,
    author: c.author,
    target: c.target,
    text: c.text ?? '',
    replyTo: c.reply_to ?? null,
    mentions: union(c.mentions, old?.mentions),
  });
}

/// A mention belongs to the check-in or comment it was made in (which the server sends just
/// before it); on its own only when that one is not in the feed.
function addMention(model, ev) {
  const [kind, id] = ev.source?.checkin != null
    ? ['checkin', ev.source.checkin]
    : ['comment', ev.source?.comment];
  const source = model.feed.get(`${kind}:${id}`);
  if (source) {
    source.mentions = union(source.mentions, [ev.user]);
    return;
  }
  setItem(model, `mention:${kind}:${id}:${ev.user}`, {
    kind: 'mention',
    at: ev.at,
    author: ev.by ?? null,
    target: ev.target,
    mentions: [ev.user],
  });
}

function setItem(model, key, item) {
  model.feed.set(key, { key, ...item });
}

function union(a, b) {
  return [...new Set([...(a ?? []), ...(b ?? [])])];
}

function newestFirst(a, b) {
  return (b.at ?? 0) - (a.at ?? 0) || (a.key < b.key ? 1 : a.key > b.key ? -1 : 0);
}

function trimFeed(model) {
  if (model.feed.size <= FEED_KEEP) return;
  const keep = [...model.feed.values()].sort(newestFirst).slice(0, FEED_KEEP);
  model.feed = new Map(keep.map((i) => [i.key, i]));
}

// ---- views: what the board shows, derived from the model ----

function byOrder(a, b) {
  return (a.order ?? 0) - (b.order ?? 0) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/// Active objectives in board order, each with its active KRs in order and the lint hints
/// about it and them: `[{objective, lint: [..], keyResults: [{keyResult, lint: [..]}]}]`.
export function boardView(model) {
  const lintFor = (kind, id) =>
    model.lint.filter((f) => f.target?.[kind] === id).map((f) => f.message);
  const krs = [...model.keyResults.values()].filter((k) => !k.archived).sort(byOrder);
  return [...model.objectives.values()]
    .filter((o) => !o.archived)
    .sort(byOrder)
    .map((objective) => ({
      objective,
      lint: lintFor('objective', objective.id),
      keyResults: krs
        .filter((k) => k.objective === objective.id)
        .map((keyResult) => ({ keyResult, lint: lintFor('key_result', keyResult.id) })),
    }));
}

/// The latest `n` feed items, newest first.
export function feedView(model, n = 30) {
  return [...model.feed.values()].sort(newestFirst).slice(0, n);
}

/// Who is here: distinct user ids, sorted (one user on several connections shows once).
export function presentUsers(model) {
  return [...new Set([...model.present.values()].map((p) => p.user))].sort();
}

/// The title of what a feed item is about (`{objective}` or `{key_result}`), if known.
export function targetTitle(model, target) {
  if (target?.key_result != null) return model.keyResults.get(target.key_result)?.title ?? null;
  if (target?.objective != null) return model.objectives.get(target.objective)?.title ?? null;
  return null;
}

/// The `since` to reconnect with: one before the last seq seen, so the events of that seq are
/// replayed (the socket may have broken in the middle of them, and events of time passing —
/// a KR becoming overdue — carry the seq they happened after). Null before any snapshot.
export function resumeSince(model) {
  return model.seq == null ? null : Math.max(0, model.seq - 1);
}


// ---- planning: comments, people, mentions, text edits, order, alignment, history ----

function byAt(a, b) {
  return (a.at ?? 0) - (b.at ?? 0) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

function sameTarget(a, b) {
  return a != null && b != null && (a.objective ?? null) === (b.objective ?? null)
    && (a.key_result ?? null) === (b.key_result ?? null);
}

/// The comments on `target` as threads, oldest first: `[{comment, replies: [{comment, replies}]}]`.
/// A reply whose parent is unknown (or on another target) is shown as a thread of its own.
export function commentThreads(model, target) {
  const mine = [...model.comments.values()].filter((c) => sameTarget(c.target, target)).sort(byAt);
  const nodes = new Map(mine.map((c) => [c.id, { comment: c, replies: [] }]));
  const roots = [];
  for (const c of mine) {
    const parent = c.reply_to != null && c.reply_to !== c.id ? nodes.get(c.reply_to) : null;
    (parent ? parent.replies : roots).push(nodes.get(c.id));
  }
  return roots;
}

/// How many comments there are on `target`.
export function commentCount(model, target) {
  let n = 0;
  for (const c of model.comments.values()) if (sameTarget(c.target, target)) n += 1;
  return n;
}

/// A KR's check-ins, newest first.
export function checkinsOf(model, krId) {
  return [...model.checkins.values()].filter((c) => c.key_result === krId).sort(byAt).reverse();
}

const USER_ID = /^[A-Za-z0-9._@-]{1,64}$/;

/// The room's people, for @mention completion: owners, authors, mentioned and present users,
/// and `extra` (e.g. names from Yjs awareness). Sorted, distinct, only valid user ids.
export function roomPeople(model, extra = []) {
  const out = new Set();
  const add = (u) => {
    if (typeof u === 'string' && USER_ID.test(u)) out.add(u);
  };
  for (const o of model.objectives.values()) add(o.owner);
  for (const k of model.keyResults.values()) add(k.owner);
  for (const c of model.checkins.values()) {
    add(c.author);
    (c.mentions ?? []).forEach(add);
  }
  for (const c of model.comments.values()) {
    add(c.author);
    (c.mentions ?? []).forEach(add);
  }
  for (const p of model.present.values()) add(p.user);
  extra.forEach(add);
  return [...out].sort();
}

/// The @mention being typed at `caret` in `text`: `{start, end, query}` (`start` at the '@'),
/// or null. An '@' counts at the start or after a character that cannot be part of an id
/// (so "ann@example" is no mention).
export function mentionAt(text, caret) {
  const before = text.slice(0, caret);
  const m = /(^|[^A-Za-z0-9._@-])@([A-Za-z0-9._-]{0,64})$/.exec(before);
  if (!m) return null;
  return { start: caret - m[2].length - 1, end: caret, query: m[2] };
}

/// The people whose id starts with `query` (case-insensitive), then those containing it.
export function mentionMatches(people, query, limit = 8) {
  const q = query.toLowerCase();
  const starts = people.filter((p) => p.toLowerCase().startsWith(q));
  const contains = people.filter((p) => !p.toLowerCase().startsWith(q) && p.toLowerCase().includes(q));
  return [...starts, ...contains].slice(0, limit);
}

/// The ids `@mentioned` in `text` that are among `people`, in order, distinct, at most 20.
/// A trailing '.' or '@' (end of a sentence) is not part of the id unless the id has it.
export function mentionsIn(text, people) {
  const known = new Set(people);
  const out = [];
  for (const m of String(text).matchAll(/(^|[^A-Za-z0-9._@-])@([A-Za-z0-9._@-]{1,64})/g)) {
    let id = m[2];
    while (id && !known.has(id) && /[.@_-]$/.test(id)) id = id.slice(0, -1);
    if (known.has(id) && !out.includes(id)) out.push(id);
  }
  return out.slice(0, 20);
}

/// The one edit that turns `before` into `after`: `{index, remove, insert}` (UTF-16 indexes,
/// as Y.Text counts), or null when equal. The common prefix and suffix are kept, never split
/// inside a surrogate pair.
export function textEdit(before, after) {
  if (before === after) return null;
  let start = 0;
  const max = Math.min(before.length, after.length);
  while (start < max && before.charCodeAt(start) === after.charCodeAt(start)) start += 1;
  if (start > 0 && isHigh(before.charCodeAt(start - 1))) start -= 1;
  let endB = before.length;
  let endA = after.length;
  while (endB > start && endA > start && before.charCodeAt(endB - 1) === after.charCodeAt(endA - 1)) {
    endB -= 1;
    endA -= 1;
  }
  if (endB < before.length && isLow(before.charCodeAt(endB))) {
    endB += 1;
    endA += 1;
  }
  return { index: start, remove: endB - start, insert: after.slice(start, endA) };
}
const isHigh = (c) => c >= 0xd800 && c <= 0xdbff;
const isLow = (c) => c >= 0xdc00 && c <= 0xdfff;

/// The `index` for `objective.reorder` / `kr.reorder` that moves `id` one place up (`dir` -1)
/// or down (+1) past its visible neighbour. `items` are all the siblings the server counts
/// (archived ones included), `visible(item)` says which are shown. Null when it cannot move.
export function reorderIndex(items, id, dir, visible = (x) => !x.archived) {
  const all = [...items].sort(byOrder);
  const shown = all.filter((x) => x.id === id || visible(x));
  const at = shown.findIndex((x) => x.id === id);
  const neighbour = shown[at + dir];
  if (at < 0 || !neighbour) return null;
  const others = all.filter((x) => x.id !== id);
  const n = others.findIndex((x) => x.id === neighbour.id);
  return dir < 0 ? n : n + 1;
}

/// Does the parent ref `r` (of an objective in room `from`) name objective `id` of room `room`?
export function refersTo(r, from, room, id) {
  return r?.objective === id && (r.room ?? from) === room;
}

/// Objectives of `okr` (the typed model of room `from`: {objectives: [...]}) aligned to
/// objective `id` of room `room`, active ones only.
export function alignedChildren(objectives, from, room, id) {
  return [...objectives].filter((o) => !o.archived
    && (o.aligned_to ?? []).some((r) => refersTo(r, from, room, id))).sort(byOrder);
}

const WEEK_MS = 7 * 86_400_000;

/// A KR history's points (`{at, progress, confidence}`, time order) as one point per week:
/// `[{week, at, progress, confidence}]`, `week` counted from `origin` (ms; default the first
/// point's time), each the week's last progress and its last confidence (null without one).
export function weeklyHistory(points, origin = null) {
  const sorted = [...points].filter((p) => typeof p.at === 'number').sort((a, b) => a.at - b.at);
  if (!sorted.length) return [];
  const t0 = origin ?? sorted[0].at;
  const weeks = new Map();
  for (const p of sorted) {
    const week = Math.max(0, Math.floor((p.at - t0) / WEEK_MS));
    const had = weeks.get(week);
    weeks.set(week, {
      week,
      at: p.at,
      progress: p.progress ?? had?.progress ?? 0,
      confidence: p.confidence ?? had?.confidence ?? null,
    });
  }
  return [...weeks.values()].sort((a, b) => a.week - b.week);
}

/// A room id's parts: `{org, team, cycle, personal}` (null when it is not `{org}.{team}.{cycle}`).
export function roomParts(room) {
  const m = /^([^.]+)\.(~?)([^.]+)\.([^.]+)$/.exec(room ?? '');
  return m ? { org: m[1], team: m[3], cycle: m[4], personal: m[2] === '~' } : null;
}
