//! Every playlist Vidi writes or rewrites, in one place: the master playlist (built from the
//! renditions stored for a video, when it is requested), the media playlists of a video encoded in
//! pieces (joined from the pieces' own), and the session rewrite of private playlists. Written and
//! parsed with `m3u8-rs`, except the two hot-path rewrites (`with_session`, `is_ended`), which
//! read lines and bytes and never build a tree.
//!
//! A new group of the master (subtitles now; more audio tracks, or other kinds, later) is one more
//! list in [`MasterParts`], written as `#EXT-X-MEDIA` entries and named by every variant.

use std::collections::HashMap;

use m3u8_rs::{
    AlternativeMedia, AlternativeMediaType, MasterPlaylist, MediaPlaylist, MediaPlaylistType, MediaSegment,
    QuotedOrUnquoted, Resolution, VariantStream,
};
use vidi_core::repo::{Rendition, RenditionRole};

use crate::audio::AUDIO_RENDITION;
use crate::ladder::{self, AUDIO_KBPS};

/// The group every variant of a video in pieces plays its sound from.
pub const AUDIO_GROUP: &str = "aac";
/// The group of the subtitle tracks.
pub const SUBTITLES_GROUP: &str = "subs";

/// The renditions the master of an encode lists, as stored when the encode plans them: the
/// ladder's variants (with the sound muxed in, or naming the sound's own rendition when
/// `demuxed`), or the sound alone when the ladder is empty.
pub fn planned_renditions(ladder: &[ladder::Rendition], audio: bool, demuxed: bool) -> Vec<Rendition> {
    if ladder.is_empty() {
        // AAC at a constant target: 10 % over it is a safe peak.
        return vec![Rendition {
            name: AUDIO_RENDITION.into(),
            role: RenditionRole::Variant,
            bandwidth: u64::from(AUDIO_KBPS) * 1000 * 11 / 10,
            average_bandwidth: u64::from(AUDIO_KBPS) * 1000,
            codecs: "mp4a.40.2".into(),
            resolution: None,
            audio_group: None,
            channels: Some(2),
        }];
    }
    let audio_kbps = if audio { AUDIO_KBPS } else { 0 };
    let mut out: Vec<Rendition> = ladder
        .iter()
        .map(|r| Rendition {
            name: r.name.into(),
            role: RenditionRole::Variant,
            // Peak is bounded by maxrate (1.5× the target); players use BANDWIDTH as the peak.
            bandwidth: u64::from(r.video_kbps * 3 / 2 + audio_kbps) * 1000,
            average_bandwidth: u64::from(r.video_kbps + audio_kbps) * 1000,
            codecs: r.codecs(audio),
            resolution: Some((r.width, r.height)),
            audio_group: (audio && demuxed).then(|| AUDIO_GROUP.to_string()),
            channels: None,
        })
        .collect();
    if audio && demuxed {
        out.push(Rendition {
            name: AUDIO_RENDITION.into(),
            role: RenditionRole::Audio,
            bandwidth: u64::from(AUDIO_KBPS) * 1000,
            average_bandwidth: u64::from(AUDIO_KBPS) * 1000,
            codecs: "mp4a.40.2".into(),
            resolution: None,
            audio_group: Some(AUDIO_GROUP.into()),
            channels: Some(2),
        });
    }
    out
}

/// A subtitle track of the master (WebVTT, `<uri>` relative to the master).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubtitleTrack {
    pub name: String,
    /// BCP 47.
    pub language: String,
    pub uri: String,
    pub default: bool,
}

/// What a master playlist is built from.
#[derive(Clone, Copy, Debug, Default)]
pub struct MasterParts<'a> {
    pub renditions: &'a [Rendition],
    pub subtitles: &'a [SubtitleTrack],
    /// Appended to every URI (a private session's `?avh=…`), or empty.
    pub uri_suffix: &'a str,
}

