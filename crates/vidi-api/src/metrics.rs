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

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub use vidi_core::metric_names as names;

/// Bucket bounds of each histogram.
const BUCKETS: &[(&str, &[f64])] = &[
    (names::HTTP_DURATION, &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
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

/// The route label of a request: its matched template (`/videos/{videoId}`), so the label's values
/// are the router's routes, however many ids and paths clients send; `unmatched` otherwise.
pub(crate) fn route_of(req: &Request) -> String {
    req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string())
}

/// The middleware that counts and times every request by route.
pub(crate) async fn observe(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = route_of(&req);
    let method = req.method().as_str().to_string();
    let r = next.run(req).await;
    let status = r.status().as_u16().to_string();
    metrics::histogram!(names::HTTP_DURATION, "route" => route.clone(), "method" => method.clone())
        .record(start.elapsed().as_secs_f64());
    metrics::counter!(names::HTTP_REQUESTS, "route" => route, "method" => method, "status" => status).increment(1);
    r
}

/// Counts an upload request whose bytes were stored.
pub fn upload(kind: &'static str, bytes: u64) {
    metrics::counter!(names::UPLOADS, "kind" => kind).increment(1);
    metrics::counter!(names::UPLOAD_BYTES, "kind" => kind).increment(bytes);
}
