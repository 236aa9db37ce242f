//! What the room benchmarks share: a runtime, an embedded store in a temp dir, and rooms over
//! it whose connections are detached outboxes (no socket: the room's side of a delivery).

use std::sync::Arc;
use std::time::Duration;

use okrhub::metrics::Metrics;
use okrhub::room::{PeerId, Room};
use okrhub::room_id::RoomId;
use okrhub::store::embedded::EmbeddedStore;
use okrhub::store::persister::Persister;
use okrhub::ws::{Opcode, Outbox};
use yrs::Doc;

pub struct Rooms {
    /// Enter it (`rooms.rt.enter()`) for as long as the rooms are used.
    pub rt: tokio::runtime::Runtime,
    store: Arc<EmbeddedStore>,
    metrics: Arc<Metrics>,
    tracker: tokio_util::task::TaskTracker,
    _dir: tempfile::TempDir,
}

impl Rooms {
    pub fn new() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        Rooms {
            rt,
            store: Arc::new(EmbeddedStore::open(dir.path()).unwrap()),
            metrics: Arc::new(Metrics::new()),
            tracker: tokio_util::task::TaskTracker::new(),
            _dir: dir,
        }
    }

    /// A room `id` over `doc`, with its own persister (flushing every 50 ms).
    pub fn room(&self, id: &str, doc: Doc) -> Room<Outbox> {
        let _guard = self.rt.enter();
        let persister = Persister::start(
            self.store.clone(),
            self.metrics.clone(),
            Duration::from_millis(50),
            &self.tracker,
        );
        Room::new(
            RoomId::parse(id).unwrap(),
            doc,
            0,
            0,
            persister,
            self.metrics.clone(),
        )
    }
}

/// A `/sync` connection to `room` whose frames stay in its outbox (an open server's anonymous
/// client).
pub fn join(room: &Room<Outbox>, capacity: usize) -> (PeerId, Arc<Outbox>) {
    join_as(room, capacity, &okrhub::room::Client::anonymous())
}

/// A `/sync` connection of `client` to `room` whose frames stay in its outbox.
pub fn join_as(
    room: &Room<Outbox>,
    capacity: usize,
    client: &okrhub::room::Client,
) -> (PeerId, Arc<Outbox>) {
    let outbox = Arc::new(Outbox::new(capacity, Opcode::Binary));
    (room.join(client, outbox.clone()).unwrap(), outbox)
}

/// Takes every queued frame, as a writer would.
pub fn dequeue<'a>(outboxes: impl IntoIterator<Item = &'a Arc<Outbox>>) {
    let mut sent = Vec::new();
    for outbox in outboxes {
        sent.clear();
        outbox.take(&mut sent, usize::MAX);
    }
}
