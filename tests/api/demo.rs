//! `erpd serve --demo`: the demo tenant is filled with data in every state, its books
//! balance, and the curl lines it prints work with the token it prints.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use crate::helpers::*;

/// The server process, killed when the test ends (even by a panic).
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `serve --demo`, collect stdout up to the token (its last line).
fn start_demo(data_dir: &std::path::Path) -> (Server, Vec<String>) {
    let child = Command::new(erpd_bin())
        .arg("--data-dir")
        .arg(data_dir)
        .args(["serve", "--listen", "127.0.0.1:0", "--demo"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning erpd serve --demo");
    let mut server = Server(child);
    let stdout = server.0.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) {
        let done = line.starts_with("erpdt_demo_");
        lines.push(line);
        if done {
            return (server, lines);
        }
    }
    drop(server);
    panic!("no demo token printed: {lines:?}");
}

#[tokio::test]
async fn serve_demo_seeds_every_state_and_prints_working_curl_lines() {
    let dir = tempfile::tempdir().unwrap();
    let (first, lines) = start_demo(dir.path());
    let token = lines.last().unwrap().clone();
    let curls: Vec<&String> = lines
        .iter()
        .filter(|l| l.trim_start().starts_with("curl "))
        .collect();
    assert!(curls.len() >= 3, "{lines:?}");
    let client = reqwest::Client::new();
    let mut confirmed = false;
    for line in &curls {
        let url = line
            .split_whitespace()
            .find(|w| w.trim_matches('\'').starts_with("http://127.0.0.1:"))
            .expect("a URL")
            .trim_matches('\'');
        let method = if line.contains("-X POST") {
            Method::POST
        } else {
            Method::GET
        };
        let resp = client
            .request(method.clone(), url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap();
        assert_eq!(status, 200, "{line}: {body}");
        if method == Method::POST {
            assert_eq!(body["status"], "confirmed", "{body}");
            confirmed = true;
        }
        if url.contains("trial-balance") {
            assert_eq!(body["total_debit"], body["total_credit"], "{body}");
        }
    }
    assert!(confirmed, "a curl line confirms an order");
    // Orders and invoices in every state.
    let base = curls[0]
        .split_whitespace()
        .last()
        .unwrap()
        .trim_end_matches("/sales-orders")
        .to_owned();
    let get = |path: String| {
        let (client, token) = (client.clone(), token.clone());
        async move {
            let r = client.get(path).bearer_auth(token).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    let states = |v: &Value| -> std::collections::BTreeSet<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["status"].as_str().unwrap().to_owned())
            .collect()
    };
    let so = states(&get(format!("{base}/sales-orders?limit=100")).await);
    for s in ["draft", "confirmed", "delivered", "invoiced", "cancelled"] {
        assert!(so.contains(s), "no {s} sales order: {so:?}");
    }
    let po = states(&get(format!("{base}/purchase-orders?limit=100")).await);
    for s in ["draft", "confirmed", "received", "billed"] {
        assert!(po.contains(s), "no {s} purchase order: {po:?}");
    }
    let inv = states(&get(format!("{base}/invoices?limit=100")).await);
    for s in ["posted", "paid", "cancelled"] {
        assert!(inv.contains(s), "no {s} invoice: {inv:?}");
    }
    let stock = get(format!("{base}/stock")).await;
    assert!(stock["items"].as_array().unwrap().len() >= 5, "{stock}");
    drop(first);

    // A second start keeps the data and prints a fresh token that works.
    let (_again, lines) = start_demo(dir.path());
    let token2 = lines.last().unwrap().clone();
    assert_ne!(token2, token);
    let url = curls[0].split_whitespace().last().unwrap();
    let port_line = lines
        .iter()
        .find(|l| l.starts_with("erpd listening on "))
        .unwrap();
    let new_base = port_line.trim_start_matches("erpd listening on ").trim();
    let path = url.split("/v1/").nth(1).unwrap();
    let r = client
        .get(format!("{new_base}/v1/{path}"))
        .bearer_auth(&token2)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let orders: Value = r.json().await.unwrap();
    assert!(orders["items"].as_array().unwrap().len() >= 9, "{orders}");
}