/// The master playlist of a video.
pub fn master(parts: MasterParts<'_>) -> String {
    let suffix = parts.uri_suffix;
    let uri = |name: &str| format!("{name}/index.m3u8{suffix}");
    let mut alternatives: Vec<AlternativeMedia> = parts
        .renditions
        .iter()
        .filter(|r| r.role == RenditionRole::Audio)
        .map(|r| AlternativeMedia {
            media_type: AlternativeMediaType::Audio,
            uri: Some(uri(&r.name)),
            group_id: r.audio_group.clone().unwrap_or_else(|| AUDIO_GROUP.into()),
            name: r.name.clone(),
            default: true,
            autoselect: true,
            channels: r.channels.map(|c| c.to_string()),
            ..Default::default()
        })
        .collect();
    alternatives.extend(parts.subtitles.iter().map(|s| AlternativeMedia {
        media_type: AlternativeMediaType::Subtitles,
        uri: Some(format!("{}{suffix}", s.uri)),
        group_id: SUBTITLES_GROUP.into(),
        language: Some(s.language.clone()),
        name: s.name.clone(),
        default: s.default,
        // Only the default is chosen without the viewer asking (contract §10: "to have the
        // captions on automatically, set default: true"); AUTOSELECT=YES on the others would
        // let players turn them on from the system's language.
        autoselect: s.default,
        ..Default::default()
    }));
    let subtitles = (!parts.subtitles.is_empty()).then(|| SUBTITLES_GROUP.to_string());
    let variants = parts
        .renditions
        .iter()
        .filter(|r| r.role == RenditionRole::Variant)
        .map(|r| VariantStream {
            uri: uri(&r.name),
            bandwidth: r.bandwidth,
            average_bandwidth: Some(r.average_bandwidth),
            codecs: Some(r.codecs.clone()),
            resolution: r.resolution.map(|(w, h)| Resolution { width: w.into(), height: h.into() }),
            audio: r.audio_group.clone(),
            subtitles: subtitles.clone(),
            // NAME is not an attribute of EXT-X-STREAM-INF in RFC 8216, but players (hls.js among
            // them) show it as the quality's label.
            other_attributes: Some(HashMap::from([("NAME".to_string(), QuotedOrUnquoted::Quoted(r.name.clone()))])),
            ..Default::default()
        })
        .collect();
    let playlist = MasterPlaylist {
        // EXT-X-MEDIA groups with a URI need version 4 at least.
        version: Some(if alternatives.is_empty() { 3 } else { 4 }),
        independent_segments: true,
        alternatives,
        variants,
        ..Default::default()
    };
    write(|w| playlist.write_to(w))
}

