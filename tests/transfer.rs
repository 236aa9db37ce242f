//! Import and export while the server runs (issue 15): a real server on port 0 with HS256
//! tokens; the exports of a room with Chinese titles, check-ins and comments read back field by
//! field (JSON and CSV); who gets what; an import refused for one bad row applies nothing;
//! round trips; and `okrhub export --url` against the running binary.
//!
//! A round trip compares [`comparable`]: every stored field of the objectives, KRs, check-ins
//! and comments and the cycle — ids replaced by positions, and without the timestamps
//! (`created_at`, `updated_at`, `at`, `as_of`), the `created_by` / `updated_by` stamps and the
//! check-ins' and comments' authors (an import's are the importer, at the import's time).

mod common;

use std::net::SocketAddr;

use common::http::{request, Answer};
use common::live::{live_url, LiveClient};
use common::process::HubProcess;
use common::start_server;
use common::tokens::{claims, hs256};
use okrhub::identity::Role;
use serde_json::{json, Value};

const SECRET: &str = "a-test-secret-of-at-least-32-bytes!!";
const MKT: &str = "acme.mkt.2030-Q1";
const ANA: &str = "acme.~ana.2030-Q1";

fn token(user: &str, org: &str, roles: &[(&str, Role)]) -> String {
    hs256(SECRET, &claims(user, org, roles))
}

fn admin() -> String {
    token("boss", "acme", &[("acme.*.*", Role::Admin)])
}

async fn get(addr: SocketAddr, path: &str, token: &str) -> Answer {
    let auth = format!("Bearer {token}");
    request(addr, "GET", path, &[("Authorization", &auth)], "").await
}

async fn post(addr: SocketAddr, path: &str, token: &str, content_type: &str, body: &str) -> Answer {
    let auth = format!("Bearer {token}");
    request(
        addr,
        "POST",
        path,
        &[("Authorization", &auth), ("Content-Type", content_type)],
        body,
    )
    .await
}

