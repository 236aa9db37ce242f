//! The incremental projection against the full read: random sequences of edits — Yjs clients
//! writing anything anywhere (valid entries, garbage, removals, keystrokes, several edits in one
//! transaction), commands, and the clock moving — and after every step the projection's set
//! must equal a full read, and its events the diff of the full reads around the step.

use proptest::prelude::*;
use serde_json::json;
use yrs::{Any, Map, MapPrelim, MapRef, Text, TextPrelim, TextRef, WriteTxn};

use super::*;

/// Small id spaces, so edits collide: the same entry written, garbled, removed, revived.
const OBJECTIVES: u8 = 3;
const KRS: u8 = 4;
const CHECKINS: u8 = 8;
const COMMENTS: u8 = 4;

const TITLES: &[&str] = &[
    "",
    "  ",
    "提升用户满意度",
    "Q3让用户留存率突破40%",
    "Ship 3 features",
    "improve things",
    "客服回应时间压缩至2分钟内",
    "x",
];

#[derive(Debug, Clone)]
enum Edit {
    PutObjective {
        id: u8,
        title: usize,
        order: i8,
        archived: bool,
    },
    PutKr {
        id: u8,
        objective: u8,
        title: usize,
        order: i8,
        metric: u8,
        weight: u8,
        cadence: u8,
        archived: bool,
    },
    /// Types into the title `Y.Text` of an objective (`kr: false`) or KR, if it has one.
    Type {
        kr: bool,
        id: u8,
        text: usize,
        delete: bool,
    },
    /// Sets one plain field of an objective or KR in place.
    SetField {
        kr: bool,
        id: u8,
        field: u8,
        value: i16,
    },
    /// Puts a number where an entry's map belongs.
    Garbage {
        root: u8,
        id: u8,
    },
    Remove {
        root: u8,
        id: u8,
    },
    PutCheckin {
        id: u8,
        kr: u8,
        day: u8,
        value: i16,
        confidence: u8,
        mentions: u8,
    },
    PutComment {
        id: u8,
        target: u8,
        day: u8,
        mentions: u8,
    },
    Cycle(u8),
}

#[derive(Debug, Clone)]
enum Cmd {
    ObjectiveCreate(usize),
    ObjectiveUpdate(usize),
    ObjectiveArchive,
    ObjectiveReorder(u8),
    ObjectiveAlign,
    KrCreate(u8),
    KrUpdate(i16),
    KrArchive,
    KrReorder(u8),
    Checkin(i16, u8),
    Comment(u8),
}

#[derive(Debug, Clone)]
enum Op {
    /// Several Yjs edits in one transaction.
    Yjs(Vec<Edit>),
    /// A command about the `pick`-th objective / KR of the set (modulo their number).
    Command(Cmd, usize, usize),
    /// The clock moves on by this many hours.
    Tick(u16),
}

fn edit() -> impl Strategy<Value = Edit> {
    let title = 0..TITLES.len();
    prop_oneof![
        (0..OBJECTIVES, title.clone(), -3i8..4, any::<bool>()).prop_map(
            |(id, title, order, archived)| Edit::PutObjective {
                id,
                title,
                order,
                archived: archived && id % 2 == 0,
            }
        ),
        (
            0..KRS,
            0..OBJECTIVES + 1,
            title.clone(),
            -3i8..4,
            0u8..7,
            0u8..4,
            0u8..3,
            any::<bool>()
        )
            .prop_map(
                |(id, objective, title, order, metric, weight, cadence, archived)| Edit::PutKr {
                    id,
                    objective,
                    title,
                    order,
                    metric,
                    weight,
                    cadence,
                    archived: archived && id % 3 == 0,
                }
            ),
        (any::<bool>(), 0..KRS, title.clone(), any::<bool>()).prop_map(|(kr, id, text, delete)| {
            Edit::Type {
                kr,
                id,
                text,
                delete,
            }
        }),
        (any::<bool>(), 0..KRS, 0u8..6, -2i16..120).prop_map(|(kr, id, field, value)| {
            Edit::SetField {
                kr,
                id,
                field,
                value,
            }
        }),
        (0u8..5, 0..KRS).prop_map(|(root, id)| Edit::Garbage { root, id }),
        (0u8..5, 0..CHECKINS).prop_map(|(root, id)| Edit::Remove { root, id }),
        (
            0..CHECKINS,
            0..KRS + 1,
            0u8..120,
            -10i16..150,
            0u8..12,
            0u8..3
        )
            .prop_map(
                |(id, kr, day, value, confidence, mentions)| Edit::PutCheckin {
                    id,
                    kr,
                    day,
                    value,
                    confidence,
                    mentions,
                }
            ),
        (0..COMMENTS, 0u8..12, 0u8..120, 0u8..3).prop_map(|(id, target, day, mentions)| {
            Edit::PutComment {
                id,
                target,
                day,
                mentions,
            }
        }),
        (0u8..4).prop_map(Edit::Cycle),
    ]
}

