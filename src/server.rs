//! Building and running the server: bind, serve, shut down gracefully.
//!
//! Shutdown order (SIGINT/SIGTERM, or [`RunningServer::shutdown`]): stop accepting; close every
//! WebSocket with 1001 after sending what was queued for it; wait for the sessions (at most
//! `shutdown_timeout`); flush the persister and write each room's final snapshot.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::body::Body;
use axum::http::{header, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper::body::{Body as _, Incoming};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::ClientAddr;
use crate::config::ServeArgs;
use crate::http::{router, AppState};
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::protocol::live::{ErrorBody, ErrorResponse, ProtocolErrorCode};
use crate::service::admission::Admission;
use crate::store::persister::Persister;
use crate::ws::conn::{Connections, Throttle};
use crate::ws::keepalive::now_ms;
use crate::ws::Slot;

/// A server that is accepting connections.
pub struct RunningServer {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningServer {
    /// The address it listens on (the real port when started on port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Shuts down gracefully and waits until every room is flushed.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.wait().await
    }

    /// Waits until the server has stopped (after a signal or [`RunningServer::shutdown`]).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("server task panicked")?
    }

    /// A token that stops the server when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }
}

/// The HTTP side of the transport settings (`--header-timeout`, `--body-timeout`,
/// `--max-body`).
#[derive(Debug, Clone, Copy)]
struct HttpLimits {
    header_timeout: Duration,
    body_timeout: Duration,
    max_body: usize,
}

/// Accepts connections until `shutdown`, serving each with HTTP/1.1 (and WebSocket upgrades)
/// in its own task; then lets the plain HTTP ones finish their request (graceful) and returns
/// once they have. Upgraded WebSockets are not waited for here: they run on the sessions
/// tracker, which the caller closes.
///
/// Each connection is first counted against the caps ([`Connections::admit`]); one over a cap
/// is answered with a ready-made 503 and closed at once, without a task. `accept` failing (out
/// of file descriptors, typically: the caps are meant to keep that from happening) backs off
/// from 5 ms to 1 s rather than spin, and is logged at most once per
/// [`crate::ws::conn::WARN_EVERY`].
///
/// Not `axum::serve`: its auto-detecting HTTP/1 + HTTP/2 builder wraps each socket in a
/// private type, so an upgraded connection could not be turned back into the `TcpStream`
/// that [`crate::ws`] writes to directly. WebSockets here are HTTP/1.1 upgrades (as every
/// y-websocket client does), and so is everything else.
async fn accept_loop(
    listener: TcpListener,
    app: axum::Router,
    shutdown: CancellationToken,
    connections: Arc<Connections>,
    limits: HttpLimits,
    metrics: Arc<Metrics>,
) {
    let tasks = TaskTracker::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    // hyper restarts this timer whenever it waits for a request's head: on a new connection
    // and after each response, so it is the keep-alive idle timeout as well.
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let accept_failed = Throttle::new();
    let mut backoff = Duration::from_millis(5);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => {
                    backoff = Duration::from_millis(5);
                    a
                }
                Err(e) => {
                    metrics.accept_errors.inc();
                    if let Some(n) = accept_failed.hit(now_ms()) {
                        tracing::warn!(error = %e, failures = n, "accept failed; backing off (up to 1s between tries)");
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.cancelled() => break,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let slot = match connections.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(why) => {
                refuse(tcp, connections.refusal(why));
                continue;
            }
        };
        // Small frames must not wait for Nagle + delayed ACK (up to ~40 ms).
        let _ = tcp.set_nodelay(true);
        tasks.spawn(serve_http(
            tcp,
            peer,
            slot,
            app.clone(),
            http.clone(),
            limits,
            metrics.clone(),
            shutdown.clone(),
        ));
    }
    drop(listener);
    tasks.close();
    tasks.wait().await;
}

/// Answers a connection refused at accept with `response` (a complete 503) and closes it,
/// without waiting for anything: what the client already sent is read first (closing a
/// socket with unread data resets it, which can destroy the answer before the client reads
/// it), then the answer is written if the socket takes it.
fn refuse(tcp: TcpStream, response: &[u8]) {
    use std::io::{Read, Write};
    // Out of tokio's reactor: it has not polled the new socket yet, so its `try_` calls would
    // not even try. The socket stays non-blocking.
    let Ok(mut tcp) = tcp.into_std() else {
        return;
    };
    let mut scratch = [0u8; 2048];
    for _ in 0..4 {
        match tcp.read(&mut scratch) {
            Ok(n) if n > 0 => continue,
            _ => break,
        }
    }
    let _ = tcp.write(response);
}

