//! Command line: a scenario file and/or explicit flags (flags win).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::{ArgGroup, Parser};

use crate::config::{
    default_run_id, editors_from_fraction, ApplyMode, Config, EditKind, Saturate, SaturateSpec,
    Scenario,
};
use crate::seed::SeedSpec;
use crate::target::Target;

/// Load generator for okrhub and other y-websocket servers (loopback only).
///
/// Every client is a real yrs Doc over its own WebSocket. Measures delivery latency, throughput,
/// connection set-up rate and — with --server-pid — the server's CPU and RSS, then checks that
/// every room converged (exit status 1 if not).
#[derive(Debug, Parser)]
#[command(name = "okrhub-load", version)]
#[command(group(ArgGroup::new("target").required(true).args(["url", "url_template"])))]
pub struct Cli {
    /// Base WebSocket URL; the room is appended as a path segment
    /// (ws://127.0.0.1:4680/sync → ws://127.0.0.1:4680/sync/{room}). Several, comma-separated
    /// (or the flag repeated): nodes sharing the rooms; each room's clients are spread over them
    /// round-robin and deliveries are also timed as same-node and cross-node.
    #[arg(long, value_delimiter = ',')]
    pub url: Vec<String>,

    /// WebSocket URL with {room} placeholders, e.g. ws://127.0.0.1:8080/d/{room}/ws/{room}.
    #[arg(long)]
    pub url_template: Option<String>,

    /// POST {"docId": "<room>"} here for every room before connecting (y-sweet's /doc/new).
    #[arg(long)]
    pub create_doc_url: Option<String>,

    /// Separator of the parts of room ids: `.` gives okrhub's `{org}.{team}.{cycle}`; y-sweet
    /// refuses dots in doc ids, so its runs use `-`.
    #[arg(long, default_value_t = '.')]
    pub room_separator: char,

    /// Scenario file (TOML); flags below override its values.
    #[arg(long)]
    pub scenario: Option<PathBuf>,

    /// Rooms.
    #[arg(long)]
    pub rooms: Option<usize>,

    /// Clients per room.
    #[arg(long)]
    pub clients: Option<usize>,

    /// Editors per room.
    #[arg(long, conflicts_with = "editor_fraction")]
    pub editors: Option<usize>,

    /// Fraction of each room's clients that edit (rounded, at least 1 if > 0).
    #[arg(long)]
    pub editor_fraction: Option<f64>,

    /// Edits per second per editor (the first rate of a saturation run).
    #[arg(long)]
    pub rate: Option<f64>,

    /// Measured window, seconds.
    #[arg(long)]
    pub duration: Option<f64>,

    /// Editing before the window opens, seconds.
    #[arg(long)]
    pub warmup: Option<f64>,

    /// What editors change.
    #[arg(long, value_enum)]
    pub edit_kind: Option<EditKind>,

    /// When receivers integrate updates: `immediate` (as they arrive) or `deferred` (read the
    /// edit's timestamp cheaply, apply after the measured window).
    #[arg(long, value_enum)]
    pub apply: Option<ApplyMode>,

    /// Connections set up concurrently.
    #[arg(long)]
    pub ramp: Option<usize>,

    /// Map entries (~100 bytes each) one client writes into each room before the others join.
    #[arg(long)]
    pub preload_entries: Option<usize>,

    /// Seed every room with a realistic OKR set (cycle, 9 objectives, 36 KRs, check-ins,
    /// comments, and the 36 KRs again under the unprojected `draft_key_results`) before the
    /// clients join.
    #[arg(long)]
    pub seed_okr: bool,

    /// Check-ins per seeded room (default 300; needs --seed-okr).
    #[arg(long)]
    pub seed_checkins: Option<usize>,

    /// Comments per seeded room (default a fifth of the check-ins; needs --seed-okr).
    #[arg(long)]
    pub seed_comments: Option<usize>,

    /// `/live/{room}` subscribers (room screens) per room, besides --clients: they read every
    /// JSON frame the server sends and take no part in the delivery statistics.
    #[arg(long)]
    pub live_subscribers: Option<usize>,

    /// PID of the server under test: report its CPU and RSS. Several, comma-separated: the
    /// processes of a server of several nodes (CPU and RSS summed).
    #[arg(long, value_delimiter = ',')]
    pub server_pid: Vec<u32>,

    /// PID of the store's process (redis-server): its CPU in the window is reported apart.
    #[arg(long)]
    pub store_pid: Option<u32>,

    /// Name of the server under test, printed in the output.
    #[arg(long, default_value = "okrhub")]
    pub label: String,

    /// Print one JSON line with every number on stdout (the human summary goes to stderr).
    #[arg(long)]
    pub json: bool,

    /// Suffix making room ids unique (default: scenario name and time).
    #[arg(long)]
    pub run_id: Option<String>,

