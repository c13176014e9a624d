//! End to end per source kind: upload a clip made with lavfi, wait until it is encoded, then check
//! what a player sees: the master playlist, every rendition (duration measured by ffprobe through
//! the served URL), the MP4 with byte ranges, the thumbnail. On every configured backend.

use crate::common;
use crate::common::{Backend, TestServer, av_clip, backend_test, ffprobe_duration, lavfi_video};
use serde_json::Value;
use tokio::process::Command;

struct Case {
    name: &'static str,
    args: &'static [&'static str],
    qualities: &'static [&'static str],
    /// Display size of the top rendition.
    top: (u32, u32),
    audio: bool,
    /// Add a 90° display matrix afterwards (stream copy: ffmpeg 5.1 cannot write it while encoding).
    rotate: bool,
}

const CASES: &[Case] = &[
    Case {
        name: "landscape-1080p.mp4",
        args: &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1920x1080:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine",
            "-t",
            "3",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
        ],
        qualities: &["240p", "360p", "480p", "720p", "1080p"],
        top: (1920, 1080),
        audio: true,
        rotate: false,
    },
    Case {
        name: "portrait-720x1280.mp4",
        args: &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=720x1280:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine",
            "-t",
            "3",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
        ],
        qualities: &["240p", "360p", "480p", "720p"],
        top: (720, 1280),
        audio: true,
        rotate: false,
    },
    Case {
        name: "no-audio-vfr.mkv",
        // Variable frame rate: frames dropped at random, timestamps kept (matroska keeps VFR).
        args: &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=30",
            "-t",
            "3",
            "-vf",
            "select='gt(random(0),0.3)'",
            "-fps_mode",
            "vfr",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ],
        qualities: &["240p", "360p"],
        top: (640, 360),
        audio: false,
        rotate: false,
    },
    Case {
        name: "rotated-90.mp4",
        // Stored 640x360 with a 90° display matrix: played as 360x640.
        args: &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine",
            "-t",
            "3",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
        ],
        qualities: &["240p", "360p"],
        top: (360, 640),
        audio: true,
        rotate: true,
    },
];

