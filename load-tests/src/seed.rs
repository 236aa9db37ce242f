//! Realistic OKR rooms (`--seed-okr`): before the clients join, one client per room writes a
//! team's OKR set for a quarter, laid out as `proto/DOCUMENT.md` says, so that the server's
//! projection has a real set to read after every update that touches it.
//!
//! A seeded room holds:
//!
//! - `cycle`: `{id: "2026-Q4", kind: "quarter", starts: "2026-10-01", ends: "2026-12-31"}`;
//! - `objectives`: 9 nested `Y.Map`s `o-01` … `o-09` (`title` and `description` as `Y.Text`,
//!   `owner`, `team`, `order` 1..9, `status`, `created_at`, `created_by`);
//! - `key_results`: 36 nested `Y.Map`s `kr-01` … `kr-36`, 4 per objective (`objective`, `title`
//!   as `Y.Text`, `owner`, `metric` as a plain object of every kind — percent, increase,
//!   decrease, stay_above, milestone — `weight`, `cadence_days` 7, `order`, `status`,
//!   `created_at`, `created_by`);
//! - `checkins`: N plain objects `ci-00001` … spread over the KRs and over the part of the cycle
//!   that has passed (`key_result`, `author`, `at`, `value`, `confidence` 0–10, `comment` with an
//!   `@name`, `mentions`);
//! - `comments`: M plain objects `cm-00001` … on KRs and objectives (`target`, `author`, `at`,
//!   `text`, `mentions`);
//! - `draft_key_results`: the same 36 KRs again (same ids, same nested `Y.Map` with a `Y.Text`
//!   title), under a root the server does not project. `draft-title` edits type there: the
//!   baseline of `okr-title` on a doc of the same size and shape.
//!
//! The content is deterministic per room index and `now` (a small PRNG), so the layout can be
//! tested without a server.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::time::Instant;
use yrs::sync::{Message, SyncMessage};
use yrs::updates::encoder::Encode;
use yrs::{
    Any, Doc, Map, MapPrelim, MapRef, Out, ReadTxn, StateVector, TextPrelim, Transact,
    TransactionMut,
};

use crate::client;

/// Root of the projected key results (`proto/DOCUMENT.md`).
pub const KEY_RESULTS_ROOT: &str = "key_results";
/// Root of the unprojected copy of the key results: the baseline's edits go there.
pub const DRAFTS_ROOT: &str = "draft_key_results";
/// The other roots a seed writes.
pub const CYCLE_ROOT: &str = "cycle";
pub const OBJECTIVES_ROOT: &str = "objectives";
pub const CHECKINS_ROOT: &str = "checkins";
pub const COMMENTS_ROOT: &str = "comments";

/// Objectives per seeded room.
pub const OBJECTIVES: usize = 9;
/// Key results per objective.
pub const KRS_PER_OBJECTIVE: usize = 4;
/// Key results per seeded room (and drafts: the same again).
pub const KEY_RESULTS: usize = OBJECTIVES * KRS_PER_OBJECTIVE;
/// Check-ins per room unless told (`--seed-checkins`).
pub const DEFAULT_CHECKINS: usize = 300;
/// Most check-ins, and most comments, per room.
pub const MAX_SEED_ENTRIES: usize = 100_000;
/// Most root entries per update the seeding client sends.
pub const CHUNK: usize = 1000;
/// Longest wait for a fresh client to see the whole seed.
pub const VERIFY_TIMEOUT: Duration = Duration::from_secs(30);

/// The cycle every seeded room is in.
pub const CYCLE_ID: &str = "2026-Q4";
pub const CYCLE_STARTS: &str = "2026-10-01";
pub const CYCLE_ENDS: &str = "2026-12-31";
/// 2026-10-01T00:00:00Z, ms.
pub const CYCLE_START_MS: i64 = 1_790_812_800_000;
/// 2027-01-01T00:00:00Z (the end of 2026-12-31), ms.
pub const CYCLE_END_MS: i64 = 1_798_761_600_000;
const DAY_MS: i64 = 86_400_000;

/// How much a seeded room holds besides its fixed 9 objectives and 36 KRs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SeedSpec {
    pub checkins: usize,
    pub comments: usize,
}

impl SeedSpec {
    /// `checkins` (default [`DEFAULT_CHECKINS`]) and `comments` (default a fifth of the
    /// check-ins).
    pub fn new(checkins: Option<usize>, comments: Option<usize>) -> Self {
        let checkins = checkins.unwrap_or(DEFAULT_CHECKINS);
        SeedSpec {
            checkins,
            comments: comments.unwrap_or(checkins / 5),
        }
    }
}

impl Default for SeedSpec {
    fn default() -> Self {
        SeedSpec::new(None, None)
    }
}

/// The id of key result `i` (from 0): `kr-01` … `kr-36`.
pub fn kr_id(i: usize) -> String {
    format!("kr-{:02}", i + 1)
}

