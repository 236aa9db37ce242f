//! Every command's happy path, every error code, and "a refused command changes nothing".

use super::*;

/// Asserts `value` is refused with `code` on `field`, and that the doc did not change at all.
fn refused(doc: &Doc, value: Value, code: ErrorCode, field: Option<&str>) {
    let before = state(doc);
    let err = run(doc, value.clone(), day(5)).expect_err(&format!("{value} should be refused"));
    assert_eq!(err.code, code, "{value}: {err:?}");
    assert_eq!(err.field.as_deref(), field, "{value}: {err:?}");
    assert_eq!(
        state(doc),
        before,
        "{value} was refused but changed the doc"
    );
}

#[test]
fn objective_lifecycle() {
    let doc = with_cycle();
    let o = ok(
        &doc,
        json!({"type": "objective.create", "title": "Win EU", "aligned_to": [{"room": "acme.2026-Q3", "key_result": "kr-ceo"}]}),
        day(1),
    );
    assert!(o.starts_with("o-") && o.len() == 10, "{o}");
    let set = snapshot(&doc, day(1));
    let obj = objective(&set, &o);
    assert_eq!(obj.title, "Win EU");
    assert_eq!(obj.owner.as_deref(), Some("alice"));
    assert_eq!(
        (obj.kind, obj.visibility, obj.commitment),
        (
            ObjectiveKind::Team,
            Visibility::Public,
            Commitment::Committed
        )
    );
    assert_eq!(
        (obj.created_at, obj.created_by.as_deref()),
        (day(1), Some("alice"))
    );
    assert_eq!(obj.aligned_to[0].key_result.as_deref(), Some("kr-ceo"));

    ok(
        &doc,
        json!({"type": "objective.update", "objective": o, "title": "Win the EU", "description": "why",
               "owner": "bob", "team": "sales", "visibility": "team", "commitment": "aspirational", "kind": "personal"}),
        day(2),
    );
    let set = snapshot(&doc, day(2));
    let obj = objective(&set, &o);
    assert_eq!(
        (obj.title.as_str(), obj.description.as_str()),
        ("Win the EU", "why")
    );
    assert_eq!(
        (obj.owner.as_deref(), obj.team.as_deref()),
        (Some("bob"), Some("sales"))
    );
    assert_eq!(
        (obj.visibility, obj.commitment, obj.kind),
        (
            Visibility::Team,
            Commitment::Aspirational,
            ObjectiveKind::Personal
        )
    );
    assert_eq!(
        (obj.updated_at, obj.updated_by.as_deref()),
        (day(2), Some("alice"))
    );

    ok(
        &doc,
        json!({"type": "objective.archive", "objective": o}),
        day(3),
    );
    assert!(snapshot(&doc, day(3)).objectives[0].archived);
    ok(
        &doc,
        json!({"type": "objective.archive", "objective": o, "archived": false}),
        day(3),
    );
    assert!(!snapshot(&doc, day(3)).objectives[0].archived);
}

#[test]
fn reorder_objectives_and_krs() {
    let doc = with_cycle();
    let a = ok(
        &doc,
        json!({"type": "objective.create", "title": "A"}),
        day(0),
    );
    let b = ok(
        &doc,
        json!({"type": "objective.create", "title": "B"}),
        day(0),
    );
    let c = ok(
        &doc,
        json!({"type": "objective.create", "title": "C"}),
        day(0),
    );
    let ids = |doc: &Doc| -> Vec<String> {
        snapshot(doc, day(1))
            .objectives
            .into_iter()
            .map(|o| o.id)
            .collect()
    };
    ok(
        &doc,
        json!({"type": "objective.reorder", "objective": c, "index": 0}),
        day(1),
    );
    assert_eq!(ids(&doc), vec![c.clone(), a.clone(), b.clone()]);
    ok(
        &doc,
        json!({"type": "objective.reorder", "objective": c, "index": 1}),
        day(1),
    );
    assert_eq!(ids(&doc), vec![a.clone(), c.clone(), b.clone()]);
    ok(
        &doc,
        json!({"type": "objective.reorder", "objective": a, "index": 99}),
        day(1),
    );
    assert_eq!(ids(&doc), vec![c.clone(), b.clone(), a.clone()]);

    let (_, ks) = objective_with_krs(&doc, "O", &["k 1", "k 2", "k 3"]);
    ok(
        &doc,
        json!({"type": "kr.reorder", "key_result": ks[2], "index": 0}),
        day(1),
    );
    let set = snapshot(&doc, day(1));
    let order: Vec<&str> = set.key_results.iter().map(|k| k.id.as_str()).collect();
    assert_eq!(order, vec![ks[2].as_str(), ks[0].as_str(), ks[1].as_str()]);
}

