//! Hostile inputs, as an attacker would send them (issue: security). On every backend pair:
//! sources that are not media but references to other files (the cross-workspace manifest
//! attack) and broken or oversized media end `failed` and leak nothing; `source` URLs that point
//! inside are refused without a single connection; URL imports are bounded; the field and range
//! limits hold; malformed delivery paths are 404s.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::*;
use reqwest::Method;
use serde_json::{Value, json};
use vidi_core::id::VideoId;

/// An AVI whose headers claim a 100 000×100 000 picture: a real tiny AVI, patched.
fn giant_avi() -> Vec<u8> {
    let p = lavfi_video(
        "tiny.avi",
        &["-f", "lavfi", "-i", "testsrc2=size=16x16:rate=5", "-t", "1", "-c:v", "rawvideo", "-f", "avi"],
    );
    let mut b = std::fs::read(p).unwrap();
    let put = |b: &mut Vec<u8>, at: usize| {
        b[at..at + 4].copy_from_slice(&100_000u32.to_le_bytes());
        b[at + 4..at + 8].copy_from_slice(&100_000u32.to_le_bytes());
    };
    // avih: 8 header bytes, then dwWidth/dwHeight after eight other u32 fields.
    let avih = b.windows(4).position(|w| w == b"avih").unwrap();
    put(&mut b, avih + 8 + 32);
    // strf (BITMAPINFOHEADER): biSize, then biWidth/biHeight.
    let strf = b.windows(4).position(|w| w == b"strf").unwrap();
    put(&mut b, strf + 8 + 4);
    b
}

/// A minimal valid zip holding one stored file.
fn zip() -> Vec<u8> {
    let name = b"clip.mp4";
    let data = b"not a video at all";
    let crc = {
        let mut c = 0xffff_ffffu32;
        for &x in data {
            c ^= x as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 { (c >> 1) ^ 0xedb8_8320 } else { c >> 1 };
            }
        }
        !c
    };
    let mut z = Vec::new();
    let local = |z: &mut Vec<u8>| {
        z.extend(b"PK\x03\x04\x14\x00\x00\x00\x00\x00\x00\x00\x00\x00");
        z.extend(crc.to_le_bytes());
        z.extend((data.len() as u32).to_le_bytes());
        z.extend((data.len() as u32).to_le_bytes());
        z.extend((name.len() as u16).to_le_bytes());
        z.extend(0u16.to_le_bytes());
        z.extend(name);
        z.extend(data);
    };
    local(&mut z);
    let cd = z.len() as u32;
    z.extend(b"PK\x01\x02\x14\x00\x14\x00\x00\x00\x00\x00\x00\x00\x00\x00");
    z.extend(crc.to_le_bytes());
    z.extend((data.len() as u32).to_le_bytes());
    z.extend((data.len() as u32).to_le_bytes());
    z.extend((name.len() as u16).to_le_bytes());
    z.extend([0u8; 12]);
    z.extend(0u32.to_le_bytes());
    z.extend(name);
    let cd_len = z.len() as u32 - cd;
    z.extend(b"PK\x05\x06\x00\x00\x00\x00\x01\x00\x01\x00");
    z.extend(cd_len.to_le_bytes());
    z.extend(cd.to_le_bytes());
    z.extend(0u16.to_le_bytes());
    z
}

fn mpd(base_url: &str) -> Vec<u8> {
    format!(
        r#"<?xml version="1.0"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT2S" minBufferTime="PT1S"
     profiles="urn:mpeg:dash:profile:isoff-on-demand:2011">
 <Period><AdaptationSet mimeType="video/mp4">
  <Representation id="1" bandwidth="100000" codecs="avc1.64000d" width="320" height="240">
   <BaseURL>{base_url}</BaseURL><SegmentBase indexRange="0-0"/>
  </Representation></AdaptationSet></Period></MPD>
"#
    )
    .into_bytes()
}

fn m3u8(entry: &str) -> Vec<u8> {
    format!("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n{entry}\n#EXT-X-ENDLIST\n").into_bytes()
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() { out.extend(files_under(&p)) } else { out.push(p) }
        }
    }
    out
}

