//! The `encode` job: the HLS ladder (published while it grows), the MP4 and the thumbnail.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use vidi_core::id::VideoId;
use vidi_core::model::{Job, ProbeOutcome, Quality, Video};
use vidi_media::Probe;
use vidi_media::encode::{Piece, check_hls_output, hls_piece_args, master_playlist, plan_pieces, remux_mp4, thumbnail};
use vidi_media::ladder::{self, Rendition};

use crate::{Ctx, JobError};

/// Where a video's delivery files live in the media store.
pub fn hls_prefix(video: &str) -> String {
    format!("videos/{video}/hls")
}
pub fn master_key(video: &str) -> String {
    format!("videos/{video}/hls/manifest.m3u8")
}
pub fn mp4_key(video: &str) -> String {
    format!("videos/{video}/mp4/source.mp4")
}
pub fn thumbnail_key(video: &str) -> String {
    format!("videos/{video}/thumbnail.jpg")
}

pub(crate) fn video_id(job: &Job) -> Result<VideoId, JobError> {
    job.payload["videoId"]
        .as_str()
        .and_then(VideoId::parse)
        .ok_or_else(|| JobError::Permanent(format!("bad payload {}", job.payload)))
}

pub(crate) async fn mark_failed(ctx: &Ctx, job: &Job, error: &str) {
    if let Ok(id) = video_id(job) {
        record_failure(ctx.repo.as_ref(), &id, error).await;
    }
}

/// Says in the status that encoding failed: every output not encoded becomes `failed`, and a
/// video that never got a ladder (not a video, no picture) shows its lowest quality as failed,
/// since the 2023 status has no other place for it. The reason is kept for the operator.
pub async fn record_failure(repo: &dyn vidi_core::Repo, id: &VideoId, error: &str) {
    let _ = repo.set_encode_error(id, Some(error)).await;
    match repo.qualities(id).await {
        Ok(qs) if !qs.is_empty() => {
            for q in qs.iter().filter(|q| q.status != "encoded") {
                let _ = repo.set_quality_status(id, &q.kind, &q.quality, "failed").await;
            }
            // A ladder cut short (the disk filled, the encoder died) may have been marked playable
            // while it grew; its playlists now stop part-way and never end, so it is not playable.
            // (A failed MP4 after a finished ladder leaves the video playable.)
            if qs.iter().any(|q| q.kind == "hls" && q.status != "encoded") {
                let _ = repo.set_playable(id, false).await;
            }
        }
        _ => {
            let failed = Quality { kind: "hls".into(), quality: "240p".into(), status: "failed".into() };
            let _ = repo.plan_qualities(id, &[failed]).await;
        }
    }
}

/// The source's probe, as stored when the upload completed.
pub(crate) fn stored_probe(video: &Video) -> Result<Probe, JobError> {
    match &video.ingest.probe {
        Some(ProbeOutcome::Probed(p)) => {
            serde_json::from_value(p.clone()).map_err(|e| JobError::Permanent(format!("stored probe unreadable: {e}")))
        }
        Some(ProbeOutcome::Failed(r)) => Err(JobError::Permanent(format!("the source is not a video: {r}"))),
        None => Err(JobError::Retry("the source is not probed yet".into())),
    }
}

