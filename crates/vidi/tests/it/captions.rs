//! Captions and chapters over HTTP (contract rows 25–33, §2 Caption and Chapter, §10), on every
//! configured backend: every operation and error, languages, one default per video, hostile
//! WebVTT refused (and the stored file left alone), files served as text/vtt behind the private
//! video checks, another workspace's video, the master playlist's SUBTITLES group and the player
//! page's tracks, and a deleted video taking its files with it.

use crate::common::{Backend, TestServer, av_clip, backend_test, problem};
use reqwest::Method;
use serde_json::{Value, json};

const EN: &str =
    "WEBVTT\n\n00:00:00.500 --> 00:00:03.000\nHello <b>there</b>\n\n00:00:03.000 --> 00:00:05.500\nSecond line\n";
const EN2: &str = "WEBVTT\n\n00:00:00.000 --> 00:00:05.000\nReplaced\n";
const FR: &str = "\u{feff}WEBVTT\r\n\r\n1\r\n00:00.000 --> 00:02.000 align:start\r\nBonjour &amp; bienvenue\r\n";
const CHAPTERS: &str =
    "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nOpening\n\n00:00:02.000 --> 00:00:06.000\nThe <i>middle</i> & end\n";

/// An upload as the Node client sends it: the part named after the file.
async fn put_file(t: &TestServer, path: &str, name: &str, bytes: &[u8]) -> reqwest::Response {
    let part = reqwest::multipart::Part::bytes(bytes.to_vec()).file_name(name.to_string());
    let form = reqwest::multipart::Form::new().part(name.to_string(), part);
    t.req(Method::POST, path).multipart(form).send().await.unwrap()
}

async fn json_of(r: reqwest::Response, status: u16) -> Value {
    assert_eq!(r.status().as_u16(), status, "{:?}", r.url().path());
    assert_eq!(r.headers()["content-type"], "application/json");
    r.json().await.unwrap()
}

/// Exactly the schema's keys (Python 1.3.0 refuses any other).
fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort();
    k
}

/// GET of an absolute asset URL (no credentials, like a browser), from another origin.
async fn fetch(t: &TestServer, url: &str) -> reqwest::Response {
    t.http.get(url).header("Origin", "https://elsewhere.example").send().await.unwrap()
}

/// The files a local store holds under a video's `kind` folder.
fn stored(t: &TestServer, video: &str, kind: &str) -> Option<usize> {
    if t.backend.s3_url.is_some() {
        return None;
    }
    let dir = walk(t.dir.path());
    Some(dir.iter().filter(|p| p.contains(video) && p.contains(&format!("/{kind}/"))).count())
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p.to_string_lossy().into_owned()) }
    }
    out
}

