//! Room screens (`--live-subscribers`): `/live/{room}?user=screen{k}` connections to okrhub's
//! JSON endpoint, next to the y-sync clients of each room.
//!
//! A screen connects once the sync clients are synced, waits for its first frame (which must be
//! the `snapshot`), then reads every frame until the run stops. Every frame must be a JSON text
//! frame holding an object with a string `type`; nothing else of the payload is read (event
//! shapes are the server's business). Frames and bytes are counted in one [`LiveStats`] for
//! the whole run; screens take no part in the delivery statistics, the quiescence wait or the
//! convergence check. A screen that the server closes, or that gets a frame it cannot read,
//! ends with an error, counted with the other clients' errors.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use futures_util::StreamExt;
use serde::Deserialize;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::client::{self, Control, Ws, JOIN_TIMEOUT};

/// One screen of a run.
#[derive(Debug, Clone)]
pub struct LiveSpec {
    pub room: usize,
    /// `ws://…/live/{room}?user=screen{k}`.
    pub url: String,
}

/// The `/live` URL of the screen `user` of the room whose sync URL is `sync_url`
/// (`ws://h:p/sync/{room}` → `ws://h:p/live/{room}?user={user}`).
pub fn live_url(sync_url: &str, user: &str) -> Result<String> {
    let Some(at) = sync_url.rfind("/sync/") else {
        bail!("--live-subscribers: the room URL {sync_url:?} has no /sync/ segment to replace");
    };
    let (base, room) = (&sync_url[..at], &sync_url[at + "/sync/".len()..]);
    if room.is_empty() || room.contains(['/', '?']) {
        bail!("--live-subscribers: cannot make a /live URL from {sync_url:?}");
    }
    Ok(format!("{base}/live/{room}?user={user}"))
}

/// What a frame of `/live` is, by its `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    Snapshot,
    Presence,
    /// Any other control message (`resumed`, `ack`, `error`).
    Control,
    /// Everything else is an OKR event.
    Event,
}

/// Reads the `type` of a frame: it must be a JSON object with a string `type`.
pub fn classify(text: &str) -> Result<FrameKind> {
    #[derive(Deserialize)]
    struct Head<'a> {
        #[serde(rename = "type", borrow)]
        ty: std::borrow::Cow<'a, str>,
    }
    if !text.trim_start().starts_with('{') {
        bail!("a /live frame that is not a JSON object: {}", preview(text));
    }
    let head: Head = serde_json::from_str(text)
        .with_context(|| format!("a /live frame without a string type: {}", preview(text)))?;
    Ok(match head.ty.as_ref() {
        "snapshot" => FrameKind::Snapshot,
        "presence" => FrameKind::Presence,
        "resumed" | "ack" | "error" => FrameKind::Control,
        _ => FrameKind::Event,
    })
}

fn preview(text: &str) -> String {
    text.chars().take(120).collect()
}

/// Frames received by every screen of a run, after their snapshots.
#[derive(Debug, Default)]
pub struct LiveStats {
    frames: AtomicU64,
    events: AtomicU64,
    bytes: AtomicU64,
}

/// A reading of [`LiveStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveTotals {
    pub frames: u64,
    /// Frames that were OKR events (not presence or other control messages).
    pub events: u64,
    pub bytes: u64,
}

impl LiveTotals {
    /// What arrived between `earlier` and this reading.
    pub fn since(self, earlier: LiveTotals) -> LiveTotals {
        LiveTotals {
            frames: self.frames - earlier.frames,
            events: self.events - earlier.events,
            bytes: self.bytes - earlier.bytes,
        }
    }
}

impl LiveStats {
    fn on_frame(&self, bytes: usize, kind: FrameKind) {
        self.frames.fetch_add(1, Relaxed);
        self.bytes.fetch_add(bytes as u64, Relaxed);
        if kind == FrameKind::Event {
            self.events.fetch_add(1, Relaxed);
        }
    }

    pub fn totals(&self) -> LiveTotals {
        LiveTotals {
            frames: self.frames.load(Relaxed),
            events: self.events.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
        }
    }
}

/// A screen's end.
#[derive(Debug)]
pub struct LiveOutcome {
    pub room: usize,
    /// Size of its snapshot frame, if it got one.
    pub snapshot_bytes: Option<usize>,
    pub error: Option<String>,
}

/// Connects and reads frames until the first text frame, which must be the snapshot; returns
/// its size.
async fn join(url: &str) -> Result<(Ws, usize)> {
    let mut ws = client::connect(url).await?;
    loop {
        match ws.next().await {
            Some(Ok(WsMessage::Text(text))) => {
                let kind = classify(text.as_str())?;
                if kind != FrameKind::Snapshot {
                    bail!("the first /live frame is a {kind:?}, not the snapshot");
                }
                return Ok((ws, text.len()));
            }
            Some(Ok(WsMessage::Binary(b))) => bail!("a binary /live frame ({} bytes)", b.len()),
            Some(Ok(WsMessage::Close(f))) => bail!(
                "server closed the /live connection before the snapshot: {}",
                close_reason(f)
            ),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e).context("waiting for the snapshot"),
            None => bail!("the /live connection ended before the snapshot"),
        }
    }
}

