//! CPU time and RSS of a process from `/proc`, and the open-files limit.

use std::fs;

use anyhow::{bail, Context, Result};

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

    /// User + system CPU seconds used so far (all threads).
    pub fn cpu_seconds(&self) -> Result<f64> {
        let stat = fs::read_to_string(format!("/proc/{}/stat", self.pid))?;
        let (utime, stime) = parse_stat_times(&stat)?;
        Ok((utime + stime) as f64 / self.tck)
    }

    /// Resident set size in KiB (`VmRSS`).
    pub fn rss_kib(&self) -> Result<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        parse_vmrss(&status)
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

/// `VmRSS` in KiB from `/proc/PID/status`.
pub fn parse_vmrss(status: &str) -> Result<u64> {
    for line in status.lines() {
        if let Some(rest) = line.strip_prefix("VmRSS:") {
            let kib = rest.trim().trim_end_matches("kB").trim();
            return Ok(kib.parse()?);
        }
    }
    bail!("no VmRSS line (is the process a zombie?)")
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
        let s = "Name:\tx\nVmPeak:\t  10 kB\nVmRSS:\t    4242 kB\nThreads: 3\n";
        assert_eq!(parse_vmrss(s).unwrap(), 4242);
    }

    #[test]
    fn reads_own_process() {
        let me = Proc::current();
        assert!(me.cpu_seconds().unwrap() >= 0.0);
        assert!(me.rss_kib().unwrap() > 0);
        assert!(ensure_nofile(64).unwrap() >= 64);
    }
}
