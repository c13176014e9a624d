//! Tenancy in the repository (issue: seams): every method that touches a tenant's rows takes the
//! workspace and filters by it in SQL. Called with another workspace's id, each answers
//! `NotFound` and changes nothing, on every backend.

use crate::common::*;
use vidi_core::CoreError;
use vidi_core::event::Encoding;
use vidi_core::id::VideoId;
use vidi_core::model::{ProbeOutcome, Quality};
use vidi_core::time::{now_ms, now_ns};

fn not_found<T: std::fmt::Debug>(r: Result<T, CoreError>, what: &str, label: &str) {
    assert!(matches!(r, Err(CoreError::NotFound)), "{label}: {what} with another workspace's id gave {r:?}");
}

backend_test!(another_workspace_gets_not_found_and_changes_nothing);
async fn another_workspace_gets_not_found_and_changes_nothing(b: Backend) {
    let t = TestServer::start(&b).await;
    let repo = t.server.state.repo.clone();
    let label = b.label.as_str();
    let mine = t.ws().await;
    let other = repo.create_workspace("other").await.unwrap();
    let id = t.create_video("tenancy").await;
    // The last of two parts, first: the video has a chunk and an upload session.
    assert_eq!(t.upload(&id, Some("part 2/2"), vec![7u8; 100]).await.status(), 201, "{label}");
    let vid = VideoId::parse(&id).unwrap();
    let planned = vec![Quality { kind: "hls".into(), quality: "240p".into(), status: "waiting".into() }];
    repo.plan_qualities(&mine, &vid, &planned).await.unwrap();
    repo.mint_private_tokens(&mine, &[(&vid, "tok-mine")], now_ms(), now_ms() + 60_000).await.unwrap();
    let before = repo.get_video(&mine, &vid).await.unwrap();
    let chunks = repo.chunks(&mine, &vid).await.unwrap();
    assert_eq!(chunks.len(), 1, "{label}");
    let events = repo.events_after(None, None, 1000).await.unwrap().len();

    // Reads.
    not_found(repo.get_video(&other, &vid).await, "get_video", label);
    not_found(repo.qualities(&other, &vid).await, "qualities", label);
    not_found(repo.chunks(&other, &vid).await, "chunks", label);
    not_found(repo.admit_private(&other, &vid, "tok-mine", "s1", now_ms(), 60_000).await, "admit_private", label);

    // Writes.
    not_found(repo.set_thumbnail(&other, &vid, "videos/x/thumbnail.jpg").await, "set_thumbnail", label);
    not_found(repo.set_playable(&other, &vid, true).await, "set_playable", label);
    not_found(repo.set_encode_error(&other, &vid, Some("boom")).await, "set_encode_error", label);
    not_found(repo.plan_qualities(&other, &vid, &[]).await, "plan_qualities", label);
    not_found(repo.set_quality_status(&other, &vid, "hls", "240p", "failed").await, "set_quality_status", label);
    not_found(repo.complete_quality(&other, &vid, Encoding::Hls, "240p", now_ns()).await, "complete_quality", label);
    not_found(repo.set_probe(&other, &vid, &ProbeOutcome::Failed("x".into())).await, "set_probe", label);
    not_found(repo.source_ready(&other, &vid, "videos/x/source", 1, now_ms()).await, "source_ready", label);
    not_found(repo.set_upload_session(&other, &vid, "s").await, "set_upload_session", label);
    not_found(repo.release_chunk(&other, &vid, 0, &t.server.state.instance).await, "release_chunk", label);
    not_found(repo.commit_chunk(&other, &vid, 1, 100, "r").await, "commit_chunk", label);
    not_found(repo.finish_whole(&other, &vid, "videos/x/upload", 1, now_ms()).await, "finish_whole", label);
    not_found(
        repo.mint_private_tokens(&other, &[(&vid, "tok-other")], now_ms(), now_ms() + 60_000).await,
        "mint",
        label,
    );

    // Nothing changed: the video, its outputs, its chunks, its tokens, the outbox.
    let after = repo.get_video(&mine, &vid).await.unwrap();
    assert_eq!(
        (&after.encoding, &after.ingest, after.updated_at),
        (&before.encoding, &before.ingest, before.updated_at),
        "{label}"
    );
    assert_eq!(repo.qualities(&mine, &vid).await.unwrap(), planned, "{label}");
    assert_eq!(repo.chunks(&mine, &vid).await.unwrap(), chunks, "{label}");
    assert_eq!(repo.events_after(None, None, 1000).await.unwrap().len(), events, "{label}");
    assert!(!repo.admit_private(&mine, &vid, "tok-other", "s1", now_ms(), 60_000).await.unwrap(), "{label}");
    // The token minted in its own workspace still opens a session there.
    assert!(repo.admit_private(&mine, &vid, "tok-mine", "s1", now_ms(), 60_000).await.unwrap(), "{label}");

    // With its own workspace, the same calls work.
    repo.set_thumbnail(&mine, &vid, "videos/x/thumbnail.jpg").await.unwrap();
    assert!(repo.complete_quality(&mine, &vid, Encoding::Hls, "240p", now_ns()).await.unwrap(), "{label}");
    assert_eq!(repo.qualities(&mine, &vid).await.unwrap()[0].status, "encoded", "{label}");
    let v = repo.get_video(&mine, &vid).await.unwrap();
    assert_eq!(v.encoding.thumbnail_key.as_deref(), Some("videos/x/thumbnail.jpg"), "{label}");
    // A video without outputs or chunks is an empty list, not NotFound.
    let bare = VideoId::parse(&t.create_video("bare").await).unwrap();
    assert!(repo.qualities(&mine, &bare).await.unwrap().is_empty(), "{label}");
    assert!(repo.chunks(&mine, &bare).await.unwrap().is_empty(), "{label}");

    // The one cross-tenant read, for job payloads queued without their workspace.
    assert_eq!(repo.workspace_of_video(&vid).await.unwrap(), mine, "{label}");
    repo.delete_video(&mine, &vid).await.unwrap();
    not_found(repo.workspace_of_video(&vid).await, "workspace_of_video of a deleted video", label);
}

