//! The OKR scenarios against a real okrhub started in-process: a seeded room is read by the
//! server without problems, typing into KR titles (projected, `okr-title`) and into their
//! unprojected drafts (`draft-title`) delivers and converges, and room screens on `/live` get
//! the snapshot and the events.

use std::net::SocketAddr;
use std::time::Duration;

use okrhub::config::ServeArgs;
use okrhub::server::RunningServer;
use okrhub_load::live::live_url;
use okrhub_load::seed::{self, SeedSpec};
use okrhub_load::{ApplyMode, Config, EditKind, Report, Target};
use serde_json::Value;

async fn start() -> (tempfile::TempDir, RunningServer) {
    let dir = tempfile::tempdir().unwrap();
    let server = okrhub::server::start(ServeArgs::for_data_dir(dir.path()))
        .await
        .expect("server starts");
    (dir, server)
}

/// `GET /api/rooms/{room}`.
async fn room_view(addr: SocketAddr, room: &str) -> Value {
    okrhub_load::http::get_json(&format!("http://{addr}/api/rooms/{room}"))
        .await
        .expect("room view")
}

fn len(v: &Value) -> usize {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .len()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The title of KR `id` in a room view.
fn kr_title(view: &Value, id: &str) -> String {
    view["okr"]["key_results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id)
        .and_then(|k| k["title"].as_str())
        .unwrap_or_else(|| panic!("no KR {id} in the view"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeded_room_is_read_by_the_server_without_problems() {
    let (_dir, server) = start().await;
    let addr = server.local_addr();
    let room = "load.seed.2026-Q4";
    let spec = SeedSpec::default();
    let seeded = seed::seed_room(&format!("ws://{addr}/sync/{room}"), &spec, 0, now_ms())
        .await
        .expect("seeded");
    assert!(seeded.doc_bytes > 50_000, "{} B", seeded.doc_bytes);
    let view = room_view(addr, room).await;
    let okr = &view["okr"];
    assert_eq!(
        okr["problems"],
        serde_json::json!([]),
        "the server skipped or ignored part of the seed"
    );
    assert_eq!(okr["cycle"]["id"], "2026-Q4");
    assert_eq!(okr["cycle"]["starts"], "2026-10-01");
    assert_eq!(okr["cycle"]["ends"], "2026-12-31");
    assert_eq!(len(&okr["objectives"]), 9);
    assert_eq!(len(&okr["key_results"]), 36);
    assert_eq!(len(&okr["checkins"]), 300);
    assert_eq!(len(&okr["comments"]), 60);
    assert_eq!(kr_title(&view, "kr-01"), "新用户激活率达到60%");
    // Every objective has its four KRs.
    for o in okr["objectives"].as_array().unwrap() {
        assert_eq!(len(&o["key_results"]), 4, "{}", o["id"]);
    }
    server.shutdown().await.unwrap();
}

/// A tiny run of `kind` on seeded rooms (40 check-ins each), with `live` screens per room.
async fn tiny(addr: SocketAddr, kind: EditKind, apply: ApplyMode, live: usize) -> Report {
    let cfg = Config {
        target: Target::Base(format!("ws://{addr}/sync")),
        scenario: "okr-smoke".into(),
        label: "okrhub-test".into(),
        rooms: 2,
        clients: 3,
        editors: 2,
        rate: 10.0,
        duration: Duration::from_secs(1),
        warmup: Duration::from_millis(200),
        edit_kind: kind,
        apply,
        seed: Some(SeedSpec::new(Some(40), None)),
        live_subscribers: live,
        server_pids: vec![std::process::id()],
        run_id: format!("okr-{}-{}-{live}", kind.as_str(), apply.as_str()),
        quiesce_timeout: Duration::from_secs(10),
        ..Config::default()
    };
    let report = okrhub_load::run(&cfg).await.expect("run completes");
    println!("{}", report.summary());
    assert!(report.main.edits_sent > 0);
    assert!(report.main.deliveries > 0, "no deliveries");
    assert_eq!(report.main.incomplete_edits, 0);
    assert_eq!(
        report.main.timed_deliveries, report.main.expected_deliveries,
        "every timed edit reached both other clients"
    );
    assert_eq!(report.connections, 6, "screens are not sync connections");
    assert_eq!(report.client_errors, 0, "{:?}", report.first_error);
    assert!(report.converged);
    let s = report.seed.as_ref().expect("a seed report");
    assert!(s.seen && s.checkins == 40 && s.comments == 8);
    assert_eq!(report.edit_kind, kind.as_str());
    assert!(report
        .table_row()
        .contains(&format!("okr-smoke ({})", kind.as_str())));
    if apply == ApplyMode::Deferred {
        // The cheap path reads tokens typed into nested titles: no fallback.
        assert!(report.main.deferred_applied.unwrap() >= report.main.deliveries);
        assert_eq!(report.main.apply_fallback_frames, Some(0));
    }
    let json: Value = serde_json::from_str(&report.json()).unwrap();
    assert_eq!(json["seed"]["checkins"], 40);
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okr_title_is_projected_and_draft_title_is_not() {
    let (_dir, server) = start().await;
    let addr = server.local_addr();
    for kind in [EditKind::OkrTitle, EditKind::DraftTitle] {
        let report = tiny(addr, kind, ApplyMode::Immediate, 0).await;
        assert!(report.live.is_none());
        // Editor 0 typed into kr-01: the server's model shows it only for okr-title.
        let view = room_view(addr, &format!("load.r0.{}", report.run_id)).await;
        let title = kr_title(&view, "kr-01");
        assert!(title.starts_with("新用户激活率达到60%"), "{title}");
        assert_eq!(
            title.contains(";"),
            kind == EditKind::OkrTitle,
            "{kind:?}: {title}"
        );
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn title_kinds_with_deferred_apply() {
    let (_dir, server) = start().await;
    for kind in [EditKind::OkrTitle, EditKind::DraftTitle] {
        tiny(server.local_addr(), kind, ApplyMode::Deferred, 0).await;
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_screens_get_the_snapshot_and_the_events() {
    let (_dir, server) = start().await;
    let addr = server.local_addr();
    let report = tiny(addr, EditKind::OkrTitle, ApplyMode::Immediate, 1).await;
    let live = report.live.as_ref().expect("a live report");
    assert_eq!((live.subscribers_per_room, live.connections), (1, 2));
    assert_eq!(live.errors, 0);
    assert!(live.snapshot_bytes_mean > 10_000, "{live:?}");
    assert_eq!(
        live.snapshot_bytes_total / 2,
        live.snapshot_bytes_mean,
        "{live:?}"
    );
    assert!(
        report.main.live_events.unwrap() > 0,
        "title edits make events"
    );
    assert!(report.main.live_bytes.unwrap() > 0);
    assert!(live.frames >= report.main.live_frames.unwrap());
    assert!(live.events >= report.main.live_events.unwrap());
    let json: Value = serde_json::from_str(&report.json()).unwrap();
    assert_eq!(json["live"]["connections"], 2);
    assert!(json["main"]["live_frames"].as_u64().unwrap() > 0);

    // The baseline with a screen: still converges, the screen still reads every frame.
    let report = tiny(addr, EditKind::DraftTitle, ApplyMode::Immediate, 1).await;
    assert_eq!(report.live.as_ref().unwrap().errors, 0);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_screen_the_server_refuses_fails_the_set_up() {
    let (_dir, server) = start().await;
    let addr = server.local_addr();
    // An invalid room id: the server closes the /live socket with a reason.
    let url = live_url(&format!("ws://{addr}/sync/not-a-room"), "screen0").unwrap();
    let spec = okrhub_load::live::LiveSpec { room: 0, url };
    let (_ctl_tx, ctl) = tokio::sync::watch::channel(okrhub_load::client::Control::Idle);
    let (joined_tx, mut joined) = tokio::sync::mpsc::unbounded_channel();
    let outcome = tokio::time::timeout(
        Duration::from_secs(20),
        okrhub_load::live::run_live(
            spec,
            Default::default(),
            std::sync::Arc::new(tokio::sync::Semaphore::new(1)),
            ctl,
            joined_tx,
        ),
    )
    .await
    .expect("ends by itself");
    let err = outcome.error.expect("an error");
    assert!(err.contains("closed"), "{err}");
    assert!(joined.recv().await.unwrap().is_err());
    server.shutdown().await.unwrap();
}
