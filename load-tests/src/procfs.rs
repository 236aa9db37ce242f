//! CPU time and RSS of a process from `/proc`, and the open-files limit.
//!
//! CPU time is read from two clocks at once (see [`CpuSample`]): the scheduler's nanosecond
//! runtime of every thread (`/proc/PID/task/*/schedstat`), and the kernel's utime + stime of the
//! whole process in clock ticks (`/proc/PID/stat`). The first resolves a cold join's ~2 ms; the
//! second still counts threads that have exited.

use std::fs;
use std::io;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Serialize;

/// Clock ticks per second of `/proc/PID/stat` times.
pub fn clk_tck() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// A process watched through `/proc`.
#[derive(Debug, Clone, Copy)]
pub struct Proc {
    pub pid: u32,
    tck: f64,
}

impl Proc {
    /// Fails if `/proc/PID` cannot be read.
    pub fn new(pid: u32) -> Result<Self> {
        let p = Proc {
            pid,
            tck: clk_tck(),
        };
        p.cpu_seconds()
            .with_context(|| format!("--server-pid {pid}: cannot read /proc/{pid}/stat"))?;
        Ok(p)
    }

    /// This process.
    pub fn current() -> Self {
        Proc {
            pid: std::process::id(),
            tck: clk_tck(),
        }
    }

    /// User + system CPU seconds used so far (all threads), in clock ticks' resolution.
    pub fn cpu_seconds(&self) -> Result<f64> {
        Ok(self.cpu_ticks()? as f64 / self.tck)
    }

    /// utime + stime of the whole process (live and exited threads), in clock ticks.
    fn cpu_ticks(&self) -> Result<u64> {
        let stat = fs::read_to_string(format!("/proc/{}/stat", self.pid))?;
        let (utime, stime) = parse_stat_times(&stat)?;
        Ok(utime + stime)
    }

    /// The CPU time used so far, in both clocks; subtract two with [`CpuSample::since`].
    pub fn cpu(&self) -> Result<CpuSample> {
        let ticks = self.cpu_ticks()?;
        let threads = thread_runtimes(Path::new(&format!("/proc/{}/task", self.pid)));
        Ok(CpuSample {
            ticks,
            tck: self.tck,
            threads,
        })
    }

    /// Resident set size in KiB (`VmRSS`).
    pub fn rss_kib(&self) -> Result<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        parse_vmrss(&status)
    }

    /// The highest resident set size so far, in KiB (`VmHWM`).
    pub fn peak_rss_kib(&self) -> Result<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        parse_status_kib(&status, "VmHWM")
    }
}

/// `utime` and `stime` (fields 14 and 15) of a `/proc/PID/stat` line. The command name
/// (field 2) is in parentheses and may contain spaces, so fields are counted after the last `)`.
pub fn parse_stat_times(stat: &str) -> Result<(u64, u64)> {
    let Some(end) = stat.rfind(')') else {
        bail!("unexpected /proc stat format");
    };
    let fields: Vec<&str> = stat[end + 1..].split_whitespace().collect();
    // After the comm: field 3 (state) is index 0, so field N is index N - 3.
    if fields.len() < 13 {
        bail!("unexpected /proc stat format");
    }
    Ok((fields[11].parse()?, fields[12].parse()?))
}

/// Which clock a CPU time difference was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CpuClock {
    /// Nanoseconds: the scheduler's runtime of each thread.
    Schedstat,
    /// Clock ticks (10 ms): utime + stime of the process.
    Ticks,
}

impl CpuClock {
    pub fn as_str(self) -> &'static str {
        match self {
            CpuClock::Schedstat => "schedstat",
            CpuClock::Ticks => "ticks",
        }
    }
}

/// CPU time used between two samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuDelta {
    pub secs: f64,
    pub clock: CpuClock,
}

/// How far, in clock ticks, the tick reading may exceed the nanosecond one with no thread lost:
/// the kernel truncates utime and stime to ticks separately (< 2 ticks low at each sample), and
/// a thread running on another CPU at the moment of a sample has its schedstat runtime updated
/// only at the next scheduler tick.
const TICK_SLACK: f64 = 2.5;

/// The CPU time a process has used so far, read from two clocks.
///
/// * `threads`: `sum_exec_runtime` (ns, the first field of `/proc/PID/task/TID/schedstat`) of
///   every thread alive at the sample. Precise, but a thread that exits takes its time with it.
/// * `ticks`: utime + stime from `/proc/PID/stat`, which the kernel keeps for the whole thread
///   group, exited threads included, but only in clock ticks (10 ms).
///
/// [`CpuSample::since`] sums, per thread id, the runtime gained since the earlier sample
/// (a thread new since then counts from 0), so a thread that exited only loses what it ran
/// between the samples. If that loss is visible in ticks, i.e. the tick difference exceeds the
/// nanosecond one by more than the ticks' own error (`TICK_SLACK`), the tick difference is
/// the better measure and is used; otherwise the nanosecond one. Without schedstat (a kernel
/// built without `CONFIG_SCHED_INFO`, or one printing zeros) only ticks are used.
#[derive(Debug, Clone, PartialEq)]
pub struct CpuSample {
    ticks: u64,
    /// Clock ticks per second.
    tck: f64,
    /// `(tid, sum_exec_runtime ns)` of every live thread, sorted by tid; `None` without schedstat.
    threads: Option<Vec<(u32, u64)>>,
}

