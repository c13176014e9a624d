//! The low-latency HLS media playlist (written by hand: m3u8-rs drops the LL tags) and the
//! blocking-reload rules of draft-pantos-hls-rfc8216bis.
//!
//! SKELETON: the signatures below are the contract the broadcast and delivery sides are written
//! against; the bodies are being written (issue 21). Keep the names; add what is needed.

use std::time::Duration;

use crate::fmp4::Output;

/// How a file of the playlist is named (relative URIs: the playlist and its files share a
/// directory): `init{n}.mp4`, `{msn}.m4s` for a segment, `{msn}.{index}.m4s` for a part.
pub fn init_name(number: u32) -> String {
    format!("init{number}.mp4")
}
pub fn segment_name(msn: u64) -> String {
    format!("{msn}.m4s")
}
pub fn part_name(msn: u64, index: u32) -> String {
    format!("{msn}.{index}.m4s")
}

/// A broadcast's media playlist: a sliding window of segments (with the parts of the last few),
/// the part in progress as a preload hint, and ENDLIST once the broadcast ended.
pub struct LivePlaylist {
    _part_target: Duration,
}

/// What a request with `_HLS_msn` / `_HLS_part` gets (the draft's rules).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reload {
    /// Answer with the current playlist now.
    Now,
    /// Wait for a newer version, then ask again; give up with 503 after [`LivePlaylist::block_limit`].
    Wait,
    /// 400, with the reason.
    Bad(&'static str),
}

impl LivePlaylist {
    /// `window`: how many whole segments a viewer's playlist lists.
    pub fn new(_part_target: Duration, _segment_target: Duration, _window: usize) -> Self {
        unimplemented!("issue 21: the live playlist")
    }

    /// Records a segmenter output (parts, segments, init changes). Returns whether the playlist
    /// text changed (then publish the new version).
    pub fn apply(&mut self, _output: &Output) -> bool {
        unimplemented!("issue 21: the live playlist")
    }

    /// The broadcast ended: ENDLIST, no more hints, directives ignored from now on.
    pub fn end(&mut self) {
        unimplemented!("issue 21: the live playlist")
    }

    /// The playlist as served.
    pub fn render(&self) -> String {
        unimplemented!("issue 21: the live playlist")
    }

    /// The blocking-reload decision for `_HLS_msn` / `_HLS_part` as given (`None` = absent).
    pub fn reload(&self, _msn: Option<u64>, _part: Option<u32>) -> Reload {
        unimplemented!("issue 21: the live playlist")
    }

    /// How long a blocking reload may wait before 503 (3 × the target duration).
    pub fn block_limit(&self) -> Duration {
        unimplemented!("issue 21: the live playlist")
    }
}
