//! Webhooks (issue 11): the 2023 API, and delivery from the events outbox to a receiver inside
//! the test, signed, retried, logged, replayable, ordered, isolated from slow receivers, and
//! refused for addresses a user may not reach.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::receiver::*;
use crate::common::*;
use serde_json::{Value, json};
use vidi_core::event::{Encoding, EventKind};
use vidi_core::id::{VideoId, WebhookId};
use vidi_core::model::Quality;
use vidi_core::time::{now_ms, now_ns};
use vidi_core::webhook::{Webhook, new_secret};

const QUALITY: &str = "video.encoding.quality.completed";

async fn create_hook(t: &TestServer, events: &[&str], url: &str) -> String {
    let r = t.post_json("/webhooks", json!({ "events": events, "url": url })).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    r.json::<Value>().await.unwrap()["webhookId"].as_str().unwrap().to_string()
}

async fn secret_of(t: &TestServer, hook: &str) -> String {
    let s: Value = t.get(&format!("/webhooks/{hook}/secret")).await.json().await.unwrap();
    s["signatureSecret"].as_str().unwrap().to_string()
}

/// Records `video.encoding.quality.completed` for each HLS rendition of a new (empty) video, as
/// an encode would; returns the video and when each event was recorded.
async fn emit(t: &TestServer, qualities: &[&str]) -> (String, Vec<(String, Instant)>) {
    let id = t.create_video("hooks").await;
    let vid = VideoId::parse(&id).unwrap();
    let repo = &t.server.state.repo;
    let planned: Vec<Quality> = qualities
        .iter()
        .map(|q| Quality { kind: "hls".into(), quality: q.to_string(), status: "waiting".into() })
        .collect();
    let ws = t.ws().await;
    repo.plan_qualities(&ws, &vid, &planned).await.unwrap();
    let mut at = Vec::new();
    for q in qualities {
        at.push((q.to_string(), Instant::now()));
        assert!(repo.complete_quality(&ws, &vid, Encoding::Hls, q, now_ns()).await.unwrap());
    }
    (id, at)
}

async fn deliveries(t: &TestServer, hook: &str) -> Vec<Value> {
    let r: Value = t.get(&format!("/webhooks/{hook}/deliveries?pageSize=100")).await.json().await.unwrap();
    r["data"].as_array().unwrap().clone()
}

async fn delivery(t: &TestServer, hook: &str, id: &str) -> Value {
    t.get(&format!("/webhooks/{hook}/deliveries/{id}")).await.json().await.unwrap()
}