impl CpuSample {
    /// The CPU time used from `earlier` to `self`.
    pub fn since(&self, earlier: &CpuSample) -> CpuDelta {
        let ticks = CpuDelta {
            secs: self.ticks.saturating_sub(earlier.ticks) as f64 / self.tck,
            clock: CpuClock::Ticks,
        };
        let (Some(now), Some(before)) = (&self.threads, &earlier.threads) else {
            return ticks;
        };
        let precise = runtime_gained(before, now) as f64 / 1e9;
        if ticks.secs > precise + TICK_SLACK / self.tck {
            ticks
        } else {
            CpuDelta {
                secs: precise,
                clock: CpuClock::Schedstat,
            }
        }
    }

    /// Whether this sample has the nanosecond clock.
    pub fn has_schedstat(&self) -> bool {
        self.threads.is_some()
    }
}

/// Runtime (ns) the threads of `now` gained since `before` (both sorted by tid). A tid absent
/// from `before`, or with a smaller runtime there (a reused tid), is a new thread: all of its
/// runtime counts.
fn runtime_gained(before: &[(u32, u64)], now: &[(u32, u64)]) -> u64 {
    now.iter()
        .map(
            |&(tid, ns)| match before.binary_search_by_key(&tid, |t| t.0) {
                Ok(i) if before[i].1 <= ns => ns - before[i].1,
                _ => ns,
            },
        )
        .sum()
}

/// `sum_exec_runtime` (ns): the first field of a `/proc/PID/task/TID/schedstat` line.
pub fn parse_schedstat(line: &str) -> Option<u64> {
    line.split_whitespace().next()?.parse().ok()
}

/// `(tid, runtime ns)` of every thread under `task_dir` (`/proc/PID/task`), sorted by tid.
/// `None` if the directory or the schedstat files cannot be read, or if every runtime is 0
/// (schedstat switched off prints `0 0 0`). A thread that exits during the scan is skipped.
pub fn thread_runtimes(task_dir: &Path) -> Option<Vec<(u32, u64)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(task_dir).ok()? {
        let entry = entry.ok()?;
        let Some(tid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        match fs::read_to_string(entry.path().join("schedstat")) {
            Ok(line) => out.push((tid, parse_schedstat(&line)?)),
            // The thread exited between the listing and the read.
            Err(e)
                if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH) => {
            }
            Err(_) => return None,
        }
    }
    out.sort_unstable();
    out.iter().any(|t| t.1 > 0).then_some(out)
}

/// `VmRSS` in KiB from `/proc/PID/status`.
pub fn parse_vmrss(status: &str) -> Result<u64> {
    parse_status_kib(status, "VmRSS")
}

/// The field `name` (a `kB` value such as `VmRSS`) of `/proc/PID/status`, in KiB.
pub fn parse_status_kib(status: &str, name: &str) -> Result<u64> {
    for line in status.lines() {
        if let Some(rest) = line.strip_prefix(name).and_then(|r| r.strip_prefix(':')) {
            let kib = rest.trim().trim_end_matches("kB").trim();
            return Ok(kib.parse()?);
        }
    }
    bail!("no {name} line (is the process a zombie?)")
}

