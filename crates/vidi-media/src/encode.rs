//! The encoder: one ffmpeg process decodes the source once and writes every rendition of the
//! ladder as a growing HLS playlist (`event` type, 2-second segments cut on aligned keyframes),
//! so a player can start after the first segment while the rest is still being encoded. The
//! master playlist is built by delivery from what the encode stores (see `playlist`); the MP4 is a
//! remux of the top rendition; the thumbnail is one frame of the source.

use std::path::Path;

use vidi_core::clip::Window;

use crate::ladder::{AUDIO_KBPS, Rendition};
use crate::probe::Probe;
use crate::{FFMPEG_PROGRESS, FFMPEG_QUIET, Jail, Media, ToolError};

/// Segment length in seconds. Short segments give a fast first frame.
pub const SEGMENT_SECONDS: u32 = 2;
/// The first seconds are cut into half-second segments, so a player can start sooner.
const FAST_START: u32 = 2;

/// A time range of the source encoded on its own, so that long videos are encoded by several
/// processes (cores, workers) at once. Ranges start on segment boundaries, where every rendition
/// has a keyframe, so the pieces' segments join into one playlist per rendition.
#[derive(Clone, Debug, PartialEq)]
pub struct Piece {
    /// 0 is the start of the video (half-second segments first); others name their segments
    /// `seg_pNNN_*.ts`.
    pub index: u32,
    pub start_s: f64,
    /// `None`: to the end of the source.
    pub duration_s: Option<f64>,
    /// Added to the output timestamps, so that they continue those of the piece before.
    pub ts_offset_s: f64,
    /// Picture only: the sound of a video in pieces is one rendition of its own (see
    /// `audio::hls_args`), encoded in one go, since AAC cut at piece boundaries would overlap.
    pub video_only: bool,
}

impl Piece {
    pub const WHOLE: Piece = Piece { index: 0, start_s: 0.0, duration_s: None, ts_offset_s: 0.0, video_only: false };

    /// Whether this is the head of a video in pieces (not a whole video, which has its sound and
    /// may have a length of its own: a clip).
    pub fn is_head(&self) -> bool {
        self.index == 0 && self.video_only
    }

    /// The segment file name pattern of this piece.
    pub fn segment_pattern(&self) -> String {
        if self.index == 0 { "seg_%05d.ts".into() } else { format!("seg_p{:03}_%05d.ts", self.index) }
    }
}

/// The head: the first half-second of the ladder (its first segment in every rendition, the
/// fast-start ones), encoded on its own (piece 0) as a foreground run, so that a video becomes
/// playable without waiting for the rest of any ladder. Half a second because in a burst the
/// heads run one after another: the shorter each is, the sooner the last video of the burst
/// plays (a second took ~1.5 times as long on 2 cores, and four 1080p heads missed 5 s).
pub const HEAD_SECONDS: f64 = 0.5;

/// What the head trades for time: x264's search effort (motion search, sub-pixel refinement,
/// trellis, look-ahead, partitions), roughly the `superfast` preset's, which takes about two thirds
/// of `veryfast`'s CPU for the head of a 1080p ladder (docs/performance.md). Only encoder-side
/// choices: nothing the stream's headers declare (reference frames, B-frames, weighted prediction,
/// CABAC, the 8×8 transform) differs from the ladder's preset, so the head's segments and the
/// pieces' join into one rendition, and into one MP4 track. Its half second at a slightly lower
/// quality for the same bitrate is the price of every video of a burst playing within seconds.
const HEAD_EFFORT: &str = "rc-lookahead=0:mbtree=0:me=dia:subme=1:trellis=0:partitions=i8x8,i4x4";

/// Splits a source of `duration_s` into the head (piece 0, [`HEAD_SECONDS`]) and the rest in
/// pieces of about `piece_s` seconds (a multiple of the segment length); the last piece takes
/// any remainder shorter than half a piece. A source of a few seconds is one piece
/// ([`Piece::WHOLE`]): splitting it would save nothing.
pub fn plan_pieces(duration_s: f64, piece_s: u32) -> Vec<Piece> {
    // Up to 5 s, a head and one short piece would cost two ffmpeg starts for nothing.
    if duration_s <= 5.0 {
        return vec![Piece::WHOLE];
    }
    let head = Piece { index: 0, start_s: 0.0, duration_s: Some(HEAD_SECONDS), ts_offset_s: 0.0, video_only: true };
    let len = (piece_s.max(2 * SEGMENT_SECONDS) / SEGMENT_SECONDS * SEGMENT_SECONDS) as f64;
    let rest = duration_s - HEAD_SECONDS;
    let count = ((rest / len) + 0.5).floor().max(1.0) as u32;
    let pieces = (0..count).map(|i| {
        let start = HEAD_SECONDS + i as f64 * len;
        Piece {
            index: i + 1,
            start_s: start,
            duration_s: if i + 1 < count { Some(len) } else { None },
            ts_offset_s: start,
            video_only: true,
        }
    });
    std::iter::once(head).chain(pieces).collect()
}