/// A command; the id it created.
async fn ok(addr: SocketAddr, room: &str, token: &str, command: Value) -> String {
    let a = post(
        addr,
        &format!("/api/rooms/{room}/commands"),
        token,
        "application/json",
        &command.to_string(),
    )
    .await;
    assert_eq!(a.status, 200, "{command} → {}", a.body);
    a.json()["created_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The marketing room of the seed: Chinese titles, a number KR and a milestone KR, check-ins
/// with comments and mentions, a comment and its reply, a team-only objective and an
/// archived KR.
async fn seed(addr: SocketAddr, room: &str, t: &str) {
    ok(
        addr,
        room,
        t,
        json!({"type": "cycle.set", "starts": "2030-01-01", "ends": "2030-03-31"}),
    )
    .await;
    let o = ok(
        addr,
        room,
        t,
        json!({"type": "objective.create", "title": "引爆新品声量",
        "description": "新品上市, \"全渠道\"\n第二行", "owner": "ana", "team": "市场部",
        "commitment": "aspirational"}),
    )
    .await;
    let k = ok(
        addr,
        room,
        t,
        json!({"type": "kr.create", "objective": o,
        "title": "社群曝光达100万次", "owner": "li",
        "metric": {"kind": "increase", "start": 0, "target": 1000000, "unit": "次"},
        "weight": 2, "cadence_days": 14}),
    )
    .await;
    let m = ok(
        addr,
        room,
        t,
        json!({"type": "kr.create", "objective": o,
        "title": "完成3场发布会",
        "metric": {"kind": "milestone", "milestones": [
            {"title": "北京", "weight": 1}, {"title": "上海", "weight": 2}]}}),
    )
    .await;
    let gone = ok(
        addr,
        room,
        t,
        json!({"type": "kr.create", "objective": o,
        "title": "旧指标 5%", "metric": {"kind": "percent"}}),
    )
    .await;
    ok(
        addr,
        room,
        t,
        json!({"type": "checkin.create", "key_result": k, "value": 250000,
        "confidence": 7, "comment": "首周 @li 不错", "mentions": ["li"]}),
    )
    .await;
    ok(
        addr,
        room,
        t,
        json!({"type": "checkin.create", "key_result": k, "value": 400000.5,
        "confidence": 3, "comment": "渠道受阻"}),
    )
    .await;
    ok(
        addr,
        room,
        t,
        json!({"type": "checkin.create", "key_result": m,
        "milestones": [true, false], "confidence": 8}),
    )
    .await;
    let c = ok(
        addr,
        room,
        t,
        json!({"type": "comment.create", "target": {"key_result": k},
        "text": "需要预算, 多少?", "mentions": ["ana"]}),
    )
    .await;
    ok(
        addr,
        room,
        t,
        json!({"type": "comment.create", "target": {"key_result": k},
        "text": "=二十万+1", "reply_to": c}),
    )
    .await;
    let team = ok(
        addr,
        room,
        t,
        json!({"type": "objective.create", "title": "内部: 打造稳定后台",
        "visibility": "team"}),
    )
    .await;
    ok(
        addr,
        room,
        t,
        json!({"type": "kr.create", "objective": team,
        "title": "API错误率降至0.1%以下",
        "metric": {"kind": "stay_below", "threshold": 0.1, "unit": "%"}}),
    )
    .await;
    ok(
        addr,
        room,
        t,
        json!({"type": "comment.create", "target": {"objective": team},
        "text": "内部讨论"}),
    )
    .await;
    ok(
        addr,
        room,
        t,
        json!({"type": "kr.archive", "key_result": gone}),
    )
    .await;
}

/// What a round trip keeps: see the file's doc.
fn comparable(export: &Value) -> Value {
    let pos = |list: &Value, id: &Value| -> Value {
        list.as_array()
            .unwrap()
            .iter()
            .position(|x| &x["id"] == id)
            .map_or(Value::Null, |p| json!(p))
    };
    let (os, ks, cs) = (
        &export["objectives"],
        &export["key_results"],
        &export["comments"],
    );
    let objectives: Vec<Value> = os.as_array().unwrap().iter().map(|o| json!({
        "title": o["title"], "description": o["description"], "owner": o["owner"],
        "team": o["team"], "kind": o["kind"], "visibility": o["visibility"],
        "commitment": o["commitment"], "archived": o["archived"], "progress": o["progress"],
        "key_results": o["key_results"].as_array().unwrap().iter().map(|k| pos(ks, k)).collect::<Vec<_>>(),
    })).collect();
    let key_results: Vec<Value> = ks
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            json!({
                "objective": pos(os, &k["objective"]), "title": k["title"], "owner": k["owner"],
                "metric": k["metric"], "weight": k["weight"], "cadence_days": k["cadence_days"],
                "archived": k["archived"], "current": k["current"], "progress": k["progress"],
                "confidence": k["confidence"],
            })
        })
        .collect();
    let checkins: Vec<Value> = export["checkins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            json!({
                "key_result": pos(ks, &c["key_result"]), "value": c["value"],
                "confidence": c["confidence"], "comment": c["comment"], "mentions": c["mentions"],
                "milestones": c.get("milestones"),
            })
        })
        .collect();
    let comments: Vec<Value> = cs.as_array().unwrap().iter().map(|c| {
        let target = match (&c["target"]["objective"], &c["target"]["key_result"]) {
            (o, Value::Null) => json!({"objective": pos(os, o)}),
            (_, k) => json!({"key_result": pos(ks, k)}),
        };
        json!({"target": target, "text": c["text"], "mentions": c["mentions"],
            "reply_to": if c["reply_to"].is_null() { Value::Null } else { pos(cs, &c["reply_to"]) }})
    }).collect();
    json!({"cycle": export["cycle"], "objectives": objectives, "key_results": key_results,
        "checkins": checkins, "comments": comments})
}

/// A CSV body's records as maps of column → value (the BOM, if any, dropped).
fn csv_rows(body: &str) -> Vec<std::collections::HashMap<String, String>> {
    let body = body.strip_prefix('\u{feff}').unwrap_or(body);
    let mut r = csv::Reader::from_reader(body.as_bytes());
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_owned).collect();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            header
                .iter()
                .cloned()
                .zip(rec.iter().map(str::to_owned))
                .collect()
        })
        .collect()
}

fn num_cell(v: &Value) -> String {
    match v.as_f64() {
        Some(x) if x.fract() == 0.0 => format!("{}", x as i64),
        Some(x) => x.to_string(),
        None => String::new(),
    }
}

