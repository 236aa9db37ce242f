//! Tolerant access to the fields of one doc entry, whoever wrote it.
//!
//! Any Yjs client can put anything anywhere: a number where a map is expected, a `Y.Text` where
//! a number is. Every accessor here answers `None` for a missing *or* unusable value and, for an
//! unusable one, records a [`Problem`] naming the field's path and what was found. The reader
//! then decides: a missing required field skips the entry, an unusable optional one falls back
//! to its default. Nothing here panics on data.

use serde::de::DeserializeOwned;
use yrs::{Any, Array, GetString, Map, Out, ReadTxn};

use super::model::{Millis, Problem};

/// The fields of a `Y.Map` or of a plain object, with the problems found reading them.
pub(crate) struct Fields<'t, T: ReadTxn> {
    txn: &'t T,
    path: String,
    /// The entry's fields: a dozen or so, so a list searched in order beats hashing.
    values: Vec<(String, Out)>,
    pub problems: Vec<Problem>,
}

impl<'t, T: ReadTxn> Fields<'t, T> {
    /// The fields of `value` at `path`, or `None` (with a problem) if it is not a map or object.
    pub fn of(txn: &'t T, path: String, value: &Out) -> Result<Self, Problem> {
        let values = match value {
            Out::YMap(map) => map.iter(txn).map(|(k, v)| (k.to_owned(), v)).collect(),
            Out::Any(Any::Map(map)) => map
                .iter()
                .map(|(k, v)| (k.clone(), Out::Any(v.clone())))
                .collect(),
            other => {
                let message = format!("expected a map, found {}", describe(other));
                return Err(Problem { path, message });
            }
        };
        Ok(Fields {
            txn,
            path,
            values,
            problems: Vec::new(),
        })
    }

    pub fn path(&self, key: &str) -> String {
        format!("{}/{}", self.path, key)
    }

    /// The raw value, `None` when absent, `null` or `undefined`.
    pub fn get(&self, key: &str) -> Option<&Out> {
        let (_, value) = self.values.iter().find(|(k, _)| k == key)?;
        match value {
            Out::Any(Any::Null | Any::Undefined) => None,
            v => Some(v),
        }
    }

    fn bad(&mut self, key: &str, expected: &str, found: &Out) {
        let message = format!("expected {expected}, found {}", describe(found));
        self.problems.push(Problem {
            path: self.path(key),
            message,
        });
    }

