//! A run's parameters: scenario files (TOML), defaults and bounds.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::seed::{self, SeedSpec, MAX_SEED_ENTRIES};
use crate::target::Target;

/// Most connections one run may open.
pub const MAX_CONNECTIONS: usize = 50_000;
/// Longest measured window.
pub const MAX_DURATION: Duration = Duration::from_secs(600);
/// Longest warm-up.
pub const MAX_WARMUP: Duration = Duration::from_secs(120);
/// Highest edit rate per editor (edits/s). Up to [`MAX_TICK_RATE`] an editor sends one edit per
/// tick of its interval; above, it ticks every millisecond and sends several edits per tick (at
/// most 4). `saturate` needs more than 1000/s: at ~2 µs of server CPU per delivery one core
/// takes ~450 k deliveries/s, which its 10 rooms × 5 editors × 9 receivers reach at ~1000 edits/s
/// per editor, and the step above must offer more than that.
pub const MAX_RATE: f64 = 4000.0;
/// Highest rate of one edit per interval tick: a tokio interval ticks at most every millisecond.
pub const MAX_TICK_RATE: f64 = 1000.0;
/// Most preloaded entries per room.
pub const MAX_PRELOAD: usize = 1_000_000;
/// Most steps of a saturation run.
pub const MAX_STEPS: usize = 16;

/// What an editor changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum EditKind {
    /// Sets its own key `e{idx}` of the map `m` to `[timestamp_us, seq]`.
    Map,
    /// Appends `"{idx}:{seq}:{timestamp_us};"` to the text `t`.
    Text,
    /// Appends the text tokens to the `Y.Text` title of KR `(idx mod 36) + 1` under
    /// `key_results`, which the server projects (needs `seed_okr`).
    OkrTitle,
    /// The same under `draft_key_results`, which the server does not project: the baseline of
    /// `okr-title` (needs `seed_okr`).
    DraftTitle,
}

impl EditKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EditKind::Map => "map",
            EditKind::Text => "text",
            EditKind::OkrTitle => "okr-title",
            EditKind::DraftTitle => "draft-title",
        }
    }

    /// The root map whose KR titles this kind types into, for the title kinds.
    pub fn titles_root(self) -> Option<&'static str> {
        match self {
            EditKind::Map | EditKind::Text => None,
            EditKind::OkrTitle => Some(seed::KEY_RESULTS_ROOT),
            EditKind::DraftTitle => Some(seed::DRAFTS_ROOT),
        }
    }
}

/// When a receiving client integrates the updates it receives into its doc.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ApplyMode {
    /// Decode and apply every update as it arrives; an observer on the doc times the delivery.
    #[default]
    Immediate,
    /// Read the edit's (editor, seq, send time) from the update without applying it and keep
    /// the update; apply the kept updates after each measured window (outside it), before
    /// convergence is checked. Anything the cheap reading does not understand is applied at
    /// once. Makes a delivery cheap for the generator, so that `saturate` measures the server.
    Deferred,
}

impl ApplyMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ApplyMode::Immediate => "immediate",
            ApplyMode::Deferred => "deferred",
        }
    }
}

/// A scenario file: every field optional; command-line flags override it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: Option<String>,
    pub description: Option<String>,
    pub rooms: Option<usize>,
    pub clients: Option<usize>,
    pub editors: Option<usize>,
    pub editor_fraction: Option<f64>,
    pub rate: Option<f64>,
    pub duration: Option<f64>,
    pub warmup: Option<f64>,
    pub edit_kind: Option<EditKind>,
    pub apply: Option<ApplyMode>,
    pub ramp: Option<usize>,
    pub preload_entries: Option<usize>,
    /// Seed every room with an OKR set before the clients join (see [`crate::seed`]).
    pub seed_okr: Option<bool>,
    /// Check-ins per seeded room (default 300).
    pub seed_checkins: Option<usize>,
    /// Comments per seeded room (default a fifth of the check-ins).
    pub seed_comments: Option<usize>,
    /// `/live` subscribers per room (room screens).
    pub live_subscribers: Option<usize>,
    pub quiesce_timeout: Option<f64>,
    pub saturate: Option<SaturateSpec>,
}

/// `[saturate]` in a scenario file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaturateSpec {
    pub rate_factor: Option<f64>,
    pub max_steps: Option<usize>,
    pub cpu_limit: Option<f64>,
    pub min_gain: Option<f64>,
}