fn command() -> impl Strategy<Value = Cmd> {
    prop_oneof![
        (0..TITLES.len()).prop_map(Cmd::ObjectiveCreate),
        (0..TITLES.len()).prop_map(Cmd::ObjectiveUpdate),
        Just(Cmd::ObjectiveArchive),
        (0u8..5).prop_map(Cmd::ObjectiveReorder),
        Just(Cmd::ObjectiveAlign),
        (0u8..5).prop_map(Cmd::KrCreate),
        (-5i16..300).prop_map(Cmd::KrUpdate),
        Just(Cmd::KrArchive),
        (0u8..5).prop_map(Cmd::KrReorder),
        (-5i16..150, 0u8..11).prop_map(|(v, c)| Cmd::Checkin(v, c)),
        (0u8..3).prop_map(Cmd::Comment),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => prop::collection::vec(edit(), 1..5).prop_map(Op::Yjs),
        4 => (command(), any::<usize>(), any::<usize>()).prop_map(|(c, o, k)| Op::Command(c, o, k)),
        1 => (1u16..24 * 20).prop_map(Op::Tick),
    ]
}

fn objective_id(i: u8) -> String {
    format!("o{i}")
}

fn kr_id(i: u8) -> String {
    format!("k{i}")
}

fn users(n: u8) -> Vec<&'static str> {
    ["bob", "li", "wang"][..usize::from(n)].to_vec()
}

fn metric(kind: u8) -> Any {
    match kind {
        0 => yrs::any!({"kind": "percent"}),
        1 => yrs::any!({"kind": "increase", "start": 0, "target": 100}),
        2 => yrs::any!({"kind": "decrease", "start": 10, "target": 2}),
        3 => yrs::any!({"kind": "stay_above", "threshold": 50}),
        4 => {
            yrs::any!({"kind": "milestone", "milestones": [{"title": "a", "done": true}, {"title": "b"}]})
        }
        5 => yrs::any!({"kind": "increase", "start": 5, "target": 1}),
        _ => yrs::any!({"kind": "sideways"}),
    }
}

fn root_name(root: u8) -> &'static str {
    Root::ALL[usize::from(root) % Root::ALL.len()].name()
}

/// The `Y.Map` of KR `id` (`kr`) or of objective `id` (modulo their number), if it is one.
fn entry_map(txn: &yrs::TransactionMut, kr: bool, id: u8) -> Option<MapRef> {
    let (root, id) = match kr {
        true => (schema::KEY_RESULTS, kr_id(id)),
        false => (schema::OBJECTIVES, objective_id(id % OBJECTIVES)),
    };
    txn.get_map(root)?.get(txn, &id)?.cast::<MapRef>().ok()
}

