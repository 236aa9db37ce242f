//! A run: connect every client, measure one window per rate, check convergence.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use futures_util::{stream, StreamExt, TryStreamExt};
use hdrhistogram::Histogram;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::client::{self, ClientSpec, Control, Outcome};
use crate::config::node_of;
use crate::config::{ApplyMode, Config};
use crate::http;
use crate::live::{self, LiveOutcome, LiveSpec, LiveStats};
use crate::procfs::{self, CpuClock, CpuDelta, CpuSample, Proc};
use crate::report::{percentiles, LiveReport, NodeLatency, Report, SeedReport, StepReport};
use crate::saturate::{self, Bound, RunShape, Stop};
use crate::seed::{self, SeedSpec};
use crate::stats::{new_hist, Shared};
use crate::target;

/// Silence (no frame received by any client) that counts as quiescent once every timed edit
/// has arrived everywhere.
const QUIET: Duration = Duration::from_millis(200);

/// Longest the preload of one room may take.
const PRELOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// Longest the OKR seed of one room may take (writing and verifying).
const SEED_TIMEOUT: Duration = Duration::from_secs(120);

/// Rooms seeded at once.
const SEED_PARALLEL: usize = 8;

/// Longest the clients may take to integrate their deferred updates after a step.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(300);

fn progress(msg: impl AsRef<str>) {
    eprintln!("[okrhub-load] {}", msg.as_ref());
}

/// Golden-ratio spacing of editors' tick phases, so they do not all fire together.
fn phase(global_editor: usize) -> f64 {
    (global_editor as f64 * 0.618_033_988_749_895).fract()
}

struct Probe {
    /// The server's processes (one per node).
    servers: Vec<Proc>,
    store: Option<Proc>,
    me: Proc,
}

/// The CPU samples of several processes, taken together (`None` if any could not be read).
type Samples = Option<Vec<CpuSample>>;

impl Probe {
    fn server_cpu(&self) -> Samples {
        if self.servers.is_empty() {
            return None;
        }
        self.servers.iter().map(|p| p.cpu().ok()).collect()
    }
    fn store_cpu(&self) -> Samples {
        self.store.and_then(|p| p.cpu().ok().map(|c| vec![c]))
    }
    /// The servers' RSS, summed.
    fn server_rss(&self) -> Option<u64> {
        if self.servers.is_empty() {
            return None;
        }
        self.servers.iter().map(|p| p.rss_kib().ok()).sum()
    }
    fn my_cpu(&self) -> Option<CpuSample> {
        self.me.cpu().ok()
    }
}

/// CPU used between two samples, when both exist.
fn cpu_between(a: &Option<CpuSample>, b: &Option<CpuSample>) -> Option<CpuDelta> {
    match (a, b) {
        (Some(a), Some(b)) => Some(b.since(a)),
        _ => None,
    }
}

/// CPU used by several processes between two samples of them all, summed; read from clock
/// ticks if any of them was.
fn cpu_between_all(a: &Samples, b: &Samples) -> Option<CpuDelta> {
    let (a, b) = (a.as_ref()?, b.as_ref()?);
    let deltas: Vec<CpuDelta> = a.iter().zip(b).map(|(a, b)| b.since(a)).collect();
    Some(CpuDelta {
        secs: deltas.iter().map(|d| d.secs).sum(),
        clock: if deltas.iter().any(|d| d.clock == CpuClock::Ticks) {
            CpuClock::Ticks
        } else {
            CpuClock::Schedstat
        },
    })
}

