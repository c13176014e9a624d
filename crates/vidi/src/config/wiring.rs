//! The checked configuration handed to each library in the settings it takes. Values are used as
//! they are: their ranges were checked at load, so nothing here clamps.

use std::time::Duration;

use vidi_media::{Media, Tool};

use super::Config;
use crate::http::Limits;

impl Config {
    /// The API's settings. `public_url` is known once the listener is bound; `runs_workers`:
    /// whether this process runs workers.
    pub fn api(&self, public_url: String, runs_workers: bool) -> vidi_api::ApiConfig {
        vidi_api::ApiConfig {
            public_url,
            max_request_bytes: self.uploads.max_request_bytes,
            quota_bytes: self.uploads.quota_bytes,
            access_ttl_s: self.auth.access_token_ttl.as_secs() as i64,
            claim_stale_after: self.uploads.claim_stale,
            segment_cache_bytes: self.delivery.segment_cache_bytes,
            // Apart from the workers' `.work`: an API node's probes and thumbnails must not compete
            // with encodes for that space (nor fail with it when a ladder fills it).
            work_dir: self.storage.data_dir.join(".scratch"),
            max_source_bytes: self.uploads.max_source_bytes,
            outbound_allow_private: self.outbound.allow_private,
            key_cache_ttl: self.auth.key_cache,
            visibility_ttl: self.delivery.visibility_cache,
            // Where this process runs workers, whose short lane takes the job within
            // milliseconds, and on PostgreSQL, where an API-only node is one of a cluster whose
            // workers are woken by a notification the moment the job is queued (api.video's
            // clients read the status right after the last part and expect it complete). An
            // API-only process on SQLite may have no worker at all: it answers at once (its
            // status says `uploading` until a worker has joined the parts).
            assembly_wait: if runs_workers || self.database.url.as_deref().is_some_and(|u| u.starts_with("postgres")) {
                self.uploads.assembly_wait
            } else {
                Duration::ZERO
            },
            webhook_limit: self.webhooks.limit,
            collect_rate: self.analytics.collect_rate,
            trusted_proxy: self.analytics.trusted_proxy,
            geoip_db: self.analytics.geoip_db.clone(),
            analytics_retention: self.analytics.retention,
            rate_limits: self.ops.rate_limits,
            metrics: self.ops.metrics,
            // With a listener of their own, `/metrics`, `/health` and `/ready` leave the API's.
            ops_routes: self.ops.metrics_addr.is_none(),
            ..vidi_api::ApiConfig::default()
        }
    }

    /// The workers' settings.
    pub fn worker(&self) -> vidi_worker::WorkerConfig {
        let jobs = &self.jobs;
        vidi_worker::WorkerConfig {
            work_dir: self.storage.data_dir.join(".work"),
            preset: self.encoding.x264_preset.clone(),
            stale_after: jobs.stale_after,
            // Six beats per staleness window: a busy but live worker is never mistaken for a dead
            // one (and no faster than five a second, whatever the window).
            heartbeat: (jobs.stale_after / 6).max(Duration::from_millis(200)),
            piece_secs: self.encoding.piece_secs,
            parallel_pieces: self.encoding.parallel_pieces,
            retry_base: jobs.retry_base,
            follow_timeout: jobs.follow_timeout,
            job_timeout: jobs.timeout,
            import_max_bytes: self.uploads.max_request_bytes,
            import_timeout: self.imports.timeout,
            import_min_rate: self.imports.min_rate,
            import_rate_window: self.imports.rate_window,
            encode_cpu: (self.encoding.cpu_secs > 0).then(|| Duration::from_secs(self.encoding.cpu_secs)),
            // Long enough for a failed piece's first two retries (after 1 and 4 × the wait) to
            // find the node's copy of the source again.
            source_linger: jobs.retry_base * 5,
            ..vidi_worker::WorkerConfig::default()
        }
    }

    /// The webhook delivery settings.
    pub fn hooks(&self) -> vidi_hooks::HooksConfig {
        let w = &self.webhooks;
        let defaults = vidi_hooks::HooksConfig::default();
        vidi_hooks::HooksConfig {
            concurrency: w.concurrency,
            per_endpoint: w.per_endpoint,
            timeout: w.timeout,
            schedule: vidi_hooks::retry::Schedule { base: w.retry_base, window: w.retry_window, ..defaults.schedule },
            poll: w.poll,
            allow_private: self.outbound.allow_private,
        }
    }

    /// Live ingest and packaging.
    pub fn live(&self) -> vidi_live::LiveConfig {
        let l = &self.live;
        vidi_live::LiveConfig {
            part_target: l.part_target,
            segment_target: l.segment_target,
            reconnect_grace: l.reconnect_grace,
            heartbeat: l.heartbeat,
            stale_after: l.stale_after,
            ladder: l.ladder.clone(),
            max_attempts: self.worker().max_attempts,
            ..vidi_live::LiveConfig::default()
        }
    }

    /// The edges of every HTTP connection.
    pub fn limits(&self) -> Limits {
        Limits {
            header_timeout: self.http.header_timeout,
            body_idle: self.http.body_idle,
            max_connections: self.http.max_connections,
            shutdown_grace: self.http.shutdown_grace,
        }
    }

    /// The media tools, jailed as configured.
    pub fn media(&self) -> Media {
        let defaults = Media::default();
        let e = &self.encoding;
        Media {
            ffprobe: Tool { program: e.ffprobe.clone(), sandbox: e.sandbox, ..defaults.ffprobe },
            // The cap of every run; each job narrows it to its own bound (`vidi_worker::time_bound`).
            ffmpeg: Tool {
                program: e.ffmpeg.clone(),
                sandbox: e.sandbox,
                timeout: self.jobs.timeout,
                max_data: (e.memory_bytes > 0).then_some(e.memory_bytes),
                ..defaults.ffmpeg
            },
            priority: defaults.priority,
        }
    }

    /// S3's endpoint and region (its credentials come from `AWS_*`, read by the S3 client).
    pub fn s3(&self) -> vidi_storage::S3Config {
        vidi_storage::S3Config {
            endpoint: self.storage.s3_endpoint.clone(),
            region: self.storage.s3_region.clone(),
            access_key_id: None,
            secret_access_key: None,
        }
    }
}
