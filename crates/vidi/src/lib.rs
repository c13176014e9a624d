//! The `vidi` binary's library half: configuration and start-up, shared by `main` and by the
//! integration tests (which boot the real server on 127.0.0.1:0).

pub mod config;
pub mod doctor;
pub mod http;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use vidi_api::AppState;
use vidi_core::id::{ApiKeyId, WorkspaceId};
use vidi_core::jobs::{Lane, Registry, Waker};
use vidi_core::model::ApiKeyInfo;
use vidi_core::service::{self, Service};
use vidi_core::{Blobs, Repo};
use vidi_db::Db;
use vidi_media::Media;

pub use config::Config;

/// TLS for outgoing calls (S3, source downloads) uses ring; it must be chosen once per process.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Opens the metadata store and brings its schema up to date. Returned as the sum of its
/// capabilities, so callers need no import per capability trait.
pub async fn open_repo(cfg: &Config) -> anyhow::Result<Arc<dyn Repo>> {
    Ok(open_db(cfg).await?)
}

/// [`open_repo`] as the concrete store: the processes that run workers also listen on it for
/// jobs queued elsewhere (`Db::spawn_job_listener`).
async fn open_db(cfg: &Config) -> anyhow::Result<Arc<Db>> {
    let db = Db::open(cfg.database.url.as_deref(), &cfg.storage.data_dir, cfg.database.schema.as_deref()).await?;
    db.migrate().await?;
    Ok(Arc::new(db))
}

/// Creates an API key in workspace `ws`, or in the default (oldest) workspace, which an empty
/// database gets first. An unknown `ws` is checked for first, so the operator reads which
/// workspace is missing rather than the database's foreign-key error.
pub async fn create_key(repo: &dyn Repo, name: &str, ws: Option<&str>) -> anyhow::Result<String> {
    let ws = match ws {
        Some(s) => match WorkspaceId::parse(s) {
            Some(id) if repo.workspace_exists(&id).await? => id,
            _ => anyhow::bail!("no workspace {s:?} (see `vidi workspace create`)"),
        },
        None => match repo.default_workspace().await? {
            Some(ws) => ws,
            None => repo.create_workspace("default").await?,
        },
    };
    Ok(vidi_api::auth::create_api_key(repo, &ws, name).await?)
}

/// Revokes a key given by its id (`ak…`) or by the secret itself; returns its id. Its Basic auth,
/// access tokens and refresh tokens stop working on every node within the key cache's lifetime.
pub async fn revoke_key(repo: &dyn Repo, key_or_id: &str) -> anyhow::Result<ApiKeyId> {
    let key_or_id = key_or_id.trim();
    // Secrets are hex, so they never parse as an id. A secret is only ever looked up by its hash,
    // and never echoed back in the error.
    let (id_or_hash, shown) = match ApiKeyId::parse(key_or_id) {
        Some(_) => (key_or_id.to_string(), key_or_id),
        None => (vidi_api::auth::sha256_hex(key_or_id), "the key given"),
    };
    match repo.revoke_api_key(&id_or_hash, vidi_core::time::now_ms()).await? {
        Some(id) => Ok(id),
        None => anyhow::bail!("no API key matches {shown}"),
    }
}

/// `vidi api-key list`: one line per key, tab-separated: id, workspace, name, created, and
/// `active` or `revoked <time>`. The secret is never stored, so it cannot be listed.
pub fn key_lines(keys: &[ApiKeyInfo]) -> Vec<String> {
    use vidi_core::time::to_rfc3339;
    keys.iter()
        .map(|k| {
            // Names come from the operator; control characters would break "one line per key".
            let name: String = k.name.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
            let state = match k.revoked_at {
                Some(at) => format!("revoked {}", to_rfc3339(at)),
                None => "active".to_string(),
            };
            format!("{}\t{}\t{}\t{}\t{}", k.id, k.workspace_id, name, to_rfc3339(k.created_at), state)
        })
        .collect()
}