fn str_cell(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_rooms_export_in_json_and_csv_reads_back_field_by_field_and_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |a| a.security.jwt_secret = Some(SECRET.into())).await;
    let addr = server.local_addr();
    let boss = admin();
    seed(addr, MKT, &boss).await;

    // JSON: what GET /api/rooms/{room} gives, with format, room and seq.
    let a = get(addr, &format!("/api/rooms/{MKT}/export.json"), &boss).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.header("content-type"), Some("application/json"));
    assert_eq!(
        a.header("content-disposition"),
        Some(format!("attachment; filename=\"{MKT}.json\"").as_str())
    );
    let export = a.json();
    assert_eq!(export["format"], "okrhub.export/1");
    assert_eq!(export["room"], MKT);
    let view = get(addr, &format!("/api/rooms/{MKT}"), &boss).await.json();
    assert_eq!(export["seq"], view["seq"]);
    for list in ["checkins", "comments", "problems", "lint"] {
        assert_eq!(export[list], view["okr"][list], "{list}");
    }
    assert_eq!(export["cycle"], view["okr"]["cycle"]);
    assert_eq!(comparable(&export), comparable(&view["okr"]));
    let o = &export["objectives"][0];
    assert_eq!(o["title"], "引爆新品声量");
    assert_eq!(o["description"], "新品上市, \"全渠道\"\n第二行");
    assert_eq!(
        (o["owner"].as_str(), o["team"].as_str()),
        (Some("ana"), Some("市场部"))
    );
    let k = &export["key_results"][0];
    assert_eq!(k["title"], "社群曝光达100万次");
    assert_eq!(k["metric"]["unit"], "次");
    assert_eq!(k["current"], 400000.5);
    assert_eq!(export["checkins"].as_array().unwrap().len(), 3);
    assert_eq!(export["checkins"][0]["comment"], "首周 @li 不错");
    assert_eq!(
        export["comments"][1]["reply_to"],
        export["comments"][0]["id"]
    );
    assert_eq!(export["comments"][1]["text"], "=二十万+1");

    // CSV: a BOM, the header, then every record; each cell as the JSON has it.
    let a = get(addr, &format!("/api/rooms/{MKT}/export.csv"), &boss).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.header("content-type"),
        Some("text/csv; charset=utf-8; header=present")
    );
    assert_eq!(
        a.header("content-disposition"),
        Some(format!("attachment; filename=\"{MKT}.csv\"").as_str())
    );
    assert!(a.body.starts_with('\u{feff}'), "Excel's BOM");
    assert!(a.body.contains("\r\n"), "RFC 4180 line ends");
    let rows = csv_rows(&a.body);
    let of = |kind: &str| {
        rows.iter()
            .filter(|r| r["record"] == kind)
            .collect::<Vec<_>>()
    };
    let (objectives, krs, checkins, comments) = (
        of("objective"),
        of("key_result"),
        of("checkin"),
        of("comment"),
    );
    assert_eq!(
        (objectives.len(), krs.len(), checkins.len(), comments.len()),
        (2, 4, 3, 3)
    );
    assert!(rows.iter().all(|r| r["room"] == MKT));
    for (row, o) in objectives
        .iter()
        .zip(export["objectives"].as_array().unwrap())
    {
        assert_eq!(row["id"], str_cell(&o["id"]));
        assert_eq!(row["title"], str_cell(&o["title"]));
        assert_eq!(row["description"], str_cell(&o["description"]));
        assert_eq!(row["owner"], str_cell(&o["owner"]));
        assert_eq!(row["team"], str_cell(&o["team"]));
        assert_eq!(row["visibility"], str_cell(&o["visibility"]));
        assert_eq!(row["commitment"], str_cell(&o["commitment"]));
        assert_eq!(row["archived"], o["archived"].to_string());
        assert_eq!(row["progress"], num_cell(&o["progress"]));
        assert_eq!(
            (row["score"].as_str(), row["score_note"].as_str()),
            ("", "")
        );
    }
    for (row, k) in krs.iter().zip(export["key_results"].as_array().unwrap()) {
        assert_eq!(row["id"], str_cell(&k["id"]));
        assert_eq!(row["objective"], str_cell(&k["objective"]));
        assert_eq!(row["title"], str_cell(&k["title"]));
        assert_eq!(row["metric"], str_cell(&k["metric"]["kind"]));
        assert_eq!(row["weight"], num_cell(&k["weight"]));
        assert_eq!(row["cadence_days"], num_cell(&k["cadence_days"]));
        assert_eq!(row["value"], num_cell(&k["current"]));
        assert_eq!(row["archived"], k["archived"].to_string());
        match k["metric"]["kind"].as_str().unwrap() {
            "increase" => {
                assert_eq!(row["start"], num_cell(&k["metric"]["start"]));
                assert_eq!(row["target"], num_cell(&k["metric"]["target"]));
                assert_eq!(row["unit"], "次");
            }
            "stay_below" => assert_eq!(row["threshold"], "0.1"),
            "milestone" => assert_eq!(
                serde_json::from_str::<Value>(&row["milestones"]).unwrap(),
                k["metric"]["milestones"]
            ),
            _ => {}
        }
    }
    for (row, c) in checkins.iter().zip(export["checkins"].as_array().unwrap()) {
        assert_eq!(row["id"], str_cell(&c["id"]));
        assert_eq!(row["key_result"], str_cell(&c["key_result"]));
        assert_eq!(row["value"], num_cell(&c["value"]));
        assert_eq!(row["confidence"], num_cell(&c["confidence"]));
        assert_eq!(row["text"], str_cell(&c["comment"]));
        assert_eq!(row["author"], "boss");
        assert!(
            row["at"].starts_with("20") && row["at"].ends_with('Z'),
            "{}",
            row["at"]
        );
    }
    assert_eq!(checkins[0]["mentions"], "li");
    assert_eq!(checkins[2]["milestones"], "[true,false]");
    for (row, c) in comments.iter().zip(export["comments"].as_array().unwrap()) {
        assert_eq!(row["id"], str_cell(&c["id"]));
        // A text a spreadsheet would evaluate is quoted with a leading ' (and comes back
        // without it: the round trips below).
        let text = str_cell(&c["text"]);
        let shown = if text.starts_with('=') {
            format!("'{text}")
        } else {
            text
        };
        assert_eq!(row["text"], shown);
        assert_eq!(row["reply_to"], str_cell(&c["reply_to"]));
        assert_eq!(row["key_result"], str_cell(&c["target"]["key_result"]));
        assert_eq!(row["objective"], str_cell(&c["target"]["objective"]));
    }
    let plain = get(
        addr,
        &format!("/api/rooms/{MKT}/export.csv?bom=false"),
        &boss,
    )
    .await;
    assert!(plain.body.starts_with("record,room,id,"), "{}", plain.body);

    // Round trips: JSON into an empty room, CSV into another; each exported again.
    let copy = "acme.copy.2030-Q1";
    let a = post(
        addr,
        &format!("/api/rooms/{copy}/import"),
        &boss,
        "application/json",
        &export.to_string(),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let done = a.json();
    assert_eq!(
        (
            &done["objectives"],
            &done["key_results"],
            &done["checkins"],
            &done["comments"],
            &done["cycle_set"]
        ),
        (&json!(2), &json!(4), &json!(3), &json!(3), &json!(true))
    );
    let again = get(addr, &format!("/api/rooms/{copy}/export.json"), &boss)
        .await
        .json();
    assert_eq!(comparable(&again), comparable(&export));
    assert!(again["checkins"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["author"] == "boss"));

    let from_csv = "acme.fromcsv.2030-Q1";
    ok(
        addr,
        from_csv,
        &boss,
        json!({"type": "cycle.set", "starts": "2030-01-01", "ends": "2030-03-31"}),
    )
    .await;
    let a = post(
        addr,
        &format!("/api/rooms/{from_csv}/import"),
        &boss,
        "text/csv",
        &a_csv(addr, &boss).await,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["cycle_set"], false, "the room's own cycle is kept");
    let again = get(addr, &format!("/api/rooms/{from_csv}/export.json"), &boss)
        .await
        .json();
    assert_eq!(comparable(&again), comparable(&export));
}

