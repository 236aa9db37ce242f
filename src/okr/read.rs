//! Materialising the typed [`OkrSet`] from a doc: parse every entry tolerantly, then derive.
//!
//! Reading never fails and never panics. Each root map is walked entry by entry; an entry whose
//! required fields are missing or unusable is skipped, an optional field that is unusable falls
//! back to its default, and both are reported in [`OkrSet::problems`] (ordered by root, then
//! entry id) — so one client writing garbage costs that entry, not the room. The derived fields
//! are filled in afterwards from the [`rules`](super::rules).
//!
//! [`read`] is the definition of the typed set. The room keeps it up to date incrementally
//! ([`Projection`](super::Projection)) with the same per-entry parsers ([`parse_entry`]) and the
//! same derivations ([`derive_kr`], [`roll_up`]); the property tests hold the two to each other.

use std::collections::{BTreeMap, HashMap};

use yrs::{GetString, Map, Out, ReadTxn};

use super::fields::{describe, Fields};
use super::lint::lint_objective;
use super::model::*;
use super::rules;
use super::schema::{self, field as f, limits, Root};

/// The problems of a read, by the entry they are about (the cycle's under id `""`): listed in
/// this order, so two reads of the same doc list them alike.
pub(crate) type EntryProblems = BTreeMap<(Root, String), Vec<Problem>>;

/// Reads the OKR set in `txn`'s doc, with derived fields as of `now`.
pub fn read<T: ReadTxn>(txn: &T, now: Millis) -> OkrSet {
    let mut problems = EntryProblems::new();
    let (cycle, cycle_problems) = read_cycle(txn);
    if !cycle_problems.is_empty() {
        problems.insert((Root::Cycle, String::new()), cycle_problems);
    }
    let objectives = entries(txn, Root::Objectives, &mut problems, objective);
    let key_results = entries(txn, Root::KeyResults, &mut problems, key_result);
    let mut checkins = entries(txn, Root::Checkins, &mut problems, checkin);
    let mut comments = entries(txn, Root::Comments, &mut problems, comment);
    checkins.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
    comments.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));

    let mut set = OkrSet {
        as_of: now,
        cycle,
        checkins,
        comments,
        ..OkrSet::default()
    };
    derive(&mut set, objectives, key_results, &mut problems);
    set.problems = problems.into_values().flatten().collect();
    set
}

/// A KR's check-ins (in `(at, id)` order) as a time series.
pub fn kr_history<'a>(
    kr: &KeyResult,
    checkins: impl IntoIterator<Item = &'a Checkin>,
) -> Vec<HistoryPoint> {
    checkins
        .into_iter()
        .filter(|c| c.key_result == kr.id)
        .map(|c| {
            let metric = rules::metric_at(&kr.metric, &kr.revisions, c.at);
            let raw = match metric {
                // A milestone check-in records the percentage its done flags gave.
                Metric::Milestone { .. } => c.value,
                _ => rules::raw_progress(metric, Some(c.value)),
            };
            HistoryPoint {
                checkin: c.id.clone(),
                at: c.at,
                value: c.value,
                progress: rules::clamp_progress(raw),
                confidence: c.confidence,
                author: c.author.clone(),
            }
        })
        .collect()
}