/// Serves one admitted connection with HTTP/1.1 until it ends (or is upgraded), holding its
/// slot meanwhile.
#[allow(clippy::too_many_arguments)]
async fn serve_http(
    tcp: TcpStream,
    peer: SocketAddr,
    slot: Arc<Slot>,
    app: axum::Router,
    http: hyper::server::conn::http1::Builder,
    limits: HttpLimits,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    let service = {
        // Requests get their own handle of the slot (an upgrade keeps it): hyper's connection
        // holds only this weak one, so the slot is freed below, before the socket closes.
        let slot = Arc::downgrade(&slot);
        let metrics = metrics.clone();
        hyper::service::service_fn(move |req| {
            edge(
                req,
                peer,
                slot.upgrade(),
                app.clone(),
                limits,
                metrics.clone(),
            )
        })
    };
    let result = {
        let conn = http
            .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
            .with_upgrades();
        let mut conn = std::pin::pin!(conn);
        let result = tokio::select! {
            r = conn.as_mut() => r,
            _ = shutdown.cancelled() => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        // Freed now, closed at the end of this block: a client that saw its connection close
        // finds the slot free. (An upgraded socket's session holds its own handle.)
        drop(slot);
        result
    };
    match result {
        // hyper's header timer: no complete request within --header-timeout of connecting, of
        // the previous response (an idle keep-alive connection), or of its first header byte.
        Err(e) if e.is_timeout() => {
            metrics.count_http_refused("header_timeout");
            tracing::debug!(%peer, "HTTP connection closed: no complete request in time");
        }
        Err(e) => tracing::debug!(%peer, error = %e, "HTTP connection ended with an error"),
        Ok(()) => {}
    }
}

/// Every request on its way to the router: it gets the connection's slot (for an upgrade to
/// take along), and its body, if it has one, is read here, whole, within `--body-timeout`
/// and `--max-body` — a body trickling in or too large is answered (408, 413) and its
/// connection closed before any handler sees it.
async fn edge(
    mut req: Request<Incoming>,
    peer: SocketAddr,
    slot: Option<Arc<Slot>>,
    mut app: axum::Router,
    limits: HttpLimits,
    metrics: Arc<Metrics>,
) -> Result<Response, Infallible> {
    if let Some(slot) = slot {
        req.extensions_mut().insert(slot);
    }
    // Every request knows the client's address (per-address limits).
    req.extensions_mut().insert(ClientAddr(peer));
    let req = if req.body().is_end_stream() {
        req.map(Body::new)
    } else {
        // An import may be larger than a command ([`crate::transfer_api::body_limit`]).
        let limits = HttpLimits {
            max_body: crate::transfer_api::body_limit(
                req.method(),
                req.uri().path(),
                limits.max_body,
            ),
            ..limits
        };
        match read_body(req, limits).await {
            Ok(req) => req,
            Err(refused) => {
                metrics.count_http_refused(refused.reason());
                return Ok(refused.into_response(limits));
            }
        }
    };
    tower_service::Service::call(&mut app, req).await
}

/// Why a request's body was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyRefused {
    Timeout,
    TooLarge,
    /// The client broke the body off (or sent a malformed chunk).
    Broken,
}

impl BodyRefused {
    fn reason(self) -> &'static str {
        match self {
            BodyRefused::Timeout => "body_timeout",
            BodyRefused::TooLarge => "body_too_large",
            BodyRefused::Broken => "body_broken",
        }
    }

    /// The answer: a status and the standard error body; the connection is closed after it
    /// (the rest of the body is never read).
    fn into_response(self, limits: HttpLimits) -> Response {
        let (status, message) = match self {
            BodyRefused::Timeout => (
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {}",
                    humantime::format_duration(limits.body_timeout)
                ),
            ),
            BodyRefused::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the request body is over the {}-byte limit",
                    limits.max_body
                ),
            ),
            BodyRefused::Broken => (
                StatusCode::BAD_REQUEST,
                "the request body could not be read".to_owned(),
            ),
        };
        let body = ErrorResponse {
            error: ErrorBody::protocol(ProtocolErrorCode::BadRequest, message)
                .because(self.reason()),
        };
        let mut response = (status, axum::Json(body)).into_response();
        (response.headers_mut()).insert(header::CONNECTION, HeaderValue::from_static("close"));
        response
    }
}

/// Reads a request's whole body within the limits.
async fn read_body(
    req: Request<Incoming>,
    limits: HttpLimits,
) -> Result<Request<Body>, BodyRefused> {
    let declared = (req.headers().get(header::CONTENT_LENGTH))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body as u64) {
        return Err(BodyRefused::TooLarge);
    }
    let (parts, body) = req.into_parts();
    let read =
        http_body_util::BodyExt::collect(http_body_util::Limited::new(body, limits.max_body));
    match tokio::time::timeout(limits.body_timeout, read).await {
        Err(_) => Err(BodyRefused::Timeout),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(BodyRefused::TooLarge),
        Ok(Err(_)) => Err(BodyRefused::Broken),
        Ok(Ok(body)) => Ok(Request::from_parts(parts, Body::from(body.to_bytes()))),
    }
}

/// The file-descriptor limit (`RLIMIT_NOFILE`), first raised from its soft value to its hard
/// one (as far as 2^20), as servers under systemd are expected to do; `None` if it cannot be
/// read.
fn nofile_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(1 << 20) {
        Ok(n) => Some(n),
        Err(e) => {
            tracing::warn!(error = %e, "could not raise the file-descriptor limit");
            rlimit::Resource::NOFILE.get().ok().map(|(soft, _)| soft)
        }
    }
}

