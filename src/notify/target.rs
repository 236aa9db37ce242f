//! A robot (a chat robot or a webhook target) as an org's admin configures it, and where it is
//! stored: the org settings of the [`DocStore`](crate::store::DocStore), key `robot/{name}`,
//! which every node reads.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::okr::notice::{Notice, NoticeKind};

/// Longest robot name, in bytes.
pub const MAX_NAME: usize = 64;
/// Most robots an org may configure.
pub const MAX_ROBOTS: usize = 64;

/// What a target speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A DingTalk custom robot (自定义机器人), signed.
    Dingtalk,
    /// A Feishu / Lark custom bot (自定义机器人), signed.
    #[serde(alias = "feishu")]
    Lark,
    /// A Slack incoming webhook.
    Slack,
    /// Generic JSON, signed per Standard Webhooks.
    Webhook,
}

/// Which message a chat robot gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Plain text (DingTalk `text`, Lark `text`, Slack `text`).
    #[default]
    Text,
    /// DingTalk `markdown`, Lark `interactive` card, Slack mrkdwn `blocks`.
    Rich,
}

/// Which notices a target wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Filter {
    /// Every check-in.
    Checkin,
    /// Check-ins that raise a red flag.
    RedFlag,
    Comment,
    /// Check-ins and comments that mention someone.
    Mention,
    Reminder,
    Review,
}

/// How DingTalk mentions: by the user ids of its org (`atUserIds`) or by mobile numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MentionBy {
    #[default]
    UserId,
    Mobile,
}

/// A robot as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Robot {
    pub kind: Kind,
    pub url: String,
    /// DingTalk and Lark: the signing secret (optional: a robot may use keywords or an IP
    /// allow-list instead); Standard Webhooks: `whsec_…` (required). Never shown again.
    #[serde(default)]
    pub secret: Option<String>,
    /// What it wants; every kind when empty.
    #[serde(default)]
    pub events: Vec<Filter>,
    /// The rooms it serves (`{org}.{team}.{cycle}`, `*` for any part): a per-room override.
    /// A room matched by any robot with a pattern goes to those robots only; other rooms go
    /// to the robots without one.
    #[serde(default)]
    pub rooms: Option<String>,
    #[serde(default)]
    pub format: Format,
    /// okrhub user id → the vendor's id for it (DingTalk user id or mobile, Lark open id,
    /// Slack member id); users not in it are mentioned by name in the text.
    #[serde(default)]
    pub mentions: BTreeMap<String, String>,
    #[serde(default)]
    pub mention_by: MentionBy,
    /// Messages a minute (DingTalk allows 20; 0: no limit). Default: 20 for DingTalk, 100 for
    /// Lark, none for the others.
    #[serde(default)]
    pub per_minute: Option<u32>,
    /// Why the robot was stopped (its receiver answered 410 Gone), if it was. A `PUT`
    /// starts it again.
    #[serde(default)]
    pub disabled: Option<String>,
}

/// What `GET` shows of a robot: everything but the secret.
#[derive(Debug, Clone, Serialize)]
pub struct RobotView {
    pub name: String,
    pub kind: Kind,
    pub url: String,
    pub secret_set: bool,
    pub events: Vec<Filter>,
    pub rooms: Option<String>,
    pub format: Format,
    pub mentions: BTreeMap<String, String>,
    pub mention_by: MentionBy,
    pub per_minute: u32,
    pub disabled: Option<String>,
}

impl Robot {
    pub fn view(&self, name: &str) -> RobotView {
        RobotView {
            name: name.to_owned(),
            kind: self.kind,
            url: self.url.clone(),
            secret_set: self.secret.is_some(),
            events: self.events.clone(),
            rooms: self.rooms.clone(),
            format: self.format,
            mentions: self.mentions.clone(),
            mention_by: self.mention_by,
            per_minute: self.rate(),
            disabled: self.disabled.clone(),
        }
    }

    /// Messages a minute (0: no limit).
    pub fn rate(&self) -> u32 {
        self.per_minute.unwrap_or(match self.kind {
            Kind::Dingtalk => 20,
            Kind::Lark => 100,
            Kind::Slack | Kind::Webhook => 0,
        })
    }

