use std::time::Duration;

use mp4_atom::{Decode, Ftyp, Moof, Moov};

use super::*;
use crate::testing::{self, Stream};

fn config(part_ms: u64, segment_ms: u64) -> SegmenterConfig {
    SegmenterConfig {
        part_target: Duration::from_millis(part_ms),
        segment_target: Duration::from_millis(segment_ms),
        first_msn: 0,
    }
}

fn run(segmenter: &mut Segmenter, events: Vec<MediaEvent>) -> Vec<Output> {
    let mut out: Vec<Output> = events.into_iter().flat_map(|e| segmenter.push(e)).collect();
    out.extend(segmenter.flush());
    out
}

const AV: Stream = Stream { fps: 30.0, gop: 30, video: true, audio_rate: 44100, millis: 3000, start: 0, bframes: true };

/// Each traf of a fragment: (track id, tfdt, sample count, data bytes).
fn trafs(fragment: &[u8]) -> Vec<(u32, u64, usize, u32)> {
    let mut buf = fragment;
    let moof = Moof::decode(&mut buf).expect("a moof");
    let mdat_size = u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
    assert_eq!(&buf[4..8], b"mdat");
    assert_eq!(mdat_size, buf.len(), "one mdat holding every sample");
    moof.traf
        .iter()
        .map(|t| {
            let trun = &t.trun[0];
            let bytes = trun.samples.iter().map(|s| s.size.unwrap()).sum();
            (t.tfhd.track_id, t.tfdt.as_ref().unwrap().base_media_decode_time, trun.samples.len(), bytes)
        })
        .collect()
}

#[test]
fn init_declares_both_tracks_and_parts_hold_every_frame() {
    let events = testing::events(AV);
    let frames = events.iter().filter(|e| e.dts().is_some()).count();
    let out = run(&mut Segmenter::new(config(200, 1000)), events);
    let Output::Init { number: 0, bytes } = &out[0] else { panic!("{:?}", out[0]) };
    let mut buf = bytes.as_ref();
    Ftyp::decode(&mut buf).unwrap();
    let moov = Moov::decode(&mut buf).unwrap();
    let scales: Vec<_> = moov.trak.iter().map(|t| (t.tkhd.track_id, t.mdia.mdhd.timescale)).collect();
    assert_eq!(scales, [(VIDEO_TRACK, 90_000), (AUDIO_TRACK, 44_100)]);
    assert_eq!((moov.trak[0].tkhd.width.integer(), moov.trak[0].tkhd.height.integer()), (1280, 720));

    let samples: usize = out
        .iter()
        .filter_map(|o| match o {
            Output::Part { bytes, .. } => Some(trafs(bytes).iter().map(|t| t.2).sum::<usize>()),
            _ => None,
        })
        .sum();
    assert_eq!(samples, frames, "every frame in exactly one part");
}

#[test]
fn parts_and_segments_follow_the_targets() {
    let out = run(&mut Segmenter::new(config(200, 1000)), testing::events(AV));
    let mut parts: Vec<(u64, u32, Duration, bool, Bytes)> = Vec::new();
    let mut segments = 0;
    for o in &out {
        match o {
            Output::Init { .. } => {}
            Output::Part { msn, index, duration, independent, bytes } => {
                parts.push((*msn, *index, *duration, *independent, bytes.clone()))
            }
            Output::Segment { msn, duration, init, discontinuity, bytes } => {
                segments += 1;
                let own: Vec<_> = parts.iter().filter(|p| p.0 == *msn).collect();
                assert_eq!(own.iter().map(|p| p.1).collect::<Vec<_>>(), (0..own.len() as u32).collect::<Vec<_>>());
                assert!(own[0].3, "segment {msn} starts with a keyframe");
                let concat: Vec<u8> = own.iter().flat_map(|p| p.4.to_vec()).collect();
                assert_eq!(bytes.as_ref(), concat.as_slice(), "a segment is its parts");
                let sum: Duration = own.iter().map(|p| p.2).sum();
                assert_eq!(sum, *duration);
                for p in &own[..own.len() - 1] {
                    assert!(p.2 <= Duration::from_millis(200) && p.2 >= Duration::from_millis(170), "{:?}", p.2);
                }
                assert!(own.last().unwrap().2 <= Duration::from_millis(200));
                assert_eq!((*init, *discontinuity), (0, false));
                // GOP of 1 s, target 1 s: every segment is one GOP.
                if *msn < 2 {
                    assert_eq!(*duration, Duration::from_millis(1000));
                }
            }
        }
    }
    assert_eq!(segments, 3);
}

