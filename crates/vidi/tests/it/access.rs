//! Access over the whole surface (issue 24): workspace B, with its own key (Basic and Bearer)
//! and its own private tokens, tries every served operation and every delivery route on
//! workspace A's ids. Nothing is read across (404 or 403, and none of A's ids in any answer to
//! B) and nothing is written across (A's objects read the same afterwards).
//!
//! The operations come from `/openapi.json` and the delivery routes from the router's source
//! (every `.route("…")` in the crates that is not an API operation), so a new one fails here
//! until it has a case below.

use std::collections::{BTreeMap, BTreeSet};

use crate::common::*;
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};
use vidi_core::id::{LiveStreamId, VideoId};
use vidi_core::time::now_ms;

const VTT: &[u8] = b"WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nHello\n";

/// A's objects, by the path parameter that names them.
struct Ids(BTreeMap<&'static str, String>);

impl Ids {
    fn fill(&self, template: &str, extra: &[(&str, &str)]) -> String {
        let mut out = template.to_string();
        for (k, v) in self.0.iter().map(|(k, v)| (*k, v.as_str())).chain(extra.iter().copied()) {
            out = out.replace(&format!("{{{k}}}"), v);
        }
        assert!(!out.contains('{'), "no value for a parameter of {template}: add it to the test's ids");
        out
    }

    /// Whether `body` names any of A's objects.
    fn leaked_in(&self, body: &str) -> Option<&String> {
        self.0.values().filter(|v| v.len() > 6).find(|v| body.contains(v.as_str()))
    }
}

/// What B sends to an API operation.
enum Case {
    /// An operation on one of A's objects, with this body: refused with 404 or 403.
    OnA(Body),
    /// An operation naming no object (a list, a creation, a token): answered for B, with none of
    /// A's ids in it.
    OwnOnly(Body),
    /// `POST /upload`: B's upload token with A's `videoId`.
    Upload,
}

enum Body {
    None,
    Json(Value),
    File(&'static [u8], &'static str),
    Jpeg,
}

/// Every API operation's case. A new operation has none, and the test says so.
fn case(op: &str, b_key: &str, b_refresh: &str, a_video: &str) -> Option<Case> {
    use Body::*;
    use Case::*;
    let patch = || Json(json!({ "name": "stolen", "title": "stolen" }));
    Some(match op {
        "POST /auth/api-key" => OwnOnly(Json(json!({ "apiKey": b_key }))),
        "POST /auth/refresh" => OwnOnly(Json(json!({ "refreshToken": b_refresh }))),
        "GET /account" => OwnOnly(None),
        "GET /videos" | "GET /players" | "GET /live-streams" | "GET /upload-tokens" | "GET /webhooks" => OwnOnly(None),
        "POST /videos" => OwnOnly(Json(json!({ "title": "b's" }))),
        "POST /players" => OwnOnly(Json(json!({ "name": "b's" }))),
        "POST /live-streams" => OwnOnly(Json(json!({ "name": "b's" }))),
        "POST /upload-tokens" => OwnOnly(Json(json!({ "ttl": 60 }))),
        "POST /webhooks" => {
            OwnOnly(Json(json!({ "url": "https://example.com/b", "events": ["video.encoding.quality.completed"] })))
        }
        "POST /upload" => Upload,
        "GET /videos/{videoId}" | "GET /videos/{videoId}/status" | "DELETE /videos/{videoId}" => OnA(None),
        "PATCH /videos/{videoId}" => OnA(Json(json!({ "title": "stolen", "public": true }))),
        "POST /videos/{videoId}/source" => OnA(File(b"not media", "clip.mp4")),
        "POST /videos/{videoId}/thumbnail" => OnA(Jpeg),
        "PATCH /videos/{videoId}/thumbnail" => OnA(Json(json!({ "timecode": "00:00:01.000" }))),
        "GET /videos/{videoId}/captions" | "GET /videos/{videoId}/chapters" => OnA(None),
        "GET /videos/{videoId}/captions/{language}" | "GET /videos/{videoId}/chapters/{language}" => OnA(None),
        "DELETE /videos/{videoId}/captions/{language}" | "DELETE /videos/{videoId}/chapters/{language}" => OnA(None),
        "POST /videos/{videoId}/captions/{language}" | "POST /videos/{videoId}/chapters/{language}" => {
            OnA(File(VTT, "en.vtt"))
        }
        "PATCH /videos/{videoId}/captions/{language}" => OnA(Json(json!({ "default": false }))),
        "GET /players/{playerId}" | "DELETE /players/{playerId}" | "DELETE /players/{playerId}/logo" => OnA(None),
        "PATCH /players/{playerId}" => OnA(patch()),
        "POST /players/{playerId}/logo" => OnA(Jpeg),
        "GET /live-streams/{liveStreamId}" | "DELETE /live-streams/{liveStreamId}" => OnA(None),
        "DELETE /live-streams/{liveStreamId}/thumbnail" => OnA(None),
        "PATCH /live-streams/{liveStreamId}" => OnA(Json(json!({ "name": "stolen", "public": true }))),
        "POST /live-streams/{liveStreamId}/thumbnail" => OnA(Jpeg),
        "GET /upload-tokens/{uploadToken}" | "DELETE /upload-tokens/{uploadToken}" => OnA(None),
        "GET /webhooks/{webhookId}" | "DELETE /webhooks/{webhookId}" | "GET /webhooks/{webhookId}/secret" => OnA(None),
        "GET /webhooks/{webhookId}/deliveries" | "GET /webhooks/{webhookId}/deliveries/{deliveryId}" => OnA(None),
        "POST /webhooks/{webhookId}/deliveries/{deliveryId}/replay" => OnA(None),
        // Analytics of A's video and live stream, and a session id B did not mint.
        "GET /analytics/videos/{videoId}" | "GET /analytics/videos/{videoId}/qoe" => OnA(None),
        "GET /analytics/live-streams/{liveStreamId}" | "GET /analytics/live-streams/{liveStreamId}/qoe" => OnA(None),
        "GET /analytics/sessions/{sessionId}/events" => OnA(None),
        // The collector takes no key: A's private video is refused outside a playback session.
        "POST /collect/sessions" => OnA(Json(json!({ "videoId": a_video }))),
        "POST /collect/sessions/{sessionId}/events" => {
            OnA(Json(json!({ "events": [{ "seq": 0, "type": "play", "ts": 0, "at": 0.0 }] })))
        }
        _ => return Option::None,
    })
}

/// What a delivery route is, for B: media of A's (private) video or live stream, which B's key
/// and B's tokens must not open; or public by design (static files, logos: contract §2, a
/// logo's URL is public as on api.video), which carries no tenant's private data.
enum Route {
    VideoMedia,
    LiveMedia,
    Public(&'static str),
}

fn route(path: &str) -> Option<Route> {
    let public = |why| Some(Route::Public(why));
    match path {
        "/openapi.json" => public("the API's description"),
        "/assets/hls.min.js" | "/assets/player/{file}" => public("the player's static files"),
        "/assets/players/{playerId}/{file}" => public("a player's logo, public as on api.video"),
        "/health" | "/ready" => public("whether the node runs and reaches its stores: no tenant's data"),
        "/metrics" => public("counts by route template, lane and status: no tenant's data (docs/operations.md)"),
        p if p.starts_with("/vod/") || p.starts_with("/embed/vod/") => Some(Route::VideoMedia),
        p if p.starts_with("/live/") || p.starts_with("/embed/live/") => Some(Route::LiveMedia),
        _ => None,
    }
}

/// Every path given to `.route(` in the crates' sources.
fn router_paths() -> BTreeSet<String> {
    let crates = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let mut out = BTreeSet::new();
    let mut dirs = vec![std::path::PathBuf::from(crates)];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().to_string();
            if p.is_dir() && name != "tests" && name != "target" {
                dirs.push(p);
            } else if name.ends_with(".rs") {
                let src = std::fs::read_to_string(&p).unwrap();
                for piece in src.split(".route(").skip(1) {
                    let piece = piece.trim_start();
                    if let Some(rest) = piece.strip_prefix('"') {
                        out.insert(rest.split('"').next().unwrap().to_string());
                    }
                }
            }
        }
    }
    out
}

