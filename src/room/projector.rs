//! The room's OKR projection: the typed model kept in step with the doc, the events derived
//! from each change, a short history for clients that reconnect, and the `/live` subscribers.
//!
//! # How events are derived
//!
//! Deep observers on the OKR roots of the doc ([`okr::Watch`]) note, as each transaction
//! commits, which entries it touched ([`Touched`]) — whoever made it: a Yjs client on `/sync`,
//! a JSON command, REST. After each committed update the room calls [`Projector::updated`],
//! which hands those entries to the room's [`Projection`]: it re-reads them and what depends on
//! them (a KR's progress and status, its objective's roll-up and lint) and returns the events.
//! So an edit made by a plain Yjs client produces exactly the events a JSON command would, a
//! keystroke in a KR title costs that KR and its objective whatever else the room holds, and an
//! update that touches no OKR root (a cursor, a load test's map) costs a look at an empty set.
//!
//! The projection's clock moves in [`Projector::tick`] (the hub's sweeper, every few seconds)
//! and before an edit when it is more than [`STALE_MS`] behind; what time alone changed (a KR
//! becoming overdue, with its reminder) is published then.
//!
//! # Sequence numbers and resuming
//!
//! An event carries the room's sequence number of the update that caused it (the number the
//! store logs it under, so it survives restarts). Every event is serialised once, queued to
//! every subscriber and kept in a history bounded in count ([`HISTORY`]) and bytes
//! ([`HISTORY_BYTES`]). A client reconnecting with `?since=SEQ` gets the events after SEQ from
//! the history if it reaches back that far (the history is complete from `floor`: the room's
//! load, or the last event dropped from it), or a fresh snapshot otherwise.
//!
//! # Snapshots
//!
//! The set is encoded as JSON once per change, on the first request after it, and shared by
//! every snapshot and every REST read until the next change; the snapshot frame around it is
//! shared by every joiner at the same sequence number and presence. A room screen joining costs
//! a reference count, not a serialisation of the set.
//!
//! Everything here runs under the room's lock, like the rest of the room's state.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use serde_json::value::RawValue;
use yrs::block::ClientID;
use yrs::sync::awareness::AwarenessUpdateSummary;
use yrs::sync::Awareness;
use yrs::{Doc, Transact};

use super::fanout::{Fanout, PeerId};
use super::inbox::Mail;
use super::limits::{EncodeCost, PresenceBudget, RoomLimits};
use super::sink::{Kicks, Sink};
use crate::clock::now_millis;
use crate::identity::UserId;
use crate::metrics::Metrics;
use crate::okr::audience::{audience_of, About, Audience, Hidden, Reader, Sees};
use crate::okr::{self, Millis, OkrSet, Projection, Touched, Watch};
use crate::protocol::live::{
    encode, encode_snapshot, Control, EventMessage, Presence, PresenceState, ServerMessage, Via,
};
use crate::protocol::CloseReason;

/// Most events kept for clients that reconnect with `?since=`.
pub const HISTORY: usize = 1024;
/// Most bytes of events kept for them: a client that missed more gets a snapshot.
pub const HISTORY_BYTES: usize = 1 << 20;
/// How far the projection's clock may lag behind when an edit arrives (ms).
pub const STALE_MS: Millis = 1_000;

/// Most snapshots cut for restricted readers kept at once (one per distinct hidden set).
const MAX_CUT_SNAPSHOTS: usize = 8;

/// The origin key of the projector's deep observers.
const OBSERVER: &str = "okrhub-live";

/// One kept event: its sequence number, its frame, and who may read it (`None`: every reader;
/// `Lint`: cut per reader).
struct Kept {
    seq: u64,
    frame: Bytes,
    audience: Shown,
}

/// Who may read an event.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Shown {
    /// Every reader of the room.
    Everyone,
    /// Readers of an objective with this audience.
    Audience(Audience),
    /// The lint list: readers who see everything get it whole, the others their part.
    Lint,
}

