//! The room's OKR projection: the typed model kept in step with the doc, the events derived
//! from each change, a short history for clients that reconnect, and the `/live` subscribers.
//!
//! # How events are derived
//!
//! Deep observers on the OKR roots of the doc ([`okr::ROOTS`]) raise a flag whenever a
//! transaction touches them — whoever made it: a Yjs client on `/sync`, a JSON command, REST.
//! After each committed update the room calls [`Projector::updated`]; if the flag is up, the doc
//! is read again into an [`OkrSet`] and compared with the previous read ([`okr::diff`]). So an
//! edit made by a plain Yjs client produces exactly the events a JSON command would, and an
//! update that touches no OKR root (a cursor, a load test's map) costs one atomic load.
//!
//! Reading the whole set per change is deliberate: a team's set is tens of objectives and KRs
//! and a few hundred check-ins, read in tens of microseconds, and the derived fields (progress,
//! status, lint) depend on many entries at once; an incremental reader would be a second source
//! of truth to keep right.
//!
//! # Sequence numbers and resuming
//!
//! An event carries the room's sequence number of the update that caused it (the number the
//! store logs it under, so it survives restarts). Every event is serialised once, queued to
//! every subscriber and kept in a bounded history. A client reconnecting with `?since=SEQ`
//! gets the events after SEQ from the history if it reaches back that far (the history is
//! complete from `floor`: the room's load, or the last event dropped from it), or a fresh
//! snapshot otherwise.
//!
//! Everything here runs under the room's lock, like the rest of the room's state.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use yrs::block::ClientID;
use yrs::sync::awareness::AwarenessUpdateSummary;
use yrs::sync::Awareness;
use yrs::{DeepObservable, Doc, Transact};

use super::fanout::{Fanout, PeerId};
use super::sink::{Kicks, Sink};
use crate::clock::now_millis;
use crate::identity::UserId;
use crate::metrics::Metrics;
use crate::okr::{self, OkrSet};
use crate::protocol::live::{
    encode, Control, EventMessage, Presence, PresenceState, ServerMessage, Via,
};
use crate::protocol::CloseReason;

/// Events kept for clients that reconnect with `?since=`.
pub const HISTORY: usize = 1024;

/// The origin key of the projector's deep observers.
const OBSERVER: &str = "okrhub-live";

pub struct Projector<S: Sink> {
    room: String,
    model: OkrSet,
    changed: Arc<AtomicBool>,
    history: VecDeque<(u64, Bytes)>,
    /// The history holds every event with a sequence number above this.
    floor: u64,
    /// The `/live` subscribers (each with its user).
    subscribers: Fanout<S>,
    /// Who is present, with how many connections or awareness states each.
    present: HashMap<Presence, usize>,
    /// The presence each Yjs awareness state stands for.
    aware: HashMap<ClientID, Presence>,
}

impl<S: Sink> Projector<S> {
    /// Starts projecting `doc` (at sequence number `seq`) and watching its OKR roots.
    pub fn new(room: &str, doc: &Doc, seq: u64) -> Self {
        let changed = Arc::new(AtomicBool::new(false));
        for root in okr::ROOTS {
            let flag = changed.clone();
            doc.get_or_insert_map(*root)
                .observe_deep(OBSERVER, move |_, _| flag.store(true, Ordering::Release));
        }
        let model = okr::read(&doc.transact(), now_millis());
        Projector {
            room: room.to_owned(),
            model,
            changed,
            history: VecDeque::new(),
            floor: seq,
            subscribers: Fanout::default(),
            present: HashMap::new(),
            aware: HashMap::new(),
        }
    }

    /// The typed model as of the last change.
    pub fn model(&self) -> &OkrSet {
        &self.model
    }

    pub fn subscriber_count(&self) -> usize {
        self.subscribers.len()
    }

    /// The subscribers to write once the room's lock is released.
    pub fn kicks(&mut self) -> &mut Kicks<S> {
        self.subscribers.kicks()
    }

    /// After an update at `seq` by `by`: if it touched the OKR set, derives and publishes the
    /// events.
    pub fn updated(&mut self, doc: &Doc, seq: u64, by: Option<&UserId>, metrics: &Metrics) {
        if !self.changed.swap(false, Ordering::AcqRel) {
            return;
        }
        self.refresh(doc, seq, by, metrics);
    }

    /// Reads the doc again and publishes what changed, including what time alone changed (a KR
    /// becoming overdue, with its reminder). Called on a timer for rooms with subscribers.
    pub fn refresh(&mut self, doc: &Doc, seq: u64, by: Option<&UserId>, metrics: &Metrics) {
        let now = now_millis();
        let model = okr::read(&doc.transact(), now);
        let events = okr::diff(&self.model, &model);
        self.model = model;
        for event in events {
            let message = ServerMessage::Event(Box::new(EventMessage {
                seq,
                by: by.map(|u| u.to_string()),
                at: now,
                event,
            }));
            self.publish(seq, encode(&message), metrics);
        }
    }

    /// Queues `frame` to every subscriber and keeps it in the history.
    fn publish(&mut self, seq: u64, frame: Bytes, metrics: &Metrics) {
        if self.history.len() == HISTORY {
            if let Some((dropped, _)) = self.history.pop_front() {
                self.floor = dropped;
            }
        }
        self.history.push_back((seq, frame.clone()));
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

    /// The snapshot message at `seq`.
    pub fn snapshot(&self, seq: u64) -> Bytes {
        encode(&ServerMessage::Control(Control::Snapshot {
            room: self.room.clone(),
            seq,
            okr: Box::new(self.model.clone()),
            present: self.present_list(),
        }))
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
