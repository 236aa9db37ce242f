//! The subcommands other than `serve`: `okrhub export` and `okrhub import` (the work is
//! [`crate::store::transfer`]'s; this file turns their arguments into it and reports; `okrhub
//! export --url` instead asks a running server over HTTP, with hyper's client), and
//! `okrhub token` (minting is [`crate::auth::token`]'s).

use std::collections::BTreeMap;

use crate::auth::token::{mint_hs256, Claims};
use crate::config::{ExportArgs, ImportArgs, TokenArgs};
use crate::store::{self, transfer};

/// `okrhub export`: from the store, or with `--url` through a running server.
pub async fn export(args: &ExportArgs) -> anyhow::Result<()> {
    if let Some(url) = &args.url {
        let server = Server::parse(url, args.token.clone())?;
        let (rooms, failed) = export_over_http(&server, &args.out, args.csv).await?;
        println!(
            "exported {} rooms from {} to {}",
            rooms.len(),
            server.authority,
            args.out.display()
        );
        if !failed.is_empty() {
            anyhow::bail!("{} rooms not exported: {}", failed.len(), failed.join("; "));
        }
        return Ok(());
    }
    if args.csv {
        anyhow::bail!("--csv is written through a running server: add --url http://HOST:PORT");
    }
    let store = match store::open(&args.store.store_config()).await {
        Ok(store) => store,
        Err(store::StoreError::Refused(why)) if why.contains("in use by another process") => {
            anyhow::bail!(
                "{why}: a running server holds the store; export through it instead: \
                 okrhub export --url http://HOST:PORT --token TOKEN --out {}",
                args.out.display()
            )
        }
        Err(e) => return Err(e.into()),
    };
    let rooms = transfer::export(store.as_ref(), &args.out).await?;
    println!("exported {} rooms to {}", rooms.len(), args.out.display());
    Ok(())
}

/// A running okrhub, as `--url` names it: plain HTTP (put the CLI where it reaches the server
/// or its proxy's inner side).
#[derive(Debug, Clone)]
struct Server {
    /// `host:port`.
    authority: String,
    /// A path prefix the server is mounted under (usually empty).
    prefix: String,
    token: Option<String>,
}

/// How long one request of `okrhub export --url` may take.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

impl Server {
    fn parse(url: &str, token: Option<String>) -> anyhow::Result<Server> {
        let Some(rest) = url.strip_prefix("http://") else {
            anyhow::bail!(
                "--url {url:?}: give http://HOST:PORT (https is not spoken here: reach the \
                 server's own port, behind its TLS proxy)"
            );
        };
        let (authority, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if authority.is_empty() {
            anyhow::bail!("--url {url:?}: no host");
        }
        let authority = if authority.contains(':') {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        Ok(Server {
            authority,
            prefix: prefix.to_owned(),
            token,
        })
    }

    /// `GET path`: the body of a 200, or an error with the server's message.
    async fn get(&self, path: &str) -> anyhow::Result<bytes::Bytes> {
        use http_body_util::BodyExt;
        let request = async {
            let stream = tokio::net::TcpStream::connect(&self.authority).await?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            let mut req = hyper::Request::get(format!("{}{path}", self.prefix))
                .header(hyper::header::HOST, &self.authority);
            if let Some(token) = &self.token {
                req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
            }
            let resp = sender
                .send_request(req.body(http_body_util::Empty::<bytes::Bytes>::new())?)
                .await?;
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            anyhow::Ok((status, body))
        };
        let (status, body) = tokio::time::timeout(REQUEST_TIMEOUT, request)
            .await
            .map_err(|_| anyhow::anyhow!("GET {path}: no answer in {REQUEST_TIMEOUT:?}"))?
            .map_err(|e| anyhow::anyhow!("GET {path} from {}: {e}", self.authority))?;
        if !status.is_success() {
            let said = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.pointer("/error/message")?.as_str().map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(200).collect());
            anyhow::bail!("GET {path}: {status}: {said}");
        }
        Ok(body)
    }
}

/// Writes every room the server lists into `out`: `ROOM.json` (the export format, a superset
/// of the store export's typed JSON) and with `csv` `ROOM.csv`. Returns the rooms written and
/// the ones that failed (with why); stops at once when the list itself cannot be read.
async fn export_over_http(
    server: &Server,
    out: &std::path::Path,
    csv: bool,
) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    std::fs::create_dir_all(out).map_err(|e| anyhow::anyhow!("{}: {e}", out.display()))?;
    let list: crate::protocol::live::RoomList =
        serde_json::from_slice(&server.get("/api/rooms").await?)?;
    if list.truncated {
        tracing::warn!(
            "the server listed only the first {} rooms: export the others by org or cycle",
            list.rooms.len()
        );
    }
    let (mut done, mut failed) = (Vec::new(), Vec::new());
    for entry in list.rooms {
        let room = entry.room;
        let mut files = vec![("json", format!("/api/rooms/{room}/export.json"))];
        if csv {
            files.push(("csv", format!("/api/rooms/{room}/export.csv")));
        }
        let mut ok = true;
        for (ext, path) in files {
            match server.get(&path).await {
                Ok(body) => {
                    let file = out.join(format!("{room}.{ext}"));
                    let tmp = file.with_extension(format!("{ext}.tmp"));
                    std::fs::write(&tmp, &body)
                        .and_then(|()| std::fs::rename(&tmp, &file))
                        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
                }
                Err(e) => {
                    tracing::error!(%room, error = %e, "not exported");
                    failed.push(format!("{room}: {e}"));
                    ok = false;
                    break;
                }
            }
        }
        if ok {
            tracing::info!(%room, "exported");
            done.push(room);
        }
    }
    Ok((done, failed))
}

/// `okrhub import`.
pub async fn import(args: &ImportArgs) -> anyhow::Result<()> {
    let store = store::open(&args.store.store_config()).await?;
    let rooms = transfer::import(store.as_ref(), &args.from).await?;
    println!(
        "imported {} rooms from {} into the {} store",
        rooms.len(),
        args.from.display(),
        store.name()
    );
    Ok(())
}

/// The token `okrhub token` prints: HS256, with the claims its arguments say.
pub fn mint(args: &TokenArgs, now_secs: u64) -> anyhow::Result<String> {
    let roles: BTreeMap<String, crate::identity::Role> =
        args.room.iter().map(|r| (r.clone(), args.role)).collect();
    let claims = Claims {
        sub: args.user.clone(),
        name: args.name.clone(),
        org: args.org.clone(),
        roles,
        exp: now_secs + args.ttl.as_secs(),
        nbf: None,
        iat: Some(now_secs),
        iss: args.issuer.clone(),
        aud: args.audience.clone(),
    };
    Ok(mint_hs256(args.jwt_secret.as_bytes(), &claims)?)
}

/// `okrhub token`: prints a token.
pub fn token(args: &TokenArgs) -> anyhow::Result<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    println!("{}", mint(args, now)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_url_is_plain_http_with_an_optional_port_and_prefix() {
        let s = Server::parse("http://127.0.0.1:4680", None).unwrap();
        assert_eq!(
            (s.authority.as_str(), s.prefix.as_str()),
            ("127.0.0.1:4680", "")
        );
        let s = Server::parse("http://okr.internal/hub/", Some("t".into())).unwrap();
        assert_eq!(
            (s.authority.as_str(), s.prefix.as_str()),
            ("okr.internal:80", "/hub")
        );
        let https = Server::parse("https://okr.acme.com", None).unwrap_err();
        assert!(https.to_string().contains("http://HOST:PORT"), "{https}");
        assert!(Server::parse("http:///x", None).is_err());
    }
}
