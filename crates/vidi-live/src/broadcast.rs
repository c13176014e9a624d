//! The broadcasts this node holds: which publisher feeds which live stream, and what delivery
//! reads of them. Implements both seams: [`Publish`] for the RTMP service (admit or refuse a
//! publisher, by key, before any media) and [`LiveOutput`] for delivery (playlists and files
//! from memory, with low-latency HLS's blocking reloads).
//!
//! One publisher per live stream. A second one is refused while the first sends media; a first
//! that has gone silent (OBS reconnecting after a network change, before the old TCP connection
//! is closed) is cut and replaced. A publisher that returns within the reconnect grace continues
//! the same broadcast: its playlist goes on after a discontinuity and its recording is one video.
//! The broadcast itself runs in its own task ([`crate::session`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use vidi_core::id::{BroadcastId, LiveStreamId, VideoId};
use vidi_core::jobs::Waker;
use vidi_core::live::{Broadcast, LiveOutput, LiveRefusal, LiveStream};
use vidi_core::time::now_ms;
use vidi_core::{Blobs, Repo};
use vidi_media::Media;

use crate::config::LiveConfig;
use crate::ingest::{Feed, Publish, Refusal};
use crate::ladder::Rung;
use crate::media::MediaEvent;
use crate::session::{self, View};

/// Events queued between a publisher's connection and its broadcast: about a second of media.
/// A full queue makes the connection wait, which stops reading its socket (TCP back-pressure).
const QUEUE: usize = 256;

/// Segment stores under way at once on a node (see `Shared::segment_writes`).
const SEGMENT_WRITES: usize = 2;

/// The broadcasts of this node. Cheap to clone.
#[derive(Clone)]
pub struct Broadcasts(pub(crate) Arc<Shared>);

pub(crate) struct Shared {
    pub(crate) repo: Arc<dyn Repo>,
    pub(crate) blobs: Arc<dyn Blobs>,
    pub(crate) media: Media,
    pub(crate) waker: Waker,
    pub(crate) cfg: LiveConfig,
    /// Restream destinations are users' addresses: checked by the outbound guard when a pusher
    /// connects.
    pub(crate) outbound: vidi_outbound::Guard,
    pub(crate) restream: crate::restream::Settings,
    /// This process's id: the node recorded with each broadcast it holds.
    pub(crate) node: String,
    held: Mutex<HashMap<LiveStreamId, Arc<Held>>>,
    /// Every broadcast's task and the work they start: waited for at shutdown.
    pub(crate) tasks: TaskTracker,
    /// Fired at shutdown: every broadcast ends cleanly (playlist ended, recording queued).
    pub(crate) stop: CancellationToken,
    generations: AtomicU64,
    /// The node's one turn at taking a live thumbnail (see [`crate::thumbnail`]).
    pub(crate) thumbnails: crate::thumbnail::Turn,
    /// How many broadcasts store a segment (and its manifest) at once, node-wide. Publishers
    /// that started together cut their segments at the same keyframe moments: fifty stores at
    /// once were fifty blocking threads copying 750 kB each into the page cache, beside the two
    /// runtime workers, and the parts that closed those segments were listed late (p90 294 ms
    /// against ~50 ms for the others: docs/performance.md, session 13). Stores only feed the
    /// recording and other nodes, so they may trail by a moment; two at a time keep up with a
    /// store that answers over the network (S3).
    pub(crate) segment_writes: tokio::sync::Semaphore,
}

/// A live stream whose broadcast this node holds (publishing, or within its reconnect grace, or
/// ended and lingering so that players read the ENDLIST).
pub(crate) struct Held {
    pub(crate) live: LiveStream,
    pub(crate) broadcast: Broadcast,
    pub(crate) events: mpsc::Sender<(u64, MediaEvent)>,
    pub(crate) publisher: Mutex<Option<Publisher>>,
    pub(crate) view: Mutex<View>,
    /// The ladder's renditions (`VIDI_LIVE_LADDER`), tallest first; a rung at or above the
    /// source's height never gets media and is never listed.
    pub(crate) rungs: Vec<Arc<Rung>>,
    /// Notified each time a view changes (the source's or a rung's) (a part, a segment, the end).
    pub(crate) changed: Notify,
    /// Fired to end the broadcast now (the live stream was deleted, the node stops).
    pub(crate) cut: CancellationToken,
    /// The live thumbnail's refreshes (see [`crate::thumbnail`]).
    pub(crate) thumbnail: crate::thumbnail::Thumb,
}

