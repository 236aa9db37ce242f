//! Who may read which objective: visibility as a pure rule, and the OKR set, events and history
//! cut down to what one reader may see.
//!
//! An objective is `public` (the whole org reads it), `team` (the room's members read it) or
//! `private` (its owner and admins only). Everything under an objective shares its visibility:
//! its key results, their check-ins and history, the comments on either, the mentions in those,
//! the lint about them. A [`Reader`] says how far a principal sees ([`Sees`]) and who it is (an
//! owner always reads their own objectives).
//!
//! [`Hidden`] is the set of objectives a reader may not see in a room at one moment; a reader
//! with none hidden is served the room's shared encodings, so the common case (members of a
//! team room of public and team objectives) costs nothing extra.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::events::Event;
use super::model::{LintFinding, Objective, OkrSet, Target, Visibility};
use super::projection::Projection;

/// How far a reader sees in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Sees {
    /// Same org, no role in the room: public objectives (and their own).
    Public,
    /// A member of the room (viewer, editor): public and team objectives (and their own).
    Members,
    /// An admin of the room, the owner of a personal room, or an open server: everything.
    All,
}

/// Who reads, and how far they see.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reader {
    /// The reader's user id (`None`: an anonymous reader of an open server, who sees all).
    pub user: Option<String>,
    pub sees: Sees,
}

impl Reader {
    /// A reader who sees everything (an admin, an open server).
    pub fn all() -> Self {
        Reader {
            user: None,
            sees: Sees::All,
        }
    }

    /// Whether this reader may read an objective of `visibility` owned by `owner`.
    pub fn may_read(&self, visibility: Visibility, owner: Option<&str>) -> bool {
        let own = self.user.is_some() && self.user.as_deref() == owner;
        match (self.sees, visibility) {
            (Sees::All, _) | (_, Visibility::Public) => true,
            (Sees::Members, Visibility::Team) => true,
            _ => own,
        }
    }

    pub fn may_read_objective(&self, o: &Objective) -> bool {
        self.may_read(o.visibility, o.owner.as_deref())
    }

    /// Whether this reader may read what has `audience` (`None`: the room itself).
    pub fn may_read_audience(&self, audience: Option<&Audience>) -> bool {
        audience.is_none_or(|(v, owner)| self.may_read(*v, owner.as_deref()))
    }

    /// The objectives of the read set `okr` this reader may not see.
    pub fn hidden_in(&self, okr: &OkrSet) -> Hidden {
        if self.sees == Sees::All {
            return Hidden::default();
        }
        let ids: BTreeSet<String> = (okr.objectives.iter())
            .filter(|o| !self.may_read_objective(o))
            .map(|o| o.id.clone())
            .collect();
        Hidden(Arc::new(ids))
    }

    /// The objectives of `okr` this reader may not see.
    pub fn hidden(&self, okr: &Projection) -> Hidden {
        if self.sees == Sees::All {
            return Hidden::default();
        }
        let ids: BTreeSet<String> = okr
            .objectives()
            .filter(|o| !self.may_read_objective(o))
            .map(|o| o.id.clone())
            .collect();
        Hidden(Arc::new(ids))
    }
}

/// The objectives one reader may not see (cheap to clone and compare).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hidden(Arc<BTreeSet<String>>);

