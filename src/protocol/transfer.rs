//! The import and export formats of a room and of an org's cycle (`proto/PROTOCOL.md`,
//! "Import and export"): the JSON documents, the one-file CSV, and the plan an import becomes —
//! the commands that create what a file holds, in an order where each refers only to what
//! exists. Pure: no I/O, no clock (the caller passes the time), no room.
//!
//! The JSON export of a room is its typed OKR set exactly as `GET /api/rooms/{room}` gives it
//! to the caller (derived fields included), with `format`, `room` and `seq` beside it: so
//! whatever the set grows (scores, once a cycle can be closed) is exported without a change
//! here. An import reads only the *stored* fields of a file and ignores the rest.

use std::collections::{HashMap, HashSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::okr::commands::{
    CheckinCreate, CommentCreate, CycleSet, KrArchive, KrCreate, ObjectiveAlign, ObjectiveArchive,
    ObjectiveCreate,
};
use crate::okr::{
    AlignRef, Command, Commitment, Cycle, Metric, Milestone, Millis, ObjectiveKind, OkrSet, Target,
    Visibility,
};

/// The `format` of every export document.
pub const FORMAT: &str = "okrhub.export/1";

/// The most objectives, KRs, check-ins and comments one import may hold together.
pub const MAX_IMPORT_ROWS: usize = 2000;

/// `GET /api/rooms/{room}/export.json`: what the caller may read of the room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RoomExport {
    /// [`FORMAT`].
    pub format: String,
    pub room: String,
    /// The room's sequence number the export is at.
    pub seq: u64,
    /// The typed set, as `GET /api/rooms/{room}` gives it (`as_of` is the export's time).
    #[serde(flatten)]
    pub okr: OkrSet,
}

/// `GET /api/orgs/{org}/cycles/{cycle}/export.json`: every room of the org and cycle the
/// caller may read, in `GET /api/rooms` order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CycleExport {
    pub format: String,
    pub org: String,
    pub cycle: String,
    pub exported_at: Millis,
    pub rooms: Vec<RoomExport>,
}

/// `POST /api/rooms/{room}/import` accepted: what it created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ImportAccepted {
    pub room: String,
    /// The room's sequence number after the import (durable).
    pub seq: u64,
    pub objectives: usize,
    pub key_results: usize,
    pub checkins: usize,
    pub comments: usize,
    /// Whether the file's cycle was set (only into a room without one).
    pub cycle_set: bool,
    /// The file's objective and KR ids → the ids they were created with.
    pub ids: std::collections::BTreeMap<String, String>,
}

/// One refused row of an import.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RowError {
    /// CSV: the line of the file (1 is the header). `None` for a JSON file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// JSON: where, e.g. `key_results[2]`; CSV: `line 5`.
    pub at: String,
    /// `objective`, `key_result`, `checkin`, `comment`, `cycle` (or `file`).
    pub record: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub message: String,
}

/// `POST /api/rooms/{room}/import` refused for its rows (422): the error every answer shares,
/// and every refused row. Nothing was applied.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ImportRefused {
    pub error: super::live::ErrorBody,
    pub rows: Vec<RowError>,
}

/// Where a record came from: a CSV line or a JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locus {
    pub line: Option<u64>,
    pub at: String,
    pub record: &'static str,
}

impl Locus {
    pub fn error(&self, field: Option<&str>, message: impl Into<String>) -> RowError {
        RowError {
            line: self.line,
            at: self.at.clone(),
            record: self.record.into(),
            field: field.map(str::to_owned),
            message: message.into(),
        }
    }
}