/// How one entry is parsed from its fields.
pub(crate) type Parser<T, E> = fn(&str, &mut Fields<'_, T>) -> Option<E>;

/// Parses every entry of `root` with `parse`, collecting problems by entry.
fn entries<T: ReadTxn, E>(
    txn: &T,
    root: Root,
    problems: &mut EntryProblems,
    parse: Parser<T, E>,
) -> Vec<E> {
    let Some(map) = txn.get_map(root.name()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (id, value) in map.iter(txn) {
        let (parsed, found) = parse_value(txn, root, id, &value, parse);
        if !found.is_empty() {
            problems.insert((root, id.to_owned()), found);
        }
        out.extend(parsed);
    }
    out
}

/// Parses entry `id` of `root` as it is now: `None` when it is absent or unreadable, with the
/// problems found either way.
pub(crate) fn parse_entry<T: ReadTxn, E>(
    txn: &T,
    root: Root,
    id: &str,
    parse: Parser<T, E>,
) -> (Option<E>, Vec<Problem>) {
    match txn.get_map(root.name()).and_then(|m| m.get(txn, id)) {
        Some(value) => parse_value(txn, root, id, &value, parse),
        None => (None, Vec::new()),
    }
}

/// The text of `Y.Text` field `field` of entry `id` of `root` (a shared root), or `None` if the
/// entry is not a `Y.Map` or the field not a `Y.Text`.
pub(crate) fn entry_text<T: ReadTxn>(txn: &T, root: Root, id: &str, field: &str) -> Option<String> {
    let Out::YMap(entry) = txn.get_map(root.name())?.get(txn, id)? else {
        return None;
    };
    match entry.get(txn, field)? {
        Out::YText(text) => Some(text.get_string(txn)),
        _ => None,
    }
}

/// Entries of a shared root must be `Y.Map`s (their fields are edited in place); the others may
/// be plain objects.
fn parse_value<T: ReadTxn, E>(
    txn: &T,
    root: Root,
    id: &str,
    value: &Out,
    parse: Parser<T, E>,
) -> (Option<E>, Vec<Problem>) {
    let path = format!("{}/{id}", root.name());
    if root.shared() && !matches!(value, Out::YMap(_)) {
        let message = format!("expected a Y.Map, found {}", describe(value));
        return (None, vec![Problem { path, message }]);
    }
    match Fields::of(txn, path, value) {
        Ok(mut fields) => {
            let parsed = parse(id, &mut fields);
            (parsed, fields.problems)
        }
        Err(problem) => (None, vec![problem]),
    }
}

/// The cycle, if set and readable, and the problems found reading it.
pub(crate) fn read_cycle<T: ReadTxn>(txn: &T) -> (Option<Cycle>, Vec<Problem>) {
    let Some(map) = txn.get_map(schema::CYCLE) else {
        return (None, Vec::new());
    };
    if map.len(txn) == 0 {
        return (None, Vec::new());
    }
    let Ok(mut fields) = Fields::of(txn, schema::CYCLE.into(), &Out::YMap(map)) else {
        return (None, Vec::new());
    };
    let cycle = (|| {
        let id = fields.str(f::ID);
        let id = fields.required(f::ID, id)?;
        let kind = fields.enumeration(f::KIND).unwrap_or_default();
        let starts = fields.str(f::STARTS);
        let starts = fields.required(f::STARTS, starts)?;
        let ends = fields.str(f::ENDS);
        let ends = fields.required(f::ENDS, ends)?;
        let closed_at = fields.millis(f::CLOSED_AT);
        let closed_by = closed_at.and(fields.str(f::CLOSED_BY));
        let cycle = Cycle {
            id,
            kind,
            starts,
            ends,
            closed: closed_at.is_some(),
            closed_at,
            closed_by,
        };
        if rules::cycle_span(&cycle).is_none() {
            fields.report(
                f::ENDS,
                "starts and ends must be YYYY-MM-DD dates, starts ≤ ends",
            );
            return None;
        }
        Some(cycle)
    })();
    (cycle, fields.problems)
}

/// `status`: `active` (default) or `archived`.
fn archived<T: ReadTxn>(fields: &mut Fields<'_, T>) -> bool {
    match fields.str(f::STATUS).as_deref() {
        None | Some(schema::ACTIVE) => false,
        Some(schema::ARCHIVED) => true,
        Some(other) => {
            fields.report(f::STATUS, format!("unknown value {other:?}"));
            false
        }
    }
}

/// Reads the fields every objective and KR share: who created / updated it, and when.
struct Stamps {
    created_at: Millis,
    created_by: Option<String>,
    updated_at: Millis,
    updated_by: Option<String>,
}

fn stamps<T: ReadTxn>(fields: &mut Fields<'_, T>) -> Stamps {
    Stamps {
        created_at: fields.millis(f::CREATED_AT).unwrap_or(0),
        created_by: fields.str(f::CREATED_BY),
        updated_at: fields.millis(f::UPDATED_AT).unwrap_or(0),
        updated_by: fields.str(f::UPDATED_BY),
    }
}

pub(crate) fn objective<T: ReadTxn>(id: &str, fields: &mut Fields<'_, T>) -> Option<Objective> {
    let title = fields.text(f::TITLE);
    let title = fields.required(f::TITLE, title)?;
    let aligned_to = fields.nested_list(f::ALIGNED_TO, align_ref);
    let carried_from = nested_opt(fields, f::CARRIED_FROM, carried_from);
    let retro = nested_opt(fields, f::RETRO, retro);
    let s = stamps(fields);
    Some(Objective {
        id: id.to_owned(),
        title,
        description: fields.text(f::DESCRIPTION).unwrap_or_default(),
        owner: fields.str(f::OWNER),
        team: fields.str(f::TEAM),
        kind: fields.enumeration(f::KIND).unwrap_or_default(),
        visibility: fields.enumeration(f::VISIBILITY).unwrap_or_default(),
        commitment: fields.enumeration(f::COMMITMENT).unwrap_or_default(),
        order: fields.num(f::ORDER).unwrap_or(0.0),
        archived: archived(fields),
        aligned_to,
        carried_from,
        retro,
        created_at: s.created_at,
        created_by: s.created_by,
        updated_at: s.updated_at,
        updated_by: s.updated_by,
        key_results: Vec::new(),
        progress: 0.0,
        status: None,
        overdue: false,
        score: None,
    })
}

/// An optional nested plain object read with `read` (absent: `None`; unreadable: reported).
fn nested_opt<'t, T: ReadTxn, V>(
    fields: &mut Fields<'t, T>,
    key: &str,
    read: impl FnOnce(&mut Fields<'t, T>) -> Option<V>,
) -> Option<V> {
    fields.get(key)?;
    let nested = fields.nested(key)?;
    fields.absorb(nested, read)
}

fn carried_from<T: ReadTxn>(fields: &mut Fields<'_, T>) -> Option<CarriedFrom> {
    let room = fields.str(f::ROOM);
    let room = fields.required(f::ROOM, room)?;
    let c = CarriedFrom {
        room,
        objective: fields.str(f::OBJECTIVE),
        key_result: fields.str(f::KEY_RESULT),
    };
    if c.objective.is_some() == c.key_result.is_some() {
        fields.report(
            f::OBJECTIVE,
            "exactly one of objective / key_result must be set",
        );
        return None;
    }
    Some(c)
}

fn retro<T: ReadTxn>(fields: &mut Fields<'_, T>) -> Option<Retro> {
    let by = fields.str(f::BY);
    let by = fields.required(f::BY, by)?;
    let at = fields.millis(f::AT);
    let at = fields.required(f::AT, at)?;
    Some(Retro {
        worked: fields.str(f::WORKED).unwrap_or_default(),
        did_not: fields.str(f::DID_NOT).unwrap_or_default(),
        next: fields.str(f::NEXT).unwrap_or_default(),
        by,
        at,
    })
}

fn score_override<T: ReadTxn>(fields: &mut Fields<'_, T>) -> Option<ScoreOverride> {
    let score = match fields.num(f::SCORE) {
        Some(s) if (0.0..=1.0).contains(&s) => Some(s),
        Some(_) => {
            fields.report(f::SCORE, "a score is within 0.0–1.0");
            None
        }
        None => None,
    };
    let score = fields.required(f::SCORE, score)?;
    let by = fields.str(f::BY);
    let by = fields.required(f::BY, by)?;
    let at = fields.millis(f::AT);
    let at = fields.required(f::AT, at)?;
    Some(ScoreOverride {
        score,
        reason: fields.str(f::REASON).unwrap_or_default(),
        by,
        at,
    })
}

fn align_ref<T: ReadTxn>(fields: &mut Fields<'_, T>) -> Option<AlignRef> {
    let r = AlignRef {
        room: fields.str(f::ROOM),
        objective: fields.str(f::OBJECTIVE),
        key_result: fields.str(f::KEY_RESULT),
    };
    if r.objective.is_some() == r.key_result.is_some() {
        fields.report(
            f::OBJECTIVE,
            "exactly one of objective / key_result must be set",
        );
        return None;
    }
    Some(r)
}

pub(crate) fn key_result<T: ReadTxn>(id: &str, fields: &mut Fields<'_, T>) -> Option<KeyResult> {
    let objective = fields.str(f::OBJECTIVE);
    let objective = fields.required(f::OBJECTIVE, objective)?;
    let title = fields.text(f::TITLE);
    let title = fields.required(f::TITLE, title)?;
    let metric = match fields.nested(f::METRIC) {
        Some(nested) => fields.absorb(nested, metric),
        None => None,
    };
    let metric = fields.required(f::METRIC, metric)?;
    let weight = match fields.num(f::WEIGHT) {
        Some(w) if (0.0..=limits::WEIGHT_MAX).contains(&w) => w,
        Some(_) => {
            fields.report(f::WEIGHT, "weight out of range, 1 used");
            1.0
        }
        None => 1.0,
    };
    let cadence_days = match fields.num(f::CADENCE_DAYS) {
        Some(c) if (0.0..=f64::from(limits::CADENCE_DAYS_MAX)).contains(&c) => c.round() as u32,
        Some(_) => {
            fields.report(f::CADENCE_DAYS, "cadence out of range, default used");
            schema::DEFAULT_CADENCE_DAYS
        }
        None => schema::DEFAULT_CADENCE_DAYS,
    };
    let revisions = fields.nested_list(f::REVISIONS, revision);
    let carried_from = nested_opt(fields, f::CARRIED_FROM, carried_from);
    let score_override = nested_opt(fields, f::SCORE_OVERRIDE, score_override);
    let s = stamps(fields);
    Some(KeyResult {
        id: id.to_owned(),
        objective,
        title,
        owner: fields.str(f::OWNER),
        metric,
        weight,
        cadence_days,
        order: fields.num(f::ORDER).unwrap_or(0.0),
        archived: archived(fields),
        revisions,
        carried_from,
        score_override,
        created_at: s.created_at,
        created_by: s.created_by,
        updated_at: s.updated_at,
        updated_by: s.updated_by,
        current: None,
        raw_progress: 0.0,
        progress: 0.0,
        expected_progress: None,
        behind_pace: false,
        confidence: None,
        status: Status::OnTrack,
        overdue: false,
        last_checkin_at: None,
        checkin_due_at: None,
        score: None,
    })
}

pub(crate) fn metric<T: ReadTxn>(fields: &mut Fields<'_, T>) -> Option<Metric> {
    let kind = fields.str(f::KIND);
    let kind = fields.required(f::KIND, kind)?;
    let metric = match kind.as_str() {
        "percent" => Metric::Percent,
        "increase" | "decrease" => {
            let start = fields.num(f::START).unwrap_or(0.0);
            let target = fields.num(f::TARGET);
            let unit = fields.str(f::UNIT);
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
        "stay_above" | "stay_below" => {
            let threshold = fields.num(f::THRESHOLD);
            let unit = fields.str(f::UNIT);
            if kind == "stay_above" {
                Metric::StayAbove { threshold, unit }
            } else {
                Metric::StayBelow { threshold, unit }
            }
        }
        "milestone" => {
            let items = fields.list(f::MILESTONES).unwrap_or_default();
            let mut milestones = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let path = fields.path(&format!("{}/{i}", f::MILESTONES));
                match Fields::of(fields.txn(), path, item) {
                    Ok(n) => milestones.extend(fields.absorb(n, milestone)),
                    Err(p) => fields.problems.push(p),
                }
            }
            Metric::Milestone { milestones }
        }
        other => {
            fields.report(f::KIND, format!("unknown metric kind {other:?}"));
            return None;
        }
    };
    Some(metric)
}

fn milestone<T: ReadTxn>(fields: &mut Fields<'_, T>) -> Option<Milestone> {
    let weight = match fields.num(f::WEIGHT) {
        Some(w) if w >= 0.0 => w,
        Some(_) => {
            fields.report(f::WEIGHT, "negative weight, 1 used");
            1.0
        }
        None => 1.0,
    };
    Some(Milestone {
        title: fields.str(f::TITLE).unwrap_or_default(),
        weight,
        done: fields.bool(f::DONE).unwrap_or(false),
    })
}

fn revision<T: ReadTxn>(fields: &mut Fields<'_, T>) -> Option<Revision> {
    let at = fields.millis(f::AT);
    let at = fields.required(f::AT, at)?;
    let old = fields.nested(f::OLD).and_then(|n| fields.absorb(n, metric));
    let old = fields.required(f::OLD, old)?;
    let new = fields.nested(f::NEW).and_then(|n| fields.absorb(n, metric));
    let new = fields.required(f::NEW, new)?;
    Some(Revision {
        at,
        by: fields.str(f::BY).unwrap_or_default(),
        old,
        new,
        why: fields.str(f::WHY).unwrap_or_default(),
    })
}

pub(crate) fn checkin<T: ReadTxn>(id: &str, fields: &mut Fields<'_, T>) -> Option<Checkin> {
    let key_result = fields.str(f::KEY_RESULT);
    let key_result = fields.required(f::KEY_RESULT, key_result)?;
    let author = fields.str(f::AUTHOR);
    let author = fields.required(f::AUTHOR, author)?;
    let at = fields.millis(f::AT);
    let at = fields.required(f::AT, at)?;
    let value = fields.num(f::VALUE);
    let value = fields.required(f::VALUE, value)?;
    let confidence = match fields.num(f::CONFIDENCE) {
        Some(c) if c.fract() == 0.0 && (0.0..=f64::from(limits::CONFIDENCE_MAX)).contains(&c) => {
            Some(c as u8)
        }
        Some(_) => {
            fields.report(f::CONFIDENCE, "confidence must be an integer 0–10, ignored");
            None
        }
        None => {
            fields.required::<u8>(f::CONFIDENCE, None);
            None
        }
    };
    let milestones = fields.list(f::MILESTONES).map(|items| {
        items
            .iter()
            .map(|i| matches!(i, Out::Any(yrs::Any::Bool(true))))
            .collect()
    });
    Some(Checkin {
        id: id.to_owned(),
        key_result,
        author,
        at,
        value,
        confidence,
        comment: fields.str(f::COMMENT).unwrap_or_default(),
        mentions: fields.strings(f::MENTIONS),
        milestones,
    })
}

pub(crate) fn comment<T: ReadTxn>(id: &str, fields: &mut Fields<'_, T>) -> Option<Comment> {
    let target = fields
        .nested(f::TARGET)
        .and_then(|n| fields.absorb(n, target));
    let target = fields.required(f::TARGET, target)?;
    let author = fields.str(f::AUTHOR);
    let author = fields.required(f::AUTHOR, author)?;
    let at = fields.millis(f::AT);
    let at = fields.required(f::AT, at)?;
    let text = fields.text(f::TEXT);
    let text = fields.required(f::TEXT, text)?;
    Some(Comment {
        id: id.to_owned(),
        target,
        author,
        at,
        text,
        mentions: fields.strings(f::MENTIONS),
        reply_to: fields.str(f::REPLY_TO),
    })
}

fn target<T: ReadTxn>(fields: &mut Fields<'_, T>) -> Option<Target> {
    match (fields.str(f::OBJECTIVE), fields.str(f::KEY_RESULT)) {
        (Some(o), None) => Some(Target::Objective(o)),
        (None, Some(k)) => Some(Target::KeyResult(k)),
        _ => {
            fields.report(
                f::OBJECTIVE,
                "exactly one of objective / key_result must be set",
            );
            None
        }
    }
}

/// What derived fields depend on besides the entries: the time and the cycle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Clock {
    pub now: Millis,
    pub span: Option<(Millis, Millis)>,
    pub expected: Option<f64>,
    /// The cycle is closed: KRs are scored.
    pub closed: bool,
}

impl Clock {
    pub fn new(cycle: Option<&Cycle>, now: Millis) -> Self {
        let span = cycle.and_then(rules::cycle_span);
        Clock {
            now,
            span,
            expected: rules::expected_progress(span, now),
            closed: cycle.is_some_and(|c| c.closed),
        }
    }
}

/// Fills in a KR's derived fields from its latest check-in, the latest confidence any of its
/// check-ins gave, and the clock.
pub(crate) fn derive_kr(
    kr: &mut KeyResult,
    latest: Option<&Checkin>,
    confidence: Option<u8>,
    clock: &Clock,
) {
    kr.last_checkin_at = latest.map(|c| c.at);
    kr.current = latest
        .map(|c| c.value)
        .or_else(|| rules::start_value(&kr.metric));
    kr.raw_progress = rules::raw_progress(&kr.metric, kr.current);
    kr.progress = rules::clamp_progress(kr.raw_progress);
    kr.confidence = confidence;
    kr.score = clock.closed.then(|| {
        let proposed = rules::proposed_score(kr.progress);
        KrScore {
            proposed,
            final_score: kr.score_override.as_ref().map_or(proposed, |o| o.score),
        }
    });
    derive_kr_in_time(kr, clock);
}

/// The part of a KR's derived fields that moves with the clock alone.
pub(crate) fn derive_kr_in_time(kr: &mut KeyResult, clock: &Clock) {
    InTime::of(kr, clock).set(kr);
}

/// A KR's derived fields that move with the clock alone, as of a clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct InTime {
    pub expected_progress: Option<f64>,
    pub behind_pace: bool,
    pub status: Status,
    pub checkin_due_at: Option<Millis>,
    pub overdue: bool,
}

