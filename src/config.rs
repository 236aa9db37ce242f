//! Command line and environment: every flag has an `OKRHUB_*` variable, and the defaults run
//! with nothing installed (embedded store in `./data`, loopback only).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::hub::HubConfig;

/// okrhub — a real-time collaborative OKR server (a Yjs WebSocket hub).
#[derive(Debug, Parser)]
#[command(
    name = "okrhub",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// `okrhub` alone is `okrhub serve`.
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve(ServeArgs),
}

impl Cli {
    /// The serve arguments, whether given after `serve` or on their own.
    pub fn into_serve_args(self) -> ServeArgs {
        match self.command {
            Some(Command::Serve(args)) => args,
            None => self.serve,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on. Port 0 picks a free port (the log says which).
    #[arg(long, env = "OKRHUB_LISTEN", default_value = "127.0.0.1:4680")]
    pub listen: SocketAddr,

    /// Directory of the embedded store.
    #[arg(long, env = "OKRHUB_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Log format.
    #[arg(long, env = "OKRHUB_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,

    /// Largest WebSocket message accepted, in bytes; a larger one closes the connection (1009).
    #[arg(long, env = "OKRHUB_MAX_MESSAGE_SIZE", default_value_t = 8 * 1024 * 1024)]
    pub max_message_size: usize,

    /// Frames a connection may have queued before it is closed as a slow consumer (1013).
    #[arg(long, env = "OKRHUB_SEND_QUEUE", default_value_t = 512)]
    pub send_queue: usize,

    /// How long a room stays in memory with nobody connected (e.g. 30s, 5m).
    #[arg(long, env = "OKRHUB_IDLE_UNLOAD", default_value = "30s", value_parser = humantime::parse_duration)]
    pub idle_unload: Duration,

    /// Updates logged since the last snapshot that trigger a new snapshot of a loaded room.
    #[arg(long, env = "OKRHUB_COMPACT_AFTER", default_value_t = 1000)]
    pub compact_after: u64,

    /// How long the persister collects updates before one store write (and fsync). An update
    /// is durable within this plus one commit; 0 writes as soon as the previous commit ends.
    #[arg(long, env = "OKRHUB_FLUSH_INTERVAL", default_value = "50ms", value_parser = humantime::parse_duration)]
    pub flush_interval: Duration,

    /// How long shutdown waits for connections to close before it flushes anyway.
    #[arg(long, env = "OKRHUB_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,
}

impl ServeArgs {
    /// Defaults for a server on a free loopback port storing in `data_dir` (tests, embedding).
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        let mut args = Cli::parse_from(["okrhub"]).into_serve_args();
        args.listen = "127.0.0.1:0".parse().expect("valid address");
        args.data_dir = data_dir.into();
        args
    }

    pub fn hub_config(&self) -> HubConfig {
        HubConfig {
            send_queue: self.send_queue,
            idle_unload: self.idle_unload,
            compact_after: self.compact_after.max(1),
            // Look at idle rooms a few times per idle period, but not more than 10 times/s.
            sweep_interval: (self.idle_unload / 4)
                .clamp(Duration::from_millis(100), Duration::from_secs(5)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_is_the_default_command() {
        let a = Cli::parse_from(["okrhub", "--listen", "127.0.0.1:9"]).into_serve_args();
        let b = Cli::parse_from(["okrhub", "serve", "--listen", "127.0.0.1:9"]).into_serve_args();
        assert_eq!(a.listen, b.listen);
        assert_eq!(a.listen.port(), 9);
    }

    #[test]
    fn durations_take_units() {
        let a = Cli::parse_from(["okrhub", "--idle-unload", "250ms"]).into_serve_args();
        assert_eq!(a.idle_unload, Duration::from_millis(250));
        assert_eq!(a.hub_config().sweep_interval, Duration::from_millis(100));
    }
}