async fn a_csv(addr: SocketAddr, token: &str) -> String {
    get(addr, &format!("/api/rooms/{MKT}/export.csv"), token)
        .await
        .body
}

#[tokio::test]
async fn each_caller_exports_what_it_may_read_and_only_an_admin_imports() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |a| a.security.jwt_secret = Some(SECRET.into())).await;
    let addr = server.local_addr();
    let boss = admin();
    seed(addr, MKT, &boss).await;
    // Ana's personal room: a public objective and a private one.
    let ana = token("ana", "acme", &[]);
    ok(
        addr,
        ANA,
        &ana,
        json!({"type": "objective.create", "title": "公开目标"}),
    )
    .await;
    ok(
        addr,
        ANA,
        &ana,
        json!({"type": "objective.create", "title": "私人: 换工作",
        "visibility": "private"}),
    )
    .await;

    // A viewer of the room reads the team objective; a colleague without a role does not.
    let viewer = token("vic", "acme", &[(MKT, Role::Viewer)]);
    let v = get(addr, &format!("/api/rooms/{MKT}/export.json"), &viewer).await;
    assert_eq!(v.status, 200, "{}", v.body);
    assert_eq!(v.json()["objectives"].as_array().unwrap().len(), 2);
    let li = token("li", "acme", &[]);
    for path in [
        format!("/api/rooms/{MKT}/export.json"),
        format!("/api/rooms/{MKT}/export.csv"),
    ] {
        let a = get(addr, &path, &li).await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert!(a.body.contains("引爆新品声量"), "{}", a.body);
        assert!(
            !a.body.contains("打造稳定后台") && !a.body.contains("内部讨论"),
            "{}",
            a.body
        );
    }
    // The private objective: to Ana and an admin, never to li.
    for (who, t, sees) in [
        ("li", &li, false),
        ("ana", &ana, true),
        ("boss", &boss, true),
    ] {
        for ext in ["json", "csv"] {
            let a = get(addr, &format!("/api/rooms/{ANA}/export.{ext}"), t).await;
            assert_eq!(a.status, 200, "{who}: {}", a.body);
            assert!(a.body.contains("公开目标"), "{who}");
            assert_eq!(a.body.contains("换工作"), sees, "{who} {ext}: {}", a.body);
        }
    }
    // Another org: refused, and its cycle export lists nothing of acme's.
    let other = token("eve", "evil", &[("evil.*.*", Role::Admin)]);
    let a = get(addr, &format!("/api/rooms/{MKT}/export.json"), &other).await;
    assert_eq!(a.status, 403, "{}", a.body);
    assert_eq!(a.json()["error"]["reason"], "other_org");
    let a = get(addr, "/api/orgs/acme/cycles/2030-Q1/export.json", &other).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["rooms"], json!([]));

    // The cycle: every room the caller may read, with a room column in CSV.
    let a = get(addr, "/api/orgs/acme/cycles/2030-Q1/export.json", &boss).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.header("content-disposition"),
        Some("attachment; filename=\"acme.2030-Q1.json\"")
    );
    let rooms: Vec<String> = a.json()["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["room"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        rooms.contains(&MKT.to_owned()) && rooms.contains(&ANA.to_owned()),
        "{rooms:?}"
    );
    let a = get(addr, "/api/orgs/acme/cycles/2030-Q1/export.csv", &li).await;
    let rows = csv_rows(&a.body);
    let rooms: std::collections::BTreeSet<&str> = rows.iter().map(|r| r["room"].as_str()).collect();
    assert_eq!(
        rooms.into_iter().collect::<Vec<_>>(),
        [MKT],
        "li lists no personal room of Ana's"
    );
    assert!(!a.body.contains("换工作") && !a.body.contains("内部讨论"));

    // Imports: a viewer and an editor are refused, nothing changes.
    let editor = token("ed", "acme", &[(MKT, Role::Editor)]);
    let file = json!({"objectives": [{"id": "o1", "title": "新目标 3个"}]}).to_string();
    for t in [&viewer, &editor, &li] {
        let a = post(
            addr,
            &format!("/api/rooms/{MKT}/import"),
            t,
            "application/json",
            &file,
        )
        .await;
        assert_eq!(a.status, 403, "{}", a.body);
    }
    let a = post(
        addr,
        &format!("/api/rooms/{MKT}/import"),
        &boss,
        "text/plain",
        &file,
    )
    .await;
    assert_eq!(a.status, 415, "{}", a.body);
    let a = get(addr, &format!("/api/rooms/{MKT}/export.json"), &boss)
        .await
        .json();
    assert_eq!(a["objectives"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_csv_with_bad_rows_is_refused_with_their_lines_and_nothing_is_applied() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |a| a.security.jwt_secret = Some(SECRET.into())).await;
    let addr = server.local_addr();
    let boss = admin();
    let room = "acme.ops.2030-Q1";
    let path = format!("/api/rooms/{room}/import");
    let before = get(addr, &format!("/api/rooms/{room}"), &boss).await.json();

    // Line 3's KR has a target that is no number: refused while reading.
    let csv =
        "\u{feff}record,id,objective,title,metric,start,target,unit,value,confidence,text\r\n\
        objective,o1,,Q3让用户留存率突破40%,,,,,,,\r\n\
        key_result,k1,o1,每周新增500活跃用户,increase,0,五百,人,,,\r\n";
    let a = post(addr, &path, &boss, "text/csv", csv).await;
    assert_eq!(a.status, 422, "{}", a.body);
    let body = a.json();
    assert_eq!(body["error"]["reason"], "import_rows");
    assert_eq!(body["rows"][0]["line"], 3, "{body}");
    assert_eq!(body["rows"][0]["field"], "target");

    // Readable, but line 5's check-in has confidence 42 and line 6's comment is about an
    // objective the file does not have: both refused by the commands, with their lines — and
    // the valid objective, KR and check-in before them are not applied either.
    let csv =
        "record,id,objective,key_result,title,metric,start,target,unit,value,confidence,text\r\n\
        objective,o1,,,Q3让用户留存率突破40%,,,,,,,\r\n\
        key_result,k1,o1,,每周新增500活跃用户,increase,0,500,人,,,\r\n\
        checkin,,,k1,,,,,,120,7,\"好, 继续\"\r\n\
        checkin,,,k1,,,,,,200,42,太乐观\r\n\
        comment,,o9,,,,,,,,,没有这个目标\r\n";
    let a = post(addr, &path, &boss, "text/csv", csv).await;
    assert_eq!(a.status, 422, "{}", a.body);
    let rows = a.json()["rows"].clone();
    let lines: Vec<(u64, String)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().unwrap(),
                r["record"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [(5, "checkin".to_owned()), (6, "comment".to_owned())],
        "{rows}"
    );
    assert_eq!(rows[0]["field"], "confidence");
    let after = get(addr, &format!("/api/rooms/{room}"), &boss).await.json();
    assert_eq!(after["seq"], before["seq"], "nothing applied");
    assert_eq!(after["okr"]["objectives"], json!([]));

    // Fixed, it goes in whole, and a /live client of the room sees it as events.
    let watcher =
        LiveClient::connect(&live_url(addr, room, &format!("token={boss}")), "boss").await;
    watcher.wait_for("the snapshot", |f| !f.is_empty()).await;
    let fixed = csv.replace(",42,", ",4,").replace(",o9,", ",o1,");
    let a = post(addr, &path, &boss, "text/csv", &fixed).await;
    assert_eq!(a.status, 200, "{}", a.body);
    watcher
        .wait_for("the imported records as events", |f| {
            let types: Vec<&str> = f.iter().filter_map(|m| m["type"].as_str()).collect();
            [
                "objective.created",
                "kr.created",
                "checkin.created",
                "comment.created",
            ]
            .iter()
            .all(|t| types.contains(t))
        })
        .await;
    let after = get(addr, &format!("/api/rooms/{room}"), &boss).await.json();
    assert_eq!(after["okr"]["checkins"].as_array().unwrap().len(), 2);
    assert_eq!(after["okr"]["comments"][0]["text"], "没有这个目标");
    assert_eq!(after["okr"]["key_results"][0]["confidence"], 4);
}

