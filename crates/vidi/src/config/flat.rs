//! The settings as operators write them, flat (`workers` in the file, `VIDI_WORKERS` in the
//! environment), read with figment and checked once into the typed [`Config`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};
use serde::{Deserialize, Serialize};

use super::settings::{ConfigError, Kind, setting};
use super::*;

/// One field per row of [`super::SETTINGS`], named by its key. Numbers are read as `u64` and
/// narrowed after their range is checked, so a value too large for its field is refused with
/// the setting's range rather than a type's.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub(super) struct Flat {
    http_addr: String,
    public_url: String,
    tls_cert: String,
    tls_key: String,
    header_timeout_secs: u64,
    body_idle_secs: u64,
    max_connections: u64,
    shutdown_grace_secs: u64,
    database_url: String,
    database_schema: String,
    data_dir: String,
    storage_url: String,
    s3_endpoint: String,
    s3_region: String,
    max_request_bytes: u64,
    max_source_bytes: u64,
    quota_bytes: u64,
    claim_stale_secs: u64,
    assembly_wait_secs: u64,
    import_timeout_secs: u64,
    import_min_rate: u64,
    import_rate_window_secs: u64,
    access_token_ttl: u64,
    key_cache_secs: u64,
    segment_cache_bytes: u64,
    visibility_cache_ms: u64,
    workers: u64,
    head_workers: u64,
    short_workers: u64,
    job_stale_secs: u64,
    job_retry_secs: u64,
    job_timeout_secs: u64,
    follow_timeout_secs: u64,
    ffmpeg: String,
    ffprobe: String,
    media_sandbox: bool,
    x264_preset: String,
    piece_secs: u64,
    parallel_pieces: u64,
    encode_memory_bytes: u64,
    encode_cpu_secs: u64,
    outbound_allow_private: bool,
    webhook_limit: u64,
    webhook_concurrency: u64,
    webhook_per_endpoint: u64,
    webhook_timeout_secs: u64,
    webhook_retry_base_ms: u64,
    webhook_retry_hours: u64,
    webhook_poll_ms: u64,
    rtmp_addr: String,
    rtmps_addr: String,
    live_reconnect_secs: u64,
    live_part_ms: u64,
    live_segment_secs: u64,
    live_heartbeat_secs: u64,
    live_stale_secs: u64,
    live_ladder: String,
    collect_rate: u64,
    trusted_proxy: bool,
    geoip_db: String,
    analytics_retention_days: u64,
    log_format: String,
    metrics_addr: String,
    metrics: String,
    rate_limit: String,
    rate_limit_reads: u64,
    rate_limit_writes: u64,
    rate_limit_uploads: u64,
}

impl Default for Flat {
    fn default() -> Self {
        Flat::from(&Config::default())
    }
}

