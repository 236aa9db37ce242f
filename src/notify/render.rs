//! What a notice says, in Chinese or English, and the body each vendor takes (unsigned: the
//! signature is made when it is sent, with a fresh timestamp).
//!
//! 「王五 更新了「每周新增500活跃用户」：320 → 500 人，信心 2/10 ⚠ 红旗」

use serde_json::{json, Value};

use super::target::{Format, Kind, Lang, MentionBy, Robot};
use crate::okr::notice::{Notice, NoticeKind};

/// A number as people write it: `320`, `12.5`.
fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

fn with_unit(v: f64, unit: Option<&str>) -> String {
    match unit {
        None | Some("") => number(v),
        Some("%") => format!("{}%", number(v)),
        Some(u) => format!("{} {u}", number(v)),
    }
}

/// The date of `ms` (UTC), `2030-01-15`.
fn date(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()[..10].to_owned()
}

/// The headline: one line that says what happened.
pub fn headline(n: &Notice, lang: Lang) -> String {
    let who = n.actor.as_deref().unwrap_or("?");
    let kr = n.key_result.as_ref().map(|k| k.title.as_str());
    let target = kr
        .or(n.objective.as_ref().map(|o| o.title.as_str()))
        .unwrap_or("?");
    match (n.kind, lang) {
        (NoticeKind::Checkin, _) => {
            let unit = n.unit.as_deref();
            let value = match (n.value_before, n.value) {
                (Some(b), Some(v)) => format!("{} → {}", number(b), with_unit(v, unit)),
                (None, Some(v)) => with_unit(v, unit),
                _ => String::new(),
            };
            let conf = n.confidence.map(|c| c.to_string()).unwrap_or("?".into());
            match lang {
                Lang::Zh => format!(
                    "{who} 更新了「{target}」：{value}，信心 {conf}/10{}",
                    if n.red_flag { " ⚠ 红旗" } else { "" }
                ),
                Lang::En => format!(
                    "{who} updated “{target}”: {value}, confidence {conf}/10{}",
                    if n.red_flag { " ⚠ red flag" } else { "" }
                ),
            }
        }
        (NoticeKind::Comment, Lang::Zh) => format!("{who} 评论了「{target}」"),
        (NoticeKind::Comment, Lang::En) => format!("{who} commented on “{target}”"),
        (NoticeKind::Reminder, Lang::Zh) => format!(
            "提醒：「{target}」该更新进展了（{}，应于 {} 更新）",
            n.owner.as_deref().unwrap_or("无负责人"),
            n.due_at.map(date).unwrap_or_default()
        ),
        (NoticeKind::Reminder, Lang::En) => format!(
            "Reminder: “{target}” is due for a check-in ({}, due {})",
            n.owner.as_deref().unwrap_or("no owner"),
            n.due_at.map(date).unwrap_or_default()
        ),
        (NoticeKind::Review, Lang::Zh) => format!("「{target}」的复盘结果已发布"),
        (NoticeKind::Review, Lang::En) => format!("The review of “{target}” is out"),
    }
}

/// The lines after the headline: the comment, the room.
fn details(n: &Notice, lang: Lang) -> Vec<String> {
    let mut out = Vec::new();
    if !n.text.is_empty() {
        out.push(n.text.clone());
    }
    out.push(match lang {
        Lang::Zh => format!("房间：{}", n.room),
        Lang::En => format!("Room: {}", n.room),
    });
    out
}

/// The mentioned users, split into those the robot knows the vendor's id of (those ids)
/// and the rest (their okrhub ids, written `@name` in the text).
fn split_mentions<'a>(robot: &'a Robot, n: &'a Notice) -> (Vec<&'a str>, Vec<&'a str>) {
    let mut known = Vec::new();
    let mut by_name = Vec::new();
    for u in &n.mentions {
        match robot.mentions.get(u) {
            Some(id) => known.push(id.as_str()),
            None => by_name.push(u.as_str()),
        }
    }
    (known, by_name)
}

fn names_line(by_name: &[&str]) -> Option<String> {
    (!by_name.is_empty()).then(|| {
        by_name
            .iter()
            .map(|u| format!("@{u}"))
            .collect::<Vec<_>>()
            .join(" ")
    })
}

/// The event type a webhook receiver sees.
pub fn event_type(n: &Notice) -> &'static str {
    match (n.kind, n.red_flag) {
        (NoticeKind::Checkin, true) => "checkin.red_flag",
        (NoticeKind::Checkin, false) => "checkin.created",
        (NoticeKind::Comment, _) => "comment.created",
        (NoticeKind::Reminder, _) => "reminder",
        (NoticeKind::Review, _) => "review",
    }
}

