//! The `encode` job, which makes a video playable: the head of its HLS ladder (published while
//! it grows), its sound and its thumbnail. It runs in the head lane, so no video's head waits
//! behind other videos' ladders; the rest of the ladder is `piece` jobs and a `finish` job in the
//! encode lane (see `pieces`). A video too short to split, sound alone and an upload still
//! arriving are encoded whole here, MP4 included.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use vidi_core::clip::Window;
use vidi_core::event::Encoding;
use vidi_core::id::{VideoId, WorkspaceId};
use vidi_core::jobs::{self, Growing, JobKind};
use vidi_core::keys::{mp4_key, rendition_key, rendition_playlist_key, thumbnail_key};
use vidi_core::model::{IngestState, ProbeOutcome, Quality, Video};
use vidi_core::time::{now_ms, now_ns};
use vidi_media::audio::{AUDIO_RENDITION, waveform};
use vidi_media::encode::{
    Piece, check_hls_output, clipped, hls_piece_args, plan_pieces, remux_mp4, thumbnail, thumbnail_near,
};
use vidi_media::ladder::{self, Rendition};
use vidi_media::playlist;
use vidi_media::priority::{Foreground, Owner};
use vidi_media::{Jail, Probe};

use crate::{Ctx, JobError};

/// The source's probe, as stored when the upload completed.
pub(crate) fn stored_probe(video: &Video) -> Result<Probe, JobError> {
    match &video.ingest.probe {
        Some(ProbeOutcome::Probed(p)) => Ok(p.clone()),
        Some(ProbeOutcome::Failed(r)) => Err(JobError::Permanent(format!("the source is not a video: {r}"))),
        None => Err(JobError::Retry("the source is not probed yet".into())),
    }
}

