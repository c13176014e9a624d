//! `vidi config`: the effective configuration, as the variables that would give it, with where
//! each value came from and every secret masked.

use std::fmt::Write;
use std::path::Path;

use super::flat::{self, Flat, Origin};
use super::settings::{ConfigError, SETTINGS};

/// The log filter when `VIDI_LOG` is unset (read by `main`, not a [`super::Config`] setting).
pub const LOG_DEFAULT: &str = "info,sqlx=warn";

/// What a password or secret is printed as.
const MASK: &str = "********";

/// Loads the configuration as [`super::Config::load_from`] does (refusing what it refuses), and
/// prints it: a `# section` line, then one `VIDI_NAME=value` line per setting, followed by
/// `# from …` where the value is not the default.
pub fn describe(file: Option<&Path>, env: &[(String, String)]) -> Result<String, ConfigError> {
    let (cfg, origins) = flat::load(file, env)?;
    let values = serde_json::to_value(Flat::from(&cfg)).expect("a struct of plain fields");
    let mut out = String::new();
    let mut section = "";
    for s in SETTINGS {
        if s.section != section {
            section = s.section;
            let _ = writeln!(out, "# {section}");
        }
        let value = match &values[s.key] {
            serde_json::Value::String(v) => mask(v),
            v => v.to_string(),
        };
        let _ = match origins.of(s.key) {
            Origin::Default if s.key == "s3_endpoint" && cfg.storage.s3_endpoint.is_some() => {
                writeln!(out, "{}={value}  # from AWS_ENDPOINT_URL", s.env_name())
            }
            Origin::Default => writeln!(out, "{}={value}", s.env_name()),
            Origin::Env(name) => writeln!(out, "{}={value}  # from {name}", s.env_name()),
            Origin::File(path) => writeln!(out, "{}={value}  # from {}", s.env_name(), path.display()),
        };
    }
    let log = env.iter().find(|(k, _)| k == "VIDI_LOG").map(|(_, v)| v.as_str());
    let _ = writeln!(out, "# process\nVIDI_LOG={}", log.unwrap_or(LOG_DEFAULT));
    Ok(out)
}

/// `value` with any password it holds replaced: the one of a URL's user information
/// (`postgres://vidi:secret@db/vidi`), and query parameters that carry one (`?password=…`).
/// S3 credentials are never in the configuration: the S3 client reads them from `AWS_*`.
fn mask(value: &str) -> String {
    let Ok(mut url) = url::Url::parse(value) else { return value.to_string() };
    let mut changed = false;
    if url.password().is_some() {
        changed = url.set_password(Some(MASK)).is_ok();
    }
    let secret = |k: &str| {
        let k = k.to_ascii_lowercase();
        ["password", "passwd", "secret", "token", "key"].iter().any(|s| k.contains(s))
    };
    if url.query_pairs().any(|(k, _)| secret(&k)) {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if secret(&k) { MASK.to_string() } else { v.into_owned() };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
        changed = true;
    }
    if changed { url.to_string() } else { value.to_string() }
}

#[cfg(test)]
mod tests {
    use super::mask;

    #[test]
    fn masks_passwords_in_urls() {
        assert_eq!(mask("postgres://vidi:s3cret@db:5432/vidi"), "postgres://vidi:********@db:5432/vidi");
        let q = mask("postgres://db/vidi?user=vidi&password=s3cret&sslmode=require");
        assert!(!q.contains("s3cret") && q.contains("sslmode=require") && q.contains("user=vidi"), "{q}");
        assert_eq!(mask("postgres://vidi@db/vidi"), "postgres://vidi@db/vidi");
        assert_eq!(mask("s3://bucket/prefix"), "s3://bucket/prefix");
        assert_eq!(mask("veryfast"), "veryfast");
    }
}
