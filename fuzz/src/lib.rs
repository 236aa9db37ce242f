//! What the fuzz targets share: a realistic OKR doc, and a real `okrhub::room::Room` over it
//! with an in-memory sink and a store that keeps nothing, built fresh for every input.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use okrhub::metrics::Metrics;
use okrhub::room::{Client, PeerId, Room};
use okrhub::room_id::RoomId;
use okrhub::store::persister::Persister;
use okrhub::store::{DocStore, LogEntry, StoreError, StoredDoc};
use okrhub::ws::{Opcode, Outbox};
use yrs::updates::decoder::Decode;
use yrs::{Any, Doc, Map, MapPrelim, ReadTxn, StateVector, TextPrelim, Transact, Update, WriteTxn};

/// The clock the OKR targets read at: 40 days into the seeded cycle.
pub const NOW: i64 = 1_790_812_800_000 + 40 * 86_400_000;

/// A store that accepts every write and keeps nothing.
struct Nowhere;

#[async_trait]
impl DocStore for Nowhere {
    fn name(&self) -> &'static str {
        "nowhere"
    }
    async fn load(&self, _: &RoomId) -> Result<StoredDoc, StoreError> {
        Ok(StoredDoc::default())
    }
    async fn append(&self, _: &[LogEntry]) -> Result<(), StoreError> {
        Ok(())
    }
    async fn compact(&self, _: &RoomId, _: &[u8], _: u64) -> Result<(), StoreError> {
        Ok(())
    }
    async fn rooms(&self) -> Result<Vec<RoomId>, StoreError> {
        Ok(Vec::new())
    }
}

/// A small OKR set as a v1 update: a cycle, two objectives, three KRs (increase, percent,
/// milestones), a check-in and a comment.
pub fn seed_update() -> &'static [u8] {
    static SEED: OnceLock<Vec<u8>> = OnceLock::new();
    SEED.get_or_init(|| {
        let doc = Doc::with_client_id(1);
        let mut txn = doc.transact_mut();
        let cycle = txn.get_or_insert_map("cycle");
        cycle.insert(&mut txn, "id", "2026-Q4");
        cycle.insert(&mut txn, "starts", "2026-10-01");
        cycle.insert(&mut txn, "ends", "2026-12-31");
        let objectives = txn.get_or_insert_map("objectives");
        let krs = txn.get_or_insert_map("key_results");
        for o in 0..2 {
            let m = objectives.insert(&mut txn, format!("o-{o}"), MapPrelim::default());
            m.insert(
                &mut txn,
                "title",
                TextPrelim::new(format!("Grow revenue {o}")),
            );
            m.insert(&mut txn, "owner", "ana");
            m.insert(&mut txn, "order", o as f64);
            m.insert(&mut txn, "visibility", "team");
        }
        for (k, metric) in [
            yrs::any!({"kind": "increase", "start": 0, "target": 500, "unit": "users"}),
            yrs::any!({"kind": "percent"}),
            yrs::any!({"kind": "milestone", "milestones": [{"title": "beta"}, {"title": "GA"}]}),
        ]
        .into_iter()
        .enumerate()
        {
            let m = krs.insert(&mut txn, format!("kr-{k}"), MapPrelim::default());
            m.insert(&mut txn, "objective", format!("o-{}", k % 2));
            m.insert(
                &mut txn,
                "title",
                TextPrelim::new(format!("Key result {k}")),
            );
            m.insert(&mut txn, "owner", "bo");
            m.insert(&mut txn, "order", k as f64);
            m.insert(&mut txn, "metric", metric);
            m.insert(&mut txn, "created_at", 1_790_812_800_000.0);
        }
        let checkin = Any::from(std::collections::HashMap::from([
            ("key_result".to_owned(), Any::from("kr-0")),
            ("author".to_owned(), Any::from("bo")),
            ("at".to_owned(), Any::from(1_791_000_000_000.0)),
            ("value".to_owned(), Any::from(120.0)),
            ("confidence".to_owned(), Any::from(7.0)),
            ("comment".to_owned(), Any::from("on track @ana")),
        ]));
        txn.get_or_insert_map("checkins")
            .insert(&mut txn, "ci-1", checkin);
        let comment = Any::from(std::collections::HashMap::from([
            ("objective".to_owned(), Any::from("o-0")),
            ("author".to_owned(), Any::from("ana")),
            ("at".to_owned(), Any::from(1_791_000_000_000.0)),
            ("body".to_owned(), Any::from("let's go")),
        ]));
        txn.get_or_insert_map("comments")
            .insert(&mut txn, "cm-1", comment);
        drop(txn);
        let state = doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        state
    })
}

