//! Vidi's HTTP surface: api.video v1 (2023) wire-compatible routes. One file per API resource
//! under `resources/`, each holding its wire types, handlers and routes; the pieces every resource
//! shares (auth, errors, JSON bodies, query strings, pagination) sit beside them.

pub mod auth;
pub mod cache;
pub mod collect;
pub mod delivery;
pub mod error;
pub mod extract;
pub mod ingest;
pub mod metrics;
pub mod openapi;
pub mod ops;
pub mod page;
pub mod ratelimit;
pub mod request_id;
pub mod resources;
pub mod sendfile;
pub mod visibility;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use tower_http::cors::CorsLayer;
use vidi_core::{Blobs, Repo};
use vidi_media::Media;

pub use error::{ApiError, ApiResult};

/// Settings of the HTTP layer.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// The base of every asset URL (no trailing slash).
    pub public_url: String,
    /// The largest upload request (whole file or chunk), in bytes. api.video: 200 MiB.
    pub max_request_bytes: u64,
    /// The largest JSON body, in bytes.
    pub max_json_bytes: usize,
    /// Access tokens live this long (api.video: 3600 s).
    pub access_ttl_s: i64,
    /// Refresh tokens live this long.
    pub refresh_ttl_s: i64,
    /// The storage quota reported by `/account`, in bytes.
    pub quota_bytes: u64,
    /// A chunk claimed by another instance whose heartbeat is older than this is abandoned.
    pub claim_stale_after: Duration,
    /// Memory for hot HLS segments, in bytes (0: none).
    pub segment_cache_bytes: u64,
    /// Scratch space of API-side media work (probing, thumbnails).
    pub work_dir: std::path::PathBuf,
    /// The largest source a chunked upload may announce (`Content-Range` total), in bytes; at
    /// most the contract's 50 GB.
    pub max_source_bytes: u64,
    /// `VIDI_OUTBOUND_ALLOW_PRIVATE`: let user-given URLs reach private and loopback addresses.
    pub outbound_allow_private: bool,
    /// How long a node acts on what it read about an API key (found, revoked) before asking the
    /// database again; a revocation reaches every node within it. Capped at
    /// [`auth::MAX_KEY_CACHE_TTL`] (30 s); zero asks on every request.
    pub key_cache_ttl: Duration,
    /// How long a node serves a video's segments on what it read about the video's visibility
    /// (`visibility`); a video made private or deleted through another node stops being served
    /// here within it. Capped at [`visibility::MAX_VISIBILITY_TTL`] (1 s); zero asks the database
    /// on every request.
    pub visibility_ttl: Duration,
    /// `VIDI_WEBHOOK_LIMIT`: webhooks one workspace may hold (contract §9: a limit exists,
    /// its number is not stated).
    pub webhook_limit: u32,
    /// How long the answer to an upload's last part waits for its assembly job, so that it (and
    /// the status read right after it) reports the upload complete, as api.video does; past it,
    /// the answer says `uploading` and the job carries on.
    pub assembly_wait: Duration,
    /// `VIDI_COLLECT_RATE`: requests a second each client address may send the analytics
    /// collector (bursts of five seconds' worth); 0: no limit.
    pub collect_rate: u32,
    /// `VIDI_TRUSTED_PROXY`: every peer is a reverse proxy of ours, so the client address is the
    /// last entry of `X-Forwarded-For` (used by the collector's limit and location).
    pub trusted_proxy: bool,
    /// `VIDI_GEOIP_DB`: a MaxMind-format database locating viewers (none: `unknown`).
    pub geoip_db: Option<std::path::PathBuf>,
    /// `VIDI_ANALYTICS_RETENTION_DAYS`: raw viewing sessions and their events are deleted this
    /// long after they were loaded (`None`: kept).
    pub analytics_retention: Option<Duration>,
    /// API requests per minute per key and class (`ratelimit`); `None`: no limits.
    pub rate_limits: Option<ratelimit::Limits>,
    /// Serve `/metrics`, `/health` and `/ready` beside the API (else a listener of their own does).
    pub ops_routes: bool,
    /// Record metrics (and serve them): off, requests are neither counted nor timed.
    pub metrics: bool,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            public_url: "http://127.0.0.1:8080".into(),
            max_request_bytes: 200 * 1024 * 1024,
            max_json_bytes: 1024 * 1024,
            access_ttl_s: 3600,
            refresh_ttl_s: 30 * 24 * 3600,
            quota_bytes: 1 << 40,
            claim_stale_after: Duration::from_secs(15),
            segment_cache_bytes: 128 << 20,
            work_dir: std::path::PathBuf::from("./vidi-data/.scratch"),
            max_source_bytes: vidi_core::upload::MAX_TOTAL_BYTES,
            outbound_allow_private: false,
            key_cache_ttl: auth::MAX_KEY_CACHE_TTL,
            visibility_ttl: visibility::MAX_VISIBILITY_TTL,
            assembly_wait: Duration::from_secs(30),
            webhook_limit: 20,
            collect_rate: 10,
            trusted_proxy: false,
            geoip_db: None,
            analytics_retention: None,
            rate_limits: Some(ratelimit::Limits::default()),
            ops_routes: true,
            metrics: true,
        }
    }
}