/// Moves pieces planned over a clip's length (see [`plan_pieces`]) onto the part of the source
/// the clip keeps: each starts `window.start_s` later in the source, and the one that ran to the
/// end stops where the clip does. Output timestamps (`ts_offset_s`) stay the clip's own, so every
/// output starts at 0 and lasts the clip's length.
pub fn clipped(pieces: Vec<Piece>, window: Window) -> Vec<Piece> {
    pieces
        .into_iter()
        .map(|p| Piece {
            start_s: p.start_s + window.start_s,
            duration_s: p.duration_s.or(window.duration_s.map(|d| (d - p.start_s).max(0.0))),
            ..p
        })
        .collect()
}

/// The ffmpeg arguments for one piece of the ladder (`Piece::WHOLE`: all of it) into
/// `out/<name>/index.m3u8`.
pub fn hls_piece_args(
    input: &str,
    probe: &Probe,
    ladder: &[Rendition],
    out: &Path,
    preset: &str,
    piece: &Piece,
) -> Vec<String> {
    let fps = probe.video.as_ref().and_then(|v| v.framerate).filter(|f| *f > 0.0).unwrap_or(30.0).min(60.0).round();
    let gop = (fps as u32 * SEGMENT_SECONDS).max(1);
    let audio = probe.audio.is_some() && !piece.video_only;
    let n = ladder.len();
    let mut a: Vec<String> = FFMPEG_QUIET.iter().chain(&FFMPEG_PROGRESS).map(|s| s.to_string()).collect();
    if piece.start_s > 0.0 {
        // Input seeking decodes from the keyframe before and drops frames up to the start.
        a.extend(["-ss".into(), format!("{:.3}", piece.start_s)]);
    }
    if let Some(d) = piece.duration_s {
        a.extend(["-t".into(), format!("{d:.3}")]);
    }
    a.extend(crate::input::source(input));
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
        if piece.is_head() {
            a.extend([format!("-x264-params:v:{i}"), HEAD_EFFORT.into()]);
        }
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
        if piece.index == 0 {
            format!(
                "expr:if(lt(t,{FAST_START}),gte(t,n_forced*0.5),gte(t,{FAST_START}+(n_forced-{})*{SEGMENT_SECONDS}))",
                FAST_START * 2
            )
        } else {
            format!("expr:gte(t,n_forced*{SEGMENT_SECONDS})")
        },
    ]);
    if audio {
        a.extend(["-c:a".into(), "aac".into(), "-b:a".into(), format!("{AUDIO_KBPS}k"), "-ac".into(), "2".into()]);
    }
    if piece.ts_offset_s > 0.0 {
        a.extend(["-output_ts_offset".into(), format!("{:.6}", piece.ts_offset_s)]);
    }
    a.extend([
        "-f".into(),
        "hls".into(),
        "-hls_time".into(),
        SEGMENT_SECONDS.to_string(),
        "-hls_init_time".into(),
        if piece.index == 0 { "0.5".into() } else { SEGMENT_SECONDS.to_string() },
        "-hls_playlist_type".into(),
        "event".into(),
        "-hls_flags".into(),
        "independent_segments+temp_file".into(),
        "-hls_segment_filename".into(),
        out.join("%v").join(piece.segment_pattern()).to_string_lossy().into_owned(),
        "-var_stream_map".into(),
        map.join(" "),
        out.join("%v/index.m3u8").to_string_lossy().into_owned(),
    ]);
    a
}

/// Size of an MPEG-TS packet: a whole segment is a non-empty run of them.
const TS_PACKET: u64 = 188;
/// A filesystem with less room than this (and than 1 % of its size) counts as full.
const FULL_BELOW: u64 = 1 << 20;

