//! Restreams: while a live stream broadcasts, each of its destinations (at most
//! [`vidi_core::live::MAX_RESTREAMS`]) gets a pusher of its own, so a dead or slow destination
//! never stops the others, the ingest or the recording.
//!
//! A pusher is one `ffmpeg -c copy -f flv` under a [`Supervisor`] (restarted with backoff, killed
//! and reaped when stopped), fed on its stdin an FLV stream written from the broadcast's
//! [`MediaEvent`]s ([`flv`]) through a bounded queue of its own ([`queue`]): [`Restreamer::send`]
//! never waits, and a destination that cannot keep up loses media up to the next keyframe. Each
//! (re)start gets a fresh FLV header, the current configurations, and starts at the next keyframe.
//! ffmpeg pushes to a loopback [`relay`] that makes the real connection through the outbound
//! guard (see there for why).
//!
//! Why ffmpeg and not an RTMP client session in this process (rml_rtmp's `ClientSession`): the
//! receivers that matter (YouTube, Twitch, Facebook, nginx-rtmp, Wowza) each have their quirks
//! in connect, `releaseStream`/`FCPublish`, chunk sizes and acknowledgements, which ffmpeg's RTMP
//! client has been handling for fifteen years, and a process per destination is isolation for
//! free: a hung or crashing push cannot touch the ingest. The cost is a process per destination
//! (a few MB, next to no CPU with `-c copy`) and a loopback hop.
//!
//! The guard at connect time: a destination is stored as given. A destination whose URL is a
//! forbidden address (loopback, private, …: see vidi-outbound) is refused at once and never
//! retried, as the address cannot change; a name that resolves only to forbidden addresses is
//! retried with the same backoff as any failure, in case its DNS is changed.
//! `VIDI_OUTBOUND_ALLOW_PRIVATE=true` lets both through (the guard passed in carries it).

pub mod flv;
pub(crate) mod queue;
mod relay;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use vidi_core::id::LiveStreamId;
use vidi_core::live::Restream;
use vidi_media::supervise::{Feed, Status};
use vidi_media::{Restart, Supervisor, Tool};

use crate::media::MediaEvent;
use queue::Queue;
use relay::{Link, PUSHING_AFTER, Relay, Server};

/// How often the end of ffmpeg runs is looked for, for the logs ([`Restreamer::statuses`] looks
/// when called).
const WATCH_EVERY: Duration = Duration::from_millis(250);
/// How long [`Restreamer::stop`] lets pushers send what is queued before killing them.
pub const DRAIN: Duration = Duration::from_secs(3);

/// How pushers run.
#[derive(Clone, Debug)]
pub struct Settings {
    pub ffmpeg: Tool,
    pub restart: Restart,
    /// Certificates trusted for `rtmps://` on top of the platform's roots (tests; a private CA).
    pub extra_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
}

impl Settings {
    /// Retries from 1 s, doubling to 30 s; a push that lasted a minute starts again from 1 s.
    ///
    /// `ffmpeg` runs without a jail: the media tools' Landlock domain forbids all TCP, and a
    /// pusher must reach its relay. It only copies (no decoding) what the ingest already parsed.
    pub fn new(ffmpeg: &Tool) -> Settings {
        let ffmpeg = Tool { jail: None, ..ffmpeg.clone() };
        let restart = Restart {
            first: Duration::from_secs(1),
            max: Duration::from_secs(30),
            healthy_after: Duration::from_secs(60),
            // ffmpeg exits successfully only at the end of its input, which is the end of the
            // broadcast ([`Restreamer::stop`]): every other exit is a failure, retried.
            after_success: false,
        };
        Settings { ffmpeg, restart, extra_roots: Vec::new() }
    }
}

/// Where a destination's pusher is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushState {
    /// ffmpeg started and waits for media, or is connecting.
    Connecting,
    /// The destination takes media.
    Pushing,
    /// The last run failed (why, with the stream key taken out); another starts after the backoff.
    Retrying {
        error: String,
    },
    /// Never started, and never will in this broadcast (a forbidden address in the URL, a URL
    /// that is not RTMP, no ffmpeg).
    Refused {
        error: String,
    },
    Stopped,
}

