//! Rate limits (contract §1.9): api.video's headers on every API response, a 429 problem body past
//! the limit, budgets per API key (one key's exhaustion leaves another's alone) and per client
//! address without a key, delivery never limited, and `VIDI_RATE_LIMIT=off`.

use crate::common::{Backend, TestServer, problem, test_client};
use vidi_api::ratelimit::Limits;

fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers().get(name).map(|v| v.to_str().unwrap().to_string())
}

#[tokio::test]
async fn generous_defaults_and_their_headers_on_every_api_response() {
    let t = TestServer::start(&Backend::sqlite_local()).await;
    let r = t.get("/videos").await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-ratelimit-limit").as_deref(), Some("10000"));
    assert_eq!(header(&r, "x-ratelimit-remaining").as_deref(), Some("9999"));
    assert_eq!(header(&r, "x-ratelimit-retry-after").as_deref(), Some("1"));
    // Errors too, and the writes' budget is its own.
    let r = t.post_json("/videos", serde_json::json!({})).await;
    assert_eq!(r.status(), 400);
    assert_eq!(header(&r, "x-ratelimit-limit").as_deref(), Some("4000"));
    // A browser may read them.
    let r = t.req(reqwest::Method::GET, "/videos").header("origin", "https://app.example").send().await.unwrap();
    let exposed = header(&r, "access-control-expose-headers").unwrap_or_default().to_ascii_lowercase();
    assert!(exposed.contains("x-ratelimit-remaining") && exposed.contains("x-request-id"), "{exposed}");
    // Delivery is not limited: no budget to report.
    let r = t.http.get(format!("{}/vod/vi0000000000000000000001/thumbnail.jpg", t.url)).send().await.unwrap();
    assert_eq!(header(&r, "x-ratelimit-limit"), None);
}

#[tokio::test]
async fn past_the_limit_429_per_key_and_per_address() {
    let limits = Limits { reads: 3, writes: 2, uploads: 1 };
    let t = TestServer::start_with(&Backend::sqlite_local(), |c| c.ops.rate_limits = Some(limits)).await;
    let other = vidi::create_key(t.server.state.repo.as_ref(), "other", None).await.unwrap();
    for left in [2, 1, 0] {
        let r = t.get("/videos").await;
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "x-ratelimit-remaining"), Some(left.to_string()));
    }
    let r = t.get("/videos").await;
    assert_eq!(header(&r, "x-ratelimit-remaining").as_deref(), Some("0"));
    // 3 a minute: the next request in 20 s.
    let wait: u64 = header(&r, "x-ratelimit-retry-after").unwrap().parse().unwrap();
    assert!((19..=20).contains(&wait), "{wait}");
    assert_eq!(header(&r, "retry-after"), Some(wait.to_string()));
    let p = problem(r, 429, "too-many-requests").await;
    assert_eq!(p["title"], "Too many requests.");

    // Another key from the same address has its own budget; so do this key's writes.
    let http = test_client();
    let r = http.get(format!("{}/videos", t.url)).basic_auth(&other, Some("")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-ratelimit-remaining").as_deref(), Some("2"));
    assert_eq!(t.post_json("/videos", serde_json::json!({"title": "w"})).await.status(), 201);

    // Without a valid key a request counts against its address, apart from every key's.
    for _ in 0..3 {
        let r = http.get(format!("{}/videos", t.url)).basic_auth("not-a-key", Some("")).send().await.unwrap();
        assert_eq!(r.status(), 401);
    }
    let r = http.get(format!("{}/videos", t.url)).send().await.unwrap();
    problem(r, 429, "too-many-requests").await;
    let r = http.get(format!("{}/videos", t.url)).basic_auth(&other, Some("")).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // Uploads have a budget of their own.
    let v = t.create_video("u").await;
    assert_ne!(t.upload(&v, None, vec![0u8; 16]).await.status(), 429);
    problem(t.upload(&v, None, vec![0u8; 16]).await, 429, "too-many-requests").await;
}

#[tokio::test]
async fn off_means_no_limit_and_no_headers() {
    let t = TestServer::start_with(&Backend::sqlite_local(), |c| c.ops.rate_limits = None).await;
    for _ in 0..20 {
        let r = t.get("/videos").await;
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "x-ratelimit-limit"), None);
    }
}
