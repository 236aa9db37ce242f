//! Command line and environment: every flag has an `OKRHUB_*` variable, and the defaults run
//! with nothing installed (embedded store in `./data`, loopback only).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::hub::HubConfig;
use crate::protocol::bound::Limits as DecodeLimits;
use crate::store::persister::BufferLimits;
use crate::store::{StoreConfig, StoreKind};
use crate::ws::conn::{default_max_connections, Limits};
use crate::ws::keepalive::KeepAliveConfig;

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

// Parsed once at start: the size of the serve variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve(ServeArgs),
    /// Write every room of a store to a directory: `ROOM.ydoc` (the whole doc as one v1 Yjs
    /// update) and, where the doc has the OKR shape, `ROOM.json`. With --url, every room a
    /// running server lets the token read, through its REST API: `ROOM.json` (and `ROOM.csv`
    /// with --csv).
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

    /// Redis URL of the Redis store (`redis://[:password@]host:port[/db]`); with
    /// --redis-cluster, a comma-separated list of cluster nodes to start from.
    #[arg(
        long,
        env = "OKRHUB_REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    pub redis_url: String,

    /// The Redis store is a Redis Cluster (--redis-url lists seed nodes).
    #[arg(long, env = "OKRHUB_REDIS_CLUSTER")]
    pub redis_cluster: bool,

    /// Log entries a Redis snapshot keeps below itself when it trims a room's log, so that a
    /// node a little behind reads on from the log rather than reloading the snapshot.
    #[arg(long, env = "OKRHUB_REDIS_TRIM_MARGIN", default_value_t = crate::store::redis::TRIM_MARGIN)]
    pub redis_trim_margin: u64,

    /// Create a new embedded store even where one is not expected: in a --data-dir that holds
    /// other files, or over a zero-length okrhub.redb. Without it a new store is created only
    /// when the data directory is missing or empty; a data file that is not a store is refused
    /// either way.
    #[arg(long, env = "OKRHUB_INIT_STORE")]
    pub init_store: bool,
}

