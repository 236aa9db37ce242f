//! The quarter's end and the next one (issue 15), on a real server with HS256 tokens: closing a
//! cycle (events, proposed scores, the room read-only for commands and Yjs clients alike),
//! overriding a score (its owner yes, a colleague no), the review as JSON and Markdown with its
//! red flag and what became of it, carry-over into the next quarter's room, and templates.

mod common;

use common::live::{live_url, ty, LiveClient};
use common::tokens::claims;
use common::{start_server, sync_url, YClient};
use okrhub::identity::Role;
use okrhub::server::RunningServer;
use serde_json::{json, Value};
use yrs::{GetString, Map, Out, ReadTxn, Text, Transact, WriteTxn};

const SECRET: &str = "a-test-secret-of-at-least-32-bytes!!";

struct Env {
    server: RunningServer,
    _dir: tempfile::TempDir,
}

struct Answer {
    status: u16,
    body: Value,
    text: String,
    headers: Vec<(String, String)>,
}

impl Env {
    async fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let server = start_server(&dir.path().join("data"), |a| {
            a.security.jwt_secret = Some(SECRET.into());
        })
        .await;
        Env { server, _dir: dir }
    }

    fn addr(&self) -> std::net::SocketAddr {
        self.server.local_addr()
    }

    fn token(&self, user: &str, roles: &[(&str, Role)]) -> String {
        common::tokens::hs256(SECRET, &claims(user, "acme", roles))
    }

    async fn request(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> Answer {
        let auth = format!("Bearer {token}");
        let mut headers = vec![("Authorization", auth.as_str())];
        if body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let a = common::http::request(self.addr(), method, path, &headers, &body).await;
        Answer {
            status: a.status,
            body: a.json(),
            text: a.body.clone(),
            headers: a.headers,
        }
    }

    async fn command(&self, room: &str, token: &str, command: Value) -> Answer {
        self.request(
            "POST",
            &format!("/api/rooms/{room}/commands"),
            token,
            Some(command),
        )
        .await
    }

    async fn ok(&self, room: &str, token: &str, command: Value) -> String {
        let a = self.command(room, token, command.clone()).await;
        assert_eq!(a.status, 200, "{command} → {}", a.text);
        a.body["created_id"].as_str().unwrap_or_default().to_owned()
    }

    async fn refused(&self, room: &str, token: &str, command: Value, status: u16, code: &str) {
        let a = self.command(room, token, command.clone()).await;
        assert_eq!(
            (a.status, a.body["error"]["code"].as_str()),
            (status, Some(code)),
            "{command} → {}",
            a.text
        );
    }

    async fn live(&self, room: &str, user: &str, token: &str) -> LiveClient {
        let c = LiveClient::connect(
            &live_url(self.addr(), room, &format!("token={token}")),
            user,
        )
        .await;
        c.wait_for("the snapshot", |f| !f.is_empty()).await;
        c
    }

    async fn yjs(&self, room: &str, token: &str) -> YClient {
        YClient::synced(&format!("{}?token={token}", sync_url(&self.server, room))).await
    }

    async fn room(&self, room: &str, token: &str) -> Value {
        let a = self
            .request("GET", &format!("/api/rooms/{room}"), token, None)
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        a.body["okr"].clone()
    }
}

fn header<'a>(a: &'a Answer, name: &str) -> Option<&'a str> {
    a.headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn kr_title(doc: &yrs::Doc, kr: &str) -> String {
    let txn = doc.transact();
    let Some(Out::YMap(k)) = txn.get_map("key_results").and_then(|m| m.get(&txn, kr)) else {
        panic!("no KR {kr}")
    };
    let Some(Out::YText(t)) = k.get(&txn, "title") else {
        panic!("no title")
    };
    t.get_string(&txn)
}

const MKT: &str = "acme.mkt.2026-Q3";