/// Runs `cfg` to the end and reports. Errors are set-up failures (bad URL, refused host, a
/// client that could not connect); a run that completes but diverged is reported with
/// `converged: false`.
pub async fn run(cfg: &Config) -> Result<Report> {
    cfg.validate()?;
    let rooms: Vec<String> = (0..cfg.rooms).map(|i| cfg.room_name(i)).collect();
    let nodes = cfg.nodes();
    // Each room's URL on each node; seeds and preloads go to the first node.
    let node_urls: Vec<Vec<String>> = (0..nodes)
        .map(|n| {
            rooms
                .iter()
                .map(|r| cfg.node_target(n).url_for(r))
                .collect()
        })
        .collect();
    let urls = &node_urls[0];
    for of_node in &node_urls {
        let mut first = None;
        for u in of_node {
            let ep = target::parse_ws(u)?;
            first.get_or_insert(ep);
        }
        target::check_resolves_to_loopback(first.as_ref().expect("at least one room")).await?;
    }
    let create = match &cfg.create_doc_url {
        Some(u) => {
            let ep = target::parse_http(u)?;
            target::check_resolves_to_loopback(&ep).await?;
            Some(ep)
        }
        None => None,
    };
    let total = cfg.connections();
    procfs::ensure_nofile((total + cfg.live_connections()) as u64 + 64)?;
    let probe = Probe {
        servers: cfg
            .server_pids
            .iter()
            .map(|&p| Proc::new(p))
            .collect::<Result<_>>()?,
        store: cfg.store_pid.map(Proc::new).transpose()?,
        me: Proc::current(),
    };

    if let Some(ep) = &create {
        progress(format!(
            "creating {} docs via POST {}",
            rooms.len(),
            ep.path
        ));
        for r in &rooms {
            http::create_doc(ep, r).await?;
        }
    }

    let seeded = match &cfg.seed {
        Some(spec) => Some(seed_rooms(urls, spec).await?),
        None => None,
    };

    let preload_s = if cfg.preload_entries > 0 {
        progress(format!(
            "preloading {} entries into each of {} rooms",
            cfg.preload_entries, cfg.rooms
        ));
        let t = Instant::now();
        for u in urls {
            tokio::time::timeout(
                PRELOAD_TIMEOUT,
                client::preload_room(u, cfg.preload_entries),
            )
            .await
            .map_err(|_| anyhow::anyhow!("timed out after {PRELOAD_TIMEOUT:?}"))
            .and_then(|r| r)
            .with_context(|| format!("preloading {u}"))?;
        }
        Some(t.elapsed().as_secs_f64())
    } else {
        None
    };

    // Set-up: every client connects and syncs, at most `ramp` at a time.
    let rss_before = probe.server_rss();
    let shared = Arc::new(Shared::on_nodes(cfg.rooms, cfg.clients, nodes));
    let (ctl_tx, ctl_rx) = watch::channel(Control::Idle);
    let (joined_tx, mut joined_rx) = mpsc::unbounded_channel();
    let ramp = Arc::new(Semaphore::new(cfg.ramp));
    progress(format!(
        "connecting {total} clients ({} rooms × {}), {} at a time",
        cfg.rooms, cfg.clients, cfg.ramp
    ));
    let cpu_setup0 = probe.server_cpu();
    let setup_started = Instant::now();
    let mut handles: Vec<JoinHandle<Outcome>> = Vec::with_capacity(total);
    for room in 0..cfg.rooms {
        for c in 0..cfg.clients {
            let editor = (c < cfg.editors).then_some(c as u32);
            let spec = ClientSpec {
                room,
                client: c,
                url: node_urls[node_of(room, c, cfg.clients, nodes)][room].clone(),
                editor,
                phase: phase(room * cfg.editors + c),
                room_editors: cfg.editors,
                kind: cfg.edit_kind,
                apply: cfg.apply,
            };
            handles.push(tokio::spawn(client::run_client(
                spec,
                shared.clone(),
                ramp.clone(),
                ctl_rx.clone(),
                joined_tx.clone(),
            )));
        }
    }
    drop(joined_tx);
    let join_hist = match wait_joined(&mut joined_rx, total, setup_started).await {
        Ok(h) => h,
        Err(f) => {
            for h in &handles {
                h.abort();
            }
            bail!("set-up failed: {f}{}", fd_hint(&f));
        }
    };
    let setup = setup_started.elapsed();
    let setup_server_cpu = cpu_between_all(&cpu_setup0, &probe.server_cpu());
    let rss_after_setup = probe.server_rss();
    progress(format!(
        "{total} clients synced in {:.2} s",
        setup.as_secs_f64()
    ));

    // Room screens, once the sync clients are in.
    let live_stats = Arc::new(LiveStats::default());
    let (live_handles, live_join) = if cfg.live_subscribers > 0 {
        match connect_live(cfg, &node_urls, &live_stats, &ramp, &ctl_rx).await {
            Ok(l) => l,
            Err(e) => {
                for h in &handles {
                    h.abort();
                }
                return Err(e);
            }
        }
    } else {
        (Vec::new(), new_hist())
    };

    // Measured windows.
    let mut steps = Vec::new();
    let mut rate = cfg.rate;
    let mut best = 0.0f64;
    let mut stop: Option<Stop> = None;
    let gen_cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let max_steps = cfg.saturate.map(|s| s.max_steps).unwrap_or(1);
    for step in 0..max_steps {
        let s = measure(cfg, &shared, &live_stats, &ctl_tx, &probe, rate).await;
        progress(format!("step {}: {}", step + 1, short(&s)));
        let delivered = s.delivered_per_s;
        steps.push(s);
        let Some(sat) = cfg.saturate else { break };
        let shape = RunShape {
            generator_cores: gen_cores as f64,
            editors: cfg.editors * cfg.rooms,
        };
        stop = saturate::check(&sat, shape, &steps[step], step, best);
        if stop.is_some() {
            break;
        }
        best = best.max(delivered);
        rate *= sat.rate_factor;
        if rate > crate::config::MAX_RATE {
            stop = Some(Stop {
                reason: format!(
                    "rate cap of {} edits/s per editor reached",
                    crate::config::MAX_RATE
                ),
                bound: Bound::Unsaturated,
            });
            break;
        }
    }
    if cfg.saturate.is_some() && stop.is_none() {
        stop = Some(Stop {
            reason: format!("max_steps ({max_steps}) reached"),
            bound: Bound::Unsaturated,
        });
    }
    let rss_end = probe.server_rss();

    // Stop everyone and compare the docs.
    ctl_tx.send_replace(Control::Stop);
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(total);
    let collect_deadline = Instant::now() + Duration::from_secs(30);
    for h in handles {
        match tokio::time::timeout_at(collect_deadline, h).await {
            Ok(Ok(o)) => outcomes.push(o),
            Ok(Err(e)) => bail!("a client task failed: {e}"),
            Err(_) => bail!("clients did not stop within 30 s"),
        }
    }
    let mut live_outcomes: Vec<LiveOutcome> = Vec::with_capacity(live_handles.len());
    for h in live_handles {
        match tokio::time::timeout_at(collect_deadline, h).await {
            Ok(Ok(o)) => live_outcomes.push(o),
            Ok(Err(e)) => bail!("a /live task failed: {e}"),
            Err(_) => bail!("/live subscribers did not stop within 30 s"),
        }
    }
    let mut rooms_diverged = 0;
    let mut preload_seen = true;
    let mut seed_seen = true;
    for room in 0..cfg.rooms {
        let of_room: Vec<&Outcome> = outcomes.iter().filter(|o| o.room == room).collect();
        let first = of_room[0];
        let same = of_room.iter().all(|o| {
            o.error.is_none()
                && o.snapshot.is_some()
                && o.snapshot == first.snapshot
                && o.content == first.content
        });
        if !same {
            rooms_diverged += 1;
            if std::env::var_os("OKRHUB_LOAD_DEBUG").is_some() {
                for o in &of_room {
                    eprintln!(
                        "room {room}: error={:?} snapshot={:?} content={:?}",
                        o.error, o.snapshot, o.content
                    );
                }
            }
        }
        preload_seen &= of_room
            .iter()
            .all(|o| o.preload_len as usize >= cfg.preload_entries);
        if let Some(spec) = &cfg.seed {
            let want = seed::Counts::expected(spec);
            seed_seen &= of_room.iter().all(|o| o.seed_counts.covers(&want));
        }
    }
    let live_errors = live_outcomes.iter().filter(|o| o.error.is_some()).count();
    let errors: Vec<&String> = outcomes
        .iter()
        .filter_map(|o| o.error.as_ref())
        .chain(live_outcomes.iter().filter_map(|o| o.error.as_ref()))
        .collect();
    let live = (cfg.live_subscribers > 0).then(|| {
        live_report(
            cfg,
            &live_outcomes,
            &live_join,
            live_stats.totals(),
            live_errors,
        )
    });

    let main = if cfg.saturate.is_some() {
        steps
            .iter()
            .max_by(|a, b| a.delivered_per_s.total_cmp(&b.delivered_per_s))
            .cloned()
            .expect("at least one step")
    } else {
        steps[0].clone()
    };
    let [j50, _, j99, jmax] = percentiles(&join_hist);
    let conns = total as f64;
    Ok(Report {
        label: cfg.label.clone(),
        scenario: cfg.scenario.clone(),
        run_id: cfg.run_id.clone(),
        url: cfg.targets_str(),
        nodes,
        edit_kind: cfg.edit_kind.as_str().to_owned(),
        apply: cfg.apply.as_str().to_owned(),
        rooms: cfg.rooms,
        clients_per_room: cfg.clients,
        connections: total,
        editors_per_room: cfg.editors,
        warmup_s: cfg.warmup.as_secs_f64(),
        preload_entries: cfg.preload_entries,
        preload_s,
        setup_s: setup.as_secs_f64(),
        conn_per_s: conns / setup.as_secs_f64().max(1e-9),
        join_p50_ms: j50 as f64 / 1000.0,
        join_p99_ms: j99 as f64 / 1000.0,
        join_max_ms: jmax as f64 / 1000.0,
        setup_server_cpu_s: setup_server_cpu.map(|c| c.secs),
        setup_server_cpu_clock: setup_server_cpu.map(|c| c.clock),
        server_cpu_ms_per_join: setup_server_cpu.map(|c| c.secs * 1000.0 / conns),
        generator_cores: gen_cores,
        peak_delivered_per_s: cfg.saturate.map(|_| main.delivered_per_s),
        main,
        steps: if cfg.saturate.is_some() {
            steps
        } else {
            Vec::new()
        },
        peak_bound: stop.as_ref().map(|s| s.bound),
        saturate_stop: stop.map(|s| s.reason),
        server_rss_before_kib: rss_before,
        server_rss_after_setup_kib: rss_after_setup,
        server_rss_end_kib: rss_end,
        server_rss_per_conn_kib: match (rss_before, rss_after_setup) {
            (Some(a), Some(b)) => Some((b as f64 - a as f64) / conns),
            _ => None,
        },
        generator_rss_kib: probe.me.rss_kib().ok(),
        generator_peak_rss_kib: probe.me.peak_rss_kib().ok(),
        converged: rooms_diverged == 0,
        rooms_diverged,
        client_errors: errors.len(),
        first_error: errors.first().map(|e| e.to_string()),
        preload_seen: (cfg.preload_entries > 0).then_some(preload_seen),
        seed: seeded.map(|(spec, seed_s, doc_bytes)| SeedReport {
            checkins: spec.checkins,
            comments: spec.comments,
            seed_s,
            doc_bytes,
            seen: seed_seen,
        }),
        live,
    })
}

