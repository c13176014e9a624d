//! Metrics in Prometheus' text format (`GET /metrics`, docs/operations.md lists what each means).
//!
//! Every crate records through the `metrics` facade (`metrics::counter!` and friends, names from
//! [`names`]); this module installs the one process-wide recorder the first time anything asks for
//! it, keeps its handle, and renders it on the route. Recording costs a hash lookup and an atomic
//! add; nothing is formatted until a scrape. The two metrics every request records (its count and
//! duration by route) are the exception: they are Vidi's own per-thread series ([`http`]), appended
//! to the exporter's text at a scrape.
//!
//! Adding a metric (live streams, the analytics collector): a name in [`names`] (`vidi_core::metric_names`, which every crate can reach), a line in
//! docs/operations.md's table, and the `metrics::counter!`/`gauge!`/`histogram!` call where the
//! thing happens. A histogram also gets its buckets in [`BUCKETS`] (else it would be a summary,
//! which cannot be added up across nodes). Labels must have a bounded set of values: a route
//! template, a lane, an outcome; never an id.

mod http;

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use metrics::{Counter, Histogram};

pub use http::render as render_http;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::AppState;

pub use vidi_core::metric_names as names;

/// Bucket bounds of each histogram the exporter keeps (the HTTP duration's are in [`http`]).
const BUCKETS: &[(&str, &[f64])] = &[
    (names::QUEUE_LATENCY, &[0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0]),
    (names::ENCODE_SPEED, &[0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0]),
];

/// The process's recorder, installed on first use. `None` when another recorder was installed
/// first (an embedding program's): recording then goes there and `/metrics` says so.
pub fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let mut b = PrometheusBuilder::new();
            for (name, buckets) in BUCKETS {
                b = b.set_buckets_for_metric(Matcher::Full((*name).to_string()), buckets).ok()?;
            }
            let handle = b.install_recorder().map_err(|e| tracing::warn!(error = %e, "no metrics recorder")).ok()?;
            // Histograms keep their samples until upkeep folds them into buckets; without the
            // exporter's own listener nobody else runs it. A thread, not a task: the recorder
            // outlives any one runtime (tests start many).
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_secs(5));
                    upkeep.run_upkeep();
                }
            });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "no metrics upkeep thread");
            }
            Some(handle)
        })
        .as_ref()
}

/// The middleware around every route: rate limits (see [`crate::ratelimit`]) and, when metrics
/// are on, the count and time of each request by route. One middleware rather than two: each
/// `from_fn` layer costs a boxed service and a boxed future per request, which was a measurable
/// share of the hot path's cost (issue 24; `bench/ops.sh`).
pub(crate) async fn around(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if !state.cfg.metrics {
        return crate::ratelimit::limit(&state, req, next).await;
    }
    let start = Instant::now();
    // A clone of the router's `Arc<str>`: the label is borrowed from it, never copied.
    let route = req.extensions().get::<MatchedPath>().cloned();
    let method = method_label(req.method());
    let r = crate::ratelimit::limit(&state, req, next).await;
    record(route.as_ref().map_or("unmatched", MatchedPath::as_str), method, r.status().as_u16(), start.elapsed());
    r
}

/// The method label: the standard methods by name, anything else (a client may send any token as
/// a method) as `other`, so the label's values stay few.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// One route, method and status's series of this thread: Vidi's own ([`http`]), or, when an
/// embedding program installed its own recorder, that recorder's handles.
struct Handles {
    method: &'static str,
    status: u16,
    sink: Sink,
}

enum Sink {
    Ours(Arc<http::Series>),
    Theirs(Histogram, Counter),
}

/// A hasher for the route templates this thread has answered: FxHash's word-at-a-time multiply
/// instead of SipHash, a quarter of the instructions on a 20-byte template. The keys are Vidi's
/// own templates (or `unmatched`), never a client's choice, so they need no resistance to chosen
/// collisions.
#[derive(Default)]
struct RouteHasher(u64);

impl RouteHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for RouteHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            self.add(u64::from_le_bytes(w.try_into().expect("8 bytes")));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }

    fn write_u8(&mut self, b: u8) {
        self.add(u64::from(b));
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

thread_local! {
    /// This thread's series of each route it has answered, by route template: a request costs
    /// one lookup in a map only this thread touches, and writes counters only this thread writes.
    /// Bounded: routes × methods × statuses, per runtime thread.
    static HTTP: RefCell<HashMap<Box<str>, Vec<Handles>, BuildHasherDefault<RouteHasher>>> = RefCell::default();
}

/// Counts and times one answered request.
fn record(route: &str, method: &'static str, status: u16, took: Duration) {
    HTTP.with_borrow_mut(|routes| {
        if let Some(by_route) = routes.get_mut(route) {
            return record_in(by_route, route, method, status, took);
        }
        record_in(routes.entry(route.into()).or_default(), route, method, status, took);
    });
}

/// [`record`] with the route's handles found.
fn record_in(by_route: &mut Vec<Handles>, route: &str, method: &'static str, status: u16, took: Duration) {
    let i = match by_route.iter().position(|h| h.status == status && h.method == method) {
        Some(i) => i,
        None => {
            let sink = match handle() {
                Some(_) => Sink::Ours(http::series(route, method, status)),
                None => {
                    let (r, s) = (route.to_string(), status.to_string());
                    Sink::Theirs(
                        metrics::histogram!(names::HTTP_DURATION, "route" => r.clone(), "method" => method),
                        metrics::counter!(names::HTTP_REQUESTS, "route" => r, "method" => method, "status" => s),
                    )
                }
            };
            by_route.push(Handles { method, status, sink });
            by_route.len() - 1
        }
    };
    match &by_route[i].sink {
        Sink::Ours(s) => s.record(took),
        Sink::Theirs(duration, requests) => {
            duration.record(took.as_secs_f64());
            requests.increment(1);
        }
    }
}

/// Counts an upload request whose bytes were stored.
pub fn upload(kind: &'static str, bytes: u64) {
    metrics::counter!(names::UPLOADS, "kind" => kind).increment(1);
    metrics::counter!(names::UPLOAD_BYTES, "kind" => kind).increment(bytes);
}
