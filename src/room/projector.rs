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

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use serde_json::value::RawValue;
use yrs::block::ClientID;
use yrs::sync::awareness::AwarenessUpdateSummary;
use yrs::sync::Awareness;
use yrs::{Doc, Transact};

use super::fanout::{Fanout, PeerId};
use super::sink::{Kicks, Sink};
use crate::clock::now_millis;
use crate::identity::UserId;
use crate::metrics::Metrics;
use crate::okr::{self, Millis, OkrSet, Projection, Watch};
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

/// The origin key of the projector's deep observers.
const OBSERVER: &str = "okrhub-live";

pub struct Projector<S: Sink> {
    room: String,
    okr: Projection,
    /// What the doc's transactions touched; taken by [`Projector::updated`].
    touched: Watch,
    history: VecDeque<(u64, Bytes)>,
    history_bytes: usize,
    /// The history holds every event with a sequence number above this.
    floor: u64,
    /// The `/live` subscribers (each with its user).
    subscribers: Fanout<S>,
    /// Who is present, with how many connections or awareness states each.
    present: HashMap<Presence, usize>,
    /// The presence each Yjs awareness state stands for.
    aware: HashMap<ClientID, Presence>,
    /// The set as JSON, until it changes.
    set_json: Option<Arc<RawValue>>,
    /// The snapshot frame and the sequence number it is at, until the set or presence changes.
    snapshot: Option<(u64, Bytes)>,
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
            present: HashMap::new(),
            aware: HashMap::new(),
            set_json: None,
            snapshot: None,
        }
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

    /// After an update at `seq` by `by`: if it touched the OKR set, brings the projection up
    /// to date and publishes the events.
    pub fn updated(&mut self, doc: &Doc, seq: u64, by: Option<&UserId>, metrics: &Metrics) {
        let touched = self.touched.take();
        if touched.is_empty() {
            return;
        }
        let now = now_millis();
        if now - self.okr.as_of() >= STALE_MS {
            let events = self.okr.tick(now);
            self.publish_all(events, seq, None, now, metrics);
        }
        let events = self.okr.apply(&doc.transact(), &touched);
        self.changed();
        self.publish_all(events, seq, by, now, metrics);
    }

    /// Moves the projection's clock to now and publishes what time alone changed (a KR
    /// becoming overdue, with its reminder). Called on a timer.
    pub fn tick(&mut self, seq: u64, metrics: &Metrics) {
        let now = now_millis();
        let events = self.okr.tick(now);
        self.changed();
        self.publish_all(events, seq, None, now, metrics);
    }

    /// The set changed: its encodings are stale.
    fn changed(&mut self) {
        self.set_json = None;
        self.snapshot = None;
    }

    fn publish_all(
        &mut self,
        events: Vec<okr::Event>,
        seq: u64,
        by: Option<&UserId>,
        at: Millis,
        metrics: &Metrics,
    ) {
        for event in events {
            let message = ServerMessage::Event(Box::new(EventMessage {
                seq,
                by: by.map(|u| u.to_string()),
                at,
                event,
            }));
            self.publish(seq, encode(&message), metrics);
        }
    }

    /// Queues `frame` to every subscriber and keeps it in the history, dropping the oldest
    /// events past the history's bounds.
    fn publish(&mut self, seq: u64, frame: Bytes, metrics: &Metrics) {
        self.history_bytes += frame.len();
        self.history.push_back((seq, frame.clone()));
        while self.history.len() > HISTORY || self.history_bytes > HISTORY_BYTES {
            let Some((dropped, f)) = self.history.pop_front() else {
                break;
            };
            self.history_bytes -= f.len();
            self.floor = dropped;
        }
        self.broadcast(&frame, seq, metrics);
    }

    /// Queues `frame` to every subscriber; cuts off those whose sink is full (their departure
    /// is announced at `seq`).
    fn broadcast(&mut self, frame: &Bytes, seq: u64, metrics: &Metrics) {
        // Fanout logs and counts each cut-off; its departure is announced here.
        for peer in self.subscribers.broadcast(frame, None, metrics) {
            self.unsubscribe(peer, seq, metrics);
        }
    }

    /// Adds a `/live` subscriber at `seq`: queues a snapshot, or — when `since` is within the
    /// history — a `resumed` and the events after `since`. Then announces its presence.
    pub fn subscribe(
        &mut self,
        peer: PeerId,
        user: UserId,
        sink: Arc<S>,
        since: Option<u64>,
        seq: u64,
        metrics: &Metrics,
    ) {
        let resumable = since.filter(|s| *s >= self.floor && *s <= seq);
        match resumable {
            Some(from) => {
                let _ = sink.push(encode(&ServerMessage::Control(Control::Resumed {
                    from,
                    seq,
                    present: self.present_list(),
                })));
                for (_, frame) in self.history.iter().filter(|(s, _)| *s > from) {
                    let _ = sink.push(frame.clone());
                }
            }
            None => {
                let _ = sink.push(self.snapshot(seq));
            }
        }
        let who = Presence {
            user: user.to_string(),
            via: Via::Live,
            client: None,
        };
        self.subscribers.insert(peer, sink, Some(user));
        self.arrive(who, seq, metrics);
    }

    /// Removes a `/live` subscriber and announces its departure.
    pub fn unsubscribe(&mut self, peer: PeerId, seq: u64, metrics: &Metrics) {
        if let Some(user) = self.subscribers.remove(peer).and_then(|s| s.user) {
            let who = Presence {
                user: user.to_string(),
                via: Via::Live,
                client: None,
            };
            self.depart(who, seq, metrics);
        }
    }

    /// The snapshot message at `seq`, shared by every joiner until the set or presence
    /// changes.
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

    /// Follows Yjs awareness: a state with a `user` (`{"user": {"id" | "name": …}}`, the
    /// y-websocket convention) is a presence.
    pub fn awareness_changed(
        &mut self,
        awareness: &Awareness,
        summary: &AwarenessUpdateSummary,
        seq: u64,
        metrics: &Metrics,
    ) {
        for id in summary.added.iter().chain(&summary.updated) {
            let who = awareness
                .state::<serde_json::Value>(*id)
                .and_then(|state| awareness_user(&state))
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
        if self.subscribers.is_empty() {
            return;
        }
        let frame = encode(&ServerMessage::Control(Control::Presence {
            seq,
            state,
            who,
        }));
        self.broadcast(&frame, seq, metrics);
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
