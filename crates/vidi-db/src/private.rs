//! Private videos' tokens and the playback sessions they open.

use async_trait::async_trait;
use vidi_core::id::{VideoId, WorkspaceId};
use vidi_core::repo::PrivateRepo;
use vidi_core::{CoreError, CoreResult};

use crate::{Arg, Db, bind_args, db_err, with_pool};

#[async_trait]
impl PrivateRepo for Db {
    async fn mint_private_tokens(
        &self,
        ws: &WorkspaceId,
        tokens: &[(&VideoId, &str)],
        now: i64,
        expires_at: i64,
    ) -> CoreResult<()> {
        if tokens.is_empty() {
            return Ok(());
        }
        // Sweeping expired tokens on every read doubled the statements of a private video's
        // GET; once a minute per process keeps the table as small.
        let last = self.token_sweep_at.load(std::sync::atomic::Ordering::Relaxed);
        if now - last > 60_000
            && self
                .token_sweep_at
                .compare_exchange(last, now, std::sync::atomic::Ordering::Relaxed, std::sync::atomic::Ordering::Relaxed)
                .is_ok()
        {
            with_pool!(self, p => sqlx::query("DELETE FROM private_tokens WHERE expires_at < $1")
                .bind(now).execute(p).await.map(|_| ()).map_err(db_err))?;
        }
        // Still one statement: the pairs are joined to the workspace's videos, so a token is
        // stored only for a video of `ws` (VALUES columns are column1, column2… on both dialects).
        let mut values = String::new();
        let mut args = Vec::with_capacity(tokens.len() * 2 + 2);
        args.push(Arg::Int(expires_at));
        args.push(Arg::Text(ws.as_str().to_string()));
        for (i, (video, token)) in tokens.iter().enumerate() {
            if i > 0 {
                values.push_str(", ");
            }
            values.push_str(&format!("(${}, ${})", args.len() + 1, args.len() + 2));
            args.push(Arg::Text(token.to_string()));
            args.push(Arg::Text(video.as_str().to_string()));
        }
        let sql = format!(
            "INSERT INTO private_tokens (token, video_id, expires_at) SELECT t.column1, v.id, $1 \
             FROM (VALUES {values}) AS t JOIN videos v ON v.id = t.column2 WHERE v.workspace_id = $2"
        );
        // Only placeholders are built into the text; every value is bound.
        let n = with_pool!(self, p => bind_args!(sqlx::query(sqlx::AssertSqlSafe(sql.as_str())), &args)
            .execute(p).await.map(|r| r.rows_affected()).map_err(db_err))?;
        // A video of another workspace (or deleted meanwhile) got no token; those of `ws` keep
        // theirs, which admit nothing beyond their own video.
        if n < tokens.len() as u64 {
            return Err(CoreError::NotFound);
        }
        Ok(())
    }

    async fn admit_private(
        &self,
        ws: &WorkspaceId,
        id: &VideoId,
        token: &str,
        session: &str,
        now: i64,
        session_ttl: i64,
    ) -> CoreResult<bool> {
        // The common case, a token already bound, is one read; binding is one conditional write,
        // so two first requests racing bind the token to exactly one session.
        // Joined from the video: no row when it is not `ws`'s, NULLs when the token is unknown.
        let row: Option<(Option<i64>, Option<String>)> = with_pool!(self, p => sqlx::query_as(
            "SELECT t.expires_at, t.session FROM videos v \
             LEFT JOIN private_tokens t ON t.video_id = v.id AND t.token = $1 \
             WHERE v.id = $2 AND v.workspace_id = $3")
            .bind(token).bind(id.as_str()).bind(ws.as_str()).fetch_optional(p).await.map_err(db_err))?;
        match row.ok_or(CoreError::NotFound)? {
            (None, _) => Ok(false),
            (Some(exp), _) if exp < now => Ok(false),
            (_, Some(bound)) => Ok(bound == session),
            (_, None) => {
                let r = with_pool!(self, p => sqlx::query(
                    "UPDATE private_tokens SET session = $3, expires_at = $4 \
                     WHERE token = $1 AND video_id = $2 AND session IS NULL")
                    .bind(token).bind(id.as_str()).bind(session).bind(now + session_ttl)
                    .execute(p).await.map(|r| r.rows_affected()).map_err(db_err))?;
                if r == 1 {
                    return Ok(true);
                }
                let bound: Option<(Option<String>,)> = with_pool!(self, p => sqlx::query_as(
                    "SELECT session FROM private_tokens WHERE token = $1 AND video_id = $2")
                    .bind(token).bind(id.as_str()).fetch_optional(p).await.map_err(db_err))?;
                Ok(bound.and_then(|(s,)| s).is_some_and(|s| s == session))
            }
        }
    }
}
