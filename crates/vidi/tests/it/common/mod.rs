//! Shared test harness: boots the real server on 127.0.0.1:0 on every configured backend pair,
//! makes media with ffmpeg's lavfi sources, and speaks HTTP like a client would.
//!
//! Backends come from the environment, set by `scripts/test.sh`:
//! - always SQLite + a local folder;
//! - `VIDI_TEST_PG_URL` adds PostgreSQL (each server gets a schema of its own);
//! - `VIDI_TEST_S3_URL` (`s3://bucket`, with `AWS_*` credentials and `AWS_ENDPOINT_URL`) adds S3.
//!
//! With both, the second pair is PostgreSQL + S3.
#![allow(dead_code)]

pub mod process;
pub mod receiver;

use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::{Client, Method, RequestBuilder, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use vidi::{Config, Server};

#[derive(Clone, Debug)]
pub struct Backend {
    pub label: String,
    pub pg_url: Option<String>,
    pub s3_url: Option<String>,
}

impl Backend {
    /// The embedded default: SQLite and a local folder, always available.
    pub fn sqlite_local() -> Backend {
        Backend { label: "sqlite+local".into(), pg_url: None, s3_url: None }
    }

    /// The scale-out pair from the environment: PostgreSQL + S3 when both are configured (one
    /// of them alone pairs with the embedded other half). `None` when neither is, which fails
    /// the test under `CI=true`: there a skipped backend would be a silent hole.
    pub fn postgres_s3() -> Option<Backend> {
        let pg = std::env::var("VIDI_TEST_PG_URL").ok().filter(|s| !s.is_empty());
        let s3 = std::env::var("VIDI_TEST_S3_URL").ok().filter(|s| !s.is_empty());
        if pg.is_none() && s3.is_none() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but neither VIDI_TEST_PG_URL nor VIDI_TEST_S3_URL is set"
            );
            eprintln!("SKIPPED: PostgreSQL and S3 are not configured (VIDI_TEST_PG_URL, VIDI_TEST_S3_URL)");
            return None;
        }
        let label = format!(
            "{}+{}",
            if pg.is_some() { "postgres" } else { "sqlite" },
            if s3.is_some() { "s3" } else { "local" }
        );
        Some(Backend { label, pg_url: pg, s3_url: s3 })
    }
}

