//! Chat robots and webhooks: the notices of the rooms (check-ins, comments, mentions, red
//! flags, reminders) sent to DingTalk, Feishu / Lark, Slack and Standard Webhooks receivers.
//!
//! | file | owns |
//! |---|---|
//! | [`target`] | a robot as configured (stored in the org settings), which rooms and notices it takes |
//! | [`render`] | the message, in Chinese or English, and each vendor's body |
//! | [`sign`] | the four signatures, as each vendor documents them |
//! | here | the notice queue, the planner, delivery with retries, rate limits, dead letters |
//!
//! # The path of a notice
//!
//! A room hands its notices to [`Notifier`] under its lock ([`Notices`]): a `try_send` into a
//! bounded queue, nothing more — delivery never sits on a room's path. When the queue is full
//! the **newest** notice is refused and counted (`okrhub_notify_dropped_total`): what is queued
//! stays in order, and nothing already accepted is lost.
//!
//! The worker takes each notice, reads the org's robots from the store (every node sees the
//! same), and for each robot that serves the room and wants the notice renders the body and
//! **persists a pending delivery** (org settings, namespace [`OUTBOX`]) before sending it. A
//! delivery is deleted once its receiver took it. A restart sends what is pending: on one node
//! everything its previous run left; on a shared store (several nodes) what no node renewed for
//! [`ADOPT_AFTER`] — a node renews each delivery it holds before every attempt and every
//! [`RENEW_EVERY`] while it waits, and looks for deliveries to adopt as often, so a dead node's
//! deliveries are taken over by a live one. (Two nodes adopting one at the same moment send it
//! twice; its `webhook-id` is the same, so a Standard Webhooks receiver drops the second.)
//!
//! Each delivery is then its own task: the robot's rate limit (`governor`, per robot: a DingTalk
//! robot takes 20 a minute), the request with a fresh timestamp and signature, and on failure
//! retries with exponential back-off (`retry_base` · 2ⁿ, ±20 % jitter, at most `retry_max`)
//! up to `max_attempts`, then the robot's dead-letter list. 410 Gone stops the robot (stored
//! as disabled, until an admin's `PUT`); another 4xx, or a vendor's error code other than its
//! rate limit, goes to the dead letters at once (it will not get better by itself).

pub mod render;
pub mod sign;
pub mod target;

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::metrics::Metrics;
use crate::okr::notice::Notice;
use crate::room::notices::Notices;
use crate::store::DocStore;
use target::{Kind, OrgSettings, Robot};

/// The org-settings namespace of pending deliveries (not an org: `~` is no org's character).
pub const OUTBOX: &str = "~outbox";
/// How often a node renews the pending deliveries it holds, and looks for ones to adopt.
pub const RENEW_EVERY: Duration = Duration::from_secs(30);
/// A pending delivery not renewed for this long is adopted by another node.
pub const ADOPT_AFTER: Duration = Duration::from_secs(120);
/// Dead letters kept per robot (the oldest go first).
pub const DEAD_LETTERS_KEPT: usize = 100;

/// How notices are delivered.
#[derive(Debug, Clone, Copy)]
pub struct NotifyConfig {
    /// Notices that may wait for the worker; past it the newest is refused.
    pub queue: usize,
    /// The first retry's delay; each next one doubles.
    pub retry_base: Duration,
    /// The longest delay between two attempts.
    pub retry_max: Duration,
    /// Attempts before a delivery goes to the dead letters.
    pub max_attempts: u32,
    /// How long one request may take.
    pub timeout: Duration,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            queue: 10_000,
            retry_base: Duration::from_secs(2),
            retry_max: Duration::from_secs(300),
            max_attempts: 8,
            timeout: Duration::from_secs(10),
        }
    }
}

/// Where rooms hand their notices: the bounded queue in front of the worker.
pub struct Notifier {
    tx: mpsc::Sender<Notice>,
    metrics: Arc<Metrics>,
}

