//! Auth, account and video CRUD over HTTP, on every configured backend.

use crate::common;
use crate::common::{Backend, TestServer, backend_test, problem};
use reqwest::Method;
use serde_json::{Value, json};

backend_test!(authentication_both_ways);
async fn authentication_both_ways(b: Backend) {
    let t = TestServer::start(&b).await;
    // Basic with the key as user name.
    assert_eq!(t.get("/videos").await.status(), 200, "{}", b.label);
    // Missing, empty (Node 2.5 without a key), malformed, wrong key.
    let raw = |h: Option<&str>| {
        let mut r = t.http.get(format!("{}/videos", t.url));
        if let Some(h) = h {
            r = r.header("Authorization", h);
        }
        r.send()
    };
    problem(raw(None).await.unwrap(), 401, "authentication-missing-authorization-header").await;
    problem(raw(Some("")).await.unwrap(), 401, "authentication-missing-authorization-header").await;
    problem(raw(Some("Basic !!!")).await.unwrap(), 401, "authentication-invalid-authorization-header-value").await;
    problem(raw(Some("Token abc")).await.unwrap(), 401, "authentication-invalid-authorization-header-value").await;
    let wrong = t.http.get(format!("{}/videos", t.url)).basic_auth("nope", Some("")).send().await.unwrap();
    problem(wrong, 401, "authentication-invalid-api-key").await;
    problem(raw(Some("Bearer not-a-token")).await.unwrap(), 401, "authentication-invalid-access-token").await;

    // Access token from the key; the Authorization header on /auth is ignored.
    let r = t.post_json("/auth/api-key", json!({ "apiKey": t.key })).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let tok: Value = r.json().await.unwrap();
    assert_eq!(tok["token_type"], "Bearer");
    assert_eq!(tok["expires_in"], 3600);
    let access = tok["access_token"].as_str().unwrap();
    let ok = t.http.get(format!("{}/videos", t.url)).bearer_auth(access).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    // Lower-case scheme works too.
    let ok = raw(Some(&format!("bearer {access}"))).await.unwrap();
    assert_eq!(ok.status(), 200);

    // Refresh rotates; the old token is still good within its grace minute; junk is 400.
    let refresh = tok["refresh_token"].as_str().unwrap();
    let r2: Value = t.post_json("/auth/refresh", json!({ "refreshToken": refresh })).await.json().await.unwrap();
    assert_ne!(r2["refresh_token"], tok["refresh_token"]);
    assert_eq!(t.post_json("/auth/refresh", json!({ "refreshToken": refresh })).await.status(), 200);
    problem(
        t.post_json("/auth/refresh", json!({ "refreshToken": "junk" })).await,
        400,
        "authentication-invalid-user-credentials",
    )
    .await;
    problem(
        t.post_json("/auth/api-key", json!({ "apiKey": "junk" })).await,
        400,
        "authentication-invalid-user-credentials",
    )
    .await;
    problem(t.post_json("/auth/api-key", json!({})).await, 400, "attribute-required").await;
}

