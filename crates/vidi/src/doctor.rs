//! `vidi doctor`: checks what a node needs before it is started or when it misbehaves, with the
//! configuration it would run with, and says for each what it found. One line per check:
//! `ok`, `warn` (it runs, but not as it should) or `FAIL` (it would not work), then the exit
//! status is 1 if anything failed. It changes nothing but one small object it writes to the media
//! store and deletes again, and it never applies migrations.

use std::fmt::Write;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use vidi_db::Db;

use crate::Config;

/// The oldest ffmpeg the encoders' command lines are written for (Debian 12's 5.1).
const FFMPEG_MAJOR: u32 = 5;
/// Clocks further apart than this make leases and expiries unreliable across nodes.
const MAX_SKEW: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

/// One check's verdict.
#[derive(Debug)]
pub struct Finding {
    pub check: &'static str,
    pub level: Level,
    pub detail: String,
}

fn found(check: &'static str, level: Level, detail: impl Into<String>) -> Finding {
    Finding { check, level, detail: detail.into() }
}

/// Runs every check.
pub async fn run(cfg: &Config) -> Vec<Finding> {
    let mut out = vec![tool(&cfg.encoding.ffmpeg, "ffmpeg"), tool(&cfg.encoding.ffprobe, "ffprobe")];
    out.push(encoders(&cfg.encoding.ffmpeg));
    let (db, skew) = database(cfg).await;
    out.push(db);
    out.push(storage(cfg).await);
    out.push(port("port", cfg.http.addr));
    if let Some(addr) = cfg.ops.metrics_addr {
        out.push(port("metrics port", addr));
    }
    // `serve` binds the live listeners before it serves anything and stops if one is taken
    // (another Vidi, nginx-rtmp, a streaming server on 1935): say so before it does.
    if let Some(addr) = cfg.live.rtmp_addr {
        out.push(port("rtmp port", addr));
    }
    if let Some(addr) = cfg.live.rtmps_addr {
        out.push(port("rtmps port", addr));
    }
    out.push(landlock(cfg.encoding.sandbox));
    out.push(clock(skew));
    out
}

/// The report, and whether nothing failed.
pub fn report(findings: &[Finding]) -> (String, bool) {
    let mut text = String::new();
    for f in findings {
        let level = match f.level {
            Level::Ok => "ok  ",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        };
        let _ = writeln!(text, "{level} {:<13} {}", f.check, f.detail);
    }
    (text, findings.iter().all(|f| f.level != Level::Fail))
}

/// `program -version`'s first line; ffmpeg's major version checked.
fn tool(program: &str, check: &'static str) -> Finding {
    let out = match Command::new(program).args(["-hide_banner", "-version"]).output() {
        Ok(o) if o.status.success() => o,
        Ok(o) => return found(check, Level::Fail, format!("{program} -version exited with {}", o.status)),
        Err(e) => return found(check, Level::Fail, format!("{program}: {e} (VIDI_{})", check.to_uppercase())),
    };
    let first = String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or_default().to_string();
    match major_version(&first) {
        Some(v) if v >= FFMPEG_MAJOR => found(check, Level::Ok, first),
        Some(_) => found(check, Level::Fail, format!("{first}: version {FFMPEG_MAJOR} or later is needed")),
        // Builds from git say `version N-…`: the command lines may still work.
        None => found(check, Level::Warn, format!("{first}: version not recognised")),
    }
}

/// The major version in `ffmpeg version 5.1.6-0+deb12u1 Copyright …`.
pub fn major_version(line: &str) -> Option<u32> {
    let v = line.split_whitespace().skip_while(|w| *w != "version").nth(1)?;
    let v = v.trim_start_matches('n');
    v.split(['.', '-']).next()?.parse().ok()
}

