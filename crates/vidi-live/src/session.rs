//! One broadcast, run by its own task: the publisher's events go through the segmenter; each part
//! and segment goes into the in-memory view delivery reads, and each segment (with its init) to
//! the media store for the recording and for other nodes; the `broadcasting` flag follows the
//! media; a thumbnail is taken every few seconds. The broadcast ends when its publisher has been
//! gone for the reconnect grace, when it is cut (live stream deleted), or when the node stops;
//! then the playlist is ended, the flag flipped, and the recording queued.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use vidi_core::live::broadcast_prefix;
use vidi_core::time::now_ms;

use crate::broadcast::{Broadcasts, Held, LINGER, Shared, lock};
use crate::config::LiveConfig;
use crate::fmp4::{Output, Segmenter, SegmenterConfig};
use crate::ladder::Ladder;
use crate::media::{AudioConfig, MediaEvent, VideoConfig};
use crate::playlist::{LivePlaylist, Resource, init_name, part_name, segment_name};
use crate::record::{self, Manifest};
use crate::restream::Restreamer;

/// What delivery reads of a broadcast: its playlist and its recent files.
pub(crate) struct View {
    pub(crate) playlist: LivePlaylist,
    pub(crate) files: HashMap<String, Bytes>,
    /// The names of each media sequence number's files, to let old ones go.
    by_msn: BTreeMap<u64, Vec<String>>,
    pub(crate) video: Option<VideoConfig>,
    pub(crate) audio: Option<AudioConfig>,
    /// Bytes and seconds of the segments so far, for the master playlist's BANDWIDTH.
    bytes: u64,
    seconds: f64,
    /// The part the segmenter makes next: a request for it waits (a preload hint's).
    pub(crate) next: (u64, u32),
    pub(crate) ended: bool,
    window: usize,
    /// Put before every URI of the playlist: a rung's files share the source's directory
    /// under names of their own (`240p-12.3.m4s`); empty for the source.
    prefix: String,
    /// The playlist's text, rendered once per version: a thousand viewers woken by one part
    /// would otherwise render the same text a thousand times under this lock.
    pub(crate) text: Option<String>,
}

impl View {
    pub(crate) fn new(cfg: &LiveConfig) -> Self {
        View {
            playlist: LivePlaylist::new(cfg.part_target, cfg.segment_target, cfg.window),
            files: HashMap::new(),
            by_msn: BTreeMap::new(),
            video: None,
            audio: None,
            bytes: 0,
            seconds: 0.0,
            next: (0, 0),
            ended: false,
            window: cfg.window,
            text: None,
            prefix: String::new(),
        }
    }

    /// The view of a ladder's rung whose files are named `{prefix}{name}`, starting at segment
    /// `first_msn` (the source's segment its first keyframe starts).
    pub(crate) fn rung(cfg: &LiveConfig, prefix: String, first_msn: u64) -> Self {
        let mut view = View::new(cfg);
        view.playlist = LivePlaylist::new(cfg.part_target, cfg.segment_target, cfg.window).with_first_msn(first_msn);
        view.next = (first_msn, 0);
        view.prefix = prefix;
        view
    }

    /// Some media has been packaged: there is a playlist to serve.
    pub(crate) fn started(&self) -> bool {
        self.files.keys().any(|n| n.starts_with("init"))
    }

    /// Whether `name` is the part the playlist hints at (or the segment being made): a request
    /// for it waits until it exists.
    pub(crate) fn is_next(&self, name: &str) -> bool {
        if self.ended {
            return false;
        }
        if self.playlist.resource(name) == Resource::Hinted {
            return true;
        }
        name.strip_suffix(".m4s").and_then(|s| s.parse::<u64>().ok()) == Some(self.next.0)
    }

