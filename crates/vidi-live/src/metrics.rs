//! What the live path records for `/metrics` (the names and what each means:
//! `vidi_core::metric_names`, docs/operations.md). Gauges are held by guards, so that a count
//! goes back down however its broadcast, connection or pusher ends (an error, a cancelled task,
//! a panic).

use std::sync::Mutex;

use metrics::Gauge;
use vidi_core::metric_names as names;

use crate::ingest::Refusal;

/// One unit of a gauge, while it lives.
pub(crate) struct Up(Gauge);

impl Up {
    fn new(gauge: Gauge) -> Up {
        gauge.increment(1.0);
        Up(gauge)
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// An open RTMP or RTMPS connection.
pub(crate) fn connection(scheme: &'static str) -> Up {
    Up::new(metrics::gauge!(names::RTMP_CONNECTIONS, "scheme" => scheme))
}

/// How a connection ended.
pub(crate) fn closed(scheme: &'static str, outcome: &'static str) {
    metrics::counter!(names::RTMP_CLOSED, "scheme" => scheme, "outcome" => outcome).increment(1);
}

/// A connection closed unread at the connection cap.
pub(crate) fn over_capacity() {
    metrics::counter!(names::RTMP_REFUSED, "reason" => "capacity").increment(1);
}

/// A publisher refused at `publish`.
pub(crate) fn publish_refused(r: &Refusal) {
    let reason = match r {
        Refusal::UnknownKey => "unknown_key",
        Refusal::Busy => "busy",
        Refusal::ShuttingDown => "stopping",
        Refusal::Other(_) => "other",
    };
    metrics::counter!(names::RTMP_REFUSED, "reason" => reason).increment(1);
}

/// A broadcast's share of `vidi_live_broadcasting`: one while it is on air.
#[derive(Default)]
pub(crate) struct OnAir(Option<Up>);

impl OnAir {
    pub(crate) fn set(&mut self, on: bool) {
        if on != self.0.is_some() {
            self.0 = on.then(|| Up::new(metrics::gauge!(names::LIVE_BROADCASTING)));
        }
    }
}

/// A restream pusher's share of `vidi_restream_pushers`: one in the series of its state
/// (none once stopped).
#[derive(Default)]
pub(crate) struct PusherState(Mutex<Option<(&'static str, Up)>>);

impl PusherState {
    pub(crate) fn set(&self, state: Option<&'static str>) {
        let mut now = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if now.as_ref().map(|(s, _)| *s) != state {
            // The old unit is dropped (its gauge decremented) as the new one is set.
            *now = state.map(|s| (s, Up::new(metrics::gauge!(names::RESTREAM_PUSHERS, "state" => s))));
        }
    }
}

/// Low-latency parts packaged.
pub(crate) fn parts(n: u64) {
    if n > 0 {
        metrics::counter!(names::LIVE_PARTS).increment(n);
    }
}

/// A segment written to the media store (`stored`), or given up on (`lost`).
pub(crate) fn segment(stored: bool) {
    metrics::counter!(names::LIVE_SEGMENTS, "outcome" => if stored { "stored" } else { "lost" }).increment(1);
}

/// A request that had to wait for the playlist or a part (blocking reload, preload hint).
pub(crate) fn waited(answered: bool) {
    metrics::counter!(names::LIVE_BLOCKING_WAITS, "outcome" => if answered { "woken" } else { "timed_out" })
        .increment(1);
}
