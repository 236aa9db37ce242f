//! The review (复盘) of a cycle: scores, each KR's confidence history, and the check-ins and
//! comments that mattered — red flags (confidence ≤ 3, or a drop of 3 or more between
//! consecutive check-ins) and what became of them. Built from an [`OkrSet`] (already cut to
//! what its reader may see) and rendered as JSON ([`Review`]) or Markdown ([`markdown`]).
//! Pure: the caller passes the set and the room's name.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::model::*;
use super::read::kr_history;
use super::rules::{self, RedFlagWhy};

/// `GET /api/rooms/{room}/review`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Review {
    pub room: String,
    /// The time the set was read at.
    pub as_of: Millis,
    pub cycle: Option<Cycle>,
    /// The cycle is closed: scores are final (until an override or a reopen).
    pub closed: bool,
    /// Active objectives in board order.
    pub objectives: Vec<ReviewObjective>,
    /// How many red flags were raised in all.
    pub red_flags: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReviewObjective {
    pub id: String,
    pub title: String,
    pub owner: Option<String>,
    pub progress: f64,
    /// Weighted mean of its KRs' final scores (closed cycles).
    pub score: Option<f64>,
    pub retro: Option<Retro>,
    pub carried_from: Option<CarriedFrom>,
    /// Active KRs, in order.
    pub key_results: Vec<ReviewKr>,
    /// Comments on the objective itself, in time order.
    pub comments: Vec<Comment>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReviewKr {
    pub id: String,
    pub title: String,
    pub owner: Option<String>,
    pub metric: Metric,
    pub weight: f64,
    pub current: Option<f64>,
    pub progress: f64,
    /// The latest confidence.
    pub confidence: Option<u8>,
    /// Proposed and final score (closed cycles).
    pub score: Option<KrScore>,
    pub score_override: Option<ScoreOverride>,
    /// Every check-in, in time order: the confidence history.
    pub history: Vec<ReviewPoint>,
    pub red_flags: Vec<RedFlag>,
}

/// One check-in of a KR.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReviewPoint {
    pub checkin: String,
    pub at: Millis,
    pub author: String,
    pub value: f64,
    pub progress: f64,
    pub confidence: Option<u8>,
    pub comment: String,
}

/// A check-in that raised a red flag, and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RedFlag {
    pub checkin: String,
    pub at: Millis,
    pub author: String,
    pub confidence: u8,
    /// The KR's confidence before it.
    pub previous: Option<u8>,
    pub why: RedFlagWhy,
    /// The check-in's own comment.
    pub comment: String,
    /// Comments on the KR from the flag until its next check-in: the discussion it raised.
    pub comments: Vec<Comment>,
    pub outcome: Outcome,
}

/// What became of a red flag: the KR after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Outcome {
    /// Check-ins of the KR after the flag.
    pub later_checkins: usize,
    /// The KR's confidence now (its latest).
    pub confidence: Option<u8>,
    /// The KR's progress now.
    pub progress: f64,
    /// The latest confidence is back at 7 or more (on track) after the flag.
    pub recovered: bool,
}

/// The review of `set` (cut to its reader) of room `room`.
pub fn review(room: &str, set: &OkrSet) -> Review {
    let mut objectives = Vec::new();
    let mut flags = 0;
    for o in set.objectives.iter().filter(|o| !o.archived) {
        let mut krs = Vec::new();
        for k in set
            .key_results
            .iter()
            .filter(|k| k.objective == o.id && !k.archived)
        {
            let kr = review_kr(k, set);
            flags += kr.red_flags.len();
            krs.push(kr);
        }
        objectives.push(ReviewObjective {
            id: o.id.clone(),
            title: o.title.clone(),
            owner: o.owner.clone(),
            progress: o.progress,
            score: o.score,
            retro: o.retro.clone(),
            carried_from: o.carried_from.clone(),
            key_results: krs,
            comments: set
                .comments
                .iter()
                .filter(|c| c.target == Target::Objective(o.id.clone()))
                .cloned()
                .collect(),
        });
    }
    Review {
        room: room.to_owned(),
        as_of: set.as_of,
        closed: set.cycle.as_ref().is_some_and(|c| c.closed),
        cycle: set.cycle.clone(),
        objectives,
        red_flags: flags,
    }
}

