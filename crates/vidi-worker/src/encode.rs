//! The `encode` job: the HLS ladder (published while it grows), the MP4 and the thumbnail.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use vidi_core::id::VideoId;
use vidi_core::model::{Job, ProbeOutcome, Quality};
use vidi_media::Probe;
use vidi_media::encode::{hls_args, master_playlist, remux_mp4, thumbnail};
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

fn video_id(job: &Job) -> Result<VideoId, JobError> {
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
        }
        _ => {
            let failed = Quality { kind: "hls".into(), quality: "240p".into(), status: "failed".into() };
            let _ = repo.plan_qualities(id, &[failed]).await;
        }
    }
}

pub(crate) async fn run(ctx: &Ctx, job: &Job) -> Result<(), JobError> {
    let id = video_id(job)?;
    let video = ctx.repo.video_by_id(&id).await?;
    let probe: Probe = match &video.ingest.probe {
        Some(ProbeOutcome::Probed(p)) => serde_json::from_value(p.clone())
            .map_err(|e| JobError::Permanent(format!("stored probe unreadable: {e}")))?,
        Some(ProbeOutcome::Failed(r)) => return Err(JobError::Permanent(format!("the source is not a video: {r}"))),
        None => return Err(JobError::Retry("the source is not probed yet".into())),
    };
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
    let result = encode_in(ctx, &id, &probe, &ladder, &source, &work, video.mp4_support).await;
    let _ = tokio::fs::remove_dir_all(&work).await;
    result
}

async fn encode_in(
    ctx: &Ctx,
    id: &VideoId,
    probe: &Probe,
    ladder: &[Rendition],
    source: &str,
    work: &Path,
    mp4: bool,
) -> Result<(), JobError> {
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
    let args = hls_args(&input, probe, ladder, work, &ctx.cfg.preset);
    let encode = async {
        let r = ctx.media.ffmpeg.run_with_progress(&args, |_us| {}).await;
        done.store(true, Ordering::SeqCst);
        r
    };
    let publish = publish_while_encoding(ctx, id, ladder, audio, work, done.clone(), started);
    let (encoded, published, thumbed) = tokio::join!(encode, publish, thumb);
    encoded.map_err(|e| JobError::Retry(e.to_string()))?;
    published?;
    thumbed?;
    // The final sync: playlists now end with #EXT-X-ENDLIST, so players treat them as VOD.
    let mut seen = HashSet::new();
    sync(ctx, id, ladder, work, &mut seen).await?;
    for r in ladder {
        ctx.repo.set_quality_status(id, "hls", r.name, "encoded").await?;
    }
    ctx.repo.set_playable(id, true).await?;
    tracing::info!(video = %id, seconds = started.elapsed().as_secs_f64(), "ladder encoded");

    if mp4 {
        let top = ladder.last().expect("non-empty");
        ctx.repo.set_quality_status(id, "mp4", top.name, "encoding").await?;
        let out = work.join("source.mp4");
        remux_mp4(&ctx.media, &work.join(top.name).join("index.m3u8"), &out, audio)
            .await
            .map_err(|e| JobError::Retry(e.to_string()))?;
        ctx.blobs.put_file(&mp4_key(id.as_str()), &out).await?;
        ctx.repo.set_quality_status(id, "mp4", top.name, "encoded").await?;
    }
    Ok(())
}

/// Publishes segments and playlists as ffmpeg writes them, and the master playlist (marking the
/// video playable) as soon as every rendition has its first segment.
async fn publish_while_encoding(
    ctx: &Ctx,
    id: &VideoId,
    ladder: &[Rendition],
    audio: bool,
    work: &Path,
    done: Arc<AtomicBool>,
    started: std::time::Instant,
) -> Result<(), JobError> {
    let mut seen = HashSet::new();
    let mut playable = false;
    while !done.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let ready = sync(ctx, id, ladder, work, &mut seen).await?;
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
        ctx.blobs.put_bytes(&format!("{}/{}/index.m3u8", hls_prefix(id.as_str()), r.name), text.into_bytes()).await?;
    }
    Ok(all_started)
}
