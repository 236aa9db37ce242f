//! The WebSocket transport itself (`ws`: the upgrade, `ws::session`, `ws::outbox`) against real clients:
//! the handshake and its refusals, pings, fragmented messages, frames sent in the same packet
//! as the upgrade request, the close handshake from either side, and a large state delivered
//! through a socket that blocks.

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use yrs::sync::{Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{GetString, StateVector, Text, Transact, WriteTxn};

fn room(name: &str) -> String {
    format!("acme.transport-{name}.2026-Q3")
}

fn step1() -> Vec<u8> {
    Message::Sync(SyncMessage::SyncStep1(StateVector::default())).encode_v1()
}

/// Reads binary messages until one holds a sync step 2; returns it.
async fn until_step2(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Vec<u8> {
    loop {
        let m = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time")
            .expect("stream open")
            .expect("a valid frame");
        if let WsMessage::Binary(b) = m {
            if b.get(..2) == Some(&[0, 1]) {
                return b.to_vec();
            }
        }
    }
}

#[tokio::test]
async fn plain_http_on_a_websocket_route_says_how_to_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |_| {}).await;
    let reply = http_get(server.local_addr(), &format!("/sync/{}", room("http"))).await;
    let head = reply.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 426"), "{reply}");
    assert!(head.contains("upgrade: websocket"), "{reply}");
    assert!(head.contains("sec-websocket-version: 13"), "{reply}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn pings_are_answered_and_fragmented_messages_reassembled() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |_| {}).await;
    let url = sync_url(&server, &room("frag"));
    let watcher = YClient::synced(&url).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();

    ws.send(WsMessage::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
            Some(Ok(WsMessage::Pong(p))) => {
                assert_eq!(&p[..], b"are you there");
                break;
            }
            Some(Ok(_)) => {}
            other => panic!("no pong: {other:?}"),
        }
    }

    // One update, sent as three fragments of one binary message.
    let doc = yrs::Doc::new();
    let update = {
        let mut txn = doc.transact_mut();
        txn.get_or_insert_text("t").push(&mut txn, "in three parts");
        txn.encode_update_v1()
    };
    let frame = Message::Sync(SyncMessage::Update(update)).encode_v1();
    let (a, rest) = frame.split_at(3);
    let (b, c) = rest.split_at(rest.len() / 2);
    for (part, opcode, fin) in [
        (a, Data::Binary, false),
        (b, Data::Continue, false),
        (c, Data::Continue, true),
    ] {
        let frame = Frame::message(part.to_vec(), OpCode::Data(opcode), fin);
        ws.send(WsMessage::Frame(frame)).await.unwrap();
    }
    watcher
        .wait_for("the reassembled update arrives", |v| {
            v.doc()
                .get_or_insert_text("t")
                .get_string(&v.doc().transact())
                == "in three parts"
        })
        .await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_frame_in_the_same_packet_as_the_upgrade_request_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |_| {}).await;
    let r = room("early");
    let seeded = YClient::synced(&sync_url(&server, &r)).await;
    seeded.edit(|_, txn| txn.get_or_insert_text("t").push(txn, "already here"));
    seeded.round_trip().await;

    // The request and a masked binary frame (sync step 1) in one write.
    let mut bytes = format!(
        "GET /sync/{r} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    .into_bytes();
    let payload = step1();
    let mut header = FrameHeader {
        opcode: OpCode::Data(Data::Binary),
        mask: Some([1, 2, 3, 4]),
        ..FrameHeader::default()
    };
    header.is_final = true;
    header.format(payload.len() as u64, &mut bytes).unwrap();
    bytes.extend(
        payload
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ [1, 2, 3, 4][i % 4]),
    );
    let mut tcp = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    tcp.write_all(&bytes).await.unwrap();

    // The 101, then the server's own step 1, then its step 2 with the doc: the early frame
    // was read.
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let found = tokio::time::timeout(WAIT, async {
        loop {
            let n = tcp.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "connection closed: {}",
                String::from_utf8_lossy(&got)
            );
            got.extend_from_slice(&buf[..n]);
            if got.windows(12).any(|w| w == b"already here") {
                return;
            }
        }
    })
    .await;
    assert!(
        found.is_ok(),
        "no step 2: {}",
        String::from_utf8_lossy(&got)
    );
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 101"), "{text}");
    assert!(
        text.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        "the RFC's accept key: {text}"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_close_handshake_works_from_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |_| {}).await;
    let url = sync_url(&server, &room("close"));

    // The client closes: the server answers with a close frame, then ends the stream.
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    ws.send(WsMessage::Close(None)).await.unwrap();
    let mut answered = false;
    while let Some(m) = tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
        match m {
            Ok(WsMessage::Close(_)) => answered = true,
            Ok(_) => {}
            Err(e) => panic!("the close handshake failed: {e}"),
        }
    }
    assert!(answered, "the server replied to the close");

    // The server closes (shutdown): the client gets 1001 and the stream ends cleanly.
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    ws.send(WsMessage::Binary(step1().into())).await.unwrap();
    until_step2(&mut ws).await;
    let reading = tokio::spawn(async move {
        let mut code = None;
        while let Some(m) = ws.next().await {
            match m {
                Ok(WsMessage::Close(f)) => code = f.map(|f| u16::from(f.code)),
                Ok(_) => {}
                Err(e) => panic!("not a clean close: {e}"),
            }
        }
        code
    });
    server.shutdown().await.unwrap();
    assert_eq!(reading.await.unwrap(), Some(1001));
}

#[tokio::test]
async fn a_large_state_reaches_a_client_through_a_blocking_socket_intact() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |a| a.max_message_size = 64 << 20).await;
    let url = sync_url(&server, &room("large"));
    let writer = YClient::synced(&url).await;
    // ~8 MB of text: far more than a socket buffer, so the server's write blocks and resumes.
    let chunk = "0123456789abcdef".repeat(4096);
    for _ in 0..128 {
        writer.edit(|_, txn| txn.get_or_insert_text("t").push(txn, &chunk));
    }
    writer.round_trip().await;

    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(
        &url,
        Some(
            tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
                .max_message_size(Some(64 << 20))
                .max_frame_size(Some(64 << 20)),
        ),
        false,
    )
    .await
    .unwrap();
    ws.send(WsMessage::Binary(step1().into())).await.unwrap();
    let step2 = until_step2(&mut ws).await;
    let doc = yrs::Doc::new();
    let Message::Sync(SyncMessage::SyncStep2(update)) = Message::decode_v1(&step2).unwrap() else {
        panic!("not a step 2");
    };
    doc.transact_mut()
        .apply_update(yrs::Update::decode_v1(&update).unwrap())
        .unwrap();
    let text = doc.get_or_insert_text("t").get_string(&doc.transact());
    assert_eq!(text.len(), 128 * chunk.len());
    assert!(text == chunk.repeat(128), "the state arrived corrupted");
    server.shutdown().await.unwrap();
}
