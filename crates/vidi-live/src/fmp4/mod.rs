//! The segmenter: [`MediaEvent`]s in, CMAF (fMP4) init segments, parts and segments out, without
//! re-encoding (FLV's AVCC NAL units and raw AAC frames are copied into `mdat` as they are).
//!
//! How time is cut. One track leads: video when the init has video, else audio. Its samples
//! decide the boundaries: a segment starts at a keyframe at or after `segment_target` from the
//! previous start; a part closes before the lead sample that would take it past `part_target`.
//! A sample's duration is the delta to the next sample of its track, so a part closes only when
//! the sample after it arrives (the last sample of a broadcast gets the previous delta). The
//! other track's samples go into the part whose time span holds their decode time.
//!
//! Each part is one `moof` with one `traf` per track (video, then audio) and one `mdat`: ffmpeg's
//! HLS muxer, hls.js and Safari all read muxed fragments, and one request per part per viewer
//! is half the requests of a fragment per track. Every `traf` carries an absolute `tfdt`, so a
//! player starting at any part, or a demuxer reading parts back to back, gets the publisher's
//! timestamps exactly, even where a part's last duration was estimated.

mod boxes;

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;

pub use boxes::{AUDIO_TRACK, VIDEO_TIMESCALE, VIDEO_TRACK};
use boxes::{FragmentSample, Run, VideoTrack};

use crate::media::{AudioConfig, MediaEvent, VideoConfig};

/// What the segmenter produces, in order. A part's bytes are one `moof`+`mdat` pair; a segment's
/// bytes are its parts concatenated, so a legacy player reading the segment and a low-latency
/// player reading its parts get the same samples.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// A new initialization segment (`ftyp`+`moov`), at the start and after a configuration
    /// change or a [`Segmenter::discontinuity`]: every Init but the first precedes a
    /// discontinuity. `number` counts from 0 within the segmenter; segments after it refer to it.
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

/// Frames of the non-lead track held while the lead track sends nothing (~10 s of AAC at 48 kHz).
const MAX_FOLLOWER_QUEUE: usize = 512;

/// A frame waiting for its part, on the output timeline (milliseconds).
struct Sample {
    dts: i64,
    cts: i32,
    sync: bool,
    data: Bytes,
}

/// One track's frames not yet in a part, and what its clock has shown so far.
struct Track {
    /// Samples per second of the track's `mdhd`.
    timescale: u32,
    queue: VecDeque<Sample>,
    /// The last decode time seen (ms), to keep decode times increasing whatever the input does.
    last_dts: Option<i64>,
    /// The last few deltas between samples (ms). Their mean is the expected duration of a
    /// sample with no successor yet: one delta alone is off by the input's millisecond
    /// rounding (33, 34, 33 at 30 fps), enough to cut a 200 ms part a frame early.
    deltas: VecDeque<i64>,
    /// The duration assumed before any delta is known (ms).
    default_delta: i64,
}

impl Track {
    fn new(timescale: u32, default_delta: i64) -> Self {
        Track { timescale, queue: VecDeque::new(), last_dts: None, deltas: VecDeque::new(), default_delta }
    }

    fn ticks(&self, ms: i64) -> u64 {
        // Rounded, so a timestamp read back in milliseconds is the one that came in.
        ((ms.max(0) as i128 * self.timescale as i128 + 500) / 1000) as u64
    }

    fn delta(&self) -> f64 {
        if self.deltas.is_empty() {
            return self.default_delta as f64;
        }
        self.deltas.iter().sum::<i64>() as f64 / self.deltas.len() as f64
    }

    /// The expected end of a sample starting at `dts` with no successor yet.
    fn expected_end(&self, dts: i64) -> i64 {
        dts + self.delta().round() as i64
    }

