//! What a run measured, and how it is printed: a human summary, a markdown table row, JSON.

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::procfs::CpuClock;
use crate::saturate::Bound;

/// One measured window (a saturation run has several, one per rate).
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// Edits/s per editor.
    pub rate: f64,
    /// Length of the measured window.
    pub window_s: f64,
    /// Edits sent during the window (these are the timed ones).
    pub edits_sent: u64,
    pub edits_per_s: f64,
    /// Updates received by clients during the window (any edit).
    pub deliveries: u64,
    pub delivered_per_s: f64,
    /// `edits_sent × (clients per room − 1)`.
    pub expected_deliveries: u64,
    /// Deliveries of edits sent during the window (including those arriving after it).
    pub timed_deliveries: u64,
    /// Edits sent during the window that some client still lacked when the quiescence wait
    /// ended.
    pub incomplete_edits: u64,
    pub delivery_p50_us: u64,
    pub delivery_p90_us: u64,
    pub delivery_p99_us: u64,
    pub delivery_max_us: u64,
    /// Per edit: until the last other client of the room had it.
    pub complete_p50_us: u64,
    pub complete_p90_us: u64,
    pub complete_p99_us: u64,
    pub complete_max_us: u64,
    /// Several nodes: the timed deliveries whose editor and receiver are clients of the same
    /// node, and of different nodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub same_node: Option<NodeLatency>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cross_node: Option<NodeLatency>,
    /// CPU of every server process (summed over the nodes).
    pub server_cpu_s: Option<f64>,
    /// Which clock `server_cpu_s` comes from: `schedstat` (ns), or `ticks` (10 ms) when a
    /// server thread exited in the window or the kernel has no schedstat.
    pub server_cpu_clock: Option<CpuClock>,
    /// Server CPU over the window, % of one core.
    pub server_cpu_pct: Option<f64>,
    pub server_cpu_us_per_delivery: Option<f64>,
    /// With `--store-pid`: the store's process (redis-server) over the window, apart from
    /// the server's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_cpu_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_cpu_clock: Option<CpuClock>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_cpu_us_per_delivery: Option<f64>,
    /// This generator's CPU over the window, % of one core.
    pub generator_cpu_pct: f64,
    /// Time from the end of editing until every edit had reached every client.
    pub quiesce_s: f64,
    pub quiesced: bool,
    /// Deferred apply: frames the cheap path could not read, applied at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apply_fallback_frames: Option<u64>,
    /// Deferred apply: updates the clients integrated after the step (outside the window).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deferred_applied: Option<u64>,
    /// Deferred apply: how long that took.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flush_s: Option<f64>,
    /// With `/live` subscribers: frames they received during the window (all of them together).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_frames: Option<u64>,
    /// … of which OKR events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_events: Option<u64>,
    /// … and their bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_bytes: Option<u64>,
}