/// Makes sure this process may open `needed` files, raising the soft `RLIMIT_NOFILE` up to
/// the hard limit if needed. Returns the soft limit now in force.
pub fn ensure_nofile(needed: u64) -> Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit to write to.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        bail!(
            "getrlimit(RLIMIT_NOFILE): {}",
            std::io::Error::last_os_error()
        );
    }
    let (soft, hard): (u64, u64) = (lim.rlim_cur, lim.rlim_max);
    if soft >= needed {
        return Ok(soft);
    }
    if hard < needed {
        bail!(
            "this run needs about {needed} open files (one per connection plus a few), but the \
             hard RLIMIT_NOFILE is {hard}: raise it (`ulimit -Hn`, /etc/security/limits.conf, \
             LimitNOFILE= for services) or ask for fewer clients. The server under test needs as \
             many descriptors too."
        );
    }
    lim.rlim_cur = needed as libc::rlim_t;
    // SAFETY: `lim` is a valid rlimit, within the hard limit.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        bail!(
            "setrlimit(RLIMIT_NOFILE, {needed}): {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(needed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_spaces_in_comm() {
        let stat = "1234 (my (odd) proc) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 37 0 0 20 0 \
                    4 0 999 1000000 300 18446744073709551615";
        assert_eq!(parse_stat_times(stat).unwrap(), (250, 37));
    }

    #[test]
    fn parses_vmrss() {
        let s = "Name:\tx\nVmPeak:\t  10 kB\nVmHWM:\t 5000 kB\nVmRSS:\t    4242 kB\nThreads: 3\n";
        assert_eq!(parse_vmrss(s).unwrap(), 4242);
        assert_eq!(parse_status_kib(s, "VmHWM").unwrap(), 5000);
        assert!(parse_status_kib(s, "VmSwap").is_err());
    }

    #[test]
    fn reads_own_process() {
        let me = Proc::current();
        assert!(me.cpu_seconds().unwrap() >= 0.0);
        assert!(me.rss_kib().unwrap() > 0);
        assert!(me.peak_rss_kib().unwrap() >= me.rss_kib().unwrap() / 2);
        assert!(ensure_nofile(64).unwrap() >= 64);
    }

    #[test]
    fn parses_schedstat() {
        assert_eq!(parse_schedstat("51257681 6420410 93\n"), Some(51_257_681));
        assert_eq!(parse_schedstat("0 0 0"), Some(0));
        assert_eq!(parse_schedstat(""), None);
        assert_eq!(parse_schedstat("x 1 2"), None);
    }

    #[test]
    fn sums_a_task_dir() {
        let dir = tempfile::tempdir().unwrap();
        for (tid, line) in [("12", "3000 5 1\n"), ("7", "500 1 1\n")] {
            std::fs::create_dir(dir.path().join(tid)).unwrap();
            std::fs::write(dir.path().join(tid).join("schedstat"), line).unwrap();
        }
        // Not a thread: ignored.
        std::fs::write(dir.path().join("notes"), "x").unwrap();
        // A thread whose schedstat is gone (it exited during the scan): skipped.
        std::fs::create_dir(dir.path().join("9")).unwrap();
        assert_eq!(
            thread_runtimes(dir.path()),
            Some(vec![(7, 500), (12, 3000)])
        );
        // schedstat switched off: every line reads 0 0 0.
        let off = tempfile::tempdir().unwrap();
        std::fs::create_dir(off.path().join("1")).unwrap();
        std::fs::write(off.path().join("1").join("schedstat"), "0 0 0\n").unwrap();
        assert_eq!(thread_runtimes(off.path()), None);
        assert_eq!(thread_runtimes(&dir.path().join("missing")), None);
    }

    fn sample(ticks: u64, threads: Option<Vec<(u32, u64)>>) -> CpuSample {
        CpuSample {
            ticks,
            tck: 100.0,
            threads,
        }
    }

    #[test]
    fn combines_the_two_clocks() {
        let a = sample(10, Some(vec![(1, 100_000_000), (2, 5_000_000)]));
        // Thread 1 ran 1.5 ms, thread 3 is new with 0.5 ms; within a tick of the tick delta.
        let b = sample(
            10,
            Some(vec![(1, 101_500_000), (2, 5_000_000), (3, 500_000)]),
        );
        let d = b.since(&a);
        assert_eq!(d.clock, CpuClock::Schedstat);
        assert!((d.secs - 0.002).abs() < 1e-12, "{d:?}");
        // Thread 2 exited after running 80 ms that only the ticks saw: ticks win.
        let c = sample(19, Some(vec![(1, 101_500_000)]));
        assert_eq!(
            c.since(&a),
            CpuDelta {
                secs: 0.09,
                clock: CpuClock::Ticks
            }
        );
        // No schedstat on either side: ticks.
        assert_eq!(sample(12, None).since(&a).clock, CpuClock::Ticks);
        assert_eq!(b.since(&sample(9, None)).clock, CpuClock::Ticks);
    }

    /// Burns `secs` of this thread's CPU time.
    fn burn(secs: f64) {
        let start = thread_cpu();
        let mut x = 0u64;
        while thread_cpu() - start < secs {
            for i in 0..10_000u64 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
            }
            std::hint::black_box(x);
        }
    }

    fn thread_cpu() -> f64 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid timespec to write to.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
    }

    #[test]
    fn own_cpu_time_grows_when_burning() {
        let me = Proc::current();
        let a = me.cpu().unwrap();
        burn(0.05);
        let d = me.cpu().unwrap().since(&a);
        // Either clock sees at least 30 ms: schedstat may lag this thread by a scheduler tick,
        // ticks are off by less than 2; other tests running meanwhile only add to it.
        assert!(d.secs >= 0.03, "{d:?}");
        let task_dir = format!("/proc/{}/task", std::process::id());
        if thread_runtimes(Path::new(&task_dir)).is_some() {
            assert!(a.has_schedstat());
        }
    }
}