backend_test!(expired_access_tokens_are_refused);
async fn expired_access_tokens_are_refused(b: Backend) {
    let t = TestServer::start_with(&b, |c| c.auth.access_token_ttl = std::time::Duration::from_secs(1)).await;
    let tok: Value = t.post_json("/auth/api-key", json!({ "apiKey": t.key })).await.json().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let r = t
        .http
        .get(format!("{}/videos", t.url))
        .bearer_auth(tok["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    problem(r, 401, "authentication-invalid-access-token").await;
}

backend_test!(account_reports_quota);
async fn account_reports_quota(b: Backend) {
    let t = TestServer::start(&b).await;
    let a: Value = t.get("/account").await.json().await.unwrap();
    assert_eq!(a["quota"]["quotaUsed"], 0);
    assert_eq!(a["environment"], "production");
    assert!(a["features"].is_array());
    let id = t.create_video("q").await;
    let bytes = common::small_video();
    assert_eq!(t.upload(&id, None, bytes.clone()).await.status(), 201);
    let a: Value = t.get("/account").await.json().await.unwrap();
    assert_eq!(a["quota"]["quotaUsed"], bytes.len() as u64);
}

backend_test!(video_lifecycle);
async fn video_lifecycle(b: Backend) {
    let t = TestServer::start(&b).await;
    let r = t
        .post_json(
            "/videos",
            json!({"title": "Maths", "description": "d", "public": true, "tags": ["a", "b"],
                    "metadata": [{"key": "Author", "value": "John Doe"}], "mp4Support": false}),
        )
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["content-type"], "application/json");
    let v: Value = r.json().await.unwrap();
    let id = v["videoId"].as_str().unwrap().to_string();
    assert!(id.starts_with("vi") && id.len() == 24);
    assert_eq!(v["tags"], json!(["a", "b"]));
    assert_eq!(v["source"], json!({"uri": format!("/videos/{id}/source"), "type": "upload"}));
    assert!(v["assets"].get("mp4").is_none(), "mp4 only with mp4Support");
    assert!(v.get("playerId").is_none(), "no null playerId");
    // Exactly the 2023 fields: Python 1.3.0 rejects any other key.
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    for k in &keys {
        assert!(
            [
                "videoId",
                "createdAt",
                "publishedAt",
                "updatedAt",
                "title",
                "description",
                "tags",
                "metadata",
                "source",
                "assets",
                "playerId",
                "public",
                "panoramic",
                "mp4Support"
            ]
            .contains(k),
            "unexpected key {k}"
        );
    }
    assert!(v["createdAt"].as_str().unwrap().ends_with("+00:00"));

    let got: Value = t.get(&format!("/videos/{id}")).await.json().await.unwrap();
    assert_eq!(got, v);

    // PATCH replaces arrays, null detaches the player, absent fields stay. The player must be
    // one of the workspace's (tests/players.rs covers the refusals).
    let player: Value = t.post_json("/players", json!({})).await.json().await.unwrap();
    let player = player["playerId"].as_str().unwrap().to_string();
    let r = t
        .patch_json(
            &format!("/videos/{id}"),
            json!({"title": "Physics", "tags": ["c"], "metadata": [], "playerId": player, "public": false}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let u: Value = r.json().await.unwrap();
    assert_eq!(
        (u["title"].as_str(), u["tags"].clone(), u["metadata"].clone()),
        (Some("Physics"), json!(["c"]), json!([]))
    );
    assert_eq!(u["playerId"], player.as_str());
    assert_eq!(u["description"], "d");
    let u: Value = t.patch_json(&format!("/videos/{id}"), json!({"playerId": null})).await.json().await.unwrap();
    assert!(u.get("playerId").is_none());

    let st: Value = t.get(&format!("/videos/{id}/status")).await.json().await.unwrap();
    assert_eq!(st["ingest"]["status"], "missing");
    assert_eq!(st["encoding"]["playable"], false);

    let del = t.req(Method::DELETE, &format!("/videos/{id}")).send().await.unwrap();
    assert_eq!(del.status(), 204);
    assert!(del.bytes().await.unwrap().is_empty());
    problem(t.get(&format!("/videos/{id}")).await, 404, "resource-not-found").await;
    problem(t.req(Method::DELETE, &format!("/videos/{id}")).send().await.unwrap(), 404, "resource-not-found").await;
}

backend_test!(list_filters_sorts_and_pages);
async fn list_filters_sorts_and_pages(b: Backend) {
    let t = TestServer::start(&b).await;
    for (title, tags, author) in
        [("alpha one", vec!["x", "y"], "ann"), ("Beta", vec!["x"], "bob"), ("gamma ALPHA", vec!["y"], "ann")]
    {
        let r = t
            .post_json(
                "/videos",
                json!({"title": title, "tags": tags, "metadata": [{"key": "author", "value": author}]}),
            )
            .await;
        assert_eq!(r.status(), 201);
    }
    let titles = |v: &Value| {
        v["data"].as_array().unwrap().iter().map(|x| x["title"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    let all: Value = t.get("/videos").await.json().await.unwrap();
    assert_eq!(titles(&all), ["gamma ALPHA", "Beta", "alpha one"], "newest first by default");
    let p = &all["pagination"];
    assert_eq!(
        (p["itemsTotal"].as_u64(), p["pagesTotal"].as_u64(), p["currentPageItems"].as_u64()),
        (Some(3), Some(1), Some(3))
    );
    assert!(p["links"].is_array());

    let f: Value = t.get("/videos?title=alpha&sortBy=title&sortOrder=asc").await.json().await.unwrap();
    assert_eq!(titles(&f), ["alpha one", "gamma ALPHA"]);
    // Node's encoding: brackets percent-encoded, spaces as +.
    let f: Value = t.get("/videos?tags%5B%5D=x&tags%5B%5D=y").await.json().await.unwrap();
    assert_eq!(titles(&f), ["alpha one"]);
    let f: Value = t.get("/videos?metadata%5Bauthor%5D=ann&sortBy=title").await.json().await.unwrap();
    assert_eq!(titles(&f), ["alpha one", "gamma ALPHA"]);
    let f: Value = t.get("/videos?title=nothing").await.json().await.unwrap();
    assert_eq!(f["data"], json!([]));
    assert_eq!(f["pagination"]["itemsTotal"], 0);

    let p2: Value = t.get("/videos?sortBy=title&pageSize=2&currentPage=2").await.json().await.unwrap();
    assert_eq!(titles(&p2), ["gamma ALPHA"]);
    let rels: Vec<&str> =
        p2["pagination"]["links"].as_array().unwrap().iter().map(|l| l["rel"].as_str().unwrap()).collect();
    assert_eq!(rels, ["self", "first", "previous", "last"]);
    assert_eq!(p2["pagination"]["links"][0]["uri"], "/videos?sortBy=title&currentPage=2&pageSize=2");
    let past: Value = t.get("/videos?currentPage=9").await.json().await.unwrap();
    assert_eq!((past["data"].clone(), past["pagination"]["itemsTotal"].as_u64()), (json!([]), Some(3)));

    problem(t.get("/videos?pageSize=101").await, 400, "request-invalid-query-parameter").await;
    problem(t.get("/videos?currentPage=0").await, 400, "request-invalid-query-parameter").await;
    problem(t.get("/videos?sortBy=size").await, 400, "request-invalid-query-parameter").await;
    problem(t.get("/videos?sortOrder=up").await, 400, "request-invalid-query-parameter").await;
}

backend_test!(workspaces_are_isolated);
async fn workspaces_are_isolated(b: Backend) {
    let t = TestServer::start(&b).await;
    let repo = t.server.state.repo.clone();
    let other_ws = repo.create_workspace("other").await.unwrap();
    let other_key = vidi_api::auth::create_api_key(repo.as_ref(), &other_ws, "k").await.unwrap();
    let mine = t.create_video("mine").await;
    let as_other = |m: Method, p: String| t.http.request(m, format!("{}{}", t.url, p)).basic_auth(&other_key, Some(""));
    // Another workspace's id answers exactly like a missing one.
    let r = as_other(Method::GET, format!("/videos/{mine}")).send().await.unwrap();
    let body = problem(r, 404, "resource-not-found").await;
    assert_eq!(body["name"], "videoId");
    problem(as_other(Method::DELETE, format!("/videos/{mine}")).send().await.unwrap(), 404, "resource-not-found").await;
    problem(as_other(Method::GET, format!("/videos/{mine}/status")).send().await.unwrap(), 404, "resource-not-found")
        .await;
    let list: Value = as_other(Method::GET, "/videos".into()).send().await.unwrap().json().await.unwrap();
    assert_eq!(list["pagination"]["itemsTotal"], 0);
    assert_eq!(t.get(&format!("/videos/{mine}")).await.status(), 200, "still there for its owner");
}

backend_test!(bad_input_gets_problem_bodies);
async fn bad_input_gets_problem_bodies(b: Backend) {
    let t = TestServer::start(&b).await;
    let send_raw = |body: &'static str| {
        t.req(Method::POST, "/videos").header("content-type", "application/json").body(body).send()
    };
    problem(send_raw("{not json").await.unwrap(), 400, "invalid-payload").await;
    problem(send_raw("").await.unwrap(), 400, "invalid-payload").await;
    problem(send_raw("[1,2]").await.unwrap(), 400, "invalid-payload").await;
    let body = problem(t.post_json("/videos", json!({})).await, 400, "attribute-required").await;
    assert_eq!(body["name"], "title");
    let body = problem(t.post_json("/videos", json!({"title": 42})).await, 400, "invalid-attribute").await;
    assert_eq!(body["name"], "title");
    problem(t.post_json("/videos", json!({"title": "t", "tags": "x"})).await, 400, "invalid-attribute").await;
    problem(t.post_json("/videos", json!({"title": "t", "public": "yes"})).await, 400, "invalid-attribute").await;
    problem(t.post_json("/videos", json!({"title": "t", "metadata": [{"key": 1}]})).await, 400, "invalid-attribute")
        .await;
    problem(t.post_json("/videos", json!({"title": "t", "source": "ftp://x"})).await, 400, "invalid-attribute").await;
    problem(
        t.post_json("/videos", json!({"title": "t", "clip": {"startTimecode": "1:2"}})).await,
        400,
        "invalid-attribute",
    )
    .await;
    let huge = format!("{{\"title\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
    let r = t.req(Method::POST, "/videos").header("content-type", "application/json").body(huge).send().await.unwrap();
    problem(r, 400, "invalid-payload").await;
    problem(t.patch_json("/videos/vi0000000000000000000000", json!({"title": "x"})).await, 404, "resource-not-found")
        .await;
    problem(t.get("/videos/not-an-id").await, 404, "resource-not-found").await;
    problem(t.get("/nowhere").await, 404, "unrecognized-request-url").await;
    problem(t.req(Method::PUT, "/videos").send().await.unwrap(), 405, "method-not-allowed").await;
    // Nothing above created anything.
    let list: Value = t.get("/videos").await.json().await.unwrap();
    assert_eq!(list["pagination"]["itemsTotal"], 0);
}

#[tokio::test]
async fn cors_preflight_for_browser_uploaders() {
    let t = TestServer::start(&Backend::sqlite_local()).await;
    let r = t
        .http
        .request(Method::OPTIONS, format!("{}/videos/vi1/source", t.url))
        .header("Origin", "https://app.example")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-range,authorization,av-origin-client")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    // Any origin, never with credentials (tests/edges.rs checks the rest of the policy).
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert!(r.headers().get("access-control-allow-credentials").is_none());
}

#[tokio::test]
async fn openapi_document_is_served_and_committed() {
    let t = TestServer::start(&Backend::sqlite_local()).await;
    let served = t.get("/openapi.json").await.text().await.unwrap();
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../openapi.json"))
        .expect("openapi.json is committed at the repository root (run: cargo run -p vidi -- openapi > openapi.json)");
    assert_eq!(
        served, committed,
        "openapi.json drifted from the code: regenerate it with `cargo run -p vidi -- openapi > openapi.json`"
    );
    let doc: Value = serde_json::from_str(&served).unwrap();
    for path in [
        "/videos",
        "/videos/{videoId}",
        "/videos/{videoId}/source",
        "/videos/{videoId}/status",
        "/auth/api-key",
        "/auth/refresh",
        "/account",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing from the document");
    }
}

/// Every JSON request body in the document is a typed schema (issue 20): a body documented as
/// `serde_json::Value` (an empty schema) or as an object without properties tells a client
/// nothing, so each one, and each of its properties, must say its type.
#[tokio::test]
async fn openapi_has_no_untyped_json_request_body() {
    let t = TestServer::start(&Backend::sqlite_local()).await;
    let doc: Value = t.get("/openapi.json").await.json().await.unwrap();
    let resolve = |s: &Value| -> Value {
        match s.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let name = r.strip_prefix("#/components/schemas/").expect("a local schema reference");
                doc["components"]["schemas"][name].clone()
            }
            None => s.clone(),
        }
    };
    fn untyped(s: &Value, resolve: &dyn Fn(&Value) -> Value, at: &str, found: &mut Vec<String>) {
        let s = resolve(s);
        let composed = ["allOf", "oneOf", "anyOf"].iter().any(|k| s.get(k).is_some());
        if composed {
            for k in ["allOf", "oneOf", "anyOf"] {
                for (i, part) in s.get(k).and_then(Value::as_array).into_iter().flatten().enumerate() {
                    untyped(part, resolve, &format!("{at}.{k}[{i}]"), found);
                }
            }
            return;
        }
        let Some(kind) = s.get("type") else {
            found.push(format!("{at}: no type"));
            return;
        };
        let is = |t: &str| kind == t || kind.as_array().is_some_and(|a| a.iter().any(|k| k == t));
        if is("object") {
            match s.get("properties").and_then(Value::as_object) {
                Some(props) if !props.is_empty() => {
                    for (name, p) in props {
                        untyped(p, resolve, &format!("{at}.{name}"), found);
                    }
                }
                _ => found.push(format!("{at}: an object without properties")),
            }
        }
        if is("array") {
            match s.get("items") {
                Some(items) => untyped(items, resolve, &format!("{at}[]"), found),
                None => found.push(format!("{at}: an array without items")),
            }
        }
    }
    let mut found = Vec::new();
    let mut bodies = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let Some(content) = op.pointer("/requestBody/content").and_then(Value::as_object) else { continue };
            for (ct, media) in content {
                if !ct.contains("json") {
                    continue;
                }
                bodies += 1;
                let at = format!("{} {path}", method.to_uppercase());
                match media.get("schema") {
                    Some(s) => untyped(s, &resolve, &at, &mut found),
                    None => found.push(format!("{at}: no schema")),
                }
            }
        }
    }
    assert!(bodies >= 10, "only {bodies} JSON request bodies found: is the walk looking in the right place?");
    assert!(found.is_empty(), "untyped JSON request bodies in /openapi.json:\n{}", found.join("\n"));
}

backend_test!(a_page_of_private_videos_carries_a_working_token_each);
/// A page of private videos mints one token per video (in one statement): each URL carries its
/// own token, and each token opens its own video and no other.
async fn a_page_of_private_videos_carries_a_working_token_each(b: Backend) {
    let t = TestServer::start(&b).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let r = t.post_json("/videos", json!({"title": format!("private {i}"), "public": false})).await;
        ids.push(r.json::<Value>().await.unwrap()["videoId"].as_str().unwrap().to_string());
    }
    t.post_json("/videos", json!({"title": "public"})).await;
    let page: Value = t.get("/videos?pageSize=10").await.json().await.unwrap();
    let mut tokens = Vec::new();
    for v in page["data"].as_array().unwrap() {
        let hls = v["assets"]["hls"].as_str().unwrap();
        if v["public"] == false {
            let token = hls.split("/token/").nth(1).unwrap().split('/').next().unwrap().to_string();
            assert!(!tokens.contains(&token), "{}: a token was shared", b.label);
            // Admitted (202: not encoded yet), not refused (403).
            assert_eq!(t.http.get(hls).send().await.unwrap().status(), 202, "{}: {hls}", b.label);
            let other = ids.iter().find(|id| *id != v["videoId"].as_str().unwrap()).unwrap();
            let wrong = format!("{}/vod/{other}/token/{token}/hls/manifest.m3u8", t.url);
            assert_eq!(t.http.get(&wrong).send().await.unwrap().status(), 403, "{}", b.label);
            tokens.push(token);
        } else {
            assert!(!hls.contains("/token/"));
        }
    }
    assert_eq!(tokens.len(), 3);
}
