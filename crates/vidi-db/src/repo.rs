//! [`Repo`] for [`Db`]: the trait surface, each method delegating to the module that owns it.

use async_trait::async_trait;
use vidi_core::event::{Encoding, Event};
use vidi_core::id::{ApiKeyId, EventId, VideoId, WorkspaceId};
use vidi_core::model::{ApiKeyInfo, Chunk, Job, KeyOwner, PageRequest, ProbeOutcome, Quality, Video, VideoFilter};
use vidi_core::repo::{ChunkClaim, ChunkCommit};
use vidi_core::upload::ContentRange;
use vidi_core::{CoreResult, Repo};

use crate::{Db, Pool};

#[async_trait]
impl Repo for Db {
    fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }
    async fn create_workspace(&self, name: &str) -> CoreResult<WorkspaceId> {
        self.create_workspace_impl(name).await
    }
    async fn default_workspace(&self) -> CoreResult<Option<WorkspaceId>> {
        self.default_workspace_impl().await
    }
    async fn workspace_exists(&self, ws: &WorkspaceId) -> CoreResult<bool> {
        self.workspace_exists_impl(ws).await
    }
    async fn count_api_keys(&self) -> CoreResult<u64> {
        self.count_api_keys_impl().await
    }
    async fn create_api_key(&self, ws: &WorkspaceId, name: &str, key_hash: &str) -> CoreResult<ApiKeyId> {
        self.create_api_key_impl(ws, name, key_hash).await
    }
    async fn find_api_key(&self, key_hash: &str) -> CoreResult<Option<KeyOwner>> {
        self.find_api_key_impl(key_hash).await
    }
    async fn list_api_keys(&self) -> CoreResult<Vec<ApiKeyInfo>> {
        self.list_api_keys_impl().await
    }
    async fn revoke_api_key(&self, id_or_hash: &str, now: i64) -> CoreResult<Option<ApiKeyId>> {
        self.revoke_api_key_impl(id_or_hash, now).await
    }
    async fn api_key_active(&self, key_id: &ApiKeyId) -> CoreResult<bool> {
        self.api_key_active_impl(key_id).await
    }
    async fn insert_refresh_token(&self, owner: &KeyOwner, token_hash: &str, expires_at: i64) -> CoreResult<()> {
        self.insert_refresh_token_impl(owner, token_hash, expires_at).await
    }
    async fn rotate_refresh_token(
        &self,
        old: &str,
        new: &str,
        now: i64,
        grace_ms: i64,
        expires_at: i64,
    ) -> CoreResult<Option<KeyOwner>> {
        self.rotate_refresh_token_impl(old, new, now, grace_ms, expires_at).await
    }
    async fn setting_or_init(&self, name: &str, init: &str) -> CoreResult<String> {
        self.setting_or_init_impl(name, init).await
    }
    async fn heartbeat(&self, instance: &str, now: i64) -> CoreResult<()> {
        self.heartbeat_impl(instance, now).await
    }
    async fn insert_video(&self, video: &Video) -> CoreResult<()> {
        self.insert_video_impl(video).await
    }
    async fn get_video(&self, ws: &WorkspaceId, id: &VideoId) -> CoreResult<Video> {
        self.get_video_impl(ws, id).await
    }
    async fn list_videos(
        &self,
        ws: &WorkspaceId,
        filter: &VideoFilter,
        page: PageRequest,
    ) -> CoreResult<(Vec<Video>, u64)> {
        self.list_videos_impl(ws, filter, page).await
    }
    async fn update_video(&self, video: &Video) -> CoreResult<()> {
        self.update_video_impl(video).await
    }
    async fn delete_video(&self, ws: &WorkspaceId, id: &VideoId) -> CoreResult<()> {
        self.delete_video_impl(ws, id).await
    }
    async fn stored_bytes(&self, ws: &WorkspaceId) -> CoreResult<u64> {
        self.stored_bytes_impl(ws).await
    }
    async fn claim_chunk(
        &self,
        ws: &WorkspaceId,
        id: &VideoId,
        range: ContentRange,
        instance: &str,
        now: i64,
        live_after: i64,
    ) -> CoreResult<ChunkClaim> {
        self.claim_chunk_impl(ws, id, range, instance, now, live_after).await
    }
    async fn set_upload_session(&self, id: &VideoId, session: &str) -> CoreResult<String> {
        self.set_upload_session_impl(id, session).await
    }
    async fn release_chunk(&self, id: &VideoId, idx: u32, instance: &str) -> CoreResult<()> {
        self.release_chunk_impl(id, idx, instance).await
    }
    async fn commit_chunk(&self, id: &VideoId, idx: u32, size: u64, receipt: &str) -> CoreResult<ChunkCommit> {
        self.commit_chunk_impl(id, idx, size, receipt).await
    }
    async fn check_whole(&self, ws: &WorkspaceId, id: &VideoId) -> CoreResult<Video> {
        self.check_whole_impl(ws, id).await
    }
    async fn finish_whole(&self, id: &VideoId, key: &str, size: u64, now: i64) -> CoreResult<()> {
        self.finish_whole_impl(id, key, size, now).await
    }
    async fn chunks(&self, id: &VideoId) -> CoreResult<Vec<Chunk>> {
        self.chunks_impl(id).await
    }
    async fn source_ready(&self, id: &VideoId, key: &str, size: u64, now: i64) -> CoreResult<()> {
        self.source_ready_impl(id, key, size, now).await
    }
    async fn set_probe(&self, id: &VideoId, probe: &ProbeOutcome) -> CoreResult<()> {
        self.set_probe_impl(id, probe).await
    }
    async fn videos_to_recover(&self) -> CoreResult<Vec<(WorkspaceId, VideoId)>> {
        self.videos_to_recover_impl().await
    }
    async fn video_by_id(&self, id: &VideoId) -> CoreResult<Video> {
        self.video_by_id_impl(id).await
    }
    async fn plan_qualities(&self, id: &VideoId, qualities: &[Quality]) -> CoreResult<()> {
        self.plan_qualities_impl(id, qualities).await
    }
    async fn set_quality_status(&self, id: &VideoId, kind: &str, quality: &str, status: &str) -> CoreResult<()> {
        self.set_quality_status_impl(id, kind, quality, status).await
    }
    async fn complete_quality(&self, id: &VideoId, encoding: Encoding, quality: &str, now_ns: i64) -> CoreResult<bool> {
        self.complete_quality_impl(id, encoding, quality, now_ns).await
    }
    async fn events_after(
        &self,
        ws: Option<&WorkspaceId>,
        after: Option<&EventId>,
        limit: u32,
    ) -> CoreResult<Vec<Event>> {
        self.events_after_impl(ws, after, limit).await
    }
    async fn qualities(&self, id: &VideoId) -> CoreResult<Vec<Quality>> {
        self.qualities_impl(id).await
    }
    async fn set_playable(&self, id: &VideoId, playable: bool) -> CoreResult<()> {
        self.set_playable_impl(id, playable).await
    }
    async fn set_thumbnail(&self, id: &VideoId, key: &str) -> CoreResult<()> {
        self.set_video_field_impl(id, "UPDATE videos SET thumbnail_key = $2 WHERE id = $1", Some(key)).await
    }
    async fn set_encode_error(&self, id: &VideoId, error: Option<&str>) -> CoreResult<()> {
        self.set_video_field_impl(id, "UPDATE videos SET encode_error = $2 WHERE id = $1", error).await
    }
    async fn mint_private_tokens(&self, tokens: &[(&VideoId, &str)], now: i64, expires_at: i64) -> CoreResult<()> {
        self.mint_private_tokens_impl(tokens, now, expires_at).await
    }
    async fn admit_private(
        &self,
        id: &VideoId,
        token: &str,
        session: &str,
        now: i64,
        session_ttl: i64,
    ) -> CoreResult<bool> {
        self.admit_private_impl(id, token, session, now, session_ttl).await
    }
    async fn enqueue_job(
        &self,
        kind: &str,
        payload: &serde_json::Value,
        unique_key: &str,
        run_at: i64,
        max_attempts: u32,
    ) -> CoreResult<bool> {
        self.enqueue_job_impl(kind, payload, unique_key, run_at, max_attempts).await
    }
    async fn claim_job(&self, worker: &str, now: i64) -> CoreResult<Option<Job>> {
        self.claim_job_impl(worker, now, None).await
    }
    async fn claim_job_keyed(&self, worker: &str, key_prefix: &str, now: i64) -> CoreResult<Option<Job>> {
        self.claim_job_impl(worker, now, Some(key_prefix)).await
    }
    async fn heartbeat_job(&self, id: &str, worker: &str, now: i64) -> CoreResult<bool> {
        self.heartbeat_job_impl(id, worker, now).await
    }
    async fn complete_job(&self, id: &str, worker: &str, now: i64) -> CoreResult<()> {
        self.complete_job_impl(id, worker, now).await
    }
    async fn fail_job(&self, id: &str, worker: &str, error: &str, retry_at: Option<i64>, now: i64) -> CoreResult<()> {
        self.fail_job_impl(id, worker, error, retry_at, now).await
    }
    async fn release_job(&self, id: &str, worker: &str, now: i64) -> CoreResult<()> {
        self.release_job_impl(id, worker, now).await
    }
    async fn reap_jobs(&self, stale_before: i64, now: i64) -> CoreResult<u64> {
        self.reap_jobs_impl(stale_before, now).await
    }
    async fn job_state(&self, id: &str) -> CoreResult<Option<(String, u32, Option<String>)>> {
        self.job_state_impl(id).await
    }
}
