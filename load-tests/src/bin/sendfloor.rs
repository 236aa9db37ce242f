//! `sendfloor`: what one delivery costs the kernel alone on this machine — the floor under any
//! WebSocket server's "CPU µs per delivery".
//!
//! It does what a hub does per delivery with nothing else around it: one `write` of a small
//! pre-built WebSocket frame to one of N connected loopback TCP sockets, in bursts of
//! `--fanout` sockets (one update fanned out to a room), at `--bursts` per second. The reader
//! side (another process, pinned to the other core) drains every socket with epoll like a
//! client would. The sender reports its own CPU time (getrusage: user + system, which on
//! loopback includes the receive-side TCP work done in the sender's context) per write.
//!
//! ```text
//! taskset -c 1 sendfloor read --port 24890 &      # the clients
//! taskset -c 0 sendfloor send --port 24890        # the "server": prints µs per delivery
//! ```
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Accept `--conns` connections, then write frames to them in bursts.
    Send {
        #[arg(long, default_value_t = 24890)]
        port: u16,
        #[arg(long, default_value_t = 500)]
        conns: usize,
        /// Sockets written per burst (the room's other clients).
        #[arg(long, default_value_t = 24)]
        fanout: usize,
        /// Bursts per second (updates per second across rooms).
        #[arg(long, default_value_t = 120)]
        bursts: u32,
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Payload bytes per frame (a typical y-sync map update is ~40).
        #[arg(long, default_value_t = 40)]
        payload: usize,
        /// Also print one JSON line `{"scenario": NAME, "label": "floor", ...}` for
        /// `summarize.py`, as if it were a server's run of that scenario.
        #[arg(long)]
        json: Option<String>,
    },
    /// Connect `--conns` sockets and drain them until the sender closes.
    Read {
        #[arg(long, default_value_t = 24890)]
        port: u16,
        #[arg(long, default_value_t = 500)]
        conns: usize,
    },
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().mode {
        Mode::Send {
            port,
            conns,
            fanout,
            bursts,
            seconds,
            payload,
            json,
        } => send(port, conns, fanout, bursts, seconds, payload, json),
        Mode::Read { port, conns } => read(port, conns),
    }
}

fn send(
    port: u16,
    conns: usize,
    fanout: usize,
    bursts: u32,
    seconds: f64,
    payload: usize,
    json: Option<String>,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    let mut socks = Vec::with_capacity(conns);
    for _ in 0..conns {
        let (s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        socks.push(s);
    }
    // A server → client binary frame: FIN + opcode 2, unmasked 7-bit length, then the payload.
    let mut frame = vec![0x82, payload.min(125) as u8];
    frame.resize(2 + payload.min(125), 0x5a);
    let period = Duration::from_secs_f64(1.0 / bursts as f64);
    let (cpu0, t0) = (cpu_seconds(), Instant::now());
    let (mut writes, mut next, mut i) = (0u64, t0, 0usize);
    while t0.elapsed().as_secs_f64() < seconds {
        for _ in 0..fanout {
            socks[i % conns].write_all(&frame)?;
            i += 1;
            writes += 1;
        }
        next += period;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    let cpu = cpu_seconds() - cpu0;
    let per_delivery = cpu * 1e6 / writes as f64;
    if let Some(scenario) = json {
        println!(
            "{}",
            serde_json::json!({
                "scenario": scenario,
                "label": "floor",
                "converged": true,
                "main": {"server_cpu_us_per_delivery": per_delivery},
            })
        );
    }
    println!(
        "sendfloor: {writes} writes of {} bytes in {:.1} s, fan-out {fanout}: {:.2} µs CPU per delivery ({:.1} % of a core)",
        frame.len(),
        t0.elapsed().as_secs_f64(),
        per_delivery,
        cpu * 100.0 / t0.elapsed().as_secs_f64()
    );
    Ok(())
}

fn read(port: u16, conns: usize) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..conns {
            let s = loop {
                match TcpStream::connect(("127.0.0.1", port)) {
                    Ok(s) => break s,
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            };
            s.set_nonblocking(true)?;
            let mut s = tokio::net::TcpStream::from_std(s)?;
            tasks.push(tokio::spawn(async move {
                use tokio::io::AsyncReadExt;
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
        let _ = std::io::stdout().flush();
        Ok::<_, anyhow::Error>(())
    })?;
    let _ = std::io::stdin().read(&mut [0u8; 0]);
    Ok(())
}
