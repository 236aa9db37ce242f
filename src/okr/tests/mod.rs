//! Unit tests of the okr module, against hand-computed values.
//!
//! Fixture: a 100-day cycle, 2026-07-01 ..= 2026-10-08, so that a day is 1 % of expected
//! progress and `day(40)` expects 40 %.

mod commands;
mod events;
mod lint;
mod merge;
mod projection;
mod read;
mod review;
mod rules;

use serde_json::{json, Value};
use yrs::updates::encoder::Encode;
use yrs::{Doc, ReadTxn, StateVector, Transact};

use super::*;

pub const DAY: i64 = schema::DAY_MS;

/// Midnight UTC starting day `n` of the fixture cycle (day 0 = 2026-07-01).
pub fn day(n: i64) -> Millis {
    crate::okr::rules::parse_date("2026-07-01").expect("valid date") + n * DAY
}

pub fn cmd(value: Value) -> Command {
    serde_json::from_value(value).expect("a well-formed command")
}

/// Applies a JSON command as `alice` at `now`.
pub fn run(doc: &Doc, value: Value, now: Millis) -> Result<Applied, CommandError> {
    let mut txn = doc.transact_mut();
    apply(&mut txn, &cmd(value), "alice", now)
}

/// Applies a JSON command that must succeed; returns the created id (or "").
pub fn ok(doc: &Doc, value: Value, now: Millis) -> String {
    match run(doc, value.clone(), now) {
        Ok(a) => a.created_id.unwrap_or_default(),
        Err(e) => panic!("{value} refused: {e:?}"),
    }
}

pub fn snapshot(doc: &Doc, now: Millis) -> OkrSet {
    read(&doc.transact(), now)
}

/// The whole doc, encoded: equal bytes ⇔ nothing changed.
pub fn state(doc: &Doc) -> Vec<u8> {
    let txn = doc.transact();
    let mut bytes = txn.encode_state_as_update_v1(&StateVector::default());
    bytes.extend(txn.state_vector().encode_v1());
    bytes
}

/// A doc with the fixture cycle.
pub fn with_cycle() -> Doc {
    let doc = Doc::new();
    ok(
        &doc,
        json!({"type": "cycle.set", "cycle": "2026-Q3", "starts": "2026-07-01", "ends": "2026-10-08"}),
        day(0),
    );
    doc
}

/// An objective with `titles.len()` increase KRs (0 → 100 units).
pub fn objective_with_krs(doc: &Doc, title: &str, krs: &[&str]) -> (String, Vec<String>) {
    let o = ok(
        doc,
        json!({"type": "objective.create", "title": title}),
        day(0),
    );
    let ks = krs
        .iter()
        .map(|t| {
            ok(
                doc,
                json!({"type": "kr.create", "objective": o, "title": t,
                       "metric": {"kind": "increase", "start": 0, "target": 100}}),
                day(0),
            )
        })
        .collect();
    (o, ks)
}

pub fn kr<'a>(set: &'a OkrSet, id: &str) -> &'a KeyResult {
    set.key_results
        .iter()
        .find(|k| k.id == id)
        .expect("kr present")
}

pub fn objective<'a>(set: &'a OkrSet, id: &str) -> &'a Objective {
    set.objectives
        .iter()
        .find(|o| o.id == id)
        .expect("objective present")
}

pub fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}