impl InTime {
    pub fn of(kr: &KeyResult, clock: &Clock) -> Self {
        let behind_pace = rules::behind_pace(kr.progress, clock.expected);
        let (checkin_due_at, overdue) = if kr.archived {
            (None, false)
        } else {
            let anchor = clock
                .span
                .map_or(kr.created_at, |(start, _)| start.max(kr.created_at));
            let due = rules::checkin_due_at(kr.cadence_days, anchor, kr.last_checkin_at);
            let end = clock.span.map(|(_, end)| end);
            (due, rules::overdue(due, clock.now, end))
        };
        InTime {
            expected_progress: clock.expected,
            behind_pace,
            status: rules::kr_status(kr.confidence, behind_pace),
            checkin_due_at,
            overdue,
        }
    }

    /// What `kr` says now.
    pub fn current(kr: &KeyResult) -> Self {
        InTime {
            expected_progress: kr.expected_progress,
            behind_pace: kr.behind_pace,
            status: kr.status,
            checkin_due_at: kr.checkin_due_at,
            overdue: kr.overdue,
        }
    }

    /// Equal but for the expected progress (which alone is no news).
    pub fn same_news(&self, other: &Self) -> bool {
        InTime {
            expected_progress: other.expected_progress,
            ..*self
        } == *other
    }

