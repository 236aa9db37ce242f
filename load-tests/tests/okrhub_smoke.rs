//! The generator against a real okrhub started in-process: a tiny scenario must deliver edits
//! and converge.

use std::time::Duration;

use okrhub::config::ServeArgs;
use okrhub_load::{ApplyMode, Config, EditKind, Target};

async fn tiny(kind: EditKind, preload: usize, apply: ApplyMode) {
    let dir = tempfile::tempdir().unwrap();
    let server = okrhub::server::start(ServeArgs::for_data_dir(dir.path()))
        .await
        .expect("server starts");
    let cfg = Config {
        target: Target::Base(format!("ws://{}/sync", server.local_addr())),
        scenario: "smoke".into(),
        label: "okrhub-test".into(),
        rooms: 2,
        clients: 3,
        editors: 1,
        rate: 20.0,
        duration: Duration::from_secs(1),
        warmup: Duration::from_millis(200),
        edit_kind: kind,
        apply,
        preload_entries: preload,
        // The server runs in this process: CPU and RSS are this process's, but the code path
        // is exercised.
        server_pids: vec![std::process::id()],
        run_id: format!("smoke-{}-{}", kind.as_str(), apply.as_str()),
        quiesce_timeout: Duration::from_secs(10),
        ..Config::default()
    };
    let report = okrhub_load::run(&cfg).await.expect("run completes");
    println!("{}", report.summary());
    assert!(report.main.deliveries > 0, "no deliveries");
    assert!(report.main.edits_sent > 0);
    assert_eq!(report.main.incomplete_edits, 0);
    assert_eq!(
        report.main.timed_deliveries, report.main.expected_deliveries,
        "every timed edit reached both other clients"
    );
    assert!(report.main.delivery_p50_us > 0);
    assert!(report.main.complete_p99_us >= report.main.delivery_p50_us);
    assert!(report.main.server_cpu_s.is_some());
    assert!(report.main.server_cpu_clock.is_some());
    match apply {
        ApplyMode::Immediate => assert_eq!(report.main.deferred_applied, None),
        ApplyMode::Deferred => {
            // Every delivery was kept and integrated after the window, none needed the fallback.
            assert!(report.main.deferred_applied.unwrap() >= report.main.deliveries);
            assert_eq!(report.main.apply_fallback_frames, Some(0));
        }
    }
    assert_eq!(report.connections, 6);
    assert_eq!(report.client_errors, 0, "{:?}", report.first_error);
    assert!(report.converged);
    if preload > 0 {
        assert_eq!(report.preload_seen, Some(true));
    }
    // The JSON line holds the main step under "main" (load-tests/summarize.py reads it there).
    let json: serde_json::Value = serde_json::from_str(&report.json()).unwrap();
    assert!(json["main"]["delivered_per_s"].as_f64().unwrap() > 0.0);
    assert!(json["main"]["delivery_p99_us"].as_u64().is_some());
    assert_eq!(json["converged"], true);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn map_edits_are_delivered_and_rooms_converge() {
    tiny(EditKind::Map, 0, ApplyMode::Immediate).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_edits_with_a_preload() {
    tiny(EditKind::Text, 500, ApplyMode::Immediate).await;
}

/// Deferred apply: deliveries timed from the update bytes, docs integrated after the window,
/// and still converged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deferred_apply_times_every_delivery_and_converges() {
    tiny(EditKind::Map, 0, ApplyMode::Deferred).await;
    tiny(EditKind::Text, 500, ApplyMode::Deferred).await;
}

#[tokio::test]
async fn refuses_non_loopback_hosts() {
    let cfg = Config {
        target: Target::Base("ws://192.0.2.1:4680/sync".into()),
        ..Config::default()
    };
    let err = okrhub_load::run(&cfg).await.unwrap_err().to_string();
    assert!(err.contains("refusing"), "{err}");
    let cfg = Config {
        create_doc_url: Some("http://example.com/doc/new".into()),
        target: Target::Base("ws://127.0.0.1:9/sync".into()),
        ..Config::default()
    };
    let err = okrhub_load::run(&cfg).await.unwrap_err().to_string();
    assert!(err.contains("refusing"), "{err}");
}

/// The y-sweet shape: a `{room}` URL template and a POST per room before connecting. A fake
/// `/doc/new` endpoint records the POSTs; the WebSockets go to okrhub through the template.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_template_and_create_doc() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http_addr = listener.local_addr().unwrap();
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = bodies.clone();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let mut got = Vec::new();
            // Read until the JSON body is complete (it ends with `}`).
            while !got.ends_with(b"}") {
                let n = s.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            let req = String::from_utf8_lossy(&got).into_owned();
            assert!(req.starts_with("POST /doc/new HTTP/1.1\r\n"), "{req}");
            seen.lock()
                .unwrap()
                .push(req.split("\r\n\r\n").nth(1).unwrap_or("").to_owned());
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
                .await
                .unwrap();
        }
    });

    let dir = tempfile::tempdir().unwrap();
    let server = okrhub::server::start(ServeArgs::for_data_dir(dir.path()))
        .await
        .expect("server starts");
    let cfg = Config {
        target: Target::Template(format!("ws://{}/sync/{{room}}", server.local_addr())),
        create_doc_url: Some(format!("http://{http_addr}/doc/new")),
        rooms: 2,
        clients: 2,
        editors: 2,
        rate: 20.0,
        duration: Duration::from_millis(500),
        warmup: Duration::ZERO,
        run_id: "template".into(),
        ..Config::default()
    };
    let report = okrhub_load::run(&cfg).await.expect("run completes");
    assert!(report.main.deliveries > 0);
    assert!(report.converged);
    let mut bodies = bodies.lock().unwrap().clone();
    bodies.sort();
    assert_eq!(
        bodies,
        vec![
            r#"{"docId":"load.r0.template"}"#.to_string(),
            r#"{"docId":"load.r1.template"}"#.to_string()
        ]
    );
    server.shutdown().await.unwrap();
}
