//! The name of every metric Vidi records (`/metrics`, docs/operations.md says what each means).
//! Here, in the crate every other one depends on, so that the API, the workers and webhooks
//! record under one list of names; the recorder itself is `vidi_api::metrics`.

/// Counter: HTTP requests answered, by `route` (the matched template), `method`, `status`.
pub const HTTP_REQUESTS: &str = "vidi_http_requests_total";
/// Histogram (seconds): time to the response's head, by `route` and `method`.
pub const HTTP_DURATION: &str = "vidi_http_request_duration_seconds";
/// Counter: HTTP requests refused with 429, by `class` (`reads`, `writes`, `uploads`) and
/// `by` (`key` or `address`).
pub const RATE_LIMITED: &str = "vidi_rate_limited_total";
/// Counter: upload requests stored, by `kind` (`whole`, `chunk`; upload-token uploads are one or the other).
pub const UPLOADS: &str = "vidi_uploads_total";
/// Counter: bytes of the uploads above.
pub const UPLOAD_BYTES: &str = "vidi_upload_bytes_total";
/// Gauge, read from the database at each scrape: jobs by `lane` and `status` (`queued`,
/// `running`), all nodes together.
pub const JOBS: &str = "vidi_jobs";
/// Counter: job attempts this process ended, by `kind` and `outcome` (`completed`, `retried`,
/// `failed`, `gone`).
pub const JOBS_ENDED: &str = "vidi_jobs_ended_total";
/// Histogram (seconds): how long a job waited between being due and being claimed, by `lane`.
pub const QUEUE_LATENCY: &str = "vidi_job_queue_seconds";
/// Histogram (× real time): seconds of video encoded per second of wall time, by `stage`
/// (`head`, `whole`, `piece`).
pub const ENCODE_SPEED: &str = "vidi_encode_speed_ratio";
/// Counter: webhook delivery attempts, by `outcome`: `delivered`; `retried` (failed, another
/// attempt follows); `failed` (failed, given up).
pub const WEBHOOK_ATTEMPTS: &str = "vidi_webhook_attempts_total";
