//! The rules as pure functions, against hand-computed numbers.

use super::*;
use crate::okr::rules::*;

fn inc(start: f64, target: f64) -> Metric {
    Metric::Increase {
        start,
        target: Some(target),
        unit: None,
    }
}

fn dec(start: f64, target: f64) -> Metric {
    Metric::Decrease {
        start,
        target: Some(target),
        unit: None,
    }
}

#[test]
fn increase_progress_and_clamping() {
    // 100 → 500 users, at 300: (300 − 100) / (500 − 100) = 50 %.
    assert!(close(raw_progress(&inc(100.0, 500.0), Some(300.0)), 50.0));
    // Overshoot: 600 → 125 % raw, 100 % for roll-ups.
    assert!(close(raw_progress(&inc(100.0, 500.0), Some(600.0)), 125.0));
    assert!(close(clamp_progress(125.0), 100.0));
    // Below the start: −12.5 % raw, 0 % for roll-ups.
    assert!(close(raw_progress(&inc(100.0, 500.0), Some(50.0)), -12.5));
    assert!(close(clamp_progress(-12.5), 0.0));
    // Before any check-in the current value is the start.
    assert!(close(raw_progress(&inc(100.0, 500.0), None), 0.0));
    // No target: nothing to measure against.
    let no_target = Metric::Increase {
        start: 0.0,
        target: None,
        unit: None,
    };
    assert!(close(raw_progress(&no_target, Some(10.0)), 0.0));
}

#[test]
fn decrease_progress() {
    // Response time 10 min → 2 min, at 4: (10 − 4) / (10 − 2) = 75 %.
    assert!(close(raw_progress(&dec(10.0, 2.0), Some(4.0)), 75.0));
    // Worse than the start: −25 % raw, clamped to 0.
    assert!(close(raw_progress(&dec(10.0, 2.0), Some(12.0)), -25.0));
    assert!(close(
        clamp_progress(raw_progress(&dec(10.0, 2.0), Some(12.0))),
        0.0
    ));
    // Better than the target: 1 → 112.5 % raw, clamped to 100.
    assert!(close(
        clamp_progress(raw_progress(&dec(10.0, 2.0), Some(1.0))),
        100.0
    ));
}

#[test]
fn percent_and_stay_metrics() {
    assert!(close(raw_progress(&Metric::Percent, Some(42.0)), 42.0));
    assert!(close(raw_progress(&Metric::Percent, None), 0.0));
    let above = Metric::StayAbove {
        threshold: Some(99.9),
        unit: None,
    };
    assert!(close(raw_progress(&above, Some(99.95)), 100.0));
    assert!(close(raw_progress(&above, Some(99.9)), 100.0));
    assert!(close(raw_progress(&above, Some(99.8)), 0.0));
    assert!(close(raw_progress(&above, None), 0.0));
    let below = Metric::StayBelow {
        threshold: Some(0.1),
        unit: None,
    };
    assert!(close(raw_progress(&below, Some(0.05)), 100.0));
    assert!(close(raw_progress(&below, Some(0.2)), 0.0));
}

#[test]
fn milestone_weights() {
    let m = |title: &str, weight: f64, done: bool| Milestone {
        title: title.into(),
        weight,
        done,
    };
    // Done weight 3 + 1 of total 3 + 1 + 1 = 80 %.
    let metric = Metric::Milestone {
        milestones: vec![
            m("design", 3.0, true),
            m("build", 1.0, false),
            m("ship", 1.0, true),
        ],
    };
    assert!(close(raw_progress(&metric, None), 80.0));
    // Single done / not done.
    let single = |done| Metric::Milestone {
        milestones: vec![m("launch", 1.0, done)],
    };
    assert!(close(raw_progress(&single(false), None), 0.0));
    assert!(close(raw_progress(&single(true), None), 100.0));
    // All weights 0: no progress rather than a division by zero.
    let zero = Metric::Milestone {
        milestones: vec![m("x", 0.0, true)],
    };
    assert!(close(raw_progress(&zero, None), 0.0));
}