    /// This rendition's `EXT-X-STREAM-INF` and `uri` (its media playlist) for the multivariant
    /// playlist, once it has media; `guess` is its BANDWIDTH until a segment is measured.
    pub(crate) fn variant(&self, uri: &str, guess: u64) -> Option<String> {
        if !self.started() {
            return None;
        }
        let codecs: Vec<&str> =
            [self.video.as_ref().map(|v| v.codec.as_str()), self.audio.as_ref().map(|a| a.codec.as_str())]
                .into_iter()
                .flatten()
                .collect();
        // Measured once a segment exists (players use it to choose among variants).
        let bandwidth = if self.seconds > 0.0 { (self.bytes as f64 * 8.0 / self.seconds * 1.2) as u64 } else { guess };
        let mut inf = format!("BANDWIDTH={bandwidth},CODECS=\"{}\"", codecs.join(","));
        if let Some(v) = self.video.as_ref().filter(|v| v.width > 0 && v.height > 0) {
            inf += &format!(",RESOLUTION={}x{}", v.width, v.height);
        }
        Some(format!("#EXT-X-STREAM-INF:{inf}\n{uri}\n"))
    }

    fn remember(&mut self, msn: u64, name: String, bytes: Bytes) {
        self.by_msn.entry(msn).or_default().push(name.clone());
        self.files.insert(name, bytes);
    }

    /// The init and the first part of the newest segment that has one: its keyframe is the
    /// freshest picture of the broadcast (what the live thumbnail decodes, and nothing more).
    pub(crate) fn newest_keyframe(&self) -> Option<Vec<Bytes>> {
        let init = self.files.keys().filter(|n| n.starts_with("init")).max().and_then(|n| self.files.get(n))?;
        let part = self.by_msn.keys().rev().find_map(|m| self.files.get(&part_name(*m, 0)))?;
        Some(vec![init.clone(), part.clone()])
    }

    /// The playlist as served (rendered at most once per version).
    pub(crate) fn text(&mut self) -> String {
        let prefix = &self.prefix;
        let playlist = &self.playlist;
        self.text.get_or_insert_with(|| prefixed(&playlist.render(), prefix)).clone()
    }

    /// Takes one segmenter output into the view.
    pub(crate) fn apply(&mut self, o: &Output) {
        self.text = None;
        match o {
            Output::Init { number, bytes } => {
                self.files.insert(init_name(*number), bytes.clone());
            }
            Output::Part { msn, index, bytes, .. } => {
                self.remember(*msn, part_name(*msn, *index), bytes.clone());
                self.next = (*msn, index + 1);
            }
            Output::Segment { msn, duration, bytes, .. } => {
                self.remember(*msn, segment_name(*msn), bytes.clone());
                self.bytes += bytes.len() as u64;
                self.seconds += duration.as_secs_f64();
                self.next = (msn + 1, 0);
                self.prune(*msn);
            }
        }
        self.playlist.apply(o);
    }

    /// Parts leave after a few segments (the draft keeps them downloadable three target
    /// durations after they leave the playlist); segments after twice the window.
    fn prune(&mut self, last: u64) {
        let keep_segments = last.saturating_sub(2 * self.window as u64);
        let keep_parts = last.saturating_sub(3);
        let old: Vec<u64> = self.by_msn.range(..keep_parts).map(|(m, _)| *m).collect();
        for msn in old {
            let names = self.by_msn.remove(&msn).unwrap_or_default();
            let (gone, kept): (Vec<String>, Vec<String>) =
                names.into_iter().partition(|n| msn < keep_segments || n.matches('.').count() == 2);
            for n in gone {
                self.files.remove(&n);
            }
            if !kept.is_empty() {
                self.by_msn.insert(msn, kept);
            }
        }
    }
}