pub(crate) async fn run(ctx: &Ctx, job: &Job) -> Result<(), JobError> {
    let id = video_id(job)?;
    let video = ctx.repo.video_by_id(&id).await?;
    let probe = stored_probe(&video)?;
    let ladder =
        ladder::for_probe(&probe).ok_or_else(|| JobError::Permanent("the source has no video stream".into()))?;
    let source = video.ingest.source_key.clone().ok_or_else(|| JobError::Permanent("no source".into()))?;
    let top = ladder.last().expect("a ladder has at least one rung").name;

    let mut planned: Vec<Quality> = ladder
        .iter()
        .map(|r| Quality { kind: "hls".into(), quality: r.name.into(), status: "waiting".into() })
        .collect();
    if video.mp4_support {
        planned.push(Quality { kind: "mp4".into(), quality: top.into(), status: "waiting".into() });
    }
    ctx.repo.plan_qualities(&id, &planned).await?;
    ctx.repo.set_playable(&id, false).await?;
    ctx.repo.set_encode_error(&id, None).await?;

    let work = ctx.cfg.work_dir.join(format!("{id}-{}", uuid::Uuid::new_v4().simple()));
    for r in &ladder {
        tokio::fs::create_dir_all(work.join(r.name)).await.map_err(|e| JobError::Retry(e.to_string()))?;
    }
    let pieces = match probe.duration_s {
        Some(d) if ctx.cfg.piece_secs > 0 => {
            plan_pieces(d, ctx.cfg.piece_secs, probe.audio.as_ref().and_then(|a| a.sample_rate))
        }
        _ => vec![Piece::WHOLE],
    };
    let plan = Plan {
        id: &id,
        probe: &probe,
        ladder: &ladder,
        pieces: &pieces,
        source: &source,
        work: &work,
        mp4: video.mp4_support,
    };
    let result = encode_in(ctx, plan).await;
    let _ = tokio::fs::remove_dir_all(&work).await;
    result
}

/// What one encode job works on.
#[derive(Clone, Copy)]
struct Plan<'a> {
    id: &'a VideoId,
    probe: &'a Probe,
    ladder: &'a [Rendition],
    /// One piece (the whole video), or the time ranges of a long one.
    pieces: &'a [Piece],
    source: &'a str,
    /// This job's scratch folder, a subfolder per rendition.
    work: &'a Path,
    mp4: bool,
}

async fn encode_in(ctx: &Ctx, plan: Plan<'_>) -> Result<(), JobError> {
    let Plan { id, pieces, .. } = plan;
    let split = pieces.len() > 1;
    if split {
        crate::pieces::enqueue(ctx, id, pieces).await?;
    }
    // Beside the first piece, this job takes on other pieces of its video (see `pieces`).
    let helpers = futures::future::join_all(
        (1..if split { ctx.cfg.parallel_pieces.max(1) } else { 1 }).map(|_| crate::pieces::help(ctx, id)),
    );
    let lead = lead(ctx, plan);
    tokio::pin!(helpers, lead);
    tokio::select! {
        r = &mut lead => {
            // A failed lead drops its helpers (killing their encoders); the reaper re-queues the
            // pieces they held.
            if r.is_ok() {
                helpers.await;
            }
            r
        }
        _ = &mut helpers => lead.await,
    }
}

/// The first piece (or the whole video), published while it grows; then the rest of the ladder
/// joined in, and the MP4.
async fn lead(ctx: &Ctx, plan: Plan<'_>) -> Result<(), JobError> {
    let Plan { id, probe, ladder, pieces, source, work, mp4 } = plan;
    let split = pieces.len() > 1;
    let input = ctx.blobs.media_input(source).await?;
    let audio = probe.audio.is_some();
    let started = std::time::Instant::now();
    for r in ladder {
        ctx.repo.set_quality_status(id, "hls", r.name, "encoding").await?;
    }

    // The thumbnail runs beside the ladder: it is one frame and must not delay the first segment.
    let thumb = async {
        let at = probe.duration_s.map(|d| (d * 0.25).min(10.0)).unwrap_or(0.0);
        let out = work.join("thumbnail.jpg");
        match thumbnail(&ctx.media, &input, at, &out).await {
            Ok(()) => {
                let key = thumbnail_key(id.as_str());
                ctx.blobs.put_file(&key, &out).await?;
                ctx.repo.set_thumbnail(id, &key).await?;
                Ok(())
            }
            // A missing thumbnail is not worth failing the video for.
            Err(e) => {
                tracing::warn!(video = %id, error = %e, "no thumbnail");
                Ok::<_, vidi_core::CoreError>(())
            }
        }
    };

    let done = Arc::new(AtomicBool::new(false));
    let args = hls_piece_args(&input, probe, ladder, work, &ctx.cfg.preset, &pieces[0]);
    let encode = async {
        let r = ctx.media.ffmpeg.run_with_progress(&args, |_us| {}).await;
        done.store(true, Ordering::SeqCst);
        r
    };
    let publish = publish_while_encoding(ctx, plan, audio, done.clone(), started);
    let (encoded, published, thumbed) = tokio::join!(encode, publish, thumb);
    encoded.map_err(|e| JobError::Retry(e.to_string()))?;
    // ffmpeg exits 0 even when it could not write its HLS output (a full disk): check the output
    // itself before anything is called encoded. Retried like any failed encode: the disk may
    // have room again later (this job's scratch is removed before the retry).
    check_hls_output(work, ladder).await.map_err(|e| JobError::Retry(e.to_string()))?;
    published?;
    thumbed?;
    let top_playlist = if split {
        crate::pieces::finish(ctx, id, ladder, pieces, work).await?
    } else {
        // The final sync: playlists now end with #EXT-X-ENDLIST, so players treat them as VOD.
        let mut seen = HashSet::new();
        sync(ctx, id, ladder, work, &mut seen, false).await?;
        work.join(ladder.last().expect("non-empty").name).join("index.m3u8")
    };
    for r in ladder {
        ctx.repo.set_quality_status(id, "hls", r.name, "encoded").await?;
    }
    ctx.repo.set_playable(id, true).await?;
    tracing::info!(video = %id, seconds = started.elapsed().as_secs_f64(), "ladder encoded");

    if mp4 {
        let top = ladder.last().expect("non-empty");
        ctx.repo.set_quality_status(id, "mp4", top.name, "encoding").await?;
        let out = work.join("source.mp4");
        remux_mp4(&ctx.media, &top_playlist, &out, audio).await.map_err(|e| JobError::Retry(e.to_string()))?;
        ctx.blobs.put_file(&mp4_key(id.as_str()), &out).await?;
        ctx.repo.set_quality_status(id, "mp4", top.name, "encoded").await?;
    }
    Ok(())
}