    /// Takes a sample's decode time; returns it made non-decreasing.
    fn admit(&mut self, dts: i64) -> i64 {
        let dts = match self.last_dts {
            Some(last) if dts < last => last,
            _ => dts.max(0),
        };
        if let Some(last) = self.last_dts.filter(|last| dts > *last) {
            if self.deltas.len() == 8 {
                self.deltas.pop_front();
            }
            self.deltas.push_back(dts - last);
        }
        self.last_dts = Some(dts);
        dts
    }
}

/// The segment being filled.
struct OpenSegment {
    msn: u64,
    start: i64,
    init: u32,
    discontinuity: bool,
    part_index: u32,
    part_start: i64,
    /// Its parts so far: concatenated once, at its close, into an allocation of the exact size.
    /// (Appending each part to one growing Vec copied a segment ~twice over in reallocations,
    /// each into fresh pages: under 50 publishers the profile's largest cost in the segmenter.)
    parts: Vec<Bytes>,
}

pub struct Segmenter {
    config: SegmenterConfig,
    video: Option<VideoTrack>,
    audio: Option<AudioConfig>,
    /// The init in effect and the tracks it declares (video, audio); `None` until the first
    /// frame, and again after a configuration change until the next frame.
    init: Option<(u32, bool, bool)>,
    next_init: u32,
    latest_init: Option<Bytes>,
    video_track: Track,
    audio_track: Track,
    segment: Option<OpenSegment>,
    next_msn: u64,
    /// The `mfhd` sequence number of the next fragment.
    sequence: u32,
    /// Added to the publisher's timestamps: 0 for the first publisher, then whatever makes a
    /// reconnected publisher's clock continue where the output timeline stopped.
    offset: i64,
    /// Where the output timeline ends so far (ms): the end of the last closed part.
    end: i64,
    /// [`Segmenter::discontinuity`] was called: rebase at the next frame.
    rebase: bool,
    /// The next segment follows a gap or a configuration change.
    next_discontinuity: bool,
}

impl Segmenter {
    pub fn new(config: SegmenterConfig) -> Self {
        Segmenter {
            config,
            video: None,
            audio: None,
            init: None,
            next_init: 0,
            latest_init: None,
            // ~30 fps until the stream shows its own rate.
            video_track: Track::new(VIDEO_TIMESCALE, 33),
            audio_track: Track::new(1000, 23),
            segment: None,
            next_msn: config.first_msn,
            sequence: 1,
            offset: 0,
            end: 0,
            rebase: false,
            next_discontinuity: false,
        }
    }

    pub fn config(&self) -> SegmenterConfig {
        self.config
    }

    /// The init segment in effect (for a viewer or a recording that starts late), with its
    /// number; `None` before the first frame.
    pub fn init_bytes(&self) -> Option<(u32, Bytes)> {
        let (number, ..) = self.init?;
        self.latest_init.clone().map(|b| (number, b))
    }

    /// The configurations in effect (for a multivariant playlist's RESOLUTION, or a log line).
    pub fn video_config(&self) -> Option<&VideoConfig> {
        self.video.as_ref().map(|v| &v.config)
    }
    pub fn audio_config(&self) -> Option<&AudioConfig> {
        self.audio.as_ref()
    }

    /// The CODECS attribute of a multivariant playlist for the tracks configured, video first
    /// (`avc1.64001f,mp4a.40.2`); empty before any configuration.
    pub fn codecs(&self) -> String {
        let video = self.video.as_ref().map(|v| v.config.codec.as_str());
        let audio = self.audio.as_ref().map(|a| a.codec.as_str());
        video.into_iter().chain(audio).collect::<Vec<_>>().join(",")
    }

    /// The media sequence number the next segment will have (a reconnect that starts a new
    /// segmenter passes it as `first_msn`).
    pub fn next_msn(&self) -> u64 {
        self.segment.as_ref().map_or(self.next_msn, |s| s.msn + 1)
    }

    /// What is added to the publisher's timestamps to put them on the output timeline (it
    /// changes at the first frame after a [`Segmenter::discontinuity`]).
    pub fn offset(&self) -> i64 {
        self.offset
    }