/// A destination's pusher, seen from outside.
#[derive(Clone, Debug)]
pub struct DestinationStatus {
    /// The destination's `name`.
    pub name: String,
    pub state: PushState,
    /// ffmpeg's pid while one runs.
    pub pid: Option<u32>,
    /// ffmpeg runs started.
    pub starts: u32,
    /// Bytes sent to the destination by the current connection.
    pub sent: u64,
    /// Frames dropped because the destination could not take them in time.
    pub dropped: u64,
    /// Why the last connection or run failed (kept while the next one connects), without the
    /// stream key.
    pub last_error: Option<String>,
}

struct Pusher {
    name: String,
    queue: Arc<Queue>,
    watch: Arc<Watch>,
    /// Stops this pusher alone (a child of the restreamer's token).
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// What a pusher's state is made of, shared by its task and [`Restreamer::statuses`].
struct Watch {
    key: String,
    refused: Mutex<Option<String>>,
    supervisor: Mutex<Option<Arc<Supervisor>>>,
    link: Arc<Mutex<Link>>,
    stopped: CancellationToken,
    /// Set by [`Restreamer::stop`]: the run that ends now is the last.
    ending: std::sync::atomic::AtomicBool,
    /// This pusher in `vidi_restream_pushers`, as of the last [`Watch::observe`].
    gauge: crate::metrics::PusherState,
}

impl Watch {
    /// Brings the pusher's state gauge up to date.
    fn observe(&self) {
        let label = match self.state().0 {
            PushState::Connecting => Some("connecting"),
            PushState::Pushing => Some("pushing"),
            PushState::Retrying { .. } => Some("retrying"),
            PushState::Refused { .. } => Some("refused"),
            PushState::Stopped => None,
        };
        self.gauge.set(label);
    }

    fn state(&self) -> (PushState, Status, Link) {
        let mut link = self.link.lock().unwrap_or_else(|p| p.into_inner()).clone();
        link.error = link.error.map(|e| redact(&e, &self.key));
        if let Some(error) = self.refused.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return (PushState::Refused { error }, Status::default(), link);
        }
        let status = self.supervisor.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map(|s| s.status());
        let status = status.unwrap_or_default();
        let ended = self.ending.load(std::sync::atomic::Ordering::Relaxed) && status.pid.is_none();
        let state = if self.stopped.is_cancelled() || ended {
            PushState::Stopped
        } else if status.pid.is_some() || status.starts == 0 {
            if link.connected && link.sent > PUSHING_AFTER { PushState::Pushing } else { PushState::Connecting }
        } else {
            // The relay's reason names the destination's failure; ffmpeg's says what it saw of it.
            let ffmpeg = status.stderr_tail.lines().rev().find(|l| !l.trim().is_empty()).map(str::to_string);
            let error = link.error.clone().or(ffmpeg).or(status.last_exit.clone()).unwrap_or_default();
            PushState::Retrying { error: redact(&error, &self.key) }
        };
        (state, status, link)
    }
}

/// `text` without the stream key (a key is a secret: whoever has it can publish as the user).
fn redact(text: &str, key: &str) -> String {
    if key.len() < 4 { text.to_string() } else { text.replace(key, "<stream key>") }
}

/// The pushers of one broadcast.
pub struct Restreamer {
    pushers: Vec<Pusher>,
    stop: CancellationToken,
}

impl Restreamer {
    /// Starts a pusher per destination (on the current Tokio runtime). `guard` is the outbound
    /// guard (built with `VIDI_OUTBOUND_ALLOW_PRIVATE`); `cancel` stops them all, like
    /// [`stop`](Self::stop) (which also waits for every ffmpeg to be reaped).
    pub fn start(
        live_stream: &LiveStreamId,
        destinations: &[Restream],
        guard: &vidi_outbound::Guard,
        settings: &Settings,
        cancel: &CancellationToken,
    ) -> Restreamer {
        let stop = cancel.child_token();
        let pushers = destinations
            .iter()
            .map(|dest| {
                let queue = Arc::new(Queue::default());
                let own = stop.child_token();
                let watch = Arc::new(Watch {
                    key: dest.stream_key.clone(),
                    refused: Mutex::new(None),
                    supervisor: Mutex::new(None),
                    link: Arc::default(),
                    stopped: own.clone(),
                    ending: Default::default(),
                    gauge: Default::default(),
                });
                let span = tracing::info_span!("restream", live_stream = %live_stream, destination = %dest.name);
                let run =
                    push(dest.clone(), guard.clone(), settings.clone(), queue.clone(), watch.clone(), own.clone());
                let task = tokio::spawn(tracing::Instrument::instrument(run, span));
                Pusher { name: dest.name.clone(), queue, watch, stop: own, task }
            })
            .collect();
        Restreamer { pushers, stop }
    }