/// The publisher currently feeding a broadcast.
pub(crate) struct Publisher {
    pub(crate) generation: u64,
    /// Unix ms of its last media (its admission, until it sends some).
    pub(crate) last_media: Arc<AtomicI64>,
    pub(crate) cut: CancellationToken,
}

impl Held {
    /// Asks `check` of `view` (the source's or a rung's) each time it changes, until it
    /// answers, for at most the playlist's blocking limit (then `None`): a blocking reload, or
    /// a hinted part.
    pub(crate) async fn wait<T>(&self, view: &Mutex<View>, mut check: impl FnMut(&mut View) -> Option<T>) -> Option<T> {
        let deadline = tokio::time::Instant::now() + lock(view).playlist.block_limit();
        let mut waited = false;
        loop {
            // Armed before the check, so a change between the check and the wait wakes it.
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(answer) = check(&mut lock(view)) {
                if waited {
                    crate::metrics::waited(true);
                }
                return Some(answer);
            }
            waited = true;
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                crate::metrics::waited(false);
                return None;
            }
        }
    }

    /// The view of a rendition by its media playlist's name: `index.m3u8` (the source), or a
    /// rung's (`240p.m3u8`).
    fn playlist_view(&self, name: &str) -> Option<&Mutex<View>> {
        if name == "index.m3u8" {
            return Some(&self.view);
        }
        let rung = name.strip_suffix(".m3u8")?;
        self.rungs.iter().find(|r| r.name() == rung).map(|r| &r.view)
    }

    /// The view a file belongs to, and its name there: a rung's files are `{rung}-{name}`.
    fn file_view<'a>(&self, name: &'a str) -> Option<(&Mutex<View>, &'a str)> {
        match name.split_once('-') {
            None => Some((&self.view, name)),
            Some((rung, rest)) => self.rungs.iter().find(|r| r.name() == rung).map(|r| (&r.view, rest)),
        }
    }

    /// The current publisher and when it last sent media; `None` when there is none.
    pub(crate) fn last_media(&self) -> Option<i64> {
        lock(&self.publisher).as_ref().map(|p| p.last_media.load(Ordering::Relaxed))
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Broadcasts {
    pub fn new(
        repo: Arc<dyn Repo>,
        blobs: Arc<dyn Blobs>,
        media: Media,
        waker: Waker,
        cfg: LiveConfig,
        node: String,
        outbound: vidi_outbound::Guard,
    ) -> Self {
        Broadcasts(Arc::new(Shared {
            repo,
            blobs,
            restream: crate::restream::Settings::new(&media.ffmpeg),
            outbound,
            media,
            waker,
            cfg,
            node,
            held: Mutex::default(),
            tasks: TaskTracker::new(),
            stop: CancellationToken::new(),
            generations: AtomicU64::new(0),
            thumbnails: crate::thumbnail::Turn::default(),
            segment_writes: tokio::sync::Semaphore::new(SEGMENT_WRITES),
        }))
    }

    /// Ends every broadcast (playlists ended, flags flipped, recordings queued) and waits for
    /// their tasks. New publishers are refused from the first moment.
    pub async fn shut_down(&self) {
        self.0.stop.cancel();
        self.0.tasks.close();
        self.0.tasks.wait().await;
    }

    /// The live streams this node holds a broadcast of.
    pub fn held(&self) -> Vec<LiveStreamId> {
        lock(&self.0.held).keys().cloned().collect()
    }

    fn get(&self, id: &LiveStreamId) -> Option<Arc<Held>> {
        lock(&self.0.held).get(id).cloned()
    }

    /// Forgets a broadcast whose task has ended (only that one: a new broadcast of the same live
    /// stream may have taken its place).
    pub(crate) fn forget(shared: &Shared, id: &LiveStreamId, broadcast: &BroadcastId) {
        let mut held = lock(&shared.held);
        if held.get(id).is_some_and(|h| &h.broadcast.id == broadcast) {
            held.remove(id);
        }
    }

    fn admit(&self, held: Arc<Held>, peer: SocketAddr) -> Box<dyn Feed> {
        let generation = self.0.generations.fetch_add(1, Ordering::Relaxed) + 1;
        let last_media = Arc::new(AtomicI64::new(now_ms()));
        let cut = held.cut.child_token();
        *lock(&held.publisher) = Some(Publisher { generation, last_media: last_media.clone(), cut: cut.clone() });
        tracing::info!(live_stream = %held.live.id, broadcast = %held.broadcast.id, %peer, generation, "publisher admitted");
        Box::new(PublisherFeed { held, generation, last_media, cut })
    }
}

#[async_trait]
impl Publish for Broadcasts {
    async fn begin(&self, stream_key: &str, peer: SocketAddr) -> Result<Box<dyn Feed>, Refusal> {
        if self.0.stop.is_cancelled() {
            return Err(Refusal::ShuttingDown);
        }
        let live = match self.0.repo.live_stream_by_key(stream_key).await {
            Ok(Some(l)) => l,
            Ok(None) => return Err(Refusal::UnknownKey),
            Err(e) => return Err(Refusal::Other(format!("the database did not answer: {e}"))),
        };
        let silence = self.0.cfg.silence.as_millis() as i64;
        // A broadcast held here: continue it, unless its publisher is still sending.
        if let Some(held) = self.get(&live.id).filter(|h| !h.cut.is_cancelled()) {
            {
                let mut publisher = lock(&held.publisher);
                if let Some(p) = publisher.as_ref() {
                    if now_ms() - p.last_media.load(Ordering::Relaxed) < silence {
                        return Err(Refusal::Busy);
                    }
                    tracing::info!(live_stream = %live.id, "a silent publisher is replaced by a new one");
                    p.cut.cancel();
                    *publisher = None;
                }
            }
            return Ok(self.admit(held, peer));
        }
        // A new broadcast.
        let now = now_ms();
        let broadcast = Broadcast {
            id: BroadcastId::generate(),
            live_stream_id: live.id.clone(),
            workspace_id: live.workspace_id.clone(),
            node: self.0.node.clone(),
            record: live.record,
            video_id: VideoId::generate(),
            started_at: now,
            heartbeat_at: now,
            ended_at: None,
        };
        if let Err(e) = self.0.repo.open_broadcast(&broadcast).await {
            return Err(Refusal::Other(format!("the broadcast could not be recorded: {e}")));
        }
        let (events, rx) = mpsc::channel(QUEUE);
        let held = Arc::new(Held {
            view: Mutex::new(View::new(&self.0.cfg)),
            rungs: crate::ladder::rungs(&self.0.cfg),
            live,
            broadcast,
            events,
            publisher: Mutex::default(),
            changed: Notify::new(),
            cut: self.0.stop.child_token(),
            thumbnail: Default::default(),
        });
        // Two publishers of one key racing past the check above: the first one in wins.
        let raced = {
            let mut map = lock(&self.0.held);
            let raced = map.get(&held.live.id).is_some_and(|h| !h.cut.is_cancelled());
            if !raced {
                map.insert(held.live.id.clone(), held.clone());
            }
            raced
        };
        if raced {
            let _ = self.0.repo.end_broadcast(&held.broadcast.id, now_ms()).await;
            return Err(Refusal::Busy);
        }
        tracing::info!(live_stream = %held.live.id, broadcast = %held.broadcast.id, "broadcast opened");
        self.0.tasks.spawn(session::run(self.0.clone(), held.clone(), rx));
        Ok(self.admit(held, peer))
    }
}

/// One admitted publisher's side of its broadcast.
struct PublisherFeed {
    held: Arc<Held>,
    generation: u64,
    last_media: Arc<AtomicI64>,
    cut: CancellationToken,
}

#[async_trait]
impl Feed for PublisherFeed {
    async fn push(&mut self, event: MediaEvent) -> anyhow::Result<()> {
        if event.dts().is_some() {
            self.last_media.store(now_ms(), Ordering::Relaxed);
        }
        tokio::select! {
            sent = self.held.events.send((self.generation, event)) => {
                sent.map_err(|_| anyhow::anyhow!("the broadcast has ended"))
            }
            () = self.cut.cancelled() => Err(anyhow::anyhow!("the publisher was cut")),
        }
    }

    fn cut(&self) -> CancellationToken {
        self.cut.clone()
    }
}

impl Drop for PublisherFeed {
    fn drop(&mut self) {
        // Gone, unless a newer publisher already took its place.
        let mut publisher = lock(&self.held.publisher);
        if publisher.as_ref().is_some_and(|p| p.generation == self.generation) {
            *publisher = None;
            tracing::info!(live_stream = %self.held.live.id, generation = self.generation, "publisher left");
        }
    }
}

#[async_trait]
impl LiveOutput for Broadcasts {
    fn master(&self, id: &LiveStreamId, uri: &dyn Fn(&str) -> String) -> Option<String> {
        let held = self.get(id)?;
        let source = lock(&held.view).variant(&uri("index.m3u8"), 3_000_000)?;
        let mut text = format!("#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-INDEPENDENT-SEGMENTS\n{source}");
        // The rungs that have media, tallest first (players choose by BANDWIDTH, and try the
        // first listed first).
        for rung in &held.rungs {
            let view = lock(&rung.view);
            if let Some(v) = view.variant(&uri(&format!("{}.m3u8", rung.name())), u64::from(rung.bitrate) + 128_000) {
                text += &v;
            }
        }
        Some(text)
    }

    async fn media(
        &self,
        id: &LiveStreamId,
        playlist: &str,
        msn: Option<u64>,
        part: Option<u32>,
    ) -> Result<String, LiveRefusal> {
        let held = self.get(id).ok_or(LiveRefusal::NotHere)?;
        let view = held.playlist_view(playlist).ok_or(LiveRefusal::NotHere)?;
        let answer = held
            .wait(view, |view| {
                if !view.started() {
                    return Some(Err(LiveRefusal::NotHere));
                }
                match view.playlist.reload(msn, part) {
                    crate::playlist::Reload::Now => Some(Ok(view.text())),
                    crate::playlist::Reload::Bad(why) => Some(Err(LiveRefusal::BadRequest(why))),
                    crate::playlist::Reload::Wait => None,
                }
            })
            .await;
        answer.unwrap_or(Err(LiveRefusal::Timeout))
    }

    async fn file(&self, id: &LiveStreamId, name: &str) -> Option<Bytes> {
        let held = self.get(id)?;
        let (view, name) = held.file_view(name)?;
        held.wait(view, |view| match view.files.get(name) {
            Some(b) => Some(Some(b.clone())),
            // Only the part about to be made is waited for (a preload hint's); anything else
            // that is not here is not coming.
            None if !view.is_next(name) => Some(None),
            None => None,
        })
        .await
        .flatten()
    }

    fn thumbnail_asked(&self, id: &LiveStreamId) {
        if let Some(held) = self.get(id) {
            held.thumbnail.asked();
        }
    }

    fn cut(&self, id: &LiveStreamId) {
        if let Some(held) = self.get(id) {
            tracing::info!(live_stream = %id, "live stream deleted: its broadcast is cut");
            held.cut.cancel();
        }
    }
}

/// How long an ended broadcast stays readable here, so that players get the ENDLIST.
pub(crate) const LINGER: Duration = Duration::from_secs(10);