backend_test!(the_webhooks_api_follows_the_contract);
async fn the_webhooks_api_follows_the_contract(b: Backend) {
    let t = TestServer::start_with(&b, |c| c.webhooks.limit = 3).await;
    let r = t.post_json("/webhooks", json!({ "events": [QUALITY], "url": "https://example.com/hook" })).await;
    assert_eq!(r.status(), 201);
    let h: Value = r.json().await.unwrap();
    let keys: HashSet<&str> = h.as_object().unwrap().keys().map(String::as_str).collect();
    // Exactly the 2023 schema: no signatureSecret (Python 1.3.0 rejects unknown keys).
    assert_eq!(keys, HashSet::from(["webhookId", "createdAt", "events", "url"]), "{}: {h}", b.label);
    let id = h["webhookId"].as_str().unwrap().to_string();
    assert!(id.starts_with("webhook_") && id.len() == 30, "{id}");
    assert_eq!(h["events"], json!([QUALITY]));
    assert_eq!(h["url"], "https://example.com/hook");
    assert!(h["createdAt"].as_str().unwrap().ends_with("+00:00"));

    // Errors of §9 and §1.3.
    let body =
        problem(t.post_json("/webhooks", json!({ "url": "https://example.com" })).await, 400, "attribute-required")
            .await;
    assert_eq!(body["name"], "events");
    let body = problem(t.post_json("/webhooks", json!({ "events": [QUALITY] })).await, 400, "attribute-required").await;
    assert_eq!(body["name"], "url");
    let unknown = json!({ "events": [QUALITY, "video.deleted"], "url": "https://example.com" });
    let body = problem(t.post_json("/webhooks", unknown).await, 400, "invalid-attribute").await;
    assert_eq!(body["name"], "events");
    for url in ["ftp://example.com/x", "/relative/path", "not a url", "https://", "http://127.0.0.1:9/x"] {
        let body = problem(
            t.post_json("/webhooks", json!({ "events": [QUALITY], "url": url })).await,
            400,
            "invalid-attribute",
        )
        .await;
        assert_eq!(body["name"], "url", "{url}");
    }
    problem(
        t.post_json("/webhooks", json!({ "events": "x", "url": "https://example.com" })).await,
        400,
        "invalid-attribute",
    )
    .await;

    // The workspace limit (VIDI_WEBHOOK_LIMIT, 3 here).
    let second =
        create_hook(&t, &["video.source.recorded", "live-stream.broadcast.started"], "http://example.com/a").await;
    create_hook(&t, &[QUALITY], "http://example.com/b").await;
    let body = problem(
        t.post_json("/webhooks", json!({ "events": [QUALITY], "url": "https://example.com/c" })).await,
        400,
        "webhook-limit-reached",
    )
    .await;
    assert_eq!(body["title"], "Your account has reached the webhook urls limit.");

    // List, filter, pagination.
    let all: Value = t.get("/webhooks").await.json().await.unwrap();
    assert_eq!(all["pagination"]["itemsTotal"], 3);
    assert_eq!(all["data"][0]["webhookId"], id.as_str(), "oldest first");
    assert!(all["data"].as_array().unwrap().iter().all(|w| w.get("signatureSecret").is_none()));
    let some: Value = t.get("/webhooks?events=video.source.recorded").await.json().await.unwrap();
    assert_eq!(some["pagination"]["itemsTotal"], 1);
    assert_eq!(some["data"][0]["webhookId"], second.as_str());
    let page: Value = t.get("/webhooks?pageSize=2&currentPage=2").await.json().await.unwrap();
    assert_eq!((page["pagination"]["pagesTotal"].as_u64(), page["data"].as_array().unwrap().len()), (Some(2), 1));
    assert_eq!(page["pagination"]["links"][0]["uri"], "/webhooks?currentPage=2&pageSize=2");
    problem(t.get("/webhooks?events=video.deleted").await, 400, "request-invalid-query-parameter").await;

    // Get one, the secret (a Vidi extension), 404s.
    let one: Value = t.get(&format!("/webhooks/{id}")).await.json().await.unwrap();
    assert_eq!(one, h);
    let s: Value = t.get(&format!("/webhooks/{id}/secret")).await.json().await.unwrap();
    assert!(s["signatureSecret"].as_str().unwrap().starts_with("whsec_"), "{s}");
    assert_ne!(secret_of(&t, &second).await, s["signatureSecret"].as_str().unwrap());
    for missing in ["webhook_1BWt3JArmQq9sNZzsHStRS", "nope"] {
        let body = problem(t.get(&format!("/webhooks/{missing}")).await, 404, "resource-not-found").await;
        assert_eq!(body["name"], "webhookId");
        problem(t.get(&format!("/webhooks/{missing}/deliveries")).await, 404, "resource-not-found").await;
    }

    // Delete; then the limit has room again.
    let del = t.req(reqwest::Method::DELETE, &format!("/webhooks/{id}")).send().await.unwrap();
    assert_eq!(del.status(), 204);
    let again = t.req(reqwest::Method::DELETE, &format!("/webhooks/{id}")).send().await.unwrap();
    problem(again, 404, "resource-not-found").await;
    create_hook(&t, &[QUALITY], "https://example.com/d").await;

    // Another workspace sees none of it.
    let ws = t.server.state.repo.create_workspace("other").await.unwrap();
    let other = vidi_api::auth::create_api_key(t.server.state.repo.as_ref(), &ws, "other").await.unwrap();
    let r = t.http.get(format!("{}/webhooks/{second}", t.url)).basic_auth(&other, Some("")).send().await.unwrap();
    problem(r, 404, "resource-not-found").await;

    let doc: Value = t.get("/openapi.json").await.json().await.unwrap();
    for p in [
        "/webhooks",
        "/webhooks/{webhookId}",
        "/webhooks/{webhookId}/secret",
        "/webhooks/{webhookId}/deliveries",
        "/webhooks/{webhookId}/deliveries/{deliveryId}",
        "/webhooks/{webhookId}/deliveries/{deliveryId}/replay",
    ] {
        assert!(doc["paths"].get(p).is_some(), "{p} missing from /openapi.json");
    }
}

