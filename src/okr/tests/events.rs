//! diff: each event kind, from commands and from raw Yjs edits.

use super::*;

fn kinds(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            serde_json::to_value(e).expect("serialise")["type"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect()
}

#[test]
fn each_event_kind() {
    let doc = Doc::new();
    let s0 = snapshot(&doc, day(0));
    ok(
        &doc,
        json!({"type": "cycle.set", "cycle": "2026-Q3", "starts": "2026-07-01", "ends": "2026-10-08"}),
        day(0),
    );
    let o = ok(
        &doc,
        json!({"type": "objective.create", "title": "Win 3 markets"}),
        day(0),
    );
    let s1 = snapshot(&doc, day(0));
    let e = diff(&s0, &s1);
    assert_eq!(
        kinds(&e),
        vec!["cycle.updated", "objective.created", "lint.changed"]
    );
    match &e[1] {
        Event::ObjectiveCreated { objective } => assert_eq!(objective.title, "Win 3 markets"),
        other => panic!("{other:?}"),
    }

    let k = ok(
        &doc,
        json!({"type": "kr.create", "objective": o, "title": "k 1", "metric": {"kind": "percent"}}),
        day(0),
    );
    let s2 = snapshot(&doc, day(0));
    let e = diff(&s1, &s2);
    assert_eq!(
        kinds(&e),
        vec!["objective.updated", "kr.created", "lint.changed"]
    );
    match &e[0] {
        Event::ObjectiveUpdated { changed, .. } => assert_eq!(
            changed,
            &vec!["key_results".to_owned(), "status".to_owned()]
        ),
        other => panic!("{other:?}"),
    }

    ok(
        &doc,
        json!({"type": "checkin.create", "key_result": k, "value": 30, "confidence": 4, "mentions": ["bob", "carol"]}),
        day(2),
    );
    let s3 = snapshot(&doc, day(2));
    let e = diff(&s2, &s3);
    assert_eq!(
        kinds(&e),
        vec![
            "objective.updated",
            "kr.updated",
            "checkin.created",
            "mention",
            "mention"
        ]
    );
    match &e[1] {
        Event::KrUpdated {
            key_result,
            objective,
            changed,
            fields,
        } => {
            assert_eq!(key_result, &k);
            assert_eq!(objective, &o);
            assert_eq!(fields["progress"], 30.0);
            let mut names: Vec<&String> = fields.keys().collect();
            names.retain(|n| {
                !["updated_at", "updated_by", "expected_progress"].contains(&n.as_str())
            });
            assert_eq!(
                names,
                changed.iter().collect::<Vec<_>>(),
                "fields = changed + quiet ones"
            );
            for f in [
                "confidence",
                "current",
                "progress",
                "status",
                "last_checkin_at",
                "raw_progress",
                "checkin_due_at",
            ] {
                assert!(changed.iter().any(|c| c == f), "{f} not in {changed:?}");
            }
        }
        other => panic!("{other:?}"),
    }
    match &e[3] {
        Event::Mention {
            user,
            author,
            source,
            target,
            mentioned_at,
        } => {
            assert_eq!(
                (user.as_str(), author.as_str(), *mentioned_at),
                ("bob", "alice", day(2))
            );
            assert!(matches!(source, MentionSource::Checkin(_)));
            assert_eq!(target, &Target::KeyResult(k.clone()));
        }
        other => panic!("{other:?}"),
    }

    let m = ok(
        &doc,
        json!({"type": "comment.create", "target": {"objective": o}, "text": "@dan look", "mentions": ["dan"]}),
        day(3),
    );
    let s4 = snapshot(&doc, day(3));
    let e = diff(&s3, &s4);
    assert_eq!(kinds(&e), vec!["comment.created", "mention"]);
    assert!(
        matches!(&e[1], Event::Mention { source: MentionSource::Comment(id), target: Target::Objective(t), .. } if *id == m && *t == o)
    );

    // Time alone: day 9 is past the weekly due date of day 9 (check-in day 2 + 7).
    let s5 = snapshot(&doc, day(9) + 1);
    let e = diff(&s4, &s5);
    assert_eq!(
        kinds(&e),
        vec!["objective.updated", "kr.updated", "reminder"]
    );
    match &e[2] {
        Event::Reminder {
            key_result,
            owner,
            due_at,
            ..
        } => {
            assert_eq!(
                (key_result.as_str(), owner.as_deref(), *due_at),
                (k.as_str(), Some("alice"), day(9))
            );
        }
        other => panic!("{other:?}"),
    }
    // Nothing changed, nothing to say — even though expected progress moved.
    assert!(diff(&s5, &snapshot(&doc, day(9) + 2)).is_empty());

    ok(
        &doc,
        json!({"type": "kr.archive", "key_result": k}),
        day(10),
    );
    ok(
        &doc,
        json!({"type": "objective.archive", "objective": o}),
        day(10),
    );
    let s6 = snapshot(&doc, day(10));
    let e = diff(&s5, &s6);
    assert_eq!(
        kinds(&e),
        vec!["objective.archived", "kr.archived", "lint.changed"]
    );
}

#[test]
fn yjs_edits_and_removals() {
    use yrs::{Map, MapRef, Text, TextRef, WriteTxn};
    let doc = with_cycle();
    let (o, ks) = objective_with_krs(&doc, "O", &["k 1"]);
    let before = snapshot(&doc, day(1));
    // A Yjs client types into a KR title.
    {
        let mut txn = doc.transact_mut();
        let krs = txn.get_or_insert_map(schema::KEY_RESULTS);
        let k = krs
            .get(&txn, &ks[0])
            .and_then(|v| v.cast::<MapRef>().ok())
            .expect("kr");
        let title = k
            .get(&txn, "title")
            .and_then(|v| v.cast::<TextRef>().ok())
            .expect("title");
        title.insert(&mut txn, 1, "ey");
    }
    let after = snapshot(&doc, day(1));
    let e = diff(&before, &after);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        matches!(&e[0], Event::KrUpdated { changed, fields, .. }
            if fields.len() == 1 && fields["title"] == "key 1" && changed == &vec!["title".to_owned()]),
        "a title change carries the title alone: {e:?}"
    );
    // … and deletes the objective outright.
    {
        let mut txn = doc.transact_mut();
        let objectives = txn.get_or_insert_map(schema::OBJECTIVES);
        objectives.remove(&mut txn, &o);
    }
    let gone = snapshot(&doc, day(1));
    let e = diff(&after, &gone);
    assert_eq!(
        kinds(&e),
        vec!["objective.removed", "kr.removed", "lint.changed"]
    );
}

#[test]
fn wire_types_have_json_schemas() {
    let names = |s: schemars::Schema| serde_json::to_string(&s).expect("schema json");
    assert!(names(schemars::schema_for!(Event)).contains("checkin.created"));
    assert!(names(schemars::schema_for!(Command)).contains("objective.align"));
    assert!(names(schemars::schema_for!(OkrSet)).contains("expected_progress"));
    assert!(names(schemars::schema_for!(CommandError)).contains("alignment_cycle"));
}
