//! What the clients record: per-delivery latency, per-edit "last client has it" latency, and the
//! measured window.
//!
//! An edit is *tracked* when its editor sends it during the measured window: the editor then
//! registers `(editor, seq)` in its room before sending. Every other client of the room records
//! the latency of its delivery; when the last of them has it, the edit is complete and its
//! largest delivery latency goes into the completion histogram. Deliveries of untracked edits
//! (warm-up) are not timed, but every delivery *received* during the window is counted for the
//! throughput.
//!
//! With several nodes (servers sharing the rooms) every timed delivery is also filed as
//! *same-node* (its editor and its receiver are clients of the same node) or *cross-node*; the
//! node of a client is [`crate::config::node_of`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Instant;

use hdrhistogram::Histogram;

use crate::config::node_of;

/// Largest latency a histogram holds (10 min); larger values are clamped.
pub const MAX_US: u64 = 600_000_000;

/// A histogram of microseconds, 3 significant digits.
pub fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 3).expect("valid histogram bounds")
}

#[derive(Debug, Default, Clone, Copy)]
struct Pending {
    got: u32,
    max_us: u64,
}

struct RoomStats {
    pending: HashMap<(u32, u64), Pending>,
    deliveries: Histogram<u64>,
    complete: Histogram<u64>,
    /// The deliveries again, split by whether sender and receiver share a node.
    same_node: Histogram<u64>,
    cross_node: Histogram<u64>,
    sent: u64,
}

impl RoomStats {
    fn new() -> Self {
        RoomStats {
            pending: HashMap::new(),
            deliveries: new_hist(),
            complete: new_hist(),
            same_node: new_hist(),
            cross_node: new_hist(),
            sent: 0,
        }
    }
}

/// What one measured window produced, summed over rooms.
pub struct Harvest {
    /// Latency of every delivery of a tracked edit (µs).
    pub deliveries: Histogram<u64>,
    /// Per tracked edit: latency until the last other client of the room had it (µs).
    pub complete: Histogram<u64>,
    /// `deliveries` whose editor and receiver are clients of the same node, and of different
    /// nodes (all are same-node with one node).
    pub same_node: Histogram<u64>,
    pub cross_node: Histogram<u64>,
    /// Tracked edits sent.
    pub sent: u64,
    /// Tracked edits some client never got (before the quiescence wait ended).
    pub incomplete: u64,
    /// Deliveries (of any edit) received during the window.
    pub delivered_in_window: u64,
    /// Deferred apply: frames the cheap path could not read, applied at once (since the last
    /// harvest).
    pub apply_fallbacks: u64,
}

/// State shared by every client of a run.
pub struct Shared {
    t0: Instant,
    /// Clients per room minus one: how many deliveries complete an edit.
    receivers: u32,
    clients_per_room: usize,
    /// Servers the clients are spread over ([`crate::config::node_of`]).
    nodes: usize,
    rooms: Vec<Mutex<RoomStats>>,
    recording: AtomicBool,
    window_start_us: AtomicI64,
    window_end_us: AtomicI64,
    delivered_in_window: AtomicU64,
    frames: AtomicU64,
    last_frame_us: AtomicI64,
    apply_fallbacks: AtomicU64,
    /// Clients whose session has ended (they no longer answer a flush).
    ended: AtomicUsize,
    flush: Mutex<Flush>,
}

/// The flush being waited for.
#[derive(Debug, Default)]
struct Flush {
    epoch: u64,
    /// Clients that finished it.
    acks: usize,
    /// Updates they applied.
    applied: u64,
}

impl Shared {
    pub fn new(rooms: usize, clients_per_room: usize) -> Self {
        Self::on_nodes(rooms, clients_per_room, 1)
    }