/// Waits until `n` clients have reported their join on `joined` (within a deadline of 60 s
/// plus 10 ms per client from `started`), and returns their join times. On a failed join, or
/// when the deadline passes, says what went wrong.
async fn wait_joined(
    joined: &mut mpsc::UnboundedReceiver<Result<Duration, String>>,
    n: usize,
    started: Instant,
) -> Result<Histogram<u64>, String> {
    let deadline = started + Duration::from_secs(60) + Duration::from_millis(10) * n as u32;
    let mut hist = new_hist();
    for i in 0..n {
        match tokio::time::timeout_at(deadline, joined.recv()).await {
            Ok(Some(Ok(d))) => {
                hist.saturating_record(d.as_micros() as u64);
            }
            Ok(Some(Err(e))) => return Err(format!("connection {} of {n} failed: {e}", i + 1)),
            Ok(None) => return Err("clients ended before all joined".into()),
            Err(_) => {
                return Err(format!(
                    "only {i} of {n} clients synced before the set-up deadline"
                ))
            }
        }
    }
    Ok(hist)
}

/// A hint for a set-up failure that ran out of descriptors.
fn fd_hint(failure: &str) -> &'static str {
    if failure.contains("Too many open files") {
        " (the server or the generator ran out of file descriptors: raise `ulimit -n`)"
    } else {
        ""
    }
}