#[test]
fn weighted_objective_progress() {
    // (1 × 50 + 3 × 100) / 4 = 87.5.
    assert!(close(weighted_progress([(1.0, 50.0), (3.0, 100.0)]), 87.5));
    // Weight 0 does not count.
    assert!(close(weighted_progress([(0.0, 0.0), (2.0, 30.0)]), 30.0));
    assert!(close(weighted_progress([(0.0, 40.0)]), 0.0));
    assert!(close(weighted_progress([]), 0.0));
}

#[test]
fn expected_progress_and_pace() {
    let cycle = Cycle {
        id: "2026-Q3".into(),
        kind: CycleKind::Custom,
        starts: "2026-07-01".into(),
        ends: "2026-10-08".into(),
        closed_at: None,
        closed_by: None,
        closed: false,
    };
    let span = cycle_span(&cycle);
    assert_eq!(span, Some((day(0), day(100))));
    assert!(close(expected_progress(span, day(40)).unwrap(), 40.0));
    assert!(close(
        expected_progress(span, day(40) + DAY / 2).unwrap(),
        40.5
    ));
    assert!(close(expected_progress(span, day(-5)).unwrap(), 0.0));
    assert!(close(expected_progress(span, day(150)).unwrap(), 100.0));
    assert_eq!(expected_progress(None, day(40)), None);
    // Behind pace below 0.75 × 40 = 30.
    assert!(behind_pace(29.9, Some(40.0)));
    assert!(!behind_pace(30.0, Some(40.0)));
    assert!(!behind_pace(0.0, Some(0.0)));
    assert!(!behind_pace(0.0, None));
}

#[test]
fn status_thresholds() {
    assert_eq!(status_from_confidence(10), Status::OnTrack);
    assert_eq!(status_from_confidence(7), Status::OnTrack);
    assert_eq!(status_from_confidence(6), Status::AtRisk);
    assert_eq!(status_from_confidence(4), Status::AtRisk);
    assert_eq!(status_from_confidence(3), Status::OffTrack);
    assert_eq!(status_from_confidence(0), Status::OffTrack);
    // Before any confidence: from pace.
    assert_eq!(kr_status(None, false), Status::OnTrack);
    assert_eq!(kr_status(None, true), Status::AtRisk);
    // Confidence wins over pace.
    assert_eq!(kr_status(Some(8), true), Status::OnTrack);
    // Worst first.
    assert_eq!(
        [Status::OnTrack, Status::OffTrack, Status::AtRisk]
            .into_iter()
            .max(),
        Some(Status::OffTrack)
    );
}

#[test]
fn due_and_overdue() {
    // Weekly, never checked in, anchored at day 0: due day 7.
    assert_eq!(checkin_due_at(7, day(0), None), Some(day(7)));
    assert_eq!(checkin_due_at(7, day(0), Some(day(10))), Some(day(17)));
    assert_eq!(checkin_due_at(0, day(0), None), None);
    assert!(!overdue(Some(day(7)), day(7), Some(day(100))));
    assert!(overdue(Some(day(7)), day(7) + 1, Some(day(100))));
    // Nothing is due after the cycle ends.
    assert!(!overdue(Some(day(105)), day(106), Some(day(100))));
    assert!(!overdue(None, day(50), None));
}

#[test]
fn dates() {
    assert_eq!(parse_date("1970-01-02"), Some(DAY));
    assert_eq!(parse_date("2024-02-29"), Some(19_782 * DAY));
    assert_eq!(parse_date("2026-02-29"), None);
    assert_eq!(parse_date("2026-13-01"), None);
    assert_eq!(parse_date("2026-7-1"), None);
    assert_eq!(parse_date("+026-07-01"), None);
}

#[test]
fn metric_in_force_at_a_time() {
    let rev = Revision {
        at: day(20),
        by: "bob".into(),
        old: inc(0.0, 100.0),
        new: inc(0.0, 200.0),
        why: "".into(),
    };
    let current = inc(0.0, 200.0);
    assert_eq!(
        metric_at(&current, std::slice::from_ref(&rev), day(10)),
        &inc(0.0, 100.0)
    );
    assert_eq!(
        metric_at(&current, std::slice::from_ref(&rev), day(30)),
        &current
    );
}