impl StoreArgs {
    pub fn store_config(&self) -> StoreConfig {
        StoreConfig {
            kind: self.kind.into(),
            data_dir: self.data_dir.clone(),
            redis_url: self.redis_url.clone(),
            redis_cluster: self.redis_cluster,
            trim_margin: self.redis_trim_margin,
            init: self.init_store,
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
    /// Export through a running server at this address (`http://host:port`) instead of
    /// opening its store (which the server holds): every room `GET /api/rooms` lists, each
    /// as the token may read it.
    #[arg(long, env = "OKRHUB_EXPORT_URL")]
    pub url: Option<String>,
    /// With --url: the bearer token to read with (an org admin's reads everything).
    #[arg(long, env = "OKRHUB_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// With --url: write `ROOM.csv` beside each `ROOM.json`.
    #[arg(long)]
    pub csv: bool,
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
    #[arg(long, env = "OKRHUB_MAX_NESTING", default_value_t = DecodeLimits::DEFAULT_MAX_DEPTH, value_parser = parse_nesting)]
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

    /// With several nodes (Redis): how long a room's log may stay quiet before one node (the
    /// holder of the room's clock lease) writes a tick entry that moves every node's clock of
    /// the room; time-driven events (overdue KRs, reminders) are at most this late.
    #[arg(long, env = "OKRHUB_TICK_EVERY", default_value = "60s", value_parser = humantime::parse_duration)]
    pub tick_every: Duration,

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

    /// How long a room whose stored data failed its integrity check is refused without reading
    /// the store again (each join meanwhile is refused at once; the first one after it reads
    /// the store again, so a repaired room comes back).
    #[arg(long, env = "OKRHUB_CORRUPT_RECHECK", default_value = "30s", value_parser = humantime::parse_duration)]
    pub corrupt_recheck: Duration,

    /// How long shutdown waits for connections to close before it flushes anyway.
    #[arg(long, env = "OKRHUB_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,

    /// Tokens, origins, `/metrics`.
    #[command(flatten)]
    pub security: SecurityArgs,

    /// What one client, connection and room may take.
    #[command(flatten)]
    pub limits: LimitArgs,

    /// Connection caps, HTTP timeouts, WebSocket keep-alive.
    #[command(flatten)]
    pub transport: TransportArgs,

    /// Chat robots and webhooks: queue, retries, timeouts.
    #[command(flatten)]
    pub notify: NotifyArgs,
}

/// How chat robot and webhook messages are delivered (README, "Chat robots and webhooks").
#[derive(Debug, Clone, Args)]
pub struct NotifyArgs {
    /// Notices that may wait for delivery; when full, the newest is refused (counted).
    #[arg(long, env = "OKRHUB_NOTIFY_QUEUE", default_value_t = 10_000)]
    pub notify_queue: usize,

    /// Delay before the first retry of a failed delivery; each next one doubles (±20 %).
    #[arg(long, env = "OKRHUB_NOTIFY_RETRY_BASE", default_value = "2s", value_parser = humantime::parse_duration)]
    pub notify_retry_base: Duration,

    /// Longest delay between two attempts of a delivery.
    #[arg(long, env = "OKRHUB_NOTIFY_RETRY_MAX", default_value = "5m", value_parser = humantime::parse_duration)]
    pub notify_retry_max: Duration,

    /// Attempts before a delivery goes to its robot's dead letters.
    #[arg(long, env = "OKRHUB_NOTIFY_MAX_ATTEMPTS", default_value_t = 8)]
    pub notify_max_attempts: u32,

    /// How long one delivery request may take.
    #[arg(long, env = "OKRHUB_NOTIFY_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub notify_timeout: Duration,
}

impl NotifyArgs {
    pub fn config(&self) -> crate::notify::NotifyConfig {
        crate::notify::NotifyConfig {
            queue: self.notify_queue.max(1),
            retry_base: self.notify_retry_base,
            retry_max: self.notify_retry_max.max(self.notify_retry_base),
            max_attempts: self.notify_max_attempts.max(1),
            timeout: self.notify_timeout,
        }
    }
}

/// Limits against inputs that cost more than they are worth (README, "Limits").
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Largest a room's document may grow, in bytes (its size when last snapshotted plus the
    /// updates since); an update that would pass it is refused (1009), a command gets
    /// `doc_too_large`.
    #[arg(long, env = "OKRHUB_MAX_DOC_SIZE", default_value_t = 64 * 1024 * 1024)]
    pub max_doc_size: usize,

    /// Messages a second one WebSocket connection may send, sustained (a token bucket; 0: no
    /// limit). Beyond it and its burst the connection is closed (1008 `rate limit`).
    #[arg(long, env = "OKRHUB_MESSAGE_RATE", default_value_t = 100)]
    pub message_rate: u32,

    /// Messages a connection may send at once above its rate (the bucket's size).
    #[arg(long, env = "OKRHUB_MESSAGE_BURST", default_value_t = 500)]
    pub message_burst: u32,

    /// WebSocket connections (`/sync` and `/live`) one room takes at once; more are closed
    /// with 1013 `room full`.
    #[arg(long, env = "OKRHUB_MAX_CONNECTIONS_PER_ROOM", default_value_t = 1000)]
    pub max_connections_per_room: usize,

    /// WebSocket connections one user (token subject) may hold at once; more are refused
    /// with 429 (0: no limit).
    #[arg(long, env = "OKRHUB_MAX_CONNECTIONS_PER_USER", default_value_t = 64)]
    pub max_connections_per_user: usize,

    /// Rooms one client address, and one user, may load into memory a minute (a room that
    /// is already loaded costs nothing); more are refused with 429 (0: no limit).
    #[arg(long, env = "OKRHUB_NEW_ROOMS_PER_MINUTE", default_value_t = 120)]
    pub new_rooms_per_minute: u32,

    /// Awareness states one `/sync` connection may publish (a browser tab publishes one);
    /// more close it (1008).
    #[arg(long, env = "OKRHUB_MAX_AWARENESS_STATES", default_value_t = 16)]
    pub max_awareness_states: usize,

    /// Largest awareness message, in bytes of state JSON; a larger one closes the connection
    /// (1008).
    #[arg(long, env = "OKRHUB_MAX_AWARENESS_BYTES", default_value_t = 64 * 1024)]
    pub max_awareness_bytes: usize,

    /// Bytes of one connection's updates that may wait to be written (its share of the
    /// persist buffer); an update beyond it is refused (1013) until the store catches up.
    #[arg(long, env = "OKRHUB_MAX_PENDING_PER_CONNECTION", default_value_t = 16 * 1024 * 1024)]
    pub max_pending_per_connection: usize,
}

/// What a connection may hold and for how long: the caps counted at accept, the HTTP read
/// timeouts and body size, the WebSocket keep-alive (see `crate::ws::conn`,
/// `crate::ws::keepalive`, `crate::server`).
#[derive(Debug, Clone, Args)]
pub struct TransportArgs {
    /// Most TCP connections (HTTP and WebSocket) open at once; more are answered 503 and
    /// closed. 0: no cap. Default: the file-descriptor limit (RLIMIT_NOFILE, raised to its
    /// hard limit at start) minus 64.
    #[arg(long, env = "OKRHUB_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,

