//! FLV tag bodies (what RTMP audio and video messages carry) into [`MediaEvent`]s, and RTMP's
//! 32-bit millisecond clock into a monotonic-enough `i64`.
//!
//! Only what OBS and ffmpeg send by default is taken: H.264 in the legacy AVC tag (codec id 7)
//! and AAC (sound format 10). Anything else is refused by name, so a publisher's operator reads
//! in the log what to change ("HEVC", "MP3"), rather than seeing a broadcast that never starts.

use bytes::Bytes;

use crate::media::{AudioConfig, MediaEvent, VideoConfig};

/// What to do with one tag.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Tag {
    Event(MediaEvent),
    /// Carries nothing for the segmenter (an AVC end of sequence, a video info frame, an empty
    /// message).
    Skip,
}

/// Why a publisher's media is refused; the text names the codec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Unsupported {
    #[error("video codec {0} is not supported (send H.264)")]
    VideoCodec(String),
    #[error("audio codec {0} is not supported (send AAC)")]
    AudioCodec(String),
    #[error("malformed {0}")]
    Malformed(String),
}

/// A video message body (FLV `VIDEODATA`, E-RTMP's extended header included).
pub(crate) fn video(data: &Bytes, dts: i64) -> Result<Tag, Unsupported> {
    let Some(&first) = data.first() else { return Ok(Tag::Skip) };
    if first & 0x80 != 0 {
        // Enhanced RTMP: the low nibble is a packet type and a FourCC names the codec.
        let fourcc = data.get(1..5).map(|f| String::from_utf8_lossy(f).into_owned());
        let name = fourcc
            .map_or_else(|| "enhanced RTMP (no FourCC)".into(), |f| format!("enhanced RTMP {}", video_fourcc_name(&f)));
        return Err(Unsupported::VideoCodec(name));
    }
    let frame_type = first >> 4;
    let codec_id = first & 0x0F;
    if codec_id != 7 {
        return Err(Unsupported::VideoCodec(video_codec_name(codec_id)));
    }
    if frame_type == 5 {
        // A video info / command frame: seek hints, nothing to show.
        return Ok(Tag::Skip);
    }
    if data.len() < 5 {
        return Err(Unsupported::Malformed("AVC video tag (shorter than its 5-byte header)".into()));
    }
    let body = data.slice(5..);
    match data[1] {
        0 => VideoConfig::from_avcc(body)
            .map(|c| Tag::Event(MediaEvent::VideoConfig(c)))
            .map_err(|e| Unsupported::Malformed(format!("AVC sequence header: {e}"))),
        1 => {
            // A signed 24-bit composition time: shift it to the top and back to extend the sign.
            let cts = i32::from_be_bytes([data[2], data[3], data[4], 0]) >> 8;
            Ok(Tag::Event(MediaEvent::Video { dts, cts, keyframe: frame_type == 1, data: body }))
        }
        2 => Ok(Tag::Skip),
        t => Err(Unsupported::Malformed(format!("AVC packet type {t}"))),
    }
}

/// An audio message body (FLV `AUDIODATA`).
pub(crate) fn audio(data: &Bytes, dts: i64) -> Result<Tag, Unsupported> {
    let Some(&first) = data.first() else { return Ok(Tag::Skip) };
    let format = first >> 4;
    if format != 10 {
        if format == 9 {
            // Enhanced RTMP v2's ExHeader: a FourCC follows.
            let fourcc = data.get(1..5).map(|f| String::from_utf8_lossy(f).into_owned());
            return Err(Unsupported::AudioCodec(format!(
                "enhanced RTMP {}",
                fourcc.as_deref().unwrap_or("(no FourCC)")
            )));
        }
        return Err(Unsupported::AudioCodec(audio_codec_name(format).into()));
    }
    if data.len() < 2 {
        return Err(Unsupported::Malformed("AAC audio tag (shorter than its 2-byte header)".into()));
    }
    let body = data.slice(2..);
    match data[1] {
        0 => AudioConfig::from_asc(body)
            .map(|c| Tag::Event(MediaEvent::AudioConfig(c)))
            .map_err(|e| Unsupported::Malformed(format!("AAC sequence header: {e}"))),
        1 => Ok(Tag::Event(MediaEvent::Audio { dts, data: body })),
        t => Err(Unsupported::Malformed(format!("AAC packet type {t}"))),
    }
}