backend_test!(every_source_kind_encodes_and_plays, multi_thread = 2);
async fn every_source_kind_encodes_and_plays(b: Backend) {
    let t = TestServer::start(&b).await;
    for case in CASES {
        let mut path = lavfi_video(case.name, case.args);
        if case.rotate {
            let rotated = path.with_file_name(format!("rot-{}", case.name));
            if !rotated.exists() {
                let st = std::process::Command::new("ffmpeg")
                    .args(["-v", "error", "-y", "-i"])
                    .arg(&path)
                    .args(["-c", "copy", "-metadata:s:v:0", "rotate=90"])
                    .arg(&rotated)
                    .status()
                    .unwrap();
                assert!(st.success());
            }
            path = rotated;
        }
        let bytes = std::fs::read(path).unwrap();
        let id = t.create_video(case.name).await;
        assert_eq!(t.upload(&id, None, bytes).await.status(), 201);
        let st = t
            .wait_status(&id, 240, |s| {
                let q = s["encoding"]["qualities"].as_array();
                q.is_some_and(|q| {
                    !q.is_empty() && q.iter().all(|q| q["status"] == "encoded" || q["status"] == "failed")
                })
            })
            .await;
        let label = format!("{} {}", b.label, case.name);
        assert_eq!(st["encoding"]["playable"], true, "{label}");
        let hls: Vec<&str> = st["encoding"]["qualities"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|q| q["type"] == "hls")
            .map(|q| q["quality"].as_str().unwrap())
            .collect();
        assert_eq!(hls, case.qualities, "{label}");
        assert!(
            st["encoding"]["qualities"].as_array().unwrap().iter().all(|q| q["status"] == "encoded"),
            "{label}: {st}"
        );

        // The master playlist, as a player reads it.
        let video: Value = t.get(&format!("/videos/{id}")).await.json().await.unwrap();
        let hls_url = video["assets"]["hls"].as_str().unwrap().to_string();
        let r = t.http.get(&hls_url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "application/vnd.apple.mpegurl");
        let master = r.text().await.unwrap();
        assert_eq!(master.matches("#EXT-X-STREAM-INF").count(), case.qualities.len(), "{master}");
        assert!(master.contains(&format!("RESOLUTION={}x{}", case.top.0, case.top.1)), "{label}: {master}");
        assert!(master.contains(if case.audio { "mp4a.40.2\"" } else { "CODECS=\"avc1.64" }), "{master}");
        for line in master.lines().filter(|l| l.starts_with("#EXT-X-STREAM-INF")) {
            let bw: u64 = line.split("BANDWIDTH=").nth(1).unwrap().split(',').next().unwrap().parse().unwrap();
            assert!(bw > 300_000, "BANDWIDTH counts the video: {line}");
        }
        // Every rendition lasts as long as the source.
        for q in case.qualities {
            let url = hls_url.replace("manifest.m3u8", &format!("{q}/index.m3u8"));
            let d = ffprobe_duration(&url).await;
            assert!((d - 3.0).abs() < 0.5, "{label} {q}: {d} s");
            let playlist = t.http.get(&url).send().await.unwrap().text().await.unwrap();
            assert!(playlist.contains("#EXT-X-ENDLIST"), "{label} {q} is finished");
        }
        // Segments are immutable and cacheable.
        let seg = hls_url.replace("manifest.m3u8", &format!("{}/seg_00000.ts", case.qualities[0]));
        let r = t.http.get(&seg).send().await.unwrap();
        assert_eq!((r.status().as_u16(), r.headers()["content-type"].to_str().unwrap()), (200, "video/mp2t"));
        assert!(r.headers()["cache-control"].to_str().unwrap().contains("immutable"));
        // The second read comes from the memory cache: same bytes, and ranges still apply.
        let first = r.bytes().await.unwrap();
        let again = t.http.get(&seg).send().await.unwrap().bytes().await.unwrap();
        assert!(first.len() > 188 && first == again, "{label}: the cached segment differs");
        let r = t.http.get(&seg).header("Range", "bytes=188-375").send().await.unwrap();
        assert_eq!(r.status(), 206);
        assert_eq!(r.bytes().await.unwrap(), first.slice(188..376));

        // The MP4, whole and by ranges.
        let mp4 = video["assets"]["mp4"].as_str().unwrap();
        assert!((ffprobe_duration(mp4).await - 3.0).abs() < 0.5, "{label} mp4");
        let r = t.http.get(mp4).header("Range", "bytes=0-99").send().await.unwrap();
        assert_eq!(r.status(), 206);
        let size: u64 = r.headers()["content-range"].to_str().unwrap().rsplit('/').next().unwrap().parse().unwrap();
        assert_eq!(r.bytes().await.unwrap().len(), 100);
        let r = t.http.get(mp4).header("Range", format!("bytes={size}-")).send().await.unwrap();
        assert_eq!(r.status(), 416);

        // The thumbnail is a JPEG.
        let r = t.http.get(video["assets"]["thumbnail"].as_str().unwrap()).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "image/jpeg");
        assert_eq!(&r.bytes().await.unwrap()[..2], &[0xFF, 0xD8]);

        // The player page loads hls.js from this server.
        let page = t.http.get(video["assets"]["player"].as_str().unwrap()).send().await.unwrap().text().await.unwrap();
        assert!(page.contains("/assets/hls.min.js") && page.contains(&format!("/vod/{id}/hls/manifest.m3u8")));
        assert_eq!(t.http.get(format!("{}/assets/hls.min.js", t.url)).send().await.unwrap().status(), 200);
    }
}

backend_test!(corrupt_sources_fail_with_a_status, multi_thread = 2);
async fn corrupt_sources_fail_with_a_status(b: Backend) {
    let mp4 = std::fs::read(lavfi_video(CASES[0].name, CASES[0].args)).unwrap();
    // Cut before the index (moov is at the end of a non-faststart MP4): nothing can be decoded.
    let truncated = mp4[..mp4.len() / 2].to_vec();
    let t = TestServer::start(&b).await;
    let id = t.create_video("truncated").await;
    assert_eq!(t.upload(&id, None, truncated.clone()).await.status(), 201);
    let st = t
        .wait_status(&id, 60, |s| {
            s["encoding"]["qualities"].as_array().is_some_and(|q| q.iter().any(|q| q["status"] == "failed"))
        })
        .await;
    assert_eq!(st["encoding"]["playable"], false, "{}", b.label);
    assert_eq!(st["ingest"]["status"], "uploaded", "the upload itself succeeded");
    let ws = t.server.state.repo.default_workspace().await.unwrap().unwrap();
    let v = t.server.state.repo.get_video(&ws, &vidi_core::id::VideoId::parse(&id).unwrap()).await.unwrap();
    assert!(v.encoding.error.is_some(), "the reason is kept");
    // Other videos keep encoding.
    let ok = t.create_video("fine").await;
    assert_eq!(t.upload(&ok, None, common::small_video()).await.status(), 201);
    t.wait_status(&ok, 120, |s| s["encoding"]["playable"] == true).await;
}