/// A `/live` subscriber's view: who reads, and what they may not see now.
struct View {
    reader: Reader,
    hidden: Hidden,
}

pub struct Projector<S: Sink> {
    room: String,
    okr: Projection,
    /// What the doc's transactions touched; taken by [`Projector::updated`].
    touched: Watch,
    history: VecDeque<Kept>,
    history_bytes: usize,
    /// The history holds every event with a sequence number above this.
    floor: u64,
    /// The `/live` subscribers (each with its user).
    subscribers: Fanout<S>,
    /// What each subscriber reads.
    views: HashMap<PeerId, View>,
    /// How many subscribers do not see everything (0: every frame goes to all).
    partial: usize,
    /// How many subscribers hide some objective of the set now (0: every snapshot and lint
    /// list is shared by all).
    restricted: usize,
    /// The sequence number of the last change of an existing objective's audience (its
    /// visibility or owner) or of a KR's objective: a restricted reader cannot resume from
    /// before it (the events it would replay were cut for the audiences of then).
    audiences_changed: u64,
    /// Snapshots cut for restricted readers, by what they hide, until the set or presence
    /// changes.
    cut_snapshots: Vec<(Hidden, Bytes)>,
    /// Mentions published since [`Projector::take_mail`], for the users' inboxes.
    mail: Vec<Mail>,
    /// Notices (check-ins, comments, reminders worth a chat message) published since
    /// [`Projector::take_notices`]; `None` while nobody wants them.
    notices: Option<Vec<okr::notice::Notice>>,
    /// Who is present, with how many connections or awareness states each.
    present: HashMap<Presence, usize>,
    /// This node's `/live` subscribers per user (what other nodes are told, on a shared log).
    local_live: BTreeMap<String, usize>,
    /// Set when `local_live` changed since [`Projector::take_live_changed`].
    live_changed: bool,
    /// The presence each Yjs awareness state stands for.
    aware: HashMap<ClientID, Presence>,
    /// The set as JSON, until it changes.
    set_json: Option<Arc<RawValue>>,
    /// The snapshot frame and the sequence number it is at, until the set or presence changes.
    snapshot: Option<(u64, Bytes)>,
    /// Presence changes still sent one by one before the next tick (then coalesced).
    presence_budget: PresenceBudget,
    /// Counts changes of the set (and of what time derives from it).
    version: u64,
    /// REST views of the set, by what their readers hide (see [`Projector::rest_view`]).
    rest_views: Vec<RestView>,
}

/// The set's JSON as readers hiding `hidden` see it, at `seq` and `version`, and its cost.
struct RestView {
    hidden: Hidden,
    version: u64,
    seq: u64,
    json: Arc<RawValue>,
    cost: EncodeCost,
}

impl<S: Sink> Projector<S> {
    /// Starts projecting `doc` (at sequence number `seq`) and watching its OKR roots.
    pub fn new(room: &str, doc: &Doc, seq: u64) -> Self {
        let touched = Watch::new(doc, OBSERVER);
        let okr = Projection::load(&doc.transact(), now_millis());
        Projector {
            room: room.to_owned(),
            okr,
            touched,
            history: VecDeque::new(),
            history_bytes: 0,
            floor: seq,
            subscribers: Fanout::default(),
            views: HashMap::new(),
            partial: 0,
            restricted: 0,
            audiences_changed: 0,
            cut_snapshots: Vec::new(),
            mail: Vec::new(),
            notices: None,
            present: HashMap::new(),
            local_live: BTreeMap::new(),
            live_changed: false,
            aware: HashMap::new(),
            set_json: None,
            snapshot: None,
            presence_budget: PresenceBudget::new(RoomLimits::default().presence_per_tick),
            version: 0,
            rest_views: Vec::new(),
        }
    }

    /// How many presence changes go out one by one between two ticks (the rest coalesce).
    pub fn set_presence_budget(&mut self, per_tick: usize) {
        self.presence_budget = PresenceBudget::new(per_tick);
    }