/// The stored fields of an objective, as an import reads them.
#[derive(Debug, Clone, Deserialize)]
pub struct InObjective {
    pub id: String,
    pub title: String,
    pub description: Option<String>,
    pub owner: Option<String>,
    pub team: Option<String>,
    pub kind: Option<ObjectiveKind>,
    pub visibility: Option<Visibility>,
    pub commitment: Option<Commitment>,
    #[serde(default)]
    pub archived: bool,
    #[serde(default)]
    pub aligned_to: Vec<AlignRef>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InKeyResult {
    pub id: String,
    pub objective: String,
    pub title: String,
    pub owner: Option<String>,
    pub metric: Metric,
    pub weight: Option<f64>,
    pub cadence_days: Option<u32>,
    #[serde(default)]
    pub archived: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InCheckin {
    pub key_result: String,
    pub value: Option<f64>,
    pub confidence: i64,
    pub comment: Option<String>,
    #[serde(default)]
    pub mentions: Vec<String>,
    pub milestones: Option<Vec<bool>>,
    /// Only orders the check-ins: an imported one is at the import's time.
    pub at: Option<Millis>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InComment {
    pub id: Option<String>,
    pub target: Target,
    pub text: String,
    #[serde(default)]
    pub mentions: Vec<String>,
    pub reply_to: Option<String>,
    pub at: Option<Millis>,
}

/// What an import file holds, each record with where it came from.
#[derive(Debug, Clone, Default)]
pub struct ImportFile {
    pub cycle: Option<(Locus, Cycle)>,
    pub objectives: Vec<(Locus, InObjective)>,
    pub key_results: Vec<(Locus, InKeyResult)>,
    pub checkins: Vec<(Locus, InCheckin)>,
    pub comments: Vec<(Locus, InComment)>,
}

impl ImportFile {
    pub fn rows(&self) -> usize {
        self.objectives.len() + self.key_results.len() + self.checkins.len() + self.comments.len()
    }
}

/// Reads a JSON import: the export format (of a room), or any object with some of its arrays.
/// Each record is read on its own, so every bad one is reported.
pub fn from_json(body: &[u8]) -> Result<ImportFile, Vec<RowError>> {
    let file_error = |message: String| {
        vec![RowError {
            line: None,
            at: "$".into(),
            record: "file".into(),
            field: None,
            message,
        }]
    };
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| file_error(format!("not JSON: {e}")))?;
    let Some(obj) = value.as_object() else {
        return Err(file_error("expected a JSON object".into()));
    };
    if obj.contains_key("rooms") {
        return Err(file_error(
            "a cycle's export holds several rooms: import each of its `rooms` into its room".into(),
        ));
    }
    let mut errors = Vec::new();
    let mut file = ImportFile::default();
    fn list<T: serde::de::DeserializeOwned>(
        obj: &serde_json::Map<String, serde_json::Value>,
        key: &str,
        record: &'static str,
        errors: &mut Vec<RowError>,
    ) -> Vec<(Locus, T)> {
        let mut out = Vec::new();
        let items = match obj.get(key) {
            None | Some(serde_json::Value::Null) => return out,
            Some(serde_json::Value::Array(items)) => items,
            Some(_) => {
                let locus = Locus {
                    line: None,
                    at: key.into(),
                    record,
                };
                errors.push(locus.error(None, "expected an array"));
                return out;
            }
        };
        for (i, item) in items.iter().enumerate() {
            let locus = Locus {
                line: None,
                at: format!("{key}[{i}]"),
                record,
            };
            match T::deserialize(item) {
                Ok(t) => out.push((locus, t)),
                Err(e) => errors.push(locus.error(None, e.to_string())),
            }
        }
        out
    }
    if let Some(cycle) = obj.get("cycle").filter(|c| !c.is_null()) {
        let locus = Locus {
            line: None,
            at: "cycle".into(),
            record: "cycle",
        };
        match Cycle::deserialize(cycle) {
            Ok(c) => file.cycle = Some((locus, c)),
            Err(e) => errors.push(locus.error(None, e.to_string())),
        }
    }
    file.objectives = list(obj, "objectives", "objective", &mut errors);
    file.key_results = list(obj, "key_results", "key_result", &mut errors);
    file.checkins = list(obj, "checkins", "checkin", &mut errors);
    file.comments = list(obj, "comments", "comment", &mut errors);
    if errors.is_empty() {
        Ok(file)
    } else {
        Err(errors)
    }
}

/// The CSV columns, in order (`proto/PROTOCOL.md` says what each holds per record).
pub const CSV_COLUMNS: &[&str] = &[
    "record",
    "room",
    "id",
    "objective",
    "key_result",
    "reply_to",
    "title",
    "description",
    "owner",
    "team",
    "kind",
    "visibility",
    "commitment",
    "archived",
    "aligned_to",
    "metric",
    "start",
    "target",
    "threshold",
    "unit",
    "milestones",
    "weight",
    "cadence_days",
    "value",
    "confidence",
    "progress",
    "status",
    "text",
    "mentions",
    "author",
    "at",
    "score",
    "score_note",
];

/// The UTF-8 byte order mark an export starts with (Excel reads the file as UTF-8 only then).
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

fn col(name: &str) -> usize {
    CSV_COLUMNS
        .iter()
        .position(|c| *c == name)
        .unwrap_or_else(|| panic!("no CSV column {name}"))
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` of epoch milliseconds.
pub fn rfc3339(ms: Millis) -> String {
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // H. Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (h, min, s, milli) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}.{milli:03}Z")
}

fn num(x: f64) -> String {
    // Integers without a fraction; others as Rust prints them (shortest round trip).
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        x.to_string()
    }
}

fn enum_str<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

fn json_cell<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// The rows of one room's export, in the set's order: each objective, then its KRs; then the
/// check-ins, then the comments (both by time).
fn room_rows(export: &RoomExport) -> Vec<Vec<String>> {
    let set = &export.okr;
    let blank = || vec![String::new(); CSV_COLUMNS.len()];
    let mut rows = Vec::new();
    let kr_objective: HashMap<&str, &str> = set
        .key_results
        .iter()
        .map(|k| (k.id.as_str(), k.objective.as_str()))
        .collect();
    for o in &set.objectives {
        let mut r = blank();
        r[col("record")] = "objective".into();
        r[col("id")] = o.id.clone();
        r[col("title")] = o.title.clone();
        r[col("description")] = o.description.clone();
        r[col("owner")] = o.owner.clone().unwrap_or_default();
        r[col("team")] = o.team.clone().unwrap_or_default();
        r[col("kind")] = enum_str(&o.kind);
        r[col("visibility")] = enum_str(&o.visibility);
        r[col("commitment")] = enum_str(&o.commitment);
        r[col("archived")] = o.archived.to_string();
        if !o.aligned_to.is_empty() {
            r[col("aligned_to")] = json_cell(&o.aligned_to);
        }
        r[col("progress")] = num(o.progress);
        r[col("status")] = o.status.as_ref().map(enum_str).unwrap_or_default();
        r[col("author")] = o.created_by.clone().unwrap_or_default();
        r[col("at")] = rfc3339(o.created_at);
        rows.push(r);
        for k in set.key_results.iter().filter(|k| k.objective == o.id) {
            let mut r = blank();
            r[col("record")] = "key_result".into();
            r[col("id")] = k.id.clone();
            r[col("objective")] = k.objective.clone();
            r[col("title")] = k.title.clone();
            r[col("owner")] = k.owner.clone().unwrap_or_default();
            r[col("archived")] = k.archived.to_string();
            metric_cells(&k.metric, &mut r);
            r[col("weight")] = num(k.weight);
            r[col("cadence_days")] = k.cadence_days.to_string();
            r[col("value")] = k.current.map(num).unwrap_or_default();
            r[col("confidence")] = k.confidence.map(|c| c.to_string()).unwrap_or_default();
            r[col("progress")] = num(k.progress);
            r[col("status")] = enum_str(&k.status);
            r[col("author")] = k.created_by.clone().unwrap_or_default();
            r[col("at")] = rfc3339(k.created_at);
            rows.push(r);
        }
    }
    for c in &set.checkins {
        let mut r = blank();
        r[col("record")] = "checkin".into();
        r[col("id")] = c.id.clone();
        r[col("objective")] = (kr_objective.get(c.key_result.as_str()))
            .map(|o| o.to_string())
            .unwrap_or_default();
        r[col("key_result")] = c.key_result.clone();
        r[col("value")] = num(c.value);
        r[col("confidence")] = c.confidence.map(|c| c.to_string()).unwrap_or_default();
        if let Some(done) = &c.milestones {
            r[col("milestones")] = json_cell(done);
        }
        r[col("text")] = c.comment.clone();
        r[col("mentions")] = c.mentions.join(" ");
        r[col("author")] = c.author.clone();
        r[col("at")] = rfc3339(c.at);
        rows.push(r);
    }
    for c in &set.comments {
        let mut r = blank();
        r[col("record")] = "comment".into();
        r[col("id")] = c.id.clone();
        match &c.target {
            Target::Objective(o) => r[col("objective")] = o.clone(),
            Target::KeyResult(k) => r[col("key_result")] = k.clone(),
        }
        r[col("reply_to")] = c.reply_to.clone().unwrap_or_default();
        r[col("text")] = c.text.clone();
        r[col("mentions")] = c.mentions.join(" ");
        r[col("author")] = c.author.clone();
        r[col("at")] = rfc3339(c.at);
        rows.push(r);
    }
    for r in &mut rows {
        r[col("room")] = export.room.clone();
        for name in TEXT_COLUMNS {
            let cell = &mut r[col(name)];
            *cell = escape_formula(std::mem::take(cell));
        }
    }
    rows
}

/// The columns whose cells are people's text (titles, comments, names), which a spreadsheet
/// must show and never evaluate.
const TEXT_COLUMNS: &[&str] = &[
    "title",
    "description",
    "owner",
    "team",
    "unit",
    "text",
    "mentions",
    "author",
];

/// What makes a spreadsheet read a cell as a formula (OWASP's "CSV injection" list), and the
/// quote that escapes it.
fn formula_start(c: char) -> bool {
    matches!(c, '=' | '+' | '-' | '@' | '\t' | '\r' | '\'')
}

/// A text cell a spreadsheet would evaluate (`=HYPERLINK(…)`, `+1`, `@SUM(…)`) gets a leading
/// `'`, which Excel and LibreOffice show as text; so does one that starts with `'`, so that
/// [`unescape_formula`] gives every text back exactly.
pub fn escape_formula(cell: String) -> String {
    if cell.starts_with(formula_start) {
        format!("'{cell}")
    } else {
        cell
    }
}

/// The inverse of [`escape_formula`]: one leading `'` before a formula character is dropped.
pub fn unescape_formula(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(formula_start) => rest,
        _ => cell,
    }
}

fn metric_cells(metric: &Metric, r: &mut [String]) {
    let unit_of = |u: &Option<String>| u.clone().unwrap_or_default();
    let opt = |x: &Option<f64>| x.map(num).unwrap_or_default();
    r[col("metric")] = match metric {
        Metric::Percent => "percent",
        Metric::Increase { .. } => "increase",
        Metric::Decrease { .. } => "decrease",
        Metric::StayAbove { .. } => "stay_above",
        Metric::StayBelow { .. } => "stay_below",
        Metric::Milestone { .. } => "milestone",
    }
    .into();
    match metric {
        Metric::Percent => {}
        Metric::Increase {
            start,
            target,
            unit,
        }
        | Metric::Decrease {
            start,
            target,
            unit,
        } => {
            r[col("start")] = num(*start);
            r[col("target")] = opt(target);
            r[col("unit")] = unit_of(unit);
        }
        Metric::StayAbove { threshold, unit } | Metric::StayBelow { threshold, unit } => {
            r[col("threshold")] = opt(threshold);
            r[col("unit")] = unit_of(unit);
        }
        Metric::Milestone { milestones } => r[col("milestones")] = json_cell(milestones),
    }
}

/// The CSV of one or more rooms' exports: a header of [`CSV_COLUMNS`], then every room's rows;
/// RFC 4180 (fields quoted when they hold a comma, a quote or a line break; CRLF line ends).
/// With `bom`, the file starts with the UTF-8 byte order mark.
pub fn to_csv<'a>(exports: impl IntoIterator<Item = &'a RoomExport>, bom: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if bom {
        out.extend_from_slice(BOM);
    }
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(out);
    // Writing to a Vec cannot fail.
    let _ = w.write_record(CSV_COLUMNS);
    for export in exports {
        for row in room_rows(export) {
            let _ = w.write_record(&row);
        }
    }
    w.into_inner().unwrap_or_default()
}

/// Reads a CSV import: a header naming (some of) [`CSV_COLUMNS`] in any order — `record` is
/// required, unknown columns and the export-only ones (`room`, `progress`, `status`,
/// `author`, `at`, `score`, `score_note`) are ignored — then one record per line. A leading
/// byte order mark is skipped.
pub fn from_csv(body: &[u8]) -> Result<ImportFile, Vec<RowError>> {
    let body = body.strip_prefix(BOM).unwrap_or(body);
    let file_error = |line: Option<u64>, message: String| RowError {
        line,
        at: line.map_or("file".into(), |l| format!("line {l}")),
        record: "file".into(),
        field: None,
        message,
    };
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(body);
    let header: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|s| s.trim().to_ascii_lowercase()).collect(),
        Err(e) => return Err(vec![file_error(Some(1), e.to_string())]),
    };
    if !header.iter().any(|h| h == "record") {
        return Err(vec![file_error(
            Some(1),
            "the header has no `record` column".into(),
        )]);
    }
    let mut file = ImportFile::default();
    let mut errors = Vec::new();
    for result in reader.records() {
        let record = match result {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| line_at(body, p.byte()));
                errors.push(file_error(line, e.to_string()));
                continue;
            }
        };
        // The file's line the record starts on (counted here: a quoted field may span lines).
        let line = record.position().map_or(0, |p| line_at(body, p.byte()));
        let cell = |name: &str| -> Option<String> {
            let i = header.iter().position(|h| h == name)?;
            let v = unescape_formula(record.get(i)?.trim());
            (!v.is_empty()).then(|| v.to_owned())
        };
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let kind = cell("record").unwrap_or_default();
        let record: &'static str = match kind.as_str() {
            "objective" => "objective",
            "key_result" => "key_result",
            "checkin" => "checkin",
            "comment" => "comment",
            other => {
                errors.push(file_error(
                    Some(line),
                    format!("unknown record {other:?}: objective, key_result, checkin or comment"),
                ));
                continue;
            }
        };
        let locus = Locus {
            line: Some(line),
            at: format!("line {line}"),
            record,
        };
        match csv_record(&locus, &cell) {
            Ok(Parsed::Objective(o)) => file.objectives.push((locus, o)),
            Ok(Parsed::KeyResult(k)) => file.key_results.push((locus, k)),
            Ok(Parsed::Checkin(c)) => file.checkins.push((locus, c)),
            Ok(Parsed::Comment(c)) => file.comments.push((locus, c)),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(file)
    } else {
        Err(errors)
    }
}

