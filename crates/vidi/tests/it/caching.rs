//! What a shared cache (a CDN in front of Vidi) is allowed to keep: every delivery route of a
//! public video and of a private one (HLS master, rendition playlist, segment, MP4, thumbnail,
//! captions, chapters, the subtitle playlist and its segment, the session), and a live stream's
//! thumbnail public and private. Public answers keep their long caching; private ones say
//! `private`, keeping their lifetime for the viewer's own cache (docs/operations.md).

use crate::common::{Backend, TestServer, av_clip, backend_test, lavfi_video};
use reqwest::Method;
use serde_json::{Value, json};

const VTT: &str = "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nHello\n";

async fn put_file(t: &TestServer, path: &str, name: &str, bytes: Vec<u8>) {
    let part = reqwest::multipart::Part::bytes(bytes).file_name(name.to_string());
    let form = reqwest::multipart::Form::new().part("file", part);
    let r = t.req(Method::POST, path).multipart(form).send().await.unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.text().await.unwrap());
}

/// `Cache-Control` of a GET of `url`, which must answer 200.
async fn cache_of(t: &TestServer, url: &str) -> (String, String) {
    let r = t.http.get(url).send().await.unwrap();
    assert_eq!(r.status(), 200, "{url}");
    let cc = r.headers().get("cache-control").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (cc, r.text().await.unwrap_or_default())
}

/// The first URI line of a playlist.
fn first_uri(playlist: &str) -> String {
    playlist.lines().find(|l| !l.is_empty() && !l.starts_with('#')).unwrap_or_else(|| panic!("{playlist}")).to_string()
}

/// The private form of a public answer's caching: what delivery must say for a private video.
fn private(public: &str) -> String {
    public.replacen("public", "private", 1).replace("no-cache", "private, no-cache")
}

backend_test!(private_media_is_never_for_a_shared_cache, multi_thread = 2);
async fn private_media_is_never_for_a_shared_cache(b: Backend) {
    let clip = std::fs::read(av_clip("cache-2s.mp4", "size=320x240:rate=25", "frequency=440", 2, &[])).unwrap();
    let t = TestServer::start(&b).await;
    let encoded = |s: &Value| {
        s["encoding"]["qualities"]
            .as_array()
            .is_some_and(|q| !q.is_empty() && q.iter().all(|q| q["status"] == "encoded"))
    };
    for public in [true, false] {
        let r = t.post_json("/videos", json!({ "title": "cached", "public": public, "mp4Support": true })).await;
        let id = r.json::<Value>().await.unwrap()["videoId"].as_str().unwrap().to_string();
        put_file(&t, &format!("/videos/{id}/captions/en"), "en.vtt", VTT.as_bytes().to_vec()).await;
        put_file(&t, &format!("/videos/{id}/chapters/en"), "en.vtt", VTT.as_bytes().to_vec()).await;
        assert_eq!(t.upload(&id, None, clip.clone()).await.status(), 201);
        t.wait_status(&id, 180, encoded).await;
        let video: Value = t.get(&format!("/videos/{id}")).await.json().await.unwrap();
        let hls = video["assets"]["hls"].as_str().unwrap().to_string();
        let base = hls.trim_end_matches("/hls/manifest.m3u8").to_string();

        // The master sets the playback session of a private video; every later URL carries it.
        let (master_cc, master) = cache_of(&t, &hls).await;
        let avh = master
            .split("?avh=")
            .nth(1)
            .map(|s| format!("?avh={}", s.split(['"', '\n']).next().unwrap()))
            .unwrap_or_default();
        assert_eq!(avh.is_empty(), public, "{master}");
        let variant = first_uri(&master);
        let (variant_cc, playlist) = cache_of(&t, &format!("{base}/hls/{variant}")).await;
        let quality = variant.split('/').next().unwrap();
        let segment = first_uri(&playlist);
        let mut expected = vec![
            ("master", master_cc, "public, max-age=60"),
            ("rendition playlist", variant_cc, "public, max-age=60"),
            (
                "segment",
                cache_of(&t, &format!("{base}/hls/{quality}/{segment}")).await.0,
                "public, max-age=31536000, immutable",
            ),
        ];
        for (what, path, cc) in [
            ("mp4", "/mp4/source.mp4", "public, max-age=60"),
            ("thumbnail", "/thumbnail.jpg", "public, max-age=60"),
            ("captions", "/captions/en.vtt", "public, max-age=60"),
            ("chapters", "/chapters/en.vtt", "public, max-age=60"),
            ("subtitle playlist", "/hls/captions/en.m3u8", "no-cache"),
            ("subtitle segment", "/hls/captions/en.vtt", "public, max-age=60"),
        ] {
            expected.push((what, cache_of(&t, &format!("{base}{path}{avh}")).await.0, cc));
        }
        if !public {
            expected.push(("session", cache_of(&t, &format!("{base}/session{avh}")).await.0, "no-store"));
        }
        for (what, got, public_cc) in expected {
            let want = if public || public_cc == "no-store" { public_cc.to_string() } else { private(public_cc) };
            assert_eq!(got, want, "{} {what} of a {} video", b.label, if public { "public" } else { "private" });
        }
    }

    // A live stream's thumbnail, public then private.
    let jpeg = std::fs::read(lavfi_video(
        "cache-thumb.jpg",
        &["-f", "lavfi", "-i", "color=c=blue:s=320x180", "-frames:v", "1", "-f", "mjpeg"],
    ))
    .unwrap();
    for public in [true, false] {
        let r = t.post_json("/live-streams", json!({ "name": "cached", "public": public })).await;
        let id = r.json::<Value>().await.unwrap()["liveStreamId"].as_str().unwrap().to_string();
        put_file(&t, &format!("/live-streams/{id}/thumbnail"), "thumb.jpg", jpeg.clone()).await;
        let l: Value = t.get(&format!("/live-streams/{id}")).await.json().await.unwrap();
        let (cc, _) = cache_of(&t, l["assets"]["thumbnail"].as_str().unwrap()).await;
        let want = if public { "public, max-age=60" } else { "private, max-age=60" };
        assert_eq!(cc, want, "{} thumbnail of a {} live stream", b.label, if public { "public" } else { "private" });
    }
}
