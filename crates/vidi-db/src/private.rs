//! Private videos' tokens and the playback sessions they open.

use async_trait::async_trait;
use vidi_core::CoreResult;
use vidi_core::id::VideoId;
use vidi_core::repo::PrivateRepo;

use crate::{Arg, Db, bind_args, db_err, with_pool};

#[async_trait]
impl PrivateRepo for Db {
    async fn mint_private_tokens(&self, tokens: &[(&VideoId, &str)], now: i64, expires_at: i64) -> CoreResult<()> {
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
        let mut sql = String::from("INSERT INTO private_tokens (token, video_id, expires_at) VALUES ");
        let mut args = Vec::with_capacity(tokens.len() * 2 + 1);
        args.push(Arg::Int(expires_at));
        for (i, (video, token)) in tokens.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("(${}, ${}, $1)", args.len() + 1, args.len() + 2));
            args.push(Arg::Text(token.to_string()));
            args.push(Arg::Text(video.as_str().to_string()));
        }
        // Only placeholders are built into the text; every value is bound.
        with_pool!(self, p => bind_args!(sqlx::query(sqlx::AssertSqlSafe(sql.as_str())), &args)
            .execute(p).await.map(|_| ()).map_err(db_err))
    }

    async fn admit_private(
        &self,
        id: &VideoId,
        token: &str,
        session: &str,
        now: i64,
        session_ttl: i64,
    ) -> CoreResult<bool> {
        // The common case, a token already bound, is one read; binding is one conditional write,
        // so two first requests racing bind the token to exactly one session.
        let row: Option<(i64, Option<String>)> = with_pool!(self, p => sqlx::query_as(
            "SELECT expires_at, session FROM private_tokens WHERE token = $1 AND video_id = $2")
            .bind(token).bind(id.as_str()).fetch_optional(p).await.map_err(db_err))?;
        match row {
            None => Ok(false),
            Some((exp, _)) if exp < now => Ok(false),
            Some((_, Some(bound))) => Ok(bound == session),
            Some((_, None)) => {
                let r = with_pool!(self, p => sqlx::query(
                    "UPDATE private_tokens SET session = $3, expires_at = $4 \
                     WHERE token = $1 AND video_id = $2 AND session IS NULL")
                    .bind(token).bind(id.as_str()).bind(session).bind(now + session_ttl)
                    .execute(p).await.map(|r| r.rows_affected()).map_err(db_err))?;
                if r == 1 {
                    return Ok(true);
                }
                let bound: Option<(Option<String>,)> = with_pool!(self, p => sqlx::query_as(
                    "SELECT session FROM private_tokens WHERE token = $1")
                    .bind(token).fetch_optional(p).await.map_err(db_err))?;
                Ok(bound.and_then(|(s,)| s).is_some_and(|s| s == session))
            }
        }
    }
}
