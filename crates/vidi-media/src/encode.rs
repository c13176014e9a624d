//! The encoder: one ffmpeg process decodes the source once and writes every rendition of the
//! ladder as a growing HLS playlist (`event` type, 2-second segments cut on aligned keyframes),
//! so a player can start after the first segment while the rest is still being encoded. The
//! master playlist is written by Vidi (exact BANDWIDTH, CODECS, RESOLUTION); the MP4 is a remux
//! of the top rendition; the thumbnail is one frame of the source.

use std::path::Path;

use crate::ladder::{AUDIO_KBPS, Rendition};
use crate::probe::Probe;
use crate::{Media, ToolError};

/// Segment length in seconds. Short segments give a fast first frame.
pub const SEGMENT_SECONDS: u32 = 2;
/// The first seconds are cut into half-second segments, so a player can start sooner.
const FAST_START: u32 = 2;

/// The ffmpeg arguments for the whole ladder into `out/<name>/index.m3u8`.
pub fn hls_args(input: &str, probe: &Probe, ladder: &[Rendition], out: &Path, preset: &str) -> Vec<String> {
    let fps = probe.video.as_ref().and_then(|v| v.framerate).filter(|f| *f > 0.0).unwrap_or(30.0).min(60.0).round();
    let gop = (fps as u32 * SEGMENT_SECONDS).max(1);
    let audio = probe.audio.is_some();
    let n = ladder.len();
    let mut a: Vec<String> =
        ["-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-progress", "pipe:1", "-nostats"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    a.extend(["-i".into(), input.into()]);
    // Decode once, convert once, then scale down in a cascade (1080p from the source, 720p from
    // 1080p, …): each scaler reads the smallest picture that still has enough detail. Constant
    // frame rate so VFR sources segment evenly.
    let mut filter = format!("[0:v]fps={fps},format=yuv420p[c{n}]");
    for (i, r) in ladder.iter().enumerate().rev() {
        let tail = if i > 0 { format!(",split=2[v{i}][c{i}]") } else { format!("[v{i}]") };
        filter.push_str(&format!(";[c{}]scale={}:{}:flags=bicubic,setsar=1{tail}", i + 1, r.width, r.height));
    }
    a.extend(["-filter_complex".into(), filter]);
    let mut map = Vec::new();
    for (i, r) in ladder.iter().enumerate() {
        a.extend(["-map".into(), format!("[v{i}]")]);
        a.extend([
            format!("-c:v:{i}"),
            "libx264".into(),
            format!("-preset:v:{i}"),
            preset.into(),
            format!("-profile:v:{i}"),
            "high".into(),
            format!("-level:v:{i}"),
            format!("{:.1}", r.level as f64 / 10.0),
            format!("-b:v:{i}"),
            format!("{}k", r.video_kbps),
            format!("-maxrate:v:{i}"),
            format!("{}k", r.video_kbps * 3 / 2),
            format!("-bufsize:v:{i}"),
            format!("{}k", r.video_kbps * 2),
        ]);
        if audio {
            a.extend(["-map".into(), "0:a:0".into()]);
            map.push(format!("v:{i},a:{i},name:{}", r.name));
        } else {
            map.push(format!("v:{i},name:{}", r.name));
        }
    }
    // Keyframes every segment, at the same instants in every rendition, so players can switch.
    a.extend([
        "-g".into(),
        gop.to_string(),
        "-keyint_min".into(),
        gop.to_string(),
        "-sc_threshold".into(),
        "0".into(),
        // Half-second segments for the first seconds get a player started sooner; then the
        // regular length. Keyframes follow the same schedule in every rendition.
        "-force_key_frames".into(),
        format!(
            "expr:if(lt(t,{FAST_START}),gte(t,n_forced*0.5),gte(t,{FAST_START}+(n_forced-{})*{SEGMENT_SECONDS}))",
            FAST_START * 2
        ),
    ]);
    if audio {
        a.extend(["-c:a".into(), "aac".into(), "-b:a".into(), format!("{AUDIO_KBPS}k"), "-ac".into(), "2".into()]);
    }
    a.extend([
        "-f".into(),
        "hls".into(),
        "-hls_time".into(),
        SEGMENT_SECONDS.to_string(),
        "-hls_init_time".into(),
        "0.5".into(),
        "-hls_playlist_type".into(),
        "event".into(),
        "-hls_flags".into(),
        "independent_segments+temp_file".into(),
        "-hls_segment_filename".into(),
        out.join("%v/seg_%05d.ts").to_string_lossy().into_owned(),
        "-var_stream_map".into(),
        map.join(" "),
        out.join("%v/index.m3u8").to_string_lossy().into_owned(),
    ]);
    a
}

/// The master playlist: one variant per rendition, bandwidth counting video and audio.
pub fn master_playlist(ladder: &[Rendition], audio: bool) -> String {
    let mut s = String::from("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for r in ladder {
        // Peak is bounded by maxrate (1.5× the target); players use BANDWIDTH as the peak.
        let bw = (r.video_kbps * 3 / 2 + if audio { AUDIO_KBPS } else { 0 }) * 1000;
        let avg = (r.video_kbps + if audio { AUDIO_KBPS } else { 0 }) * 1000;
        s.push_str(&format!(
            "#EXT-X-STREAM-INF:BANDWIDTH={bw},AVERAGE-BANDWIDTH={avg},RESOLUTION={}x{},CODECS=\"{}\",NAME=\"{}\"\n{}/index.m3u8\n",
            r.width,
            r.height,
            r.codecs(audio),
            r.name,
            r.name
        ));
    }
    s
}

/// Remuxes a finished HLS rendition into a progressive MP4 (moov first, for quick starts).
pub async fn remux_mp4(media: &Media, playlist: &Path, out: &Path, audio: bool) -> Result<(), ToolError> {
    let (p, o) = (playlist.to_string_lossy(), out.to_string_lossy());
    let mut args = vec!["-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-i", &p, "-c", "copy"];
    if audio {
        args.extend(["-bsf:a", "aac_adtstoasc"]);
    }
    args.extend(["-movflags", "+faststart", "-f", "mp4", &o]);
    media.ffmpeg.run(&args).await.map(|_| ())
}

/// One JPEG frame of `input` at `at` seconds, at most 1280 wide.
pub async fn thumbnail(media: &Media, input: &str, at: f64, out: &Path) -> Result<(), ToolError> {
    let at = format!("{at:.3}");
    let o = out.to_string_lossy();
    let args = [
        "-hide_banner",
        "-nostdin",
        "-y",
        "-loglevel",
        "error",
        "-ss",
        &at,
        "-i",
        input,
        "-frames:v",
        "1",
        "-vf",
        "scale='min(1280,iw)':-2",
        "-q:v",
        "3",
        "-f",
        "image2",
        &o,
    ];
    media.ffmpeg.run(&args).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ladder::ladder;

    #[test]
    fn master_lists_every_rendition_with_codecs() {
        let m = master_playlist(&ladder(1280, 720), true);
        assert_eq!(m.matches("#EXT-X-STREAM-INF").count(), 4);
        assert!(
            m.contains("BANDWIDTH=728000,AVERAGE-BANDWIDTH=528000,RESOLUTION=426x240,CODECS=\"avc1.64001e,mp4a.40.2\"")
        );
        assert!(m.contains("720p/index.m3u8"));
    }
}