backend_test!(audio_only_sources_play_as_one_audio_rendition, multi_thread = 2);
/// Sound with no picture is packaged as one AAC rendition (the 2023 quality enum has no name for
/// it, so the status lists no quality), with an audio MP4 and a waveform for thumbnail.
async fn audio_only_sources_play_as_one_audio_rendition(b: Backend) {
    let audio = std::fs::read(lavfi_video(
        "audio-only.m4a",
        &["-f", "lavfi", "-i", "sine", "-t", "3", "-c:a", "aac", "-f", "mp4"],
    ))
    .unwrap();
    let t = TestServer::start(&b).await;
    let id = t.create_video("podcast").await;
    assert_eq!(t.upload(&id, None, audio.clone()).await.status(), 201);
    let st = t.wait_status(&id, 60, |s| s["encoding"]["playable"] == true).await;
    assert_eq!(st["encoding"]["qualities"].as_array().map(Vec::len), Some(0), "{}: {st}", b.label);
    let video: Value = t.get(&format!("/videos/{id}")).await.json().await.unwrap();
    let hls = video["assets"]["hls"].as_str().unwrap();
    let master = t.http.get(hls).send().await.unwrap().text().await.unwrap();
    assert_eq!(master.matches("#EXT-X-STREAM-INF").count(), 1, "{master}");
    assert!(master.contains("CODECS=\"mp4a.40.2\"") && master.contains("audio/index.m3u8"), "{master}");
    let rendition = hls.replace("manifest.m3u8", "audio/index.m3u8");
    // The playlist ends (VOD) once the whole sound is encoded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !t.http.get(&rendition).send().await.unwrap().text().await.unwrap().contains("#EXT-X-ENDLIST") {
        assert!(std::time::Instant::now() < deadline, "{}: the audio playlist never ended", b.label);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let d = ffprobe_duration(&rendition).await;
    assert!((d - 3.0).abs() < 0.3, "{}: {d} s", b.label);
    // The MP4 (sound only) follows the HLS.
    let mp4 = video["assets"]["mp4"].as_str().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while t.http.get(mp4).send().await.unwrap().status() != 200 {
        assert!(std::time::Instant::now() < deadline, "{}: no MP4", b.label);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!((ffprobe_duration(mp4).await - 3.0).abs() < 0.3);
    let r = t.http.get(video["assets"]["thumbnail"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}: a waveform thumbnail", b.label);
    assert_eq!(&r.bytes().await.unwrap()[..2], &[0xFF, 0xD8]);
}

#[tokio::test]
async fn manifest_answers_202_until_playable_and_404_for_unknown_videos() {
    let t = TestServer::start_with(&Backend::sqlite_local(), |c| c.jobs.workers = 0).await;
    let id = t.create_video("waiting").await;
    let r = t.http.get(format!("{}/vod/{id}/hls/manifest.m3u8", t.url)).send().await.unwrap();
    assert_eq!(r.status(), 202);
    assert!(r.bytes().await.unwrap().is_empty());
    let r = t.http.get(format!("{}/vod/vi0000000000000000000000/hls/manifest.m3u8", t.url)).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = t.http.get(format!("{}/vod/{id}/hls/240p/..%2F..%2Fsource", t.url)).send().await.unwrap();
    assert_eq!(r.status(), 404);
}

async fn encoded_small(t: &TestServer, title: &str, public: bool) -> String {
    let r = t.post_json("/videos", serde_json::json!({ "title": title, "public": public })).await;
    let id = r.json::<Value>().await.unwrap()["videoId"].as_str().unwrap().to_string();
    assert_eq!(t.upload(&id, None, common::small_video()).await.status(), 201);
    t.wait_status(&id, 120, |s| {
        s["encoding"]["qualities"]
            .as_array()
            .is_some_and(|q| !q.is_empty() && q.iter().all(|q| q["status"] == "encoded"))
    })
    .await;
    id
}

backend_test!(thumbnails_picked_and_uploaded, multi_thread = 2);
async fn thumbnails_picked_and_uploaded(b: Backend) {
    let t = TestServer::start(&b).await;
    let id = encoded_small(&t, "thumbs", true).await;
    let thumb_url = format!("{}/vod/{id}/thumbnail.jpg", t.url);
    let before = t.http.get(&thumb_url).send().await.unwrap().bytes().await.unwrap();
    let r = t.patch_json(&format!("/videos/{id}/thumbnail"), serde_json::json!({"timecode": "00:00:01.500"})).await;
    assert_eq!(r.status(), 200, "{}", b.label);
    let after = t.http.get(&thumb_url).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(&after[..2], &[0xFF, 0xD8]);
    assert_ne!(before, after, "a different frame");
    common::problem(
        t.patch_json(&format!("/videos/{id}/thumbnail"), serde_json::json!({"timecode": "1:2"})).await,
        400,
        "invalid-attribute",
    )
    .await;
    common::problem(
        t.patch_json(&format!("/videos/{id}/thumbnail"), serde_json::json!({})).await,
        400,
        "attribute-required",
    )
    .await;
    let empty = t.create_video("no source").await;
    common::problem(
        t.patch_json(&format!("/videos/{empty}/thumbnail"), serde_json::json!({"timecode": "1"})).await,
        400,
        "invalid-attribute",
    )
    .await;

    // Upload a PNG: stored as a JPEG.
    let png =
        lavfi_video("frame.png", &["-f", "lavfi", "-i", "color=c=red:size=320x180", "-frames:v", "1", "-f", "image2"]);
    let form = |bytes: Vec<u8>, name: &str| {
        reqwest::multipart::Form::new().part("file", reqwest::multipart::Part::bytes(bytes).file_name(name.to_string()))
    };
    let r = t
        .req(reqwest::Method::POST, &format!("/videos/{id}/thumbnail"))
        .multipart(form(std::fs::read(&png).unwrap(), "red.png"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let uploaded = t.http.get(&thumb_url).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(&uploaded[..2], &[0xFF, 0xD8]);
    assert_ne!(uploaded, after);
    let r = t
        .req(reqwest::Method::POST, &format!("/videos/{id}/thumbnail"))
        .multipart(form(b"GIF89a not an allowed image".to_vec(), "x.gif"))
        .send()
        .await
        .unwrap();
    common::problem(r, 400, "uploaded-file-extension-invalid").await;
    // Claims to be a JPEG, is not one.
    let r = t
        .req(reqwest::Method::POST, &format!("/videos/{id}/thumbnail"))
        .multipart(form([&[0xFF, 0xD8, 0xFF][..], &[0u8; 64][..]].concat(), "fake.jpg"))
        .send()
        .await
        .unwrap();
    common::problem(r, 400, "uploaded-file-invalid-file").await;
}

backend_test!(private_videos_need_their_token, multi_thread = 2);
async fn private_videos_need_their_token(b: Backend) {
    let t = TestServer::start(&b).await;
    let id = encoded_small(&t, "secret", false).await;
    let v1: Value = t.get(&format!("/videos/{id}")).await.json().await.unwrap();
    let v2: Value = t.get(&format!("/videos/{id}")).await.json().await.unwrap();
    let hls = v1["assets"]["hls"].as_str().unwrap().to_string();
    assert!(hls.contains("/token/"), "{hls}");
    assert_ne!(v1["assets"]["hls"], v2["assets"]["hls"], "every read mints a new token");
    assert!(v1["assets"]["player"].as_str().unwrap().contains("?token="));
    let get = |u: String| {
        let http = t.http.clone();
        async move { http.get(u).send().await.unwrap().status().as_u16() }
    };
    let get_with = |u: String, cookie: String| {
        let http = t.http.clone();
        async move { http.get(u).header("cookie", cookie).send().await.unwrap().status().as_u16() }
    };
    // The first request opens a playback session: a cookie, and `avh` in every URI the
    // playlists hand out, so a player that keeps no cookies follows them too.
    let r = t.http.get(&hls).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", b.label);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    assert!(cookie.starts_with("vidi_playback="), "{cookie}");
    let master = r.text().await.unwrap();
    let uri = master.lines().find(|l| !l.starts_with('#') && !l.is_empty()).unwrap();
    assert!(uri.contains("?avh="), "{master}");
    let rendition_url = format!("{}{uri}", hls.trim_end_matches("manifest.m3u8"));
    let rendition = t.http.get(&rendition_url).send().await.unwrap().text().await.unwrap();
    let seg = rendition.lines().find(|l| l.ends_with(".ts") || l.contains(".ts?")).unwrap();
    assert!(seg.contains("?avh="), "{rendition}");
    let base = rendition_url.rsplit_once('/').unwrap().0;
    assert_eq!(get(format!("{base}/{seg}")).await, 200);
    // Single use: the same token from another browser (no session) is refused…
    assert_eq!(get(hls.clone()).await, 403, "a used token without its session");
    assert_eq!(get(hls.replace("manifest.m3u8", "240p/seg_00000.ts")).await, 403);
    // …while the browser that opened it goes on, with its cookie, to every asset of the token.
    assert_eq!(get_with(hls.replace("manifest.m3u8", "240p/seg_00000.ts"), cookie.clone()).await, 200);
    assert_eq!(get_with(v1["assets"]["mp4"].as_str().unwrap().to_string(), cookie.clone()).await, 200);
    assert_eq!(get_with(v1["assets"]["thumbnail"].as_str().unwrap().to_string(), cookie.clone()).await, 200);
    assert_eq!(get_with(v1["assets"]["player"].as_str().unwrap().to_string(), cookie.clone()).await, 200);
    assert_eq!(get(v1["assets"]["mp4"].as_str().unwrap().to_string()).await, 403);
    // A fresh token opens a new session for whoever uses it first.
    assert_eq!(get(v2["assets"]["thumbnail"].as_str().unwrap().to_string()).await, 200);
    // The session endpoint names the session, for clients that add `avh` themselves.
    let v3: Value = t.get(&format!("/videos/{id}")).await.json().await.unwrap();
    let token_base = v3["assets"]["hls"].as_str().unwrap().trim_end_matches("/hls/manifest.m3u8").to_string();
    let s: Value = t.http.get(format!("{token_base}/session")).send().await.unwrap().json().await.unwrap();
    let avh = s["session_token"].as_str().unwrap();
    assert!(!avh.is_empty());
    assert_eq!(get(format!("{}?avh={avh}", v3["assets"]["mp4"].as_str().unwrap())).await, 200);
    assert_eq!(get(format!("{}?avh=someone-else", v3["assets"]["mp4"].as_str().unwrap())).await, 403);
    // The player page uses its token and hands the session to its media URLs.
    let v4: Value = t.get(&format!("/videos/{id}")).await.json().await.unwrap();
    let page = t.http.get(v4["assets"]["player"].as_str().unwrap()).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("manifest.m3u8?avh="), "{page}");
    let public = format!("{}/vod/{id}/hls/manifest.m3u8", t.url);
    assert_eq!(get(public.clone()).await, 403);
    assert_eq!(
        get(format!("{}/vod/{id}/token/00000000-0000-4000-8000-000000000000/hls/manifest.m3u8", t.url)).await,
        403
    );
    assert_eq!(get(format!("{}/embed/vod/{id}", t.url)).await, 403);
    // Switching takes effect at once, both ways.
    t.patch_json(&format!("/videos/{id}"), serde_json::json!({"public": true})).await;
    assert_eq!(get(public.clone()).await, 200);
    t.patch_json(&format!("/videos/{id}"), serde_json::json!({"public": false})).await;
    assert_eq!(get(public).await, 403);
}

backend_test!(a_long_video_is_encoded_in_pieces_and_joined, multi_thread = 2);
/// A long video is cut into pieces on segment boundaries, encoded by several processes at once
/// (the head job and the pieces it queues), and joined: each rendition plays as long as the
/// source, without gaps, and the MP4 is whole.
async fn a_long_video_is_encoded_in_pieces_and_joined(b: Backend) {
    let source = av_clip("long-13s.mp4", "size=640x360:rate=25", "frequency=440:sample_rate=48000", 13, &[]);
    let bytes = std::fs::read(&source).unwrap();
    // Two workers, as if two machines shared the database and the store.
    let t = TestServer::start_with(&b, |c| {
        c.encoding.piece_secs = 4;
        c.jobs.workers = 2;
    })
    .await;
    let id = t.create_video("long").await;
    assert_eq!(t.upload(&id, None, bytes.clone()).await.status(), 201);
    t.wait_status(&id, 180, |s| {
        let q = s["encoding"]["qualities"].as_array().cloned().unwrap_or_default();
        !q.is_empty() && q.iter().all(|q| q["status"] == "encoded" || q["status"] == "failed")
    })
    .await;
    let s: Value = t.get(&format!("/videos/{id}/status")).await.json().await.unwrap();
    let qualities = s["encoding"]["qualities"].as_array().unwrap();
    assert!(qualities.iter().all(|q| q["status"] == "encoded"), "{}: {s}", b.label);
    assert_eq!(s["encoding"]["playable"], true);
    let video: Value = t.get(&format!("/videos/{id}")).await.json().await.unwrap();
    let hls = video["assets"]["hls"].as_str().unwrap();
    for q in ["240p", "360p"] {
        let url = hls.replace("manifest.m3u8", &format!("{q}/index.m3u8"));
        let playlist = t.http.get(&url).send().await.unwrap().text().await.unwrap();
        // 13 s: the head, 0–1 s (half-second segments), then pieces of 4 s: 1–5 s, 5–9 s and
        // 9–13 s.
        for piece in ["seg_00000.ts", "seg_p001_00000.ts", "seg_p002_00000.ts", "seg_p003_00000.ts"] {
            assert!(playlist.contains(piece), "{} {q}: no {piece} in\n{playlist}", b.label);
        }
        assert!(!playlist.contains("seg_p004"), "{playlist}");
        assert_eq!(playlist.matches("#EXT-X-ENDLIST").count(), 1, "{playlist}");
        let d = ffprobe_duration(&url).await;
        assert!((d - 13.0).abs() < 0.3, "{} {q}: {d} s", b.label);
        // Every segment of every piece is served.
        for seg in playlist.lines().filter(|l| l.ends_with(".ts")) {
            let u = url.replace("index.m3u8", seg);
            assert_eq!(t.http.get(&u).send().await.unwrap().status(), 200, "{u}");
        }
    }
    // The sound is one rendition of its own, encoded in one go (AAC cut at piece boundaries
    // would overlap), which every variant names as its audio group.
    let master = t.http.get(hls).send().await.unwrap().text().await.unwrap();
    assert!(master.contains("#EXT-X-MEDIA:TYPE=AUDIO,URI=\"audio/index.m3u8\",GROUP-ID=\"aac\""), "{master}");
    assert_eq!(master.matches("AUDIO=\"aac\"").count(), 2, "{master}");
    let sound = hls.replace("manifest.m3u8", "audio/index.m3u8");
    let d = ffprobe_duration(&sound).await;
    assert!((d - 13.0).abs() < 0.3, "{} audio: {d} s", b.label);
    let mp4 = video["assets"]["mp4"].as_str().unwrap();
    let d = ffprobe_duration(mp4).await;
    assert!((d - 13.0).abs() < 0.3, "{} mp4: {d} s", b.label);
    let streams = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0", mp4])
        .output()
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&streams.stdout).split_whitespace().collect::<Vec<_>>(), ["video", "audio"]);
}

/// A 12 s MP4 with its index first (faststart), lossless so that it needs two 5 MiB chunks.
fn faststart_12s() -> Vec<u8> {
    let clip = av_clip(
        "faststart-12s.mp4",
        "size=640x360:rate=25",
        "frequency=440",
        12,
        &["-qp", "0", "-movflags", "+faststart"],
    );
    std::fs::read(clip).unwrap()
}

backend_test!(encoding_starts_while_a_chunked_upload_is_still_arriving, multi_thread = 2);
/// A chunked upload of a file whose index comes first (an MP4 with `moov` ahead) starts encoding
/// with its first chunk: the video is playable before the last chunk is sent, and once that
/// arrives the ladder is whole. Stores that keep chunks apart (S3 multipart) encode after the
/// upload as usual.
async fn encoding_starts_while_a_chunked_upload_is_still_arriving(b: Backend) {
    let bytes = faststart_12s();
    const PART: usize = 5 * 1024 * 1024;
    assert!(bytes.len() > PART, "the clip must need two chunks");
    let t = TestServer::start(&b).await;
    let id = t.create_video("early").await;
    let r = t.upload(&id, Some("part 1/2"), bytes[..PART].to_vec()).await;
    assert_eq!(r.status(), 201, "{}", b.label);
    if b.s3_url.is_none() {
        let s = t.wait_status(&id, 60, |s| s["encoding"]["playable"] == true).await;
        assert_eq!(s["ingest"]["status"], "uploading", "{}: playable before the last chunk: {s}", b.label);
        let hls = format!("{}/vod/{id}/hls/240p/index.m3u8", t.url);
        let playlist = t.http.get(&hls).send().await.unwrap().text().await.unwrap();
        assert!(!playlist.contains("#EXT-X-ENDLIST"), "the playlist grows with the upload: {playlist}");
    }
    let r = t.upload(&id, Some("part 2/2"), bytes[PART..].to_vec()).await;
    assert_eq!(r.status(), 201, "{}", b.label);
    let s = t
        .wait_status(&id, 120, |s| {
            let q = s["encoding"]["qualities"].as_array().cloned().unwrap_or_default();
            !q.is_empty() && q.iter().all(|q| q["status"] == "encoded" || q["status"] == "failed")
        })
        .await;
    let qualities = s["encoding"]["qualities"].as_array().unwrap();
    assert!(qualities.iter().all(|q| q["status"] == "encoded"), "{}: {s}", b.label);
    for q in ["240p", "360p"] {
        let url = format!("{}/vod/{id}/hls/{q}/index.m3u8", t.url);
        let d = ffprobe_duration(&url).await;
        assert!((d - 12.0).abs() < 0.5, "{} {q}: {d} s", b.label);
    }
    let d = ffprobe_duration(&format!("{}/vod/{id}/mp4/source.mp4", t.url)).await;
    assert!((d - 12.0).abs() < 0.5, "{} mp4: {d} s", b.label);
}

/// An upload that pauses longer than the encoder following it waits: what was published from the
/// first chunk is withdrawn (not playable, the manifest waits again), and once the upload completes
/// the video is encoded whole. Local store only: on S3 encoding never starts before completion
/// (see the test above).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_upload_withdraws_its_early_encoding_until_it_completes() {
    let bytes = faststart_12s();
    const PART: usize = 5 * 1024 * 1024;
    {
        let b = Backend::sqlite_local();
        let t = TestServer::start_with(&b, |c| c.jobs.follow_timeout = std::time::Duration::from_secs(1)).await;
        let id = t.create_video("paused").await;
        assert_eq!(t.upload(&id, Some("part 1/2"), bytes[..PART].to_vec()).await.status(), 201);
        t.wait_status(&id, 60, |s| s["encoding"]["playable"] == true).await;
        // The client goes quiet: a second later the encoder stops short, and that is withdrawn.
        let s = t.wait_status(&id, 60, |s| s["encoding"]["playable"] == false).await;
        assert_eq!(s["ingest"]["status"], "uploading", "{}: {s}", b.label);
        assert_eq!(s["encoding"]["qualities"].as_array().map(Vec::len), Some(0), "{}: {s}", b.label);
        let r = t.http.get(format!("{}/vod/{id}/hls/manifest.m3u8", t.url)).send().await.unwrap();
        assert_eq!(r.status(), 202, "{}: the manifest waits for the video again", b.label);
        // The rest arrives: encoded whole, from the complete source.
        assert_eq!(t.upload(&id, Some("part 2/2"), bytes[PART..].to_vec()).await.status(), 201);
        let s = t
            .wait_status(&id, 120, |s| {
                let q = s["encoding"]["qualities"].as_array().cloned().unwrap_or_default();
                !q.is_empty() && q.iter().all(|q| q["status"] == "encoded" || q["status"] == "failed")
            })
            .await;
        assert!(s["encoding"]["qualities"].as_array().unwrap().iter().all(|q| q["status"] == "encoded"), "{s}");
        let d = ffprobe_duration(&format!("{}/vod/{id}/hls/360p/index.m3u8", t.url)).await;
        assert!((d - 12.0).abs() < 0.5, "{}: {d} s", b.label);
    }
}
