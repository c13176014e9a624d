//! `clip` on `POST /videos` (contract §3, op 5): the part of the source a video is made of. The
//! timecodes are kept as the user wrote them, because `hh:mm:ss:frame` means a time only once the
//! source's frame rate is known; the encoder turns them into a [`Window`] of the probed source and
//! applies it to every output (ladder, MP4, thumbnail), and the status reports its length.

use crate::probe::Probe;

/// The frame rate `hh:mm:ss:frame` timecodes are read at when the source's is unknown.
const DEFAULT_FPS: f64 = 25.0;

/// A video's clip: either end may be absent (from the start, to the end).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Clip {
    pub start: Option<String>,
    pub end: Option<String>,
}

/// What a clip is of one source: where it starts, and how long it lasts (`None`: to the end).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Window {
    pub start_s: f64,
    pub duration_s: Option<f64>,
}

impl Window {
    pub const WHOLE: Window = Window { start_s: 0.0, duration_s: None };

    /// The length of the output, given the source's.
    pub fn length(&self, source_s: Option<f64>) -> Option<f64> {
        let rest = source_s.map(|d| (d - self.start_s).max(0.0));
        match (self.duration_s, rest) {
            (Some(c), Some(r)) => Some(c.min(r)),
            (c, r) => c.or(r),
        }
    }
}

/// `hh:mm:ss(.ms|:frame)` or plain seconds (contract §3, op 5).
pub fn valid_timecode(s: &str) -> bool {
    let digits =
        |p: &str, min: usize, max: usize| (min..=max).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit());
    if digits(s, 1, 7) {
        return true;
    }
    let parts: Vec<&str> = s.split(':').collect();
    let (h, m, sec, frame) = match parts.as_slice() {
        [h, m, s] => (*h, *m, *s, None),
        [h, m, s, f] => (*h, *m, *s, Some(*f)),
        _ => return false,
    };
    let (sec, ms) = sec.split_once('.').map_or((sec, None), |(a, b)| (a, Some(b)));
    digits(h, 2, 3)
        && digits(m, 2, 2)
        && m < "60"
        && digits(sec, 2, 2)
        && sec < "60"
        && ms.is_none_or(|ms| digits(ms, 1, 3))
        && frame.is_none_or(|f| ms.is_none() && digits(f, 1, 2))
}

/// Seconds for a valid timecode: `124`, `hh:mm:ss(.ms)` or `hh:mm:ss:frame` at `fps`.
pub fn seconds(tc: &str, fps: f64) -> f64 {
    let parts: Vec<&str> = tc.split(':').collect();
    let n = |s: &str| s.parse::<f64>().unwrap_or(0.0);
    match parts.as_slice() {
        [s] => n(s),
        [h, m, s] => n(h) * 3600.0 + n(m) * 60.0 + n(s),
        [h, m, s, f] => n(h) * 3600.0 + n(m) * 60.0 + n(s) + n(f) / fps.max(1.0),
        _ => 0.0,
    }
}

/// The frame rate a probe says timecodes' frames count in.
pub fn fps_of(probe: Option<&Probe>) -> f64 {
    probe.and_then(|p| p.video.as_ref()).and_then(|v| v.framerate).filter(|f| *f > 0.0).unwrap_or(DEFAULT_FPS)
}

impl Clip {
    /// Whether it ends before (or where) it starts, read at `fps` (any, before the source is known:
    /// a frame number is below the rate, so only equal seconds could compare differently).
    pub fn ends_before_start(&self, fps: f64) -> bool {
        match (&self.start, &self.end) {
            (Some(s), Some(e)) => seconds(e, fps) <= seconds(s, fps),
            (None, Some(e)) => seconds(e, fps) <= 0.0,
            _ => false,
        }
    }

    /// The window of `probe`'s source this clip keeps, or why there is none: a clip that starts
    /// at or past the source's end leaves nothing to encode.
    pub fn window(&self, probe: &Probe) -> Result<Window, String> {
        let fps = fps_of(Some(probe));
        let start_s = self.start.as_deref().map_or(0.0, |s| seconds(s, fps));
        let end_s = self.end.as_deref().map(|e| seconds(e, fps));
        if let Some(d) = probe.duration_s
            && start_s >= d
        {
            return Err(format!(
                "clip[startTimecode] ({start_s:.3} s) is at or past the end of the source ({d:.3} s): nothing to encode"
            ));
        }
        let duration_s = match end_s {
            Some(e) if e <= start_s => {
                return Err(format!("clip[endTimecode] ({e:.3} s) is not after clip[startTimecode] ({start_s:.3} s)"));
            }
            // An end past the source's is the source's end.
            Some(e) if probe.duration_s.is_none_or(|d| e < d) => Some(e - start_s),
            _ => None,
        };
        Ok(Window { start_s, duration_s })
    }
}

/// The window of a video's source: all of it without a clip.
pub fn window_of(clip: Option<&Clip>, probe: &Probe) -> Result<Window, String> {
    clip.map_or(Ok(Window::WHOLE), |c| c.window(probe))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(d: f64) -> Probe {
        Probe { format: "mp4".into(), duration_s: Some(d), bitrate_kbps: None, video: None, audio: None }
    }

    fn clip(s: Option<&str>, e: Option<&str>) -> Clip {
        Clip { start: s.map(str::to_string), end: e.map(str::to_string) }
    }

    #[test]
    fn timecodes() {
        for ok in ["00:01:00.000", "00:00:10:12", "124", "100:00:00", "00:00:05.5"] {
            assert!(valid_timecode(ok), "{ok}");
        }
        for bad in ["1:00:00", "00:61:00", "00:00:00.1234", "abc", "", "00:00:00.1:2"] {
            assert!(!valid_timecode(bad), "{bad}");
        }
        assert_eq!(seconds("00:01:02.5", 25.0), 62.5);
        assert_eq!(seconds("00:00:01:10", 20.0), 1.5);
    }

    #[test]
    fn windows_of_a_source() {
        let c = clip(Some("00:00:01"), Some("00:00:03"));
        assert_eq!(c.window(&probe(4.0)), Ok(Window { start_s: 1.0, duration_s: Some(2.0) }));
        assert_eq!(c.window(&probe(4.0)).unwrap().length(Some(4.0)), Some(2.0));
        // An end past the source's end is the end.
        let w = clip(Some("2"), Some("60")).window(&probe(4.0)).unwrap();
        assert_eq!((w.duration_s, w.length(Some(4.0))), (None, Some(2.0)));
        assert_eq!(clip(None, Some("3")).window(&probe(4.0)).unwrap(), Window { start_s: 0.0, duration_s: Some(3.0) });
        assert!(clip(Some("00:00:05"), None).window(&probe(4.0)).unwrap_err().contains("clip[startTimecode]"));
        assert!(!c.ends_before_start(25.0) && clip(Some("3"), Some("1")).ends_before_start(25.0));
        assert!(clip(Some("3"), Some("3")).ends_before_start(25.0), "an empty clip");
        assert_eq!(Window::WHOLE.length(Some(4.0)), Some(4.0));
    }
}