impl Scenario {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading scenario {}", path.display()))?;
        let mut s: Scenario =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        if s.name.is_none() {
            s.name = path.file_stem().map(|n| n.to_string_lossy().into_owned());
        }
        Ok(s)
    }
}

/// Raise the rate step by step until throughput stops growing or the server is saturated.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Saturate {
    /// Each step's rate is the previous one times this.
    pub rate_factor: f64,
    pub max_steps: usize,
    /// Server CPU (fraction of one core) that counts as the server's limit when labelling the
    /// peak; not a stop on its own (see `saturate.rs`).
    pub cpu_limit: f64,
    /// Stop when delivered/s grows by less than this fraction over the best step so far.
    pub min_gain: f64,
}

impl Default for Saturate {
    fn default() -> Self {
        Saturate {
            rate_factor: 2.0,
            max_steps: 10,
            cpu_limit: 0.95,
            min_gain: 0.05,
        }
    }
}

impl Saturate {
    pub fn from_spec(s: &SaturateSpec) -> Self {
        let d = Saturate::default();
        Saturate {
            rate_factor: s.rate_factor.unwrap_or(d.rate_factor),
            max_steps: s.max_steps.unwrap_or(d.max_steps),
            cpu_limit: s.cpu_limit.unwrap_or(d.cpu_limit),
            min_gain: s.min_gain.unwrap_or(d.min_gain),
        }
    }
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the clients connect (with [`Config::more_nodes`]: the first node).
    pub target: Target,
    /// Further servers that share the rooms with `target` (okrhub nodes on one Redis). The
    /// clients of a room are spread over all of them round-robin ([`node_of`]), and every
    /// delivery is also timed as same-node or cross-node. Seeds and preloads go to `target`.
    pub more_nodes: Vec<Target>,
    /// POST `{"docId": room}` here before connecting (y-sweet).
    pub create_doc_url: Option<String>,
    /// Separator of room id parts (`.` for okrhub; y-sweet refuses dots).
    pub room_separator: char,
    /// Scenario name (printed).
    pub scenario: String,
    /// Name of the server under test (printed).
    pub label: String,
    pub rooms: usize,
    /// Clients per room.
    pub clients: usize,
    /// Editors per room (the first `editors` clients of each room).
    pub editors: usize,
    /// Edits per second per editor.
    pub rate: f64,
    pub duration: Duration,
    pub warmup: Duration,
    pub edit_kind: EditKind,
    /// When receivers integrate updates into their docs.
    pub apply: ApplyMode,
    /// Connections being set up at once.
    pub ramp: usize,
    /// Map entries (~100 bytes each) written into each room before the clients join.
    pub preload_entries: usize,
    /// Seed every room with an OKR set before the clients join (`--seed-okr`).
    pub seed: Option<SeedSpec>,
    /// `/live/{room}` subscribers per room (room screens), besides the `clients`; they take no
    /// part in the delivery statistics.
    pub live_subscribers: usize,
    /// PIDs of the server's processes (one per node), for CPU and RSS (summed).
    pub server_pids: Vec<u32>,
    /// PID of the store's process (redis-server): its CPU is reported apart from the server's.
    pub store_pid: Option<u32>,
    /// Makes this run's room ids unique: `load.r{i}.{run_id}`.
    pub run_id: String,
    /// Longest wait, after editing stops, for every edit to reach every client.
    pub quiesce_timeout: Duration,
    pub saturate: Option<Saturate>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            target: Target::Base("ws://127.0.0.1:4680/sync".into()),
            more_nodes: Vec::new(),
            create_doc_url: None,
            room_separator: '.',
            scenario: "custom".into(),
            label: "okrhub".into(),
            rooms: 1,
            clients: 2,
            editors: 1,
            rate: 1.0,
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(2),
            edit_kind: EditKind::Map,
            apply: ApplyMode::Immediate,
            ramp: 32,
            preload_entries: 0,
            seed: None,
            live_subscribers: 0,
            server_pids: Vec::new(),
            store_pid: None,
            run_id: default_run_id("custom"),
            quiesce_timeout: Duration::from_secs(10),
            saturate: None,
        }
    }
}

impl Config {
    /// The id of room `i`: `load.r{i}.{run_id}`, okrhub's `{org}.{team}.{cycle}`, with
    /// [`Config::room_separator`] between the parts.
    pub fn room_name(&self, i: usize) -> String {
        let sep = self.room_separator;
        format!("load{sep}r{i}{sep}{}", self.run_id)
    }

