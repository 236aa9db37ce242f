//! The typed OKR set kept up to date incrementally: an edit costs what it touched.
//!
//! [`read`](super::read()) defines the typed set and [`diff`](super::diff()) its events; both
//! walk the whole set. A room cannot afford that per keystroke — a realistic room holds hundreds
//! of check-ins, and a hostile one megabytes — so it keeps a `Projection` instead and hands it,
//! after each transaction, the entries the transaction [`Touched`]. The projection re-parses
//! those entries with the reader's own parsers and re-derives what depends on them:
//!
//! | touched | re-derived |
//! |---|---|
//! | a KR | that KR; its objective's (and its old objective's) roll-up and lint |
//! | the text of a title (a keystroke) | that text alone; the objective's lint |
//! | a check-in | its KR (latest value and confidence come from an index by KR); that KR's objective |
//! | an objective | that objective; when it appears or disappears, the KRs that name it |
//! | a comment | nothing else |
//! | the cycle | every KR (expected progress, pace, due dates move with the cycle) |
//!
//! and derives the events by comparing each re-derived entry with what it was — the same
//! per-entry comparisons [`diff`](super::diff()) makes, in the same order. So the cost of a
//! keystroke in a KR title is independent of how many check-ins, comments or other objectives
//! the room holds.
//!
//! # Time
//!
//! Some derived fields move with the clock alone (expected progress, pace, overdue). The
//! projection's clock ([`Projection::as_of`]) advances only in [`Projection::tick`], which
//! re-evaluates every KR's time-derived fields in place (and reports only KRs where more than
//! the expected progress moved): an edit is derived as of the last tick, so the whole model is always
//! exactly what [`read`](super::read()) gives at `as_of`. The room ticks on its sweeper's timer
//! and before an edit when the clock is more than a second behind.
//!
//! # The oracle
//!
//! `src/okr/tests/projection.rs` applies random edits (Yjs clients writing anything anywhere,
//! and commands) and checks after every step that [`Projection::to_set`] equals a full read and
//! that the events equal the diff of the two full reads around the step.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use yrs::ReadTxn;

use super::events::{self, Event};
use super::lint::lint_objective;
use super::model::*;
use super::read::{self, Clock, EntryProblems, InTime};
use super::schema::field as f;
use super::schema::Root;
use super::touched::{Scope, Touched};

/// An OKR set, derived as of [`Projection::as_of`], with the indexes an incremental update
/// needs.
#[derive(Debug, Clone)]
pub struct Projection {
    clock: Clock,
    cycle: Option<Cycle>,
    /// Every readable objective, derived fields filled in.
    objectives: HashMap<String, Objective>,
    /// Objective ids in board order, and each one's place in it.
    board: Vec<String>,
    position: HashMap<String, usize>,
    /// Every readable KR. One whose objective does not exist (an orphan) is kept, so that it
    /// reappears if the objective does, but is not part of the set.
    krs: HashMap<String, KeyResult>,
    /// KR ids by the objective they name, in KR order (orphans too).
    krs_of: HashMap<String, Vec<String>>,
    checkins: BTreeMap<(Millis, String), Checkin>,
    checkin_at: HashMap<String, Millis>,
    checkins_of: HashMap<String, BTreeSet<(Millis, String)>>,
    comments: BTreeMap<(Millis, String), Comment>,
    comment_at: HashMap<String, Millis>,
    /// Problems found parsing each entry (orphans' are added when the set is listed).
    problems: EntryProblems,
    /// Each active objective's findings, and all of them in board order.
    lint_of: HashMap<String, Vec<LintFinding>>,
    lint: Vec<LintFinding>,
}

/// An objective as it was before an update (`None`: absent), and its board position then.
type ObjectiveBefore = Option<(Box<Objective>, usize)>;

/// How an objective to re-derive was before an update.
enum Was {
    /// It was re-read: all of it as it was.
    Entry(ObjectiveBefore),
    /// Only its roll-up and lint may change: compared in place, copied only if they do.
    Derived,
}

/// A KR as it was before an update if it was part of the set, and its place then (its
/// objective's position, its order).
type KrBefore = Option<(KeyResult, (usize, f64))>;