/// The 1-based line a record starts on, from the byte position the csv crate gives it (where
/// the line end before it, and any blank lines, begin).
fn line_at(body: &[u8], at: u64) -> u64 {
    let mut at = usize::try_from(at).unwrap_or(usize::MAX).min(body.len());
    while at < body.len() && matches!(body[at], b'\r' | b'\n') {
        at += 1;
    }
    1 + body[..at].iter().filter(|b| **b == b'\n').count() as u64
}

enum Parsed {
    Objective(InObjective),
    KeyResult(InKeyResult),
    Checkin(InCheckin),
    Comment(InComment),
}

/// One CSV record as the import reads it.
fn csv_record(locus: &Locus, cell: &dyn Fn(&str) -> Option<String>) -> Result<Parsed, RowError> {
    let need = |name: &str| {
        cell(name)
            .ok_or_else(|| locus.error(Some(name), format!("a {} needs {name}", locus.record)))
    };
    let number = |name: &str| -> Result<Option<f64>, RowError> {
        cell(name)
            .map(|v| {
                v.parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| locus.error(Some(name), format!("{v:?} is not a number")))
            })
            .transpose()
    };
    let word = |name: &str| -> Result<Option<serde_json::Value>, RowError> {
        Ok(cell(name).map(serde_json::Value::String))
    };
    fn parse_enum<T: serde::de::DeserializeOwned>(
        locus: &Locus,
        name: &str,
        v: Option<serde_json::Value>,
    ) -> Result<Option<T>, RowError> {
        v.map(|v| {
            T::deserialize(&v).map_err(|_| locus.error(Some(name), format!("unknown {name} {v}")))
        })
        .transpose()
    }
    fn parse_json<T: serde::de::DeserializeOwned>(
        locus: &Locus,
        name: &str,
        v: Option<String>,
    ) -> Result<Option<T>, RowError> {
        v.map(|v| {
            serde_json::from_str(&v).map_err(|e| {
                locus.error(Some(name), format!("{name} is not the JSON expected: {e}"))
            })
        })
        .transpose()
    }
    let archived = match cell("archived").as_deref() {
        None | Some("false") | Some("FALSE") | Some("0") => false,
        Some("true") | Some("TRUE") | Some("1") => true,
        Some(other) => {
            return Err(locus.error(Some("archived"), format!("{other:?}: true or false")));
        }
    };
    let mentions = || -> Vec<String> {
        cell("mentions")
            .map(|m| m.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default()
    };
    Ok(match locus.record {
        "objective" => Parsed::Objective(InObjective {
            id: need("id")?,
            title: need("title")?,
            description: cell("description"),
            owner: cell("owner"),
            team: cell("team"),
            kind: parse_enum(locus, "kind", word("kind")?)?,
            visibility: parse_enum(locus, "visibility", word("visibility")?)?,
            commitment: parse_enum(locus, "commitment", word("commitment")?)?,
            archived,
            aligned_to: parse_json(locus, "aligned_to", cell("aligned_to"))?.unwrap_or_default(),
        }),
        "key_result" => {
            let kind = need("metric")?;
            let unit = cell("unit");
            let metric = match kind.as_str() {
                "percent" => Metric::Percent,
                "increase" | "decrease" => {
                    let start = number("start")?.unwrap_or(0.0);
                    let target = number("target")?;
                    if kind == "increase" {
                        Metric::Increase {
                            start,
                            target,
                            unit,
                        }
                    } else {
                        Metric::Decrease {
                            start,
                            target,
                            unit,
                        }
                    }
                }
                "stay_above" => Metric::StayAbove {
                    threshold: number("threshold")?,
                    unit,
                },
                "stay_below" => Metric::StayBelow {
                    threshold: number("threshold")?,
                    unit,
                },
                "milestone" => Metric::Milestone {
                    milestones: parse_json::<Vec<Milestone>>(
                        locus,
                        "milestones",
                        cell("milestones"),
                    )?
                    .unwrap_or_default(),
                },
                other => {
                    return Err(locus.error(
                        Some("metric"),
                        format!("unknown metric {other:?}: percent, increase, decrease, stay_above, stay_below or milestone"),
                    ))
                }
            };
            let cadence_days = match cell("cadence_days") {
                None => None,
                Some(v) => Some(v.parse::<u32>().map_err(|_| {
                    locus.error(
                        Some("cadence_days"),
                        format!("{v:?} is not a number of days"),
                    )
                })?),
            };
            Parsed::KeyResult(InKeyResult {
                id: need("id")?,
                objective: need("objective")?,
                title: need("title")?,
                owner: cell("owner"),
                metric,
                weight: number("weight")?,
                cadence_days,
                archived,
            })
        }
        "checkin" => {
            let confidence = need("confidence")?;
            let confidence = confidence.parse::<i64>().map_err(|_| {
                locus.error(
                    Some("confidence"),
                    format!("{confidence:?}: an integer 0–10"),
                )
            })?;
            let milestones: Option<Vec<bool>> =
                parse_json(locus, "milestones", cell("milestones"))?;
            Parsed::Checkin(InCheckin {
                key_result: need("key_result")?,
                // A milestone check-in's value is what its flags give.
                value: if milestones.is_some() {
                    None
                } else {
                    number("value")?
                },
                confidence,
                comment: cell("text"),
                mentions: mentions(),
                milestones,
                at: None,
            })
        }
        _ => {
            let target = match (cell("key_result"), cell("objective")) {
                (Some(k), _) => Target::KeyResult(k),
                (None, Some(o)) => Target::Objective(o),
                (None, None) => {
                    return Err(locus.error(
                        Some("objective"),
                        "a comment is about an objective or a key_result",
                    ))
                }
            };
            Parsed::Comment(InComment {
                id: cell("id"),
                target,
                text: need("text")?,
                mentions: mentions(),
                reply_to: cell("reply_to"),
                at: None,
            })
        }
    })
}

