//! How much media one core repackages: a synthetic 720p publisher at 3 Mb/s (30 fps, a
//! keyframe every 2 s, AAC 48 kHz) through the segmenter and the playlist (rendered at every
//! change, as a broadcast publishes it), for `SECONDS` of media (default 600).
//!
//! `cargo run -p vidi-live --example segment_rate [SECONDS]` (dev profile: a lower bound).

use std::time::{Duration, Instant};

use bytes::Bytes;
use vidi_live::fmp4::{Segmenter, SegmenterConfig};
use vidi_live::media::{AudioConfig, MediaEvent, VideoConfig};
use vidi_live::playlist::LivePlaylist;

fn main() {
    let seconds: i64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(600);
    // x264's 1280×720 High@3.1 SPS and a PPS, as an avcC record.
    let sps: &[u8] = &[
        0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x80, 0x50, 0x05, 0xbb, 0x01, 0x6a, 0x02, 0x02, 0x02, 0x80, 0x00, 0x00,
        0x03, 0x00, 0x80, 0x00, 0x00, 0x1e, 0x07, 0x8c, 0x18, 0xcd,
    ];
    let mut avcc = vec![1, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0, sps.len() as u8];
    avcc.extend(sps);
    avcc.extend([1, 0, 5, 0x68, 0xe9, 0x7b, 0x2c, 0x8b]);
    let video = VideoConfig::from_avcc(Bytes::from(avcc)).expect("avcC");
    let audio = AudioConfig::from_asc(Bytes::from_static(&[0x11, 0x90])).expect("ASC");

    // 3 Mb/s at 30 fps: 12.5 kB a frame on average, keyframes 5× the others.
    let (key, delta) = (Bytes::from(vec![0x65; 50_000]), Bytes::from(vec![0x41; 11_000]));
    let aac = Bytes::from(vec![0x21; 384]);
    let mut events = vec![MediaEvent::VideoConfig(video), MediaEvent::AudioConfig(audio)];
    let (mut v, mut a) = (0i64, 0i64);
    while v * 1000 / 30 < seconds * 1000 {
        let (vt, at) = (v * 1000 / 30, a * 1024 * 1000 / 48_000);
        if at <= vt {
            events.push(MediaEvent::Audio { dts: at, data: aac.clone() });
            a += 1;
        } else {
            let keyframe = v % 60 == 0;
            let data = if keyframe { key.clone() } else { delta.clone() };
            events.push(MediaEvent::Video { dts: vt, cts: 0, keyframe, data });
            v += 1;
        }
    }
    let frames = events.len() - 2;

    let config = SegmenterConfig {
        part_target: Duration::from_millis(333),
        segment_target: Duration::from_secs(2),
        first_msn: 0,
    };
    let started = Instant::now();
    let mut segmenter = Segmenter::new(config);
    let mut playlist = LivePlaylist::new(config.part_target, config.segment_target, 6);
    let (mut parts, mut bytes) = (0usize, 0usize);
    for event in events {
        for output in segmenter.push(event) {
            if let vidi_live::fmp4::Output::Part { bytes: b, .. } = &output {
                parts += 1;
                bytes += b.len();
            }
            if playlist.apply(&output) {
                std::hint::black_box(playlist.render());
            }
        }
    }
    let took = started.elapsed();
    println!(
        "{seconds} s of media, {frames} frames, {parts} parts, {} MB in {took:.2?}: {:.0}× real time on one core, {:.1} µs a frame",
        bytes / 1_000_000,
        seconds as f64 / took.as_secs_f64(),
        took.as_secs_f64() * 1e6 / frames as f64,
    );
}
