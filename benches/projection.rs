//! What a keystroke in a KR title costs the server, against the size of the room.
//!
//! - `okr_keystroke/*`: the keystroke applied to the doc, then the OKR projection —
//!   `incremental` (the room's [`Projection`], from what the transaction touched) against
//!   `full_read_diff` (reading the whole set and diffing it with the previous read: what the
//!   room did before issue 10), and `unprojected` (the same keystroke in a title outside the
//!   OKR roots: the doc's own cost) in realistic rooms (9 objectives, 36 KRs) with 50, 500 and
//!   5,000 check-ins, and a 20 MB room (40,000 check-ins with long comments).
//! - `room_keystroke/*`: the whole room (decode, apply, log, fan-out to 10 `/sync` peers and 2
//!   `/live` screens, projection) for a keystroke in a KR title (`kr_title`) and for the same
//!   keystroke in a title the server does not project (`draft_title`, the baseline).
//!
//!     cargo bench --bench projection

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{dequeue, join, Rooms};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use okrhub::identity::UserId;
use okrhub::okr::{self, Projection, Watch};
use okrhub::ws::{Opcode, Outbox};
use yrs::sync::{Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{
    Any, Doc, Map, MapPrelim, MapRef, ReadTxn, StateVector, Text, TextPrelim, TextRef, Transact,
    Update, WriteTxn,
};

const DAY: i64 = 86_400_000;
const CYCLE_START: i64 = 1_790_812_800_000; // 2026-10-01
const NOW: i64 = CYCLE_START + 40 * DAY;

/// The sizes measured: check-ins, and the length of each check-in's comment.
const SIZES: &[(&str, usize, usize)] = &[
    ("50", 50, 40),
    ("500", 500, 40),
    ("5000", 5_000, 40),
    ("20MB", 40_000, 480),
];

/// Writes a realistic OKR set into `doc`, and the same KR titles under `draft_key_results`
/// (a root the server does not project).
fn seed(doc: &Doc, checkins: usize, comment_len: usize) {
    let mut txn = doc.transact_mut();
    let cycle = txn.get_or_insert_map("cycle");
    cycle.insert(&mut txn, "id", "2026-Q4");
    cycle.insert(&mut txn, "starts", "2026-10-01");
    cycle.insert(&mut txn, "ends", "2026-12-31");
    let objectives = txn.get_or_insert_map("objectives");
    let krs = txn.get_or_insert_map("key_results");
    let drafts = txn.get_or_insert_map("draft_key_results");
    for o in 0..9 {
        let m = objectives.insert(&mut txn, format!("o-{o:02}"), MapPrelim::default());
        m.insert(
            &mut txn,
            "title",
            TextPrelim::new(format!("Q4让新用户7日留存率达到{}%", 30 + o)),
        );
        m.insert(&mut txn, "owner", format!("u{o}"));
        m.insert(&mut txn, "order", o as f64);
        for k in 0..4 {
            let id = format!("kr-{:02}", o * 4 + k);
            let title = format!("客服回应时间压缩至{}分钟内", k + 2);
            for root in [&krs, &drafts] {
                let m = root.insert(&mut txn, id.clone(), MapPrelim::default());
                m.insert(&mut txn, "objective", format!("o-{o:02}"));
                m.insert(&mut txn, "title", TextPrelim::new(title.clone()));
                m.insert(&mut txn, "owner", format!("u{k}"));
                m.insert(&mut txn, "order", k as f64);
                let metric = match k {
                    0 => {
                        yrs::any!({"kind": "increase", "start": 0, "target": 500, "unit": "users"})
                    }
                    1 => yrs::any!({"kind": "decrease", "start": 10, "target": 2, "unit": "min"}),
                    2 => yrs::any!({"kind": "percent"}),
                    _ => {
                        yrs::any!({"kind": "milestone", "milestones": [{"title": "beta"}, {"title": "GA"}]})
                    }
                };
                m.insert(&mut txn, "metric", metric);
                m.insert(&mut txn, "created_at", CYCLE_START as f64);
            }
        }
    }
    let ci = txn.get_or_insert_map("checkins");
    let comment = "进展顺利, @wang 请看一下 ".repeat(comment_len / 30 + 1);
    for i in 0..checkins {
        let c = Any::from(std::collections::HashMap::from([
            (
                "key_result".to_owned(),
                Any::from(format!("kr-{:02}", i % 36)),
            ),
            ("author".to_owned(), Any::from(format!("u{}", i % 4))),
            (
                "at".to_owned(),
                Any::from((CYCLE_START + (i as i64 * 37 * DAY) / checkins as i64) as f64),
            ),
            ("value".to_owned(), Any::from((i % 100) as f64)),
            ("confidence".to_owned(), Any::from((i % 11) as f64)),
            ("comment".to_owned(), Any::from(comment.clone())),
            ("mentions".to_owned(), Any::from(vec![Any::from("wang")])),
        ]));
        ci.insert(&mut txn, format!("ci-{i:06}"), c);
    }
    let cm = txn.get_or_insert_map("comments");
    for i in 0..checkins / 5 {
        let c = Any::from(std::collections::HashMap::from([
            ("target".to_owned(), yrs::any!({"key_result": "kr-00"})),
            ("author".to_owned(), Any::from("li")),
            ("at".to_owned(), Any::from((CYCLE_START + i as i64) as f64)),
            ("text".to_owned(), Any::from(comment.clone())),
            ("mentions".to_owned(), Any::from(Vec::<Any>::new())),
        ]));
        cm.insert(&mut txn, format!("cm-{i:06}"), c);
    }
}

/// A client holding a copy of the room's doc, typing into one title.
struct Typist {
    doc: Doc,
    root: &'static str,
    n: u64,
}

impl Typist {
    fn of(server: &Doc, root: &'static str) -> Self {
        let doc = Doc::new();
        let state = server
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        doc.transact_mut()
            .apply_update(Update::decode_v1(&state).unwrap())
            .unwrap();
        Typist { doc, root, n: 0 }
    }

    /// One keystroke at the end of KR `kr-05`'s title, as a v1 update: a character, then a
    /// backspace, so the title keeps a realistic length however long the benchmark runs.
    fn keystroke(&mut self) -> Vec<u8> {
        self.n += 1;
        let mut txn = self.doc.transact_mut();
        let root = txn.get_or_insert_map(self.root);
        let kr: MapRef = root.get(&txn, "kr-05").unwrap().cast().unwrap();
        let title: TextRef = kr.get(&txn, "title").unwrap().cast().unwrap();
        let len = title.len(&txn);
        if self.n.is_multiple_of(2) {
            title.remove_range(&mut txn, len - 1, 1);
        } else {
            title.insert(&mut txn, len, "a");
        }
        txn.encode_update_v1()
    }
}

fn okr_keystroke(c: &mut Criterion) {
    let mut group = c.benchmark_group("okr_keystroke");
    group.sample_size(20).warm_up_time(Duration::from_secs(1));
    for &(label, checkins, comment_len) in SIZES {
        let doc = Doc::new();
        seed(&doc, checkins, comment_len);
        let touched = Watch::new(&doc, "bench");
        let mut typist = Typist::of(&doc, "key_results");
        let apply = |doc: &Doc, update: Vec<u8>| {
            doc.transact_mut()
                .apply_update(Update::decode_v1(&update).unwrap())
                .unwrap();
        };

        // `unprojected`: the same keystroke in a title the projection does not watch, what the
        // doc alone costs.
        let mut p = Projection::load(&doc.transact(), NOW);
        let mut draft = Typist::of(&doc, "draft_key_results");
        for (name, typist) in [("incremental", &mut typist), ("unprojected", &mut draft)] {
            group.bench_function(BenchmarkId::new(name, label), |b| {
                b.iter_batched(
                    || typist.keystroke(),
                    |update| {
                        apply(&doc, update);
                        p.apply(&doc.transact(), &touched.take())
                    },
                    BatchSize::SmallInput,
                )
            });
        }

        let mut before = okr::read(&doc.transact(), NOW);
        if checkins > 5_000 {
            group.sample_size(10);
        }
        group.bench_function(BenchmarkId::new("full_read_diff", label), |b| {
            b.iter_batched(
                || typist.keystroke(),
                |update| {
                    apply(&doc, update);
                    touched.take();
                    let after = okr::read(&doc.transact(), NOW);
                    let events = okr::diff(&before, &after);
                    before = after;
                    events
                },
                BatchSize::SmallInput,
            )
        });
        group.sample_size(20);
    }
    group.finish();
}

fn room_keystroke(c: &mut Criterion) {
    let rooms = Rooms::new();
    let _guard = rooms.rt.enter();
    let mut group = c.benchmark_group("room_keystroke");
    group.sample_size(30).warm_up_time(Duration::from_secs(1));
    for &(label, checkins, comment_len) in [SIZES[1], SIZES[3]].iter() {
        // `kr_title_editor`: the same keystrokes by an authenticated editor (client id bound to
        // its user, the document's rules checked) rather than an open server's anonymous client.
        for (kind, root) in [
            ("kr_title", "key_results"),
            ("draft_title", "draft_key_results"),
            ("kr_title_editor", "key_results"),
        ] {
            let doc = Doc::new();
            seed(&doc, checkins, comment_len);
            let mut typist = Typist::of(&doc, root);
            let room = rooms.room(&format!("bench.{}{label}.q4", kind.replace('_', "")), doc);
            let client = match kind {
                "kr_title_editor" => okrhub::room::Client {
                    user: Some(UserId::parse("typist").unwrap()),
                    role: okrhub::identity::Role::Editor,
                    expires_at: None,
                },
                _ => okrhub::room::Client::anonymous(),
            };
            let (writer, _) = common::join_as(&room, 4096, &client);
            let mut outboxes: Vec<_> = (0..10).map(|_| join(&room, 4096).1).collect();
            for i in 0..2 {
                let outbox = Arc::new(Outbox::new(4096, Opcode::Text));
                let user = UserId::parse(&format!("screen{i}")).unwrap();
                room.join_live(
                    user,
                    okrhub::okr::audience::Reader::all(),
                    None,
                    None,
                    outbox.clone(),
                )
                .unwrap();
                outboxes.push(outbox);
            }
            group.bench_function(BenchmarkId::new(kind, label), |b| {
                b.iter_batched(
                    || {
                        let update = typist.keystroke();
                        Bytes::from(Message::Sync(SyncMessage::Update(update)).encode_v1())
                    },
                    |frame| {
                        room.receive(writer, frame).unwrap();
                        dequeue(&outboxes);
                    },
                    BatchSize::SmallInput,
                )
            });
        }
    }
    group.finish();
}

criterion_group!(benches, okr_keystroke, room_keystroke);
criterion_main!(benches);