#[test]
fn reorder_renumbers_when_neighbours_tie() {
    // Two Yjs clients created objectives with the same order.
    let doc = with_cycle();
    let ids: Vec<String> = (0..3)
        .map(|i| {
            ok(
                &doc,
                json!({"type": "objective.create", "title": format!("O{i}")}),
                day(0),
            )
        })
        .collect();
    {
        use yrs::{Map, MapRef, WriteTxn};
        let mut txn = doc.transact_mut();
        let root = txn.get_or_insert_map(schema::OBJECTIVES);
        for id in &ids {
            let m = root
                .get(&txn, id)
                .and_then(|v| v.cast::<MapRef>().ok())
                .expect("map");
            m.insert(&mut txn, "order", 5.0);
        }
    }
    let mut sorted = ids.clone();
    sorted.sort();
    // Move the last (by id) between the first two, which tie.
    ok(
        &doc,
        json!({"type": "objective.reorder", "objective": sorted[2], "index": 1}),
        day(1),
    );
    let got: Vec<String> = snapshot(&doc, day(1))
        .objectives
        .into_iter()
        .map(|o| o.id)
        .collect();
    assert_eq!(
        got,
        vec![sorted[0].clone(), sorted[2].clone(), sorted[1].clone()]
    );
}

#[test]
fn align_set_add_remove_and_cycles() {
    let doc = with_cycle();
    let (o1, k1) = objective_with_krs(&doc, "O1", &["k 1"]);
    let (o2, _) = objective_with_krs(&doc, "O2", &["k 2"]);
    let o3 = ok(
        &doc,
        json!({"type": "objective.create", "title": "O3"}),
        day(0),
    );
    let remote = json!({"room": "acme.2026-Q3", "objective": "o-ceo"});
    ok(
        &doc,
        json!({"type": "objective.align", "objective": o2, "set": [remote, {"objective": o1}]}),
        day(1),
    );
    ok(
        &doc,
        json!({"type": "objective.align", "objective": o2, "remove": [remote], "add": [{"key_result": k1[0]}]}),
        day(1),
    );
    let set = snapshot(&doc, day(1));
    let parents = &objective(&set, &o2).aligned_to;
    assert_eq!(parents.len(), 2);
    assert_eq!(parents[0].objective.as_deref(), Some(o1.as_str()));
    assert_eq!(parents[1].key_result.as_deref(), Some(k1[0].as_str()));
    // o3 → o2 is fine; o1 → o3 would close o1 → o3 → o2 → o1.
    ok(
        &doc,
        json!({"type": "objective.align", "objective": o3, "add": [{"objective": o2}]}),
        day(1),
    );
    refused(
        &doc,
        json!({"type": "objective.align", "objective": o1, "add": [{"objective": o3}]}),
        ErrorCode::AlignmentCycle,
        Some("add[0]"),
    );
    // Self, directly or through its own KR.
    refused(
        &doc,
        json!({"type": "objective.align", "objective": o1, "add": [{"objective": o1}]}),
        ErrorCode::AlignmentCycle,
        Some("add[0]"),
    );
    refused(
        &doc,
        json!({"type": "objective.align", "objective": o1, "add": [{"key_result": k1[0]}]}),
        ErrorCode::AlignmentCycle,
        Some("add[0]"),
    );
    // With the room known, a ref naming it is local too.
    let before = state(&doc);
    let err = {
        let mut txn = doc.transact_mut();
        let c = cmd(
            json!({"type": "objective.align", "objective": o1, "add": [{"room": "acme.sales.2026-Q3", "objective": o1}]}),
        );
        let view = Projection::load(&txn, day(1));
        apply_in_room(&mut txn, "acme.sales.2026-Q3", &view, &c, "alice", day(1)).expect_err("self")
    };
    assert_eq!(err.code, ErrorCode::AlignmentCycle);
    assert_eq!(state(&doc), before);
    // A local parent that does not exist; a ref with neither or both.
    refused(
        &doc,
        json!({"type": "objective.align", "objective": o1, "add": [{"objective": "o-nope"}]}),
        ErrorCode::NotFound,
        Some("add[0]"),
    );
    refused(
        &doc,
        json!({"type": "objective.align", "objective": o1, "add": [{"room": "x"}]}),
        ErrorCode::MissingField,
        Some("add[0].objective"),
    );
    refused(
        &doc,
        json!({"type": "objective.align", "objective": o1, "add": [{"objective": o2, "key_result": "k"}]}),
        ErrorCode::InvalidValue,
        Some("add[0].key_result"),
    );
    let many: Vec<Value> = (0..11)
        .map(|i| json!({"room": "r", "objective": format!("x{i}")}))
        .collect();
    refused(
        &doc,
        json!({"type": "objective.align", "objective": o1, "add": many}),
        ErrorCode::TooMany,
        Some("add"),
    );
}