fn text(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

impl From<&Config> for Flat {
    /// The settings that give `c`: the defaults layer, and what `vidi config` prints.
    fn from(c: &Config) -> Flat {
        // Off keeps the numbers it would use when turned on: the defaults'.
        let limits = c.ops.rate_limits.unwrap_or_default();
        let (tls_cert, tls_key) = match &c.http.tls {
            Some(t) => (t.cert.display().to_string(), t.key.display().to_string()),
            None => Default::default(),
        };
        Flat {
            http_addr: c.http.addr.to_string(),
            public_url: text(&c.http.public_url),
            tls_cert,
            tls_key,
            header_timeout_secs: c.http.header_timeout.as_secs(),
            body_idle_secs: c.http.body_idle.as_secs(),
            max_connections: c.http.max_connections as u64,
            shutdown_grace_secs: c.http.shutdown_grace.as_secs(),
            database_url: text(&c.database.url),
            database_schema: text(&c.database.schema),
            data_dir: c.storage.data_dir.display().to_string(),
            storage_url: text(&c.storage.url),
            s3_endpoint: text(&c.storage.s3_endpoint),
            s3_region: text(&c.storage.s3_region),
            max_request_bytes: c.uploads.max_request_bytes,
            max_source_bytes: c.uploads.max_source_bytes,
            quota_bytes: c.uploads.quota_bytes,
            claim_stale_secs: c.uploads.claim_stale.as_secs(),
            assembly_wait_secs: c.uploads.assembly_wait.as_secs(),
            import_timeout_secs: c.imports.timeout.as_secs(),
            import_min_rate: c.imports.min_rate,
            import_rate_window_secs: c.imports.rate_window.as_secs(),
            access_token_ttl: c.auth.access_token_ttl.as_secs(),
            key_cache_secs: c.auth.key_cache.as_secs(),
            segment_cache_bytes: c.delivery.segment_cache_bytes,
            visibility_cache_ms: c.delivery.visibility_cache.as_millis() as u64,
            workers: c.jobs.workers as u64,
            head_workers: c.jobs.head_workers as u64,
            short_workers: c.jobs.short_workers as u64,
            job_stale_secs: c.jobs.stale_after.as_secs(),
            job_retry_secs: c.jobs.retry_base.as_secs(),
            job_timeout_secs: c.jobs.timeout.as_secs(),
            follow_timeout_secs: c.jobs.follow_timeout.as_secs(),
            ffmpeg: c.encoding.ffmpeg.clone(),
            ffprobe: c.encoding.ffprobe.clone(),
            media_sandbox: c.encoding.sandbox,
            x264_preset: c.encoding.x264_preset.clone(),
            piece_secs: c.encoding.piece_secs.into(),
            parallel_pieces: c.encoding.parallel_pieces as u64,
            encode_memory_bytes: c.encoding.memory_bytes,
            encode_cpu_secs: c.encoding.cpu_secs,
            outbound_allow_private: c.outbound.allow_private,
            webhook_limit: c.webhooks.limit.into(),
            webhook_concurrency: c.webhooks.concurrency as u64,
            webhook_per_endpoint: c.webhooks.per_endpoint as u64,
            webhook_timeout_secs: c.webhooks.timeout.as_secs(),
            webhook_retry_base_ms: c.webhooks.retry_base.as_millis() as u64,
            webhook_retry_hours: c.webhooks.retry_window.as_secs() / 3600,
            webhook_poll_ms: c.webhooks.poll.as_millis() as u64,
            rtmp_addr: c.live.rtmp_addr.map_or("off".into(), |a| a.to_string()),
            rtmps_addr: c.live.rtmps_addr.map_or("off".into(), |a| a.to_string()),
            live_reconnect_secs: c.live.reconnect_grace.as_secs(),
            live_part_ms: c.live.part_target.as_millis() as u64,
            live_segment_secs: c.live.segment_target.as_secs(),
            live_heartbeat_secs: c.live.heartbeat.as_secs(),
            live_stale_secs: c.live.stale_after.as_secs(),
            live_ladder: if c.live.ladder.is_empty() {
                "off".into()
            } else {
                c.live.ladder.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
            },
            collect_rate: c.analytics.collect_rate.into(),
            trusted_proxy: c.analytics.trusted_proxy,
            geoip_db: c.analytics.geoip_db.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            analytics_retention_days: c.analytics.retention.map_or(0, |d| d.as_secs() / 86_400),
            log_format: if c.ops.log_json { "json" } else { "text" }.into(),
            metrics_addr: c.ops.metrics_addr.map(|a| a.to_string()).unwrap_or_default(),
            metrics: if c.ops.metrics { "on" } else { "off" }.into(),
            rate_limit: if c.ops.rate_limits.is_some() { "on" } else { "off" }.into(),
            rate_limit_reads: limits.reads.into(),
            rate_limit_writes: limits.writes.into(),
            rate_limit_uploads: limits.uploads.into(),
        }
    }
}

impl Flat {
    /// The typed configuration, once every value is within its range. Every range is in
    /// [`super::SETTINGS`]; the checks here only convert.
    fn check(self, o: &Origins, aws_endpoint: Option<String>) -> Result<Config, ConfigError> {
        let f = self;
        let tls = match (o.text("tls_cert", &f.tls_cert)?, o.text("tls_key", &f.tls_key)?) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some(TlsFiles { cert: cert.into(), key: key.into() }),
            (Some(_), None) => return Err(o.unpaired("tls_cert", "tls_key")),
            (None, Some(_)) => return Err(o.unpaired("tls_key", "tls_cert")),
        };
        let parallel_pieces = match o.int("parallel_pieces", f.parallel_pieces)? {
            0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            n => n as usize,
        };
        let rtmps_addr = o.addr_or_off("rtmps_addr", &f.rtmps_addr)?;
        if rtmps_addr.is_some() && tls.is_none() {
            // RTMPS uses the certificate HTTPS does.
            let why = format!(
                "invalid {}: expected VIDI_TLS_CERT and VIDI_TLS_KEY too (RTMPS uses the HTTPS certificate)",
                o.written("rtmps_addr")
            );
            return Err(ConfigError(why));
        }
        Ok(Config {
            http: Http {
                addr: o.addr("http_addr", &f.http_addr)?,
                public_url: o.text("public_url", &f.public_url)?.map(|u| u.trim_end_matches('/').to_string()),
                tls,
                header_timeout: o.secs("header_timeout_secs", f.header_timeout_secs)?,
                body_idle: o.secs("body_idle_secs", f.body_idle_secs)?,
                max_connections: o.int("max_connections", f.max_connections)? as usize,
                shutdown_grace: o.secs("shutdown_grace_secs", f.shutdown_grace_secs)?,
            },
            database: Database {
                url: o.text("database_url", &f.database_url)?,
                schema: o.text("database_schema", &f.database_schema)?,
            },
            storage: Storage {
                data_dir: o.text("data_dir", &f.data_dir)?.unwrap_or_default().into(),
                url: o.text("storage_url", &f.storage_url)?,
                s3_endpoint: o.text("s3_endpoint", &f.s3_endpoint)?.or(aws_endpoint),
                s3_region: o.text("s3_region", &f.s3_region)?,
            },
            uploads: Uploads {
                max_request_bytes: o.int("max_request_bytes", f.max_request_bytes)?,
                max_source_bytes: o.int("max_source_bytes", f.max_source_bytes)?,
                quota_bytes: o.int("quota_bytes", f.quota_bytes)?,
                claim_stale: o.secs("claim_stale_secs", f.claim_stale_secs)?,
                assembly_wait: o.secs("assembly_wait_secs", f.assembly_wait_secs)?,
            },
            imports: Imports {
                timeout: o.secs("import_timeout_secs", f.import_timeout_secs)?,
                min_rate: o.int("import_min_rate", f.import_min_rate)?,
                rate_window: o.secs("import_rate_window_secs", f.import_rate_window_secs)?,
            },
            auth: Auth {
                access_token_ttl: o.secs("access_token_ttl", f.access_token_ttl)?,
                key_cache: o.secs("key_cache_secs", f.key_cache_secs)?,
            },
            delivery: Delivery {
                segment_cache_bytes: o.int("segment_cache_bytes", f.segment_cache_bytes)?,
                visibility_cache: o.millis("visibility_cache_ms", f.visibility_cache_ms)?,
            },
            jobs: Jobs {
                workers: o.int("workers", f.workers)? as usize,
                head_workers: o.int("head_workers", f.head_workers)? as usize,
                short_workers: o.int("short_workers", f.short_workers)? as usize,
                stale_after: o.secs("job_stale_secs", f.job_stale_secs)?,
                retry_base: o.secs("job_retry_secs", f.job_retry_secs)?,
                timeout: o.secs("job_timeout_secs", f.job_timeout_secs)?,
                follow_timeout: o.secs("follow_timeout_secs", f.follow_timeout_secs)?,
            },
            encoding: Encoding {
                ffmpeg: o.text("ffmpeg", &f.ffmpeg)?.unwrap_or_default(),
                ffprobe: o.text("ffprobe", &f.ffprobe)?.unwrap_or_default(),
                sandbox: f.media_sandbox,
                x264_preset: o.text("x264_preset", &f.x264_preset)?.unwrap_or_default(),
                piece_secs: o.int("piece_secs", f.piece_secs)? as u32,
                parallel_pieces,
                memory_bytes: o.int("encode_memory_bytes", f.encode_memory_bytes)?,
                cpu_secs: o.int("encode_cpu_secs", f.encode_cpu_secs)?,
            },
            outbound: Outbound { allow_private: f.outbound_allow_private },
            webhooks: Webhooks {
                limit: o.int("webhook_limit", f.webhook_limit)? as u32,
                concurrency: o.int("webhook_concurrency", f.webhook_concurrency)? as usize,
                per_endpoint: o.int("webhook_per_endpoint", f.webhook_per_endpoint)? as usize,
                timeout: o.secs("webhook_timeout_secs", f.webhook_timeout_secs)?,
                retry_base: o.millis("webhook_retry_base_ms", f.webhook_retry_base_ms)?,
                retry_window: Duration::from_secs(o.int("webhook_retry_hours", f.webhook_retry_hours)? * 3600),
                poll: o.millis("webhook_poll_ms", f.webhook_poll_ms)?,
            },
            live: Live {
                rtmp_addr: o.addr_or_off("rtmp_addr", &f.rtmp_addr)?,
                rtmps_addr,
                reconnect_grace: o.secs("live_reconnect_secs", f.live_reconnect_secs)?,
                part_target: o.millis("live_part_ms", f.live_part_ms)?,
                segment_target: o.secs("live_segment_secs", f.live_segment_secs)?,
                heartbeat: o.secs("live_heartbeat_secs", f.live_heartbeat_secs)?,
                stale_after: o.secs("live_stale_secs", f.live_stale_secs)?,
                ladder: o.heights("live_ladder", &f.live_ladder)?,
            },
            analytics: Analytics {
                collect_rate: o.int("collect_rate", f.collect_rate)? as u32,
                trusted_proxy: f.trusted_proxy,
                geoip_db: o.text("geoip_db", &f.geoip_db)?.map(PathBuf::from),
                retention: match o.int("analytics_retention_days", f.analytics_retention_days)? {
                    0 => None,
                    days => Some(Duration::from_secs(days * 86_400)),
                },
            },
            ops: Ops {
                log_json: o.text("log_format", &f.log_format)?.as_deref() == Some("json"),
                metrics_addr: match o.text("metrics_addr", &f.metrics_addr)? {
                    Some(a) => Some(o.addr("metrics_addr", &a)?),
                    None => None,
                },
                metrics: o.text("metrics", &f.metrics)?.as_deref() != Some("off"),
                rate_limits: match o.text("rate_limit", &f.rate_limit)?.as_deref() {
                    Some("off") => None,
                    _ => Some(vidi_api::ratelimit::Limits {
                        reads: o.int("rate_limit_reads", f.rate_limit_reads)? as u32,
                        writes: o.int("rate_limit_writes", f.rate_limit_writes)? as u32,
                        uploads: o.int("rate_limit_uploads", f.rate_limit_uploads)? as u32,
                    }),
                },
            },
        })
    }
}

