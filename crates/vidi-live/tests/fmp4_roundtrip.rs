//! The segmenter's output read back by ffprobe equals its FLV input: same packets per stream,
//! same decode and presentation times (B-frames on, so composition offsets matter), same sizes;
//! and each part, after the init segment, is playable alone.
//!
//! Needs ffmpeg and ffprobe (installed in CI); without them the test says so and passes.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use vidi_live::fmp4::{Output, Segmenter, SegmenterConfig};
use vidi_live::media::{AudioConfig, MediaEvent, VideoConfig};
use vidi_live::playlist::{LivePlaylist, init_name, part_name, segment_name};

/// Reads an FLV file's tags into the events an RTMP publisher would deliver (test-only: the
/// RTMP side has its own reader).
fn flv_events(flv: &[u8]) -> Vec<MediaEvent> {
    assert_eq!(&flv[..3], b"FLV");
    let mut at = u32::from_be_bytes(flv[5..9].try_into().unwrap()) as usize + 4;
    let mut events = Vec::new();
    while at + 11 <= flv.len() {
        let kind = flv[at];
        let size = u32::from_be_bytes([0, flv[at + 1], flv[at + 2], flv[at + 3]]) as usize;
        let ts = u32::from_be_bytes([flv[at + 7], flv[at + 4], flv[at + 5], flv[at + 6]]) as i64;
        let body = &flv[at + 11..at + 11 + size];
        at += 11 + size + 4;
        match kind {
            9 if body.len() > 5 && body[0] & 0x0f == 7 => {
                let cts = i32::from_be_bytes([body[2], body[3], body[4], 0]) >> 8;
                let data = Bytes::copy_from_slice(&body[5..]);
                match body[1] {
                    0 => events.push(MediaEvent::VideoConfig(VideoConfig::from_avcc(data).expect("avcC"))),
                    1 => events.push(MediaEvent::Video { dts: ts, cts, keyframe: body[0] >> 4 == 1, data }),
                    _ => {}
                }
            }
            8 if body.len() > 2 && body[0] >> 4 == 10 => {
                let data = Bytes::copy_from_slice(&body[2..]);
                match body[1] {
                    0 => events.push(MediaEvent::AudioConfig(AudioConfig::from_asc(data).expect("ASC"))),
                    _ => events.push(MediaEvent::Audio { dts: ts, data }),
                }
            }
            _ => {}
        }
    }
    events
}

/// (codec_type, pts ms, dts ms, size) of each packet, per ffprobe.
fn packets(file: &Path) -> Vec<(String, f64, f64, u64)> {
    probe(file, true)
}

/// `quiet`: ffprobe must print nothing on stderr. A part that does not start with a keyframe
/// demuxes but its first frames cannot decode alone, and ffprobe says so while probing.
fn probe(file: &Path, quiet: bool) -> Vec<(String, f64, f64, u64)> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "packet=codec_type,pts_time,dts_time,size", "-of", "json"])
        .arg(file)
        .output()
        .expect("ffprobe runs");
    assert!(
        out.status.success() && (out.stderr.is_empty() || !quiet),
        "ffprobe {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ms = |v: &serde_json::Value| v.as_str().and_then(|s| s.parse::<f64>().ok()).map_or(f64::NAN, |s| s * 1000.0);
    json["packets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let size = p["size"].as_str().unwrap().parse().unwrap();
            (p["codec_type"].as_str().unwrap().to_string(), ms(&p["pts_time"]), ms(&p["dts_time"]), size)
        })
        .collect()
}

fn have_ffmpeg() -> bool {
    ["ffmpeg", "ffprobe"]
        .iter()
        .all(|tool| Command::new(tool).arg("-version").output().is_ok_and(|o| o.status.success()))
}

