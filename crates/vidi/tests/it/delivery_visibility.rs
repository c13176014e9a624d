//! Segments are served on what the node remembers of a video's visibility (issue 9: a segment
//! request reads no database row), so these tests check that what it remembers never outlives a
//! change: made private, made public again, deleted. On the node that makes the change it takes
//! effect at once; on another node sharing the database, within the cache's lifetime (1 s).
//! On every configured backend.

use crate::common;
use crate::common::{Backend, TestServer, backend_test, small_video};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Uploads a short clip as a public video, waits until it plays, and returns its id and the path
/// of its first 240p segment.
async fn playable_video(t: &TestServer) -> (String, String) {
    let id = t.create_video("visibility").await;
    assert_eq!(t.upload(&id, None, small_video()).await.status(), 201);
    t.wait_status(&id, 180, |s| s["encoding"]["playable"] == true).await;
    let playlist = t.http.get(format!("{}/vod/{id}/hls/240p/index.m3u8", t.url)).send().await.unwrap();
    assert_eq!(playlist.status(), 200, "{}", t.backend.label);
    let body = playlist.text().await.unwrap();
    let seg = body.lines().find(|l| l.ends_with(".ts")).unwrap_or_else(|| panic!("no segment in {body}")).to_string();
    (id.clone(), format!("/vod/{id}/hls/240p/{seg}"))
}

async fn status_of(t: &TestServer, url: &str) -> u16 {
    t.http.get(url).send().await.unwrap().status().as_u16()
}