/// The name of the environment layer's metadata, which tells its values from the file's.
const ENV: &str = "environment variable";

/// The `VIDI_*` variables of an environment, keyed like the file (`VIDI_WORKERS` → `workers`).
/// Figment's own `Env` provider reads only the process's environment; this one reads the list
/// it is given, so that tests load exactly what the binary would.
#[derive(Clone)]
struct VidiVars {
    /// key → (the variable as written, its value as written).
    vars: HashMap<String, (String, String)>,
}

impl VidiVars {
    fn new(env: &[(String, String)]) -> VidiVars {
        let vars = env
            .iter()
            .filter_map(|(name, value)| {
                // As figment's `Env::prefixed("VIDI_")` did: the prefix in any case, the rest
                // lower-cased; names that would nest (a dot) are not settings.
                let trimmed = name.trim();
                let rest = trimmed.get(..5).filter(|p| p.eq_ignore_ascii_case("VIDI_")).and(trimmed.get(5..))?;
                let key = rest.trim().to_ascii_lowercase();
                (!key.is_empty() && !key.contains('.')).then(|| (key, (name.clone(), value.clone())))
            })
            .collect();
        VidiVars { vars }
    }
}

impl Provider for VidiVars {
    fn metadata(&self) -> Metadata {
        Metadata::named(ENV)
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let dict = self
            .vars
            .iter()
            .map(|(k, (_, v))| {
                let value = match setting(k).map(|s| s.kind) {
                    // Parsed the way figment parses variables: `8` a number, `true` a boolean.
                    Some(Kind::Int { .. } | Kind::Bool) | None => v.parse::<Value>().expect("infallible"),
                    // Text as written: `VIDI_DATABASE_SCHEMA=2024` is a name, not a number.
                    Some(_) => Value::from(v.clone()),
                };
                (k.clone(), value)
            })
            .collect();
        Ok(Profile::Default.collect(dict))
    }
}

