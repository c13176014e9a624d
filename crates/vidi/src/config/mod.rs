//! Configuration, read and checked once at start-up.
//!
//! Operators write flat settings: built-in defaults, then an optional TOML file (`--config FILE`
//! or `./vidi.toml`, keys such as `http_addr`), then `VIDI_*` environment variables (the same key
//! in upper case: `VIDI_HTTP_ADDR`). [`Config::load`] reads them ([`flat`]), checks every value
//! against its accepted range ([`settings`], the one place ranges are written) and returns the
//! typed sections below, which the rest of the code reads as they are: no value is clamped or
//! re-checked later. A bad value stops the process with one line naming the setting as the
//! operator wrote it and what is accepted ([`ConfigError`]).
//!
//! Adding a setting: a field in its section here, its default in [`Config::default`], a row in
//! [`settings::SETTINGS`] (its range), a field in [`flat::Flat`] and its two conversions, and a
//! row in the README's configuration table (a test fails while the README and the code differ).

mod flat;
mod settings;
mod show;
mod wiring;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use settings::{ConfigError, Kind, SETTINGS, Setting};
pub use show::{LOG_DEFAULT, describe};

/// Every setting of a node, by concern.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub http: Http,
    pub database: Database,
    pub storage: Storage,
    pub uploads: Uploads,
    pub imports: Imports,
    pub auth: Auth,
    pub delivery: Delivery,
    pub jobs: Jobs,
    pub encoding: Encoding,
    pub outbound: Outbound,
    pub webhooks: Webhooks,
    pub live: Live,
    pub analytics: Analytics,
    pub ops: Ops,
}

/// The listener and the edges of every connection.
#[derive(Clone, Debug, PartialEq)]
pub struct Http {
    /// Where the API listens (port 0 picks a free one).
    pub addr: SocketAddr,
    /// The base of asset URLs, without a trailing slash; `None`: `http://<bound address>`
    /// (`https://` with TLS).
    pub public_url: Option<String>,
    /// When set, Vidi serves HTTPS itself on `addr`.
    pub tls: Option<TlsFiles>,
    /// A connection must send complete request headers within this, also between requests on a
    /// kept-alive connection; past it, it is closed.
    pub header_timeout: Duration,
    /// A request body that sends nothing for this long fails the request.
    pub body_idle: Duration,
    /// Open connections at most; past it, new connections get a 503 and are closed.
    pub max_connections: usize,
    /// After SIGTERM/SIGINT, how long requests in flight have to finish (zero: dropped at once).
    pub shutdown_grace: Duration,
}

/// A PEM certificate chain and its private key (both or neither is checked at load).
#[derive(Clone, Debug, PartialEq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The metadata store.
#[derive(Clone, Debug, PartialEq)]
pub struct Database {
    /// `None`: SQLite in `storage.data_dir`. `postgres://…`: PostgreSQL; `sqlite:…`: that file.
    pub url: Option<String>,
    /// PostgreSQL only: keep Vidi's tables in this schema.
    pub schema: Option<String>,
}

/// The media store and the local data folder.
#[derive(Clone, Debug, PartialEq)]
pub struct Storage {
    /// The SQLite file, local media and the scratch folders live here.
    pub data_dir: PathBuf,
    /// `None`: media in `data_dir/media`. `s3://bucket[/prefix]`: S3; `file:///path`: a folder.
    pub url: Option<String>,
    /// S3 endpoint for non-AWS servers (`VIDI_S3_ENDPOINT`, else `AWS_ENDPOINT_URL`).
    pub s3_endpoint: Option<String>,
    /// `VIDI_S3_REGION`; `None` leaves it to `AWS_REGION`, `AWS_DEFAULT_REGION`, then `us-east-1`
    /// (`vidi_storage::s3_region`).
    pub s3_region: Option<String>,
}

