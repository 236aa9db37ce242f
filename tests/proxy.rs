//! Several nodes behind the deployment's proxy (issue 13): one real `redis-server`, three
//! `okrhub serve --store redis` processes on it, and HAProxy with `deploy/haproxy.cfg` (the file
//! docker-compose.yml mounts) in front — round-robin, no sticky sessions.
//!
//! Needs redis-server, haproxy, Node.js >= 18 and `npm ci --prefix tests/interop`; without them
//! the tests fail (they never skip).

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use common::haproxy::{Haproxy, NODES};
use common::js::{js_map, require_node, JsPeer};
use common::process::HubProcess;
use common::redis_server::RedisServer;
use common::*;
use yrs::{Map, WriteTxn};

/// How long three peers on three nodes may take to see each other's keys. Nodes that share the
/// room relay an update in milliseconds; this bound only keeps a failure quick.
const CONVERGE: Duration = Duration::from_secs(10);

/// Three nodes on one Redis, as docker-compose.yml runs them: behind a proxy every client has
/// the proxy's address, so the per-address limits are off.
struct Nodes {
    _redis: RedisServer,
    hubs: Vec<HubProcess>,
}

impl Nodes {
    fn start() -> Nodes {
        let redis = RedisServer::start();
        let url = redis.url();
        let hubs = (0..NODES)
            .map(|_| {
                HubProcess::start(&[
                    "--store",
                    "redis",
                    "--redis-url",
                    &url,
                    "--max-connections-per-ip",
                    "0",
                    "--new-rooms-per-minute",
                    "0",
                ])
            })
            .collect();
        Nodes {
            _redis: redis,
            hubs,
        }
    }

    fn addrs(&self) -> Vec<SocketAddr> {
        self.hubs.iter().map(|h| h.addr).collect()
    }

    /// Each node's open WebSockets (`okrhub_connections`), once their sum is `total`.
    async fn connections(&self, total: f64) -> Vec<f64> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let mut each = Vec::new();
            for hub in &self.hubs {
                each.push(metric(hub.addr, "okrhub_connections").await);
            }
            if each.iter().sum::<f64>() == total {
                return each;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the nodes never held {total} WebSockets in all: {each:?}"
            );
            // The gauge has no event to wait on: this is a bounded poll.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test]
async fn six_websockets_through_the_proxy_land_two_on_each_node() {
    let nodes = Nodes::start();
    let proxy = Haproxy::start(&nodes.addrs());
    assert_eq!(nodes.connections(0.0).await, vec![0.0; NODES]);

    let mut clients = Vec::new();
    for i in 0..6 {
        let url = format!("ws://{}/sync/{}", proxy.addr(), room(&format!("rr{i}")));
        clients.push(YClient::synced(&url).await);
    }
    let each = nodes.connections(6.0).await;
    assert_eq!(
        each,
        vec![2.0; NODES],
        "round-robin puts two of six WebSockets on each node; haproxy's log:\n{}",
        proxy.log()
    );
    let states = proxy.node_states();
    assert!(
        states.iter().all(|(_, s)| s == "UP"),
        "every node stays up: {states:?}"
    );

    // Through the proxy a WebSocket is a plain tunnel: an edit goes round trip.
    let a = &clients[0];
    a.edit(|_, txn| {
        txn.get_or_insert_map("m").insert(txn, "k", "v");
    });
    a.round_trip().await;
}

/// Three stock JS clients (y-websocket) join ONE room through the proxy; round-robin puts each
/// on a different node. Each writes its own key and must see the other two: the nodes share the
/// room through their Redis. This fails until the nodes relay updates to one another.
#[tokio::test]
async fn three_js_peers_on_three_nodes_converge_on_one_room() {
    require_node();
    let nodes = Nodes::start();
    let proxy = Haproxy::start(&nodes.addrs());
    let room = room("proxy-converge");
    let base = format!("ws://{}/sync", proxy.addr());
    let names = ["ana", "ben", "cho"];
    let all = names.join(",");
    let mut peers: Vec<JsPeer> = names
        .iter()
        .map(|name| JsPeer::spawn_args(&base, &room, name, &["--expect-keys", &all], CONVERGE))
        .collect();

    // One peer on each node, or the test would prove nothing about sharing rooms.
    let each = nodes.connections(3.0).await;
    assert_eq!(each, vec![1.0; NODES], "one JS peer on each node");

    // Each peer prints its state once it has all three keys, or after CONVERGE what it has.
    let mut seen = BTreeMap::new();
    let mut converged = true;
    for peer in &mut peers {
        let line = peer.next_json("its keys and the other peers' keys").await;
        converged &= line.get("error").is_none();
        seen.insert(peer.name.clone(), js_map(&line));
    }
    assert!(
        converged,
        "the three JS peers, each on its own node, did not converge on room {room} within \
         {CONVERGE:?} (each node serves the room alone: no relay between nodes?). What each \
         sees: {seen:#?}"
    );
    let expected: BTreeMap<String, String> = names
        .iter()
        .map(|n| (n.to_string(), format!("hello from {n}")))
        .collect();
    for peer in &mut peers {
        let dump = peer.dump().await;
        assert_eq!(js_map(&dump), expected, "{} sees the same map", peer.name);
    }
    for peer in &mut peers {
        peer.send("quit").await;
        assert_eq!(
            peer.wait_exit().await,
            Some(0),
            "{} exits cleanly",
            peer.name
        );
    }
}