#[tokio::test]
async fn a_closed_cycle_is_scored_reviewed_and_read_only() {
    let env = Env::new().await;
    let boss = env.token("boss", &[("acme.*.*", Role::Admin)]);
    let li = env.token("li", &[("acme.mkt.*", Role::Editor)]);
    let wang = env.token("wang", &[("acme.mkt.*", Role::Editor)]);
    env.ok(
        MKT,
        &boss,
        json!({"type": "cycle.set", "starts": "2026-07-01", "ends": "2026-09-30"}),
    )
    .await;
    let o = env
        .ok(
            MKT,
            &boss,
            json!({"type": "objective.create", "title": "引爆新品声量", "owner": "li"}),
        )
        .await;
    let kr = env
        .ok(
            MKT,
            &boss,
            json!({"type": "kr.create", "objective": o, "title": "社群曝光达100万次", "owner": "li",
            "metric": {"kind": "increase", "start": 0, "target": 1000000, "unit": "次"}}),
        )
        .await;
    let checkin = |value: i64, confidence: i64, comment: &str| json!({"type": "checkin.create", "key_result": kr, "value": value, "confidence": confidence, "comment": comment});
    env.ok(MKT, &li, checkin(200_000, 7, "首周不错")).await;
    let flag = env
        .ok(MKT, &li, checkin(250_000, 2, "渠道被封，卡住了"))
        .await;
    env.ok(MKT, &wang, json!({"type": "comment.create", "target": {"key_result": kr}, "text": "换抖音投放？@li", "mentions": ["li"]})).await;
    env.ok(MKT, &li, checkin(820_000, 8, "抖音起量")).await;

    let watcher = env.live(MKT, "boss", &boss).await;
    let witness = env.yjs(MKT, &li).await;
    env.ok(MKT, &boss, json!({"type": "cycle.close"})).await;
    let closed = watcher.next_event("cycle.closed").await;
    assert_eq!(closed["cycle"]["closed_by"], "boss", "{closed}");
    assert_eq!(closed["cycle"]["closed"], true);
    let scored = watcher
        .next_where("the KR's proposed score", |m| {
            ty(m) == "kr.updated" && m["fields"]["score"].is_object()
        })
        .await;
    assert_eq!(
        scored["fields"]["score"],
        json!({"proposed": 0.8, "final": 0.8}),
        "{scored}"
    );

    // Read-only: an editor's command, and a Yjs client's title edit, are refused.
    env.refused(MKT, &li, json!({"type": "kr.create", "objective": o, "title": "KR 2", "metric": {"kind": "percent"}}), 409, "cycle_closed").await;
    env.refused(MKT, &li, checkin(900_000, 9, ""), 409, "cycle_closed")
        .await;
    let typist = env.yjs(MKT, &li).await;
    let kr_id = kr.clone();
    typist.edit(move |_, txn| {
        let keys = txn.get_or_insert_map("key_results");
        let Some(Out::YMap(k)) = keys.get(txn, &kr_id) else {
            panic!()
        };
        let Some(Out::YText(t)) = k.get(txn, "title") else {
            panic!()
        };
        t.insert(txn, 0, "🚀");
    });
    let refused = typist.wait_closed().await;
    assert_eq!(refused.code, Some(1008), "{refused:?}");
    assert!(refused.reason.contains("closed"), "{refused:?}");
    witness.round_trip().await;
    assert_eq!(witness.read(|d| kr_title(d, &kr)), "社群曝光达100万次");

    // The owner overrides with a reason; a colleague may not; an admin may.
    let score = |s: f64| json!({"type": "kr.score", "key_result": kr, "score": s, "reason": "渠道换得晚，目标本可达成"});
    env.refused(MKT, &wang, score(0.5), 403, "forbidden").await;
    env.ok(MKT, &li, score(0.7)).await;
    let ev = watcher.next_event("kr.scored").await;
    assert_eq!(ev["score"], json!({"proposed": 0.8, "final": 0.7}), "{ev}");
    assert_eq!(ev["score_override"]["by"], "li");
    assert_eq!(ev["by"], "li");
    env.ok(MKT, &li, json!({"type": "objective.retro", "objective": o, "worked": "每周check-in", "did_not": "渠道单一", "next": "提前铺抖音"})).await;
    let ev = watcher.next_event("objective.retro").await;
    assert_eq!(ev["retro"]["did_not"], "渠道单一");
    env.ok(
        MKT,
        &wang,
        json!({"type": "comment.create", "target": {"objective": o}, "text": "复盘很到位"}),
    )
    .await;

    let okr = env.room(MKT, &wang).await;
    assert_eq!(okr["cycle"]["closed"], true);
    assert_eq!(okr["objectives"][0]["score"], 0.7);
    assert_eq!(
        okr["key_results"][0]["score"],
        json!({"proposed": 0.8, "final": 0.7})
    );

    // The review: scores, the confidence history, the red flag and what became of it.
    let r = env
        .request("GET", &format!("/api/rooms/{MKT}/review"), &wang, None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    common::live::validate("review", &r.body);
    assert_eq!(r.body["closed"], true);
    assert_eq!(r.body["red_flags"], 1);
    let k = &r.body["objectives"][0]["key_results"][0];
    let history: Vec<i64> = k["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["confidence"].as_i64().unwrap())
        .collect();
    assert_eq!(history, [7, 2, 8]);
    let f = &k["red_flags"][0];
    assert_eq!(
        (
            f["checkin"].as_str(),
            f["confidence"].as_i64(),
            f["previous"].as_i64()
        ),
        (Some(flag.as_str()), Some(2), Some(7))
    );
    assert_eq!(f["why"], "low_and_drop");
    assert_eq!(f["comment"], "渠道被封，卡住了");
    assert_eq!(f["comments"][0]["text"], "换抖音投放？@li");
    assert_eq!(
        f["outcome"],
        json!({"later_checkins": 1, "confidence": 8, "progress": 82.0, "recovered": true})
    );
    assert_eq!(r.body["objectives"][0]["retro"]["next"], "提前铺抖音");

    let md = env
        .request(
            "GET",
            &format!("/api/rooms/{MKT}/review.md?lang=zh"),
            &wang,
            None,
        )
        .await;
    assert_eq!(md.status, 200);
    assert_eq!(
        header(&md, "content-type"),
        Some("text/markdown; charset=utf-8")
    );
    assert!(
        header(&md, "content-disposition")
            .unwrap()
            .starts_with("attachment"),
        "{:?}",
        md.headers
    );
    for want in [
        "# 复盘: acme.mkt.2026-Q3",
        "引爆新品声量",
        "社群曝光达100万次",
        "评分 0.70",
        "| 82% | 8 | 0.8 | 0.7 |",
        "7 → 2 → 8",
        "渠道被封",
        "换抖音投放",
        "已恢复",
        "提前铺抖音",
    ] {
        assert!(md.text.contains(want), "{want:?} not in\n{}", md.text);
    }

    // An admin reopens: commands are taken again.
    env.ok(MKT, &boss, json!({"type": "cycle.reopen"})).await;
    watcher.next_event("cycle.reopened").await;
    env.ok(MKT, &li, checkin(900_000, 9, "")).await;
    watcher.assert_valid();
    env.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn carry_over_starts_the_next_quarter_from_what_was_left() {
    let env = Env::new().await;
    let boss = env.token("boss", &[("acme.*.*", Role::Admin)]);
    let li = env.token("li", &[("acme.eng.*", Role::Editor)]);
    let (q3, q4) = ("acme.eng.2026-Q3", "acme.eng.2026-Q4");
    env.ok(
        q3,
        &boss,
        json!({"type": "cycle.set", "starts": "2026-07-01", "ends": "2026-09-30"}),
    )
    .await;
    let kr = |o: &str, title: &str, metric: Value| json!({"type": "kr.create", "objective": o, "title": title, "metric": metric});
    let stable = env
        .ok(
            q3,
            &boss,
            json!({"type": "objective.create", "title": "打造稳定后台", "visibility": "team"}),
        )
        .await;
    let errors = env
        .ok(
            q3,
            &boss,
            kr(
                &stable,
                "API错误率降至0.1%以下",
                json!({"kind": "decrease", "start": 1.0, "target": 0.1, "unit": "%"}),
            ),
        )
        .await;
    let uptime = env
        .ok(
            q3,
            &boss,
            kr(
                &stable,
                "可用性99.9%",
                json!({"kind": "stay_above", "threshold": 99.9}),
            ),
        )
        .await;
    let shipped = env
        .ok(
            q3,
            &boss,
            json!({"type": "objective.create", "title": "双周迭代上线3次"}),
        )
        .await;
    let releases = env
        .ok(
            q3,
            &boss,
            kr(
                &shipped,
                "上线3次",
                json!({"kind": "increase", "start": 0, "target": 3}),
            ),
        )
        .await;
    let ci = |kr: &str, value: f64| json!({"type": "checkin.create", "key_result": kr, "value": value, "confidence": 7});
    env.ok(q3, &boss, ci(&errors, 0.4)).await;
    env.ok(q3, &boss, ci(&uptime, 99.95)).await;
    env.ok(q3, &boss, ci(&releases, 3.0)).await;
    env.ok(q3, &boss, json!({"type": "cycle.close"})).await;

    let path = format!("/api/rooms/{q3}/carry-over");
    let body = json!({"to": q4, "targets": {errors.clone(): 0.05}});
    let a = env.request("POST", &path, &li, Some(body.clone())).await;
    assert_eq!(
        (a.status, a.body["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{}",
        a.text
    );
    let a = env
        .request(
            "POST",
            &path,
            &boss,
            Some(json!({"to": q4, "targets": {releases.clone(): 5}})),
        )
        .await;
    assert_eq!(
        (a.status, a.body["error"]["field"].as_str()),
        (422, Some(format!("targets.{releases}").as_str())),
        "{}",
        a.text
    );

    let a = env.request("POST", &path, &boss, Some(body.clone())).await;
    assert_eq!(a.status, 200, "{}", a.text);
    common::live::validate("carry-result", &a.body);
    assert_eq!(a.body["cycle_set"], true);
    let carried = a.body["objectives"].as_array().unwrap();
    assert_eq!(
        carried.len(),
        1,
        "the finished objective stays behind: {}",
        a.text
    );
    assert_eq!(carried[0]["from"], stable.as_str());
    let new_kr = carried[0]["key_results"][0]["key_result"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        carried[0]["key_results"].as_array().unwrap().len(),
        1,
        "uptime was met: {}",
        a.text
    );

    let okr = env.room(q4, &boss).await;
    assert_eq!(okr["cycle"]["starts"], "2026-10-01");
    assert_eq!(okr["cycle"]["ends"], "2026-12-31");
    assert_eq!(okr["cycle"]["kind"], "quarter");
    assert_eq!(okr["objectives"].as_array().unwrap().len(), 1);
    let o = &okr["objectives"][0];
    assert_eq!(o["title"], "打造稳定后台");
    assert_eq!(o["visibility"], "team");
    assert_eq!(o["carried_from"], json!({"room": q3, "objective": stable}));
    let k = &okr["key_results"][0];
    assert_eq!(k["id"], new_kr.as_str());
    assert_eq!(k["title"], "API错误率降至0.1%以下");
    assert_eq!(
        k["metric"],
        json!({"kind": "decrease", "start": 0.4, "target": 0.05, "unit": "%"})
    );
    assert_eq!(k["carried_from"], json!({"room": q3, "key_result": errors}));

    // Carrying the same items again skips them and creates nothing.
    let a = env.request("POST", &path, &boss, Some(body)).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["objectives"], json!([]));
    assert_eq!(a.body["cycle_set"], false);
    let skipped = a.body["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 2, "{}", a.text);
    assert!(skipped.iter().all(|s| s["reason"] == "already_carried"));
    let okr = env.room(q4, &boss).await;
    assert_eq!(
        (
            okr["objectives"].as_array().unwrap().len(),
            okr["key_results"].as_array().unwrap().len()
        ),
        (1, 1)
    );

    // Asked for by id, the finished objective goes too (with no unfinished KR, alone).
    let a = env
        .request(
            "POST",
            &path,
            &boss,
            Some(json!({"to": q4, "objectives": [shipped]})),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["objectives"][0]["from"], shipped.as_str());
    assert_eq!(a.body["objectives"][0]["key_results"], json!([]));
    env.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn templates_fill_an_empty_room_in_chinese_and_english() {
    let env = Env::new().await;
    let boss = env.token("boss", &[("acme.*.*", Role::Admin)]);
    let li = env.token("li", &[("acme.*.*", Role::Editor)]);
    let list = env.request("GET", "/api/templates", &li, None).await;
    assert_eq!(list.status, 200, "{}", list.text);
    common::live::validate("template-list", &list.body);
    let names: Vec<&str> = list.body["templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["marketing", "engineering", "retention"]);
    assert!(
        list.text.contains("客服回应时间压缩至2分钟内")
            && list.text.contains("双周迭代上线3次，Bug率低于0.5%")
    );

    let fill = |room: &str, template: &str, lang: Option<&str>| {
        let mut body = json!({"template": template});
        if let Some(lang) = lang {
            body["lang"] = json!(lang);
        }
        (format!("/api/rooms/{room}/from-template"), body)
    };
    let (path, body) = fill("acme.growth.2026-Q3", "retention", None);
    let a = env.request("POST", &path, &li, Some(body.clone())).await;
    assert_eq!(a.status, 403, "an editor: {}", a.text);
    let a = env.request("POST", &path, &boss, Some(body.clone())).await;
    assert_eq!(a.status, 200, "{}", a.text);
    common::live::validate("filled-from-template", &a.body);
    assert_eq!(
        (a.body["lang"].as_str(), a.body["cycle_set"].as_bool()),
        (Some("zh"), Some(true))
    );
    let okr = env.room("acme.growth.2026-Q3", &li).await;
    assert_eq!(okr["cycle"]["starts"], "2026-07-01");
    assert_eq!(okr["objectives"][0]["title"], "Q3让用户留存率突破40%");
    let titles: Vec<&str> = okr["key_results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["title"].as_str().unwrap())
        .collect();
    assert!(
        titles.contains(&"每周新增500活跃用户") && titles.contains(&"客服回应时间压缩至2分钟内"),
        "{titles:?}"
    );
    let support = okr["key_results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["title"] == "客服回应时间压缩至2分钟内")
        .unwrap();
    assert_eq!(
        support["metric"],
        json!({"kind": "decrease", "start": 10.0, "target": 2.0, "unit": "分钟"})
    );
    let a = env.request("POST", &path, &boss, Some(body)).await;
    assert_eq!(
        (a.status, a.body["error"]["code"].as_str()),
        (409, Some("not_empty")),
        "{}",
        a.text
    );

    let (path, body) = fill("acme.eng.2026-Q3", "engineering", Some("en"));
    let a = env.request("POST", &path, &boss, Some(body)).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let okr = env.room("acme.eng.2026-Q3", &li).await;
    assert_eq!(okr["objectives"][0]["title"], "Build a rock-solid backend");
    assert!(okr["key_results"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k["title"] == "Bring the API error rate below 0.1%"));
    let (path, body) = fill("acme.x.2026-Q3", "nope", None);
    assert_eq!(
        env.request("POST", &path, &boss, Some(body)).await.status,
        404
    );
    let (path, body) = fill("acme.x.2026-Q3", "marketing", Some("fr"));
    assert_eq!(
        env.request("POST", &path, &boss, Some(body)).await.status,
        422
    );
    env.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_org_adds_its_own_templates_and_fills_rooms_from_them() {
    let env = Env::new().await;
    let boss = env.token("boss", &[("acme.*.*", Role::Admin)]);
    let li = env.token("li", &[("acme.*.*", Role::Editor)]);
    let wu = common::tokens::hs256(
        SECRET,
        &claims("wu", "globex", &[("globex.*.*", Role::Admin)]),
    );
    let path = "/api/orgs/acme/templates/quarterly";
    let template = json!({
        "title": {"zh": "季度运营", "en": "Quarterly operations"},
        "objectives": [{
            "title": {"zh": "提升客户满意度", "en": "Delight our customers"},
            "key_results": [
                {"title": {"zh": "NPS提升至50", "en": "Raise NPS to 50"},
                 "kind": "increase", "start": 30, "target": 50},
                {"title": {"zh": "工单积压降至20张以下"},
                 "kind": "decrease", "start": 100, "target": 20, "unit": {"zh": "张"}}
            ]
        }]
    });

    // Only the org's admin writes one.
    let a = env.request("PUT", path, &li, Some(template.clone())).await;
    assert_eq!(a.status, 403, "an editor: {}", a.text);
    let a = env.request("PUT", path, &wu, Some(template.clone())).await;
    assert_eq!(a.status, 403, "another org's admin: {}", a.text);
    let a = env
        .request("PUT", path, &boss, Some(template.clone()))
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(
        (a.body["name"].as_str(), a.body["org"].as_bool()),
        (Some("org:quarterly"), Some(true))
    );
    let a = env
        .request("PUT", path, &boss, Some(template.clone()))
        .await;
    assert_eq!(a.status, 200, "a replacement: {}", a.text);

    // Checked whole, as the commands it becomes: the field is named.
    let mut bad = template.clone();
    bad["objectives"][0]["key_results"][1]["target"] = json!(120);
    let a = env.request("PUT", path, &boss, Some(bad)).await;
    assert_eq!(
        (
            a.status,
            a.body["error"]["code"].as_str(),
            a.body["error"]["field"].as_str()
        ),
        (
            422,
            Some("invalid_value"),
            Some("objectives[0].key_results[1].target")
        ),
        "{}",
        a.text
    );
    let mut bad = template.clone();
    bad["objectives"][0]["key_results"][0]["kind"] = json!("vibes");
    let a = env.request("PUT", path, &boss, Some(bad)).await;
    assert_eq!(
        a.body["error"]["field"], "objectives[0].key_results[0].kind",
        "{}",
        a.text
    );
    let mut huge = template.clone();
    huge["title"]["zh"] = json!("长".repeat(40_000));
    let a = env.request("PUT", path, &boss, Some(huge)).await;
    assert_eq!(a.status, 413, "{}", a.text);
    let a = env
        .request(
            "PUT",
            "/api/orgs/acme/templates/no:pe",
            &boss,
            Some(template.clone()),
        )
        .await;
    assert_eq!(a.status, 400, "{}", a.text);

    // Listed with the built-ins for the org's people, and readable by them; not for another org.
    let list = env.request("GET", "/api/templates", &li, None).await;
    assert_eq!(list.status, 200, "{}", list.text);
    common::live::validate("template-list", &list.body);
    let names = |list: &Answer| -> Vec<String> {
        (list.body["templates"].as_array().unwrap().iter())
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        names(&list),
        ["marketing", "engineering", "retention", "org:quarterly"]
    );
    assert_eq!(list.body["templates"][3]["org"], true);
    assert!(list.body["templates"][0].get("org").is_none());
    let a = env.request("GET", path, &li, None).await;
    assert_eq!(
        (a.status, &a.body["title"]["zh"]),
        (200, &json!("季度运营")),
        "{}",
        a.text
    );
    let list = env.request("GET", "/api/templates", &wu, None).await;
    assert_eq!(names(&list), ["marketing", "engineering", "retention"]);
    assert_eq!(env.request("GET", path, &wu, None).await.status, 403);
    let wu_fill = json!({"template": "org:quarterly"});
    let a = env
        .request(
            "POST",
            "/api/rooms/globex.ops.2026-Q3/from-template",
            &wu,
            Some(wu_fill),
        )
        .await;
    assert_eq!(a.status, 404, "another org's template: {}", a.text);

    // An empty room filled from it: the Chinese titles come through.
    let fill = json!({"template": "org:quarterly"});
    let a = env
        .request(
            "POST",
            "/api/rooms/acme.ops.2026-Q3/from-template",
            &li,
            Some(fill.clone()),
        )
        .await;
    assert_eq!(a.status, 403, "an editor: {}", a.text);
    let a = env
        .request(
            "POST",
            "/api/rooms/acme.ops.2026-Q3/from-template",
            &boss,
            Some(fill.clone()),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    common::live::validate("filled-from-template", &a.body);
    assert_eq!(a.body["template"], "org:quarterly");
    let okr = env.room("acme.ops.2026-Q3", &li).await;
    assert_eq!(okr["objectives"][0]["title"], "提升客户满意度");
    let backlog = (okr["key_results"].as_array().unwrap().iter())
        .find(|k| k["title"] == "工单积压降至20张以下")
        .expect("the backlog KR");
    assert_eq!(
        backlog["metric"],
        json!({"kind": "decrease", "start": 100.0, "target": 20.0, "unit": "张"})
    );

    // An org template named like a built-in shadows nothing: it is `org:marketing`.
    let a = env
        .request(
            "PUT",
            "/api/orgs/acme/templates/marketing",
            &boss,
            Some(template.clone()),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let builtin = json!({"template": "marketing"});
    let a = env
        .request(
            "POST",
            "/api/rooms/acme.mkt.2026-Q4/from-template",
            &boss,
            Some(builtin),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let okr = env.room("acme.mkt.2026-Q4", &li).await;
    assert_eq!(okr["objectives"][0]["title"], "引爆新品声量");

    // Deleted: gone from the list, and no room is filled from it any more.
    assert_eq!(env.request("DELETE", path, &li, None).await.status, 403);
    assert_eq!(env.request("DELETE", path, &boss, None).await.status, 204);
    assert_eq!(env.request("DELETE", path, &boss, None).await.status, 404);
    assert_eq!(env.request("GET", path, &boss, None).await.status, 404);
    let list = env.request("GET", "/api/templates", &li, None).await;
    assert_eq!(
        names(&list),
        ["marketing", "engineering", "retention", "org:marketing"]
    );
    let a = env
        .request(
            "POST",
            "/api/rooms/acme.ops2.2026-Q3/from-template",
            &boss,
            Some(fill),
        )
        .await;
    assert_eq!(a.status, 404, "{}", a.text);
    env.server.shutdown().await.unwrap();
}