    /// Hands `event` to every pusher's queue. Never waits (see the module's note).
    pub fn send(&self, event: &MediaEvent) {
        for p in &self.pushers {
            p.queue.push(event);
        }
    }

    /// Each destination's pusher now, in the order of the destinations.
    pub fn statuses(&self) -> Vec<DestinationStatus> {
        self.pushers
            .iter()
            .map(|p| {
                let (state, status, link) = p.watch.state();
                let last_error = match &state {
                    PushState::Retrying { error } | PushState::Refused { error } => Some(error.clone()),
                    _ => link.error,
                };
                DestinationStatus {
                    name: p.name.clone(),
                    state,
                    pid: status.pid,
                    starts: status.starts,
                    sent: link.sent,
                    dropped: p.queue.dropped(),
                    last_error,
                }
            })
            .collect()
    }

    /// Ends every push: each running ffmpeg gets what is queued and the end of its input, so a
    /// destination taking media gets the end of the stream (ffmpeg closes the RTMP stream), for
    /// at most [`DRAIN`]; a pusher waiting to retry is stopped at once. Returns once every
    /// ffmpeg has exited or been killed, and been reaped.
    pub async fn stop(mut self) {
        let pushers = std::mem::take(&mut self.pushers);
        for p in &pushers {
            p.watch.ending.store(true, std::sync::atomic::Ordering::Relaxed);
            p.queue.close();
            // A pusher between runs (backing off after a failure) has nothing to finish.
            if p.watch.state().1.pid.is_none() {
                p.stop.cancel();
            }
        }
        let deadline = tokio::time::Instant::now() + DRAIN;
        let mut left = Vec::new();
        for p in pushers {
            let mut task = p.task;
            match tokio::time::timeout_at(deadline, &mut task).await {
                Ok(ended) => joined(&p.name, ended),
                Err(_) => left.push((p.name, task)),
            }
        }
        self.stop.cancel();
        for (name, task) in left {
            joined(&name, task.await);
        }
    }
}

/// A restreamer dropped without [`Restreamer::stop`] (its broadcast's task failed) stops its
/// pushers all the same; their tasks kill and reap ffmpeg without anyone waiting for them.
impl Drop for Restreamer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn joined(name: &str, ended: Result<(), tokio::task::JoinError>) {
    if let Err(e) = ended {
        tracing::error!(destination = %name, error = %e, "a restream pusher panicked");
    }
}

