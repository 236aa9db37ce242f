//! The saturation run's stop rule, and which side bounded its peak.
//!
//! The rate doubles step by step. A step stops the run when the editors could not send the
//! rate asked ([`MIN_SENT`]), when the clients received less than [`KEEP_UP`] of what the
//! editors sent (the server, or the generator's receivers, fell behind: the next step would
//! only swamp them), when delivered/s grew by less than `min_gain` over the best step so far,
//! or when an edit never reached every client.
//!
//! CPU readings do not stop a run, on either side: both the server and the generator batch
//! more under load and so do more per CPU-second as the load rises (okrhub: 8.4 µs of CPU per
//! delivery at 115k deliveries/s, 2.7 µs at 343k/s, its core at 93–97 % in both; the
//! generator reads 95 % of its core at 115k/s and at 340k/s alike), so a core at its limit is
//! not a peak. Whether the system keeps up with what is offered is the test. Every stop says which side was the limit ([`Bound`]), so that a peak measured against
//! a saturated generator is not mistaken for the server's, nor one measured with both saturated
//! for either alone.

use serde::Serialize;

use crate::config::Saturate;
use crate::report::StepReport;

/// Generator CPU, as a fraction of the cores it may use, that counts as its limit when the peak
/// is labelled. Not a stop: near the top the busier it is, the more frames each read takes in,
/// so its cost per delivery falls and 95 % of a core may still carry twice the load.
pub const GENERATOR_LIMIT: f64 = 0.95;

/// The run stops when the clients received less than this fraction of the deliveries the
/// editors' edits call for (edits sent × receivers): the system no longer keeps up.
pub const KEEP_UP: f64 = 0.9;

/// The run stops when the editors sent less than this fraction of the edits/s asked: the
/// generator is late on its timers (or the server's back-pressure holds the editors), offering
/// more would not be sent, and doubling it would only swamp the receiving clients — which a
/// server may then disconnect as too slow.
pub const MIN_SENT: f64 = 0.75;

/// A side within this fraction of its limit (server: `cpu_limit` of a core; generator:
/// [`GENERATOR_LIMIT`] of its cores) is at its limit. 0.95 of 95 % is 90 % of a core: a
/// server that busy has no more than a few percent left to give.
const AT_LIMIT: f64 = 0.95;

/// When neither side is at its limit, the nearer one is the bound if it is at least this far
/// along; below on both sides, neither CPU explains the plateau (other processes took the
/// cores, or something other than CPU limits).
const NEAR_LIMIT: f64 = 0.8;

/// What limited the peak of a saturation run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Bound {
    /// The server's CPU: at its limit while the generator's is not, or, neither at its limit,
    /// the nearer one.
    Server,
    /// The generator's CPU, likewise.
    Generator,
    /// Both at their limits: the peak is about what the server's core can do, but the
    /// generator could not have offered more either, and the latencies are partly its own.
    Both,
    /// Neither side's CPU: the run ended at `max_steps` or at the rate cap with throughput still
    /// growing (the peak is a lower bound), or it stopped with both sides well below their
    /// limits (the stop reason gives both CPU figures).
    Unsaturated,
}

impl Bound {
    /// As printed in the table: `server-bound`, `generator-bound`, `server+generator-bound`,
    /// `unsaturated`.
    pub fn label(self) -> &'static str {
        match self {
            Bound::Server => "server-bound",
            Bound::Generator => "generator-bound",
            Bound::Both => "server+generator-bound",
            Bound::Unsaturated => "unsaturated",
        }
    }

    fn note(self) -> &'static str {
        match self {
            Bound::Server => "the server is at or nearest its CPU limit",
            Bound::Generator => "the generator is at or nearest its CPU limit",
            Bound::Both => "both are at their CPU limits",
            Bound::Unsaturated => "neither CPU is near its limit",
        }
    }
}

/// Why a saturation run stopped.
#[derive(Debug, Clone, PartialEq)]
pub struct Stop {
    pub reason: String,
    pub bound: Bound,
}

/// What [`check`] needs to know about the run besides the step.
#[derive(Debug, Clone, Copy)]
pub struct RunShape {
    /// Cores the generator may use.
    pub generator_cores: f64,
    /// Editors over all rooms: a step offers `rate × editors` edits/s.
    pub editors: usize,
}

