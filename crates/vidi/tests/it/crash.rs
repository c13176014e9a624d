//! A server killed with SIGKILL in the middle of a chunk loses nothing it acknowledged: after a
//! restart the status lists the parts it had, the interrupted part can be sent again, and the
//! assembled source is byte-identical to the original. An API-only node killed right after it
//! answered the last chunk, or accepted a `source` URL, loses nothing either: the assembly or
//! import is a queued job, and a workers-only process makes the video playable. Runs the real
//! `vidi` binary.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::common;
use crate::common::process::{Install, Proc};
use crate::common::{Backend, backend_test, big_video, config_for, sha256, small_video};
use base64::Engine;
use vidi_core::Repo;
use vidi_core::id::VideoId;

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

backend_test!(kill_dash_nine_mid_upload_then_resume);
async fn kill_dash_nine_mid_upload_then_resume(b: Backend) {
    vidi::install_crypto();
    let bytes = big_video();
    let parts: Vec<Vec<u8>> = bytes.chunks(5 * 1024 * 1024).map(<[u8]>::to_vec).collect();
    let n = parts.len();
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
            "VIDI_DATABASE_SCHEMA" => cfg.database.schema = Some(v.clone()),
            "VIDI_STORAGE_URL" => cfg.storage.url = Some(v.clone()).filter(|u| !u.is_empty()),
            _ => {}
        }
    }
    cfg.http.addr = "127.0.0.1:0".parse().unwrap();
    let reader = vidi::start(cfg).await.unwrap();
    let ws = reader.state.repo.default_workspace().await.unwrap().unwrap();
    // The answer to the last part comes before the assembly, a job of the short lane.
    let deadline = Instant::now() + Duration::from_secs(30);
    let video = loop {
        let v = reader.state.repo.get_video(&ws, &vidi_core::id::VideoId::parse(&id).unwrap()).await.unwrap();
        if v.ingest.state == vidi_core::model::IngestState::Uploaded {
            break v;
        }
        assert!(Instant::now() < deadline, "{}: never assembled", b.label);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut stream = reader.state.blobs.get(&video.ingest.source_key.unwrap(), None).await.unwrap();
    let mut got = Vec::new();
    while let Some(piece) = futures::StreamExt::next(&mut stream).await {
        got.extend_from_slice(&piece.unwrap());
    }
    assert_eq!(sha256(&got), sha256(&bytes), "{}: the assembled source differs", b.label);
    reader.abort();
}

/// A repo on the database of `install`, as an operator's second process sees it.
async fn repo_of(b: &common::Backend, dir: &std::path::Path, install: &Install) -> std::sync::Arc<dyn vidi_core::Repo> {
    let mut cfg = config_for(b, dir);
    cfg.database.schema =
        install.env.iter().find(|(k, _)| k == "VIDI_DATABASE_SCHEMA").map(|(_, v)| v.clone()).filter(|s| !s.is_empty());
    vidi::open_repo(&cfg).await.unwrap()
}

/// Kills (SIGKILL) an API-only node, checks that `job` waits in the queue, then starts a
/// workers-only process on the same install and waits until `video` is playable.
async fn killed_then_finished_by_a_worker(
    b: &common::Backend,
    vidi: &Install,
    repo: &dyn Repo,
    server: Proc,
    job: &str,
    video: &str,
) {
    let mut server = server;
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let (status, _, _) = repo.job_state(job).await.unwrap().unwrap_or_else(|| panic!("{}: no {job} job", b.label));
    assert_eq!(status, "queued", "{}: nobody took {job} on the API-only node", b.label);
    let mut worker = vidi.command(&["worker"]);
    worker.env("VIDI_X264_PRESET", "ultrafast").stdout(std::process::Stdio::null());
    let _worker = Proc { child: worker.spawn().unwrap() };
    let vid = VideoId::parse(video).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !repo.video_for_delivery(&vid).await.unwrap().encoding.playable {
        let v = repo.video_for_delivery(&vid).await.unwrap();
        assert!(v.encoding.error.is_none(), "{}: {:?}", b.label, v.encoding.error);
        assert!(Instant::now() < deadline, "{}: never playable ({:?})", b.label, v.ingest.state);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

backend_test!(kill_dash_nine_right_after_the_last_chunk_then_a_worker_makes_it_playable);
async fn kill_dash_nine_right_after_the_last_chunk_then_a_worker_makes_it_playable(b: Backend) {
    vidi::install_crypto();
    let bytes = big_video();
    let parts: Vec<Vec<u8>> = bytes.chunks(5 * 1024 * 1024).map(<[u8]>::to_vec).collect();
    let n = parts.len();
    let dir = tempfile::tempdir().unwrap();
    // No worker anywhere until the kill: the last part answers at once.
    let vidi = Install::new(&b, dir.path(), &[("VIDI_WORKERS", "0"), ("VIDI_ASSEMBLY_WAIT_SECS", "0")]);
    let repo = repo_of(&b, dir.path(), &vidi).await;
    let server = vidi.serve().await;
    let id = vidi.create_video("killed after the last chunk").await;
    for (i, p) in parts.iter().enumerate() {
        let r = vidi.upload(&id, Some(&format!("part {}/{n}", i + 1)), p.clone()).await;
        assert_eq!(r.status(), 201, "{}", b.label);
    }
    killed_then_finished_by_a_worker(&b, &vidi, repo.as_ref(), server, &format!("assemble:{id}"), &id).await;
}

backend_test!(kill_dash_nine_right_after_accepting_a_source_url_then_a_worker_makes_it_playable);
async fn kill_dash_nine_right_after_accepting_a_source_url_then_a_worker_makes_it_playable(b: Backend) {
    use axum::routing::get;
    vidi::install_crypto();
    let served = small_video();
    let app = axum::Router::new().route("/clip.mp4", get(move || async move { served.clone() }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = tempfile::tempdir().unwrap();
    // The origin is on loopback, which the outbound guard refuses unless told otherwise.
    let vidi = Install::new(&b, dir.path(), &[("VIDI_WORKERS", "0"), ("VIDI_OUTBOUND_ALLOW_PRIVATE", "true")]);
    let repo = repo_of(&b, dir.path(), &vidi).await;
    let server = vidi.serve().await;
    let r = vidi
        .http
        .post(format!("{}/videos", vidi.url))
        .basic_auth(&vidi.key, Some(""))
        .json(&serde_json::json!({ "title": "imported", "source": format!("http://{origin}/clip.mp4") }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", b.label);
    let id = r.json::<serde_json::Value>().await.unwrap()["videoId"].as_str().unwrap().to_string();
    killed_then_finished_by_a_worker(&b, &vidi, repo.as_ref(), server, &format!("import:{id}"), &id).await;
}
