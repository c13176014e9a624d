//! Delegated upload tokens over HTTP (contract rows 14–17, §5), on every configured backend:
//! generate with and without a ttl, list only the active ones sorted and paged, show, delete;
//! expired and other workspaces' tokens are not found; a token is no API key.

use crate::common::{Backend, TestServer, backend_test, problem};
use reqwest::Method;
use serde_json::{Value, json};

backend_test!(upload_tokens_crud_expiry_and_isolation);
async fn upload_tokens_crud_expiry_and_isolation(b: Backend) {
    let t = TestServer::start(&b).await;
    // No ttl: never expires, no expiresAt; 200, not 201.
    let r = t.post_json("/upload-tokens", json!({})).await;
    assert_eq!(r.status(), 200, "{}", b.label);
    let forever: Value = r.json().await.unwrap();
    let forever_id = forever["token"].as_str().unwrap().to_string();
    assert!(forever_id.starts_with("to") && forever_id.len() == 24, "{forever}");
    assert_eq!(forever["ttl"], 0);
    assert!(forever.get("expiresAt").is_none(), "{forever}");
    // Two tokens made back to back do not share their time-ordered prefix: they are random.
    let again: Value = t.post_json("/upload-tokens", json!({ "ttl": 0 })).await.json().await.unwrap();
    assert_ne!(again["token"].as_str().unwrap()[..10], forever_id[..10]);

    let hour: Value = t.post_json("/upload-tokens", json!({ "ttl": 3600 })).await.json().await.unwrap();
    assert_eq!(hour["ttl"], 3600);
    let (created, expires) = (hour["createdAt"].as_str().unwrap(), hour["expiresAt"].as_str().unwrap());
    assert!(expires > created, "{hour}");
    let short: Value = t.post_json("/upload-tokens", json!({ "ttl": 1 })).await.json().await.unwrap();
    let short_id = short["token"].as_str().unwrap().to_string();

    // Bad ttls.
    for bad in [json!({ "ttl": -1 }), json!({ "ttl": 2147483648u64 }), json!({ "ttl": "60" }), json!({ "ttl": 1.5 })] {
        let body = problem(t.post_json("/upload-tokens", bad.clone()).await, 400, "invalid-attribute").await;
        assert_eq!(body["name"], "ttl", "{bad}");
    }

    // Show; sort by ttl both ways.
    let shown: Value = t.get(&format!("/upload-tokens/{forever_id}")).await.json().await.unwrap();
    assert_eq!(shown, forever);
    let ttls =
        |v: &Value| -> Vec<i64> { v["data"].as_array().unwrap().iter().map(|t| t["ttl"].as_i64().unwrap()).collect() };
    let l: Value = t.get("/upload-tokens?sortBy=ttl&sortOrder=desc").await.json().await.unwrap();
    assert_eq!(ttls(&l), [3600, 1, 0, 0]);
    let l: Value = t.get("/upload-tokens?sortBy=ttl&pageSize=1&currentPage=4").await.json().await.unwrap();
    assert_eq!(ttls(&l), [3600]);
    assert_eq!(l["pagination"]["itemsTotal"], 4);
    problem(t.get("/upload-tokens?sortBy=token").await, 400, "request-invalid-query-parameter").await;

    // Expired: gone from the list and not found.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let l: Value = t.get("/upload-tokens?sortBy=ttl").await.json().await.unwrap();
    assert_eq!(ttls(&l), [0, 0, 3600]);
    problem(t.get(&format!("/upload-tokens/{short_id}")).await, 404, "resource-not-found").await;

    // A token is no API key, as Basic or as Bearer.
    let as_key = t.http.get(format!("{}/videos", t.url)).basic_auth(&forever_id, Some("")).send().await.unwrap();
    problem(as_key, 401, "authentication-invalid-api-key").await;
    let as_bearer = t.http.get(format!("{}/upload-tokens", t.url)).bearer_auth(&forever_id).send().await.unwrap();
    assert_eq!(as_bearer.status(), 401);

    // Another workspace sees none of them.
    let repo = t.server.state.repo.clone();
    let other_ws = repo.create_workspace("other").await.unwrap();
    let other_key = vidi_api::auth::create_api_key(repo.as_ref(), &other_ws, "k").await.unwrap();
    let as_other = |m: Method, p: String| t.http.request(m, format!("{}{}", t.url, p)).basic_auth(&other_key, Some(""));
    let r = as_other(Method::GET, format!("/upload-tokens/{forever_id}")).send().await.unwrap();
    problem(r, 404, "resource-not-found").await;
    let r = as_other(Method::DELETE, format!("/upload-tokens/{forever_id}")).send().await.unwrap();
    problem(r, 404, "resource-not-found").await;
    let l: Value = as_other(Method::GET, "/upload-tokens".into()).send().await.unwrap().json().await.unwrap();
    assert_eq!(l["data"], json!([]));

    // Delete: 204, then not found.
    assert_eq!(t.req(Method::DELETE, &format!("/upload-tokens/{forever_id}")).send().await.unwrap().status(), 204);
    problem(t.get(&format!("/upload-tokens/{forever_id}")).await, 404, "resource-not-found").await;
    let r = t.req(Method::DELETE, &format!("/upload-tokens/{forever_id}")).send().await.unwrap();
    problem(r, 404, "resource-not-found").await;
    problem(t.get("/upload-tokens/not-a-token").await, 404, "resource-not-found").await;
}
