//! What an operator's tools see: `/health`, `/ready` (503 with a problem body when the database
//! or the media store does not answer), `/metrics` (requests by route template), and the request
//! id every response carries.

use crate::common::{Backend, TestServer, backend_test, problem};
use std::time::{Duration, Instant};

/// The value of the sample `name{labels}` in a Prometheus text body.
pub fn sample(body: &str, name_and_labels: &str) -> Option<f64> {
    body.lines().find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
}

/// The sum of every sample of `name` whose labels include each of `labels` (`key="value"`).
pub fn sum(body: &str, name: &str, labels: &[&str]) -> f64 {
    body.lines()
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let rest = series.strip_prefix(name)?;
            (rest.is_empty() || rest.starts_with('{')).then_some(())?;
            labels.iter().all(|want| rest.contains(want)).then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

/// `/metrics`, as text.
pub async fn scrape(t: &TestServer) -> String {
    let r = t.http.get(format!("{}/metrics", t.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

backend_test!(health_ready_metrics_and_request_ids);
async fn health_ready_metrics_and_request_ids(b: Backend) {
    let t = TestServer::start(&b).await;
    let r = t.http.get(format!("{}/health", t.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "ok\n");
    let r = t.http.get(format!("{}/ready", t.url)).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", b.label);

    // Requests by route template: one label value for every video id.
    for _ in 0..3 {
        assert_eq!(t.get("/videos").await.status(), 200);
    }
    for id in ["vi0000000000000000000001", "vi0000000000000000000002"] {
        assert_eq!(t.get(&format!("/videos/{id}")).await.status(), 404);
    }
    let r = t.http.get(format!("{}/metrics", t.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let body = r.text().await.unwrap();
    // The recorder is the process's, shared by the tests running beside this one: at least ours.
    let list = sample(&body, r#"vidi_http_requests_total{route="/videos",method="GET",status="200"}"#);
    assert!(list.is_some_and(|n| n >= 3.0), "{body}");
    let one = sample(&body, r#"vidi_http_requests_total{route="/videos/{videoId}",method="GET",status="404"}"#);
    assert!(one.is_some_and(|n| n >= 2.0), "{body}");
    assert!(!body.contains("vi0000000000000000000001"), "an id became a label value");
    assert!(body.contains("vidi_http_request_duration_seconds_bucket{route=\"/videos\",method=\"GET\",le=\"0.005\"}"));
    // The shared queue, read from the database at the scrape.
    assert!(body.contains("# TYPE vidi_jobs gauge"), "{body}");
    // A method no route knows is counted as `other`, so clients cannot mint label values.
    let r = t.req(reqwest::Method::from_bytes(b"BREW").unwrap(), "/videos").send().await.unwrap();
    assert_eq!(r.status(), 405);
    let body = scrape(&t).await;
    assert!(sum(&body, "vidi_http_requests_total", &[r#"method="other""#, r#"status="405""#]) >= 1.0, "{body}");
    assert!(!body.contains("BREW"), "{body}");

    // The collector's counts: a session, a batch of two events, a malformed request.
    let video = t.create_video("watched").await;
    let collect = |path: String, body: String| {
        t.http.post(format!("{}/collect{path}", t.url)).header("content-type", "application/json").body(body).send()
    };
    let r = collect("/sessions".into(), serde_json::json!({"videoId": video}).to_string()).await.unwrap();
    assert_eq!(r.status(), 201);
    let ps = r.json::<serde_json::Value>().await.unwrap()["sessionId"].as_str().unwrap().to_string();
    let batch = serde_json::json!({"events": [
        {"seq": 0, "type": "ready", "ts": 10, "at": 0},
        {"seq": 1, "type": "play", "ts": 20, "at": 0},
    ]});
    let r = collect(format!("/sessions/{ps}/events"), batch.to_string()).await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(collect("/sessions".into(), "{not json".into()).await.unwrap().status(), 400);
    let body = scrape(&t).await;
    for (name, at_least) in [
        ("vidi_collector_sessions_total ", 1.0),
        ("vidi_collector_batches_total ", 1.0),
        ("vidi_collector_events_total ", 2.0),
        (r#"vidi_collector_refused_total{reason="malformed"}"#, 1.0),
    ] {
        assert!(sample(&body, name).is_some_and(|n| n >= at_least), "{name}: {body}");
    }

    // The request id: the client's when sane, else a new one; on every response.
    let r = t.req(reqwest::Method::GET, "/videos").header("x-request-id", "trace-42.a_b").send().await.unwrap();
    assert_eq!(r.headers()["x-request-id"], "trace-42.a_b");
    let minted = t.get("/videos").await.headers()["x-request-id"].to_str().unwrap().to_string();
    assert!(!minted.is_empty() && minted.len() <= 64, "{minted}");
    let other = t.get("/videos").await.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_ne!(minted, other);
    let r = t.req(reqwest::Method::GET, "/videos").header("x-request-id", "a\"b c").send().await.unwrap();
    assert_ne!(r.headers()["x-request-id"], "a\"b c");
    // Delivery and errors carry it too.
    let r = t.http.get(format!("{}/vod/vi0000000000000000000001/thumbnail.jpg", t.url)).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.headers().contains_key("x-request-id"));
}

#[tokio::test]
async fn ready_is_503_while_the_database_is_down() {
    let t = TestServer::start(&Backend::sqlite_local()).await;
    t.server.close_database().await;
    let r = t.http.get(format!("{}/ready", t.url)).send().await.unwrap();
    assert_eq!(r.headers()["retry-after"], "5");
    let p = problem(r, 503, "not-ready").await;
    assert!(p["detail"].as_str().unwrap().starts_with("database:"), "{p}");
    // Alive all the same: nothing should restart it for this.
    assert_eq!(t.http.get(format!("{}/health", t.url)).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn ready_is_503_within_its_timeout_while_storage_does_not_answer() {
    // A bucket behind an address where nothing listens.
    let t = TestServer::start_with(&Backend::sqlite_local(), |c| {
        c.storage.url = Some("s3://nowhere".into());
        c.storage.s3_endpoint = Some("http://127.0.0.1:9".into());
    })
    .await;
    let started = Instant::now();
    let r = t.http.get(format!("{}/ready", t.url)).send().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    let p = problem(r, 503, "not-ready").await;
    assert!(p["detail"].as_str().unwrap().starts_with("storage:"), "{p}");
}

#[tokio::test]
async fn a_listener_of_their_own_takes_the_operators_routes_off_the_api() {
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let t = TestServer::start_with(&Backend::sqlite_local(), |c| c.ops.metrics_addr = Some(addr)).await;
    assert!(t.server.services().iter().any(|s| s == "ops"), "{:?}", t.server.services());
    assert_eq!(t.get("/videos").await.status(), 200);
    for path in ["/health", "/ready", "/metrics"] {
        let r = t.http.get(format!("http://{addr}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(t.http.get(format!("{}{path}", t.url)).send().await.unwrap().status(), 404, "{path}");
    }
}
