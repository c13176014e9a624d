//! The low-latency HLS media playlist (written by hand: m3u8-rs drops the LL tags) and the
//! blocking-reload rules of draft-pantos-hls-rfc8216bis (in [`reload`]).
//!
//! One playlist serves both kinds of player: a legacy player reads `EXTINF` segments, a
//! low-latency one the `EXT-X-PART`s of the last few segments, the part in progress as a
//! `EXT-X-PRELOAD-HINT`, and asks for the next version with `_HLS_msn`/`_HLS_part`.

mod reload;

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

pub use reload::{Reload, Resource};

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

#[derive(Clone, Debug)]
struct Part {
    duration: Duration,
    independent: bool,
}

/// A segment of the window (complete), or the one whose parts are arriving.
#[derive(Clone, Debug)]
struct Segment {
    msn: u64,
    init: u32,
    discontinuity: bool,
    /// The wall-clock time of its first frame.
    date: SystemTime,
    parts: Vec<Part>,
    /// `Some` once complete.
    duration: Option<Duration>,
}

/// A broadcast's media playlist: a sliding window of segments (with the parts of the last few),
/// the part in progress as a preload hint, and ENDLIST once the broadcast ended.
pub struct LivePlaylist {
    part_target: Duration,
    /// Whole seconds; only grows (see [`LivePlaylist::apply_at`]).
    target_duration: u64,
    window: usize,
    /// Complete segments, oldest first, at most `window`.
    segments: VecDeque<Segment>,
    /// The segment whose parts are arriving.
    open: Option<Segment>,
    /// The init the next segment refers to, and whether it follows a discontinuity.
    init: Option<u32>,
    pending_discontinuity: bool,
    /// Discontinuities that left the window (EXT-X-DISCONTINUITY-SEQUENCE).
    discontinuity_sequence: u64,
    /// The msn the segmenter starts at, for the hint before anything was cut.
    first_msn: u64,
    ended: bool,
}

fn secs(d: Duration) -> String {
    // Milliseconds are the input's resolution; three decimals say them exactly.
    format!("{}.{:03}", d.as_secs(), d.subsec_millis())
}

fn date(t: SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    t.format(&format).unwrap_or_default()
}

impl LivePlaylist {
    /// `window`: how many whole segments a viewer's playlist lists.
    pub fn new(part_target: Duration, segment_target: Duration, window: usize) -> Self {
        LivePlaylist {
            part_target,
            target_duration: segment_target.as_secs_f64().ceil().max(1.0) as u64,
            window: window.max(1),
            segments: VecDeque::new(),
            open: None,
            init: None,
            pending_discontinuity: false,
            discontinuity_sequence: 0,
            first_msn: 0,
            ended: false,
        }
    }

    /// The msn of the first segment when the segmenter does not start at 0 (a reconnect into a
    /// new playlist); only the preload hint before the first part uses it.
    pub fn with_first_msn(mut self, msn: u64) -> Self {
        self.first_msn = msn;
        self
    }

    /// Records a segmenter output (parts, segments, init changes). Returns whether the playlist
    /// text changed (then publish the new version). The wall clock is read now, for
    /// `EXT-X-PROGRAM-DATE-TIME`; see [`LivePlaylist::apply_at`].
    pub fn apply(&mut self, output: &Output) -> bool {
        self.apply_at(output, SystemTime::now())
    }

    /// [`LivePlaylist::apply`] with the wall-clock time at which `output` was produced. A
    /// segment's date is taken when its first part arrives (now minus that part's duration),
    /// except that a segment continuing the previous one without a discontinuity is dated by
    /// the previous one's date plus its duration, so the dates follow the media clock rather
    /// than the arrival jitter.
    ///
    /// TARGETDURATION starts at the segment target rounded up and grows if a segment is longer
    /// (a publisher whose keyframes are further apart than the target): the rules want it
    /// constant, but never below a segment's duration, and the second rule is the one players
    /// break on.
    pub fn apply_at(&mut self, output: &Output, now: SystemTime) -> bool {
        match output {
            Output::Init { number, .. } => {
                let started = self.open.is_some() || !self.segments.is_empty();
                if started {
                    self.pending_discontinuity = true;
                }
                self.init = Some(*number);
                false
            }
            Output::Part { msn, index, duration, independent, .. } => {
                if self.open.as_ref().is_none_or(|s| s.msn != *msn) {
                    self.open = Some(self.start_segment(*msn, now.checked_sub(*duration).unwrap_or(now)));
                }
                let open = self.open.as_mut().expect("opened above");
                if open.parts.len() as u32 != *index {
                    tracing::warn!(msn, index, have = open.parts.len(), "a part out of order ignored");
                    return false;
                }
                open.parts.push(Part { duration: *duration, independent: *independent });
                true
            }
            Output::Segment { msn, duration, init, discontinuity, .. } => {
                let mut segment = match self.open.take() {
                    Some(open) if open.msn == *msn => open,
                    _ => self.start_segment(*msn, now.checked_sub(*duration).unwrap_or(now)),
                };
                segment.init = *init;
                segment.discontinuity |= *discontinuity;
                segment.duration = Some(*duration);
                let rounded = duration.as_secs_f64().round() as u64;
                self.target_duration = self.target_duration.max(rounded);
                self.segments.push_back(segment);
                while self.segments.len() > self.window {
                    let gone = self.segments.pop_front().expect("len > window ≥ 1");
                    // The window's first segment carries no tag of its own: the count of
                    // discontinuities before it moves into EXT-X-DISCONTINUITY-SEQUENCE.
                    let first = self.segments.front().expect("window ≥ 1");
                    if first.discontinuity {
                        self.discontinuity_sequence += 1;
                    }
                    drop(gone);
                }
                true
            }
        }
    }

