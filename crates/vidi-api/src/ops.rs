//! The routes an operator's tools call, not users: `/health` (the process answers), `/ready` (it
//! can serve: the database and the media store answer, within [`READY_TIMEOUT`]) and `/metrics`
//! (Prometheus). They take no credentials and are never rate limited: a load balancer or
//! Prometheus calls them every few seconds. Served beside the API, or on a listener of their own
//! (`VIDI_METRICS_ADDR`, the only place a `vidi worker` serves them); see docs/operations.md.
//!
//! A check a new subsystem needs before its node is ready (live ingest's listener) is one more
//! entry in [`ready`]'s list; a metric it records is one more name in `metrics::names`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use vidi_core::{Blobs, CoreError, Repo};

use crate::ApiError;
use crate::metrics::names;

/// How long `/ready` waits for each dependency: a load balancer's probe must get an answer well
/// within its own timeout (commonly 5 s), and an S3 client would otherwise retry for minutes.
pub const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// What the checks read.
#[derive(Clone)]
pub struct Probe {
    pub repo: Arc<dyn Repo>,
    pub blobs: Arc<dyn Blobs>,
    /// `VIDI_METRICS`: off, `/metrics` is not served.
    pub metrics: bool,
}

/// `/health`, `/ready` and `/metrics`, for any router's state.
pub fn routes<S: Clone + Send + Sync + 'static>(probe: Probe) -> Router<S> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(probe)
}

/// Alive: the process accepts and answers. Touches nothing, so a slow database never gets a
/// healthy process restarted.
async fn health() -> Response {
    plain(StatusCode::OK, "ok\n".into())
}

/// Whether the node can do its work now: 200 `ready`, or 503 with a problem body naming what does
/// not answer (a load balancer stops sending it requests; nothing restarts it).
async fn ready(State(p): State<Probe>) -> Response {
    let db = async { p.repo.count_api_keys().await.map(|_| ()) };
    // Any answer about an object that does not exist proves the store answers.
    let storage = async {
        match p.blobs.size(".ready").await {
            Ok(_) | Err(CoreError::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    };
    let (db, storage) = tokio::join!(within(db), within(storage));
    let failing: Vec<String> = [("database", db), ("storage", storage)]
        .into_iter()
        .filter_map(|(n, r)| r.err().map(|e| format!("{n}: {e}")))
        .collect();
    if failing.is_empty() {
        return plain(StatusCode::OK, "ready\n".into());
    }
    tracing::warn!(failing = %failing.join("; "), "not ready");
    let mut r = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not-ready", "The service is not ready.", "")
        .detail(failing.join("; "))
        .into_response();
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn within(check: impl Future<Output = Result<(), CoreError>>) -> Result<(), String> {
    match tokio::time::timeout(READY_TIMEOUT, check).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} s", READY_TIMEOUT.as_secs())),
    }
}

/// The Prometheus text format. The job gauges are read from the database here, once per scrape
/// (they describe the shared queue, whichever node answers); a database that does not answer
/// leaves them out rather than failing the scrape, whose other figures matter most then.
async fn metrics(State(p): State<Probe>) -> Response {
    if !p.metrics {
        return ApiError::new(StatusCode::NOT_FOUND, "unrecognized-request-url", "Unrecognized request URL.", "")
            .detail("Metrics are off on this node (VIDI_METRICS=off).")
            .into_response();
    }
    let Some(handle) = crate::metrics::handle() else {
        return plain(StatusCode::NOT_IMPLEMENTED, "another metrics recorder is installed\n".into());
    };
    let mut body = handle.render();
    crate::metrics::render_http(&mut body);
    if let Ok(Ok(counts)) = tokio::time::timeout(READY_TIMEOUT, p.repo.job_counts()).await {
        use std::fmt::Write;
        let name = names::JOBS;
        let _ = writeln!(body, "# HELP {name} Jobs queued and running, by lane and status (all nodes).");
        let _ = writeln!(body, "# TYPE {name} gauge");
        for c in counts {
            let _ = writeln!(body, "{name}{{lane=\"{}\",status=\"{}\"}} {}", c.lane, c.status, c.jobs);
        }
    }
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn plain(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
