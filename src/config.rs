//! Command line and environment: every flag has an `OKRHUB_*` variable, and the defaults run
//! with nothing installed (embedded store in `./data`, loopback only).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::hub::HubConfig;
use crate::protocol::bound::Limits;
use crate::store::persister::BufferLimits;
use crate::store::{StoreConfig, StoreKind};

/// `--store`: which store backs the server (the command line's view of [`StoreKind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreChoice {
    /// redb in `--data-dir`: nothing to install (the default).
    Embedded,
    /// Redis at `--redis-url`.
    Redis,
}

impl From<StoreChoice> for StoreKind {
    fn from(choice: StoreChoice) -> Self {
        match choice {
            StoreChoice::Embedded => StoreKind::Embedded,
            StoreChoice::Redis => StoreKind::Redis,
        }
    }
}

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
    /// Write every room of a store to a directory: `ROOM.ydoc` (the whole doc as one v1 Yjs
    /// update) and, where the doc has the OKR shape, `ROOM.json`.
    Export(ExportArgs),
    /// Load every `ROOM.ydoc` of a directory into a store (merged with what it holds).
    Import(ImportArgs),
    /// Mint an HS256 token with `--jwt-secret` / `OKRHUB_JWT_SECRET`, for trying things out:
    /// `okrhub token --user ana --org acme --role editor --room 'acme.sales.*' --ttl 8h`.
    Token(TokenArgs),
}

/// How requests are authenticated and which pages may call the server.
#[derive(Debug, Clone, Args, Default)]
pub struct SecurityArgs {
    /// Shared secret (32 bytes or more) for HS256 tokens.
    #[arg(long, env = "OKRHUB_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Public keys for RS256 / ES256 tokens: a PEM file (one or more public keys) or a JWKS
    /// file (`{"keys": [...]}`), re-read when it changes.
    #[arg(long, env = "OKRHUB_JWT_KEYS")]
    pub jwt_keys: Option<PathBuf>,

    /// When set, tokens must carry this `iss`.
    #[arg(long, env = "OKRHUB_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// When set, tokens must carry this `aud`.
    #[arg(long, env = "OKRHUB_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// Origins (`https://okr.acme.com`, comma-separated) whose web pages may open WebSockets
    /// and send commands, besides the server's own origin.
    #[arg(long, env = "OKRHUB_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// When set, `/metrics` wants `Authorization: Bearer` this token.
    #[arg(long, env = "OKRHUB_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    /// Shared secret (the server's `--jwt-secret`).
    #[arg(long, env = "OKRHUB_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: String,
    /// The user id (`sub`).
    #[arg(long)]
    pub user: String,
    /// Display name (`name`).
    #[arg(long)]
    pub name: Option<String>,
    /// The org (`org`); rooms of other orgs are refused.
    #[arg(long)]
    pub org: String,
    /// Role the `--room` patterns grant: viewer, editor or admin.
    #[arg(long, default_value = "editor")]
    pub role: crate::identity::Role,
    /// Room patterns the role is granted in (`acme.sales.*`, `acme.*.*`); repeatable. None:
    /// only the user's own personal rooms and the org's public objectives.
    #[arg(long)]
    pub room: Vec<String>,
    /// How long the token is valid (e.g. 8h, 30m).
    #[arg(long, default_value = "8h", value_parser = humantime::parse_duration)]
    pub ttl: Duration,
    /// `iss`, if the server wants one.
    #[arg(long)]
    pub issuer: Option<String>,
    /// `aud`, if the server wants one.
    #[arg(long)]
    pub audience: Option<String>,
}

impl Cli {
    /// The command to run: `serve` when none is named.
    pub fn into_command(self) -> Command {
        self.command.unwrap_or(Command::Serve(self.serve))
    }

    /// The serve arguments, whether given after `serve` or on their own (other commands get
    /// the defaults).
    pub fn into_serve_args(self) -> ServeArgs {
        match self.into_command() {
            Command::Serve(args) => args,
            _ => Cli::parse_from(["okrhub"]).serve,
        }
    }
}