/// Where each value came from, to name a refused one as the operator wrote it.
pub(super) struct Origins {
    fig: Figment,
    env: VidiVars,
}

/// The layer a setting's value came from.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Origin {
    Default,
    /// The variable, as written.
    Env(String),
    File(PathBuf),
}

impl Origins {
    pub(super) fn of(&self, key: &str) -> Origin {
        let Some(md) = self.fig.find_metadata(key) else { return Origin::Default };
        match (&md.source, self.env.vars.get(key)) {
            (_, Some((name, _))) if md.name == ENV => Origin::Env(name.clone()),
            (Some(Source::File(path)), _) => Origin::File(path.clone()),
            _ => Origin::Default,
        }
    }

    /// The setting and its value as the operator wrote them.
    fn written(&self, key: &str) -> String {
        let env_name = || setting(key).map_or_else(|| key.to_string(), |s| s.env_name());
        match self.of(key) {
            Origin::Env(name) => format!("{name}={}", self.env.vars[key].1),
            Origin::File(path) => {
                let value = self.fig.find_value(key).ok().and_then(|v| serde_json::to_string(&v).ok());
                format!("{key} = {} in {}", value.unwrap_or_default(), path.display())
            }
            Origin::Default => format!("{} (default)", env_name()),
        }
    }