backend_test!(hostile_sources_fail_and_never_reach_another_workspace);
async fn hostile_sources_fail_and_never_reach_another_workspace(b: Backend) {
    let jpeg = std::fs::read(lavfi_video(
        "frame.jpg",
        &["-f", "lavfi", "-i", "testsrc2=size=64x64", "-frames:v", "1", "-f", "image2", "-update", "1"],
    ))
    .unwrap();
    let whole = std::fs::read(av_clip("end_moov.mp4", "size=320x240:rate=25", "frequency=440", 2, &[])).unwrap();
    let truncated = whole[..whole.len() / 2].to_vec();
    let t = TestServer::start(&b).await;
    let repo = t.server.state.repo.clone();
    // The victim: another workspace's private video.
    let victim_ws = repo.create_workspace("victim").await.unwrap();
    let victim_key = vidi_api::auth::create_api_key(repo.as_ref(), &victim_ws, "victim").await.unwrap();
    let as_victim = |m: Method, p: &str| t.http.request(m, format!("{}{p}", t.url)).basic_auth(&victim_key, Some(""));
    let r = as_victim(Method::POST, "/videos").json(&json!({"title": "secret", "public": false})).send().await.unwrap();
    let victim = r.json::<Value>().await.unwrap()["videoId"].as_str().unwrap().to_string();
    let secret = small_video();
    let part = reqwest::multipart::Part::bytes(secret.clone()).file_name("secret.mp4");
    let r = as_victim(Method::POST, &format!("/videos/{victim}/source"))
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", b.label);

    let media_root = t.cfg.storage.data_dir.join("media");
    let victim_abs = media_root.join(format!("videos/{victim}/source"));
    let rel = format!("../{victim}/source");
    let corpus: Vec<(&str, Vec<u8>)> = vec![
        ("dash, relative", mpd(&rel)),
        ("dash, absolute", mpd(&victim_abs.display().to_string())),
        ("dash, file://", mpd(&format!("file://{}", victim_abs.display()))),
        ("hls by path", m3u8(&rel)),
        ("hls by url", m3u8(&format!("{}/vod/{victim}/mp4/source.mp4", t.url))),
        ("ffconcat", format!("ffconcat version 1.0\nfile '{rel}'\nfile '{}'\n", victim_abs.display()).into_bytes()),
        ("image sequence", jpeg.clone()),
        ("100000x100000", giant_avi()),
        ("truncated mp4", truncated.clone()),
        ("zip", zip()),
    ];
    let started = Instant::now();
    let mut attacks = Vec::new();
    for (what, bytes) in corpus {
        let id = t.create_video(what).await;
        let name = if what == "image sequence" { "frame%03d.jpg" } else { "source.mp4" };
        let part = reqwest::multipart::Part::bytes(bytes).file_name(name);
        let r = t
            .req(Method::POST, &format!("/videos/{id}/source"))
            .multipart(reqwest::multipart::Form::new().part("file", part))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{what} on {}: the upload itself is accepted", b.label);
        attacks.push((what, id));
    }
    for (what, id) in &attacks {
        let s = t
            .wait_status(id, 60, |s| {
                s["encoding"]["qualities"].as_array().is_some_and(|q| q.iter().any(|q| q["status"] == "failed"))
            })
            .await;
        assert_eq!(s["encoding"]["playable"], false, "{what} on {}: {s}", b.label);
        let v = repo.get_video(&t.ws().await, &VideoId::parse(id).unwrap()).await.unwrap();
        let reason = match &v.ingest.probe {
            Some(vidi_core::model::ProbeOutcome::Failed(r)) => r.clone(),
            other => panic!("{what} on {}: probe {other:?}", b.label),
        };
        match *what {
            w if w.starts_with("dash") => assert!(reason.contains("(dash) is not accepted"), "{what}: {reason}"),
            w if w.starts_with("hls") => assert!(reason.contains("(hls) is not accepted"), "{what}: {reason}"),
            "ffconcat" => assert!(reason.contains("(concat) is not accepted"), "{what}: {reason}"),
            // ffprobe itself drops a stream whose size fails its own check; Vidi refuses any
            // picture over 8192 a side that gets past it (tested in vidi-media).
            "100000x100000" => assert!(
                reason.contains("100000×100000") || reason.contains("no audio or video stream"),
                "{what}: {reason}"
            ),
            _ => assert!(!reason.is_empty()),
        }
        // Nothing to play, and the assets say so for good (404, not "not yet").
        for asset in ["hls/manifest.m3u8", "mp4/source.mp4", "thumbnail.jpg"] {
            let r = t.http.get(format!("{}/vod/{id}/{asset}", t.url)).send().await.unwrap();
            assert_eq!(r.status(), 404, "{what} on {}: {asset}", b.label);
        }
    }
    // Bounded time: the whole corpus failed well within a minute.
    assert!(started.elapsed() < Duration::from_secs(60), "{:?}", started.elapsed());
    // No byte of the victim's video is anywhere among the attacker's files (local store).
    if b.s3_url.is_none() {
        let probe = &secret[secret.len() / 2..secret.len() / 2 + 4096];
        for (what, id) in &attacks {
            for f in files_under(&media_root.join(format!("videos/{id}"))) {
                let data = std::fs::read(&f).unwrap();
                assert!(
                    !data.windows(probe.len()).any(|w| w == probe),
                    "{what}: {} holds the victim's bytes",
                    f.display()
                );
            }
        }
    }
    // The victim's own video is untouched and still private.
    let r = t.http.get(format!("{}/vod/{victim}/mp4/source.mp4", t.url)).send().await.unwrap();
    assert_eq!(r.status(), 403, "{}", b.label);
}

