//! Configuration: built-in defaults, then an optional TOML file, then `VIDI_*` environment
//! variables (each key in upper case: `http_addr` → `VIDI_HTTP_ADDR`).

use std::net::SocketAddr;
use std::path::PathBuf;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Where the API listens.
    pub http_addr: SocketAddr,
    /// The SQLite file and the local media live here.
    pub data_dir: PathBuf,
    /// Empty: SQLite in `data_dir`. `postgres://…`: PostgreSQL.
    pub database_url: String,
    /// PostgreSQL only: keep Vidi's tables in this schema.
    pub database_schema: String,
    /// Empty: media in `data_dir/media`. `s3://bucket[/prefix]`: S3 (see the `s3_*` keys and `AWS_*`).
    pub storage_url: String,
    /// S3 endpoint for non-AWS servers (also read from `AWS_ENDPOINT_URL`).
    pub s3_endpoint: String,
    pub s3_region: String,
    /// The base of asset URLs; defaults to `http://<http_addr>` (`https://` with TLS).
    pub public_url: String,
    /// PEM certificate chain and private key: when both are set, Vidi serves HTTPS itself on
    /// `http_addr` (empty: plain HTTP).
    pub tls_cert: String,
    pub tls_key: String,
    /// Seconds a connection may take to send complete request headers, also between requests
    /// on a kept-alive connection; past it, the connection is closed.
    pub header_timeout_secs: u64,
    /// Seconds a request body may go without sending a byte; past it, the request fails.
    pub body_idle_secs: u64,
    /// Open connections at most; past it, new connections get a 503 and are closed.
    pub max_connections: usize,
    /// Largest upload request (whole file or chunk), bytes.
    pub max_request_bytes: u64,
    /// Storage quota reported by `/account`, bytes.
    pub quota_bytes: u64,
    /// Seconds after which a chunk claimed by a silent node may be sent again (after a crash).
    pub claim_stale_secs: u64,
    /// Memory kept for hot HLS segments, bytes (0 turns the cache off).
    pub segment_cache_bytes: u64,
    /// Lifetime of access tokens, seconds (api.video: 3600).
    pub access_token_ttl: i64,
    /// Seconds a node trusts what it read about an API key; a revoked key stops working on every
    /// node within this (at most 30, the default; 0 checks the database on every request).
    pub key_cache_secs: u64,
    /// Milliseconds a node serves a video's segments on what it read about its visibility; a
    /// video made private or deleted through another node stops being served here within this
    /// (at most 1000, the default; 0 reads the database on every segment request).
    pub visibility_cache_ms: u64,
    /// Encoding workers in this process (`serve` and `worker`): the encode lane's count (ladders
    /// and pieces). 0 makes `serve` an API-only node, which runs no lane at all.
    pub workers: usize,
    /// Workers of the short lane (probes, chunk assemblies, `source` URL imports), beside the
    /// encode lane's, so none of that waits behind a ladder (`VIDI_SHORT_WORKERS`).
    pub short_workers: usize,
    /// Workers of the head lane (`VIDI_HEAD_WORKERS`): each video's first half-second of ladder,
    /// which makes it playable, ahead of and beside the rest of every ladder.
    pub head_workers: usize,
    /// Seconds after which a running job whose worker stopped heartbeating is given to another.
    pub job_stale_secs: u64,
    /// Seconds before a failed job's first retry (each later one waits four times longer).
    pub job_retry_secs: u64,
    /// The longest any job's ffmpeg may run, seconds; each job bounds its runs by the length of
    /// what it encodes (20 ×, at least 10 minutes) within this.
    pub job_timeout_secs: u64,
    /// Seconds requests in flight have to finish after SIGTERM/SIGINT before their connections
    /// are dropped.
    pub shutdown_grace_secs: u64,
    /// Seconds an encoder that started on an upload still arriving waits for more bytes; past
    /// that, the encoding waits for the upload to complete.
    pub follow_timeout_secs: u64,
    /// x264 preset of the ladder.
    pub x264_preset: String,
    /// After its first half-second (the head), a video longer than 5 s is encoded in pieces of about
    /// this many seconds, spread over cores and workers (0: never split, not even the head).
    pub piece_secs: u32,
    /// Pieces of its own video one finish job runs at once (0: one per core).
    pub parallel_pieces: usize,
    pub ffmpeg: String,
    pub ffprobe: String,
    /// Confine every ffmpeg/ffprobe with Landlock where the kernel has it (see docs/security.md).
    pub media_sandbox: bool,
    /// Let URLs given by users (`source` imports) reach loopback, private, link-local and
    /// multicast addresses. Off: only public addresses are fetched.
    pub outbound_allow_private: bool,
    /// The largest total a chunked upload may announce, bytes.
    pub max_source_bytes: u64,
    /// A `source` URL import must finish within this many seconds...
    pub import_timeout_secs: u64,
    /// ...and average at least this many bytes per second over every `import_rate_window_secs`.
    pub import_min_rate: u64,
    pub import_rate_window_secs: u64,
    /// Seconds the answer to an upload's last part waits for the source's assembly (a job), in
    /// processes that run workers.
    pub assembly_wait_secs: u64,
    /// Webhooks one workspace may hold (`webhook-limit-reached` past it).
    pub webhook_limit: u32,
    /// Webhook requests in flight at most, all webhooks together...
    pub webhook_concurrency: usize,
    /// ...and to one webhook (a slow receiver holds at most these).
    pub webhook_per_endpoint: usize,
    /// One delivery attempt, from connecting to the end of the answer, seconds.
    pub webhook_timeout_secs: u64,
    /// The wait before a failed delivery's first retry, ms; each later one doubles (with
    /// jitter), up to an hour.
    pub webhook_retry_base_ms: u64,
    /// Failed deliveries are retried for this many hours before they are given up.
    pub webhook_retry_hours: u64,
    /// How often the events outbox and due deliveries are read when nothing wakes the loops, ms.
    pub webhook_poll_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        let api = vidi_api::ApiConfig::default();
        let hooks = vidi_hooks::HooksConfig::default();
        Config {
            http_addr: "127.0.0.1:8080".parse().expect("literal"),
            data_dir: PathBuf::from("./vidi-data"),
            database_url: String::new(),
            database_schema: String::new(),
            storage_url: String::new(),
            s3_endpoint: String::new(),
            s3_region: String::new(),
            public_url: String::new(),
            tls_cert: String::new(),
            tls_key: String::new(),
            header_timeout_secs: 10,
            body_idle_secs: 30,
            max_connections: 4096,
            max_request_bytes: api.max_request_bytes,
            quota_bytes: api.quota_bytes,
            access_token_ttl: api.access_ttl_s,
            key_cache_secs: api.key_cache_ttl.as_secs(),
            visibility_cache_ms: api.visibility_ttl.as_millis() as u64,
            claim_stale_secs: api.claim_stale_after.as_secs(),
            segment_cache_bytes: api.segment_cache_bytes,
            workers: 1,
            short_workers: 2,
            head_workers: 1,
            job_stale_secs: 30,
            job_retry_secs: 10,
            follow_timeout_secs: 60,
            job_timeout_secs: 6 * 3600,
            shutdown_grace_secs: 10,
            x264_preset: "veryfast".into(),
            piece_secs: 30,
            parallel_pieces: 0,
            ffmpeg: "ffmpeg".into(),
            ffprobe: "ffprobe".into(),
            media_sandbox: true,
            outbound_allow_private: api.outbound_allow_private,
            max_source_bytes: api.max_source_bytes,
            import_timeout_secs: api.import_timeout.as_secs(),
            import_min_rate: api.import_min_rate,
            import_rate_window_secs: api.import_rate_window.as_secs(),
            assembly_wait_secs: api.assembly_wait.as_secs(),
            webhook_limit: api.webhook_limit,
            webhook_concurrency: hooks.concurrency,
            webhook_per_endpoint: hooks.per_endpoint,
            webhook_timeout_secs: hooks.timeout.as_secs(),
            webhook_retry_base_ms: hooks.schedule.base.as_millis() as u64,
            webhook_retry_hours: hooks.schedule.window.as_secs() / 3600,
            webhook_poll_ms: hooks.poll.as_millis() as u64,
        }
    }
}

