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
use yrs::{Doc, ReadTxn, StateVector, Transact, TransactionMut, Update};

use super::fanout::PeerId;
use crate::protocol;

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
    /// The sync step 2 a client with an empty doc gets — the whole doc, encoded — kept while
    /// the doc does not change: in a quiet room, every fresh joiner after the first costs a
    /// reference-count increment instead of encoding the doc again.
    full_state: Option<Bytes>,
}

impl DocState {
    pub fn new(doc: Doc) -> Self {
        DocState {
            awareness: Awareness::new(doc),
            owner: HashMap::new(),
            full_state: None,
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

    /// Applies a client's update. A panic inside yrs is caught: the caller must then treat the
    /// doc as lost ([`ApplyError::Panicked`]).
    pub fn apply(&mut self, update: Update) -> Result<(), ApplyError> {
        let applied = catch_unwind(AssertUnwindSafe(|| {
            self.doc().transact_mut().apply_update(update)
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

    /// The answer to a query-awareness message: every state, even none.
    pub fn awareness_reply(&self) -> Option<Bytes> {
        let update = self.awareness.update().ok()?;
        Some(protocol::encode(&Message::Awareness(update)))
    }

    /// Applies `peer`'s awareness update; the summary of what it changed (None when nothing:
    /// e.g. the JS provider echoing a state it received). `peer` becomes the owner of the
    /// states it changed, so that they are removed when it leaves.
    pub fn apply_awareness(
        &mut self,
        peer: PeerId,
        update: AwarenessUpdate,
    ) -> Result<Option<AwarenessUpdateSummary>, yrs::sync::awareness::Error> {
        let summary = self.awareness.apply_update_summary(update)?;
        if let Some(summary) = &summary {
            for id in summary.added.iter().chain(&summary.updated) {
                self.owner.insert(*id, peer);
            }
            for id in &summary.removed {
                self.owner.remove(id);
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
            self.owner.remove(id);
            self.awareness.remove_state(*id);
        }
        owned
    }

    /// The frame telling others that the states `ids` are gone.
    pub fn removal_frame(&self, ids: Vec<ClientID>) -> Option<Bytes> {
        let update = self.awareness.update_with_clients(ids).ok()?;
        Some(protocol::encode(&Message::Awareness(update)))
    }
}