    /// The clients of each room spread over `nodes` servers.
    pub fn on_nodes(rooms: usize, clients_per_room: usize, nodes: usize) -> Self {
        Shared {
            t0: Instant::now(),
            receivers: clients_per_room.saturating_sub(1) as u32,
            clients_per_room,
            nodes: nodes.max(1),
            rooms: (0..rooms).map(|_| Mutex::new(RoomStats::new())).collect(),
            recording: AtomicBool::new(false),
            window_start_us: AtomicI64::new(i64::MAX),
            window_end_us: AtomicI64::new(i64::MAX),
            delivered_in_window: AtomicU64::new(0),
            frames: AtomicU64::new(0),
            last_frame_us: AtomicI64::new(0),
            apply_fallbacks: AtomicU64::new(0),
            ended: AtomicUsize::new(0),
            flush: Mutex::new(Flush::default()),
        }
    }

    /// Microseconds since the shared start instant: the clock of every edit timestamp.
    pub fn now_us(&self) -> i64 {
        self.t0.elapsed().as_micros() as i64
    }

    /// An editor is about to send edit `seq`: track it if the window is open.
    pub fn on_send(&self, room: usize, editor: u32, seq: u64) {
        if self.receivers == 0 || !self.recording.load(Relaxed) {
            return;
        }
        let mut r = self.rooms[room].lock().unwrap();
        r.sent += 1;
        r.pending.insert((editor, seq), Pending::default());
    }

    /// Client `receiver` of `room` received edit `seq` of `editor` (editor `i` is client `i`
    /// of its room), sent at `ts_us`.
    pub fn on_delivery(&self, room: usize, receiver: usize, editor: u32, seq: u64, ts_us: i64) {
        let now = self.now_us();
        if now >= self.window_start_us.load(Relaxed) && now < self.window_end_us.load(Relaxed) {
            self.delivered_in_window.fetch_add(1, Relaxed);
        }
        let lat = (now - ts_us).max(0) as u64;
        let mut guard = self.rooms[room].lock().unwrap();
        let r = &mut *guard;
        let Some(p) = r.pending.get_mut(&(editor, seq)) else {
            return;
        };
        p.got += 1;
        p.max_us = p.max_us.max(lat);
        r.deliveries.saturating_record(lat);
        let node = |client| node_of(room, client, self.clients_per_room, self.nodes);
        if node(editor as usize) == node(receiver) {
            r.same_node.saturating_record(lat);
        } else {
            r.cross_node.saturating_record(lat);
        }
        if p.got >= self.receivers {
            let max = p.max_us;
            r.pending.remove(&(editor, seq));
            r.complete.saturating_record(max);
        }
    }

    /// A frame arrived (any client).
    pub fn on_frame(&self) {
        self.frames.fetch_add(1, Relaxed);
        self.last_frame_us.store(self.now_us(), Relaxed);
    }

    /// A deferred-apply client applied a frame at once (its cheap path could not read it).
    pub fn on_apply_fallback(&self) {
        self.apply_fallbacks.fetch_add(1, Relaxed);
    }

    /// A client's session ended (stopped, or failed).
    pub fn session_ended(&self) {
        self.ended.fetch_add(1, Relaxed);
    }

    /// How many clients' sessions have ended.
    pub fn sessions_ended(&self) -> usize {
        self.ended.load(Relaxed)
    }

    /// Starts counting the answers to a new flush; returns its epoch.
    pub fn start_flush(&self) -> u64 {
        let mut f = self.flush.lock().unwrap();
        *f = Flush {
            epoch: f.epoch + 1,
            ..Flush::default()
        };
        f.epoch
    }

    /// A client finished flush `epoch`, having applied `applied` updates. Answers to an older
    /// flush (one that timed out) are ignored.
    pub fn flush_done(&self, epoch: u64, applied: usize) {
        let mut f = self.flush.lock().unwrap();
        if f.epoch == epoch {
            f.acks += 1;
            f.applied += applied as u64;
        }
    }

    /// Clients that finished the current flush, and the updates they applied.
    pub fn flush_status(&self) -> (usize, u64) {
        let f = self.flush.lock().unwrap();
        (f.acks, f.applied)
    }

    /// Microseconds since the last frame any client received.
    pub fn quiet_for_us(&self) -> i64 {
        self.now_us() - self.last_frame_us.load(Relaxed)
    }

