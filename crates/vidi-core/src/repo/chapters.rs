//! Chapters of a video: one WebVTT file per (video, language) (contract §10).

use async_trait::async_trait;

use super::captions::TextTrack;
use crate::error::CoreResult;
use crate::id::{VideoId, WorkspaceId};
use crate::language::Language;
use crate::model::PageRequest;

#[async_trait]
pub trait ChapterRepo: Send + Sync {
    /// Records the chapter file of `language` under the video's lock; returns the row and the
    /// key of the file it replaced. `NotFound` when the video is not the workspace's.
    async fn put_chapter(
        &self,
        ws: &WorkspaceId,
        video: &VideoId,
        language: &Language,
        key: &str,
        now: i64,
    ) -> CoreResult<(TextTrack, Option<String>)>;
    async fn get_chapter(&self, ws: &WorkspaceId, video: &VideoId, language: &Language) -> CoreResult<TextTrack>;
    /// A page of the video's chapter files, oldest first, and how many there are.
    async fn list_chapters(
        &self,
        ws: &WorkspaceId,
        video: &VideoId,
        page: PageRequest,
    ) -> CoreResult<(Vec<TextTrack>, u64)>;
    /// Every chapter file of the video (the player page).
    async fn all_chapters(&self, ws: &WorkspaceId, video: &VideoId) -> CoreResult<Vec<TextTrack>>;
    /// Deletes the row; returns its file's key, for the caller to delete.
    async fn delete_chapter(&self, ws: &WorkspaceId, video: &VideoId, language: &Language) -> CoreResult<String>;
}
