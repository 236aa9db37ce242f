//! Reading: derived values of a whole set, and garbage written by clients.

use std::collections::HashMap;
use std::sync::Arc;

use yrs::{Any, Array, ArrayPrelim, Map, MapPrelim, TextPrelim, WriteTxn};

use super::*;

fn checkin(doc: &Doc, kr: &str, value: f64, confidence: i64, at: Millis) -> String {
    ok(
        doc,
        json!({"type": "checkin.create", "key_result": kr, "value": value, "confidence": confidence}),
        at,
    )
}

#[test]
fn a_set_with_derived_values() {
    let doc = with_cycle();
    let (o, ks) = objective_with_krs(
        &doc,
        "Q3 留存率突破40%",
        &["周活 100", "上线 3 次", "Bug 率 0.5%"],
    );
    // Weights 1, 1, 2.
    ok(
        &doc,
        json!({"type": "kr.update", "key_result": ks[2], "weight": 2}),
        day(1),
    );
    checkin(&doc, &ks[0], 50.0, 8, day(33)); // 50 %, on track, due day 40
    checkin(&doc, &ks[1], 20.0, 6, day(31)); // 20 %, at risk, due day 38
    checkin(&doc, &ks[2], 40.0, 7, day(34)); // 40 %, on track, due day 41

    let set = snapshot(&doc, day(40));
    assert!(set.problems.is_empty(), "{:?}", set.problems);
    let k = kr(&set, &ks[1]);
    assert_eq!(k.current, Some(20.0));
    assert!(close(k.progress, 20.0));
    assert_eq!(k.expected_progress, Some(40.0));
    assert!(k.behind_pace, "20 < 0.75 × 40");
    assert_eq!(k.confidence, Some(6));
    assert_eq!(k.status, Status::AtRisk);
    assert_eq!(k.last_checkin_at, Some(day(31)));
    assert_eq!(k.checkin_due_at, Some(day(38)));
    assert!(
        k.overdue,
        "last check-in day 31, weekly: due day 38, now day 40"
    );
    assert!(
        !kr(&set, &ks[0]).overdue,
        "due exactly now is not yet overdue"
    );
    assert!(!kr(&set, &ks[2]).overdue);
    let obj = objective(&set, &o);
    // (50 + 20 + 2 × 40) / 4 = 37.5.
    assert!(close(obj.progress, 37.5));
    assert_eq!(obj.status, Some(Status::AtRisk));
    assert!(obj.overdue);
    assert_eq!(obj.key_results, ks);
    assert_eq!(set.cycle.as_ref().map(|c| c.id.as_str()), Some("2026-Q3"));
}

#[test]
fn status_from_pace_before_any_checkin_and_worst_kr() {
    let doc = with_cycle();
    let (o, ks) = objective_with_krs(&doc, "O 1", &["a 1", "b 2", "c 3"]);
    let set = snapshot(&doc, day(3));
    // Expected 3 %, progress 0 < 2.25: behind pace → at risk (no confidence yet).
    assert!(kr(&set, &ks[0]).behind_pace);
    assert_eq!(kr(&set, &ks[0]).status, Status::AtRisk);
    assert!(!kr(&set, &ks[0]).overdue, "due day 7");
    let set = snapshot(&doc, day(0));
    assert_eq!(kr(&set, &ks[0]).status, Status::OnTrack);
    // One KR off track (confidence 3) makes the objective off track.
    checkin(&doc, &ks[1], 90.0, 3, day(5));
    checkin(&doc, &ks[0], 90.0, 9, day(5));
    checkin(&doc, &ks[2], 90.0, 4, day(5));
    let set = snapshot(&doc, day(6));
    assert_eq!(kr(&set, &ks[2]).status, Status::AtRisk);
    assert_eq!(objective(&set, &o).status, Some(Status::OffTrack));
    // Archived KRs do not count.
    ok(
        &doc,
        json!({"type": "kr.archive", "key_result": ks[1]}),
        day(6),
    );
    let set = snapshot(&doc, day(6));
    assert_eq!(objective(&set, &o).status, Some(Status::AtRisk));
    assert!(close(objective(&set, &o).progress, 90.0));
}

