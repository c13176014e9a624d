//! A video's ladder after its head, in pieces: time ranges that start on segment boundaries,
//! each encoded by its own ffmpeg, so the ladder of one video spreads over the cores of a machine
//! and over every worker that shares the database and the media store.
//!
//! The `encode` job (head lane) queues a `piece` job for every range after the head, encodes the
//! head itself (published while it grows: the video is playable after its first half-second),
//! saves the head's playlists as piece 0's, queues the video's `finish` job and ends, so its
//! worker takes the next video's head at once. Pieces and `finish` run in the encode lane, at a
//! lower CPU priority than heads: in a burst of uploads every video plays within seconds, and the
//! ladders share what CPU the heads leave. A finished piece leaves its segments and, last, one
//! playlist per rendition (`<q>/piece_NNN.m3u8`) in the media store; `finish` runs the pieces
//! nobody has claimed yet, joins the playlists of the pieces done so far, in order, ends them
//! when all are there, and makes the MP4.

use std::path::{Path, PathBuf};

use vidi_core::id::{VideoId, WorkspaceId};
use vidi_core::jobs::{self, JobKind, pieces_key_prefix};
use vidi_core::time::now_ms;
use vidi_media::encode::{Piece, check_hls_output, hls_piece_args};
use vidi_media::ladder::{self, Rendition};
use vidi_media::playlist::{entries, joined};
use vidi_media::{Jail, Probe};

use vidi_core::keys::{mp4_key, piece_playlist_key, rendition_key, rendition_playlist_key};
use vidi_media::audio::AUDIO_RENDITION;

use crate::encode::{Mp4, complete, make_mp4, stored_probe};
use crate::{Ctx, JobError};

