//! The optional ladder (`VIDI_LIVE_LADDER`): lower renditions of a broadcast for viewers on slow
//! links, listed beside the source rendition in the multivariant playlist.
//!
//! Each rung is one supervised ffmpeg ([`vidi_media::Supervisor`]: restarted with backoff, killed
//! and reaped when stopped), fed the broadcast's FLV on its stdin through a bounded queue of its
//! own (the restream pushers' [`Queue`]: never blocking the ingest, dropping up to the next
//! keyframe when the encoder falls behind), and writing FLV on its stdout, which is read back
//! here and cut by the same segmenter as the source. A rung that dies stops neither the source
//! rendition, nor the other rungs, nor the recording (made from the source's segments only).
//!
//! How segments line up across renditions (a player switching renditions asks for the same msn
//! in another playlist): the rung's input carries the source's output timeline (the publisher's
//! timestamps plus the segmenter's reconnect offset), ffmpeg keeps it (`-copyts`), and puts a
//! keyframe exactly where the source has one (`-force_key_frames source`, no scene-cut or
//! periodic keyframes), so the rung's segmenter sees keyframes at the source's times and cuts
//! where the source's does. Each source segment's first keyframe is logged as a boundary
//! (msn, time); a rung run starts its segmenter at the boundary its first keyframe matches, with
//! that msn, and shifts its timestamps onto the source's exactly (a publisher with B-frames has
//! its keyframes presented, and so re-encoded, a few frames after their decode time).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures::StreamExt;
use tokio::io::AsyncReadExt;
use tokio::process::ChildStdout;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use vidi_media::supervise::{Feed, Reader};
use vidi_media::{Restart, Supervisor};

use crate::broadcast::{Held, Shared, lock};
use crate::config::LiveConfig;
use crate::fmp4::{Output, Segmenter, SegmenterConfig};
use crate::media::MediaEvent;
use crate::restream::queue::Queue;
use crate::session::View;

/// A rung's keyframe belongs to the source segment starting at most this much earlier (a
/// B-frame publisher's keyframes are presented a few frames after their decode time; segments
/// are a second or more apart).
const MATCH_WITHIN: i64 = 500;
/// The source's segment boundaries remembered for rungs (re)starting: a minute and more.
const BOUNDARIES_KEPT: usize = 64;
/// How long [`Ladder::stop`] lets the encoders finish what they were given.
const DRAIN: Duration = Duration::from_secs(3);

/// One rendition of the ladder, as delivery reads it.
pub(crate) struct Rung {
    pub(crate) height: u32,
    pub(crate) view: Mutex<View>,
    /// What the encoder is asked for (bits per second): BANDWIDTH until a segment is measured.
    pub(crate) bitrate: u32,
    /// Init segments made by this rung's earlier runs: each run's are numbered after them, so
    /// a name is never given to other bytes.
    inits: AtomicU32,
}

impl Rung {
    /// `240p`: its media playlist is `240p.m3u8`, its files `240p-{name}`.
    pub(crate) fn name(&self) -> String {
        format!("{}p", self.height)
    }
}

/// The rungs of a new broadcast, tallest first (the settings sorted them).
pub(crate) fn rungs(cfg: &LiveConfig) -> Vec<Arc<Rung>> {
    cfg.ladder
        .iter()
        .map(|&height| {
            let name = format!("{height}p");
            Arc::new(Rung {
                height,
                view: Mutex::new(View::rung(cfg, format!("{name}-"), 0)),
                bitrate: bitrate(height),
                inits: AtomicU32::new(0),
            })
        })
        .collect()
}

/// About 0.1 bit per pixel at 30 fps for a 16:9 picture: 1.2 Mb/s at 480p, 300 kb/s at 240p.
fn bitrate(height: u32) -> u32 {
    let width = u64::from(height) * 16 / 9;
    (width * u64::from(height) * 3).clamp(150_000, 20_000_000) as u32
}

/// The source's segment boundaries: (msn, start on the output timeline in ms), oldest first.
type Boundaries = Arc<Mutex<VecDeque<(u64, i64)>>>;

