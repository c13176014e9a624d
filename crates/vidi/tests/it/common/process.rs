//! The real `vidi` binary as a child process, for the tests that kill it.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Backend, config_for};

/// One `vidi` installation (data folder, database schema, bucket prefix) on a fixed port, with
/// its API key; servers are started and killed against it.
pub struct Install {
    pub env: Vec<(String, String)>,
    pub port: u16,
    pub url: String,
    pub key: String,
    pub http: reqwest::Client,
}

/// A running `vidi serve`, killed (SIGKILL) when dropped.
pub struct Proc {
    pub child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Install {
    /// `extra` adds environment variables (short staleness windows, typically).
    pub fn new(b: &Backend, dir: &std::path::Path, extra: &[(&str, &str)]) -> Install {
        let cfg = config_for(b, dir);
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut env: Vec<(String, String)> = vec![
            ("VIDI_DATA_DIR".into(), dir.display().to_string()),
            ("VIDI_HTTP_ADDR".into(), format!("127.0.0.1:{port}")),
            ("VIDI_DATABASE_URL".into(), cfg.database.url.unwrap_or_default()),
            ("VIDI_DATABASE_SCHEMA".into(), cfg.database.schema.unwrap_or_default()),
            ("VIDI_STORAGE_URL".into(), cfg.storage.url.unwrap_or_default()),
            ("VIDI_LOG".into(), "warn".into()),
            // Many servers run at once: each takes a free RTMP port, none the default one.
            ("VIDI_RTMP_ADDR".into(), "127.0.0.1:0".into()),
        ];
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut install = Install {
            env,
            port,
            url: format!("http://127.0.0.1:{port}"),
            key: String::new(),
            http: reqwest::Client::new(),
        };
        let out = install.command(&["api-key", "create"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        install.key = String::from_utf8(out.stdout).unwrap().trim().to_string();
        install
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_vidi"));
        c.args(args);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// Starts `vidi serve` and waits until it listens.
    pub async fn serve(&self) -> Proc {
        let child = self.command(&["serve"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("vidi starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "vidi never listened");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Proc { child }
    }

    pub async fn create_video(&self, title: &str) -> String {
        super::create_video_at(&self.http, &self.url, &self.key, title).await
    }

    /// One multipart upload request, optionally with a Content-Range.
    pub async fn upload(&self, video: &str, range: Option<&str>, bytes: Vec<u8>) -> reqwest::Response {
        let form =
            reqwest::multipart::Form::new().part("file", reqwest::multipart::Part::bytes(bytes).file_name("clip.mp4"));
        let mut r = self
            .http
            .post(format!("{}/videos/{video}/source", self.url))
            .basic_auth(&self.key, Some(""))
            .multipart(form);
        if let Some(cr) = range {
            r = r.header("Content-Range", cr);
        }
        r.send().await.unwrap()
    }

    /// The status, or `None` while no server answers.
    pub async fn status(&self, video: &str) -> Option<Value> {
        let r = self
            .http
            .get(format!("{}/videos/{video}/status", self.url))
            .basic_auth(&self.key, Some(""))
            .send()
            .await
            .ok()?;
        r.json().await.ok()
    }
}
