//! A server killed with SIGKILL in the middle of a chunk loses nothing it acknowledged: after a
//! restart the status lists the parts it had, the interrupted part can be sent again, and the
//! assembled source is byte-identical to the original. Runs the real `vidi` binary.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use common::{Backend, backends, big_video, config_for, sha256};
use serde_json::Value;

struct Proc {
    child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn vidi(env: &[(String, String)], args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vidi"));
    c.args(args).env("VIDI_LOG", "warn");
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

fn env_for(b: &Backend, dir: &std::path::Path, port: u16) -> Vec<(String, String)> {
    let cfg = config_for(b, dir);
    vec![
        ("VIDI_DATA_DIR".into(), dir.display().to_string()),
        ("VIDI_HTTP_ADDR".into(), format!("127.0.0.1:{port}")),
        ("VIDI_DATABASE_URL".into(), cfg.database_url),
        ("VIDI_DATABASE_SCHEMA".into(), cfg.database_schema),
        ("VIDI_STORAGE_URL".into(), cfg.storage_url),
        // A dead node's claims are released after 2 s instead of 15 s, to keep the test short.
        ("VIDI_CLAIM_STALE_SECS".into(), "2".into()),
    ]
}

async fn serve(env: &[(String, String)], port: u16) -> Proc {
    let child = vidi(env, &["serve"]).stdout(Stdio::null()).spawn().expect("vidi starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "vidi never listened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Proc { child }
}

/// Starts a chunk upload by hand and stops halfway through the body, leaving the socket open.
fn half_send(port: u16, key: &str, video: &str, range: &str, part: &[u8]) -> TcpStream {
    let boundary = "vidi-crash-test";
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"clip.mp4\"\r\nContent-Type: video/mp4\r\n\r\n"
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let len = head.len() + part.len() + tail.len();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{key}:"));
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST /videos/{video}/source HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\nContent-Range: {range}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {len}\r\n\r\n{head}"
    )
    .unwrap();
    s.write_all(&part[..part.len() / 2]).unwrap();
    s.flush().unwrap();
    s
}

#[tokio::test]
async fn kill_dash_nine_mid_upload_then_resume() {
    vidi::install_crypto();
    let bytes = big_video();
    let parts: Vec<Vec<u8>> = bytes.chunks(5 * 1024 * 1024).map(<[u8]>::to_vec).collect();
    let n = parts.len();
    for b in backends() {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let env = env_for(&b, dir.path(), port);
        let out = vidi(&env, &["api-key", "create"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let key = String::from_utf8(out.stdout).unwrap().trim().to_string();
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let upload = |video: String, range: String, part: Vec<u8>| {
            let (http, url, key) = (http.clone(), url.clone(), key.clone());
            async move {
                let form = reqwest::multipart::Form::new()
                    .part("file", reqwest::multipart::Part::bytes(part).file_name("clip.mp4"));
                http.post(format!("{url}/videos/{video}/source"))
                    .basic_auth(&key, Some(""))
                    .header("Content-Range", range)
                    .multipart(form)
                    .send()
                    .await
                    .unwrap()
            }
        };

        let mut server = serve(&env, port).await;
        let v: Value = http
            .post(format!("{url}/videos"))
            .basic_auth(&key, Some(""))
            .json(&serde_json::json!({"title": "crash"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = v["videoId"].as_str().unwrap().to_string();
        assert_eq!(upload(id.clone(), format!("part 1/{n}"), parts[0].clone()).await.status(), 201);
        // Part 2 is half sent when the server dies.
        let socket = half_send(port, &key, &id, &format!("part 2/{n}"), &parts[1]);
        tokio::time::sleep(Duration::from_millis(300)).await;
        server.child.kill().unwrap(); // SIGKILL
        server.child.wait().unwrap();
        drop(socket);

        let _server = serve(&env, port).await;
        let st: Value = http
            .get(format!("{url}/videos/{id}/status"))
            .basic_auth(&key, Some(""))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(st["ingest"]["status"], "uploading", "{}", b.label);
        assert_eq!(st["ingest"]["receivedParts"]["parts"], serde_json::json!([1]), "only acknowledged parts count");
        // The dead server's claim on part 2 is released once its heartbeat is stale; until then
        // the part answers 409 (in progress), never "already sent".
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let r = upload(id.clone(), format!("part 2/{n}"), parts[1].clone()).await;
            match r.status().as_u16() {
                201 => break,
                409 => {
                    assert!(Instant::now() < deadline, "claim never released");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                s => panic!("unexpected {s}: {}", r.text().await.unwrap()),
            }
        }
        for (i, p) in parts.iter().enumerate().skip(2) {
            assert_eq!(upload(id.clone(), format!("part {}/{n}", i + 1), p.clone()).await.status(), 201);
        }
        // Read the assembled source back through a server of our own on the same stores.
        let mut cfg = config_for(&b, dir.path());
        for (k, v) in &env {
            match k.as_str() {
                "VIDI_DATABASE_SCHEMA" => cfg.database_schema = v.clone(),
                "VIDI_STORAGE_URL" => cfg.storage_url = v.clone(),
                _ => {}
            }
        }
        cfg.http_addr = "127.0.0.1:0".parse().unwrap();
        let reader = vidi::start(cfg).await.unwrap();
        let ws = reader.state.repo.default_workspace().await.unwrap().unwrap();
        let video = reader.state.repo.get_video(&ws, &vidi_core::id::VideoId::parse(&id).unwrap()).await.unwrap();
        let mut stream = reader.state.blobs.get(&video.ingest.source_key.unwrap(), None).await.unwrap();
        let mut got = Vec::new();
        while let Some(piece) = futures::StreamExt::next(&mut stream).await {
            got.extend_from_slice(&piece.unwrap());
        }
        assert_eq!(sha256(&got), sha256(&bytes), "{}: the assembled source differs", b.label);
        reader.abort();
    }
}