/// The body `robot` takes for `n`, before signing.
pub fn body(robot: &Robot, n: &Notice, lang: Lang) -> Value {
    let head = headline(n, lang);
    let details = details(n, lang);
    let (known, by_name) = split_mentions(robot, n);
    let names = names_line(&by_name);
    match robot.kind {
        Kind::Dingtalk => {
            // DingTalk highlights an @ only when the text carries it too.
            let ats: Vec<String> = known.iter().map(|id| format!("@{id}")).collect();
            let mut lines = vec![head.clone()];
            lines.extend(details);
            lines.extend(names);
            if !ats.is_empty() {
                lines.push(ats.join(" "));
            }
            let at = match robot.mention_by {
                MentionBy::UserId => json!({"atUserIds": known, "isAtAll": false}),
                MentionBy::Mobile => json!({"atMobiles": known, "isAtAll": false}),
            };
            match robot.format {
                Format::Text => json!({
                    "msgtype": "text",
                    "text": {"content": lines.join("\n")},
                    "at": at,
                }),
                Format::Rich => {
                    let mut md = format!("### {head}\n\n");
                    md.push_str(&lines[1..].join("\n\n"));
                    json!({
                        "msgtype": "markdown",
                        "markdown": {"title": head, "text": md},
                        "at": at,
                    })
                }
            }
        }
        Kind::Lark => {
            let ats: Vec<String> = (n.mentions.iter())
                .filter_map(|u| {
                    let id = robot.mentions.get(u)?;
                    Some(format!("<at user_id=\"{id}\">{u}</at>"))
                })
                .collect();
            let mut lines = vec![head.clone()];
            lines.extend(details);
            lines.extend(names);
            if !ats.is_empty() {
                lines.push(ats.join(" "));
            }
            match robot.format {
                Format::Text => json!({
                    "msg_type": "text",
                    "content": {"text": lines.join("\n")},
                }),
                Format::Rich => json!({
                    "msg_type": "interactive",
                    "card": {
                        "header": {
                            "title": {"tag": "plain_text", "content": head},
                            "template": if n.red_flag { "red" } else { "blue" },
                        },
                        "elements": [
                            {"tag": "div", "text": {"tag": "lark_md", "content": lines[1..].join("\n")}}
                        ],
                    },
                }),
            }
        }
        Kind::Slack => {
            let ats: Vec<String> = known.iter().map(|id| format!("<@{id}>")).collect();
            let mut lines = vec![format!("*{}*", slack_escape(&head))];
            lines.extend(details.iter().map(|d| slack_escape(d)));
            lines.extend(names.map(|l| slack_escape(&l)));
            if !ats.is_empty() {
                lines.push(ats.join(" "));
            }
            let text = lines.join("\n");
            match robot.format {
                Format::Text => json!({"text": text}),
                Format::Rich => json!({
                    "text": slack_escape(&head),
                    "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
                }),
            }
        }
        Kind::Webhook => json!({
            "type": event_type(n),
            "timestamp": humantime::format_rfc3339_millis(
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(n.at.max(0) as u64)
            ).to_string(),
            "data": {"text": head, "notice": n},
        }),
    }
}

/// Slack's three control characters, escaped as its docs say.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::okr::notice::Named;

    pub(crate) fn checkin() -> Notice {
        Notice {
            kind: NoticeKind::Checkin,
            room: "acme.growth.2030-Q3".into(),
            seq: 7,
            at: 1_900_000_000_000,
            actor: Some("王五".into()),
            objective: Some(Named {
                id: "o1".into(),
                title: "Q3让用户留存率突破40%".into(),
            }),
            key_result: Some(Named {
                id: "k1".into(),
                title: "每周新增500活跃用户".into(),
            }),
            value_before: Some(320.0),
            value: Some(500.0),
            unit: Some("人".into()),
            confidence: Some(2),
            confidence_before: Some(6),
            red_flag: true,
            text: String::new(),
            mentions: vec![],
            owner: None,
            due_at: None,
            source: "ci-1".into(),
        }
    }

    #[test]
    fn a_red_flag_check_in_reads_as_the_team_would_write_it() {
        assert_eq!(
            headline(&checkin(), Lang::Zh),
            "王五 更新了「每周新增500活跃用户」：320 → 500 人，信心 2/10 ⚠ 红旗"
        );
        assert_eq!(
            headline(&checkin(), Lang::En),
            "王五 updated “每周新增500活跃用户”: 320 → 500 人, confidence 2/10 ⚠ red flag"
        );
        assert_eq!(number(12.5), "12.5");
        assert_eq!(with_unit(40.0, Some("%")), "40%");
    }

    #[test]
    fn a_reminder_names_its_owner_and_when_it_was_due() {
        let mut n = checkin();
        n.kind = NoticeKind::Reminder;
        n.actor = None;
        n.owner = Some("wangwu".into());
        n.due_at = Some(1_900_000_000_000); // 2030-03-17 UTC
        assert_eq!(
            headline(&n, Lang::Zh),
            "提醒：「每周新增500活跃用户」该更新进展了（wangwu，应于 2030-03-17 更新）"
        );
        assert_eq!(
            headline(&n, Lang::En),
            "Reminder: “每周新增500活跃用户” is due for a check-in (wangwu, due 2030-03-17)"
        );
        let robot: Robot = serde_json::from_value(json!({
            "kind": "dingtalk", "url": "https://oapi.dingtalk.com/robot/send?access_token=t",
            "format": "rich", "mentions": {"wangwu": "13800000000"}, "mention_by": "mobile"
        }))
        .unwrap();
        n.mentions = vec!["wangwu".into()];
        let b = body(&robot, &n, Lang::Zh);
        assert_eq!(b["msgtype"], "markdown");
        assert_eq!(b["at"]["atMobiles"], json!(["13800000000"]));
        let md = b["markdown"]["text"].as_str().unwrap();
        assert!(
            md.starts_with("### 提醒：") && md.contains("@13800000000"),
            "{md}"
        );
    }

    #[test]
    fn dingtalk_mentions_mapped_users_by_id_and_the_rest_by_name() {
        let mut n = checkin();
        n.mentions = vec!["ana".into(), "bo".into()];
        let robot: Robot = serde_json::from_value(json!({
            "kind": "dingtalk", "url": "https://oapi.dingtalk.com/robot/send?access_token=t",
            "mentions": {"ana": "manager7"}
        }))
        .unwrap();
        let b = body(&robot, &n, Lang::Zh);
        assert_eq!(b["msgtype"], "text");
        assert_eq!(b["at"]["atUserIds"], json!(["manager7"]));
        let content = b["text"]["content"].as_str().unwrap();
        assert!(
            content.contains("@manager7") && content.contains("@bo"),
            "{content}"
        );
    }
}
