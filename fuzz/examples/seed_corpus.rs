//! Writes the seed corpus of every target into `fuzz/corpus/<target>/`: real frames and
//! updates from yrs clients editing the seed OKR doc, the hostile counts of issue 12, and the
//! `/live` commands of proto/PROTOCOL.md against the seed's ids.
//!
//!     cargo run --example seed_corpus      (in fuzz/)
//!
//! libFuzzer then minimizes and extends them (`-merge=1`, see README.md).

use std::path::Path;

use yrs::encoding::write::Write;
use yrs::sync::{Awareness, Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Any, Array, Doc, Map, MapRef, ReadTxn, Text, TextRef, Transact, Update, WriteTxn};

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

/// A client that has the seed and makes one edit, returning the update it made.
fn edit(id: u64, f: impl FnOnce(&mut yrs::TransactionMut)) -> Vec<u8> {
    let doc = Doc::with_client_id(id);
    doc.transact_mut()
        .apply_update(Update::decode_v1(okrhub_fuzz::seed_update()).unwrap())
        .unwrap();
    let mut txn = doc.transact_mut();
    f(&mut txn);
    txn.encode_update_v1()
}

fn entry(txn: &yrs::TransactionMut, root: &str, id: &str) -> MapRef {
    txn.get_map(root)
        .unwrap()
        .get(txn, id)
        .unwrap()
        .cast::<MapRef>()
        .unwrap()
}

fn title(txn: &yrs::TransactionMut, root: &str, id: &str) -> TextRef {
    entry(txn, root, id)
        .get(txn, "title")
        .unwrap()
        .cast::<TextRef>()
        .unwrap()
}

fn main() {
    let updates: Vec<(&str, Vec<u8>)> = vec![
        (
            "title-keystroke",
            edit(50, |txn| {
                title(txn, "objectives", "o-0").insert(txn, 4, "s")
            }),
        ),
        (
            "title-delete",
            edit(51, |txn| {
                title(txn, "key_results", "kr-1").remove_range(txn, 0, 4)
            }),
        ),
        (
            "kr-owner",
            edit(52, |txn| {
                entry(txn, "key_results", "kr-2").insert(txn, "owner", "li");
            }),
        ),
        (
            "new-checkin",
            edit(53, |txn| {
                let c = Any::from(std::collections::HashMap::from([
                    ("key_result".to_owned(), Any::from("kr-1")),
                    ("author".to_owned(), Any::from("ana")),
                    ("at".to_owned(), Any::from(okrhub_fuzz::NOW as f64)),
                    ("value".to_owned(), Any::from(40.0)),
                    ("confidence".to_owned(), Any::from(5.0)),
                ]));
                txn.get_or_insert_map("checkins").insert(txn, "ci-2", c);
            }),
        ),
        (
            "remove-objective",
            edit(54, |txn| {
                txn.get_or_insert_map("objectives").remove(txn, "o-1");
            }),
        ),
        (
            "cycle",
            edit(55, |txn| {
                txn.get_or_insert_map("cycle")
                    .insert(txn, "ends", "2027-01-31");
            }),
        ),
        (
            "other-root",
            edit(56, |txn| {
                txn.get_or_insert_array("list")
                    .push_back(txn, Any::from(vec![Any::from(1), Any::Null]));
                txn.get_or_insert_text("notes").insert(txn, 0, "hé 🚀");
            }),
        ),
        ("seed", okrhub_fuzz::seed_update().to_vec()),
        ("empty", vec![0, 0]),
    ];
    for (name, u) in &updates {
        write("okr_read", name, u);
        for (kind, tag) in [("update", 2u8), ("step2", 1)] {
            let mut frame = vec![1u8, 0, tag];
            frame.write_buf(u);
            write("sync_frame", &format!("{kind}-{name}"), &frame);
            frame[0] = 0;
            write("sync_frame", &format!("{kind}-{name}-anonymous"), &frame);
        }
    }
    let step1 = Message::Sync(SyncMessage::SyncStep1(Default::default())).encode_v1();
    write("sync_frame", "step1-empty", &[&[1u8][..], &step1].concat());
    let client = Doc::with_client_id(60);
    let mut awareness = Awareness::new(client.clone());
    awareness.set_local_state_raw(r##"{"user":{"name":"Ana","color":"#f00"},"cursor":null}"##);
    let aw = awareness.update().unwrap();
    let aw_body = aw.encode_v1();
    write("awareness", "state", &[&[1u8][..], &aw_body].concat());
    awareness.clean_local_state();
    let removal = awareness.update().unwrap().encode_v1();
    write("awareness", "removal", &[&[1u8][..], &removal].concat());
    write(
        "awareness",
        "hostile-count",
        &[1, 0x80, 0x80, 0x80, 0x80, 1],
    );
    let start = [
        step1.clone(),
        Message::Awareness(aw).encode_v1(),
        Message::AwarenessQuery.encode_v1(),
    ]
    .concat();
    write("sync_frame", "start", &[&[1u8][..], &start].concat());
    // the issue's 7-byte frame and an update claiming 2^28 clients
    write(
        "sync_frame",
        "hostile-awareness",
        &[1, 1, 5, 0x80, 0x80, 0x80, 0x80, 1],
    );
    write(
        "sync_frame",
        "hostile-clients",
        &[1, 0, 2, 5, 0x80, 0x80, 0x80, 0x80, 1],
    );

    let commands = [
        r#"{"id": "c7", "type": "checkin.create", "key_result": "kr-0", "value": 4, "confidence": 6, "comment": "ok @bo", "mentions": ["bo"]}"#,
        r#"{"id": "1", "type": "cycle.set", "starts": "2026-07-01", "ends": "2026-09-30"}"#,
        r#"{"id": "2", "type": "objective.create", "title": "Keep 40% of new users", "aligned_to": [{"room": "acme.all.2026-Q3", "objective": "o-ceo"}]}"#,
        r#"{"id": "3", "type": "kr.create", "objective": "o-0", "title": "Reply within 2 min", "metric": {"kind": "decrease", "start": 10, "target": 2, "unit": "min"}}"#,
        r#"{"id": "4", "type": "kr.update", "key_result": "kr-0", "metric": {"kind": "decrease", "start": 10, "target": 1}, "why": "legal is done"}"#,
        r#"{"id": "5", "type": "objective.align", "objective": "o-0", "add": [{"key_result": "kr-ceo-1", "room": "acme.all.2026-Q3"}]}"#,
        r#"{"id": "6", "type": "comment.create", "target": {"objective": "o-0"}, "text": "@bob?", "mentions": ["bob"], "reply_to": "cm-1"}"#,
        r#"{"id": "8", "type": "objective.update", "objective": "o-1", "title": "New", "visibility": "public"}"#,
        r#"{"id": "9", "type": "objective.archive", "objective": "o-1"}"#,
        r#"{"id": "10", "type": "objective.reorder", "objective": "o-1", "before": "o-0"}"#,
        r#"{"id": "11", "type": "kr.archive", "key_result": "kr-2"}"#,
        r#"{"id": "12", "type": "kr.reorder", "key_result": "kr-2", "after": "kr-0"}"#,
        r#"{"id": "", "type": "nope"}"#,
        r#"not json"#,
    ];
    for (i, c) in commands.iter().enumerate() {
        write("live_command", &format!("command-{i:02}"), c.as_bytes());
    }
}