fn write(f: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> String {
    let mut out = Vec::with_capacity(1024);
    f(&mut out).expect("writing to memory cannot fail");
    String::from_utf8(out).expect("playlists are written as UTF-8")
}

/// The media playlist of a subtitle track: one WebVTT segment (`uri`, relative to the playlist)
/// covering the whole video, so any HLS player offers a caption file as it is stored.
pub fn subtitle_playlist(duration_s: f64, uri: &str) -> String {
    let duration = if duration_s.is_finite() && duration_s > 0.0 { duration_s } else { 1.0 };
    let playlist = MediaPlaylist {
        version: Some(3),
        // The one segment's duration rounds to at most this (RFC 8216 §4.3.3.1).
        target_duration: duration.ceil() as u64,
        playlist_type: Some(MediaPlaylistType::Vod),
        end_list: true,
        segments: vec![MediaSegment { uri: uri.to_string(), duration: duration as f32, ..Default::default() }],
        ..Default::default()
    };
    write(|w| playlist.write_to(w))
}

/// How much of a segment [`ts_first_pts`] reads: its first 400 packets of 188 bytes.
pub const TS_FIRST_PTS_BYTES: u64 = 400 * 188;

/// The earliest presentation time (90 kHz) among the first PES packets of an MPEG-TS segment
/// (its first [`TS_FIRST_PTS_BYTES`]), which is where players put the start of the timeline.
pub fn ts_first_pts(ts: &[u8]) -> Option<u64> {
    let mut first: Option<u64> = None;
    for pkt in ts.chunks_exact(188).take((TS_FIRST_PTS_BYTES / 188) as usize) {
        if pkt[0] != 0x47 {
            break;
        }
        // Only packets that start a PES with a payload.
        let afc = (pkt[3] >> 4) & 0x3;
        if pkt[1] & 0x40 == 0 || afc & 1 == 0 {
            continue;
        }
        let start = if afc == 3 { 5 + usize::from(pkt[4]) } else { 4 };
        let Some(p) = pkt.get(start..) else { continue };
        // An audio or video PES (stream ids 0xC0–0xEF) with a PTS.
        if p.len() < 14 || p[..3] != [0, 0, 1] || !(0xC0..=0xEF).contains(&p[3]) || p[7] & 0x80 == 0 {
            continue;
        }
        let b: Vec<u64> = p[9..14].iter().map(|&x| u64::from(x)).collect();
        let pts = ((b[0] >> 1) & 0x07) << 30 | b[1] << 22 | (b[2] >> 1) << 15 | b[3] << 7 | b[4] >> 1;
        first = Some(first.map_or(pts, |f| f.min(pts)));
    }
    first
}

/// A WebVTT file as an HLS subtitle segment of a video whose MPEG-TS timeline starts at `pts`:
/// `X-TIMESTAMP-MAP` in its header maps cue time 0 to it (RFC 8216 §3.5), so players that time
/// cues on the MPEG-TS clock (hls.js, Safari) show them when the file says.
pub fn with_timestamp_map(vtt: &[u8], pts: u64) -> Vec<u8> {
    let map = format!("X-TIMESTAMP-MAP=MPEGTS:{pts},LOCAL:00:00:00.000");
    let mut out = Vec::with_capacity(vtt.len() + map.len() + 2);
    match vtt.iter().position(|&b| b == b'\n') {
        Some(end) => {
            out.extend_from_slice(&vtt[..=end]);
            out.extend_from_slice(map.as_bytes());
            out.push(b'\n');
            out.extend_from_slice(&vtt[end + 1..]);
        }
        None => {
            out.extend_from_slice(vtt);
            out.push(b'\n');
            out.extend_from_slice(map.as_bytes());
            out.push(b'\n');
        }
    }
    out
}

/// The (duration, uri) entries of a media playlist, in order.
pub fn entries(text: &str) -> Result<Vec<(f64, String)>, String> {
    match m3u8_rs::parse_media_playlist_res(text.as_bytes()) {
        Ok(p) => Ok(p.segments.into_iter().map(|s| (f64::from(s.duration), s.uri)).collect()),
        Err(e) => Err(format!("not a media playlist: {e}")),
    }
}

/// The segment URIs a media playlist lists.
pub fn segment_uris(text: &str) -> Vec<&str> {
    // Line-based: ffmpeg's own playlists, read every 100 ms while it encodes.
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect()
}

/// The media playlist of `entries` (the joined pieces of a rendition); ended (`#EXT-X-ENDLIST`)
/// when every piece is in.
pub fn joined(entries: &[(f64, String)], complete: bool) -> String {
    // Every segment's rounded duration must fit the target duration (RFC 8216 §4.3.3.1).
    let target = entries.iter().map(|(d, _)| d.round() as u64).max().unwrap_or(2).max(2);
    let playlist = MediaPlaylist {
        version: Some(3),
        target_duration: target,
        playlist_type: Some(MediaPlaylistType::Event),
        independent_segments: true,
        end_list: complete,
        segments: entries
            .iter()
            .map(|(d, uri)| MediaSegment { uri: uri.clone(), duration: *d as f32, ..Default::default() })
            .collect(),
        ..Default::default()
    };
    write(|w| playlist.write_to(w))
}

/// A media playlist without its end: the first of several pieces ends where the next begins,
/// not where the video does.
pub fn unended(text: &str) -> String {
    text.replace("#EXT-X-ENDLIST\n", "")
}

/// Whether a media playlist is finished (no segment will be added).
pub fn is_ended(playlist: &[u8]) -> bool {
    playlist.windows(14).any(|w| w == b"#EXT-X-ENDLIST")
}

/// Appends `avh` (a private session's `?avh=…`) to every URI line of a media playlist.
pub fn with_session(playlist: Vec<u8>, avh: &str) -> Vec<u8> {
    if avh.is_empty() {
        return playlist;
    }
    let text = String::from_utf8_lossy(&playlist);
    let mut out = String::with_capacity(text.len() + avh.len() * text.lines().count());
    for line in text.lines() {
        out.push_str(line);
        if !line.is_empty() && !line.starts_with('#') && !line.contains('?') {
            out.push_str(avh);
        }
        out.push('\n');
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ladder::ladder;

    #[test]
    fn master_lists_every_rendition_with_codecs() {
        let r = planned_renditions(&ladder(1280, 720), true, false);
        let m = master(MasterParts { renditions: &r, ..Default::default() });
        assert!(m.starts_with("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n"), "{m}");
        assert_eq!(m.matches("#EXT-X-STREAM-INF").count(), 4);
        assert!(m.contains(
            "#EXT-X-STREAM-INF:BANDWIDTH=728000,AVERAGE-BANDWIDTH=528000,CODECS=\"avc1.64001e,mp4a.40.2\",\
             RESOLUTION=426x240,NAME=\"240p\"\n240p/index.m3u8\n"
        ));
        assert!(m.ends_with("720p/index.m3u8\n"));
        let parsed = m3u8_rs::parse_master_playlist_res(m.as_bytes()).unwrap();
        assert_eq!(parsed.variants[3].resolution, Some(Resolution { width: 1280, height: 720 }));
    }

    #[test]
    fn a_video_in_pieces_names_its_sound_as_an_audio_group_and_audio_alone_is_one_variant() {
        let r = planned_renditions(&ladder(640, 360), true, true);
        let m = master(MasterParts { renditions: &r, subtitles: &[], uri_suffix: "?avh=s1" });
        assert!(m.contains(
            "#EXT-X-MEDIA:TYPE=AUDIO,URI=\"audio/index.m3u8?avh=s1\",GROUP-ID=\"aac\",NAME=\"audio\",\
             DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\"\n"
        ));
        assert_eq!(m.matches("AUDIO=\"aac\"").count(), 2, "{m}");
        assert!(m.contains("#EXT-X-VERSION:4\n") && m.contains("\n360p/index.m3u8?avh=s1\n"), "{m}");
        let a = master(MasterParts { renditions: &planned_renditions(&[], true, false), ..Default::default() });
        assert_eq!(
            a,
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-STREAM-INF:BANDWIDTH=140800,\
             AVERAGE-BANDWIDTH=128000,CODECS=\"mp4a.40.2\",NAME=\"audio\"\naudio/index.m3u8\n"
        );
    }

    #[test]
    fn subtitles_are_a_group_every_variant_names() {
        let r = planned_renditions(&ladder(640, 360), true, false);
        let subs = [SubtitleTrack {
            name: "English".into(),
            language: "en".into(),
            uri: "captions/en.m3u8".into(),
            default: true,
        }];
        let m = master(MasterParts { renditions: &r, subtitles: &subs, uri_suffix: "" });
        assert!(m.contains("#EXT-X-MEDIA:TYPE=SUBTITLES,URI=\"captions/en.m3u8\",GROUP-ID=\"subs\",LANGUAGE=\"en\""));
        assert_eq!(m.matches("SUBTITLES=\"subs\"").count(), 2, "{m}");
        let two = [
            subs[0].clone(),
            SubtitleTrack {
                name: "French".into(),
                language: "fr".into(),
                uri: "captions/fr.m3u8".into(),
                default: false,
            },
        ];
        let m = master(MasterParts { renditions: &r, subtitles: &two, uri_suffix: "?avh=s" });
        assert!(m.contains("URI=\"captions/en.m3u8?avh=s\",GROUP-ID=\"subs\",LANGUAGE=\"en\",NAME=\"English\",DEFAULT=YES,AUTOSELECT=YES"), "{m}");
        assert!(
            m.contains("URI=\"captions/fr.m3u8?avh=s\",GROUP-ID=\"subs\",LANGUAGE=\"fr\",NAME=\"French\"\n"),
            "{m}"
        );
        let parsed = m3u8_rs::parse_master_playlist_res(m.as_bytes()).unwrap();
        assert_eq!(parsed.alternatives.len(), 2);
    }

    #[test]
    fn subtitle_segments_map_cue_time_zero_to_the_first_pts() {
        let mapped = with_timestamp_map(b"WEBVTT\n\n00:00.500 --> 00:01.000\nhi\n", 126000);
        assert_eq!(
            String::from_utf8(mapped).unwrap(),
            "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:126000,LOCAL:00:00:00.000\n\n00:00.500 --> 00:01.000\nhi\n"
        );
        // A PES header with PTS 126000 (1.4 s) after a packet that starts nothing.
        let mut ts = vec![0u8; 188 * 2];
        ts[0] = 0x47;
        ts[3] = 0x10;
        let p = &mut ts[188..];
        p[..4].copy_from_slice(&[0x47, 0x41, 0x00, 0x10]);
        let pts: u64 = 126000;
        p[4..13].copy_from_slice(&[0, 0, 1, 0xE0, 0, 0, 0x80, 0x80, 5]);
        p[13] = 0x21 | (((pts >> 30) as u8 & 0x07) << 1);
        p[14] = (pts >> 22) as u8;
        p[15] = (((pts >> 15) as u8) << 1) | 1;
        p[16] = (pts >> 7) as u8;
        p[17] = ((pts as u8) << 1) | 1;
        assert_eq!(ts_first_pts(&ts), Some(126000));
        assert_eq!(ts_first_pts(b"not ts"), None);
    }

    #[test]
    fn a_subtitle_playlist_is_one_segment_over_the_whole_video() {
        let p = subtitle_playlist(6.04, "en.vtt?avh=s");
        assert!(p.contains("#EXT-X-TARGETDURATION:7\n") && p.contains("#EXT-X-PLAYLIST-TYPE:VOD"), "{p}");
        assert!(p.ends_with("en.vtt?avh=s\n#EXT-X-ENDLIST\n"), "{p}");
        assert_eq!(entries(&p).unwrap().len(), 1);
    }

    #[test]
    fn playlists_join_and_end_only_when_complete() {
        let a = entries("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:0.500000,\nseg_00000.ts\n#EXTINF:2.000000,\nseg_00001.ts\n#EXT-X-ENDLIST\n").unwrap();
        assert_eq!(a, vec![(0.5, "seg_00000.ts".to_string()), (2.0, "seg_00001.ts".to_string())]);
        let mut all = a.clone();
        all.extend(entries("#EXTM3U\n#EXT-X-TARGETDURATION:3\n#EXTINF:2.5,\nseg_p001_00000.ts\n").unwrap());
        assert!(entries("not a playlist").is_err());
        let growing = joined(&all, false);
        assert!(!growing.contains("ENDLIST") && growing.contains("#EXT-X-TARGETDURATION:3"), "{growing}");
        assert!(growing.contains("#EXT-X-PLAYLIST-TYPE:EVENT"), "{growing}");
        assert!(growing.ends_with("#EXTINF:2.5,\nseg_p001_00000.ts\n"), "{growing}");
        let done = joined(&all, true);
        assert!(done.ends_with("#EXT-X-ENDLIST\n") && is_ended(done.as_bytes()));
        assert_eq!(segment_uris(&done), ["seg_00000.ts", "seg_00001.ts", "seg_p001_00000.ts"]);
        assert_eq!(unended(&done), growing);
    }

    #[test]
    fn private_playlists_carry_the_session_in_every_uri() {
        let p = with_session(b"#EXTM3U\n#EXTINF:2,\nseg_00000.ts\nseg_1.ts?x=1\n".to_vec(), "?avh=s");
        assert_eq!(String::from_utf8(p).unwrap(), "#EXTM3U\n#EXTINF:2,\nseg_00000.ts?avh=s\nseg_1.ts?x=1\n");
    }
}