/// The timed deliveries of one kind (same-node or cross-node).
#[derive(Debug, Clone, Serialize)]
pub struct NodeLatency {
    pub deliveries: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

impl NodeLatency {
    pub fn of(h: &Histogram<u64>) -> Self {
        let [p50_us, p90_us, p99_us, max_us] = percentiles(h);
        NodeLatency {
            deliveries: h.len(),
            p50_us,
            p90_us,
            p99_us,
            max_us,
        }
    }
}

/// The OKR seed of a run (`--seed-okr`).
#[derive(Debug, Clone, Serialize)]
pub struct SeedReport {
    /// Check-ins per room.
    pub checkins: usize,
    /// Comments per room.
    pub comments: usize,
    /// Writing and verifying every room's seed.
    pub seed_s: f64,
    /// Mean size of a seeded doc, encoded as one v1 update.
    pub doc_bytes: usize,
    /// Every client ended with every seeded entry.
    pub seen: bool,
}

/// The run's `/live` subscribers (room screens).
#[derive(Debug, Clone, Serialize)]
pub struct LiveReport {
    pub subscribers_per_room: usize,
    pub connections: usize,
    /// Connect → snapshot received.
    pub join_p50_ms: f64,
    pub join_p99_ms: f64,
    /// Every subscriber's snapshot frame, summed.
    pub snapshot_bytes_total: u64,
    /// The mean snapshot frame.
    pub snapshot_bytes_mean: u64,
    /// Frames after the snapshots, from set-up until the run stopped (all subscribers).
    pub frames: u64,
    /// … of which OKR events (not presence or other control messages).
    pub events: u64,
    /// … and their bytes.
    pub bytes: u64,
    /// Subscribers the server closed or that got a frame they could not read (also counted in
    /// `client_errors`).
    pub errors: usize,
}

/// Percentiles (µs) of a histogram: p50, p90, p99, max; zeros when empty.
pub fn percentiles(h: &Histogram<u64>) -> [u64; 4] {
    if h.is_empty() {
        return [0; 4];
    }
    [
        h.value_at_quantile(0.50),
        h.value_at_quantile(0.90),
        h.value_at_quantile(0.99),
        h.max(),
    ]
}

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub label: String,
    pub scenario: String,
    pub run_id: String,
    /// Every node's URL, comma-separated.
    pub url: String,
    /// Servers the clients were spread over (round-robin).
    pub nodes: usize,
    pub edit_kind: String,
    /// `immediate` or `deferred`: when receivers integrate updates.
    pub apply: String,
    pub rooms: usize,
    pub clients_per_room: usize,
    pub connections: usize,
    pub editors_per_room: usize,
    pub warmup_s: f64,
    pub preload_entries: usize,
    pub preload_s: Option<f64>,
    /// From the first connection attempt until the last client was synced.
    pub setup_s: f64,
    /// Connections set up (connected and synced) per second during the ramp.
    pub conn_per_s: f64,
    /// Per client: TCP connect until synced (not counting the wait for a ramp slot).
    pub join_p50_ms: f64,
    pub join_p99_ms: f64,
    pub join_max_ms: f64,
    pub setup_server_cpu_s: Option<f64>,
    /// Which clock `setup_server_cpu_s` comes from (see `StepReport::server_cpu_clock`).
    pub setup_server_cpu_clock: Option<CpuClock>,
    pub server_cpu_ms_per_join: Option<f64>,
    /// Cores the generator may use (its CPU % is of one core).
    pub generator_cores: usize,
    /// The single step, or the peak step of a saturation run (`"main": {…}` in the JSON).
    pub main: StepReport,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_delivered_per_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saturate_stop: Option<String>,
    /// What limited the peak: `server`, `generator` or `unsaturated`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_bound: Option<Bound>,
    pub server_rss_before_kib: Option<u64>,
    pub server_rss_after_setup_kib: Option<u64>,
    pub server_rss_end_kib: Option<u64>,
    /// `(rss_after_setup − rss_before) / connections`.
    pub server_rss_per_conn_kib: Option<f64>,
    pub generator_rss_kib: Option<u64>,
    /// The generator's highest RSS of the run (`VmHWM`): with deferred apply it holds every
    /// update kept during a step.
    pub generator_peak_rss_kib: Option<u64>,
    /// Every room's clients ended with identical docs.
    pub converged: bool,
    pub rooms_diverged: usize,
    /// Clients that disconnected or failed.
    pub client_errors: usize,
    pub first_error: Option<String>,
    /// With a preload: every client saw every preloaded entry.
    pub preload_seen: Option<bool>,
    /// With `--seed-okr`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<SeedReport>,
    /// With `--live-subscribers`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveReport>,
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map(|x| format!("{x:.digits$}"))
        .unwrap_or_else(|| "-".into())
}

fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1000.0)
}

/// ` [ticks]` after a CPU figure read from clock ticks, which are coarse (10 ms).
fn clock_note(c: Option<CpuClock>) -> &'static str {
    match c {
        Some(CpuClock::Ticks) => " [ticks]",
        _ => "",
    }
}

impl StepReport {
    fn line(&self) -> String {
        format!(
            "rate {:>7.2}/s  delivered {:>9.0}/s  deliv p50 {:>7} ms p99 {:>8} ms  last p99 {:>8} ms  server CPU {:>6}%{}  {:>6} µs/deliv  gen CPU {:>5.1}%  incomplete {}{}",
            self.rate,
            self.delivered_per_s,
            ms(self.delivery_p50_us),
            ms(self.delivery_p99_us),
            ms(self.complete_p99_us),
            opt(self.server_cpu_pct, 1),
            clock_note(self.server_cpu_clock),
            opt(self.server_cpu_us_per_delivery, 2),
            self.generator_cpu_pct,
            self.incomplete_edits,
            self.flush_note(),
        )
    }