backend_test!(captions_every_operation_languages_and_one_default);
async fn captions_every_operation_languages_and_one_default(b: Backend) {
    let t = TestServer::start(&b).await;
    let v = t.create_video("captioned").await;
    let base = format!("/videos/{v}/captions");

    let empty = json_of(t.get(&base).await, 200).await;
    assert_eq!(empty["data"], json!([]), "{}", b.label);
    assert_eq!(empty["pagination"]["itemsTotal"], 0);

    let en = json_of(put_file(&t, &format!("{base}/en"), "en.vtt", EN.as_bytes()).await, 200).await;
    assert_eq!(keys(&en), ["default", "src", "srclang", "uri"], "{en}");
    assert_eq!(en["uri"], format!("/videos/{v}/captions/en"));
    assert_eq!(en["src"], format!("{}/vod/{v}/captions/en.vtt", t.url));
    assert_eq!((en["srclang"].as_str(), en["default"].as_bool()), (Some("en"), Some(false)));
    // Case-insensitive, kept lowercase (contract §10).
    let fr = json_of(put_file(&t, &format!("{base}/FR-CA"), "fr.vtt", FR.as_bytes()).await, 200).await;
    assert_eq!((fr["srclang"].as_str(), fr["uri"].as_str()), (Some("fr-ca"), Some(&*format!("{base}/fr-ca"))));
    assert_eq!(json_of(t.get(&format!("{base}/EN")).await, 200).await, en);

    // The file, as uploaded, as text/vtt, to any origin.
    let r = fetch(&t, en["src"].as_str().unwrap()).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/vtt"));
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert_eq!(r.text().await.unwrap(), EN);
    assert_eq!(fetch(&t, fr["src"].as_str().unwrap()).await.bytes().await.unwrap(), FR.as_bytes());

    // The list, oldest first, paged.
    let all = json_of(t.get(&base).await, 200).await;
    assert_eq!(
        all["data"].as_array().unwrap().iter().map(|c| c["srclang"].clone()).collect::<Vec<_>>(),
        ["en", "fr-ca"]
    );
    let one = json_of(t.get(&format!("{base}?pageSize=1&currentPage=2")).await, 200).await;
    assert_eq!(
        (one["data"][0]["srclang"].as_str(), one["pagination"]["itemsTotal"].as_u64()),
        (Some("fr-ca"), Some(2))
    );
    problem(t.get(&format!("{base}?pageSize=0")).await, 400, "request-invalid-query-parameter").await;

    // At most one default: the last one set wins.
    let r = json_of(t.patch_json(&format!("{base}/en"), json!({ "default": true })).await, 200).await;
    assert_eq!(r["default"], true);
    let r = json_of(t.patch_json(&format!("{base}/fr-ca"), json!({ "default": true })).await, 200).await;
    assert_eq!(r["default"], true);
    assert_eq!(json_of(t.get(&format!("{base}/en")).await, 200).await["default"], false);
    // An empty PATCH is a no-op: 200 with the captions unchanged (issue 24), 404 when missing.
    let same = json_of(t.patch_json(&format!("{base}/fr-ca"), json!({})).await, 200).await;
    assert_eq!(same, json_of(t.get(&format!("{base}/fr-ca")).await, 200).await);
    assert_eq!(same["default"], true);
    problem(t.patch_json(&format!("{base}/de"), json!({})).await, 404, "resource-not-found").await;
    let p =
        problem(t.patch_json(&format!("{base}/en"), json!({ "default": "yes" })).await, 400, "invalid-attribute").await;
    assert_eq!(p["name"], "default");
    problem(t.patch_json(&format!("{base}/de"), json!({ "default": true })).await, 404, "resource-not-found").await;

    // A second upload replaces the file (same URL) and keeps `default`.
    let again = json_of(put_file(&t, &format!("{base}/fr-ca"), "fr2.vtt", EN2.as_bytes()).await, 200).await;
    assert_eq!((again["default"].as_bool(), again["src"].clone()), (Some(true), fr["src"].clone()));
    assert_eq!(fetch(&t, fr["src"].as_str().unwrap()).await.text().await.unwrap(), EN2);
    assert_eq!(stored(&t, &v, "captions").unwrap_or(2), 2, "the replaced file is gone");

    // Bad languages: the contract's 400 `invalid-attribute`, named `language`.
    for bad in ["xx", "en_US", "eng", "english", "e", "zzz-us"] {
        let p = problem(put_file(&t, &format!("{base}/{bad}"), "x.vtt", EN.as_bytes()).await, 400, "invalid-attribute")
            .await;
        assert_eq!(p["name"], "language", "{bad}: {p}");
        assert!(p["detail"].as_str().unwrap().contains("language"), "{p}");
        problem(t.get(&format!("{base}/{bad}")).await, 400, "invalid-attribute").await;
    }
    // Unknown videos and captions.
    let p = problem(
        put_file(&t, "/videos/vi0000000000000000000000/captions/en", "x.vtt", EN.as_bytes()).await,
        404,
        "resource-not-found",
    )
    .await;
    assert_eq!(p["name"], "videoId");
    problem(t.get("/videos/nope/captions").await, 404, "resource-not-found").await;
    let p = problem(t.get(&format!("{base}/de")).await, 404, "resource-not-found").await;
    assert_eq!(p["name"], "language");

    // Delete: 204, then gone; a second delete is a 404.
    assert_eq!(t.req(Method::DELETE, &format!("{base}/en")).send().await.unwrap().status(), 204);
    problem(t.get(&format!("{base}/en")).await, 404, "resource-not-found").await;
    assert_eq!(fetch(&t, en["src"].as_str().unwrap()).await.status(), 404);
    problem(t.req(Method::DELETE, &format!("{base}/en")).send().await.unwrap(), 404, "resource-not-found").await;
    assert_eq!(stored(&t, &v, "captions").unwrap_or(1), 1);
}

