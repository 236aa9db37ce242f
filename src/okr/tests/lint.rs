//! Each lint rule, on and off.

use super::*;
use crate::okr::lint::{has_number, is_vague};

fn codes_for(set: &OkrSet, target: &Target) -> Vec<LintCode> {
    set.lint
        .iter()
        .filter(|f| &f.target == target)
        .map(|f| f.code)
        .collect()
}

#[test]
fn number_and_vagueness_heuristics() {
    assert!(is_vague("提升用户满意度"));
    assert!(is_vague("Improve customer happiness"));
    assert!(is_vague("更好地服务客户"));
    assert!(!is_vague("Q3让用户留存率突破40%"));
    assert!(!is_vague("提升留存率到 40%"));
    assert!(!is_vague("打造稳定后台"));
    assert!(!is_vague("Launch the EU store"));
    assert!(has_number("上线 3 次, Bug 率低于 0.5%"));
    assert!(has_number("双周迭代上线三次"));
    assert!(has_number("ＡＰＩ错误率１"));
    assert!(!has_number("完成系统优化"));
}

#[test]
fn krs_per_objective() {
    let doc = with_cycle();
    let (few, _) = objective_with_krs(&doc, "O 1", &["a 1", "b 2"]);
    let (fine, _) = objective_with_krs(&doc, "O 2", &["a 1", "b 2", "c 3"]);
    let (many, _) = objective_with_krs(&doc, "O 3", &["a 1", "b 2", "c 3", "d 4", "e 5", "f 6"]);
    let (five, ks) = objective_with_krs(&doc, "O 4", &["a 1", "b 2", "c 3", "d 4", "e 5", "f 6"]);
    ok(
        &doc,
        json!({"type": "kr.archive", "key_result": ks[5]}),
        day(1),
    );
    let set = snapshot(&doc, day(1));
    assert_eq!(
        codes_for(&set, &Target::Objective(few)),
        vec![LintCode::TooFewKrs]
    );
    assert!(codes_for(&set, &Target::Objective(fine)).is_empty());
    assert_eq!(
        codes_for(&set, &Target::Objective(many)),
        vec![LintCode::TooManyKrs]
    );
    assert!(
        codes_for(&set, &Target::Objective(five)).is_empty(),
        "archived KRs do not count"
    );
}

#[test]
fn vague_objective_and_unmeasurable_kr() {
    let doc = with_cycle();
    let (vague, ks) = objective_with_krs(
        &doc,
        "提升用户满意度",
        &["完成系统优化", "上线 3 次, Bug 率低于 0.5%", "c 3"],
    );
    let milestone = ok(
        &doc,
        json!({"type": "kr.create", "objective": vague, "title": "完成系统优化",
               "metric": {"kind": "milestone", "milestones": [{"title": "灰度"}, {"title": "全量"}]}}),
        day(0),
    );
    let set = snapshot(&doc, day(1));
    assert_eq!(
        codes_for(&set, &Target::Objective(vague)),
        vec![LintCode::VagueObjective]
    );
    assert_eq!(
        codes_for(&set, &Target::KeyResult(ks[0].clone())),
        vec![LintCode::KrNotMeasurable]
    );
    assert!(codes_for(&set, &Target::KeyResult(ks[1].clone())).is_empty());
    assert!(
        codes_for(&set, &Target::KeyResult(milestone)).is_empty(),
        "milestones make it measurable"
    );
}

#[test]
fn metric_without_target_wrong_direction_and_empty_title() {
    // Written by a Yjs client: commands would refuse these.
    let doc = with_cycle();
    let (o, ks) = objective_with_krs(&doc, "O 1", &["a 1", "b 2", "c 3"]);
    {
        use yrs::{Map, MapRef, TextPrelim, WriteTxn};
        let mut txn = doc.transact_mut();
        let krs = txn.get_or_insert_map(schema::KEY_RESULTS);
        let get = |txn: &yrs::TransactionMut, id: &str| -> MapRef {
            krs.get(txn, id)
                .and_then(|v| v.cast::<MapRef>().ok())
                .expect("kr")
        };
        let metric = |kind: &str, target: Option<f64>| {
            let mut m =
                std::collections::HashMap::from([("kind".to_owned(), yrs::Any::from(kind))]);
            m.insert("start".to_owned(), yrs::Any::from(10.0));
            if let Some(t) = target {
                m.insert("target".to_owned(), yrs::Any::from(t));
            }
            yrs::Any::Map(std::sync::Arc::new(m))
        };
        let k0 = get(&txn, &ks[0]);
        k0.insert(&mut txn, "metric", metric("increase", None));
        let k1 = get(&txn, &ks[1]);
        k1.insert(&mut txn, "metric", metric("decrease", Some(20.0)));
        let k2 = get(&txn, &ks[2]);
        k2.insert(&mut txn, "title", TextPrelim::new("  "));
        let objectives = txn.get_or_insert_map(schema::OBJECTIVES);
        let om = objectives
            .get(&txn, &o)
            .and_then(|v| v.cast::<MapRef>().ok())
            .expect("objective");
        om.insert(&mut txn, "title", TextPrelim::new(""));
    }
    let set = snapshot(&doc, day(1));
    assert_eq!(
        codes_for(&set, &Target::KeyResult(ks[0].clone())),
        vec![LintCode::KrNoTarget]
    );
    assert_eq!(
        codes_for(&set, &Target::KeyResult(ks[1].clone())),
        vec![LintCode::MetricDirection]
    );
    assert_eq!(
        codes_for(&set, &Target::KeyResult(ks[2].clone())),
        vec![LintCode::EmptyTitle]
    );
    assert_eq!(
        codes_for(&set, &Target::Objective(o)),
        vec![LintCode::EmptyTitle]
    );
}

#[test]
fn archived_objectives_are_not_linted() {
    let doc = with_cycle();
    let (o, _) = objective_with_krs(&doc, "提升用户满意度", &[]);
    ok(
        &doc,
        json!({"type": "objective.archive", "objective": o}),
        day(1),
    );
    assert!(snapshot(&doc, day(1)).lint.is_empty());
}