/// Polls `url` until it answers `want`; returns how long that took. Fails after 5 s.
async fn until_status(t: &TestServer, url: &str, want: u16) -> Duration {
    let start = Instant::now();
    loop {
        let got = status_of(t, url).await;
        if got == want {
            return start.elapsed();
        }
        assert!(start.elapsed() < Duration::from_secs(5), "{}: {url} still answers {got}, not {want}", t.backend.label);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

backend_test!(a_visibility_change_or_a_delete_takes_effect_at_once_on_the_node_that_makes_it, multi_thread = 2);
async fn a_visibility_change_or_a_delete_takes_effect_at_once_on_the_node_that_makes_it(b: Backend) {
    let t = TestServer::start(&b).await;
    let (id, seg) = playable_video(&t).await;
    let url = format!("{}{seg}", t.url);
    // Served twice: the second answer comes from what the node remembers.
    assert_eq!(status_of(&t, &url).await, 200, "{}", b.label);
    assert_eq!(status_of(&t, &url).await, 200, "{}", b.label);

    // Private: the very next request without a token is refused.
    let r = t.patch_json(&format!("/videos/{id}"), json!({ "public": false })).await;
    assert_eq!(r.status(), 200, "{}", b.label);
    let r = t.http.get(&url).send().await.unwrap();
    common::problem(r, 403, "video-private-token-invalid").await;

    // With a private token (a fresh one, in the asset URLs) and the session it opens, it plays.
    let video: Value = t.get(&format!("/videos/{id}")).await.json().await.unwrap();
    let hls = video["assets"]["hls"].as_str().unwrap();
    assert!(hls.contains("/token/"), "{}: {hls}", b.label);
    let master = t.http.get(hls).send().await.unwrap();
    assert_eq!(master.status(), 200, "{}", b.label);
    let master = master.text().await.unwrap();
    let avh = master.lines().find_map(|l| l.split_once("?avh=").map(|(_, s)| s.to_string())).unwrap();
    let private_seg = hls.replace("manifest.m3u8", &format!("240p/{}?avh={avh}", seg.rsplit('/').next().unwrap()));
    assert_eq!(status_of(&t, &private_seg).await, 200, "{}", b.label);
    // A session is not a key to the public URL.
    assert_eq!(status_of(&t, &format!("{url}?avh={avh}")).await, 403, "{}", b.label);

    // Public again: served at once without a token.
    let r = t.patch_json(&format!("/videos/{id}"), json!({ "public": true })).await;
    assert_eq!(r.status(), 200, "{}", b.label);
    assert_eq!(status_of(&t, &url).await, 200, "{}", b.label);
    assert_eq!(status_of(&t, &url).await, 200, "{}", b.label);

    // Deleted: gone at once (the segment was in memory too).
    assert_eq!(t.req(reqwest::Method::DELETE, &format!("/videos/{id}")).send().await.unwrap().status(), 204);
    let r = t.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 404, "{}", b.label);
}

backend_test!(another_node_stops_serving_a_video_made_private_or_deleted_within_a_second, multi_thread = 2);
async fn another_node_stops_serving_a_video_made_private_or_deleted_within_a_second(b: Backend) {
    let t = TestServer::start(&b).await;
    // A second API node on the same database and storage, which encodes nothing.
    let mut cfg = t.cfg.clone();
    cfg.jobs.workers = 0;
    let node2 = vidi::start(cfg).await.expect("second node starts");
    let (id, seg) = playable_video(&t).await;
    let on2 = format!("{}{seg}", node2.url);
    // Node 2 serves it and remembers that it is public.
    assert_eq!(status_of(&t, &on2).await, 200, "{}", b.label);

    // Made private through node 1: node 2 learns it from the database within its cache's
    // lifetime (1 s), plus the time a poll takes on a loaded machine.
    let r = t.patch_json(&format!("/videos/{id}"), json!({ "public": false })).await;
    assert_eq!(r.status(), 200, "{}", b.label);
    let took = until_status(&t, &on2, 403).await;
    assert!(took < Duration::from_millis(1800), "{}: node 2 served a private video for {took:?}", b.label);

    // Public again: node 2 serves it within the same bound.
    let r = t.patch_json(&format!("/videos/{id}"), json!({ "public": true })).await;
    assert_eq!(r.status(), 200, "{}", b.label);
    let took = until_status(&t, &on2, 200).await;
    assert!(took < Duration::from_millis(1800), "{}: node 2 refused a public video for {took:?}", b.label);

    // Deleted through node 1: node 2 stops within the same bound.
    assert_eq!(t.req(reqwest::Method::DELETE, &format!("/videos/{id}")).send().await.unwrap().status(), 204);
    let took = until_status(&t, &on2, 404).await;
    assert!(took < Duration::from_millis(1800), "{}: node 2 served a deleted video for {took:?}", b.label);
    node2.abort();
}

backend_test!(unknown_or_malformed_videos_are_refused_and_not_remembered);
async fn unknown_or_malformed_videos_are_refused_and_not_remembered(b: Backend) {
    let t = TestServer::start_with(&b, |c| c.jobs.workers = 0).await;
    for path in [
        "/vod/vi0000000000000000000000/hls/240p/seg_00000.ts",
        "/vod/not-an-id/hls/240p/seg_00000.ts",
        "/vod/vi0000000000000000000000/token/abc/hls/240p/seg_00000.ts",
    ] {
        let r = t.http.get(format!("{}{path}", t.url)).send().await.unwrap();
        common::problem(r, 404, "resource-not-found").await;
    }
    // A video created after a miss is served at once: misses are never remembered.
    let id = t.create_video("later").await;
    let r = t.http.get(format!("{}/vod/{id}/hls/240p/index.m3u8", t.url)).send().await.unwrap();
    // It exists and is public, but has no media yet.
    common::problem(r, 404, "resource-not-found").await;
}

backend_test!(a_playlist_its_producer_holds_in_memory_is_served_from_there_first);
async fn a_playlist_its_producer_holds_in_memory_is_served_from_there_first(b: Backend) {
    use vidi_core::id::{MediaId, VideoId};
    let t = TestServer::start(&b).await;
    let id = t.create_video("memory").await;
    let path = format!("/vod/{id}/hls/720p/live.m3u8");
    // Nothing in storage, nothing in memory: not found.
    assert_eq!(t.http.get(format!("{}{path}", t.url)).send().await.unwrap().status(), 404, "{}", b.label);

    // A producer in this process publishes versions; each request gets the current one, uncached.
    let subject = MediaId::Video(VideoId::parse(&id).unwrap());
    let board = t.server.state.playlists.clone();
    for n in 1..=2 {
        let text = format!("#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:{n}\n");
        board.publish(&subject, "720p/live.m3u8", bytes::Bytes::from(text.clone()));
        let r = t.http.get(format!("{}{path}", t.url)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{}", b.label);
        assert_eq!(r.headers()["cache-control"], "no-cache", "{}", b.label);
        assert_eq!(r.text().await.unwrap(), text, "{}", b.label);
    }
    // The visibility rules still apply: a private video's playlist needs its token.
    let r = t.patch_json(&format!("/videos/{id}"), json!({ "public": false })).await;
    assert_eq!(r.status(), 200, "{}", b.label);
    assert_eq!(t.http.get(format!("{}{path}", t.url)).send().await.unwrap().status(), 403, "{}", b.label);
    // Withdrawn (the stream ended): storage answers again.
    board.withdraw(&subject);
    t.patch_json(&format!("/videos/{id}"), json!({ "public": true })).await;
    assert_eq!(t.http.get(format!("{}{path}", t.url)).send().await.unwrap().status(), 404, "{}", b.label);
}