    /// Deferred apply: what was integrated after the step, and how often the cheap path fell
    /// back.
    fn flush_note(&self) -> String {
        match (self.deferred_applied, self.flush_s) {
            (Some(n), Some(t)) => format!(
                "  applied after {n} in {t:.2} s, fallbacks {}",
                self.apply_fallback_frames.unwrap_or(0)
            ),
            _ => String::new(),
        }
    }
}

impl Report {
    /// A multi-line summary for people.
    pub fn summary(&self) -> String {
        let m = &self.main;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "== {} / {} (run {}) — {}",
            self.label, self.scenario, self.run_id, self.url
        );
        let editing = if self.editors_per_room == 0 {
            "no editors (idle)".to_string()
        } else {
            format!(
                "{} editor(s)/room, {} edits at {}/s each",
                self.editors_per_room, self.edit_kind, m.rate
            )
        };
        let _ = writeln!(
            s,
            "load: {} rooms × {} clients = {} connections, {editing}, window {:.1} s after {:.1} s warm-up",
            self.rooms, self.clients_per_room, self.connections, m.window_s, self.warmup_s
        );
        if self.nodes > 1 {
            let _ = writeln!(
                s,
                "nodes: {} (each room's clients dealt round-robin over them)",
                self.nodes
            );
        }
        if let Some(sd) = &self.seed {
            let _ = writeln!(
                s,
                "seed: OKR set per room (9 objectives, 36 KRs + 36 drafts, {} check-ins, {} comments, ~{} B) in {:.2} s; seen by every client: {}",
                sd.checkins, sd.comments, sd.doc_bytes, sd.seed_s, sd.seen
            );
        }
        if let Some(p) = self.preload_s {
            let _ = writeln!(
                s,
                "preload: {} entries/room in {:.2} s; seen by every client: {}",
                self.preload_entries,
                p,
                self.preload_seen.unwrap_or(false)
            );
        }
        let _ = writeln!(
            s,
            "setup: {:.2} s, {:.0} conn/s; join (connect → synced) p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; server CPU {} s{} = {} ms/join",
            self.setup_s, self.conn_per_s, self.join_p50_ms, self.join_p99_ms, self.join_max_ms,
            opt(self.setup_server_cpu_s, 4), clock_note(self.setup_server_cpu_clock),
            opt(self.server_cpu_ms_per_join, 3)
        );
        let _ = writeln!(
            s,
            "edits: {} sent ({:.1}/s); deliveries: {} in window = {:.0}/s (expected {} for the window's edits, timed {}, incomplete edits {})",
            m.edits_sent, m.edits_per_s, m.deliveries, m.delivered_per_s,
            m.expected_deliveries, m.timed_deliveries, m.incomplete_edits
        );
        let _ = writeln!(
            s,
            "latency per delivery:   p50 {} ms  p90 {} ms  p99 {} ms  max {} ms",
            ms(m.delivery_p50_us),
            ms(m.delivery_p90_us),
            ms(m.delivery_p99_us),
            ms(m.delivery_max_us)
        );
        for (name, l) in [("same-node", &m.same_node), ("cross-node", &m.cross_node)] {
            if let Some(l) = l {
                let _ = writeln!(
                    s,
                    "  {name:<10} ({:>7} deliveries): p50 {} ms  p90 {} ms  p99 {} ms  max {} ms",
                    l.deliveries,
                    ms(l.p50_us),
                    ms(l.p90_us),
                    ms(l.p99_us),
                    ms(l.max_us)
                );
            }
        }
        let _ = writeln!(
            s,
            "latency to last client: p50 {} ms  p90 {} ms  p99 {} ms  max {} ms",
            ms(m.complete_p50_us),
            ms(m.complete_p90_us),
            ms(m.complete_p99_us),
            ms(m.complete_max_us)
        );
        let _ = writeln!(
            s,
            "server CPU: {} s{} in window = {}% of a core, {} µs per delivered update; generator CPU {:.1}% ({} core(s)), receivers apply {}",
            opt(m.server_cpu_s, 3),
            clock_note(m.server_cpu_clock),
            opt(m.server_cpu_pct, 1),
            opt(m.server_cpu_us_per_delivery, 2),
            m.generator_cpu_pct,
            self.generator_cores,
            self.apply
        );
        if let Some(c) = m.store_cpu_s {
            let _ = writeln!(
                s,
                "store CPU (apart): {c:.3} s{} in window, {} µs per delivered update",
                clock_note(m.store_cpu_clock),
                opt(m.store_cpu_us_per_delivery, 2)
            );
        }
        if let Some(l) = &self.live {
            let _ = writeln!(
                s,
                "live: {} subscribers/room ({} connections), snapshot {} B mean, connect → snapshot p50 {:.2} ms p99 {:.2} ms; window: {} frames ({} events) = {:.0}/s, {} B; run: {} frames, {} B; errors {}",
                l.subscribers_per_room,
                l.connections,
                l.snapshot_bytes_mean,
                l.join_p50_ms,
                l.join_p99_ms,
                m.live_frames.unwrap_or(0),
                m.live_events.unwrap_or(0),
                m.live_frames.unwrap_or(0) as f64 / m.window_s.max(1e-9),
                m.live_bytes.unwrap_or(0),
                l.frames,
                l.bytes,
                l.errors
            );
        }
        if let (Some(n), Some(t)) = (m.deferred_applied, m.flush_s) {
            let _ = writeln!(
                s,
                "deferred apply: {n} updates integrated after the window in {t:.2} s; {} frames applied at once (fallback)",
                m.apply_fallback_frames.unwrap_or(0)
            );
        }
        let kib = |v: Option<u64>| v.map(|x| x.to_string()).unwrap_or_else(|| "-".into());
        let _ = writeln!(
            s,
            "server RSS: before {} KiB, after setup {} KiB, end {} KiB; {} KiB per connection; generator RSS {} KiB (peak {} KiB)",
            kib(self.server_rss_before_kib),
            kib(self.server_rss_after_setup_kib),
            kib(self.server_rss_end_kib),
            opt(self.server_rss_per_conn_kib, 2),
            kib(self.generator_rss_kib),
            kib(self.generator_peak_rss_kib)
        );
        if !self.steps.is_empty() {
            let _ = writeln!(s, "saturation steps:");
            for st in &self.steps {
                let _ = writeln!(s, "  {}", st.line());
            }
            let _ = writeln!(
                s,
                "peak: {} delivered/s ({}); stopped: {}",
                opt(self.peak_delivered_per_s, 0),
                self.peak_bound.map(Bound::label).unwrap_or("-"),
                self.saturate_stop.as_deref().unwrap_or("-")
            );
        }
        let _ = writeln!(
            s,
            "quiesced: {} ({:.2} s); client errors: {}{}",
            m.quiesced,
            m.quiesce_s,
            self.client_errors,
            self.first_error
                .as_deref()
                .map(|e| format!(" (first: {e})"))
                .unwrap_or_default()
        );
        let _ = writeln!(
            s,
            "converged: {}{}",
            self.converged,
            if self.converged {
                String::new()
            } else {
                format!(" ({} rooms diverged)", self.rooms_diverged)
            }
        );
        s
    }

    /// Header and separator of the markdown table.
    pub fn table_header() -> String {
        "| server | scenario | conns | editors/room | rate/s | delivered/s | deliv p50 ms | deliv p99 ms | last p99 ms | server CPU % | CPU µs/deliv | RSS KiB/conn | conn/s | join p99 ms | converged |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
            .to_string()
    }

    /// One markdown table row. A saturation run's delivered/s says what bounded it, e.g.
    /// `451234 (server-bound)`.
    pub fn table_row(&self) -> String {
        let m = &self.main;
        let delivered = match self.peak_bound {
            Some(b) => format!("{:.0} ({})", m.delivered_per_s, b.label()),
            None => format!("{:.0}", m.delivered_per_s),
        };
        format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0} | {:.2} | {} |",
            self.label,
            self.scenario_cell(),
            self.connections,
            self.editors_per_room,
            m.rate,
            delivered,
            ms(m.delivery_p50_us),
            ms(m.delivery_p99_us),
            ms(m.complete_p99_us),
            opt(m.server_cpu_pct, 1),
            opt(m.server_cpu_us_per_delivery, 2),
            opt(self.server_rss_per_conn_kib, 2),
            self.conn_per_s,
            self.join_p99_ms,
            self.converged
        )
    }

    /// The scenario, with the edit kind for the title kinds (`okr-typing (draft-title)`): a
    /// scenario and its baseline share the file.
    pub fn scenario_cell(&self) -> String {
        match self.edit_kind.as_str() {
            "okr-title" | "draft-title" => format!("{} ({})", self.scenario, self.edit_kind),
            _ => self.scenario.clone(),
        }
    }

    /// One JSON line.
    pub fn json(&self) -> String {
        serde_json::to_string(self).expect("a report serializes")
    }
}