/// A small JPEG: a thumbnail, a logo.
fn jpeg() -> Vec<u8> {
    let out =
        std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("access-{}.jpg", uuid::Uuid::new_v4()));
    let st = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i", "color=c=red:s=64x64", "-frames:v", "1"])
        .arg(&out)
        .status()
        .expect("ffmpeg runs");
    assert!(st.success());
    let bytes = std::fs::read(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    bytes
}

async fn json_ok(r: reqwest::Response, what: &str) -> Value {
    assert!(r.status().is_success(), "{what}: {}", r.status());
    r.json::<Value>().await.unwrap()
}

fn with_body(r: RequestBuilder, body: &Body, image: &[u8]) -> RequestBuilder {
    let file = |bytes: Vec<u8>, name: &'static str| {
        let part = reqwest::multipart::Part::bytes(bytes).file_name(name);
        reqwest::multipart::Form::new().part("file", part)
    };
    match body {
        Body::None => r,
        Body::Json(v) => r.json(v),
        Body::File(bytes, name) => r.multipart(file(bytes.to_vec(), name)),
        Body::Jpeg => r.multipart(file(image.to_vec(), "image.jpg")),
    }
}

/// `text` with every private token (after `/token/` or `token=`) replaced by `*`.
fn mask_tokens(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let next = ["/token/", "token="].iter().filter_map(|m| rest.find(m).map(|i| (i, m.len()))).min();
        let Some((i, len)) = next else { break };
        out.push_str(&rest[..i + len]);
        rest = &rest[i + len..];
        let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_')).unwrap_or(rest.len());
        out.push('*');
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// A's objects as A reads them, private tokens masked (each read mints new ones).
async fn snapshot(t: &TestServer, ids: &Ids) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let paths = [
        "/videos/{videoId}",
        "/videos/{videoId}/status",
        "/videos/{videoId}/captions",
        "/videos/{videoId}/chapters",
        "/players/{playerId}",
        "/live-streams/{liveStreamId}",
        "/upload-tokens/{uploadToken}",
        "/webhooks/{webhookId}",
        "/webhooks/{webhookId}/secret",
        "/videos?pageSize=100",
        "/players?pageSize=100",
        "/live-streams?pageSize=100",
        "/upload-tokens?pageSize=100",
        "/webhooks?pageSize=100",
    ];
    for p in paths {
        let path = ids.fill(p, &[]);
        let r = t.get(&path).await;
        assert_eq!(r.status(), 200, "{}: A reads {path}", t.backend.label);
        let text = r.text().await.unwrap();
        out.insert(path, mask_tokens(&text));
    }
    out
}