#[test]
fn every_metric_kind_can_be_created() {
    let doc = with_cycle();
    let o = ok(
        &doc,
        json!({"type": "objective.create", "title": "O"}),
        day(0),
    );
    for metric in [
        json!({"kind": "percent"}),
        json!({"kind": "increase", "start": 100, "target": 500, "unit": "users"}),
        json!({"kind": "decrease", "start": 10, "target": 2, "unit": "min"}),
        json!({"kind": "stay_above", "threshold": 99.9, "unit": "%"}),
        json!({"kind": "stay_below", "threshold": 0.1, "unit": "%"}),
        json!({"kind": "milestone", "milestones": [{"title": "beta", "weight": 2}, {"title": "GA"}]}),
    ] {
        let k = ok(
            &doc,
            json!({"type": "kr.create", "objective": o, "title": "k 1", "metric": metric, "weight": 2, "cadence_days": 14}),
            day(0),
        );
        let set = snapshot(&doc, day(0));
        let kr = kr(&set, &k);
        let expected: Metric = serde_json::from_value(metric.clone()).expect("metric");
        assert_eq!(kr.metric, expected);
        assert_eq!(
            (kr.weight, kr.cadence_days, kr.owner.as_deref()),
            (2.0, 14, Some("alice"))
        );
    }
}

#[test]
fn kr_update_records_revisions() {
    let doc = with_cycle();
    let (o, ks) = objective_with_krs(&doc, "O", &["k 1"]);
    ok(
        &doc,
        json!({"type": "kr.update", "key_result": ks[0], "why": "scope grew",
               "metric": {"kind": "increase", "start": 0, "target": 150}, "title": "k 150", "owner": "bob"}),
        day(9),
    );
    let set = snapshot(&doc, day(9));
    let k = kr(&set, &ks[0]);
    assert_eq!(k.title, "k 150");
    assert_eq!(k.revisions.len(), 1);
    let r = &k.revisions[0];
    assert_eq!(
        (r.at, r.by.as_str(), r.why.as_str()),
        (day(9), "alice", "scope grew")
    );
    assert_eq!(
        r.old,
        Metric::Increase {
            start: 0.0,
            target: Some(100.0),
            unit: None
        }
    );
    assert_eq!(
        r.new,
        Metric::Increase {
            start: 0.0,
            target: Some(150.0),
            unit: None
        }
    );
    // A weight change is no revision.
    ok(
        &doc,
        json!({"type": "kr.update", "key_result": ks[0], "weight": 3}),
        day(9),
    );
    assert_eq!(kr(&snapshot(&doc, day(9)), &ks[0]).revisions.len(), 1);
    // Moving to another objective.
    let o2 = ok(
        &doc,
        json!({"type": "objective.create", "title": "O2"}),
        day(9),
    );
    ok(
        &doc,
        json!({"type": "kr.update", "key_result": ks[0], "objective": o2}),
        day(9),
    );
    let set = snapshot(&doc, day(9));
    assert_eq!(kr(&set, &ks[0]).objective, o2);
    assert!(objective(&set, &o).key_results.is_empty());
}

