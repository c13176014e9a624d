//! Configuration as an operator meets it: every variable the README documents takes effect, and
//! a value that cannot work stops the process with one line naming the setting as written.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use vidi::Config;
use vidi::config::{Kind, SETTINGS};

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn load(pairs: &[(&str, &str)]) -> Result<Config, String> {
    Config::load_from(None, &env(pairs)).map_err(|e| e.to_string())
}

/// `vidi config` with only `vars` in its environment, in an empty folder (no `vidi.toml`), with
/// backtraces asked for: a refusal must still be one line.
fn vidi_config(vars: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_vidi"));
    c.env_clear().current_dir(dir.path()).env("RUST_BACKTRACE", "1").args(args).arg("config");
    for (k, v) in vars {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// What every documented variable must do: set to `value` (with `with` beside it), the loaded
/// configuration satisfies `took`, which the defaults do not.
struct Case {
    var: &'static str,
    value: &'static str,
    with: &'static [(&'static str, &'static str)],
    took: fn(&Config) -> bool,
}

const fn case(var: &'static str, value: &'static str, took: fn(&Config) -> bool) -> Case {
    Case { var, value, with: &[], took }
}

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// One row per variable of the README's configuration table (`VIDI_LOG` and `VIDI_CONFIG` are
/// read by the binary, and checked through it below).
const CASES: &[Case] = &[
    case("VIDI_HTTP_ADDR", "0.0.0.0:9000", |c| c.http.addr.to_string() == "0.0.0.0:9000"),
    case("VIDI_DATA_DIR", "/srv/vidi", |c| c.storage.data_dir == Path::new("/srv/vidi")),
    case("VIDI_DATABASE_URL", "postgres://vidi@db/vidi", |c| {
        c.database.url.as_deref() == Some("postgres://vidi@db/vidi")
    }),
    case("VIDI_DATABASE_SCHEMA", "tenant_a", |c| c.database.schema.as_deref() == Some("tenant_a")),
    case("VIDI_STORAGE_URL", "s3://bucket/p", |c| c.storage.url.as_deref() == Some("s3://bucket/p")),
    case("VIDI_S3_ENDPOINT", "http://minio:9000", |c| c.storage.s3_endpoint.as_deref() == Some("http://minio:9000")),
    case("VIDI_S3_REGION", "eu-west-3", |c| c.storage.s3_region.as_deref() == Some("eu-west-3")),
    case("VIDI_PUBLIC_URL", "https://v.example/", |c| c.http.public_url.as_deref() == Some("https://v.example")),
    Case {
        var: "VIDI_TLS_CERT",
        value: "/tls/cert.pem",
        with: &[("VIDI_TLS_KEY", "/tls/key.pem")],
        took: |c| c.http.tls.as_ref().is_some_and(|t| t.cert == Path::new("/tls/cert.pem")),
    },
    Case {
        var: "VIDI_TLS_KEY",
        value: "/tls/key.pem",
        with: &[("VIDI_TLS_CERT", "/tls/cert.pem")],
        took: |c| c.http.tls.as_ref().is_some_and(|t| t.key == Path::new("/tls/key.pem")),
    },
    case("VIDI_HEADER_TIMEOUT_SECS", "3", |c| c.http.header_timeout == secs(3)),
    case("VIDI_BODY_IDLE_SECS", "4", |c| c.http.body_idle == secs(4)),
    case("VIDI_MAX_CONNECTIONS", "100", |c| c.http.max_connections == 100),
    case("VIDI_MAX_REQUEST_BYTES", "1048576", |c| c.uploads.max_request_bytes == 1 << 20),
    case("VIDI_MAX_SOURCE_BYTES", "2097152", |c| c.uploads.max_source_bytes == 2 << 20),
    case("VIDI_QUOTA_BYTES", "1000", |c| c.uploads.quota_bytes == 1000),
    case("VIDI_ASSEMBLY_WAIT_SECS", "0", |c| c.uploads.assembly_wait.is_zero()),
    case("VIDI_OUTBOUND_ALLOW_PRIVATE", "true", |c| c.outbound.allow_private),
    case("VIDI_IMPORT_TIMEOUT_SECS", "60", |c| c.imports.timeout == secs(60)),
    case("VIDI_IMPORT_MIN_RATE", "0", |c| c.imports.min_rate == 0),
    case("VIDI_IMPORT_RATE_WINDOW_SECS", "5", |c| c.imports.rate_window == secs(5)),
    case("VIDI_MEDIA_SANDBOX", "false", |c| !c.encoding.sandbox),
    case("VIDI_ACCESS_TOKEN_TTL", "60", |c| c.auth.access_token_ttl == secs(60)),
    case("VIDI_KEY_CACHE_SECS", "0", |c| c.auth.key_cache.is_zero()),
    case("VIDI_VISIBILITY_CACHE_MS", "250", |c| c.delivery.visibility_cache == Duration::from_millis(250)),
    case("VIDI_CLAIM_STALE_SECS", "5", |c| c.uploads.claim_stale == secs(5)),
    case("VIDI_WORKERS", "0", |c| c.jobs.workers == 0),
    case("VIDI_HEAD_WORKERS", "3", |c| c.jobs.head_workers == 3),
    case("VIDI_SHORT_WORKERS", "0", |c| c.jobs.short_workers == 0),
    case("VIDI_X264_PRESET", "medium", |c| c.encoding.x264_preset == "medium"),
    case("VIDI_JOB_STALE_SECS", "9", |c| c.jobs.stale_after == secs(9)),
    case("VIDI_JOB_RETRY_SECS", "2", |c| c.jobs.retry_base == secs(2)),
    case("VIDI_JOB_TIMEOUT_SECS", "600", |c| c.jobs.timeout == secs(600)),
    case("VIDI_SHUTDOWN_GRACE_SECS", "0", |c| c.http.shutdown_grace.is_zero()),
    case("VIDI_FOLLOW_TIMEOUT_SECS", "7", |c| c.jobs.follow_timeout == secs(7)),
    case("VIDI_PIECE_SECS", "0", |c| c.encoding.piece_secs == 0),
    case("VIDI_PARALLEL_PIECES", "999", |c| c.encoding.parallel_pieces == 999),
    case("VIDI_ENCODE_MEMORY_BYTES", "1073741824", |c| c.encoding.memory_bytes == 1 << 30),
    case("VIDI_ENCODE_CPU_SECS", "900", |c| c.encoding.cpu_secs == 900),
    case("VIDI_SEGMENT_CACHE_BYTES", "0", |c| c.delivery.segment_cache_bytes == 0),
    case("VIDI_FFMPEG", "/opt/ffmpeg", |c| c.encoding.ffmpeg == "/opt/ffmpeg"),
    case("VIDI_FFPROBE", "/opt/ffprobe", |c| c.encoding.ffprobe == "/opt/ffprobe"),
    case("VIDI_WEBHOOK_LIMIT", "3", |c| c.webhooks.limit == 3),
    case("VIDI_WEBHOOK_CONCURRENCY", "8", |c| c.webhooks.concurrency == 8),
    case("VIDI_WEBHOOK_PER_ENDPOINT", "1", |c| c.webhooks.per_endpoint == 1),
    case("VIDI_WEBHOOK_TIMEOUT_SECS", "2", |c| c.webhooks.timeout == secs(2)),
    case("VIDI_WEBHOOK_RETRY_BASE_MS", "100", |c| c.webhooks.retry_base == Duration::from_millis(100)),
    case("VIDI_WEBHOOK_RETRY_HOURS", "2", |c| c.webhooks.retry_window == secs(2 * 3600)),
    case("VIDI_WEBHOOK_POLL_MS", "50", |c| c.webhooks.poll == Duration::from_millis(50)),
    case("VIDI_RTMP_ADDR", "off", |c| c.live.rtmp_addr.is_none()),
    Case {
        var: "VIDI_RTMPS_ADDR",
        value: "0.0.0.0:1936",
        with: &[("VIDI_TLS_CERT", "/tls/cert.pem"), ("VIDI_TLS_KEY", "/tls/key.pem")],
        took: |c| c.live.rtmps_addr.is_some_and(|a| a.port() == 1936),
    },
    case("VIDI_LIVE_RECONNECT_SECS", "0", |c| c.live.reconnect_grace.is_zero()),
    case("VIDI_LIVE_PART_MS", "250", |c| c.live.part_target == Duration::from_millis(250)),
    case("VIDI_LIVE_SEGMENT_SECS", "4", |c| c.live.segment_target == secs(4)),
    case("VIDI_LIVE_HEARTBEAT_SECS", "1", |c| c.live.heartbeat == secs(1)),
    case("VIDI_LIVE_STALE_SECS", "5", |c| c.live.stale_after == secs(5)),
    case("VIDI_LIVE_LADDER", "240, 480,240", |c| c.live.ladder == [480, 240]),
    case("VIDI_COLLECT_RATE", "0", |c| c.analytics.collect_rate == 0),
    case("VIDI_TRUSTED_PROXY", "true", |c| c.analytics.trusted_proxy),
    case("VIDI_ANALYTICS_RETENTION_DAYS", "90", |c| c.analytics.retention == Some(secs(90 * 86_400))),
    case("VIDI_GEOIP_DB", "/var/lib/GeoLite2-City.mmdb", |c| {
        c.analytics.geoip_db.as_deref() == Some(std::path::Path::new("/var/lib/GeoLite2-City.mmdb"))
    }),
    case("VIDI_LOG_FORMAT", "json", |c| c.ops.log_json),
    case("VIDI_METRICS", "off", |c| !c.ops.metrics),
    case("VIDI_METRICS_ADDR", "127.0.0.1:9100", |c| {
        c.ops.metrics_addr.map(|a| a.to_string()).as_deref() == Some("127.0.0.1:9100")
    }),
    case("VIDI_RATE_LIMIT", "off", |c| c.ops.rate_limits.is_none()),
    case("VIDI_RATE_LIMIT_READS", "60", |c| c.ops.rate_limits.is_some_and(|l| l.reads == 60)),
    case("VIDI_RATE_LIMIT_WRITES", "30", |c| c.ops.rate_limits.is_some_and(|l| l.writes == 30)),
    case("VIDI_RATE_LIMIT_UPLOADS", "10", |c| c.ops.rate_limits.is_some_and(|l| l.uploads == 10)),
];

/// Read by the binary rather than [`Config`]: tested through it.
const BINARY_ONLY: &[&str] = &["VIDI_LOG", "VIDI_CONFIG"];

/// The variables named in the first column of the README's configuration table.
fn readme_variables() -> Vec<String> {
    let readme = include_str!("../../../../README.md");
    let table = readme.split("## Configuration").nth(1).expect("a Configuration section");
    let mut names = Vec::new();
    for row in table.lines().take_while(|l| !l.starts_with("## ")).filter(|l| l.starts_with("| `VIDI_")) {
        let first = row.split('|').nth(1).unwrap();
        for name in first.split('`').filter(|s| s.starts_with("VIDI_")) {
            names.push(name.to_string());
        }
    }
    names
}

#[test]
fn every_documented_variable_takes_effect() {
    let documented = readme_variables();
    assert!(documented.len() >= 40, "the README table was not found: {documented:?}");
    let defaults = load(&[]).unwrap();
    assert_eq!(defaults, Config::default(), "the defaults layer is the typed defaults");
    for var in &documented {
        if BINARY_ONLY.contains(&var.as_str()) {
            continue;
        }
        let case = CASES.iter().find(|c| c.var == var).unwrap_or_else(|| panic!("{var}: in the README, not in CASES"));
        assert!(!(case.took)(&defaults), "{var}: the test value is the default");
        let mut vars = vec![(case.var, case.value)];
        vars.extend_from_slice(case.with);
        let cfg = load(&vars).unwrap_or_else(|e| panic!("{var}={}: {e}", case.value));
        assert!((case.took)(&cfg), "{var}={} did not take effect", case.value);
    }
    // And the other way: no setting, and no row of this test, the README does not document.
    for s in SETTINGS {
        assert!(documented.contains(&s.env_name()), "{} is not in the README's table", s.env_name());
    }
    for c in CASES {
        assert!(documented.iter().any(|d| d == c.var), "{} is in CASES, not in the README", c.var);
    }
    for var in BINARY_ONLY {
        assert!(documented.iter().any(|d| d == var), "{var} is not in the README");
    }
}

#[test]
fn the_readme_states_every_range() {
    let readme = include_str!("../../../../README.md");
    for s in SETTINGS {
        let Kind::Int { lo, hi, .. } = s.kind else { continue };
        let name = s.env_name();
        let row = readme.lines().find(|l| l.starts_with(&format!("| `{name}`"))).expect("a row");
        let accepts = row.split(" | ").nth(2).unwrap();
        assert_eq!(accepts, format!("{lo}–{hi}"), "{name}: the README's range differs from the code's");
    }
}

#[test]
fn the_binary_reads_vidi_config_and_vidi_log() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("node.toml");
    std::fs::write(&file, "workers = 7\nhttp_addr = \"0.0.0.0:9000\"\n").unwrap();
    let out = vidi_config(&[("VIDI_CONFIG", file.to_str().unwrap()), ("VIDI_LOG", "debug")], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(&format!("VIDI_WORKERS=7  # from {}", file.display())), "{stdout}");
    assert!(stdout.contains("VIDI_HTTP_ADDR=0.0.0.0:9000"), "{stdout}");
    assert!(stdout.lines().any(|l| l == "VIDI_LOG=debug"), "{stdout}");
    // The environment wins over the file.
    let out = vidi_config(&[("VIDI_CONFIG", file.to_str().unwrap()), ("VIDI_WORKERS", "3")], &[]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("VIDI_WORKERS=3  # from VIDI_WORKERS"));
}

#[test]
fn vidi_config_masks_secrets() {
    let out = vidi_config(
        &[
            ("VIDI_DATABASE_URL", "postgres://vidi:hunter2@db:5432/vidi?password=hunter3"),
            ("AWS_SECRET_ACCESS_KEY", "aws-secret"),
            ("AWS_ENDPOINT_URL", "http://minio:9000"),
        ],
        &[],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!stdout.contains("hunter") && !stdout.contains("aws-secret"), "{stdout}");
    assert!(stdout.contains("VIDI_DATABASE_URL=postgres://vidi:********@db:5432/vidi"), "{stdout}");
    assert!(stdout.contains("VIDI_S3_ENDPOINT=http://minio:9000  # from AWS_ENDPOINT_URL"), "{stdout}");
    // One line per setting, each under its section.
    for s in SETTINGS {
        assert!(stdout.lines().any(|l| l.starts_with(&format!("{}=", s.env_name()))), "{}: {stdout}", s.env_name());
        assert!(stdout.contains(&format!("# {}\n", s.section)));
    }
}

/// Values that cannot work, each with what the refusal must say: the variable as written and
/// what it accepts. Zeros that would mean nothing are among them.
const BAD: &[(&str, &str, &str)] = &[
    ("VIDI_WORKERS", "abc", "from 0 to"),
    ("VIDI_WORKERS", "-1", "from 0 to"),
    ("VIDI_WORKERS", "2.5", "from 0 to"),
    ("VIDI_WORKERS", "", "from 0 to"),
    ("VIDI_HTTP_ADDR", "nonsense", "IP address and port"),
    ("VIDI_HTTP_ADDR", "127.0.0.1", "IP address and port"),
    ("VIDI_HTTP_ADDR", "127.0.0.1:99999", "IP address and port"),
    ("VIDI_HEADER_TIMEOUT_SECS", "0", "seconds from 1 to 3600"),
    ("VIDI_BODY_IDLE_SECS", "0", "seconds from 1 to 3600"),
    ("VIDI_MAX_CONNECTIONS", "0", "from 1 to"),
    ("VIDI_HEAD_WORKERS", "0", "from 1 to"),
    ("VIDI_JOB_STALE_SECS", "0", "from 1 to"),
    ("VIDI_JOB_TIMEOUT_SECS", "0", "from 1 to"),
    ("VIDI_IMPORT_TIMEOUT_SECS", "0", "from 1 to"),
    ("VIDI_WEBHOOK_CONCURRENCY", "0", "from 1 to"),
    ("VIDI_WEBHOOK_TIMEOUT_SECS", "0", "from 1 to"),
    ("VIDI_WEBHOOK_RETRY_BASE_MS", "0", "from 1 to"),
    ("VIDI_WEBHOOK_RETRY_HOURS", "0", "from 1 to 720"),
    ("VIDI_WEBHOOK_POLL_MS", "5", "from 10 to 60000"),
    ("VIDI_RTMP_ADDR", "1935", "or off"),
    ("VIDI_RTMPS_ADDR", "0.0.0.0:1936", "VIDI_TLS_CERT and VIDI_TLS_KEY"),
    ("VIDI_LIVE_PART_MS", "500", "milliseconds from 200 to 333"),
    ("VIDI_LIVE_SEGMENT_SECS", "0", "seconds from 1 to 10"),
    ("VIDI_LIVE_HEARTBEAT_SECS", "0", "seconds from 1 to 60"),
    ("VIDI_LIVE_LADDER", "480p", "such as 480,240"),
    ("VIDI_ACCESS_TOKEN_TTL", "0", "from 1 to"),
    ("VIDI_KEY_CACHE_SECS", "31", "seconds from 0 to 30"),
    ("VIDI_VISIBILITY_CACHE_MS", "5000", "milliseconds from 0 to 1000"),
    ("VIDI_MEDIA_SANDBOX", "maybe", "true or false"),
    ("VIDI_OUTBOUND_ALLOW_PRIVATE", "1", "true or false"),
    ("VIDI_X264_PRESET", "superduper", "one of ultrafast"),
    ("VIDI_PUBLIC_URL", "vidi.example.com", "http:// or https://"),
    ("VIDI_DATABASE_URL", "mysql://db/vidi", "postgres://"),
    ("VIDI_STORAGE_URL", "gs://bucket", "s3://"),
    ("VIDI_FFMPEG", "", "non-empty"),
    ("VIDI_DATA_DIR", "", "non-empty"),
    ("VIDI_DATABASE_SCHEMA", "a;drop", "letters, digits"),
];

#[test]
fn each_bad_value_is_refused_naming_the_variable() {
    for (var, value, says) in BAD {
        let e = load(&[(*var, *value)]).expect_err(&format!("{var}={value} accepted"));
        assert!(e.starts_with(&format!("invalid {var}={value}: expected ")), "{var}={value}: {e}");
        assert!(e.contains(says), "{var}={value}: {e}");
    }
    // Every number's bounds, from the table of ranges: one below, one above, and not a number.
    for s in SETTINGS {
        let Kind::Int { lo, hi, .. } = s.kind else { continue };
        let name = s.env_name();
        let range = format!("from {lo} to {hi}");
        let mut bad = vec![(hi + 1).to_string(), "ten".to_string()];
        if lo > 0 {
            bad.push((lo - 1).to_string());
        }
        for v in bad {
            let e = load(&[(name.as_str(), v.as_str())]).expect_err(&format!("{name}={v} accepted"));
            assert!(e.starts_with(&format!("invalid {name}={v}: ")) && e.ends_with(&range), "{e}");
        }
        for v in [lo, hi] {
            load(&[(name.as_str(), v.to_string().as_str())]).unwrap_or_else(|e| panic!("{name}={v}: {e}"));
        }
    }
}

#[test]
fn the_binary_refuses_in_one_line_without_a_backtrace() {
    for (var, value, says) in BAD {
        let out = vidi_config(&[(*var, *value)], &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{var}={value}: {stderr}");
        assert!(out.stdout.is_empty(), "{var}={value}");
        assert_eq!(stderr.lines().count(), 1, "{var}={value}: {stderr}");
        assert!(stderr.starts_with(&format!("error: invalid {var}={value}: expected ")), "{stderr}");
        assert!(stderr.contains(says) && !stderr.contains("backtrace"), "{stderr}");
    }
    // `serve` refuses the same way, before opening anything.
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vidi"))
        .env_clear()
        .current_dir(dir.path())
        .env("VIDI_HEADER_TIMEOUT_SECS", "0")
        .arg("serve")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr.trim_end(),
        "error: invalid VIDI_HEADER_TIMEOUT_SECS=0: expected a whole number of seconds from 1 to 3600"
    );
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "nothing was created");
}