    /// Checks what an admin sent, for `org`: the URL's scheme, the secret's form, the pattern.
    pub fn validate(&self, org: &str) -> Result<(), String> {
        let url = reqwest::Url::parse(&self.url).map_err(|e| format!("url: {e}"))?;
        if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
            return Err("url: must be an http(s) URL with a host".into());
        }
        if self.kind == Kind::Webhook {
            let secret = self
                .secret
                .as_deref()
                .ok_or("secret: a webhook needs one")?;
            super::sign::webhook_key(secret).map_err(|e| format!("secret: {e}"))?;
        }
        if let Some(s) = &self.secret {
            if s.is_empty() || s.len() > 256 {
                return Err("secret: 1 to 256 bytes".into());
            }
        }
        if let Some(p) = &self.rooms {
            let parts: Vec<&str> = p.split('.').collect();
            if parts.len() != 3 || parts[0] != org || parts.iter().any(|x| x.is_empty()) {
                return Err(format!(
                    "rooms: a pattern {org}.{{team}}.{{cycle}} of this org (`*` for any part)"
                ));
            }
        }
        if self.mentions.len() > 1000 {
            return Err("mentions: at most 1000".into());
        }
        Ok(())
    }

    /// Whether it wants `n`.
    pub fn wants(&self, n: &Notice) -> bool {
        if self.events.is_empty() {
            return true;
        }
        self.events.iter().any(|f| match f {
            Filter::Checkin => n.kind == NoticeKind::Checkin,
            Filter::RedFlag => n.kind == NoticeKind::Checkin && n.red_flag,
            Filter::Comment => n.kind == NoticeKind::Comment,
            Filter::Mention => {
                matches!(n.kind, NoticeKind::Checkin | NoticeKind::Comment)
                    && !n.mentions.is_empty()
            }
            Filter::Reminder => n.kind == NoticeKind::Reminder,
            Filter::Review => n.kind == NoticeKind::Review,
        })
    }
}

/// Whether room `room` (`org.team.cycle`) matches `pattern` (`*`: any one part).
pub fn matches(pattern: &str, room: &str) -> bool {
    let (p, r): (Vec<&str>, Vec<&str>) = (pattern.split('.').collect(), room.split('.').collect());
    p.len() == r.len() && p.iter().zip(&r).all(|(p, r)| *p == "*" || p == r)
}

/// The robots of an org that serve `room`: those whose pattern matches it if there are any
/// (the room's override), the org-wide ones otherwise.
pub fn serving<'a>(robots: &'a [(String, Robot)], room: &str) -> Vec<&'a (String, Robot)> {
    let specific: Vec<_> = (robots.iter())
        .filter(|(_, r)| r.rooms.as_deref().is_some_and(|p| matches(p, room)))
        .collect();
    if !specific.is_empty() {
        return specific;
    }
    robots.iter().filter(|(_, r)| r.rooms.is_none()).collect()
}

/// An org's notification settings (key `notify`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgSettings {
    /// The messages' language: `zh` (the default) or `en`.
    #[serde(default = "zh")]
    pub lang: Lang,
}

impl Default for OrgSettings {
    fn default() -> Self {
        OrgSettings { lang: Lang::Zh }
    }
}

fn zh() -> Lang {
    Lang::Zh
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lang {
    Zh,
    En,
}

/// A valid robot name: 1 to [`MAX_NAME`] of `[A-Za-z0-9_-]`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The store key of robot `name`.
pub fn key(name: &str) -> String {
    format!("robot/{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn robot(rooms: Option<&str>) -> Robot {
        serde_json::from_value(serde_json::json!({
            "kind": "slack", "url": "https://hooks.slack.com/services/x", "rooms": rooms
        }))
        .unwrap()
    }

    #[test]
    fn a_room_pattern_overrides_the_org_wide_robots() {
        let robots = vec![
            ("all".to_owned(), robot(None)),
            ("sales".to_owned(), robot(Some("acme.sales.*"))),
        ];
        let names = |room| -> Vec<&str> {
            serving(&robots, room)
                .iter()
                .map(|(n, _)| n.as_str())
                .collect()
        };
        assert_eq!(names("acme.sales.2030-Q1"), ["sales"]);
        assert_eq!(names("acme.hr.2030-Q1"), ["all"]);
    }

    #[test]
    fn validation_refuses_what_cannot_be_sent() {
        let mut r = robot(Some("acme.*.*"));
        assert!(r.validate("acme").is_ok());
        assert!(r.validate("other").is_err(), "another org's rooms");
        r.url = "file:///etc/passwd".into();
        assert!(r.validate("acme").is_err());
        r.url = "https://example.com/hook".into();
        r.kind = Kind::Webhook;
        assert!(
            r.validate("acme").is_err(),
            "a webhook needs a whsec_ secret"
        );
        r.secret = Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into());
        assert!(r.validate("acme").is_ok());
    }
}
