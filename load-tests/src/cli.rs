//! Command line: a scenario file and/or explicit flags (flags win).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::{ArgGroup, Parser};

use crate::config::{
    default_run_id, editors_from_fraction, ApplyMode, Config, EditKind, Saturate, SaturateSpec,
    Scenario,
};
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
    /// (ws://127.0.0.1:4680/sync → ws://127.0.0.1:4680/sync/{room}).
    #[arg(long)]
    pub url: Option<String>,

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

    /// PID of the server under test: report its CPU and RSS.
    #[arg(long)]
    pub server_pid: Option<u32>,

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
        let target = match (self.url, self.url_template) {
            (Some(u), None) => Target::Base(u),
            (None, Some(t)) => {
                if !t.contains("{room}") {
                    bail!("--url-template must contain {{room}}");
                }
                Target::Template(t)
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
        let cfg = Config {
            target,
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
            server_pid: self.server_pid,
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
    fn url_is_required_and_template_needs_a_room() {
        assert!(parse(&[]).is_err());
        assert!(parse(&["--url-template", "ws://127.0.0.1:1/x"]).is_err());
        let c = parse(&["--url-template", "ws://127.0.0.1:1/d/{room}/ws/{room}"]).unwrap();
        assert!(matches!(c.target, Target::Template(_)));
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