/// A fresh doc holding the seed.
pub fn seed_doc() -> Doc {
    let doc = Doc::new();
    doc.transact_mut()
        .apply_update(Update::decode_v1(seed_update()).expect("the seed decodes"))
        .expect("the seed applies");
    doc
}

/// A room over the seed doc, as the hub builds one, with two `/sync` peers whose frames stay
/// in their outboxes.
pub struct Fixture {
    pub room: Room<Outbox>,
    /// The peer the input is sent as.
    pub sender: PeerId,
    /// Another peer, which must never be closed by what the sender sends.
    pub other: Arc<Outbox>,
    tracker: tokio_util::task::TaskTracker,
}

/// One runtime for every input: the persister's task runs on it.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime")
    })
}

impl Fixture {
    /// `client` is who the sender is (the room holds editors to the document's rules).
    pub fn new(client: &Client) -> Self {
        let rt = runtime();
        let tracker = tokio_util::task::TaskTracker::new();
        let metrics = Arc::new(Metrics::new());
        let room = {
            let _guard = rt.enter();
            let persister =
                Persister::start(Arc::new(Nowhere), metrics.clone(), Duration::ZERO, &tracker);
            Room::new(
                RoomId::parse("fuzz.team.2026-Q4").expect("room id"),
                seed_doc(),
                1,
                1,
                persister,
                metrics,
            )
        };
        let sender_box = Arc::new(Outbox::new(4096, Opcode::Binary));
        let sender = room.join(client, sender_box).expect("join");
        let other = Arc::new(Outbox::new(4096, Opcode::Binary));
        room.join(&Client::anonymous(), other.clone())
            .expect("join");
        Fixture {
            room,
            sender,
            other,
            tracker,
        }
    }

    /// Checks what must hold whatever the input was, then lets the persister drain.
    pub fn finish(self) {
        assert!(
            self.other.reason().is_none(),
            "another peer was closed: {:?}",
            self.other.reason()
        );
        let Fixture { room, tracker, .. } = self;
        drop(room);
        tracker.close();
        runtime().block_on(tracker.wait());
    }
}

/// The sender of an input: an editor (held to every rule) or an open server's anonymous
/// client, chosen by one bit.
pub fn client(editor: bool) -> Client {
    if editor {
        Client {
            user: Some(okrhub::identity::UserId::parse("ana").expect("user id")),
            role: okrhub::identity::Role::Editor,
            expires_at: None,
        }
    } else {
        Client::anonymous()
    }
}

/// Reads a doc's OKR set as the server does, and checks the incremental projection against
/// it: the property the room's projector relies on.
pub fn read_and_project(doc: &Doc, parts: Vec<Update>) {
    let watch = okrhub::okr::Watch::new(doc, "fuzz");
    let mut projection = okrhub::okr::Projection::load(&doc.transact(), NOW);
    let _ = watch.take();
    for part in parts {
        if doc.transact_mut().apply_update(part).is_err() {
            return;
        }
    }
    let touched = watch.take();
    let _events = projection.apply(&doc.transact(), &touched);
    let full = okrhub::okr::read(&doc.transact(), projection.as_of());
    assert_eq!(projection.to_set(), full, "projection and full read differ");
    let _ = serde_json::to_vec(&full).expect("the set serializes");
    let _ = doc.transact().state_vector();
}