impl Notices for Notifier {
    fn notices(&self, notices: Vec<Notice>) {
        for n in notices {
            // Counted before it is queued: the worker may take it at once.
            self.metrics.notify_queue_depth.inc();
            match self.tx.try_send(n) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(n)) => {
                    self.metrics.notify_queue_depth.dec();
                    self.metrics.notify_dropped.inc();
                    tracing::warn!(room = %n.room, seq = n.seq, "notice queue full: notice dropped");
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.metrics.notify_queue_depth.dec();
                }
            }
        }
    }
}

/// A delivery on its way: persisted in [`OUTBOX`] until its receiver took it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    /// Unique, and the same on every attempt (Standard Webhooks' `webhook-id`).
    pub id: String,
    pub org: String,
    pub robot: String,
    /// The body before signing.
    pub body: serde_json::Value,
    /// Unix ms.
    pub created: i64,
    #[serde(default)]
    pub attempts: u32,
    /// Unix ms when the node sending it last said so: one not renewed for [`ADOPT_AFTER`] is
    /// taken over by another node (its node died).
    #[serde(default)]
    pub renewed: i64,
}

impl Delivery {
    fn key(&self) -> String {
        format!("{:013}-{}", self.created, self.id)
    }
}

/// A delivery given up, as the dead-letter list shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeadLetter {
    pub id: String,
    pub robot: String,
    pub body: serde_json::Value,
    pub attempts: u32,
    pub error: String,
    /// Unix ms of the delivery's creation and of the giving up.
    pub created: i64,
    pub failed_at: i64,
}

/// The store key prefix of robot `name`'s dead letters.
pub fn dead_prefix(robot: &str) -> String {
    format!("dead/{robot}/")
}

/// What one attempt came to.
#[derive(Debug)]
enum Outcome {
    Sent,
    /// 410: the target is gone; stop it.
    Gone,
    /// Will not get better by retrying.
    Permanent(String),
    Retry(String),
}

/// The delivery worker: takes notices from the queue, plans, persists and sends them.
pub struct Worker {
    rx: mpsc::Receiver<Notice>,
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn DocStore>,
    metrics: Arc<Metrics>,
    config: NotifyConfig,
    http: reqwest::Client,
    /// Per robot (`org/name`): its rate and limiter.
    limiters: Limiters,
    /// The pending deliveries a task of this process holds (by store key).
    in_flight: Mutex<HashSet<String>>,
    tasks: TaskTracker,
}

/// Per robot (`org/name`): its rate a minute and its limiter.
type Limiters = Mutex<HashMap<String, (u32, Arc<DefaultDirectRateLimiter>)>>;

/// The notifier rooms hand notices to, and the worker to run ([`Worker::run`]).
pub fn start(
    store: Arc<dyn DocStore>,
    metrics: Arc<Metrics>,
    config: NotifyConfig,
) -> anyhow::Result<(Arc<Notifier>, Worker)> {
    // rustls on ring; a provider installed already (by a test, another server) is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .timeout(config.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("okrhub/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let (tx, rx) = mpsc::channel(config.queue.max(1));
    let notifier = Arc::new(Notifier {
        tx,
        metrics: metrics.clone(),
    });
    let worker = Worker {
        rx,
        inner: Arc::new(Inner {
            store,
            metrics,
            config,
            http,
            limiters: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashSet::new()),
            tasks: TaskTracker::new(),
        }),
    };
    Ok((notifier, worker))
}

fn now_ms() -> i64 {
    crate::clock::now_millis()
}

impl Worker {
    /// Sends what a previous run left pending, then every notice as it comes, until
    /// `shutdown`. Deliveries still waiting then stay pending in the store.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let inner = self.inner.clone();
        // On one node everything pending is this node's, left by its previous run; on a
        // shared store only what no node renewed lately (its node died or restarted).
        let everything = inner.store.shared().is_none();
        inner.adopt(everything, &shutdown).await;
        let mut sweep = tokio::time::interval(RENEW_EVERY);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        sweep.tick().await;
        loop {
            let notice = tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = sweep.tick(), if !everything => {
                    inner.adopt(false, &shutdown).await;
                    continue;
                }
                n = self.rx.recv() => match n {
                    Some(n) => n,
                    None => break,
                },
            };
            inner.plan(notice, &shutdown).await;
            // After its deliveries are counted: the depth never dips to 0 in between.
            inner.metrics.notify_queue_depth.dec();
        }
        inner.tasks.close();
        inner.tasks.wait().await;
    }
}