#[tokio::test]
async fn okrhub_export_url_reads_a_running_server_and_the_locked_store_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let proc = HubProcess::start(&["--data-dir", data.to_str().unwrap(), "--jwt-secret", SECRET]);
    let boss = admin();
    seed(proc.addr, MKT, &boss).await;
    ok(
        proc.addr,
        "acme.ops.2030-Q1",
        &boss,
        json!({"type": "objective.create", "title": "打造稳定后台"}),
    )
    .await;

    // Without --url the store is the server's: the error says what to do.
    let out = dir.path().join("out");
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_okrhub"))
        .args([
            "export",
            "--out",
            out.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("--url"), "{said}");

    // With it: every room, JSON and CSV, as the server's export endpoints give them.
    let url = format!("http://{}", proc.addr);
    let printed = std::process::Command::new(env!("CARGO_BIN_EXE_okrhub"))
        .args([
            "export",
            "--url",
            &url,
            "--csv",
            "--out",
            out.to_str().unwrap(),
        ])
        .env("OKRHUB_TOKEN", &boss)
        .output()
        .unwrap();
    assert!(
        printed.status.success(),
        "{}",
        String::from_utf8_lossy(&printed.stderr)
    );
    assert!(String::from_utf8_lossy(&printed.stdout).contains("exported 2 rooms"));
    let json: Value =
        serde_json::from_slice(&std::fs::read(out.join(format!("{MKT}.json"))).unwrap()).unwrap();
    let live = get(proc.addr, &format!("/api/rooms/{MKT}/export.json"), &boss)
        .await
        .json();
    assert_eq!(comparable(&json), comparable(&live));
    assert_eq!(json["objectives"][0]["title"], "引爆新品声量");
    let csv = std::fs::read_to_string(out.join(format!("{MKT}.csv"))).unwrap();
    assert_eq!(csv_rows(&csv).len(), 12);
    assert!(out.join("acme.ops.2030-Q1.json").exists());

    // A bad token: it fails, saying why.
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_okrhub"))
        .args([
            "export",
            "--url",
            &url,
            "--token",
            "nope",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("401"));
}

#[tokio::test]
async fn the_largest_import_goes_in_whole_and_one_row_more_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), |a| a.security.jwt_secret = Some(SECRET.into())).await;
    let addr = server.local_addr();
    let boss = admin();
    // 125 × (an objective, 3 KRs, 4 check-ins each) = 2000 records.
    let mut csv =
        String::from("record,id,objective,key_result,title,metric,value,confidence,text\r\n");
    for o in 0..125 {
        csv.push_str(&format!("objective,o{o},,,目标 {o},,,,\r\n"));
        for k in 0..3 {
            csv.push_str(&format!(
                "key_result,k{o}_{k},o{o},,指标 {k}: 100%,percent,,,\r\n"
            ));
            for c in 0..4 {
                csv.push_str(&format!("checkin,,,k{o}_{k},,,{},7,进展 {c}\r\n", c * 10));
            }
        }
    }
    let room = "/api/rooms/acme.big.2030-Q1";
    let more = format!("{csv}objective,extra,,,one too many,,,,\r\n");
    let a = post(addr, &format!("{room}/import"), &boss, "text/csv", &more).await;
    assert_eq!(a.status, 422, "{}", a.body);
    assert!(a.json()["rows"][0]["message"]
        .as_str()
        .unwrap()
        .contains("at most 2000"));
    let t = std::time::Instant::now();
    let a = post(addr, &format!("{room}/import"), &boss, "text/csv", &csv).await;
    assert_eq!(a.status, 200, "{}", a.body);
    eprintln!(
        "{} bytes, 2000 records imported in {:?}",
        csv.len(),
        t.elapsed()
    );
    let set = get(addr, room, &boss).await.json();
    assert_eq!(set["okr"]["checkins"].as_array().unwrap().len(), 1500);
    assert_eq!(set["okr"]["key_results"][0]["current"], 30.0);
    // Its JSON export (every derived field, pretty-printed: over --max-body, within the 4×
    // an import may take) goes into another room whole.
    let export = get(addr, &format!("{room}/export.json"), &boss).await.body;
    assert!(
        export.len() > 256 * 1024 && export.len() < 1024 * 1024,
        "{}",
        export.len()
    );
    let copy = "/api/rooms/acme.big2.2030-Q1";
    let a = post(
        addr,
        &format!("{copy}/import"),
        &boss,
        "application/json",
        &export,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let again = get(addr, &format!("{copy}/export.json"), &boss)
        .await
        .json();
    assert_eq!(
        comparable(&again),
        comparable(&serde_json::from_str(&export).unwrap())
    );
    // Over 1 MiB: refused at the edge, before it is read; a command body keeps its limit.
    let huge = format!("{export}{}", " ".repeat(1024 * 1024));
    let a = post(
        addr,
        &format!("{copy}/import"),
        &boss,
        "application/json",
        &huge,
    )
    .await;
    assert_eq!(a.status, 413, "{}", a.body);
    assert_eq!(a.json()["error"]["reason"], "body_too_large");
    let a = post(
        addr,
        &format!("{copy}/commands"),
        &boss,
        "application/json",
        &export,
    )
    .await;
    assert_eq!(a.status, 413, "{}", a.body);
}
