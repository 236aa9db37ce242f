//! Building and running the server: bind, serve, shut down gracefully.
//!
//! Shutdown order (SIGINT/SIGTERM, or [`RunningServer::shutdown`]): stop accepting; close every
//! WebSocket with 1001 after sending what was queued for it; wait for the sessions (at most
//! `shutdown_timeout`); flush the persister and write each room's final snapshot.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use tower_layer::Layer;

use crate::auth::ClientAddr;
use crate::config::ServeArgs;
use crate::http::{router, AppState};
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::service::admission::Admission;
use crate::store::persister::Persister;

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

/// How long a client may take to send its request headers (slow-loris guard).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Accepts connections until `shutdown`, serving each with HTTP/1.1 (and WebSocket upgrades)
/// in its own task; then lets the plain HTTP ones finish their request (graceful) and returns
/// once they have. Upgraded WebSockets are not waited for here: they run on the sessions
/// tracker, which the caller closes.
///
/// Not `axum::serve`: its auto-detecting HTTP/1 + HTTP/2 builder wraps each socket in a
/// private type, so an upgraded connection could not be turned back into the `TcpStream`
/// that [`crate::ws`] writes to directly. WebSockets here are HTTP/1.1 upgrades (as every
/// y-websocket client does), and so is everything else.
async fn accept_loop(listener: TcpListener, app: axum::Router, shutdown: CancellationToken) {
    let connections = TaskTracker::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let mut backoff = Duration::from_millis(5);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => {
                    backoff = Duration::from_millis(5);
                    a
                }
                Err(e) => {
                    // Out of file descriptors, typically: wait rather than spin.
                    tracing::warn!(error = %e, "accept failed; retrying in {backoff:?}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        // Small frames must not wait for Nagle + delayed ACK (up to ~40 ms).
        let _ = tcp.set_nodelay(true);
        // Every request of the connection knows the client's address (per-address limits).
        let service = hyper_util::service::TowerToHyperService::new(
            axum::Extension(ClientAddr(peer)).layer(app.clone()),
        );
        let shutdown = shutdown.clone();
        let http = http.clone();
        connections.spawn(async move {
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
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
            }
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
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
    let store = crate::store::open(&args.store.store_config())
        .await
        .context("opening the store")?;
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    let metrics = Arc::new(Metrics::new());
    let background = TaskTracker::new();
    let persister = Persister::start_with_limits(
        store.clone(),
        metrics.clone(),
        args.flush_interval,
        args.buffer_limits(),
        &background,
    );
    let hub = Hub::new(store.clone(), persister, metrics.clone(), args.hub_config());
    let shutdown = CancellationToken::new();
    let sessions = TaskTracker::new();
    background.spawn(hub.clone().run_sweeper(shutdown.clone()));
    background.spawn(
        hub.clone()
            .run_store_probe(STORE_PROBE_INTERVAL, shutdown.clone()),
    );
    let admission = Arc::new(Admission::new(args.admission_limits(), metrics.clone()));
    background.spawn(sweep_admission(admission.clone(), shutdown.clone()));
    let app = router(AppState {
        hub: hub.clone(),
        sessions: sessions.clone(),
        shutdown: shutdown.clone(),
        auth: auth.clone(),
        admission,
    });
    tracing::info!(%addr, store = store.name(), data_dir = %args.store.data_dir.display(), "listening");
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
            accept_loop(listener, app, shutdown.clone()).await;
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
