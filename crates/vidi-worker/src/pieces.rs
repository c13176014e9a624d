//! Long videos are encoded in pieces: time ranges that start on segment boundaries, each encoded
//! by its own ffmpeg, so the ladder of one video spreads over the cores of a machine and over
//! every worker that shares the database and the media store.
//!
//! The `encode` job leads: it queues a `piece` job for every range but the first, encodes the first
//! itself (published while it grows, so playback starts as fast as for a short video), and
//! meanwhile claims pieces of its own video to run beside it (which also means one worker alone
//! can never wait on work nobody takes). Other workers claim the remaining pieces like any job.
//! A finished piece leaves its segments and, last, one playlist per rendition
//! (`<q>/piece_NNN.m3u8`) in the media store; the lead joins the playlists of the pieces done so
//! far, in order, and ends them when all are there. Pieces after the first run at a lower CPU
//! priority, so that the piece a viewer may already be watching stays ahead of them.

use std::path::{Path, PathBuf};

use vidi_core::id::{VideoId, WorkspaceId};
use vidi_core::jobs::{self, JobKind, pieces_key_prefix};
use vidi_core::time::now_ms;
use vidi_media::encode::{Piece, check_hls_output, hls_piece_args};
use vidi_media::ladder::{self, Rendition};
use vidi_media::playlist::{entries, joined};
use vidi_media::{Jail, Probe};

use vidi_core::keys::{piece_playlist_key, rendition_key, rendition_playlist_key};

use crate::encode::stored_probe;
use crate::{Ctx, JobError};

/// Niceness of the pieces after the first.
pub(crate) const BACKGROUND_NICE: i32 = 10;

/// Queues the pieces after the first (no-op for those already queued or running).
pub(crate) async fn enqueue(ctx: &Ctx, ws: &WorkspaceId, id: &VideoId, pieces: &[Piece]) -> Result<(), JobError> {
    for p in pieces.iter().filter(|p| p.index > 0) {
        let job = JobKind::Piece {
            video_id: id.clone(),
            workspace_id: Some(ws.clone()),
            index: p.index,
            start: p.start_s,
            duration: p.duration_s,
            ts_offset: p.ts_offset_s,
            video_only: p.video_only,
        };
        jobs::enqueue(ctx.repo.as_ref(), &ctx.waker, &job, now_ms(), ctx.cfg.max_attempts).await?;
    }
    Ok(())
}

/// Runs pieces of video `id` that nobody has claimed yet, one after the other, until none is left.
pub(crate) async fn help(ctx: &Ctx, id: &VideoId) -> Result<(), JobError> {
    let me = format!("wk{}-helper", vidi_core::id::random_body());
    let handler = crate::handlers::PieceJob(ctx.clone());
    // A stopping worker takes on nothing more (the piece it was running is handed back).
    while !ctx.held.is_stopping()
        && let Some(job) = ctx.repo.claim_job_keyed(&me, &pieces_key_prefix(id), now_ms()).await?
    {
        // Boxed: a piece job never leads, but the compiler cannot see that the recursion ends.
        Box::pin(crate::execute(ctx, Some(&handler), &me, job)).await;
    }
    Ok(())
}

/// The `piece` job: one time range of the ladder into the media store.
pub(crate) async fn run(ctx: &Ctx, ws: &WorkspaceId, id: &VideoId, piece: &Piece) -> Result<(), JobError> {
    let id = id.clone();
    let video = ctx.repo.get_video(ws, &id).await?;
    let probe = stored_probe(&video)?;
    let ladder =
        ladder::for_probe(&probe).ok_or_else(|| JobError::Permanent("the source has no video stream".into()))?;
    if done(ctx, &id, &ladder, piece.index).await? {
        return Ok(()); // an earlier attempt finished it before its job could say so
    }
    let source = video.ingest.source_key.clone().ok_or_else(|| JobError::Permanent("no source".into()))?;
    let work = ctx.cfg.work_dir.join(format!("{id}-p{}-{}", piece.index, uuid::Uuid::new_v4().simple()));
    let scratch = vidi_core::scratch::Scratch::new(work.clone());
    // A piece is bounded by its own length, not the video's.
    let ctx = &ctx.with_ffmpeg_timeout(crate::time_bound(piece.duration_s, ctx.cfg.job_timeout));
    let r = encode(ctx, &id, &probe, &ladder, &source, piece, &work).await;
    scratch.remove().await;
    r
}