/// How often the edge forgets clients whose per-minute buckets are full again.
const ADMISSION_SWEEP: Duration = Duration::from_secs(60);

/// Sweeps the edge's per-client state every minute until `shutdown`.
async fn sweep_admission(admission: Arc<Admission>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(ADMISSION_SWEEP);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => admission.sweep(),
        }
    }
}

/// How often the store is probed for health (and for having come back empty).
const STORE_PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// Opens the store, binds the listener and starts serving in the background. An unreachable
/// Redis is not an error here: the server starts not ready and connects when Redis answers.
pub async fn start(args: ServeArgs) -> anyhow::Result<RunningServer> {
    let auth = Arc::new(args.auth()?);
    let transport = &args.transport;
    transport.validate()?;
    let store = crate::store::open(&args.store.store_config())
        .await
        .context("opening the store")?;
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    let metrics = Arc::new(Metrics::new());
    let nofile = nofile_limit();
    let connections = Connections::new(
        transport.limits(nofile),
        transport.keepalive(),
        metrics.clone(),
    );
    let http_limits = HttpLimits {
        header_timeout: transport.header_timeout,
        body_timeout: transport.body_timeout,
        max_body: transport.max_body,
    };
    let background = TaskTracker::new();
    let persister = Persister::start_with_limits(
        store.clone(),
        metrics.clone(),
        args.flush_interval,
        crate::store::persister::BufferLimits {
            refuse_while_failing: store.shared().is_some(),
            ..args.buffer_limits()
        },
        &background,
    );
    let hub = Hub::new(store.clone(), persister, metrics.clone(), args.hub_config());
    let shutdown = CancellationToken::new();
    let sessions = TaskTracker::new();
    background.spawn(hub.clone().run_sweeper(shutdown.clone()));
    background.spawn(hub.clone().run_relay(shutdown.clone()));
    background.spawn(
        hub.clone()
            .run_store_probe(STORE_PROBE_INTERVAL, shutdown.clone()),
    );
    let (notifier, notify_worker) =
        crate::notify::start(store.clone(), metrics.clone(), args.notify.config())
            .context("starting the chat robots' HTTP client")?;
    hub.set_notices(notifier);
    background.spawn(notify_worker.run(shutdown.clone()));
    let admission = Arc::new(Admission::new(args.admission_limits(), metrics.clone()));
    background.spawn(sweep_admission(admission.clone(), shutdown.clone()));
    background.spawn({
        let connections = connections.clone();
        let shutdown = shutdown.clone();
        async move { connections.keepalive().run(shutdown).await }
    });
    let app = router(AppState {
        hub: hub.clone(),
        sessions: sessions.clone(),
        shutdown: shutdown.clone(),
        auth: auth.clone(),
        admission,
    });
    tracing::info!(%addr, store = store.name(), data_dir = %args.store.data_dir.display(), "listening");
    let limits = connections.limits();
    tracing::info!(
        max_connections = limits.max_connections,
        max_connections_per_ip = limits.max_per_ip,
        fd_limit = nofile,
        "connection caps (0: none)"
    );
    if let Some(n) = nofile.filter(|&n| limits.max_connections as u64 > n) {
        tracing::warn!(
            max_connections = limits.max_connections,
            fd_limit = n,
            "--max-connections is above the file-descriptor limit: accept will fail before the cap refuses"
        );
    }
    match &auth.verifier {
        Some(v) => {
            tracing::info!(keys = %v.describe(), allowed_origins = ?auth.allowed_origins, "tokens required")
        }
        None => tracing::warn!(
            %addr,
            "OPEN SERVER: no --jwt-secret or --jwt-keys, so there is no authentication: anyone who \
             can reach {addr} reads and changes every room, as any user. Allowed on loopback only."
        ),
    }

    let task = tokio::spawn({
        let hub = hub.clone();
        let shutdown = shutdown.clone();
        async move {
            accept_loop(
                listener,
                app,
                shutdown.clone(),
                connections,
                http_limits,
                hub.metrics().clone(),
            )
            .await;
            tracing::info!("shutting down: closing connections");
            hub.close_all();
            sessions.close();
            if tokio::time::timeout(args.shutdown_timeout, sessions.wait())
                .await
                .is_err()
            {
                tracing::warn!(remaining = sessions.len(), "sessions did not close in time");
            }
            let flushed = hub.flush_all().await;
            // Dropping the last hub handle drops the rooms and their persister handles; the
            // persister then drains and ends, and with it the last reference to the store.
            drop(hub);
            background.close();
            background.wait().await;
            match &flushed {
                Ok(()) => tracing::info!("all rooms flushed; bye"),
                Err(e) => tracing::error!(error = %e, "shutdown flush failed"),
            }
            flushed.context("flushing rooms at shutdown")
        }
    });
    Ok(RunningServer {
        addr,
        shutdown,
        task,
    })
}
