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
  const key = `comment:${c.id}`;
  const old = model.feed.get(key);
  setItem(model, key, {
    kind: 'comment',
    id: c.id,
    at: c.at,
    author: c.author,
    target: c.target,
    text: c.text ?? '',
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
