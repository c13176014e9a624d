//! The HLS ladder, as api.video's: H.264/AAC renditions named after their short side (240p …
//! 2160p), every one from 240p up to the source's own quality, never upscaled.

use crate::probe::Probe;

/// One rendition of the ladder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendition {
    /// `240p` … `2160p`: exactly the 2023 quality enum.
    pub name: &'static str,
    pub width: u32,
    pub height: u32,
    pub video_kbps: u32,
    /// H.264 level (×10) chosen for the frame size; it goes into the CODECS attribute.
    pub level: u32,
}

impl Rendition {
    /// The RFC 6381 codec string of this rendition with AAC-LC audio.
    pub fn codecs(&self, audio: bool) -> String {
        let video = format!("avc1.6400{:02x}", self.level);
        if audio { format!("{video},mp4a.40.2") } else { video }
    }
}

pub const AUDIO_KBPS: u32 = 128;

/// (name, short side, video kbit/s, level×10)
const RUNGS: [(&str, u32, u32, u32); 6] = [
    ("240p", 240, 400, 30),
    ("360p", 360, 800, 30),
    ("480p", 480, 1400, 31),
    ("720p", 720, 2800, 31),
    ("1080p", 1080, 5000, 40),
    ("2160p", 2160, 14000, 51),
];

fn even(x: f64) -> u32 {
    ((x / 2.0).round() as u32 * 2).max(2)
}

/// The renditions for a source of display size `w`×`h` (after rotation). A source smaller than
/// 240p still gets a 240p rendition at its own size.
pub fn ladder(w: u32, h: u32) -> Vec<Rendition> {
    let (w, h) = (w.max(2), h.max(2));
    let short = w.min(h);
    let mut out = Vec::new();
    for (i, (name, side, kbps, level)) in RUNGS.iter().enumerate() {
        // A rung is included when the source reaches it (with 10 % tolerance for odd sizes such
        // as 1920×1036); the first rung always is.
        if i > 0 && (short as f64) < *side as f64 * 0.9 {
            break;
        }
        let target = (*side).min(short) as f64;
        let scale = target / short as f64;
        out.push(Rendition {
            name,
            width: even(w as f64 * scale),
            height: even(h as f64 * scale),
            video_kbps: *kbps,
            level: *level,
        });
    }
    out
}

/// The ladder for a probed source; `None` when it has no picture.
pub fn for_probe(p: &Probe) -> Option<Vec<Rendition>> {
    let v = p.video.as_ref()?;
    let (w, h) = v.display_size();
    Some(ladder(w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(r: &[Rendition]) -> Vec<&str> {
        r.iter().map(|r| r.name).collect()
    }

    #[test]
    fn landscape_portrait_small_and_odd() {
        let l = ladder(1920, 1080);
        assert_eq!(names(&l), ["240p", "360p", "480p", "720p", "1080p"]);
        assert_eq!((l[0].width, l[0].height), (426, 240));
        assert_eq!((l[4].width, l[4].height), (1920, 1080));
        let p = ladder(720, 1280);
        assert_eq!(names(&p), ["240p", "360p", "480p", "720p"]);
        assert_eq!((p[3].width, p[3].height), (720, 1280));
        assert_eq!((p[0].width, p[0].height), (240, 426));
        let tiny = ladder(160, 120);
        assert_eq!(names(&tiny), ["240p"]);
        assert_eq!((tiny[0].width, tiny[0].height), (160, 120));
        assert_eq!(names(&ladder(3840, 2160)).last(), Some(&"2160p"));
        assert_eq!(names(&ladder(1920, 1036)).last(), Some(&"1080p"));
        assert!(ladder(1279, 721).iter().all(|r| r.width % 2 == 0 && r.height % 2 == 0));
    }

    #[test]
    fn codec_strings() {
        let r = &ladder(1920, 1080)[4];
        assert_eq!(r.codecs(true), "avc1.640028,mp4a.40.2");
        assert_eq!(r.codecs(false), "avc1.640028");
    }
}