fn yjs(txn: &mut yrs::TransactionMut, edit: &Edit) {
    match edit {
        Edit::PutObjective {
            id,
            title,
            order,
            archived,
        } => {
            let root = txn.get_or_insert_map(schema::OBJECTIVES);
            let m = root.insert(txn, objective_id(*id), MapPrelim::default());
            m.insert(txn, "title", TextPrelim::new(TITLES[*title]));
            m.insert(txn, "description", TextPrelim::new("why"));
            m.insert(txn, "order", f64::from(*order));
            m.insert(txn, "owner", "ann");
            if *archived {
                m.insert(txn, "status", "archived");
            }
        }
        Edit::PutKr {
            id,
            objective,
            title,
            order,
            metric: kind,
            weight,
            cadence,
            archived,
        } => {
            let root = txn.get_or_insert_map(schema::KEY_RESULTS);
            let m = root.insert(txn, kr_id(*id), MapPrelim::default());
            m.insert(txn, "objective", objective_id(*objective));
            m.insert(txn, "title", TextPrelim::new(TITLES[*title]));
            m.insert(txn, "order", f64::from(*order));
            m.insert(txn, "metric", metric(*kind));
            m.insert(txn, "weight", f64::from(*weight));
            m.insert(txn, "cadence_days", f64::from(*cadence) * 7.0);
            m.insert(txn, "created_at", day(i64::from(*id)) as f64);
            if *archived {
                m.insert(txn, "status", "archived");
            }
        }
        Edit::Type {
            kr,
            id,
            text,
            delete,
        } => {
            let Some(m) = entry_map(txn, *kr, *id) else {
                return;
            };
            // Objectives' descriptions too (every other objective), and — to check the short
            // way is refused — a KR's description, which KRs do not have.
            let field = if *text % 3 == 0 {
                "description"
            } else {
                "title"
            };
            let Some(title) = m.get(txn, field).and_then(|t| t.cast::<TextRef>().ok()) else {
                return;
            };
            if *delete && title.len(txn) > 0 {
                title.remove_range(txn, 0, 1);
            } else {
                let at = title.len(txn);
                title.insert(txn, at, TITLES[*text]);
            }
        }
        Edit::SetField {
            kr,
            id,
            field,
            value,
        } => {
            let Some(m) = entry_map(txn, *kr, *id) else {
                return;
            };
            let v = f64::from(*value);
            if *field == 5 && value % 2 == 0 {
                // A KR's description as a Y.Text: not one of its fields.
                m.insert(txn, "description", TextPrelim::new("x"));
                return;
            }
            match field {
                0 => {
                    m.insert(txn, "order", v / 10.0);
                }
                1 => {
                    let status =
                        ["active", "archived", "paused"][value.unsigned_abs() as usize % 3];
                    m.insert(txn, "status", status);
                }
                2 => {
                    let o = objective_id((value.unsigned_abs() % 5) as u8);
                    m.insert(txn, "objective", o);
                }
                3 => {
                    m.insert(txn, "weight", v);
                }
                4 => {
                    m.insert(txn, "metric", metric((value.unsigned_abs() % 7) as u8));
                }
                _ => {
                    m.insert(txn, "title", v);
                }
            }
        }
        Edit::Garbage { root, id } => {
            let root = txn.get_or_insert_map(root_name(*root));
            let id = match id % 2 {
                0 => objective_id(*id % OBJECTIVES),
                _ => kr_id(*id),
            };
            root.insert(txn, id, 7.0);
        }
        Edit::Remove { root, id } => {
            let name = root_name(*root);
            let root = txn.get_or_insert_map(name);
            let id = match name {
                schema::OBJECTIVES => objective_id(*id % OBJECTIVES),
                schema::KEY_RESULTS => kr_id(*id % KRS),
                schema::CHECKINS => format!("c{id}"),
                schema::COMMENTS => format!("m{}", id % COMMENTS),
                _ => "id".into(),
            };
            root.remove(txn, &id);
        }
        Edit::PutCheckin {
            id,
            kr,
            day: d,
            value,
            confidence,
            mentions,
        } => {
            let root = txn.get_or_insert_map(schema::CHECKINS);
            let mentions: Vec<Any> = users(*mentions).into_iter().map(Any::from).collect();
            let c = Any::from(std::collections::HashMap::from([
                ("key_result".to_owned(), Any::from(kr_id(*kr))),
                ("author".to_owned(), Any::from("ann")),
                ("at".to_owned(), Any::from(day(i64::from(*d)) as f64)),
                ("value".to_owned(), Any::from(f64::from(*value))),
                ("confidence".to_owned(), Any::from(f64::from(*confidence))),
                ("comment".to_owned(), Any::from("on it")),
                ("mentions".to_owned(), Any::from(mentions)),
            ]));
            root.insert(txn, format!("c{id}"), c);
        }
        Edit::PutComment {
            id,
            target,
            day: d,
            mentions,
        } => {
            let root = txn.get_or_insert_map(schema::COMMENTS);
            let target = match target % 2 {
                0 => yrs::any!({"objective": objective_id(target / 2 % OBJECTIVES)}),
                _ => yrs::any!({"key_result": kr_id(target / 2 % KRS)}),
            };
            let mentions: Vec<Any> = users(*mentions).into_iter().map(Any::from).collect();
            let c = Any::from(std::collections::HashMap::from([
                ("target".to_owned(), target),
                ("author".to_owned(), Any::from("li")),
                ("at".to_owned(), Any::from(day(i64::from(*d)) as f64)),
                ("text".to_owned(), Any::from("looks good")),
                ("mentions".to_owned(), Any::from(mentions)),
            ]));
            root.insert(txn, format!("m{id}"), c);
        }
        Edit::Cycle(kind) => {
            let cycle = txn.get_or_insert_map(schema::CYCLE);
            match kind {
                0 => cycle.clear(txn),
                1 => {
                    cycle.insert(txn, "id", "2026-Q3");
                    cycle.insert(txn, "starts", "2026-07-01");
                    cycle.insert(txn, "ends", "2026-10-08");
                }
                2 => {
                    cycle.insert(txn, "id", "2026-H2");
                    cycle.insert(txn, "starts", "2026-07-01");
                    cycle.insert(txn, "ends", "2026-12-31");
                }
                _ => {
                    cycle.insert(txn, "ends", "someday");
                }
            }
        }
    }
}