    /// How many servers the clients are spread over.
    pub fn nodes(&self) -> usize {
        1 + self.more_nodes.len()
    }

    /// The server of node `n` (`0` is [`Config::target`]).
    pub fn node_target(&self, n: usize) -> &Target {
        match n {
            0 => &self.target,
            n => &self.more_nodes[n - 1],
        }
    }

    /// Every node's URL as given, comma-separated.
    pub fn targets_str(&self) -> String {
        (0..self.nodes())
            .map(|n| self.node_target(n).as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The y-sync connections (`rooms × clients`; the `/live` subscribers are not counted).
    pub fn connections(&self) -> usize {
        self.rooms * self.clients
    }

    /// The `/live` connections (`rooms × live_subscribers`).
    pub fn live_connections(&self) -> usize {
        self.rooms * self.live_subscribers
    }

    /// Checks bounds; the URLs are checked when the run starts.
    pub fn validate(&self) -> Result<()> {
        if self.rooms == 0 || self.clients == 0 {
            bail!("--rooms and --clients must be at least 1");
        }
        let conns = self
            .rooms
            .saturating_mul(self.clients.saturating_add(self.live_subscribers));
        if conns > MAX_CONNECTIONS {
            bail!("{conns} connections asked; at most {MAX_CONNECTIONS} per run");
        }
        if self.editors > self.clients {
            bail!(
                "{} editors per room but only {} clients per room",
                self.editors,
                self.clients
            );
        }
        if !(self.rate > 0.0 && self.rate <= MAX_RATE) {
            bail!("--rate must be in (0, {MAX_RATE}] edits/s per editor");
        }
        if self.duration.is_zero() || self.duration > MAX_DURATION {
            bail!("--duration must be in (0, {}] s", MAX_DURATION.as_secs());
        }
        if self.warmup > MAX_WARMUP {
            bail!("--warmup must be at most {} s", MAX_WARMUP.as_secs());
        }
        if self.quiesce_timeout > Duration::from_secs(120) {
            bail!("--quiesce-timeout must be at most 120 s");
        }
        if self.ramp == 0 || self.ramp > 4096 {
            bail!("--ramp must be in 1..=4096");
        }
        if self.preload_entries > MAX_PRELOAD {
            bail!("--preload-entries must be at most {MAX_PRELOAD}");
        }
        if self.edit_kind.titles_root().is_some() && self.seed.is_none() {
            bail!(
                "--edit-kind {} types into the seeded KR titles: it needs --seed-okr",
                self.edit_kind.as_str()
            );
        }
        if let Some(s) = &self.seed {
            if s.checkins > MAX_SEED_ENTRIES || s.comments > MAX_SEED_ENTRIES {
                bail!("--seed-checkins and --seed-comments must be at most {MAX_SEED_ENTRIES}");
            }
        }
        let all_base = (0..self.nodes()).all(|n| matches!(self.node_target(n), Target::Base(_)));
        if self.live_subscribers > 0 && !all_base {
            bail!("--live-subscribers needs --url (the /live URL is made from its /sync path)");
        }
        if self.run_id.is_empty()
            || self.run_id.len() > 64
            || !self
                .run_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            bail!("--run-id must be 1-64 characters of A-Z a-z 0-9 - _");
        }
        if let Some(s) = &self.saturate {
            if s.max_steps == 0 || s.max_steps > MAX_STEPS {
                bail!("saturate max_steps must be in 1..={MAX_STEPS}");
            }
            if !(s.rate_factor > 1.0 && s.rate_factor <= 10.0) {
                bail!("saturate rate_factor must be in (1, 10]");
            }
            if !(s.cpu_limit > 0.0 && s.cpu_limit <= 1.0 && (0.0..1.0).contains(&s.min_gain)) {
                bail!("saturate cpu_limit must be in (0, 1] and min_gain in [0, 1)");
            }
        }
        Ok(())
    }
}

/// The node that client `client` of room `room` connects to: the run's clients in order
/// (room by room), dealt round-robin over `nodes`, so every room with more clients than nodes
/// spans them all and the nodes get the same number of clients (±1).
pub fn node_of(room: usize, client: usize, clients_per_room: usize, nodes: usize) -> usize {
    (room * clients_per_room + client) % nodes.max(1)
}

/// `{scenario}-{base36 of the time}`, reduced to characters a room id may hold.
pub fn default_run_id(scenario: &str) -> String {
    let clean: String = scenario
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    format!("{clean}-{}", base36(millis % 36u64.pow(7)))
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).expect("ascii")
}