/// The server's CPU as a fraction of `cpu_limit` of a core, and the generator's as a fraction of
/// [`GENERATOR_LIMIT`] of its cores: 1.0 is each side's limit.
fn loads(sat: &Saturate, run: RunShape, step: &StepReport) -> (Option<f64>, f64) {
    let server = step.server_cpu_pct.map(|p| p / 100.0 / sat.cpu_limit);
    let generator = step.generator_cpu_pct / 100.0 / (GENERATOR_LIMIT * run.generator_cores);
    (server, generator)
}

/// Which side limited `step` (see [`Bound`]). Without the server's CPU (no `--server-pid`),
/// the generator if it was near its limit, else the server (the only other party).
pub fn bound_of(sat: &Saturate, run: RunShape, step: &StepReport) -> Bound {
    let (server, generator) = loads(sat, run, step);
    let Some(server) = server else {
        return if generator >= NEAR_LIMIT {
            Bound::Generator
        } else {
            Bound::Server
        };
    };
    match (server >= AT_LIMIT, generator >= AT_LIMIT) {
        (true, true) => Bound::Both,
        (true, false) => Bound::Server,
        (false, true) => Bound::Generator,
        (false, false) if server.max(generator) < NEAR_LIMIT => Bound::Unsaturated,
        (false, false) if server >= generator => Bound::Server,
        (false, false) => Bound::Generator,
    }
}

/// Both sides' CPU and the edits the editors managed to send, for a stop reason.
fn cpu_note(run: RunShape, step: &StepReport) -> String {
    let server = step
        .server_cpu_pct
        .map(|p| format!("{p:.1}% of a core"))
        .unwrap_or_else(|| "unknown".into());
    let offered = step.rate * run.editors as f64;
    format!(
        "server CPU {server}, generator CPU {:.1}% of its {} core(s); editors sent {:.0} of {offered:.0} edits/s",
        step.generator_cpu_pct, run.generator_cores, step.edits_per_s
    )
}

