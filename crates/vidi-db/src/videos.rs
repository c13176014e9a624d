//! Videos: rows, filters, pages.

use async_trait::async_trait;
use vidi_core::clip::Clip;
use vidi_core::id::{VideoId, WorkspaceId};
use vidi_core::model::{
    EncodingState, Ingest, IngestState, PageRequest, ProbeOutcome, SourceKind, UploadMode, Video, VideoFilter,
    VideoSort,
};
use vidi_core::repo::VideoRepo;
use vidi_core::{CoreError, CoreResult};

use crate::{Arg, Db, bind_args, db_err, with_pool};

/// The columns of a video row, as a macro so that whole statements can be spelled at compile
/// time (`concat!`) rather than formatted on every read.
macro_rules! video_columns {
    () => {
        "id, workspace_id, title, description, public, panoramic, mp4_support, player_id, \
    tags, metadata, source_kind, source_ref, created_at, updated_at, published_at, ingest_state, upload_mode, \
    filesize, parts_total, upload_session, source_key, probe, playable, thumbnail_key, encode_error, \
    clip_start, clip_end, mp4_pending"
    };
}

pub(crate) const VIDEO_COLUMNS: &str = video_columns!();

/// The read behind `GET /videos/{id}` and most others.
const GET_VIDEO: &str = concat!("SELECT ", video_columns!(), " FROM videos WHERE id = $1 AND workspace_id = $2");

#[derive(sqlx::FromRow)]
pub(crate) struct VideoRow {
    id: String,
    workspace_id: String,
    title: String,
    description: Option<String>,
    public: bool,
    panoramic: bool,
    mp4_support: bool,
    player_id: Option<String>,
    tags: String,
    metadata: String,
    source_kind: String,
    source_ref: Option<String>,
    created_at: i64,
    updated_at: i64,
    published_at: Option<i64>,
    ingest_state: String,
    upload_mode: String,
    filesize: Option<i64>,
    parts_total: Option<i64>,
    upload_session: Option<String>,
    source_key: Option<String>,
    probe: Option<String>,
    playable: bool,
    thumbnail_key: Option<String>,
    encode_error: Option<String>,
    clip_start: Option<String>,
    clip_end: Option<String>,
    mp4_pending: bool,
}

impl VideoRow {
    /// The row as [`VIDEO_COLUMNS`] lists it, read by the inline reader.
    fn from_inline(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(VideoRow {
            id: r.get(0)?,
            workspace_id: r.get(1)?,
            title: r.get(2)?,
            description: r.get(3)?,
            public: r.get(4)?,
            panoramic: r.get(5)?,
            mp4_support: r.get(6)?,
            player_id: r.get(7)?,
            tags: r.get(8)?,
            metadata: r.get(9)?,
            source_kind: r.get(10)?,
            source_ref: r.get(11)?,
            created_at: r.get(12)?,
            updated_at: r.get(13)?,
            published_at: r.get(14)?,
            ingest_state: r.get(15)?,
            upload_mode: r.get(16)?,
            filesize: r.get(17)?,
            parts_total: r.get(18)?,
            upload_session: r.get(19)?,
            source_key: r.get(20)?,
            probe: r.get(21)?,
            playable: r.get(22)?,
            thumbnail_key: r.get(23)?,
            encode_error: r.get(24)?,
            clip_start: r.get(25)?,
            clip_end: r.get(26)?,
            mp4_pending: r.get(27)?,
        })
    }

    pub(crate) fn into_video(self) -> CoreResult<Video> {
        Ok(Video {
            id: VideoId::from_trusted(self.id),
            workspace_id: WorkspaceId::from_trusted(self.workspace_id),
            title: self.title,
            description: self.description,
            public: self.public,
            panoramic: self.panoramic,
            mp4_support: self.mp4_support,
            player_id: self.player_id,
            tags: json(&self.tags)?,
            metadata: json(&self.metadata)?,
            source_kind: SourceKind::parse(&self.source_kind),
            source_ref: self.source_ref,
            created_at: self.created_at,
            updated_at: self.updated_at,
            published_at: self.published_at,
            ingest: Ingest {
                state: IngestState::parse(&self.ingest_state),
                mode: UploadMode::parse(&self.upload_mode),
                filesize: self.filesize.map(|v| v as u64),
                parts_total: self.parts_total.map(|v| v as u32),
                session: self.upload_session,
                source_key: self.source_key,
                probe: self.probe.as_deref().map(json::<ProbeOutcome>).transpose()?,
            },
            encoding: EncodingState {
                playable: self.playable,
                thumbnail_key: self.thumbnail_key,
                error: self.encode_error,
                mp4_pending: self.mp4_pending,
            },
            clip: (self.clip_start.is_some() || self.clip_end.is_some())
                .then_some(Clip { start: self.clip_start, end: self.clip_end }),
        })
    }
}