async fn encode(
    ctx: &Ctx,
    id: &VideoId,
    probe: &Probe,
    ladder: &[Rendition],
    source: &str,
    piece: &Piece,
    work: &Path,
) -> Result<(), JobError> {
    for r in ladder {
        tokio::fs::create_dir_all(work.join(r.name)).await.map_err(|e| JobError::Retry(e.to_string()))?;
    }
    let input = ctx.blobs.local_input(source, &crate::inputs_dir(ctx)).await?;
    let args = hls_piece_args(input.as_str(), probe, ladder, work, &ctx.cfg.preset, piece);
    ctx.media
        .ffmpeg
        .niced(BACKGROUND_NICE)
        .jailed(Jail::new().read(&input.path).write(work))
        .run_with_progress(&args, |_| {})
        .await
        .map_err(|e| JobError::Retry(e.to_string()))?;
    let folders: Vec<&str> = ladder.iter().map(|r| r.name).collect();
    check_hls_output(work, &folders).await.map_err(|e| JobError::Retry(e.to_string()))?;
    // Segments first, the playlist last: a piece counts as done once its playlists exist.
    for r in ladder {
        let dir = work.join(r.name);
        let text =
            tokio::fs::read_to_string(dir.join("index.m3u8")).await.map_err(|e| JobError::Retry(e.to_string()))?;
        for (_, seg) in entries(&text).map_err(JobError::Retry)? {
            ctx.blobs.put_file(&rendition_key(id.as_str(), r.name, &seg), &dir.join(&seg)).await?;
        }
        ctx.blobs.put_bytes(&piece_playlist_key(id.as_str(), r.name, piece.index), text.into_bytes()).await?;
    }
    Ok(())
}

/// Whether piece `index` has its playlist in the store for every rendition.
async fn done(ctx: &Ctx, id: &VideoId, ladder: &[Rendition], index: u32) -> Result<bool, JobError> {
    for r in ladder {
        if ctx.blobs.size(&piece_playlist_key(id.as_str(), r.name, index)).await?.is_none() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// After the first piece is encoded (in `work`): helps with the other pieces and publishes each
/// rendition's playlist as the pieces complete, in order, until all are done. Then fetches the top
/// rendition's segments into `work/<top>` and returns the path of a local playlist of them all,
/// for the MP4.
pub(crate) async fn finish(
    ctx: &Ctx,
    ws: &WorkspaceId,
    id: &VideoId,
    ladder: &[Rendition],
    pieces: &[Piece],
    work: &Path,
) -> Result<PathBuf, JobError> {
    let mut first = Vec::new();
    for r in ladder {
        let text = tokio::fs::read_to_string(work.join(r.name).join("index.m3u8"))
            .await
            .map_err(|e| JobError::Retry(e.to_string()))?;
        first.push(entries(&text).map_err(JobError::Retry)?);
    }
    // Entries per rendition of the pieces joined so far (the first, then each in order).
    let mut done_so_far = first;
    let mut next = 1usize;
    let mut published = 0usize;
    loop {
        while next < pieces.len() && done(ctx, id, ladder, pieces[next].index).await? {
            for (i, r) in ladder.iter().enumerate() {
                let key = piece_playlist_key(id.as_str(), r.name, pieces[next].index);
                done_so_far[i]
                    .extend(entries(&String::from_utf8_lossy(&read(ctx, &key).await?)).map_err(JobError::Retry)?);
            }
            next += 1;
        }
        let complete = next == pieces.len();
        if next > published || complete {
            for (i, r) in ladder.iter().enumerate() {
                let key = rendition_playlist_key(id.as_str(), r.name);
                ctx.blobs.put_bytes(&key, joined(&done_so_far[i], complete).into_bytes()).await?;
            }
            published = next;
        }
        if complete {
            break;
        }
        // A piece that failed for good has marked the video failed: stop waiting for it.
        if let Some(e) = ctx.repo.get_video(ws, id).await?.encoding.error {
            return Err(JobError::Permanent(e));
        }
        help(ctx, id).await?;
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    // The MP4 is a remux of the whole top rendition: bring its later segments next to the first.
    let top = ladder.last().expect("non-empty");
    let dir = work.join(top.name);
    let all = done_so_far.last().expect("non-empty");
    for (_, seg) in all {
        let path = dir.join(seg);
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            continue;
        }
        let bytes = read(ctx, &rendition_key(id.as_str(), top.name, seg)).await?;
        tokio::fs::write(&path, bytes).await.map_err(|e| JobError::Retry(e.to_string()))?;
    }
    let path = dir.join("all.m3u8");
    tokio::fs::write(&path, joined(all, true)).await.map_err(|e| JobError::Retry(e.to_string()))?;
    Ok(path)
}

async fn read(ctx: &Ctx, key: &str) -> Result<Vec<u8>, JobError> {
    use futures::StreamExt;
    let mut s = ctx.blobs.get(key, None).await?;
    let mut out = Vec::new();
    while let Some(piece) = s.next().await {
        out.extend_from_slice(&piece.map_err(|e| JobError::Retry(e.to_string()))?);
    }
    Ok(out)
}
