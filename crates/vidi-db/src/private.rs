//! Private tokens and the playback sessions they open, for videos and live streams alike: one
//! mechanism over two pairs of tables (a subject's table and its tokens'), so the rules (tokens
//! only for the workspace's own subjects, single-use binding, expiry) are written once.

use async_trait::async_trait;
use vidi_core::id::{VideoId, WorkspaceId};
use vidi_core::repo::PrivateRepo;
use vidi_core::{CoreError, CoreResult};

use crate::{Arg, Db, bind_args, db_err, with_pool};

/// Where one kind of subject keeps its private tokens. Only these constants exist, so the names
/// built into statements are never input.
pub(crate) struct TokenTables {
    /// The subjects' table (`id`, `workspace_id`).
    owners: &'static str,
    /// The tokens' table (`token`, the subject column, `expires_at`, `session`).
    tokens: &'static str,
    /// The tokens' column naming the subject.
    subject: &'static str,
}

pub(crate) const VIDEO_TOKENS: TokenTables =
    TokenTables { owners: "videos", tokens: "private_tokens", subject: "video_id" };
pub(crate) const LIVE_TOKENS: TokenTables =
    TokenTables { owners: "live_streams", tokens: "live_private_tokens", subject: "live_stream_id" };

impl Db {
    /// Stores new private tokens, `(subject id, token)` pairs, in one statement, all of subjects
    /// of `ws`: `NotFound` when one is not (a subject of another workspace, or deleted
    /// meanwhile, gets no token; those of `ws` keep theirs, which admit nothing beyond their own
    /// subject).
    pub(crate) async fn mint_tokens(
        &self,
        t: &TokenTables,
        ws: &WorkspaceId,
        tokens: &[(&str, &str)],
        now: i64,
        expires_at: i64,
    ) -> CoreResult<()> {
        if tokens.is_empty() {
            return Ok(());
        }
        self.sweep_tokens(now).await?;
        // Still one statement: the pairs are joined to the workspace's subjects, so a token is
        // stored only for a subject of `ws` (VALUES columns are column1, column2… on both
        // dialects).
        let mut values = String::new();
        let mut args = Vec::with_capacity(tokens.len() * 2 + 2);
        args.push(Arg::Int(expires_at));
        args.push(Arg::Text(ws.as_str().to_string()));
        for (i, (subject, token)) in tokens.iter().enumerate() {
            if i > 0 {
                values.push_str(", ");
            }
            values.push_str(&format!("(${}, ${})", args.len() + 1, args.len() + 2));
            args.push(Arg::Text(token.to_string()));
            args.push(Arg::Text(subject.to_string()));
        }
        let sql = format!(
            "INSERT INTO {tokens} (token, {subject}, expires_at) SELECT t.column1, o.id, $1 \
             FROM (VALUES {values}) AS t JOIN {owners} o ON o.id = t.column2 WHERE o.workspace_id = $2",
            tokens = t.tokens,
            subject = t.subject,
            owners = t.owners,
        );
        // Only placeholders and the constant table names are built into the text; every value
        // is bound.
        let n = with_pool!(self, p => bind_args!(sqlx::query(sqlx::AssertSqlSafe(sql.as_str())), &args)
            .execute(p).await.map(|r| r.rows_affected()).map_err(db_err))?;
        if n < tokens.len() as u64 {
            return Err(CoreError::NotFound);
        }
        Ok(())
    }

    /// Sweeping expired tokens on every read doubled the statements of a private video's GET;
    /// once a minute per process keeps the tables as small. Both kinds' tables go together.
    async fn sweep_tokens(&self, now: i64) -> CoreResult<()> {
        use std::sync::atomic::Ordering::Relaxed;
        let last = self.token_sweep_at.load(Relaxed);
        if now - last <= 60_000 || self.token_sweep_at.compare_exchange(last, now, Relaxed, Relaxed).is_err() {
            return Ok(());
        }
        for t in [&VIDEO_TOKENS, &LIVE_TOKENS] {
            let sql = format!("DELETE FROM {} WHERE expires_at < $1", t.tokens);
            with_pool!(self, p => sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(now).execute(p).await.map(|_| ()).map_err(db_err))?;
        }
        Ok(())
    }

    /// Admits a request under a private token: a token not used yet is bound to `session` for
    /// `session_ttl` ms; a used one admits only the session it is bound to. `NotFound` when the
    /// subject is not one of `ws`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn admit_token(
        &self,
        t: &TokenTables,
        ws: &WorkspaceId,
        id: &str,
        token: &str,
        session: &str,
        now: i64,
        session_ttl: i64,
    ) -> CoreResult<bool> {
        let (owners, tokens, subject) = (t.owners, t.tokens, t.subject);
        // The common case, a token already bound, is one read; binding is one conditional write,
        // so two first requests racing bind the token to exactly one session.
        // Joined from the subject: no row when it is not `ws`'s, NULLs when the token is unknown.
        let read = format!(
            "SELECT t.expires_at, t.session FROM {owners} o \
             LEFT JOIN {tokens} t ON t.{subject} = o.id AND t.token = $1 \
             WHERE o.id = $2 AND o.workspace_id = $3"
        );
        let row: Option<(Option<i64>, Option<String>)> = with_pool!(self, p => sqlx::query_as(sqlx::AssertSqlSafe(read.as_str()))
            .bind(token).bind(id).bind(ws.as_str()).fetch_optional(p).await.map_err(db_err))?;
        match row.ok_or(CoreError::NotFound)? {
            (None, _) => Ok(false),
            (Some(exp), _) if exp < now => Ok(false),
            (_, Some(bound)) => Ok(bound == session),
            (_, None) => {
                let bind = format!(
                    "UPDATE {tokens} SET session = $3, expires_at = $4 \
                     WHERE token = $1 AND {subject} = $2 AND session IS NULL"
                );
                let r = with_pool!(self, p => sqlx::query(sqlx::AssertSqlSafe(bind.as_str()))
                    .bind(token).bind(id).bind(session).bind(now + session_ttl)
                    .execute(p).await.map(|r| r.rows_affected()).map_err(db_err))?;
                if r == 1 {
                    return Ok(true);
                }
                let again = format!("SELECT session FROM {tokens} WHERE token = $1 AND {subject} = $2");
                let bound: Option<(Option<String>,)> = with_pool!(self, p => sqlx::query_as(sqlx::AssertSqlSafe(again.as_str()))
                    .bind(token).bind(id).fetch_optional(p).await.map_err(db_err))?;
                Ok(bound.and_then(|(s,)| s).is_some_and(|s| s == session))
            }
        }
    }
}

#[async_trait]
impl PrivateRepo for Db {
    async fn mint_private_tokens(
        &self,
        ws: &WorkspaceId,
        tokens: &[(&VideoId, &str)],
        now: i64,
        expires_at: i64,
    ) -> CoreResult<()> {
        let pairs: Vec<(&str, &str)> = tokens.iter().map(|(v, t)| (v.as_str(), *t)).collect();
        self.mint_tokens(&VIDEO_TOKENS, ws, &pairs, now, expires_at).await
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
        self.admit_token(&VIDEO_TOKENS, ws, id.as_str(), token, session, now, session_ttl).await
    }
}
