//! The quarter's end: closing, scores, retros, the closed room's rules (commands and Yjs),
//! the review's red flags, carry-over plans and templates.

use yrs::{Map, Text, Transact};

use super::*;
use crate::okr::guard::{self, Writer};
use crate::okr::review::{markdown, review, Lang};
use crate::okr::rules::RedFlagWhy;

fn kinds(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            serde_json::to_value(e).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

fn checkin(doc: &Doc, kr: &str, value: f64, confidence: i64, at: Millis) -> String {
    ok(
        doc,
        json!({"type": "checkin.create", "key_result": kr, "value": value, "confidence": confidence}),
        at,
    )
}

/// A cycle with one objective and KRs at 70 % and 40 % (weights 1 and 1).
fn scored_room() -> (Doc, String, Vec<String>) {
    let doc = with_cycle();
    let (o, ks) = objective_with_krs(&doc, "Win 3 markets", &["k 1", "k 2"]);
    checkin(&doc, &ks[0], 70.0, 7, day(10));
    checkin(&doc, &ks[1], 40.0, 5, day(11));
    (doc, o, ks)
}

#[test]
fn closing_proposes_scores_and_weights_the_objective() {
    let (doc, o, ks) = scored_room();
    let before = snapshot(&doc, day(20));
    assert_eq!(kr(&before, &ks[0]).score, None, "no score while open");
    refused_with(
        &doc,
        json!({"type": "kr.score", "key_result": ks[0], "score": 0.9, "reason": "x"}),
        ErrorCode::CycleOpen,
    );
    refused_with(
        &doc,
        json!({"type": "objective.retro", "objective": o, "worked": "x"}),
        ErrorCode::CycleOpen,
    );

    ok(&doc, json!({"type": "cycle.close"}), day(20));
    let after = snapshot(&doc, day(20));
    let cycle = after.cycle.as_ref().unwrap();
    assert!(cycle.closed);
    assert_eq!(
        (cycle.closed_at, cycle.closed_by.as_deref()),
        (Some(day(20)), Some("alice"))
    );
    let s = kr(&after, &ks[0]).score.clone().unwrap();
    assert!(close(s.proposed, 0.7) && close(s.final_score, 0.7));
    assert!(close(
        kr(&after, &ks[1]).score.as_ref().unwrap().proposed,
        0.4
    ));
    assert!(close(objective(&after, &o).score.unwrap(), 0.55));

    let e = diff(&before, &after);
    let k = kinds(&e);
    assert_eq!(&k[..2], ["cycle.updated", "cycle.closed"]);
    assert!(
        k.iter().filter(|k| *k == "kr.updated").count() == 2,
        "{k:?}"
    );

    // The owner overrides (here everything runs as alice) with a reason; the objective follows.
    ok(
        &doc,
        json!({"type": "kr.score", "key_result": ks[1], "score": 0.6, "reason": "legal blocked us; the rest shipped"}),
        day(21),
    );
    let scored = snapshot(&doc, day(21));
    let s = kr(&scored, &ks[1]);
    assert!(close(s.score.as_ref().unwrap().final_score, 0.6));
    assert!(close(s.score.as_ref().unwrap().proposed, 0.4));
    let o2 = s.score_override.as_ref().unwrap();
    assert_eq!((o2.by.as_str(), o2.at), ("alice", day(21)));
    assert!(close(objective(&scored, &o).score.unwrap(), 0.65));
    let k = kinds(&diff(&after, &scored));
    assert!(k.contains(&"kr.scored".to_owned()), "{k:?}");

    refused_with(
        &doc,
        json!({"type": "kr.score", "key_result": ks[1], "score": 1.2, "reason": "x"}),
        ErrorCode::OutOfRange,
    );
    refused_with(
        &doc,
        json!({"type": "kr.score", "key_result": ks[1], "score": 0.5}),
        ErrorCode::InvalidValue,
    );

    ok(
        &doc,
        json!({"type": "objective.retro", "objective": o, "worked": "weekly check-ins", "did_not": "legal", "next": "start legal early"}),
        day(22),
    );
    let noted = snapshot(&doc, day(22));
    let retro = objective(&noted, &o).retro.clone().unwrap();
    assert_eq!(
        (retro.did_not.as_str(), retro.by.as_str()),
        ("legal", "alice")
    );
    assert!(kinds(&diff(&scored, &noted)).contains(&"objective.retro".to_owned()));

    // Everything else is refused, and changes nothing.
    for c in [
        json!({"type": "kr.create", "objective": o, "title": "k 3", "metric": {"kind": "percent"}}),
        json!({"type": "objective.update", "objective": o, "title": "Win 4 markets"}),
        json!({"type": "checkin.create", "key_result": ks[0], "value": 80, "confidence": 8}),
        json!({"type": "cycle.set", "starts": "2026-07-01", "ends": "2026-12-31", "cycle": "2026-Q3"}),
    ] {
        refused_with(&doc, c, ErrorCode::CycleClosed);
    }
    ok(
        &doc,
        json!({"type": "comment.create", "target": {"objective": o}, "text": "well done"}),
        day(22),
    );

    // Reopening takes scores away (kept overrides come back on the next close).
    ok(&doc, json!({"type": "cycle.reopen"}), day(23));
    let open = snapshot(&doc, day(23));
    assert!(!open.cycle.as_ref().unwrap().closed);
    assert_eq!(objective(&open, &o).score, None);
    assert!(kr(&open, &ks[1]).score_override.is_some());
    assert!(kinds(&diff(&noted, &open)).contains(&"cycle.reopened".to_owned()));
    checkin(&doc, &ks[0], 80.0, 8, day(24));
}

fn refused_with(doc: &Doc, value: Value, code: ErrorCode) {
    let before = state(doc);
    let err = run(doc, value.clone(), day(30)).expect_err(&format!("{value} should be refused"));
    assert_eq!(err.code, code, "{value}: {err:?}");
    assert_eq!(state(doc), before, "{value} changed the doc");
}

#[test]
fn a_closed_room_refuses_yjs_edits_but_scores_and_notes() {
    let (doc, o, ks) = scored_room();
    ok(&doc, json!({"type": "cycle.close"}), day(20));
    let watch = Watch::new(&doc, "test");
    let before = Projection::load(&doc.transact(), day(20));
    let entry = |root: &str, id: &str| -> yrs::MapRef {
        let map = doc.get_or_insert_map(root);
        let txn = doc.transact();
        match map.get(&txn, id) {
            Some(yrs::Out::YMap(m)) => m,
            _ => panic!("entry"),
        }
    };
    let (objective_map, kr_map) = (
        entry(schema::OBJECTIVES, &o),
        entry(schema::KEY_RESULTS, &ks[0]),
    );
    // Each edit is checked against the set before it, then undone by the next case's own
    // write (the checks only read what the edit touched).
    let check = |user: &str, admin: bool, edit: &dyn Fn(&mut yrs::TransactionMut)| {
        watch.take();
        {
            let mut txn = doc.transact_mut();
            edit(&mut txn);
        }
        let touched = watch.take();
        let writer = Writer {
            user: Some(user),
            admin,
            team_room: true,
        };
        guard::check(&doc.transact(), &before, &touched, &writer, day(20))
    };
    let title = |txn: &mut yrs::TransactionMut| {
        let Some(yrs::Out::YText(t)) = objective_map.get(txn, "title") else {
            panic!()
        };
        t.insert(txn, 0, "🚀 ");
    };
    let err = check("alice", false, &title).expect_err("a title keystroke");
    assert!(err.0.contains("closed"), "{err}");
    let weight = |txn: &mut yrs::TransactionMut| {
        kr_map.insert(txn, "weight", 5.0);
    };
    assert!(check("alice", true, &weight).is_err(), "not even an admin");
    let restore = |txn: &mut yrs::TransactionMut| {
        kr_map.insert(txn, "weight", 1.0);
    };
    let score_as = |by: &'static str| {
        let kr_map = kr_map.clone();
        move |txn: &mut yrs::TransactionMut| {
            restore(txn);
            let value =
                write_any(json!({"score": 0.9, "reason": "great", "by": by, "at": day(20)}));
            kr_map.insert(txn, "score_override", value);
        }
    };
    // alice owns every KR (she made them).
    check("alice", false, &score_as("alice")).expect("the owner scores");
    assert!(
        check("bob", false, &score_as("bob")).is_err(),
        "not bob's KR"
    );
    check("bob", true, &score_as("bob")).expect("an admin scores");
    assert!(
        check("bob", true, &score_as("alice")).is_err(),
        "as someone else"
    );
}