/// The id of objective `i` (from 0): `o-01` … `o-09`.
pub fn objective_id(i: usize) -> String {
    format!("o-{:02}", i + 1)
}

/// The KR whose title editor `editor` of a room types into: `kr-{(editor mod 36) + 1}`.
pub fn kr_of_editor(editor: u32) -> String {
    kr_id(editor as usize % KEY_RESULTS)
}

/// User ids of the seeded team (valid okrhub user ids).
const USERS: &[&str] = &[
    "wang.lei",
    "alice",
    "zhang.wei",
    "bob",
    "li.na",
    "carol",
    "chen.jing",
    "dave",
    "liu.yang",
    "erin",
];

/// A metric as `proto/DOCUMENT.md` lists them.
#[derive(Debug, Clone, Copy)]
enum MetricSpec {
    Percent,
    Increase(f64, f64, &'static str),
    Decrease(f64, f64, &'static str),
    StayAbove(f64, &'static str),
    /// Milestones: title and weight; the first `done` are done.
    Milestone(&'static [(&'static str, f64)], usize),
}

impl MetricSpec {
    /// The plain object stored under `metric`.
    fn to_any(self) -> Any {
        match self {
            MetricSpec::Percent => obj([("kind", "percent".into())]),
            MetricSpec::Increase(start, target, unit) => obj([
                ("kind", "increase".into()),
                ("start", start.into()),
                ("target", target.into()),
                ("unit", unit.into()),
            ]),
            MetricSpec::Decrease(start, target, unit) => obj([
                ("kind", "decrease".into()),
                ("start", start.into()),
                ("target", target.into()),
                ("unit", unit.into()),
            ]),
            MetricSpec::StayAbove(threshold, unit) => obj([
                ("kind", "stay_above".into()),
                ("threshold", threshold.into()),
                ("unit", unit.into()),
            ]),
            MetricSpec::Milestone(items, done) => {
                let milestones: Vec<Any> = items
                    .iter()
                    .enumerate()
                    .map(|(i, (title, weight))| {
                        obj([
                            ("title", (*title).into()),
                            ("weight", (*weight).into()),
                            ("done", (i < done).into()),
                        ])
                    })
                    .collect();
                obj([
                    ("kind", "milestone".into()),
                    ("milestones", Any::Array(milestones.into())),
                ])
            }
        }
    }

