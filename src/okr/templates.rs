//! The built-in OKR templates: the method's own examples, in Chinese and English, as data
//! (`templates.json`, compiled in), and an org's own ones (kept in its settings under
//! `template/{name}`, named `org:{name}` where they are used, so that they shadow no built-in).
//! [`validate`] checks one as the commands that it becomes would be checked; [`commands`]
//! turns one into the commands that fill an empty room.

use std::sync::OnceLock;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::commands::{validate as check, KrCreate, ObjectiveCreate};
use super::model::Metric;
use super::schema::limits;
use super::{CommandError, ErrorCode};

/// The languages every template is written in.
pub const LANGS: &[&str] = &["zh", "en"];

/// How an org template is named where it is used (`org:quarterly`).
pub const ORG_PREFIX: &str = "org:";
/// Where an org keeps its template `name`: its setting `template/{name}`.
pub const KEY_PREFIX: &str = "template/";
/// Most objectives in a template.
pub const MAX_OBJECTIVES: usize = 20;
/// Most KRs under one objective of a template.
pub const MAX_KRS: usize = 10;
/// Largest org template accepted, in bytes of JSON.
pub const MAX_BODY: usize = 64 * 1024;
/// The metric kinds a template's KR may have.
pub const KINDS: &[&str] = &[
    "percent",
    "increase",
    "decrease",
    "stay_above",
    "stay_below",
];

/// The store key of org template `name`.
pub fn key(name: &str) -> String {
    format!("{KEY_PREFIX}{name}")
}

/// A text in each language. The built-in ones have both; an org's may leave one out (empty),
/// and the other one stands in for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Localized {
    #[serde(default)]
    pub zh: String,
    #[serde(default)]
    pub en: String,
}

impl Localized {
    /// The text in `lang` (`zh` unless `en`), or in the other language when it has none.
    pub fn get(&self, lang: &str) -> &str {
        let (wanted, other) = match lang {
            "en" => (&self.en, &self.zh),
            _ => (&self.zh, &self.en),
        };
        if wanted.is_empty() {
            other
        } else {
            wanted
        }
    }
}

/// One template: a few objectives with their KRs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Template {
    /// A built-in's name (`marketing`), or an org's as used (`org:quarterly`). In the body of
    /// `PUT /api/orgs/{org}/templates/{name}` it may be left out (the path names it).
    #[serde(default)]
    pub name: String,
    /// `true` for the caller's org's own templates in `GET /api/templates`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub org: bool,
    pub title: Localized,
    pub objectives: Vec<TemplateObjective>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TemplateObjective {
    pub title: Localized,
    pub key_results: Vec<TemplateKr>,
}

/// A KR with a real metric: `kind` as in a metric, `start` and `target` (increase, decrease)
/// or `threshold` (stay above / below), and a unit in each language.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TemplateKr {
    pub title: Localized,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<Localized>,
}

impl TemplateKr {
    /// Its metric with the unit in `lang`.
    pub fn metric(&self, lang: &str) -> Metric {
        let unit = self.unit.as_ref().map(|u| u.get(lang).to_owned());
        match self.kind.as_str() {
            "increase" => Metric::Increase {
                start: self.start.unwrap_or(0.0),
                target: self.target,
                unit,
            },
            "decrease" => Metric::Decrease {
                start: self.start.unwrap_or(0.0),
                target: self.target,
                unit,
            },
            "stay_above" => Metric::StayAbove {
                threshold: self.threshold,
                unit,
            },
            "stay_below" => Metric::StayBelow {
                threshold: self.threshold,
                unit,
            },
            _ => Metric::Percent,
        }
    }
}

/// Every built-in template.
pub fn builtin() -> &'static [Template] {
    static ALL: OnceLock<Vec<Template>> = OnceLock::new();
    ALL.get_or_init(|| {
        serde_json::from_str(include_str!("templates.json")).expect("templates.json is valid")
    })
}

/// The built-in template `name`.
pub fn find(name: &str) -> Option<&'static Template> {
    builtin().iter().find(|t| t.name == name)
}

fn refused(code: ErrorCode, field: &str, message: impl Into<String>) -> CommandError {
    CommandError::new(code, field, message)
}

/// A localized text: one language at least, each within `max` characters.
fn localized(field: &str, text: &Localized, max: usize) -> Result<(), CommandError> {
    if text.zh.trim().is_empty() && text.en.trim().is_empty() {
        let message = format!("{field} needs a text in zh or en");
        return Err(refused(ErrorCode::MissingField, field, message));
    }
    check::text(&format!("{field}.zh"), &text.zh, max, false)?;
    check::text(&format!("{field}.en"), &text.en, max, false)?;
    Ok(())
}

