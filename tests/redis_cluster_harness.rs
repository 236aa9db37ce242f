//! The Redis Cluster harness itself (tests/common/redis_cluster.rs): three real masters share the
//! slots, keys with different hash tags land on different masters, a killed master fails its own
//! slots and only those, and it comes back with its slots — with its data after a clean stop,
//! without after a kill or an empty restart.

mod common;

use common::redis_cluster::{RedisCluster, MASTERS};
use redis::AsyncCommands;

/// Room-like keys whose hash tags fall on each of the three masters (checked by the first test).
const KEYS: [&str; 3] = [
    "okrhub:{acme.sales.2026-Q3}:probe",
    "okrhub:{acme.ops.2026-Q3}:probe",
    "okrhub:{acme.eng.2026-Q3}:probe",
];

/// The master owning each of [`KEYS`], failing unless they are all different.
async fn owners(cluster: &RedisCluster) -> [usize; 3] {
    let mut owners = [0; 3];
    for (i, key) in KEYS.iter().enumerate() {
        owners[i] = cluster.owner_of(key).await;
    }
    let mut sorted = owners;
    sorted.sort();
    assert_eq!(
        sorted,
        [0, 1, 2],
        "KEYS must cover every master: {owners:?}"
    );
    owners
}

/// Where a `MOVED` error sends the client (`HOST:PORT`).
fn moved_to(e: &redis::RedisError) -> Option<String> {
    e.redirect_node().map(|(addr, _slot)| addr.to_owned())
}

#[tokio::test]
async fn three_masters_split_the_slots_and_keys_land_by_hash_tag() {
    let cluster = RedisCluster::start();
    let urls = cluster.urls();
    assert_eq!(urls.len(), MASTERS);
    assert_eq!(cluster.url_list(), urls.join(","));
    assert!(urls.iter().all(|u| u.starts_with("redis://127.0.0.1:")));
    let owners = owners(&cluster).await;

    let mut conn = cluster.cluster_conn().await;
    for key in KEYS {
        let _: () = conn.set(key, format!("value of {key}")).await.unwrap();
    }
    for key in KEYS {
        let v: String = conn.get(key).await.unwrap();
        assert_eq!(v, format!("value of {key}"));
    }
    // Keys sharing a hash tag share a slot: a multi-key command on them is allowed.
    let tagged = ["{acme.sales.2026-Q3}:a", "{acme.sales.2026-Q3}:b"];
    let _: () = redis::pipe()
        .atomic()
        .set(tagged[0], 1)
        .set(tagged[1], 2)
        .query_async(&mut conn)
        .await
        .unwrap();
    let both: (i64, i64) = conn.mget(&tagged).await.unwrap();
    assert_eq!(both, (1, 2));

    // Asked directly, each master holds exactly its own key and redirects the others.
    for (k, key) in KEYS.iter().enumerate() {
        for node in 0..MASTERS {
            let mut direct = cluster.node_conn(node).await;
            let got: redis::RedisResult<Option<String>> = direct.get(*key).await;
            if node == owners[k] {
                assert_eq!(got.unwrap().as_deref(), Some(&*format!("value of {key}")));
            } else {
                let e = got.expect_err("a master that does not own the slot redirects");
                assert_eq!(
                    moved_to(&e),
                    Some(format!("127.0.0.1:{}", cluster.port(owners[k]))),
                    "master {node} on {key}: {e}"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_killed_master_fails_only_its_slots_and_comes_back_with_them_empty() {
    let mut cluster = RedisCluster::start();
    let owners = owners(&cluster).await;
    let mut conn = cluster.cluster_conn().await;
    for key in KEYS {
        let _: () = conn.set(key, "before").await.unwrap();
    }

    let dead = owners[0];
    cluster.kill(dead);
    let e = conn
        .get::<_, Option<String>>(KEYS[0])
        .await
        .expect_err("the dead master's slot fails");
    // Either the dead master's socket refused, or the last try was sent there by a `MOVED`.
    assert!(
        e.is_io_error()
            || e.is_connection_refusal()
            || moved_to(&e) == Some(format!("127.0.0.1:{}", cluster.port(dead))),
        "GET on the dead master's slot: {e}"
    );
    // The other masters go on serving theirs (cluster-require-full-coverage no).
    for key in &KEYS[1..] {
        let v: String = conn.get(*key).await.unwrap();
        assert_eq!(v, "before");
        let _: () = conn.set(*key, "during").await.unwrap();
    }

    // Same port, same slots; nothing was persisted, so its key is gone.
    cluster.restart(dead);
    assert_eq!(cluster.owner_of(KEYS[0]).await, dead, "it kept its slots");
    let mut conn = cluster.cluster_conn().await;
    let v: Option<String> = conn.get(KEYS[0]).await.unwrap();
    assert_eq!(v, None, "a killed master comes back empty");
    let _: () = conn.set(KEYS[0], "after").await.unwrap();
    for key in &KEYS[1..] {
        let v: String = conn.get(*key).await.unwrap();
        assert_eq!(v, "during");
    }
}

#[tokio::test]
async fn restart_keeps_a_masters_data_and_restart_empty_loses_it() {
    let mut cluster = RedisCluster::start();
    let owners = owners(&cluster).await;
    let i = owners[1];
    let mut conn = cluster.cluster_conn().await;
    for key in KEYS {
        let _: () = conn.set(key, "kept").await.unwrap();
    }

    cluster.restart(i);
    let mut conn = cluster.cluster_conn().await;
    let v: Option<String> = conn.get(KEYS[1]).await.unwrap();
    assert_eq!(
        v.as_deref(),
        Some("kept"),
        "SHUTDOWN SAVE, then loaded again"
    );

    cluster.restart_empty(i);
    assert_eq!(cluster.owner_of(KEYS[1]).await, i, "it kept its slots");
    let mut conn = cluster.cluster_conn().await;
    let v: Option<String> = conn.get(KEYS[1]).await.unwrap();
    assert_eq!(v, None, "an empty restart loses the data");
    for k in [0, 2] {
        let v: Option<String> = conn.get(KEYS[k]).await.unwrap();
        assert_eq!(
            v.as_deref(),
            Some("kept"),
            "the other masters are untouched"
        );
    }
    let _: () = conn.set(KEYS[1], "again").await.unwrap();
}