    /// A check-in's value when the KR is `progress` (0 = start, 1 = target) of the way.
    fn value_at(self, progress: f64, rng: &mut Rng) -> f64 {
        let v = match self {
            MetricSpec::Percent => (progress * 100.0).clamp(0.0, 100.0),
            MetricSpec::Increase(start, target, _) | MetricSpec::Decrease(start, target, _) => {
                start + (target - start) * progress
            }
            MetricSpec::StayAbove(threshold, _) => threshold * (0.98 + 0.04 * rng.unit()),
            MetricSpec::Milestone(items, _) => {
                let total: f64 = items.iter().map(|(_, w)| w).sum();
                let reached = (progress * items.len() as f64).floor() as usize;
                let done: f64 = items.iter().take(reached).map(|(_, w)| w).sum();
                100.0 * done / total
            }
        };
        (v * 100.0).round() / 100.0
    }
}

/// An objective: title, description, owner, team.
const OBJECTIVE_SPECS: [(&str, &str, &str, &str); OBJECTIVES] = [
    (
        "Q4让新用户7日留存率达到40%",
        "新用户第一周流失严重。本季度重做新手引导，缩短从注册到第一次创建OKR的路径。",
        "wang.lei",
        "growth",
    ),
    (
        "Cut p95 checkout latency to under 300 ms",
        "Checkout is the slowest page we have; every 100 ms costs about 1% of conversions.",
        "alice",
        "platform",
    ),
    (
        "企业版ARR在Q4突破1200万元",
        "聚焦金融和制造两个行业，提高续约率，缩短销售周期。",
        "zhang.wei",
        "sales",
    ),
    (
        "Ship mobile app 2.0 to 100% of iOS and Android users",
        "The rewrite is feature complete; Q4 is about stability and a staged rollout.",
        "bob",
        "mobile",
    ),
    (
        "客服首次响应时间缩短到2分钟以内",
        "用知识库和智能分流把简单问题挡在前面，人工只处理复杂问题。",
        "li.na",
        "support",
    ),
    (
        "Reach 12000 weekly active teams by Dec 31",
        "Invites and templates drive activation; churn is the leak to fix.",
        "carol",
        "growth",
    ),
    (
        "线上P0故障每月不超过1次",
        "上季度有3次P0，根因集中在发布流程和告警噪音。",
        "chen.jing",
        "sre",
    ),
    (
        "Hire 15 engineers and get each to a first merged PR within 10 days",
        "Hiring plan approved in September; onboarding is the bottleneck.",
        "dave",
        "people",
    ),
    (
        "海外收入占比从12%提升到25%",
        "优先东南亚和欧洲，补齐支付渠道和本地化。",
        "liu.yang",
        "intl",
    ),
];

const ONBOARDING: &[(&str, f64)] = &[("设计评审", 1.0), ("灰度10%", 2.0), ("全量上线", 1.0)];
const CLUSTER: &[(&str, f64)] = &[("payments-api", 1.0), ("ledger", 2.0), ("refunds", 1.0)];
const CASES: &[(&str, f64)] = &[("金融行业案例", 1.0), ("制造行业案例", 1.0)];
const BOT: &[(&str, f64)] = &[
    ("知识库", 1.0),
    ("意图识别", 2.0),
    ("人工转接", 1.0),
    ("全量上线", 1.0),
];
const GALLERY: &[(&str, f64)] = &[
    ("Planning templates", 1.0),
    ("Retro templates", 1.0),
    ("Public gallery", 2.0),
];
const DRILLS: &[(&str, f64)] = &[("第1次全链路演练", 1.0), ("第2次全链路演练", 1.0)];
const HANDBOOK: &[(&str, f64)] = &[
    ("Week 1 setup", 1.0),
    ("Codebase tour", 1.0),
    ("First on-call", 1.0),
    ("Review guide", 1.0),
];
const PAYMENTS: &[(&str, f64)] = &[("Stripe", 1.0), ("Adyen", 1.0), ("PayPal", 1.0)];

/// The key results, 4 per objective in order: title and metric.
const KR_SPECS: [(&str, MetricSpec); KEY_RESULTS] = [
    ("新用户激活率达到60%", MetricSpec::Percent),
    (
        "7日留存从28%提升到40%",
        MetricSpec::Increase(28.0, 40.0, "%"),
    ),
    (
        "注册到首次创建OKR的时间从15分钟降到5分钟",
        MetricSpec::Decrease(15.0, 5.0, "min"),
    ),
    (
        "新手引导v3分3个阶段上线",
        MetricSpec::Milestone(ONBOARDING, 1),
    ),
    (
        "Checkout p95 latency from 820 ms to 300 ms",
        MetricSpec::Decrease(820.0, 300.0, "ms"),
    ),
    (
        "Keep 99.9% of checkout requests successful",
        MetricSpec::StayAbove(99.9, "%"),
    ),
    (
        "Move 3 payment services to the new cluster",
        MetricSpec::Milestone(CLUSTER, 2),
    ),
    ("Cache hit rate to 95%", MetricSpec::Percent),
    (
        "新签企业客户从40家增加到90家",
        MetricSpec::Increase(40.0, 90.0, "家"),
    ),
    ("续约率保持在92%以上", MetricSpec::StayAbove(92.0, "%")),
    (
        "销售周期从60天缩短到35天",
        MetricSpec::Decrease(60.0, 35.0, "天"),
    ),
    ("完成2个行业标杆案例", MetricSpec::Milestone(CASES, 0)),
    (
        "Crash-free sessions stay above 99.5%",
        MetricSpec::StayAbove(99.5, "%"),
    ),
    ("Roll out app 2.0 to 100% of users", MetricSpec::Percent),
    (
        "App store rating from 3.9 to 4.6",
        MetricSpec::Increase(3.9, 4.6, "stars"),
    ),
    (
        "Cold start from 2.8 s to 1.2 s",
        MetricSpec::Decrease(2.8, 1.2, "s"),
    ),
    (
        "首次响应时间从9分钟降到2分钟",
        MetricSpec::Decrease(9.0, 2.0, "min"),
    ),
    (
        "客户满意度保持在4.5分以上",
        MetricSpec::StayAbove(4.5, "分"),
    ),
    ("自助解决率达到35%", MetricSpec::Percent),
    ("智能客服分4步上线", MetricSpec::Milestone(BOT, 1)),
    (
        "Weekly active teams from 8000 to 12000",
        MetricSpec::Increase(8000.0, 12000.0, "teams"),
    ),
    ("Invite conversion to 25%", MetricSpec::Percent),
    (
        "Churned teams per month from 400 to 150",
        MetricSpec::Decrease(400.0, 150.0, "teams"),
    ),
    (
        "Launch 3 template galleries",
        MetricSpec::Milestone(GALLERY, 1),
    ),
    (
        "P0故障从每月3次降到1次",
        MetricSpec::Decrease(3.0, 1.0, "次"),
    ),
    (
        "核心服务可用性保持在99.95%以上",
        MetricSpec::StayAbove(99.95, "%"),
    ),
    (
        "无效告警占比从45%降到10%",
        MetricSpec::Decrease(45.0, 10.0, "%"),
    ),
    ("完成2次全链路故障演练", MetricSpec::Milestone(DRILLS, 1)),
    (
        "Hire 15 engineers",
        MetricSpec::Increase(0.0, 15.0, "hires"),
    ),
    (
        "Offer acceptance rate stays above 80%",
        MetricSpec::StayAbove(80.0, "%"),
    ),
    (
        "Days to first merged PR from 21 to 10",
        MetricSpec::Decrease(21.0, 10.0, "days"),
    ),
    (
        "Onboarding handbook in 4 chapters",
        MetricSpec::Milestone(HANDBOOK, 2),
    ),
    (
        "海外收入占比从12%提升到25%",
        MetricSpec::Increase(12.0, 25.0, "%"),
    ),
    ("新增3个海外支付渠道", MetricSpec::Milestone(PAYMENTS, 1)),
    ("本地化覆盖率达到90%", MetricSpec::Percent),
    (
        "海外客诉响应时间从24小时降到8小时",
        MetricSpec::Decrease(24.0, 8.0, "h"),
    ),
];

/// Check-in comments; `{m}` is the mentioned user.
const CHECKIN_COMMENTS: &[&str] = &[
    "本周完成埋点，@{m} 帮忙确认一下数据口径",
    "Blocked on legal review, @{m} can you follow up?",
    "进度符合预期，下周开始A/B实验，@{m} 准备一下报告",
    "Shipped 2 of 3 fixes; @{m} owns the last one",
    "数据有波动，原因还在查，@{m} 有空看下监控吗",
    "On track. @{m} thanks for the quick review",
    "依赖的接口延期一周，已和 @{m} 对齐新的时间",
    "Numbers dipped after the release, @{m} is looking into it",
];

/// Comment texts; `{m}` is the mentioned user.
const COMMENT_TEXTS: &[&str] = &[
    "@{m} 这个目标值是不是定得有点保守？",
    "@{m} can we split this into two KRs?",
    "@{m} 上周的数据我更新到看板了",
    "Great progress, @{m}. What is the risk for December?",
    "@{m} 需要市场部配合的部分我来协调",
    "@{m} the dashboard link is in the description",
];

/// A small deterministic PRNG (SplitMix64).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// In `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// In `0..n`.
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// A plain object (lib0 `Any` map).
fn obj<const N: usize>(fields: [(&str, Any); N]) -> Any {
    let map: HashMap<String, Any> = fields.into_iter().map(|(k, v)| (k.into(), v)).collect();
    Any::Map(Arc::new(map))
}

/// An objective or a KR: a nested `Y.Map` whose `texts` are `Y.Text`s.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: String,
    /// Fields written as `Y.Text`.
    pub texts: Vec<(&'static str, String)>,
    /// Plain fields.
    pub fields: Vec<(&'static str, Any)>,
}

impl Entry {
    /// The plain field `key`, if set.
    pub fn field(&self, key: &str) -> Option<&Any> {
        self.fields.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The text field `key`, if set.
    pub fn text(&self, key: &str) -> Option<&str> {
        self.texts
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// What a seeded room holds (the drafts are `key_results` written again under
/// [`DRAFTS_ROOT`]).
#[derive(Debug, Clone)]
pub struct Layout {
    pub cycle: Vec<(&'static str, Any)>,
    pub objectives: Vec<Entry>,
    pub key_results: Vec<Entry>,
    pub checkins: Vec<(String, Any)>,
    pub comments: Vec<(String, Any)>,
}

/// The stretch of time check-ins and comments are spread over: the part of the cycle that has
/// passed at `now_ms` (less a minute), or, when `now_ms` is within a day of the cycle's start
/// or before it, the 90 days before `now_ms`.
pub fn activity_span(now_ms: i64) -> (i64, i64) {
    let end = now_ms.min(CYCLE_END_MS) - 60_000;
    if end - CYCLE_START_MS >= DAY_MS {
        (CYCLE_START_MS, end)
    } else {
        (now_ms - 90 * DAY_MS, now_ms - 60_000)
    }
}

/// The content of seeded room `room` as of `now_ms`.
pub fn layout(spec: &SeedSpec, room: usize, now_ms: i64) -> Layout {
    let mut rng = Rng::new(room as u64);
    let created_at = CYCLE_START_MS - 3 * DAY_MS;
    let cycle = vec![
        ("id", CYCLE_ID.into()),
        ("kind", "quarter".into()),
        ("starts", CYCLE_STARTS.into()),
        ("ends", CYCLE_ENDS.into()),
    ];
    let objectives = OBJECTIVE_SPECS
        .iter()
        .enumerate()
        .map(|(i, (title, description, owner, team))| Entry {
            id: objective_id(i),
            texts: vec![
                ("title", (*title).to_owned()),
                ("description", (*description).to_owned()),
            ],
            fields: vec![
                ("owner", (*owner).into()),
                ("team", (*team).into()),
                ("order", ((i + 1) as i64).into()),
                ("status", "active".into()),
                ("created_at", created_at.into()),
                ("created_by", (*owner).into()),
            ],
        })
        .collect();
    let key_results = KR_SPECS
        .iter()
        .enumerate()
        .map(|(i, (title, metric))| {
            let objective = i / KRS_PER_OBJECTIVE;
            let owner = USERS[(objective + i % KRS_PER_OBJECTIVE) % USERS.len()];
            let weight: i64 = if i % KRS_PER_OBJECTIVE == 0 { 2 } else { 1 };
            Entry {
                id: kr_id(i),
                texts: vec![("title", (*title).to_owned())],
                fields: vec![
                    ("objective", objective_id(objective).into()),
                    ("owner", owner.into()),
                    ("metric", metric.to_any()),
                    ("weight", weight.into()),
                    ("cadence_days", 7i64.into()),
                    ("order", ((i % KRS_PER_OBJECTIVE + 1) as i64).into()),
                    ("status", "active".into()),
                    ("created_at", created_at.into()),
                    ("created_by", OBJECTIVE_SPECS[objective].2.into()),
                ],
            }
        })
        .collect::<Vec<_>>();
    let span = activity_span(now_ms);
    let checkins = (0..spec.checkins)
        .map(|k| checkin(k, spec.checkins, span, &key_results, &mut rng))
        .collect();
    let comments = (0..spec.comments)
        .map(|j| comment(j, spec.comments, span, &mut rng))
        .collect();
    Layout {
        cycle,
        objectives,
        key_results,
        checkins,
        comments,
    }
}

/// When item `k` of `n` happens: evenly over `span`, jittered within its slot.
fn spread(k: usize, n: usize, (from, to): (i64, i64), rng: &mut Rng) -> i64 {
    let slot = (to - from) as f64 / n.max(1) as f64;
    (from + (slot * (k as f64 + rng.unit())) as i64).min(to)
}

/// A user other than `who`.
fn someone_else(who: &str, rng: &mut Rng) -> &'static str {
    loop {
        let u = USERS[rng.below(USERS.len())];
        if u != who {
            return u;
        }
    }
}

/// Check-in `k` of `n`: on KR `k mod 36`, by its owner (or now and then a teammate), with a
/// value on the way from the start to the target as the cycle goes by.
fn checkin(k: usize, n: usize, span: (i64, i64), krs: &[Entry], rng: &mut Rng) -> (String, Any) {
    let kr = k % KEY_RESULTS;
    let at = spread(k, n, span, rng);
    let owner = match krs[kr].field("owner") {
        Some(Any::String(s)) => s.to_string(),
        _ => USERS[0].to_owned(),
    };
    let author = if rng.below(4) == 0 {
        someone_else(&owner, rng).to_owned()
    } else {
        owner
    };
    let elapsed = (at - CYCLE_START_MS) as f64 / (CYCLE_END_MS - CYCLE_START_MS) as f64;
    let progress = elapsed.clamp(0.0, 1.0) * (0.6 + 0.6 * rng.unit());
    let value = KR_SPECS[kr].1.value_at(progress, rng);
    let confidence = [2, 4, 5, 6, 6, 7, 7, 8, 8, 9, 10][rng.below(11)] as i64;
    let mention = someone_else(&author, rng);
    let comment = CHECKIN_COMMENTS[rng.below(CHECKIN_COMMENTS.len())].replace("{m}", mention);
    let value = obj([
        ("key_result", kr_id(kr).into()),
        ("author", author.into()),
        ("at", at.into()),
        ("value", value.into()),
        ("confidence", confidence.into()),
        ("comment", comment.into()),
        ("mentions", Any::Array(vec![Any::from(mention)].into())),
    ]);
    (format!("ci-{:05}", k + 1), value)
}

/// Comment `j` of `n`: on a KR, every third on an objective, mentioning one teammate.
fn comment(j: usize, n: usize, span: (i64, i64), rng: &mut Rng) -> (String, Any) {
    let target = if j % 3 == 2 {
        obj([("objective", objective_id(j % OBJECTIVES).into())])
    } else {
        obj([("key_result", kr_id(j % KEY_RESULTS).into())])
    };
    let author = USERS[rng.below(USERS.len())];
    let mention = someone_else(author, rng);
    let text = COMMENT_TEXTS[rng.below(COMMENT_TEXTS.len())].replace("{m}", mention);
    let value = obj([
        ("target", target),
        ("author", author.into()),
        ("at", spread(j, n, span, rng).into()),
        ("text", text.into()),
        ("mentions", Any::Array(vec![Any::from(mention)].into())),
    ]);
    (format!("cm-{:05}", j + 1), value)
}

/// The root maps of a seeded doc, fetched before any transaction.
struct Roots {
    cycle: MapRef,
    objectives: MapRef,
    key_results: MapRef,
    drafts: MapRef,
    checkins: MapRef,
    comments: MapRef,
}

impl Roots {
    fn of(doc: &Doc) -> Self {
        Roots {
            cycle: doc.get_or_insert_map(CYCLE_ROOT),
            objectives: doc.get_or_insert_map(OBJECTIVES_ROOT),
            key_results: doc.get_or_insert_map(KEY_RESULTS_ROOT),
            drafts: doc.get_or_insert_map(DRAFTS_ROOT),
            checkins: doc.get_or_insert_map(CHECKINS_ROOT),
            comments: doc.get_or_insert_map(COMMENTS_ROOT),
        }
    }
}

/// One root entry the seed writes.
enum Write<'a> {
    /// A plain value under `key` of a root map (the cycle's fields, check-ins, comments).
    Plain(&'a MapRef, &'a str, &'a Any),
    /// A nested `Y.Map` (objective, KR): integrated first, then filled.
    Nested(&'a MapRef, &'a Entry),
}

impl Write<'_> {
    fn apply(&self, txn: &mut TransactionMut) {
        match self {
            Write::Plain(root, key, value) => {
                root.insert(txn, *key, (*value).clone());
            }
            Write::Nested(root, entry) => {
                let map = root.insert(txn, entry.id.as_str(), MapPrelim::default());
                for (key, text) in &entry.texts {
                    map.insert(txn, *key, TextPrelim::new(text.as_str()));
                }
                for (key, value) in &entry.fields {
                    map.insert(txn, *key, value.clone());
                }
            }
        }
    }
}

/// Writes `layout` into `doc` and returns the v1 updates that carry it, each holding at most
/// [`CHUNK`] root entries: the cycle, objectives, KRs and drafts first, then the check-ins and
/// the comments.
pub fn write(doc: &Doc, layout: &Layout) -> Vec<Vec<u8>> {
    let roots = Roots::of(doc);
    let mut writes: Vec<Write> = Vec::new();
    for (key, value) in &layout.cycle {
        writes.push(Write::Plain(&roots.cycle, key, value));
    }
    writes.extend(
        layout
            .objectives
            .iter()
            .map(|e| Write::Nested(&roots.objectives, e)),
    );
    for root in [&roots.key_results, &roots.drafts] {
        writes.extend(layout.key_results.iter().map(|e| Write::Nested(root, e)));
    }
    for (root, entries) in [
        (&roots.checkins, &layout.checkins),
        (&roots.comments, &layout.comments),
    ] {
        writes.extend(
            entries
                .iter()
                .map(|(id, value)| Write::Plain(root, id.as_str(), value)),
        );
    }
    writes
        .chunks(CHUNK)
        .map(|chunk| {
            let mut txn = doc.transact_mut();
            for w in chunk {
                w.apply(&mut txn);
            }
            txn.encode_update_v1()
        })
        .collect()
}

/// Entries of each root a seed writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub cycle: u32,
    pub objectives: u32,
    pub key_results: u32,
    pub drafts: u32,
    pub checkins: u32,
    pub comments: u32,
}

impl Counts {
    /// What a room seeded with `spec` holds.
    pub fn expected(spec: &SeedSpec) -> Self {
        Counts {
            cycle: 4,
            objectives: OBJECTIVES as u32,
            key_results: KEY_RESULTS as u32,
            drafts: KEY_RESULTS as u32,
            checkins: spec.checkins as u32,
            comments: spec.comments as u32,
        }
    }

    /// The entries in `txn`'s doc.
    pub fn of<T: ReadTxn>(txn: &T) -> Self {
        let len = |root: &str| txn.get_map(root).map_or(0, |m| m.len(txn));
        Counts {
            cycle: len(CYCLE_ROOT),
            objectives: len(OBJECTIVES_ROOT),
            key_results: len(KEY_RESULTS_ROOT),
            drafts: len(DRAFTS_ROOT),
            checkins: len(CHECKINS_ROOT),
            comments: len(COMMENTS_ROOT),
        }
    }

    /// Whether every root holds at least as many entries as `want`.
    pub fn covers(&self, want: &Counts) -> bool {
        self.cycle >= want.cycle
            && self.objectives >= want.objectives
            && self.key_results >= want.key_results
            && self.drafts >= want.drafts
            && self.checkins >= want.checkins
            && self.comments >= want.comments
    }
}

/// The `Y.Text` title of KR `id` under `root`.
pub fn kr_title<T: ReadTxn>(txn: &T, root: &str, id: &str) -> Result<yrs::TextRef> {
    let krs = txn
        .get_map(root)
        .with_context(|| format!("no root map {root:?}: was the room seeded (--seed-okr)?"))?;
    match krs.get(txn, id) {
        Some(Out::YMap(kr)) => match kr.get(txn, "title") {
            Some(Out::YText(title)) => Ok(title),
            _ => bail!("{root}/{id} has no Y.Text title"),
        },
        Some(_) => bail!("{root}/{id} is not a Y.Map"),
        None => bail!("no key result {id} under {root}: was the room seeded (--seed-okr)?"),
    }
}

/// What seeding one room did.
#[derive(Debug, Clone, Copy)]
pub struct Seeded {
    /// Size of the seeded doc, encoded as one v1 update.
    pub doc_bytes: usize,
}

/// Writes room `room`'s OKR set over the y-sync connection at `url` (in updates of at most
/// [`CHUNK`] entries), then waits (at most [`VERIFY_TIMEOUT`]) until a fresh connection sees
/// every entry.
pub async fn seed_room(url: &str, spec: &SeedSpec, room: usize, now_ms: i64) -> Result<Seeded> {
    let doc = Doc::new();
    let mut ws = client::connect(url).await?;
    client::handshake(&mut ws, &doc).await?;
    let updates = write(&doc, &layout(spec, room, now_ms));
    for u in updates {
        let frame = Message::Sync(SyncMessage::Update(u)).encode_v1();
        ws.send(client::bin(frame))
            .await
            .context("sending the seed")?;
    }
    let doc_bytes = doc
        .transact()
        .encode_state_as_update_v1(&StateVector::default())
        .len();
    let want = Counts::expected(spec);
    let deadline = Instant::now() + VERIFY_TIMEOUT;
    loop {
        let check = Doc::new();
        let mut probe = client::connect(url).await?;
        client::handshake(&mut probe, &check).await?;
        let _ = probe.close(None).await;
        let seen = Counts::of(&check.transact());
        if seen.covers(&want) {
            break;
        }
        if Instant::now() > deadline {
            bail!("seed: a fresh client sees {seen:?} of {want:?} after {VERIFY_TIMEOUT:?}");
        }
        // Keep reading the seeding connection so the server never blocks on it.
        let _ = tokio::time::timeout(Duration::from_millis(100), ws.next()).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
    Ok(Seeded { doc_bytes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::updates::decoder::Decode;
    use yrs::GetString;

    const NOW: i64 = CYCLE_START_MS + 61 * DAY_MS; // 2026-12-01

    fn str_of(a: Option<&Any>) -> &str {
        match a {
            Some(Any::String(s)) => s,
            other => panic!("not a string: {other:?}"),
        }
    }

    fn num(a: Option<&Any>) -> f64 {
        match a {
            Some(Any::Number(n)) => n.as_f64().unwrap(),
            other => panic!("not a number: {other:?}"),
        }
    }

    fn fields(a: &Any) -> &HashMap<String, Any> {
        match a {
            Any::Map(m) => m,
            other => panic!("not a plain object: {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        assert_eq!(
            SeedSpec::default(),
            SeedSpec {
                checkins: 300,
                comments: 60
            }
        );
        assert_eq!(SeedSpec::new(Some(10), Some(0)).comments, 0);
        assert_eq!(kr_id(0), "kr-01");
        assert_eq!(kr_id(35), "kr-36");
        assert_eq!(kr_of_editor(36), "kr-01");
        assert_eq!(kr_of_editor(9), "kr-10");
        assert_eq!(objective_id(8), "o-09");
    }

    #[test]
    fn the_layout_follows_the_document_contract() {
        let spec = SeedSpec::default();
        let l = layout(&spec, 3, NOW);
        assert_eq!(l.objectives.len(), OBJECTIVES);
        assert_eq!(l.key_results.len(), KEY_RESULTS);
        assert_eq!((l.checkins.len(), l.comments.len()), (300, 60));
        let objective_ids: Vec<String> = (0..OBJECTIVES).map(objective_id).collect();
        for (i, o) in l.objectives.iter().enumerate() {
            assert_eq!(o.id, objective_ids[i]);
            let title = o.text("title").unwrap();
            assert!(title.chars().count() <= 200);
            assert!(title.chars().any(|c| c.is_ascii_digit()), "{title}");
            assert!(o.text("description").is_some());
            assert_eq!(num(o.field("order")), (i + 1) as f64);
            assert_eq!(str_of(o.field("status")), "active");
        }
        let mut kinds = std::collections::BTreeSet::new();
        for (i, kr) in l.key_results.iter().enumerate() {
            assert_eq!(kr.id, kr_id(i));
            assert_eq!(
                str_of(kr.field("objective")),
                objective_ids[i / KRS_PER_OBJECTIVE]
            );
            let title = kr.text("title").unwrap();
            assert!(!title.contains(';') && !title.contains(':'), "{title}");
            let metric = fields(kr.field("metric").unwrap());
            let kind = str_of(metric.get("kind")).to_owned();
            match kind.as_str() {
                "increase" => assert!(num(metric.get("target")) > num(metric.get("start"))),
                "decrease" => assert!(num(metric.get("target")) < num(metric.get("start"))),
                "stay_above" => assert!(metric.contains_key("threshold")),
                "milestone" => {
                    let Some(Any::Array(ms)) = metric.get("milestones") else {
                        panic!("no milestones");
                    };
                    assert!((1..=20).contains(&ms.len()));
                    for m in ms.iter() {
                        let m = fields(m);
                        assert!(matches!(m.get("done"), Some(Any::Bool(_))));
                        assert!(num(m.get("weight")) > 0.0);
                        assert!(!str_of(m.get("title")).is_empty());
                    }
                }
                "percent" => {}
                other => panic!("unknown kind {other}"),
            }
            kinds.insert(kind);
            assert_eq!(num(kr.field("cadence_days")), 7.0);
            assert_eq!(str_of(kr.field("status")), "active");
        }
        assert_eq!(kinds.len(), 5, "every metric kind: {kinds:?}");

        let (from, to) = activity_span(NOW);
        assert_eq!(from, CYCLE_START_MS);
        let mut per_kr = [0usize; KEY_RESULTS];
        for (k, (id, c)) in l.checkins.iter().enumerate() {
            assert_eq!(id, &format!("ci-{:05}", k + 1));
            let c = fields(c);
            let kr = str_of(c.get("key_result"));
            per_kr[l.key_results.iter().position(|e| e.id == kr).unwrap()] += 1;
            let at = num(c.get("at")) as i64;
            assert!((from..=to).contains(&at) && at < NOW, "{at}");
            let conf = num(c.get("confidence"));
            assert!(conf.fract() == 0.0 && (0.0..=10.0).contains(&conf));
            assert!(num(c.get("value")).is_finite());
            let Some(Any::Array(mentions)) = c.get("mentions") else {
                panic!("no mentions");
            };
            let m = match &mentions[0] {
                Any::String(s) => s.to_string(),
                other => panic!("{other:?}"),
            };
            assert!(str_of(c.get("comment")).contains(&format!("@{m}")));
            assert_ne!(str_of(c.get("author")), m);
        }
        assert!(per_kr.iter().all(|&n| n >= 8), "spread over every KR");
        for (id, c) in &l.comments {
            assert!(id.starts_with("cm-"));
            let c = fields(c);
            let target = fields(c.get("target").unwrap());
            assert_eq!(target.len(), 1);
            if let Some(Any::String(o)) = target.get("objective") {
                assert!(objective_ids.iter().any(|x| x.as_str() == o.as_ref()));
            } else {
                let kr = str_of(target.get("key_result"));
                assert!(l.key_results.iter().any(|e| e.id == kr));
            }
            assert!(str_of(c.get("text")).contains('@'));
        }
    }

    #[test]
    fn the_layout_is_deterministic_per_room() {
        let spec = SeedSpec::new(Some(50), None);
        let a = layout(&spec, 1, NOW);
        let b = layout(&spec, 1, NOW);
        let c = layout(&spec, 2, NOW);
        assert_eq!(a.checkins, b.checkins);
        assert_ne!(a.checkins, c.checkins);
    }

    #[test]
    fn activity_is_in_the_past() {
        // Before the cycle: the 90 days before now.
        let early = CYCLE_START_MS - 10 * DAY_MS;
        let (from, to) = activity_span(early);
        assert!(from < to && to < early);
        // After the cycle: the whole cycle.
        let (from, to) = activity_span(CYCLE_END_MS + 40 * DAY_MS);
        assert_eq!(from, CYCLE_START_MS);
        assert!(to < CYCLE_END_MS);
    }

    #[test]
    fn written_in_chunks_and_read_back_from_a_fresh_doc() {
        let spec = SeedSpec::new(Some(2500), Some(30));
        let src = Doc::new();
        let updates = write(&src, &layout(&spec, 0, NOW));
        // 4 + 9 + 36 + 36 + 2500 + 30 entries, at most 1000 per update.
        assert_eq!(updates.len(), 3);
        let dst = Doc::new();
        {
            let mut txn = dst.transact_mut();
            for u in &updates {
                let u = yrs::Update::decode_v1(u).unwrap();
                txn.apply_update(u).unwrap();
            }
        }
        let txn = dst.transact();
        assert_eq!(Counts::of(&txn), Counts::expected(&spec));
        for root in [KEY_RESULTS_ROOT, DRAFTS_ROOT] {
            for (i, (want, _)) in KR_SPECS.iter().enumerate() {
                let title = kr_title(&txn, root, &kr_id(i)).unwrap();
                assert_eq!(title.get_string(&txn), *want);
            }
        }
        let objectives = txn.get_map(OBJECTIVES_ROOT).unwrap();
        let Some(Out::YMap(o)) = objectives.get(&txn, "o-01") else {
            panic!("o-01 is not a Y.Map");
        };
        assert!(matches!(o.get(&txn, "description"), Some(Out::YText(_))));
        let checkins = txn.get_map(CHECKINS_ROOT).unwrap();
        assert!(matches!(
            checkins.get(&txn, "ci-00001"),
            Some(Out::Any(Any::Map(_)))
        ));
        assert!(kr_title(&txn, "nowhere", "kr-01").is_err());
        assert!(kr_title(&txn, KEY_RESULTS_ROOT, "kr-99").is_err());
    }
}