/// Checks an org's template whole, as the commands it becomes would be checked (titles within
/// [`limits::TITLE_MAX`], every KR's metric valid in each language, at most
/// [`MAX_OBJECTIVES`] × [`MAX_KRS`]); the error names the field
/// (`objectives[0].key_results[1].metric.target`).
pub fn validate(template: &Template) -> Result<(), CommandError> {
    localized("title", &template.title, limits::TITLE_MAX)?;
    if template.objectives.is_empty() {
        let message = "a template has at least one objective";
        return Err(refused(ErrorCode::MissingField, "objectives", message));
    }
    if template.objectives.len() > MAX_OBJECTIVES {
        let message = format!("a template has at most {MAX_OBJECTIVES} objectives");
        return Err(refused(ErrorCode::TooMany, "objectives", message));
    }
    for (i, o) in template.objectives.iter().enumerate() {
        let field = format!("objectives[{i}]");
        localized(&format!("{field}.title"), &o.title, limits::TITLE_MAX)?;
        if o.key_results.len() > MAX_KRS {
            let message = format!("an objective of a template has at most {MAX_KRS} KRs");
            return Err(refused(
                ErrorCode::TooMany,
                &format!("{field}.key_results"),
                message,
            ));
        }
        for (j, k) in o.key_results.iter().enumerate() {
            let field = format!("{field}.key_results[{j}]");
            localized(&format!("{field}.title"), &k.title, limits::TITLE_MAX)?;
            if !KINDS.contains(&k.kind.as_str()) {
                let message = format!("kind is one of {}", KINDS.join(", "));
                return Err(refused(
                    ErrorCode::InvalidValue,
                    &format!("{field}.kind"),
                    message,
                ));
            }
            for lang in LANGS {
                check::metric(&k.metric(lang)).map_err(|mut e| {
                    // `metric.target` is the KR's `target` here, `metric.unit` its `unit.{lang}`.
                    let inner = e.field.take().unwrap_or_default();
                    let inner = inner.strip_prefix("metric.").unwrap_or(&inner);
                    e.field = Some(match inner {
                        "unit" => format!("{field}.unit.{lang}"),
                        _ => format!("{field}.{inner}"),
                    });
                    e
                })?;
            }
        }
    }
    Ok(())
}

/// The commands that fill a room from `template` in `lang`: each objective, and its KRs (whose
/// `objective` is filled in once the objective exists).
pub fn commands(template: &Template, lang: &str) -> Vec<(ObjectiveCreate, Vec<KrCreate>)> {
    template
        .objectives
        .iter()
        .map(|o| {
            let create = ObjectiveCreate {
                title: o.title.get(lang).to_owned(),
                description: None,
                owner: None,
                team: None,
                kind: None,
                visibility: None,
                commitment: None,
                aligned_to: Vec::new(),
                carried_from: None,
            };
            let krs = o
                .key_results
                .iter()
                .map(|k| KrCreate {
                    objective: String::new(),
                    title: k.title.get(lang).to_owned(),
                    owner: None,
                    metric: k.metric(lang),
                    weight: None,
                    cadence_days: None,
                    carried_from: None,
                })
                .collect();
            (create, krs)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org_template(kr: serde_json::Value) -> Template {
        serde_json::from_value(serde_json::json!({
            "title": {"zh": "季度模板"},
            "objectives": [{"title": {"en": "Grow"}, "key_results": [kr]}]
        }))
        .unwrap()
    }

    #[test]
    fn the_built_ins_are_valid_org_templates_too() {
        for t in builtin() {
            assert_eq!(validate(t), Ok(()), "{}", t.name);
        }
    }

    #[test]
    fn an_org_template_is_checked_as_its_commands_would_be() {
        let ok = org_template(serde_json::json!(
            {"title": {"zh": "留存达40%"}, "kind": "increase", "start": 20, "target": 40}
        ));
        assert_eq!(validate(&ok), Ok(()));
        // One language stands in for the other.
        assert_eq!(commands(&ok, "en")[0].1[0].title, "留存达40%");
        assert_eq!(commands(&ok, "zh")[0].0.title, "Grow");
        let field = |kr: serde_json::Value| validate(&org_template(kr)).unwrap_err().field;
        let f = field(serde_json::json!(
            {"title": {"zh": "x"}, "kind": "increase", "start": 50, "target": 40}
        ));
        assert_eq!(f.as_deref(), Some("objectives[0].key_results[0].target"));
        let f = field(serde_json::json!({"title": {"zh": "x"}, "kind": "stay_above"}));
        assert_eq!(f.as_deref(), Some("objectives[0].key_results[0].threshold"));
        let f = field(serde_json::json!({"title": {"zh": "x"}, "kind": "milestone"}));
        assert_eq!(f.as_deref(), Some("objectives[0].key_results[0].kind"));
        let f = field(serde_json::json!({"title": {}, "kind": "percent"}));
        assert_eq!(f.as_deref(), Some("objectives[0].key_results[0].title"));
        let long = "长".repeat(limits::TITLE_MAX + 1);
        let f = field(serde_json::json!({"title": {"zh": long}, "kind": "percent"}));
        assert_eq!(f.as_deref(), Some("objectives[0].key_results[0].title.zh"));
        let f = field(serde_json::json!(
            {"title": {"zh": "x"}, "kind": "stay_below", "threshold": 1, "unit": {"zh": "次", "en": "u".repeat(99)}}
        ));
        assert_eq!(f.as_deref(), Some("objectives[0].key_results[0].unit.en"));
        let mut many = ok.clone();
        many.objectives = vec![ok.objectives[0].clone(); MAX_OBJECTIVES + 1];
        assert_eq!(
            validate(&many).unwrap_err().field.as_deref(),
            Some("objectives")
        );
        let mut krs = ok.clone();
        krs.objectives[0].key_results = vec![ok.objectives[0].key_results[0].clone(); MAX_KRS + 1];
        assert_eq!(
            validate(&krs).unwrap_err().field.as_deref(),
            Some("objectives[0].key_results")
        );
    }
}