/// One command of an import, with the file id of what it creates (if anything).
#[derive(Debug, Clone)]
pub struct Step {
    pub locus: Locus,
    /// The file's id of the objective, KR or comment this step creates.
    pub creates: Option<String>,
    pub command: Command,
    /// Set the cycle only if the room has none.
    pub only_without_cycle: bool,
}

/// The commands an import file becomes, in an order where each refers only to what exists
/// by then: the cycle; the objectives; their alignments; the KRs; the check-ins and comments
/// in the order of their `at` (the file's order without it); then archiving what the file
/// says is archived (last: nothing is added to an archived objective or KR).
///
/// Refused here: a file over [`MAX_IMPORT_ROWS`], an objective or KR without an id or with
/// one another objective or KR of the file already has (a comment's id: another comment's).
pub fn plan(file: ImportFile) -> Result<Vec<Step>, Vec<RowError>> {
    let mut errors = Vec::new();
    if file.rows() > MAX_IMPORT_ROWS {
        errors.push(RowError {
            line: None,
            at: "file".into(),
            record: "file".into(),
            field: None,
            message: format!(
                "{} records: an import holds at most {MAX_IMPORT_ROWS}; split the file",
                file.rows()
            ),
        });
        return Err(errors);
    }
    let mut steps = Vec::new();
    let mut archive = Vec::new();
    if let Some((locus, c)) = file.cycle {
        steps.push(Step {
            locus,
            creates: None,
            command: Command::CycleSet(CycleSet {
                cycle: Some(c.id),
                kind: c.kind,
                starts: c.starts,
                ends: c.ends,
            }),
            only_without_cycle: true,
        });
    }
    let mut seen: HashSet<String> = HashSet::new();
    let mut unique = |locus: &Locus, id: &str, errors: &mut Vec<RowError>| -> bool {
        if id.trim().is_empty() {
            errors.push(locus.error(Some("id"), "an id is needed (any label unique in the file)"));
            false
        } else if !seen.insert(match locus.record {
            // Objectives and KRs share one namespace (`ImportAccepted::ids`); comments have
            // their own.
            "comment" => format!("comment/{id}"),
            _ => id.to_owned(),
        }) {
            errors.push(locus.error(Some("id"), format!("id {id:?} is used twice")));
            false
        } else {
            true
        }
    };
    let mut aligns = Vec::new();
    for (locus, o) in file.objectives {
        if !unique(&locus, &o.id, &mut errors) {
            continue;
        }
        if !o.aligned_to.is_empty() {
            aligns.push(Step {
                locus: locus.clone(),
                creates: None,
                command: Command::ObjectiveAlign(ObjectiveAlign {
                    objective: o.id.clone(),
                    set: Some(o.aligned_to),
                    add: Vec::new(),
                    remove: Vec::new(),
                }),
                only_without_cycle: false,
            });
        }
        if o.archived {
            archive.push(Step {
                locus: locus.clone(),
                creates: None,
                command: Command::ObjectiveArchive(ObjectiveArchive {
                    objective: o.id.clone(),
                    archived: true,
                }),
                only_without_cycle: false,
            });
        }
        steps.push(Step {
            locus,
            creates: Some(o.id),
            command: Command::ObjectiveCreate(ObjectiveCreate {
                title: o.title,
                description: o.description.filter(|d| !d.is_empty()),
                owner: o.owner,
                team: o.team,
                kind: o.kind,
                visibility: o.visibility,
                commitment: o.commitment,
                aligned_to: Vec::new(),
                carried_from: None,
            }),
            only_without_cycle: false,
        });
    }
    steps.extend(aligns);
    let mut kr_archive = Vec::new();
    for (locus, k) in file.key_results {
        if !unique(&locus, &k.id, &mut errors) {
            continue;
        }
        if k.archived {
            kr_archive.push(Step {
                locus: locus.clone(),
                creates: None,
                command: Command::KrArchive(KrArchive {
                    key_result: k.id.clone(),
                    archived: true,
                }),
                only_without_cycle: false,
            });
        }
        steps.push(Step {
            locus,
            creates: Some(k.id),
            command: Command::KrCreate(KrCreate {
                objective: k.objective,
                title: k.title,
                owner: k.owner,
                metric: k.metric,
                weight: k.weight,
                cadence_days: k.cadence_days,
                carried_from: None,
            }),
            only_without_cycle: false,
        });
    }
    // Check-ins and comments by time (a stable sort: the file's order among equals), so a
    // reply comes after what it answers and a KR's latest check-in stays its latest.
    let mut activity: Vec<(Option<Millis>, Step)> = Vec::new();
    for (locus, c) in file.checkins {
        activity.push((
            c.at,
            Step {
                locus,
                creates: None,
                command: Command::CheckinCreate(CheckinCreate {
                    key_result: c.key_result,
                    // A milestone check-in's value is what its flags give (an export has both).
                    value: if c.milestones.is_some() {
                        None
                    } else {
                        c.value
                    },
                    milestones: c.milestones,
                    confidence: c.confidence,
                    comment: c.comment,
                    mentions: c.mentions,
                }),
                only_without_cycle: false,
            },
        ));
    }
    for (locus, c) in file.comments {
        if let Some(id) = &c.id {
            if !unique(&locus, id, &mut errors) {
                continue;
            }
        }
        activity.push((
            c.at,
            Step {
                locus,
                creates: c.id,
                command: Command::CommentCreate(CommentCreate {
                    target: c.target,
                    text: c.text,
                    mentions: c.mentions,
                    reply_to: c.reply_to,
                }),
                only_without_cycle: false,
            },
        ));
    }
    activity.sort_by_key(|(at, _)| at.unwrap_or(Millis::MIN));
    steps.extend(activity.into_iter().map(|(_, s)| s));
    steps.extend(kr_archive);
    steps.extend(archive);
    if errors.is_empty() {
        Ok(steps)
    } else {
        Err(errors)
    }
}