/// Everything a handler can reach. Cloned per request (all fields are shared handles).
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub repo: Arc<dyn Repo>,
    pub blobs: Arc<dyn Blobs>,
    pub media: Media,
    pub cfg: ApiConfig,
    pub auth: auth::Authenticator,
    /// This process's id in the `instances` table.
    pub instance: String,
    /// Every request made on a user's behalf (URL imports) goes through this guard.
    pub outbound: vidi_outbound::Guard,
    pub segments: cache::SegmentCache,
    /// Who owns each recently served video and whether it is public (the segment route's check).
    pub visibility: visibility::VisibilityCache,
    /// Wakes this process's workers when a request queues a job.
    pub waker: vidi_core::jobs::Waker,
    /// Work a request starts and does not wait for.
    pub tasks: RequestTasks,
    /// Playlists this process's producers (live packagers) answer from memory, before storage.
    pub playlists: Arc<vidi_core::board::PlaylistBoard>,
    /// The broadcasts this process holds (its RTMP ingest), for live delivery.
    pub live: Arc<dyn vidi_core::live::LiveOutput>,
    /// The analytics collector's limits, counts and GeoIP database.
    pub collector: collect::Collector,
    /// The API's rate limits (`None`: off).
    pub limiter: Option<ratelimit::RateLimits>,
}

/// Work a request starts and does not wait for (the probe of an upload still arriving, for its
/// early encode): tracked, so that the API's service ends only once it has, and cancelled when
/// the API stops. Nothing a request starts outlives the process's shutdown.
#[derive(Default)]
pub struct RequestTasks {
    tracker: tokio_util::task::TaskTracker,
    stop: tokio_util::sync::CancellationToken,
}

impl RequestTasks {
    /// Runs `work` beside the request, until it ends or the API stops.
    pub fn spawn(&self, work: impl std::future::Future<Output = ()> + Send + 'static) {
        let stop = self.stop.clone();
        self.tracker.spawn(async move {
            tokio::select! {
                () = work => {}
                () = stop.cancelled() => {}
            }
        });
    }

    /// Cancels what is still running and waits for it to have ended.
    pub async fn stop(&self) {
        self.stop.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Builds the state; reads (or creates) the shared token-signing secret from the database.
    /// `waker` is the one this process's workers wait on.
    pub async fn new(
        repo: Arc<dyn Repo>,
        blobs: Arc<dyn Blobs>,
        media: Media,
        cfg: ApiConfig,
        waker: vidi_core::jobs::Waker,
        live: Arc<dyn vidi_core::live::LiveOutput>,
    ) -> anyhow::Result<Self> {
        let auth = auth::Authenticator::load(repo.as_ref(), &cfg).await?;
        let outbound = vidi_outbound::Guard::new(cfg.outbound_allow_private, Duration::from_secs(10))?;
        let instance = format!("in{}", vidi_core::id::random_body());
        let segments = cache::SegmentCache::new(cfg.segment_cache_bytes);
        let visibility = visibility::VisibilityCache::new(cfg.visibility_ttl);
        let (tasks, playlists) = (RequestTasks::default(), Arc::default());
        let collector = collect::Collector::new(cfg.collect_rate, cfg.trusted_proxy, cfg.geoip_db.as_deref())?;
        let limiter = cfg.rate_limits.map(ratelimit::RateLimits::new);
        // Installed before the first request so that every count is kept.
        if cfg.metrics {
            metrics::handle();
        }
        let inner = Inner {
            repo,
            blobs,
            media,
            cfg,
            auth,
            instance,
            outbound,
            segments,
            visibility,
            waker,
            tasks,
            playlists,
            live,
            collector,
            limiter,
        };
        Ok(AppState(Arc::new(inner)))
    }
}

/// The whole API: the resources, delivery, and (unless they have a listener of their own)
/// `/health`, `/ready` and `/metrics`. Around every route, innermost first: the rate limit and
/// the metrics (one middleware), CORS, the log span, the request id. All run after routing, so each knows the matched
/// route.
pub fn router(state: AppState) -> Router {
    let mut app = Router::new()
        .merge(resources::auth::routes())
        .merge(resources::account::routes())
        .merge(resources::videos::routes())
        .merge(resources::source::routes())
        .merge(resources::thumbnail::routes())
        .merge(resources::tracks::routes())
        .merge(resources::players::routes())
        .merge(resources::live_streams::routes())
        .merge(resources::upload::routes())
        .merge(resources::upload_tokens::routes())
        .merge(resources::webhooks::routes())
        .merge(resources::analytics::routes())
        .merge(collect::routes())
        .merge(openapi::routes())
        .merge(delivery::routes());
    if state.cfg.ops_routes {
        let probe = ops::Probe { repo: state.repo.clone(), blobs: state.blobs.clone(), metrics: state.cfg.metrics };
        app = app.merge(ops::routes(probe));
    }
    app = app
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "unrecognized-request-url", "Unrecognized request URL.", "")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method is not allowed for this route.",
                "",
            )
        })
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::around));
    app.layer(cors())
        .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(span))
        .layer(axum::middleware::from_fn(request_id::assign))
        .with_state(state)
}

