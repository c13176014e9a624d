//! How a media tool is told what to read. A source is hostile until proven otherwise: some
//! container formats are not media but lists of other files or URLs (HLS and DASH manifests,
//! ffconcat, image-sequence patterns, `tee`, `subfile`…), and ffmpeg follows them, so an
//! uploaded manifest naming `../<other video>/source` would copy another tenant's video. Every
//! source is therefore opened with an explicit allow-list of demuxers that read only the bytes
//! of the file itself, and `file` as the only protocol (sources on S3 are copied to the job's
//! scratch first). Vidi's own intermediate files (the HLS renditions it encoded) are read with
//! `file` only as well.

/// The demuxers a source may be read with (ffmpeg's names; a demuxer whose name lists several,
/// such as `mov,mp4,m4a,3gp,3g2,mj2`, matches on any of them). None of them opens other files:
/// the MOV demuxer could follow external data references, but only with `enable_drefs`, which is
/// off by default and never set by Vidi.
pub const SOURCE_FORMATS: &[&str] = &[
    "mov", "mp4", "m4a", "3gp", "3g2", "mj2", // MP4 / QuickTime family
    "matroska", "webm", // Matroska / WebM
    "mpegts", "mpeg", // MPEG transport and program streams
    "avi", "flv", "ogg", // the other video containers
    "mp3", "wav", "flac", "aac", "aiff", // audio files
];

/// What the container allow-list is called in error messages.
pub const SOURCE_FORMATS_HUMAN: &str = "MP4/MOV, Matroska/WebM, MPEG-TS/PS, AVI, FLV, Ogg, MP3, WAV, FLAC, AAC or AIFF";

/// The arguments that open `path`, a source (an uploaded or fetched file), as ffmpeg's or
/// ffprobe's input: the allow-lists, then `-i`.
pub fn source(path: &str) -> Vec<String> {
    vec![
        "-protocol_whitelist".into(),
        "file".into(),
        "-format_whitelist".into(),
        SOURCE_FORMATS.join(","),
        "-i".into(),
        path.into(),
    ]
}

/// The arguments that open a file Vidi made itself (a rendition's HLS playlist): any demuxer,
/// local files only.
pub fn own(path: &str) -> Vec<String> {
    vec!["-protocol_whitelist".into(), "file".into(), "-i".into(), path.into()]
}

/// The arguments that open an uploaded still image whose kind was read from its first bytes
/// (`jpg`, `png` or `webp`): that one demuxer, forced, so the file name can never be taken for a
/// sequence pattern.
pub fn image(path: &str, kind: &str) -> Option<Vec<String>> {
    let demuxer = match kind {
        "jpg" => "jpeg_pipe",
        "png" => "png_pipe",
        "webp" => "webp_pipe",
        _ => return None,
    };
    Some(vec!["-protocol_whitelist".into(), "file".into(), "-f".into(), demuxer.into(), "-i".into(), path.into()])
}

/// The file a source path names (`file:` URLs are what a growing upload is read through).
pub fn path_of(input: &str) -> &str {
    input.strip_prefix("file:").unwrap_or(input)
}

/// Turns ffmpeg's words for a refused source into a reason a user can act on.
pub fn explain(stderr: &str) -> Option<String> {
    if stderr.contains("not on whitelist") {
        // "[hls @ 0x…] Format not on whitelist '…'" names the format that was refused.
        let format = stderr.split_once('[').and_then(|(_, r)| r.split_once(" @")).map(|(f, _)| f.trim());
        return Some(match format {
            Some(f) if !f.is_empty() => {
                format!("the source's format ({f}) is not accepted; Vidi takes {SOURCE_FORMATS_HUMAN} files")
            }
            _ => format!("the source's format is not accepted; Vidi takes {SOURCE_FORMATS_HUMAN} files"),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_formats_are_named() {
        let e = "[hls @ 0x55aed5c132c0] Format not on whitelist 'mov,mp4'\nevil.m3u8: Invalid argument";
        assert_eq!(
            explain(e).unwrap(),
            format!("the source's format (hls) is not accepted; Vidi takes {SOURCE_FORMATS_HUMAN} files")
        );
        assert_eq!(explain("moov atom not found"), None);
    }

    #[test]
    fn sources_are_opened_with_both_allow_lists() {
        let a = source("/data/x");
        assert_eq!(a[..2], ["-protocol_whitelist", "file"]);
        assert!(a[3].split(',').any(|f| f == "matroska") && !a[3].contains("hls") && !a[3].contains("concat"));
        assert_eq!(a[4..], ["-i", "/data/x"]);
        assert_eq!(path_of("file:/up/s"), "/up/s");
    }
}