/// Declares the async fn `$name(b: Backend)` below it a test per backend pair, named after
/// its pair: `<name>::sqlite_local` and `<name>::postgres_s3`. A failure on one pair no longer
/// hides the other, and `cargo test postgres_s3` picks one pair. The database schemas and bucket
/// prefixes the test creates are dropped when it ends. `multi_thread = N` gives it N runtime
/// threads (tests that block a thread, or race tasks).
macro_rules! backend_test {
    ($name:ident) => {
        $crate::common::backend_test!(@pair $name, #[tokio::test]);
    };
    ($name:ident, multi_thread = $n:literal) => {
        $crate::common::backend_test!(@pair $name, #[tokio::test(flavor = "multi_thread", worker_threads = $n)]);
    };
    (@pair $name:ident, #[$test:meta]) => {
        mod $name {
            #[$test]
            async fn sqlite_local() {
                $crate::common::scoped(super::$name($crate::common::Backend::sqlite_local())).await
            }

            #[$test]
            async fn postgres_s3() {
                if let Some(b) = $crate::common::Backend::postgres_s3() {
                    $crate::common::scoped(super::$name(b)).await
                }
            }
        }
    };
}
pub(crate) use backend_test;

tokio::task_local! {
    /// What `config_for` created inside the running test: dropped when the test ends.
    static CREATED: std::cell::RefCell<Vec<Config>>;
}

/// Runs one test body, then drops the schemas and bucket prefixes it created, whether it
/// passed or panicked (the panic is then resumed). The names are in the test's log.
pub async fn scoped(body: impl Future<Output = ()>) {
    use futures::FutureExt;
    let (outcome, created) = CREATED
        .scope(std::cell::RefCell::new(Vec::new()), async {
            let outcome = std::panic::AssertUnwindSafe(body).catch_unwind().await;
            (outcome, CREATED.with(|c| c.take()))
        })
        .await;
    for cfg in created {
        drop_test_data(&cfg).await;
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn drop_test_data(cfg: &Config) {
    use sqlx::Connection;
    let ours = |s: &str| s.starts_with("t_") && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    let (url, schema) = (cfg.database.url.as_deref().unwrap_or(""), cfg.database.schema.as_deref().unwrap_or(""));
    if url.starts_with("postgres") && ours(schema) {
        // Servers of the test are gone, but a pool may close its connections a moment later:
        // a bounded lock wait instead of hanging on one.
        match sqlx::PgConnection::connect(url).await {
            Ok(mut c) => {
                let sql = format!("SET lock_timeout = '10s'; DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
                if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut c).await {
                    eprintln!("note: schema {schema} not dropped: {e}");
                }
            }
            Err(e) => eprintln!("note: schema {schema} not dropped: {e}"),
        }
    }
    let storage = cfg.storage.url.as_deref().unwrap_or("");
    if storage.starts_with("s3://") && storage.contains("/run-") {
        match vidi::open_blobs(cfg).await {
            Ok(blobs) => {
                if let Err(e) = blobs.delete_prefix("").await {
                    eprintln!("note: {storage} not emptied: {e}");
                }
            }
            Err(e) => eprintln!("note: {storage} not emptied: {e}"),
        }
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

pub struct TestServer {
    pub server: Server,
    pub url: String,
    pub key: String,
    pub http: Client,
    pub backend: Backend,
    pub dir: tempfile::TempDir,
    pub cfg: Config,
}

/// A config for `backend` with its own data folder, schema and bucket prefix.
pub fn config_for(backend: &Backend, dir: &Path) -> Config {
    let mut cfg = Config::default();
    cfg.storage.data_dir = dir.to_path_buf();
    cfg.http.addr = "127.0.0.1:0".parse().unwrap();
    // Many servers run at once: each takes a free RTMP port (`Server::rtmp_addr`).
    cfg.live.rtmp_addr = Some("127.0.0.1:0".parse().unwrap());
    if let Some(pg) = &backend.pg_url {
        cfg.database.url = Some(pg.clone());
        cfg.database.schema = Some(unique("t_"));
    }
    if let Some(s3) = &backend.s3_url {
        cfg.storage.url = Some(format!("{}/{}", s3.trim_end_matches('/'), unique("run-")));
    }
    // Outside `backend_test!` (or in a spawned task) nothing is recorded and nothing dropped.
    let _ = CREATED.try_with(|c| c.borrow_mut().push(cfg.clone()));
    cfg
}

impl TestServer {
    pub async fn start(backend: &Backend) -> TestServer {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(backend: &Backend, tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config_for(backend, dir.path());
        tweak(&mut cfg);
        let server = vidi::start(cfg.clone()).await.expect("server starts");
        let key = server.first_key.clone().expect("a fresh database gets a key");
        TestServer { url: server.url.clone(), server, key, http: test_client(), backend: backend.clone(), dir, cfg }
    }

    pub fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{}", self.url, path)).basic_auth(&self.key, Some(""))
    }

    pub async fn get(&self, path: &str) -> Response {
        match self.req(Method::GET, path).send().await {
            Ok(r) => r,
            // A pooled keep-alive connection that the server closed as idle just as it was reused
            // fails with a reset before any answer (seen after the stalled-body test's long
            // wait): a GET is idempotent, so it is sent again once, as HTTP clients may do.
            Err(e) if e.is_request() && !e.is_timeout() => self.req(Method::GET, path).send().await.unwrap(),
            Err(e) => panic!("GET {path}: {e}"),
        }
    }

    pub async fn post_json(&self, path: &str, body: Value) -> Response {
        self.req(Method::POST, path).json(&body).send().await.unwrap()
    }

    pub async fn patch_json(&self, path: &str, body: Value) -> Response {
        self.req(Method::PATCH, path).json(&body).send().await.unwrap()
    }

    pub async fn create_video(&self, title: &str) -> String {
        let r = self.post_json("/videos", json!({ "title": title })).await;
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        r.json::<Value>().await.unwrap()["videoId"].as_str().unwrap().to_string()
    }

    /// One multipart upload request of `bytes` (as file `clip.mp4`), with an optional Content-Range.
    /// The future borrows only the server, so callers can build it from temporaries.
    pub fn upload<'a>(
        &'a self,
        video: &str,
        range: Option<&str>,
        bytes: Vec<u8>,
    ) -> impl Future<Output = Response> + use<'a> {
        let path = format!("/videos/{video}/source");
        let range = range.map(str::to_string);
        async move {
            let part = reqwest::multipart::Part::bytes(bytes).file_name("clip.mp4");
            let form = reqwest::multipart::Form::new().part("file", part);
            let mut r = self.req(Method::POST, &path).multipart(form);
            if let Some(cr) = range {
                r = r.header("Content-Range", cr);
            }
            r.send().await.unwrap()
        }
    }

    /// The workspace of the test's API key (the installation's first, default one).
    pub async fn ws(&self) -> vidi_core::id::WorkspaceId {
        self.server.state.repo.default_workspace().await.unwrap().unwrap()
    }

    /// SHA-256 of the stored source, read back through the media store. The answer to the last
    /// chunk comes before its assembly (a job), so this waits for the source first.
    pub async fn stored_source_sha(&self, video: &str) -> String {
        use futures::StreamExt;
        let ws = self.ws().await;
        let id = vidi_core::id::VideoId::parse(video).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let key = loop {
            let v = self.server.state.repo.get_video(&ws, &id).await.unwrap();
            match v.ingest.source_key {
                Some(k) if v.ingest.state == vidi_core::model::IngestState::Uploaded => break k,
                _ => assert!(std::time::Instant::now() < deadline, "the source was never assembled"),
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        let mut s = self.server.state.blobs.get(&key, None).await.unwrap();
        let mut h = Sha256::new();
        while let Some(piece) = s.next().await {
            h.update(piece.unwrap());
        }
        hex::encode(h.finalize())
    }

    /// Polls the status until `pred` holds (or fails after `secs`).
    pub async fn wait_status(&self, video: &str, secs: u64, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            let s: Value = self.get(&format!("/videos/{video}/status")).await.json().await.unwrap();
            if pred(&s) {
                return s;
            }
            assert!(std::time::Instant::now() < deadline, "status never matched: {s}");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Creates a video titled `title` through the API at `url` with `key`; returns its id. For tests
/// that hold a server without a [`TestServer`] around it (another node, a process).
pub async fn create_video_at(http: &Client, url: &str, key: &str, title: &str) -> String {
    let v: Value = http
        .post(format!("{url}/videos"))
        .basic_auth(key, Some(""))
        .json(&json!({ "title": title }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["videoId"].as_str().unwrap().to_string()
}

/// The suite's HTTP client: a request that gets no answer fails its test after three minutes
/// rather than hanging the whole run.
/// A media file's duration as ffprobe reads it from `url`. ffprobe reads from the server under
/// test, which runs on this runtime: awaited, never blocking it.
pub async fn ffprobe_duration(url: &str) -> f64 {
    let out = tokio::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "format=duration", "-of", "default=nw=1:nk=1", url])
        .output()
        .await
        .expect("ffprobe runs");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or_else(|_| panic!("no duration for {url}: {out:?}"))
}

pub fn test_client() -> Client {
    Client::builder().timeout(std::time::Duration::from_secs(180)).build().expect("a client")
}

pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Checks an api.video problem body and returns it.
pub async fn problem(r: Response, status: u16, slug: &str) -> Value {
    assert_eq!(r.status().as_u16(), status, "unexpected status");
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["type"], format!("https://docs.api.video/reference/{slug}"), "{body}");
    assert_eq!(body["status"], status);
    assert!(body["title"].is_string() && body["name"].is_string(), "{body}");
    body
}

/// A real video made by ffmpeg's lavfi sources, cached per shape in the target folder.
pub fn lavfi_video(name: &str, args: &[&str]) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("media");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(name);
    if !out.exists() {
        let tmp = dir.join(format!("{name}.{}.mp4", uuid::Uuid::new_v4().simple()));
        let st = Command::new("ffmpeg").args(["-v", "error", "-y"]).args(args).arg(&tmp).status().expect("ffmpeg runs");
        assert!(st.success(), "ffmpeg failed for {name}");
        std::fs::rename(&tmp, &out).unwrap();
    }
    out
}

/// The usual test clip: `secs` seconds of lavfi `testsrc2=<video>` with a `sine=<audio>` tone, as
/// H.264 (ultrafast, yuv420p) and AAC, plus `extra` output options; cached under `name`.
pub fn av_clip(name: &str, video: &str, audio: &str, secs: u32, extra: &[&str]) -> PathBuf {
    let (video, audio, secs) = (format!("testsrc2={video}"), format!("sine={audio}"), secs.to_string());
    let mut args = vec!["-f", "lavfi", "-i", &video, "-f", "lavfi", "-i", &audio, "-t", &secs];
    args.extend(["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"]);
    args.extend_from_slice(extra);
    lavfi_video(name, &args)
}

/// ~12 MiB of real H.264/AAC (noise keeps the bitrate up), enough for three 5 MiB parts.
pub fn big_video() -> Vec<u8> {
    let p = lavfi_video(
        "big.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1280x720:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440",
            "-t",
            "8",
            "-vf",
            "noise=alls=40:allf=t",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-b:v",
            "14M",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
        ],
    );
    let b = std::fs::read(p).unwrap();
    assert!(b.len() > 11 * 1024 * 1024, "big video is {} bytes", b.len());
    b
}

/// A short small video for single-request uploads.
pub fn small_video() -> Vec<u8> {
    let p = lavfi_video(
        "small.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine",
            "-t",
            "2",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
        ],
    );
    std::fs::read(p).unwrap()
}

pub const MIB: usize = 1024 * 1024;
