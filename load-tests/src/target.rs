//! Where the generator connects, and the loopback-only rule.
//!
//! The generator is a load tool: it must never be pointed at a machine other than the one it runs
//! on. Every URL it is given (WebSocket or HTTP) must name `127.0.0.1`, `::1` or `localhost`, and
//! `localhost` must resolve to loopback addresses only.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use anyhow::{bail, Context, Result};
use tokio_tungstenite::tungstenite::http::Uri;

/// How a room's WebSocket URL is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A base URL; the room is appended as a path segment, like the JS `WebsocketProvider`
    /// (`ws://127.0.0.1:4680/sync` → `ws://127.0.0.1:4680/sync/{room}`).
    Base(String),
    /// A URL with `{room}` placeholders, e.g. y-sweet's
    /// `ws://127.0.0.1:8080/d/{room}/ws/{room}`.
    Template(String),
}

impl Target {
    /// The WebSocket URL of `room`.
    pub fn url_for(&self, room: &str) -> String {
        match self {
            Target::Base(base) => format!("{}/{room}", base.trim_end_matches('/')),
            Target::Template(t) => t.replace("{room}", room),
        }
    }

    /// The URL as given.
    pub fn as_str(&self) -> &str {
        match self {
            Target::Base(s) | Target::Template(s) => s,
        }
    }
}

/// A parsed loopback URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The host without IPv6 brackets (`127.0.0.1`, `::1`, `localhost`).
    pub host: String,
    pub port: u16,
    /// Path and query, at least `/`.
    pub path: String,
}

impl Endpoint {
    /// `host:port` as it goes in a `Host` header (IPv6 in brackets).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Whether `host` (brackets allowed) is one the generator may connect to.
pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    if h.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match h.parse::<IpAddr>() {
        Ok(ip) => ip == IpAddr::V4(Ipv4Addr::LOCALHOST) || ip == IpAddr::V6(Ipv6Addr::LOCALHOST),
        Err(_) => false,
    }
}

/// Parses `url`, requiring one of `schemes` and a loopback host.
pub fn parse_loopback(url: &str, schemes: &[&str]) -> Result<Endpoint> {
    let uri: Uri = url
        .parse()
        .with_context(|| format!("invalid URL {url:?}"))?;
    let Some(scheme) = uri.scheme_str() else {
        bail!(
            "URL {url:?} has no scheme (expected {})",
            schemes.join(" or ")
        );
    };
    if !schemes.contains(&scheme) {
        bail!(
            "URL {url:?}: scheme must be {} (TLS is not supported)",
            schemes.join(" or ")
        );
    }
    let Some(host) = uri.host() else {
        bail!("URL {url:?} has no host");
    };
    if !is_loopback_host(host) {
        bail!(
            "refusing to connect to host {host:?} in {url:?}: the load generator only connects to \
             127.0.0.1, ::1 or localhost"
        );
    }
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(80);
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "/".to_owned());
    Ok(Endpoint { host, port, path })
}

/// Parses a WebSocket URL (`ws://` only) and checks its host.
pub fn parse_ws(url: &str) -> Result<Endpoint> {
    parse_loopback(url, &["ws"])
}

/// Parses an HTTP URL (`http://` only) and checks its host.
pub fn parse_http(url: &str) -> Result<Endpoint> {
    parse_loopback(url, &["http"])
}

/// Resolves `ep` and fails unless every address is a loopback address (guards `localhost`
/// against an unusual hosts file).
pub async fn check_resolves_to_loopback(ep: &Endpoint) -> Result<()> {
    let addrs: Vec<_> = tokio::net::lookup_host((ep.host.as_str(), ep.port))
        .await
        .with_context(|| format!("resolving {}", ep.host))?
        .collect();
    if addrs.is_empty() {
        bail!("{} resolves to no address", ep.host);
    }
    if let Some(bad) = addrs.iter().find(|a| !a.ip().is_loopback()) {
        bail!(
            "refusing to connect: {} resolves to {bad}, which is not a loopback address",
            ep.host
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_and_template_urls() {
        let b = Target::Base("ws://127.0.0.1:4680/sync/".into());
        assert_eq!(b.url_for("a.b.c"), "ws://127.0.0.1:4680/sync/a.b.c");
        let t = Target::Template("ws://127.0.0.1:8080/d/{room}/ws/{room}".into());
        assert_eq!(t.url_for("a.b.c"), "ws://127.0.0.1:8080/d/a.b.c/ws/a.b.c");
    }

    #[test]
    fn only_loopback_hosts() {
        for ok in [
            "ws://127.0.0.1:1/sync",
            "ws://[::1]:1/sync",
            "ws://localhost:1/x",
            "ws://LOCALHOST/x",
        ] {
            parse_ws(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "ws://10.0.0.1:1/sync",
            "ws://example.com/sync",
            "ws://127.0.0.2:1/sync",
            "ws://0.0.0.0:1/sync",
            "ws://localhost.example.com/x",
            "ws://127.0.0.1.nip.io/x",
        ] {
            let e = parse_ws(bad).unwrap_err().to_string();
            assert!(e.contains("refusing"), "{bad}: {e}");
        }
        assert!(parse_ws("wss://127.0.0.1/x").is_err());
        assert!(parse_ws("http://127.0.0.1/x").is_err());
        let ep = parse_http("http://[::1]:9/doc/new").unwrap();
        assert_eq!(ep.host, "::1");
        assert_eq!(ep.authority(), "[::1]:9");
        assert_eq!(ep.path, "/doc/new");
    }
}