/// One destination's pusher, until `stop`.
async fn push(
    dest: Restream,
    guard: vidi_outbound::Guard,
    settings: Settings,
    queue: Arc<Queue>,
    watch: Arc<Watch>,
    stop: CancellationToken,
) {
    let refuse = |error: String| {
        tracing::warn!(%error, "restream: refused; not retried in this broadcast");
        *watch.refused.lock().unwrap_or_else(|p| p.into_inner()) = Some(error);
        watch.observe();
    };
    let server = match Server::parse(&dest.server_url) {
        Ok(s) => s,
        Err(e) => return refuse(e),
    };
    if let Some(ip) = server.literal().filter(|ip| !guard.allows(*ip)) {
        return refuse(format!("{ip}: {}", vidi_outbound::OutboundError::Forbidden));
    }
    let tls = match server.tls.then(|| tls_config(&settings.extra_roots)).transpose() {
        Ok(t) => t,
        Err(e) => return refuse(format!("no TLS configuration: {e}")),
    };
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", 0)).await {
        Ok(l) => l,
        Err(e) => return refuse(format!("no loopback port for the relay: {e}")),
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    let relay = Relay { listener, server: server.clone(), guard, tls, link: watch.link.clone() };
    let args = ffmpeg_args(&server, &dest.stream_key, port);
    let feed: Feed = {
        let (queue, stop) = (queue.clone(), stop.clone());
        Arc::new(move || {
            if queue.is_closed() {
                // A run started after the broadcast ended (a retry) would have no input: the
                // supervision ends instead, killing this run at once.
                stop.cancel();
            }
            let reader = queue.reader();
            futures::stream::unfold(reader, |mut r| async move { r.next().await.map(|b| (Ok(b), r)) }).boxed()
        })
    };
    let supervisor = Arc::new(Supervisor::new(&settings.ffmpeg, args, settings.restart.clone()).fed(feed));
    *watch.supervisor.lock().unwrap_or_else(|p| p.into_inner()) = Some(supervisor.clone());
    // Host and application only: a URL may carry credentials, and the key is never logged.
    tracing::info!(tls = server.tls, host = %server.host, port = server.port, app = %server.app, "restream: starting");

    // The relay and the log watcher end with the supervision, however it ends (the relay first
    // forwards what the last ffmpeg wrote before it exited, unless stopped hard).
    let done = stop.child_token();
    // The relay logs what happens to connections as it happens; this logs how ffmpeg's runs end
    // (each one, unless several end between two looks), with ffmpeg's last word.
    let watcher = async {
        let mut reported = 0;
        loop {
            watch.observe();
            let status = supervisor.status();
            let ended = if status.pid.is_some() { status.starts.saturating_sub(1) } else { status.starts };
            if ended > reported {
                reported = ended;
                let said = status.stderr_tail.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
                let exit = status.last_exit.unwrap_or_default();
                tracing::warn!(runs = ended, %exit, ffmpeg = %redact(said, &dest.stream_key), "restream: ffmpeg ended");
            }
            if done.is_cancelled() {
                return;
            }
            // One last look once the supervision is over.
            tokio::select! {
                () = tokio::time::sleep(WATCH_EVERY) => {}
                () = done.cancelled() => {}
            }
        }
    };
    let supervise = async {
        loop {
            if let Err(e) = supervisor.run(&stop).await {
                refuse(e.to_string());
                break;
            }
            // A run that ends well has read the end of its input: the broadcast's end. Anything
            // else (ffmpeg taking a dropped destination for an end) is pushed again.
            if stop.is_cancelled() || watch.ending.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            tracing::warn!("restream: ffmpeg ended before the broadcast; starting it again");
            tokio::select! {
                () = tokio::time::sleep(settings.restart.first) => {}
                () = stop.cancelled() => break,
            }
        }
        done.cancel();
    };
    tokio::join!(relay.serve(done.clone(), stop.clone()), watcher, supervise);
    watch.observe();
    if watch.refused.lock().unwrap_or_else(|p| p.into_inner()).is_none() {
        tracing::info!(starts = supervisor.status().starts, "restream: stopped");
    }
}

/// The input half of every ffmpeg fed a broadcast's FLV on its stdin (these pushers and the
/// ladder's rungs): quiet, and started as soon as the configurations and a first frame are in,
/// with no long probing.
pub(crate) const FLV_STDIN_INPUT: [&str; 14] = [
    "-hide_banner",
    "-nostdin",
    "-loglevel",
    "error",
    "-fflags",
    "+nobuffer",
    "-probesize",
    "32768",
    "-analyzeduration",
    "500000",
    "-f",
    "flv",
    "-i",
    "pipe:0",
];

/// ffmpeg copies its FLV input to the relay's loopback port, announcing the destination's own
/// application, stream key and tcUrl. The URL itself holds nothing of the user's (ffmpeg takes
/// app and key from the options, and a key in the URL would show in its messages).
fn ffmpeg_args(server: &Server, key: &str, relay_port: u16) -> Vec<String> {
    let mut args: Vec<String> = FLV_STDIN_INPUT.map(String::from).into();
    args.extend(
        [
            "-map",
            "0",
            "-c",
            "copy",
            "-rtmp_app",
            &server.app,
            "-rtmp_playpath",
            key,
            "-rtmp_tcurl",
            &server.tc_url,
            "-f",
            "flv",
            // The output is a socket: no seeking back to write the duration.
            "-flvflags",
            "no_duration_filesize",
        ]
        .map(String::from),
    );
    args.push(format!("rtmp://127.0.0.1:{relay_port}/relay"));
    args
}

/// rustls with the platform's roots (plus `extra`) and ring, like the rest of Vidi.
fn tls_config(
    extra: &[rustls::pki_types::CertificateDer<'static>],
) -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(extra.iter().cloned(), provider.clone())?;
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Arc::new(config))
}