/// `text` (a playlist) with `prefix` before each of its URIs.
fn prefixed(text: &str, prefix: &str) -> String {
    if prefix.is_empty() {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 512);
    for line in text.lines() {
        if !line.is_empty() && !line.starts_with('#') {
            out.push_str(prefix);
            out.push_str(line);
        } else if let Some(start) = line.find("URI=\"") {
            out.push_str(&line[..start + 5]);
            out.push_str(prefix);
            out.push_str(&line[start + 5..]);
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// Runs broadcast `held` until it ends; `events` are its publishers' (tagged by generation).
pub(crate) async fn run(shared: Arc<Shared>, held: Arc<Held>, mut events: mpsc::Receiver<(u64, MediaEvent)>) {
    let cfg = shared.cfg.clone();
    let live = &held.live.id;
    let prefix = broadcast_prefix(live, &held.broadcast.id);
    let mut segmenter = Segmenter::new(SegmenterConfig {
        part_target: cfg.part_target,
        segment_target: cfg.segment_target,
        first_msn: 0,
    });
    let (store, stored) = store_segments(&shared, prefix.clone());
    let mut generation = 0u64;
    let mut on = false;
    // This node's count of broadcasts on air follows `on`, and drops when the task ends.
    let mut on_air = crate::metrics::OnAir::default();
    let mut flips = 0u32;
    let mut gone_since: Option<i64> = None;
    // While it broadcasts, each restream destination gets its own pusher (one dead destination
    // stops neither the others, nor the ingest, nor the recording).
    let restreamer = (!held.live.restreams.is_empty())
        .then(|| Restreamer::start(live, &held.live.restreams, &shared.outbound, &shared.restream, &held.cut));
    // The optional ladder: lower renditions transcoded from this one (see `ladder`).
    let mut ladder = (!held.rungs.is_empty()).then(|| Ladder::new(&shared, &held));
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            got = events.recv() => {
                let Some((g, event)) = got else { break };
                if g < generation {
                    continue; // a replaced publisher's last events
                }
                if g > generation {
                    // A new publisher: its clock restarts, the playlist goes on after a gap.
                    if generation != 0 {
                        segmenter.discontinuity();
                    }
                    generation = g;
                }
                if event.dts().is_some() && !on {
                    on = flip(&shared, &held, true, &mut flips).await;
                    on_air.set(on);
                }
                match &event {
                    MediaEvent::VideoConfig(v) => lock(&held.view).video = Some(v.clone()),
                    MediaEvent::AudioConfig(a) => lock(&held.view).audio = Some(a.clone()),
                    _ => {}
                }
                if let Some(r) = &restreamer {
                    r.send(&event);
                }
                let before = segmenter.current_segment().map(|(msn, _)| msn);
                let copy = ladder.as_ref().map(|_| event.clone());
                let outputs = segmenter.push(event);
                if let (Some(l), Some(event)) = (ladder.as_mut(), copy) {
                    // A keyframe that opened a segment: where the rungs cut theirs.
                    let opened = segmenter.current_segment().filter(|(msn, _)| Some(*msn) != before);
                    l.send(event, segmenter.offset(), opened);
                }
                publish(&held, &store, outputs);
            }
            _ = tick.tick() => {
                let last_media = held.last_media();
                let now = now_ms();
                let silent = last_media.is_none_or(|t| now - t >= cfg.silence.as_millis() as i64);
                if on && silent {
                    on = !flip(&shared, &held, false, &mut flips).await;
                    on_air.set(on);
                }
                match (last_media, gone_since) {
                    (Some(_), _) => gone_since = None,
                    (None, None) => gone_since = Some(now),
                    (None, Some(t)) if now - t >= cfg.reconnect_grace.as_millis() as i64 => break,
                    _ => {}
                }
                if on && held.live.thumbnail_key.is_none() && held.thumbnail.due(cfg.thumbnail_every, now) {
                    crate::thumbnail::queue(&shared, &held);
                }
            }
            () = held.cut.cancelled() => break,
        }
    }
    // The end: the part and segment in flight, then ENDLIST.
    if let Some(p) = lock(&held.publisher).take() {
        p.cut.cancel();
    }
    publish(&held, &store, segmenter.flush());
    {
        let mut view = lock(&held.view);
        view.ended = true;
        view.playlist.end();
        view.text = None;
    }
    held.changed.notify_waiters();
    on_air.set(false);
    if on {
        flip(&shared, &held, false, &mut flips).await;
    }
    if let Some(r) = restreamer {
        r.stop().await;
    }
    if let Some(l) = ladder {
        l.stop().await;
    }
    drop(store);
    let manifest = stored.await.unwrap_or_default();
    end(&shared, &held, manifest).await;
    // Players still polling read the ENDLIST for a while; the node's stop does not wait for it.
    tokio::select! {
        () = tokio::time::sleep(LINGER) => {}
        () = shared.stop.cancelled() => {}
    }
    Broadcasts::forget(&shared, live, &held.broadcast.id);
}

/// Records the end, and queues the recording.
async fn end(shared: &Shared, held: &Held, manifest: Manifest) {
    let b = &held.broadcast;
    if let Err(e) = shared.repo.end_broadcast(&b.id, now_ms()).await {
        // The stale sweep of another node ends it later, and queues its recording then.
        tracing::error!(broadcast = %b.id, error = %e, "could not record the end of a broadcast");
        return;
    }
    tracing::info!(live_stream = %b.live_stream_id, broadcast = %b.id, segments = manifest.segments.len(), "broadcast ended");
    if b.record && !manifest.segments.is_empty() {
        record::queue(shared, b).await;
    }
}

/// Flips `broadcasting` (and records its event). Returns whether the flag now has that value.
async fn flip(shared: &Shared, held: &Held, on: bool, flips: &mut u32) -> bool {
    *flips += 1;
    let occurrence = format!("{}:{flips}", held.broadcast.id);
    match shared.repo.set_broadcasting(&held.live.workspace_id, &held.live.id, on, &occurrence, now_ms()).await {
        Ok(_) => {
            tracing::info!(live_stream = %held.live.id, broadcasting = on, "broadcasting flipped");
            true
        }
        Err(e) => {
            // Tried again at the next media or tick.
            tracing::warn!(live_stream = %held.live.id, error = %e, "could not flip broadcasting");
            false
        }
    }
}

/// Takes outputs into the view (and wakes the requests waiting for them), and queues the
/// segments and inits for the media store.
fn publish(held: &Held, store: &mpsc::UnboundedSender<Output>, outputs: Vec<Output>) {
    if outputs.is_empty() {
        return;
    }
    {
        let mut view = lock(&held.view);
        for o in &outputs {
            view.apply(o);
        }
    }
    held.changed.notify_waiters();
    crate::metrics::parts(outputs.iter().filter(|o| matches!(o, Output::Part { .. })).count() as u64);
    for o in outputs {
        if !matches!(o, Output::Part { .. }) {
            let _ = store.send(o);
        }
    }
}

/// Writes a broadcast's inits and segments to the media store, in order, each segment followed
/// by the manifest that lists it: what the recording is made from, even after a crash.
fn store_segments(
    shared: &Arc<Shared>,
    prefix: String,
) -> (mpsc::UnboundedSender<Output>, tokio::task::JoinHandle<Manifest>) {
    // Unbounded, but bounded in practice by the publisher's bitrate: a store slower than
    // the stream for minutes would show in the logs long before memory does.
    let (tx, mut rx) = mpsc::unbounded_channel::<Output>();
    let blobs = shared.blobs.clone();
    let writes = shared.clone();
    let task = shared.tasks.spawn(async move {
        let mut manifest = Manifest::default();
        while let Some(o) = rx.recv().await {
            let (key, bytes) = match &o {
                Output::Init { number, bytes } => (format!("{prefix}{}", init_name(*number)), bytes.clone()),
                Output::Segment { msn, bytes, .. } => (format!("{prefix}{}", segment_name(*msn)), bytes.clone()),
                Output::Part { .. } => continue,
            };
            // The node's turn at storing (see `Shared::segment_writes`), for the segment and its
            // manifest together.
            let _turn = writes.segment_writes.acquire().await;
            let stored = put(blobs.as_ref(), &key, bytes).await;
            if matches!(o, Output::Segment { .. }) {
                crate::metrics::segment(stored.is_ok());
            }
            if let Err(e) = stored {
                tracing::error!(key, error = %e, "a live segment could not be stored: the recording will miss it");
                continue;
            }
            if let Output::Segment { msn, duration, init, discontinuity, .. } = o {
                manifest.push(msn, init, duration, discontinuity);
                let json = Bytes::from(serde_json::to_vec(&manifest).expect("plain data"));
                if let Err(e) = put(blobs.as_ref(), &format!("{prefix}{}", record::MANIFEST), json).await {
                    tracing::warn!(error = %e, "the broadcast's manifest could not be stored");
                }
            }
        }
        manifest
    });
    (tx, task)
}

/// A store write, tried three times (a live segment has no second chance).
async fn put(blobs: &dyn vidi_core::Blobs, key: &str, bytes: Bytes) -> vidi_core::CoreResult<()> {
    let mut attempt = 0;
    loop {
        match blobs.put_shared(key, bytes.clone()).await {
            Ok(()) => return Ok(()),
            Err(e) if attempt >= 2 => return Err(e),
            Err(_) => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
        }
    }
}