#[test]
fn overdue_counts_from_the_later_of_cycle_start_and_creation() {
    let doc = with_cycle();
    let o = ok(
        &doc,
        json!({"type": "objective.create", "title": "O"}),
        day(0),
    );
    let k = ok(
        &doc,
        json!({"type": "kr.create", "objective": o, "title": "k 1", "cadence_days": 14, "metric": {"kind": "percent"}}),
        day(10),
    );
    let set = snapshot(&doc, day(24));
    assert_eq!(kr(&set, &k).checkin_due_at, Some(day(24)));
    assert!(!kr(&set, &k).overdue);
    assert!(snapshot(&doc, day(24) + 1).key_results[0].overdue);
}

#[test]
fn history_uses_the_metric_in_force() {
    let doc = with_cycle();
    let (_, ks) = objective_with_krs(&doc, "O", &["k 1"]);
    checkin(&doc, &ks[0], 50.0, 7, day(10));
    ok(
        &doc,
        json!({"type": "kr.update", "key_result": ks[0], "why": "market grew",
               "metric": {"kind": "increase", "start": 0, "target": 200}}),
        day(20),
    );
    checkin(&doc, &ks[0], 150.0, 5, day(30));
    let view = Projection::load(&doc.transact(), day(31));
    let h = view.kr_history(&ks[0]).expect("kr exists");
    assert_eq!(h.len(), 2);
    assert!(close(h[0].progress, 50.0), "50 of 100 under the old target");
    assert!(close(h[1].progress, 75.0), "150 of 200 under the new one");
    assert_eq!(
        (h[1].confidence, h[1].author.as_str(), h[1].at),
        (Some(5), "alice", day(30))
    );
    assert!(view.kr_history("nope").is_none());
}

fn paths(set: &OkrSet) -> Vec<&str> {
    set.problems.iter().map(|p| p.path.as_str()).collect()
}