/// The ids a step refers to that the file defines, by kind: `objective/ID`, `key_result/ID`,
/// `comment/ID` — rewritten to the ids they were created with by [`resolve`].
pub fn refs(command: &Command) -> Vec<String> {
    let mut out = Vec::new();
    match command {
        Command::ObjectiveAlign(a) => {
            out.push(format!("objective/{}", a.objective));
            for r in a.set.iter().flatten().filter(|r| r.room.is_none()) {
                if let Some(o) = &r.objective {
                    out.push(format!("objective/{o}"));
                }
                if let Some(k) = &r.key_result {
                    out.push(format!("key_result/{k}"));
                }
            }
        }
        Command::ObjectiveArchive(a) => out.push(format!("objective/{}", a.objective)),
        Command::KrCreate(k) => out.push(format!("objective/{}", k.objective)),
        Command::KrArchive(k) => out.push(format!("key_result/{}", k.key_result)),
        Command::CheckinCreate(c) => out.push(format!("key_result/{}", c.key_result)),
        Command::CommentCreate(c) => {
            out.push(match &c.target {
                Target::Objective(o) => format!("objective/{o}"),
                Target::KeyResult(k) => format!("key_result/{k}"),
            });
            if let Some(r) = &c.reply_to {
                out.push(format!("comment/{r}"));
            }
        }
        _ => {}
    }
    out
}