/// Uploads of sources.
#[derive(Clone, Debug, PartialEq)]
pub struct Uploads {
    /// Largest upload request (whole file or chunk), bytes; also bounds `source` URL imports.
    pub max_request_bytes: u64,
    /// The largest total a chunked upload may announce, bytes.
    pub max_source_bytes: u64,
    /// Storage quota reported by `/account`, bytes.
    pub quota_bytes: u64,
    /// A chunk claimed by a node silent this long may be sent again (after a crash).
    pub claim_stale: Duration,
    /// How long the answer to an upload's last part waits for the source's assembly, in
    /// processes that run workers and on PostgreSQL (zero: answer at once).
    pub assembly_wait: Duration,
}

/// `source` URL imports.
#[derive(Clone, Debug, PartialEq)]
pub struct Imports {
    /// An import must finish within this...
    pub timeout: Duration,
    /// ...and average at least this many bytes per second over every `rate_window` (0: no
    /// minimum).
    pub min_rate: u64,
    pub rate_window: Duration,
}

/// Credentials.
#[derive(Clone, Debug, PartialEq)]
pub struct Auth {
    /// Lifetime of access tokens (api.video: 3600 s).
    pub access_token_ttl: Duration,
    /// How long a node trusts what it read about an API key: a revoked key stops working on
    /// every node within this (at most 30 s; zero asks the database on every request).
    pub key_cache: Duration,
}

/// Serving media.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    /// Memory for hot HLS segments, bytes (0: no cache).
    pub segment_cache_bytes: u64,
    /// How long a node serves a video's segments on what it read about its visibility (at most
    /// 1 s; zero reads the database on every segment request).
    pub visibility_cache: Duration,
}

/// Workers and the jobs they run.
#[derive(Clone, Debug, PartialEq)]
pub struct Jobs {
    /// Workers of the encode lane (ladders and pieces). 0 makes `serve` an API-only node, which
    /// runs no lane at all.
    pub workers: usize,
    /// Workers of the head lane: each video's first half-second of ladder, which makes it
    /// playable (at least one).
    pub head_workers: usize,
    /// Workers of the short lane: probes, chunk assemblies, `source` URL imports.
    pub short_workers: usize,
    /// A running job whose worker stopped heartbeating this long is given to another.
    pub stale_after: Duration,
    /// The wait before a failed job's first retry (each later one waits four times longer).
    pub retry_base: Duration,
    /// The longest any job's ffmpeg may run; each job bounds its runs by the length of what it
    /// encodes within this.
    pub timeout: Duration,
    /// How long an encoder that started on an upload still arriving waits for more bytes.
    pub follow_timeout: Duration,
}

/// The media tools and how the ladder is encoded.
#[derive(Clone, Debug, PartialEq)]
pub struct Encoding {
    pub ffmpeg: String,
    pub ffprobe: String,
    /// Confine every ffmpeg/ffprobe with Landlock where the kernel has it.
    pub sandbox: bool,
    /// x264 preset of the ladder (one of x264's names).
    pub x264_preset: String,
    /// After its head, a video longer than 5 s is encoded in pieces of about this many seconds
    /// (0: never split, not even the head).
    pub piece_secs: u32,
    /// Pieces of its own video one finish job runs at once (`VIDI_PARALLEL_PIECES=0` is resolved
    /// to the number of cores at load).
    pub parallel_pieces: usize,
    /// The memory each ffmpeg may write, bytes (`RLIMIT_DATA`; 0: no bound).
    pub memory_bytes: u64,
    /// The CPU time each encoding ffmpeg run may use, seconds (0: the job's own time bound, see
    /// `vidi_worker::time_bound`).
    pub cpu_secs: u64,
}

/// Requests Vidi makes to addresses users give (imports, webhooks).
#[derive(Clone, Debug, PartialEq)]
pub struct Outbound {
    /// Let them reach loopback, private, link-local and multicast addresses.
    pub allow_private: bool,
}

