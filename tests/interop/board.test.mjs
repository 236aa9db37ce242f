// The dashboard's model (web/model.js) in Node: run by tests/web.rs.
//
//   node board.test.mjs                       unit checks on hand-made messages
//   node board.test.mjs --url http://HOST:PORT  also against a real server: a board fed the live
//                                               events (with a disconnect and a ?since= resume in
//                                               the middle) ends equal to a fresh snapshot
//
// Exits non-zero on the first failure.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';

// web/ has no package.json (it is served as is), so Node would read model.js as CommonJS:
// import its text as an ES module instead. model.js imports nothing.
const source = readFileSync(new URL('../../web/model.js', import.meta.url), 'utf8');
const M = await import(`data:text/javascript;base64,${Buffer.from(source).toString('base64')}`);

const args = process.argv.slice(2);
const url = args.includes('--url') ? args[args.indexOf('--url') + 1] : null;

// ---------- unit ----------

const objective = (id, extra = {}) => ({
  id, title: `Objective ${id}`, owner: 'ann', order: 1, archived: false, key_results: [],
  progress: 0, status: null, overdue: false, updated_at: 1, ...extra,
});
const kr = (id, objectiveId, extra = {}) => ({
  id, objective: objectiveId, title: `KR ${id}`, owner: 'ann', order: 1, archived: false,
  metric: { kind: 'increase', start: 0, target: 100, unit: 'users' }, current: 0, progress: 0,
  confidence: null, status: 'at_risk', overdue: false, ...extra,
});
const checkin = (id, krId, at, extra = {}) => ({
  id, key_result: krId, author: 'ann', at, value: 10, confidence: 7, comment: '', mentions: [], ...extra,
});