    /// The segment being filled: its msn and where it starts on the output timeline (ms).
    pub fn current_segment(&self) -> Option<(u64, i64)> {
        self.segment.as_ref().map(|s| (s.msn, s.start))
    }

    /// Takes the next event; returns what it completed (often nothing).
    pub fn push(&mut self, event: MediaEvent) -> Vec<Output> {
        let mut out = Vec::new();
        match event {
            MediaEvent::VideoConfig(config) => {
                if self.video.as_ref().is_some_and(|v| v.config == config) {
                    return out; // OBS repeats its sequence headers: nothing changed
                }
                match VideoTrack::new(config) {
                    Ok(track) => {
                        self.config_changed(&mut out);
                        self.video = Some(track);
                    }
                    Err(e) => tracing::warn!(error = %e, "unusable H.264 configuration ignored"),
                }
            }
            MediaEvent::AudioConfig(config) => {
                if self.audio.as_ref() == Some(&config) {
                    return out;
                }
                self.config_changed(&mut out);
                self.audio_track.timescale = config.sample_rate.max(1);
                // An AAC frame is 1024 samples.
                self.audio_track.default_delta = (1_024_000 / config.sample_rate.max(1) as i64).max(1);
                self.audio = Some(config);
            }
            MediaEvent::Video { dts, cts, keyframe, data } => {
                if self.video.is_some() {
                    self.frame(&mut out, true, dts, cts, keyframe, data);
                }
            }
            MediaEvent::Audio { dts, data } => {
                if self.audio.is_some() {
                    self.frame(&mut out, false, dts, 0, true, data);
                }
            }
        }
        out
    }

    /// The publisher is gone (for now): closes the part and segment in flight.
    pub fn flush(&mut self) -> Vec<Output> {
        let mut out = Vec::new();
        self.close_all(&mut out);
        out
    }

    /// The next segment follows a gap (a publisher that reconnected): it is marked
    /// `discontinuity`, and timestamps restart from the new publisher's, rebased so the output
    /// timeline continues where it stopped. A segment still open is closed by the next
    /// [`Segmenter::push`] (whose outputs then include it).
    pub fn discontinuity(&mut self) {
        // Before the first frame there is nothing to be discontinuous with.
        if self.next_init > 0 {
            self.rebase = true;
            self.next_discontinuity = true;
        }
    }

    /// A configuration that differs from the one in effect: what was cut under the old one is
    /// closed, and the next frame starts a new init and a discontinuity.
    fn config_changed(&mut self, out: &mut Vec<Output>) {
        if self.init.is_some() {
            self.close_all(out);
            self.init = None;
            self.next_discontinuity = true;
        }
    }

    fn lead_is_video(&self) -> bool {
        self.init.is_none_or(|(_, video, _)| video)
    }