/// Rewrites the file ids `command` refers to into the ids they were created with (`ids`:
/// `kind/file id` → created id). An id the file does not define is left as it is: it may name
/// what the room already holds.
pub fn resolve(command: &mut Command, ids: &HashMap<String, String>) {
    let swap = |kind: &str, id: &mut String| {
        if let Some(new) = ids.get(&format!("{kind}/{id}")) {
            *id = new.clone();
        }
    };
    match command {
        Command::ObjectiveAlign(a) => {
            swap("objective", &mut a.objective);
            for r in a.set.iter_mut().flatten().filter(|r| r.room.is_none()) {
                if let Some(o) = &mut r.objective {
                    swap("objective", o);
                }
                if let Some(k) = &mut r.key_result {
                    swap("key_result", k);
                }
            }
        }
        Command::ObjectiveArchive(a) => swap("objective", &mut a.objective),
        Command::KrCreate(k) => swap("objective", &mut k.objective),
        Command::KrArchive(k) => swap("key_result", &mut k.key_result),
        Command::CheckinCreate(c) => swap("key_result", &mut c.key_result),
        Command::CommentCreate(c) => {
            match &mut c.target {
                Target::Objective(o) => swap("objective", o),
                Target::KeyResult(k) => swap("key_result", k),
            }
            if let Some(r) = &mut c.reply_to {
                swap("comment", r);
            }
        }
        _ => {}
    }
}

