//! Sources with sound and no picture (podcasts, music): packaged as one AAC rendition in HLS, the
//! way platforms that take audio do, instead of being refused. Its folder is `audio/` beside where
//! the video renditions would be, so delivery serves it like any rendition; the thumbnail is a
//! picture of the waveform.

use std::path::Path;

use vidi_core::clip::Window;

use crate::ladder::AUDIO_KBPS;
use crate::{FFMPEG_PROGRESS, FFMPEG_QUIET, Media, ToolError};

/// The rendition folder (and playlist NAME) of an audio-only video.
pub const AUDIO_RENDITION: &str = "audio";

/// The ffmpeg arguments for the audio rendition into `out/audio/index.m3u8`, a growing playlist
/// published segment by segment like the video ladder; of the part of the source `window` keeps.
pub fn hls_args(input: &str, out: &Path, window: Window) -> Vec<String> {
    let dir = out.join(AUDIO_RENDITION);
    let mut a: Vec<String> = FFMPEG_QUIET.iter().chain(&FFMPEG_PROGRESS).map(|s| s.to_string()).collect();
    if window.start_s > 0.0 {
        a.extend(["-ss".into(), format!("{:.3}", window.start_s)]);
    }
    if let Some(d) = window.duration_s {
        a.extend(["-t".into(), format!("{d:.3}")]);
    }
    a.extend(crate::input::source(input));
    a.extend(["-map".into(), "0:a:0".into(), "-vn".into()]);
    a.extend(["-c:a".into(), "aac".into(), "-b:a".into(), format!("{AUDIO_KBPS}k"), "-ac".into(), "2".into()]);
    a.extend(
        [
            "-f",
            "hls",
            "-hls_time",
            "2",
            "-hls_playlist_type",
            "event",
            "-hls_flags",
            "independent_segments+temp_file",
            "-hls_segment_filename",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    a.push(dir.join("seg_%05d.ts").to_string_lossy().into_owned());
    a.push(dir.join("index.m3u8").to_string_lossy().into_owned());
    a
}

/// A 1280×720 JPEG of the waveform of the sound `window` keeps: the thumbnail of a video with no
/// picture.
pub async fn waveform(media: &Media, input: &str, window: Window, out: &Path) -> Result<(), ToolError> {
    let filter = "[0:a:0]aformat=channel_layouts=mono,showwavespic=s=1280x720:colors=0x5b8def,format=yuvj420p[w]";
    let args = crate::input::source(input);
    let (start, length) = (format!("{:.3}", window.start_s), window.duration_s.map(|d| format!("{d:.3}")));
    let mut before = vec!["-ss", start.as_str()];
    if let Some(t) = &length {
        before.extend(["-t", t.as_str()]);
    }
    crate::encode::jpeg(media, &before, args, input, &["-filter_complex", filter, "-map", "[w]"], out).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_rendition_args() {
        let args = hls_args("in.mp3", Path::new("/w"), Window::WHOLE);
        assert!(args.windows(2).any(|w| w == ["-map", "0:a:0"]));
        assert!(!args.iter().any(|a| a == "-ss"));
        let clip = hls_args("in.mp3", Path::new("/w"), Window { start_s: 1.0, duration_s: Some(2.0) });
        assert!(clip.windows(4).any(|w| w == ["-ss", "1.000", "-t", "2.000"]));
        assert_eq!(args.last().map(String::as_str), Some("/w/audio/index.m3u8"));
    }
}
