//! The HTTP calls of the generator and its tests, over a minimal HTTP/1.1 client on a plain TCP
//! stream: `POST {"docId": room}` to create a document before connecting (y-sweet's
//! `/doc/new`), and `GET` of a JSON document (okrhub's `/api/rooms/{room}`, read by the tests
//! to check what the server made of a seeded room).

use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::target::Endpoint;

const TIMEOUT: Duration = Duration::from_secs(10);
const MAX_RESPONSE: usize = 64 * 1024;
/// Largest answer [`get_json`] reads (a room view with thousands of check-ins).
const MAX_JSON_RESPONSE: usize = 64 << 20;

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
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: {len}\r\nConnection: close\r\n\r\n{body}",
        path = ep.path,
        host = ep.authority(),
        len = body.len(),
    );
    let (status, response) = request(ep, &req, MAX_RESPONSE).await?;
    Ok((status, String::from_utf8_lossy(&response).into_owned()))
}

/// Sends `req` and reads the answer until the server closes (at most about `max` bytes);
/// returns the status and the raw response.
async fn request(ep: &Endpoint, req: &str, max: usize) -> Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect((ep.host.as_str(), ep.port))
        .await
        .with_context(|| format!("connect {}", ep.authority()))?;
    s.set_nodelay(true)?;
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = s.read(&mut chunk).await?;
        if n == 0 || buf.len() >= max {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let first = buf.split(|&b| b == b'\n').next().unwrap_or_default();
    let first = String::from_utf8_lossy(first);
    let status = first
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("not an HTTP response: {:?}", truncate(&first, 100)))?;
    Ok((status, buf))
}

/// `GET url` (loopback `http://` only) and parses the JSON body of a 2xx answer.
pub async fn get_json(url: &str) -> Result<serde_json::Value> {
    let ep = crate::target::parse_http(url)?;
    crate::target::check_resolves_to_loopback(&ep).await?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
        path = ep.path,
        host = ep.authority(),
    );
    let (status, response) = tokio::time::timeout(TIMEOUT, request(&ep, &req, MAX_JSON_RESPONSE))
        .await
        .with_context(|| format!("GET {url}: timed out"))??;
    let (head, body) = split_at(&response, b"\r\n\r\n")
        .with_context(|| format!("GET {url}: no end of headers"))?;
    if !(200..300).contains(&status) {
        let body = String::from_utf8_lossy(body);
        bail!("GET {url}: HTTP {status}: {}", truncate(&body, 300));
    }
    let chunked = String::from_utf8_lossy(head).lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked {
        dechunk(body).with_context(|| format!("GET {url}: bad chunked body"))?
    } else {
        body.to_vec()
    };
    serde_json::from_slice(&body).with_context(|| format!("GET {url}: the body is not JSON"))
}

/// The bytes before and after the first `sep`.
fn split_at<'a>(bytes: &'a [u8], sep: &[u8]) -> Option<(&'a [u8], &'a [u8])> {
    let at = bytes.windows(sep.len()).position(|w| w == sep)?;
    Some((&bytes[..at], &bytes[at + sep.len()..]))
}

/// Decodes a `Transfer-Encoding: chunked` body.
fn dechunk(mut body: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let (size, rest) = split_at(body, b"\r\n").context("no chunk size line")?;
        let size = std::str::from_utf8(size).context("bad chunk size")?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            .context("bad chunk size")?;
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(rest.get(..size).context("chunk cut short")?);
        body = rest
            .get(size..)
            .and_then(|r| r.strip_prefix(b"\r\n"))
            .context("no CRLF after a chunk")?;
    }
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies() {
        assert_eq!(
            dechunk(b"4\r\n{\"a\"\r\n3;x=1\r\n:1}\r\n0\r\n\r\n").unwrap(),
            b"{\"a\":1}"
        );
        assert!(dechunk(b"zz\r\n").is_err());
        assert!(dechunk(b"9\r\nshort\r\n").is_err());
    }

    #[tokio::test]
    async fn get_refuses_other_hosts() {
        let e = get_json("http://example.com/api").await.unwrap_err();
        assert!(e.to_string().contains("refusing"), "{e}");
    }
}