/// `vidi analytics report`: a subject's quality of experience over a period, one measure a line
/// (the figures of `GET /analytics/{videos|live-streams}/{id}/qoe`).
pub fn qoe_table(media: &vidi_core::id::MediaId, period: &str, q: &vidi_core::analytics::QoeSummary) -> String {
    let ms = |v: Option<i64>| v.map_or_else(|| "-".to_string(), |v| format!("{v} ms"));
    let error_rate = if q.views == 0 { 0.0 } else { 100.0 * q.errored as f64 / q.views as f64 };
    let per_view = if q.views == 0 { 0.0 } else { q.rendition_switches as f64 / q.views as f64 };
    let watch = q.watch_ms / 1000;
    let bitrate = q.bitrate_avg.map_or_else(|| "-".to_string(), |b| format!("{} kb/s", (b + 500) / 1000));
    let rows = [
        ("subject", media.to_string()),
        ("period", period.to_string()),
        ("sessions", q.sessions.to_string()),
        ("views", q.views.to_string()),
        ("unique viewers", q.unique_viewers.to_string()),
        ("watch time", format!("{}:{:02}:{:02} ({} ms)", watch / 3600, watch / 60 % 60, watch % 60, q.watch_ms)),
        ("time to first frame, median", ms(q.ttff_median)),
        ("time to first frame, p95", ms(q.ttff_p95)),
        ("time to first frame, measures", q.ttff_count.to_string()),
        ("rebuffering, stalls", q.rebuffers.to_string()),
        ("rebuffering, total", format!("{} ms", q.rebuffer_ms)),
        ("rendition switches", q.rendition_switches.to_string()),
        ("rendition switches per view", format!("{per_view:.2}")),
        ("bitrate, time-weighted", bitrate),
        ("error rate", format!("{error_rate:.1} %")),
    ];
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    rows.iter().map(|(k, v)| format!("{k:<width$}  {v}\n")).collect()
}

/// The header of `vidi analytics export --format csv`.
pub const EXPORT_CSV_HEADER: &str =
    "emittedAt,workspaceId,subjectId,sessionId,seq,type,at,from,to,value,height,bitrate";

/// One raw event as a line of `vidi analytics export`: CSV (every field is an id, a number or
/// an event type, none of which holds a comma, a quote or a line break, so nothing needs
/// quoting) or NDJSON.
pub fn export_line(row: &vidi_core::analytics::ExportRow, csv: bool) -> String {
    let e = &row.event;
    let emitted = vidi_core::time::to_rfc3339_millis(e.emitted_at);
    if csv {
        let n = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
        format!(
            "{emitted},{},{},{},{},{},{},{},{},{},{},{}",
            row.workspace_id,
            row.media,
            e.session_id,
            e.seq,
            e.kind.as_str(),
            n(e.at),
            n(e.from),
            n(e.to),
            n(e.value),
            n(e.height),
            n(e.bitrate)
        )
    } else {
        serde_json::json!({
            "emittedAt": emitted,
            "workspaceId": row.workspace_id.as_str(),
            "subjectId": row.media.as_str(),
            "sessionId": e.session_id.as_str(),
            "seq": e.seq,
            "type": e.kind.as_str(),
            "at": e.at,
            "from": e.from,
            "to": e.to,
            "value": e.value,
            "height": e.height,
            "bitrate": e.bitrate,
        })
        .to_string()
    }
}

/// The media store `cfg` names (a local folder or an S3 bucket and prefix).
pub async fn open_blobs(cfg: &Config) -> anyhow::Result<Arc<dyn Blobs>> {
    Ok(vidi_storage::open(cfg.storage.url.as_deref(), &cfg.storage.data_dir, &cfg.s3()).await?)
}

fn worker_ctx(
    cfg: &Config,
    stores: (Arc<Db>, Arc<dyn Blobs>),
    media: Media,
    waker: Waker,
) -> anyhow::Result<vidi_worker::Ctx> {
    let (repo, blobs) = stores;
    let wc = cfg.worker();
    // Imports run in the workers now: the same guard settings as the API's checks of the URL.
    let outbound = vidi_outbound::Guard::new(cfg.outbound.allow_private, Duration::from_secs(10))?;
    // Each lane service gives its workers a set of their own (`vidi_worker::lane_service`).
    let held = vidi_worker::HeldJobs::default();
    let sources = wc.source_copies();
    Ok(vidi_worker::Ctx { repo, blobs, media, cfg: wc, waker, held, outbound, sources })
}