/// Checks what [`hls_args`] made ffmpeg write into `out`, after ffmpeg exited successfully.
///
/// ffmpeg's HLS muxer does not report write errors: its per-rendition muxers drop them, so on a
/// full disk ffmpeg (5.1) keeps encoding, prints nothing and exits 0, leaving empty or cut
/// segments and empty playlists. Nothing may be called encoded on ffmpeg's word alone, so every
/// rendition must have a finished playlist (`#EXT-X-ENDLIST`) listing at least one segment, and
/// every listed segment must be whole (a non-empty run of 188-byte TS packets). The error says
/// how much room the folder's filesystem has left, since a full disk is the usual cause.
pub async fn check_hls_output(out: &Path, folders: &[&str]) -> Result<(), ToolError> {
    for name in folders {
        let dir = out.join(name);
        let problem = match tokio::fs::read_to_string(dir.join("index.m3u8")).await {
            Err(e) => Some(format!("its playlist is unreadable ({e})")),
            Ok(text) if !crate::playlist::is_ended(text.as_bytes()) => Some("its playlist is unfinished".to_string()),
            Ok(text) => {
                let mut problem = None;
                let segments = crate::playlist::segment_uris(&text);
                if segments.is_empty() {
                    problem = Some("its playlist lists no segment".to_string());
                }
                for seg in segments {
                    match tokio::fs::metadata(dir.join(seg)).await {
                        Ok(m) if m.len() > 0 && m.len() % TS_PACKET == 0 => {}
                        Ok(m) => problem = Some(format!("segment {seg} is cut short ({} bytes)", m.len())),
                        Err(e) => problem = Some(format!("segment {seg} is missing ({e})")),
                    }
                    if problem.is_some() {
                        break;
                    }
                }
                problem
            }
        };
        if let Some(problem) = problem {
            let room = match available_bytes(out) {
                Ok((free, size)) if free < FULL_BELOW.min(size / 100) => {
                    format!("no space left on device ({free} bytes free)")
                }
                Ok((free, _)) => format!("{} KiB free on its filesystem", free >> 10),
                Err(e) => format!("free space unknown ({e})"),
            };
            return Err(ToolError::Incomplete {
                tool: "ffmpeg".into(),
                reason: format!(
                    "rendition {}: {problem}, although ffmpeg reported success; {}: {room}",
                    name,
                    out.display()
                ),
            });
        }
    }
    Ok(())
}