impl Hidden {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, objective: &str) -> bool {
        self.0.contains(objective)
    }

    /// Whether an event about `about` may be shown.
    pub fn shows(&self, about: &About) -> bool {
        match about {
            About::Room | About::Lint => true,
            About::Objective(o) => !self.contains(o),
        }
    }

    /// `okr` without the hidden objectives and everything under them.
    pub fn filter_set(&self, okr: &OkrSet) -> OkrSet {
        if self.is_empty() {
            return okr.clone();
        }
        let hidden_krs: BTreeSet<&str> = (okr.key_results.iter())
            .filter(|k| self.contains(&k.objective))
            .map(|k| k.id.as_str())
            .collect();
        let hidden_checkins: BTreeSet<&str> = (okr.checkins.iter())
            .filter(|c| hidden_krs.contains(c.key_result.as_str()))
            .map(|c| c.id.as_str())
            .collect();
        let hides_target = |t: &Target| match t {
            Target::Objective(o) => self.contains(o),
            Target::KeyResult(k) => hidden_krs.contains(k.as_str()),
        };
        let hidden_comments: BTreeSet<&str> = (okr.comments.iter())
            .filter(|c| hides_target(&c.target))
            .map(|c| c.id.as_str())
            .collect();
        let hides_path = |path: &str| {
            let mut parts = path.split('/');
            let (root, id) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            match root {
                "objectives" => self.contains(id),
                "key_results" => hidden_krs.contains(id),
                "checkins" => hidden_checkins.contains(id),
                "comments" => hidden_comments.contains(id),
                _ => false,
            }
        };
        OkrSet {
            as_of: okr.as_of,
            cycle: okr.cycle.clone(),
            objectives: (okr.objectives.iter())
                .filter(|o| !self.contains(&o.id))
                .cloned()
                .collect(),
            key_results: (okr.key_results.iter())
                .filter(|k| !hidden_krs.contains(k.id.as_str()))
                .cloned()
                .collect(),
            checkins: (okr.checkins.iter())
                .filter(|c| !hidden_checkins.contains(c.id.as_str()))
                .cloned()
                .collect(),
            comments: (okr.comments.iter())
                .filter(|c| !hidden_comments.contains(c.id.as_str()))
                .cloned()
                .collect(),
            problems: (okr.problems.iter())
                .filter(|p| !hides_path(&p.path))
                .cloned()
                .collect(),
            lint: self.filter_lint(&okr.lint, |k| {
                (okr.key_results.iter())
                    .find(|kr| kr.id == k)
                    .map(|kr| kr.objective.as_str())
            }),
        }
    }

    /// The lint findings about objectives this reader sees (`objective_of` maps a KR id to
    /// its objective's).
    pub fn filter_lint<'a>(
        &self,
        lint: &[LintFinding],
        objective_of: impl Fn(&str) -> Option<&'a str>,
    ) -> Vec<LintFinding> {
        let hides = |t: &Target| match t {
            Target::Objective(o) => self.contains(o),
            Target::KeyResult(k) => objective_of(k).is_none_or(|o| self.contains(o)),
        };
        lint.iter().filter(|f| !hides(&f.target)).cloned().collect()
    }
}

/// What an event is about, for deciding who may see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum About {
    /// The room itself (the cycle): every reader.
    Room,
    /// Everything under this objective.
    Objective(String),
    /// The lint list, cut per reader.
    Lint,
}

impl About {
    /// What `event` is about, looked up in `okr` as it is after the event.
    pub fn of(event: &Event, okr: &Projection) -> About {
        let of_kr = |kr: &str| {
            okr.key_result(kr)
                .map(|k| About::Objective(k.objective.clone()))
                // A KR the projection does not know (removed, unreadable): nothing to show.
                .unwrap_or_else(|| About::Objective(String::new()))
        };
        let of_target = |t: &Target| match t {
            Target::Objective(o) => About::Objective(o.clone()),
            Target::KeyResult(k) => of_kr(k),
        };
        match event {
            Event::CycleUpdated { .. }
            | Event::CycleClosed { .. }
            | Event::CycleReopened { .. } => About::Room,
            Event::ObjectiveRetro { objective, .. } => About::Objective(objective.clone()),
            Event::KrScored { objective, .. } => About::Objective(objective.clone()),
            Event::ObjectiveCreated { objective } => About::Objective(objective.id.clone()),
            Event::ObjectiveUpdated { objective, .. }
            | Event::ObjectiveArchived { objective, .. }
            | Event::ObjectiveRemoved { objective } => About::Objective(objective.clone()),
            Event::KrCreated { key_result } => About::Objective(key_result.objective.clone()),
            Event::KrUpdated { objective, .. }
            | Event::KrArchived { objective, .. }
            | Event::KrRemoved { objective, .. }
            | Event::Reminder { objective, .. } => About::Objective(objective.clone()),
            Event::CheckinCreated { checkin } => of_kr(&checkin.key_result),
            Event::CommentCreated { comment } => of_target(&comment.target),
            Event::Mention { target, .. } => of_target(target),
            Event::LintChanged { .. } => About::Lint,
        }
    }
}

/// An objective's visibility and owner: what decides who reads it.
pub type Audience = (Visibility, Option<String>);

/// The audience of objective `id` in `okr`, if it is there.
pub fn audience_of(okr: &Projection, id: &str) -> Option<Audience> {
    okr.objective(id).map(|o| (o.visibility, o.owner.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(user: &str, sees: Sees) -> Reader {
        Reader {
            user: Some(user.into()),
            sees,
        }
    }

    #[test]
    fn visibility_rules() {
        use Visibility::*;
        let org = reader("li", Sees::Public);
        let member = reader("li", Sees::Members);
        let admin = reader("boss", Sees::All);
        assert!(org.may_read(Public, Some("ana")));
        assert!(!org.may_read(Team, Some("ana")));
        assert!(!org.may_read(Private, Some("ana")));
        assert!(member.may_read(Team, Some("ana")));
        assert!(!member.may_read(Private, Some("ana")));
        assert!(
            member.may_read(Private, Some("li")),
            "an owner reads their own"
        );
        assert!(org.may_read(Team, Some("li")));
        assert!(admin.may_read(Private, Some("ana")));
        assert!(!member.may_read(Private, None));
    }
}
