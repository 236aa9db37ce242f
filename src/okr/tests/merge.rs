//! Concurrent title edits on two docs keep both people's keystrokes.

use yrs::updates::decoder::Decode;
use yrs::{Map, MapRef, Text, TextRef, Update, WriteTxn};

use super::*;

/// Sends everything `from` has that `to` lacks.
fn sync(from: &Doc, to: &Doc) {
    let sv = to.transact().state_vector();
    let update = from.transact().encode_state_as_update_v1(&sv);
    let update = Update::decode_v1(&update).expect("valid update");
    to.transact_mut().apply_update(update).expect("applies");
}

#[test]
fn two_commands_editing_one_title_merge() {
    let a = with_cycle();
    let o = ok(
        &a,
        json!({"type": "objective.create", "title": "Grow revenue"}),
        day(0),
    );
    let b = Doc::new();
    sync(&a, &b);
    // Concurrently: A appends a number, B inserts a word; set_text makes minimal edits.
    ok(
        &a,
        json!({"type": "objective.update", "objective": o, "title": "Grow revenue 40%"}),
        day(1),
    );
    ok(
        &b,
        json!({"type": "objective.update", "objective": o, "title": "Grow EU revenue"}),
        day(1),
    );
    sync(&a, &b);
    sync(&b, &a);
    let ta = objective(&snapshot(&a, day(1)), &o).title.clone();
    let tb = objective(&snapshot(&b, day(1)), &o).title.clone();
    assert_eq!(ta, tb);
    assert_eq!(ta, "Grow EU revenue 40%");
}

#[test]
fn two_clients_typing_keystrokes_merge() {
    let a = with_cycle();
    let o = ok(
        &a,
        json!({"type": "objective.create", "title": "留存率"}),
        day(0),
    );
    let b = Doc::new();
    sync(&a, &b);
    let title = |doc: &Doc, txn: &yrs::TransactionMut| -> TextRef {
        let _ = doc;
        let root = txn.get_map(schema::OBJECTIVES).expect("root");
        let m = root
            .get(txn, &o)
            .and_then(|v| v.cast::<MapRef>().ok())
            .expect("objective");
        m.get(txn, "title")
            .and_then(|v| v.cast::<TextRef>().ok())
            .expect("title")
    };
    {
        let mut txn = a.transact_mut();
        let t = title(&a, &txn);
        t.insert(&mut txn, 0, "Q");
        t.insert(&mut txn, 1, "3");
    }
    {
        let mut txn = b.transact_mut();
        let _ = txn.get_or_insert_map(schema::OBJECTIVES);
        let t = title(&b, &txn);
        let end = t.len(&txn);
        t.insert(&mut txn, end, "突破");
        let end = t.len(&txn);
        t.insert(&mut txn, end, "40%");
    }
    sync(&a, &b);
    sync(&b, &a);
    let ta = objective(&snapshot(&a, day(1)), &o).title.clone();
    assert_eq!(ta, "Q3留存率突破40%");
    assert_eq!(objective(&snapshot(&b, day(1)), &o).title, ta);
}