/// A started rung's encoder.
struct Running {
    rung: Arc<Rung>,
    queue: Arc<Queue>,
    ending: Arc<AtomicBool>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// The ladder of one broadcast, fed by its session.
pub(crate) struct Ladder {
    shared: Arc<Shared>,
    held: Arc<Held>,
    boundaries: Boundaries,
    running: Vec<Running>,
    /// Whether the rungs were chosen (at the first video configuration, whose height decides).
    chosen: bool,
    audio: Option<MediaEvent>,
}

impl Ladder {
    pub(crate) fn new(shared: &Arc<Shared>, held: &Arc<Held>) -> Ladder {
        Ladder {
            shared: shared.clone(),
            held: held.clone(),
            boundaries: Arc::default(),
            running: Vec::new(),
            chosen: false,
            audio: None,
        }
    }

    /// Hands one of the publisher's events to every rung (never waits). `offset` puts its
    /// timestamps on the output timeline; `opened` is the segment this event started, if any.
    pub(crate) fn send(&mut self, event: MediaEvent, offset: i64, opened: Option<(u64, i64)>) {
        if let Some(b) = opened {
            let mut boundaries = lock(&self.boundaries);
            if boundaries.len() == BOUNDARIES_KEPT {
                boundaries.pop_front();
            }
            boundaries.push_back(b);
        }
        match &event {
            MediaEvent::VideoConfig(v) if !self.chosen => {
                self.chosen = true;
                self.start(v.height);
            }
            MediaEvent::AudioConfig(_) => self.audio = Some(event.clone()),
            _ => {}
        }
        let event = match event {
            MediaEvent::Video { dts, cts, keyframe, data } => {
                MediaEvent::Video { dts: dts + offset, cts, keyframe, data }
            }
            MediaEvent::Audio { dts, data } => MediaEvent::Audio { dts: dts + offset, data },
            config => config,
        };
        for r in &self.running {
            r.queue.push(&event);
        }
    }

    /// Starts an encoder for each rung below the source's height (a rung as tall as the source
    /// or taller would spend CPU on no gain).
    fn start(&mut self, source_height: u32) {
        let live = &self.held.live.id;
        for rung in &self.held.rungs {
            if source_height == 0 || rung.height >= source_height {
                tracing::info!(live_stream = %live, rung = rung.height, source_height, "ladder: rung skipped (not below the source)");
                continue;
            }
            let queue = Arc::new(Queue::default());
            if let Some(audio) = &self.audio {
                queue.push(audio);
            }
            let (ending, stop) = (Arc::new(AtomicBool::new(false)), self.held.cut.child_token());
            let span = tracing::info_span!("ladder", live_stream = %live, rung = rung.height);
            let run = encode(
                self.shared.clone(),
                self.held.clone(),
                rung.clone(),
                queue.clone(),
                self.boundaries.clone(),
                ending.clone(),
                stop.clone(),
            );
            let task = self.shared.tasks.spawn(tracing::Instrument::instrument(run, span));
            self.running.push(Running { rung: rung.clone(), queue, ending, stop, task });
        }
    }

    /// The broadcast ended: each encoder gets the end of its input and finishes what it holds
    /// (for at most [`DRAIN`]), then the rungs' playlists are ended.
    pub(crate) async fn stop(self) {
        for r in &self.running {
            r.ending.store(true, Ordering::Relaxed);
            r.queue.close();
        }
        let deadline = tokio::time::Instant::now() + DRAIN;
        for r in self.running {
            let mut task = r.task;
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                r.stop.cancel();
                let _ = task.await;
            }
            let mut view = lock(&r.rung.view);
            view.ended = true;
            view.playlist.end();
            view.text = None;
        }
        self.held.changed.notify_waiters();
    }
}