    /// The one-line refusal of `key`'s value.
    fn refuse(&self, key: &str) -> ConfigError {
        let expected = setting(key).map_or_else(String::new, |s| s.expected());
        ConfigError(format!("invalid {}: expected {expected}", self.written(key)))
    }

    fn unpaired(&self, set: &str, unset: &str) -> ConfigError {
        let unset = setting(unset).map_or_else(String::new, |s| s.env_name());
        ConfigError(format!("{} is set but {unset} is not: set both (HTTPS) or neither (HTTP)", self.written(set)))
    }

    fn int(&self, key: &str, v: u64) -> Result<u64, ConfigError> {
        match setting(key).map(|s| s.kind) {
            Some(Kind::Int { lo, hi, .. }) if (lo..=hi).contains(&v) => Ok(v),
            _ => Err(self.refuse(key)),
        }
    }

    fn secs(&self, key: &str, v: u64) -> Result<Duration, ConfigError> {
        self.int(key, v).map(Duration::from_secs)
    }

    fn millis(&self, key: &str, v: u64) -> Result<Duration, ConfigError> {
        self.int(key, v).map(Duration::from_millis)
    }

    fn addr(&self, key: &str, v: &str) -> Result<SocketAddr, ConfigError> {
        v.trim().parse().map_err(|_| self.refuse(key))
    }

    /// An address, or `None` for `off`.
    fn addr_or_off(&self, key: &str, v: &str) -> Result<Option<SocketAddr>, ConfigError> {
        if v.trim().eq_ignore_ascii_case("off") { Ok(None) } else { self.addr(key, v).map(Some) }
    }

    /// Heights of a ladder, tallest first, duplicates dropped; `off` (or empty) for none.
    fn heights(&self, key: &str, v: &str) -> Result<Vec<u32>, ConfigError> {
        let v = v.trim();
        if v.is_empty() || v.eq_ignore_ascii_case("off") {
            return Ok(Vec::new());
        }
        let mut heights = Vec::new();
        for h in v.split(',') {
            match h.trim().parse::<u32>() {
                Ok(h) if (16..=4320).contains(&h) => heights.push(h),
                _ => return Err(self.refuse(key)),
            }
        }
        heights.sort_unstable_by(|a, b| b.cmp(a));
        heights.dedup();
        Ok(heights)
    }

