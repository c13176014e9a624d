//! Webhook deliveries survive the process: the real `vidi serve`, killed (SIGKILL) while its
//! deliveries wait for a retry and started again, loses nothing and sends nothing twice.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::common::process::Install;
use crate::common::receiver::*;
use crate::common::*;
use serde_json::{Value, json};
use vidi_core::event::Encoding;
use vidi_core::id::VideoId;
use vidi_core::model::Quality;
use vidi_core::time::now_ns;

backend_test!(a_server_killed_mid_retry_loses_nothing_and_sends_nothing_twice);
async fn a_server_killed_mid_retry_loses_nothing_and_sends_nothing_twice(b: Backend) {
    vidi::install_crypto();
    // Each delivery fails twice, then is answered.
    let rx = Receiver::start(Arc::new(|n, _| Answer::status(if n < 2 { 500 } else { 200 }))).await;
    let dir = tempfile::tempdir().unwrap();
    let install = Install::new(
        &b,
        dir.path(),
        &[("VIDI_OUTBOUND_ALLOW_PRIVATE", "true"), ("VIDI_WEBHOOK_RETRY_BASE_MS", "4000")],
    );
    let proc = install.serve().await;
    let r = install
        .http
        .post(format!("{}/webhooks", install.url))
        .basic_auth(&install.key, Some(""))
        .json(&json!({ "events": ["video.encoding.quality.completed"], "url": rx.url }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let hook = r.json::<Value>().await.unwrap()["webhookId"].as_str().unwrap().to_string();

    // Three events, as three encodes would record them, written from this process.
    let cfg = vidi::Config::load_from(None, &install.env).unwrap();
    let repo = vidi::open_repo(&cfg).await.unwrap();
    let ws = repo.default_workspace().await.unwrap().unwrap();
    for _ in 0..3 {
        let id = VideoId::parse(&install.create_video("restart").await).unwrap();
        let q = Quality { kind: "hls".into(), quality: "240p".into(), status: "waiting".into() };
        repo.plan_qualities(&ws, &id, &[q]).await.unwrap();
        assert!(repo.complete_quality(&ws, &id, Encoding::Hls, "240p", now_ns()).await.unwrap());
    }

    let per_delivery = |hits: &[Hit]| {
        let mut m: HashMap<String, Vec<u16>> = HashMap::new();
        for h in hits {
            m.entry(h.delivery()).or_default().push(h.status);
        }
        m
    };
    rx.wait_for(30, "a first failed attempt of each", |h| per_delivery(h).len() == 3).await;
    // Killed once every first failure is recorded (the log says so), while each delivery
    // waits 2 to 4 s for its retry: mid-retry, with no request in flight.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let log: Value = install
            .http
            .get(format!("{}/webhooks/{hook}/deliveries", install.url))
            .basic_auth(&install.key, Some(""))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let d = log["data"].as_array().unwrap();
        if d.len() == 3 && d.iter().all(|d| d["attempts"].as_u64() >= Some(1) && d["state"] == "pending") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}: first attempts never recorded: {log}", b.label);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(proc); // SIGKILL
    let before = rx.hits().len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(rx.hits().len(), before, "a killed server sent something");
    let _proc = install.serve().await;
    let hits = rx
        .wait_for(60, "every delivery answered after the restart", |h| {
            per_delivery(h).values().filter(|s| s.contains(&200)).count() == 3
        })
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let hits_after = rx.hits();
    assert_eq!(hits_after.len(), hits.len(), "{}: sent again after a 200", b.label);
    for (delivery, statuses) in per_delivery(&hits_after) {
        assert_eq!(statuses, [500, 500, 200], "{}: {delivery}", b.label);
        let attempts: Vec<&str> =
            hits_after.iter().filter(|h| h.delivery() == delivery).map(|h| h.header("x-vidi-attempt")).collect();
        assert_eq!(attempts, ["1", "2", "3"], "{}: an attempt was made twice", b.label);
    }
    let bodies: Vec<Value> = hits_after.iter().filter(|h| h.status == 200).map(Hit::json).collect();
    assert_eq!(bodies.len(), 3);
    drop(repo);
}
