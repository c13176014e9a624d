//! Text tracks of a video: captions and chapters, one WebVTT file per (video, kind, language)
//! (contract §10). The two kinds are one resource told apart by [`TrackKind`]; only captions
//! have a `default` (at most one per video).

use async_trait::async_trait;

use crate::error::CoreResult;
use crate::id::{VideoId, WorkspaceId};
pub use crate::keys::TrackKind;
use crate::language::Language;
use crate::model::PageRequest;

/// A caption or chapter file of a video, as stored: the file itself is in the media store under
/// `key` (`vidi_core::keys::track_key`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextTrack {
    pub video_id: VideoId,
    pub language: Language,
    pub key: String,
    /// Captions only (always false for chapters): shown without the viewer asking.
    pub is_default: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

#[async_trait]
pub trait TrackRepo: Send + Sync {
    /// Records the `kind` file of `language` (a new one, or a replacement that keeps a caption's
    /// `default`), under the video's lock. Returns the row and the key of the file it replaced,
    /// for the caller to delete. `NotFound` when the video is not the workspace's.
    async fn put_track(
        &self,
        kind: TrackKind,
        ws: &WorkspaceId,
        video: &VideoId,
        language: &Language,
        key: &str,
        now: i64,
    ) -> CoreResult<(TextTrack, Option<String>)>;
    async fn get_track(
        &self,
        kind: TrackKind,
        ws: &WorkspaceId,
        video: &VideoId,
        language: &Language,
    ) -> CoreResult<TextTrack>;
    /// A page of the video's tracks of `kind`, oldest first (contract §14.11), and how many
    /// there are.
    async fn list_tracks(
        &self,
        kind: TrackKind,
        ws: &WorkspaceId,
        video: &VideoId,
        page: PageRequest,
    ) -> CoreResult<(Vec<TextTrack>, u64)>;
    /// Every track of `kind` of the video (the master playlist, the player page).
    async fn all_tracks(&self, kind: TrackKind, ws: &WorkspaceId, video: &VideoId) -> CoreResult<Vec<TextTrack>>;
    /// Sets a caption's `default`; making one the default clears it on the video's others in the
    /// same transaction, so a video never has two. Chapters have no default.
    async fn set_caption_default(
        &self,
        ws: &WorkspaceId,
        video: &VideoId,
        language: &Language,
        default: bool,
        now: i64,
    ) -> CoreResult<TextTrack>;
    /// Deletes the row; returns its file's key, for the caller to delete.
    async fn delete_track(
        &self,
        kind: TrackKind,
        ws: &WorkspaceId,
        video: &VideoId,
        language: &Language,
    ) -> CoreResult<String>;
}