function unit() {
  const snapshot = {
    type: 'snapshot',
    room: 'acme.sales.2026-Q3',
    seq: 5,
    okr: {
      as_of: 1000,
      cycle: { id: '2026-Q3', kind: 'quarter', starts: '2026-07-01', ends: '2026-09-30' },
      objectives: [objective('o1'), objective('o0', { archived: true })],
      key_results: [kr('k1', 'o1', { order: 2 }), kr('k2', 'o1', { order: 1 }), kr('k3', 'o1', { archived: true })],
      checkins: [checkin('ci1', 'k1', 100, { mentions: ['bob'] })],
      comments: [{ id: 'cm1', target: { objective: 'o1' }, author: 'bob', at: 200, text: '<img src=x onerror=alert(1)>', mentions: [], reply_to: null }],
      problems: [],
      lint: [{ target: { objective: 'o1' }, code: 'too_few_krs', message: '2 key results' }],
    },
    present: [{ user: 'ann', via: 'live' }, { user: 'yjs-user', via: 'sync', client: 42 }],
  };
  const m = M.applyMessage(M.emptyModel(), structuredClone(snapshot));
  assert.equal(m.seq, 5);
  assert.equal(m.room, 'acme.sales.2026-Q3');
  assert.deepEqual(M.presentUsers(m), ['ann', 'yjs-user']);
  let board = M.boardView(m);
  assert.deepEqual(board.map((b) => b.objective.id), ['o1'], 'archived objectives are not shown');
  assert.deepEqual(board[0].keyResults.map((k) => k.keyResult.id), ['k2', 'k1'], 'KRs by order, archived ones hidden');
  assert.deepEqual(board[0].lint, ['2 key results']);
  assert.deepEqual(M.feedView(m).map((i) => i.key), ['comment:cm1', 'checkin:ci1'], 'newest first');
  assert.equal(M.feedView(m)[0].text, '<img src=x onerror=alert(1)>', 'text is kept as text');
  assert.equal(M.targetTitle(m, { key_result: 'k1' }), 'KR k1');
  assert.equal(M.targetTitle(m, { objective: 'nope' }), null);
  assert.equal(M.resumeSince(m), 4);
  assert.equal(M.resumeSince(M.emptyModel()), null);

  const events = [
    { type: 'presence', seq: 5, state: 'joined', user: 'bob', via: 'live' },
    { type: 'presence', seq: 5, state: 'joined', user: 'ann', via: 'sync', client: 7 },
    { type: 'presence', seq: 5, state: 'left', user: 'ann', via: 'live' },
    { type: 'presence', seq: 5, state: 'left', user: 'yjs-user', via: 'sync', client: 42 },
    { seq: 6, by: 'ann', at: 300, type: 'objective.created', objective: objective('o2', { order: 0.5 }) },
    { seq: 7, by: 'ann', at: 400, type: 'kr.updated', key_result: 'k1', objective: 'o1', changed: ['confidence', 'current', 'overdue', 'progress', 'status'], fields: { current: 40, progress: 40, confidence: 3, status: 'off_track', overdue: true } },
    { seq: 7, by: 'ann', at: 400, type: 'objective.updated', objective: 'o1', changed: ['overdue', 'progress', 'status'], fields: { progress: 20, status: 'off_track', overdue: true } },
    { seq: 7, by: 'ann', at: 400, type: 'kr.updated', key_result: 'k-unknown', objective: 'o1', changed: ['title'], fields: { title: 'an update for a KR this page never saw is ignored' } },
    { seq: 7, by: 'ann', at: 400, type: 'checkin.created', checkin: checkin('ci2', 'k1', 400, { value: 40, confidence: 3, comment: 'blocked', mentions: ['bob'] }) },
    { seq: 7, by: 'ann', at: 400, type: 'mention', user: 'bob', source: { checkin: 'ci2' }, target: { key_result: 'k1' } },
    { seq: 8, by: 'carl', at: 500, type: 'mention', user: 'ann', source: { comment: 'cm-unknown' }, target: { objective: 'o1' } },
    { seq: 8, by: 'ann', at: 500, type: 'lint.changed', lint: [] },
    { seq: 9, by: null, at: 600, type: 'reminder', key_result: 'k2', objective: 'o1', owner: 'ann', due_at: 550 },
    { seq: 9, by: 'ann', at: 600, type: 'kr.created', key_result: kr('k4', 'o2') },
    { seq: 9, by: 'ann', at: 600, type: 'some.future.event', whatever: true },
    { type: 'ack', id: 'c1', seq: 9 },
    { type: 'error', id: 'c2', code: 'out_of_range', message: 'confidence must be within 0–10', field: 'confidence' },
    { type: 'resumed', from: 8, seq: 9 },
  ];
  for (const e of events) M.applyMessage(m, structuredClone(e));
  const check = (label) => {
    assert.equal(m.seq, 9, label);
    assert.deepEqual(M.presentUsers(m), ['ann', 'bob'], `${label}: ann still here through Yjs`);
    board = M.boardView(m);
    assert.deepEqual(board.map((b) => b.objective.id), ['o2', 'o1'], label);
    assert.deepEqual(board[0].keyResults.map((k) => k.keyResult.id), ['k4'], label);
    assert.equal(board[1].objective.overdue, true, label);
    assert.equal(board[1].keyResults[1].keyResult.progress, 40, label);
    assert.deepEqual(board[1].lint, [], label);
    const feed = M.feedView(m);
    assert.deepEqual(feed.map((i) => i.key),
      ['reminder:k2:550', 'mention:comment:cm-unknown:ann', 'checkin:ci2', 'comment:cm1', 'checkin:ci1'], label);
    assert.deepEqual(feed[2].mentions, ['bob'], `${label}: the mention joins its check-in`);
    assert.equal(feed[2].text, 'blocked', label);
    assert.equal(M.feedView(m, 2).length, 2, label);
  };
  check('after the events');
  // A resume from one seq early replays the last seq's events: nothing changes.
  for (const e of events.filter((e) => e.seq === 9 || e.seq === 8)) M.applyMessage(m, structuredClone(e));
  check('after a replay');

  M.applyMessage(m, { seq: 10, by: 'ann', at: 700, type: 'kr.removed', key_result: 'k1', objective: 'o1' });
  M.applyMessage(m, { seq: 10, by: 'ann', at: 700, type: 'objective.removed', objective: 'o2' });
  M.applyMessage(m, { seq: 10, by: 'ann', at: 700, type: 'kr.archived', key_result: 'k2', objective: 'o1', changed: ['archived'], fields: { archived: true } });
  M.applyMessage(m, { seq: 10, by: 'ann', at: 700, type: 'cycle.updated', cycle: null });
  assert.deepEqual(M.boardView(m).map((b) => [b.objective.id, b.keyResults.length]), [['o1', 0]]);
  assert.equal(m.cycle, null);
  assert.equal(M.targetTitle(m, { key_result: 'k1' }), null, 'a removed KR has no title');

  // The feed keeps the newest FEED_KEEP items.
  for (let i = 0; i < M.FEED_KEEP + 50; i++) {
    M.applyMessage(m, { seq: 11 + i, by: 'ann', at: 1000 + i, type: 'checkin.created', checkin: checkin(`x${i}`, 'k2', 1000 + i) });
  }
  assert.equal(m.feed.size, M.FEED_KEEP);
  assert.equal(M.feedView(m, 1)[0].key, `checkin:x${M.FEED_KEEP + 49}`);
  assert.equal(m.seq, 11 + M.FEED_KEEP + 49);

  // A fresh snapshot (a resume from too far back) replaces everything.
  M.applyMessage(m, structuredClone(snapshot));
  assert.equal(m.seq, 5);
  assert.deepEqual(M.feedView(m).map((i) => i.key), ['comment:cm1', 'checkin:ci1']);
  assert.deepEqual(M.presentUsers(m), ['ann', 'yjs-user']);

  // A coalesced burst: `present` replaces who is here, and is no event (seq stays).
  M.applyMessage(m, { type: 'present', seq: 5, present: [{ user: 'li', via: 'live' }, { user: 'zoe', via: 'sync', client: 9 }] });
  assert.deepEqual(M.presentUsers(m), ['li', 'zoe']);
  assert.equal(m.seq, 5);
  console.log('unit: ok');
}