    fn frame(&mut self, out: &mut Vec<Output>, video: bool, dts: i64, cts: i32, sync: bool, data: Bytes) {
        if self.rebase {
            self.close_all(out);
            // The new publisher's first timestamp lands where the timeline ended.
            self.offset = self.end - dts;
            self.rebase = false;
            // A new init (the same bytes when the configuration did not change) announces the
            // discontinuity to the playlist before the new segment's first part: parts carry no
            // flag of their own, and a low-latency player must see the tag before them.
            self.init = None;
        }
        if self.init.is_none() {
            let number = self.next_init;
            self.next_init += 1;
            let bytes = boxes::init_segment(self.video.as_ref(), self.audio.as_ref());
            self.latest_init = Some(bytes.clone());
            self.init = Some((number, self.video.is_some(), self.audio.is_some()));
            out.push(Output::Init { number, bytes });
        }
        let (_, has_video, has_audio) = self.init.expect("set above");
        if (video && !has_video) || (!video && !has_audio) {
            return; // a track the init does not declare (its config came after the start)
        }
        let lead = video == self.lead_is_video();
        if self.segment.is_none() && !(lead && sync) {
            return; // a segment starts with a keyframe of the lead track
        }
        // A late frame of the other track (its decode time before the open part's start) goes
        // into the open part with its own timestamp: the traf's tfdt says where it belongs.
        let dts = dts + self.offset;
        let track = if video { &mut self.video_track } else { &mut self.audio_track };
        let dts = track.admit(dts);
        let sample = Sample { dts, cts, sync, data };
        if !lead {
            // A lead track that stalls (video frames stop, audio goes on) must not make the
            // queue grow without end: past ~10 s of audio, the oldest frames go.
            if track.queue.len() >= MAX_FOLLOWER_QUEUE {
                track.queue.pop_front();
            }
            track.queue.push_back(sample);
            return;
        }
        match self.segment.as_ref() {
            None => self.open_segment(dts),
            Some(seg) => {
                let part_target = self.config.part_target.as_millis() as i64;
                let segment_target = self.config.segment_target.as_millis() as i64;
                let track = if video { &self.video_track } else { &self.audio_track };
                let (since_part, delta) = (dts - seg.part_start, track.delta());
                // The last lead sample, when the part holds another before it (it may move on).
                let held = track.queue.back().map(|s| s.dts).filter(|_| track.queue.len() >= 2);
                // Within half a frame of the target counts as reached: a publisher's keyframe
                // every 2 s lands at 1999 ms as often as at 2001 ms once rounded to milliseconds.
                if sync && (dts - seg.start) as f64 + delta / 2.0 >= segment_target as f64 {
                    if let Some(held) = held.filter(|_| since_part > part_target) {
                        self.close_part(out, held);
                    }
                    self.close_part(out, dts);
                    self.close_segment(out, dts);
                    self.open_segment(dts);
                } else if let Some(held) = held.filter(|_| since_part > part_target) {
                    // The held sample turned out longer than expected: closing after it would
                    // overrun PART-TARGET, so it opens the next part instead.
                    self.close_part(out, held);
                } else if since_part as f64 + delta > part_target as f64 + 1.0 {
                    // The sample would end past the target (by more than the input's
                    // millisecond rounding): it starts the next part.
                    self.close_part(out, dts);
                }
            }
        }
        let track = if video { &mut self.video_track } else { &mut self.audio_track };
        track.queue.push_back(sample);
    }

    fn open_segment(&mut self, at: i64) {
        let (init, ..) = self.init.expect("a segment opens after its init");
        self.segment = Some(OpenSegment {
            msn: self.next_msn,
            start: at,
            init,
            discontinuity: std::mem::take(&mut self.next_discontinuity),
            part_index: 0,
            part_start: at,
            parts: Vec::new(),
        });
        self.next_msn += 1;
    }