/// The kind a step creates, as [`refs`] names it.
pub fn creates_kind(command: &Command) -> Option<&'static str> {
    match command {
        Command::ObjectiveCreate(_) => Some("objective"),
        Command::KrCreate(_) => Some("key_result"),
        Command::CommentCreate(_) => Some("comment"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_epoch_millis() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_782_864_000_123), "2026-07-01T00:00:00.123Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn csv_rows_report_their_line_and_a_bom_is_skipped() {
        let mut body = BOM.to_vec();
        body.extend_from_slice(
            "record,id,title,objective,metric,target\r\nobjective,o1,\"增长, \"\"全国\"\"\",,,\r\nkey_result,k1,\"月活\n破万\",o1,increase,x\r\n"
                .as_bytes(),
        );
        let errors = from_csv(&body).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].line, Some(3));
        assert_eq!(errors[0].field.as_deref(), Some("target"));
        let ok = from_csv("record,id,title\r\nobjective,o1,\"增长, \"\"全国\"\"\"\r\n".as_bytes())
            .unwrap();
        assert_eq!(ok.objectives[0].1.title, "增长, \"全国\"");
    }

    #[test]
    fn formulas_are_escaped_and_every_text_comes_back() {
        for text in [
            "=HYPERLINK(\"http://x\")",
            "+1",
            "-5%",
            "@SUM(A1)",
            "'=x",
            "'",
            "''",
            "plain",
            "",
            "引爆",
        ] {
            let escaped = escape_formula(text.to_owned());
            assert!(!escaped.starts_with(['=', '+', '-', '@']), "{escaped}");
            assert_eq!(unescape_formula(&escaped), text);
        }
        let file = from_csv("record,id,title\r\nobjective,o1,'=1+1\r\n".as_bytes()).unwrap();
        assert_eq!(file.objectives[0].1.title, "=1+1");
    }

    #[test]
    fn the_plan_refers_only_to_what_exists_and_archives_last() {
        let file = from_json(
            br#"{"objectives":[{"id":"o1","title":"A","archived":true}],
                 "key_results":[{"id":"k1","objective":"o1","title":"B 1","metric":{"kind":"percent"}}],
                 "checkins":[{"key_result":"k1","value":5,"confidence":7,"at":2},{"key_result":"k1","value":3,"confidence":7,"at":1}]}"#,
        )
        .unwrap();
        let steps = plan(file).unwrap();
        let kinds: Vec<&str> = steps
            .iter()
            .map(|s| match &s.command {
                Command::ObjectiveCreate(_) => "o",
                Command::KrCreate(_) => "k",
                Command::CheckinCreate(c) if c.value == Some(3.0) => "c1",
                Command::CheckinCreate(_) => "c2",
                Command::ObjectiveArchive(_) => "archive",
                _ => "?",
            })
            .collect();
        assert_eq!(kinds, ["o", "k", "c1", "c2", "archive"]);
        let twice = from_json(
            br#"{"objectives":[{"id":"x","title":"A"},{"id":"","title":"B"}],
                 "key_results":[{"id":"x","objective":"x","title":"C 1","metric":{"kind":"percent"}}]}"#,
        )
        .unwrap();
        let errors = plan(twice).unwrap_err();
        let at: Vec<&str> = errors.iter().map(|e| e.at.as_str()).collect();
        assert_eq!(at, ["objectives[1]", "key_results[0]"], "{errors:?}");
    }
}