    fn start_segment(&mut self, msn: u64, wall: SystemTime) -> Segment {
        let discontinuity = std::mem::take(&mut self.pending_discontinuity);
        let date = match self.segments.back() {
            Some(prev) if !discontinuity => prev.date + prev.duration.unwrap_or_default(),
            _ => wall,
        };
        Segment { msn, init: self.init.unwrap_or(0), discontinuity, date, parts: Vec::new(), duration: None }
    }

    /// The broadcast ended: ENDLIST, no more hints, directives ignored from now on. Parts of a
    /// segment the segmenter did not close are dropped (flush the segmenter first).
    pub fn end(&mut self) {
        self.ended = true;
        self.open = None;
    }

    pub fn is_ended(&self) -> bool {
        self.ended
    }

    pub fn part_target(&self) -> Duration {
        self.part_target
    }

    pub fn target_duration(&self) -> Duration {
        Duration::from_secs(self.target_duration)
    }

    /// How long a blocking reload may wait before 503 (3 × the target duration).
    pub fn block_limit(&self) -> Duration {
        3 * self.target_duration()
    }

    /// The EXT-X-MEDIA-SEQUENCE: the first listed segment's msn.
    pub fn media_sequence(&self) -> u64 {
        self.segments.front().or(self.open.as_ref()).map_or(self.first_msn, |s| s.msn)
    }

    /// The part a player should ask for next: (msn, index). `None` once ended.
    pub fn hint(&self) -> Option<(u64, u32)> {
        if self.ended {
            return None;
        }
        Some(match (&self.open, self.segments.back()) {
            (Some(open), _) => (open.msn, open.parts.len() as u32),
            (None, Some(last)) => (last.msn + 1, 0),
            (None, None) => (self.first_msn, 0),
        })
    }

    /// The first msn whose parts are listed: parts more than three target durations from the
    /// playlist's end leave it (the draft's SHOULD), segments stay for the window.
    fn parts_listed_from(&self) -> u64 {
        let limit = 3 * self.target_duration();
        let mut from_end: Duration = self.open.iter().flat_map(|s| &s.parts).map(|p| p.duration).sum();
        let mut first = self.open.as_ref().map_or(u64::MAX, |s| s.msn);
        for s in self.segments.iter().rev() {
            from_end += s.duration.unwrap_or_default();
            if from_end > limit {
                break;
            }
            first = s.msn;
        }
        first
    }

    /// The playlist as served.
    pub fn render(&self) -> String {
        let mut m = String::with_capacity(2048);
        let part_target = secs(self.part_target);
        m.push_str("#EXTM3U\n#EXT-X-VERSION:9\n");
        let _ = writeln!(m, "#EXT-X-TARGETDURATION:{}", self.target_duration);
        let _ = writeln!(m, "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={}", secs(3 * self.part_target));
        let _ = writeln!(m, "#EXT-X-PART-INF:PART-TARGET={part_target}");
        let _ = writeln!(m, "#EXT-X-MEDIA-SEQUENCE:{}", self.media_sequence());
        if self.discontinuity_sequence > 0 {
            let _ = writeln!(m, "#EXT-X-DISCONTINUITY-SEQUENCE:{}", self.discontinuity_sequence);
        }
        let parts_from = self.parts_listed_from();
        let mut map: Option<u32> = None;
        for (i, s) in self.segments.iter().chain(&self.open).enumerate() {
            if s.discontinuity && i > 0 {
                m.push_str("#EXT-X-DISCONTINUITY\n");
            }
            if map != Some(s.init) {
                let _ = writeln!(m, "#EXT-X-MAP:URI=\"{}\"", init_name(s.init));
                map = Some(s.init);
            }
            let _ = writeln!(m, "#EXT-X-PROGRAM-DATE-TIME:{}", date(s.date));
            if s.msn >= parts_from {
                for (index, p) in s.parts.iter().enumerate() {
                    let _ = write!(
                        m,
                        "#EXT-X-PART:DURATION={},URI=\"{}\"",
                        secs(p.duration),
                        part_name(s.msn, index as u32)
                    );
                    m.push_str(if p.independent { ",INDEPENDENT=YES\n" } else { "\n" });
                }
            }
            if let Some(d) = s.duration {
                let _ = writeln!(m, "#EXTINF:{},\n{}", secs(d), segment_name(s.msn));
            }
        }
        match self.hint() {
            Some((msn, index)) => {
                // A hint after a discontinuity carries no tag: tags belong to segments, and the
                // part's segment is listed with its EXT-X-DISCONTINUITY once it has a part.
                let _ = writeln!(m, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}\"", part_name(msn, index));
            }
            None => m.push_str("#EXT-X-ENDLIST\n"),
        }
        m
    }
}

#[cfg(test)]
mod tests;