/// Whether the run stops after `step` (`index` from 0), `best` being the highest delivered/s of
/// the steps before it.
pub fn check(
    sat: &Saturate,
    run: RunShape,
    step: &StepReport,
    index: usize,
    best: f64,
) -> Option<Stop> {
    let (server, _) = loads(sat, run, step);
    let delivered = step.delivered_per_s;
    let offered = step.rate * run.editors as f64;
    let expected = step.expected_deliveries as f64;
    let why = if step.edits_per_s < MIN_SENT * offered {
        format!(
            "the editors sent less than {:.0}% of the edits/s asked",
            MIN_SENT * 100.0
        )
    } else if (step.deliveries as f64) < KEEP_UP * expected {
        format!(
            "the clients received {:.0}% of the deliveries sent ({} of {expected:.0}): not keeping up",
            100.0 * step.deliveries as f64 / expected.max(1.0),
            step.deliveries
        )
    } else if index > 0 && delivered < best * (1.0 + sat.min_gain) {
        let busy = if server.is_some_and(|s| s >= 1.0) {
            format!(" with server CPU ≥ {:.0}% of a core", sat.cpu_limit * 100.0)
        } else {
            String::new()
        };
        format!(
            "delivered/s grew less than {:.0}% ({delivered:.0} vs best {best:.0}){busy}",
            sat.min_gain * 100.0
        )
    } else if step.incomplete_edits > 0 {
        format!("{} edits never reached every client", step.incomplete_edits)
    } else {
        return None;
    };
    let bound = bound_of(sat, run, step);
    Some(Stop {
        reason: format!("{why}; {} ({})", bound.note(), cpu_note(run, step)),
        bound,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(delivered: f64, server_pct: Option<f64>, gen_pct: f64) -> StepReport {
        StepReport {
            rate: 1.0,
            window_s: 5.0,
            edits_sent: 0,
            // All the 50 editors' edits at rate 1.
            edits_per_s: 50.0,
            deliveries: 0,
            delivered_per_s: delivered,
            expected_deliveries: 0,
            timed_deliveries: 0,
            incomplete_edits: 0,
            delivery_p50_us: 0,
            delivery_p90_us: 0,
            delivery_p99_us: 0,
            delivery_max_us: 0,
            complete_p50_us: 0,
            complete_p90_us: 0,
            complete_p99_us: 0,
            complete_max_us: 0,
            same_node: None,
            cross_node: None,
            server_cpu_s: None,
            server_cpu_clock: None,
            server_cpu_pct: server_pct,
            server_cpu_us_per_delivery: None,
            store_cpu_s: None,
            store_cpu_clock: None,
            store_cpu_us_per_delivery: None,
            generator_cpu_pct: gen_pct,
            quiesce_s: 0.0,
            quiesced: true,
            apply_fallback_frames: None,
            deferred_applied: None,
            flush_s: None,
            live_frames: None,
            live_events: None,
            live_bytes: None,
        }
    }

    #[test]
    fn stops_and_says_which_side() {
        let sat = Saturate::default();
        let run = RunShape {
            generator_cores: 1.0,
            editors: 50,
        };
        let check1 = |s: &StepReport, best| check(&sat, run, s, 3, best);
        assert_eq!(check1(&step(100.0, Some(50.0), 50.0), 50.0), None);
        // A busy server whose throughput still grows goes on (batching pays more under load)...
        assert_eq!(check1(&step(100.0, Some(96.0), 50.0), 50.0), None);
        // ...and stops once it no longer grows.
        let s = check1(&step(100.0, Some(96.0), 50.0), 99.0).unwrap();
        assert_eq!(s.bound, Bound::Server);
        assert!(s.reason.contains("with server CPU ≥ 95%"), "{}", s.reason);
        // A busy generator whose throughput still grows goes on too.
        assert_eq!(check1(&step(100.0, Some(94.6), 96.0), 50.0), None);
        // Not keeping up with what the editors sent stops it, put down to the busier side,
        // or to both when both are at their limits.
        let mut behind = step(100.0, Some(96.0), 95.0);
        (behind.expected_deliveries, behind.deliveries) = (1000, 850);
        let s = check1(&behind, 50.0).unwrap();
        assert_eq!(s.bound, Bound::Both);
        assert!(s.reason.contains("received 85%"), "{}", s.reason);
        behind.server_cpu_pct = Some(50.0);
        let s = check1(&behind, 50.0).unwrap();
        assert_eq!(s.bound, Bound::Generator, "{}", s.reason);
        behind.deliveries = 950;
        assert_eq!(check1(&behind, 50.0), None, "95% is keeping up");
        // The editors fell short of the rate: stop, put down to the busier side.
        let mut short = step(100.0, Some(60.0), 92.0);
        short.edits_per_s = 0.7 * short.rate * 50.0;
        let s = check1(&short, 50.0).unwrap();
        assert_eq!(s.bound, Bound::Generator, "{}", s.reason);
        assert!(
            s.reason.starts_with("the editors sent less than 75%"),
            "{}",
            s.reason
        );
        // Throughput stopped growing: the side nearer its limit.
        let s = check1(&step(100.0, Some(47.0), 84.0), 99.0).unwrap();
        assert_eq!(s.bound, Bound::Generator, "{}", s.reason);
        let s = check1(&step(100.0, Some(90.0), 60.0), 99.0).unwrap();
        assert_eq!(s.bound, Bound::Server, "{}", s.reason);
        // Both well below their limits (other processes had the cores): neither.
        let s = check1(&step(100.0, Some(47.0), 47.0), 99.0).unwrap();
        assert_eq!(s.bound, Bound::Unsaturated, "{}", s.reason);
        // Two generator cores: 97% of one is not saturated.
        let two = RunShape {
            generator_cores: 2.0,
            ..run
        };
        assert_eq!(
            check(&sat, two, &step(100.0, Some(50.0), 97.0), 3, 50.0),
            None
        );
        // No server CPU known.
        let s = check1(&step(100.0, None, 85.0), 99.0).unwrap();
        assert_eq!(s.bound, Bound::Generator);
        let s = check1(&step(100.0, None, 30.0), 99.0).unwrap();
        assert_eq!(s.bound, Bound::Server);
        // The first step never stops for lack of growth.
        assert_eq!(
            check(&sat, run, &step(100.0, Some(10.0), 10.0), 0, 0.0),
            None
        );
    }
}
