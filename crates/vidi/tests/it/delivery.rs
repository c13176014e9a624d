//! Delivery built from state: the master playlist is written from the renditions the encode
//! stored, when it is requested (a whole video, one encoded in pieces, sound alone, a private
//! one), and the player page is real files with its configuration as JSON. On every configured
//! backend.

use crate::common::{Backend, TestServer, av_clip, backend_test, lavfi_video};
use serde_json::Value;

/// The whole master of a 640×360 clip with sound encoded in one piece: both rungs, sound muxed in.
const MASTER_640_WITH_SOUND: &str = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n\
#EXT-X-STREAM-INF:BANDWIDTH=728000,AVERAGE-BANDWIDTH=528000,CODECS=\"avc1.64001e,mp4a.40.2\",RESOLUTION=426x240,NAME=\"240p\"\n\
240p/index.m3u8\n\
#EXT-X-STREAM-INF:BANDWIDTH=1328000,AVERAGE-BANDWIDTH=928000,CODECS=\"avc1.64001e,mp4a.40.2\",RESOLUTION=640x360,NAME=\"360p\"\n\
360p/index.m3u8\n";

/// The same clip encoded in pieces: the sound is its own rendition, every variant's audio group.
fn master_in_pieces(avh: &str) -> String {
    format!(
        "#EXTM3U\n#EXT-X-VERSION:4\n#EXT-X-INDEPENDENT-SEGMENTS\n\
#EXT-X-MEDIA:TYPE=AUDIO,URI=\"audio/index.m3u8{avh}\",GROUP-ID=\"aac\",NAME=\"audio\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\"\n\
#EXT-X-STREAM-INF:BANDWIDTH=728000,AVERAGE-BANDWIDTH=528000,CODECS=\"avc1.64001e,mp4a.40.2\",RESOLUTION=426x240,NAME=\"240p\",AUDIO=\"aac\"\n\
240p/index.m3u8{avh}\n\
#EXT-X-STREAM-INF:BANDWIDTH=1328000,AVERAGE-BANDWIDTH=928000,CODECS=\"avc1.64001e,mp4a.40.2\",RESOLUTION=640x360,NAME=\"360p\",AUDIO=\"aac\"\n\
360p/index.m3u8{avh}\n"
    )
}

const MASTER_SOUND_ALONE: &str = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n\
#EXT-X-STREAM-INF:BANDWIDTH=140800,AVERAGE-BANDWIDTH=128000,CODECS=\"mp4a.40.2\",NAME=\"audio\"\n\
audio/index.m3u8\n";

async fn upload_and_wait(t: &TestServer, title: &str, public: bool, bytes: Vec<u8>) -> (String, Value) {
    let r = t.post_json("/videos", serde_json::json!({ "title": title, "public": public })).await;
    let id = r.json::<Value>().await.unwrap()["videoId"].as_str().unwrap().to_string();
    assert_eq!(t.upload(&id, None, bytes).await.status(), 201);
    t.wait_status(&id, 180, |s| s["encoding"]["playable"] == true).await;
    let video: Value = t.get(&format!("/videos/{id}")).await.json().await.unwrap();
    (id, video)
}

/// No master playlist is stored: it exists only as the database says (a local store shows it).
fn assert_no_stored_master(t: &TestServer, id: &str) {
    if t.backend.s3_url.is_none() {
        let stored = walk(t.dir.path()).into_iter().filter(|p| p.contains(id) && p.ends_with("manifest.m3u8"));
        assert_eq!(stored.collect::<Vec<_>>(), Vec::<String>::new(), "{}", t.backend.label);
    }
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p.to_string_lossy().into_owned()) }
    }
    out
}

backend_test!(the_master_is_built_from_the_stored_renditions, multi_thread = 2);
async fn the_master_is_built_from_the_stored_renditions(b: Backend) {
    let clip = std::fs::read(av_clip("deliv-6s.mp4", "size=640x360:rate=25", "frequency=440", 6, &[])).unwrap();
    let sound = std::fs::read(lavfi_video(
        "deliv-audio.m4a",
        &["-f", "lavfi", "-i", "sine", "-t", "3", "-c:a", "aac", "-f", "mp4"],
    ))
    .unwrap();
    // Never split (6 s would otherwise be a head and a piece): one piece, sound muxed in.
    let t = TestServer::start_with(&b, |c| c.encoding.piece_secs = 0).await;
    let (id, video) = upload_and_wait(&t, "whole", true, clip.clone()).await;
    let hls = video["assets"]["hls"].as_str().unwrap();
    let r = t.http.get(hls).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/vnd.apple.mpegurl");
    assert_eq!(r.text().await.unwrap(), MASTER_640_WITH_SOUND, "{}", b.label);
    assert_no_stored_master(&t, &id);

    // Sound alone: one audio variant.
    let (_, video) = upload_and_wait(&t, "sound", true, sound.clone()).await;
    let master = t.http.get(video["assets"]["hls"].as_str().unwrap()).send().await.unwrap().text().await.unwrap();
    assert_eq!(master, MASTER_SOUND_ALONE, "{}", b.label);
}

