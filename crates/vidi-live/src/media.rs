//! What a publisher sends, once the RTMP and FLV framing is taken off: codec configurations and
//! timestamped access units. The shared language of the ingest and the segmenter; nothing here
//! knows RTMP or MP4.
//!
//! Timestamps are RTMP's: milliseconds on a 32-bit clock that wraps. The ingest unwraps them into
//! `i64` milliseconds from the publisher's first message, so nothing downstream sees a wrap.

use bytes::Bytes;

/// The H.264 decoder configuration (FLV's AVC sequence header): the `AVCDecoderConfigurationRecord`
/// exactly as the publisher sent it, which is also the body of an MP4 `avcC` box.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VideoConfig {
    pub avcc: Bytes,
    /// From the first SPS, when it could be read (for the playlist's RESOLUTION and the box's
    /// width and height).
    pub width: u32,
    pub height: u32,
    /// `avc1.PPCCLL` from the record's profile, compatibility and level bytes.
    pub codec: String,
}

/// The AAC decoder configuration (FLV's AAC sequence header): the `AudioSpecificConfig`, which is
/// also the decoder-specific info of an MP4 `esds` box.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioConfig {
    pub asc: Bytes,
    pub sample_rate: u32,
    pub channels: u8,
    /// `mp4a.40.N` from the object type.
    pub codec: String,
}

/// One event of a publisher, in the order it sent them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MediaEvent {
    /// A (new) video configuration. Sent before the first video frame; a changed one mid-stream
    /// (an encoder restarted with other settings) starts a new init segment.
    VideoConfig(VideoConfig),
    AudioConfig(AudioConfig),
    /// One H.264 access unit: its NAL units, each with a 4-byte big-endian length prefix (AVCC,
    /// as FLV carries them and as MP4 stores them).
    Video {
        /// Decode time, milliseconds from the publisher's first message.
        dts: i64,
        /// Presentation minus decode time, milliseconds (FLV's composition time; B-frames make
        /// it positive).
        cts: i32,
        keyframe: bool,
        data: Bytes,
    },
    /// One raw AAC frame (no ADTS header).
    Audio {
        dts: i64,
        data: Bytes,
    },
}

impl MediaEvent {
    /// The decode time of a frame; `None` for a configuration.
    pub fn dts(&self) -> Option<i64> {
        match self {
            MediaEvent::Video { dts, .. } | MediaEvent::Audio { dts, .. } => Some(*dts),
            _ => None,
        }
    }
}