/// The rung's encoder, restarted until the broadcast ends.
async fn encode(
    shared: Arc<Shared>,
    held: Arc<Held>,
    rung: Arc<Rung>,
    queue: Arc<Queue>,
    boundaries: Boundaries,
    ending: Arc<AtomicBool>,
    stop: CancellationToken,
) {
    let feed: Feed = {
        let (queue, stop) = (queue.clone(), stop.clone());
        Arc::new(move || {
            if queue.is_closed() {
                // A retry after the broadcast ended would have no input.
                stop.cancel();
            }
            let reader = queue.reader().keeping_times();
            futures::stream::unfold(reader, |mut r| async move { r.next().await.map(|b| (Ok(b), r)) }).boxed()
        })
    };
    let cfg = SegmenterConfig {
        part_target: shared.cfg.part_target,
        segment_target: shared.cfg.segment_target,
        first_msn: 0,
    };
    let reader: Reader = {
        let (held, rung, live_cfg) = (held.clone(), rung.clone(), shared.cfg.clone());
        Arc::new(move |stdout| {
            Box::pin(read(stdout, held.clone(), rung.clone(), boundaries.clone(), cfg, live_cfg.clone()))
        })
    };
    let restart = Restart {
        first: Duration::from_secs(1),
        max: Duration::from_secs(30),
        healthy_after: Duration::from_secs(60),
        // ffmpeg exits well at the end of its input, which is the broadcast's end.
        after_success: false,
    };
    let supervisor = Supervisor::new(&shared.media.ffmpeg, ffmpeg_args(rung.height, rung.bitrate), restart)
        .fed(feed)
        .reading(reader);
    tracing::info!(bitrate = rung.bitrate, "ladder: encoding");
    loop {
        if let Err(e) = supervisor.run(&stop).await {
            tracing::error!(error = %e, "ladder: the encoder cannot start; this rung is off for the broadcast");
            break;
        }
        if stop.is_cancelled() || ending.load(Ordering::Relaxed) {
            break;
        }
        let status = supervisor.status();
        let said = status.stderr_tail.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default().to_string();
        tracing::warn!(ffmpeg = %said, "ladder: the encoder ended before the broadcast; starting it again");
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            () = stop.cancelled() => break,
        }
    }
    tracing::info!(starts = supervisor.status().starts, "ladder: stopped");
}

/// H.264 at the rung's height and bitrate, keyframes exactly at the source's, AAC copied (the
/// source's audio is already small next to any video), FLV out on stdout.
fn ffmpeg_args(height: u32, bitrate: u32) -> Vec<String> {
    let rate = format!("{}k", bitrate / 1000);
    let buffer = format!("{}k", bitrate / 500);
    let scale = format!("scale=-2:{height}");
    let mut args: Vec<String> = crate::restream::FLV_STDIN_INPUT.map(String::from).into();
    args.extend(
        [
            // The source's timeline, kept: what lines the rung's segments up with the source's.
            "-copyts",
            "-map",
            "0:v",
            "-map",
            "0:a?",
            "-vf",
            &scale,
            "-fps_mode",
            "passthrough",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            // No lookahead or B-frames: a frame leaves the encoder as soon as it is in.
            "-tune",
            "zerolatency",
            "-pix_fmt",
            "yuv420p",
            "-force_key_frames",
            "source",
            "-g",
            "100000",
            "-sc_threshold",
            "0",
            "-bf",
            "0",
            "-b:v",
            &rate,
            "-maxrate",
            &rate,
            "-bufsize",
            &buffer,
            "-c:a",
            "copy",
            "-f",
            "flv",
            "-flvflags",
            "no_duration_filesize",
            "pipe:1",
        ]
        .map(String::from),
    );
    args
}