/// The `encode` job of video `id`; `growing` when it was queued while the upload was arriving.
pub(crate) async fn run(ctx: &Ctx, ws: &WorkspaceId, id: &VideoId, growing: Option<&Growing>) -> Result<(), JobError> {
    let id = id.clone();
    let video = ctx.repo.get_video(ws, &id).await?;
    // Queued while the upload was still arriving: follow the bytes received so far, unless the
    // upload has completed since (then the whole source is read like any other).
    let uploading = video.ingest.state != IngestState::Uploaded;
    let growing = growing.map(|g| (g.path.clone(), g.probe.clone()));
    let (probe, follow) = match (growing, stored_probe(&video)) {
        (Some((path, probe)), _) if uploading => (probe, Some(path)),
        (_, Ok(p)) => (p, None),
        (Some((_, probe)), Err(_)) if !uploading => (probe, None),
        (_, Err(e)) => return Err(e),
    };
    // The clip: the part of the source every output is made of, applied to the ladder, the sound
    // and the thumbnail as they are encoded (so a clipped video costs and plays like any other),
    // and to the MP4, which is a remux of the ladder. From here on, `probe` says how long the
    // output is. A clip that starts past the source's end fails the video, saying so.
    let window = vidi_core::clip::window_of(video.clip.as_ref(), &probe).map_err(JobError::Permanent)?;
    if follow.is_some() && window != Window::WHOLE {
        // Seeking into a file that is still arriving would wait for bytes in the middle of it:
        // the upload's completion queues the encoding of the whole source.
        tracing::info!(video = %id, "a clipped video waits for its upload to complete");
        return Ok(());
    }
    let probe = Probe { duration_s: window.length(probe.duration_s), ..probe };
    // This job's bound on its ffmpeg runs: the whole video's, since it may encode all of it.
    // An upload still arriving sets its own pace, so following one is bounded by the cap alone.
    let bound = crate::time_bound(if follow.is_some() { None } else { probe.duration_s }, ctx.cfg.job_timeout);
    let bounded = ctx.with_ffmpeg_timeout(bound);
    let ctx = &bounded;
    // No picture but sound (a podcast, music): one audio rendition instead of a ladder.
    let ladder = ladder::for_probe(&probe).unwrap_or_default();
    if ladder.is_empty() && probe.audio.is_none() {
        return Err(JobError::Permanent("the source has neither a video nor an audio stream".into()));
    }
    let source = match &follow {
        Some(path) => format!("file:{path}"),
        None => video.ingest.source_key.clone().ok_or_else(|| JobError::Permanent("no source".into()))?,
    };

    let mut planned: Vec<Quality> = ladder
        .iter()
        .map(|r| Quality { kind: "hls".into(), quality: r.name.into(), status: "waiting".into() })
        .collect();
    // The 2023 quality enum has no name for sound alone: an audio-only MP4 is made but not listed.
    if let (true, Some(top)) = (video.mp4_support, ladder.last()) {
        planned.push(Quality { kind: "mp4".into(), quality: top.name.into(), status: "waiting".into() });
    }
    ctx.repo.plan_qualities(ws, &id, &planned).await?;
    ctx.repo.set_playable(ws, &id, false).await?;
    ctx.repo.set_encode_error(ws, &id, None).await?;

    // Pieces need the whole source; a growing one is encoded in one go as it arrives.
    let pieces = match probe.duration_s {
        Some(d) if ctx.cfg.piece_secs > 0 && !ladder.is_empty() && follow.is_none() => {
            plan_pieces(d, ctx.cfg.piece_secs)
        }
        _ => vec![Piece::WHOLE],
    };
    let pieces = clipped(pieces, window);
    let demuxed_audio = probe.audio.is_some() && (pieces.len() > 1 || ladder.is_empty());
    // Until a video in pieces plays, it has the machine to itself: every other video's pieces and
    // sounds pause, and so does its own sound while its picture encodes (see `lead` and
    // `vidi_media::priority`). A video encoded whole needs no more than its picture's foreground
    // run: its sound is not a background run.
    let owner = ctx.media.priority.owner();
    let until_playable = (pieces.len() > 1).then(|| ctx.media.priority.foreground_for(owner));
    // What the master playlist lists, stored now: delivery builds the master from it once the
    // video is playable.
    ctx.repo
        .plan_renditions(ws, &id, &playlist::planned_renditions(&ladder, probe.audio.is_some(), demuxed_audio))
        .await?;
    let work = ctx.cfg.work_dir.join(format!("{id}-{}", uuid::Uuid::new_v4().simple()));
    let scratch = vidi_core::scratch::Scratch::new(work.clone());
    let plan = Plan {
        ws,
        id: &id,
        probe: &probe,
        ladder: &ladder,
        pieces: &pieces,
        demuxed_audio,
        source: &source,
        follow: follow.is_some(),
        work: &work,
        mp4: video.mp4_support,
        owner,
        window,
    };
    for f in plan.folders() {
        tokio::fs::create_dir_all(work.join(f)).await.map_err(|e| JobError::Retry(e.to_string()))?;
    }
    let result = lead(ctx, plan, until_playable).await;
    scratch.remove().await;
    // This node's copy of the source is kept for the pieces (which may run here) while the video
    // is in pieces, and for this job's retry; else its encoding has ended.
    if pieces.len() == 1 || !matches!(result, Ok(()) | Err(JobError::Retry(_))) {
        ctx.sources.forget(&source);
    }
    result
}

/// What one encode job works on.
#[derive(Clone, Copy)]
struct Plan<'a> {
    ws: &'a WorkspaceId,
    id: &'a VideoId,
    probe: &'a Probe,
    ladder: &'a [Rendition],
    /// One piece (the whole video), or the time ranges of a long one.
    pieces: &'a [Piece],
    /// The sound is a rendition of its own (`audio/`): for a video in pieces, and for sound alone.
    demuxed_audio: bool,
    /// A media store key, or (`follow`) a `file:` URL of an upload still arriving.
    source: &'a str,
    /// The source grows while it is encoded: read it to its end, however long the upload takes.
    follow: bool,
    /// This job's scratch folder, a subfolder per rendition.
    work: &'a Path,
    mp4: bool,
    /// Whose background runs this job's foreground spares: its own sound's.
    owner: Owner,
    /// The part of the source the video is made of (its clip).
    window: Window,
}