backend_test!(the_master_of_a_video_in_pieces_names_its_audio_group, multi_thread = 2);
/// A video in pieces lists its sound as an audio group; in a private session every URI of the
/// master carries the session, the audio group's too.
async fn the_master_of_a_video_in_pieces_names_its_audio_group(b: Backend) {
    let clip = std::fs::read(av_clip("deliv-9s.mp4", "size=640x360:rate=25", "frequency=440", 9, &[])).unwrap();
    let t = TestServer::start_with(&b, |c| c.encoding.piece_secs = 4).await;
    let (_, video) = upload_and_wait(&t, "pieces", true, clip.clone()).await;
    let master = t.http.get(video["assets"]["hls"].as_str().unwrap()).send().await.unwrap().text().await.unwrap();
    assert_eq!(master, master_in_pieces(""), "{}", b.label);

    let (id, video) = upload_and_wait(&t, "private pieces", false, clip.clone()).await;
    let hls = video["assets"]["hls"].as_str().unwrap();
    let r = t.http.get(hls).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", b.label);
    let master = r.text().await.unwrap();
    let avh = master.split("?avh=").nth(1).and_then(|s| s.split(['"', '\n']).next()).unwrap().to_string();
    assert_eq!(master, master_in_pieces(&format!("?avh={avh}")), "{}", b.label);
    // The audio group's URI, as a cookie-less player follows it.
    let base = hls.trim_end_matches("manifest.m3u8");
    let r = t.http.get(format!("{base}audio/index.m3u8?avh={avh}")).send().await.unwrap();
    assert_eq!(r.status(), 200, "{} {id}", b.label);
}
backend_test!(the_player_page_is_configured_with_json, multi_thread = 2);
async fn the_player_page_is_configured_with_json(b: Backend) {
    let clip = std::fs::read(av_clip("deliv-6s.mp4", "size=640x360:rate=25", "frequency=440", 6, &[])).unwrap();
    let t = TestServer::start(&b).await;
    let (id, video) = upload_and_wait(&t, "</script><b>title</b> & more", true, clip.clone()).await;
    let player = video["assets"]["player"].as_str().unwrap();
    let r = t.http.get(format!("{player}?t=1m2.5s&hideTitle=true")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let page = r.text().await.unwrap();
    let data = page.split("<script type=\"application/json\" id=\"vidi-config\">").nth(1).unwrap();
    let data = data.split("</script>").next().unwrap();
    assert!(!data.contains('<'), "the title cannot end the data script: {data}");
    let config: Value = serde_json::from_str(data).unwrap();
    assert_eq!(config["title"], "</script><b>title</b> & more", "{}", b.label);
    assert_eq!(config["hls"], format!("/vod/{id}/hls/manifest.m3u8"));
    assert_eq!(config["poster"], format!("/vod/{id}/thumbnail.jpg"));
    assert_eq!(config["startAt"], 62.5);
    assert_eq!(config["hideTitle"], true);
    assert_eq!(config["live"], false);
    // Everything the page loads is served by this binary.
    for (path, ct) in [
        ("/assets/hls.min.js", "text/javascript"),
        ("/assets/player/player.js", "text/javascript"),
        ("/assets/player/player.css", "text/css"),
        ("/assets/player/media-chrome-4.19.4.min.js", "text/javascript"),
    ] {
        assert!(page.contains(path), "{path}");
        let r = t.http.get(format!("{}{path}", t.url)).send().await.unwrap();
        assert_eq!((r.status().as_u16(), r.headers()["content-type"].to_str().unwrap()), (200, ct), "{path}");
    }
    assert_eq!(t.http.get(format!("{}/assets/player/nothing.js", t.url)).send().await.unwrap().status(), 404);
}