backend_test!(another_workspace_cannot_reach_a_live_stream);
async fn another_workspace_cannot_reach_a_live_stream(b: Backend) {
    use vidi_core::id::LiveStreamId;
    use vidi_core::live::{LiveStream, Restream};
    use vidi_core::repo::LiveStreamFilter;

    let t = TestServer::start(&b).await;
    let repo = t.server.state.repo.clone();
    let label = b.label.as_str();
    let mine = t.ws().await;
    let other = repo.create_workspace("other").await.unwrap();
    let id = LiveStreamId::generate();
    let live = LiveStream {
        id: id.clone(),
        workspace_id: mine.clone(),
        name: "mine".into(),
        stream_key: uuid::Uuid::new_v4().to_string(),
        record: false,
        public: false,
        player_id: None,
        restreams: vec![Restream { name: "yt".into(), server_url: "rtmp://h/app".into(), stream_key: "k".into() }],
        thumbnail_key: Some("live/x/thumbnail-a.jpg".into()),
        broadcasting: false,
        created_at: now_ms(),
        updated_at: now_ms(),
    };
    repo.insert_live_stream(&live).await.unwrap();
    repo.mint_live_tokens(&mine, &[(&id, "ltok-mine")], now_ms(), now_ms() + 60_000).await.unwrap();

    not_found(repo.get_live_stream(&other, &id).await, "get_live_stream", label);
    let page = vidi_core::model::PageRequest { page: 1, size: 25 };
    let (theirs, n) = repo.list_live_streams(&other, &LiveStreamFilter::default(), page).await.unwrap();
    assert!(theirs.is_empty() && n == 0, "{label}");
    let mut changed = live.clone();
    changed.workspace_id = other.clone();
    changed.name = "stolen".into();
    not_found(repo.update_live_stream(&changed).await, "update_live_stream", label);
    not_found(repo.set_live_thumbnail(&other, &id, None, now_ms()).await, "set_live_thumbnail", label);
    not_found(repo.delete_live_stream(&other, &id).await, "delete_live_stream", label);
    not_found(repo.mint_live_tokens(&other, &[(&id, "ltok-other")], now_ms(), now_ms() + 60_000).await, "mint", label);
    not_found(repo.admit_live_private(&other, &id, "ltok-mine", "s1", now_ms(), 60_000).await, "admit", label);

    // Nothing changed, and the workspace's own calls work.
    assert_eq!(repo.get_live_stream(&mine, &id).await.unwrap(), live, "{label}");
    assert!(!repo.admit_live_private(&mine, &id, "ltok-other", "s1", now_ms(), 60_000).await.unwrap(), "{label}");
    assert!(repo.admit_live_private(&mine, &id, "ltok-mine", "s1", now_ms(), 60_000).await.unwrap(), "{label}");
    // Single use: another session is refused, the bound one admitted again.
    assert!(!repo.admit_live_private(&mine, &id, "ltok-mine", "s2", now_ms(), 60_000).await.unwrap(), "{label}");
    assert!(repo.admit_live_private(&mine, &id, "ltok-mine", "s1", now_ms(), 60_000).await.unwrap(), "{label}");
    assert_eq!(repo.delete_live_stream(&mine, &id).await.unwrap().as_deref(), Some("live/x/thumbnail-a.jpg"));
    not_found(repo.get_live_stream(&mine, &id).await, "get after delete", label);
}