backend_test!(hostile_files_are_refused_and_malformed_ones_kept);
async fn hostile_files_are_refused_and_malformed_ones_kept(b: Backend) {
    let t = TestServer::start(&b).await;
    let v = t.create_video("hostile").await;
    let path = format!("/videos/{v}/captions/en");
    let ok = json_of(put_file(&t, &path, "en.vtt", EN.as_bytes()).await, 200).await;
    let bad: &[&[u8]] = &[
        b"not a caption file",
        b"<html><script>alert(1)</script></html>",
        b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n<script>alert(document.cookie)</script>",
        b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n<img src=x onerror=alert(1)>",
        b"WEBVTT\n\nSTYLE\n::cue { background-image: url(https://tracker.example/p.gif) }\n",
        b"WEBVTT\n\n00:00:01 --> 00:00:02\n<script>alert(1)</script> in a malformed cue",
        b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n\xff\xfe\xfd",
        b"\x00\x00\x00\x18ftypmp42",
    ];
    for file in bad {
        let p = problem(put_file(&t, &path, "en.vtt", file).await, 400, "uploaded-file-invalid-file").await;
        assert_eq!(p["name"], "file");
        assert!(p["detail"].is_string(), "{p}");
    }
    let p = problem(put_file(&t, &path, "en.vtt", b"").await, 400, "uploaded-file-empty").await;
    assert_eq!(p["name"], "file");
    let big = format!("WEBVTT\n\nNOTE {}\n", "x".repeat(2 * 1024 * 1024));
    problem(put_file(&t, &path, "en.vtt", big.as_bytes()).await, 400, "uploaded-file-too-large").await;
    let no_file = reqwest::multipart::Form::new().text("default", "true");
    problem(t.req(Method::POST, &path).multipart(no_file).send().await.unwrap(), 400, "uploaded-file-no-file").await;
    let two = reqwest::multipart::Form::new()
        .part("a", reqwest::multipart::Part::bytes(EN.as_bytes().to_vec()).file_name("a.vtt"))
        .part("b", reqwest::multipart::Part::bytes(EN.as_bytes().to_vec()).file_name("b.vtt"));
    problem(t.req(Method::POST, &path).multipart(two).send().await.unwrap(), 400, "uploaded-file-multiple-files").await;
    let r = t.req(Method::POST, &path).header("content-type", "text/vtt").body(EN).send().await.unwrap();
    problem(r, 400, "uploaded-file-no-file").await;
    // None of it replaced what was stored.
    assert_eq!(fetch(&t, ok["src"].as_str().unwrap()).await.text().await.unwrap(), EN, "{}", b.label);
    assert_eq!(stored(&t, &v, "captions").unwrap_or(1), 1);

    // Malformed but harmless files are kept, as api.video keeps them (contract §10), byte for
    // byte: browsers skip the cues they cannot read.
    for file in [
        "WEBVTT\n\n00:00:05.000 --> 00:00:01.000\nbackwards\n",
        "WEBVTT\n\n00:00:01,000 --> 00:00:02,000\nSRT commas\n",
        "WEBVTT\n00:00:01.000 --> 00:00:02.000\nno blank line after the header\n",
    ] {
        let c = json_of(put_file(&t, &path, "en.vtt", file.as_bytes()).await, 200).await;
        assert_eq!(fetch(&t, c["src"].as_str().unwrap()).await.text().await.unwrap(), file, "{}", b.label);
    }
}

