//! Who may do what, tried as an attacker would: a real server with HS256, RS256 and ES256 keys
//! (the RSA and EC keys made by `openssl` for each run), real WebSockets, real yrs clients.
//!
//! One test per rule of `README.md`, "Security": no or a bad token is refused before any
//! state; a viewer's update changes nothing; an editor of one team cannot write another's; a
//! personal room refuses a colleague; a private objective never reaches a colleague; a Yjs
//! client cannot delete, forge or back-date a check-in; nobody takes over another's
//! presence; a foreign web page gets nowhere; the inbox brings only what its user may read.

mod common;

use std::path::Path;
use std::process::Command;

use common::live::{live_url, ty, upgrade, LiveClient};
use common::tokens::{claims, now};
use common::{start_server, sync_url, YClient};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use okrhub::auth::token::Claims;
use okrhub::identity::Role;
use okrhub::server::RunningServer;
use serde_json::{json, Value};
use yrs::sync::awareness::AwarenessUpdateEntry;
use yrs::sync::{AwarenessUpdate, Message};
use yrs::updates::encoder::Encode;
use yrs::{Map, ReadTxn, Transact, WriteTxn};

const SECRET: &str = "a-test-secret-of-at-least-32-bytes!!";
const SALES: &str = "acme.sales.2030-Q1";
const HR: &str = "acme.hr.2030-Q1";
const ANA: &str = "acme.~ana.2030-Q1";

struct Keys {
    rsa: EncodingKey,
    ec: EncodingKey,
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl (Debian's openssl package) makes the test keys");
    assert!(out.status.success(), "openssl {args:?}: {out:?}");
}

/// An RSA and an EC P-256 key pair in `dir`; their public halves in `dir/keys.pem`.
fn make_keys(dir: &Path) -> Keys {
    let p = |n: &str| dir.join(n).to_str().unwrap().to_owned();
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        &p("rsa.pem"),
    ]);
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        &p("ec.pem"),
    ]);
    openssl(&[
        "pkey",
        "-in",
        &p("rsa.pem"),
        "-pubout",
        "-out",
        &p("rsa.pub"),
    ]);
    openssl(&["pkey", "-in", &p("ec.pem"), "-pubout", "-out", &p("ec.pub")]);
    let public = std::fs::read_to_string(p("rsa.pub")).unwrap()
        + &std::fs::read_to_string(p("ec.pub")).unwrap();
    std::fs::write(dir.join("keys.pem"), public).unwrap();
    Keys {
        rsa: EncodingKey::from_rsa_pem(&std::fs::read(p("rsa.pem")).unwrap()).unwrap(),
        ec: EncodingKey::from_ec_pem(&std::fs::read(p("ec.pem")).unwrap()).unwrap(),
    }
}

struct Env {
    server: RunningServer,
    keys: Keys,
    _dir: tempfile::TempDir,
}