    /// The typed model as of the last change (what commands validate against).
    pub fn projection(&self) -> &Projection {
        &self.okr
    }

    /// The whole typed set (built on each call: for tests and tools, not for hot paths).
    pub fn model(&self) -> OkrSet {
        self.okr.to_set()
    }

    /// The set as JSON, encoded once per change.
    pub fn set_json(&mut self) -> Arc<RawValue> {
        if let Some(json) = &self.set_json {
            return json.clone();
        }
        // Serialising the model cannot fail: no maps with non-string keys, no custom impls.
        let raw = serde_json::value::to_raw_value(&self.okr.to_set())
            .unwrap_or_else(|_| RawValue::from_string("null".into()).expect("valid JSON"));
        let json: Arc<RawValue> = Arc::from(raw);
        self.set_json = Some(json.clone());
        json
    }

    pub fn subscriber_count(&self) -> usize {
        self.subscribers.len()
    }

    /// The subscribers to write once the room's lock is released.
    pub fn kicks(&mut self) -> &mut Kicks<S> {
        self.subscribers.kicks()
    }

    /// The mentions published since the last call.
    pub fn take_mail(&mut self) -> Vec<Mail> {
        std::mem::take(&mut self.mail)
    }

    /// Keeps the notices published from now on, for [`Projector::take_notices`].
    pub fn collect_notices(&mut self) {
        self.notices.get_or_insert_with(Vec::new);
    }