/// Seeds every room with an OKR set ([`SEED_PARALLEL`] at a time, each within
/// [`SEED_TIMEOUT`]). Returns the spec, the time taken and the mean size of a seeded doc.
async fn seed_rooms(urls: &[String], spec: &SeedSpec) -> Result<(SeedSpec, f64, usize)> {
    progress(format!(
        "seeding {} rooms with an OKR set ({} objectives, {} KRs and their drafts, {} check-ins, {} comments)",
        urls.len(),
        seed::OBJECTIVES,
        seed::KEY_RESULTS,
        spec.checkins,
        spec.comments
    ));
    let t = Instant::now();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(seed::CYCLE_END_MS);
    let seeded: Vec<seed::Seeded> = stream::iter(urls.iter().enumerate())
        .map(|(room, url)| async move {
            tokio::time::timeout(SEED_TIMEOUT, seed::seed_room(url, spec, room, now_ms))
                .await
                .map_err(|_| anyhow!("timed out after {SEED_TIMEOUT:?}"))
                .and_then(|r| r)
                .with_context(|| format!("seeding {url}"))
        })
        .buffer_unordered(SEED_PARALLEL)
        .try_collect()
        .await?;
    let bytes = seeded.iter().map(|s| s.doc_bytes).sum::<usize>() / seeded.len().max(1);
    Ok((*spec, t.elapsed().as_secs_f64(), bytes))
}

