//! A server killed with SIGKILL in the middle of a chunk loses nothing it acknowledged: after a
//! restart the status lists the parts it had, the interrupted part can be sent again, and the
//! assembled source is byte-identical to the original. Runs the real `vidi` binary.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use base64::Engine;
use common::process::Install;
use common::{backends, big_video, config_for, sha256};

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
        // A dead node's claims are released after 2 s instead of 15 s, to keep the test short.
        let vidi = Install::new(&b, dir.path(), &[("VIDI_CLAIM_STALE_SECS", "2")]);
        let mut server = vidi.serve().await;
        let id = vidi.create_video("crash").await;
        assert_eq!(vidi.upload(&id, Some(&format!("part 1/{n}")), parts[0].clone()).await.status(), 201);
        // Part 2 is half sent when the server dies.
        let socket = half_send(vidi.port, &vidi.key, &id, &format!("part 2/{n}"), &parts[1]);
        tokio::time::sleep(Duration::from_millis(300)).await;
        server.child.kill().unwrap(); // SIGKILL
        server.child.wait().unwrap();
        drop(socket);

        let _server = vidi.serve().await;
        let st = vidi.status(&id).await.unwrap();
        assert_eq!(st["ingest"]["status"], "uploading", "{}", b.label);
        assert_eq!(st["ingest"]["receivedParts"]["parts"], serde_json::json!([1]), "only acknowledged parts count");
        // The dead server's claim on part 2 is released once its heartbeat is stale; until then
        // the part answers 409 (in progress), never "already sent".
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let r = vidi.upload(&id, Some(&format!("part 2/{n}")), parts[1].clone()).await;
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
            assert_eq!(vidi.upload(&id, Some(&format!("part {}/{n}", i + 1)), p.clone()).await.status(), 201);
        }
        // Read the assembled source back through a server of our own on the same stores.
        let mut cfg = config_for(&b, dir.path());
        for (k, v) in &vidi.env {
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