fn write_any(v: Value) -> yrs::Any {
    crate::okr::commands::testing::to_any(&v)
}

#[test]
fn red_flags_and_what_became_of_them() {
    let doc = with_cycle();
    let (_, ks) = objective_with_krs(&doc, "引爆新品声量", &["社群曝光达100万次"]);
    checkin(&doc, &ks[0], 20.0, 7, day(7));
    checkin(&doc, &ks[0], 25.0, 2, day(14));
    ok(
        &doc,
        json!({"type": "comment.create", "target": {"key_result": ks[0]}, "text": "换渠道？"}),
        day(15),
    );
    checkin(&doc, &ks[0], 60.0, 5, day(21));
    checkin(&doc, &ks[0], 90.0, 8, day(28));
    ok(&doc, json!({"type": "cycle.close"}), day(30));
    let r = review("acme.mkt.2026-Q3", &snapshot(&doc, day(30)));
    assert!(r.closed);
    assert_eq!(r.red_flags, 1);
    let k = &r.objectives[0].key_results[0];
    let confidences: Vec<Option<u8>> = k.history.iter().map(|p| p.confidence).collect();
    assert_eq!(confidences, [Some(7), Some(2), Some(5), Some(8)]);
    let f = &k.red_flags[0];
    assert_eq!(
        (f.confidence, f.previous, f.why),
        (2, Some(7), RedFlagWhy::LowAndDrop)
    );
    assert_eq!(f.comments.len(), 1);
    assert_eq!(f.outcome.later_checkins, 2);
    assert_eq!(f.outcome.confidence, Some(8));
    assert!(f.outcome.recovered && close(f.outcome.progress, 90.0));
    let md = markdown(&r, Lang::Zh);
    assert!(
        md.contains("引爆新品声量") && md.contains("社群曝光达100万次"),
        "{md}"
    );
    assert!(md.contains("| 0.9 | 0.9 |"), "{md}");
    assert!(md.contains("7 → 2 → 5 → 8"), "{md}");
    assert!(md.contains("换渠道？"), "{md}");
}