backend_test!(chapters_every_operation);
async fn chapters_every_operation(b: Backend) {
    let t = TestServer::start(&b).await;
    let v = t.create_video("chaptered").await;
    let base = format!("/videos/{v}/chapters");
    let c = json_of(put_file(&t, &format!("{base}/en-GB"), "chapters.vtt", CHAPTERS.as_bytes()).await, 200).await;
    assert_eq!(keys(&c), ["language", "src", "uri"], "{c}");
    // Not shortened to `en` (contract §10 decision), but lowercase.
    assert_eq!(c["language"], "en-gb");
    assert_eq!(c["uri"], format!("{base}/en-gb"));
    assert_eq!(c["src"], format!("{}/vod/{v}/chapters/en-gb.vtt", t.url));
    let r = fetch(&t, c["src"].as_str().unwrap()).await;
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/vtt"));
    assert_eq!(r.text().await.unwrap(), CHAPTERS);
    assert_eq!(json_of(t.get(&format!("{base}/en-gb")).await, 200).await, c);
    json_of(put_file(&t, &format!("{base}/fr"), "fr.vtt", FR.as_bytes()).await, 200).await;
    let list = json_of(t.get(&base).await, 200).await;
    assert_eq!(list["pagination"]["itemsTotal"], 2, "{list}");
    assert_eq!(list["data"][0], c);
    // Replaced by a second upload.
    json_of(put_file(&t, &format!("{base}/en-gb"), "c.vtt", EN2.as_bytes()).await, 200).await;
    assert_eq!(fetch(&t, c["src"].as_str().unwrap()).await.text().await.unwrap(), EN2);
    // Chapters have no default to set.
    let r = t.patch_json(&format!("{base}/en-gb"), json!({ "default": true })).await;
    problem(r, 405, "method-not-allowed").await;
    problem(put_file(&t, &format!("{base}/xx"), "x.vtt", CHAPTERS.as_bytes()).await, 400, "invalid-attribute").await;
    problem(
        put_file(&t, &format!("{base}/en"), "x.vtt", b"no signature\n\n00:00:01.000 --> 00:00:02.000\nx\n").await,
        400,
        "uploaded-file-invalid-file",
    )
    .await;
    problem(t.get(&format!("{base}/de")).await, 404, "resource-not-found").await;
    assert_eq!(t.req(Method::DELETE, &format!("{base}/en-gb")).send().await.unwrap().status(), 204);
    problem(t.req(Method::DELETE, &format!("{base}/en-gb")).send().await.unwrap(), 404, "resource-not-found").await;
    assert_eq!(fetch(&t, c["src"].as_str().unwrap()).await.status(), 404);
    assert_eq!(stored(&t, &v, "chapters").unwrap_or(1), 1, "{}", b.label);
}