/// The lanes this node runs and each one's workers, from configuration (empty: no workers).
pub fn lanes(cfg: &Config, role: Role) -> Vec<(Lane, usize)> {
    let jobs = &cfg.jobs;
    // At least one head worker (checked at load): without one, no video would become playable.
    match role {
        // `VIDI_WORKERS=0`: an API-only node, which runs no lane (its jobs go to worker nodes).
        Role::Serve if jobs.workers == 0 => vec![],
        Role::Serve => {
            vec![(Lane::ENCODE, jobs.workers), (Lane::HEAD, jobs.head_workers), (Lane::SHORT, jobs.short_workers)]
        }
        // A worker node always runs the encode lane: `VIDI_WORKERS=0` (API only) is `serve`'s.
        Role::Worker => {
            vec![
                (Lane::ENCODE, jobs.workers.max(1)),
                (Lane::HEAD, jobs.head_workers),
                (Lane::SHORT, jobs.short_workers),
            ]
        }
    }
}

/// What the process was started as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `vidi serve`: the API, and the workers unless `VIDI_WORKERS=0`.
    Serve,
    /// `vidi worker`: workers only.
    Worker,
}

/// The services of the workers of this process: one per lane, the scratch sweep, webhook
/// delivery (which runs where workers run: an API-only node queues, it does not send), and on
/// PostgreSQL the listener that wakes them for jobs queued on other nodes. The registry holds the
/// handler of every job kind, from each crate that owns kinds.
fn worker_services(
    cfg: &Config,
    db: &Db,
    ctx: vidi_worker::Ctx,
    lanes: &[(Lane, usize)],
) -> anyhow::Result<Vec<Service>> {
    let lanes: Vec<_> = lanes.iter().filter(|(_, n)| *n > 0).cloned().collect();
    if lanes.is_empty() {
        return Ok(vec![]);
    }
    let mut registry = Registry::new();
    vidi_worker::register(&mut registry, &ctx);
    // Recordings of broadcasts are made wherever short jobs run.
    let recorder = vidi_live::record::Recorder {
        repo: ctx.repo.clone(),
        blobs: ctx.blobs.clone(),
        waker: ctx.waker.clone(),
        max_attempts: ctx.cfg.max_attempts,
    };
    vidi_live::record::register(&mut registry, recorder);
    let registry = Arc::new(registry);
    let mut services = vec![vidi_worker::sweep_service(&ctx)];
    let waker = ctx.waker.clone();
    services.extend(db.job_listener(move || waker.wake()));
    for (lane, n) in lanes {
        services.push(vidi_worker::lane_service(&ctx, registry.clone(), lane, n));
    }
    services.push(vidi_hooks::service(ctx.repo.clone(), cfg.hooks())?);
    Ok(services)
}

/// Runs workers only (no API): `vidi worker`. Returns once `shutdown` is cancelled and the jobs
/// they were running are back in the queue.
pub async fn run_workers(cfg: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    install_crypto();
    let repo = open_db(&cfg).await?;
    let blobs = open_blobs(&cfg).await?;
    let probe = vidi_api::ops::Probe { repo: repo.clone(), blobs: blobs.clone(), metrics: cfg.ops.metrics };
    let ctx = worker_ctx(&cfg, (repo.clone(), blobs), cfg.media(), Waker::new())?;
    let mut services = ops_service(&cfg, probe).await?.into_iter().collect::<Vec<_>>();
    services.extend(worker_services(&cfg, &repo, ctx, &lanes(&cfg, Role::Worker))?);
    let running = service::start(services, shutdown);
    tracing::info!(services = %running.names().join(", "), "vidi worker is running");
    let r = running.wait().await;
    repo.close().await;
    Ok(r?)
}