/// What one update changed, as it was before: the entries re-derived and their earlier state.
#[derive(Default)]
struct Work {
    /// Objectives to re-derive.
    objectives: HashMap<String, Was>,
    /// KRs to re-derive.
    krs: HashMap<String, KrBefore>,
    /// Those of them whose title alone changed: their derived fields stay as they are.
    titles_only: HashSet<String>,
    new_checkins: Vec<(Millis, String)>,
    new_comments: Vec<(Millis, String)>,
    /// Objectives appeared, disappeared or moved: the board is sorted again.
    board_changed: bool,
    /// The cycle changed (so did the clock's span): every KR is re-derived.
    all_krs: bool,
}

/// Notes in `objectives` (a [`Work`]'s) that objective `id`'s roll-up and lint may have changed.
fn touch(objectives: &mut HashMap<String, Was>, id: &str) {
    if !objectives.contains_key(id) {
        objectives.insert(id.to_owned(), Was::Derived);
    }
}

/// A KR's place in the board order: its objective's position, then its order.
fn place(position: &HashMap<String, usize>, kr: &KeyResult) -> (usize, f64) {
    (position[&kr.objective], kr.order)
}

impl Projection {
    /// The set in `txn`'s doc as of `now`.
    pub fn load<T: ReadTxn>(txn: &T, now: Millis) -> Self {
        let mut p = Projection {
            clock: Clock::new(None, now),
            cycle: None,
            objectives: HashMap::new(),
            board: Vec::new(),
            position: HashMap::new(),
            krs: HashMap::new(),
            krs_of: HashMap::new(),
            checkins: BTreeMap::new(),
            checkin_at: HashMap::new(),
            checkins_of: HashMap::new(),
            comments: BTreeMap::new(),
            comment_at: HashMap::new(),
            problems: EntryProblems::new(),
            lint_of: HashMap::new(),
            lint: Vec::new(),
        };
        let mut w = Work::default();
        p.take(txn, &Touched::everything(txn), &mut w);
        p.finish(w, None);
        p
    }

    /// The time the derived fields are computed for.
    pub fn as_of(&self) -> Millis {
        self.clock.now
    }

    /// Brings the entries `touched` names up to date with `txn`'s doc and returns the events
    /// that lead there (as [`diff`](super::diff()) would give them).
    pub fn apply<T: ReadTxn>(&mut self, txn: &T, touched: &Touched) -> Vec<Event> {
        let mut out = Vec::new();
        let mut w = Work::default();
        if let Some((before, after)) = self.take(txn, touched, &mut w) {
            events::cycle_changed(&mut out, before.as_ref(), after.as_ref());
        }
        self.finish(w, Some(&mut out));
        out
    }

    /// Re-reads the entries `touched` names, noting in `w` what they were. Returns the cycle
    /// before and after if it changed.
    fn take<T: ReadTxn>(
        &mut self,
        txn: &T,
        touched: &Touched,
        w: &mut Work,
    ) -> Option<(Option<Cycle>, Option<Cycle>)> {
        let mut cycle_changed = None;
        if touched.cycle {
            let (cycle, problems) = read::read_cycle(txn);
            self.set_problems(Root::Cycle, "", problems);
            if cycle != self.cycle {
                let clock = Clock::new(cycle.as_ref(), self.clock.now);
                w.all_krs |= clock != self.clock;
                self.clock = clock;
                let before = std::mem::replace(&mut self.cycle, cycle.clone());
                cycle_changed = Some((before, cycle));
            }
        }
        for (id, scope) in &touched.objectives {
            if !self.objective_text_changed(txn, id, scope, w) {
                self.objective_changed(txn, id, w);
            }
        }
        for (id, scope) in &touched.key_results {
            if !self.kr_text_changed(txn, id, scope, w) {
                self.kr_changed(txn, id, w);
            }
        }
        for id in &touched.checkins {
            self.checkin_changed(txn, id, w);
        }
        for id in &touched.comments {
            self.comment_changed(txn, id, w);
        }
        cycle_changed
    }

    /// Moves the clock to `now` and returns what time alone changed (KRs becoming overdue,
    /// with their reminders; falling behind pace). A KR whose only change is its expected
    /// progress (every KR, every tick) is updated in place: no copy, no event.
    pub fn tick(&mut self, now: Millis) -> Vec<Event> {
        let clock = Clock::new(self.cycle.as_ref(), now);
        if clock == self.clock {
            return Vec::new();
        }
        self.clock = clock;
        let mut w = Work::default();
        let Projection {
            krs,
            objectives,
            position,
            ..
        } = self;
        for (id, kr) in krs.iter_mut() {
            if !objectives.contains_key(&kr.objective) {
                continue;
            }
            let (was, next) = (InTime::current(kr), InTime::of(kr, &clock));
            if was == next {
                continue;
            }
            if !was.same_news(&next) {
                w.krs
                    .insert(id.clone(), Some((kr.clone(), place(position, kr))));
            }
            next.set(kr);
        }
        let mut out = Vec::new();
        self.finish(w, Some(&mut out));
        out
    }