/// The analytics collector (`vidi_api::collect`).
#[derive(Clone, Debug, PartialEq)]
pub struct Analytics {
    /// Requests a second one client address may send the collector (0: no limit).
    pub collect_rate: u32,
    /// Every peer is a reverse proxy of ours: the client address is the last `X-Forwarded-For`
    /// entry. Off, the header is ignored (anyone can write it).
    pub trusted_proxy: bool,
    /// A MaxMind-format database (GeoIP2/GeoLite2 City or Country) locating viewers.
    pub geoip_db: Option<PathBuf>,
    /// Raw sessions and events are deleted this long after they were loaded (`None`: kept).
    pub retention: Option<Duration>,
}

/// Webhooks and their delivery.
#[derive(Clone, Debug, PartialEq)]
pub struct Webhooks {
    /// Webhooks one workspace may hold (`webhook-limit-reached` past it).
    pub limit: u32,
    /// Requests in flight at most, all webhooks together...
    pub concurrency: usize,
    /// ...and to one webhook.
    pub per_endpoint: usize,
    /// One attempt, from connecting to the end of the answer.
    pub timeout: Duration,
    /// The wait before a failed delivery's first retry; each later one doubles, up to an hour.
    pub retry_base: Duration,
    /// How long failed deliveries are retried before they are given up.
    pub retry_window: Duration,
    /// How often the outbox and due deliveries are read when nothing wakes the loops.
    pub poll: Duration,
}

/// Live ingest and packaging.
#[derive(Clone, Debug, PartialEq)]
pub struct Live {
    /// Where publishers connect over RTMP (`None`: no RTMP listener on this node).
    pub rtmp_addr: Option<SocketAddr>,
    /// RTMPS, with the HTTP listener's TLS certificate (`None`: none).
    pub rtmps_addr: Option<SocketAddr>,
    /// A publisher that returns within this continues the same broadcast and recording.
    pub reconnect_grace: Duration,
    /// PART-TARGET of the low-latency playlists.
    pub part_target: Duration,
    /// Segments close at the first keyframe after this.
    pub segment_target: Duration,
    /// How often a node records that it still holds its broadcasts.
    pub heartbeat: Duration,
    /// A broadcast whose node has not heartbeated for this long lost its node: any node ends it.
    pub stale_after: Duration,
    /// The heights of the transcoded lower renditions, tallest first (empty: the source only).
    pub ladder: Vec<u32>,
}

/// Running a node: logs, metrics and health, rate limits (docs/operations.md).
#[derive(Clone, Debug, PartialEq)]
pub struct Ops {
    /// Log lines as JSON objects (one a line, for a collector) rather than text.
    pub log_json: bool,
    /// When set, `/metrics`, `/health` and `/ready` are served on this address (a listener of
    /// their own, for a network Prometheus reaches and the public does not) and no longer on the
    /// API's; a `vidi worker` node serves them only there.
    pub metrics_addr: Option<SocketAddr>,
    /// Record metrics and serve `/metrics` (`VIDI_METRICS=off`: neither; `/health` and `/ready`
    /// stay).
    pub metrics: bool,
    /// API requests per minute per API key (and per client address without one), by class;
    /// `None`: no limits (`VIDI_RATE_LIMIT=off`).
    pub rate_limits: Option<vidi_api::ratelimit::Limits>,
}

