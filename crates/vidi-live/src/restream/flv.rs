//! A small FLV writer: what a restream pusher feeds ffmpeg on its stdin. It writes back what
//! the ingest took off (the FLV tags of RTMP's audio and video messages), from [`MediaEvent`]s:
//! a file header, AVC and AAC sequence headers from the configurations, then one tag per frame.
//!
//! Only H.264 and AAC: the ingest refuses every other codec, so nothing else reaches here.

use bytes::{BufMut, Bytes, BytesMut};

use crate::media::{AudioConfig, VideoConfig};

const TAG_AUDIO: u8 = 8;
const TAG_VIDEO: u8 = 9;
/// The tag header (type, size, timestamp, stream id) before the data.
const TAG_HEADER: usize = 11;

/// FLV's codec id of AVC (H.264) in a video tag's first byte.
const CODEC_AVC: u8 = 7;
const FRAME_KEY: u8 = 1;
const FRAME_INTER: u8 = 2;
const AVC_SEQUENCE_HEADER: u8 = 0;
const AVC_NALU: u8 = 1;

/// An AAC audio tag's first byte: sound format 10 (AAC), 44 kHz, 16-bit, stereo. FLV requires
/// these constant values for AAC; the real rate and channels are in the AudioSpecificConfig.
const AAC_FLAGS: u8 = (10 << 4) | (3 << 2) | (1 << 1) | 1;
const AAC_SEQUENCE_HEADER: u8 = 0;
const AAC_RAW: u8 = 1;

/// The 9-byte file header and the first (zero) previous-tag-size, announcing the streams there
/// will be. ffmpeg's demuxer looks for the streams the flags name before it starts.
pub fn header(video: bool, audio: bool) -> Bytes {
    let mut b = BytesMut::with_capacity(13);
    b.put_slice(b"FLV");
    b.put_u8(1);
    b.put_u8(if audio { 4 } else { 0 } | if video { 1 } else { 0 });
    b.put_u32(9);
    b.put_u32(0);
    b.freeze()
}

/// One tag and its trailing previous-tag-size, appended to `out`. `ts` is milliseconds; FLV keeps
/// 24 bits plus an 8-bit extension, so it wraps after 49 days, as RTMP's clock does.
fn tag(out: &mut BytesMut, kind: u8, ts: u32, head: &[u8], body: &[u8]) {
    let size = head.len() + body.len();
    debug_assert!(size < 1 << 24, "an FLV tag holds at most 16 MiB");
    out.reserve(TAG_HEADER + size + 4);
    out.put_u8(kind);
    out.put_uint(size as u64, 3);
    out.put_uint(u64::from(ts & 0x00ff_ffff), 3);
    out.put_u8((ts >> 24) as u8);
    out.put_uint(0, 3);
    out.put_slice(head);
    out.put_slice(body);
    out.put_u32((TAG_HEADER + size) as u32);
}

/// The AVC sequence header: the `AVCDecoderConfigurationRecord` as the publisher sent it.
pub fn video_config(out: &mut BytesMut, ts: u32, config: &VideoConfig) {
    let head = [(FRAME_KEY << 4) | CODEC_AVC, AVC_SEQUENCE_HEADER, 0, 0, 0];
    tag(out, TAG_VIDEO, ts, &head, &config.avcc);
}

/// The AAC sequence header: the `AudioSpecificConfig`.
pub fn audio_config(out: &mut BytesMut, ts: u32, config: &AudioConfig) {
    tag(out, TAG_AUDIO, ts, &[AAC_FLAGS, AAC_SEQUENCE_HEADER], &config.asc);
}

/// One access unit (length-prefixed NAL units), with its composition time (signed 24 bits).
pub fn video(out: &mut BytesMut, ts: u32, cts: i32, keyframe: bool, data: &[u8]) {
    let frame = if keyframe { FRAME_KEY } else { FRAME_INTER };
    let cts = (cts.clamp(-(1 << 23), (1 << 23) - 1) as u32).to_be_bytes();
    let head = [(frame << 4) | CODEC_AVC, AVC_NALU, cts[1], cts[2], cts[3]];
    tag(out, TAG_VIDEO, ts, &head, data);
}

/// One raw AAC frame.
pub fn audio(out: &mut BytesMut, ts: u32, data: &[u8]) {
    tag(out, TAG_AUDIO, ts, &[AAC_FLAGS, AAC_RAW], data);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn avc() -> VideoConfig {
        VideoConfig {
            avcc: Bytes::from_static(&[1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 2, 0x67, 0x64, 1, 0, 1, 0x68]),
            width: 1280,
            height: 720,
            codec: "avc1.64001f".into(),
        }
    }

    #[test]
    fn the_file_header_names_the_streams() {
        assert_eq!(&header(true, true)[..], b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00");
        assert_eq!(header(true, false)[4], 1);
        assert_eq!(header(false, true)[4], 4);
    }

    #[test]
    fn tags_carry_size_timestamp_extension_and_trailing_size() {
        let mut out = BytesMut::new();
        video_config(&mut out, 0, &avc());
        assert_eq!(out[0], TAG_VIDEO);
        assert_eq!(&out[1..4], &[0, 0, 5 + 14]);
        assert_eq!(&out[11..16], &[0x17, 0, 0, 0, 0]);
        assert_eq!(&out[16..30], &avc().avcc[..]);
        assert_eq!(&out[30..34], &(11u32 + 19).to_be_bytes());
        assert_eq!(out.len(), 34);

        // 0x12345678 ms: the low 24 bits, then the high byte in the extension.
        let mut out = BytesMut::new();
        audio(&mut out, 0x1234_5678, &[0x21, 0x10]);
        assert_eq!(&out[..11], &[TAG_AUDIO, 0, 0, 4, 0x34, 0x56, 0x78, 0x12, 0, 0, 0]);
        assert_eq!(&out[11..15], &[0xaf, 1, 0x21, 0x10]);
        assert_eq!(&out[15..], &15u32.to_be_bytes());
    }

    #[test]
    fn frames_carry_their_type_and_signed_composition_time() {
        let mut out = BytesMut::new();
        video(&mut out, 40, 80, false, &[0, 0, 0, 1, 0x41]);
        assert_eq!(&out[11..16], &[0x27, 1, 0, 0, 80]);
        let mut out = BytesMut::new();
        video(&mut out, 40, -2, true, &[0, 0, 0, 1, 0x65]);
        assert_eq!(&out[11..16], &[0x17, 1, 0xff, 0xff, 0xfe]);
        let mut out = BytesMut::new();
        audio_config(
            &mut out,
            0,
            &AudioConfig {
                asc: Bytes::from_static(&[0x12, 0x10]),
                sample_rate: 44100,
                channels: 2,
                codec: "mp4a.40.2".into(),
            },
        );
        assert_eq!(&out[11..15], &[0xaf, 0, 0x12, 0x10]);
    }
}
