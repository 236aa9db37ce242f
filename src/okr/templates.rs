//! The built-in OKR templates: the method's own examples, in Chinese and English, as data
//! (`templates.json`, compiled in). [`commands`] turns one into the commands that fill an
//! empty room.

use std::sync::OnceLock;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::commands::{KrCreate, ObjectiveCreate};
use super::model::Metric;

/// The languages every template is written in.
pub const LANGS: &[&str] = &["zh", "en"];

/// A text in each language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Localized {
    pub zh: String,
    pub en: String,
}

impl Localized {
    pub fn get(&self, lang: &str) -> &str {
        match lang {
            "en" => &self.en,
            _ => &self.zh,
        }
    }
}

/// One template: a few objectives with their KRs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Template {
    pub name: String,
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
