//! The OKR rules of `OKR-MODEL.md`, as pure functions of values (no doc, no clock).
//!
//! Keeping them free of yrs makes each rule testable against hand-computed numbers, and lets
//! the reader, the history and the commands share one definition of "progress" or "overdue".
//!
//! Choices the model leaves open, fixed here (and in `proto/DOCUMENT.md`):
//! - Before any check-in with a confidence, a KR is `on_track`, or `at_risk` when behind pace.
//! - A KR is overdue when `now` is past its due time; the due time is the last check-in (or,
//!   before any, the later of cycle start and KR creation) plus the cadence. Nothing is due
//!   after the cycle ends, and a cadence of 0 means never due.
//! - The cycle runs from `starts` 00:00 UTC to the end of `ends` (inclusive), so expected
//!   progress reaches 100 at midnight after the last day.

use super::model::{Cycle, CycleKind, Metric, Millis, Revision, Status};
use super::schema::DAY_MS;

/// Progress as the formula gives it, in percent (may be < 0 or > 100).
///
/// `current` is the latest check-in's value, or `None` before any (then the metric's start).
pub fn raw_progress(metric: &Metric, current: Option<f64>) -> f64 {
    match metric {
        Metric::Percent => current.unwrap_or(0.0),
        Metric::Increase { start, target, .. } => {
            let Some(target) = *target else { return 0.0 };
            let current = current.unwrap_or(*start);
            if target == *start {
                return if current >= target { 100.0 } else { 0.0 };
            }
            (current - start) / (target - start) * 100.0
        }
        Metric::Decrease { start, target, .. } => {
            let Some(target) = *target else { return 0.0 };
            let current = current.unwrap_or(*start);
            if target == *start {
                return if current <= target { 100.0 } else { 0.0 };
            }
            (start - current) / (start - target) * 100.0
        }
        Metric::StayAbove { threshold, .. } => match (*threshold, current) {
            (Some(t), Some(c)) if c >= t => 100.0,
            _ => 0.0,
        },
        Metric::StayBelow { threshold, .. } => match (*threshold, current) {
            (Some(t), Some(c)) if c <= t => 100.0,
            _ => 0.0,
        },
        Metric::Milestone { milestones } => {
            let total: f64 = milestones.iter().map(|m| m.weight.max(0.0)).sum();
            if total <= 0.0 {
                return 0.0;
            }
            let done: f64 = milestones
                .iter()
                .filter(|m| m.done)
                .map(|m| m.weight.max(0.0))
                .sum();
            done / total * 100.0
        }
    }
}

/// Clamps a progress to 0–100 (for roll-ups and pace). NaN becomes 0.
pub fn clamp_progress(p: f64) -> f64 {
    if p.is_nan() {
        0.0
    } else {
        p.clamp(0.0, 100.0)
    }
}

/// The value a KR starts from, before any check-in.
pub fn start_value(metric: &Metric) -> Option<f64> {
    match metric {
        Metric::Increase { start, .. } | Metric::Decrease { start, .. } => Some(*start),
        _ => None,
    }
}

/// Weighted mean of `(weight, progress)` pairs; 0 when the weights sum to 0.
pub fn weighted_progress(items: impl IntoIterator<Item = (f64, f64)>) -> f64 {
    let (mut sum, mut weights) = (0.0, 0.0);
    for (w, p) in items {
        let w = w.max(0.0);
        sum += w * p;
        weights += w;
    }
    if weights > 0.0 {
        sum / weights
    } else {
        0.0
    }
}

/// `[start, end)` of a cycle in epoch ms, or `None` if its dates are invalid or reversed.
pub fn cycle_span(cycle: &Cycle) -> Option<(Millis, Millis)> {
    let start = parse_date(&cycle.starts)?;
    let end = parse_date(&cycle.ends)? + DAY_MS;
    (end > start).then_some((start, end))
}

/// Expected progress at `now`: the elapsed share of the cycle, 0–100.
pub fn expected_progress(span: Option<(Millis, Millis)>, now: Millis) -> Option<f64> {
    let (start, end) = span?;
    let share = (now - start) as f64 / (end - start) as f64;
    Some((share * 100.0).clamp(0.0, 100.0))
}

/// Behind pace: progress below three quarters of what is expected by now.
pub fn behind_pace(progress: f64, expected: Option<f64>) -> bool {
    expected.is_some_and(|e| progress < 0.75 * e)
}

/// The method's traffic light: ≥ 7 on track, 4–6 at risk, ≤ 3 off track.
pub fn status_from_confidence(confidence: u8) -> Status {
    match confidence {
        7.. => Status::OnTrack,
        4..=6 => Status::AtRisk,
        _ => Status::OffTrack,
    }
}

/// A KR's status: from its confidence; before any, from pace.
pub fn kr_status(confidence: Option<u8>, behind_pace: bool) -> Status {
    match confidence {
        Some(c) => status_from_confidence(c),
        None if behind_pace => Status::AtRisk,
        None => Status::OnTrack,
    }
}

/// When the next check-in is due: the last one (or `anchor` before any) plus the cadence.
pub fn checkin_due_at(cadence_days: u32, anchor: Millis, last: Option<Millis>) -> Option<Millis> {
    (cadence_days > 0).then(|| last.unwrap_or(anchor) + i64::from(cadence_days) * DAY_MS)
}

/// Overdue: past the due time, and the due time falls before the cycle's end.
pub fn overdue(due_at: Option<Millis>, now: Millis, cycle_end: Option<Millis>) -> bool {
    match due_at {
        Some(due) => now > due && cycle_end.is_none_or(|end| due < end),
        None => false,
    }
}