/// A token cancelled on the first SIGTERM or SIGINT: the process's one shutdown signal. A second
/// signal exits at once (an operator who presses Ctrl-C twice does not want to wait the grace).
pub fn shutdown_on_signals() -> anyhow::Result<CancellationToken> {
    use tokio::signal::unix::{SignalKind, signal};
    let token = CancellationToken::new();
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let cancel = token.clone();
    tokio::spawn(async move {
        let first = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(signal = first, "stopping");
        cancel.cancel();
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::warn!("second signal: exiting now");
        std::process::exit(130);
    });
    Ok(token)
}

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    pub url: String,
    /// The key created because the database had none (printed once by `serve`).
    pub first_key: Option<String>,
    pub state: AppState,
    /// Where publishers connect over RTMP and RTMPS, when this node listens.
    pub rtmp_addr: Option<SocketAddr>,
    pub rtmps_addr: Option<SocketAddr>,
    running: service::Running,
    db: Arc<Db>,
    shutdown: CancellationToken,
}

impl Server {
    /// Serves until shut down (see [`Server::shutdown`]), then returns once requests in flight
    /// have finished (or the grace period is over) and running jobs are back in the queue. A
    /// service that fails stops the others and is named in the error.
    pub async fn wait(self) -> anyhow::Result<()> {
        let r = self.running.wait().await;
        // Last: every service has stopped using it. Its connections end cleanly (PostgreSQL is
        // told, not left to notice) and so does the pool's own upkeep.
        self.db.close().await;
        Ok(r?)
    }

    /// The names of the services this node runs.
    pub fn services(&self) -> &[String] {
        self.running.names()
    }

    /// Starts a graceful stop: no new connections, requests in flight finish, workers hand their
    /// jobs back. [`Server::wait`] says when it is over.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Closes the database under the running services: stands in for a database outage (tests of
    /// `/ready`). Requests that need it fail from here on.
    #[doc(hidden)]
    pub async fn close_database(&self) {
        self.db.close().await;
    }

    /// Ends every service at once, with no graceful stop (tests standing in for a crash): running
    /// jobs stay claimed until the reaper takes them back, as after a kill -9.
    pub fn abort(&self) {
        self.running.abort();
    }
}

/// Opens everything and starts serving on `cfg.http_addr` (port 0 picks a free one), with
/// `cfg.workers` encoding workers in the same process, until [`Server::shutdown`].
pub async fn start(cfg: Config) -> anyhow::Result<Server> {
    start_with_shutdown(cfg, CancellationToken::new()).await
}

/// [`start`], stopping gracefully when `shutdown` is cancelled (by `main`, on SIGTERM or SIGINT).
pub async fn start_with_shutdown(cfg: Config, shutdown: CancellationToken) -> anyhow::Result<Server> {
    start_on(cfg, shutdown, |blobs| blobs).await
}

/// [`start`] with the media store `cfg` names seen through `wrap`: tests count what one node
/// reads from the store (a source's downloads) through a wrapper of their own.
#[doc(hidden)]
pub async fn start_wrapping_blobs(
    cfg: Config,
    wrap: impl FnOnce(Arc<dyn Blobs>) -> Arc<dyn Blobs>,
) -> anyhow::Result<Server> {
    start_on(cfg, CancellationToken::new(), wrap).await
}

