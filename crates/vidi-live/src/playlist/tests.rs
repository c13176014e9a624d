use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::fmp4::{Segmenter, SegmenterConfig};
use crate::testing::{self, Stream};

const MS: fn(u64) -> Duration = Duration::from_millis;

/// A scripted broadcast, applied with a wall clock that is the media clock plus the gaps.
struct Script {
    playlist: LivePlaylist,
    /// 2027-01-15T08:00:00Z + the media played so far + gaps.
    now: SystemTime,
}

impl Script {
    fn new(window: usize) -> Self {
        Script {
            playlist: LivePlaylist::new(MS(250), MS(1000), window),
            now: UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        }
    }
    fn init(&mut self, number: u32) {
        assert!(!self.playlist.apply_at(&Output::Init { number, bytes: Bytes::new() }, self.now));
    }
    fn part(&mut self, msn: u64, index: u32, ms: u64) {
        self.now += MS(ms);
        let part = Output::Part { msn, index, duration: MS(ms), independent: index == 0, bytes: Bytes::new() };
        assert!(self.playlist.apply_at(&part, self.now));
    }
    fn segment(&mut self, msn: u64, parts: &[u64], init: u32, discontinuity: bool) {
        for (index, ms) in parts.iter().enumerate() {
            self.part(msn, index as u32, *ms);
        }
        self.close(msn, parts.iter().sum(), init, discontinuity);
    }
    fn close(&mut self, msn: u64, ms: u64, init: u32, discontinuity: bool) {
        let segment = Output::Segment { msn, duration: MS(ms), init, discontinuity, bytes: Bytes::new() };
        assert!(self.playlist.apply_at(&segment, self.now));
    }
}

/// Four 1 s segments, a publisher that reconnects 5 s later (new init, discontinuity), a short
/// segment, then two parts of the next one.
fn scripted() -> Script {
    let mut s = Script::new(4);
    s.init(0);
    for msn in 0..4 {
        s.segment(msn, &[250, 250, 250, 250], 0, false);
    }
    s.now += Duration::from_secs(5);
    s.init(1);
    s.segment(4, &[250, 200], 1, true);
    s.part(5, 0, 250);
    s.part(5, 1, 250);
    s
}

const LIVE: &str = r#"#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:1
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.750
#EXT-X-PART-INF:PART-TARGET=0.250
#EXT-X-MEDIA-SEQUENCE:1
#EXT-X-MAP:URI="init0.mp4"
#EXT-X-PROGRAM-DATE-TIME:2027-01-15T08:00:01.000Z
#EXTINF:1.000,
1.m4s
#EXT-X-PROGRAM-DATE-TIME:2027-01-15T08:00:02.000Z
#EXT-X-PART:DURATION=0.250,URI="2.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.250,URI="2.1.m4s"
#EXT-X-PART:DURATION=0.250,URI="2.2.m4s"
#EXT-X-PART:DURATION=0.250,URI="2.3.m4s"
#EXTINF:1.000,
2.m4s
#EXT-X-PROGRAM-DATE-TIME:2027-01-15T08:00:03.000Z
#EXT-X-PART:DURATION=0.250,URI="3.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.250,URI="3.1.m4s"
#EXT-X-PART:DURATION=0.250,URI="3.2.m4s"
#EXT-X-PART:DURATION=0.250,URI="3.3.m4s"
#EXTINF:1.000,
3.m4s
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI="init1.mp4"
#EXT-X-PROGRAM-DATE-TIME:2027-01-15T08:00:09.000Z
#EXT-X-PART:DURATION=0.250,URI="4.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.200,URI="4.1.m4s"
#EXTINF:0.450,
4.m4s
#EXT-X-PROGRAM-DATE-TIME:2027-01-15T08:00:09.450Z
#EXT-X-PART:DURATION=0.250,URI="5.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.250,URI="5.1.m4s"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="5.2.m4s"
"#;