/// The metric in force at `at`: the `old` of the first revision made after `at`, else `current`.
pub fn metric_at<'a>(current: &'a Metric, revisions: &'a [Revision], at: Millis) -> &'a Metric {
    revisions
        .iter()
        .filter(|r| r.at > at)
        .min_by_key(|r| r.at)
        .map_or(current, |r| &r.old)
}

/// A KR's proposed score at the cycle's end (Google's grading: 0.7 is a success for a stretch
/// goal): its progress as a share, clamped to 0.0–1.0 and rounded to one decimal.
pub fn proposed_score(progress: f64) -> f64 {
    round_to(clamp_progress(progress) / 100.0, 10.0)
}

/// An objective's score: the weighted mean of its KRs' `(weight, final score)`, rounded to two
/// decimals (0 when the weights sum to 0).
pub fn objective_score(items: impl IntoIterator<Item = (f64, f64)>) -> f64 {
    round_to(weighted_progress(items), 100.0)
}

fn round_to(x: f64, per: f64) -> f64 {
    (x * per).round() / per
}

/// The confidence at or below which a check-in raises a red flag (the method: ≤ 3).
pub const RED_FLAG_CONFIDENCE: u8 = 3;
/// A fall of this much or more between two consecutive confidences raises a red flag.
pub const RED_FLAG_DROP: u8 = 3;

/// Why a check-in raised a red flag.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RedFlagWhy {
    /// Its confidence is 3 or less.
    Low,
    /// Its confidence fell by 3 or more since the previous one.
    Drop,
    /// Both.
    LowAndDrop,
}

/// Whether a confidence, after `previous` (the KR's last confidence before it), is a red flag.
pub fn red_flag(previous: Option<u8>, confidence: u8) -> Option<RedFlagWhy> {
    let low = confidence <= RED_FLAG_CONFIDENCE;
    let drop = previous.is_some_and(|p| p >= confidence.saturating_add(RED_FLAG_DROP));
    match (low, drop) {
        (true, true) => Some(RedFlagWhy::LowAndDrop),
        (true, false) => Some(RedFlagWhy::Low),
        (false, true) => Some(RedFlagWhy::Drop),
        (false, false) => None,
    }
}

/// The period after `cycle`, of the same kind: `(starts, ends)` as `YYYY-MM-DD`. It starts the
/// day after `cycle` ends; a month, quarter, half or year lasts that many calendar months (so
/// 2026-07-01 – 2026-09-30 is followed by 2026-10-01 – 2026-12-31), a custom cycle as many days
/// as `cycle`. `None` when its dates are invalid.
pub fn next_period(cycle: &Cycle) -> Option<(String, String)> {
    let (start, end) = cycle_span(cycle)?;
    let months = match cycle.kind {
        CycleKind::Month => 1,
        CycleKind::Quarter => 3,
        CycleKind::Half => 6,
        CycleKind::Year => 12,
        CycleKind::Custom => {
            let next_end = end + (end - start) - DAY_MS;
            return Some((format_date(end), format_date(next_end)));
        }
    };
    let first = end.div_euclid(DAY_MS);
    let (y, m, d) = civil_from_days(first);
    let (ey, em) = add_months(y, m, months);
    let last = days_from_civil(ey, em, d.min(days_in_month(ey, em))) - 1;
    Some((format_date(first * DAY_MS), format_date(last * DAY_MS)))
}

/// The calendar period a cycle id names: `2026-Q3` (quarter), `2026-H2` (half), `2026-07`
/// (month), `2026` (year) → `(kind, starts, ends)`.
pub fn period_of(id: &str) -> Option<(CycleKind, String, String)> {
    let year = |s: &str| -> Option<i64> {
        (s.len() == 4 && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (kind, y, first_month, months) = match id.split_once('-') {
        None => (CycleKind::Year, year(id)?, 1, 12),
        Some((y, rest)) => {
            let y = year(y)?;
            match rest.as_bytes() {
                [b'Q' | b'q', n @ b'1'..=b'4'] => {
                    (CycleKind::Quarter, y, i64::from(n - b'1') * 3 + 1, 3)
                }
                [b'H' | b'h', n @ b'1'..=b'2'] => {
                    (CycleKind::Half, y, i64::from(n - b'1') * 6 + 1, 6)
                }
                [a, b] if a.is_ascii_digit() && b.is_ascii_digit() => {
                    let m = i64::from((a - b'0') * 10 + (b - b'0'));
                    if !(1..=12).contains(&m) {
                        return None;
                    }
                    (CycleKind::Month, y, m, 1)
                }
                _ => return None,
            }
        }
    };
    let first = days_from_civil(y, first_month, 1);
    let (ey, em) = add_months(y, first_month, months);
    let last = days_from_civil(ey, em, 1) - 1;
    Some((
        kind,
        format_date(first * DAY_MS),
        format_date(last * DAY_MS),
    ))
}

fn add_months(y: i64, m: i64, n: i64) -> (i64, i64) {
    let total = y * 12 + (m - 1) + n;
    (total.div_euclid(12), total.rem_euclid(12) + 1)
}

/// Epoch ms → `YYYY-MM-DD` (UTC).
pub fn format_date(ms: Millis) -> String {
    let (y, m, d) = civil_from_days(ms.div_euclid(DAY_MS));
    format!("{y:04}-{m:02}-{d:02}")
}

/// The date of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Parses `YYYY-MM-DD` to midnight UTC in epoch ms.
pub fn parse_date(s: &str) -> Option<Millis> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())
            .flatten()
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d) * DAY_MS)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
