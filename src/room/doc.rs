//! A room's document state: the yrs doc with its awareness, who published each awareness
//! state, and the cached encoding of the whole doc for fresh joiners.
//!
//! Everything y-sync asks of the doc is here — the reply to a sync step 1, applying an update
//! (guarded against panics inside yrs), applying awareness — and nothing about connections,
//! sockets or the store.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use bytes::Bytes;
use yrs::block::ClientID;
use yrs::sync::awareness::AwarenessUpdateSummary;
use yrs::sync::{Awareness, AwarenessUpdate, Message, SyncMessage};
use yrs::undo::{Options as UndoOptions, UndoManager};
use yrs::{Doc, Origin, ReadTxn, StateVector, Transact, TransactionMut, Update};

use super::fanout::PeerId;
use crate::identity::UserId;
use crate::okr::Root;
use crate::protocol;

/// The origin of the transactions that apply a client's update: the only ones the undo
/// manager records, so that an update breaking the document's rules can be taken back.
const CLIENT_ORIGIN: &str = "okrhub-client-update";

/// Why a client's update is refused before it is applied.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Unfit {
    /// It writes as a Yjs client id that another user (or the server) writes as.
    #[error("the update writes as Yjs client {0}, which is another writer's")]
    ForeignClient(u64),
    /// It continues a client's history past what the room has: it would wait, unapplied.
    #[error("the update depends on changes of Yjs client {0} the room does not have")]
    Gap(u64),
}

/// Why an update was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// yrs refused it; the doc is unchanged.
    #[error("{0}")]
    Invalid(yrs::error::UpdateError),
    /// yrs panicked half-way through it: the doc can no longer be trusted.
    #[error("update could not be applied")]
    Panicked,
}

pub struct DocState {
    awareness: Awareness,
    /// Which connection published each present awareness state, removed when it leaves. Only
    /// a state that connection actually changed counts, since the JS provider echoes every
    /// state it receives.
    owner: HashMap<ClientID, PeerId>,
    /// How many states each connection owns (`owner` counted by value), so that the
    /// per-connection awareness limit costs a lookup, not a scan of the room's states.
    owned: HashMap<PeerId, usize>,
    /// The sync step 2 a client with an empty doc gets — the whole doc, encoded — kept while
    /// the doc does not change: in a quiet room, every fresh joiner after the first costs a
    /// reference-count increment instead of encoding the doc again.
    full_state: Option<Bytes>,
    /// Records each client update (and nothing else), so that one that breaks the document's
    /// rules is undone; cleared after every accepted one.
    undo: UndoManager<()>,
    /// Which user writes as each Yjs client id seen since the room loaded: an update may only
    /// write as ids that are new or its own user's. The server's own id is nobody's.
    writers: HashMap<ClientID, UserId>,
}

impl DocState {
    pub fn new(doc: Doc) -> Self {
        let mut undo = UndoManager::with_options(UndoOptions {
            capture_timeout_millis: 0,
            ..UndoOptions::default()
        });
        for root in Root::ALL {
            undo.expand_scope(&doc, &doc.get_or_insert_map(root.name()));
        }
        undo.include_origin(Origin::from(CLIENT_ORIGIN));
        DocState {
            awareness: Awareness::new(doc),
            owner: HashMap::new(),
            owned: HashMap::new(),
            full_state: None,
            undo,
            writers: HashMap::new(),
        }
    }

    pub fn doc(&self) -> &Doc {
        self.awareness.doc()
    }

    pub fn awareness(&self) -> &Awareness {
        &self.awareness
    }

    /// The server's sync step 1: its state vector.
    pub fn step1(&self) -> Bytes {
        let sv = self.doc().transact().state_vector();
        protocol::encode(&Message::Sync(SyncMessage::SyncStep1(sv)))
    }

    /// The sync step 2 answering a client's step 1: what the client lacks. For an empty state
    /// vector, the whole doc, from the cache (encoded and cached on a miss).
    pub fn step2(&mut self, sv: &StateVector) -> Bytes {
        if !sv.is_empty() {
            let diff = self.doc().transact().encode_state_as_update_v1(sv);
            return protocol::encode(&Message::Sync(SyncMessage::SyncStep2(diff)));
        }
        if let Some(frame) = &self.full_state {
            return frame.clone();
        }
        let frame = protocol::encode(&Message::Sync(SyncMessage::SyncStep2(self.encode_full())));
        self.full_state = Some(frame.clone());
        frame
    }

    /// The whole doc as one v1 update.
    pub fn encode_full(&self) -> Vec<u8> {
        crate::store::transfer::encode_full(self.doc())
    }

