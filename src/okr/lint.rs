//! The quality lint: advice on how well an OKR set is written, never a block.
//!
//! The rules come from the method guide (seed 000): 3 to 5 KRs per objective; a KR must be
//! measurable ("完成系统优化" is not a KR, "双周迭代上线3次, Bug率低于0.5%" is); an objective must be
//! more than a vague wish ("提升用户满意度" reads like a horoscope). Text heuristics are
//! deliberately simple and documented, so a user can tell why something was flagged:
//!
//! - *has a number*: an ASCII or full-width digit, a Chinese numeral (零〇一二三四五六七八九十百千万亿两)
//!   or a percent sign.
//! - *vague objective*: the title has no number and contains one of [`VAGUE_ZH`] or a word
//!   starting with one of [`VAGUE_EN`] (case-insensitive).
//! - *measurable KR*: a milestone KR is measurable by its milestones; any other KR needs a
//!   number in its title, and a target (or threshold) in its metric.
//!
//! Archived objectives and KRs are not linted, and archived KRs do not count.

use super::model::{KeyResult, LintCode, LintFinding, Metric, Objective, Target};

/// Vague verbs and wishes in Chinese.
pub const VAGUE_ZH: &[&str] = &[
    "提升",
    "提高",
    "改善",
    "改进",
    "优化",
    "加强",
    "增强",
    "促进",
    "推动",
    "推进",
    "完善",
    "做好",
    "努力",
    "争取",
    "尽量",
    "尽可能",
    "更好",
    "更多",
    "持续",
];

/// Prefixes of vague English words (so "improving" and "improvement" count too).
pub const VAGUE_EN: &[&str] = &[
    "improv",
    "increas",
    "enhanc",
    "better",
    "optimi",
    "strengthen",
    "boost",
    "grow",
    "maximi",
    "more",
    "try",
    "strive",
];

/// Recommended number of active KRs per objective.
pub const KRS_PER_OBJECTIVE: std::ops::RangeInclusive<usize> = 3..=5;

/// Lints active objectives and their active KRs, in the order given.
pub fn lint(objectives: &[Objective], key_results: &[KeyResult]) -> Vec<LintFinding> {
    let mut out = Vec::new();
    for o in objectives {
        let krs = key_results.iter().filter(|k| k.objective == o.id);
        lint_objective(o, krs, &mut out);
    }
    out
}

/// Lints one objective (if active) and its active KRs among `krs` (its own, in order). The
/// findings of a set are those of its objectives in board order: no rule looks across
/// objectives, so the room's projection re-lints only the objective an edit touched.
pub fn lint_objective<'a>(
    o: &Objective,
    krs: impl IntoIterator<Item = &'a KeyResult>,
    out: &mut Vec<LintFinding>,
) {
    if o.archived {
        return;
    }
    let target = || Target::Objective(o.id.clone());
    let krs: Vec<&KeyResult> = krs.into_iter().filter(|k| !k.archived).collect();
    if o.title.trim().is_empty() {
        out.push(finding(
            target(),
            LintCode::EmptyTitle,
            "the objective has no title",
        ));
    } else if is_vague(&o.title) {
        out.push(finding(
            target(),
            LintCode::VagueObjective,
            "the objective reads like a vague wish: say what will be different, e.g. with a number",
        ));
    }
    if krs.len() < *KRS_PER_OBJECTIVE.start() {
        let m = format!("{} key results; an objective should have 3 to 5", krs.len());
        out.push(finding(target(), LintCode::TooFewKrs, &m));
    } else if krs.len() > *KRS_PER_OBJECTIVE.end() {
        let m = format!("{} key results; an objective should have 3 to 5", krs.len());
        out.push(finding(target(), LintCode::TooManyKrs, &m));
    }
    for k in krs {
        lint_kr(k, out);
    }
}

fn lint_kr(k: &KeyResult, out: &mut Vec<LintFinding>) {
    let target = || Target::KeyResult(k.id.clone());
    let milestone = matches!(k.metric, Metric::Milestone { .. });
    if k.title.trim().is_empty() {
        out.push(finding(
            target(),
            LintCode::EmptyTitle,
            "the key result has no title",
        ));
    } else if !milestone && !has_number(&k.title) {
        out.push(finding(
            target(),
            LintCode::KrNotMeasurable,
            "the title has no number and the KR has no milestones: how will you know it is done?",
        ));
    }
    let (no_target, wrong_way) = match &k.metric {
        Metric::Percent => (false, false),
        Metric::Increase { start, target, .. } => {
            (target.is_none(), target.is_some_and(|t| t <= *start))
        }
        Metric::Decrease { start, target, .. } => {
            (target.is_none(), target.is_some_and(|t| t >= *start))
        }
        Metric::StayAbove { threshold, .. } | Metric::StayBelow { threshold, .. } => {
            (threshold.is_none(), false)
        }
        Metric::Milestone { milestones } => (milestones.is_empty(), false),
    };
    if no_target {
        out.push(finding(
            target(),
            LintCode::KrNoTarget,
            "the metric has no target (or threshold, or milestones)",
        ));
    }
    if wrong_way {
        out.push(finding(
            target(),
            LintCode::MetricDirection,
            "an increase KR's target must be above its start, a decrease KR's below",
        ));
    }
}

fn finding(target: Target, code: LintCode, message: &str) -> LintFinding {
    LintFinding {
        target,
        code,
        message: message.to_owned(),
    }
}

/// A digit (ASCII or full-width), a Chinese numeral, or a percent sign.
pub fn has_number(s: &str) -> bool {
    s.chars().any(|c| {
        c.is_ascii_digit()
            || ('０'..='９').contains(&c)
            || "零〇一二三四五六七八九十百千万亿两%％".contains(c)
    })
}

/// No number, and a vague verb or wish.
pub fn is_vague(title: &str) -> bool {
    if has_number(title) {
        return false;
    }
    if VAGUE_ZH.iter().any(|w| title.contains(w)) {
        return true;
    }
    let lower = title.to_lowercase();
    lower
        .split(|c: char| !c.is_alphanumeric())
        .any(|word| VAGUE_EN.iter().any(|p| word.starts_with(p)))
}