async fn start_on(
    cfg: Config,
    shutdown: CancellationToken,
    wrap: impl FnOnce(Arc<dyn Blobs>) -> Arc<dyn Blobs>,
) -> anyhow::Result<Server> {
    install_crypto();
    // Before anything is opened: a bad certificate stops the node at once.
    let tls = match &cfg.http.tls {
        Some(files) => Some(tls::acceptor(&files.cert, &files.key)?),
        None => None,
    };
    let db = open_db(&cfg).await?;
    let repo: Arc<dyn Repo> = db.clone();
    let first_key =
        if repo.count_api_keys().await? == 0 { Some(create_key(repo.as_ref(), "default", None).await?) } else { None };
    let blobs = wrap(open_blobs(&cfg).await?);
    let listener = http::bind(cfg.http.addr)?;
    let addr = listener.local_addr()?;
    let url = cfg.public_url_for(addr);
    let lanes = lanes(&cfg, Role::Serve);
    // The assembly wait applies only where this process runs workers (see `ApiConfig`).
    let api = cfg.api(url.clone(), !lanes.is_empty());
    let media = cfg.media();
    // One waker for the process: jobs the API queues wake the workers beside it.
    let waker = Waker::new();
    // The broadcasts of this node's RTMP ingest, which delivery reads live playlists from.
    let node = format!("in{}", vidi_core::id::random_body());
    let outbound = vidi_outbound::Guard::new(cfg.outbound.allow_private, Duration::from_secs(10))?;
    let broadcasts = vidi_live::Broadcasts::new(
        repo.clone(),
        blobs.clone(),
        media.clone(),
        waker.clone(),
        cfg.live(),
        node,
        outbound,
    );
    let live: Arc<dyn vidi_core::live::LiveOutput> = Arc::new(broadcasts.clone());
    let state = AppState::new(repo.clone(), blobs.clone(), media.clone(), api, waker.clone(), live).await?;
    let mut services = vec![http_service(state.clone(), listener, cfg.limits(), tls.clone())];
    services.push(vidi_live::service::broadcasts_service(&broadcasts));
    // Bound before anything is served, so a taken port stops the node at once.
    let rtmp = match cfg.live.rtmp_addr {
        Some(a) => Some(
            tokio::net::TcpListener::bind(a)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen for RTMP on {a}: {e}"))?,
        ),
        None => None,
    };
    let rtmps = match cfg.live.rtmps_addr {
        Some(a) => Some(
            tokio::net::TcpListener::bind(a)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen for RTMPS on {a}: {e}"))?,
        ),
        None => None,
    };
    let (rtmp_addr, rtmps_addr) =
        (rtmp.as_ref().and_then(|l| l.local_addr().ok()), rtmps.as_ref().and_then(|l| l.local_addr().ok()));
    if let Some(l) = rtmp {
        services.push(vidi_live::service::rtmp_service(l, None, &broadcasts));
    }
    if let Some(l) = rtmps {
        let acceptor = tls.clone().ok_or_else(|| anyhow::anyhow!("RTMPS needs VIDI_TLS_CERT and VIDI_TLS_KEY"))?;
        services.push(vidi_live::service::rtmp_service(l, Some(acceptor), &broadcasts));
    }
    let probe = vidi_api::ops::Probe { repo: repo.clone(), blobs: state.blobs.clone(), metrics: cfg.ops.metrics };
    services.extend(ops_service(&cfg, probe).await?);
    services.extend(vidi_api::services(&state));
    services.extend(worker_services(&cfg, &db, worker_ctx(&cfg, (db.clone(), blobs), media, waker)?, &lanes)?);
    let running = service::start(services, shutdown.clone());
    tracing::info!(%addr, tls = tls.is_some(), db = state.repo.backend(), storage = state.blobs.backend(),
        services = %running.names().join(", "), "vidi is serving");
    Ok(Server { addr, url, first_key, state, running, db, shutdown, rtmp_addr, rtmps_addr })
}

/// `/metrics`, `/health` and `/ready` on a listener of their own when `VIDI_METRICS_ADDR` is set
/// (service `ops`): plain HTTP, for the operator's network only. Bound here, so a taken port
/// stops the node at start.
async fn ops_service(cfg: &Config, probe: vidi_api::ops::Probe) -> anyhow::Result<Option<Service>> {
    // Installed before any work: a worker-only node records too.
    if cfg.ops.metrics {
        vidi_api::metrics::handle();
    }
    let Some(addr) = cfg.ops.metrics_addr else { return Ok(None) };
    let listener = http::bind(addr)?;
    tracing::info!(addr = %listener.local_addr()?, "metrics, health and readiness served here");
    let limits = cfg.limits();
    Ok(Some(Service::new("ops", move |shutdown| async move {
        let app = vidi_api::ops::routes(probe);
        Ok(http::serve(listener, app, limits, None, shutdown).await?)
    })))
}

/// The API over HTTP(S): serves until the shutdown token fires and the requests in flight have
/// ended (or the grace period is over), then stops the work requests started.
fn http_service(
    state: AppState,
    listener: tokio::net::TcpListener,
    limits: http::Limits,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> Service {
    Service::new("http", move |shutdown| async move {
        let app = vidi_api::router(state.clone());
        let served = http::serve(listener, app, limits, tls, shutdown).await;
        state.tasks.stop().await;
        Ok(served?)
    })
}