#[test]
fn fmp4_samples_and_timestamps_equal_the_flv_input() {
    if !have_ffmpeg() {
        eprintln!("SKIPPED fmp4_samples_and_timestamps_equal_the_flv_input: ffmpeg/ffprobe not on PATH");
        return;
    }
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let flv = dir.path().join("in.flv");
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-f", "lavfi", "-i", "sine"])
        .args([
            "-t",
            "3",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "30",
            "-bf",
            "2",
            "-c:a",
            "aac",
            "-f",
            "flv",
        ])
        .arg(&flv)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success());

    let events = flv_events(&std::fs::read(&flv).unwrap());
    let Some(MediaEvent::VideoConfig(video)) = events.iter().find(|e| matches!(e, MediaEvent::VideoConfig(_))) else {
        panic!("no AVC sequence header")
    };
    assert_eq!((video.width, video.height), (320, 240));
    let a = &video.avcc;
    assert_eq!(video.codec, format!("avc1.{:02x}{:02x}{:02x}", a[1], a[2], a[3]));
    assert!(events.iter().any(|e| matches!(e, MediaEvent::Video { cts, .. } if *cts > 0)), "B-frames expected");

    let config = SegmenterConfig {
        part_target: Duration::from_millis(250),
        segment_target: Duration::from_secs(1),
        first_msn: 0,
    };
    let mut segmenter = Segmenter::new(config);
    let mut outputs: Vec<Output> = events.iter().cloned().flat_map(|e| segmenter.push(e)).collect();
    outputs.extend(segmenter.flush());

    let mut whole = Vec::new();
    let mut init = Bytes::new();
    let mut parts = Vec::new();
    for output in &outputs {
        match output {
            Output::Init { bytes, .. } => {
                init = bytes.clone();
                whole.extend_from_slice(bytes);
            }
            Output::Segment { bytes, .. } => whole.extend_from_slice(bytes),
            Output::Part { bytes, independent, .. } => parts.push((bytes.clone(), *independent)),
        }
    }
    let mp4 = dir.path().join("out.mp4");
    std::fs::write(&mp4, &whole).unwrap();

    let (want, got) = (packets(&flv), packets(&mp4));
    for kind in ["video", "audio"] {
        let w: Vec<_> = want.iter().filter(|p| p.0 == kind).collect();
        let g: Vec<_> = got.iter().filter(|p| p.0 == kind).collect();
        assert_eq!(w.len(), g.len(), "{kind} packet count");
        assert!(!w.is_empty());
        // ffprobe lists the FLV in file order and the fMP4 per fragment: compare in decode order.
        let mut w = w.clone();
        w.sort_by(|a, b| a.2.total_cmp(&b.2));
        let mut g = g.clone();
        g.sort_by(|a, b| a.2.total_cmp(&b.2));
        for (i, (a, b)) in w.iter().zip(&g).enumerate() {
            assert!((a.1 - b.1).abs() <= 1.0 && (a.2 - b.2).abs() <= 1.0, "{kind} packet {i}: flv {a:?}, fmp4 {b:?}");
            assert_eq!(a.3, b.3, "{kind} packet {i} size");
        }
    }

    let g_last = |kind: &str| got.iter().filter(|p| p.0 == kind).map(|p| p.2).fold(f64::MIN, f64::max);

    // Each part alone after the init: a low-latency player may start at any independent part
    // (it must decode cleanly), and every part must demux.
    let mut total = 0;
    for (i, (part, independent)) in parts.iter().enumerate() {
        let file = dir.path().join(format!("part{i}.mp4"));
        std::fs::write(&file, [init.as_ref(), part.as_ref()].concat()).unwrap();
        let n = probe(&file, *independent).len();
        assert!(n > 0, "part {i} holds no packet");
        total += n;
    }
    assert_eq!(total, got.len(), "the parts hold the segments' packets");

    // The same publisher again after a reconnect (its clock restarts at 0), then both as a
    // finished broadcast's directory: ffmpeg's HLS reader (a legacy player: segments only) gets
    // every packet through the hand-written playlist, across the discontinuity and the new
    // init, on one increasing timeline.
    segmenter.discontinuity();
    let mut again: Vec<Output> = events.into_iter().flat_map(|e| segmenter.push(e)).collect();
    again.extend(segmenter.flush());
    assert!(matches!(again[0], Output::Init { number: 1, .. }));
    let hls = dir.path().join("hls");
    std::fs::create_dir(&hls).unwrap();
    let mut playlist = LivePlaylist::new(config.part_target, config.segment_target, 100);
    for output in outputs.iter().chain(&again) {
        let (name, bytes) = match output {
            Output::Init { number, bytes } => (init_name(*number), bytes),
            Output::Part { msn, index, bytes, .. } => (part_name(*msn, *index), bytes),
            Output::Segment { msn, bytes, .. } => (segment_name(*msn), bytes),
        };
        std::fs::write(hls.join(name), bytes).unwrap();
        playlist.apply(output);
    }
    playlist.end();
    std::fs::write(hls.join("index.m3u8"), playlist.render()).unwrap();
    let text = playlist.render();
    assert!(text.contains("#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init1.mp4\"\n"), "{text}");
    let listed = probe(&hls.join("index.m3u8"), true);
    assert_eq!(listed.len(), 2 * got.len(), "packets through the playlist");
    let video: Vec<f64> = listed.iter().filter(|p| p.0 == "video").map(|p| p.2).collect();
    assert!(video.windows(2).all(|w| w[1] > w[0]), "video decode times increase across the reconnect");
    // The timeline resumes after the later track's end (the AAC runs a few frames past the
    // video).
    let first_end = (g_last("video") + 1000.0 / 30.0).max(g_last("audio") + 1_024_000.0 / 44_100.0);
    let n = video.len() / 2;
    assert!(
        (video[n] - first_end).abs() <= 2.0,
        "the second publisher starts at {} ms, the first ended at {first_end}",
        video[n]
    );
    eprintln!("round trip of {} packets in {} parts: {:?}", got.len(), parts.len(), started.elapsed());
}