/// Which store, and where: shared by `serve`, `export` and `import`.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// The store: `embedded` (redb in --data-dir) or `redis` (at --redis-url).
    #[arg(long = "store", env = "OKRHUB_STORE", value_enum, default_value_t = StoreChoice::Embedded)]
    pub kind: StoreChoice,

    /// Directory of the embedded store.
    #[arg(long, env = "OKRHUB_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Redis URL of the Redis store (`redis://[:password@]host:port[/db]`).
    #[arg(
        long,
        env = "OKRHUB_REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    pub redis_url: String,
}

impl StoreArgs {
    pub fn store_config(&self) -> StoreConfig {
        StoreConfig {
            kind: self.kind.into(),
            data_dir: self.data_dir.clone(),
            redis_url: self.redis_url.clone(),
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Directory to write the rooms to (created if missing).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Directory of `ROOM.ydoc` files (as written by `okrhub export`).
    #[arg(long)]
    pub from: PathBuf,
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

    /// Where rooms are stored.
    #[command(flatten)]
    pub store: StoreArgs,

    /// Log format.
    #[arg(long, env = "OKRHUB_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,

    /// Largest WebSocket message accepted, in bytes; a larger one closes the connection (1009).
    #[arg(long, env = "OKRHUB_MAX_MESSAGE_SIZE", default_value_t = 8 * 1024 * 1024)]
    pub max_message_size: usize,

    /// Deepest nesting of Yjs Any values (arrays and maps) a `/sync` frame may carry; deeper
    /// closes the connection (1002). At most 256.
    #[arg(long, env = "OKRHUB_MAX_NESTING", default_value_t = Limits::DEFAULT_MAX_DEPTH, value_parser = parse_nesting)]
    pub max_nesting: usize,

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

    /// Updates the persister may hold unwritten (while the store is slow or down) before new
    /// writes are refused (1013 `store_unavailable`); readiness fails at half.
    #[arg(long, env = "OKRHUB_PERSIST_BUFFER", default_value_t = 1_000_000)]
    pub persist_buffer: usize,

    /// Bytes of updates the persister may hold unwritten before new writes are refused.
    #[arg(long, env = "OKRHUB_PERSIST_BUFFER_BYTES", default_value_t = 256 * 1024 * 1024)]
    pub persist_buffer_bytes: usize,

    /// How long shutdown waits for connections to close before it flushes anyway.
    #[arg(long, env = "OKRHUB_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,

    /// Tokens, origins, `/metrics`.
    #[command(flatten)]
    pub security: SecurityArgs,
}

/// `--max-nesting`: 1 to [`Limits::MAX_DEPTH_CEILING`].
fn parse_nesting(s: &str) -> Result<usize, String> {
    let n: usize = s.parse().map_err(|e| format!("{e}"))?;
    if !(1..=Limits::MAX_DEPTH_CEILING).contains(&n) {
        return Err(format!("must be 1 to {}", Limits::MAX_DEPTH_CEILING));
    }
    Ok(n)
}

impl ServeArgs {
    /// Defaults for a server on a free loopback port storing in `data_dir` (tests, embedding).
    /// The built-in defaults only: `OKRHUB_*` variables of the environment are not read, so a
    /// developer's settings never leak into a test server.
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        let command = <Cli as clap::CommandFactory>::command().mut_args(|arg| arg.env(None));
        let matches = command.get_matches_from(["okrhub"]);
        let mut args = <Cli as clap::FromArgMatches>::from_arg_matches(&matches)
            .expect("the defaults parse")
            .into_serve_args();
        args.listen = "127.0.0.1:0".parse().expect("valid address");
        args.store.data_dir = data_dir.into();
        args
    }

    /// The request edge's settings: the verifier (none configured: an open server, allowed on
    /// a loopback address only), the allowed origins and the metrics token.
    pub fn auth(&self) -> anyhow::Result<crate::auth::Auth> {
        let s = &self.security;
        let verifier = crate::auth::keys::Verifier::new(crate::auth::keys::VerifierConfig {
            secret: s.jwt_secret.clone(),
            keys_file: s.jwt_keys.clone(),
            issuer: s.jwt_issuer.clone(),
            audience: s.jwt_audience.clone(),
            ..Default::default()
        })?;
        if verifier.is_none() && !self.listen.ip().is_loopback() {
            anyhow::bail!(
                "refusing to listen on {} without authentication: set --jwt-secret \
                 (OKRHUB_JWT_SECRET, 32+ bytes) or --jwt-keys (OKRHUB_JWT_KEYS, a PEM or JWKS \
                 file), or listen on a loopback address (127.0.0.1) to try it out",
                self.listen
            );
        }
        let allowed_origins = (s.allowed_origins.iter())
            .map(|o| o.trim().trim_end_matches('/').to_owned())
            .filter(|o| !o.is_empty())
            .collect();
        Ok(crate::auth::Auth {
            verifier,
            allowed_origins,
            metrics_token: s.metrics_token.clone().filter(|t| !t.is_empty()),
        })
    }

    pub fn buffer_limits(&self) -> BufferLimits {
        BufferLimits {
            updates: self.persist_buffer.max(1),
            bytes: self.persist_buffer_bytes.max(1),
        }
    }

    pub fn hub_config(&self) -> HubConfig {
        HubConfig {
            send_queue: self.send_queue,
            idle_unload: self.idle_unload,
            compact_after: self.compact_after.max(1),
            // Look at idle rooms a few times per idle period, but not more than 10 times/s.
            sweep_interval: (self.idle_unload / 4)
                .clamp(Duration::from_millis(100), Duration::from_secs(5)),
            max_message_size: self.max_message_size,
            decode_limits: Limits {
                max_depth: self.max_nesting,
            },
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
    fn store_flags_and_subcommands() {
        let a = Cli::parse_from(["okrhub", "--store", "redis", "--redis-url", "redis://h:1"])
            .into_serve_args();
        assert_eq!(a.store.kind, StoreChoice::Redis);
        assert_eq!(a.store.redis_url, "redis://h:1");
        assert_eq!(a.store.data_dir, PathBuf::from("./data"));
        let Command::Export(e) =
            Cli::parse_from(["okrhub", "export", "--out", "x", "--data-dir", "d"]).into_command()
        else {
            panic!("export parses");
        };
        assert_eq!(e.store.kind, StoreChoice::Embedded);
        assert_eq!(e.out, PathBuf::from("x"));
        let Command::Import(i) =
            Cli::parse_from(["okrhub", "import", "--from", "x", "--store", "redis"]).into_command()
        else {
            panic!("import parses");
        };
        assert_eq!(i.store.kind, StoreChoice::Redis);
    }

    #[test]
    fn for_data_dir_ignores_the_environment() {
        // Only this test sets this variable; the other tests do not read send_queue.
        std::env::set_var("OKRHUB_SEND_QUEUE", "7");
        let from_env = Cli::parse_from(["okrhub"]).into_serve_args();
        let args = ServeArgs::for_data_dir("/tmp/x");
        std::env::remove_var("OKRHUB_SEND_QUEUE");
        assert_eq!(from_env.send_queue, 7, "the real command line reads it");
        assert_eq!(args.send_queue, 512, "test servers do not");
        assert_eq!(args.store.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(args.listen.port(), 0);
    }

    #[test]
    fn max_nesting_is_bounded_by_the_ceiling() {
        let a = Cli::parse_from(["okrhub", "--max-nesting", "16"]).into_serve_args();
        assert_eq!(a.hub_config().decode_limits.max_depth, 16);
        let default = ServeArgs::for_data_dir("/tmp/x");
        assert_eq!(default.max_nesting, Limits::DEFAULT_MAX_DEPTH);
        for bad in ["0", "257", "-1", "deep"] {
            assert!(
                Cli::try_parse_from(["okrhub", "--max-nesting", bad]).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_open_server_listens_on_loopback_only() {
        let mut args = ServeArgs::for_data_dir("/tmp/x");
        assert!(args.auth().unwrap().is_open());
        args.listen = "0.0.0.0:4680".parse().unwrap();
        let err = args.auth().err().expect("refused").to_string();
        assert!(err.contains("--jwt-secret"), "{err}");
        args.security.jwt_secret = Some("s".repeat(32));
        assert!(!args.auth().unwrap().is_open());
    }

    #[test]
    fn durations_take_units() {
        let a = Cli::parse_from(["okrhub", "--idle-unload", "250ms"]).into_serve_args();
        assert_eq!(a.idle_unload, Duration::from_millis(250));
        assert_eq!(a.hub_config().sweep_interval, Duration::from_millis(100));
    }
}
