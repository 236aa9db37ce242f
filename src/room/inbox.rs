//! Every user's inbox: the mentions of them made in any room of this node, delivered live to
//! their `/live/~inbox` connections and kept (a few) for `?since=` resumes.
//!
//! A room hands each `mention` event to [`Inboxes::deliver`] as it publishes it, with the
//! audience of the objective it was made about. Each inbox connection has its own test of
//! what it may read ([`MayRead`]: its token's access to that room, and the objective's
//! visibility), so a mention from a room or an objective the user may not read never reaches
//! them — not live, not on a resume.
//!
//! Inbox sequence numbers are this process's: they start at the wall clock in milliseconds, so
//! a client resuming after a restart asks for less than any new number and gets every kept
//! mention. What is kept is bounded: [`KEPT_PER_USER`] mentions per user, [`MAX_USERS`] users.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use super::sink::{Pushed, Sink};
use crate::metrics::Metrics;
use crate::okr::audience::Audience;
use crate::protocol::live::{encode, Control, EventMessage, ServerMessage};
use crate::protocol::CloseReason;
use crate::room_id::RoomId;

/// Mentions kept per user for resumes.
pub const KEPT_PER_USER: usize = 64;
/// Users whose mentions are kept; past it, inboxes nobody is connected to are dropped.
pub const MAX_USERS: usize = 10_000;

/// Whether an inbox connection may read what has this audience in this room.
pub type MayRead = Arc<dyn Fn(&RoomId, &Audience) -> bool + Send + Sync>;

/// One mention on its way to an inbox.
pub struct Mail {
    /// Who was mentioned.
    pub user: String,
    /// The audience of the objective it was made about.
    pub audience: Audience,
    pub message: EventMessage,
}

struct Kept {
    seq: u64,
    room: RoomId,
    audience: Audience,
    frame: Bytes,
}

struct Subscriber<S> {
    id: u64,
    sink: Arc<S>,
    may_read: MayRead,
}

struct UserInbox<S> {
    kept: VecDeque<Kept>,
    /// Every mention after this seq is kept.
    floor: u64,
    subscribers: Vec<Subscriber<S>>,
}

struct State<S> {
    users: HashMap<String, UserInbox<S>>,
    seq: u64,
    next_id: u64,
}

impl<S> State<S> {
    /// `user`'s inbox, made (complete from `floor`) if it has none; past [`MAX_USERS`], the
    /// inboxes nobody is connected to are dropped first.
    fn inbox(&mut self, user: &str, floor: u64) -> &mut UserInbox<S> {
        if !self.users.contains_key(user) && self.users.len() >= MAX_USERS {
            self.users.retain(|_, inbox| !inbox.subscribers.is_empty());
        }
        self.users
            .entry(user.to_owned())
            .or_insert_with(|| UserInbox {
                kept: VecDeque::new(),
                floor,
                subscribers: Vec::new(),
            })
    }
}

/// The inboxes of every user of this node.
pub struct Inboxes<S: Sink> {
    state: Mutex<State<S>>,
}

impl<S: Sink> Inboxes<S> {
    /// Empty inboxes numbering from `start` (the wall clock in ms, for the server).
    pub fn new(start: u64) -> Self {
        Inboxes {
            state: Mutex::new(State {
                users: HashMap::new(),
                seq: start,
                next_id: 1,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<S>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Delivers the mentions made in `room`. Runs under the room's lock: it only queues (a
    /// sink needing a write is handed to its connection's task).
    pub fn deliver(&self, room: &RoomId, mail: Vec<Mail>, metrics: &Metrics) {
        if mail.is_empty() {
            return;
        }
        let mut st = self.lock();
        for m in mail {
            st.seq += 1;
            let seq = st.seq;
            let frame = encode(&ServerMessage::Control(Control::InboxMention {
                seq,
                room: room.to_string(),
                mention: Box::new(m.message),
            }));
            let inbox = st.inbox(&m.user, seq - 1);
            inbox.subscribers.retain(|s| {
                if !(s.may_read)(room, &m.audience) {
                    return true;
                }
                match s.sink.push(frame.clone()) {
                    Ok(Pushed::Kick) => {
                        s.sink.hand_over();
                        true
                    }
                    Ok(_) => true,
                    Err(_) => {
                        metrics.slow_consumer_disconnects.inc();
                        s.sink.close(CloseReason::slow_consumer(s.sink.capacity()));
                        false
                    }
                }
            });
            inbox.kept.push_back(Kept {
                seq,
                room: room.clone(),
                audience: m.audience,
                frame,
            });
            while inbox.kept.len() > KEPT_PER_USER {
                if let Some(old) = inbox.kept.pop_front() {
                    inbox.floor = old.seq;
                }
            }
        }
    }

    /// Subscribes `sink` to `user`'s inbox: a hello, then the kept mentions after `since`
    /// (all kept ones without `since`) that `may_read` allows, then every new one it allows.
    /// Returns the subscription's id.
    pub fn subscribe(
        &self,
        user: &str,
        since: Option<u64>,
        sink: Arc<S>,
        may_read: MayRead,
    ) -> u64 {
        let mut st = self.lock();
        let (id, seq) = (st.next_id, st.seq);
        st.next_id += 1;
        let inbox = st.inbox(user, seq);
        let from = since.unwrap_or(0);
        let hello = Control::Inbox {
            user: user.to_owned(),
            seq,
            complete: since.is_some_and(|s| s >= inbox.floor && s <= seq),
        };
        let _ = sink.push(encode(&ServerMessage::Control(hello)));
        for k in inbox.kept.iter().filter(|k| k.seq > from) {
            if may_read(&k.room, &k.audience) {
                let _ = sink.push(k.frame.clone());
            }
        }
        sink.hand_over();
        inbox.subscribers.push(Subscriber { id, sink, may_read });
        id
    }

    /// Closes every inbox connection with `reason` (shutdown).
    pub fn close_all(&self, reason: &CloseReason) {
        for inbox in self.lock().users.values() {
            for s in &inbox.subscribers {
                s.sink.close(reason.clone());
            }
        }
    }

    /// Ends subscription `id` of `user`.
    pub fn unsubscribe(&self, user: &str, id: u64) {
        let mut st = self.lock();
        if let Some(inbox) = st.users.get_mut(user) {
            inbox.subscribers.retain(|s| s.id != id);
        }
    }
}
