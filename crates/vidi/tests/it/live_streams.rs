//! Live streams over HTTP (contract rows 18–24, §2 LiveStream, §7), on every configured backend,
//! as a client calls them: create, list with its filters, sorts and pages, show, update (the
//! restreams replaced whole), delete, the thumbnail uploaded, served and deleted; §7's validation
//! errors with their names and details; private streams' tokens; other workspaces kept out.

use std::path::PathBuf;
use std::process::Command;

use crate::common::{Backend, TestServer, backend_test, problem};
use reqwest::Method;
use serde_json::{Value, json};

/// A real image made by ffmpeg's lavfi `color` source, cached in the target folder.
pub(crate) fn image(name: &str) -> Vec<u8> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("media");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(name);
    if !out.exists() {
        let tmp = dir.join(format!("{}-{name}", uuid::Uuid::new_v4().simple()));
        let st = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-f", "lavfi", "-i", "color=c=blue:s=320x180", "-frames:v", "1"])
            .arg(&tmp)
            .status()
            .expect("ffmpeg runs");
        assert!(st.success(), "ffmpeg failed for {name}");
        std::fs::rename(&tmp, &out).unwrap();
    }
    std::fs::read(out).unwrap()
}

async fn create(t: &TestServer, body: Value) -> Value {
    let r = t.post_json("/live-streams", body).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    r.json().await.unwrap()
}

pub(crate) async fn upload_thumbnail(t: &TestServer, id: &str, file: &str, bytes: Vec<u8>) -> reqwest::Response {
    let part = reqwest::multipart::Part::bytes(bytes).file_name(file.to_string());
    let form = reqwest::multipart::Form::new().part("file", part);
    t.req(Method::POST, &format!("/live-streams/{id}/thumbnail")).multipart(form).send().await.unwrap()
}

/// The keys of a live stream, exactly the 2023 schema's (Python refuses any other).
fn assert_schema(l: &Value) {
    let mut keys: Vec<&str> = l.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    let mut expected = vec![
        "assets",
        "broadcasting",
        "createdAt",
        "liveStreamId",
        "name",
        "public",
        "record",
        "restreams",
        "streamKey",
        "updatedAt",
    ];
    if l.get("playerId").is_some() {
        expected.push("playerId");
        expected.sort();
    }
    assert_eq!(keys, expected, "{l}");
    let mut asset_keys: Vec<&str> = l["assets"].as_object().unwrap().keys().map(String::as_str).collect();
    asset_keys.sort();
    assert_eq!(asset_keys, ["hls", "iframe", "player", "thumbnail"], "{l}");
}

