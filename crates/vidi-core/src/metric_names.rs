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
/// Counter: a job's asks for a local copy of a source kept in S3 (see `vidi_worker::sources`), by
/// `outcome`: `downloaded` (this node had none: a download started), `shared` (this node's copy,
/// or its download in progress, served it).
pub const SOURCE_COPIES: &str = "vidi_source_copies_total";
/// Counter: bytes of the sources downloaded whole by the copies above.
pub const SOURCE_COPY_BYTES: &str = "vidi_source_copy_bytes_total";
/// Counter: webhook delivery attempts, by `outcome`: `delivered`; `retried` (failed, another
/// attempt follows); `failed` (failed, given up).
pub const WEBHOOK_ATTEMPTS: &str = "vidi_webhook_attempts_total";

// Live (vidi-live). Gauges are this node's: add them up across nodes.

/// Gauge: live streams this node is broadcasting (taking media, `broadcasting: true`).
pub const LIVE_BROADCASTING: &str = "vidi_live_broadcasting";
/// Counter: low-latency parts packaged (served from memory; not stored).
pub const LIVE_PARTS: &str = "vidi_live_parts_total";
/// Counter: live segments written to the media store, by `outcome` (`stored`, `lost`: not stored
/// after its retries, so the recording misses it).
pub const LIVE_SEGMENTS: &str = "vidi_live_segments_total";
/// Counter: live playlist and part requests that had to wait (a blocking reload with
/// `_HLS_msn`/`_HLS_part` ahead of the stream, a preload hint's part), by `outcome`: `woken`
/// (answered once the media came), `timed_out` (the blocking limit passed first).
pub const LIVE_BLOCKING_WAITS: &str = "vidi_live_blocking_waits_total";
/// Gauge: RTMP and RTMPS connections open, by `scheme`.
pub const RTMP_CONNECTIONS: &str = "vidi_rtmp_connections";
/// Counter: RTMP and RTMPS connections closed, by `scheme` and `outcome`: `finished` (the
/// publisher ended), `refused` (see below), `media` (a codec or configuration the segmenter
/// cannot take), `protocol` (malformed input, a timeout, a peer gone), `parser_panic`.
pub const RTMP_CLOSED: &str = "vidi_rtmp_connections_closed_total";
/// Counter: RTMP connections or publishers refused, by `reason`: `capacity` (the connection cap,
/// closed unread), `unknown_key`, `busy` (another publisher is live), `stopping`, `other`.
pub const RTMP_REFUSED: &str = "vidi_rtmp_refused_total";
/// Gauge: restream pushers by `state` (`connecting`, `pushing`, `retrying`, `refused`).
pub const RESTREAM_PUSHERS: &str = "vidi_restream_pushers";

// The analytics collector (`/analytics/sessions`).

/// Counter: player sessions created.
pub const COLLECTOR_SESSIONS: &str = "vidi_collector_sessions_total";
/// Counter: event batches accepted.
pub const COLLECTOR_BATCHES: &str = "vidi_collector_batches_total";
/// Counter: events accepted (in the batches above).
pub const COLLECTOR_EVENTS: &str = "vidi_collector_events_total";
/// Counter: collector requests refused, by `reason` (`malformed`, `invalid_event`, `too_large`,
/// `unknown_subject`, `unknown_session`, `closed_session`, `private`, `rate_limited`).
pub const COLLECTOR_REFUSED: &str = "vidi_collector_refused_total";