#[test]
fn milestone_done_flags_are_no_revision() {
    let doc = with_cycle();
    let o = ok(
        &doc,
        json!({"type": "objective.create", "title": "O"}),
        day(0),
    );
    let m =
        json!({"kind": "milestone", "milestones": [{"title": "a"}, {"title": "b", "weight": 3}]});
    let k = ok(
        &doc,
        json!({"type": "kr.create", "objective": o, "title": "ship", "metric": m}),
        day(0),
    );
    let id = ok(
        &doc,
        json!({"type": "checkin.create", "key_result": k, "milestones": [false, true], "confidence": 8}),
        day(3),
    );
    let set = snapshot(&doc, day(3));
    assert!(close(kr(&set, &k).progress, 75.0));
    assert!(kr(&set, &k).revisions.is_empty());
    let c = set.checkins.iter().find(|c| c.id == id).expect("check-in");
    assert_eq!(
        (c.value, c.milestones.clone()),
        (75.0, Some(vec![false, true]))
    );
    refused(
        &doc,
        json!({"type": "checkin.create", "key_result": k, "value": 50, "confidence": 8}),
        ErrorCode::InvalidValue,
        Some("value"),
    );
    refused(
        &doc,
        json!({"type": "checkin.create", "key_result": k, "confidence": 8}),
        ErrorCode::MissingField,
        Some("milestones"),
    );
    refused(
        &doc,
        json!({"type": "checkin.create", "key_result": k, "milestones": [true], "confidence": 8}),
        ErrorCode::InvalidValue,
        Some("milestones"),
    );
}

#[test]
fn checkins_and_comments() {
    let doc = with_cycle();
    let (o, ks) = objective_with_krs(&doc, "O", &["k 1"]);
    let c = ok(
        &doc,
        json!({"type": "checkin.create", "key_result": ks[0], "value": 40, "confidence": 6,
               "comment": "卡在法务", "mentions": ["wang", "wang", "li"]}),
        day(7),
    );
    let set = snapshot(&doc, day(7));
    let ci = &set.checkins[0];
    assert_eq!(ci.id, c);
    assert_eq!(
        (ci.author.as_str(), ci.at, ci.value, ci.confidence),
        ("alice", day(7), 40.0, Some(6))
    );
    assert_eq!(ci.mentions, vec!["wang", "li"], "duplicates dropped");
    assert_eq!(kr(&set, &ks[0]).status, Status::AtRisk);

    let m = ok(
        &doc,
        json!({"type": "comment.create", "target": {"objective": o}, "text": "nice", "mentions": ["bob"]}),
        day(8),
    );
    let r = ok(
        &doc,
        json!({"type": "comment.create", "target": {"objective": o}, "text": "thanks", "reply_to": m}),
        day(9),
    );
    let set = snapshot(&doc, day(9));
    assert_eq!(set.comments.len(), 2);
    assert_eq!(set.comments[1].id, r);
    assert_eq!(set.comments[1].reply_to.as_deref(), Some(m.as_str()));
    assert_eq!(set.comments[0].target, Target::Objective(o.clone()));
    refused(
        &doc,
        json!({"type": "comment.create", "target": {"key_result": ks[0]}, "text": "x", "reply_to": m}),
        ErrorCode::InvalidValue,
        Some("reply_to"),
    );
    refused(
        &doc,
        json!({"type": "comment.create", "target": {"objective": o}, "text": "x", "reply_to": "cm-nope"}),
        ErrorCode::NotFound,
        Some("reply_to"),
    );
    refused(
        &doc,
        json!({"type": "comment.create", "target": {"key_result": "kr-nope"}, "text": "x"}),
        ErrorCode::NotFound,
        Some("target.key_result"),
    );
    refused(
        &doc,
        json!({"type": "comment.create", "target": {"objective": o}, "text": " "}),
        ErrorCode::InvalidValue,
        Some("text"),
    );
    refused(
        &doc,
        json!({"type": "comment.create", "target": {"objective": o}, "text": "x".repeat(4001)}),
        ErrorCode::TooLong,
        Some("text"),
    );
}

