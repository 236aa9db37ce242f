//! Writing to the doc: the few primitive edits commands are made of.
//!
//! Only [`commands`](super::commands) writes, and only after validating, so every function here
//! is infallible: it takes values already checked and turns them into yrs edits shaped exactly
//! as `proto/DOCUMENT.md` describes (the reader's other half).

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use yrs::{
    Any, Array, ArrayPrelim, Map, MapRef, OffsetKind, Out, Text, TextPrelim, TransactionMut,
};

use crate::okr::model::Millis;
use crate::okr::schema::field as f;

/// A fresh id for an entry of `root`: `prefix` + 8 random lowercase letters and digits.
pub(crate) fn new_id(root: &MapRef, txn: &TransactionMut, prefix: &str) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    loop {
        let tail: String = (0..8)
            .map(|_| char::from(ALPHABET[fastrand::usize(..ALPHABET.len())]))
            .collect();
        let id = format!("{prefix}{tail}");
        if !root.contains_key(txn, &id) {
            return id;
        }
    }
}

/// Sets collaborative text `key` of `map` to `value` with a minimal edit (common prefix and
/// suffix kept), so a concurrent edit elsewhere in the text survives. A missing or non-text
/// value is replaced by a new `Y.Text`.
pub(crate) fn set_text(txn: &mut TransactionMut, map: &MapRef, key: &str, value: &str) {
    let Some(Out::YText(text)) = map.get(txn, key) else {
        map.insert(txn, key, TextPrelim::new(value));
        return;
    };
    let old = yrs::GetString::get_string(&text, txn);
    if old == value {
        return;
    }
    let prefix: usize = old
        .chars()
        .zip(value.chars())
        .take_while(|(a, b)| a == b)
        .map(|(a, _)| a.len_utf8())
        .sum();
    let suffix: usize = old[prefix..]
        .chars()
        .rev()
        .zip(value[prefix..].chars().rev())
        .take_while(|(a, b)| a == b)
        .map(|(a, _)| a.len_utf8())
        .sum();
    let removed = &old[prefix..old.len() - suffix];
    let inserted = &value[prefix..value.len() - suffix];
    let kind = txn.doc().offset_kind();
    let at = offset(&old[..prefix], kind);
    if !removed.is_empty() {
        text.remove_range(txn, at, offset(removed, kind));
    }
    if !inserted.is_empty() {
        text.insert(txn, at, inserted);
    }
}

/// The length of `s` in the doc's text offsets.
fn offset(s: &str, kind: OffsetKind) -> u32 {
    let n = match kind {
        OffsetKind::Bytes => s.len(),
        OffsetKind::Utf16 => s.encode_utf16().count(),
    };
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Replaces the `Y.Array` at `key` (created if missing or not an array) with `items`.
pub(crate) fn set_array(txn: &mut TransactionMut, map: &MapRef, key: &str, items: Vec<Any>) {
    match map.get(txn, key) {
        Some(Out::YArray(array)) => {
            let len = array.len(txn);
            if len > 0 {
                array.remove_range(txn, 0, len);
            }
            array.insert_range(txn, 0, items);
        }
        _ => {
            map.insert(txn, key, ArrayPrelim::from(items));
        }
    }
}

/// Appends `item` to the `Y.Array` at `key` (created if missing or not an array).
pub(crate) fn push(txn: &mut TransactionMut, map: &MapRef, key: &str, item: Any) {
    match map.get(txn, key) {
        Some(Out::YArray(array)) => {
            array.push_back(txn, item);
        }
        _ => {
            map.insert(txn, key, ArrayPrelim::from([item]));
        }
    }
}

/// Records who changed an entry, and when.
pub(crate) fn stamp(txn: &mut TransactionMut, map: &MapRef, actor: &str, now: Millis) {
    map.insert(txn, f::UPDATED_AT, now);
    map.insert(txn, f::UPDATED_BY, actor);
}

/// A serde value as a plain Yjs value: objects drop their `null` fields, integers stay integers.
pub(crate) fn to_any<T: Serialize>(value: &T) -> Any {
    json_to_any(serde_json::to_value(value).unwrap_or(serde_json::Value::Null))
}

fn json_to_any(value: serde_json::Value) -> Any {
    use serde_json::Value;
    match value {
        Value::Null => Any::Null,
        Value::Bool(b) => Any::Bool(b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Any::from(i),
            None => Any::from(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => Any::from(s),
        Value::Array(items) => Any::Array(items.into_iter().map(json_to_any).collect()),
        Value::Object(fields) => Any::Map(Arc::new(
            fields
                .into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, json_to_any(v)))
                .collect::<HashMap<_, _>>(),
        )),
    }
}