/// A TCP listener on `addr` that counts the connections it accepts.
async fn counting_listener(addr: &str) -> Option<(SocketAddr, Arc<AtomicUsize>)> {
    let l = tokio::net::TcpListener::bind(addr).await.ok()?;
    let at = l.local_addr().unwrap();
    let n = Arc::new(AtomicUsize::new(0));
    let seen = n.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            drop(s);
        }
    });
    Some((at, n))
}

backend_test!(url_imports_that_point_inside_are_refused_without_a_connection);
async fn url_imports_that_point_inside_are_refused_without_a_connection(b: Backend) {
    let (v4, hits4) = counting_listener("127.0.0.1:0").await.unwrap();
    let v6 = counting_listener("[::1]:0").await;
    let port = v4.port();
    let t = TestServer::start(&b).await;
    // Literal addresses are refused when the video is created.
    let mut literal = vec![
        format!("http://127.0.0.1:{port}/clip.mp4"),
        format!("http://2130706433:{port}/clip.mp4"),
        format!("http://0x7f000001:{port}/clip.mp4"),
        format!("http://0.0.0.0:{port}/clip.mp4"),
        format!("http://[::ffff:127.0.0.1]:{port}/clip.mp4"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
    ];
    if let Some((a, _)) = &v6 {
        literal.push(format!("http://[::1]:{}/clip.mp4", a.port()));
    }
    for url in &literal {
        let body =
            problem(t.post_json("/videos", json!({"title": "ssrf", "source": url})).await, 400, "invalid-attribute")
                .await;
        assert!(body["detail"].as_str().unwrap().contains("not allowed"), "{url}: {body}");
    }
    // A name that resolves to loopback is accepted as a URL and refused at connection time:
    // the video fails, with a reason that does not say what (if anything) listens there.
    let r = t.post_json("/videos", json!({"title": "ssrf", "source": format!("http://localhost:{port}/x")})).await;
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["videoId"].as_str().unwrap().to_string();
    t.wait_status(&id, 20, |s| {
        s["encoding"]["qualities"].as_array().is_some_and(|q| q.iter().any(|q| q["status"] == "failed"))
    })
    .await;
    let v = t.server.state.repo.get_video(&t.ws().await, &VideoId::parse(&id).unwrap()).await.unwrap();
    assert_eq!(
        v.ingest.probe,
        Some(vidi_core::model::ProbeOutcome::Failed(
            "source URL: the URL's address is not allowed (loopback, private, link-local, multicast or reserved)"
                .into()
        )),
        "{}",
        b.label
    );
    assert_eq!(t.http.get(format!("{}/vod/{id}/hls/manifest.m3u8", t.url)).send().await.unwrap().status(), 404);
    assert_eq!(hits4.load(Ordering::SeqCst), 0, "a refused import connected to the target");
    if let Some((_, hits6)) = v6 {
        assert_eq!(hits6.load(Ordering::SeqCst), 0);
    }
}

backend_test!(url_imports_are_bounded_in_size_time_and_rate);
async fn url_imports_are_bounded_in_size_time_and_rate(b: Backend) {
    use axum::body::Body;
    use axum::routing::get;
    // A drip: 10 bytes every 200 ms, for ever (50 B/s), and an answer larger than the limit,
    // sent without a length.
    let drip = || async {
        let s = futures::stream::unfold((), |()| async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            Some((Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"0123456789")), ()))
        });
        Body::from_stream(s)
    };
    let big = || async {
        let s =
            futures::stream::iter((0..64).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![0u8; 64 * 1024]))));
        Body::from_stream(s)
    };
    let app = axum::Router::new().route("/drip", get(drip)).route("/big", get(big));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    let t = TestServer::start_with(&b, |c| {
        c.outbound.allow_private = true; // the origin is on loopback
        c.imports.min_rate = 1000;
        c.imports.rate_window = Duration::from_secs(1);
        c.uploads.max_request_bytes = 1024 * 1024;
    })
    .await;
    for (path, reason) in [
        ("drip", "source URL: the transfer stalled: under 1000 bytes/s for 1 s"),
        ("big", "source URL: the answer is larger than the limit of 1048576 bytes"),
    ] {
        let started = Instant::now();
        let r = t.post_json("/videos", json!({"title": path, "source": format!("http://{origin}/{path}")})).await;
        assert_eq!(r.status(), 202);
        let id = r.json::<Value>().await.unwrap()["videoId"].as_str().unwrap().to_string();
        t.wait_status(&id, 20, |s| {
            s["encoding"]["qualities"].as_array().is_some_and(|q| q.iter().any(|q| q["status"] == "failed"))
        })
        .await;
        assert!(started.elapsed() < Duration::from_secs(10), "{path}: {:?}", started.elapsed());
        let v = t.server.state.repo.get_video(&t.ws().await, &VideoId::parse(&id).unwrap()).await.unwrap();
        assert_eq!(v.ingest.probe, Some(vidi_core::model::ProbeOutcome::Failed(reason.into())), "{}", b.label);
    }
}