backend_test!(another_workspaces_video_is_not_found);
async fn another_workspaces_video_is_not_found(b: Backend) {
    let t = TestServer::start(&b).await;
    let repo = t.server.state.repo.clone();
    let other_ws = repo.create_workspace("other").await.unwrap();
    let other_key = vidi_api::auth::create_api_key(repo.as_ref(), &other_ws, "k").await.unwrap();
    let as_other = |m: Method, p: &str| t.http.request(m, format!("{}{p}", t.url)).basic_auth(&other_key, Some(""));
    let v = t.create_video("mine").await;
    json_of(put_file(&t, &format!("/videos/{v}/captions/en"), "en.vtt", EN.as_bytes()).await, 200).await;
    json_of(put_file(&t, &format!("/videos/{v}/chapters/en"), "en.vtt", CHAPTERS.as_bytes()).await, 200).await;
    for kind in ["captions", "chapters"] {
        for (m, p) in [
            (Method::GET, format!("/videos/{v}/{kind}")),
            (Method::GET, format!("/videos/{v}/{kind}/en")),
            (Method::DELETE, format!("/videos/{v}/{kind}/en")),
        ] {
            let p = problem(as_other(m, &p).send().await.unwrap(), 404, "resource-not-found").await;
            assert_eq!(p["name"], "videoId", "{}", b.label);
        }
        let part = reqwest::multipart::Part::bytes(EN2.as_bytes().to_vec()).file_name("x.vtt");
        let r = as_other(Method::POST, &format!("/videos/{v}/{kind}/en"))
            .multipart(reqwest::multipart::Form::new().part("file", part))
            .send()
            .await
            .unwrap();
        problem(r, 404, "resource-not-found").await;
    }
    let r = as_other(Method::PATCH, &format!("/videos/{v}/captions/en")).json(&json!({ "default": true }));
    problem(r.send().await.unwrap(), 404, "resource-not-found").await;
    // Nothing of it changed.
    let c = json_of(t.get(&format!("/videos/{v}/captions/en")).await, 200).await;
    assert_eq!(c["default"], false);
    assert_eq!(fetch(&t, c["src"].as_str().unwrap()).await.text().await.unwrap(), EN);
}

backend_test!(a_private_videos_files_need_its_token);
async fn a_private_videos_files_need_its_token(b: Backend) {
    let t = TestServer::start(&b).await;
    let r = t.post_json("/videos", json!({ "title": "secret", "public": false })).await;
    let v = r.json::<Value>().await.unwrap()["videoId"].as_str().unwrap().to_string();
    let c = json_of(put_file(&t, &format!("/videos/{v}/captions/en"), "en.vtt", EN.as_bytes()).await, 200).await;
    let src = c["src"].as_str().unwrap().to_string();
    assert!(src.starts_with(&format!("{}/vod/{v}/token/", t.url)) && src.ends_with("/captions/en.vtt"), "{src}");
    // Without a token, or with a made-up one: refused like every other asset.
    for url in [
        format!("{}/vod/{v}/captions/en.vtt", t.url),
        format!("{}/vod/{v}/token/{}/captions/en.vtt", t.url, uuid::Uuid::new_v4()),
    ] {
        problem(fetch(&t, &url).await, 403, "video-private-token-invalid").await;
    }
    // With it: the file; each read mints a new token.
    assert_eq!(fetch(&t, &src).await.text().await.unwrap(), EN, "{}", b.label);
    let again = json_of(t.get(&format!("/videos/{v}/captions/en")).await, 200).await;
    assert_ne!(again["src"], c["src"]);
    let ch = json_of(put_file(&t, &format!("/videos/{v}/chapters/en"), "c.vtt", CHAPTERS.as_bytes()).await, 200).await;
    let chapters_src = ch["src"].as_str().unwrap();
    assert!(chapters_src.contains("/token/"), "{chapters_src}");
    problem(fetch(&t, &format!("{}/vod/{v}/chapters/en.vtt", t.url)).await, 403, "video-private-token-invalid").await;
    assert_eq!(fetch(&t, chapters_src).await.text().await.unwrap(), CHAPTERS);
}

/// A subtitle segment without the `X-TIMESTAMP-MAP` line delivery adds to its header.
fn unmapped(segment: &str) -> String {
    let (first, rest) = segment.split_once('\n').unwrap();
    let (map, rest) = rest.split_once('\n').unwrap();
    assert!(map.starts_with("X-TIMESTAMP-MAP=MPEGTS:") && map.ends_with(",LOCAL:00:00:00.000"), "{segment}");
    format!("{first}\n{rest}")
}

/// The config JSON the player page carries.
fn player_config(html: &str) -> Value {
    let data = html.split("<script type=\"application/json\" id=\"vidi-config\">").nth(1).unwrap();
    serde_json::from_str(data.split("</script>").next().unwrap()).unwrap()
}

