//! Fields of `POST`/`PATCH /videos` that change what is made (issue 25), checked as a client and a
//! player see them: `clip` (every output's duration, measured by ffprobe through the served URLs),
//! `watermark` (refused), and `mp4Support` turned on after the video was encoded (the MP4 made
//! then, listed once it can be served, with its event).

use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::{Value, json};
use tokio::process::Command;
use vidi_core::event::{Encoding, EventBody};

fn all_encoded(s: &Value) -> bool {
    s["encoding"]["qualities"].as_array().is_some_and(|q| !q.is_empty() && q.iter().all(|q| q["status"] == "encoded"))
}

async fn create(t: &TestServer, body: Value) -> Value {
    let r = t.post_json("/videos", body).await;
    assert_eq!(r.status(), 201);
    r.json().await.unwrap()
}

/// Checks the duration of everything a player of `id` can read: the status, the top rendition,
/// the master playlist, the MP4.
async fn assert_lasts(t: &TestServer, id: &str, want: f64, label: &str) {
    let st = t.wait_status(id, 240, all_encoded).await;
    assert_eq!(st["encoding"]["metadata"]["duration"], want.round() as u64, "{label}: {st}");
    let video: Value = t.get(&format!("/videos/{id}")).await.json().await.unwrap();
    let hls = video["assets"]["hls"].as_str().unwrap();
    let top = st["encoding"]["qualities"].as_array().unwrap().iter().rfind(|q| q["type"] == "hls").unwrap()["quality"]
        .as_str()
        .unwrap()
        .to_string();
    let rendition = hls.replace("manifest.m3u8", &format!("{top}/index.m3u8"));
    for (what, url) in [("master", hls), ("top rendition", rendition.as_str())] {
        let d = ffprobe_duration(url).await;
        assert!((d - want).abs() < 0.3, "{label} {what}: {d} s, not {want}");
    }
    let playlist = t.http.get(&rendition).send().await.unwrap().text().await.unwrap();
    let listed: f64 = playlist
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|l| l.trim_end_matches(',').split(',').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert!((listed - want).abs() < 0.3, "{label}: the playlist lists {listed} s\n{playlist}");
    let mp4 = video["assets"]["mp4"].as_str().expect("an MP4");
    let d = ffprobe_duration(mp4).await;
    assert!((d - want).abs() < 0.3, "{label} MP4: {d} s, not {want}");
}

backend_test!(a_clip_is_every_output, multi_thread = 2);
/// A 00:00:01–00:00:03 clip of a 4 s source lasts 2 s everywhere (encoded whole); a 1–7 s clip of
/// an 8 s source encoded in pieces lasts 6 s, and its thumbnail comes from within the clip.
async fn a_clip_is_every_output(b: Backend) {
    let t = TestServer::start_with(&b, |c| c.encoding.piece_secs = 2).await;
    let four = std::fs::read(av_clip("clip-4s.mp4", "size=320x240:rate=25", "frequency=440", 4, &[])).unwrap();
    let v =
        create(&t, json!({"title": "clipped", "clip": {"startTimecode": "00:00:01", "endTimecode": "00:00:03"}})).await;
    let id = v["videoId"].as_str().unwrap();
    assert_eq!(t.upload(id, None, four).await.status(), 201);
    assert_lasts(&t, id, 2.0, &format!("{} whole", b.label)).await;

    let eight = std::fs::read(av_clip("clip-8s.mp4", "size=320x240:rate=25", "frequency=440", 8, &[])).unwrap();
    let v = create(
        &t,
        json!({"title": "clipped in pieces", "clip": {"startTimecode": "00:00:01.000", "endTimecode": "7"}}),
    )
    .await;
    let id = v["videoId"].as_str().unwrap();
    assert_eq!(t.upload(id, None, eight.clone()).await.status(), 201);
    assert_lasts(&t, id, 6.0, &format!("{} pieces", b.label)).await;

    // Only a start: to the source's end.
    let v = create(&t, json!({"title": "tail", "clip": {"startTimecode": "00:00:05"}})).await;
    let id = v["videoId"].as_str().unwrap();
    assert_eq!(t.upload(id, None, eight).await.status(), 201);
    assert_lasts(&t, id, 3.0, &format!("{} tail", b.label)).await;
}

