//! [`TrackRepo`]: captions and chapters of a video. The two tables differ only in captions'
//! `is_default`, so each statement is written once, for a table named by [`TrackKind`] (a fixed
//! string chosen here, never user text).

use async_trait::async_trait;
use vidi_core::id::{VideoId, WorkspaceId};
use vidi_core::keys::TrackKind;
use vidi_core::language::Language;
use vidi_core::model::PageRequest;
use vidi_core::repo::{TextTrack, TrackRepo};
use vidi_core::{CoreError, CoreResult};

use crate::{Db, db_err, with_pool};

#[derive(sqlx::FromRow)]
struct TrackRow {
    video_id: String,
    language: String,
    file_key: String,
    is_default: bool,
    created_at: i64,
    updated_at: i64,
}

impl From<TrackRow> for TextTrack {
    fn from(r: TrackRow) -> Self {
        TextTrack {
            video_id: VideoId::from_trusted(r.video_id),
            language: Language::from_trusted(r.language),
            key: r.file_key,
            is_default: r.is_default,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// The columns of a row; chapters have no default.
fn columns(kind: TrackKind) -> &'static str {
    match kind {
        TrackKind::Captions => "video_id, language, file_key, is_default, created_at, updated_at",
        TrackKind::Chapters => "video_id, language, file_key, FALSE AS is_default, created_at, updated_at",
    }
}

async fn put(
    db: &Db,
    kind: TrackKind,
    ws: &WorkspaceId,
    video: &VideoId,
    language: &Language,
    key: &str,
    now: i64,
) -> CoreResult<(TextTrack, Option<String>)> {
    let table = kind.as_str();
    let previous_sql = format!("SELECT file_key FROM {table} WHERE video_id = $1 AND language = $2");
    let update_sql = format!("UPDATE {table} SET file_key = $3, updated_at = $4 WHERE video_id = $1 AND language = $2");
    let insert_sql = format!(
        "INSERT INTO {table} (workspace_id, video_id, language, file_key, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5)"
    );
    let row_sql = format!("SELECT {} FROM {table} WHERE video_id = $1 AND language = $2", columns(kind));
    with_pool!(db, p => {
        let mut tx = p.begin().await.map_err(db_err)?;
        // The video's lock (the row lock on PostgreSQL, the write lock on SQLite) orders every
        // change to its tracks, so two uploads of one language each learn which file they
        // replaced, and none is left unreferenced.
        let locked = sqlx::query("UPDATE videos SET lock_seq = lock_seq + 1 WHERE id = $1 AND workspace_id = $2")
            .bind(video.as_str()).bind(ws.as_str()).execute(&mut *tx).await.map_err(db_err)?;
        if locked.rows_affected() == 0 {
            return Err(CoreError::NotFound);
        }
        let previous: Option<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(previous_sql.as_str()))
            .bind(video.as_str()).bind(language.as_str()).fetch_optional(&mut *tx).await.map_err(db_err)?;
        if previous.is_some() {
            sqlx::query(sqlx::AssertSqlSafe(update_sql.as_str()))
                .bind(video.as_str()).bind(language.as_str()).bind(key).bind(now)
                .execute(&mut *tx).await.map_err(db_err)?;
        } else {
            sqlx::query(sqlx::AssertSqlSafe(insert_sql.as_str()))
                .bind(ws.as_str()).bind(video.as_str()).bind(language.as_str()).bind(key).bind(now)
                .execute(&mut *tx).await.map_err(db_err)?;
        }
        let row: TrackRow = sqlx::query_as(sqlx::AssertSqlSafe(row_sql.as_str()))
            .bind(video.as_str()).bind(language.as_str()).fetch_one(&mut *tx).await.map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok((row.into(), previous.map(|(k,)| k)))
    })
}

async fn get(
    db: &Db,
    kind: TrackKind,
    ws: &WorkspaceId,
    video: &VideoId,
    language: &Language,
) -> CoreResult<TextTrack> {
    let sql = format!(
        "SELECT {} FROM {} WHERE workspace_id = $1 AND video_id = $2 AND language = $3",
        columns(kind),
        kind.as_str()
    );
    let row: TrackRow = with_pool!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(ws.as_str()).bind(video.as_str()).bind(language.as_str()).fetch_one(p).await.map_err(db_err))?;
    Ok(row.into())
}

/// A page of a video's tracks (all of them with `None`), oldest first, and how many there are.
async fn list(
    db: &Db,
    kind: TrackKind,
    ws: &WorkspaceId,
    video: &VideoId,
    page: Option<PageRequest>,
) -> CoreResult<(Vec<TextTrack>, u64)> {
    let table = kind.as_str();
    // The language breaks ties (two uploads in one millisecond), so pages never repeat a row.
    let sql = format!(
        "SELECT {} FROM {table} WHERE workspace_id = $1 AND video_id = $2 \
         ORDER BY created_at, language LIMIT $3 OFFSET $4",
        columns(kind)
    );
    let count_sql = format!("SELECT COUNT(*) FROM {table} WHERE workspace_id = $1 AND video_id = $2");
    let (limit, offset) = match page {
        Some(p) => (p.size as i64, p.offset() as i64),
        None => (i64::MAX, 0),
    };
    let (total, rows): (i64, Vec<TrackRow>) = with_pool!(db, p => {
        let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(count_sql.as_str()))
            .bind(ws.as_str()).bind(video.as_str()).fetch_one(p).await.map_err(db_err)?;
        let rows = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(ws.as_str()).bind(video.as_str()).bind(limit).bind(offset)
            .fetch_all(p).await.map_err(db_err)?;
        (n, rows)
    });
    Ok((rows.into_iter().map(TextTrack::from).collect(), total as u64))
}

