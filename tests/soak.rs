//! Rooms opened and unloaded again and again leave nothing behind: after every round, what the
//! server holds — rooms loaded and still alive in memory, connections, users counted at the
//! edge, updates waiting for the store — is back where it started. (RSS round after round is
//! the release-build soak in `load-tests/soak.sh`.)

mod common;

use std::time::Duration;

use common::live::{get_room, LiveClient};
use common::{metric, room, start_server, sync_url, wait_metric, YClient};
use yrs::{GetString, Text, Transact, WriteTxn};

/// What the server holds, from `/metrics`.
async fn held(addr: std::net::SocketAddr) -> [(&'static str, f64); 5] {
    [
        (
            "okrhub_rooms_loaded",
            metric(addr, "okrhub_rooms_loaded").await,
        ),
        (
            "okrhub_rooms_alive",
            metric(addr, "okrhub_rooms_alive").await,
        ),
        (
            "okrhub_connections",
            metric(addr, "okrhub_connections").await,
        ),
        (
            "okrhub_users_connected",
            metric(addr, "okrhub_users_connected").await,
        ),
        (
            "okrhub_persist_queue",
            metric(addr, "okrhub_persist_queue").await,
        ),
    ]
}

#[tokio::test]
async fn rooms_opened_and_unloaded_round_after_round_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |a| {
        a.idle_unload = Duration::from_millis(200);
        a.limits.new_rooms_per_minute = 0;
    })
    .await;
    let addr = server.local_addr();
    let start = held(addr).await;
    assert!(start.iter().all(|(_, v)| *v == 0.0), "{start:?}");

    for round in 0..3 {
        let mut clients = Vec::new();
        for r in 0..8 {
            let name = room(&format!("soak{round}x{r}"));
            let url = format!("{}?user=u{r}", sync_url(&server, &name));
            let a = YClient::synced(&url).await;
            let b = YClient::synced(&url).await;
            let live = LiveClient::join(addr, &name, &format!("w{r}")).await;
            for i in 0..20 {
                a.edit(|_, txn| {
                    let title = txn.get_or_insert_text("title");
                    title.insert(txn, i, "k");
                });
            }
            b.wait_for("20 keystrokes", |v| {
                v.doc()
                    .get_or_insert_text("title")
                    .get_string(&v.doc().transact())
                    .len()
                    == 20
            })
            .await;
            assert_eq!(get_room(addr, &name).await.status, 200);
            clients.push((a, b, live));
        }
        assert_eq!(metric(addr, "okrhub_rooms_loaded").await, 8.0);
        for (a, b, live) in clients {
            a.kill();
            b.kill();
            live.close();
        }
        // Every room unloads, and with it everything it held.
        wait_metric(addr, "okrhub_rooms_loaded", |v| v == 0.0).await;
        wait_metric(addr, "okrhub_rooms_alive", |v| v == 0.0).await;
        wait_metric(addr, "okrhub_connections", |v| v == 0.0).await;
        wait_metric(addr, "okrhub_users_connected", |v| v == 0.0).await;
        assert_eq!(held(addr).await, start, "after round {round}");
    }
    server.shutdown().await.unwrap();
}
