//! Player analytics: viewing sessions and their events, appended by the collector and read by
//! the three session endpoints (contract rows 45–47).

use async_trait::async_trait;

use crate::analytics::{ExportRow, Period, PlayerEvent, PlayerSession, QoeSummary};
use crate::error::CoreResult;
use crate::id::{MediaId, PlayerSessionId, WorkspaceId};
use crate::model::PageRequest;

/// What the collector needs to know of a session before it takes its events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionHead {
    pub workspace_id: WorkspaceId,
    pub media: MediaId,
    pub loaded_at: i64,
}

#[async_trait]
pub trait AnalyticsRepo: Send + Sync {
    /// Stores a new session (and its metadata pairs, for the `metadata[k]=v` filter).
    async fn insert_player_session(&self, s: &PlayerSession) -> CoreResult<()>;
    /// The session whatever its workspace: the collector is named by session id alone.
    async fn player_session_head(&self, id: &PlayerSessionId) -> CoreResult<SessionHead>;
    /// Appends a batch of one session's events; an event already stored (same session and `seq`)
    /// is skipped. Returns once the batch is committed, with how many were new (batches are
    /// committed in groups: when a group held rows already stored, its new rows are credited to
    /// its batches in order, so the counts add up but one batch's may be another's). `media` is
    /// the session's subject (its head's, which the caller has read already: not read again for
    /// every batch).
    async fn append_player_events(&self, media: &MediaId, events: Vec<PlayerEvent>) -> CoreResult<u64>;
    /// The sessions of `media` (one of `ws`'s) loaded within `period`, newest first, that carry
    /// every pair of `metadata`.
    async fn list_player_sessions(
        &self,
        ws: &WorkspaceId,
        media: &MediaId,
        period: Period,
        metadata: &[(String, String)],
        page: PageRequest,
    ) -> CoreResult<(Vec<PlayerSession>, u64)>;
    /// A session's events of api.video's seven types, in the order they were emitted;
    /// `NotFound` when the session is not `ws`'s.
    async fn list_player_events(
        &self,
        ws: &WorkspaceId,
        id: &PlayerSessionId,
        page: PageRequest,
    ) -> CoreResult<(Vec<PlayerEvent>, u64)>;
    /// The quality of experience of `media`'s sessions loaded within `period` (Vidi's extension).
    async fn qoe_summary(&self, ws: &WorkspaceId, media: &MediaId, period: Period) -> CoreResult<QoeSummary>;
    /// Raw events emitted within `period`, every workspace's, in (time, session, seq) order,
    /// `limit` at a time after the event `after` names (`(emitted_at, session, seq)`), for
    /// `vidi analytics export` to stream without holding them all.
    async fn export_player_events(
        &self,
        period: Period,
        after: Option<(i64, PlayerSessionId, i64)>,
        limit: u32,
    ) -> CoreResult<Vec<ExportRow>>;
    /// Deletes up to `limit` sessions loaded before `before` (unix ms), with their events and
    /// metadata, oldest first, in one transaction; returns how many sessions went. The retention
    /// sweep calls it until it returns less than `limit`, so no call holds SQLite's writer long.
    async fn prune_player_sessions(&self, before: i64, limit: u32) -> CoreResult<u64>;
    /// Whether `session` is the playback session a private token of `media` is bound to and
    /// still open: a check only, which never binds a token (the collector must not use up a
    /// viewer's private link).
    async fn in_playback_session(&self, media: &MediaId, session: &str, now: i64) -> CoreResult<bool>;
}
