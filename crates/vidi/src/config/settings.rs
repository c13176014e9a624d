//! Every setting an operator can write, and what each accepts: the one place ranges live.
//! [`super::flat`] checks values against this table when it builds the typed [`super::Config`];
//! `vidi config` prints in its order.

use std::fmt;

/// What a setting accepts.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// A whole number from `lo` to `hi` (`unit` says of what, for the message).
    Int {
        lo: u64,
        hi: u64,
        unit: &'static str,
    },
    Bool,
    /// An IP address and port, such as `127.0.0.1:8080`.
    Addr,
    /// An IP address and port, or `off` (the listener is not started).
    AddrOrOff,
    /// Any text; `required`: not empty.
    Text {
        required: bool,
    },
    /// Empty (unset), or ASCII letters, digits and `_` (a PostgreSQL schema).
    Name,
    /// One of these words.
    OneOf(&'static [&'static str]),
    /// Empty (unset), or a URL beginning with one of these.
    Url(&'static [&'static str]),
    /// `off`, or picture heights in pixels (from 16 to 4320) separated by commas.
    Heights,
}

/// One setting: its key in the file (`workers`), and so its variable (`VIDI_WORKERS`).
#[derive(Clone, Copy, Debug)]
pub struct Setting {
    pub key: &'static str,
    /// The section of [`super::Config`] it lands in (for `vidi config`).
    pub section: &'static str,
    pub kind: Kind,
}

impl Setting {
    /// The environment variable of this setting.
    pub fn env_name(&self) -> String {
        format!("VIDI_{}", self.key.to_ascii_uppercase())
    }

    /// What is accepted, for the message of a refused value.
    pub fn expected(&self) -> String {
        match self.kind {
            Kind::Int { lo, hi, unit: "" } => format!("a whole number from {lo} to {hi}"),
            Kind::Int { lo, hi, unit } => format!("a whole number of {unit} from {lo} to {hi}"),
            Kind::Bool => "true or false".into(),
            Kind::Addr => "an IP address and port, such as 127.0.0.1:8080 or [::]:8080".into(),
            Kind::AddrOrOff => "an IP address and port, such as 0.0.0.0:1935, or off".into(),
            Kind::Text { required: true } => "a non-empty text".into(),
            Kind::Text { required: false } => "a text".into(),
            Kind::Name => "ASCII letters, digits and _".into(),
            Kind::OneOf(words) => format!("one of {}", words.join(", ")),
            Kind::Url(schemes) => format!("empty or a URL beginning with {}", schemes.join(" or ")),
            Kind::Heights => "off, or picture heights from 16 to 4320 separated by commas, such as 480,240".into(),
        }
    }
}

const fn int(key: &'static str, section: &'static str, lo: u64, hi: u64, unit: &'static str) -> Setting {
    Setting { key, section, kind: Kind::Int { lo, hi, unit } }
}

const fn text(key: &'static str, section: &'static str, required: bool) -> Setting {
    Setting { key, section, kind: Kind::Text { required } }
}

const fn of(key: &'static str, section: &'static str, kind: Kind) -> Setting {
    Setting { key, section, kind }
}

const HOUR: u64 = 3600;
const DAY: u64 = 24 * HOUR;
/// A generous bound on counts of workers and connections: past it a value is a typo.
const MANY: u64 = 1_000_000;
/// The contract's largest source, 50 GB.
const MAX_SOURCE: u64 = vidi_core::upload::MAX_TOTAL_BYTES;

/// x264's presets, fastest first.
pub const X264_PRESETS: &[&str] =
    &["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo"];