/// Writes a video's tags and metadata into the tables the list filters read, inside `$tx`.
macro_rules! write_filters {
    ($tx:expr, $v:expr) => {
        for t in &$v.tags {
            sqlx::query("INSERT INTO video_tags (video_id, tag) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind($v.id.as_str())
                .bind(t)
                .execute(&mut *$tx)
                .await
                .map_err(db_err)?;
        }
        for m in &$v.metadata {
            sqlx::query("INSERT INTO video_metadata (video_id, key, value) VALUES ($1, $2, $3)")
                .bind($v.id.as_str())
                .bind(&m.key)
                .bind(&m.value)
                .execute(&mut *$tx)
                .await
                .map_err(db_err)?;
        }
    };
}
pub(crate) use write_filters;

/// Inserts video `$v` (its row, tags and metadata) inside `$tx`. Its source key, size and live
/// stream are written too, for videos whose source exists before they do (recordings).
macro_rules! insert_video_row {
    ($tx:expr, $v:expr) => {{
        let v: &vidi_core::model::Video = $v;
        let live = (v.source_kind == vidi_core::model::SourceKind::Live).then_some(v.source_ref.as_deref()).flatten();
        sqlx::query(
            "INSERT INTO videos (id, workspace_id, title, description, public, panoramic, mp4_support, player_id, tags, \
             metadata, source_kind, source_ref, created_at, updated_at, published_at, ingest_state, upload_mode, \
             clip_start, clip_end, source_key, filesize, live_stream_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)")
            .bind(v.id.as_str()).bind(v.workspace_id.as_str()).bind(&v.title).bind(&v.description)
            .bind(v.public).bind(v.panoramic).bind(v.mp4_support).bind(&v.player_id)
            .bind(to_json(&v.tags)).bind(to_json(&v.metadata))
            .bind(v.source_kind.as_str()).bind(&v.source_ref)
            .bind(v.created_at).bind(v.updated_at).bind(v.published_at)
            .bind(v.ingest.state.as_str()).bind(v.ingest.mode.as_str())
            .bind(v.clip.as_ref().and_then(|c| c.start.as_deref()))
            .bind(v.clip.as_ref().and_then(|c| c.end.as_deref()))
            .bind(&v.ingest.source_key).bind(v.ingest.filesize.map(|n| n as i64)).bind(live)
            .execute(&mut *$tx).await.map_err(db_err)?;
        write_filters!($tx, v);
    }};
}
pub(crate) use insert_video_row;

pub(crate) fn json<T: serde::de::DeserializeOwned>(s: &str) -> CoreResult<T> {
    serde_json::from_str(s).map_err(|e| CoreError::Database(format!("corrupt JSON column: {e}").into()))
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("plain data serialises")
}

/// Escapes `%`, `_` and `\` for a LIKE pattern with `ESCAPE '\'`.
pub(crate) fn like_pattern(s: &str) -> String {
    let mut out = String::from("%");
    for c in s.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

#[async_trait]
impl VideoRepo for Db {
    async fn insert_video(&self, v: &Video) -> CoreResult<()> {
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db_err)?;
            insert_video_row!(tx, v);
            tx.commit().await.map_err(db_err)
        })
    }

    async fn get_video(&self, ws: &WorkspaceId, id: &VideoId) -> CoreResult<Video> {
        // In place on SQLite (see `inline`).
        if let Some(r) = self.inline.as_ref().and_then(|i| {
            i.read(|c| c.prepare_cached(GET_VIDEO)?.query_row([id.as_str(), ws.as_str()], VideoRow::from_inline))
        }) {
            return match r {
                Ok(row) => row.into_video(),
                Err(_) => Err(CoreError::NotFound), // `read` passes no other error through
            };
        }
        let row: VideoRow = with_pool!(self, p => sqlx::query_as(GET_VIDEO)
            .bind(id.as_str()).bind(ws.as_str()).fetch_one(p).await.map_err(db_err))?;
        row.into_video()
    }

    async fn list_videos(&self, ws: &WorkspaceId, f: &VideoFilter, page: PageRequest) -> CoreResult<(Vec<Video>, u64)> {
        let mut args = vec![Arg::Text(ws.as_str().to_string())];
        let mut wh = String::from("workspace_id = $1");
        let push = |args: &mut Vec<Arg>, a: Arg| {
            args.push(a);
            args.len()
        };
        // Portable case-insensitive substring match: LIKE is case-sensitive on PostgreSQL and
        // ASCII-insensitive on SQLite, lower() on both sides makes them agree.
        if let Some(t) = &f.title {
            let n = push(&mut args, Arg::Text(like_pattern(t)));
            wh += &format!(" AND lower(title) LIKE ${n} ESCAPE '\\'");
        }
        if let Some(d) = &f.description {
            let n = push(&mut args, Arg::Text(like_pattern(d)));
            wh += &format!(" AND lower(COALESCE(description, '')) LIKE ${n} ESCAPE '\\'");
        }
        if let Some(l) = &f.live_stream_id {
            let n = push(&mut args, Arg::Text(l.clone()));
            wh += &format!(" AND live_stream_id = ${n}");
        }
        for t in &f.tags {
            let n = push(&mut args, Arg::Text(t.clone()));
            wh += &format!(" AND EXISTS (SELECT 1 FROM video_tags t WHERE t.video_id = videos.id AND t.tag = ${n})");
        }
        for m in &f.metadata {
            let k = push(&mut args, Arg::Text(m.key.clone()));
            let v = push(&mut args, Arg::Text(m.value.clone()));
            wh += &format!(
                " AND EXISTS (SELECT 1 FROM video_metadata m WHERE m.video_id = videos.id AND m.key = ${k} AND m.value = ${v})"
            );
        }
        let col = match f.sort_by {
            VideoSort::CreatedAt => "created_at",
            VideoSort::Title => "title",
            VideoSort::PublishedAt => "published_at",
            VideoSort::UpdatedAt => "updated_at",
        };
        let dir = if f.descending { "DESC" } else { "ASC" };
        let count_sql = format!("SELECT COUNT(*) FROM videos WHERE {wh}");
        let lim = args.len() + 1;
        // The id breaks ties, so pages never repeat or skip a video.
        let list_sql = format!(
            "SELECT {VIDEO_COLUMNS} FROM videos WHERE {wh} ORDER BY {col} {dir}, id {dir} LIMIT ${lim} OFFSET ${}",
            lim + 1
        );
        let mut list_args = args;
        let total: i64;
        let rows: Vec<VideoRow>;
        with_pool!(self, p => {
            let count_args = &list_args;
            let (n,): (i64,) = bind_args!(sqlx::query_as(sqlx::AssertSqlSafe(count_sql.as_str())), count_args)
                .fetch_one(p).await.map_err(db_err)?;
            total = n;
            list_args.push(Arg::Int(page.size as i64));
            list_args.push(Arg::Int(page.offset() as i64));
            rows = bind_args!(sqlx::query_as(sqlx::AssertSqlSafe(list_sql.as_str())), &list_args)
                .fetch_all(p).await.map_err(db_err)?;
        });
        let videos = rows.into_iter().map(VideoRow::into_video).collect::<CoreResult<Vec<_>>>()?;
        Ok((videos, total as u64))
    }

    async fn video_for_delivery(&self, id: &VideoId) -> CoreResult<Video> {
        let sql = format!("SELECT {VIDEO_COLUMNS} FROM videos WHERE id = $1");
        let row: VideoRow = with_pool!(self, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(id.as_str()).fetch_one(p).await.map_err(db_err))?;
        row.into_video()
    }

    async fn update_video(&self, v: &Video) -> CoreResult<()> {
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db_err)?;
            let r = sqlx::query(
                "UPDATE videos SET title = $3, description = $4, public = $5, panoramic = $6, mp4_support = $7, \
                 player_id = $8, tags = $9, metadata = $10, updated_at = $11 WHERE id = $1 AND workspace_id = $2")
                .bind(v.id.as_str()).bind(v.workspace_id.as_str()).bind(&v.title).bind(&v.description)
                .bind(v.public).bind(v.panoramic).bind(v.mp4_support).bind(&v.player_id)
                .bind(to_json(&v.tags)).bind(to_json(&v.metadata)).bind(v.updated_at)
                .execute(&mut *tx).await.map_err(db_err)?;
            if r.rows_affected() == 0 {
                return Err(CoreError::NotFound);
            }
            sqlx::query("DELETE FROM video_tags WHERE video_id = $1").bind(v.id.as_str()).execute(&mut *tx).await.map_err(db_err)?;
            sqlx::query("DELETE FROM video_metadata WHERE video_id = $1").bind(v.id.as_str()).execute(&mut *tx).await.map_err(db_err)?;
            write_filters!(tx, v);
            tx.commit().await.map_err(db_err)
        })
    }

    async fn delete_video(&self, ws: &WorkspaceId, id: &VideoId) -> CoreResult<()> {
        let affected = with_pool!(self, p => sqlx::query("DELETE FROM videos WHERE id = $1 AND workspace_id = $2")
            .bind(id.as_str()).bind(ws.as_str()).execute(p).await.map(|r| r.rows_affected()).map_err(db_err))?;
        if affected == 0 {
            return Err(CoreError::NotFound);
        }
        Ok(())
    }

    async fn stored_bytes(&self, ws: &WorkspaceId) -> CoreResult<u64> {
        let (n,): (Option<i64>,) = with_pool!(self, p => sqlx::query_as(
            "SELECT CAST(SUM(filesize) AS BIGINT) FROM videos WHERE workspace_id = $1 AND ingest_state = 'uploaded'")
            .bind(ws.as_str()).fetch_one(p).await.map_err(db_err))?;
        Ok(n.unwrap_or(0) as u64)
    }
}