#[test]
fn garbage_is_reported_and_the_rest_is_read() {
    let doc = with_cycle();
    let (o, ks) = objective_with_krs(&doc, "good 1", &["k 1"]);
    {
        let mut txn = doc.transact_mut();
        let objectives = txn.get_or_insert_map(schema::OBJECTIVES);
        // A number where a map is expected.
        objectives.insert(&mut txn, "o-number", 42);
        // A plain object where a Y.Map is expected.
        objectives.insert(&mut txn, "o-plain", Any::Map(Arc::new(HashMap::new())));
        // A Y.Map without a title.
        objectives.insert(&mut txn, "o-untitled", MapPrelim::from([("owner", "x")]));
        // A title that is a number.
        objectives.insert(&mut txn, "o-numtitle", MapPrelim::from([("title", 7)]));
        // A Y.Text where a number is expected: the field is ignored, the entry kept.
        let m = objectives.insert(&mut txn, "o-textorder", MapPrelim::default());
        m.insert(&mut txn, "title", TextPrelim::new("kept"));
        m.insert(&mut txn, "order", TextPrelim::new("3"));
        m.insert(&mut txn, "status", "deleted?");

        let krs = txn.get_or_insert_map(schema::KEY_RESULTS);
        let k = krs.insert(&mut txn, "k-badmetric", MapPrelim::default());
        k.insert(&mut txn, "objective", o.as_str());
        k.insert(&mut txn, "title", TextPrelim::new("t 1"));
        k.insert(&mut txn, "metric", 5);
        let k = krs.insert(&mut txn, "k-orphan", MapPrelim::default());
        k.insert(&mut txn, "objective", "o-nowhere");
        k.insert(&mut txn, "title", TextPrelim::new("t 2"));
        k.insert(
            &mut txn,
            "metric",
            Any::Map(Arc::new(HashMap::from([(
                "kind".to_owned(),
                Any::from("percent"),
            )]))),
        );
        // Weight as a Y.Text, a revision that is a string: ignored, KR kept.
        let k = krs
            .get(&txn, &ks[0])
            .and_then(|v| v.cast::<yrs::MapRef>().ok())
            .expect("kr map");
        k.insert(&mut txn, "weight", TextPrelim::new("heavy"));
        let revs = k.insert(&mut txn, "revisions", ArrayPrelim::default());
        revs.push_back(&mut txn, "not a revision");

        let checkins = txn.get_or_insert_map(schema::CHECKINS);
        checkins.insert(&mut txn, "c-text", TextPrelim::new("hello"));
        let no_value: HashMap<String, Any> = HashMap::from([
            ("key_result".to_owned(), Any::from(ks[0].as_str())),
            ("author".to_owned(), Any::from("bob")),
            ("at".to_owned(), Any::from(day(2))),
        ]);
        checkins.insert(&mut txn, "c-novalue", Any::Map(Arc::new(no_value)));
        let bad_conf: HashMap<String, Any> = HashMap::from([
            ("key_result".to_owned(), Any::from(ks[0].as_str())),
            ("author".to_owned(), Any::from("bob")),
            ("at".to_owned(), Any::from(day(3) as f64)),
            ("value".to_owned(), Any::from(30)),
            ("confidence".to_owned(), Any::from(6.5)),
            (
                "mentions".to_owned(),
                Any::Array(vec![Any::from("carol"), Any::from(3)].into()),
            ),
        ]);
        checkins.insert(&mut txn, "c-badconf", Any::Map(Arc::new(bad_conf)));

        let comments = txn.get_or_insert_map(schema::COMMENTS);
        let bad_target: HashMap<String, Any> = HashMap::from([
            ("target".to_owned(), Any::from(7)),
            ("author".to_owned(), Any::from("bob")),
            ("at".to_owned(), Any::from(day(2))),
            ("text".to_owned(), Any::from("hi")),
        ]);
        comments.insert(&mut txn, "m-badtarget", Any::Map(Arc::new(bad_target)));
    }
    let set = snapshot(&doc, day(4));
    let p = paths(&set);
    for expected in [
        "objectives/o-number",
        "objectives/o-plain",
        "objectives/o-untitled/title",
        "objectives/o-numtitle/title",
        "objectives/o-textorder/order",
        "objectives/o-textorder/status",
        "key_results/k-badmetric/metric",
        "key_results/k-orphan/objective",
        &format!("key_results/{}/weight", ks[0]),
        &format!("key_results/{}/revisions/0", ks[0]),
        "checkins/c-text",
        "checkins/c-novalue/value",
        "checkins/c-badconf/confidence",
        "checkins/c-badconf/mentions/1",
        "comments/m-badtarget/target",
    ] {
        assert!(p.contains(&expected), "no problem at {expected}: {p:?}");
    }
    // The readable rest.
    let ids: Vec<&str> = set.objectives.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(
        ids,
        vec!["o-textorder", o.as_str()],
        "order 0 (defaulted) before order 1"
    );
    assert!(!set.objectives[0].archived);
    assert_eq!(set.key_results.len(), 1);
    assert!(close(set.key_results[0].weight, 1.0));
    let c = &set.checkins[0];
    assert_eq!(
        (c.id.as_str(), c.confidence, c.at),
        ("c-badconf", None, day(3))
    );
    assert_eq!(c.mentions, vec!["carol"]);
    assert_eq!(set.key_results[0].current, Some(30.0));
    assert!(set.comments.is_empty());
}

#[test]
fn a_root_of_the_wrong_type_reads_as_empty() {
    let doc = Doc::new();
    {
        let mut txn = doc.transact_mut();
        let a = txn.get_or_insert_array(schema::OBJECTIVES);
        a.push_back(&mut txn, "x");
        let t = txn.get_or_insert_text(schema::CYCLE);
        yrs::Text::push(&t, &mut txn, "2026");
    }
    let set = snapshot(&doc, 0);
    assert!(set.objectives.is_empty());
    assert!(set.cycle.is_none());
}