    /// A text setting: `None` when empty (unset), else the text once it is acceptable.
    fn text(&self, key: &str, v: &str) -> Result<Option<String>, ConfigError> {
        let ok = match setting(key).map(|s| s.kind) {
            Some(Kind::Text { required }) => !required || !v.is_empty(),
            Some(Kind::Name) => v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            Some(Kind::OneOf(words)) => words.contains(&v),
            Some(Kind::Url(prefixes)) => {
                v.is_empty() || (prefixes.iter().any(|p| v.starts_with(p)) && url::Url::parse(v).is_ok())
            }
            _ => false,
        };
        if !ok {
            return Err(self.refuse(key));
        }
        Ok((!v.is_empty()).then(|| v.to_string()))
    }
}

/// Reads the layers and checks them: the typed configuration and where each value came from.
pub(super) fn load(file: Option<&Path>, env: &[(String, String)]) -> Result<(Config, Origins), ConfigError> {
    let toml = match file {
        Some(f) => Toml::file_exact(f),
        // As before: `vidi.toml` in this folder or the nearest parent that has one, if any.
        None => Toml::file("vidi.toml"),
    };
    refuse_unknown_keys(&toml, file)?;
    let vars = VidiVars::new(env);
    let fig = Figment::from(Serialized::defaults(Flat::default())).merge(toml).merge(vars.clone());
    let origins = Origins { fig, env: vars };
    let flat: Flat = origins.fig.extract().map_err(|e| match e.path.first() {
        Some(key) if setting(key).is_some() => origins.refuse(key),
        _ => one_line(&e),
    })?;
    let aws_endpoint =
        env.iter().find(|(k, _)| k == "AWS_ENDPOINT_URL").map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
    let cfg = flat.check(&origins, aws_endpoint)?;
    Ok((cfg, origins))
}

/// A key in the file that is no setting is refused: a misspelt key would otherwise be ignored
/// and the node started on the default. (Unknown `VIDI_*` variables are not refused: other
/// tools, the tests' among them, share the prefix.)
fn refuse_unknown_keys(toml: &figment::providers::Data<Toml>, file: Option<&Path>) -> Result<(), ConfigError> {
    let path = match toml.metadata().source {
        Some(Source::File(p)) => p.display().to_string(),
        _ => file.map_or_else(|| "vidi.toml".to_string(), |f| f.display().to_string()),
    };
    let data = toml.data().map_err(|e| ConfigError(format!("{path}: {}", one_line(&e))))?;
    for key in data.values().flat_map(|dict| dict.keys()) {
        if setting(key).is_none() {
            return Err(ConfigError(format!(
                "unknown setting `{key}` in {path}: the settings are listed in the README's configuration table"
            )));
        }
    }
    Ok(())
}

/// A figment error that is not about one setting (a missing or malformed file), on one line:
/// without the excerpt of the file a TOML parse error draws (` 1 | workers = `, `  |   ^`).
fn one_line(e: &figment::Error) -> ConfigError {
    let text = e.to_string();
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.contains('|')).collect();
    ConfigError(lines.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_has_its_row_in_settings_and_back() {
        let fields = serde_json::to_value(Flat::default()).unwrap();
        let fields: Vec<&String> = fields.as_object().unwrap().keys().collect();
        for f in &fields {
            assert!(setting(f).is_some(), "{f} has no row in SETTINGS");
        }
        for s in super::super::SETTINGS {
            assert!(fields.iter().any(|f| *f == s.key), "{} is in SETTINGS, not in Flat", s.key);
        }
    }

    #[test]
    fn the_defaults_pass_their_own_checks() {
        let (cfg, origins) = load(None, &[]).unwrap();
        assert_eq!(cfg, Config::default());
        assert_eq!(origins.of("workers"), Origin::Default);
    }
}