#[test]
fn audio_only_and_video_only_streams() {
    let audio = Stream { video: false, ..AV };
    let out = run(&mut Segmenter::new(config(250, 2000)), testing::events(audio));
    // (duration, independent, bytes, last of its segment)
    let mut parts = Vec::new();
    for (i, o) in out.iter().enumerate() {
        if let Output::Part { duration, independent, bytes, .. } = o {
            let last = matches!(out.get(i + 1), Some(Output::Segment { .. }));
            parts.push((*duration, *independent, bytes.clone(), last));
        }
    }
    assert!(parts.iter().all(|p| p.1), "audio parts are independent");
    assert!(parts.iter().all(|p| trafs(&p.2).iter().all(|t| t.0 == AUDIO_TRACK)));
    for p in &parts {
        assert!(p.0 <= Duration::from_millis(250), "{:?}", p.0);
        assert!(p.3 || p.0 >= Duration::from_millis(212), "{:?}", p.0);
    }
    assert_eq!(out.iter().filter(|o| matches!(o, Output::Segment { .. })).count(), 2);

    let video = Stream { audio_rate: 0, ..AV };
    let out = run(&mut Segmenter::new(config(200, 1000)), testing::events(video));
    assert!(matches!(out[0], Output::Init { .. }));
    assert_eq!(out.iter().filter(|o| matches!(o, Output::Segment { .. })).count(), 3);
}

#[test]
fn frames_before_the_first_keyframe_are_dropped() {
    let mut events = testing::events(AV);
    // Remove the first keyframe: the stream starts mid-GOP, at the second second.
    let first_key = events.iter().position(|e| matches!(e, MediaEvent::Video { keyframe: true, .. })).unwrap();
    events.remove(first_key);
    let out = run(&mut Segmenter::new(config(200, 1000)), events);
    let Some(Output::Part { bytes, independent, .. }) = out.iter().find(|o| matches!(o, Output::Part { .. })) else {
        panic!()
    };
    assert!(independent);
    assert_eq!(trafs(bytes)[0].1, 90_000, "starts at the keyframe at 1 s");
}

#[test]
fn a_reconnect_continues_the_timeline_with_a_discontinuity() {
    let mut s = Segmenter::new(config(200, 1000));
    let first = run(&mut s, testing::events(AV));
    s.discontinuity();
    // The new publisher's clock restarts at 0.
    let second = run(&mut s, testing::events(AV));
    let last_first: u64 =
        first.iter().filter_map(|o| if let Output::Segment { msn, .. } = o { Some(*msn) } else { None }).max().unwrap();
    assert!(matches!(second[0], Output::Init { number: 1, .. }), "a new init announces the discontinuity");
    let Some(Output::Segment { msn, discontinuity, init, .. }) =
        second.iter().find(|o| matches!(o, Output::Segment { .. }))
    else {
        panic!()
    };
    assert_eq!((*msn, *discontinuity, *init), (last_first + 1, true, 1));
    let Some(Output::Part { bytes, .. }) = second.iter().find(|o| matches!(o, Output::Part { .. })) else { panic!() };
    let video_tfdt = trafs(bytes).iter().find(|t| t.0 == VIDEO_TRACK).unwrap().1;
    // The first publisher's video ended at 3 s (90 frames of 33.3 ms).
    assert_eq!(video_tfdt, 3 * 90_000, "the new publisher's 0 lands where the timeline ended");
}

#[test]
fn a_changed_configuration_starts_a_new_init_and_segment() {
    let mut s = Segmenter::new(config(200, 1000));
    let mut events = testing::events(AV);
    let at = events.len() / 2;
    let mut other = testing::audio_config(48000);
    other.asc = Bytes::from_static(&[0x11, 0x90]);
    events.insert(at, MediaEvent::AudioConfig(other));
    // Repeated identical headers change nothing.
    events.insert(at / 2, MediaEvent::VideoConfig(testing::video_config()));
    let out = run(&mut s, events);
    let inits: Vec<u32> =
        out.iter().filter_map(|o| if let Output::Init { number, .. } = o { Some(*number) } else { None }).collect();
    assert_eq!(inits, [0, 1]);
    let flagged: Vec<(u32, bool)> = out
        .iter()
        .filter_map(|o| {
            if let Output::Segment { init, discontinuity, .. } = o { Some((*init, *discontinuity)) } else { None }
        })
        .collect();
    assert!(flagged.contains(&(1, true)) && flagged[0] == (0, false), "{flagged:?}");
}

#[test]
fn first_msn_and_late_joiners() {
    let mut s = Segmenter::new(SegmenterConfig { first_msn: 41, ..config(200, 1000) });
    assert!(s.init_bytes().is_none() && s.codecs().is_empty());
    let out = run(&mut s, testing::events(AV));
    let first = out.iter().find_map(|o| if let Output::Segment { msn, .. } = o { Some(*msn) } else { None });
    assert_eq!(first, Some(41));
    assert_eq!(s.next_msn(), 44);
    assert_eq!(s.codecs(), "avc1.64001f,mp4a.40.2");
    assert_eq!(s.video_config().map(|v| (v.width, v.height)), Some((1280, 720)));
    let Output::Init { bytes, .. } = &out[0] else { panic!() };
    assert_eq!(s.init_bytes(), Some((0, bytes.clone())));
}