    /// Records a problem about `key` (for checks the reader makes itself).
    pub fn report(&mut self, key: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            path: self.path(key),
            message: message.into(),
        });
    }

    /// A required field: absent → problem and `None`.
    pub fn required<V>(&mut self, key: &str, value: Option<V>) -> Option<V> {
        if value.is_none() && self.get(key).is_none() {
            self.report(key, "missing");
        }
        value
    }

    pub fn str(&mut self, key: &str) -> Option<String> {
        match self.get(key)? {
            Out::Any(Any::String(s)) => Some(s.to_string()),
            other => {
                let other = other.clone();
                self.bad(key, "a string", &other);
                None
            }
        }
    }

    /// Collaborative text: a `Y.Text` (or, tolerated, a plain string).
    pub fn text(&mut self, key: &str) -> Option<String> {
        match self.get(key)? {
            Out::YText(text) => Some(text.get_string(self.txn)),
            Out::Any(Any::String(s)) => Some(s.to_string()),
            other => {
                let other = other.clone();
                self.bad(key, "a Y.Text", &other);
                None
            }
        }
    }

    /// A finite number.
    pub fn num(&mut self, key: &str) -> Option<f64> {
        match self.get(key)? {
            Out::Any(Any::Number(n)) if n.as_f64().is_some_and(f64::is_finite) => n.as_f64(),
            other => {
                let other = other.clone();
                self.bad(key, "a finite number", &other);
                None
            }
        }
    }

    /// Epoch milliseconds (JS numbers above 2^31 arrive as floats; they are rounded).
    pub fn millis(&mut self, key: &str) -> Option<Millis> {
        let n = self.num(key)?;
        if n.abs() < 1e16 {
            Some(n.round() as Millis)
        } else {
            self.report(key, "timestamp out of range");
            None
        }
    }

    pub fn bool(&mut self, key: &str) -> Option<bool> {
        match self.get(key)? {
            Out::Any(Any::Bool(b)) => Some(*b),
            other => {
                let other = other.clone();
                self.bad(key, "a boolean", &other);
                None
            }
        }
    }

    /// One of the snake_case names of enum `E`.
    pub fn enumeration<E: DeserializeOwned>(&mut self, key: &str) -> Option<E> {
        let s = self.str(key)?;
        match serde_json::from_value(serde_json::Value::String(s.clone())) {
            Ok(e) => Some(e),
            Err(_) => {
                self.report(key, format!("unknown value {s:?}"));
                None
            }
        }
    }

    /// The items of a `Y.Array` or a plain array.
    pub fn list(&mut self, key: &str) -> Option<Vec<Out>> {
        match self.get(key)? {
            Out::YArray(array) => Some(array.iter(self.txn).collect()),
            Out::Any(Any::Array(items)) => Some(items.iter().cloned().map(Out::Any).collect()),
            other => {
                let other = other.clone();
                self.bad(key, "an array", &other);
                None
            }
        }
    }

    /// A list of strings; other items are reported and dropped.
    pub fn strings(&mut self, key: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (i, item) in self.list(key).unwrap_or_default().into_iter().enumerate() {
            match item {
                Out::Any(Any::String(s)) => out.push(s.to_string()),
                other => self.bad(&format!("{key}/{i}"), "a string", &other),
            }
        }
        out
    }

    /// The fields of a nested map or object.
    pub fn nested(&mut self, key: &str) -> Option<Fields<'t, T>> {
        let value = self.get(key)?.clone();
        match Fields::of(self.txn, self.path(key), &value) {
            Ok(f) => Some(f),
            Err(p) => {
                self.problems.push(p);
                None
            }
        }
    }

    /// Reads a nested value with `f`, folding its problems into this entry's.
    pub fn absorb<V>(
        &mut self,
        nested: Fields<'t, T>,
        f: impl FnOnce(&mut Fields<'t, T>) -> V,
    ) -> V {
        let mut nested = nested;
        let v = f(&mut nested);
        self.problems.append(&mut nested.problems);
        v
    }

    pub fn txn(&self) -> &'t T {
        self.txn
    }

    /// Reads each item of the list `key` with `read`: an item that is not a map, or that
    /// `read` rejects, is skipped and reported under `key/INDEX`.
    pub fn nested_list<V>(
        &mut self,
        key: &str,
        read: impl Fn(&mut Fields<'t, T>) -> Option<V>,
    ) -> Vec<V> {
        let items = self.list(key).unwrap_or_default();
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match Fields::of(self.txn, self.path(&format!("{key}/{i}")), item) {
                Ok(nested) => out.extend(self.absorb(nested, &read)),
                Err(p) => self.problems.push(p),
            }
        }
        out
    }
}

/// What a value is, for problem messages.
pub(crate) fn describe(value: &Out) -> &'static str {
    match value {
        Out::Any(Any::Null) => "null",
        Out::Any(Any::Undefined) => "undefined",
        Out::Any(Any::Bool(_)) => "a boolean",
        Out::Any(Any::Number(_)) => "a number",
        Out::Any(Any::String(_)) => "a string",
        Out::Any(Any::Buffer(_)) => "a binary buffer",
        Out::Any(Any::Array(_)) => "a plain array",
        Out::Any(Any::Map(_)) => "a plain object",
        Out::YText(_) => "a Y.Text",
        Out::YArray(_) => "a Y.Array",
        Out::YMap(_) => "a Y.Map",
        Out::YDoc(_) => "a sub-document",
        _ => "an XML or unknown shared type",
    }
}
