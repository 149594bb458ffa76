//! The server process: crashes (kill -9), graceful shutdown (SIGTERM), and CLI commands
//! that must refuse while it runs.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::future::join_all;
use reqwest::Method;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

/// A pseudo-random number in `lo..=hi` (no rand crate needed).
fn random_between(lo: u64, hi: u64) -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(lo ^ hi);
    lo + h.finish() % (hi - lo + 1)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kill_9_during_tenant_creation_leaves_each_tenant_complete_or_absent() {
    let mut app = spawn_app(&[]);
    let ids: Vec<String> = (0..80).map(|i| format!("crash-{i:02}")).collect();
    let acknowledged_so_far = Arc::new(AtomicUsize::new(0));
    let creations: Vec<_> = ids
        .iter()
        .map(|id| {
            let (api, pt, body) = (app.clone_api(), app.platform_token.clone(), tenant_body(id));
            let acks = acknowledged_so_far.clone();
            tokio::spawn(async move {
                let req = api
                    .request(Method::POST, "/v1/tenants")
                    .bearer_auth(&pt)
                    .json(&body);
                let status = api.try_send(req).await.ok().map(|r| r.status);
                if status == Some(201) {
                    acks.fetch_add(1, Ordering::SeqCst);
                }
                status
            })
        })
        .collect();

    // Crash once a few creations have been acknowledged, while the rest are in flight, so
    // both "every 201 survives" and "a crash mid-creation leaves nothing half-made" are
    // exercised in every run.
    let target = random_between(3, 12) as usize;
    let started = std::time::Instant::now();
    while acknowledged_so_far.load(Ordering::SeqCst) < target
        && started.elapsed() < Duration::from_secs(20)
    {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let delay = started.elapsed().as_millis();
    app.kill();
    let partials_at_crash = file_names(&app.tenants_dir())
        .iter()
        .filter(|n| n.contains(".partial"))
        .count();
    let answered: Vec<Option<u16>> = join_all(creations)
        .await
        .into_iter()
        .map(|r| r.expect("creation task"))
        .collect();
    app.restart();

    let mut present = 0;
    for (id, answer) in ids.iter().zip(&answered) {
        let resp = app
            .get(&format!("/v1/tenants/{id}"), &app.platform_token)
            .await;
        let file = app.tenant_file(id);
        match resp.status {
            200 => {
                present += 1;
                assert!(file.is_file(), "{id} is listed, so its file exists");
                let conn = open_ro(&file);
                let integrity: String = conn
                    .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                    .unwrap();
                assert_eq!(integrity, "ok", "{id}");
                let owner: String = conn
                    .query_row("SELECT tenant_id FROM tenant", [], |r| r.get(0))
                    .unwrap_or_else(|e| panic!("{id} has no identity row: {e}"));
                assert_eq!(&owner, id);
            }
            404 => assert!(!file.exists(), "{id} is unknown, so it has no file"),
            other => panic!("{id}: unexpected {other}: {}", resp.text),
        }
        if *answer == Some(201) {
            assert_eq!(
                resp.status, 200,
                "{id} was acknowledged with 201, so it survives"
            );
        }
    }
    let partials: Vec<String> = file_names(&app.tenants_dir())
        .into_iter()
        .filter(|n| n.contains(".partial"))
        .collect();
    assert!(partials.is_empty(), "leftover partial files: {partials:?}");
    let acknowledged = answered.iter().filter(|a| **a == Some(201)).count();
    eprintln!(
        "kill -9 after {delay} ms: {acknowledged} acknowledged, {present} present, \
         {partials_at_crash} partial files at the crash"
    );
    assert!(
        acknowledged >= target,
        "the crash came after {target} acknowledged creations"
    );
    assert!(
        acknowledged < ids.len(),
        "some creations were still in flight at the crash"
    );
}

/// Send a PATCH's head with `Expect: 100-continue` and wait for `100 Continue`: from then
/// on the request is in the handler, waiting for its body.
async fn patch_waiting_for_body(app: &TestApp, tenant: &str, body_len: usize) -> TcpStream {
    let addr = app.addr();
    let mut stream = TcpStream::connect(addr).await.expect("connecting");
    let head = format!(
        "PATCH /v1/tenants/{tenant} HTTP/1.1\r\nHost: {addr}\r\n\
         Authorization: Bearer {}\r\nContent-Type: application/json\r\n\
         Content-Length: {body_len}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        app.platform_token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 256];
    let interim = tokio::time::timeout(Duration::from_secs(10), async {
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut chunk).await.expect("reading");
            assert!(n > 0, "connection closed before 100 Continue");
            got.extend_from_slice(&chunk[..n]);
        }
    })
    .await;
    assert!(interim.is_ok(), "no 100 Continue within 10 s");
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("HTTP/1.1 100"),
        "expected 100 Continue, got {text:?}"
    );
    stream
}