backend_test!(a_real_encode_delivers_every_rendition_signed);
async fn a_real_encode_delivers_every_rendition_signed(b: Backend) {
    // The receiver's check (written from docs/webhooks.md) agrees with the published vector.
    let v = |ts: &str, body: &str| verify(VECTOR_SECRET, ts, body.as_bytes(), VECTOR_SIGNATURE, VECTOR_VIDI_SIGNATURE);
    assert!(v(VECTOR_TIMESTAMP, VECTOR_BODY));
    assert!(!v("1684834143", VECTOR_BODY), "the timestamp is signed");
    assert!(!v(VECTOR_TIMESTAMP, &VECTOR_BODY.replace("720p", "1080p")), "the body is signed");

    let clip = std::fs::read(av_clip("events-720p.mp4", "size=1280x720:rate=25", "frequency=440", 2, &[])).unwrap();
    let rx = Receiver::ok().await;
    let t = TestServer::start_with(&b, |c| c.outbound.allow_private = true).await;
    let hook = create_hook(&t, &[QUALITY], &rx.url).await;
    // Subscribed to other events only: gets nothing.
    create_hook(&t, &["live-stream.broadcast.started", "video.source.recorded"], &format!("{}?other", rx.url)).await;
    let secret = secret_of(&t, &hook).await;
    let id = t.create_video("hooked").await;
    assert_eq!(t.upload(&id, None, clip.clone()).await.status(), 201);
    let encoded = |s: &Value| {
        s["encoding"]["qualities"]
            .as_array()
            .is_some_and(|q| !q.is_empty() && q.iter().all(|q| q["status"] == "encoded"))
    };
    let status = t.wait_status(&id, 180, encoded).await;
    let mut want: Vec<(String, String)> = status["encoding"]["qualities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| (q["type"].as_str().unwrap().to_string(), q["quality"].as_str().unwrap().to_string()))
        .collect();
    want.sort();
    assert!(want.len() >= 4, "{}: {status}", b.label);
    let hits = rx.wait_for(30, "one delivery per rendition", |h| h.len() >= want.len()).await;
    let mut got = Vec::new();
    for h in &hits {
        assert!(verify_hit(&secret, h), "{}: bad signature on {:?}", b.label, h.body);
        assert_eq!(h.header("x-api-video-webhookid"), hook);
        assert_eq!(h.header("content-type"), "application/json");
        let ts: i64 = h.header("x-vidi-timestamp").parse().unwrap();
        assert!((ts - now_ms() / 1000).abs() < 300, "{ts}");
        let body = h.json();
        let keys: HashSet<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, HashSet::from(["type", "emittedAt", "videoId", "encoding", "quality"]), "{body}");
        assert_eq!((body["type"].as_str(), body["videoId"].as_str()), (Some(QUALITY), Some(id.as_str())));
        let at = body["emittedAt"].as_str().unwrap();
        assert!(at.len() == 30 && at.ends_with('Z'), "{at}");
        got.push((body["encoding"].as_str().unwrap().to_string(), body["quality"].as_str().unwrap().to_string()));
    }
    got.sort();
    assert_eq!(got, want, "{}: one per HLS rendition and one for the MP4, none twice", b.label);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(rx.hits().len(), want.len(), "{}: something was sent twice", b.label);

    // The delivery log.
    let log = deliveries(&t, &hook).await;
    assert_eq!(log.len(), want.len());
    for d in &log {
        assert_eq!(
            (d["state"].as_str(), d["attempts"].as_u64(), d["lastStatus"].as_u64()),
            (Some("delivered"), Some(1), Some(200)),
            "{d}"
        );
        assert!(d.get("nextAttemptAt").is_none());
    }
    let one = delivery(&t, &hook, log[0]["deliveryId"].as_str().unwrap()).await;
    let sent = hits.iter().find(|h| h.delivery() == log[0]["deliveryId"].as_str().unwrap()).unwrap();
    assert_eq!(one["payload"], sent.json());
    assert_eq!(one["log"][0]["status"], 200);
    assert_eq!(one["log"][0]["excerpt"], "receiver says hello");
    assert!(one["log"][0]["latencyMs"].as_i64().unwrap() >= 0);
    t.server.shutdown();
}

