//! The optional live ladder (`VIDI_LIVE_LADDER`, issue 21 part 7): a publisher's broadcast gets
//! transcoded lower renditions beside its own, each with low-latency parts and segments that
//! decode at the rung's height, numbered like the source's segments over the same media time.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{Backend, TestServer, backend_test};
use crate::live::{create_live, get_bytes, ingest_url, publisher};

/// `(codec, width, height)` of the video ffprobe finds in `bytes` (an init segment and media),
/// and how many video frames it decodes.
fn probe_video(bytes: &[u8]) -> (String, u32, u32, u32) {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), bytes).unwrap();
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v", "-count_frames"])
        .args(["-show_entries", "stream=codec_name,width,height,nb_read_frames", "-of", "csv=p=0"])
        .arg(f.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "ffprobe: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let f: Vec<&str> = text.trim().split(',').collect();
    assert_eq!(f.len(), 4, "{text}");
    (f[0].to_string(), f[1].parse().unwrap(), f[2].parse().unwrap(), f[3].parse().unwrap())
}

/// The complete segments of a media playlist: msn → duration (s).
fn segments(playlist: &str) -> HashMap<u64, f64> {
    let mut msn: u64 = playlist
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("a media sequence");
    let mut out = HashMap::new();
    let mut duration = None;
    for line in playlist.lines() {
        if let Some(d) = line.strip_prefix("#EXTINF:") {
            duration = d.trim_end_matches(',').parse::<f64>().ok();
        } else if !line.starts_with('#') && !line.is_empty() {
            out.insert(msn, duration.take().expect("EXTINF before its URI"));
            msn += 1;
        }
    }
    out
}

fn uri_of(line: &str) -> String {
    line.split("URI=\"").nth(1).and_then(|s| s.split('"').next()).expect("a URI").to_string()
}

backend_test!(a_ladder_adds_lower_renditions_aligned_with_the_source, multi_thread = 2);
async fn a_ladder_adds_lower_renditions_aligned_with_the_source(b: Backend) {
    // 480 is above the 240-line source: skipped.
    let t = TestServer::start_with(&b, |c| c.live.ladder = vec![480, 180, 120]).await;
    let live = create_live(&t, json!({ "name": "ladder" })).await;
    let (id, key) = (live["liveStreamId"].as_str().unwrap(), live["streamKey"].as_str().unwrap());
    let mut ffmpeg = publisher(&ingest_url(&t, key), 25);

    // The multivariant playlist lists the source and both rungs, each with its resolution.
    let deadline = Instant::now() + Duration::from_secs(40);
    let master = loop {
        let (s, body) = get_bytes(&t, &format!("/live/{id}.m3u8")).await;
        let text = String::from_utf8(body).unwrap();
        if s == 200 && text.matches("#EXT-X-STREAM-INF").count() == 3 {
            break text;
        }
        assert!(Instant::now() < deadline, "the rungs never appeared: {s} {text}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(!master.contains("480p"), "a rung above the source is skipped: {master}");
    for (uri, resolution) in [("index.m3u8", "320x240"), ("180p.m3u8", "240x180"), ("120p.m3u8", "160x120")] {
        let inf = master.lines().take_while(|l| !l.ends_with(uri)).last().unwrap_or_default();
        assert!(inf.contains(&format!("RESOLUTION={resolution}")) && inf.contains("BANDWIDTH="), "{uri}: {master}");
        assert!(master.contains(&format!("{id}/{uri}")), "{master}");
    }

    // Each rung: parts and segments that decode at its height, under the source's numbers.
    let source_of = |text: &str| segments(text);
    for (rung, width, height) in [("180p", 240, 180), ("120p", 160, 120)] {
        let deadline = Instant::now() + Duration::from_secs(30);
        let (playlist, source) = loop {
            let (s, body) = get_bytes(&t, &format!("/live/{id}/{rung}.m3u8")).await;
            let text = String::from_utf8(body).unwrap();
            let source = String::from_utf8(get_bytes(&t, &format!("/live/{id}/index.m3u8")).await.1).unwrap();
            if s == 200 && segments(&text).len() >= 2 {
                break (text, source);
            }
            assert!(Instant::now() < deadline, "{rung} never had two segments: {s} {text}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        assert!(playlist.contains("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES"), "{playlist}");
        let init = uri_of(playlist.lines().find(|l| l.starts_with("#EXT-X-MAP:")).expect("a map"));
        let part = uri_of(playlist.lines().find(|l| l.starts_with("#EXT-X-PART:")).expect("parts"));
        let segment = playlist.lines().find(|l| !l.starts_with('#') && !l.is_empty()).unwrap().to_string();
        for uri in [&init, &part, &segment] {
            assert!(uri.starts_with(&format!("{rung}-")), "{uri} in {playlist}");
        }
        let (s, init_bytes) = get_bytes(&t, &format!("/live/{id}/{init}")).await;
        assert_eq!(s, 200);
        for media in [&segment, &part] {
            let (s, bytes) = get_bytes(&t, &format!("/live/{id}/{media}")).await;
            assert_eq!(s, 200, "{media}");
            let (codec, w, h, frames) = probe_video(&[init_bytes.as_slice(), &bytes].concat());
            assert_eq!((codec.as_str(), w, h), ("h264", width, height), "{media}");
            assert!(frames > 0, "{media} decodes no frame");
        }
        // Segment numbers line up: a segment both list covers the same media time.
        let (rung_segments, source_segments) = (segments(&playlist), source_of(&source));
        let common: Vec<u64> = rung_segments.keys().filter(|m| source_segments.contains_key(m)).copied().collect();
        assert!(!common.is_empty(), "no segment number in common:\n{playlist}\n{source}");
        for m in common {
            let (r, s) = (rung_segments[&m], source_segments[&m]);
            assert!((r - s).abs() <= 0.1, "segment {m}: {r} s in {rung}, {s} s in the source");
        }
    }
    let _ = ffmpeg.kill().await;
}