/// Publishes segments and playlists as ffmpeg writes them, and the master playlist (marking the
/// video playable) as soon as every rendition has its first segment.
async fn publish_while_encoding(
    ctx: &Ctx,
    plan: Plan<'_>,
    audio: bool,
    done: Arc<AtomicBool>,
    started: std::time::Instant,
) -> Result<(), JobError> {
    let Plan { id, ladder, work, pieces, .. } = plan;
    let split = pieces.len() > 1;
    let mut seen = HashSet::new();
    let mut playable = false;
    while !done.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let ready = sync(ctx, id, ladder, work, &mut seen, split).await?;
        if !playable && ready {
            ctx.blobs.put_bytes(&master_key(id.as_str()), master_playlist(ladder, audio).into_bytes()).await?;
            ctx.repo.set_playable(id, true).await?;
            playable = true;
            tracing::info!(video = %id, seconds = started.elapsed().as_secs_f64(), "playable");
        }
    }
    if !playable {
        ctx.blobs.put_bytes(&master_key(id.as_str()), master_playlist(ladder, audio).into_bytes()).await?;
    }
    Ok(())
}

/// Uploads new segments, then the playlists that list them. Returns whether every rendition has
/// at least one published segment.
async fn sync(
    ctx: &Ctx,
    id: &VideoId,
    ladder: &[Rendition],
    work: &Path,
    seen: &mut HashSet<PathBuf>,
    split: bool,
) -> Result<bool, JobError> {
    let mut all_started = true;
    for r in ladder {
        let dir = work.join(r.name);
        // ffmpeg writes the playlist to a temporary file and renames it (hls_flags temp_file),
        // so what we read is always whole, and lists only finished segments.
        let Ok(text) = tokio::fs::read_to_string(dir.join("index.m3u8")).await else {
            all_started = false;
            continue;
        };
        let segments: Vec<&str> = text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
        if segments.is_empty() {
            all_started = false;
            continue;
        }
        for seg in &segments {
            let path = dir.join(seg);
            if seen.insert(path.clone()) {
                ctx.blobs.put_file(&format!("{}/{}/{seg}", hls_prefix(id.as_str()), r.name), &path).await?;
            }
        }
        // The first of several pieces ends where the next begins, not where the video does.
        let text = if split { text.replace("#EXT-X-ENDLIST\n", "") } else { text };
        ctx.blobs.put_bytes(&format!("{}/{}/index.m3u8", hls_prefix(id.as_str()), r.name), text.into_bytes()).await?;
    }
    Ok(all_started)
}