/// Editors per room for `fraction` of `clients` (rounded, at least 1 if the fraction is > 0).
pub fn editors_from_fraction(fraction: f64, clients: usize) -> Result<usize> {
    if !(0.0..=1.0).contains(&fraction) {
        bail!("--editor-fraction must be in [0, 1]");
    }
    let n = (fraction * clients as f64).round() as usize;
    Ok(if fraction > 0.0 { n.max(1) } else { 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_file_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let s = Scenario::load(&path).unwrap();
                assert!(s.name.is_some());
                n += 1;
            }
        }
        assert!(n >= 9, "expected the nine scenarios, found {n}");
    }

    #[test]
    fn fractions_round() {
        assert_eq!(editors_from_fraction(0.1, 25).unwrap(), 3);
        assert_eq!(editors_from_fraction(0.01, 25).unwrap(), 1);
        assert_eq!(editors_from_fraction(0.0, 25).unwrap(), 0);
        assert_eq!(editors_from_fraction(1.0, 10).unwrap(), 10);
    }

    #[test]
    fn bounds() {
        let ok = Config::default();
        ok.validate().unwrap();
        assert!(ok.room_name(3).starts_with("load.r3.custom-"));
        let too_many = Config {
            rooms: 1000,
            clients: 1000,
            ..Config::default()
        };
        assert!(too_many.validate().is_err());
        let bad_id = Config {
            run_id: "a.b".into(),
            ..Config::default()
        };
        assert!(bad_id.validate().is_err());
    }

    #[test]
    fn title_kinds_need_a_seed() {
        for kind in [EditKind::OkrTitle, EditKind::DraftTitle] {
            let unseeded = Config {
                edit_kind: kind,
                ..Config::default()
            };
            let e = unseeded.validate().unwrap_err().to_string();
            assert!(e.contains("--seed-okr"), "{e}");
            let seeded = Config {
                seed: Some(SeedSpec::default()),
                ..unseeded
            };
            seeded.validate().unwrap();
        }
        assert_eq!(EditKind::OkrTitle.titles_root(), Some("key_results"));
        assert_eq!(
            EditKind::DraftTitle.titles_root(),
            Some("draft_key_results")
        );
        assert_eq!(EditKind::Map.titles_root(), None);
    }

    #[test]
    fn clients_are_dealt_round_robin_over_the_nodes() {
        // 2 rooms × 10 clients over 3 nodes: each room spans every node, 7/7/6 clients.
        let mut per_node = [0; 3];
        for room in 0..2 {
            let nodes: Vec<usize> = (0..10).map(|c| node_of(room, c, 10, 3)).collect();
            assert!((0..3).all(|n| nodes.contains(&n)), "room {room}: {nodes:?}");
            for n in nodes {
                per_node[n] += 1;
            }
        }
        assert_eq!(per_node, [7, 7, 6]);
        assert_eq!(node_of(0, 0, 10, 3), 0);
        assert_eq!(node_of(0, 4, 10, 3), 1);
        assert_eq!(node_of(1, 0, 10, 3), 1, "room 1 starts where room 0 ended");
        assert!((0..50).all(|c| node_of(3, c, 50, 1) == 0), "one node");
        let three = Config {
            more_nodes: vec![
                Target::Base("ws://127.0.0.1:2/sync".into()),
                Target::Base("ws://127.0.0.1:3/sync".into()),
            ],
            ..Config::default()
        };
        assert_eq!(three.nodes(), 3);
        assert_eq!(three.node_target(2).as_str(), "ws://127.0.0.1:3/sync");
        assert_eq!(
            three.targets_str(),
            "ws://127.0.0.1:4680/sync,ws://127.0.0.1:2/sync,ws://127.0.0.1:3/sync"
        );
    }

    #[test]
    fn live_subscribers_count_against_the_cap_and_need_a_base_url() {
        let many = Config {
            rooms: 1000,
            clients: 40,
            live_subscribers: 20,
            ..Config::default()
        };
        assert!(many.validate().is_err());
        let template = Config {
            target: Target::Template("ws://127.0.0.1:1/d/{room}".into()),
            live_subscribers: 1,
            ..Config::default()
        };
        assert!(template.validate().is_err());
    }
}