fn review_kr(k: &KeyResult, set: &OkrSet) -> ReviewKr {
    let checkins: Vec<&Checkin> = set
        .checkins
        .iter()
        .filter(|c| c.key_result == k.id)
        .collect();
    let points = kr_history(k, checkins.iter().copied());
    let history: Vec<ReviewPoint> = points
        .iter()
        .zip(&checkins)
        .map(|(p, c)| ReviewPoint {
            checkin: p.checkin.clone(),
            at: p.at,
            author: p.author.clone(),
            value: p.value,
            progress: p.progress,
            confidence: p.confidence,
            comment: c.comment.clone(),
        })
        .collect();
    let target = Target::KeyResult(k.id.clone());
    let mut red_flags = Vec::new();
    let mut previous = None;
    for (i, c) in checkins.iter().enumerate() {
        let Some(confidence) = c.confidence else {
            continue;
        };
        if let Some(why) = rules::red_flag(previous, confidence) {
            let next_at = checkins.get(i + 1).map(|n| n.at);
            let later = &checkins[i + 1..];
            let last_confidence = later.iter().rev().find_map(|l| l.confidence);
            red_flags.push(RedFlag {
                checkin: c.id.clone(),
                at: c.at,
                author: c.author.clone(),
                confidence,
                previous,
                why,
                comment: c.comment.clone(),
                comments: set
                    .comments
                    .iter()
                    .filter(|m| m.target == target && m.at >= c.at)
                    .filter(|m| next_at.is_none_or(|n| m.at < n))
                    .cloned()
                    .collect(),
                outcome: Outcome {
                    later_checkins: later.len(),
                    confidence: k.confidence,
                    progress: k.progress,
                    recovered: last_confidence.is_some_and(|l| l >= 7),
                },
            });
        }
        previous = Some(confidence);
    }
    ReviewKr {
        id: k.id.clone(),
        title: k.title.clone(),
        owner: k.owner.clone(),
        metric: k.metric.clone(),
        weight: k.weight,
        current: k.current,
        progress: k.progress,
        confidence: k.confidence,
        score: k.score.clone(),
        score_override: k.score_override.clone(),
        history,
        red_flags,
    }
}

/// The language of the Markdown's own words (titles and notes are as written).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Lang {
    #[default]
    En,
    Zh,
}

struct Words {
    review: &'static str,
    closed: &'static str,
    open: &'static str,
    objective_score: &'static str,
    progress: &'static str,
    owner: &'static str,
    kr: &'static str,
    confidence: &'static str,
    proposed: &'static str,
    final_score: &'static str,
    reason: &'static str,
    history: &'static str,
    red_flags: &'static str,
    none: &'static str,
    was: &'static str,
    became: &'static str,
    later: &'static str,
    recovered: &'static str,
    not_recovered: &'static str,
    retro: &'static str,
    worked: &'static str,
    did_not: &'static str,
    next: &'static str,
    comments: &'static str,
    carried: &'static str,
}

const EN: Words = Words {
    review: "Review",
    closed: "Closed",
    open: "The cycle is still open: no scores yet.",
    objective_score: "score",
    progress: "progress",
    owner: "Owner",
    kr: "Key result",
    confidence: "Confidence",
    proposed: "Proposed",
    final_score: "Final",
    reason: "Reason",
    history: "Confidence history",
    red_flags: "Red flags",
    none: "none",
    was: "was",
    became: "What became of it",
    later: "later check-ins",
    recovered: "recovered",
    not_recovered: "not recovered",
    retro: "Retrospective",
    worked: "What worked",
    did_not: "What did not",
    next: "What next",
    comments: "Comments",
    carried: "Carried over from",
};

const ZH: Words = Words {
    review: "复盘",
    closed: "已关闭",
    open: "周期尚未关闭：还没有评分。",
    objective_score: "评分",
    progress: "进度",
    owner: "负责人",
    kr: "关键结果",
    confidence: "信心指数",
    proposed: "建议评分",
    final_score: "最终评分",
    reason: "理由",
    history: "信心指数变化",
    red_flags: "红旗",
    none: "无",
    was: "之前",
    became: "后来",
    later: "次后续更新",
    recovered: "已恢复",
    not_recovered: "未恢复",
    retro: "复盘",
    worked: "做得好的",
    did_not: "没做好的",
    next: "下一步",
    comments: "评论",
    carried: "延续自",
};

/// One line of a table cell or list item: no pipes or line breaks.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\r', '\n'], " ")
}

fn score(s: Option<f64>) -> String {
    s.map_or_else(|| "—".into(), |s| format!("{s:.1}"))
}

fn conf(c: Option<u8>) -> String {
    c.map_or_else(|| "—".into(), |c| c.to_string())
}