/// The log span of a request: its method, route template (never the path, which may hold a
/// private token) and request id.
fn span(req: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let route = req.extensions().get::<axum::extract::MatchedPath>().map_or("unmatched", |p| p.as_str());
    let id = req.headers().get(request_id::REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
    tracing::info_span!("request", method = %req.method(), route, request_id = id)
}

/// Cross-origin access for browsers: any origin may call the API and read the media, but never
/// with credentials. API calls authenticate with the `Authorization` header, which a page sets
/// itself, so nothing needs the browser to attach cookies or cached HTTP credentials; reflecting
/// the origin together with `Allow-Credentials: true` (what `very_permissive` did) let any site
/// make a visitor's browser call Vidi with whatever credentials it held and read the answers.
/// With `*` the browser refuses to send credentials cross-origin at all. Delivery gets the same
/// policy: see `delivery::SESSION_COOKIE` for why cross-origin players need no cookie.
fn cors() -> CorsLayer {
    use axum::http::{HeaderName, Method, header};
    // `*` lets modern browsers send any header (uploaders add their own, like AV-Origin-*), but
    // by the Fetch standard it never covers `Authorization`, which must be named; the names
    // listed beside it are for browsers that predate the wildcard.
    let allow_headers = [
        HeaderName::from_static("*"),
        header::AUTHORIZATION,
        header::CONTENT_TYPE,
        header::CONTENT_RANGE,
        header::RANGE,
        HeaderName::from_static("av-origin-client"),
        HeaderName::from_static("av-origin-app"),
        HeaderName::from_static("x-requested-with"),
    ];
    CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        // Every method a route answers, named rather than `*` for browsers that predate it.
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PATCH,
            Method::PUT,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers(allow_headers)
        // What a cross-origin page may read: where a created resource is, the byte ranges of
        // media (players reading the MP4 by ranges need all three), the rate limit's budget and
        // the request id to quote.
        .expose_headers([
            header::LOCATION,
            header::CONTENT_RANGE,
            header::ACCEPT_RANGES,
            header::CONTENT_LENGTH,
            ratelimit::LIMIT,
            ratelimit::REMAINING,
            ratelimit::RETRY_AFTER,
            request_id::REQUEST_ID,
        ])
        // Chromium caps this at 2 h; an hour spares uploaders a preflight per chunk.
        .max_age(Duration::from_secs(3600))
}

/// The services of an API node beside HTTP itself: its heartbeat, so its upload claims count as
/// live, and, once at start, resuming ingest work a previous process left unfinished.
pub fn services(state: &AppState) -> Vec<vidi_core::service::Service> {
    use vidi_core::service::Service;
    let s = state.clone();
    // Three beats per staleness window: a live node is never mistaken for a dead one.
    let beat = (state.cfg.claim_stale_after / 3).max(Duration::from_millis(200));
    let heartbeat = Service::new("instance-heartbeat", move |shutdown| async move {
        while !shutdown.is_cancelled() {
            if let Err(e) = s.repo.heartbeat(&s.instance, vidi_core::time::now_ms()).await {
                tracing::warn!(error = %e, "heartbeat failed");
            }
            tokio::select! {
                () = tokio::time::sleep(beat) => {}
                () = shutdown.cancelled() => {}
            }
        }
        Ok(())
    });
    let s = state.clone();
    let recovery = Service::new("ingest-recovery", move |shutdown| async move {
        tokio::select! {
            () = ingest::recover(s) => {}
            () = shutdown.cancelled() => {}
        }
        Ok(())
    });
    let mut services = vec![heartbeat, recovery];
    if let Some(keep) = state.cfg.analytics_retention {
        services.push(collect::retention(state.clone(), keep));
    }
    services
}