const ENDED: &str = r#"#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:1
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.750
#EXT-X-PART-INF:PART-TARGET=0.250
#EXT-X-MEDIA-SEQUENCE:2
#EXT-X-MAP:URI="init0.mp4"
#EXT-X-PROGRAM-DATE-TIME:2027-01-15T08:00:02.000Z
#EXT-X-PART:DURATION=0.250,URI="2.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.250,URI="2.1.m4s"
#EXT-X-PART:DURATION=0.250,URI="2.2.m4s"
#EXT-X-PART:DURATION=0.250,URI="2.3.m4s"
#EXTINF:1.000,
2.m4s
#EXT-X-PROGRAM-DATE-TIME:2027-01-15T08:00:03.000Z
#EXT-X-PART:DURATION=0.250,URI="3.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.250,URI="3.1.m4s"
#EXT-X-PART:DURATION=0.250,URI="3.2.m4s"
#EXT-X-PART:DURATION=0.250,URI="3.3.m4s"
#EXTINF:1.000,
3.m4s
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI="init1.mp4"
#EXT-X-PROGRAM-DATE-TIME:2027-01-15T08:00:09.000Z
#EXT-X-PART:DURATION=0.250,URI="4.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.200,URI="4.1.m4s"
#EXTINF:0.450,
4.m4s
#EXT-X-PROGRAM-DATE-TIME:2027-01-15T08:00:09.450Z
#EXT-X-PART:DURATION=0.250,URI="5.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.250,URI="5.1.m4s"
#EXTINF:0.500,
5.m4s
#EXT-X-ENDLIST
"#;

#[test]
fn golden_live_then_ended() {
    let mut s = scripted();
    assert_eq!(s.playlist.render(), LIVE);
    s.close(5, 500, 1, false);
    s.playlist.end();
    assert_eq!(s.playlist.render(), ENDED);
}

#[test]
fn the_window_slides_past_a_discontinuity() {
    let mut s = scripted();
    s.close(5, 500, 1, false);
    for msn in 6..9 {
        s.segment(msn, &[250, 250, 250, 250], 1, false);
    }
    let text = s.playlist.render();
    assert!(
        text.contains("#EXT-X-MEDIA-SEQUENCE:5\n#EXT-X-DISCONTINUITY-SEQUENCE:1\n#EXT-X-MAP:URI=\"init1.mp4\"\n"),
        "{text}"
    );
    assert!(!text.contains("#EXT-X-DISCONTINUITY\n"), "{text}");
    // Parts more than 3 target durations (3 s) from the end are no longer listed.
    assert!(!text.contains("5.0.m4s") && text.contains("6.0.m4s") && text.contains("\n5.m4s\n"), "{text}");
}

#[test]
fn blocking_reload_table() {
    let s = scripted(); // last: segment 5 with parts 0 and 1; PART-TARGET 0.25 → limit 12
    let p = &s.playlist;
    assert_eq!(p.advance_part_limit(), 12);
    let bad = |r: Reload| matches!(r, Reload::Bad(_));
    let table: &[(Option<u64>, Option<u32>, &str)] = &[
        (None, None, "now"),
        (None, Some(1), "bad"),
        (Some(0), None, "now"),    // left the window
        (Some(4), None, "now"),    // complete
        (Some(4), Some(1), "now"), // listed part
        (Some(4), Some(2), "now"), // past 4's last part: 5.0, which exists
        (Some(5), Some(1), "now"),
        (Some(5), Some(2), "wait"), // the hinted part
        (Some(5), None, "wait"),    // segment 5 is not complete
        (Some(6), None, "wait"),
        (Some(7), Some(0), "wait"),  // last + 2
        (Some(8), None, "bad"),      // last + 3
        (Some(5), Some(13), "wait"), // last part 1 + 12
        (Some(5), Some(14), "bad"),
        (Some(6), Some(12), "wait"),
        (Some(6), Some(13), "bad"),
    ];
    for (msn, part, want) in table {
        let got = p.reload(*msn, *part);
        let name = if bad(got.clone()) {
            "bad"
        } else if got == Reload::Now {
            "now"
        } else {
            "wait"
        };
        assert_eq!(name, *want, "_HLS_msn={msn:?} _HLS_part={part:?}: {got:?}");
    }
}

#[test]
fn a_future_msn_waits_then_resolves() {
    let mut s = scripted();
    assert_eq!(s.playlist.reload(Some(6), Some(0)), Reload::Wait);
    assert_eq!(s.playlist.reload(Some(5), Some(5)), Reload::Wait);
    s.part(5, 2, 250);
    assert_eq!(s.playlist.reload(Some(6), Some(0)), Reload::Wait);
    s.part(5, 3, 250);
    s.close(5, 1000, 1, false);
    // 5.5 is past segment 5's last part: it means 6.0, not there yet.
    assert_eq!(s.playlist.reload(Some(5), Some(5)), Reload::Wait);
    s.part(6, 0, 250);
    assert_eq!(s.playlist.reload(Some(6), Some(0)), Reload::Now);
    assert_eq!(s.playlist.reload(Some(5), Some(5)), Reload::Now);
    assert_eq!(s.playlist.reload(Some(5), None), Reload::Now);
}