#[test]
fn carry_over_plans_unfinished_items_once() {
    use crate::okr::carry::{plan, CarryOver};
    let doc = with_cycle();
    let (done, _) = objective_with_krs(&doc, "Done", &["d 1"]);
    let (open, ks) = objective_with_krs(&doc, "Open", &["o 1", "o 2"]);
    let d1 = snapshot(&doc, day(1))
        .objectives
        .iter()
        .find(|o| o.id == done)
        .unwrap()
        .key_results[0]
        .clone();
    checkin(&doc, &d1, 100.0, 9, day(5));
    checkin(&doc, &ks[0], 100.0, 9, day(5));
    checkin(&doc, &ks[1], 40.0, 5, day(5));
    let source = snapshot(&doc, day(6));
    let target = Doc::new();
    let request = CarryOver {
        to: "acme.sales.2026-Q4".into(),
        objectives: None,
        targets: [(ks[1].clone(), 120.0)].into(),
    };
    let p = plan(
        "acme.sales.2026-Q3",
        &source,
        &snapshot(&target, day(6)),
        &request,
    )
    .unwrap();
    let cycle = p.cycle.as_ref().unwrap();
    assert_eq!(
        (cycle.starts.as_str(), cycle.ends.as_str()),
        ("2026-10-09", "2027-01-08")
    );
    assert_eq!(p.objectives.len(), 1);
    let o = &p.objectives[0];
    assert_eq!(o.from, open);
    assert_eq!(o.key_results.len(), 1);
    let (from, k) = &o.key_results[0];
    assert_eq!(from, &ks[1]);
    assert_eq!(
        k.metric,
        Metric::Increase {
            start: 40.0,
            target: Some(120.0),
            unit: None
        }
    );

    // Applied, the same request skips what it carried.
    let oid = ok(
        &target,
        serde_json::to_value(Command::ObjectiveCreate(o.create.clone())).unwrap(),
        day(6),
    );
    let mut kc = k.clone();
    kc.objective = oid.clone();
    ok(
        &target,
        serde_json::to_value(Command::KrCreate(kc)).unwrap(),
        day(6),
    );
    let again = plan(
        "acme.sales.2026-Q3",
        &source,
        &snapshot(&target, day(6)),
        &request,
    )
    .unwrap();
    assert!(again.objectives.is_empty());
    assert_eq!(again.skipped.len(), 2);

    let bad = CarryOver {
        targets: [(ks[0].clone(), 5.0)].into(),
        ..request.clone()
    };
    let e = plan(
        "acme.sales.2026-Q3",
        &source,
        &snapshot(&Doc::new(), day(6)),
        &bad,
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidValue);
    let bad = CarryOver {
        targets: [(ks[1].clone(), 10.0)].into(),
        ..request
    };
    let e = plan(
        "acme.sales.2026-Q3",
        &source,
        &snapshot(&Doc::new(), day(6)),
        &bad,
    )
    .unwrap_err();
    assert_eq!(
        e.field.as_deref(),
        Some(format!("targets.{}", ks[1]).as_str())
    );
}