/// The encoders every ladder uses.
fn encoders(program: &str) -> Finding {
    let Ok(out) = Command::new(program).args(["-hide_banner", "-encoders"]).output() else {
        return found("encoders", Level::Fail, "ffmpeg -encoders did not run");
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let missing: Vec<&str> = ["libx264", "aac", "mjpeg"]
        .into_iter()
        .filter(|e| !text.lines().any(|l| l.split_whitespace().nth(1) == Some(*e)))
        .collect();
    if missing.is_empty() {
        found("encoders", Level::Ok, "libx264, aac, mjpeg")
    } else {
        found("encoders", Level::Fail, format!("missing: {}", missing.join(", ")))
    }
}

/// The database answers with Vidi's schema; on PostgreSQL, also its clock's distance from ours.
async fn database(cfg: &Config) -> (Finding, Option<i64>) {
    let what = if cfg.database.url.is_some() { "PostgreSQL" } else { "SQLite" };
    let db = match tokio::time::timeout(
        Duration::from_secs(15),
        Db::open(cfg.database.url.as_deref(), &cfg.storage.data_dir, cfg.database.schema.as_deref()),
    )
    .await
    {
        Ok(Ok(db)) => db,
        Ok(Err(e)) => return (found("database", Level::Fail, format!("{what}: {e}")), None),
        Err(_) => return (found("database", Level::Fail, format!("{what}: no answer within 15 s")), None),
    };
    let keys = vidi_core::repo::AuthRepo::count_api_keys(&db).await;
    let skew = match db.server_time_ms().await {
        Ok(Some(theirs)) => Some(now_ms() - theirs),
        _ => None,
    };
    db.close().await;
    let finding = match keys {
        Ok(n) => found("database", Level::Ok, format!("{what}: answers, {n} API keys")),
        Err(e) => found(
            "database",
            Level::Fail,
            format!("{what} answers but Vidi's tables are not readable ({e}): run `vidi migrate`"),
        ),
    };
    (finding, skew)
}

/// The media store takes, returns and deletes a small object.
async fn storage(cfg: &Config) -> Finding {
    let what = cfg.storage.url.clone().unwrap_or_else(|| format!("{}/media", cfg.storage.data_dir.display()));
    let blobs = match crate::open_blobs(cfg).await {
        Ok(b) => b,
        Err(e) => return found("storage", Level::Fail, format!("{what}: {e:#}")),
    };
    let key = format!(".doctor/{}", uuid::Uuid::new_v4().simple());
    let check = async {
        blobs.put_bytes(&key, b"vidi doctor".to_vec()).await?;
        let size = blobs.size(&key).await?;
        blobs.delete(&key).await?;
        Ok::<_, vidi_core::CoreError>(size)
    };
    match tokio::time::timeout(Duration::from_secs(30), check).await {
        Ok(Ok(Some(11))) => found("storage", Level::Ok, format!("{what} ({}): write, read, delete", blobs.backend())),
        Ok(Ok(size)) => found("storage", Level::Fail, format!("{what}: wrote 11 bytes, read back {size:?}")),
        Ok(Err(e)) => found("storage", Level::Fail, format!("{what}: {e}")),
        Err(_) => found("storage", Level::Fail, format!("{what}: no answer within 30 s")),
    }
}

/// The address can be listened on (nothing else holds it, the user may bind it).
fn port(check: &'static str, addr: std::net::SocketAddr) -> Finding {
    match std::net::TcpListener::bind(addr) {
        Ok(_) => found(check, Level::Ok, format!("{addr} is free")),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            found(check, Level::Warn, format!("{addr} is in use (a running Vidi, or another program)"))
        }
        Err(e) => found(check, Level::Fail, format!("{addr}: {e}")),
    }
}

/// Whether ffmpeg runs in a Landlock jail (docs/security.md).
fn landlock(sandbox: bool) -> Finding {
    let abi = vidi_media::sandbox::landlock_abi();
    match (abi, sandbox) {
        (0, true) => found(
            "landlock",
            Level::Warn,
            "not available in this kernel: media tools run without their file-system jail (Linux 5.13+)",
        ),
        (0, false) => found("landlock", Level::Warn, "not available, and VIDI_MEDIA_SANDBOX=false"),
        (abi, true) => found("landlock", Level::Ok, format!("ABI {abi}: media tools run jailed")),
        (abi, false) => found("landlock", Level::Warn, format!("ABI {abi} available, but VIDI_MEDIA_SANDBOX=false")),
    }
}

/// This machine's clock: synchronised (the kernel's view), and near the database server's.
fn clock(skew_ms: Option<i64>) -> Finding {
    let synced = kernel_clock_synced();
    let skew = skew_ms.map(|s| format!(", {s:+} ms from PostgreSQL's")).unwrap_or_default();
    if let Some(s) = skew_ms
        && s.unsigned_abs() > MAX_SKEW.as_millis() as u64
    {
        return found("clock", Level::Fail, format!("{} ms from the database server's clock: run NTP on both", s));
    }
    match synced {
        Some(true) => found("clock", Level::Ok, format!("synchronised{skew}")),
        Some(false) => found("clock", Level::Warn, format!("not synchronised (no NTP?){skew}")),
        None => found("clock", Level::Ok, format!("synchronisation unknown{skew}")),
    }
}

/// The kernel's `STA_UNSYNC` flag (adjtimex): cleared while an NTP daemon keeps the clock.
fn kernel_clock_synced() -> Option<bool> {
    // SAFETY: adjtimex with `modes = 0` only reads the kernel's clock state into `tx`.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    let state = unsafe { libc::adjtimex(&mut tx) };
    if state < 0 {
        return None;
    }
    Some(tx.status & libc::STA_UNSYNC == 0 && state != libc::TIME_ERROR)
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_of_ffmpeg_builds() {
        assert_eq!(major_version("ffmpeg version 5.1.6-0+deb12u1 Copyright (c) 2000-2024"), Some(5));
        assert_eq!(major_version("ffprobe version n7.1 Copyright"), Some(7));
        assert_eq!(major_version("ffmpeg version 4.4.2-0ubuntu0.22.04.1"), Some(4));
        assert_eq!(major_version("ffmpeg version N-112233-gabcdef"), None);
    }

    #[test]
    fn a_taken_port_is_reported_and_a_free_one_is_not() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = held.local_addr().unwrap();
        let f = port("rtmp port", addr);
        assert_eq!(f.level, Level::Warn, "{}", f.detail);
        assert!(f.detail.contains("is in use"), "{}", f.detail);
        drop(held);
        assert_eq!(port("rtmp port", addr).level, Level::Ok);
    }

    #[test]
    fn a_failure_fails_the_report() {
        let (text, ok) = report(&[found("a", Level::Ok, "fine"), found("b", Level::Warn, "hmm")]);
        assert!(ok, "{text}");
        assert!(text.starts_with("ok   a"), "{text}");
        let (text, ok) = report(&[found("c", Level::Fail, "broken")]);
        assert!(!ok);
        assert!(text.contains("FAIL c"), "{text}");
    }
}