fn close_reason(f: Option<tokio_tungstenite::tungstenite::protocol::CloseFrame>) -> String {
    f.map(|f| format!("{} {}", u16::from(f.code), f.reason))
        .unwrap_or_default()
}

/// Runs one screen: waits for a ramp permit, connects and takes the snapshot (reporting the
/// join time on `joined`), then reads every frame until [`Control::Stop`].
pub async fn run_live(
    spec: LiveSpec,
    stats: Arc<LiveStats>,
    ramp: Arc<Semaphore>,
    mut ctl: watch::Receiver<Control>,
    joined: mpsc::UnboundedSender<Result<Duration, String>>,
) -> LiveOutcome {
    let permit = ramp
        .acquire_owned()
        .await
        .expect("ramp semaphore is never closed");
    let started = Instant::now();
    let res = tokio::time::timeout(JOIN_TIMEOUT, join(&spec.url))
        .await
        .unwrap_or_else(|_| Err(anyhow!("no snapshot within {JOIN_TIMEOUT:?}")));
    drop(permit);
    let (mut ws, snapshot_bytes) = match res {
        Ok(j) => {
            let _ = joined.send(Ok(started.elapsed()));
            j
        }
        Err(e) => {
            let msg = format!("/live: {e:#}");
            let _ = joined.send(Err(msg.clone()));
            return LiveOutcome {
                room: spec.room,
                snapshot_bytes: None,
                error: Some(msg),
            };
        }
    };
    drop(joined);
    let error = read_until_stop(&mut ws, &stats, &mut ctl)
        .await
        .map(|e| format!("/live: {e}"));
    if error.is_none() {
        let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
    }
    LiveOutcome {
        room: spec.room,
        snapshot_bytes: Some(snapshot_bytes),
        error,
    }
}

/// Counts every frame until the run stops. Returns why it ended early, if it did.
async fn read_until_stop(
    ws: &mut Ws,
    stats: &LiveStats,
    ctl: &mut watch::Receiver<Control>,
) -> Option<String> {
    loop {
        tokio::select! {
            frame = ws.next() => match frame {
                Some(Ok(WsMessage::Text(text))) => match classify(text.as_str()) {
                    Ok(kind) => stats.on_frame(text.len(), kind),
                    Err(e) => return Some(format!("{e:#}")),
                },
                Some(Ok(WsMessage::Binary(b))) => {
                    return Some(format!("a binary frame ({} bytes)", b.len()));
                }
                Some(Ok(WsMessage::Close(f))) => {
                    return Some(format!("server closed the connection: {}", close_reason(f)));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Some(format!("receive: {e}")),
                None => return Some("connection ended".into()),
            },
            changed = ctl.changed() => {
                if changed.is_err() || *ctl.borrow_and_update() == Control::Stop {
                    return None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_urls_replace_the_sync_segment() {
        assert_eq!(
            live_url("ws://127.0.0.1:4680/sync/load.r0.x", "screen0").unwrap(),
            "ws://127.0.0.1:4680/live/load.r0.x?user=screen0"
        );
        assert_eq!(
            live_url("ws://[::1]:9/a/sync/sync/r", "screen1").unwrap(),
            "ws://[::1]:9/a/sync/live/r?user=screen1"
        );
        assert!(live_url("ws://127.0.0.1:8080/d/r/ws/r", "s").is_err());
        assert!(live_url("ws://127.0.0.1:1/sync/", "s").is_err());
    }

    #[test]
    fn frames_by_type() {
        let kind = |t| classify(t).unwrap();
        assert_eq!(
            kind(r#"{"type":"snapshot","room":"a","okr":{}}"#),
            FrameKind::Snapshot
        );
        assert_eq!(
            kind(r#"{"seq":3,"type":"presence","user":"x"}"#),
            FrameKind::Presence
        );
        assert_eq!(
            kind(r#" {"type":"kr.updated","changes":{"title":"a\"b"}}"#),
            FrameKind::Event
        );
        assert_eq!(kind(r#"{"type":"ack","id":"1"}"#), FrameKind::Control);
        assert!(classify(r#"["type"]"#).is_err());
        assert!(classify(r#"{"kind":"event"}"#).is_err());
        assert!(classify(r#"{"type":3}"#).is_err());
        assert!(classify("not json").is_err());
    }

    #[test]
    fn totals_since() {
        let s = LiveStats::default();
        s.on_frame(10, FrameKind::Event);
        let a = s.totals();
        s.on_frame(5, FrameKind::Presence);
        s.on_frame(7, FrameKind::Event);
        assert_eq!(
            s.totals().since(a),
            LiveTotals {
                frames: 2,
                events: 1,
                bytes: 12
            }
        );
    }
}