/// Queues the pieces after the head (no-op for those already queued or running).
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
/// Returns how many it ran.
pub(crate) async fn help(ctx: &Ctx, id: &VideoId) -> Result<usize, JobError> {
    let me = crate::worker_name("helper");
    let handler = jobs::row_handler::<JobKind>(crate::handlers::PieceJob(ctx.clone()));
    let mut ran = 0;
    // A stopping worker takes on nothing more (the piece it was running is handed back).
    while !ctx.held.is_stopping()
        && let Some(job) = ctx.repo.claim_job_keyed(&me, &pieces_key_prefix(id), now_ms()).await?
    {
        // Boxed: a piece job never helps, but the compiler cannot see that the recursion ends.
        Box::pin(crate::execute(ctx, Some(handler.as_ref()), &me, job)).await;
        ran += 1;
    }
    Ok(ran)
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
    // The node's one copy of the source, shared with its other jobs of the video (see
    // `crate::sources`): each piece reads only its range, and the copy is downloaded once.
    let input = ctx.sources.input(&ctx.blobs, source).await?;
    let args = hls_piece_args(input.as_str(), probe, ladder, work, &ctx.cfg.preset, piece);
    let started = std::time::Instant::now();
    ctx.media
        .ffmpeg
        // Paused while this process encodes a head: no video waits for another's ladder to play.
        .in_background(&ctx.media.priority)
        .jailed(Jail::new().read(input.path()).write(work))
        .run_with_progress(&args, |_| {})
        .await
        .map_err(|e| JobError::Retry(e.to_string()))?;
    crate::record_speed("piece", piece.duration_s, started.elapsed());
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

/// Saves the head's playlists (encoded in `work`) as piece 0's, for the `finish` job.
pub(crate) async fn save_head(ctx: &Ctx, id: &VideoId, ladder: &[Rendition], work: &Path) -> Result<(), JobError> {
    for r in ladder {
        let text =
            tokio::fs::read(work.join(r.name).join("index.m3u8")).await.map_err(|e| JobError::Retry(e.to_string()))?;
        ctx.blobs.put_bytes(&piece_playlist_key(id.as_str(), r.name, 0), text).await?;
    }
    Ok(())
}

/// The `finish` job of video `id`, split into `count` pieces (the head included): runs the pieces
/// nobody has claimed (several at once), joins them, completes the qualities, makes the MP4 (the
/// thumbnail was made beside the head).
pub(crate) async fn run_finish(ctx: &Ctx, ws: &WorkspaceId, id: &VideoId, count: u32) -> Result<(), JobError> {
    let video = ctx.repo.get_video(ws, id).await?;
    let probe = stored_probe(&video)?;
    let ladder =
        ladder::for_probe(&probe).ok_or_else(|| JobError::Permanent("the source has no video stream".into()))?;
    // Its own ffmpeg run (the MP4 remux) reads the whole video; pieces bound their own.
    let ctx = &ctx.with_ffmpeg_timeout(crate::time_bound(probe.duration_s, ctx.cfg.job_timeout));
    let work = ctx.cfg.work_dir.join(format!("{id}-f-{}", uuid::Uuid::new_v4().simple()));
    let scratch = vidi_core::scratch::Scratch::new(work.clone());
    let r = async {
        let top = ladder.last().expect("non-empty");
        tokio::fs::create_dir_all(work.join(top.name)).await.map_err(|e| JobError::Retry(e.to_string()))?;
        futures::future::join_all((0..ctx.cfg.parallel_pieces.max(1)).map(|_| help(ctx, id))).await;
        let top = finish(ctx, ws, id, &ladder, count, &work).await?;
        if !complete(ctx, ws, id, &ladder, video.mp4_support).await? {
            return Ok(());
        }
        // The sound was encoded whole beside the head; the MP4 needs it beside the picture.
        let sound = match probe.audio.is_some() {
            true => Some(fetch_rendition(ctx, id, AUDIO_RENDITION, &work).await?),
            false => None,
        };
        let mp4 = Mp4 { top: Some(top), sound, with_audio: probe.audio.is_some() };
        make_mp4(ctx, ws, id, ladder.last().map(|r| r.name), mp4, &work).await
    }
    .await;
    scratch.remove().await;
    // The video's encoding has ended (a retry of this job would still find the copy).
    if !matches!(r, Err(JobError::Retry(_)))
        && let Some(source) = &video.ingest.source_key
    {
        ctx.sources.forget(source);
    }
    r
}

/// The `mp4` job: the MP4 of video `id`, whose ladder was encoded without one, remuxed from the
/// stored renditions (the top one, and the sound when it is a rendition of its own) as the end of
/// an encoding makes it. Nothing to do when `mp4Support` was turned off again, when the MP4 is
/// there already, or while the ladder is still encoding: its end reads the flag again and makes
/// the MP4 itself (see `encode::complete`).
pub(crate) async fn run_mp4(ctx: &Ctx, ws: &WorkspaceId, id: &VideoId) -> Result<(), JobError> {
    let video = ctx.repo.get_video(ws, id).await?;
    let probe = stored_probe(&video)?;
    let ladder = ladder::for_probe(&probe).unwrap_or_default();
    let top = ladder.last().map(|r| r.name);
    let made = ctx.blobs.size(&mp4_key(id.as_str())).await?.is_some()
        && (top.is_none()
            || ctx.repo.qualities(ws, id).await?.iter().any(|q| q.kind == "mp4" && q.status == "encoded"));
    if !video.mp4_support || made {
        return Ok(ctx.repo.set_mp4_pending(ws, id, false).await?);
    }
    // The sound has a rendition of its own for sound alone and for a video in pieces.
    let sound = ctx.blobs.size(&rendition_playlist_key(id.as_str(), AUDIO_RENDITION)).await?.is_some();
    let names: Vec<&str> = top.into_iter().chain(sound.then_some(AUDIO_RENDITION)).collect();
    for name in &names {
        let text = match ctx.blobs.size(&rendition_playlist_key(id.as_str(), name)).await? {
            Some(_) => read(ctx, &rendition_playlist_key(id.as_str(), name)).await?,
            None => Vec::new(),
        };
        if !vidi_media::playlist::is_ended(&text) {
            tracing::info!(video = %id, "the ladder is still encoding: its end makes the MP4");
            return Ok(());
        }
    }
    let ctx = &ctx.with_ffmpeg_timeout(crate::time_bound(probe.duration_s, ctx.cfg.job_timeout));
    let work = ctx.cfg.work_dir.join(format!("{id}-mp4-{}", uuid::Uuid::new_v4().simple()));
    let scratch = vidi_core::scratch::Scratch::new(work.clone());
    let r = async {
        let top_playlist = match top {
            Some(name) => Some(fetch_rendition(ctx, id, name, &work).await?),
            None => None,
        };
        let sound = match sound {
            true => Some(fetch_rendition(ctx, id, AUDIO_RENDITION, &work).await?),
            false => None,
        };
        let mp4 = Mp4 { top: top_playlist, sound, with_audio: probe.audio.is_some() };
        make_mp4(ctx, ws, id, top, mp4, &work).await
    }
    .await;
    scratch.remove().await;
    r
}

/// Copies rendition `name` (its playlist, then its segments) from the media store into
/// `work/<name>`; returns the local playlist's path.
async fn fetch_rendition(ctx: &Ctx, id: &VideoId, name: &str, work: &Path) -> Result<PathBuf, JobError> {
    let dir = work.join(name);
    tokio::fs::create_dir_all(&dir).await.map_err(|e| JobError::Retry(e.to_string()))?;
    let text = String::from_utf8_lossy(&read(ctx, &rendition_playlist_key(id.as_str(), name)).await?).into_owned();
    for (_, seg) in entries(&text).map_err(JobError::Retry)? {
        let bytes = read(ctx, &rendition_key(id.as_str(), name, &seg)).await?;
        tokio::fs::write(dir.join(&seg), bytes).await.map_err(|e| JobError::Retry(e.to_string()))?;
    }
    let path = dir.join("index.m3u8");
    tokio::fs::write(&path, text).await.map_err(|e| JobError::Retry(e.to_string()))?;
    Ok(path)
}

/// Publishes each rendition's playlist as the `count` pieces of video `id` complete, in order
/// (helping with those nobody has claimed), until all are done. Then fetches the top rendition's
/// segments into `work/<top>` and returns the path of a local playlist of them all, for the MP4.
async fn finish(
    ctx: &Ctx,
    ws: &WorkspaceId,
    id: &VideoId,
    ladder: &[Rendition],
    count: u32,
    work: &Path,
) -> Result<PathBuf, JobError> {
    // Entries per rendition of the pieces joined so far, in order.
    let mut done_so_far = vec![Vec::new(); ladder.len()];
    let mut next = 0u32;
    let mut published = 0u32;
    loop {
        while next < count && done(ctx, id, ladder, next).await? {
            for (i, r) in ladder.iter().enumerate() {
                let key = piece_playlist_key(id.as_str(), r.name, next);
                done_so_far[i]
                    .extend(entries(&String::from_utf8_lossy(&read(ctx, &key).await?)).map_err(JobError::Retry)?);
            }
            next += 1;
        }
        let complete = next == count;
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
        if help(ctx, id).await? == 0 {
            // What is left runs elsewhere (another node's workers, or a retry not yet due): this
            // job only waits now, so its worker takes the next job of its lane meanwhile (see
            // `crate::release_lane`). Else, with one encode worker a node, a finish queued behind
            // its pieces kept its node idle while another node ran its last piece, and other
            // videos' pieces waited: the split did not spread.
            crate::release_lane();
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    // The MP4 is a remux of the whole top rendition: bring its segments here.
    let top = ladder.last().expect("non-empty");
    let dir = work.join(top.name);
    let all = done_so_far.last().expect("non-empty");
    for (_, seg) in all {
        let bytes = read(ctx, &rendition_key(id.as_str(), top.name, seg)).await?;
        tokio::fs::write(dir.join(seg), bytes).await.map_err(|e| JobError::Retry(e.to_string()))?;
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