    pub fn set(self, kr: &mut KeyResult) {
        kr.expected_progress = self.expected_progress;
        kr.behind_pace = self.behind_pace;
        kr.status = self.status;
        kr.checkin_due_at = self.checkin_due_at;
        kr.overdue = self.overdue;
    }
}

/// Fills in an objective's derived fields from its KRs (all of them, in order).
pub(crate) fn roll_up<'a>(o: &mut Objective, krs: impl IntoIterator<Item = &'a KeyResult> + Clone) {
    o.key_results = krs.clone().into_iter().map(|k| k.id.clone()).collect();
    RollUp::of(krs).set(o);
}

/// What an objective's derived fields are from its KRs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RollUp {
    pub progress: f64,
    pub status: Option<Status>,
    pub overdue: bool,
    pub score: Option<f64>,
}

impl RollUp {
    /// From its KRs (archived ones are skipped).
    pub fn of<'a>(krs: impl IntoIterator<Item = &'a KeyResult>) -> Self {
        let active: Vec<&KeyResult> = krs.into_iter().filter(|k| !k.archived).collect();
        let scores: Option<Vec<(f64, f64)>> = active
            .iter()
            .map(|k| k.score.as_ref().map(|s| (k.weight, s.final_score)))
            .collect();
        RollUp {
            progress: rules::weighted_progress(active.iter().map(|k| (k.weight, k.progress))),
            status: active.iter().map(|k| k.status).max(),
            overdue: active.iter().any(|k| k.overdue),
            score: scores.filter(|s| !s.is_empty()).map(rules::objective_score),
        }
    }

    /// What `o` says now.
    pub fn current(o: &Objective) -> Self {
        RollUp {
            progress: o.progress,
            status: o.status,
            overdue: o.overdue,
            score: o.score,
        }
    }

    pub fn set(self, o: &mut Objective) {
        (o.progress, o.status, o.overdue, o.score) =
            (self.progress, self.status, self.overdue, self.score);
    }
}