backend_test!(failures_are_retried_until_answered_and_deliveries_replay);
async fn failures_are_retried_until_answered_and_deliveries_replay(b: Backend) {
    let flaky = Receiver::start(Arc::new(|n, _| match n {
        0 | 2 => Answer::status(500),
        1 => Answer { status: 503, retry_after: Some("1".into()), delay: Duration::ZERO },
        _ => Answer::status(200),
    }))
    .await;
    let gone = Receiver::start(Arc::new(|_, _| Answer::status(410))).await;
    let t = TestServer::start_with(&b, |c| {
        c.outbound.allow_private = true;
        c.webhooks.retry_base = Duration::from_millis(100);
    })
    .await;
    let h1 = create_hook(&t, &[QUALITY], &flaky.url).await;
    let h2 = create_hook(&t, &[QUALITY], &gone.url).await;
    emit(&t, &["240p"]).await;

    let hits = flaky.wait_for(30, "a delivery after three failures", |h| h.len() >= 4).await;
    let statuses: Vec<u16> = hits.iter().map(|h| h.status).collect();
    assert_eq!(statuses, [500, 503, 500, 200], "{}", b.label);
    assert!(hits.iter().all(|h| h.body == hits[0].body && h.delivery() == hits[0].delivery()));
    let attempts: Vec<&str> = hits.iter().map(|h| h.header("x-vidi-attempt")).collect();
    assert_eq!(attempts, ["1", "2", "3", "4"]);
    assert!(hits[2].at - hits[1].at >= Duration::from_millis(950), "Retry-After: 1 not honoured");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(flaky.hits().len(), 4, "{}: retried after a 200", b.label);
    let log = deliveries(&t, &h1).await;
    assert_eq!(log.len(), 1);
    assert_eq!((log[0]["state"].as_str(), log[0]["attempts"].as_u64()), (Some("delivered"), Some(4)));
    let detail = delivery(&t, &h1, log[0]["deliveryId"].as_str().unwrap()).await;
    let logged: Vec<u64> = detail["log"].as_array().unwrap().iter().map(|a| a["status"].as_u64().unwrap()).collect();
    assert_eq!(logged, [500, 503, 500, 200]);

    // 410 Gone: this delivery is given up at once; a replay sends it again.
    gone.wait_for(30, "the first attempt", |h| !h.is_empty()).await;
    let d = loop {
        let d = deliveries(&t, &h2).await;
        if d.first().is_some_and(|d| d["state"] != "pending") {
            break d[0].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!((d["state"].as_str(), d["lastStatus"].as_u64()), (Some("failed"), Some(410)), "{d}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(gone.hits().len(), 1, "a 410 is not retried");
    let did = d["deliveryId"].as_str().unwrap();
    let r = t.req(reqwest::Method::POST, &format!("/webhooks/{h2}/deliveries/{did}/replay")).send().await.unwrap();
    assert_eq!(r.status(), 202);
    gone.wait_for(30, "the replay", |h| h.len() == 2).await;
    let again = gone.hits();
    assert_eq!((again[1].body.clone(), again[1].header("x-vidi-attempt")), (again[0].body.clone(), "2"));
    let r = t.req(reqwest::Method::POST, &format!("/webhooks/{h2}/deliveries/wd0000/replay")).send().await.unwrap();
    problem(r, 404, "resource-not-found").await;
    t.server.shutdown();
}

backend_test!(a_slow_receiver_does_not_delay_a_fast_one);
async fn a_slow_receiver_does_not_delay_a_fast_one(b: Backend) {
    let slow =
        Receiver::start(Arc::new(|_, _| Answer { status: 200, retry_after: None, delay: Duration::from_secs(5) }))
            .await;
    let fast = Receiver::ok().await;
    let t = TestServer::start_with(&b, |c| c.outbound.allow_private = true).await;
    create_hook(&t, &[QUALITY], &slow.url).await;
    create_hook(&t, &[QUALITY], &fast.url).await;
    // 100 events: 25 videos of 4 renditions.
    let mut emitted: HashMap<(String, String), Instant> = HashMap::new();
    for _ in 0..25 {
        let (id, at) = emit(&t, &["240p", "360p", "480p", "720p"]).await;
        emitted.extend(at.into_iter().map(|(q, at)| ((id.clone(), q), at)));
    }
    let hits = fast.wait_for(60, "100 events at the fast receiver", |h| h.len() >= 100).await;
    let mut worst = Duration::ZERO;
    for h in &hits {
        let body = h.json();
        let key = (body["videoId"].as_str().unwrap().to_string(), body["quality"].as_str().unwrap().to_string());
        worst = worst.max(h.at - emitted[&key]);
    }
    eprintln!("{}: slowest of 100 deliveries to the fast receiver: {worst:?}", b.label);
    assert!(worst < Duration::from_secs(1), "{}: the fast receiver waited {worst:?}", b.label);
    let s = slow.hits().len();
    assert!((1..=8).contains(&s), "{}: {s} requests to the slow receiver (4 at a time, 5 s each)", b.label);
    t.server.shutdown();
}

backend_test!(private_addresses_get_nothing_unless_allowed);
async fn private_addresses_get_nothing_unless_allowed(b: Backend) {
    let rx = Receiver::ok().await;
    let port = rx.url.trim_start_matches("http://127.0.0.1:").split('/').next().unwrap().to_string();
    // VIDI_OUTBOUND_ALLOW_PRIVATE is off (the default).
    let t = TestServer::start_with(&b, |c| c.webhooks.retry_base = Duration::from_millis(100)).await;
    let literal = [
        format!("http://127.0.0.1:{port}/hook"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        format!("http://[::1]:{port}/hook"),
    ];
    for url in &literal {
        let r = t.post_json("/webhooks", json!({ "events": [QUALITY], "url": url })).await;
        assert_eq!(problem(r, 400, "invalid-attribute").await["name"], "url", "{url}");
    }
    // A name is only resolved at delivery: accepted now, refused then.
    let by_name = create_hook(&t, &[QUALITY], &format!("http://localhost:{port}/hook")).await;
    // Webhooks stored while private addresses were allowed are refused at delivery too.
    let repo = t.server.state.repo.clone();
    let ws = repo.default_workspace().await.unwrap().unwrap();
    let mut hooks = vec![by_name];
    for url in &literal {
        let h = Webhook {
            id: WebhookId::generate(),
            workspace_id: ws.clone(),
            url: url.clone(),
            events: vec![EventKind::VideoEncodingQualityCompleted],
            secret: new_secret(),
            created_at: now_ms(),
        };
        assert!(repo.create_webhook(&h, 20).await.unwrap());
        hooks.push(h.id.to_string());
    }
    emit(&t, &["240p"]).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    for hook in &hooks {
        loop {
            let d = deliveries(&t, hook).await;
            if d.len() == 1 && d[0]["attempts"].as_u64() >= Some(2) {
                let detail = delivery(&t, hook, d[0]["deliveryId"].as_str().unwrap()).await;
                for a in detail["log"].as_array().unwrap() {
                    assert!(a.get("status").is_none(), "{a}");
                    assert!(a["error"].as_str().unwrap().contains("not allowed"), "{}: {a}", b.label);
                }
                break;
            }
            assert!(Instant::now() < deadline, "{}: {hook} was never attempted", b.label);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert!(rx.hits().is_empty(), "{}: a refused address received a delivery", b.label);
    t.server.shutdown();
}