    fn set_problems(&mut self, root: Root, id: &str, problems: Vec<Problem>) {
        if problems.is_empty() && self.problems.is_empty() {
            return;
        }
        let key = (root, id.to_owned());
        if problems.is_empty() {
            self.problems.remove(&key);
        } else {
            self.problems.insert(key, problems);
        }
    }

    /// The short way for a keystroke in an objective's title or description: those texts are
    /// read again, nothing else. False (and nothing done) when it does not apply: then the
    /// entry is read whole.
    fn objective_text_changed<T: ReadTxn>(
        &mut self,
        txn: &T,
        id: &str,
        scope: &Scope,
        w: &mut Work,
    ) -> bool {
        let Scope::Text(fields) = scope else {
            return false;
        };
        if !self.objectives.contains_key(id) {
            return false;
        }
        let mut texts = Vec::with_capacity(fields.len());
        for field in fields {
            match read::entry_text(txn, Root::Objectives, id, field) {
                Some(text) => texts.push((*field, text)),
                None => return false,
            }
        }
        self.objective_before(id, w);
        let o = self.objectives.get_mut(id).expect("present");
        for (field, text) in texts {
            match field {
                f::TITLE => o.title = text,
                _ => o.description = text,
            }
        }
        true
    }

    /// The short way for a keystroke in a KR's title (see [`Self::objective_text_changed`]).
    fn kr_text_changed<T: ReadTxn>(
        &mut self,
        txn: &T,
        id: &str,
        scope: &Scope,
        w: &mut Work,
    ) -> bool {
        let Scope::Text(fields) = scope else {
            return false;
        };
        if !self.krs.contains_key(id) || fields.iter().any(|f| *f != f::TITLE) {
            return false;
        }
        let Some(title) = read::entry_text(txn, Root::KeyResults, id, f::TITLE) else {
            return false;
        };
        let fresh = !w.krs.contains_key(id);
        self.kr_before(id, w);
        if fresh {
            w.titles_only.insert(id.to_owned());
        }
        let kr = self.krs.get_mut(id).expect("present");
        kr.title = title;
        let objective = kr.objective.clone();
        touch(&mut w.objectives, &objective);
        true
    }

    fn objective_changed<T: ReadTxn>(&mut self, txn: &T, id: &str, w: &mut Work) {
        let (parsed, problems) = read::parse_entry(txn, Root::Objectives, id, read::objective);
        self.set_problems(Root::Objectives, id, problems);
        self.objective_before(id, w);
        let old = self.objectives.get(id);
        let existed = old.is_some();
        w.board_changed |= match (&parsed, old) {
            (Some(new), Some(old)) => new.order.total_cmp(&old.order).is_ne(),
            (None, None) => false,
            _ => true,
        };
        if existed != parsed.is_some() {
            // Its KRs join or leave the set.
            for k in self.krs_of.get(id).cloned().unwrap_or_default() {
                self.kr_before(&k, w);
            }
        }
        match parsed {
            Some(o) => {
                self.objectives.insert(id.to_owned(), o);
            }
            None => {
                self.objectives.remove(id);
                self.lint_of.remove(id);
            }
        }
    }

    fn kr_changed<T: ReadTxn>(&mut self, txn: &T, id: &str, w: &mut Work) {
        w.titles_only.remove(id);
        let (parsed, problems) = read::parse_entry(txn, Root::KeyResults, id, read::key_result);
        self.set_problems(Root::KeyResults, id, problems);
        let new_place = parsed.as_ref().map(|k| (k.objective.clone(), k.order));
        let old = match (self.krs.get_mut(id), parsed) {
            (Some(slot), Some(new)) => Some(std::mem::replace(slot, new)),
            (Some(_), None) => self.krs.remove(id),
            (None, Some(new)) => {
                self.krs.insert(id.to_owned(), new);
                None
            }
            (None, None) => None,
        };
        let old_place = old.as_ref().map(|k| (k.objective.clone(), k.order));
        if old_place != new_place {
            if let Some((objective, _)) = &old_place {
                if let Some(list) = self.krs_of.get_mut(objective) {
                    list.retain(|k| k != id);
                    if list.is_empty() {
                        self.krs_of.remove(objective);
                    }
                }
            }
            if let Some((objective, _)) = &new_place {
                let list = self.krs_of.entry(objective.clone()).or_default();
                let (krs, kr) = (&self.krs, &self.krs[id]);
                let at = list.partition_point(|k| read::kr_order(&krs[k], kr).is_lt());
                list.insert(at, id.to_owned());
            }
        }
        for (objective, _) in old_place.iter().chain(&new_place) {
            touch(&mut w.objectives, objective);
        }
        // What it was, moved rather than copied (unless something already noted it).
        if !w.krs.contains_key(id) {
            let before = old
                .filter(|k| self.objectives.contains_key(&k.objective))
                .map(|k| {
                    let at = place(&self.position, &k);
                    (k, at)
                });
            w.krs.insert(id.to_owned(), before);
        }
    }