    /// Opens the measured window.
    pub fn start_window(&self) {
        self.delivered_in_window.store(0, Relaxed);
        self.window_end_us.store(i64::MAX, Relaxed);
        self.window_start_us.store(self.now_us(), Relaxed);
        self.recording.store(true, Relaxed);
    }

    /// Closes the measured window: edits sent from now on are not tracked.
    pub fn end_window(&self) {
        self.recording.store(false, Relaxed);
        self.window_end_us.store(self.now_us(), Relaxed);
    }

    /// Whether every tracked edit has reached every client.
    pub fn all_complete(&self) -> bool {
        self.rooms
            .iter()
            .all(|r| r.lock().unwrap().pending.is_empty())
    }

    /// Takes what the window recorded and resets for the next one.
    pub fn harvest(&self) -> Harvest {
        let mut h = Harvest {
            deliveries: new_hist(),
            complete: new_hist(),
            same_node: new_hist(),
            cross_node: new_hist(),
            sent: 0,
            incomplete: 0,
            delivered_in_window: self.delivered_in_window.swap(0, Relaxed),
            apply_fallbacks: self.apply_fallbacks.swap(0, Relaxed),
        };
        for room in &self.rooms {
            let mut r = room.lock().unwrap();
            h.deliveries.add(&r.deliveries).expect("same bounds");
            h.complete.add(&r.complete).expect("same bounds");
            h.same_node.add(&r.same_node).expect("same bounds");
            h.cross_node.add(&r.cross_node).expect("same bounds");
            h.sent += r.sent;
            h.incomplete += r.pending.len() as u64;
            *r = RoomStats::new();
        }
        self.window_start_us.store(i64::MAX, Relaxed);
        self.window_end_us.store(i64::MAX, Relaxed);
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edit_completes_when_every_other_client_has_it() {
        let s = Shared::new(1, 3);
        s.on_send(0, 0, 1); // outside the window: untracked
        s.start_window();
        s.on_send(0, 0, 2);
        let ts = s.now_us() - 1000;
        s.on_delivery(0, 1, 0, 1, ts); // untracked: counted for throughput only
        s.on_delivery(0, 1, 0, 2, ts);
        assert!(!s.all_complete());
        s.on_delivery(0, 2, 0, 2, ts - 4000);
        assert!(s.all_complete());
        s.end_window();
        let h = s.harvest();
        assert_eq!(h.sent, 1);
        assert_eq!(h.incomplete, 0);
        assert_eq!(h.deliveries.len(), 2);
        assert_eq!(h.complete.len(), 1);
        assert!(h.complete.max() >= 5000);
        assert_eq!(h.delivered_in_window, 3);
        assert_eq!((h.same_node.len(), h.cross_node.len()), (2, 0), "one node");
    }

    #[test]
    fn deliveries_are_filed_by_the_nodes_of_editor_and_receiver() {
        // 2 rooms × 4 clients over 2 nodes: room 0 is nodes [0, 1, 0, 1], room 1 the same.
        let s = Shared::on_nodes(2, 4, 2);
        s.start_window();
        for room in 0..2 {
            s.on_send(room, 0, 1);
            s.on_send(room, 1, 1);
        }
        let ts = s.now_us();
        for room in 0..2 {
            // Editor 0 (node 0): client 2 shares its node, 1 and 3 do not.
            for receiver in [1, 2, 3] {
                s.on_delivery(room, receiver, 0, 1, ts - 1000);
            }
            // Editor 1 (node 1): client 3 shares its node.
            for receiver in [0, 2, 3] {
                s.on_delivery(room, receiver, 1, 1, ts - 5000);
            }
        }
        assert!(s.all_complete());
        let h = s.harvest();
        assert_eq!(h.deliveries.len(), 12);
        assert_eq!((h.same_node.len(), h.cross_node.len()), (4, 8));
        // Same-node: two of editor 0 (~1 ms), two of editor 1 (~5 ms).
        assert!(h.same_node.min() >= 1000 && h.same_node.max() >= 5000);
    }
}
