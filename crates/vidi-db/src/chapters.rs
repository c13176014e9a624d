//! [`ChapterRepo`]: chapters of a video, with the statements captions use (`captions.rs`).

use async_trait::async_trait;
use vidi_core::CoreResult;
use vidi_core::id::{VideoId, WorkspaceId};
use vidi_core::keys::TrackKind;
use vidi_core::language::Language;
use vidi_core::model::PageRequest;
use vidi_core::repo::{ChapterRepo, TextTrack};

use crate::Db;
use crate::captions::{delete, get, list, put};

#[async_trait]
impl ChapterRepo for Db {
    async fn put_chapter(
        &self,
        ws: &WorkspaceId,
        video: &VideoId,
        language: &Language,
        key: &str,
        now: i64,
    ) -> CoreResult<(TextTrack, Option<String>)> {
        put(self, TrackKind::Chapters, ws, video, language, key, now).await
    }

    async fn get_chapter(&self, ws: &WorkspaceId, video: &VideoId, language: &Language) -> CoreResult<TextTrack> {
        get(self, TrackKind::Chapters, ws, video, language).await
    }

    async fn list_chapters(
        &self,
        ws: &WorkspaceId,
        video: &VideoId,
        page: PageRequest,
    ) -> CoreResult<(Vec<TextTrack>, u64)> {
        list(self, TrackKind::Chapters, ws, video, Some(page)).await
    }

    async fn all_chapters(&self, ws: &WorkspaceId, video: &VideoId) -> CoreResult<Vec<TextTrack>> {
        Ok(list(self, TrackKind::Chapters, ws, video, None).await?.0)
    }

    async fn delete_chapter(&self, ws: &WorkspaceId, video: &VideoId, language: &Language) -> CoreResult<String> {
        delete(self, TrackKind::Chapters, ws, video, language).await
    }
}
