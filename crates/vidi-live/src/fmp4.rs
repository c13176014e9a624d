//! The segmenter: [`MediaEvent`]s in, CMAF (fMP4) init segments, parts and segments out, without
//! re-encoding (FLV's AVCC NAL units and raw AAC frames are copied into `mdat` as they are).
//!
//! SKELETON: the signatures below are the contract the broadcast side is written against; the
//! bodies are being written (issue 21). Keep the names; add what is needed.

use std::time::Duration;

use bytes::Bytes;

use crate::media::MediaEvent;

/// What the segmenter produces, in order. A part's bytes are one `moof`+`mdat` pair (or several,
/// one per track); a segment's bytes are its parts concatenated, so a legacy player reading the
/// segment and a low-latency player reading its parts get the same samples.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// A new initialization segment (`ftyp`+`moov`), at the start and after a configuration
    /// change. `number` counts from 0 within the segmenter; segments after it refer to it.
    Init { number: u32, bytes: Bytes },
    /// A part of segment `msn`: `index` from 0 within the segment; `independent` when it starts
    /// with a keyframe (or holds no video).
    Part { msn: u64, index: u32, duration: Duration, independent: bool, bytes: Bytes },
    /// Segment `msn` is complete (the next keyframe after the target duration arrived, or the
    /// stream ended). `discontinuity` when it follows a configuration change or a gap the
    /// caller declared (see [`Segmenter::discontinuity`]).
    Segment { msn: u64, duration: Duration, init: u32, discontinuity: bool, bytes: Bytes },
}

/// Settings fixed for a broadcast: PART-TARGET must never change within one.
#[derive(Clone, Copy, Debug)]
pub struct SegmenterConfig {
    /// A part closes when it reaches this (200–333 ms allowed by the issue).
    pub part_target: Duration,
    /// A segment closes at the first keyframe at or after this.
    pub segment_target: Duration,
    /// The first media sequence number (a reconnect continues the count).
    pub first_msn: u64,
}

pub struct Segmenter {
    _config: SegmenterConfig,
}

impl Segmenter {
    pub fn new(config: SegmenterConfig) -> Self {
        Segmenter { _config: config }
    }

    /// Takes the next event; returns what it completed (often nothing).
    pub fn push(&mut self, _event: MediaEvent) -> Vec<Output> {
        unimplemented!("issue 21: the segmenter")
    }

    /// The publisher is gone (for now): closes the part and segment in flight.
    pub fn flush(&mut self) -> Vec<Output> {
        unimplemented!("issue 21: the segmenter")
    }

    /// The next segment follows a gap (a publisher that reconnected): it is marked
    /// `discontinuity`, and timestamps restart from the new publisher's.
    pub fn discontinuity(&mut self) {
        unimplemented!("issue 21: the segmenter")
    }
}