fn video_codec_name(id: u8) -> String {
    match id {
        2 => "Sorenson H.263 (FLV1)".into(),
        3 => "Screen Video".into(),
        4 => "On2 VP6".into(),
        5 => "On2 VP6 with alpha".into(),
        6 => "Screen Video v2".into(),
        12 => "HEVC (codec id 12)".into(),
        13 => "AV1 (codec id 13)".into(),
        id => format!("unknown (codec id {id})"),
    }
}

fn video_fourcc_name(fourcc: &str) -> String {
    match fourcc {
        "hvc1" => "HEVC (hvc1)".into(),
        "av01" => "AV1 (av01)".into(),
        "vp09" => "VP9 (vp09)".into(),
        "avc1" => "H.264 (avc1, extended header)".into(),
        other => format!("FourCC {other:?}"),
    }
}

fn audio_codec_name(format: u8) -> &'static str {
    match format {
        0 => "Linear PCM, platform endian",
        1 => "ADPCM",
        2 => "MP3",
        3 => "Linear PCM, little endian",
        4..=6 => "Nellymoser",
        7 => "G.711 A-law",
        8 => "G.711 mu-law",
        11 => "Speex",
        14 => "MP3 8 kHz",
        15 => "device-specific sound",
        _ => "reserved sound format",
    }
}

/// Unwraps RTMP's 32-bit millisecond timestamps into milliseconds since the first message.
///
/// Each timestamp is read as the signed 32-bit distance from the previous one, so a wrap (after
/// 49.7 days, or sooner when an encoder starts its clock high) continues forward and the small
/// backward steps of interleaved audio and video stay small and backward.
#[derive(Debug, Default)]
pub(super) struct Clock {
    last: Option<(u32, i64)>,
}

impl Clock {
    pub(super) fn unwrap(&mut self, ts: u32) -> i64 {
        let now = match self.last {
            None => 0,
            Some((raw, unwrapped)) => unwrapped + i64::from(ts.wrapping_sub(raw) as i32),
        };
        self.last = Some((ts, now));
        now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_wraps_and_jitters() {
        let mut c = Clock::default();
        assert_eq!(c.unwrap(u32::MAX - 10), 0);
        assert_eq!(c.unwrap(u32::MAX), 10);
        assert_eq!(c.unwrap(5), 16);
        assert_eq!(c.unwrap(2), 13);
        assert_eq!(c.unwrap(40), 51);
    }

    #[test]
    fn avc_frames_and_their_composition_time() {
        let tag = Bytes::from_static(&[0x17, 1, 0xFF, 0xFF, 0xFE, 0, 0, 0, 1, 0x65]);
        let Tag::Event(MediaEvent::Video { dts, cts, keyframe, data }) = video(&tag, 7).unwrap() else {
            panic!("a frame")
        };
        assert_eq!((dts, cts, keyframe, &data[..]), (7, -2, true, &[0, 0, 0, 1, 0x65][..]));
        let inter = Bytes::from_static(&[0x27, 1, 0, 0, 40, 1]);
        assert!(matches!(video(&inter, 0), Ok(Tag::Event(MediaEvent::Video { keyframe: false, cts: 40, .. }))));
        assert_eq!(video(&Bytes::from_static(&[0x17, 2, 0, 0, 0]), 0), Ok(Tag::Skip));
    }

    #[test]
    fn other_codecs_are_named() {
        let err = |r: Result<Tag, Unsupported>| r.unwrap_err().to_string();
        assert!(err(video(&Bytes::from_static(&[0x12, 0]), 0)).contains("H.263"));
        assert!(err(video(&Bytes::from_static(&[0x1C, 0]), 0)).contains("HEVC"));
        assert!(err(video(&Bytes::from_static(&[0x90, b'h', b'v', b'c', b'1']), 0)).contains("HEVC (hvc1)"));
        assert!(err(audio(&Bytes::from_static(&[0x2F, 0]), 0)).contains("MP3"));
        assert!(err(audio(&Bytes::from_static(&[0xB2, 0]), 0)).contains("Speex"));
        assert!(err(audio(&Bytes::from_static(&[0x3F, 0]), 0)).contains("PCM"));
    }

    #[test]
    fn aac_frames() {
        let tag = Bytes::from_static(&[0xAF, 1, 0x21, 0x10]);
        assert_eq!(
            audio(&tag, 3),
            Ok(Tag::Event(MediaEvent::Audio { dts: 3, data: Bytes::from_static(&[0x21, 0x10]) }))
        );
        assert!(matches!(
            audio(&Bytes::from_static(&[0xAF, 0, 0x12, 0x10]), 0),
            Ok(Tag::Event(MediaEvent::AudioConfig(_)))
        ));
    }
}