/// The review as a Markdown document.
pub fn markdown(r: &Review, lang: Lang) -> String {
    use std::fmt::Write;
    let w = match lang {
        Lang::En => &EN,
        Lang::Zh => &ZH,
    };
    let mut md = String::new();
    let _ = write!(md, "# {}: {}", w.review, r.room);
    if let Some(c) = &r.cycle {
        let _ = write!(md, " ({} – {})", c.starts, c.ends);
    }
    md.push_str("\n\n");
    match r.cycle.as_ref().filter(|c| c.closed) {
        Some(c) => {
            let at = c.closed_at.map(rules::format_date).unwrap_or_default();
            let by = c.closed_by.as_deref().unwrap_or("");
            let _ = writeln!(md, "{}: {at} ({by})\n", w.closed);
        }
        None => {
            let _ = writeln!(md, "{}\n", w.open);
        }
    }
    for (i, o) in r.objectives.iter().enumerate() {
        let _ = writeln!(
            md,
            "## {}. {} — {} {} · {} {:.0}%\n",
            i + 1,
            cell(&o.title),
            w.objective_score,
            o.score.map_or_else(|| "—".into(), |s| format!("{s:.2}")),
            w.progress,
            o.progress
        );
        if let Some(owner) = &o.owner {
            let _ = writeln!(md, "{}: {owner}\n", w.owner);
        }
        if let Some(from) = &o.carried_from {
            let id = from.objective.as_deref().unwrap_or_default();
            let _ = writeln!(md, "{}: {} / {id}\n", w.carried, from.room);
        }
        if !o.key_results.is_empty() {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} |\n|---|---|---|---|---|---|",
                w.kr, w.progress, w.confidence, w.proposed, w.final_score, w.reason
            );
            for k in &o.key_results {
                let _ = writeln!(
                    md,
                    "| {} | {:.0}% | {} | {} | {} | {} |",
                    cell(&k.title),
                    k.progress,
                    conf(k.confidence),
                    score(k.score.as_ref().map(|s| s.proposed)),
                    score(k.score.as_ref().map(|s| s.final_score)),
                    k.score_override
                        .as_ref()
                        .map(|s| format!("{} ({})", cell(&s.reason), s.by))
                        .unwrap_or_default(),
                );
            }
            md.push('\n');
            let _ = writeln!(md, "### {}\n", w.history);
            for k in &o.key_results {
                let series: Vec<String> = k.history.iter().map(|p| conf(p.confidence)).collect();
                let series = if series.is_empty() {
                    w.none.to_owned()
                } else {
                    series.join(" → ")
                };
                let _ = writeln!(md, "- {}: {series}", cell(&k.title));
            }
            md.push('\n');
            let flags: Vec<(&ReviewKr, &RedFlag)> = o
                .key_results
                .iter()
                .flat_map(|k| k.red_flags.iter().map(move |f| (k, f)))
                .collect();
            let _ = writeln!(md, "### {}\n", w.red_flags);
            if flags.is_empty() {
                let _ = writeln!(md, "{}\n", w.none);
            }
            for (k, f) in flags {
                let was = f
                    .previous
                    .map(|p| format!(" ({} {p})", w.was))
                    .unwrap_or_default();
                let _ = write!(
                    md,
                    "- {} · {} · {}: {}{was} — {}",
                    rules::format_date(f.at),
                    cell(&k.title),
                    w.confidence,
                    f.confidence,
                    f.author
                );
                if !f.comment.is_empty() {
                    let _ = write!(md, ": “{}”", cell(&f.comment));
                }
                md.push('\n');
                for c in &f.comments {
                    let _ = writeln!(md, "  - {} ({}): {}", w.comments, c.author, cell(&c.text));
                }
                let _ = writeln!(
                    md,
                    "  - {}: {} {}; {} {}, {} {:.0}% — {}",
                    w.became,
                    f.outcome.later_checkins,
                    w.later,
                    w.confidence,
                    conf(f.outcome.confidence),
                    w.progress,
                    f.outcome.progress,
                    if f.outcome.recovered {
                        w.recovered
                    } else {
                        w.not_recovered
                    }
                );
            }
            if !md.ends_with("\n\n") {
                md.push('\n');
            }
        }
        if let Some(retro) = &o.retro {
            let _ = writeln!(md, "### {}\n", w.retro);
            for (label, text) in [
                (w.worked, &retro.worked),
                (w.did_not, &retro.did_not),
                (w.next, &retro.next),
            ] {
                if !text.trim().is_empty() {
                    let _ = writeln!(md, "- **{label}**: {}", cell(text));
                }
            }
            md.push('\n');
        }
        if !o.comments.is_empty() {
            let _ = writeln!(md, "### {}\n", w.comments);
            for c in &o.comments {
                let _ = writeln!(
                    md,
                    "- {} ({}): {}",
                    rules::format_date(c.at),
                    c.author,
                    cell(&c.text)
                );
            }
            md.push('\n');
        }
    }
    md
}