#[test]
fn directives_are_ignored_after_endlist_and_the_block_limit() {
    let mut s = scripted();
    assert_eq!(s.playlist.block_limit(), Duration::from_secs(3));
    s.playlist.end();
    for (msn, part) in [(None, Some(3)), (Some(100), Some(99)), (Some(6), None)] {
        assert_eq!(s.playlist.reload(msn, part), Reload::Now);
    }
    let p = LivePlaylist::new(MS(333), MS(1500), 3);
    assert_eq!((p.block_limit(), p.advance_part_limit()), (Duration::from_secs(6), 9));
    assert_eq!(LivePlaylist::new(MS(1000), MS(4000), 3).advance_part_limit(), 3);
}

#[test]
fn preload_hints_while_live_only() {
    let mut s = scripted();
    let p = &s.playlist;
    assert_eq!(p.hint(), Some((5, 2)));
    for (name, want) in [
        ("5.2.m4s", Resource::Hinted),
        ("5.1.m4s", Resource::Available),
        ("5.3.m4s", Resource::Unknown),
        ("4.m4s", Resource::Available),
        ("5.m4s", Resource::Unknown),
        ("0.m4s", Resource::Unknown),
        ("init1.mp4", Resource::Available),
        ("init2.mp4", Resource::Unknown),
        ("x.m4s", Resource::Unknown),
        ("5.1.2.m4s", Resource::Unknown),
    ] {
        assert_eq!(p.resource(name), want, "{name}");
    }
    // At a segment boundary the hint is the next segment's first part.
    s.part(5, 2, 250);
    s.part(5, 3, 250);
    s.close(5, 1000, 1, false);
    assert!(s.playlist.render().ends_with("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"6.0.m4s\"\n"));
    assert_eq!(s.playlist.resource("6.0.m4s"), Resource::Hinted);
    s.playlist.end();
    let text = s.playlist.render();
    assert!(!text.contains("PRELOAD-HINT") && text.ends_with("#EXT-X-ENDLIST\n"), "{text}");
    assert_eq!(s.playlist.resource("6.0.m4s"), Resource::Unknown);
    // Before anything was cut, the hint is the first part.
    let fresh = LivePlaylist::new(MS(250), MS(1000), 3).with_first_msn(7);
    assert!(fresh.render().ends_with("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"7.0.m4s\"\n"));
}

/// A listed segment: msn, EXTINF (`None` for the open one), parts as (duration, independent).
type ListedSegment = (u64, Option<f64>, Vec<(f64, bool)>);

/// One rendered playlist, parsed back for the invariants.
#[derive(Debug, Default)]
struct Parsed {
    target: u64,
    part_target: f64,
    hold_back: f64,
    media_sequence: u64,
    segments: Vec<ListedSegment>,
    hint: bool,
    ended: bool,
}

fn parse(text: &str) -> Parsed {
    let mut p = Parsed::default();
    let mut parts = Vec::new();
    let mut extinf = None;
    let attr = |line: &str, key: &str| -> f64 {
        let at = line.find(key).unwrap_or_else(|| panic!("{key} in {line}")) + key.len();
        line[at..].split(',').next().unwrap().parse().unwrap()
    };
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
            p.target = v.parse().unwrap();
        } else if line.starts_with("#EXT-X-SERVER-CONTROL:") {
            p.hold_back = attr(line, "PART-HOLD-BACK=");
        } else if line.starts_with("#EXT-X-PART-INF:") {
            p.part_target = attr(line, "PART-TARGET=");
        } else if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            p.media_sequence = v.parse().unwrap();
        } else if line.starts_with("#EXT-X-PART:") {
            parts.push((attr(line, "DURATION="), line.ends_with(",INDEPENDENT=YES")));
        } else if let Some(v) = line.strip_prefix("#EXTINF:") {
            extinf = Some(v.trim_end_matches(',').parse::<f64>().unwrap());
        } else if !line.starts_with('#') {
            let msn = line.trim_end_matches(".m4s").parse().unwrap();
            p.segments.push((msn, extinf.take(), std::mem::take(&mut parts)));
        } else if line.starts_with("#EXT-X-PRELOAD-HINT:") {
            p.hint = true;
        } else if line == "#EXT-X-ENDLIST" {
            p.ended = true;
        }
    }
    if !parts.is_empty() {
        let msn = p.segments.last().map_or(p.media_sequence, |s| s.0 + 1);
        p.segments.push((msn, None, parts));
    }
    p
}