impl Inner {
    /// Sends the pending deliveries no task of this process holds: all of them, or those not
    /// renewed for [`ADOPT_AFTER`].
    async fn adopt(self: &Arc<Self>, everything: bool, shutdown: &CancellationToken) {
        let pending = match self.store.settings_list(OUTBOX, "").await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the pending deliveries");
                return;
            }
        };
        let stale = now_ms() - ADOPT_AFTER.as_millis() as i64;
        let mut adopted = 0;
        for (key, value) in pending {
            if self.in_flight().contains(&key) {
                continue;
            }
            match serde_json::from_slice::<Delivery>(&value) {
                Ok(d) if everything || d.renewed.max(d.created) < stale => {
                    adopted += 1;
                    self.spawn(d, shutdown.clone());
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(%key, error = %e, "unreadable pending delivery: dropped");
                    let _ = self.store.setting_delete(OUTBOX, &key).await;
                }
            }
        }
        if adopted > 0 {
            tracing::info!(
                deliveries = adopted,
                "sending pending deliveries left by a previous run or another node"
            );
        }
    }

    fn in_flight(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The robots that take `n`, each with a delivery persisted and sent.
    async fn plan(self: &Arc<Self>, n: Notice, shutdown: &CancellationToken) {
        let org = n.room.split('.').next().unwrap_or_default().to_owned();
        let robots = match self.store.settings_list(&org, "robot/").await {
            Ok(r) => r,
            Err(e) => {
                self.metrics.notify_dropped.inc();
                tracing::error!(%org, error = %e, "cannot read the org's robots: notice dropped");
                return;
            }
        };
        if robots.is_empty() {
            return;
        }
        let robots: Vec<(String, Robot)> = (robots.into_iter())
            .filter_map(|(k, v)| {
                let name = k.strip_prefix("robot/")?.to_owned();
                Some((name, serde_json::from_slice(&v).ok()?))
            })
            .collect();
        let lang = match self.store.setting_get(&org, "notify").await {
            Ok(Some(v)) => serde_json::from_slice::<OrgSettings>(&v).unwrap_or_default(),
            _ => OrgSettings::default(),
        }
        .lang;
        for (name, robot) in target::serving(&robots, &n.room) {
            if robot.disabled.is_some() || !robot.wants(&n) {
                continue;
            }
            let created = now_ms();
            let d = Delivery {
                id: format!("msg_{created:x}{:016x}", fastrand::u64(..)),
                org: org.clone(),
                robot: name.clone(),
                body: render::body(robot, &n, lang),
                created,
                attempts: 0,
                renewed: created,
            };
            // Persisted before it counts as accepted: a restart sends it.
            let value = serde_json::to_vec(&d).unwrap_or_default();
            if let Err(e) = self.store.setting_put(OUTBOX, &d.key(), &value).await {
                self.metrics.notify_dropped.inc();
                tracing::error!(%org, robot = %name, error = %e, "cannot persist a delivery: dropped");
                continue;
            }
            self.spawn(d, shutdown.clone());
        }
    }

    fn spawn(self: &Arc<Self>, d: Delivery, shutdown: CancellationToken) {
        let key = d.key();
        if !self.in_flight().insert(key.clone()) {
            return;
        }
        self.metrics.notify_queue_depth.inc();
        let inner = self.clone();
        self.tasks.spawn(async move {
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = inner.deliver(d) => {}
            }
            inner.in_flight().remove(&key);
            inner.metrics.notify_queue_depth.dec();
        });
    }

    /// Marks `d` as held by this node now (and keeps its attempts), so no other node adopts it.
    async fn renew(&self, d: &mut Delivery) {
        d.renewed = now_ms();
        let value = serde_json::to_vec(&*d).unwrap_or_default();
        if let Err(e) = self.store.setting_put(OUTBOX, &d.key(), &value).await {
            tracing::warn!(id = %d.id, error = %e, "cannot renew a pending delivery");
        }
    }

    /// The limiter of robot `key` at `rate` a minute (made again when the rate changed).
    fn limiter(&self, key: &str, rate: u32) -> Option<Arc<DefaultDirectRateLimiter>> {
        limiter_in(&self.limiters, key, rate)
    }

    /// Sends `d` until it is delivered, dead-lettered or its robot is gone.
    async fn deliver(&self, mut d: Delivery) {
        let robot_key = target::key(&d.robot);
        loop {
            let robot = match self.store.setting_get(&d.org, &robot_key).await {
                Ok(Some(v)) => serde_json::from_slice::<Robot>(&v).ok(),
                Ok(None) => None,
                Err(e) => {
                    tracing::warn!(org = %d.org, robot = %d.robot, error = %e, "cannot read the robot; retrying");
                    tokio::time::sleep(self.config.retry_base).await;
                    continue;
                }
            };
            let Some(robot) = robot else {
                // Deleted since: nothing to send to.
                self.forget(&d).await;
                return;
            };
            if let Some(why) = &robot.disabled {
                self.dead_letter(&d, format!("robot stopped: {why}")).await;
                return;
            }
            if let Some(limiter) = self.limiter(&format!("{}/{}", d.org, d.robot), robot.rate()) {
                limiter.until_ready().await;
            }
            d.attempts += 1;
            self.renew(&mut d).await;
            let outcome = self.attempt(&robot, &d).await;
            match outcome {
                Outcome::Sent => {
                    self.metrics.notify_sent.inc();
                    self.forget(&d).await;
                    return;
                }
                Outcome::Gone => {
                    self.metrics.notify_failed.inc();
                    let why = "the receiver answered 410 Gone".to_owned();
                    tracing::warn!(org = %d.org, robot = %d.robot, "{why}: robot stopped");
                    self.disable(&d.org, &d.robot, &why).await;
                    self.dead_letter(&d, why).await;
                    return;
                }
                Outcome::Permanent(e) => {
                    self.metrics.notify_failed.inc();
                    tracing::warn!(org = %d.org, robot = %d.robot, error = %e, "delivery refused: dead-lettered");
                    self.dead_letter(&d, e).await;
                    return;
                }
                Outcome::Retry(e) => {
                    self.metrics.notify_failed.inc();
                    if d.attempts >= self.config.max_attempts {
                        self.dead_letter(&d, format!("{} attempts; last: {e}", d.attempts))
                            .await;
                        return;
                    }
                    let delay = self.backoff(d.attempts);
                    tracing::info!(org = %d.org, robot = %d.robot, attempt = d.attempts, error = %e, ?delay, "delivery failed; retrying");
                    // Renewed while it waits, so that no other node takes it over.
                    let until = tokio::time::Instant::now() + delay;
                    while tokio::time::Instant::now() < until {
                        tokio::time::sleep_until(
                            until.min(tokio::time::Instant::now() + RENEW_EVERY),
                        )
                        .await;
                        if tokio::time::Instant::now() < until {
                            self.renew(&mut d).await;
                        }
                    }
                }
            }
        }
    }

    /// The delay after failed attempt `n` (from 1): `retry_base · 2ⁿ⁻¹`, ±20 %, capped.
    fn backoff(&self, n: u32) -> Duration {
        let base = self.config.retry_base.as_secs_f64() * 2f64.powi(n.saturating_sub(1) as i32);
        let jittered = base * (0.8 + 0.4 * fastrand::f64());
        Duration::from_secs_f64(jittered.min(self.config.retry_max.as_secs_f64()))
    }

    async fn forget(&self, d: &Delivery) {
        if let Err(e) = self.store.setting_delete(OUTBOX, &d.key()).await {
            tracing::error!(id = %d.id, error = %e, "cannot delete a delivered delivery (it may be sent again after a restart)");
        }
    }

    async fn dead_letter(&self, d: &Delivery, error: String) {
        self.metrics.notify_dead_lettered.inc();
        let letter = DeadLetter {
            id: d.id.clone(),
            robot: d.robot.clone(),
            body: d.body.clone(),
            attempts: d.attempts,
            error,
            created: d.created,
            failed_at: now_ms(),
        };
        let prefix = dead_prefix(&d.robot);
        let key = format!("{prefix}{}", d.key());
        let value = serde_json::to_vec(&letter).unwrap_or_default();
        if let Err(e) = self.store.setting_put(&d.org, &key, &value).await {
            tracing::error!(id = %d.id, error = %e, "cannot keep a dead letter");
        }
        if let Ok(all) = self.store.settings_list(&d.org, &prefix).await {
            for (old, _) in all.iter().take(all.len().saturating_sub(DEAD_LETTERS_KEPT)) {
                let _ = self.store.setting_delete(&d.org, old).await;
            }
        }
        self.forget(d).await;
    }

    /// Marks robot `name` disabled with `why` (an admin's `PUT` starts it again).
    async fn disable(&self, org: &str, name: &str, why: &str) {
        let key = target::key(name);
        if let Ok(Some(v)) = self.store.setting_get(org, &key).await {
            if let Ok(mut robot) = serde_json::from_slice::<Robot>(&v) {
                robot.disabled = Some(why.to_owned());
                let value = serde_json::to_vec(&robot).unwrap_or_default();
                if let Err(e) = self.store.setting_put(org, &key, &value).await {
                    tracing::error!(%org, robot = %name, error = %e, "cannot store the robot as stopped");
                }
            }
        }
    }

    /// One request: signed now, sent, and its answer judged as the vendor documents it.
    async fn attempt(&self, robot: &Robot, d: &Delivery) -> Outcome {
        let now = now_ms();
        let mut url = robot.url.clone();
        let mut body = d.body.clone();
        let mut headers: Vec<(&str, String)> = Vec::new();
        match robot.kind {
            Kind::Dingtalk => {
                if let Some(secret) = &robot.secret {
                    url = sign::dingtalk_url(&robot.url, secret, now);
                }
            }
            Kind::Lark => {
                if let (Some(secret), Some(obj)) = (&robot.secret, body.as_object_mut()) {
                    let ts = now / 1000;
                    obj.insert("timestamp".into(), ts.to_string().into());
                    obj.insert("sign".into(), sign::lark(secret, ts).into());
                }
            }
            Kind::Slack => {}
            Kind::Webhook => {}
        }
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        if robot.kind == Kind::Webhook {
            let Some(key) = (robot.secret.as_deref()).and_then(|s| sign::webhook_key(s).ok())
            else {
                return Outcome::Permanent("the webhook's secret is not a whsec_ secret".into());
            };
            let ts = now / 1000;
            headers.push(("webhook-id", d.id.clone()));
            headers.push(("webhook-timestamp", ts.to_string()));
            headers.push((
                "webhook-signature",
                sign::standard_webhook(&key, &d.id, ts, &bytes),
            ));
        }
        let mut req = self
            .http
            .post(&url)
            .header("content-type", "application/json; charset=utf-8")
            .body(bytes);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return Outcome::Retry(format!("request failed: {e}")),
        };
        let status = resp.status().as_u16();
        let text = resp.bytes().await.unwrap_or_default();
        judge(robot.kind, status, &text)
    }
}