/// One run's output: FLV tags into the rung's segmenter, its outputs into the rung's view.
async fn read(
    mut stdout: ChildStdout,
    held: Arc<Held>,
    rung: Arc<Rung>,
    boundaries: Boundaries,
    cfg: SegmenterConfig,
    live_cfg: LiveConfig,
) {
    let mut flv = FlvReader::default();
    let mut run: Option<Run> = None;
    let mut configs: Vec<MediaEvent> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    'read: loop {
        let n = match stdout.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        flv.buf.extend_from_slice(&buf[..n]);
        loop {
            let tag = match flv.next_tag() {
                Ok(Some(t)) => t,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = e, "ladder: the encoder's output is not FLV; this run's output is dropped");
                    break 'read;
                }
            };
            let Some(event) = tag.event() else { continue };
            match (&mut run, &event) {
                (Some(r), _) => r.push(&held, &rung, event),
                (None, MediaEvent::VideoConfig(_) | MediaEvent::AudioConfig(_)) => {
                    configs.retain(|c| std::mem::discriminant(c) != std::mem::discriminant(&event));
                    configs.push(event);
                }
                (None, MediaEvent::Video { dts, keyframe: true, .. }) => {
                    // The first keyframe of a source segment starts the run, under its msn.
                    let found = lock(&boundaries)
                        .iter()
                        .rev()
                        .find(|(_, at)| *at <= *dts + 1 && dts - at <= MATCH_WITHIN)
                        .copied();
                    if let Some((msn, at)) = found {
                        let mut r = Run::start(&rung, &live_cfg, cfg, msn, at - dts);
                        for c in configs.drain(..) {
                            r.push(&held, &rung, c);
                        }
                        r.push(&held, &rung, event);
                        run = Some(r);
                    }
                }
                (None, _) => {}
            }
        }
    }
    if let Some(mut r) = run {
        let outputs = r.segmenter.flush();
        r.publish(&held, &rung, outputs);
        rung.inits.fetch_add(r.inits, Ordering::Relaxed);
    }
}

/// One encoder run's segmenter.
struct Run {
    segmenter: Segmenter,
    /// Added to the encoder's timestamps: its keyframes land on the source's exactly.
    shift: i64,
    /// Init numbers of earlier runs, added to this run's.
    base: u32,
    /// Inits this run made.
    inits: u32,
}

impl Run {
    /// A run whose first segment is the source's `msn`. It continues the rung's playlist (after
    /// a discontinuity) when that is the segment the playlist expects next; after a gap (the
    /// encoder was down for a segment or more) the rung's playlist starts over at `msn`, as its
    /// numbers must follow each other.
    fn start(rung: &Rung, live_cfg: &LiveConfig, cfg: SegmenterConfig, msn: u64, shift: i64) -> Run {
        {
            let mut view = lock(&rung.view);
            if !view.started() || view.next.0 != msn {
                *view = View::rung(live_cfg, format!("{}-", rung.name()), msn);
            }
        }
        tracing::info!(msn, shift, "ladder: the encoder's output joins the rung");
        Run {
            segmenter: Segmenter::new(SegmenterConfig { first_msn: msn, ..cfg }),
            shift,
            base: rung.inits.load(Ordering::Relaxed),
            inits: 0,
        }
    }

    fn push(&mut self, held: &Held, rung: &Rung, event: MediaEvent) {
        let event = match event {
            MediaEvent::Video { dts, cts, keyframe, data } => {
                MediaEvent::Video { dts: dts + self.shift, cts, keyframe, data }
            }
            MediaEvent::Audio { dts, data } => MediaEvent::Audio { dts: dts + self.shift, data },
            MediaEvent::VideoConfig(v) => {
                lock(&rung.view).video = Some(v.clone());
                MediaEvent::VideoConfig(v)
            }
            MediaEvent::AudioConfig(a) => {
                lock(&rung.view).audio = Some(a.clone());
                MediaEvent::AudioConfig(a)
            }
        };
        let outputs = self.segmenter.push(event);
        self.publish(held, rung, outputs);
    }

    /// Takes outputs into the rung's view (init numbers after the earlier runs'), and wakes
    /// the requests waiting for them.
    fn publish(&mut self, held: &Held, rung: &Rung, outputs: Vec<Output>) {
        if outputs.is_empty() {
            return;
        }
        {
            let mut view = lock(&rung.view);
            for o in outputs {
                let o = match o {
                    Output::Init { number, bytes } => {
                        self.inits = self.inits.max(number + 1);
                        Output::Init { number: number + self.base, bytes }
                    }
                    Output::Segment { msn, duration, init, discontinuity, bytes } => {
                        Output::Segment { msn, duration, init: init + self.base, discontinuity, bytes }
                    }
                    part => part,
                };
                view.apply(&o);
            }
        }
        held.changed.notify_waiters();
    }
}