    fn checkin_changed<T: ReadTxn>(&mut self, txn: &T, id: &str, w: &mut Work) {
        let (parsed, problems) = read::parse_entry(txn, Root::Checkins, id, read::checkin);
        self.set_problems(Root::Checkins, id, problems);
        let existed = match self.checkin_at.remove(id) {
            Some(at) => {
                let key = (at, id.to_owned());
                if let Some(old) = self.checkins.remove(&key) {
                    self.kr_before(&old.key_result, w);
                    if let Some(set) = self.checkins_of.get_mut(&old.key_result) {
                        set.remove(&key);
                        if set.is_empty() {
                            self.checkins_of.remove(&old.key_result);
                        }
                    }
                }
                true
            }
            None => false,
        };
        if let Some(c) = parsed {
            let key = (c.at, id.to_owned());
            self.kr_before(&c.key_result, w);
            let of = self.checkins_of.entry(c.key_result.clone()).or_default();
            of.insert(key.clone());
            self.checkin_at.insert(id.to_owned(), c.at);
            self.checkins.insert(key.clone(), c);
            if !existed {
                w.new_checkins.push(key);
            }
        }
    }

    fn comment_changed<T: ReadTxn>(&mut self, txn: &T, id: &str, w: &mut Work) {
        let (parsed, problems) = read::parse_entry(txn, Root::Comments, id, read::comment);
        self.set_problems(Root::Comments, id, problems);
        let existed = match self.comment_at.remove(id) {
            Some(at) => {
                self.comments.remove(&(at, id.to_owned()));
                true
            }
            None => false,
        };
        if let Some(c) = parsed {
            let key = (c.at, id.to_owned());
            self.comment_at.insert(id.to_owned(), c.at);
            self.comments.insert(key.clone(), c);
            if !existed {
                w.new_comments.push(key);
            }
        }
    }

    /// Notes objective `id` as re-read, with all of its current state (unless already noted so).
    fn objective_before(&self, id: &str, w: &mut Work) {
        if !matches!(w.objectives.get(id), Some(Was::Entry(_))) {
            let before =
                (self.objectives.get(id)).map(|o| (Box::new(o.clone()), self.position[id]));
            w.objectives.insert(id.to_owned(), Was::Entry(before));
        }
    }

    /// Notes KR `id` for re-deriving, with its current state (the first time only).
    fn kr_before(&self, id: &str, w: &mut Work) {
        w.titles_only.remove(id);
        if !w.krs.contains_key(id) {
            let before = (self.key_result(id)).map(|k| (k.clone(), place(&self.position, k)));
            w.krs.insert(id.to_owned(), before);
        }
    }

