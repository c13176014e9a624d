//! Where everything of a video lives in the media store. Every key is derived here, so the API
//! (which serves and deletes) and the workers (which publish) cannot drift apart. Keys are
//! `/`-separated relative paths under `videos/<id>/`.

/// The prefix holding everything of a video (deleting a video deletes it).
pub fn video_prefix(video_id: &str) -> String {
    format!("videos/{video_id}/")
}

/// The key of a video's complete source.
pub fn source_key(video_id: &str) -> String {
    format!("videos/{video_id}/source")
}

/// A whole-file upload in progress: an object of its own, so racing uploads never write into
/// each other; the one recorded becomes the source (see `Repo::finish_whole`).
pub fn upload_key(video_id: &str, unique: &str) -> String {
    format!("videos/{video_id}/source-{unique}")
}

/// The thumbnail (made by the encoder, picked or uploaded through the API).
pub fn thumbnail_key(video_id: &str) -> String {
    format!("videos/{video_id}/thumbnail.jpg")
}

/// The MP4 remux of the top rendition.
pub fn mp4_key(video_id: &str) -> String {
    format!("videos/{video_id}/mp4/source.mp4")
}

/// The folder of the HLS output: the master playlist and one folder per rendition.
pub fn hls_prefix(video_id: &str) -> String {
    format!("videos/{video_id}/hls")
}

/// The master playlist; its presence is what makes a video playable.
pub fn master_key(video_id: &str) -> String {
    format!("{}/manifest.m3u8", hls_prefix(video_id))
}

/// A file of one rendition's folder: a segment, or the rendition's playlist (`index.m3u8`).
pub fn rendition_key(video_id: &str, rendition: &str, file: &str) -> String {
    format!("{}/{rendition}/{file}", hls_prefix(video_id))
}

/// A rendition's playlist, as players read it.
pub fn rendition_playlist_key(video_id: &str, rendition: &str) -> String {
    rendition_key(video_id, rendition, "index.m3u8")
}

/// The playlist of one piece of a video in one rendition (0: the head); `finish` joins these in order
/// into the rendition's playlist. A piece counts as done once it has them all.
pub fn piece_playlist_key(video_id: &str, rendition: &str, index: u32) -> String {
    rendition_key(video_id, rendition, &format!("piece_{index:03}.m3u8"))
}

/// A player theme's logo. `unique` changes with every upload, so a logo URL can be cached for
/// ever and a new logo is a new URL.
pub fn logo_key(player_id: &str, unique: &str, ext: &str) -> String {
    format!("players/{player_id}/logo-{unique}.{ext}")
}

/// A live stream's uploaded thumbnail. `unique` changes with every upload, so replacing one never
/// overwrites the object a concurrent upload is about to record (the replaced key is deleted).
pub fn live_thumbnail_key(live_stream_id: &str, unique: &str) -> String {
    format!("live/{live_stream_id}/thumbnail-{unique}.jpg")
}

/// The thumbnail a broadcast takes from its own picture every few seconds, served when none was
/// uploaded.
pub fn live_auto_thumbnail_key(live_stream_id: &str) -> String {
    format!("live/{live_stream_id}/thumbnail-live.jpg")
}

/// What a text track file of a video is: captions (subtitles) or chapters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackKind {
    Captions,
    Chapters,
}

impl TrackKind {
    /// The folder under the video, and the path segment of its URLs and API routes.
    pub fn as_str(self) -> &'static str {
        match self {
            TrackKind::Captions => "captions",
            TrackKind::Chapters => "chapters",
        }
    }
}

/// A caption or chapter file (WebVTT) of one language. `unique` changes with every upload, so
/// an upload racing a replacement or a deletion never overwrites the file another one recorded;
/// being under the video's prefix, it goes when the video does.
pub fn track_key(video_id: &str, kind: TrackKind, language: &str, unique: &str) -> String {
    format!("videos/{video_id}/{}/{language}-{unique}.vtt", kind.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Existing stores hold files under these names: they may not change.
    #[test]
    fn keys_keep_their_stored_names() {
        let v = "vi123";
        assert_eq!(video_prefix(v), "videos/vi123/");
        assert_eq!(source_key(v), "videos/vi123/source");
        assert_eq!(upload_key(v, "ab"), "videos/vi123/source-ab");
        assert_eq!(thumbnail_key(v), "videos/vi123/thumbnail.jpg");
        assert_eq!(mp4_key(v), "videos/vi123/mp4/source.mp4");
        assert_eq!(master_key(v), "videos/vi123/hls/manifest.m3u8");
        assert_eq!(rendition_key(v, "720p", "seg_00001.ts"), "videos/vi123/hls/720p/seg_00001.ts");
        assert_eq!(rendition_playlist_key(v, "audio"), "videos/vi123/hls/audio/index.m3u8");
        assert_eq!(piece_playlist_key(v, "240p", 7), "videos/vi123/hls/240p/piece_007.m3u8");
        assert_eq!(track_key(v, TrackKind::Captions, "fr-ca", "n1"), "videos/vi123/captions/fr-ca-n1.vtt");
        assert_eq!(track_key(v, TrackKind::Chapters, "en", "n2"), "videos/vi123/chapters/en-n2.vtt");
        for k in [
            source_key(v),
            master_key(v),
            piece_playlist_key(v, "240p", 7),
            track_key(v, TrackKind::Chapters, "en", "x"),
        ] {
            assert!(k.starts_with(&video_prefix(v)) && crate::blobs::is_safe_key(&k), "{k}");
        }
    }
}