    /// The notices published since the last call.
    pub fn take_notices(&mut self) -> Vec<okr::notice::Notice> {
        self.notices
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// What the doc's transactions touched since the last call (for [`Projector::updated`]).
    pub fn touched(&mut self) -> Touched {
        self.touched.take()
    }

    /// After an update at `seq` by `by` that touched `touched`: if it touched the OKR set,
    /// brings the projection up to date and publishes the events, stamped `at` (by default
    /// now; on a shared log, when the log took the update, so that every node stamps alike).
    pub fn updated(
        &mut self,
        doc: &Doc,
        touched: Touched,
        seq: u64,
        by: Option<&UserId>,
        at: Option<Millis>,
        metrics: &Metrics,
    ) {
        if touched.is_empty() {
            return;
        }
        // On a shared log the clock is the log's, so every node ticks alike.
        let now = at.unwrap_or_else(now_millis);
        if now - self.okr.as_of() >= STALE_MS {
            let events = self.okr.tick(now);
            self.publish_all(events, seq, None, now, &HashMap::new(), metrics);
        }
        // Who could read each touched objective (and which objective each touched KR was
        // under) before the change: what decides who sees its events, and who must resync.
        let before: HashMap<String, Option<Audience>> = (touched.objectives.iter())
            .filter(|(_, scope)| !matches!(scope, okr::Scope::Text(_)))
            .map(|(id, _)| (id.clone(), audience_of(&self.okr, id)))
            .collect();
        // A keystroke in a KR's title cannot move it to another objective.
        let kr_before: Vec<(String, Option<String>)> = (touched.key_results.iter())
            .filter(|(_, scope)| !matches!(scope, okr::Scope::Text(_)))
            .map(|(id, _)| {
                (
                    id.clone(),
                    self.okr.key_result(id).map(|k| k.objective.clone()),
                )
            })
            .collect();
        let events = self.okr.apply(&doc.transact(), &touched);
        self.changed();
        let resync = self.audiences_moved(&before, &kr_before, seq);
        self.publish_all(events, seq, by, now, &before, metrics);
        for peer in resync {
            let frame = self.snapshot_for(peer, seq);
            if self.subscribers.send_to(peer, frame, metrics) {
                self.unsubscribe(peer, seq, metrics);
            }
        }
    }

    /// After an update: if an objective appeared, disappeared or changed its audience, or a KR
    /// moved, each restricted reader's hidden set is computed again. Returns the readers who
    /// must resync — an objective that stayed but that they now see, or no longer see, or a
    /// KR that moved between objectives they see differently — to get a fresh snapshot
    /// instead of this update's events.
    fn audiences_moved(
        &mut self,
        before: &HashMap<String, Option<Audience>>,
        kr_before: &[(String, Option<String>)],
        seq: u64,
    ) -> HashSet<PeerId> {
        let mut resync = HashSet::new();
        let changed: Vec<(&String, &Option<Audience>, Option<Audience>)> = (before.iter())
            .map(|(id, was)| (id, was, audience_of(&self.okr, id)))
            .filter(|(_, was, now)| *was != now)
            .collect();
        let moved: Vec<(Option<Audience>, Option<Audience>)> = (kr_before.iter())
            .filter_map(|(kr, was)| {
                let now = self.okr.key_result(kr).map(|k| k.objective.clone());
                match (was, now) {
                    (Some(a), Some(b)) if *a != b => {
                        Some((audience_of(&self.okr, a), audience_of(&self.okr, &b)))
                    }
                    _ => None,
                }
            })
            .collect();
        if changed.is_empty() && moved.is_empty() {
            return resync;
        }
        if changed
            .iter()
            .any(|(_, was, now)| was.is_some() && now.is_some())
            || !moved.is_empty()
        {
            self.audiences_changed = seq;
        }
        let okr = &self.okr;
        for (peer, view) in self.views.iter_mut() {
            if view.reader.sees == Sees::All {
                continue;
            }
            let r = &view.reader;
            let flips = |a: &Option<Audience>, b: &Option<Audience>| {
                a.is_some()
                    && b.is_some()
                    && r.may_read_audience(a.as_ref()) != r.may_read_audience(b.as_ref())
            };
            if changed.iter().any(|(_, was, now)| flips(was, now))
                || moved.iter().any(|(a, b)| flips(a, b))
            {
                resync.insert(*peer);
            }
            view.hidden = r.hidden(okr);
        }
        self.restricted = self.views.values().filter(|v| !v.hidden.is_empty()).count();
        resync
    }
    /// Moves the projection's clock to now and publishes what time alone changed (a KR
    /// becoming overdue, with its reminder), and the presence held back since the last tick.
    /// Called on a timer.
    pub fn tick(&mut self, seq: u64, metrics: &Metrics) {
        self.tick_clock(seq, now_millis(), metrics);
        self.tick_presence(seq, metrics);
    }

    /// Moves the projection's clock to `now` and publishes what time alone changed, at `seq`.
    /// (On a shared log `now` is the log's clock at a tick entry, the same on every node.)
    pub fn tick_clock(&mut self, seq: u64, now: Millis, metrics: &Metrics) {
        // Never back: a node that loaded the room later than a tick was written is ahead.
        if now <= self.okr.as_of() {
            return;
        }
        let events = self.okr.tick(now);
        self.changed();
        self.publish_all(events, seq, None, now, &HashMap::new(), metrics);
    }

    /// Sends the presence changes coalesced since the last tick as one `present` message.
    pub fn tick_presence(&mut self, seq: u64, metrics: &Metrics) {
        if self.presence_budget.tick() && !self.subscribers.is_empty() {
            let frame = encode(&ServerMessage::Control(Control::Present {
                seq,
                present: self.present_list(),
            }));
            self.broadcast(&frame, seq, metrics);
        }
    }

    /// The set changed: its encodings are stale.
    fn changed(&mut self) {
        self.version += 1;
        self.set_json = None;
        self.snapshot = None;
        self.cut_snapshots.clear();
    }

    /// Publishes `events` at `seq`; `before` holds the audiences of objectives as they were
    /// before the update (for one it removed).
    fn publish_all(
        &mut self,
        events: Vec<okr::Event>,
        seq: u64,
        by: Option<&UserId>,
        at: Millis,
        before: &HashMap<String, Option<Audience>>,
        metrics: &Metrics,
    ) {
        for event in events {
            let shown = match About::of(&event, &self.okr) {
                About::Room => Shown::Everyone,
                About::Lint => Shown::Lint,
                About::Objective(id) => {
                    let audience = audience_of(&self.okr, &id)
                        .or_else(|| before.get(&id).cloned().flatten())
                        // Unknown (an orphan's, a removed one's): admins only.
                        .unwrap_or((okr::Visibility::Private, None));
                    Shown::Audience(audience)
                }
            };
            let mention = match (&shown, &event) {
                (Shown::Audience(a), okr::Event::Mention { user, .. }) => {
                    Some((user.clone(), a.clone()))
                }
                _ => None,
            };
            let lint = match (&shown, &event) {
                (Shown::Lint, okr::Event::LintChanged { lint }) if self.restricted > 0 => {
                    Some(lint.clone())
                }
                _ => None,
            };
            // Chat messages leave the room: nothing from a private objective.
            let private = matches!(&shown, Shown::Audience((okr::Visibility::Private, _)));
            if let (Some(notices), false) = (&mut self.notices, private) {
                if let Some(mut n) = okr::notice::notice_of(&event, &self.okr, seq, at) {
                    n.room = self.room.clone();
                    notices.push(n);
                }
            }
            let message = Box::new(EventMessage {
                seq,
                by: by.map(|u| u.to_string()),
                at,
                event,
            });
            if let Some((user, audience)) = mention {
                self.mail.push(Mail {
                    user,
                    audience,
                    message: (*message).clone(),
                });
            }
            let message = ServerMessage::Event(message);
            let frame = encode(&message);
            self.publish(seq, frame, shown, metrics);
            if let (Some(lint), ServerMessage::Event(message)) = (lint, message) {
                self.publish_cut_lint(*message, &lint, seq, metrics);
            }
        }
    }

    /// Sends each restricted reader its part of a `lint.changed`.
    fn publish_cut_lint(
        &mut self,
        mut message: EventMessage,
        lint: &[okr::LintFinding],
        seq: u64,
        metrics: &Metrics,
    ) {
        let okr = &self.okr;
        let objective_of = |k: &str| okr.key_result(k).map(|kr| kr.objective.as_str());
        let mut full = Vec::new();
        for (peer, view) in &self.views {
            if view.hidden.is_empty() {
                continue;
            }
            message.event = okr::Event::LintChanged {
                lint: view.hidden.filter_lint(lint, objective_of),
            };
            let frame = encode(&ServerMessage::Event(Box::new(message.clone())));
            if self.subscribers.send_to(*peer, frame, metrics) {
                full.push(*peer);
            }
        }
        for peer in full {
            self.unsubscribe(peer, seq, metrics);
        }
    }

    /// Queues `frame` to every subscriber who may read it and keeps it in the history,
    /// dropping the oldest events past the history's bounds.
    fn publish(&mut self, seq: u64, frame: Bytes, shown: Shown, metrics: &Metrics) {
        self.history_bytes += frame.len();
        let to_all = self.partial == 0 || shown == Shown::Everyone;
        let views = &self.views;
        let reads = |peer: PeerId| {
            views.get(&peer).is_some_and(|v| match &shown {
                Shown::Everyone => true,
                // Restricted readers got their own cut.
                Shown::Lint => v.hidden.is_empty(),
                Shown::Audience(a) => v.reader.may_read_audience(Some(a)),
            })
        };
        let full = match to_all {
            true => self.subscribers.broadcast(&frame, None, metrics),
            false => self.subscribers.broadcast_to(&frame, reads, metrics),
        };
        self.history.push_back(Kept {
            seq,
            frame,
            audience: shown,
        });
        while self.history.len() > HISTORY || self.history_bytes > HISTORY_BYTES {
            let Some(dropped) = self.history.pop_front() else {
                break;
            };
            self.history_bytes -= dropped.frame.len();
            self.floor = dropped.seq;
        }
        for peer in full {
            self.unsubscribe(peer, seq, metrics);
        }
    }

    /// Queues `frame` to every subscriber; cuts off those whose sink is full (their departure
    /// is announced at `seq`).
    fn broadcast(&mut self, frame: &Bytes, seq: u64, metrics: &Metrics) {
        // Fanout logs and counts each cut-off; its departure is announced here.
        for peer in self.subscribers.broadcast(frame, None, metrics) {
            self.unsubscribe(peer, seq, metrics);
        }
    }

    /// Adds a `/live` subscriber of `user`, reading as `reader`, at `seq`: queues a snapshot
    /// (cut to what the reader may see), or — when `since` is within the history, and the
    /// reader sees everything or no audience changed since — a `resumed` and the events after
    /// `since` that it may read. Then announces its presence.
    #[allow(clippy::too_many_arguments)]
    pub fn subscribe(
        &mut self,
        peer: PeerId,
        user: UserId,
        reader: Reader,
        sink: Arc<S>,
        since: Option<u64>,
        seq: u64,
        metrics: &Metrics,
    ) {
        let hidden = reader.hidden(&self.okr);
        let everything = reader.sees == Sees::All;
        let resumable = since.filter(|s| {
            *s >= self.floor && *s <= seq && (everything || *s >= self.audiences_changed)
        });
        // A restricted reader's lint comes cut: one in the range makes it a snapshot.
        let resumable = resumable.filter(|from| {
            hidden.is_empty()
                || !(self.history.iter()).any(|k| k.seq > *from && k.audience == Shown::Lint)
        });
        let restricted = !hidden.is_empty();
        if !everything {
            self.partial += 1;
        }
        self.views.insert(peer, View { reader, hidden });
        if restricted {
            self.restricted += 1;
        }
        match resumable {
            Some(from) => {
                let _ = sink.push(encode(&ServerMessage::Control(Control::Resumed {
                    from,
                    seq,
                    present: self.present_list(),
                })));
                let view = &self.views[&peer];
                for kept in self.history.iter().filter(|k| k.seq > from) {
                    let reads = match &kept.audience {
                        Shown::Everyone | Shown::Lint => true,
                        Shown::Audience(a) => view.reader.may_read_audience(Some(a)),
                    };
                    if reads {
                        let _ = sink.push(kept.frame.clone());
                    }
                }
            }
            None => {
                let _ = sink.push(self.snapshot_for(peer, seq));
            }
        }
        let who = Presence {
            user: user.to_string(),
            via: Via::Live,
            client: None,
        };
        *self.local_live.entry(who.user.clone()).or_insert(0) += 1;
        self.live_changed = true;
        self.subscribers
            .insert(peer, sink, Some(user), crate::identity::Role::Viewer);
        self.arrive(who, seq, metrics);
    }

    /// Whether this node's `/live` users changed since the last call.
    pub fn take_live_changed(&mut self) -> bool {
        std::mem::take(&mut self.live_changed)
    }

    /// This node's `/live` users, with their connection counts.
    pub fn local_live(&self) -> &BTreeMap<String, usize> {
        &self.local_live
    }

    /// Another node's `/live` users changed from `was` to `now` (counts per user): their
    /// presence arrives and departs here like a local subscriber's.
    pub fn remote_live(
        &mut self,
        was: &BTreeMap<String, usize>,
        now: &BTreeMap<String, usize>,
        seq: u64,
        metrics: &Metrics,
    ) {
        let who = |user: &str| Presence {
            user: user.to_owned(),
            via: Via::Live,
            client: None,
        };
        for (user, &n) in now {
            for _ in was.get(user).copied().unwrap_or(0)..n {
                self.arrive(who(user), seq, metrics);
            }
        }
        for (user, &n) in was {
            for _ in now.get(user).copied().unwrap_or(0)..n {
                self.depart(who(user), seq, metrics);
            }
        }
    }

    /// Removes a `/live` subscriber and announces its departure.
    pub fn unsubscribe(&mut self, peer: PeerId, seq: u64, metrics: &Metrics) {
        if let Some(view) = self.views.remove(&peer) {
            if !view.hidden.is_empty() {
                self.restricted -= 1;
            }
            if view.reader.sees != Sees::All {
                self.partial -= 1;
            }
        }
        if let Some(user) = self.subscribers.remove(peer).and_then(|s| s.user) {
            let who = Presence {
                user: user.to_string(),
                via: Via::Live,
                client: None,
            };
            if let Some(n) = self.local_live.get_mut(&who.user) {
                *n -= 1;
                if *n == 0 {
                    self.local_live.remove(&who.user);
                }
                self.live_changed = true;
            }
            self.depart(who, seq, metrics);
        }
    }

    /// The snapshot message at `seq` for subscriber `peer`: the shared one, or one cut to what
    /// it may see.
    fn snapshot_for(&mut self, peer: PeerId, seq: u64) -> Bytes {
        let hidden = self.views.get(&peer).map(|v| v.hidden.clone());
        match hidden {
            Some(h) if !h.is_empty() => self.cut_snapshot(&h, seq),
            _ => self.snapshot(seq),
        }
    }

    /// A snapshot without the objectives `hidden` hides, shared by every reader who hides the
    /// same ones until the set or presence changes.
    fn cut_snapshot(&mut self, hidden: &Hidden, seq: u64) -> Bytes {
        if let Some((_, frame)) = self.cut_snapshots.iter().find(|(h, _)| h == hidden) {
            return frame.clone();
        }
        let okr = self.set_json_for(hidden);
        let frame = encode_snapshot(&self.room, seq, &okr, &self.present_list());
        if self.cut_snapshots.len() >= MAX_CUT_SNAPSHOTS {
            self.cut_snapshots.remove(0);
        }
        self.cut_snapshots.push((hidden.clone(), frame.clone()));
        frame
    }

    /// The set as JSON for a REST reader hiding `hidden`, and the seq it is at: the last
    /// encoding for the same readers while the set has not changed since, or while encoding it
    /// again would be too soon for what it costs ([`EncodeCost`]: only sets that take over 2 ms
    /// to encode are ever served a little behind, with the older `seq` they are at).
    pub fn rest_view(&mut self, hidden: &Hidden, seq: u64, now: Instant) -> (u64, Arc<RawValue>) {
        let version = self.version;
        let kept = self.rest_views.iter().position(|v| &v.hidden == hidden);
        if let Some(v) = kept.map(|i| &self.rest_views[i]) {
            if v.version == version || !v.cost.renewable(now) {
                return (v.seq, v.json.clone());
            }
        }
        let started = Instant::now();
        let json = self.set_json_for(hidden);
        let view = RestView {
            hidden: hidden.clone(),
            version,
            seq,
            json: json.clone(),
            cost: EncodeCost {
                at: now,
                took: started.elapsed(),
            },
        };
        match kept {
            Some(i) => self.rest_views[i] = view,
            None => {
                if self.rest_views.len() >= MAX_CUT_SNAPSHOTS {
                    self.rest_views.remove(0);
                }
                self.rest_views.push(view);
            }
        }
        (seq, json)
    }

    /// The set as JSON without what `hidden` hides.
    pub fn set_json_for(&mut self, hidden: &Hidden) -> Arc<RawValue> {
        if hidden.is_empty() {
            return self.set_json();
        }
        let cut = hidden.filter_set(&self.okr.to_set());
        let raw = serde_json::value::to_raw_value(&cut)
            .unwrap_or_else(|_| RawValue::from_string("null".into()).expect("valid JSON"));
        Arc::from(raw)
    }

    /// The snapshot message at `seq`, shared by every joiner who sees everything until the set
    /// or presence changes.
    pub fn snapshot(&mut self, seq: u64) -> Bytes {
        if let Some((at, frame)) = &self.snapshot {
            if *at == seq {
                return frame.clone();
            }
        }
        let okr = self.set_json();
        let frame = encode_snapshot(&self.room, seq, &okr, &self.present_list());
        self.snapshot = Some((seq, frame.clone()));
        frame
    }

    /// Who is here, in a stable order.
    fn present_list(&self) -> Vec<Presence> {
        let mut present: Vec<Presence> = self.present.keys().cloned().collect();
        present.sort_by(|a, b| (&a.user, a.client).cmp(&(&b.user, b.client)));
        present
    }

    /// Follows Yjs awareness: a state is the presence of its connection's user; on an open
    /// server, of the `user` it names (`{"user": {"id" | "name": …}}`, the y-websocket
    /// convention), if it names one.
    pub fn awareness_changed(
        &mut self,
        awareness: &Awareness,
        summary: &AwarenessUpdateSummary,
        user: Option<&UserId>,
        seq: u64,
        metrics: &Metrics,
    ) {
        for id in summary.added.iter().chain(&summary.updated) {
            // A connection that is known to be a user is that user, whatever its state says.
            let who = awareness
                .state::<serde_json::Value>(*id)
                .and_then(|state| match user {
                    Some(u) => Some(u.to_string()),
                    None => awareness_user(&state),
                })
                .map(|user| Presence {
                    user,
                    via: Via::Sync,
                    client: Some(id.get()),
                });
            if self.aware.get(id) == who.as_ref() {
                continue;
            }
            if let Some(old) = self.aware.remove(id) {
                self.depart(old, seq, metrics);
            }
            if let Some(who) = who {
                self.aware.insert(*id, who.clone());
                self.arrive(who, seq, metrics);
            }
        }
        self.awareness_removed(&summary.removed, seq, metrics);
    }

    /// Awareness states removed (their client left or was cut off).
    pub fn awareness_removed(&mut self, ids: &[ClientID], seq: u64, metrics: &Metrics) {
        for id in ids {
            if let Some(old) = self.aware.remove(id) {
                self.depart(old, seq, metrics);
            }
        }
    }

    fn arrive(&mut self, who: Presence, seq: u64, metrics: &Metrics) {
        let n = self.present.entry(who.clone()).or_insert(0);
        *n += 1;
        if *n == 1 {
            self.announce(who, PresenceState::Joined, seq, metrics);
        }
    }

    fn depart(&mut self, who: Presence, seq: u64, metrics: &Metrics) {
        let gone = match self.present.get_mut(&who) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            Some(_) => {
                self.present.remove(&who);
                true
            }
            None => false,
        };
        if gone {
            self.announce(who, PresenceState::Left, seq, metrics);
        }
    }

