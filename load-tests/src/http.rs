//! The one HTTP call the generator makes: `POST {"docId": room}` to create a document before
//! connecting (y-sweet's `/doc/new`). A minimal HTTP/1.1 client over a plain TCP stream.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::target::Endpoint;

const TIMEOUT: Duration = Duration::from_secs(10);
const MAX_RESPONSE: usize = 64 * 1024;

/// POSTs `{"docId": room}` as JSON to `ep` and fails unless the answer is 2xx.
pub async fn create_doc(ep: &Endpoint, room: &str) -> Result<()> {
    let body = serde_json::json!({ "docId": room }).to_string();
    let (status, response) = tokio::time::timeout(TIMEOUT, post_json(ep, &body))
        .await
        .with_context(|| format!("POST {}{}: timed out", ep.authority(), ep.path))??;
    if !(200..300).contains(&status) {
        let snippet: String = response.chars().take(300).collect();
        bail!(
            "POST {}{} for {room}: HTTP {status}: {snippet}",
            ep.authority(),
            ep.path
        );
    }
    Ok(())
}

/// Sends one request with `Connection: close`; returns the status and the raw response.
async fn post_json(ep: &Endpoint, body: &str) -> Result<(u16, String)> {
    let mut s = TcpStream::connect((ep.host.as_str(), ep.port))
        .await
        .with_context(|| format!("connect {}", ep.authority()))?;
    s.set_nodelay(true)?;
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: {len}\r\nConnection: close\r\n\r\n{body}",
        path = ep.path,
        host = ep.authority(),
        len = body.len(),
    );
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).await?;
        if n == 0 || buf.len() >= MAX_RESPONSE {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("not an HTTP response: {:?}", truncate(&text, 100)))?;
    Ok((status, text))
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}