/// Every setting, by section. Zero is accepted only where it means something (documented in
/// the README): an API-only node, no cache, no splitting, no minimum rate, no grace.
pub const SETTINGS: &[Setting] = &[
    of("http_addr", "http", Kind::Addr),
    of("public_url", "http", Kind::Url(&["http://", "https://"])),
    text("tls_cert", "http", false),
    text("tls_key", "http", false),
    int("header_timeout_secs", "http", 1, HOUR, "seconds"),
    int("body_idle_secs", "http", 1, HOUR, "seconds"),
    int("max_connections", "http", 1, MANY, "connections"),
    int("shutdown_grace_secs", "http", 0, HOUR, "seconds"),
    of("database_url", "database", Kind::Url(&["postgres://", "postgresql://", "sqlite:"])),
    of("database_schema", "database", Kind::Name),
    text("data_dir", "storage", true),
    of("storage_url", "storage", Kind::Url(&["s3://", "file://"])),
    text("s3_endpoint", "storage", false),
    text("s3_region", "storage", false),
    int("max_request_bytes", "uploads", 1, MAX_SOURCE, "bytes"),
    int("max_source_bytes", "uploads", 1, MAX_SOURCE, "bytes"),
    int("quota_bytes", "uploads", 0, 1 << 50, "bytes"),
    int("claim_stale_secs", "uploads", 1, DAY, "seconds"),
    int("assembly_wait_secs", "uploads", 0, HOUR, "seconds"),
    int("import_timeout_secs", "imports", 1, 7 * DAY, "seconds"),
    int("import_min_rate", "imports", 0, 1 << 40, "bytes per second"),
    int("import_rate_window_secs", "imports", 1, HOUR, "seconds"),
    int("access_token_ttl", "auth", 1, 365 * DAY, "seconds"),
    int("key_cache_secs", "auth", 0, 30, "seconds"),
    int("segment_cache_bytes", "delivery", 0, 1 << 40, "bytes"),
    int("visibility_cache_ms", "delivery", 0, 1000, "milliseconds"),
    int("workers", "jobs", 0, MANY, "workers"),
    int("head_workers", "jobs", 1, MANY, "workers"),
    int("short_workers", "jobs", 0, MANY, "workers"),
    int("job_stale_secs", "jobs", 1, DAY, "seconds"),
    int("job_retry_secs", "jobs", 1, DAY, "seconds"),
    int("job_timeout_secs", "jobs", 1, 30 * DAY, "seconds"),
    int("follow_timeout_secs", "jobs", 1, HOUR, "seconds"),
    text("ffmpeg", "encoding", true),
    text("ffprobe", "encoding", true),
    of("media_sandbox", "encoding", Kind::Bool),
    of("x264_preset", "encoding", Kind::OneOf(X264_PRESETS)),
    int("piece_secs", "encoding", 0, HOUR, "seconds"),
    int("parallel_pieces", "encoding", 0, 1024, "pieces"),
    int("encode_memory_bytes", "encoding", 0, 1 << 44, "bytes"),
    int("encode_cpu_secs", "encoding", 0, 30 * DAY, "seconds"),
    of("outbound_allow_private", "outbound", Kind::Bool),
    int("webhook_limit", "webhooks", 0, 100_000, "webhooks"),
    int("webhook_concurrency", "webhooks", 1, MANY, "requests"),
    int("webhook_per_endpoint", "webhooks", 1, MANY, "requests"),
    int("webhook_timeout_secs", "webhooks", 1, HOUR, "seconds"),
    int("webhook_retry_base_ms", "webhooks", 1, HOUR * 1000, "milliseconds"),
    int("webhook_retry_hours", "webhooks", 1, 30 * 24, "hours"),
    int("webhook_poll_ms", "webhooks", 10, 60_000, "milliseconds"),
    of("rtmp_addr", "live", Kind::AddrOrOff),
    of("rtmps_addr", "live", Kind::AddrOrOff),
    int("live_reconnect_secs", "live", 0, HOUR, "seconds"),
    int("live_part_ms", "live", 200, 333, "milliseconds"),
    int("live_segment_secs", "live", 1, 10, "seconds"),
    int("live_heartbeat_secs", "live", 1, 60, "seconds"),
    int("live_stale_secs", "live", 2, HOUR, "seconds"),
    of("live_ladder", "live", Kind::Heights),
    int("collect_rate", "analytics", 0, MANY, "requests per second"),
    of("trusted_proxy", "analytics", Kind::Bool),
    text("geoip_db", "analytics", false),
    int("analytics_retention_days", "analytics", 0, 36_500, "days"),
    of("log_format", "ops", Kind::OneOf(&["text", "json"])),
    text("metrics_addr", "ops", false),
    of("metrics", "ops", Kind::OneOf(&["on", "off"])),
    of("rate_limit", "ops", Kind::OneOf(&["on", "off"])),
    int("rate_limit_reads", "ops", 1, MANY, "requests per minute"),
    int("rate_limit_writes", "ops", 1, MANY, "requests per minute"),
    int("rate_limit_uploads", "ops", 1, MANY, "requests per minute"),
];

/// The setting with this file key.
pub fn setting(key: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.key == key)
}

/// A configuration that cannot be used. Its message is one line, naming the setting as the
/// operator wrote it (`VIDI_WORKERS=abc`, or `workers = "abc"` and the file) and what is
/// accepted, so `main` prints it as it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_ranges_and_keys_unique() {
        for (i, s) in SETTINGS.iter().enumerate() {
            assert!(SETTINGS[..i].iter().all(|t| t.key != s.key), "{} twice", s.key);
            if let Kind::Int { lo, hi, .. } = s.kind {
                assert!(lo <= hi, "{}", s.key);
            }
        }
    }
}