/// The command `cmd` about the `o`-th objective and `k`-th KR of the set, as JSON.
fn command_json(set: &OkrSet, cmd: &Cmd, o: usize, k: usize) -> Option<serde_json::Value> {
    let obj = (!set.objectives.is_empty()).then(|| &set.objectives[o % set.objectives.len()]);
    let kr = (!set.key_results.is_empty()).then(|| &set.key_results[k % set.key_results.len()]);
    Some(match cmd {
        Cmd::ObjectiveCreate(t) => json!({"type": "objective.create", "title": TITLES[*t]}),
        Cmd::ObjectiveUpdate(t) => {
            json!({"type": "objective.update", "objective": obj?.id, "title": TITLES[*t]})
        }
        Cmd::ObjectiveArchive => json!({"type": "objective.archive", "objective": obj?.id}),
        Cmd::ObjectiveReorder(i) => {
            json!({"type": "objective.reorder", "objective": obj?.id, "index": i})
        }
        Cmd::ObjectiveAlign => {
            let id = &obj?.id;
            let parent = &set.objectives[(o + 1) % set.objectives.len()];
            json!({"type": "objective.align", "objective": id, "add": [{"objective": parent.id}]})
        }
        Cmd::KrCreate(kind) => json!({"type": "kr.create", "objective": obj?.id,
            "title": "Sign 3 logos", "metric": serde_json::to_value(metric(*kind)).ok()?}),
        Cmd::KrUpdate(target) => {
            json!({"type": "kr.update", "key_result": kr?.id, "why": "new data",
            "metric": {"kind": "increase", "start": 0, "target": target}})
        }
        Cmd::KrArchive => json!({"type": "kr.archive", "key_result": kr?.id}),
        Cmd::KrReorder(i) => json!({"type": "kr.reorder", "key_result": kr?.id, "index": i}),
        Cmd::Checkin(value, confidence) => json!({"type": "checkin.create", "key_result": kr?.id,
            "value": value, "confidence": confidence, "comment": "@bob see", "mentions": ["bob"]}),
        Cmd::Comment(n) => {
            json!({"type": "comment.create", "target": {"key_result": kr?.id}, "text": "ok", "mentions": users(*n)})
        }
    })
}

/// A doc whose OKR roots report what each transaction touched, like the room's.
fn observed() -> (Doc, Watch) {
    // Text offsets in UTF-16 code units, as JS clients count them (a byte offset could split
    // a Chinese character).
    let doc = Doc::with_options(yrs::Options {
        offset_kind: yrs::OffsetKind::Utf16,
        ..yrs::Options::default()
    });
    let touched = Watch::new(&doc, "test");
    (doc, touched)
}