impl Config {
    /// Loads the layers. `file` is read when given, else `vidi.toml` when it exists.
    pub fn load(file: Option<PathBuf>) -> anyhow::Result<Config> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(f) => fig = fig.merge(Toml::file_exact(f)),
            None => fig = fig.merge(Toml::file("vidi.toml")),
        }
        let mut cfg: Config = fig.merge(Env::prefixed("VIDI_")).extract()?;
        if cfg.s3_endpoint.is_empty()
            && let Ok(e) = std::env::var("AWS_ENDPOINT_URL")
        {
            cfg.s3_endpoint = e;
        }
        Ok(cfg)
    }

    pub fn public_url_for(&self, bound: SocketAddr) -> String {
        if self.public_url.is_empty() {
            let scheme = if self.tls_cert.is_empty() { "http" } else { "https" };
            format!("{scheme}://{bound}")
        } else {
            self.public_url.trim_end_matches('/').to_string()
        }
    }
}

fn nonempty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

impl Config {
    /// The webhook delivery settings.
    pub fn hooks(&self) -> vidi_hooks::HooksConfig {
        let d = vidi_hooks::HooksConfig::default();
        vidi_hooks::HooksConfig {
            concurrency: self.webhook_concurrency.max(1),
            per_endpoint: self.webhook_per_endpoint.max(1),
            timeout: std::time::Duration::from_secs(self.webhook_timeout_secs.max(1)),
            schedule: vidi_hooks::retry::Schedule {
                base: std::time::Duration::from_millis(self.webhook_retry_base_ms.max(1)),
                window: std::time::Duration::from_secs(self.webhook_retry_hours.max(1) * 3600),
                ..d.schedule
            },
            poll: std::time::Duration::from_millis(self.webhook_poll_ms.max(10)),
            allow_private: self.outbound_allow_private,
        }
    }

    pub fn database_url(&self) -> Option<&str> {
        nonempty(&self.database_url)
    }
    pub fn database_schema(&self) -> Option<&str> {
        nonempty(&self.database_schema)
    }
    pub fn storage_url(&self) -> Option<&str> {
        nonempty(&self.storage_url)
    }
    /// The TLS certificate and key files, when TLS is configured; a half-configured pair is an
    /// error rather than a silent fall back to plain HTTP.
    pub fn tls_files(&self) -> anyhow::Result<Option<(PathBuf, PathBuf)>> {
        match (nonempty(&self.tls_cert), nonempty(&self.tls_key)) {
            (None, None) => Ok(None),
            (Some(c), Some(k)) => Ok(Some((PathBuf::from(c), PathBuf::from(k)))),
            _ => anyhow::bail!("VIDI_TLS_CERT and VIDI_TLS_KEY must be set together"),
        }
    }
}
