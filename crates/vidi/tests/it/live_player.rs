//! The live player page (`assets.player` of a live stream, `/embed/live/{liveStreamId}`): what
//! it tells its scripts (`#vidi-config`): a live stream's playlist, thumbnail and name, its theme,
//! the URL's options but never a loop; a private stream's token opening the session its media
//! URLs carry. What the page then does runs in Chromium: tests/browser/live.test.mjs.

use crate::common::{Backend, TestServer, backend_test, problem};
use crate::live_streams::{image, upload_thumbnail};
use serde_json::{Value, json};

/// The page at `path` (its `#vidi-config`), which must answer 200, uncached.
async fn page_config(t: &TestServer, path: &str) -> Value {
    let r = t.http.get(format!("{}{path}", t.url)).send().await.unwrap();
    assert_eq!(r.status(), 200, "{path}");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let html = r.text().await.unwrap();
    assert!(html.contains("<script src=\"/assets/player/live.js\"></script>"));
    let data = html.split("<script type=\"application/json\" id=\"vidi-config\">").nth(1).expect("config script");
    serde_json::from_str(data.split("</script>").next().unwrap()).unwrap()
}

backend_test!(the_live_player_page_plays_the_live_stream);
async fn the_live_player_page_plays_the_live_stream(b: Backend) {
    let t = TestServer::start(&b).await;
    let base = t.cfg.http.public_url.clone().unwrap_or_else(|| t.url.clone());
    let theme: Value = t
        .post_json("/players", json!({"forceLoop": true, "backgroundBottom": "rgba(10, 20, 30, 0.5)"}))
        .await
        .json()
        .await
        .unwrap();
    let r = t.post_json("/live-streams", json!({"name": "Evening <news>", "playerId": theme["playerId"]})).await;
    let l: Value = r.json().await.unwrap();
    let id = l["liveStreamId"].as_str().unwrap();
    let path = l["assets"]["player"].as_str().unwrap().strip_prefix(&base).unwrap().to_string();
    assert_eq!(path, format!("/embed/live/{id}"));

    let c = page_config(&t, &format!("{path}?autoplay=true&muted=true&loop=true")).await;
    assert_eq!(c["live"], true);
    assert_eq!(c["videoId"], id);
    assert_eq!(c["title"], "Evening <news>");
    // The same playlist and thumbnail as the live stream's `assets`, relative to the page.
    assert_eq!(format!("{base}{}", c["hls"].as_str().unwrap()), l["assets"]["hls"].as_str().unwrap());
    // No thumbnail yet: no poster (the page shows a plain panel, and looks again when idle).
    assert_eq!(c["poster"], Value::Null);
    assert_eq!((c["autoplay"].as_bool(), c["muted"].as_bool()), (Some(true), Some(true)));
    // Neither the URL nor the theme loops a live stream; the theme's colours apply.
    assert_eq!((c["loop"].as_bool(), c["forced"]["loop"].as_bool()), (Some(false), Some(false)));
    assert_eq!(c["theme"]["--media-control-background"], "rgba(10, 20, 30, 0.5)");
    assert_eq!(c["startAt"], 0.0);

    // An uploaded thumbnail is the poster, at the live stream's `assets.thumbnail`.
    let r = upload_thumbnail(&t, id, "poster.jpg", image("live-player-poster.jpg")).await;
    assert_eq!(r.status(), 201);
    let c = page_config(&t, &path).await;
    assert_eq!(format!("{base}{}", c["poster"].as_str().unwrap()), l["assets"]["thumbnail"].as_str().unwrap());

    // Its script, beside player.js.
    let r = t.http.get(format!("{}/assets/player/live.js", t.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/javascript");
    assert!(r.text().await.unwrap().contains("lowLatencyMode: true"));

    // Nothing is broadcast: the page's playlist answers what the page waits on.
    let r = t.http.get(format!("{}{}", t.url, c["hls"].as_str().unwrap())).send().await.unwrap();
    problem(r, 404, "live-stream-not-broadcasting").await;

    // An unknown or malformed id: not found.
    for other in ["/embed/live/li000000000000000000000000", "/embed/live/nope"] {
        let r = t.http.get(format!("{}{other}", t.url)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{other}");
    }
}

backend_test!(a_private_live_player_opens_a_playback_session);
async fn a_private_live_player_opens_a_playback_session(b: Backend) {
    let t = TestServer::start(&b).await;
    let base = t.cfg.http.public_url.clone().unwrap_or_else(|| t.url.clone());
    let l: Value =
        t.post_json("/live-streams", json!({"name": "private", "public": false})).await.json().await.unwrap();
    let id = l["liveStreamId"].as_str().unwrap();
    let player = l["assets"]["player"].as_str().unwrap();
    let token = player.split_once("?token=").map(|(_, t)| t.to_string()).expect("a private token");

    // Without its token: refused, as a private video's page is.
    let r = t.http.get(format!("{}/embed/live/{id}", t.url)).send().await.unwrap();
    problem(r, 403, "video-private-token-invalid").await;

    // With it: the media URLs are the token's, with the session the page opened.
    let r = upload_thumbnail(&t, id, "poster.jpg", image("live-player-poster.jpg")).await;
    assert_eq!(r.status(), 201);
    let c = page_config(&t, player.strip_prefix(&base).unwrap()).await;
    let hls = c["hls"].as_str().unwrap();
    let (path, session) = hls.split_once("?avh=").expect("the session in the playlist URL");
    assert_eq!(path, format!("/live/{id}/token/{token}.m3u8"));
    let poster = c["poster"].as_str().unwrap();
    assert_eq!(poster, format!("/live/{id}/token/{token}/thumbnail.jpg?avh={session}"));
    let r = t.http.get(format!("{}{poster}", t.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    // In that session the playlist is admitted (nothing is broadcast: 404, not 403)…
    let r = t.http.get(format!("{}{hls}", t.url)).send().await.unwrap();
    problem(r, 404, "live-stream-not-broadcasting").await;
    // …and without it, the used token is not.
    let r = t.http.get(format!("{}{path}", t.url)).send().await.unwrap();
    problem(r, 403, "video-private-token-invalid").await;
}
