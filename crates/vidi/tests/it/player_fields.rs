//! What the player page is told by a video's and a theme's fields (issue 25), as its scripts read
//! it (`#vidi-config`): autoplay only when asked, `panoramic`, and theme colours in one grammar on
//! create and update. What the page then does with them runs in Chromium:
//! tests/browser/fields.test.mjs.

use crate::common::{Backend, TestServer, backend_test, problem};
use serde_json::{Value, json};

/// The configuration the player page gives its scripts (`#vidi-config`).
async fn page_config(t: &TestServer, video: &str, query: &str) -> Value {
    let r = t.http.get(format!("{}/embed/vod/{video}{query}", t.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    let data = html.split("<script type=\"application/json\" id=\"vidi-config\">").nth(1).expect("config script");
    serde_json::from_str(data.split("</script>").next().unwrap()).unwrap()
}

backend_test!(the_player_autoplays_only_when_asked);
async fn the_player_autoplays_only_when_asked(b: Backend) {
    let t = TestServer::start(&b).await;
    let video = t.create_video("autoplay").await;
    // A plain link (`assets.player`, `assets.iframe`), and the SDK with no option: no autoplay.
    let v: Value = t.get(&format!("/videos/{video}")).await.json().await.unwrap();
    let player = v["assets"]["player"].as_str().unwrap();
    let query = player.split_once('?').map_or(String::new(), |(_, q)| format!("?{q}"));
    for q in [query.as_str(), "", &format!("?id={video}&ts=1700000000000")] {
        let c = page_config(&t, &video, q).await;
        assert_eq!((c["autoplay"].as_bool(), c["forced"]["autoplay"].as_bool()), (Some(false), Some(false)), "{q}");
    }
    // The URL asks (as the SDK's `autoplay: true` writes it).
    for q in ["?autoplay=true", "?autoplay", "?autoplay=1", &format!("?id={video}&ts=1&autoplay=true")] {
        assert_eq!(page_config(&t, &video, q).await["autoplay"], true, "{}: {q}", b.label);
    }
    // A theme that forces it, which the URL cannot undo; one that does not force it changes nothing.
    let quiet: Value = t.post_json("/players", json!({"forceAutoplay": false})).await.json().await.unwrap();
    let loud: Value = t.post_json("/players", json!({"forceAutoplay": true})).await.json().await.unwrap();
    t.patch_json(&format!("/videos/{video}"), json!({"playerId": quiet["playerId"]})).await;
    assert_eq!(page_config(&t, &video, "").await["autoplay"], false);
    t.patch_json(&format!("/videos/{video}"), json!({"playerId": loud["playerId"]})).await;
    let c = page_config(&t, &video, "?autoplay=false").await;
    assert_eq!((c["autoplay"].as_bool(), c["forced"]["autoplay"].as_bool()), (Some(true), Some(true)));
}

backend_test!(a_panoramic_video_tells_its_player);
async fn a_panoramic_video_tells_its_player(b: Backend) {
    let t = TestServer::start(&b).await;
    let r = t.post_json("/videos", json!({"title": "360", "panoramic": true})).await;
    let v: Value = r.json().await.unwrap();
    let id = v["videoId"].as_str().unwrap();
    assert_eq!(v["panoramic"], true);
    assert_eq!(page_config(&t, id, "").await["panoramic"], true, "{}", b.label);
    let flat = t.create_video("flat").await;
    assert_eq!(page_config(&t, &flat, "").await["panoramic"], false);
    // Updated either way, the page follows.
    t.patch_json(&format!("/videos/{id}"), json!({"panoramic": false})).await;
    assert_eq!(page_config(&t, id, "").await["panoramic"], false);
    t.patch_json(&format!("/videos/{flat}"), json!({"panoramic": true})).await;
    assert_eq!(page_config(&t, &flat, "").await["panoramic"], true);
    // The page draws it with its own script (no library): the panorama is in player.js.
    let js = t.http.get(format!("{}/assets/player/player.js", t.url)).send().await.unwrap().text().await.unwrap();
    assert!(js.contains("function panorama()") && js.contains("getContext('webgl'"));
}

backend_test!(theme_colours_follow_one_grammar_on_create_and_update);
async fn theme_colours_follow_one_grammar_on_create_and_update(b: Backend) {
    let t = TestServer::start(&b).await;
    let p: Value = t.post_json("/players", json!({})).await.json().await.unwrap();
    let id = p["playerId"].as_str().unwrap();
    let fields = ["text", "link", "linkHover", "linkActive", "trackPlayed", "trackUnplayed"];
    let more = ["trackBackground", "backgroundTop", "backgroundBottom", "backgroundText"];
    for field in fields.iter().chain(&more) {
        for bad in ["nonsense", "rgba(", "#12345", "rgb(0, 0)", "currentcolor", "red;", "hsl(120, 50, 50)"] {
            let r = t.post_json("/players", json!({ *field: bad })).await;
            let body = problem(r, 400, "invalid-attribute").await;
            assert_eq!(body["name"], *field, "{}: create {field}={bad}", b.label);
            let r = t.patch_json(&format!("/players/{id}"), json!({ *field: bad })).await;
            let body = problem(r, 400, "invalid-attribute").await;
            assert_eq!(body["name"], *field, "{}: update {field}={bad}", b.label);
        }
        for good in
            ["rgba(255, 255, 255, .95)", "#fff", "#A0b1C2cc", "RebeccaPurple", "transparent", "rgb(0 0 0 / 50%)"]
        {
            let r = t.post_json("/players", json!({ *field: good })).await;
            assert_eq!(r.status(), 201, "{}: create {field}={good}", b.label);
            let r = t.patch_json(&format!("/players/{id}"), json!({ *field: good })).await;
            assert_eq!(r.status(), 200, "{}: update {field}={good}", b.label);
            let got: Value = r.json().await.unwrap();
            assert_eq!(got[*field], good);
        }
    }
    // Nothing refused was stored: the one player made first and those made with good colours.
    let list: Value = t.get("/players?pageSize=100").await.json().await.unwrap();
    assert_eq!(list["pagination"]["itemsTotal"], 1 + 6 * 10);
}