    /// Checks, before applying it, that an update by `user` (in the parts
    /// [`protocol::decode_update`] made of it) writes only as Yjs client ids that are new or
    /// already `user`'s (never the server's), and continues each client's history exactly
    /// where the room's ends. Binds the new ids to `user`. Returns the doc's state vector
    /// (what [`DocState::undo_client_update`] takes back to).
    pub fn admit_update(
        &mut self,
        parts: &[Update],
        user: Option<&UserId>,
    ) -> Result<StateVector, Unfit> {
        let have = self.doc().transact().state_vector();
        let server = self.doc().client_id();
        let mut lower: HashMap<ClientID, u32> = HashMap::new();
        for part in parts {
            for (client, from) in part.state_vector_lower().iter() {
                let e = lower.entry(*client).or_insert(*from);
                *e = (*e).min(*from);
            }
        }
        for (client, from) in &lower {
            if *from > have.get(client) {
                return Err(Unfit::Gap(client.get()));
            }
        }
        let Some(user) = user else {
            return Ok(have);
        };
        // Only the ids it brings new items of: a replica resending known items (a late sync
        // step 2) changes nothing with them. (`Update::state_vector` counts only updates that
        // start at clock 0, so the end of each client's inserted ranges is taken here.)
        let mut writes: Vec<ClientID> = Vec::new();
        for part in parts {
            for (client, ranges) in part.insertions(true).iter() {
                let end = ranges.iter().map(|r| r.end).max();
                if end.is_some_and(|end| end > have.get(client)) && !writes.contains(client) {
                    writes.push(*client);
                }
            }
        }
        for client in &writes {
            if *client == server {
                return Err(Unfit::ForeignClient(client.get()));
            }
            match self.writers.get(client) {
                Some(owner) if owner != user => return Err(Unfit::ForeignClient(client.get())),
                Some(_) => {}
                None => {
                    self.writers.insert(*client, user.clone());
                }
            }
        }
        Ok(have)
    }