/// Connects `live_subscribers` screens to every room (at most `ramp` at a time) and waits until
/// each has its snapshot. Returns their tasks and join times (connect → snapshot).
async fn connect_live(
    cfg: &Config,
    node_urls: &[Vec<String>],
    stats: &Arc<LiveStats>,
    ramp: &Arc<Semaphore>,
    ctl: &watch::Receiver<Control>,
) -> Result<(Vec<JoinHandle<LiveOutcome>>, Histogram<u64>)> {
    let n = cfg.live_connections();
    progress(format!(
        "connecting {n} /live subscribers ({} per room)",
        cfg.live_subscribers
    ));
    let mut specs = Vec::with_capacity(n);
    for room in 0..cfg.rooms {
        for k in 0..cfg.live_subscribers {
            // Dealt over the nodes after the room's sync clients.
            let node = node_of(room, cfg.clients + k, cfg.clients, node_urls.len());
            specs.push(LiveSpec {
                room,
                url: live::live_url(&node_urls[node][room], &format!("screen{k}"))?,
            });
        }
    }
    let started = Instant::now();
    let (joined_tx, mut joined_rx) = mpsc::unbounded_channel();
    let handles: Vec<JoinHandle<LiveOutcome>> = specs
        .into_iter()
        .map(|spec| {
            tokio::spawn(live::run_live(
                spec,
                stats.clone(),
                ramp.clone(),
                ctl.clone(),
                joined_tx.clone(),
            ))
        })
        .collect();
    drop(joined_tx);
    match wait_joined(&mut joined_rx, n, started).await {
        Ok(hist) => {
            progress(format!(
                "{n} /live subscribers have their snapshot after {:.2} s",
                started.elapsed().as_secs_f64()
            ));
            Ok((handles, hist))
        }
        Err(f) => {
            for h in &handles {
                h.abort();
            }
            bail!("set-up of the /live subscribers failed: {f}{}", fd_hint(&f));
        }
    }
}

/// The run-wide numbers of the screens.
fn live_report(
    cfg: &Config,
    outcomes: &[LiveOutcome],
    join: &Histogram<u64>,
    totals: live::LiveTotals,
    errors: usize,
) -> LiveReport {
    let snapshots: Vec<usize> = outcomes.iter().filter_map(|o| o.snapshot_bytes).collect();
    let snapshot_total: usize = snapshots.iter().sum();
    let [j50, _, j99, _] = percentiles(join);
    LiveReport {
        subscribers_per_room: cfg.live_subscribers,
        connections: cfg.live_connections(),
        join_p50_ms: j50 as f64 / 1000.0,
        join_p99_ms: j99 as f64 / 1000.0,
        snapshot_bytes_total: snapshot_total as u64,
        snapshot_bytes_mean: (snapshot_total / snapshots.len().max(1)) as u64,
        frames: totals.frames,
        events: totals.events,
        bytes: totals.bytes,
        errors,
    }
}

fn short(s: &StepReport) -> String {
    format!(
        "rate {}/s: {:.0} delivered/s, p50 {:.2} ms, p99 {:.2} ms, server CPU {}%",
        s.rate,
        s.delivered_per_s,
        s.delivery_p50_us as f64 / 1000.0,
        s.delivery_p99_us as f64 / 1000.0,
        s.server_cpu_pct
            .map(|c| format!("{c:.1}"))
            .unwrap_or_else(|| "-".into())
    )
}