#[test]
fn every_error_code() {
    let doc = with_cycle();
    let (o, ks) = objective_with_krs(&doc, "O", &["k 1", "k 2"]);
    let p = ok(
        &doc,
        json!({"type": "kr.create", "objective": o, "title": "p", "metric": {"kind": "percent"}}),
        day(0),
    );
    let inc = |target: Value| json!({"type": "kr.create", "objective": o, "title": "t", "metric": {"kind": "increase", "start": 10, "target": target}});

    // invalid_value
    refused(
        &doc,
        json!({"type": "objective.create", "title": "  "}),
        ErrorCode::InvalidValue,
        Some("title"),
    );
    refused(
        &doc,
        inc(json!(5)),
        ErrorCode::InvalidValue,
        Some("metric.target"),
    );
    refused(
        &doc,
        json!({"type": "kr.create", "objective": o, "title": "t", "metric": {"kind": "decrease", "start": 10, "target": 20}}),
        ErrorCode::InvalidValue,
        Some("metric.target"),
    );
    refused(
        &doc,
        json!({"type": "kr.create", "objective": o, "title": "t", "metric": {"kind": "milestone", "milestones": [{"title": "a", "weight": 0}]}}),
        ErrorCode::InvalidValue,
        Some("metric.milestones"),
    );
    refused(
        &doc,
        json!({"type": "cycle.set", "cycle": "Q", "starts": "2026-07-01", "ends": "2026-06-30"}),
        ErrorCode::InvalidValue,
        Some("ends"),
    );
    refused(
        &doc,
        json!({"type": "cycle.set", "cycle": "Q", "starts": "2026-02-30", "ends": "2026-06-30"}),
        ErrorCode::InvalidValue,
        Some("starts"),
    );
    refused(
        &doc,
        json!({"type": "checkin.create", "key_result": ks[0], "value": 1, "milestones": [true], "confidence": 5}),
        ErrorCode::InvalidValue,
        Some("milestones"),
    );
    refused(
        &doc,
        json!({"type": "checkin.create", "key_result": ks[0], "value": 1, "confidence": 5, "mentions": [""]}),
        ErrorCode::InvalidValue,
        Some("mentions[0]"),
    );
    let before = state(&doc);
    let err = {
        let mut txn = doc.transact_mut();
        apply(
            &mut txn,
            &cmd(json!({"type": "objective.create", "title": "x"})),
            "",
            day(1),
        )
        .expect_err("no actor")
    };
    assert_eq!(
        (err.code, err.field.as_deref()),
        (ErrorCode::InvalidValue, Some("actor"))
    );
    assert_eq!(state(&doc), before);
    // missing_field
    refused(
        &doc,
        inc(Value::Null),
        ErrorCode::MissingField,
        Some("metric.target"),
    );
    refused(
        &doc,
        json!({"type": "kr.create", "objective": o, "title": "t", "metric": {"kind": "stay_below"}}),
        ErrorCode::MissingField,
        Some("metric.threshold"),
    );
    refused(
        &doc,
        json!({"type": "kr.create", "objective": o, "title": "t", "metric": {"kind": "milestone", "milestones": []}}),
        ErrorCode::MissingField,
        Some("metric.milestones"),
    );
    refused(
        &doc,
        json!({"type": "checkin.create", "key_result": ks[0], "confidence": 5}),
        ErrorCode::MissingField,
        Some("value"),
    );
    // not_found
    refused(
        &doc,
        json!({"type": "objective.update", "objective": "o-nope", "title": "x"}),
        ErrorCode::NotFound,
        Some("objective"),
    );
    refused(
        &doc,
        json!({"type": "objective.reorder", "objective": "o-nope", "index": 0}),
        ErrorCode::NotFound,
        Some("objective"),
    );
    refused(
        &doc,
        json!({"type": "kr.create", "objective": "o-nope", "title": "t", "metric": {"kind": "percent"}}),
        ErrorCode::NotFound,
        Some("objective"),
    );
    refused(
        &doc,
        json!({"type": "kr.update", "key_result": "kr-nope", "title": "x"}),
        ErrorCode::NotFound,
        Some("key_result"),
    );
    refused(
        &doc,
        json!({"type": "kr.archive", "key_result": "kr-nope"}),
        ErrorCode::NotFound,
        Some("key_result"),
    );
    refused(
        &doc,
        json!({"type": "checkin.create", "key_result": "kr-nope", "value": 1, "confidence": 5}),
        ErrorCode::NotFound,
        Some("key_result"),
    );
    refused(
        &doc,
        json!({"type": "kr.update", "key_result": ks[0], "objective": "o-nope"}),
        ErrorCode::NotFound,
        Some("objective"),
    );
    // out_of_range
    refused(
        &doc,
        json!({"type": "checkin.create", "key_result": ks[0], "value": 1, "confidence": 11}),
        ErrorCode::OutOfRange,
        Some("confidence"),
    );
    refused(
        &doc,
        json!({"type": "checkin.create", "key_result": ks[0], "value": 1, "confidence": -1}),
        ErrorCode::OutOfRange,
        Some("confidence"),
    );
    refused(
        &doc,
        json!({"type": "checkin.create", "key_result": p, "value": 120, "confidence": 5}),
        ErrorCode::OutOfRange,
        Some("value"),
    );
    refused(
        &doc,
        json!({"type": "checkin.create", "key_result": ks[0], "value": 1e16, "confidence": 5}),
        ErrorCode::OutOfRange,
        Some("value"),
    );
    refused(
        &doc,
        json!({"type": "kr.update", "key_result": ks[0], "weight": -1}),
        ErrorCode::OutOfRange,
        Some("weight"),
    );
    refused(
        &doc,
        json!({"type": "kr.update", "key_result": ks[0], "cadence_days": 400}),
        ErrorCode::OutOfRange,
        Some("cadence_days"),
    );
    // too_long
    refused(
        &doc,
        json!({"type": "objective.create", "title": "长".repeat(201)}),
        ErrorCode::TooLong,
        Some("title"),
    );
    refused(
        &doc,
        json!({"type": "kr.update", "key_result": ks[0], "title": "t", "why": "w".repeat(1001)}),
        ErrorCode::TooLong,
        Some("why"),
    );
    refused(
        &doc,
        json!({"type": "objective.update", "objective": o, "owner": "u".repeat(65)}),
        ErrorCode::TooLong,
        Some("owner"),
    );
    refused(
        &doc,
        json!({"type": "kr.create", "objective": o, "title": "t", "metric": {"kind": "increase", "start": 0, "target": 1, "unit": "u".repeat(21)}}),
        ErrorCode::TooLong,
        Some("metric.unit"),
    );
    // too_many
    let mentions: Vec<String> = (0..21).map(|i| format!("u{i}")).collect();
    refused(
        &doc,
        json!({"type": "checkin.create", "key_result": ks[0], "value": 1, "confidence": 5, "mentions": mentions}),
        ErrorCode::TooMany,
        Some("mentions"),
    );
    let milestones: Vec<Value> = (0..21).map(|i| json!({"title": format!("m{i}")})).collect();
    refused(
        &doc,
        json!({"type": "kr.create", "objective": o, "title": "t", "metric": {"kind": "milestone", "milestones": milestones}}),
        ErrorCode::TooMany,
        Some("metric.milestones"),
    );
    // empty_update
    refused(
        &doc,
        json!({"type": "objective.update", "objective": o}),
        ErrorCode::EmptyUpdate,
        None,
    );
    refused(
        &doc,
        json!({"type": "kr.update", "key_result": ks[0], "why": "just because"}),
        ErrorCode::EmptyUpdate,
        None,
    );
    // archived
    ok(
        &doc,
        json!({"type": "kr.archive", "key_result": ks[1]}),
        day(1),
    );
    refused(
        &doc,
        json!({"type": "checkin.create", "key_result": ks[1], "value": 1, "confidence": 5}),
        ErrorCode::Archived,
        Some("key_result"),
    );
    refused(
        &doc,
        json!({"type": "kr.update", "key_result": ks[1], "title": "x"}),
        ErrorCode::Archived,
        Some("key_result"),
    );
    ok(
        &doc,
        json!({"type": "objective.archive", "objective": o}),
        day(1),
    );
    refused(
        &doc,
        json!({"type": "objective.update", "objective": o, "title": "x"}),
        ErrorCode::Archived,
        Some("objective"),
    );
    refused(
        &doc,
        json!({"type": "kr.create", "objective": o, "title": "t", "metric": {"kind": "percent"}}),
        ErrorCode::Archived,
        Some("objective"),
    );
    refused(
        &doc,
        json!({"type": "checkin.create", "key_result": ks[0], "value": 1, "confidence": 5}),
        ErrorCode::Archived,
        Some("key_result"),
    );
    refused(
        &doc,
        json!({"type": "objective.align", "objective": o, "add": [{"room": "r", "objective": "x"}]}),
        ErrorCode::Archived,
        Some("objective"),
    );
    refused(
        &doc,
        json!({"type": "kr.archive", "key_result": ks[1], "archived": false}),
        ErrorCode::Archived,
        Some("key_result"),
    );
}

#[test]
fn commands_round_trip_as_json() {
    let c = cmd(json!({"type": "checkin.create", "key_result": "k", "value": 3, "confidence": 7}));
    let back = serde_json::to_value(&c).expect("serialise");
    assert_eq!(back["type"], "checkin.create");
    assert_eq!(cmd(back), c);
    let e = CommandError {
        code: ErrorCode::AlignmentCycle,
        message: "m".into(),
        field: None,
    };
    assert_eq!(
        serde_json::to_value(&e).expect("serialise")["code"],
        "alignment_cycle"
    );
}
