//! Metrics in Prometheus' text format (`GET /metrics`, docs/operations.md lists what each means).
//!
//! Every crate records through the `metrics` facade (`metrics::counter!` and friends, names from
//! [`names`]); this module installs the one process-wide recorder the first time anything asks for
//! it, keeps its handle, and renders it on the route. Recording costs a hash lookup and an atomic
//! add; nothing is formatted until a scrape.
//!
//! Adding a metric (live streams, the analytics collector): a name in [`names`] (`vidi_core::metric_names`, which every crate can reach), a line in
//! docs/operations.md's table, and the `metrics::counter!`/`gauge!`/`histogram!` call where the
//! thing happens. A histogram also gets its buckets in [`BUCKETS`] (else it would be a summary,
//! which cannot be added up across nodes). Labels must have a bounded set of values: a route
//! template, a lane, an outcome; never an id.

mod durations;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use metrics::{Counter, Histogram};

pub use durations::render as render_http_durations;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::AppState;

pub use vidi_core::metric_names as names;

/// Bucket bounds of each histogram the exporter keeps (the HTTP duration's are in [`durations`]).
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

/// One request's handles: its route and method's duration histogram, and its route, method and
/// status's counter.
struct Handles {
    method: &'static str,
    status: u16,
    duration: Durations,
    requests: Counter,
}

/// Where a duration goes: Vidi's own histogram, rendered on `/metrics` ([`durations`]), or, when
/// an embedding program installed its own recorder, that recorder's.
enum Durations {
    Ours(Arc<durations::Durations>),
    Theirs(Histogram),
}

thread_local! {
    /// The handles of each route this thread has answered, by route template. Asking the facade
    /// for a handle builds a key from owned label strings, clones it, hashes it and takes a shared
    /// lock of the registry; kept here, a request costs one lookup in a map only this thread
    /// touches. Bounded: routes × methods × statuses, per runtime thread.
    static HTTP: RefCell<HashMap<Box<str>, Vec<Handles>>> = RefCell::new(HashMap::new());
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
            let (r, s) = (route.to_string(), status.to_string());
            let duration = match handle() {
                Some(_) => Durations::Ours(durations::durations(route, method)),
                None => Durations::Theirs(
                    metrics::histogram!(names::HTTP_DURATION, "route" => r.clone(), "method" => method),
                ),
            };
            by_route.push(Handles {
                method,
                status,
                duration,
                requests: metrics::counter!(names::HTTP_REQUESTS, "route" => r, "method" => method, "status" => s),
            });
            by_route.len() - 1
        }
    };
    let h = &by_route[i];
    match &h.duration {
        Durations::Ours(d) => d.record(took),
        Durations::Theirs(d) => d.record(took.as_secs_f64()),
    }
    h.requests.increment(1);
}

/// Counts an upload request whose bytes were stored.
pub fn upload(kind: &'static str, bytes: u64) {
    metrics::counter!(names::UPLOADS, "kind" => kind).increment(1);
    metrics::counter!(names::UPLOAD_BYTES, "kind" => kind).increment(bytes);
}