    /// Applies a client's update (its parts, each in its own transaction: see
    /// [`protocol::bound::split_v1`]), recorded so that [`DocState::undo_client_update`] can
    /// take it back. A panic inside yrs is caught: the caller must then treat the doc as lost
    /// ([`ApplyError::Panicked`]).
    pub fn apply_client_update(&mut self, parts: Vec<Update>) -> Result<(), ApplyError> {
        let applied = catch_unwind(AssertUnwindSafe(|| {
            for part in parts {
                self.doc()
                    .transact_mut_with(Origin::from(CLIENT_ORIGIN))
                    .apply_update(part)?;
            }
            Ok(())
        }));
        let result = match applied {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ApplyError::Invalid(e)),
            Err(_) => Err(ApplyError::Panicked),
        };
        if result.is_err() {
            self.undo.clear_all();
        }
        result
    }

    /// The last client update was fine: forget how to undo it.
    pub fn keep_client_update(&mut self) {
        self.undo.clear_all();
    }

    /// Takes back the last client update (a new transaction that reverts what it did in the
    /// OKR roots) and returns everything the doc gained since `before` — the update and its
    /// undoing as one v1 update, which every other replica needs to stay in step.
    pub fn undo_client_update(&mut self, before: &StateVector) -> Vec<u8> {
        // one undo step per part the update was applied in (the stack holds nothing else)
        while self.undo.can_undo() {
            if !self.undo.undo_blocking() {
                break;
            }
        }
        self.undo.clear_all();
        self.doc().transact().encode_state_as_update_v1(before)
    }

    /// Applies an update from a trusted source (another node's log), in the parts
    /// [`protocol::decode_update`] made of it, each in its own transaction. A panic inside yrs
    /// is caught: the caller must then treat the doc as lost ([`ApplyError::Panicked`]).
    pub fn apply(&mut self, parts: Vec<Update>) -> Result<(), ApplyError> {
        let applied = catch_unwind(AssertUnwindSafe(|| {
            for part in parts {
                self.doc().transact_mut().apply_update(part)?;
            }
            Ok(())
        }));
        match applied {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(ApplyError::Invalid(e)),
            Err(_) => Err(ApplyError::Panicked),
        }
    }

    /// Runs `f` in a write transaction; returns its result and the update it made (v1).
    pub fn transact<R>(&self, f: impl FnOnce(&mut TransactionMut) -> R) -> (R, Vec<u8>) {
        let mut txn = self.doc().transact_mut();
        let result = f(&mut txn);
        let update = txn.encode_update_v1();
        (result, update)
    }

    /// The doc changed: the cached full state is stale.
    pub fn changed(&mut self) {
        self.full_state = None;
    }

    /// Every present awareness state as one frame, or None when nobody is present.
    pub fn awareness_frame(&self) -> Option<Bytes> {
        let update = self.awareness.update().ok()?;
        (!update.clients.is_empty()).then(|| protocol::encode(&Message::Awareness(update)))
    }

    /// The awareness states whose owner `keep` keeps, as one frame (None when there are none).
    pub fn awareness_frame_of(&self, keep: impl Fn(PeerId) -> bool) -> Option<Bytes> {
        let ids: Vec<ClientID> = (self.owner.iter())
            .filter(|(_, owner)| keep(**owner))
            .map(|(id, _)| *id)
            .collect();
        if ids.is_empty() {
            return None;
        }
        let update = self.awareness.update_with_clients(ids).ok()?;
        Some(protocol::encode(&Message::Awareness(update)))
    }

    /// The answer to a query-awareness message: every state, even none.
    pub fn awareness_reply(&self) -> Option<Bytes> {
        let update = self.awareness.update().ok()?;
        Some(protocol::encode(&Message::Awareness(update)))
    }

    /// Keeps of `peer`'s awareness update only the states it may set: those of client ids it
    /// introduced, or new ones (a state, not a removal), or ones a connection of the same user
    /// introduced (`same_user(owner)`: a reconnecting tab takes its own state back). Everything
    /// else — another connection's state set or removed — is dropped. Returns the update kept
    /// and whether anything was dropped.
    pub fn own_awareness(
        &self,
        peer: PeerId,
        mut update: AwarenessUpdate,
        same_user: impl Fn(PeerId) -> bool,
    ) -> (AwarenessUpdate, bool) {
        let before = update.clients.len();
        update.clients.retain(|id, entry| match self.owner.get(id) {
            Some(owner) => *owner == peer || same_user(*owner),
            None => &*entry.json != "null",
        });
        let dropped = update.clients.len() != before;
        (update, dropped)
    }

    /// How many awareness states `peer` would own once `update` (cut to what it may set) is
    /// applied: those it owns now, less the ones the update removes, plus the new ones.
    pub fn states_after(&self, peer: PeerId, update: &AwarenessUpdate) -> usize {
        let mut after = self.owned.get(&peer).copied().unwrap_or(0);
        for (id, entry) in &update.clients {
            let mine = self.owner.get(id) == Some(&peer);
            let removal = &*entry.json == "null";
            match (mine, removal) {
                (true, true) => after = after.saturating_sub(1),
                (false, false) => after += 1,
                _ => {}
            }
        }
        after
    }

    /// Applies `peer`'s awareness update (cut to what it may set: [`DocState::own_awareness`]);
    /// the summary of what it changed (None when nothing: e.g. the JS provider echoing a state
    /// it received). `peer` becomes the owner of the states it changed, so that they are
    /// removed when it leaves.
    pub fn apply_awareness(
        &mut self,
        peer: PeerId,
        update: AwarenessUpdate,
    ) -> Result<Option<AwarenessUpdateSummary>, yrs::sync::awareness::Error> {
        if update.clients.is_empty() {
            return Ok(None);
        }
        let summary = self.awareness.apply_update_summary(update)?;
        if let Some(summary) = &summary {
            for id in summary.added.iter().chain(&summary.updated) {
                self.set_owner(*id, Some(peer));
            }
            for id in &summary.removed {
                self.set_owner(*id, None);
            }
        }
        Ok(summary)
    }

    /// Removes the awareness states `peer` published; their ids.
    pub fn remove_owned_by(&mut self, peer: PeerId) -> Vec<ClientID> {
        let owned: Vec<ClientID> = self
            .owner
            .iter()
            .filter(|(_, owner)| **owner == peer)
            .map(|(id, _)| *id)
            .collect();
        for id in &owned {
            self.set_owner(*id, None);
            self.awareness.remove_state(*id);
        }
        owned
    }

    /// Makes `peer` the owner of state `id` (None: nobody), keeping the counts in step.
    fn set_owner(&mut self, id: ClientID, peer: Option<PeerId>) {
        let old = match peer {
            Some(p) => self.owner.insert(id, p),
            None => self.owner.remove(&id),
        };
        if let Some(old) = old {
            if let Some(n) = self.owned.get_mut(&old) {
                *n -= 1;
                if *n == 0 {
                    self.owned.remove(&old);
                }
            }
        }
        if let Some(p) = peer {
            *self.owned.entry(p).or_insert(0) += 1;
        }
    }

    /// The frame telling others that the states `ids` are gone.
    pub fn removal_frame(&self, ids: Vec<ClientID>) -> Option<Bytes> {
        let update = self.awareness.update_with_clients(ids).ok()?;
        Some(protocol::encode(&Message::Awareness(update)))
    }
}