/// Bytes an unprivileged writer may still use on the filesystem holding `path`, and its size.
#[cfg(unix)]
pub fn available_bytes(path: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a NUL-terminated path and `st` points to memory sized for the struct, which
    // statvfs fills entirely when it returns 0 (the only case in which it is read).
    let st = unsafe {
        if libc::statvfs(c.as_ptr(), st.as_mut_ptr()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        st.assume_init()
    };
    #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
    Ok((st.f_bavail as u64 * st.f_frsize as u64, st.f_blocks as u64 * st.f_frsize as u64))
}

#[cfg(not(unix))]
pub fn available_bytes(_path: &Path) -> std::io::Result<(u64, u64)> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

/// Remuxes finished HLS renditions (the top video one, and the sound when it is a rendition of
/// its own) into a progressive MP4 (moov first, for quick starts).
pub async fn remux_mp4(media: &Media, playlists: &[&Path], out: &Path, audio: bool) -> Result<(), ToolError> {
    let mut args: Vec<String> = FFMPEG_QUIET.iter().map(|s| s.to_string()).collect();
    for p in playlists {
        args.extend(crate::input::own(&p.to_string_lossy()));
    }
    for i in 0..playlists.len() {
        args.extend(["-map".into(), format!("{i}:v?"), "-map".into(), format!("{i}:a?")]);
    }
    args.extend(["-c".into(), "copy".into()]);
    if audio {
        args.extend(["-bsf:a".into(), "aac_adtstoasc".into()]);
    }
    args.extend(["-movflags", "+faststart", "-f", "mp4"].iter().map(|s| s.to_string()));
    args.push(out.to_string_lossy().into_owned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut jail = Jail::new();
    for p in playlists {
        jail = jail.write(p.parent().unwrap_or(p));
    }
    jail = jail.write(out.parent().unwrap_or(out));
    media.ffmpeg.jailed(jail).run(&args).await.map(|_| ())
}

/// One JPEG frame of the source `input` at `at` seconds, at most 1280 wide.
pub async fn thumbnail(media: &Media, input: &str, at: f64, out: &Path) -> Result<(), ToolError> {
    let at = format!("{at:.3}");
    jpeg(media, &["-ss", &at], crate::input::source(input), input, &["-vf", SCALE], out).await
}

/// A JPEG of the first keyframe at or after `at` seconds of `input` (at most 1280 wide), or of
/// the frame at `at` when no keyframe follows it. For the thumbnail Vidi picks itself: decoding
/// keyframes only costs a fraction of decoding every frame from the keyframe before `at` (0.17
/// against 0.55 s of CPU for a 1080p source with a keyframe every 8 s), and it runs beside a
/// head, where every CPU second delays the next video of a burst. A frame asked for by time
/// (`PATCH /videos/{id}/thumbnail`) is [`thumbnail`], exact.
pub async fn thumbnail_near(media: &Media, input: &str, at: f64, out: &Path) -> Result<(), ToolError> {
    let at_s = format!("{at:.3}");
    let _ = tokio::fs::remove_file(out).await;
    let args = crate::input::source(input);
    jpeg(media, &["-skip_frame", "nokey", "-ss", &at_s], args, input, &["-vf", SCALE], out).await?;
    // ffmpeg exits 0 without writing anything when no keyframe follows `at`.
    match tokio::fs::metadata(out).await {
        Ok(m) if m.len() > 0 => Ok(()),
        _ => thumbnail(media, input, at, out).await,
    }
}

/// A JPEG of an uploaded image (`kind`: `jpg`, `png` or `webp`, from its first bytes), at most
/// 1280 wide.
pub async fn thumbnail_from_image(media: &Media, image: &Path, kind: &str, out: &Path) -> Result<(), ToolError> {
    let path = image.to_string_lossy();
    let args = crate::input::image(&path, kind)
        .ok_or_else(|| ToolError::Output { tool: "ffmpeg".into(), reason: format!("not an image kind: {kind}") })?;
    jpeg(media, &[], args, &path, &["-vf", SCALE], out).await
}

/// A JPEG (its bytes) of the first keyframe of `fmp4`: an fMP4 init and the fragment that follows
/// it, fed on ffmpeg's stdin (a live broadcast's newest keyframe, taken every few seconds per
/// stream, so the cheapest run there is: no file on either side, one thread, keyframes only, and
/// ffmpeg stops after the first picture, reading no more than the fragment that holds it).
pub async fn thumbnail_of_fmp4(media: &Media, fmp4: Vec<bytes::Bytes>) -> Result<Vec<u8>, ToolError> {
    let mut args: Vec<&str> = FFMPEG_QUIET.to_vec();
    // The demuxer and the protocol are named: the bytes are Vidi's own packaging, but they are
    // a publisher's media, opened like any source (nothing but what comes in on the pipe).
    args.extend(["-threads", "1", "-skip_frame", "nokey", "-protocol_whitelist", "pipe", "-f", "mp4", "-i", "pipe:0"]);
    args.extend(["-map", "0:v:0", "-vf", SCALE, "-threads", "1", "-filter_threads", "1", "-frames:v", "1"]);
    args.extend(["-q:v", "3", "-c:v", "mjpeg", "-f", "image2pipe", "pipe:1"]);
    let input = futures::stream::iter(fmp4.into_iter().map(Ok::<_, std::io::Error>));
    let jpeg = media.ffmpeg.jailed(Jail::new()).run_fed(&args, input).await?;
    if jpeg.is_empty() {
        return Err(ToolError::Output { tool: "ffmpeg".into(), reason: "no keyframe in the fragment".into() });
    }
    Ok(jpeg)
}

const SCALE: &str = "scale='min(1280,iw)':-2";

/// Writes one JPEG frame of what `after_input` (a filter) makes of the input opened by
/// `input_args` (see [`crate::input`]), the file `input`.
pub(crate) async fn jpeg(
    media: &Media,
    before_input: &[&str],
    input_args: Vec<String>,
    input: &str,
    after_input: &[&str],
    out: &Path,
) -> Result<(), ToolError> {
    let o = out.to_string_lossy();
    let mut args: Vec<&str> = FFMPEG_QUIET.to_vec();
    args.extend_from_slice(before_input);
    args.extend(input_args.iter().map(String::as_str));
    args.extend_from_slice(after_input);
    // `-update 1`: one picture at exactly this path, never a numbered sequence.
    args.extend(["-frames:v", "1", "-q:v", "3", "-f", "image2", "-update", "1", &o]);
    let jail = Jail::new().read(crate::input::path_of(input)).write(out.parent().unwrap_or(out));
    media.ffmpeg.jailed(jail).run(&args).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ladder::ladder;

    #[tokio::test]
    async fn incomplete_hls_output_is_an_error_that_says_how_much_room_is_left() {
        let dir = std::env::temp_dir().join(format!("vidi-check-{}", std::process::id()));
        let l: Vec<&str> = ladder(640, 360).iter().map(|r| r.name).collect();
        let playlist = "#EXTM3U\n#EXTINF:2.0,\nseg_00000.ts\n#EXT-X-ENDLIST\n";
        for r in &l {
            std::fs::create_dir_all(dir.join(r)).unwrap();
            std::fs::write(dir.join(r).join("index.m3u8"), playlist).unwrap();
            std::fs::write(dir.join(r).join("seg_00000.ts"), vec![0x47u8; 188 * 3]).unwrap();
        }
        check_hls_output(&dir, &l).await.unwrap();
        // What ffmpeg leaves on a full disk, while exiting 0: a segment cut mid-packet…
        std::fs::write(dir.join("360p/seg_00000.ts"), vec![0x47u8; 4096]).unwrap();
        let e = check_hls_output(&dir, &l).await.unwrap_err().to_string();
        assert!(e.contains("360p") && e.contains("cut short") && e.contains("free"), "{e}");
        // …an empty playlist, or none at all.
        std::fs::write(dir.join("360p/seg_00000.ts"), vec![0x47u8; 188]).unwrap();
        std::fs::write(dir.join("240p/index.m3u8"), "").unwrap();
        let e = check_hls_output(&dir, &l).await.unwrap_err().to_string();
        assert!(e.contains("240p") && e.contains("unfinished"), "{e}");
        std::fs::remove_file(dir.join("240p/index.m3u8")).unwrap();
        assert!(check_hls_output(&dir, &l).await.unwrap_err().to_string().contains("unreadable"));
        let (free, size) = available_bytes(&dir).unwrap();
        assert!(free > 0 && size >= free, "{free} of {size}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn pieces_start_on_segment_boundaries_and_cover_the_source() {
        let p = plan_pieces(61.0, 20);
        assert_eq!(p.len(), 4, "the head, then three pieces");
        assert_eq!((p[0].start_s, p[0].duration_s), (0.0, Some(HEAD_SECONDS)));
        assert_eq!((p[1].start_s, p[1].duration_s, p[3].duration_s), (HEAD_SECONDS, Some(20.0), None));
        assert_eq!(
            (p[0].ts_offset_s, p[2].ts_offset_s, p[3].ts_offset_s),
            (0.0, HEAD_SECONDS + 20.0, HEAD_SECONDS + 40.0)
        );
        assert!(p.iter().all(|p| p.video_only));
        let two = plan_pieces(25.0, 20);
        assert_eq!(two.len(), 2, "a remainder under half a piece joins the last");
        assert_eq!((two[1].start_s, two[1].duration_s), (HEAD_SECONDS, None));
        assert_eq!(plan_pieces(20.0, 30).len(), 2, "a short video has a head too");
        assert_eq!(plan_pieces(5.0, 30), vec![Piece::WHOLE], "too short to split");
        assert_eq!(plan_pieces(32.0, 21)[2].start_s, HEAD_SECONDS + 20.0, "pieces are whole segments");
        assert_eq!(p[2].segment_pattern(), "seg_p002_%05d.ts");
    }

    #[test]
    fn a_clip_moves_the_pieces_and_ends_the_last() {
        let w = Window { start_s: 10.0, duration_s: Some(25.0) };
        let p = clipped(plan_pieces(25.0, 20), w);
        assert_eq!((p[0].start_s, p[0].duration_s, p[0].ts_offset_s), (10.0, Some(HEAD_SECONDS), 0.0));
        assert_eq!((p[1].start_s, p[1].duration_s, p[1].ts_offset_s), (10.5, Some(24.5), HEAD_SECONDS));
        assert!(p[0].is_head() && !p[1].is_head());
        let whole = clipped(plan_pieces(2.0, 20), Window { start_s: 1.0, duration_s: Some(2.0) });
        assert_eq!((whole[0].start_s, whole[0].duration_s), (1.0, Some(2.0)));
        assert!(!whole[0].is_head(), "a clipped whole video is no head: it has its sound");
        assert_eq!(clipped(plan_pieces(61.0, 20), Window::WHOLE), plan_pieces(61.0, 20));
    }
}