    /// Most connections open at once from one IP address (an IPv6 address's /64); more are
    /// answered 503 and closed. 0: no cap (behind a reverse proxy, every client has its
    /// address).
    #[arg(long, env = "OKRHUB_MAX_CONNECTIONS_PER_IP", default_value_t = 256)]
    pub max_connections_per_ip: usize,

    /// How long a client may take to send a request's headers, counted from the connection
    /// (or the end of its previous request): a connection idle or mid-headers that long is
    /// closed.
    #[arg(long, env = "OKRHUB_HEADER_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub header_timeout: Duration,

    /// How long a client may take to send a request's body, once its headers are in; slower
    /// gets 408 and the connection is closed.
    #[arg(long, env = "OKRHUB_BODY_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub body_timeout: Duration,

    /// Largest HTTP request body, in bytes (at most 262144, the largest a command takes);
    /// larger gets 413 before it is read. An import (`POST /api/rooms/{room}/import`) may be
    /// 4 times as large.
    #[arg(long, env = "OKRHUB_MAX_BODY", default_value_t = crate::api::MAX_BODY)]
    pub max_body: usize,

    /// How often the server pings each WebSocket it has not heard from lately. 0s: no pings
    /// and no idle timeout.
    #[arg(long, env = "OKRHUB_WS_PING_INTERVAL", default_value = "30s", value_parser = humantime::parse_duration)]
    pub ws_ping_interval: Duration,

    /// A WebSocket from which nothing at all (no frame, no pong) arrived for this long is
    /// closed (1001 `idle timeout`). Longer than the ping interval; 0s: never.
    #[arg(long, env = "OKRHUB_WS_IDLE_TIMEOUT", default_value = "75s", value_parser = humantime::parse_duration)]
    pub ws_idle_timeout: Duration,
}

impl TransportArgs {
    /// The connection caps, the total one derived from `nofile` (the process's file-descriptor
    /// limit) unless given; no limit known and none given: no cap.
    pub fn limits(&self, nofile: Option<u64>) -> Limits {
        Limits {
            max_connections: (self.max_connections)
                .or(nofile.map(default_max_connections))
                .unwrap_or(0),
            max_per_ip: self.max_connections_per_ip,
        }
    }

    pub fn keepalive(&self) -> KeepAliveConfig {
        KeepAliveConfig {
            ping_interval: self.ws_ping_interval,
            idle_timeout: self.ws_idle_timeout,
        }
    }

    /// Refuses settings that would switch a protection off by accident.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.header_timeout.is_zero() || self.body_timeout.is_zero() {
            anyhow::bail!("--header-timeout and --body-timeout must be longer than 0s");
        }
        if self.max_body > crate::api::MAX_BODY {
            anyhow::bail!(
                "--max-body {} is over {}, the largest body any endpoint takes",
                self.max_body,
                crate::api::MAX_BODY
            );
        }
        self.keepalive().validate().map_err(anyhow::Error::msg)
    }
}