/// FLV tags out of a byte stream (the encoder's stdout).
#[derive(Default)]
struct FlvReader {
    buf: BytesMut,
    header_read: bool,
}

/// One FLV tag: its type (8 audio, 9 video, 18 script), timestamp (ms) and body.
struct FlvTag {
    kind: u8,
    ts: i64,
    body: Bytes,
}

impl FlvTag {
    /// The tag as an event; `None` for what carries nothing for the segmenter (metadata).
    fn event(&self) -> Option<MediaEvent> {
        let tag = match self.kind {
            8 => crate::rtmp::flv::audio(&self.body, self.ts),
            9 => crate::rtmp::flv::video(&self.body, self.ts),
            _ => return None,
        };
        match tag {
            Ok(crate::rtmp::flv::Tag::Event(e)) => Some(e),
            Ok(crate::rtmp::flv::Tag::Skip) => None,
            Err(e) => {
                tracing::warn!(error = %e, "ladder: a tag of the encoder's output is skipped");
                None
            }
        }
    }
}

impl FlvReader {
    /// The next whole tag, `None` until more bytes come.
    fn next_tag(&mut self) -> Result<Option<FlvTag>, &'static str> {
        if !self.header_read {
            if self.buf.len() < 9 {
                return Ok(None);
            }
            if &self.buf[..3] != b"FLV" {
                return Err("no FLV signature");
            }
            let header = u32::from_be_bytes([self.buf[5], self.buf[6], self.buf[7], self.buf[8]]) as usize;
            if !(9..=1024).contains(&header) {
                return Err("an FLV header of a strange size");
            }
            // The header, then the first (zero) previous-tag-size.
            if self.buf.len() < header + 4 {
                return Ok(None);
            }
            self.buf.advance(header + 4);
            self.header_read = true;
        }
        if self.buf.len() < 11 {
            return Ok(None);
        }
        let size = u32::from_be_bytes([0, self.buf[1], self.buf[2], self.buf[3]]) as usize;
        if self.buf.len() < 11 + size + 4 {
            return Ok(None);
        }
        let kind = self.buf[0] & 0x1f;
        let ts = u32::from_be_bytes([self.buf[7], self.buf[4], self.buf[5], self.buf[6]]);
        self.buf.advance(11);
        let body = self.buf.split_to(size).freeze();
        self.buf.advance(4);
        Ok(Some(FlvTag { kind, ts: i64::from(ts), body }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::restream::flv;

    #[test]
    fn flv_written_for_a_pusher_reads_back_tag_by_tag_however_it_is_split() {
        let mut out = BytesMut::new();
        out.extend_from_slice(&flv::header(true, true));
        flv::video(&mut out, 70_000_123, 40, true, &[0, 0, 0, 2, 0x65, 0x88]);
        flv::audio(&mut out, 70_000_130, &[0x21, 0x10]);
        let bytes = out.freeze();
        for split in [1, 7, 13, 20, bytes.len()] {
            let mut r = FlvReader::default();
            let mut tags = Vec::new();
            for chunk in bytes.chunks(split) {
                r.buf.extend_from_slice(chunk);
                while let Some(t) = r.next_tag().unwrap() {
                    tags.push((t.kind, t.ts, t.body.len()));
                }
            }
            assert_eq!(tags, [(9, 70_000_123, 11), (8, 70_000_130, 4)], "split {split}");
        }
        let mut bad = FlvReader::default();
        bad.buf.extend_from_slice(b"RIFF0000000000");
        assert!(bad.next_tag().is_err());
    }

    #[test]
    fn rungs_are_named_by_height_with_a_bitrate_that_falls_with_it() {
        let cfg = LiveConfig { ladder: vec![480, 240], ..LiveConfig::default() };
        let r = rungs(&cfg);
        assert_eq!(r.iter().map(|r| r.name()).collect::<Vec<_>>(), ["480p", "240p"]);
        assert!((1_000_000..1_500_000).contains(&r[0].bitrate), "{}", r[0].bitrate);
        assert!((250_000..400_000).contains(&r[1].bitrate), "{}", r[1].bitrate);
    }
}