    /// Re-derives what `w` names, re-sorts and re-lints where needed, and appends the events to
    /// `out` (if given: loading has none).
    fn finish(&mut self, mut w: Work, out: Option<&mut Vec<Event>>) {
        if w.all_krs {
            let visible: Vec<String> = (self.krs.values())
                .filter(|k| self.objectives.contains_key(&k.objective))
                .map(|k| k.id.clone())
                .collect();
            for id in visible {
                self.kr_before(&id, &mut w);
            }
        }
        if w.board_changed {
            let mut board: Vec<&Objective> = self.objectives.values().collect();
            board.sort_by(|a, b| read::objective_order(a, b));
            self.board = board.into_iter().map(|o| o.id.clone()).collect();
            self.position = (self.board.iter().enumerate())
                .map(|(i, id)| (id.clone(), i))
                .collect();
        }

        // KRs, then the objectives they roll up into.
        for id in w.krs.keys() {
            let Some(kr) = self.krs.get_mut(id) else {
                continue;
            };
            if !self.objectives.contains_key(&kr.objective) {
                continue;
            }
            if !w.titles_only.contains(id) {
                let (latest, confidence) = latest(&self.checkins_of, &self.checkins, id);
                read::derive_kr(kr, latest, confidence, &self.clock);
            }
            touch(&mut w.objectives, &kr.objective);
        }
        let mut lint_changed = w.board_changed;
        for (id, was) in w.objectives.iter_mut() {
            let Some(o) = self.objectives.get(id) else {
                continue;
            };
            let ids = self.krs_of.get(id).map(Vec::as_slice).unwrap_or_default();
            let krs: Vec<&KeyResult> = ids.iter().map(|k| &self.krs[k]).collect();
            let rolled = read::RollUp::of(krs.iter().copied());
            if o.key_results != ids || rolled != read::RollUp::current(o) {
                if let Was::Derived = was {
                    *was = Was::Entry(Some((Box::new(o.clone()), self.position[id])));
                }
                let o = self.objectives.get_mut(id).expect("present");
                if o.key_results != ids {
                    o.key_results = ids.to_vec();
                }
                rolled.set(o);
            }
            let o = &self.objectives[id];
            let mut found = Vec::new();
            lint_objective(o, krs.iter().copied(), &mut found);
            if self.lint_of.get(id) != Some(&found) {
                lint_changed = true;
                self.lint_of.insert(id.clone(), found);
            }
        }
        if lint_changed {
            let lint: Vec<LintFinding> = (self.board.iter())
                .filter_map(|id| self.lint_of.get(id))
                .flatten()
                .cloned()
                .collect();
            if lint != self.lint {
                self.lint = lint;
            } else {
                lint_changed = false;
            }
        }
        if let Some(out) = out {
            self.events(w, lint_changed, out);
        }
    }

    /// The events of a change, in [`diff`](super::diff())'s order.
    fn events(&self, w: Work, lint_changed: bool, out: &mut Vec<Event>) {
        let mut objectives: Vec<(&String, &ObjectiveBefore)> = (w.objectives.iter())
            .filter_map(|(id, was)| match was {
                Was::Entry(before) => Some((id, before)),
                Was::Derived => None,
            })
            .collect();
        objectives.sort_by_key(|(id, before)| match self.position.get(*id) {
            Some(p) if self.objectives.contains_key(*id) => (0, *p),
            _ => (1, before.as_ref().map_or(0, |(_, p)| *p)),
        });
        for (id, before) in objectives {
            match (before, self.objectives.get(id)) {
                (None, Some(after)) => out.push(Event::ObjectiveCreated {
                    objective: after.clone(),
                }),
                (Some((before, _)), Some(after)) => events::objective_events(out, before, after),
                (Some(_), None) => out.push(Event::ObjectiveRemoved {
                    objective: id.clone(),
                }),
                (None, None) => {}
            }
        }

        let mut krs: Vec<(&String, &KrBefore)> = w.krs.iter().collect();
        let key = |id: &String, before: &KrBefore| match self.key_result(id) {
            Some(k) => (0, self.position[&k.objective], k.order, id.clone()),
            None => {
                let (p, order) = before.as_ref().map_or((0, 0.0), |(_, at)| *at);
                (1, p, order, id.clone())
            }
        };
        krs.sort_by(|(a, ab), (b, bb)| {
            let (ka, kb) = (key(a, ab), key(b, bb));
            (ka.0, ka.1)
                .cmp(&(kb.0, kb.1))
                .then(ka.2.total_cmp(&kb.2))
                .then_with(|| ka.3.cmp(&kb.3))
        });
        let mut reminders = Vec::new();
        for (id, before) in krs {
            match (before, self.key_result(id)) {
                (None, Some(after)) => out.push(Event::KrCreated {
                    key_result: after.clone(),
                }),
                (Some((before, _)), Some(after)) => {
                    events::kr_events(out, before, after);
                    reminders.extend(events::reminder(before, after, self.clock.now));
                }
                (Some((before, _)), None) => out.push(Event::KrRemoved {
                    key_result: id.clone(),
                    objective: before.objective.clone(),
                }),
                (None, None) => {}
            }
        }

        let mut new = w.new_checkins;
        new.sort();
        for c in new.iter().filter_map(|k| self.checkins.get(k)) {
            events::checkin_created(out, c);
        }
        let mut new = w.new_comments;
        new.sort();
        for c in new.iter().filter_map(|k| self.comments.get(k)) {
            events::comment_created(out, c);
        }
        out.append(&mut reminders);
        if lint_changed {
            out.push(Event::LintChanged {
                lint: self.lint.clone(),
            });
        }
    }