    /// Longest wait after editing stops for every edit to arrive, seconds.
    #[arg(long)]
    pub quiesce_timeout: Option<f64>,

    /// Saturation run: raise the rate step by step (also enabled by [saturate] in a scenario).
    #[arg(long)]
    pub saturate: bool,

    /// Saturation: most steps.
    #[arg(long)]
    pub max_steps: Option<usize>,

    /// Saturation: rate multiplier between steps.
    #[arg(long)]
    pub rate_factor: Option<f64>,
}

fn secs(name: &str, v: f64) -> Result<Duration> {
    if !v.is_finite() || v < 0.0 {
        bail!("--{name} must be a non-negative number of seconds");
    }
    Ok(Duration::from_secs_f64(v))
}

impl Cli {
    /// Merges flags over the scenario file over the defaults.
    pub fn into_config(self) -> Result<Config> {
        let sc = match &self.scenario {
            Some(p) => Scenario::load(p)?,
            None => Scenario::default(),
        };
        let d = Config::default();
        let (target, more_nodes) = match (self.url.split_first(), self.url_template) {
            (Some((u, more)), None) => (
                Target::Base(u.clone()),
                more.iter().cloned().map(Target::Base).collect(),
            ),
            (None, Some(t)) => {
                if !t.contains("{room}") {
                    bail!("--url-template must contain {{room}}");
                }
                (Target::Template(t), Vec::new())
            }
            _ => bail!("give exactly one of --url and --url-template"),
        };
        let scenario = sc.name.clone().unwrap_or_else(|| "custom".into());
        let clients = self.clients.or(sc.clients).unwrap_or(d.clients);
        let editors = match (self.editors, self.editor_fraction) {
            (Some(n), _) => n,
            (None, Some(f)) => editors_from_fraction(f, clients)?,
            (None, None) => match (sc.editors, sc.editor_fraction) {
                (Some(n), _) => n,
                (None, Some(f)) => editors_from_fraction(f, clients)?,
                (None, None) => d.editors,
            },
        };
        let saturate = if self.saturate || sc.saturate.is_some() {
            let mut s =
                Saturate::from_spec(&sc.saturate.clone().unwrap_or(SaturateSpec::default()));
            if let Some(n) = self.max_steps {
                s.max_steps = n;
            }
            if let Some(f) = self.rate_factor {
                s.rate_factor = f;
            }
            Some(s)
        } else {
            None
        };
        let seed_checkins = self.seed_checkins.or(sc.seed_checkins);
        let seed_comments = self.seed_comments.or(sc.seed_comments);
        let seed = if self.seed_okr || sc.seed_okr == Some(true) {
            Some(SeedSpec::new(seed_checkins, seed_comments))
        } else {
            if seed_checkins.is_some() || seed_comments.is_some() {
                bail!("--seed-checkins and --seed-comments need --seed-okr");
            }
            None
        };
        let cfg = Config {
            target,
            more_nodes,
            create_doc_url: self.create_doc_url,
            room_separator: self.room_separator,
            run_id: self.run_id.unwrap_or_else(|| default_run_id(&scenario)),
            scenario,
            label: self.label,
            rooms: self.rooms.or(sc.rooms).unwrap_or(d.rooms),
            clients,
            editors,
            rate: self.rate.or(sc.rate).unwrap_or(d.rate),
            duration: match self.duration.or(sc.duration) {
                Some(v) => secs("duration", v)?,
                None => d.duration,
            },
            warmup: match self.warmup.or(sc.warmup) {
                Some(v) => secs("warmup", v)?,
                None => d.warmup,
            },
            edit_kind: self.edit_kind.or(sc.edit_kind).unwrap_or(d.edit_kind),
            apply: self.apply.or(sc.apply).unwrap_or(d.apply),
            ramp: self.ramp.or(sc.ramp).unwrap_or(d.ramp),
            preload_entries: self
                .preload_entries
                .or(sc.preload_entries)
                .unwrap_or(d.preload_entries),
            seed,
            live_subscribers: self
                .live_subscribers
                .or(sc.live_subscribers)
                .unwrap_or(d.live_subscribers),
            server_pids: self.server_pid,
            store_pid: self.store_pid,
            quiesce_timeout: match self.quiesce_timeout.or(sc.quiesce_timeout) {
                Some(v) => secs("quiesce-timeout", v)?,
                None => d.quiesce_timeout,
            },
            saturate,
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config> {
        let mut v = vec!["okrhub-load"];
        v.extend_from_slice(args);
        Cli::try_parse_from(v)?.into_config()
    }

    #[test]
    fn flags_override_the_scenario() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/workshop.toml");
        let c = parse(&["--url", "ws://127.0.0.1:1/sync", "--scenario", path]).unwrap();
        assert_eq!((c.rooms, c.clients, c.editors, c.rate), (20, 25, 3, 2.0));
        assert_eq!(c.scenario, "workshop");
        let c = parse(&[
            "--url",
            "ws://127.0.0.1:1/sync",
            "--scenario",
            path,
            "--rooms",
            "2",
            "--editors",
            "1",
        ])
        .unwrap();
        assert_eq!((c.rooms, c.editors), (2, 1));
    }

    #[test]
    fn several_urls_are_nodes() {
        let c = parse(&[
            "--url",
            "ws://127.0.0.1:1/sync,ws://127.0.0.1:2/sync",
            "--url",
            "ws://127.0.0.1:3/sync",
            "--server-pid",
            "10,11",
            "--server-pid",
            "12",
            "--store-pid",
            "9",
        ])
        .unwrap();
        assert_eq!(c.nodes(), 3);
        assert_eq!(c.target.as_str(), "ws://127.0.0.1:1/sync");
        assert_eq!(c.node_target(2).as_str(), "ws://127.0.0.1:3/sync");
        assert_eq!((c.server_pids, c.store_pid), (vec![10, 11, 12], Some(9)));
        let one = parse(&["--url", "ws://127.0.0.1:1/sync"]).unwrap();
        assert_eq!((one.nodes(), one.server_pids.len()), (1, 0));
        assert!(parse(&[
            "--url",
            "ws://127.0.0.1:1/sync",
            "--url-template",
            "ws://127.0.0.1:1/{room}"
        ])
        .is_err());
    }

    #[test]
    fn url_is_required_and_template_needs_a_room() {
        assert!(parse(&[]).is_err());
        assert!(parse(&["--url-template", "ws://127.0.0.1:1/x"]).is_err());
        let c = parse(&["--url-template", "ws://127.0.0.1:1/d/{room}/ws/{room}"]).unwrap();
        assert!(matches!(c.target, Target::Template(_)));
    }

    #[test]
    fn okr_scenarios_and_their_baselines() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios");
        let url = "ws://127.0.0.1:1/sync";
        let typing = format!("{dir}/okr-typing.toml");
        let c = parse(&["--url", url, "--scenario", &typing]).unwrap();
        assert_eq!((c.rooms, c.clients, c.editors, c.rate), (20, 10, 3, 2.0));
        assert_eq!(c.edit_kind, EditKind::OkrTitle);
        assert_eq!(c.seed, Some(SeedSpec::new(Some(300), None)));
        assert_eq!(c.live_subscribers, 0);
        let c = parse(&[
            "--url",
            url,
            "--scenario",
            &typing,
            "--edit-kind",
            "draft-title",
        ])
        .unwrap();
        assert_eq!(c.edit_kind, EditKind::DraftTitle);
        let screens = format!("{dir}/okr-screens.toml");
        let c = parse(&["--url", url, "--scenario", &screens]).unwrap();
        assert_eq!((c.rooms, c.clients, c.editors), (20, 10, 3));
        assert_eq!(c.live_subscribers, 2);
        let heavy = format!("{dir}/okr-heavy.toml");
        let c = parse(&["--url", url, "--scenario", &heavy]).unwrap();
        assert_eq!((c.rooms, c.clients, c.editors, c.rate), (100, 10, 10, 1.0));
        assert_eq!(c.edit_kind, EditKind::OkrTitle);
        // Flags alone; the title kinds need a seed, the seed sizes need --seed-okr.
        let c = parse(&[
            "--url",
            url,
            "--seed-okr",
            "--seed-checkins",
            "50",
            "--edit-kind",
            "okr-title",
            "--live-subscribers",
            "1",
        ])
        .unwrap();
        assert_eq!(
            c.seed,
            Some(SeedSpec {
                checkins: 50,
                comments: 10
            })
        );
        assert_eq!(c.live_subscribers, 1);
        assert!(parse(&["--url", url, "--edit-kind", "okr-title"]).is_err());
        assert!(parse(&["--url", url, "--seed-checkins", "5"]).is_err());
    }

    #[test]
    fn saturate_scenario() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/saturate.toml");
        let c = parse(&["--url", "ws://127.0.0.1:1/sync", "--scenario", path]).unwrap();
        assert!(c.saturate.is_some());
        assert_eq!(c.apply, ApplyMode::Deferred);
        let c = parse(&[
            "--url",
            "ws://127.0.0.1:1/sync",
            "--scenario",
            path,
            "--apply",
            "immediate",
        ])
        .unwrap();
        assert_eq!(c.apply, ApplyMode::Immediate);
        let workshop = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/workshop.toml");
        let c = parse(&["--url", "ws://127.0.0.1:1/sync", "--scenario", workshop]).unwrap();
        assert_eq!(c.apply, ApplyMode::Immediate, "the default");
    }
}