/// Runs `ops` and checks the projection against full reads after each.
fn check(ops: &[Op]) -> Result<(), TestCaseError> {
    let (doc, touched) = observed();
    let mut p = Projection::load(&doc.transact(), day(0));
    for (step, op) in ops.iter().enumerate() {
        let before = read(&doc.transact(), p.as_of());
        let events = match op {
            Op::Tick(hours) => p.tick(p.as_of() + i64::from(*hours) * 3_600_000),
            Op::Yjs(edits) => {
                {
                    let mut txn = doc.transact_mut();
                    for e in edits {
                        yjs(&mut txn, e);
                    }
                }
                let t = touched.take();
                p.apply(&doc.transact(), &t)
            }
            Op::Command(cmd, o, k) => {
                let Some(c) = command_json(&before, cmd, *o, *k) else {
                    continue;
                };
                let Ok(c) = serde_json::from_value::<Command>(c) else {
                    continue;
                };
                {
                    let mut txn = doc.transact_mut();
                    // Refused or not: a refused command must change nothing.
                    let _ = apply_in_room(&mut txn, "t.room.q3", &p, &c, "ann", p.as_of());
                }
                let t = touched.take();
                p.apply(&doc.transact(), &t)
            }
        };
        let after = read(&doc.transact(), p.as_of());
        same_patches(&before, &after)?;
        prop_assert_eq!(&p.to_set(), &after, "model after step {}: {:?}", step, op);
        prop_assert_eq!(
            &events,
            &diff(&before, &after),
            "events of step {}: {:?}",
            step,
            op
        );
    }
    Ok(())
}

/// The field-by-field comparison events use agrees with comparing the entries' JSON.
fn same_patches(before: &OkrSet, after: &OkrSet) -> Result<(), TestCaseError> {
    use crate::okr::events::testing::{kr_patch, objective_patch, patch_by_json};
    for a in &after.objectives {
        if let Some(b) = before.objectives.iter().find(|b| b.id == a.id) {
            prop_assert_eq!(objective_patch(b, a), patch_by_json(b, a));
        }
    }
    for a in &after.key_results {
        if let Some(b) = before.key_results.iter().find(|b| b.id == a.id) {
            prop_assert_eq!(kr_patch(b, a), patch_by_json(b, a));
        }
    }
    Ok(())
}

/// 300 cases by default; `PROPTEST_CASES=5000` for a longer search.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn the_projection_is_a_full_read_and_its_events_the_diff(ops in prop::collection::vec(op(), 1..60)) {
        check(&ops)?;
    }
}

/// The property's own check can fail: a projection that skips a touched entry drifts.
#[test]
fn a_missed_entry_is_caught() {
    let (doc, touched) = observed();
    let mut p = Projection::load(&doc.transact(), day(0));
    {
        let mut txn = doc.transact_mut();
        yjs(
            &mut txn,
            &Edit::PutObjective {
                id: 1,
                title: 4,
                order: 1,
                archived: false,
            },
        );
    }
    let mut t = touched.take();
    assert_eq!(t.objectives.len(), 1, "the observer saw the objective");
    t.objectives.clear();
    p.apply(&doc.transact(), &t);
    assert_ne!(p.to_set(), read(&doc.transact(), p.as_of()));
}

/// A keystroke in a KR title re-reads that KR and its objective, nothing else: the set's
/// other entries are not in what the transaction touched.
#[test]
fn a_keystroke_touches_one_entry() {
    let (doc, touched) = observed();
    let mut txn = doc.transact_mut();
    for i in 0..3 {
        yjs(
            &mut txn,
            &Edit::PutObjective {
                id: i,
                title: 3,
                order: i as i8,
                archived: false,
            },
        );
    }
    for i in 0..50 {
        yjs(
            &mut txn,
            &Edit::PutCheckin {
                id: i % CHECKINS,
                kr: 0,
                day: i,
                value: 3,
                confidence: 7,
                mentions: 0,
            },
        );
    }
    yjs(
        &mut txn,
        &Edit::PutKr {
            id: 0,
            objective: 0,
            title: 4,
            order: 0,
            metric: 1,
            weight: 1,
            cadence: 1,
            archived: false,
        },
    );
    drop(txn);
    let mut p = Projection::load(&doc.transact(), day(30));
    touched.take();
    yjs(
        &mut doc.transact_mut(),
        &Edit::Type {
            kr: true,
            id: 0,
            text: 4,
            delete: false,
        },
    );
    let t = touched.take();
    let expected = Touched {
        key_results: [("k0".to_owned(), Scope::Text(["title"].into()))].into(),
        ..Touched::default()
    };
    assert_eq!(t, expected);
    let events = p.apply(&doc.transact(), &t);
    assert_eq!(events.len(), 1, "{events:?}");
    let Event::KrUpdated { fields, .. } = &events[0] else {
        panic!("{events:?}");
    };
    assert_eq!(fields.keys().collect::<Vec<_>>(), ["title"]);
}