    fn announce(&mut self, who: Presence, state: PresenceState, seq: u64, metrics: &Metrics) {
        self.snapshot = None;
        self.cut_snapshots.clear();
        if self.subscribers.is_empty() {
            return;
        }
        if !self.presence_budget.spend() {
            // Held back: the next tick sends who is present as one message.
            metrics.presence_coalesced.inc();
            return;
        }
        let frame = encode(&ServerMessage::Control(Control::Presence {
            seq,
            state,
            who,
        }));
        self.broadcast(&frame, seq, metrics);
    }

    /// Closes subscriber `peer` at `expires_at` (unix seconds).
    pub fn expire_at(&mut self, peer: PeerId, expires_at: Option<u64>) {
        self.subscribers.expire_at(peer, expires_at);
    }

    /// Closes the subscribers whose credentials expired by `now` (unix seconds).
    pub fn close_expired(&self, now: u64) {
        self.subscribers.close_expired(now);
    }

    /// Closes every subscriber with `reason`.
    pub fn close_all(&self, reason: &CloseReason) {
        self.subscribers.close_all(reason);
    }
}

/// The user an awareness state names: `user.id`, else `user.name`.
fn awareness_user(state: &serde_json::Value) -> Option<String> {
    let user = state.get("user")?;
    let name = user.get("id").or_else(|| user.get("name"))?.as_str()?;
    (!name.is_empty()).then(|| name.chars().take(64).collect())
}