impl Env {
    async fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let keys = make_keys(dir.path());
        let keys_file = dir.path().join("keys.pem");
        let server = start_server(&dir.path().join("data"), |a| {
            a.security.jwt_secret = Some(SECRET.into());
            a.security.jwt_keys = Some(keys_file);
        })
        .await;
        Env {
            server,
            keys,
            _dir: dir,
        }
    }

    fn addr(&self) -> std::net::SocketAddr {
        self.server.local_addr()
    }

    /// An HS256 token.
    fn hs(&self, c: &Claims) -> String {
        common::tokens::hs256(SECRET, c)
    }

    fn signed(&self, alg: Algorithm, c: &Claims) -> String {
        let key = match alg {
            Algorithm::RS256 => &self.keys.rsa,
            _ => &self.keys.ec,
        };
        jsonwebtoken::encode(&Header::new(alg), c, key).unwrap()
    }

    /// A token of `user` in acme with `roles`.
    fn token(&self, user: &str, roles: &[(&str, Role)]) -> String {
        self.hs(&claims(user, "acme", roles))
    }

    fn sync(&self, room: &str, token: &str) -> String {
        format!("{}?token={token}", sync_url(&self.server, room))
    }

    async fn yjs(&self, room: &str, token: &str) -> YClient {
        YClient::synced(&self.sync(room, token)).await
    }

    async fn live(&self, room: &str, user: &str, token: &str) -> LiveClient {
        let c = LiveClient::connect(
            &live_url(self.addr(), room, &format!("token={token}")),
            user,
        )
        .await;
        c.wait_for("the snapshot", |f| !f.is_empty()).await;
        assert_eq!(ty(&c.frames()[0]), "snapshot", "{}", c.frames()[0]);
        c
    }

    /// A request with `headers`; the status and the JSON body (`Null` when there is none).
    async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, Value) {
        let answer = common::http::request(self.addr(), method, path, headers, body).await;
        (answer.status, answer.json())
    }

    async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        let auth = format!("Bearer {token}");
        self.request("GET", path, &[("Authorization", &auth)], "")
            .await
    }

    /// POSTs a command to `room` as the bearer of `token`.
    async fn command(&self, room: &str, token: &str, command: Value) -> (u16, Value) {
        let auth = format!("Bearer {token}");
        let headers = [
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ];
        self.request(
            "POST",
            &format!("/api/rooms/{room}/commands"),
            &headers,
            &command.to_string(),
        )
        .await
    }

    /// POSTs `command` and checks that it is refused: 403 `forbidden`.
    async fn forbidden(&self, room: &str, token: &str, command: Value) {
        let (status, body) = self.command(room, token, command.clone()).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (403, Some("forbidden")),
            "{command} → {body}"
        );
    }

    async fn ok(&self, room: &str, token: &str, command: Value) -> String {
        let (status, body) = self.command(room, token, command.clone()).await;
        assert_eq!(status, 200, "{command} → {body}");
        body["created_id"].as_str().unwrap_or_default().to_owned()
    }

    /// A cycle, an objective of `visibility` and a KR in `room`: (objective, kr).
    async fn seed(
        &self,
        room: &str,
        admin: &str,
        visibility: &str,
        title: &str,
    ) -> (String, String) {
        let (status, _) = self
            .command(
                room,
                admin,
                json!({"type": "cycle.set", "starts": "2030-01-01", "ends": "2030-03-31"}),
            )
            .await;
        assert!(status == 200 || status == 403, "cycle: {status}");
        let o = self
            .ok(
                room,
                admin,
                json!({"type": "objective.create", "title": title, "visibility": visibility}),
            )
            .await;
        let kr = self
            .ok(
                room,
                admin,
                json!({"type": "kr.create", "objective": o, "title": format!("{title}: KR"),
                "metric": {"kind": "increase", "start": 0, "target": 10, "unit": "deals"}}),
            )
            .await;
        (o, kr)
    }
}