impl Default for Config {
    /// The built-in defaults, the first layer of [`Config::load`]. The libraries' own defaults
    /// are taken where they have one, so a default is written once.
    fn default() -> Self {
        let api = vidi_api::ApiConfig::default();
        let hooks = vidi_hooks::HooksConfig::default();
        let worker = vidi_worker::WorkerConfig::default();
        Config {
            http: Http {
                addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
                public_url: None,
                tls: None,
                header_timeout: Duration::from_secs(10),
                body_idle: Duration::from_secs(30),
                max_connections: 4096,
                shutdown_grace: Duration::from_secs(10),
            },
            database: Database { url: None, schema: None },
            storage: Storage { data_dir: PathBuf::from("./vidi-data"), url: None, s3_endpoint: None, s3_region: None },
            uploads: Uploads {
                max_request_bytes: api.max_request_bytes,
                max_source_bytes: api.max_source_bytes,
                quota_bytes: api.quota_bytes,
                claim_stale: api.claim_stale_after,
                assembly_wait: api.assembly_wait,
            },
            imports: Imports {
                timeout: worker.import_timeout,
                min_rate: worker.import_min_rate,
                rate_window: worker.import_rate_window,
            },
            auth: Auth { access_token_ttl: Duration::from_secs(api.access_ttl_s as u64), key_cache: api.key_cache_ttl },
            delivery: Delivery { segment_cache_bytes: api.segment_cache_bytes, visibility_cache: api.visibility_ttl },
            jobs: Jobs {
                workers: 1,
                head_workers: 1,
                short_workers: 2,
                stale_after: worker.stale_after,
                retry_base: worker.retry_base,
                timeout: worker.job_timeout,
                follow_timeout: worker.follow_timeout,
            },
            encoding: Encoding {
                ffmpeg: "ffmpeg".into(),
                ffprobe: "ffprobe".into(),
                sandbox: true,
                x264_preset: worker.preset,
                piece_secs: worker.piece_secs,
                parallel_pieces: worker.parallel_pieces,
                memory_bytes: vidi_media::ENCODE_MEMORY_BYTES,
                cpu_secs: 0,
            },
            outbound: Outbound { allow_private: api.outbound_allow_private },
            webhooks: Webhooks {
                limit: api.webhook_limit,
                concurrency: hooks.concurrency,
                per_endpoint: hooks.per_endpoint,
                timeout: hooks.timeout,
                retry_base: hooks.schedule.base,
                retry_window: hooks.schedule.window,
                poll: hooks.poll,
            },
            live: {
                let d = vidi_live::LiveConfig::default();
                Live {
                    rtmp_addr: Some(SocketAddr::from(([127, 0, 0, 1], 1935))),
                    rtmps_addr: None,
                    reconnect_grace: d.reconnect_grace,
                    part_target: d.part_target,
                    segment_target: d.segment_target,
                    heartbeat: d.heartbeat,
                    stale_after: d.stale_after,
                    ladder: d.ladder,
                }
            },
            analytics: Analytics {
                collect_rate: api.collect_rate,
                trusted_proxy: api.trusted_proxy,
                geoip_db: api.geoip_db,
                retention: api.analytics_retention,
            },
            ops: Ops { log_json: false, metrics_addr: None, metrics: api.metrics, rate_limits: api.rate_limits },
        }
    }
}

impl Config {
    /// Reads the layers from the process's environment. `file` is read when given (and must
    /// exist), else `vidi.toml` when there is one.
    pub fn load(file: Option<PathBuf>) -> anyhow::Result<Config> {
        Ok(Config::load_from(file.as_deref(), &env_vars())?)
    }

    /// [`Config::load`] with the environment given: `env` holds every variable (the `VIDI_*`
    /// ones are settings; `AWS_ENDPOINT_URL` stands in for an unset `VIDI_S3_ENDPOINT`).
    pub fn load_from(file: Option<&std::path::Path>, env: &[(String, String)]) -> Result<Config, ConfigError> {
        flat::load(file, env).map(|(cfg, _)| cfg)
    }

    /// The base of asset URLs once the listener is bound to `bound`.
    pub fn public_url_for(&self, bound: SocketAddr) -> String {
        match &self.http.public_url {
            Some(url) => url.clone(),
            None => {
                let scheme = if self.http.tls.is_none() { "http" } else { "https" };
                format!("{scheme}://{bound}")
            }
        }
    }
}

/// The process's environment, as `(name, value)` pairs (names or values that are not UTF-8
/// cannot be Vidi settings, and are read lossily like figment did).
pub fn env_vars() -> Vec<(String, String)> {
    std::env::vars_os().map(|(k, v)| (k.to_string_lossy().into_owned(), v.to_string_lossy().into_owned())).collect()
}