backend_test!(another_workspace_reads_and_writes_nothing_across_the_whole_surface, multi_thread = 2);
async fn another_workspace_reads_and_writes_nothing_across_the_whole_surface(b: Backend) {
    let t = TestServer::start(&b).await;
    let label = b.label.clone();
    let repo = t.server.state.repo.clone();
    let ws_a = t.ws().await;
    // B, as `vidi workspace create` and `vidi api-key create --workspace` make it.
    let ws_b = repo.create_workspace("b").await.unwrap();
    let key_b = vidi::create_key(&*repo, "b", Some(ws_b.as_str())).await.unwrap();
    let as_b = |m: Method, path: &str| t.http.request(m, format!("{}{path}", t.url)).basic_auth(&key_b, Some(""));
    let image = jpeg();

    // A: a private, encoded video with captions and chapters; a player with a logo; a private
    // live stream with a thumbnail; an upload token; a webhook.
    let video = t.create_video("a's").await;
    assert_eq!(t.upload(&video, None, small_video()).await.status(), 201, "{label}");
    // Every rendition and the MP4 done, so nothing changes A's objects but B.
    t.wait_status(&video, 180, |s| {
        let qualities = s["encoding"]["qualities"].as_array().cloned().unwrap_or_default();
        s["encoding"]["playable"] == true
            && qualities.iter().any(|q| q["type"] == "mp4")
            && qualities.iter().all(|q| q["status"] == "encoded")
    })
    .await;
    assert_eq!(t.patch_json(&format!("/videos/{video}"), json!({ "public": false })).await.status(), 200);
    let upload = |path: String, bytes: Vec<u8>, name: &'static str| {
        let part = reqwest::multipart::Part::bytes(bytes).file_name(name);
        t.req(Method::POST, &path).multipart(reqwest::multipart::Form::new().part("file", part)).send()
    };
    for kind in ["captions", "chapters"] {
        let r = upload(format!("/videos/{video}/{kind}/en"), VTT.to_vec(), "en.vtt").await.unwrap();
        assert_eq!(r.status(), 200, "{label}: {kind}");
    }
    let player = json_ok(t.post_json("/players", json!({ "name": "a's" })).await, &label).await["playerId"]
        .as_str()
        .unwrap()
        .to_string();
    let r = upload(format!("/players/{player}/logo"), image.clone(), "logo.jpg").await.unwrap();
    json_ok(r, &label).await;
    let live = json_ok(t.post_json("/live-streams", json!({ "name": "a's", "public": false })).await, &label).await
        ["liveStreamId"]
        .as_str()
        .unwrap()
        .to_string();
    json_ok(upload(format!("/live-streams/{live}/thumbnail"), image.clone(), "t.jpg").await.unwrap(), &label).await;
    let token =
        json_ok(t.post_json("/upload-tokens", json!({})).await, &label).await["token"].as_str().unwrap().to_string();
    let hook = json!({ "url": "https://example.com/a", "events": ["video.encoding.quality.completed"] });
    let webhook =
        json_ok(t.post_json("/webhooks", hook).await, &label).await["webhookId"].as_str().unwrap().to_string();
    let ids = Ids(BTreeMap::from([
        ("videoId", video.clone()),
        ("playerId", player),
        ("liveStreamId", live.clone()),
        ("uploadToken", token),
        ("webhookId", webhook),
        // A's webhook has had no delivery: any id is as unknown to B as a real one would be.
        ("deliveryId", vidi_core::id::DeliveryId::generate().to_string()),
        ("language", "en".into()),
        // A viewing session id of nobody's: B must learn no more of it than of a real one of A's.
        ("sessionId", vidi_core::id::PlayerSessionId::generate().to_string()),
    ]));
    let before = snapshot(&t, &ids).await;

    // B's credentials: its key, a bearer token, a refresh token; its own private video and live
    // stream, and a private token for each.
    let auth: Value = t
        .http
        .post(format!("{}/auth/api-key", t.url))
        .json(&json!({ "apiKey": key_b }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bearer = auth["access_token"].as_str().unwrap().to_string();
    let refresh = auth["refresh_token"].as_str().unwrap().to_string();
    let b_video: Value = as_b(Method::POST, "/videos")
        .json(&json!({ "title": "b", "public": false }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let b_video = VideoId::parse(b_video["videoId"].as_str().unwrap()).unwrap();
    let b_live: Value = as_b(Method::POST, "/live-streams")
        .json(&json!({ "name": "b", "public": false }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let b_live = LiveStreamId::parse(b_live["liveStreamId"].as_str().unwrap()).unwrap();
    let (from, until) = (now_ms(), now_ms() + 600_000);
    repo.mint_private_tokens(&ws_b, &[(&b_video, "b-video-token")], from, until).await.unwrap();
    repo.mint_live_tokens(&ws_b, &[(&b_live, "b-live-token")], from, until).await.unwrap();
    let b_upload: Value =
        as_b(Method::POST, "/upload-tokens").json(&json!({})).send().await.unwrap().json().await.unwrap();
    let b_upload = b_upload["token"].as_str().unwrap().to_string();

    // Every API operation, with B's key and then B's bearer token.
    let doc: Value = t.get("/openapi.json").await.json().await.unwrap();
    let mut tried = 0;
    let mut missing = vec![];
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in ["get", "post", "put", "patch", "delete"] {
            if item.get(m).is_none() {
                continue;
            }
            let op = format!("{} {path}", m.to_uppercase());
            let Some(c) = case(&op, &key_b, &refresh, &video) else {
                missing.push(op);
                continue;
            };
            let method = Method::from_bytes(m.to_uppercase().as_bytes()).unwrap();
            // The analytics lists need a period; the rest ignore it.
            let query = if path.starts_with("/analytics/") { "?period=2026" } else { "" };
            let url = format!("{}{}{query}", t.url, ids.fill(path, &[]));
            for bearer_too in [false, true] {
                let r = t.http.request(method.clone(), &url);
                let r = if bearer_too { r.bearer_auth(&bearer) } else { r.basic_auth(&key_b, Some("")) };
                let (status, text) = match &c {
                    Case::OnA(body) | Case::OwnOnly(body) => {
                        let r = with_body(r, body, &image).send().await.unwrap();
                        (r.status().as_u16(), r.text().await.unwrap())
                    }
                    Case::Upload => {
                        let part = reqwest::multipart::Part::bytes(small_video()).file_name("clip.mp4");
                        let form = reqwest::multipart::Form::new().part("file", part).text("videoId", video.clone());
                        let r = t.http.post(format!("{}/upload?token={b_upload}", t.url)).multipart(form);
                        let r = r.send().await.unwrap();
                        (r.status().as_u16(), r.text().await.unwrap())
                    }
                };
                let who = if bearer_too { "bearer" } else { "key" };
                match &c {
                    Case::OnA(_) | Case::Upload => assert!(
                        status == 404 || status == 403,
                        "{label}: B ({who}) got {status} from {op} on A's ids: {text}"
                    ),
                    Case::OwnOnly(_) => {
                        // The refresh token is single use: the bearer round presents a spent one.
                        let spent = op == "POST /auth/refresh" && bearer_too;
                        assert!(status < 300 || spent, "{label}: B ({who}) got {status} from {op}: {text}");
                        assert_eq!(ids.leaked_in(&text), None, "{label}: {op} answered B with A's id: {text}");
                    }
                }
                tried += 1;
            }
        }
    }
    assert!(missing.is_empty(), "operations without a case in access.rs (add one): {missing:?}");
    assert!(tried >= 90, "{label}: only {tried} requests: is /openapi.json read?");

    // Every delivery route: B's key, B's private tokens, and (to show the route serves) A's.
    let api_paths: BTreeSet<&String> = doc["paths"].as_object().unwrap().keys().collect();
    let routes: Vec<String> = router_paths().into_iter().filter(|p| !api_paths.contains(p)).collect();
    let mut unknown = vec![];
    let mut media = 0;
    for path in &routes {
        let Some(kind) = route(path) else {
            unknown.push(path.clone());
            continue;
        };
        let (b_token, a_token) = match kind {
            Route::Public(why) => {
                eprintln!("{label}: {path} is public by design: {why}");
                continue;
            }
            Route::VideoMedia => ("b-video-token", "a-video-token"),
            Route::LiveMedia => ("b-live-token", "a-live-token"),
        };
        // A live stream's HLS answers only while it broadcasts: A's own token then gets the
        // "not broadcasting" 404 (admitted, nothing to play), never the private refusal.
        let live_hls = path.starts_with("/live/") && path.ends_with("{file}");
        let file = |tok: &str| match path.as_str() {
            // The private multivariant playlist is named by its token.
            "/live/{liveStreamId}/token/{file}" => format!("{tok}.m3u8"),
            "/live/{file}" => format!("{live}.m3u8"),
            _ if live_hls || path.contains("/hls/") => "index.m3u8".to_string(),
            _ => "en.vtt".to_string(),
        };
        let fill = |tok: &str| ids.fill(path, &[("token", tok), ("quality", "240p"), ("file", &file(tok))]);
        for tok in [b_token, "no-token"] {
            let url = format!("{}{}", t.url, fill(tok));
            for bearer_too in [false, true] {
                let r = t.http.get(&url);
                let r = if bearer_too { r.bearer_auth(&bearer) } else { r.basic_auth(&key_b, Some("")) };
                let r = r.send().await.unwrap();
                let status = r.status().as_u16();
                assert!(status == 404 || status == 403, "{label}: B got {status} from {url}");
            }
        }
        // A's own token, fresh for each route (the first request binds it to a session).
        if path.contains("{token}") {
            let a_token = format!("{a_token}-{media}");
            if path.starts_with("/live/") {
                let id = LiveStreamId::parse(&live).unwrap();
                repo.mint_live_tokens(&ws_a, &[(&id, &a_token)], from, until).await.unwrap();
            } else {
                let id = VideoId::parse(&video).unwrap();
                repo.mint_private_tokens(&ws_a, &[(&id, &a_token)], from, until).await.unwrap();
            }
            let url = format!("{}{}", t.url, fill(&a_token));
            let r = t.http.get(&url).send().await.unwrap();
            let status = r.status().as_u16();
            let idle = live_hls && status == 404 && r.text().await.unwrap().contains("live-stream-not-broadcasting");
            assert!(
                status < 300 || idle,
                "{label}: A's own token got {status} from {url}: the route serves nothing to test"
            );
        }
        media += 1;
    }
    assert!(unknown.is_empty(), "delivery routes without a case in access.rs (add one): {unknown:?}");
    assert!(media >= 15, "{label}: only {media} media routes found in the router's source");

    // Nothing of A's changed.
    let after = snapshot(&t, &ids).await;
    for (path, was) in &before {
        assert_eq!(&after[path], was, "{label}: A's {path} changed while B tried the surface");
    }
}