/// Robot `key`'s limiter at `rate` a minute in `limiters`; `None` for no limit.
fn limiter_in(limiters: &Limiters, key: &str, rate: u32) -> Option<Arc<DefaultDirectRateLimiter>> {
    let per_minute = NonZeroU32::new(rate)?;
    let mut all = limiters.lock().unwrap_or_else(|p| p.into_inner());
    let fresh = || Arc::new(RateLimiter::direct(Quota::per_minute(per_minute)));
    let entry = all.entry(key.to_owned()).or_insert_with(|| (rate, fresh()));
    if entry.0 != rate {
        *entry = (rate, fresh());
    }
    Some(entry.1.clone())
}

/// What an answer means: the status, and for DingTalk and Lark (which answer 200 with an error
/// code) the body's code.
fn judge(kind: Kind, status: u16, body: &[u8]) -> Outcome {
    let short = || String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
    match status {
        200..=299 => {}
        410 => return Outcome::Gone,
        408 | 425 | 429 | 500..=599 => {
            return Outcome::Retry(format!("HTTP {status}: {}", short()))
        }
        _ => return Outcome::Permanent(format!("HTTP {status}: {}", short())),
    }
    let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let code = |k: &str| json.get(k).and_then(serde_json::Value::as_i64);
    match kind {
        // DingTalk: {"errcode":0,"errmsg":"ok"}; 130101: sending too fast.
        Kind::Dingtalk => match code("errcode") {
            None | Some(0) => Outcome::Sent,
            Some(130101) => Outcome::Retry(format!("DingTalk rate limit: {}", short())),
            Some(_) => Outcome::Permanent(format!("DingTalk refused: {}", short())),
        },
        // Lark: {"code":0,…} (older: {"StatusCode":0}); 9499: too many requests.
        Kind::Lark => match code("code").or(code("StatusCode")) {
            None | Some(0) => Outcome::Sent,
            Some(9499) => Outcome::Retry(format!("Lark rate limit: {}", short())),
            Some(_) => Outcome::Permanent(format!("Lark refused: {}", short())),
        },
        Kind::Slack | Kind::Webhook => Outcome::Sent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dingtalk_robot_takes_twenty_at_once_then_one_every_three_seconds() {
        let limiters = Limiters::default();
        let l = limiter_in(&limiters, "acme/ding", 20).unwrap();
        assert!((0..20).all(|_| l.check().is_ok()), "a burst of 20");
        let wait = l.check().expect_err("the 21st waits");
        let left = wait.wait_time_from(governor::clock::Clock::now(
            &governor::clock::DefaultClock::default(),
        ));
        assert!(
            left > Duration::from_millis(2_500) && left <= Duration::from_secs(3),
            "{left:?}"
        );
        assert!(
            limiter_in(&limiters, "acme/slack", 0).is_none(),
            "0: no limit"
        );
        // Another rate makes a new limiter; the same keeps the state.
        assert!(limiter_in(&limiters, "acme/ding", 20)
            .unwrap()
            .check()
            .is_err());
        assert!(limiter_in(&limiters, "acme/ding", 30)
            .unwrap()
            .check()
            .is_ok());
    }

    #[test]
    fn answers_are_judged_as_the_vendors_document_them() {
        assert!(matches!(
            judge(Kind::Dingtalk, 200, br#"{"errcode":0,"errmsg":"ok"}"#),
            Outcome::Sent
        ));
        assert!(matches!(
            judge(
                Kind::Dingtalk,
                200,
                br#"{"errcode":310000,"errmsg":"sign not match"}"#
            ),
            Outcome::Permanent(_)
        ));
        assert!(matches!(
            judge(Kind::Dingtalk, 200, br#"{"errcode":130101}"#),
            Outcome::Retry(_)
        ));
        assert!(matches!(
            judge(
                Kind::Lark,
                200,
                br#"{"code":19021,"msg":"sign match fail"}"#
            ),
            Outcome::Permanent(_)
        ));
        assert!(matches!(judge(Kind::Slack, 200, b"ok"), Outcome::Sent));
        assert!(matches!(judge(Kind::Webhook, 410, b""), Outcome::Gone));
        assert!(matches!(judge(Kind::Webhook, 503, b""), Outcome::Retry(_)));
        assert!(matches!(
            judge(Kind::Slack, 404, b"no_service"),
            Outcome::Permanent(_)
        ));
    }
}