    /// Closes the part in flight at `at` (ms): the samples that decode before it go into a
    /// fragment.
    fn close_part(&mut self, out: &mut Vec<Output>, at: i64) {
        if self.segment.is_none() {
            return;
        }
        let mut runs = Vec::new();
        let mut taken = Vec::new();
        let mut independent = true;
        for (video, track) in [(true, &mut self.video_track), (false, &mut self.audio_track)] {
            let n = track.queue.iter().take_while(|s| s.dts < at).count();
            let samples: Vec<Sample> = track.queue.drain(..n).collect();
            if video {
                independent = samples.first().is_none_or(|s| s.sync);
            }
            taken.push((video, samples));
        }
        if taken.iter().all(|(_, s)| s.is_empty()) {
            return;
        }
        for (video, samples) in &taken {
            let track = if *video { &self.video_track } else { &self.audio_track };
            let Some(first) = samples.first() else { continue };
            let fragment_samples = samples
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    // The next decode time: the next sample of this part, else the first still
                    // queued, else (no successor yet) the part's end for the lead, or the
                    // track's last delta.
                    let next = samples
                        .get(i + 1)
                        .map(|n| n.dts)
                        .or_else(|| track.queue.front().map(|n| n.dts))
                        .unwrap_or_else(|| track.expected_end(s.dts));
                    let duration = track.ticks(next).saturating_sub(track.ticks(s.dts));
                    let pts = track.ticks(s.dts + s.cts as i64) as i64;
                    FragmentSample {
                        duration: duration as u32,
                        cts: (pts - track.ticks(s.dts) as i64) as i32,
                        sync: s.sync,
                        data: &s.data,
                    }
                })
                .collect();
            runs.push(Run {
                track_id: if *video { VIDEO_TRACK } else { AUDIO_TRACK },
                decode_time: track.ticks(first.dts),
                samples: fragment_samples,
            });
        }
        let bytes = boxes::fragment(self.sequence, &runs);
        self.sequence = self.sequence.wrapping_add(1);
        let at = if at == i64::MAX { self.taken_end(&taken) } else { at };
        let seg = self.segment.as_mut().expect("checked above");
        let duration = Duration::from_millis((at - seg.part_start).max(0) as u64);
        seg.parts.push(bytes.clone());
        out.push(Output::Part { msn: seg.msn, index: seg.part_index, duration, independent, bytes });
        seg.part_index += 1;
        seg.part_start = at;
        self.end = self.end.max(at);
    }

    /// Where the samples just taken end: the last lead sample's expected end (the other
    /// track's, when no lead sample was left; otherwise that track may overhang by part of a
    /// frame: the part follows the lead's timeline).
    fn taken_end(&self, taken: &[(bool, Vec<Sample>)]) -> i64 {
        let part_start = self.segment.as_ref().map_or(self.end, |s| s.part_start);
        let last = |video: bool| taken.iter().find(|(v, _)| *v == video)?.1.last().map(|s| (video, s.dts));
        let lead_video = self.lead_is_video();
        let Some((video, last_dts)) = last(lead_video).or_else(|| last(!lead_video)) else {
            return part_start;
        };
        let track = if video { &self.video_track } else { &self.audio_track };
        // The last duration is a guess: it may not take the part past PART-TARGET, which the
        // samples themselves fit in (the part would have closed before them otherwise).
        let part_target = self.config.part_target.as_millis() as i64;
        track.expected_end(last_dts).min(part_start + part_target).max(last_dts + 1).max(part_start)
    }

    fn close_segment(&mut self, out: &mut Vec<Output>, at: i64) {
        let Some(seg) = self.segment.take() else { return };
        if seg.parts.is_empty() {
            self.next_msn = seg.msn; // nothing was published under this number
            return;
        }
        let mut bytes = Vec::with_capacity(seg.parts.iter().map(Bytes::len).sum());
        for part in &seg.parts {
            bytes.extend_from_slice(part);
        }
        out.push(Output::Segment {
            msn: seg.msn,
            duration: Duration::from_millis((at - seg.start).max(0) as u64),
            init: seg.init,
            discontinuity: seg.discontinuity,
            bytes: Bytes::from(bytes),
        });
    }

    /// Closes the part and segment in flight with every queued sample.
    fn close_all(&mut self, out: &mut Vec<Output>) {
        if self.segment.is_none() {
            self.video_track.queue.clear();
            self.audio_track.queue.clear();
            return;
        }
        self.close_part(out, i64::MAX);
        let end = self.segment.as_ref().map_or(self.end, |s| s.part_start);
        self.close_segment(out, end);
        // A rebase continues after the last frame of either track (audio may end a few
        // milliseconds after the video), so neither track's clock goes backwards.
        let tracks_end = [&self.video_track, &self.audio_track]
            .iter()
            .filter_map(|t| t.last_dts.map(|last| t.expected_end(last)))
            .max()
            .unwrap_or(end);
        self.end = self.end.max(end).max(tracks_end);
    }
}

#[cfg(test)]
mod tests;