fn checkin_ids(doc: &yrs::Doc) -> Vec<String> {
    let txn = doc.transact();
    txn.get_map("checkins")
        .map(|m| m.keys(&txn).map(str::to_owned).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn bad_or_missing_tokens_are_refused_before_any_state() {
    let env = Env::new().await;
    let editor = env.token("li", &[("acme.sales.*", Role::Editor)]);
    env.seed(
        SALES,
        &env.token("boss", &[("acme.*.*", Role::Admin)]),
        "public",
        "Win 3 markets",
    )
    .await;
    let mut expired = claims("li", "acme", &[("acme.sales.*", Role::Editor)]);
    expired.exp = now() - 3600;
    let mut early = claims("li", "acme", &[("acme.sales.*", Role::Editor)]);
    early.nbf = Some(now() + 3600);
    let forged = okrhub::auth::token::mint_hs256(
        b"another-secret-of-at-least-32-bytes!",
        &claims("li", "acme", &[]),
    )
    .unwrap();
    let other_org = env.hs(&claims("li", "globex", &[("globex.*.*", Role::Admin)]));
    let no_role = env.token("li", &[("acme.hr.*", Role::Editor)]);
    for (what, token, status, reason) in [
        ("no token", None, 401, "missing_token"),
        (
            "a bad signature",
            Some(forged.as_str()),
            401,
            "bad_signature",
        ),
        ("an expired token", Some(&env.hs(&expired)), 401, "expired"),
        (
            "a token not yet valid",
            Some(&env.hs(&early)),
            401,
            "not_yet_valid",
        ),
        ("another org's token", Some(&other_org), 403, "other_org"),
    ] {
        let query = token.map(|t| format!("?token={t}")).unwrap_or_default();
        let sync = format!("ws://{}/sync/{SALES}{query}", env.addr());
        let (got, body) = upgrade(&sync, &[]).await;
        assert_eq!(
            (got, body["error"]["reason"].as_str()),
            (status, Some(reason)),
            "/sync with {what}: {body}"
        );
        let live = format!("ws://{}/live/{SALES}{query}", env.addr());
        let (got, body) = upgrade(&live, &[]).await;
        assert_eq!(got, status, "/live with {what}: {body}");
        let path = format!("/api/rooms/{SALES}{query}");
        let (got, body) = env.request("GET", &path, &[], "").await;
        assert_eq!(got, status, "GET with {what}: {body}");
        assert!(body["okr"].is_null(), "no state with {what}");
    }
    // A token of the org without a role in the room: no /sync (its doc holds team
    // objectives); REST and /live show the org's public objectives only.
    let (got, body) = upgrade(&env.sync(SALES, &no_role), &[]).await;
    assert_eq!(
        (got, body["error"]["reason"].as_str()),
        (403, Some("role")),
        "{body}"
    );
    // And a good one passes.
    let (got, _) = upgrade(&env.sync(SALES, &editor), &[]).await;
    assert_eq!(got, 101);
    env.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn hs256_rs256_and_es256_tokens_each_work() {
    let env = Env::new().await;
    let c = claims("li", "acme", &[("acme.sales.*", Role::Editor)]);
    for (alg, token) in [
        ("HS256", env.hs(&c)),
        ("RS256", env.signed(Algorithm::RS256, &c)),
        ("ES256", env.signed(Algorithm::ES256, &c)),
    ] {
        let y = env.yjs(SALES, &token).await;
        assert!(y.closed().is_none(), "{alg}");
        let (status, body) = env.get("/api/session", &token).await;
        assert_eq!(
            (status, body["user"].as_str()),
            (200, Some("li")),
            "{alg}: {body}"
        );
        let (status, _) = env.get(&format!("/api/rooms/{SALES}"), &token).await;
        assert_eq!(status, 200, "{alg}");
    }
    env.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_viewer_changes_nothing() {
    let env = Env::new().await;
    let admin = env.token("boss", &[("acme.*.*", Role::Admin)]);
    let (o, _) = env.seed(SALES, &admin, "public", "Win 3 markets").await;
    let viewer = env.token("screen", &[("acme.sales.*", Role::Viewer)]);
    let editor = env.token("li", &[("acme.sales.*", Role::Editor)]);
    let witness = env.yjs(SALES, &editor).await;
    let before = witness.read(|d| d.transact().state_vector());

    let v = env.yjs(SALES, &viewer).await;
    v.edit(|_, txn| {
        txn.get_or_insert_map("objectives").remove(txn, "whatever");
        txn.get_or_insert_map("notes").insert(txn, "k", "v");
    });
    let closed = v.wait_closed().await;
    assert_eq!(closed.code, Some(1008), "{closed:?}");
    assert!(closed.reason.starts_with("forbidden"), "{closed:?}");
    // The doc never changed: a second client's round trip shows nothing new.
    witness.round_trip().await;
    assert_eq!(witness.read(|d| d.transact().state_vector()), before);
    assert!(witness.read(|d| d.transact().get_map("notes").is_none()));

    // Commands: forbidden, on /live and REST alike.
    let live = env.live(SALES, "screen", &viewer).await;
    let e = live
        .refused(json!({"type": "comment.create", "target": {"objective": o}, "text": "hi"}))
        .await;
    assert_eq!(e["code"], "forbidden", "{e}");
    env.forbidden(
        SALES,
        &viewer,
        json!({"type": "objective.update", "objective": o, "title": "Hacked"}),
    )
    .await;
    let (_, view) = env.get(&format!("/api/rooms/{SALES}"), &viewer).await;
    assert_eq!(view["okr"]["objectives"][0]["title"], "Win 3 markets");
    // An editor may not archive or change the cycle either: an admin's acts.
    env.forbidden(
        SALES,
        &editor,
        json!({"type": "objective.archive", "objective": o}),
    )
    .await;
    env.forbidden(
        SALES,
        &editor,
        json!({"type": "cycle.set", "starts": "2030-04-01", "ends": "2030-06-30"}),
    )
    .await;
    env.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_editor_of_one_team_cannot_write_another_teams_room() {
    let env = Env::new().await;
    let admin = env.token("boss", &[("acme.*.*", Role::Admin)]);
    let (o, _) = env.seed(HR, &admin, "public", "Hire 5 engineers").await;
    let sales = env.token("li", &[("acme.sales.*", Role::Editor)]);
    env.forbidden(
        HR,
        &sales,
        json!({"type": "objective.update", "objective": o, "title": "Hire 0"}),
    )
    .await;
    let (status, _) = upgrade(&env.sync(HR, &sales), &[]).await;
    assert_eq!(status, 403);
    // Reading the org's public objectives is fine; HR's team objectives are HR's.
    let (team, team_kr) = env.seed(HR, &admin, "team", "Cut attrition to 5%").await;
    let (status, view) = env.get(&format!("/api/rooms/{HR}"), &sales).await;
    assert_eq!(
        (status, view["okr"]["objectives"][0]["title"].as_str()),
        (200, Some("Hire 5 engineers"))
    );
    assert_eq!(view["okr"]["objectives"].as_array().unwrap().len(), 1);
    assert!(!view.to_string().contains(&team), "{view}");
    let (status, _) = env
        .get(
            &format!("/api/rooms/{HR}/key_results/{team_kr}/history"),
            &sales,
        )
        .await;
    assert_eq!(status, 404);
    let hr = env.token("hana", &[("acme.hr.*", Role::Viewer)]);
    let (_, view) = env.get(&format!("/api/rooms/{HR}"), &hr).await;
    assert_eq!(
        view["okr"]["objectives"].as_array().unwrap().len(),
        2,
        "a member sees both"
    );
    env.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_personal_room_refuses_a_colleague() {
    let env = Env::new().await;
    let ana = env.token("ana", &[]);
    let (o, _) = env.seed(ANA, &ana, "public", "Learn Rust").await;
    // A colleague with an editor grant over the whole org is a reader of Ana's room.
    let li = env.token("li", &[("acme.*.*", Role::Editor)]);
    env.forbidden(
        ANA,
        &li,
        json!({"type": "objective.update", "objective": o, "title": "Learn Go"}),
    )
    .await;
    let (status, body) = upgrade(&env.sync(ANA, &li), &[]).await;
    assert_eq!(
        (status, body["error"]["reason"].as_str()),
        (403, Some("role")),
        "{body}"
    );
    // Ana herself syncs and writes; an admin may too.
    let y = env.yjs(ANA, &ana).await;
    assert!(y.closed().is_none());
    let boss = env.token("boss", &[("acme.*.*", Role::Admin)]);
    env.ok(
        ANA,
        &boss,
        json!({"type": "objective.update", "objective": o, "title": "Learn Rust well"}),
    )
    .await;
    env.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_private_objective_never_reaches_a_colleague() {
    let env = Env::new().await;
    let ana = env.token("ana", &[]);
    let (public, _) = env.seed(ANA, &ana, "public", "Ship the app").await;
    let (secret, secret_kr) = env.seed(ANA, &ana, "private", "Find a new job").await;
    let li = env.token("li", &[("acme.*.*", Role::Viewer)]);
    let li_live = env.live(ANA, "li", &li).await;
    let snapshot = li_live.next().await;
    let text = snapshot.to_string();
    assert!(text.contains(&public), "the public one is there: {text}");
    assert!(
        !text.contains(&secret) && !text.contains("new job"),
        "{text}"
    );
    let seq0 = snapshot["seq"].as_u64().unwrap();

    // Ana works on her private objective: check-in, comment mentioning li, title edit.
    env.ok(
        ANA,
        &ana,
        json!({"type": "checkin.create", "key_result": secret_kr, "value": 3, "confidence": 6,
        "comment": "interview @li", "mentions": ["li"]}),
    )
    .await;
    env.ok(
        ANA,
        &ana,
        json!({"type": "comment.create", "target": {"objective": secret}, "text": "ask @li",
        "mentions": ["li"]}),
    )
    .await;
    // li's inbox gets neither.
    let inbox = LiveClient::connect(
        &live_url(env.addr(), "~inbox", &format!("token={li}")),
        "li",
    )
    .await;
    env.ok(
        ANA,
        &ana,
        json!({"type": "objective.update", "objective": secret, "title": "Find a new job soon"}),
    )
    .await;
    // A public change after them: once li sees it, li would have seen the others.
    env.ok(
        ANA,
        &ana,
        json!({"type": "objective.update", "objective": public, "title": "Ship the app v2"}),
    )
    .await;
    li_live
        .wait_for("the public change", |f| {
            f.iter().any(|m| m.to_string().contains("Ship the app v2"))
        })
        .await;
    let seen = serde_json::to_string(&li_live.frames()).unwrap();
    assert!(
        !seen.contains(&secret) && !seen.contains(&secret_kr) && !seen.contains("new job"),
        "{seen}"
    );
    assert!(
        !seen.contains("\"mention\""),
        "no mention event from a private objective: {seen}"
    );
    inbox.wait_for("the hello", |f| !f.is_empty()).await;
    assert!(
        inbox.frames().iter().all(|m| ty(m) != "inbox.mention"),
        "{:?}",
        inbox.frames()
    );

    // REST, history, a resume: the same.
    let (_, view) = env.get(&format!("/api/rooms/{ANA}"), &li).await;
    assert!(!view.to_string().contains(&secret), "{view}");
    assert_eq!(view["okr"]["objectives"].as_array().unwrap().len(), 1);
    let (status, _) = env
        .get(
            &format!("/api/rooms/{ANA}/key_results/{secret_kr}/history"),
            &li,
        )
        .await;
    assert_eq!(status, 404, "as if it did not exist");
    let resumed = LiveClient::connect(
        &live_url(env.addr(), ANA, &format!("token={li}&since={seq0}")),
        "li",
    )
    .await;
    resumed
        .wait_for("the public change", |f| {
            f.iter().any(|m| m.to_string().contains("Ship the app v2"))
        })
        .await;
    let replay = serde_json::to_string(&resumed.frames()).unwrap();
    assert_eq!(ty(&resumed.frames()[0]), "resumed");
    assert!(
        !replay.contains(&secret) && !replay.contains("new job"),
        "{replay}"
    );
    // Ana sees all of it.
    let (_, own) = env.get(&format!("/api/rooms/{ANA}"), &ana).await;
    assert_eq!(own["okr"]["objectives"].as_array().unwrap().len(), 2);

    // Made public, it reaches li with everything under it (a fresh snapshot).
    env.ok(
        ANA,
        &ana,
        json!({"type": "objective.update", "objective": secret, "visibility": "public"}),
    )
    .await;
    li_live
        .wait_for("a snapshot with it", |f| {
            f.iter()
                .any(|m| ty(m) == "snapshot" && m.to_string().contains(&secret_kr))
        })
        .await;
    // And a team room refuses private objectives outright: they live in personal rooms.
    let admin = env.token("boss", &[("acme.*.*", Role::Admin)]);
    let (status, body) = env
        .command(
            SALES,
            &admin,
            json!({"type": "objective.create", "title": "Secret", "visibility": "private"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("visibility")),
        "{body}"
    );
    env.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_yjs_client_cannot_delete_forge_or_backdate_a_checkin() {
    let env = Env::new().await;
    let admin = env.token("boss", &[("acme.*.*", Role::Admin)]);
    let (_, kr) = env.seed(SALES, &admin, "public", "Win 3 markets").await;
    let editor = env.token("li", &[("acme.sales.*", Role::Editor)]);
    let real = env
        .ok(
            SALES,
            &editor,
            json!({"type": "checkin.create", "key_result": kr, "value": 2, "confidence": 7}),
        )
        .await;
    let witness = env.yjs(SALES, &editor).await;
    let watcher = env.live(SALES, "li", &editor).await;
    let now = okrhub::clock::now_millis();
    let forged = |id: &'static str, author: &'static str, at: i64| {
        let kr = kr.clone();
        move |_: &yrs::Doc, txn: &mut yrs::TransactionMut| {
            txn.get_or_insert_map("checkins").insert(
                txn,
                id,
                yrs::any!({"key_result": kr.as_str(), "author": author, "at": at, "value": 9, "confidence": 10}),
            );
        }
    };
    type Edit = Box<dyn FnOnce(&yrs::Doc, &mut yrs::TransactionMut)>;
    let real2 = real.clone();
    let attacks: Vec<(&str, Edit, &str)> = vec![
        (
            "deletes a check-in",
            Box::new(move |_, txn| {
                txn.get_or_insert_map("checkins").remove(txn, &real2);
            }),
            "append-only",
        ),
        (
            "forges an author",
            Box::new(forged("ci-forged", "boss", now)),
            "author",
        ),
        (
            "back-dates a check-in",
            Box::new(forged("ci-old", "li", now - 30 * 24 * 3600 * 1000)),
            "time",
        ),
        (
            "deletes an objective",
            Box::new(|_, txn| {
                let objectives = txn.get_or_insert_map("objectives");
                let ids: Vec<String> = objectives.keys(txn).map(str::to_owned).collect();
                for id in ids {
                    objectives.remove(txn, &id);
                }
            }),
            "admin",
        ),
    ];
    for (what, attack, says) in attacks {
        let y = env.yjs(SALES, &editor).await;
        y.edit(attack);
        let closed = y.wait_closed().await;
        assert_eq!(closed.code, Some(1008), "{what}: {closed:?}");
        assert!(closed.reason.contains(says), "{what}: {closed:?}");
        witness.round_trip().await;
        let ids = witness.read(checkin_ids);
        assert_eq!(ids, vec![real.clone()], "{what}: the doc is as it was");
        let objectives = witness.read(|d| {
            let txn = d.transact();
            txn.get_map("objectives").map_or(0, |m| m.len(&txn))
        });
        assert_eq!(objectives, 1, "{what}");
    }
    // A fresh client, and the store, see the same; no event ever showed a forged entry.
    let fresh = env.yjs(SALES, &editor).await;
    assert_eq!(fresh.read(checkin_ids), vec![real.clone()]);
    env.ok(
        SALES,
        &editor,
        json!({"type": "checkin.create", "key_result": kr, "value": 3, "confidence": 7}),
    )
    .await;
    watcher
        .wait_for("the next real check-in", |f| {
            f.iter().any(|m| ty(m) == "checkin.created")
        })
        .await;
    let seen = serde_json::to_string(&watcher.frames()).unwrap();
    assert!(
        !seen.contains("ci-forged") && !seen.contains("ci-old"),
        "{seen}"
    );
    assert!(
        !seen.contains("checkin.removed") && !seen.contains("objective.removed"),
        "{seen}"
    );
    // A check-in written right is fine.
    let y = env.yjs(SALES, &editor).await;
    y.edit(forged("ci-good", "li", okrhub::clock::now_millis()));
    y.round_trip().await;
    assert!(y.closed().is_none());
    witness
        .wait_for("the good check-in", |v| checkin_ids(v.doc()).len() == 3)
        .await;
    env.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn nobody_takes_over_anothers_presence() {
    let env = Env::new().await;
    let ana = env.token("ana", &[("acme.sales.*", Role::Editor)]);
    let li = env.token("li", &[("acme.sales.*", Role::Editor)]);
    let a = env.yjs(SALES, &ana).await;
    a.set_awareness(json!({"user": {"name": "ana"}}));
    let c = env.yjs(SALES, &ana).await;
    c.wait_for("ana present", |v| {
        v.awareness_names().contains(&"ana".to_owned())
    })
    .await;

    // Mallory (li's token) removes ana's state, then writes one of its own under her id.
    let mallory = env.yjs(SALES, &li).await;
    let victim = yrs::block::ClientID::new(a.client_id());
    for (clock, json) in [
        (1_000, "null"),
        (1_001, r#"{"user":{"name":"mallory-as-ana"}}"#),
    ] {
        let update = AwarenessUpdate {
            clients: [(
                victim,
                AwarenessUpdateEntry {
                    clock,
                    json: json.into(),
                },
            )]
            .into(),
        };
        mallory.send_raw(Message::Awareness(update).encode_v1());
    }
    // Then its own state: relayed after the forged ones, had they been relayed.
    mallory.set_awareness(json!({"user": {"name": "li-marker"}}));
    c.wait_for("li's own state", |v| {
        v.awareness_names().contains(&"li-marker".to_owned())
    })
    .await;
    let names = c.awareness_names();
    assert!(names.contains(&"ana".to_owned()), "{names:?}");
    assert!(!names.contains(&"mallory-as-ana".to_owned()), "{names:?}");
    // The /live presence names connections by their token's user, whatever a state claims.
    let watcher = env.live(SALES, "li", &li).await;
    let snap = watcher.frames()[0].clone();
    let present: Vec<&str> = snap["present"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["user"].as_str().unwrap())
        .collect();
    assert!(
        present.contains(&"ana") && present.contains(&"li"),
        "{present:?}"
    );
    assert!(!present.contains(&"li-marker"), "{present:?}");
    env.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_foreign_web_page_gets_nowhere() {
    let env = Env::new().await;
    let admin = env.token("boss", &[("acme.*.*", Role::Admin)]);
    env.seed(SALES, &admin, "public", "Win 3 markets").await;
    let editor = env.token("li", &[("acme.sales.*", Role::Editor)]);
    let evil = [("Origin", "https://evil.example")];
    for path in ["sync", "live"] {
        let url = format!("ws://{}/{path}/{SALES}?token={editor}", env.addr());
        let (status, body) = upgrade(&url, &evil).await;
        assert_eq!(
            (status, body["error"]["reason"].as_str()),
            (403, Some("origin")),
            "{path}: {body}"
        );
        let own = format!("http://{}", env.addr());
        let (status, _) = upgrade(&url, &[("Origin", &own)]).await;
        assert_eq!(status, 101, "{path} from the server's own origin");
    }
    // A cross-site form post: text/plain, or JSON from a foreign origin, or with the cookie
    // alone and no Origin — none is applied.
    let command = json!({"type": "objective.create", "title": "Pwned"}).to_string();
    let path = format!("/api/rooms/{SALES}/commands");
    let bearer = format!("Bearer {editor}");
    let cookie = format!("okrhub_token={editor}");
    for (what, headers, status) in [
        (
            "text/plain",
            vec![
                ("Authorization", bearer.as_str()),
                ("Content-Type", "text/plain"),
            ],
            415,
        ),
        (
            "a foreign origin",
            vec![
                ("Authorization", bearer.as_str()),
                ("Content-Type", "application/json"),
                evil[0],
            ],
            403,
        ),
        (
            "the cookie without an Origin",
            vec![
                ("Cookie", cookie.as_str()),
                ("Content-Type", "application/json"),
            ],
            403,
        ),
        (
            "the cookie from a foreign page",
            vec![
                ("Cookie", cookie.as_str()),
                ("Content-Type", "application/json"),
                evil[0],
            ],
            403,
        ),
    ] {
        let (got, body) = env.request("POST", &path, &headers, &command).await;
        assert_eq!(got, status, "{what}: {body}");
    }
    let (_, view) = env.get(&format!("/api/rooms/{SALES}"), &editor).await;
    assert!(!view.to_string().contains("Pwned"), "{view}");
    // The cookie from the server's own page works; it is HttpOnly and SameSite=Strict.
    let own = format!("http://{}", env.addr());
    let (status, _) = env
        .request(
            "POST",
            &path,
            &[
                ("Cookie", &cookie),
                ("Content-Type", "application/json"),
                ("Origin", &own),
            ],
            &command,
        )
        .await;
    assert_eq!(status, 200);
    env.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_inbox_brings_mentions_from_rooms_its_user_may_read_only() {
    let env = Env::new().await;
    let admin = env.token("boss", &[("acme.*.*", Role::Admin)]);
    let (sales_o, _) = env.seed(SALES, &admin, "team", "Win 3 markets").await;
    let (hr_team, _) = env.seed(HR, &admin, "team", "Hire 5 engineers").await;
    let (hr_public, _) = env.seed(HR, &admin, "public", "Publish salary bands").await;
    // li is a member of sales only.
    let li = env.token("li", &[("acme.sales.*", Role::Viewer)]);
    let inbox = LiveClient::connect(
        &live_url(env.addr(), "~inbox", &format!("token={li}")),
        "li",
    )
    .await;
    inbox.wait_for("the hello", |f| !f.is_empty()).await;
    assert_eq!(ty(&inbox.frames()[0]), "inbox", "{}", inbox.frames()[0]);

    let comment = |o: &str, text: &str| json!({"type": "comment.create", "target": {"objective": o}, "text": text, "mentions": ["li"]});
    env.ok(
        HR,
        &admin,
        comment(&hr_team, "@li this one is hidden from you"),
    )
    .await;
    env.ok(SALES, &admin, comment(&sales_o, "@li please update"))
        .await;
    env.ok(HR, &admin, comment(&hr_public, "@li public one"))
        .await;
    inbox
        .wait_for("two mentions", |f| {
            f.iter().filter(|m| ty(m) == "inbox.mention").count() >= 2
        })
        .await;
    let mentions: Vec<Value> = inbox
        .frames()
        .into_iter()
        .filter(|m| ty(m) == "inbox.mention")
        .collect();
    let rooms: Vec<&str> = mentions
        .iter()
        .map(|m| m["room"].as_str().unwrap())
        .collect();
    assert_eq!(rooms, vec![SALES, HR], "{mentions:?}");
    let text = serde_json::to_string(&inbox.frames()).unwrap();
    assert!(!text.contains(&hr_team), "never the hidden one: {text}");
    // A resume from the first one brings the second only.
    let first = mentions[0]["seq"].as_u64().unwrap();
    let again = LiveClient::connect(
        &live_url(env.addr(), "~inbox", &format!("token={li}&since={first}")),
        "li",
    )
    .await;
    again
        .wait_for("the resume", |f| f.iter().any(|m| ty(m) == "inbox.mention"))
        .await;
    let replayed: Vec<Value> = again
        .frames()
        .into_iter()
        .filter(|m| ty(m) == "inbox.mention")
        .collect();
    assert_eq!(replayed.len(), 1, "{replayed:?}");
    assert_eq!(replayed[0]["room"], HR);
    // Another user's inbox has none of li's.
    let wang = env.token("wang", &[("acme.*.*", Role::Admin)]);
    let other = LiveClient::connect(
        &live_url(env.addr(), "~inbox", &format!("token={wang}")),
        "wang",
    )
    .await;
    other.wait_for("the hello", |f| !f.is_empty()).await;
    assert!(other.frames().iter().all(|m| ty(m) != "inbox.mention"));
    env.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn metrics_can_require_their_own_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |a| {
        a.security.metrics_token = Some("m-token".into())
    })
    .await;
    let get = |auth: Option<&'static str>| {
        let addr = server.local_addr();
        async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            let auth = auth
                .map(|a| format!("Authorization: Bearer {a}\r\n"))
                .unwrap_or_default();
            s.write_all(
                format!("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}\r\n")
                    .as_bytes(),
            )
            .await
            .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        }
    };
    assert!(get(None).await.starts_with("HTTP/1.1 401"));
    assert!(get(Some("wrong")).await.starts_with("HTTP/1.1 401"));
    assert!(get(Some("m-token")).await.starts_with("HTTP/1.1 200"));
    // An open server (no keys, loopback) says so in /readyz.
    let ready = common::http_get(server.local_addr(), "/readyz").await;
    assert!(ready.contains("OPEN"), "{ready}");
    server.shutdown().await.unwrap();
}

#[test]
fn okrhub_token_mints_what_the_server_accepts() {
    let out = Command::new(env!("CARGO_BIN_EXE_okrhub"))
        .args([
            "token",
            "--user",
            "ana",
            "--org",
            "acme",
            "--role",
            "editor",
            "--room",
            "acme.sales.*",
            "--ttl",
            "8h",
        ])
        .env("OKRHUB_JWT_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let token = String::from_utf8(out.stdout).unwrap();
    let verifier = okrhub::auth::keys::Verifier::new(okrhub::auth::keys::VerifierConfig {
        secret: Some(SECRET.into()),
        ..Default::default()
    })
    .unwrap()
    .unwrap();
    let v = verifier.verify(token.trim()).unwrap();
    assert_eq!(v.user.as_str(), "ana");
    let room = okrhub::room_id::RoomId::parse(SALES).unwrap();
    assert_eq!(v.role_in(&room), Some(Role::Editor));
    assert!(v.expires_at > now() + 7 * 3600);
}

#[tokio::test]
async fn a_connection_ends_when_its_token_expires() {
    let dir = tempfile::tempdir().unwrap();
    // A short idle period makes the sweeper (which closes expired connections) run every 100 ms.
    let server = start_server(dir.path(), |a| {
        a.security.jwt_secret = Some(SECRET.into());
        a.idle_unload = std::time::Duration::from_millis(400);
    })
    .await;
    let mut c = claims("li", "acme", &[("acme.sales.*", Role::Editor)]);
    c.exp = now() + 2; // valid now; expires within the test
    let token = okrhub::auth::token::mint_hs256(SECRET.as_bytes(), &c).unwrap();
    let y = YClient::synced(&format!("{}?token={token}", sync_url(&server, SALES))).await;
    let live = LiveClient::connect(
        &live_url(server.local_addr(), SALES, &format!("token={token}")),
        "li",
    )
    .await;
    for closed in [y.wait_closed().await, live.wait_closed().await] {
        assert_eq!(closed.code, Some(1008), "{closed:?}");
        assert!(closed.reason.contains("expired"), "{closed:?}");
    }
    server.shutdown().await.unwrap();
}