/// Deferred apply: every client integrates the updates it kept, outside the measured window,
/// and the controller waits (bounded) until each live client is done. Returns the time taken and
/// the updates applied.
async fn flush_all(ctl: &watch::Sender<Control>, shared: &Shared, clients: usize) -> (f64, u64) {
    let t0 = Instant::now();
    let epoch = shared.start_flush();
    ctl.send_replace(Control::Flush(epoch));
    loop {
        let (acks, applied) = shared.flush_status();
        if acks + shared.sessions_ended() >= clients {
            return (t0.elapsed().as_secs_f64(), applied);
        }
        if t0.elapsed() >= FLUSH_TIMEOUT {
            progress(format!(
                "only {acks} of {clients} clients applied their deferred updates within {FLUSH_TIMEOUT:?}"
            ));
            return (t0.elapsed().as_secs_f64(), applied);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Editing at `rate`: warm up, measure one window, stop editing, wait for quiescence, (deferred
/// apply) let the clients integrate what they kept, harvest.
///
/// The deferred updates are integrated after the quiescence wait, not as soon as the window
/// closes: the deliveries of the window's last edits are still arriving and being timed then,
/// and a client busy integrating thousands of updates would delay reading them.
async fn measure(
    cfg: &Config,
    shared: &Shared,
    live: &LiveStats,
    ctl: &watch::Sender<Control>,
    probe: &Probe,
    rate: f64,
) -> StepReport {
    if cfg.editors > 0 {
        ctl.send_replace(Control::Edit(rate));
    }
    tokio::time::sleep(cfg.warmup).await;

    let cpu0 = probe.server_cpu();
    let store0 = probe.store_cpu();
    let me0 = probe.my_cpu();
    let live0 = live.totals();
    let w0 = Instant::now();
    shared.start_window();
    tokio::time::sleep(cfg.duration).await;
    shared.end_window();
    let window = w0.elapsed().as_secs_f64();
    let live_window = (cfg.live_subscribers > 0).then(|| live.totals().since(live0));
    let server = cpu_between_all(&cpu0, &probe.server_cpu());
    let store = cpu_between_all(&store0, &probe.store_cpu());
    let me = cpu_between(&me0, &probe.my_cpu()).map_or(0.0, |d| d.secs);
    let cpu = server.map(|d| d.secs);
    ctl.send_replace(Control::Idle);

    // Quiescence: every timed edit everywhere, and no frame for a moment (bounded).
    let q0 = Instant::now();
    let quiesced = loop {
        if shared.all_complete() && shared.quiet_for_us() >= QUIET.as_micros() as i64 {
            break true;
        }
        if q0.elapsed() >= cfg.quiesce_timeout {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let quiesce_s = q0.elapsed().as_secs_f64();
    let flush = if cfg.apply == ApplyMode::Deferred {
        Some(flush_all(ctl, shared, cfg.connections()).await)
    } else {
        None
    };

    let h = shared.harvest();
    let receivers = cfg.clients.saturating_sub(1) as u64;
    let [d50, d90, d99, dmax] = percentiles(&h.deliveries);
    let [c50, c90, c99, cmax] = percentiles(&h.complete);
    let delivered = h.delivered_in_window;
    StepReport {
        rate,
        window_s: window,
        edits_sent: h.sent,
        edits_per_s: h.sent as f64 / window,
        deliveries: delivered,
        delivered_per_s: delivered as f64 / window,
        expected_deliveries: h.sent * receivers,
        timed_deliveries: h.deliveries.len(),
        incomplete_edits: h.incomplete,
        delivery_p50_us: d50,
        delivery_p90_us: d90,
        delivery_p99_us: d99,
        delivery_max_us: dmax,
        complete_p50_us: c50,
        complete_p90_us: c90,
        complete_p99_us: c99,
        complete_max_us: cmax,
        same_node: (cfg.nodes() > 1).then(|| NodeLatency::of(&h.same_node)),
        cross_node: (cfg.nodes() > 1).then(|| NodeLatency::of(&h.cross_node)),
        server_cpu_s: cpu,
        server_cpu_clock: server.map(|d| d.clock),
        server_cpu_pct: cpu.map(|c| c * 100.0 / window),
        server_cpu_us_per_delivery: cpu
            .filter(|_| delivered > 0)
            .map(|c| c * 1e6 / delivered as f64),
        store_cpu_s: store.map(|d| d.secs),
        store_cpu_clock: store.map(|d| d.clock),
        store_cpu_us_per_delivery: store
            .filter(|_| delivered > 0)
            .map(|d| d.secs * 1e6 / delivered as f64),
        generator_cpu_pct: me * 100.0 / window,
        quiesce_s,
        quiesced,
        apply_fallback_frames: flush.map(|_| h.apply_fallbacks),
        deferred_applied: flush.map(|f| f.1),
        flush_s: flush.map(|f| f.0),
        live_frames: live_window.map(|l| l.frames),
        live_events: live_window.map(|l| l.events),
        live_bytes: live_window.map(|l| l.bytes),
    }
}
