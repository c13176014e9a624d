//! Synthetic publishers for the unit tests: the events a paced encoder would send.

use bytes::Bytes;

use crate::media::{AudioConfig, MediaEvent, VideoConfig};

/// x264's 1280×720 High@3.1 SPS and a PPS, as an avcC record.
pub fn avcc() -> Bytes {
    let sps: &[u8] = &[
        0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x80, 0x50, 0x05, 0xbb, 0x01, 0x6a, 0x02, 0x02, 0x02, 0x80, 0x00, 0x00,
        0x03, 0x00, 0x80, 0x00, 0x00, 0x1e, 0x07, 0x8c, 0x18, 0xcd,
    ];
    let pps: &[u8] = &[0x68, 0xe9, 0x7b, 0x2c, 0x8b];
    let mut v = vec![1, 0x64, 0x00, 0x1f, 0xff, 0xe1];
    v.extend((sps.len() as u16).to_be_bytes());
    v.extend(sps);
    v.push(1);
    v.extend((pps.len() as u16).to_be_bytes());
    v.extend(pps);
    Bytes::from(v)
}

pub fn video_config() -> VideoConfig {
    VideoConfig::from_avcc(avcc()).expect("a valid record")
}

pub fn audio_config(rate: u32) -> AudioConfig {
    let index = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000]
        .iter()
        .position(|r| *r == rate)
        .expect("a standard rate") as u8;
    let asc = [(2 << 3) | (index >> 1), ((index & 1) << 7) | (2 << 3)];
    AudioConfig::from_asc(Bytes::copy_from_slice(&asc)).expect("a valid config")
}

/// What to synthesize.
#[derive(Clone, Copy, Debug)]
pub struct Stream {
    pub fps: f64,
    pub gop: u32,
    pub video: bool,
    /// Audio sample rate; 0 for none.
    pub audio_rate: u32,
    pub millis: i64,
    /// Added to every timestamp (a publisher whose clock does not start at 0).
    pub start: i64,
    /// B-frames: presentation offsets of 0, 2, 1 frame durations in turn.
    pub bframes: bool,
}

/// The configurations, then frames interleaved by decode time (as FLV carries them), with
/// millisecond timestamps rounded the way an RTMP encoder rounds them.
pub fn events(s: Stream) -> Vec<MediaEvent> {
    let mut out = Vec::new();
    if s.video {
        out.push(MediaEvent::VideoConfig(video_config()));
    }
    if s.audio_rate > 0 {
        out.push(MediaEvent::AudioConfig(audio_config(s.audio_rate)));
    }
    let mut frames: Vec<(i64, u8, MediaEvent)> = Vec::new();
    if s.video {
        let frame_ms = 1000.0 / s.fps;
        let n = (s.millis as f64 / frame_ms) as u32;
        for i in 0..n {
            let dts = (i as f64 * frame_ms).round() as i64 + s.start;
            let keyframe = i % s.gop == 0;
            let cts = if s.bframes { [0, 2, 1][i as usize % 3] * frame_ms.round() as i32 } else { 0 };
            let mut data = vec![0, 0, 0, 12, if keyframe { 0x65 } else { 0x41 }];
            data.extend(i.to_be_bytes());
            data.extend([0xaa; 7]);
            frames.push((dts, 0, MediaEvent::Video { dts, cts, keyframe, data: Bytes::from(data) }));
        }
    }
    if s.audio_rate > 0 {
        let n = s.millis * s.audio_rate as i64 / 1024 / 1000;
        for i in 0..n {
            let dts = (i * 1024 * 1000) / s.audio_rate as i64 + s.start;
            let data = Bytes::from(vec![0x21, (i % 251) as u8, 0x5a, 0x5a]);
            frames.push((dts, 1, MediaEvent::Audio { dts, data }));
        }
    }
    frames.sort_by_key(|(dts, kind, _)| (*dts, *kind));
    out.extend(frames.into_iter().map(|(.., e)| e));
    out
}
