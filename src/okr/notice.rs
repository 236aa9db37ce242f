//! Notices: the events worth a chat message (a check-in, a comment, a red flag, a reminder),
//! with what a message needs to be read on its own — the KR's title, the value before and
//! after, the confidence before and after. Pure: built from an event and the projection the
//! event was published from.
//!
//! A check-in raises a **red flag** when its confidence is at most [`RED_FLAG_AT`] or it dropped
//! by [`RED_FLAG_DROP`] or more from the KR's previous confidence (the latest one an earlier
//! check-in of the KR gave). Mentions travel inside the check-in or comment that made them (one
//! chat message that `@`s everyone it names), not as notices of their own.

use serde::{Deserialize, Serialize};

use super::model::{Metric, Millis, Target};
use super::{Event, Projection};

/// A confidence at or below this is a red flag (the method's 0–10 scale: 3 and below).
pub const RED_FLAG_AT: u8 = 3;
/// A drop of this much or more from the previous confidence is a red flag.
pub const RED_FLAG_DROP: u8 = 3;

/// What a notice is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    Checkin,
    Comment,
    Reminder,
    /// Reserved for the cycle review (issue 15's review and scoring).
    Review,
}

/// One event worth a chat message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    pub kind: NoticeKind,
    /// The room (filled in by the room).
    #[serde(default)]
    pub room: String,
    /// The event's sequence number and time.
    pub seq: u64,
    pub at: Millis,
    /// Who acted (a check-in's or comment's author; nobody for a reminder).
    pub actor: Option<String>,
    pub objective: Option<Named>,
    pub key_result: Option<Named>,
    /// The KR's value before and after a check-in.
    pub value_before: Option<f64>,
    pub value: Option<f64>,
    pub unit: Option<String>,
    pub confidence: Option<u8>,
    pub confidence_before: Option<u8>,
    pub red_flag: bool,
    /// A check-in's comment or a comment's text.
    pub text: String,
    /// The users mentioned.
    pub mentions: Vec<String>,
    /// A reminder's KR owner, and when its check-in was due.
    pub owner: Option<String>,
    pub due_at: Option<Millis>,
    /// The check-in or comment id (a stable part of a delivery's id).
    pub source: String,
}

/// An entry's id and title.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Named {
    pub id: String,
    pub title: String,
}

/// Whether a check-in of `confidence` after `before` is a red flag.
pub fn is_red_flag(confidence: Option<u8>, before: Option<u8>) -> bool {
    match (confidence, before) {
        (Some(c), _) if c <= RED_FLAG_AT => true,
        (Some(c), Some(b)) => b >= c && b - c >= RED_FLAG_DROP,
        _ => false,
    }
}

fn unit_of(metric: &Metric) -> Option<String> {
    match metric {
        Metric::Percent => Some("%".into()),
        Metric::Increase { unit, .. }
        | Metric::Decrease { unit, .. }
        | Metric::StayAbove { unit, .. }
        | Metric::StayBelow { unit, .. } => unit.clone(),
        Metric::Milestone { .. } => Some("%".into()),
    }
}

fn start_of(metric: &Metric) -> Option<f64> {
    match metric {
        Metric::Increase { start, .. } | Metric::Decrease { start, .. } => Some(*start),
        Metric::Percent | Metric::Milestone { .. } => Some(0.0),
        _ => None,
    }
}

/// The notice for `event` at `seq`, `at`, if it is worth one; `okr` is the projection the
/// event was published from (after the change).
pub fn notice_of(event: &Event, okr: &Projection, seq: u64, at: Millis) -> Option<Notice> {
    let objective_named = |id: &str| {
        okr.objective(id).map(|o| Named {
            id: o.id.clone(),
            title: o.title.clone(),
        })
    };
    let blank = |kind, source: String| Notice {
        kind,
        room: String::new(),
        seq,
        at,
        actor: None,
        objective: None,
        key_result: None,
        value_before: None,
        value: None,
        unit: None,
        confidence: None,
        confidence_before: None,
        red_flag: false,
        text: String::new(),
        mentions: Vec::new(),
        owner: None,
        due_at: None,
        source,
    };
    match event {
        Event::CheckinCreated { checkin: c } => {
            let kr = okr.key_result(&c.key_result)?;
            let mut earlier = okr.checkins_before(&kr.id, c.at, &c.id).peekable();
            let value_before = earlier
                .peek()
                .map(|p| p.value)
                .or_else(|| start_of(&kr.metric));
            let confidence_before = earlier.find_map(|p| p.confidence);
            let mut n = blank(NoticeKind::Checkin, c.id.clone());
            n.actor = Some(c.author.clone());
            n.objective = objective_named(&kr.objective);
            n.key_result = Some(Named {
                id: kr.id.clone(),
                title: kr.title.clone(),
            });
            n.value_before = value_before;
            n.value = Some(c.value);
            n.unit = unit_of(&kr.metric);
            n.confidence = c.confidence;
            n.confidence_before = confidence_before;
            n.red_flag = is_red_flag(c.confidence, confidence_before);
            n.text = c.comment.clone();
            n.mentions = c.mentions.clone();
            Some(n)
        }
        Event::CommentCreated { comment: c } => {
            let mut n = blank(NoticeKind::Comment, c.id.clone());
            n.actor = Some(c.author.clone());
            match &c.target {
                Target::Objective(o) => n.objective = objective_named(o),
                Target::KeyResult(k) => {
                    let kr = okr.key_result(k)?;
                    n.objective = objective_named(&kr.objective);
                    n.key_result = Some(Named {
                        id: kr.id.clone(),
                        title: kr.title.clone(),
                    });
                }
            }
            n.text = c.text.clone();
            n.mentions = c.mentions.clone();
            Some(n)
        }
        Event::Reminder {
            key_result,
            objective,
            owner,
            due_at,
        } => {
            let kr = okr.key_result(key_result)?;
            let mut n = blank(NoticeKind::Reminder, format!("{key_result}@{due_at}"));
            n.objective = objective_named(objective);
            n.key_result = Some(Named {
                id: kr.id.clone(),
                title: kr.title.clone(),
            });
            n.owner = owner.clone();
            n.due_at = Some(*due_at);
            n.mentions = owner.iter().cloned().collect();
            Some(n)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn red_flags_are_low_confidence_or_a_drop_of_three() {
        assert!(is_red_flag(Some(2), None));
        assert!(is_red_flag(Some(3), Some(3)));
        assert!(!is_red_flag(Some(4), None));
        assert!(is_red_flag(Some(5), Some(8)));
        assert!(!is_red_flag(Some(6), Some(8)));
        assert!(!is_red_flag(Some(9), Some(5)));
        assert!(!is_red_flag(None, Some(9)));
    }
}