#[test]
fn proposed_scores_and_objective_scores() {
    // progress / 100, clamped to 0–1, rounded to 0.1 (Google-style: 0.7 is a success).
    for (progress, score) in [
        (0.0, 0.0),
        (70.0, 0.7),
        (74.9, 0.7),
        (75.0, 0.8),
        (100.0, 1.0),
        (130.0, 1.0),
        (-20.0, 0.0),
        (f64::NAN, 0.0),
        (4.9, 0.0),
        (5.0, 0.1),
    ] {
        assert!(
            close(proposed_score(progress), score),
            "{progress} → {score}"
        );
    }
    // Weighted by the KRs' weights, rounded to 0.01.
    assert!(close(objective_score([(1.0, 0.7), (1.0, 0.4)]), 0.55));
    assert!(close(objective_score([(3.0, 1.0), (1.0, 0.0)]), 0.75));
    assert!(close(
        objective_score([(1.0, 0.7), (1.0, 0.7), (1.0, 0.6)]),
        0.67
    ));
    assert!(close(objective_score([(0.0, 0.9)]), 0.0));
}

#[test]
fn red_flags_are_low_confidence_or_a_drop_of_three() {
    assert_eq!(red_flag(None, 7), None);
    assert_eq!(red_flag(None, 3), Some(RedFlagWhy::Low));
    assert_eq!(red_flag(Some(4), 3), Some(RedFlagWhy::Low));
    assert_eq!(red_flag(Some(7), 2), Some(RedFlagWhy::LowAndDrop));
    assert_eq!(red_flag(Some(9), 6), Some(RedFlagWhy::Drop));
    assert_eq!(red_flag(Some(9), 7), None);
    assert_eq!(red_flag(Some(2), 9), None);
    assert_eq!(red_flag(Some(0), 0), Some(RedFlagWhy::Low));
}

#[test]
fn next_periods_and_named_periods() {
    let cycle = |kind, starts: &str, ends: &str| Cycle {
        id: "x".into(),
        kind,
        starts: starts.into(),
        ends: ends.into(),
        closed_at: None,
        closed_by: None,
        closed: false,
    };
    let next = |c: Cycle| next_period(&c).unwrap();
    let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    assert_eq!(
        next(cycle(CycleKind::Quarter, "2026-07-01", "2026-09-30")),
        pair("2026-10-01", "2026-12-31")
    );
    assert_eq!(
        next(cycle(CycleKind::Quarter, "2026-10-01", "2026-12-31")),
        pair("2027-01-01", "2027-03-31")
    );
    assert_eq!(
        next(cycle(CycleKind::Month, "2028-01-01", "2028-01-31")),
        pair("2028-02-01", "2028-02-29")
    );
    assert_eq!(
        next(cycle(CycleKind::Half, "2026-01-01", "2026-06-30")),
        pair("2026-07-01", "2026-12-31")
    );
    assert_eq!(
        next(cycle(CycleKind::Year, "2026-01-01", "2026-12-31")),
        pair("2027-01-01", "2027-12-31")
    );
    assert_eq!(
        next(cycle(CycleKind::Custom, "2026-07-01", "2026-07-14")),
        pair("2026-07-15", "2026-07-28")
    );
    let named = |id: &str| period_of(id);
    assert_eq!(
        named("2026-Q4"),
        Some((CycleKind::Quarter, "2026-10-01".into(), "2026-12-31".into()))
    );
    assert_eq!(
        named("2026-H1"),
        Some((CycleKind::Half, "2026-01-01".into(), "2026-06-30".into()))
    );
    assert_eq!(
        named("2028-02"),
        Some((CycleKind::Month, "2028-02-01".into(), "2028-02-29".into()))
    );
    assert_eq!(
        named("2027"),
        Some((CycleKind::Year, "2027-01-01".into(), "2027-12-31".into()))
    );
    assert_eq!(named("2026-Q5"), None);
    assert_eq!(named("sprint-7"), None);
    assert_eq!(format_date(day(0)), "2026-07-01");
    assert_eq!(format_date(day(100)), "2026-10-09");
}
