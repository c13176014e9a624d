//! Live streaming end to end (issue 21): ffmpeg publishes a paced lavfi source over RTMP to the
//! real server, and the test reads what a player, an API client and a webhook receiver see: the
//! low-latency playlist and its files (probed with ffprobe), `broadcasting` flipping both ways,
//! the one-publisher rule, a reconnect within the grace continuing one broadcast, the recording
//! found by `liveStreamId`, and the three live events in order.
//!
//! Bounds here are generous (the suite runs many tests at once on two cores); the tight figures
//! (time to list a part, time to flip) are measured by `bench/live`.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::common::receiver::Receiver;
use crate::common::{self, Backend, TestServer, backend_test};

/// Publishes `secs` seconds of a paced 320×240 test picture and tone to `url` (a keyframe every
/// second, no B-frames, as OBS's defaults send).
pub fn publisher(url: &str, secs: u32) -> Child {
    let secs = secs.to_string();
    Command::new("ffmpeg")
        .args(["-v", "error", "-re", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-f", "lavfi"])
        .args(["-i", "sine=frequency=440:sample_rate=44100", "-t", &secs, "-c:v", "libx264", "-preset"])
        .args(["ultrafast", "-tune", "zerolatency", "-g", "30", "-pix_fmt", "yuv420p", "-c:a", "aac"])
        .args(["-f", "flv", url])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("ffmpeg runs")
}

pub async fn create_live(t: &TestServer, body: Value) -> Value {
    let r = t.post_json("/live-streams", body).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    r.json().await.unwrap()
}

pub fn ingest_url(t: &TestServer, key: &str) -> String {
    format!("rtmp://{}/s/{key}", t.server.rtmp_addr.expect("an RTMP listener"))
}

/// Waits until the live stream's `broadcasting` is `on`; returns how long it took.
pub async fn wait_broadcasting(t: &TestServer, id: &str, on: bool, secs: u64) -> Duration {
    let started = Instant::now();
    loop {
        let l: Value = t.get(&format!("/live-streams/{id}")).await.json().await.unwrap();
        if l["broadcasting"] == on {
            return started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(secs), "broadcasting never became {on}: {l}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn get_bytes(t: &TestServer, path: &str) -> (u16, Vec<u8>) {
    let r = t.http.get(format!("{}{path}", t.url)).send().await.unwrap();
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

/// The codecs ffprobe finds in `bytes` (an init segment followed by media).
fn probe_codecs(bytes: &[u8]) -> Vec<String> {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), bytes).unwrap();
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0"])
        .arg(f.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "ffprobe: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect()
}

/// The last `(msn, part)` a media playlist lists.
fn last_part(playlist: &str) -> (u64, u32) {
    let seq: u64 = playlist
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("a media sequence");
    let parts: Vec<(u64, u32)> = playlist
        .lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-PART:"))
        .filter_map(|l| l.split("URI=\"").nth(1)?.split('"').next().map(str::to_string))
        .filter_map(|u| {
            let stem = u.split('?').next()?.strip_suffix(".m4s")?.to_string();
            let (m, p) = stem.split_once('.')?;
            Some((m.parse().ok()?, p.parse().ok()?))
        })
        .collect();
    *parts.iter().max().unwrap_or(&(seq, 0))
}

backend_test!(a_broadcast_plays_in_low_latency_flips_and_becomes_one_recording, multi_thread = 2);
async fn a_broadcast_plays_in_low_latency_flips_and_becomes_one_recording(b: Backend) {
    let rx = Receiver::ok().await;
    let t = TestServer::start_with(&b, |c| {
        c.outbound.allow_private = true;
        c.live.reconnect_grace = Duration::from_secs(4);
    })
    .await;
    let events = ["live-stream.broadcast.started", "live-stream.broadcast.ended", "video.source.recorded"];
    let r = t.post_json("/webhooks", json!({ "events": events, "url": rx.url })).await;
    assert_eq!(r.status(), 201);
    // Two restream destinations: a listening RTMP receiver, and a port where nothing listens.
    let out = t.dir.path().join("restreamed.flv");
    let port = free_port();
    let mut receiver = Command::new("ffmpeg")
        .args(["-v", "error", "-listen", "1", "-i", &format!("rtmp://127.0.0.1:{port}/app/dest-key")])
        .args(["-c", "copy", "-f", "flv"])
        .arg(&out)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let restreams = json!([
        { "name": "up", "serverUrl": format!("rtmp://127.0.0.1:{port}/app"), "streamKey": "dest-key" },
        { "name": "down", "serverUrl": format!("rtmp://127.0.0.1:{}/app", free_port()), "streamKey": "nobody" },
    ]);
    let live = create_live(&t, json!({ "name": "launch", "record": true, "restreams": restreams })).await;
    let (id, key) = (live["liveStreamId"].as_str().unwrap(), live["streamKey"].as_str().unwrap());

    // A wrong key is refused at `publish`: ffmpeg gives up at once, and nothing broadcasts.
    let mut wrong = publisher(&ingest_url(&t, "not-a-key"), 2);
    let st = tokio::time::timeout(Duration::from_secs(15), wrong.wait()).await.expect("refused promptly").unwrap();
    assert!(!st.success());

    let mut first = publisher(&ingest_url(&t, key), 6);
    wait_broadcasting(&t, id, true, 15).await;

    // A second publisher is refused while the first sends media.
    let mut second = publisher(&ingest_url(&t, key), 2);
    let st = tokio::time::timeout(Duration::from_secs(15), second.wait()).await.expect("refused promptly").unwrap();
    assert!(!st.success(), "a second live publisher was admitted");

    // The multivariant playlist names the media playlist, which is low-latency HLS.
    let (status, master) = get_bytes(&t, &format!("/live/{id}.m3u8")).await;
    let master = String::from_utf8(master).unwrap();
    assert_eq!(status, 200, "{master}");
    assert!(master.contains(&format!("{id}/index.m3u8")) && master.contains("avc1."), "{master}");
    let media_path = format!("/live/{id}/index.m3u8");
    let deadline = Instant::now() + Duration::from_secs(20);
    let playlist = loop {
        let (s, p) = get_bytes(&t, &media_path).await;
        let p = String::from_utf8(p).unwrap();
        if s == 200 && p.contains("#EXTINF") {
            break p;
        }
        assert!(Instant::now() < deadline, "no whole segment listed: {s} {p}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for tag in [
        "#EXT-X-PART-INF:PART-TARGET=",
        "CAN-BLOCK-RELOAD=YES",
        "PART-HOLD-BACK=",
        "#EXT-X-PART:",
        "#EXT-X-PRELOAD-HINT:",
        "#EXT-X-MAP:",
    ] {
        assert!(playlist.contains(tag), "{tag} missing:\n{playlist}");
    }
    // Its files decode: the init with a whole segment, and the init with one part.
    let segment = playlist.lines().find(|l| l.ends_with(".m4s") && !l.starts_with('#')).unwrap();
    let (_, init) = get_bytes(&t, &format!("/live/{id}/init0.mp4")).await;
    let (s, seg) = get_bytes(&t, &format!("/live/{id}/{segment}")).await;
    assert_eq!(s, 200);
    let mut codecs = probe_codecs(&[init.as_slice(), seg.as_slice()].concat());
    codecs.sort();
    assert_eq!(codecs, ["aac", "h264"]);
    let (msn, part) = last_part(&playlist);
    let (s, p) = get_bytes(&t, &format!("/live/{id}/{msn}.{part}.m4s")).await;
    assert_eq!(s, 200);
    assert!(!probe_codecs(&[init.as_slice(), p.as_slice()].concat()).is_empty());

    // No thumbnail was uploaded: the broadcast's own picture is served, refreshed as it goes.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (s, jpeg) = get_bytes(&t, &format!("/live/{id}/thumbnail.jpg")).await;
        if s == 200 {
            assert!(jpeg.starts_with(&[0xff, 0xd8]), "a JPEG");
            break;
        }
        assert!(Instant::now() < deadline, "no live thumbnail");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A blocking reload for the next part answers once it exists, well within the limit.
    let asked = Instant::now();
    let (s, next) = get_bytes(&t, &format!("{media_path}?_HLS_msn={msn}&_HLS_part={}", part + 1)).await;
    assert_eq!(s, 200);
    assert!(asked.elapsed() < Duration::from_secs(3), "blocked {:?}", asked.elapsed());
    let now = last_part(&String::from_utf8(next).unwrap());
    assert!(now > (msn, part));
    // The draft's 400s (far enough ahead that the stream cannot have caught up meanwhile).
    let (s, _) = get_bytes(&t, &format!("{media_path}?_HLS_msn={}", now.0 + 10)).await;
    assert_eq!(s, 400);
    let (s, _) = get_bytes(&t, &format!("{media_path}?_HLS_part=1")).await;
    assert_eq!(s, 400);

    // What `/metrics` shows of it (the recorder is the process's: at least this test's counts).
    // A reload for the part after the newest waits for it.
    let (_, p) = get_bytes(&t, &media_path).await;
    let (msn, part) = last_part(&String::from_utf8(p).unwrap());
    let (s, _) = get_bytes(&t, &format!("{media_path}?_HLS_msn={msn}&_HLS_part={}", part + 1)).await;
    assert_eq!(s, 200);
    let body = crate::ops::scrape(&t).await;
    let at_least = |name: &str, labels: &[&str], n: f64| {
        let got = crate::ops::sum(&body, name, labels);
        assert!(got >= n, "{name}{labels:?}: {got} < {n}\n{body}");
    };
    at_least("vidi_live_broadcasting", &[], 1.0);
    at_least("vidi_live_parts_total", &[], 1.0);
    at_least("vidi_live_segments_total", &[r#"outcome="stored""#], 1.0);
    at_least("vidi_live_blocking_waits_total", &[r#"outcome="woken""#], 1.0);
    at_least("vidi_rtmp_connections", &[r#"scheme="rtmp""#], 1.0);
    at_least("vidi_rtmp_refused_total", &[r#"reason="unknown_key""#], 1.0);
    at_least("vidi_rtmp_refused_total", &[r#"reason="busy""#], 1.0);
    at_least("vidi_rtmp_connections_closed_total", &[r#"outcome="refused""#], 2.0);
    // Both destinations have a pusher, whatever state each is in by now.
    at_least("vidi_restream_pushers", &[], 2.0);

    // The publisher stops: broadcasting turns false (3 s of silence), and comes back within the
    // grace: the same broadcast, one recording.
    assert!(first.wait().await.unwrap().success());
    wait_broadcasting(&t, id, false, 10).await;
    let mut again = publisher(&ingest_url(&t, key), 3);
    wait_broadcasting(&t, id, true, 15).await;
    // The same playlist goes on, past a discontinuity (once the new publisher's first part is made).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, p) = get_bytes(&t, &media_path).await;
        if String::from_utf8(p).unwrap().contains("#EXT-X-DISCONTINUITY") {
            break;
        }
        assert!(Instant::now() < deadline, "a reconnect is a discontinuity");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(again.wait().await.unwrap().success());
    wait_broadcasting(&t, id, false, 10).await;

    // After the grace, one recording: a video of the live stream, with the 2023 source shape.
    let deadline = Instant::now() + Duration::from_secs(60);
    let video = loop {
        let l: Value = t.get(&format!("/videos?liveStreamId={id}")).await.json().await.unwrap();
        if let Some(v) = l["data"].as_array().and_then(|d| d.first()) {
            assert_eq!(l["data"].as_array().unwrap().len(), 1, "one recording per broadcast: {l}");
            break v.clone();
        }
        assert!(Instant::now() < deadline, "no recording");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(video["source"]["type"], "live");
    assert_eq!(video["source"]["liveStream"]["liveStreamId"], id);
    let vid = video["videoId"].as_str().unwrap();
    let status = t.wait_status(vid, 90, |s| s["encoding"]["playable"] == true).await;
    let duration = status["encoding"]["metadata"]["duration"].as_f64().unwrap_or(0.0);
    assert!((6.0..=12.0).contains(&duration), "both connections recorded: {duration} s\n{status}");

    // The events, in order: two flips each way, then the recording.
    let hits = rx.wait_for(30, "five live events", |h| h.len() >= 5).await;
    let kinds: Vec<String> = hits.iter().map(|h| h.json()["type"].as_str().unwrap().to_string()).collect();
    assert_eq!(kinds, [events[0], events[1], events[0], events[1], events[2]]);
    assert!(hits.iter().all(|h| h.json()["liveStreamId"] == id));
    assert_eq!(hits[4].json()["videoId"], vid);

    // The reachable destination got the broadcast though the other one never answered.
    let st = tokio::time::timeout(Duration::from_secs(20), receiver.wait()).await.expect("the restream ended").unwrap();
    assert!(st.success());
    let mut codecs = probe_codecs(&std::fs::read(&out).unwrap());
    codecs.sort();
    assert_eq!(codecs, ["aac", "h264"]);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

backend_test!(a_silent_publisher_is_replaced_and_a_deleted_stream_is_cut, multi_thread = 2);
async fn a_silent_publisher_is_replaced_and_a_deleted_stream_is_cut(b: Backend) {
    let t = TestServer::start(&b).await;
    let live = create_live(&t, json!({ "name": "obs" })).await;
    let (id, key) = (live["liveStreamId"].as_str().unwrap(), live["streamKey"].as_str().unwrap());
    let mut stalled = publisher(&ingest_url(&t, key), 30);
    wait_broadcasting(&t, id, true, 15).await;
    // Frozen, its connection still open: what OBS leaves behind when the network changes.
    let pid = stalled.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-STOP", &pid]).status().unwrap().success());
    // Within the silence limit a new publisher would be refused; past it, it takes over.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut fresh = publisher(&ingest_url(&t, key), 30);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(fresh.try_wait().unwrap().is_none(), "the new publisher was refused");
    wait_broadcasting(&t, id, true, 15).await;
    let _ = std::process::Command::new("kill").args(["-CONT", &pid]).status();

    // Deleting the live stream cuts its publisher.
    assert_eq!(t.req(reqwest::Method::DELETE, &format!("/live-streams/{id}")).send().await.unwrap().status(), 204);
    let st = tokio::time::timeout(Duration::from_secs(15), fresh.wait()).await.expect("cut promptly").unwrap();
    assert!(!st.success() || st.code() == Some(0));
    let (s, _) = get_bytes(&t, &format!("/live/{id}.m3u8")).await;
    assert_eq!(s, 404);
    let _ = stalled.kill().await;
}

#[tokio::test]
async fn an_idle_live_stream_has_no_playlist_and_bad_directives_are_refused() {
    let t = TestServer::start(&Backend::sqlite_local()).await;
    let live = create_live(&t, json!({ "name": "idle" })).await;
    let id = live["liveStreamId"].as_str().unwrap();
    let body = common::problem(
        t.http.get(format!("{}/live/{id}.m3u8", t.url)).send().await.unwrap(),
        404,
        "live-stream-not-broadcasting",
    )
    .await;
    assert_eq!(body["name"], "liveStreamId");
    for path in [format!("/live/{id}/index.m3u8"), format!("/live/{id}/0.m4s"), format!("/live/{id}/init0.mp4")] {
        assert_eq!(get_bytes(&t, &path).await.0, 404, "{path}");
    }
    // Names that are not a broadcast's files are not even looked up.
    for path in [format!("/live/{id}/..%2F..%2Fvidi.db"), format!("/live/{id}/x.m4s"), "/live/nothing.m3u8".to_string()]
    {
        assert_eq!(get_bytes(&t, &path).await.0, 404, "{path}");
    }
    assert_eq!(get_bytes(&t, &format!("/live/{id}/index.m3u8?_HLS_msn=abc")).await.0, 400);
}

backend_test!(the_orphan_sweep_leaves_the_flag_of_a_stream_broadcasting_elsewhere);
/// A node died holding a broadcast, and meanwhile its live stream started again on another node:
/// the sweep ends the dead node's broadcast but leaves `broadcasting` true (it is the open
/// broadcast's); once no broadcast is open, ending the last one flips it.
async fn the_orphan_sweep_leaves_the_flag_of_a_stream_broadcasting_elsewhere(b: Backend) {
    use vidi_core::id::{BroadcastId, LiveStreamId, VideoId};
    use vidi_core::live::Broadcast;
    let t = TestServer::start_with(&b, |c| {
        c.live.heartbeat = Duration::from_secs(1);
        c.live.stale_after = Duration::from_secs(2);
    })
    .await;
    let repo = t.server.state.repo.clone();
    let ws = t.ws().await;
    let live = create_live(&t, json!({ "name": "moved" })).await;
    let id = LiveStreamId::from_trusted(live["liveStreamId"].as_str().unwrap().to_string());
    let now = vidi_core::time::now_ms();
    let row = |node: &str, heartbeat_at: i64| Broadcast {
        id: BroadcastId::generate(),
        live_stream_id: id.clone(),
        workspace_id: ws.clone(),
        node: node.into(),
        record: false,
        video_id: VideoId::generate(),
        started_at: now - 60_000,
        heartbeat_at,
        ended_at: None,
    };
    // The dead node's, silent for a minute; the live one's, beating (in the future, so this
    // test's own sweeps never find it stale).
    let (dead, open) = (row("dead-node", now - 60_000), row("other-node", now + 3_600_000));
    repo.open_broadcast(&dead).await.unwrap();
    repo.open_broadcast(&open).await.unwrap();
    assert!(repo.set_broadcasting(&ws, &id, true, "test:on", now).await.unwrap());

    // This node's sweep (every second here) ends the dead broadcast, and only that.
    let deadline = Instant::now() + Duration::from_secs(20);
    while repo.get_broadcast(&dead.id).await.unwrap().unwrap().ended_at.is_none() {
        assert!(Instant::now() < deadline, "the sweep never ended the orphaned broadcast");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(repo.get_broadcast(&open.id).await.unwrap().unwrap().ended_at.is_none());
    let l: Value = t.get(&format!("/live-streams/{id}")).await.json().await.unwrap();
    assert_eq!(l["broadcasting"], true, "the stream broadcasting on another node keeps its flag: {l}");

    // The other node dies too: nothing is open any more, so the flag goes.
    let (ended, flipped) = repo.end_orphan(&open, "test:orphaned", vidi_core::time::now_ms()).await.unwrap();
    assert!(flipped && ended.unwrap().ended_at.is_some());
    let l: Value = t.get(&format!("/live-streams/{id}")).await.json().await.unwrap();
    assert_eq!(l["broadcasting"], false, "{l}");

    // The heartbeat's existence check: one query answers for every stream held.
    let other = create_live(&t, json!({ "name": "gone" })).await;
    let gone = LiveStreamId::from_trusted(other["liveStreamId"].as_str().unwrap().to_string());
    assert_eq!(t.req(reqwest::Method::DELETE, &format!("/live-streams/{gone}")).send().await.unwrap().status(), 204);
    let existing = repo.existing_live_streams(&[id.clone(), gone]).await.unwrap();
    assert_eq!(existing, [id]);
}