// ---------- against a real server ----------

const TIMEOUT_MS = 15_000;

/// A /live connection: every message in `messages`, `next(pred)` waits for one.
function live(base, room, user, since) {
  const q = new URLSearchParams({ user });
  if (since != null) q.set('since', String(since));
  const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/live/${room}?${q}`);
  const c = { ws, messages: [], waiters: [] };
  ws.on('message', (data) => {
    const msg = JSON.parse(data.toString());
    c.messages.push(msg);
    c.waiters = c.waiters.filter((w) => !w(msg));
  });
  c.next = (pred, what) => new Promise((resolve, reject) => {
    const found = c.messages.find(pred);
    if (found) return resolve(found);
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), TIMEOUT_MS);
    c.waiters.push((msg) => {
      if (!pred(msg)) return false;
      clearTimeout(timer);
      resolve(msg);
      return true;
    });
  });
  c.closed = new Promise((resolve) => ws.on('close', resolve));
  return c;
}

let commandN = 0;
async function command(c, body) {
  const id = `t${++commandN}`;
  c.ws.send(JSON.stringify({ id, ...body }));
  return c.next((m) => (m.type === 'ack' || m.type === 'error') && m.id === id, `answer to ${body.type}`);
}
async function ok(c, body) {
  const answer = await command(c, body);
  assert.equal(answer.type, 'ack', `${body.type}: ${JSON.stringify(answer)}`);
  return answer;
}

/// What a board shows, for comparing two models. `updated_*` and `expected_progress` move
/// without an event of their own (proto: they never count as a change alone).
function project(m, hide) {
  const strip = ({ updated_at, updated_by, expected_progress, ...rest }) => rest;
  const byId = (a, b) => (a.id < b.id ? -1 : 1);
  return {
    room: m.room,
    cycle: m.cycle,
    objectives: [...m.objectives.values()].map(strip).sort(byId),
    keyResults: [...m.keyResults.values()].map(strip).sort(byId),
    lint: m.lint,
    board: M.boardView(m).map((o) => [o.objective.id, o.keyResults.map((k) => k.keyResult.id), o.lint]),
    feed: M.feedView(m, M.FEED_KEEP).map((i) => [i.key, i.text ?? null, [...i.mentions].sort()]),
    present: M.presentUsers(m).filter((u) => u !== hide),
  };
}

async function againstServer(base) {
  const room = `acme.web-${Date.now().toString(36)}.2026-Q3`;
  const driver = live(base, room, 'ann');
  await driver.next((m) => m.type === 'snapshot', 'driver snapshot');

  // The board: every message it gets goes through the model, as board.js does.
  const board = M.emptyModel();
  const follow = (c) => c.ws.on('message', (d) => M.applyMessage(board, JSON.parse(d.toString())));
  let watcher = live(base, room, 'screen');
  follow(watcher);
  await watcher.next((m) => m.type === 'snapshot', 'board snapshot');

  await ok(driver, { type: 'cycle.set', starts: '2026-07-01', ends: '2026-09-30' });
  const a = (await ok(driver, { type: 'objective.create', title: 'Make onboarding delightful' })).created_id;
  const b = (await ok(driver, { type: 'objective.create', title: 'Cut churn' })).created_id;
  const k1 = (await ok(driver, { type: 'kr.create', objective: a, title: 'Reach 100 activated users', metric: { kind: 'increase', start: 0, target: 100, unit: 'users' } })).created_id;
  const k2 = (await ok(driver, { type: 'kr.create', objective: a, title: 'Cut setup to 10 min', metric: { kind: 'decrease', start: 30, target: 10, unit: 'min' } })).created_id;
  const k3 = (await ok(driver, { type: 'kr.create', objective: b, title: 'Ship exit survey', metric: { kind: 'milestone', milestones: [{ title: 'draft' }, { title: 'live' }] } })).created_id;
  await ok(driver, { type: 'checkin.create', key_result: k1, value: 40, confidence: 8, comment: 'on it', mentions: ['bob'] });
  await ok(driver, { type: 'comment.create', target: { objective: a }, text: '<b>not html</b> & co', mentions: ['screen', 'carl'] });
  await ok(driver, { type: 'kr.update', key_result: k2, title: 'Cut setup to 8 min' });
  await ok(driver, { type: 'objective.reorder', objective: b, index: 0 });
  const refused = await command(driver, { type: 'checkin.create', key_result: k1, value: 1, confidence: 50 });
  assert.equal(refused.type, 'error');
  assert.equal(refused.field, 'confidence');

  // The screen drops off; the room moves on; it comes back with ?since=.
  const seen = board.seq;
  watcher.ws.close();
  await watcher.closed;
  await ok(driver, { type: 'checkin.create', key_result: k3, milestones: [true, false], confidence: 3, comment: 'survey drafted' });
  await ok(driver, { type: 'kr.archive', key_result: k2 });
  const last = await ok(driver, { type: 'objective.update', objective: a, title: 'Make onboarding <i>delightful</i>' });
  assert.ok(last.seq > seen);
  const since = M.resumeSince(board);
  watcher = live(base, room, 'screen', since);
  follow(watcher);
  const resumed = await watcher.next((m) => m.type === 'resumed' || m.type === 'snapshot', 'resume');
  assert.equal(resumed.type, 'resumed', 'a recent since resumes');
  assert.equal(resumed.from, since);

  // A fresh board, from a snapshot: the followed one must end equal to it.
  const fresh = live(base, room, 'fresh');
  const snap = await fresh.next((m) => m.type === 'snapshot', 'fresh snapshot');
  const expected = project(M.applySnapshot(M.emptyModel(), snap), 'fresh');
  const deadline = Date.now() + TIMEOUT_MS;
  while (Date.now() < deadline) {
    try {
      assert.deepEqual(project(board, 'fresh'), expected);
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  assert.deepEqual(project(board, 'fresh'), expected, 'the live-fed board equals a fresh snapshot');
  assert.equal(board.seq, last.seq);
  await watcher.next((m) => m.type === 'presence' && m.user === 'fresh', 'fresh arrives');
  assert.deepEqual(M.presentUsers(board), ['ann', 'fresh', 'screen']);
  const view = M.boardView(board);
  assert.deepEqual(view.map((o) => o.objective.id), [b, a]);
  assert.deepEqual(view[1].keyResults.map((k) => k.keyResult.id), [k1], 'the archived KR is gone');
  assert.equal(view[1].objective.title, 'Make onboarding <i>delightful</i>');
  const feed = M.feedView(board);
  assert.deepEqual(feed.map((i) => i.kind), ['checkin', 'comment', 'checkin']);
  assert.deepEqual(feed[1].mentions, ['screen', 'carl']);

  for (const c of [driver, watcher, fresh]) c.ws.close();
  await Promise.all([driver.closed, watcher.closed, fresh.closed]);
  console.log('server: ok');
}

// ---------- planning helpers (model.js, used by board.js) ----------

function planning() {
  const m = M.emptyModel();
  M.applyMessage(m, {
    type: 'snapshot', room: 'acme.sales.2026-Q3', seq: 3,
    okr: {
      as_of: 1, cycle: null,
      objectives: [
        objective('o1', { order: 1, owner: 'ann' }),
        objective('o2', { order: 2, owner: 'li', aligned_to: [{ objective: 'o1' }] }),
        objective('o3', { order: 3, archived: true, aligned_to: [{ room: 'acme.sales.2026-Q3', objective: 'o1' }] }),
        objective('o4', { order: 4, aligned_to: [{ room: 'acme.all.2026-Q3', objective: 'o1' }] }),
      ],
      key_results: [kr('k1', 'o1', { owner: 'wang' })],
      checkins: [checkin('ci1', 'k1', 10, { author: 'zoe', mentions: ['mei'] }), checkin('ci2', 'k1', 20)],
      comments: [
        { id: 'c1', target: { objective: 'o1' }, author: 'bob', at: 1, text: 'first', mentions: [], reply_to: null },
        { id: 'c3', target: { objective: 'o1' }, author: 'ann', at: 3, text: 're re', mentions: [], reply_to: 'c2' },
        { id: 'c2', target: { objective: 'o1' }, author: 'li', at: 2, text: 're', mentions: [], reply_to: 'c1' },
        { id: 'c4', target: { objective: 'o1' }, author: 'li', at: 4, text: 'orphan', mentions: [], reply_to: 'gone' },
        { id: 'c5', target: { key_result: 'k1' }, author: 'carl', at: 5, text: 'on the KR', mentions: [] },
      ],
      problems: [], lint: [],
    },
    present: [{ user: 'pat', via: 'sync', client: 1 }, { user: 'bad user!', via: 'live' }],
  });

  // Threads: replies under their parent, a reply to an unknown comment on its own.
  const threads = M.commentThreads(m, { objective: 'o1' });
  const shape = (t) => [t.comment.id, t.replies.map(shape)];
  assert.deepEqual(threads.map(shape), [['c1', [['c2', [['c3', []]]]]], ['c4', []]]);
  assert.deepEqual(M.commentThreads(m, { key_result: 'k1' }).map(shape), [['c5', []]]);
  assert.equal(M.commentCount(m, { objective: 'o1' }), 4);
  M.applyMessage(m, { seq: 4, by: 'wang', at: 6, type: 'comment.created', comment: { id: 'c6', target: { key_result: 'k1' }, author: 'wang', at: 6, text: 'reply', mentions: ['carl'], reply_to: 'c5' } });
  assert.deepEqual(M.commentThreads(m, { key_result: 'k1' }).map(shape), [['c5', [['c6', []]]]]);
  assert.equal(m.feed.get('comment:c6').replyTo, 'c5');
  assert.deepEqual(M.checkinsOf(m, 'k1').map((c) => c.id), ['ci2', 'ci1'], 'newest first');

  // People: owners, authors, mentioned, present; no invalid ids; extra names.
  assert.deepEqual(M.roomPeople(m, ['yuki']),
    ['ann', 'bob', 'carl', 'li', 'mei', 'pat', 'wang', 'yuki', 'zoe']);

  // @mention being typed, and the completion.
  assert.deepEqual(M.mentionAt('blocked, @wa', 12), { start: 9, end: 12, query: 'wa' });
  assert.deepEqual(M.mentionAt('@', 1), { start: 0, end: 1, query: '' });
  assert.equal(M.mentionAt('mail ann@example', 16), null, 'an @ inside a word is no mention');
  assert.equal(M.mentionAt('@wang done', 10), null);
  assert.deepEqual(M.mentionAt('你好@li', 5), { start: 2, end: 5, query: 'li' }, 'after CJK text');
  assert.deepEqual(M.mentionMatches(['ann', 'hwang', 'wang', 'wangwei'], 'WA'), ['wang', 'wangwei', 'hwang']);
  assert.deepEqual(M.mentionsIn('@wang and @li. @nobody @wang, x@ann @zoe@', ['wang', 'li', 'zoe', 'ann']), ['wang', 'li', 'zoe']);
  assert.deepEqual(M.mentionsIn('@a.b. ok', ['a.b']), ['a.b']);

  // One edit between two values, never splitting a surrogate pair.
  assert.equal(M.textEdit('abc', 'abc'), null);
  assert.deepEqual(M.textEdit('abc', 'abXc'), { index: 2, remove: 0, insert: 'X' });
  assert.deepEqual(M.textEdit('abcd', 'ad'), { index: 1, remove: 2, insert: '' });
  assert.deepEqual(M.textEdit('aaa', 'aaaa'), { index: 3, remove: 0, insert: 'a' });
  assert.deepEqual(M.textEdit('x😀y', 'x😃y'), { index: 1, remove: 2, insert: '😃' });
  for (const [a, b] of [['目标一', '目标二'], ['', 'new'], ['gone', ''], ['😀😀', '😀😁😀']]) {
    const e = M.textEdit(a, b);
    assert.equal(a.slice(0, e.index) + e.insert + a.slice(e.index + e.remove), b, `${a} → ${b}`);
  }

  // Reorder: the index among all siblings (archived ones count) that moves past the visible neighbour.
  const sib = [{ id: 'a', order: 1 }, { id: 'x', order: 2, archived: true }, { id: 'b', order: 3 }, { id: 'c', order: 4 }];
  assert.equal(M.reorderIndex(sib, 'b', -1), 0, 'b before a');
  assert.equal(M.reorderIndex(sib, 'a', 1), 2, 'a after b (others: x, b, c)');
  assert.equal(M.reorderIndex(sib, 'a', -1), null);
  assert.equal(M.reorderIndex(sib, 'c', 1), null);
  assert.equal(M.reorderIndex(sib, 'b', 1), 3);

  // Alignment: children here (room omitted or this room), active only; from another room.
  assert.deepEqual(M.alignedChildren(m.objectives.values(), m.room, m.room, 'o1').map((o) => o.id), ['o2']);
  assert.deepEqual(M.alignedChildren(m.objectives.values(), m.room, 'acme.all.2026-Q3', 'o1').map((o) => o.id), ['o4']);
  assert.deepEqual(M.roomParts('acme.~ann.2026-Q3'), { org: 'acme', team: 'ann', cycle: '2026-Q3', personal: true });
  assert.equal(M.roomParts('nope'), null);

  // History: one point per week, the week's last progress and last confidence.
  const W = 7 * 86_400_000;
  const pts = [
    { at: 0, progress: 10, confidence: 5 }, { at: 1000, progress: 20, confidence: null },
    { at: W + 5, progress: 30, confidence: 7 }, { at: 3 * W, progress: 25, confidence: null },
  ];
  assert.deepEqual(M.weeklyHistory(pts).map((w) => [w.week, w.progress, w.confidence]),
    [[0, 20, 5], [1, 30, 7], [3, 25, null]]);
  assert.deepEqual(M.weeklyHistory(pts, -W).map((w) => w.week), [1, 2, 4]);
  assert.deepEqual(M.weeklyHistory([]), []);
  console.log('planning: ok');
}

// ---------- the board's strings: every English key has Chinese ----------

async function strings() {
  const i18n = await import(`data:text/javascript;base64,${Buffer.from(readFileSync(new URL('../../web/i18n.js', import.meta.url), 'utf8')).toString('base64')}`);
  // board-strings.js imports './i18n.js': read its dictionaries without running that import.
  const text = readFileSync(new URL('../../web/board-strings.js', import.meta.url), 'utf8')
    .replace(/^import .*$/m, '').replace(/^register\(strings\);$/m, '');
  const { strings: dicts } = await import(`data:text/javascript;base64,${Buffer.from(text).toString('base64')}`);
  i18n.register(dicts);
  assert.deepEqual(i18n.missing(), [], 'board strings missing in Chinese');
  assert.deepEqual(Object.keys(dicts.zh).filter((k) => !(k in dicts.en)), [], 'Chinese keys without English');
  // Every t('key') of board.js with a literal key is registered.
  const board = readFileSync(new URL('../../web/board.js', import.meta.url), 'utf8');
  const used = [...board.matchAll(/\b(?:t|field)\('([a-z_.]+)'/g)].map((x) => x[1]);
  // Keys made from a prefix and a value: statuses, metric kinds, visibilities, commitments, conn states.
  for (const k of ['on_track', 'at_risk', 'off_track']) used.push(`status.${k}`);
  for (const k of ['percent', 'increase', 'decrease', 'stay_above', 'stay_below', 'milestone']) used.push(`metric.${k}`);
  for (const k of ['public', 'team', 'private']) used.push(`visibility.${k}`);
  for (const k of ['committed', 'aspirational']) used.push(`commitment.${k}`);
  for (const m of board.matchAll(/'(conn\.[a-z]+)'/g)) used.push(m[1]);
  const unknown = [...new Set(used)].filter((k) => !(k in dicts.en));
  assert.deepEqual(unknown, [], 'keys board.js uses that board-strings.js lacks');
  console.log('strings: ok');
}

unit();
planning();
await strings();
if (url) await againstServer(url);
