//! The player page's side of `@api.video/player-sdk` (issue 10 item 6), on every configured
//! backend: the options the SDK puts in the iframe URL's query reach the page's configuration,
//! a theme's `enableApi` and what it forces reach it too, and the bridge script is served. The
//! protocol itself runs in a browser: tests/browser/sdk.test.mjs.

use crate::common::{Backend, TestServer, backend_test};
use serde_json::{Value, json};

/// The configuration the player page gives its scripts (`#vidi-config`), and the page.
async fn page(t: &TestServer, video: &str, query: &str) -> (Value, String) {
    let r = t.http.get(format!("{}/embed/vod/{video}{query}", t.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    let data = html.split("<script type=\"application/json\" id=\"vidi-config\">").nth(1).expect("config script");
    let config = serde_json::from_str(data.split("</script>").next().unwrap()).unwrap();
    (config, html)
}

backend_test!(the_sdks_url_options_reach_the_player_page);
async fn the_sdks_url_options_reach_the_player_page(b: Backend) {
    let t = TestServer::start(&b).await;
    let video = t.create_video("sdk options").await;

    // What an SDK with no options sends: `?id=…&ts=…` (and its hash, which the server never sees).
    let (c, html) = page(&t, &video, &format!("?id={video}&ts=1700000000000")).await;
    assert!(html.contains("<script src=\"/assets/player/sdk-bridge.js\"></script>"), "{}", b.label);
    assert_eq!(c["api"], true, "{}: {c}", b.label);
    // No autoplay unless asked, as on api.video: not by the SDK's default, nor by a plain link.
    assert_eq!(c["autoplay"], false);
    assert_eq!(page(&t, &video, "").await.0["autoplay"], false);
    assert_eq!(page(&t, &video, &format!("?id={video}&ts=1&autoplay=true")).await.0["autoplay"], true);
    assert_eq!(
        (c["controls"].as_bool(), c["muted"].as_bool(), c["loop"].as_bool()),
        (Some(true), Some(false), Some(false))
    );
    assert_eq!(c["forced"], json!({"hideTitle": false, "hideControls": false, "autoplay": false, "loop": false}));
    assert_eq!(c["metadata"], json!({}));
    assert_eq!(c["mp4"], format!("/vod/{video}/mp4/source.mp4"));
    // setTheme's table: every colour of the schema, with the variables it sets.
    let vars = c["themeVariables"].as_object().unwrap();
    assert_eq!(vars.len(), 10, "{c}");
    assert_eq!(vars["trackPlayed"], json!(["--media-range-bar-color"]));
    assert_eq!(vars["text"].as_array().unwrap().len(), 3);

    // Every option the SDK passes in the query (as it writes them: unencoded `true`s and
    // `metadata[key]=value`).
    let q = "?id=x&autoplay=false&muted=true&hideControls=true&hidePoster=true&loop=true&hideTitle=true\
             &metadata[Author]=John%20Doe&metadata[userId]=42&ts=1";
    let (c, _) = page(&t, &video, q).await;
    assert_eq!(c["autoplay"], false);
    assert_eq!(c["muted"], true);
    assert_eq!(c["controls"], false);
    assert_eq!(c["hidePoster"], true);
    assert_eq!(c["loop"], true);
    assert_eq!(c["hideTitle"], true);
    assert_eq!(c["metadata"], json!({"Author": "John Doe", "userId": "42"}));
    // `chromeless`: no controls and no title.
    let (c, _) = page(&t, &video, "?chromeless=true").await;
    assert_eq!((c["controls"].as_bool(), c["hideTitle"].as_bool()), (Some(false), Some(true)));
    // Anything else is not a yes.
    let (c, _) = page(&t, &video, "?muted=<script>&loop=0&hideControls=nope").await;
    assert_eq!(
        (c["muted"].as_bool(), c["loop"].as_bool(), c["controls"].as_bool()),
        (Some(false), Some(false), Some(true))
    );

    // No MP4 for a video without one: the SDK's download() then says so.
    let r = t.patch_json(&format!("/videos/{video}"), json!({ "mp4Support": false })).await;
    assert_eq!(r.status(), 200);
    let (c, _) = page(&t, &video, "").await;
    assert!(c["mp4"].is_null(), "{c}");

    // The bridge script, as a script.
    let r = t.http.get(format!("{}/assets/player/sdk-bridge.js", t.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/javascript");
    assert!(r.text().await.unwrap().contains("sdkSync"));
}

backend_test!(a_theme_decides_whether_the_sdk_is_obeyed_and_what_it_cannot_change);
async fn a_theme_decides_whether_the_sdk_is_obeyed_and_what_it_cannot_change(b: Backend) {
    let t = TestServer::start(&b).await;
    let p: Value = t
        .post_json(
            "/players",
            json!({ "enableApi": false, "enableControls": false, "hideTitle": true, "forceLoop": true, "forceAutoplay": true }),
        )
        .await
        .json()
        .await
        .unwrap();
    let pid = p["playerId"].as_str().unwrap();
    let v: Value = t.post_json("/videos", json!({ "title": "themed", "playerId": pid })).await.json().await.unwrap();
    let video = v["videoId"].as_str().unwrap();

    let (c, _) = page(&t, video, "?autoplay=false&hideTitle=false&loop=false").await;
    assert_eq!(c["api"], false, "{}: {c}", b.label);
    assert_eq!(c["forced"], json!({"hideTitle": true, "hideControls": true, "autoplay": true, "loop": true}));
    assert_eq!(
        (c["autoplay"].as_bool(), c["loop"].as_bool(), c["controls"].as_bool()),
        (Some(true), Some(true), Some(false))
    );

    // The theme allows the API again and forces nothing: `hideControls` from the SDK holds.
    let r = t
        .patch_json(
            &format!("/players/{pid}"),
            json!({ "enableApi": true, "enableControls": true, "hideTitle": false, "forceLoop": false, "forceAutoplay": false }),
        )
        .await;
    assert_eq!(r.status(), 200);
    let (c, _) = page(&t, video, "?hideControls=true").await;
    assert_eq!(c["api"], true);
    assert_eq!(c["controls"], false);
    assert_eq!(c["forced"], json!({"hideTitle": false, "hideControls": false, "autoplay": false, "loop": false}));
}