    /// The whole set, as [`read`](super::read()) gives it at [`Projection::as_of`].
    pub fn to_set(&self) -> OkrSet {
        let mut problems = self.problems.clone();
        for k in self.krs.values() {
            if !self.objectives.contains_key(&k.objective) {
                let found = problems
                    .entry((Root::KeyResults, k.id.clone()))
                    .or_default();
                found.push(read::orphan_problem(k));
            }
        }
        OkrSet {
            as_of: self.clock.now,
            cycle: self.cycle.clone(),
            objectives: self.objectives().cloned().collect(),
            key_results: (self.objectives())
                .flat_map(|o| self.key_results_of(&o.id))
                .cloned()
                .collect(),
            checkins: self.checkins.values().cloned().collect(),
            comments: self.comments.values().cloned().collect(),
            problems: problems.into_values().flatten().collect(),
            lint: self.lint.clone(),
        }
    }

    /// The objectives in board order.
    pub fn objectives(&self) -> impl Iterator<Item = &Objective> {
        self.board.iter().filter_map(|id| self.objectives.get(id))
    }

    /// The cycle, if set and readable.
    pub fn cycle(&self) -> Option<&Cycle> {
        self.cycle.as_ref()
    }

    pub fn objective(&self, id: &str) -> Option<&Objective> {
        self.objectives.get(id)
    }

    /// A KR of the set (one whose objective exists).
    pub fn key_result(&self, id: &str) -> Option<&KeyResult> {
        self.krs
            .get(id)
            .filter(|k| self.objectives.contains_key(&k.objective))
    }

    /// An objective's KRs (archived ones included), in order.
    pub fn key_results_of(&self, objective: &str) -> impl Iterator<Item = &KeyResult> {
        let ids = match self.objectives.contains_key(objective) {
            true => self.krs_of.get(objective).map(Vec::as_slice),
            false => None,
        };
        ids.unwrap_or_default().iter().map(|k| &self.krs[k])
    }

    /// Whether entry `id` of `root` is in the doc as the projection last read it: readable or
    /// not, orphan or not.
    pub fn has_entry(&self, root: Root, id: &str) -> bool {
        let parsed = match root {
            Root::Cycle => return true,
            Root::Objectives => self.objectives.contains_key(id),
            Root::KeyResults => self.krs.contains_key(id),
            Root::Checkins => self.checkin_at.contains_key(id),
            Root::Comments => self.comment_at.contains_key(id),
        };
        parsed || self.problems.contains_key(&(root, id.to_owned()))
    }

    pub fn comment(&self, id: &str) -> Option<&Comment> {
        let at = self.comment_at.get(id)?;
        self.comments.get(&(*at, id.to_owned()))
    }

    /// The check-ins of `kr` before the one at `(at, id)`, latest first.
    pub fn checkins_before<'a>(
        &'a self,
        kr: &str,
        at: Millis,
        id: &str,
    ) -> impl Iterator<Item = &'a Checkin> + 'a {
        let key = (at, id.to_owned());
        let keys = self.checkins_of.get(kr).into_iter().flat_map(move |keys| {
            keys.range(..key.clone())
                .rev()
                .filter_map(|k| self.checkins.get(k))
        });
        keys
    }

    /// A KR's check-ins as a time series, or `None` if there is no such KR.
    pub fn kr_history(&self, kr: &str) -> Option<Vec<HistoryPoint>> {
        let k = self.key_result(kr)?;
        let keys = self.checkins_of.get(kr).into_iter().flatten();
        Some(read::kr_history(
            k,
            keys.filter_map(|key| self.checkins.get(key)),
        ))
    }
}

/// A KR's latest check-in, and the latest confidence any of its check-ins gave.
fn latest<'a>(
    checkins_of: &HashMap<String, BTreeSet<(Millis, String)>>,
    checkins: &'a BTreeMap<(Millis, String), Checkin>,
    kr: &str,
) -> (Option<&'a Checkin>, Option<u8>) {
    let Some(keys) = checkins_of.get(kr) else {
        return (None, None);
    };
    let latest = keys.last().and_then(|k| checkins.get(k));
    let confidence = (keys.iter().rev())
        .filter_map(|k| checkins.get(k)?.confidence)
        .next();
    (latest, confidence)
}