backend_test!(live_streams_crud_lists_and_thumbnails);
async fn live_streams_crud_lists_and_thumbnails(b: Backend) {
    let t = TestServer::start(&b).await;
    let base = t.cfg.http.public_url.clone().unwrap_or_else(|| t.url.clone());
    // Create: 200 (not 201), a server-made UUID v4 key, `restreams` present, nothing broadcasting.
    let a = create(&t, json!({ "name": "Morning show" })).await;
    assert_schema(&a);
    let id = a["liveStreamId"].as_str().unwrap().to_string();
    assert!(id.starts_with("li") && id.len() == 24, "{id}");
    let key = uuid::Uuid::parse_str(a["streamKey"].as_str().unwrap()).unwrap();
    assert_eq!(key.get_version_num(), 4);
    assert_eq!((a["record"].as_bool(), a["public"].as_bool()), (Some(false), Some(true)));
    assert_eq!((a["broadcasting"].as_bool(), a["restreams"].clone()), (Some(false), json!([])));
    assert!(a["createdAt"].as_str().unwrap().ends_with("+00:00"), "{a}");
    assert_eq!(a["assets"]["hls"], format!("{base}/live/{id}.m3u8"), "{}", b.label);
    assert_eq!(a["assets"]["thumbnail"], format!("{base}/live/{id}/thumbnail.jpg"));
    assert_eq!(a["assets"]["player"], format!("{base}/embed/live/{id}"));
    assert!(a["assets"]["iframe"].as_str().unwrap().contains(&format!("src=\"{base}/embed/live/{id}\"")));

    let restreams = json!([
        { "name": "YouTube", "serverUrl": "rtmp://a.rtmp.youtube.com/live2", "streamKey": "yt-key" },
        { "name": "Facebook", "serverUrl": "rtmps://live-api-s.facebook.com:443/rtmp/", "streamKey": "fb-key" },
    ]);
    let c = create(&t, json!({ "name": "Evening news", "record": true, "restreams": restreams })).await;
    let cid = c["liveStreamId"].as_str().unwrap().to_string();
    assert_eq!(c["record"], true);
    assert_eq!(c["restreams"], restreams);
    let bb = create(&t, json!({ "name": "afternoon NEWS" })).await;
    let bid = bb["liveStreamId"].as_str().unwrap().to_string();

    // Show.
    let r = t.get(&format!("/live-streams/{cid}")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let shown: Value = r.json().await.unwrap();
    assert_eq!(shown, c);

    // List: filters, sorts, pages.
    let names = |v: &Value| -> Vec<String> {
        v["data"].as_array().unwrap().iter().map(|l| l["name"].as_str().unwrap().to_string()).collect()
    };
    let all: Value = t.get("/live-streams").await.json().await.unwrap();
    assert_eq!(names(&all), ["Morning show", "Evening news", "afternoon NEWS"], "{}", b.label);
    assert_eq!(all["pagination"]["itemsTotal"], 3);
    let r: Value = t.get("/live-streams?name=news").await.json().await.unwrap();
    assert_eq!(names(&r), ["Evening news", "afternoon NEWS"]);
    let r: Value =
        t.get(&format!("/live-streams?streamKey={}", c["streamKey"].as_str().unwrap())).await.json().await.unwrap();
    assert_eq!(names(&r), ["Evening news"]);
    let r: Value = t.get("/live-streams?streamKey=Evening").await.json().await.unwrap();
    assert_eq!(r["data"], json!([]));
    assert_eq!(r["pagination"]["itemsTotal"], 0);
    let r: Value = t.get("/live-streams?sortBy=name&sortOrder=asc").await.json().await.unwrap();
    assert_eq!(names(&r), ["Evening news", "Morning show", "afternoon NEWS"]);
    let r: Value = t.get("/live-streams?sortBy=createdAt&sortOrder=desc").await.json().await.unwrap();
    assert_eq!(names(&r), ["afternoon NEWS", "Evening news", "Morning show"]);
    let r: Value = t.get("/live-streams?sortBy=publishedAt&sortOrder=asc").await.json().await.unwrap();
    assert_eq!(names(&r), ["Morning show", "Evening news", "afternoon NEWS"]);
    let r: Value =
        t.get("/live-streams?sortBy=updatedAt&sortOrder=asc&pageSize=2&currentPage=2").await.json().await.unwrap();
    assert_eq!(names(&r), ["afternoon NEWS"]);
    assert_eq!(r["pagination"]["pagesTotal"], 2);
    assert_eq!(r["pagination"]["currentPageItems"], 1);
    let links = r["pagination"]["links"].as_array().unwrap();
    let first = links.iter().find(|l| l["rel"] == "first").unwrap();
    assert_eq!(first["uri"], "/live-streams?sortBy=updatedAt&sortOrder=asc&currentPage=1&pageSize=2");
    problem(t.get("/live-streams?sortBy=title").await, 400, "request-invalid-query-parameter").await;
    problem(t.get("/live-streams?pageSize=0").await, 400, "request-invalid-query-parameter").await;

    // Update: fields not given keep their value; `restreams` replaces the whole list.
    let only = json!([{ "name": "Twitch", "serverUrl": "rtmp://live.twitch.tv/app", "streamKey": "tw" }]);
    let r = t.patch_json(&format!("/live-streams/{cid}"), json!({ "name": "Late news", "restreams": only })).await;
    assert_eq!(r.status(), 200);
    let u: Value = r.json().await.unwrap();
    assert_schema(&u);
    assert_eq!(
        (u["name"].clone(), u["record"].clone(), u["restreams"].clone()),
        (json!("Late news"), json!(true), only)
    );
    assert_eq!(u["streamKey"], c["streamKey"], "the key cannot be rotated");
    let r = t.patch_json(&format!("/live-streams/{cid}"), json!({ "record": false, "restreams": [] })).await;
    let u: Value = r.json().await.unwrap();
    assert_eq!(
        (u["record"].clone(), u["restreams"].clone(), u["name"].clone()),
        (json!(false), json!([]), json!("Late news"))
    );

    // Thumbnail: uploaded (201, the live stream), served, replaced, deleted (200, the live stream).
    let r = t.get(&format!("/live/{bid}/thumbnail.jpg")).await;
    assert_eq!(r.status(), 404);
    let r = upload_thumbnail(&t, &bid, "poster.png", image("live-thumb.png")).await;
    assert_eq!(r.status(), 201, "{}", b.label);
    let up: Value = r.json().await.unwrap();
    assert_schema(&up);
    assert_eq!(up["liveStreamId"], bid.as_str());
    let r = t.http.get(format!("{}/live/{bid}/thumbnail.jpg", t.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    let first_jpeg = r.bytes().await.unwrap();
    assert!(first_jpeg.starts_with(&[0xFF, 0xD8, 0xFF]), "stored as a JPEG");
    let first_key = thumb_key(&t, &bid).await.expect("recorded");
    assert!(stored(&t, &first_key).await);
    let r = upload_thumbnail(&t, &bid, "poster.jpg", image("live-thumb.jpg")).await;
    assert_eq!(r.status(), 201);
    let second_key = thumb_key(&t, &bid).await.expect("recorded");
    assert!(!stored(&t, &first_key).await, "the replaced thumbnail is deleted");
    assert!(stored(&t, &second_key).await);
    problem(
        upload_thumbnail(&t, &bid, "x.gif", b"GIF89a not really".to_vec()).await,
        400,
        "uploaded-file-extension-invalid",
    )
    .await;
    let r = t.req(Method::DELETE, &format!("/live-streams/{bid}/thumbnail")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let after: Value = r.json().await.unwrap();
    assert_eq!(after["liveStreamId"], bid.as_str());
    assert_schema(&after);
    assert_eq!(t.get(&format!("/live/{bid}/thumbnail.jpg")).await.status(), 404);
    assert!(!stored(&t, &second_key).await && thumb_key(&t, &bid).await.is_none());

    // Delete: 204, gone, its thumbnail gone from storage.
    assert_eq!(upload_thumbnail(&t, &id, "p.png", image("live-thumb.png")).await.status(), 201);
    let key = thumb_key(&t, &id).await.expect("recorded");
    assert!(stored(&t, &key).await);
    let r = t.req(Method::DELETE, &format!("/live-streams/{id}")).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert!(r.bytes().await.unwrap().is_empty());
    assert!(!stored(&t, &key).await, "{}", b.label);
    assert_eq!(t.get(&format!("/live/{id}/thumbnail.jpg")).await.status(), 404);

    // 404s name `liveStreamId`, for an unknown id and a malformed one, on every operation.
    for missing in [id.as_str(), "li0000000000000000000000", "nonsense"] {
        for (m, p) in [
            (Method::GET, format!("/live-streams/{missing}")),
            (Method::PATCH, format!("/live-streams/{missing}")),
            (Method::DELETE, format!("/live-streams/{missing}")),
            (Method::DELETE, format!("/live-streams/{missing}/thumbnail")),
        ] {
            let r = t.req(m.clone(), &p).json(&json!({})).send().await.unwrap();
            let body = problem(r, 404, "resource-not-found").await;
            assert_eq!(body["name"], "liveStreamId", "{m} {p}");
        }
        let body =
            problem(upload_thumbnail(&t, missing, "p.png", image("live-thumb.png")).await, 404, "resource-not-found")
                .await;
        assert_eq!(body["name"], "liveStreamId");
    }

    // Videos recorded from a live stream are still found by it (none yet).
    let r: Value = t.get(&format!("/videos?liveStreamId={cid}")).await.json().await.unwrap();
    assert_eq!(r["data"], json!([]));
}

/// The media store key of a live stream's uploaded thumbnail.
async fn thumb_key(t: &TestServer, id: &str) -> Option<String> {
    let id = vidi_core::id::LiveStreamId::parse(id).unwrap();
    t.server.state.repo.get_live_stream(&t.ws().await, &id).await.unwrap().thumbnail_key
}

/// Whether the media store holds `key`.
async fn stored(t: &TestServer, key: &str) -> bool {
    t.server.state.blobs.size(key).await.unwrap().is_some()
}

backend_test!(live_stream_validation_errors);
async fn live_stream_validation_errors(b: Backend) {
    let t = TestServer::start(&b).await;
    let label = b.label.as_str();
    // (payload, name, detail) for create; the same for update.
    let ok = |n: &str| json!({ "name": n, "serverUrl": "rtmp://h.example/app", "streamKey": "k" });
    let six: Vec<Value> = (0..6).map(|i| ok(&format!("d{i}"))).collect();
    let cases = vec![
        (json!({ "restreams": six }), "restreams", "This collection should contain 5 elements or less."),
        (
            json!({ "restreams": [ok("a"), { "serverUrl": "rtmp://h/app", "streamKey": "k" }] }),
            "restreams[1][name]",
            "This value should not be null.",
        ),
        (
            json!({ "restreams": [{ "name": null, "serverUrl": "rtmp://h/app", "streamKey": "k" }] }),
            "restreams[0][name]",
            "This value should not be null.",
        ),
        (
            json!({ "restreams": [{ "name": "  ", "serverUrl": "rtmp://h/app", "streamKey": "k" }] }),
            "restreams[0][name]",
            "This value should not be blank.",
        ),
        (
            json!({ "restreams": [{ "name": "a", "serverUrl": "", "streamKey": "k" }] }),
            "restreams[0][serverUrl]",
            "This value should not be blank.",
        ),
        (
            json!({ "restreams": [{ "name": "a", "streamKey": "k" }] }),
            "restreams[0][serverUrl]",
            "This value should not be null.",
        ),
        (
            json!({ "restreams": [{ "name": "a", "serverUrl": "rtmp://h/app" }] }),
            "restreams[0][streamKey]",
            "This value should not be null.",
        ),
        (
            json!({ "restreams": [{ "name": "a", "serverUrl": "rtmp://h/app", "streamKey": "" }] }),
            "restreams[0][streamKey]",
            "This value should not be blank.",
        ),
        (
            json!({ "restreams": [{ "name": "a", "serverUrl": "rtmp://h.example", "streamKey": "k" }] }),
            "restreams[0][serverUrl]",
            "Missing app name: rtmp://[host]/[app name].",
        ),
        (
            json!({ "restreams": [{ "name": "a", "serverUrl": "https://h.example/app", "streamKey": "k" }] }),
            "restreams[0][serverUrl]",
            "RTMP URL should have the following format: rtmp://[host]/[app name].",
        ),
        (
            json!({ "restreams": [ok("a"), ok("b"), { "name": "c", "serverUrl": "rtmp:///app", "streamKey": "k" }] }),
            "restreams[2][serverUrl]",
            "RTMP URL should have the following format: rtmp://[host]/[app name].",
        ),
    ];
    let existing = create(&t, json!({ "name": "target" })).await;
    let id = existing["liveStreamId"].as_str().unwrap().to_string();
    for (payload, name, detail) in &cases {
        let mut with_name = payload.clone();
        with_name["name"] = json!("x");
        let body = problem(t.post_json("/live-streams", with_name).await, 400, "invalid-attribute").await;
        assert_eq!(
            (body["name"].as_str(), body["detail"].as_str()),
            (Some(*name), Some(*detail)),
            "create {payload} {label}"
        );
        let body =
            problem(t.patch_json(&format!("/live-streams/{id}"), payload.clone()).await, 400, "invalid-attribute")
                .await;
        assert_eq!((body["name"].as_str(), body["detail"].as_str()), (Some(*name), Some(*detail)), "update {payload}");
    }
    // Nothing was changed by the refused updates, nor created by the refused creations.
    let after: Value = t.get(&format!("/live-streams/{id}")).await.json().await.unwrap();
    assert_eq!(after, existing);
    let all: Value = t.get("/live-streams").await.json().await.unwrap();
    assert_eq!(all["pagination"]["itemsTotal"], 1, "{label}");

    // The name is required on create, and may not be blank.
    let body = problem(t.post_json("/live-streams", json!({ "record": true })).await, 400, "attribute-required").await;
    assert_eq!(body["name"], "name");
    let body = problem(t.post_json("/live-streams", json!({ "name": " " })).await, 400, "invalid-attribute").await;
    assert_eq!(body["name"], "name");
    let body =
        problem(t.post_json("/live-streams", json!({ "name": "x", "public": "yes" })).await, 400, "invalid-attribute")
            .await;
    assert_eq!(body["name"], "public");
    problem(t.req(Method::POST, "/live-streams").body("{").send().await.unwrap(), 400, "invalid-payload").await;

    // playerId must name a player of this workspace.
    let body = problem(
        t.post_json("/live-streams", json!({ "name": "x", "playerId": "pt0000000000000000000000" })).await,
        400,
        "invalid-attribute",
    )
    .await;
    assert_eq!(body["name"], "playerId");
    let r = t.post_json("/players", json!({})).await;
    let player = r.json::<Value>().await.unwrap()["playerId"].as_str().unwrap().to_string();
    let l = create(&t, json!({ "name": "themed", "playerId": player })).await;
    assert_eq!(l["playerId"], player.as_str());
    assert_schema(&l);
    let lid = l["liveStreamId"].as_str().unwrap();
    let u: Value =
        t.patch_json(&format!("/live-streams/{lid}"), json!({ "playerId": null })).await.json().await.unwrap();
    assert!(u.get("playerId").is_none(), "{u}");
    let u: Value =
        t.patch_json(&format!("/live-streams/{lid}"), json!({ "playerId": player })).await.json().await.unwrap();
    assert_eq!(u["playerId"], player.as_str());
    // Deleting the player detaches it (contract §8).
    assert_eq!(t.req(Method::DELETE, &format!("/players/{player}")).send().await.unwrap().status(), 204);
    let u: Value = t.get(&format!("/live-streams/{lid}")).await.json().await.unwrap();
    assert!(u.get("playerId").is_none(), "{u}");
}

backend_test!(private_live_streams_and_other_workspaces);
async fn private_live_streams_and_other_workspaces(b: Backend) {
    let t = TestServer::start(&b).await;
    let label = b.label.as_str();
    let base = t.cfg.http.public_url.clone().unwrap_or_else(|| t.url.clone());
    let l = create(&t, json!({ "name": "secret", "public": false })).await;
    assert_eq!(l["public"], false);
    let id = l["liveStreamId"].as_str().unwrap().to_string();
    // Every read mints a fresh single-use token, in the VOD pattern.
    let token_of = |v: &Value| -> String {
        let player = v["assets"]["player"].as_str().unwrap();
        let t = player.strip_prefix(&format!("{base}/embed/live/{id}?token=")).unwrap_or_else(|| panic!("{v}"));
        uuid::Uuid::parse_str(t).unwrap();
        assert_eq!(v["assets"]["hls"], format!("{base}/live/{id}/token/{t}.m3u8"));
        assert_eq!(v["assets"]["thumbnail"], format!("{base}/live/{id}/token/{t}/thumbnail.jpg"));
        t.to_string()
    };
    let t1 = token_of(&l);
    let shown: Value = t.get(&format!("/live-streams/{id}")).await.json().await.unwrap();
    let t2 = token_of(&shown);
    assert_ne!(t1, t2);
    let listed: Value = t.get("/live-streams").await.json().await.unwrap();
    token_of(&listed["data"][0]);

    // Its thumbnail: refused without a token, served with one, in the session it opened.
    assert_eq!(upload_thumbnail(&t, &id, "p.png", image("live-thumb.png")).await.status(), 201);
    let plain = t.http.get(format!("{}/live/{id}/thumbnail.jpg", t.url)).send().await.unwrap();
    assert!(
        problem(plain, 403, "video-private-token-invalid").await["title"]
            .as_str()
            .unwrap()
            .starts_with("This live stream")
    );
    let r = t.http.get(format!("{}/live/{id}/token/{t1}/thumbnail.jpg", t.url)).send().await.unwrap();
    assert_eq!(r.status(), 200, "{label}");
    let cookie = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    // Single use: another browser (no session) is refused; the first one is let in again.
    let r = t.http.get(format!("{}/live/{id}/token/{t1}/thumbnail.jpg", t.url)).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let r = t
        .http
        .get(format!("{}/live/{id}/token/{t1}/thumbnail.jpg", t.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = t.http.get(format!("{}/live/{id}/token/not-a-token/thumbnail.jpg", t.url)).send().await.unwrap();
    assert_eq!(r.status(), 403);
    // Made public: no token in its URLs, and the plain URL serves.
    let u: Value = t.patch_json(&format!("/live-streams/{id}"), json!({ "public": true })).await.json().await.unwrap();
    assert_eq!(u["assets"]["player"], format!("{base}/embed/live/{id}"));
    assert_eq!(t.http.get(format!("{}/live/{id}/thumbnail.jpg", t.url)).send().await.unwrap().status(), 200);

    // Another workspace's key sees nothing and changes nothing.
    let repo = t.server.state.repo.clone();
    let other_ws = repo.create_workspace("other").await.unwrap();
    let other_key = vidi_api::auth::create_api_key(repo.as_ref(), &other_ws, "k").await.unwrap();
    let as_other = |m: Method, p: String| t.http.request(m, format!("{}{}", t.url, p)).basic_auth(&other_key, Some(""));
    let r: Value = as_other(Method::GET, "/live-streams".into()).send().await.unwrap().json().await.unwrap();
    assert_eq!(r["data"], json!([]), "{label}");
    let key = u["streamKey"].as_str().unwrap();
    let r: Value =
        as_other(Method::GET, format!("/live-streams?streamKey={key}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(r["data"], json!([]));
    for (m, p) in [
        (Method::GET, format!("/live-streams/{id}")),
        (Method::PATCH, format!("/live-streams/{id}")),
        (Method::DELETE, format!("/live-streams/{id}")),
        (Method::DELETE, format!("/live-streams/{id}/thumbnail")),
    ] {
        let r = as_other(m.clone(), p.clone()).json(&json!({ "name": "stolen" })).send().await.unwrap();
        assert_eq!(problem(r, 404, "resource-not-found").await["name"], "liveStreamId", "{m} {p}");
    }
    let part = reqwest::multipart::Part::bytes(image("live-thumb.png")).file_name("p.png");
    let r = as_other(Method::POST, format!("/live-streams/{id}/thumbnail"))
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // A player of the other workspace cannot be attached.
    let theirs: Value =
        as_other(Method::POST, "/players".into()).json(&json!({})).send().await.unwrap().json().await.unwrap();
    let body = problem(
        t.patch_json(&format!("/live-streams/{id}"), json!({ "playerId": theirs["playerId"] })).await,
        400,
        "invalid-attribute",
    )
    .await;
    assert_eq!(body["name"], "playerId");
    let after: Value = t.get(&format!("/live-streams/{id}")).await.json().await.unwrap();
    assert_eq!((after["name"].as_str(), after["public"].as_bool()), (Some("secret"), Some(true)));
    assert_eq!(t.http.get(format!("{}/live/{id}/thumbnail.jpg", t.url)).send().await.unwrap().status(), 200);
}