impl Plan<'_> {
    fn split(&self) -> bool {
        self.pieces.len() > 1
    }

    /// The rendition folders this job writes: the ladder's, then the sound's when it has its own.
    fn folders(&self) -> Vec<&'static str> {
        let mut f: Vec<&'static str> = self.ladder.iter().map(|r| r.name).collect();
        if self.demuxed_audio {
            f.push(AUDIO_RENDITION);
        }
        f
    }
}

/// The head (or the whole video), published while it grows. A video in pieces is then handed to
/// its pieces and a `finish` job; a whole one is completed here, with its MP4.
async fn lead(ctx: &Ctx, plan: Plan<'_>, until_playable: Option<Foreground>) -> Result<(), JobError> {
    let Plan { ws, id, probe, ladder, pieces, source, work, mp4, .. } = plan;
    if plan.split() {
        // Queued first, so that encode workers start on the rest while the head runs (at a
        // lower priority: see `pieces`).
        crate::pieces::enqueue(ctx, ws, id, pieces).await?;
    }
    // Media tools read local files only: a source on S3 is copied beside the scratch first, once
    // for this node's jobs of the video (its pieces too: see `crate::sources`).
    let local = if plan.follow { None } else { Some(ctx.sources.input(&ctx.blobs, source).await?) };
    let input = local.as_ref().map_or(source, |l| l.as_str()).to_string();
    // What the encoders may touch: their input and this job's scratch (see vidi_media::sandbox).
    let jail = Jail::new().read(vidi_media::input::path_of(&input)).write(work);
    let started = std::time::Instant::now();
    for r in ladder {
        ctx.repo.set_quality_status(ws, id, "hls", r.name, "encoding").await?;
    }

    // The thumbnail runs beside the ladder: it is one frame and must not delay the first segment.
    // A video in pieces gets it here too, beside its head, not in its `finish` job: the player
    // shows it as the poster as soon as the video plays, and a finish that ran minutes later
    // would overwrite a thumbnail the user uploaded meanwhile (both use the same key). It costs
    // the head lane the decoding from the keyframe before its frame (seeked at the input).
    // The video is not called playable before its thumbnail is made (or given up): the player
    // shows it as the poster from the first frame on.
    let thumb_done = AtomicBool::new(false);
    let thumb = async {
        // From an upload still arriving, a frame near the start: the rest may not be there yet.
        let at = if plan.follow { Some(0.5) } else { None };
        let r = make_thumbnail(ctx, ws, id, probe, &input, at, plan.window.start_s, &work.join("thumbnail.jpg")).await;
        thumb_done.store(true, Ordering::SeqCst);
        r
    };

    let done = Arc::new(AtomicBool::new(false));
    let mut video_args = hls_piece_args(&input, probe, ladder, work, &ctx.cfg.preset, &pieces[0]);
    if plan.follow {
        // ffmpeg's file protocol waits at the end of a growing file (up to the timeout) instead of
        // taking it for the end of the source.
        let at = video_args.iter().position(|a| a == "-i").expect("an input");
        let timeout_us = ctx.cfg.follow_timeout.as_micros().to_string();
        video_args.splice(at..at, ["-follow".into(), "1".into(), "-rw_timeout".into(), timeout_us]);
    }
    let reached_us = std::sync::atomic::AtomicU64::new(0);
    let audio_args = vidi_media::audio::hls_args(&input, work, plan.window);
    // What the lane release below waits for.
    let (video_done, sound_done, playable) = (AtomicBool::new(false), AtomicBool::new(false), AtomicBool::new(false));
    let encode = async {
        let video = async {
            // Background runs of this process (pieces, sounds) pause while this head encodes.
            // Not an upload still arriving: that encode follows the upload for as long as it lasts.
            let foreground = (!plan.follow).then(|| ctx.media.priority.foreground());
            let r = if ladder.is_empty() {
                Ok(())
            } else {
                ctx.media
                    .ffmpeg
                    .jailed(jail.clone())
                    .run_with_progress(&video_args, |us| reached_us.store(us, Ordering::Relaxed))
                    .await
            };
            drop(foreground);
            video_done.store(true, Ordering::SeqCst);
            r
        };
        let sound = async {
            // The AAC encoder is slow (~20x real time on one core: 1 s of CPU for a 20 s video,
            // 30 s for ten minutes). For a video in pieces it is a background run, like a piece:
            // paused while any head encodes, its own included (the picture gets both cores), it
            // writes its first segment the moment that head is done, which makes the video
            // playable and gives the lane back; the rest of it waits for the next heads, so in a
            // burst no video's head waits for another video's sound.
            let ffmpeg = if plan.split() {
                ctx.media.ffmpeg.in_background_of(&ctx.media.priority, plan.owner)
            } else {
                ctx.media.ffmpeg.clone()
            };
            let r = if plan.demuxed_audio {
                ffmpeg.jailed(jail.clone()).run_with_progress(&audio_args, |_| {}).await
            } else {
                Ok(())
            };
            sound_done.store(true, Ordering::SeqCst);
            r
        };
        let (v, a) = tokio::join!(video, sound);
        done.store(true, Ordering::SeqCst);
        v.and(a)
    };
    let publish = publish_while_encoding(ctx, plan, done.clone(), [&thumb_done, &playable], started);
    // A head gives its lane back once its picture is encoded and the video plays (or its sound
    // has ended, whatever happened to it): the next video's head starts while this job finishes
    // its sound and its bookkeeping in the background (see `crate::release_lane`). Then, too,
    // the other videos' background runs resume.
    let release = async {
        // Dropped on every way out of this block: the other videos' runs never stay paused.
        let _until_playable = until_playable;
        if !plan.split() {
            return;
        }
        while !done.load(Ordering::SeqCst) {
            if video_done.load(Ordering::SeqCst)
                && (playable.load(Ordering::SeqCst) || sound_done.load(Ordering::SeqCst))
            {
                crate::release_lane();
                tracing::info!(video = %id, seconds = started.elapsed().as_secs_f64(), "head lane released");
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let (encoded, published, thumbed, ()) = tokio::join!(encode, publish, thumb, release);
    encoded.map_err(|e| JobError::Retry(e.to_string()))?;
    if plan.follow {
        // A stalled upload makes ffmpeg stop at the timeout, and exit 0, with a part of the video.
        let reached = reached_us.load(Ordering::Relaxed) as f64 / 1e6;
        if reached + 0.5 < probe.duration_s.unwrap_or(0.0) {
            return stalled(ctx, ws, id, reached).await;
        }
    }
    // ffmpeg exits 0 even when it could not write its HLS output (a full disk): check the output
    // itself before anything is called encoded. Retried like any failed encode: the disk may
    // have room again later (this job's scratch is removed before the retry).
    check_hls_output(work, &plan.folders()).await.map_err(|e| JobError::Retry(e.to_string()))?;
    let mut seen = published?;
    thumbed?;
    // The final sync: playlists now end with #EXT-X-ENDLIST, so players treat them as VOD (a
    // video in pieces: once the other pieces are joined in).
    sync(ctx, plan, &mut seen).await?;
    tracing::info!(video = %id, seconds = started.elapsed().as_secs_f64(), "head encoded");
    // The head alone when the rest is in pieces, else the whole ladder.
    let (stage, media_s) = if plan.split() { ("head", pieces[0].duration_s) } else { ("whole", probe.duration_s) };
    crate::record_speed(stage, media_s, started.elapsed());
    if plan.split() {
        crate::pieces::save_head(ctx, id, ladder, work).await?;
        // A head encoded before any sync saw it start is published by the final sync alone:
        // playable now, not when the whole ladder is in.
        ctx.repo.set_playable(ws, id, true).await?;
        let finish = JobKind::Finish { video_id: id.clone(), workspace_id: ws.clone(), pieces: pieces.len() as u32 };
        jobs::enqueue(ctx.repo.as_ref(), &ctx.waker, &finish, now_ms(), ctx.cfg.max_attempts).await?;
        return Ok(());
    }
    if complete(ctx, ws, id, ladder, mp4).await? {
        let top = ladder.last().map(|t| work.join(t.name).join("index.m3u8"));
        let sound = plan.demuxed_audio.then(|| work.join(AUDIO_RENDITION).join("index.m3u8"));
        let quality = ladder.last().map(|r| r.name);
        make_mp4(ctx, ws, id, quality, Mp4 { top, sound, with_audio: probe.audio.is_some() }, work).await?;
    }
    Ok(())
}

/// Makes and stores the thumbnail of video `id` from `input`: a frame at `at` seconds (by
/// default a quarter in, at most 10 s), or a picture of the waveform of sound alone. `probe` is of
/// the output (its clip's length), which starts `offset` seconds into `input`.
#[allow(clippy::too_many_arguments)] // each is one fact of the frame to take
async fn make_thumbnail(
    ctx: &Ctx,
    ws: &WorkspaceId,
    id: &VideoId,
    probe: &Probe,
    input: &str,
    at: Option<f64>,
    offset: f64,
    out: &Path,
) -> Result<(), vidi_core::CoreError> {
    let made = if probe.video.is_none() {
        waveform(&ctx.media, input, Window { start_s: offset, duration_s: probe.duration_s }, out).await
    } else {
        match at {
            Some(at) => thumbnail(&ctx.media, input, offset + at, out).await,
            None => {
                let at = probe.duration_s.map(|d| (d * 0.25).min(10.0)).unwrap_or(0.0);
                thumbnail_near(&ctx.media, input, offset + at, out).await
            }
        }
    };
    match made {
        Ok(()) => {
            let key = thumbnail_key(id.as_str());
            ctx.blobs.put_file(&key, out).await?;
            ctx.repo.set_thumbnail(ws, id, &key).await
        }
        // A missing thumbnail is not worth failing the video for.
        Err(e) => {
            tracing::warn!(video = %id, error = %e, "no thumbnail");
            Ok(())
        }
    }
}

/// The local playlists the MP4 of a video is a remux of.
pub(crate) struct Mp4 {
    /// The top rendition's playlist (none for sound alone).
    pub top: Option<PathBuf>,
    /// The sound's own rendition, when it has one.
    pub sound: Option<PathBuf>,
    pub with_audio: bool,
}

/// The ladder is all in the media store: every quality encoded (one event each), the video
/// playable. Returns whether the MP4 is wanted (`wanted`: as the job read it when it started),
/// read again now: `mp4Support` turned on while the ladder encoded is this encoding's to honour.
/// The `PATCH` writes the flag, then queues an `mp4` job, which makes nothing while the ladder's
/// playlists are unfinished; they are finished before this reads the flag, so one of the two
/// makes the MP4 (or both, which is harmless).
pub(crate) async fn complete(
    ctx: &Ctx,
    ws: &WorkspaceId,
    id: &VideoId,
    ladder: &[Rendition],
    wanted: bool,
) -> Result<bool, JobError> {
    for r in ladder {
        ctx.repo.complete_quality(ws, id, Encoding::Hls, r.name, now_ns()).await?;
    }
    ctx.repo.set_playable(ws, id, true).await?;
    tracing::info!(video = %id, "ladder encoded");
    Ok(wanted || ctx.repo.get_video(ws, id).await?.mp4_support)
}

/// Makes the MP4 (a remux of the local playlists in `mp4`), stores it, then lists it: its
/// quality (`quality`, the top rendition's; none for sound alone) encoded, with its event, and
/// no longer pending.
pub(crate) async fn make_mp4(
    ctx: &Ctx,
    ws: &WorkspaceId,
    id: &VideoId,
    quality: Option<&str>,
    mp4: Mp4,
    work: &Path,
) -> Result<(), JobError> {
    if let Some(q) = quality {
        // Planned when the encoding started only if the MP4 was wanted then.
        let mut planned = ctx.repo.qualities(ws, id).await?;
        if !planned.iter().any(|p| p.kind == "mp4") {
            planned.push(Quality { kind: "mp4".into(), quality: q.into(), status: "waiting".into() });
            ctx.repo.plan_qualities(ws, id, &planned).await?;
        }
        ctx.repo.set_quality_status(ws, id, "mp4", q, "encoding").await?;
    }
    let inputs: Vec<&Path> = mp4.top.as_deref().into_iter().chain(mp4.sound.as_deref()).collect();
    let out = work.join("source.mp4");
    remux_mp4(&ctx.media, &inputs, &out, mp4.with_audio).await.map_err(|e| JobError::Retry(e.to_string()))?;
    ctx.blobs.put_file(&mp4_key(id.as_str()), &out).await?;
    if let Some(q) = quality {
        ctx.repo.complete_quality(ws, id, Encoding::Mp4, q, now_ns()).await?;
    }
    ctx.repo.set_mp4_pending(ws, id, false).await?;
    Ok(())
}

/// An encode that followed an upload got less than the whole video (the upload paused longer
/// than the encoder waits). Completed since: encode again from the whole source. Still
/// incomplete: withdraw what was published; the upload's completion queues the encoding anew.
async fn stalled(ctx: &Ctx, ws: &WorkspaceId, id: &VideoId, reached: f64) -> Result<(), JobError> {
    if ctx.repo.get_video(ws, id).await?.ingest.state == IngestState::Uploaded {
        return Err(JobError::Retry(format!(
            "the upload paused at {reached:.1} s; encoding again from the whole source"
        )));
    }
    tracing::info!(video = %id, seconds = reached, "the upload paused; encoding waits for it to complete");
    ctx.repo.set_playable(ws, id, false).await?;
    ctx.repo.plan_qualities(ws, id, &[]).await?;
    ctx.repo.plan_renditions(ws, id, &[]).await?;
    Ok(())
}

/// Publishes segments and playlists as ffmpeg writes them, and marks the video playable (which
/// opens its master playlist) as soon as every rendition has its first segment and the
/// thumbnail is done (`playable` says so to the caller).
async fn publish_while_encoding(
    ctx: &Ctx,
    plan: Plan<'_>,
    done: Arc<AtomicBool>,
    [thumbnail_done, playable]: [&AtomicBool; 2],
    started: std::time::Instant,
) -> Result<HashSet<PathBuf>, JobError> {
    let id = plan.id;
    let mut seen = HashSet::new();
    while !done.load(Ordering::SeqCst) {
        // Quicker until the video plays: each tick is time a viewer, and the next head, waits.
        let tick = if playable.load(Ordering::SeqCst) { 100 } else { 40 };
        tokio::time::sleep(Duration::from_millis(tick)).await;
        let ready = sync(ctx, plan, &mut seen).await?;
        if !playable.load(Ordering::SeqCst) && ready && thumbnail_done.load(Ordering::SeqCst) {
            ctx.repo.set_playable(plan.ws, id, true).await?;
            playable.store(true, Ordering::SeqCst);
            tracing::info!(video = %id, seconds = started.elapsed().as_secs_f64(), "playable");
        }
    }
    Ok(seen)
}

/// Uploads new segments, then the playlists that list them. Returns whether every rendition has
/// at least one published segment.
async fn sync(ctx: &Ctx, plan: Plan<'_>, seen: &mut HashSet<PathBuf>) -> Result<bool, JobError> {
    let id = plan.id;
    let mut all_started = true;
    for name in plan.folders() {
        let dir = plan.work.join(name);
        // ffmpeg writes the playlist to a temporary file and renames it (hls_flags temp_file),
        // so what we read is always whole, and lists only finished segments.
        let Ok(text) = tokio::fs::read_to_string(dir.join("index.m3u8")).await else {
            all_started = false;
            continue;
        };
        let segments = playlist::segment_uris(&text);
        if segments.is_empty() {
            all_started = false;
            continue;
        }
        for seg in &segments {
            let path = dir.join(seg);
            if seen.insert(path.clone()) {
                ctx.blobs.put_file(&rendition_key(id.as_str(), name, seg), &path).await?;
            }
        }
        // The first of several pieces ends where the next begins, not where the video does.
        let text = if plan.split() && name != AUDIO_RENDITION { playlist::unended(&text) } else { text };
        ctx.blobs.put_bytes(&rendition_playlist_key(id.as_str(), name), text.into_bytes()).await?;
    }
    Ok(all_started)
}