fn wal_sizes(app: &TestApp) -> Vec<(String, u64)> {
    file_names(&app.tenants_dir())
        .into_iter()
        .filter(|n| n.ends_with("-wal"))
        .map(|n| {
            let len = std::fs::metadata(app.tenants_dir().join(&n)).map_or(0, |m| m.len());
            (n, len)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_in_flight_requests_and_checkpoints_tenant_files() {
    // Tenants whose first open migrates them, so their WAL holds unmerged pages.
    let mut app = spawn_app(&[]);
    let ids = ["busy-1", "busy-2", "busy-3"];
    let mut tokens = Vec::new();
    for id in ids {
        tokens.push(app.create_tenant_ok(id).await);
    }
    app.kill();
    for id in ids {
        downgrade_one_migration(&app.tenant_file(id));
    }
    app.restart();
    for (id, token) in ids.iter().zip(&tokens) {
        assert_eq!(app.me(id, token).await.status, 200);
    }
    assert!(
        wal_sizes(&app).iter().any(|(_, len)| *len > 0),
        "precondition: open tenants have WAL content: {:?}",
        wal_sizes(&app)
    );
    let bodies: Vec<String> = ids
        .iter()
        .map(|id| json!({ "name": format!("Renamed {id}") }).to_string())
        .collect();
    let mut in_flight = Vec::new();
    for (id, body) in ids.iter().zip(&bodies) {
        in_flight.push(patch_waiting_for_body(&app, id, body.len()).await);
    }

    app.send_sigterm();
    let addr = app.addr().to_owned();
    let stopped_listening = poll_until(Duration::from_secs(5), || async {
        TcpStream::connect(&addr).await.is_err().then_some(())
    })
    .await;
    assert!(
        stopped_listening.is_some(),
        "the server stops accepting after SIGTERM"
    );
    for ((stream, body), id) in in_flight.iter_mut().zip(&bodies).zip(ids) {
        stream.write_all(body.as_bytes()).await.unwrap();
        let resp = read_raw_response(stream).await;
        assert_eq!(resp.status, 200, "{id}: {resp:?}");
        let t: serde_json::Value = serde_json::from_str(&resp.body).unwrap();
        assert_eq!(t["name"], format!("Renamed {id}"));
    }

    let exit = app.wait_for_exit(Duration::from_secs(10));
    let exit = exit.expect("the server exits within 10 s of SIGTERM");
    assert!(
        exit.success(),
        "exit status {exit:?}; stderr:\n{}",
        app.stderr()
    );
    let wal = wal_sizes(&app);
    assert!(
        wal.iter().all(|(_, len)| *len == 0),
        "tenant WALs were checkpointed at shutdown: {wal:?}"
    );
}

#[tokio::test]
async fn erpd_tenant_delete_is_refused_while_the_server_runs() {
    let app = spawn_app(&[]);
    let token = app.create_tenant_ok("acme").await;

    let out = app.cli(&["tenant", "delete", "acme"]);

    assert!(!out.status.success(), "{out:?}");
    assert!(
        out.stderr.contains("serving"),
        "the message says a server is serving the data dir: {out:?}"
    );
    assert!(app.tenant_file("acme").is_file(), "the file did not move");
    assert_eq!(app.me("acme", &token).await.status, 200);
}