/// `--max-nesting`: 1 to [`DecodeLimits::MAX_DEPTH_CEILING`].
fn parse_nesting(s: &str) -> Result<usize, String> {
    let n: usize = s.parse().map_err(|e| format!("{e}"))?;
    if !(1..=DecodeLimits::MAX_DEPTH_CEILING).contains(&n) {
        return Err(format!("must be 1 to {}", DecodeLimits::MAX_DEPTH_CEILING));
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
            refuse_while_failing: false,
        }
    }

    pub fn hub_config(&self) -> HubConfig {
        HubConfig {
            send_queue: self.send_queue,
            idle_unload: self.idle_unload,
            compact_after: self.compact_after.max(1),
            tick_every: self.tick_every.max(Duration::from_millis(100)),
            // Look at idle rooms a few times per idle period, but not more than 10 times/s.
            sweep_interval: (self.idle_unload / 4)
                .clamp(Duration::from_millis(100), Duration::from_secs(5)),
            max_message_size: self.max_message_size,
            room_limits: crate::room::RoomLimits {
                max_doc_bytes: self.limits.max_doc_size,
                max_connections: self.limits.max_connections_per_room.max(1),
                max_awareness_states: self.limits.max_awareness_states,
                max_awareness_bytes: self.limits.max_awareness_bytes,
                // A quarter of a `/live` queue per tick: presence alone never fills one.
                presence_per_tick: (self.send_queue / 4).max(1),
                persist_share_bytes: self.limits.max_pending_per_connection,
            },
            message_rate: self.message_rate(),
            corrupt_recheck: self.corrupt_recheck,
            decode_limits: DecodeLimits {
                max_depth: self.max_nesting,
            },
        }
    }

    /// The edge's limits: connections per user, rooms loaded a minute.
    pub fn admission_limits(&self) -> crate::service::admission::AdmissionLimits {
        crate::service::admission::AdmissionLimits {
            connections_per_user: self.limits.max_connections_per_user,
            new_rooms_per_minute: self.limits.new_rooms_per_minute,
        }
    }

    /// The per-connection message rate: None when unlimited.
    pub fn message_rate(&self) -> Option<crate::hub::RateLimit> {
        (self.limits.message_rate > 0).then(|| crate::hub::RateLimit {
            per_second: self.limits.message_rate,
            burst: self.limits.message_burst.max(self.limits.message_rate),
        })
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
        assert_eq!(default.max_nesting, DecodeLimits::DEFAULT_MAX_DEPTH);
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
    fn transport_defaults_and_their_checks() {
        let a = ServeArgs::for_data_dir("/tmp/x").transport;
        assert!(a.validate().is_ok());
        assert_eq!(a.limits(Some(1024)).max_connections, 960);
        assert_eq!(a.limits(None).max_connections, 0);
        assert_eq!(a.limits(Some(1024)).max_per_ip, 256);
        assert_eq!(a.keepalive(), KeepAliveConfig::default());
        let set = Cli::parse_from([
            "okrhub",
            "--max-connections",
            "10",
            "--max-connections-per-ip",
            "0",
            "--ws-ping-interval",
            "10s",
            "--ws-idle-timeout",
            "5s",
        ])
        .into_serve_args()
        .transport;
        assert_eq!(
            set.limits(Some(1024)),
            Limits {
                max_connections: 10,
                max_per_ip: 0
            }
        );
        assert!(set
            .validate()
            .unwrap_err()
            .to_string()
            .contains("--ws-idle-timeout"));
        let zero = Cli::parse_from(["okrhub", "--header-timeout", "0s"]).into_serve_args();
        assert!(zero.transport.validate().is_err());
        let big = Cli::parse_from(["okrhub", "--max-body", "262145"]).into_serve_args();
        assert!(big.transport.validate().is_err());
    }

    #[test]
    fn store_integrity_flags() {
        let d = ServeArgs::for_data_dir("/tmp/x");
        assert!(
            !d.store.store_config().init,
            "a new store only where there is nothing"
        );
        assert_eq!(d.hub_config().corrupt_recheck, Duration::from_secs(30));
        let a = Cli::parse_from(["okrhub", "--init-store", "--corrupt-recheck", "5s"])
            .into_serve_args();
        assert!(a.store.store_config().init);
        assert_eq!(a.hub_config().corrupt_recheck, Duration::from_secs(5));
    }

    #[test]
    fn durations_take_units() {
        let a = Cli::parse_from(["okrhub", "--idle-unload", "250ms"]).into_serve_args();
        assert_eq!(a.idle_unload, Duration::from_millis(250));
        assert_eq!(a.hub_config().sweep_interval, Duration::from_millis(100));
    }
}