backend_test!(field_range_and_path_limits);
async fn field_range_and_path_limits(b: Backend) {
    let t = TestServer::start_with(&b, |c| c.uploads.max_source_bytes = 10 * 1024 * 1024).await;
    // Free-form fields are bounded, on create and on update.
    let long = "é".repeat(5_001);
    let tags: Vec<String> = (0..51).map(|i| format!("t{i}")).collect();
    let meta: Vec<Value> = (0..51).map(|i| json!({"key": format!("k{i}"), "value": "v"})).collect();
    let bad_value = vec![json!({"key": "k", "value": "v".repeat(1_001)})];
    for (field, value) in
        [("description", json!(long)), ("tags", json!(tags)), ("metadata", json!(meta)), ("metadata", json!(bad_value))]
    {
        let body =
            problem(t.post_json("/videos", json!({"title": "t", field: value})).await, 400, "invalid-attribute").await;
        assert_eq!(body["name"], field, "{body}");
    }
    let id = t.create_video("limits").await;
    problem(t.patch_json(&format!("/videos/{id}"), json!({"description": long})).await, 400, "invalid-attribute").await;
    // At the limits, accepted.
    let ok = t.post_json("/videos", json!({"title": "t", "description": "é".repeat(5_000), "tags": &tags[..50]})).await;
    assert_eq!(ok.status(), 201);

    // A byte range beyond the source size limit is refused before anything is written.
    let r = t.upload(&id, Some("bytes 0-99/20000000"), vec![0u8; 100]).await;
    problem(r, 400, "video-content-range-by-bytes-total-bytes-too-high").await;
    let v = t.server.state.repo.get_video(&t.ws().await, &VideoId::parse(&id).unwrap()).await.unwrap();
    assert!(v.ingest.session.is_none(), "{}: an upload session was opened", b.label);

    // Malformed paths are answered, never with a 5xx.
    let long_segment = "a".repeat(300);
    for path in [
        format!("/vod/{id}/hls/{long_segment}/index.m3u8"),
        format!("/vod/{id}/hls/720p/{long_segment}.ts"),
        format!("/vod/{long_segment}/hls/manifest.m3u8"),
        format!("/vod/{id}/token/{long_segment}/hls/manifest.m3u8"),
        format!("/vod/{id}/hls/%2e%2e/%2e%2e%2fsource"),
        format!("/videos/{long_segment}"),
    ] {
        let r = t.http.get(format!("{}{path}", t.url)).basic_auth(&t.key, Some("")).send().await.unwrap();
        assert!(!r.status().is_server_error(), "{path}: {}", r.status());
    }
    // On the default limit, a far range of a contract-sized total is taken without making a file
    // as large as its offset claims.
    let b = &Backend::sqlite_local();
    let t = TestServer::start(b).await;
    let id = t.create_video("sparse").await;
    let r = t.upload(&id, Some("bytes 52428799900-52428799999/52428800000"), vec![7u8; 100]).await;
    assert!(r.status().is_success(), "{}", r.status());
    let largest =
        files_under(&t.cfg.storage.data_dir).iter().map(|f| std::fs::metadata(f).unwrap().len()).max().unwrap_or(0);
    assert!(largest < 1024 * 1024 * 1024, "a file of {largest} bytes was made");
}
