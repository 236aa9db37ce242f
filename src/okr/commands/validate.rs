//! Checks of command values on their own (lengths, ranges, metric shapes), without the doc.
//!
//! Each returns the value to write (normalised: mentions de-duplicated, …) or the
//! [`CommandError`] naming the offending field. Checks against the doc's current state
//! (existence, archived, alignment cycles) live with the commands that need them.

use super::{CommandError, ErrorCode};
use crate::okr::model::{AlignRef, CarriedFrom, Metric, Milestone};
use crate::okr::schema::limits;

type Result<T> = std::result::Result<T, CommandError>;

fn err(code: ErrorCode, field: &str, message: impl Into<String>) -> CommandError {
    CommandError::new(code, field, message)
}

/// A text of at most `max` characters; `nonempty` refuses blank ones.
pub(crate) fn text(field: &str, value: &str, max: usize, nonempty: bool) -> Result<String> {
    if nonempty && value.trim().is_empty() {
        return Err(err(
            ErrorCode::InvalidValue,
            field,
            format!("{field} must not be empty"),
        ));
    }
    let n = value.chars().count();
    if n > max {
        return Err(err(
            ErrorCode::TooLong,
            field,
            format!("{field} has {n} characters, at most {max}"),
        ));
    }
    Ok(value.to_owned())
}

/// A user, room or entity id: not blank, at most [`limits::ID_MAX`] characters.
pub(crate) fn id(field: &str, value: &str) -> Result<String> {
    text(field, value, limits::ID_MAX, true)
}

