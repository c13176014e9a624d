//! [`LiveStreamRepo`]: live streams, by workspace, and the private tokens of the private ones.

use async_trait::async_trait;
use vidi_core::id::{LiveStreamId, WorkspaceId};
use vidi_core::live::{LiveStream, Restream};
use vidi_core::model::PageRequest;
use vidi_core::repo::{LiveStreamFilter, LiveStreamRepo, LiveStreamSort};
use vidi_core::{CoreError, CoreResult};

use crate::private::LIVE_TOKENS;
use crate::videos::{json, like_pattern, to_json};
use crate::{Arg, Db, bind_args, db_err, found, with_pool};

pub(crate) const COLUMNS: &str = "id, workspace_id, name, stream_key, record, public, player_id, restreams, thumbnail_key, \
     broadcasting, created_at, updated_at";

#[derive(sqlx::FromRow)]
pub(crate) struct LiveRow {
    id: String,
    workspace_id: String,
    name: String,
    stream_key: String,
    record: bool,
    public: bool,
    player_id: Option<String>,
    restreams: String,
    thumbnail_key: Option<String>,
    broadcasting: bool,
    created_at: i64,
    updated_at: i64,
}

impl LiveRow {
    pub(crate) fn into_live(self) -> CoreResult<LiveStream> {
        let restreams: Vec<Restream> = json(&self.restreams)?;
        Ok(LiveStream {
            id: LiveStreamId::from_trusted(self.id),
            workspace_id: WorkspaceId::from_trusted(self.workspace_id),
            name: self.name,
            stream_key: self.stream_key,
            record: self.record,
            public: self.public,
            player_id: self.player_id,
            restreams,
            thumbnail_key: self.thumbnail_key,
            broadcasting: self.broadcasting,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

#[async_trait]
impl LiveStreamRepo for Db {
    async fn insert_live_stream(&self, l: &LiveStream) -> CoreResult<()> {
        with_pool!(self, p => sqlx::query(
            "INSERT INTO live_streams (id, workspace_id, name, stream_key, record, public, player_id, restreams, \
             thumbnail_key, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")
            .bind(l.id.as_str()).bind(l.workspace_id.as_str()).bind(&l.name).bind(&l.stream_key)
            .bind(l.record).bind(l.public).bind(&l.player_id).bind(to_json(&l.restreams))
            .bind(&l.thumbnail_key).bind(l.created_at).bind(l.updated_at)
            .execute(p).await.map(|_| ()).map_err(db_err))
    }

    async fn get_live_stream(&self, ws: &WorkspaceId, id: &LiveStreamId) -> CoreResult<LiveStream> {
        let sql = format!("SELECT {COLUMNS} FROM live_streams WHERE id = $1 AND workspace_id = $2");
        let row: LiveRow = with_pool!(self, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(id.as_str()).bind(ws.as_str()).fetch_one(p).await.map_err(db_err))?;
        row.into_live()
    }

    async fn list_live_streams(
        &self,
        ws: &WorkspaceId,
        f: &LiveStreamFilter,
        page: PageRequest,
    ) -> CoreResult<(Vec<LiveStream>, u64)> {
        let mut args = vec![Arg::Text(ws.as_str().to_string())];
        let mut wh = String::from("workspace_id = $1");
        if let Some(k) = &f.stream_key {
            args.push(Arg::Text(k.clone()));
            wh += &format!(" AND stream_key = ${}", args.len());
        }
        // Case-insensitive on both dialects, as the videos' title filter.
        if let Some(n) = &f.name {
            args.push(Arg::Text(like_pattern(n)));
            wh += &format!(" AND lower(name) LIKE ${} ESCAPE '\\'", args.len());
        }
        // Fixed strings chosen here, never user text.
        let col = match f.sort {
            LiveStreamSort::CreatedAt => "created_at",
            LiveStreamSort::Name => "name",
            LiveStreamSort::UpdatedAt => "updated_at",
        };
        let dir = if f.descending { "DESC" } else { "ASC" };
        let count_sql = format!("SELECT COUNT(*) FROM live_streams WHERE {wh}");
        let lim = args.len() + 1;
        // The id breaks ties, so pages never repeat or skip a live stream.
        let list_sql = format!(
            "SELECT {COLUMNS} FROM live_streams WHERE {wh} ORDER BY {col} {dir}, id {dir} LIMIT ${lim} OFFSET ${}",
            lim + 1
        );
        let mut list_args = args;
        let (total, rows): (i64, Vec<LiveRow>) = with_pool!(self, p => {
            let (n,): (i64,) = bind_args!(sqlx::query_as(sqlx::AssertSqlSafe(count_sql.as_str())), &list_args)
                .fetch_one(p).await.map_err(db_err)?;
            list_args.push(Arg::Int(page.size as i64));
            list_args.push(Arg::Int(page.offset() as i64));
            let rows = bind_args!(sqlx::query_as(sqlx::AssertSqlSafe(list_sql.as_str())), &list_args)
                .fetch_all(p).await.map_err(db_err)?;
            (n, rows)
        });
        let lives = rows.into_iter().map(LiveRow::into_live).collect::<CoreResult<Vec<_>>>()?;
        Ok((lives, total as u64))
    }

    async fn update_live_stream(&self, l: &LiveStream) -> CoreResult<()> {
        let n = with_pool!(self, p => sqlx::query(
            "UPDATE live_streams SET name = $3, record = $4, public = $5, player_id = $6, restreams = $7, \
             updated_at = $8 WHERE id = $1 AND workspace_id = $2")
            .bind(l.id.as_str()).bind(l.workspace_id.as_str()).bind(&l.name).bind(l.record).bind(l.public)
            .bind(&l.player_id).bind(to_json(&l.restreams)).bind(l.updated_at)
            .execute(p).await.map(|r| r.rows_affected()).map_err(db_err))?;
        found(n)
    }

    async fn delete_live_stream(&self, ws: &WorkspaceId, id: &LiveStreamId) -> CoreResult<Option<String>> {
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db_err)?;
            // A write first, so two deletes at once queue on SQLite's write lock instead of one
            // failing with SQLITE_BUSY_SNAPSHOT (as `delete_player`).
            let locked = sqlx::query("UPDATE live_streams SET updated_at = updated_at WHERE id = $1 AND workspace_id = $2")
                .bind(id.as_str()).bind(ws.as_str()).execute(&mut *tx).await.map_err(db_err)?;
            if locked.rows_affected() == 0 {
                return Err(CoreError::NotFound);
            }
            let (thumb,): (Option<String>,) =
                sqlx::query_as("SELECT thumbnail_key FROM live_streams WHERE id = $1 AND workspace_id = $2")
                    .bind(id.as_str()).bind(ws.as_str()).fetch_one(&mut *tx).await.map_err(db_err)?;
            sqlx::query("DELETE FROM live_private_tokens WHERE live_stream_id = $1")
                .bind(id.as_str()).execute(&mut *tx).await.map_err(db_err)?;
            sqlx::query("DELETE FROM live_streams WHERE id = $1 AND workspace_id = $2")
                .bind(id.as_str()).bind(ws.as_str()).execute(&mut *tx).await.map_err(db_err)?;
            tx.commit().await.map_err(db_err)?;
            Ok(thumb)
        })
    }

    async fn set_live_thumbnail(
        &self,
        ws: &WorkspaceId,
        id: &LiveStreamId,
        key: Option<&str>,
        now: i64,
    ) -> CoreResult<Option<String>> {
        // Compare-and-set on the previous key, so two uploads racing each learn which key they
        // replaced and no stored thumbnail is left behind unreferenced.
        for _ in 0..8 {
            let previous = self.get_live_stream(ws, id).await?.thumbnail_key;
            let n = with_pool!(self, p => sqlx::query(
                "UPDATE live_streams SET thumbnail_key = $3, updated_at = $4 \
                 WHERE id = $1 AND workspace_id = $2 AND COALESCE(thumbnail_key, '') = $5")
                .bind(id.as_str()).bind(ws.as_str()).bind(key).bind(now)
                .bind(previous.as_deref().unwrap_or(""))
                .execute(p).await.map(|r| r.rows_affected()).map_err(db_err))?;
            if n == 1 {
                return Ok(previous);
            }
        }
        Err(CoreError::Database("the live stream's thumbnail changed too often to be set".into()))
    }

    async fn live_stream_for_delivery(&self, id: &LiveStreamId) -> CoreResult<LiveStream> {
        let sql = format!("SELECT {COLUMNS} FROM live_streams WHERE id = $1");
        let row: LiveRow = with_pool!(self, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(id.as_str()).fetch_one(p).await.map_err(db_err))?;
        row.into_live()
    }

    async fn mint_live_tokens(
        &self,
        ws: &WorkspaceId,
        tokens: &[(&LiveStreamId, &str)],
        now: i64,
        expires_at: i64,
    ) -> CoreResult<()> {
        let pairs: Vec<(&str, &str)> = tokens.iter().map(|(l, t)| (l.as_str(), *t)).collect();
        self.mint_tokens(&LIVE_TOKENS, ws, &pairs, now, expires_at).await
    }

    async fn admit_live_private(
        &self,
        ws: &WorkspaceId,
        id: &LiveStreamId,
        token: &str,
        session: &str,
        now: i64,
        session_ttl: i64,
    ) -> CoreResult<bool> {
        self.admit_token(&LIVE_TOKENS, ws, id.as_str(), token, session, now, session_ttl).await
    }
}