async fn delete(
    db: &Db,
    kind: TrackKind,
    ws: &WorkspaceId,
    video: &VideoId,
    language: &Language,
) -> CoreResult<String> {
    let table = kind.as_str();
    let key_sql = format!("SELECT file_key FROM {table} WHERE workspace_id = $1 AND video_id = $2 AND language = $3");
    let delete_sql = format!("DELETE FROM {table} WHERE workspace_id = $1 AND video_id = $2 AND language = $3");
    with_pool!(db, p => {
        let mut tx = p.begin().await.map_err(db_err)?;
        let locked = sqlx::query("UPDATE videos SET lock_seq = lock_seq + 1 WHERE id = $1 AND workspace_id = $2")
            .bind(video.as_str()).bind(ws.as_str()).execute(&mut *tx).await.map_err(db_err)?;
        if locked.rows_affected() == 0 {
            return Err(CoreError::NotFound);
        }
        let key: Option<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(key_sql.as_str()))
            .bind(ws.as_str()).bind(video.as_str()).bind(language.as_str())
            .fetch_optional(&mut *tx).await.map_err(db_err)?;
        let Some((key,)) = key else { return Err(CoreError::NotFound) };
        sqlx::query(sqlx::AssertSqlSafe(delete_sql.as_str()))
            .bind(ws.as_str()).bind(video.as_str()).bind(language.as_str())
            .execute(&mut *tx).await.map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(key)
    })
}

#[async_trait]
impl TrackRepo for Db {
    async fn put_track(
        &self,
        kind: TrackKind,
        ws: &WorkspaceId,
        video: &VideoId,
        language: &Language,
        key: &str,
        now: i64,
    ) -> CoreResult<(TextTrack, Option<String>)> {
        put(self, kind, ws, video, language, key, now).await
    }

    async fn get_track(
        &self,
        kind: TrackKind,
        ws: &WorkspaceId,
        video: &VideoId,
        language: &Language,
    ) -> CoreResult<TextTrack> {
        get(self, kind, ws, video, language).await
    }

    async fn list_tracks(
        &self,
        kind: TrackKind,
        ws: &WorkspaceId,
        video: &VideoId,
        page: PageRequest,
    ) -> CoreResult<(Vec<TextTrack>, u64)> {
        list(self, kind, ws, video, Some(page)).await
    }

    async fn all_tracks(&self, kind: TrackKind, ws: &WorkspaceId, video: &VideoId) -> CoreResult<Vec<TextTrack>> {
        Ok(list(self, kind, ws, video, None).await?.0)
    }

    async fn set_caption_default(
        &self,
        ws: &WorkspaceId,
        video: &VideoId,
        language: &Language,
        default: bool,
        now: i64,
    ) -> CoreResult<TextTrack> {
        let row_sql =
            format!("SELECT {} FROM captions WHERE video_id = $1 AND language = $2", columns(TrackKind::Captions));
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db_err)?;
            let locked = sqlx::query("UPDATE videos SET lock_seq = lock_seq + 1 WHERE id = $1 AND workspace_id = $2")
                .bind(video.as_str()).bind(ws.as_str()).execute(&mut *tx).await.map_err(db_err)?;
            if locked.rows_affected() == 0 {
                return Err(CoreError::NotFound);
            }
            if default {
                // Contract §10 [decision]: at most one default per video; the new one wins.
                sqlx::query("UPDATE captions SET is_default = FALSE, updated_at = $3 \
                             WHERE video_id = $1 AND language <> $2 AND is_default")
                    .bind(video.as_str()).bind(language.as_str()).bind(now)
                    .execute(&mut *tx).await.map_err(db_err)?;
            }
            let changed = sqlx::query("UPDATE captions SET is_default = $3, updated_at = $4 \
                                       WHERE workspace_id = $5 AND video_id = $1 AND language = $2")
                .bind(video.as_str()).bind(language.as_str()).bind(default).bind(now).bind(ws.as_str())
                .execute(&mut *tx).await.map_err(db_err)?;
            if changed.rows_affected() == 0 {
                return Err(CoreError::NotFound);
            }
            let row: TrackRow = sqlx::query_as(sqlx::AssertSqlSafe(row_sql.as_str()))
                .bind(video.as_str()).bind(language.as_str()).fetch_one(&mut *tx).await.map_err(db_err)?;
            tx.commit().await.map_err(db_err)?;
            Ok(row.into())
        })
    }

    async fn delete_track(
        &self,
        kind: TrackKind,
        ws: &WorkspaceId,
        video: &VideoId,
        language: &Language,
    ) -> CoreResult<String> {
        delete(self, kind, ws, video, language).await
    }
}