/// Mentioned user ids: each an id, at most [`limits::MENTIONS_MAX`], duplicates dropped.
pub(crate) fn mentions(field: &str, list: &[String]) -> Result<Vec<String>> {
    if list.len() > limits::MENTIONS_MAX {
        return Err(err(
            ErrorCode::TooMany,
            field,
            format!("at most {} mentions", limits::MENTIONS_MAX),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for (i, user) in list.iter().enumerate() {
        let user = id(&format!("{field}[{i}]"), user)?;
        if !out.contains(&user) {
            out.push(user);
        }
    }
    Ok(out)
}

/// A finite number within ±[`limits::NUMBER_MAX`].
pub(crate) fn number(field: &str, value: f64) -> Result<f64> {
    if !value.is_finite() || value.abs() > limits::NUMBER_MAX {
        return Err(err(
            ErrorCode::OutOfRange,
            field,
            format!("{field} must be a number within ±1e15"),
        ));
    }
    Ok(value)
}

pub(crate) fn weight(field: &str, value: f64) -> Result<f64> {
    if !value.is_finite() || !(0.0..=limits::WEIGHT_MAX).contains(&value) {
        return Err(err(
            ErrorCode::OutOfRange,
            field,
            format!("{field} must be within 0–1000"),
        ));
    }
    Ok(value)
}

pub(crate) fn cadence(field: &str, days: u32) -> Result<u32> {
    if days > limits::CADENCE_DAYS_MAX {
        return Err(err(
            ErrorCode::OutOfRange,
            field,
            "cadence_days must be within 0–366",
        ));
    }
    Ok(days)
}

/// Confidence 0–10.
pub(crate) fn confidence(value: i64) -> Result<u8> {
    u8::try_from(value)
        .ok()
        .filter(|c| *c <= limits::CONFIDENCE_MAX)
        .ok_or_else(|| {
            err(
                ErrorCode::OutOfRange,
                "confidence",
                "confidence must be within 0–10",
            )
        })
}

fn unit(field: &str, unit: &Option<String>) -> Result<Option<String>> {
    unit.as_deref()
        .map(|u| text(field, u, limits::UNIT_MAX, false))
        .transpose()
}

/// A complete metric: numbers in range, a target (or threshold, or milestones) present and on
/// the right side of the start.
pub(crate) fn metric(m: &Metric) -> Result<Metric> {
    let target = |t: &Option<f64>, name: &str| -> Result<f64> {
        let field = format!("metric.{name}");
        let t = t.ok_or_else(|| {
            err(
                ErrorCode::MissingField,
                &field,
                format!("this metric needs a {name}"),
            )
        })?;
        number(&field, t)
    };
    Ok(match m {
        Metric::Percent => Metric::Percent,
        Metric::Increase {
            start,
            target: t,
            unit: u,
        } => {
            let start = number("metric.start", *start)?;
            let t = target(t, "target")?;
            if t <= start {
                return Err(err(
                    ErrorCode::InvalidValue,
                    "metric.target",
                    "an increase target must be above the start",
                ));
            }
            Metric::Increase {
                start,
                target: Some(t),
                unit: unit("metric.unit", u)?,
            }
        }
        Metric::Decrease {
            start,
            target: t,
            unit: u,
        } => {
            let start = number("metric.start", *start)?;
            let t = target(t, "target")?;
            if t >= start {
                return Err(err(
                    ErrorCode::InvalidValue,
                    "metric.target",
                    "a decrease target must be below the start",
                ));
            }
            Metric::Decrease {
                start,
                target: Some(t),
                unit: unit("metric.unit", u)?,
            }
        }
        Metric::StayAbove { threshold, unit: u } => Metric::StayAbove {
            threshold: Some(target(threshold, "threshold")?),
            unit: unit("metric.unit", u)?,
        },
        Metric::StayBelow { threshold, unit: u } => Metric::StayBelow {
            threshold: Some(target(threshold, "threshold")?),
            unit: unit("metric.unit", u)?,
        },
        Metric::Milestone { milestones } => Metric::Milestone {
            milestones: milestone_list(milestones)?,
        },
    })
}

fn milestone_list(list: &[Milestone]) -> Result<Vec<Milestone>> {
    if list.is_empty() {
        return Err(err(
            ErrorCode::MissingField,
            "metric.milestones",
            "a milestone KR needs at least one milestone",
        ));
    }
    if list.len() > limits::MILESTONES_MAX {
        return Err(err(
            ErrorCode::TooMany,
            "metric.milestones",
            format!("at most {} milestones", limits::MILESTONES_MAX),
        ));
    }
    let mut out = Vec::with_capacity(list.len());
    for (i, m) in list.iter().enumerate() {
        out.push(Milestone {
            title: text(
                &format!("metric.milestones[{i}].title"),
                &m.title,
                limits::TITLE_MAX,
                true,
            )?,
            weight: weight(&format!("metric.milestones[{i}].weight"), m.weight)?,
            done: m.done,
        });
    }
    if out.iter().map(|m| m.weight).sum::<f64>() <= 0.0 {
        return Err(err(
            ErrorCode::InvalidValue,
            "metric.milestones",
            "the milestones' weights must not all be 0",
        ));
    }
    Ok(out)
}

/// The shape of parent refs: exactly one of objective / key_result, ids within limits, at
/// most [`limits::ALIGNED_TO_MAX`], duplicates dropped.
pub(crate) fn align_refs(field: &str, refs: &[AlignRef]) -> Result<Vec<AlignRef>> {
    let mut out: Vec<AlignRef> = Vec::with_capacity(refs.len());
    for (i, r) in refs.iter().enumerate() {
        let at = |name: &str| format!("{field}[{i}].{name}");
        let room = r
            .room
            .as_deref()
            .map(|room| id(&at("room"), room))
            .transpose()?;
        let (objective, key_result) = match (&r.objective, &r.key_result) {
            (Some(o), None) => (Some(id(&at("objective"), o)?), None),
            (None, Some(k)) => (None, Some(id(&at("key_result"), k)?)),
            (None, None) => {
                return Err(err(
                    ErrorCode::MissingField,
                    &at("objective"),
                    "a parent needs an objective or a key_result",
                ));
            }
            (Some(_), Some(_)) => {
                return Err(err(
                    ErrorCode::InvalidValue,
                    &at("key_result"),
                    "a parent is an objective or a key_result, not both",
                ));
            }
        };
        let r = AlignRef {
            room,
            objective,
            key_result,
        };
        if !out.contains(&r) {
            out.push(r);
        }
    }
    if out.len() > limits::ALIGNED_TO_MAX {
        return Err(err(
            ErrorCode::TooMany,
            field,
            format!("at most {} parents", limits::ALIGNED_TO_MAX),
        ));
    }
    Ok(out)
}

/// A carry-over link: a room id and exactly the kind of id it should name (`objective` for an
/// objective, else `key_result`).
pub(crate) fn carried_from(field: &str, r: &CarriedFrom, objective: bool) -> Result<CarriedFrom> {
    id(&format!("{field}.room"), &r.room)?;
    let (want, other, name) = if objective {
        (&r.objective, &r.key_result, "objective")
    } else {
        (&r.key_result, &r.objective, "key_result")
    };
    match (want, other) {
        (Some(v), None) => {
            id(&format!("{field}.{name}"), v)?;
            Ok(r.clone())
        }
        _ => Err(err(
            ErrorCode::InvalidValue,
            field,
            format!("{field} names a room and one {name}"),
        )),
    }
}