#[test]
fn a_bad_value_in_the_file_is_named_as_written_there() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vidi.toml");
    let check = |toml: &str, vars: &[(&str, &str)]| {
        std::fs::write(&file, toml).unwrap();
        Config::load_from(Some(&file), &env(vars)).map_err(|e| e.to_string())
    };
    let at = file.display();
    assert_eq!(
        check("header_timeout_secs = 0\n", &[]).unwrap_err(),
        format!("invalid header_timeout_secs = 0 in {at}: expected a whole number of seconds from 1 to 3600")
    );
    let e = check("workers = \"many\"\n", &[]).unwrap_err();
    assert!(e.starts_with(&format!("invalid workers = \"many\" in {at}: expected a whole number")), "{e}");
    let e = check("http_addr = \"localhost\"\n", &[]).unwrap_err();
    assert!(e.starts_with(&format!("invalid http_addr = \"localhost\" in {at}")), "{e}");
    let e = check("tls_cert = \"/c.pem\"\n", &[]).unwrap_err();
    assert!(e.starts_with(&format!("tls_cert = \"/c.pem\" in {at} is set but VIDI_TLS_KEY is not")), "{e}");
    // A misspelt key would otherwise leave the default in place, silently.
    let e = check("worker = 3\n", &[]).unwrap_err();
    assert_eq!(
        e,
        format!("unknown setting `worker` in {at}: the settings are listed in the README's configuration table")
    );
    // The environment overrides the file, a bad value in it included.
    let cfg = check("header_timeout_secs = 0\nworkers = 4\n", &[("VIDI_HEADER_TIMEOUT_SECS", "5")]).unwrap();
    assert_eq!((cfg.http.header_timeout, cfg.jobs.workers), (secs(5), 4));
    // Through the binary: one line, the file named.
    let out = vidi_config(&[], &["--config", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: invalid header_timeout_secs = 0 in "), "{stderr}");
    // A file given but missing is an error too, on one line.
    let out = vidi_config(&[], &["--config", "/nonexistent/vidi.toml"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: /nonexistent/vidi.toml: "), "{stderr}");
    // So is a file that is not TOML, without the excerpt TOML's parser draws.
    std::fs::write(&file, "workers = \n").unwrap();
    let out = vidi_config(&[], &["--config", file.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with(&format!("error: {at}: TOML parse error")), "{stderr}");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn variables_keep_their_documented_meanings_of_zero() {
    let cfg = load(&[("VIDI_PARALLEL_PIECES", "0")]).unwrap();
    assert!(cfg.encoding.parallel_pieces >= 1, "0: one per core");
    let cfg = load(&[("VIDI_DATABASE_SCHEMA", "2024"), ("VIDI_S3_REGION", "true")]).unwrap();
    assert_eq!((cfg.database.schema.as_deref(), cfg.storage.s3_region.as_deref()), (Some("2024"), Some("true")));
    let cfg = load(&[("vidi_workers", "5")]).unwrap();
    assert_eq!(cfg.jobs.workers, 5, "the prefix in any case, as before");
    let cfg = load(&[("AWS_ENDPOINT_URL", "http://a:1"), ("VIDI_S3_ENDPOINT", "http://b:2")]).unwrap();
    assert_eq!(cfg.storage.s3_endpoint.as_deref(), Some("http://b:2"), "VIDI_S3_ENDPOINT first");
    // Variables that are not settings (the tests' own, for one) are left alone.
    load(&[("VIDI_TEST_PG_URL", "postgres://x"), ("VIDI_CONFIG", "x.toml"), ("VIDI_LOG", "debug")]).unwrap();
}

/// `deploy/vidi.toml.example` is the file spelling of every setting: each key once, commented
/// out at its default, so an operator can uncomment a line and edit it. Loaded with every line
/// uncommented, it must give exactly the defaults (a misspelt key is refused, a wrong default or
/// a wrong type shows as a difference), and it must name every setting.
#[test]
fn the_example_file_names_every_setting_at_its_default() {
    let example = include_str!("../../../../deploy/vidi.toml.example");
    let mut keys = Vec::new();
    let mut uncommented = String::new();
    for line in example.lines() {
        // A setting line is `# key = value`; prose lines never hold ` = ` after one word.
        let Some(rest) = line.strip_prefix("# ") else { continue };
        let Some((key, _)) = rest.split_once(" = ") else { continue };
        if key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
            keys.push(key.to_string());
            uncommented.push_str(rest);
            uncommented.push('\n');
        }
    }
    for s in SETTINGS {
        let n = keys.iter().filter(|k| **k == s.key).count();
        assert_eq!(n, 1, "{} is in the example {n} times, not once", s.key);
    }
    assert_eq!(keys.len(), SETTINGS.len(), "the example has lines that are no setting: {keys:?}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vidi.toml");
    std::fs::write(&file, &uncommented).unwrap();
    let cfg = Config::load_from(Some(&file), &[]).unwrap_or_else(|e| panic!("the example, uncommented: {e}"));
    assert_eq!(cfg, Config::default(), "the example's values are not the defaults");
}