#[test]
fn every_template_fills_a_room_in_both_languages() {
    use crate::okr::templates;
    let names: Vec<&str> = templates::builtin()
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(names, ["marketing", "engineering", "retention"]);
    for t in templates::builtin() {
        for lang in templates::LANGS {
            let doc = with_cycle();
            for (o, krs) in templates::commands(t, lang) {
                let id = ok(
                    &doc,
                    serde_json::to_value(Command::ObjectiveCreate(o)).unwrap(),
                    day(0),
                );
                for mut k in krs {
                    k.objective = id.clone();
                    ok(
                        &doc,
                        serde_json::to_value(Command::KrCreate(k)).unwrap(),
                        day(0),
                    );
                }
            }
            let set = snapshot(&doc, day(0));
            assert!(
                set.lint.iter().all(|l| l.code != LintCode::KrNoTarget
                    && l.code != LintCode::MetricDirection
                    && l.code != LintCode::KrNotMeasurable),
                "{} {lang}: {:?}",
                t.name,
                set.lint
            );
            assert!(!set.key_results.is_empty());
        }
    }
    let zh: Vec<String> = templates::builtin()
        .iter()
        .flat_map(|t| &t.objectives)
        .flat_map(|o| {
            std::iter::once(o.title.zh.clone())
                .chain(o.key_results.iter().map(|k| k.title.zh.clone()))
        })
        .collect();
    for want in [
        "引爆新品声量",
        "社群曝光达100万次",
        "打造稳定后台",
        "API错误率降至0.1%以下",
        "Q3让用户留存率突破40%",
        "每周新增500活跃用户",
        "客服回应时间压缩至2分钟内",
        "双周迭代上线3次，Bug率低于0.5%",
    ] {
        assert!(zh.iter().any(|t| t == want), "{want}");
    }
}