/// The problem of a KR whose objective does not exist (the KR is skipped).
pub(crate) fn orphan_problem(kr: &KeyResult) -> Problem {
    Problem {
        path: format!("{}/{}/{}", schema::KEY_RESULTS, kr.id, f::OBJECTIVE),
        message: format!("objective {:?} not found; key result skipped", kr.objective),
    }
}

/// The board order of objectives: by `order`, then id.
pub(crate) fn objective_order(a: &Objective, b: &Objective) -> std::cmp::Ordering {
    a.order.total_cmp(&b.order).then_with(|| a.id.cmp(&b.id))
}

/// The order of one objective's KRs: by `order`, then id.
pub(crate) fn kr_order(a: &KeyResult, b: &KeyResult) -> std::cmp::Ordering {
    a.order.total_cmp(&b.order).then_with(|| a.id.cmp(&b.id))
}

/// Fills in the derived fields, nests KRs under their objectives, orders everything and lints.
fn derive(
    set: &mut OkrSet,
    mut objectives: Vec<Objective>,
    key_results: Vec<KeyResult>,
    problems: &mut EntryProblems,
) {
    let clock = Clock::new(set.cycle.as_ref(), set.as_of);
    objectives.sort_by(objective_order);
    let position: HashMap<String, usize> = objectives
        .iter()
        .enumerate()
        .map(|(i, o)| (o.id.clone(), i))
        .collect();

    // Check-ins are sorted by (at, id): the last one seen for a KR is its latest.
    let mut latest: HashMap<&str, &Checkin> = HashMap::new();
    let mut latest_confidence: HashMap<&str, u8> = HashMap::new();
    for c in &set.checkins {
        latest.insert(&c.key_result, c);
        if let Some(conf) = c.confidence {
            latest_confidence.insert(&c.key_result, conf);
        }
    }

    let mut krs: Vec<KeyResult> = Vec::with_capacity(key_results.len());
    for mut kr in key_results {
        if !position.contains_key(&kr.objective) {
            let found = problems
                .entry((Root::KeyResults, kr.id.clone()))
                .or_default();
            found.push(orphan_problem(&kr));
            continue;
        }
        let last = latest.get(kr.id.as_str()).copied();
        let confidence = latest_confidence.get(kr.id.as_str()).copied();
        derive_kr(&mut kr, last, confidence, &clock);
        krs.push(kr);
    }
    krs.sort_by(|a, b| {
        position[&a.objective]
            .cmp(&position[&b.objective])
            .then_with(|| kr_order(a, b))
    });

    let mut lint = Vec::new();
    let mut start = 0;
    for o in &mut objectives {
        let end = start
            + krs[start..]
                .iter()
                .take_while(|k| k.objective == o.id)
                .count();
        roll_up(o, &krs[start..end]);
        lint_objective(o, &krs[start..end], &mut lint);
        start = end;
    }
    set.objectives = objectives;
    set.key_results = krs;
    set.lint = lint;
}