backend_test!(a_clip_that_cannot_be_is_refused_or_fails_the_video, multi_thread = 2);
async fn a_clip_that_cannot_be_is_refused_or_fails_the_video(b: Backend) {
    let t = TestServer::start(&b).await;
    // Ends before it starts: refused at create, naming the end.
    let r = t
        .post_json("/videos", json!({"title": "t", "clip": {"startTimecode": "00:00:03", "endTimecode": "00:00:01"}}))
        .await;
    let p = problem(r, 400, "invalid-attribute").await;
    assert_eq!(p["name"], "clip[endTimecode]", "{p}");
    let r = t.post_json("/videos", json!({"title": "t", "clip": {"startTimecode": "2", "endTimecode": "2"}})).await;
    assert_eq!(problem(r, 400, "invalid-attribute").await["name"], "clip[endTimecode]");
    let r = t.post_json("/videos", json!({"title": "t", "clip": {"startTimecode": "1:2"}})).await;
    assert_eq!(problem(r, 400, "invalid-attribute").await["name"], "clip[startTimecode]");
    let r = t.post_json("/videos", json!({"title": "t", "clip": "00:00:01"})).await;
    assert_eq!(problem(r, 400, "invalid-attribute").await["name"], "clip");
    let none: Value = t.get("/videos").await.json().await.unwrap();
    assert_eq!(none["pagination"]["itemsTotal"], 0, "nothing refused was created");

    // Starts past the end of the 4 s source: known once it is probed, the video fails, saying why.
    let four = std::fs::read(av_clip("clip-4s.mp4", "size=320x240:rate=25", "frequency=440", 4, &[])).unwrap();
    let v = create(&t, json!({"title": "too late", "clip": {"startTimecode": "00:00:05"}})).await;
    let id = v["videoId"].as_str().unwrap();
    assert_eq!(t.upload(id, None, four).await.status(), 201);
    let st = t
        .wait_status(id, 120, |s| {
            s["encoding"]["qualities"].as_array().is_some_and(|q| q.iter().any(|q| q["status"] == "failed"))
        })
        .await;
    assert_eq!(st["encoding"]["playable"], false, "{}: {st}", b.label);
    let ws = t.ws().await;
    let v = t.server.state.repo.get_video(&ws, &vidi_core::id::VideoId::parse(id).unwrap()).await.unwrap();
    let why = v.encoding.error.expect("a reason");
    assert!(why.contains("clip[startTimecode]") && why.contains("past the end"), "{why}");
    let video: Value = t.get(&format!("/videos/{id}")).await.json().await.unwrap();
    let r = t.http.get(video["assets"]["hls"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(r.status(), 404, "a failed video's assets are gone for good");
}

backend_test!(a_watermark_is_refused);
async fn a_watermark_is_refused(b: Backend) {
    let t = TestServer::start(&b).await;
    for w in [json!({"id": "watermark_1BWr2L5MTQwxGkuxKjzh6i", "top": "10px"}), json!("watermark_x"), json!({})] {
        let r = t.post_json("/videos", json!({"title": "t", "watermark": w})).await;
        let p = problem(r, 400, "invalid-attribute").await;
        assert_eq!(p["name"], "watermark", "{}: {p}", b.label);
        assert!(p["detail"].as_str().unwrap().contains("not supported"), "{p}");
    }
    // Absent or null is no watermark.
    create(&t, json!({"title": "t", "watermark": null})).await;
}

backend_test!(mp4_support_turned_on_later_makes_the_mp4, multi_thread = 2);
/// Encoded without an MP4, then `mp4Support: true`: the MP4 is made from the stored ladder (with
/// its event), listed once it can be served, and served; turned off, it is neither. Both a video
/// encoded whole and one in pieces (whose sound is a rendition of its own).
async fn mp4_support_turned_on_later_makes_the_mp4(b: Backend) {
    let t = TestServer::start_with(&b, |c| c.encoding.piece_secs = 2).await;
    let repo = t.server.state.repo.clone();
    let ws = t.ws().await;
    for (secs, name) in [(3, "later-3s.mp4"), (8, "later-8s.mp4")] {
        let label = format!("{} {secs} s", b.label);
        let bytes = std::fs::read(av_clip(name, "size=320x240:rate=25", "frequency=440", secs, &[])).unwrap();
        let v = create(&t, json!({"title": "no mp4", "mp4Support": false})).await;
        let id = v["videoId"].as_str().unwrap().to_string();
        assert!(v["assets"].get("mp4").is_none(), "{v}");
        assert_eq!(t.upload(&id, None, bytes).await.status(), 201);
        let st = t.wait_status(&id, 240, all_encoded).await;
        assert!(st["encoding"]["qualities"].as_array().unwrap().iter().all(|q| q["type"] == "hls"), "{label}: {st}");
        let mp4_url = format!("{}/vod/{id}/mp4/source.mp4", t.url);
        assert_eq!(t.http.get(&mp4_url).send().await.unwrap().status(), 404);

        let r = t.patch_json(&format!("/videos/{id}"), json!({"mp4Support": true})).await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["mp4Support"], true);
        // Listed only once it can be served: whenever the listing names it, it plays.
        let deadline = Instant::now() + Duration::from_secs(120);
        let listed = loop {
            let v: Value = t.get(&format!("/videos/{id}")).await.json().await.unwrap();
            match v["assets"]["mp4"].as_str() {
                Some(u) => break u.to_string(),
                None => {
                    assert_eq!(t.http.get(&mp4_url).send().await.unwrap().status(), 404, "{label}");
                    assert!(Instant::now() < deadline, "{label}: the MP4 was never listed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        let d = ffprobe_duration(&listed).await;
        assert!((d - secs as f64).abs() < 0.3, "{label}: the MP4 lasts {d} s");
        let probe = Command::new("ffprobe")
            .args(["-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0", &listed])
            .output()
            .await
            .unwrap();
        let streams = String::from_utf8_lossy(&probe.stdout).to_string();
        assert!(streams.contains("video") && streams.contains("audio"), "{label}: {streams}");
        let st = t.wait_status(&id, 10, all_encoded).await;
        assert!(st["encoding"]["qualities"].as_array().unwrap().iter().any(|q| q["type"] == "mp4"), "{label}: {st}");
        let events = repo.events_after(Some(&ws), None, 1000).await.unwrap();
        let mp4_events = events
            .iter()
            .filter(|e| {
                matches!(&e.body, EventBody::QualityCompleted { video_id, encoding: Encoding::Mp4, .. }
                    if video_id.as_str() == id)
            })
            .count();
        assert_eq!(mp4_events, 1, "{label}: one video.encoding.quality.completed for the MP4");

        // Turned off: neither listed nor served.
        let v: Value = t.patch_json(&format!("/videos/{id}"), json!({"mp4Support": false})).await.json().await.unwrap();
        assert!(v["assets"].get("mp4").is_none(), "{v}");
        assert_eq!(t.http.get(&mp4_url).send().await.unwrap().status(), 404);
        // And on again: the MP4 is there, listed at once.
        let v: Value = t.patch_json(&format!("/videos/{id}"), json!({"mp4Support": true})).await.json().await.unwrap();
        assert!(v["assets"]["mp4"].is_string(), "{v}");
        assert_eq!(t.http.get(&mp4_url).send().await.unwrap().status(), 200);
    }
}

backend_test!(a_clip_of_sound_alone, multi_thread = 2);
/// Sound with no picture has its own command lines (one AAC rendition, a waveform): the clip
/// applies there too.
async fn a_clip_of_sound_alone(b: Backend) {
    let t = TestServer::start(&b).await;
    let audio = std::fs::read(lavfi_video(
        "clip-audio-4s.m4a",
        &["-f", "lavfi", "-i", "sine", "-t", "4", "-c:a", "aac", "-f", "mp4"],
    ))
    .unwrap();
    let v = create(&t, json!({"title": "sound", "clip": {"startTimecode": "1", "endTimecode": "00:00:03.000"}})).await;
    let id = v["videoId"].as_str().unwrap();
    assert_eq!(t.upload(id, None, audio).await.status(), 201);
    let st = t.wait_status(id, 60, |s| s["encoding"]["playable"] == true).await;
    assert_eq!(st["encoding"]["metadata"]["duration"], 2, "{}: {st}", b.label);
    let rendition = v["assets"]["hls"].as_str().unwrap().replace("manifest.m3u8", "audio/index.m3u8");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mp4 = v["assets"]["mp4"].as_str().unwrap();
    while t.http.get(mp4).send().await.unwrap().status() != 200 {
        assert!(Instant::now() < deadline, "{}: the MP4 never came", b.label);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for (what, url) in [("rendition", rendition.as_str()), ("MP4", mp4)] {
        let d = ffprobe_duration(url).await;
        assert!((d - 2.0).abs() < 0.3, "{} {what}: {d} s", b.label);
    }
}