backend_test!(the_master_lists_the_captions_the_player_shows_them_and_deletion_takes_them, multi_thread = 2);
async fn the_master_lists_the_captions_the_player_shows_them_and_deletion_takes_them(b: Backend) {
    let clip = std::fs::read(av_clip("captions-6s.mp4", "size=320x240:rate=25", "frequency=440", 6, &[])).unwrap();
    let t = TestServer::start(&b).await;
    let v = t.create_video("subtitled").await;
    assert_eq!(t.upload(&v, None, clip.clone()).await.status(), 201);
    for (lang, file) in [("en", EN), ("fr", FR)] {
        json_of(put_file(&t, &format!("/videos/{v}/captions/{lang}"), "c.vtt", file.as_bytes()).await, 200).await;
    }
    json_of(t.patch_json(&format!("/videos/{v}/captions/en"), json!({ "default": true })).await, 200).await;
    json_of(put_file(&t, &format!("/videos/{v}/chapters/en"), "c.vtt", CHAPTERS.as_bytes()).await, 200).await;
    t.wait_status(&v, 180, |s| s["encoding"]["playable"] == true).await;

    let master_url = format!("{}/vod/{v}/hls/manifest.m3u8", t.url);
    let master = fetch(&t, &master_url).await.text().await.unwrap();
    assert!(master.contains("#EXT-X-VERSION:4\n"), "{master}");
    assert!(
        master.contains(
            "#EXT-X-MEDIA:TYPE=SUBTITLES,URI=\"captions/en.m3u8\",GROUP-ID=\"subs\",LANGUAGE=\"en\",NAME=\"English\",DEFAULT=YES,AUTOSELECT=YES\n"
        ),
        "{}: {master}",
        b.label
    );
    assert!(
        master.contains(
            "#EXT-X-MEDIA:TYPE=SUBTITLES,URI=\"captions/fr.m3u8\",GROUP-ID=\"subs\",LANGUAGE=\"fr\",NAME=\"French\"\n"
        ),
        "{master}"
    );
    let variants = master.matches("#EXT-X-STREAM-INF").count();
    assert!(variants >= 1 && master.matches("SUBTITLES=\"subs\"").count() == variants, "{master}");

    // One subtitle playlist per language: one segment, the stored file, over the whole video.
    let sub = fetch(&t, &format!("{}/vod/{v}/hls/captions/en.m3u8", t.url)).await.text().await.unwrap();
    assert!(
        sub.contains("#EXT-X-TARGETDURATION:6\n")
            && sub.contains("#EXTINF:6")
            && sub.ends_with("en.vtt\n#EXT-X-ENDLIST\n"),
        "{sub}"
    );
    // The segment is the file with `X-TIMESTAMP-MAP` in its header, cue time 0 mapped to
    // where the MPEG-TS timeline starts (ffmpeg: 1.4 s and the encoder's delay).
    let segment = fetch(&t, &format!("{}/vod/{v}/hls/captions/en.vtt", t.url)).await.text().await.unwrap();
    assert_eq!(unmapped(&segment), EN);
    let pts: u64 = segment.split("MPEGTS:").nth(1).unwrap().split(',').next().unwrap().parse().unwrap();
    assert!((126_000..=140_000).contains(&pts), "{segment}");
    assert_eq!(fetch(&t, &format!("{}/vod/{v}/hls/captions/de.m3u8", t.url)).await.status(), 404);

    // ffmpeg reads the master (its HLS demuxer in 5.1 skips subtitle groups: the browser test
    // checks that hls.js offers them) and each subtitle playlist: a WebVTT stream whose cues
    // are the file's.
    let probe = |url: String| {
        let out = std::process::Command::new("ffprobe")
            .args(["-v", "error", "-show_entries", "stream=codec_type,codec_name:packet=pts_time", "-of", "json"])
            .arg(&url)
            .output()
            .unwrap();
        assert!(out.status.success(), "{url}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let media = probe(master_url.clone());
    assert!(media["streams"].as_array().unwrap().iter().any(|s| s["codec_type"] == "video"), "{media}");
    let subs = probe(format!("{}/vod/{v}/hls/captions/en.m3u8", t.url));
    assert_eq!(subs["streams"][0]["codec_name"], "webvtt", "{subs}");
    let times: Vec<&str> =
        subs["packets"].as_array().unwrap().iter().map(|p| p["pts_time"].as_str().unwrap()).collect();
    assert_eq!(times, ["0.500000", "3.000000"], "{subs}");

    // The player page: both captions (the default on) and the chapters, titles as text.
    let page = fetch(&t, &format!("{}/embed/vod/{v}", t.url)).await.text().await.unwrap();
    let config = player_config(&page);
    assert_eq!(
        config["captions"],
        json!([
            { "lang": "en", "label": "English", "src": format!("/vod/{v}/captions/en.vtt"), "default": true },
            { "lang": "fr", "label": "French", "src": format!("/vod/{v}/captions/fr.vtt"), "default": false },
        ]),
        "{config}"
    );
    assert_eq!(
        config["chapters"],
        json!([{ "start": 0.0, "end": 2.0, "title": "Opening" }, { "start": 2.0, "end": 6.0, "title": "The middle & end" }])
    );

    // Deleting the video deletes its captions and chapters, rows and files.
    assert_eq!(t.req(Method::DELETE, &format!("/videos/{v}")).send().await.unwrap().status(), 204);
    problem(t.get(&format!("/videos/{v}/captions")).await, 404, "resource-not-found").await;
    problem(t.get(&format!("/videos/{v}/chapters/en")).await, 404, "resource-not-found").await;
    assert_eq!(fetch(&t, &format!("{}/vod/{v}/captions/en.vtt", t.url)).await.status(), 404);
    assert_eq!(stored(&t, &v, "captions").unwrap_or(0), 0);
    assert_eq!(stored(&t, &v, "chapters").unwrap_or(0), 0);
}

backend_test!(a_private_masters_subtitles_stay_in_the_session, multi_thread = 2);
async fn a_private_masters_subtitles_stay_in_the_session(b: Backend) {
    let clip = std::fs::read(av_clip("captions-6s.mp4", "size=320x240:rate=25", "frequency=440", 6, &[])).unwrap();
    let t = TestServer::start(&b).await;
    let r = t.post_json("/videos", json!({ "title": "private subs", "public": false })).await;
    let v = r.json::<Value>().await.unwrap()["videoId"].as_str().unwrap().to_string();
    assert_eq!(t.upload(&v, None, clip.clone()).await.status(), 201);
    json_of(put_file(&t, &format!("/videos/{v}/captions/en"), "c.vtt", EN.as_bytes()).await, 200).await;
    t.wait_status(&v, 180, |s| s["encoding"]["playable"] == true).await;
    let video: Value = t.get(&format!("/videos/{v}")).await.json().await.unwrap();
    let hls = video["assets"]["hls"].as_str().unwrap();
    let master = fetch(&t, hls).await.text().await.unwrap();
    let avh = master.split("URI=\"captions/en.m3u8").nth(1).unwrap().split('"').next().unwrap().to_string();
    assert!(avh.starts_with("?avh="), "{}: {master}", b.label);
    let dir = hls.trim_end_matches("manifest.m3u8");
    let sub = fetch(&t, &format!("{dir}captions/en.m3u8{avh}")).await.text().await.unwrap();
    assert!(sub.contains(&format!("\nen.vtt{avh}\n")), "{sub}");
    assert_eq!(unmapped(&fetch(&t, &format!("{dir}captions/en.vtt{avh}")).await.text().await.unwrap()), EN);
    // Outside the session: refused.
    let plain = format!("{}/vod/{v}/hls/captions/en.vtt", t.url);
    problem(fetch(&t, &plain).await, 403, "video-private-token-invalid").await;
}