fn check(text: &str, previous: Option<&Parsed>) -> Result<Parsed, TestCaseError> {
    let p = parse(text);
    let pt = p.part_target;
    prop_assert!(p.hold_back >= 3.0 * pt - 1e-9, "PART-HOLD-BACK {} < 3 × {pt}", p.hold_back);
    prop_assert!(p.hint != p.ended);
    for (i, (msn, extinf, parts)) in p.segments.iter().enumerate() {
        prop_assert_eq!(*msn, p.media_sequence + i as u64, "MSNs increase by one");
        if let Some(d) = extinf {
            prop_assert!(p.target >= d.round() as u64, "TARGETDURATION {} < EXTINF {d}", p.target);
        }
        for (j, (d, independent)) in parts.iter().enumerate() {
            prop_assert!(*d <= pt + 1e-9, "part {msn}.{j} of {d} > PART-TARGET {pt}");
            // A segment's last part may be short; so may the open segment's latest (it may
            // turn out to be its last).
            let last = j + 1 == parts.len();
            if !last && !independent {
                prop_assert!(*d >= 0.85 * pt - 1e-9, "part {msn}.{j} of {d} < 85% of {pt}\n{text}");
            }
        }
        if let (Some(d), false) = (extinf, parts.is_empty()) {
            let sum: f64 = parts.iter().map(|p| p.0).sum();
            prop_assert!((sum - d).abs() < 1e-6, "parts of {msn} sum to {sum}, EXTINF {d}");
        }
    }
    if let Some(prev) = previous {
        prop_assert_eq!(prev.part_target, pt, "PART-TARGET never changes");
        prop_assert!(p.media_sequence >= prev.media_sequence);
    }
    Ok(p)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// A real segmenter's output, for frame rates, GOPs and targets a publisher may choose,
    /// through the playlist: every version rendered keeps the rules. The frame duration is at
    /// most 15% of PART-TARGET or divides it (30 fps and 200 ms): otherwise no whole number of
    /// frames fits between 85% and 100% of the target.
    #[test]
    fn playlist_invariants(
        fps in prop::sample::select(vec![24.0, 25.0, 29.97, 30.0, 50.0, 59.94, 60.0]),
        gop_secs in 1u32..=4,
        part_ms in 200u64..=333,
        segment_ms in 1000u64..=4000,
        audio in any::<bool>(),
        video in any::<bool>(),
        bframes in any::<bool>(),
        reconnect in any::<bool>(),
    ) {
        let frame_ms = 1000.0 / fps;
        let divides = ((part_ms as f64 / frame_ms) - (part_ms as f64 / frame_ms).round()).abs() < 1e-9;
        prop_assume!(!video || frame_ms <= 0.15 * part_ms as f64 || divides);
        prop_assume!(audio || video);
        let stream = Stream {
            fps,
            gop: (gop_secs as f64 * fps).round() as u32,
            video,
            audio_rate: if audio { 48000 } else { 0 },
            millis: 7000,
            start: 0,
            bframes,
        };
        let config = SegmenterConfig { part_target: MS(part_ms), segment_target: MS(segment_ms), first_msn: 0 };
        let mut segmenter = Segmenter::new(config);
        let mut playlist = LivePlaylist::new(config.part_target, config.segment_target, 4);
        let mut previous: Option<Parsed> = None;
        let mut events = testing::events(stream);
        if reconnect {
            events.extend(testing::events(Stream { millis: 3000, ..stream }));
        }
        let restart = testing::events(stream).len();
        for (i, event) in events.into_iter().enumerate() {
            if reconnect && i == restart {
                for output in segmenter.flush() {
                    playlist.apply(&output);
                }
                segmenter.discontinuity();
            }
            for output in segmenter.push(event) {
                if playlist.apply(&output) {
                    previous = Some(check(&playlist.render(), previous.as_ref())?);
                }
            }
        }
        for output in segmenter.flush() {
            playlist.apply(&output);
        }
        playlist.end();
        let last = check(&playlist.render(), previous.as_ref())?;
        prop_assert!(last.ended && !last.segments.is_empty());
    }
}
