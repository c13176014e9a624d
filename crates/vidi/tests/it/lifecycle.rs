//! One lifecycle: SIGTERM stops a node gracefully. Its running jobs go back to the queue at once
//! (not after the reaper's staleness window) and another process finishes them; requests in
//! flight finish while new connections are refused; the process exits 0. Runs the real `vidi`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use crate::common;
use crate::common::process::{Install, Proc};
use crate::common::{Backend, av_clip, backend_test, config_for, small_video};
use base64::Engine;
use vidi_core::Repo;
use vidi_core::id::VideoId;
use vidi_core::time::now_ms;

/// A repo on the database of `install` (same schema), as an operator's second process sees it.
async fn repo_of(b: &common::Backend, dir: &std::path::Path, install: &Install) -> std::sync::Arc<dyn Repo> {
    let mut cfg = config_for(b, dir);
    for (k, v) in &install.env {
        if k == "VIDI_DATABASE_SCHEMA" {
            cfg.database.schema = Some(v.clone());
        }
    }
    vidi::open_repo(&cfg).await.unwrap()
}

fn sigterm(child: &Child) {
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
}

/// Waits for `child` to exit, at most `limit`.
async fn exit_within(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        assert!(Instant::now() < deadline, "vidi did not exit within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

backend_test!(release_job_requeues_at_once_without_counting_the_attempt);
async fn release_job_requeues_at_once_without_counting_the_attempt(b: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let repo = vidi::open_repo(&config_for(&b, dir.path())).await.unwrap();
    let t0 = now_ms();
    assert!(repo.enqueue_job("encode", &serde_json::json!({}), "encode:x", t0, 3).await.unwrap());
    let job = repo.claim_job("a", t0).await.unwrap().unwrap();
    assert_eq!(job.attempts, 1);
    // Only its holder can hand it back.
    repo.release_job(&job.id, "b", t0).await.unwrap();
    assert_eq!(repo.job_state(&job.id).await.unwrap().unwrap().0, "running", "{}", b.label);
    repo.release_job(&job.id, "a", t0 + 1).await.unwrap();
    let (status, attempts, _) = repo.job_state(&job.id).await.unwrap().unwrap();
    assert_eq!((status.as_str(), attempts), ("queued", 0), "{}", b.label);
    // Due at once, and still unique: queueing the same work again is a no-op.
    assert!(!repo.enqueue_job("encode", &serde_json::json!({}), "encode:x", t0, 3).await.unwrap());
    let again = repo.claim_job("b", t0 + 1).await.unwrap().unwrap();
    assert_eq!((again.id.as_str(), again.attempts), (job.id.as_str(), 1), "{}", b.label);
}

backend_test!(sigterm_mid_encode_hands_the_job_to_another_process);
async fn sigterm_mid_encode_hands_the_job_to_another_process(b: Backend) {
    vidi::install_crypto();
    // 20 s of 720p at x264's `medium`: tens of seconds of encoding on a test machine.
    let clip = av_clip("lifecycle-720p-20s.mp4", "size=1280x720:rate=30", "frequency=440", 20, &[]);
    let bytes = std::fs::read(clip).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let vidi = Install::new(
        &b,
        dir.path(),
        &[
            ("VIDI_WORKERS", "1"),
            ("VIDI_X264_PRESET", "medium"),
            // One job for the whole video, so "the job" is unambiguous.
            ("VIDI_PIECE_SECS", "0"),
            // The reaper would take 30 s: a job queued within 2 s was handed back, not reaped.
            ("VIDI_JOB_STALE_SECS", "30"),
            ("VIDI_SHUTDOWN_GRACE_SECS", "5"),
        ],
    );
    let repo = repo_of(&b, dir.path(), &vidi).await;
    let mut server = vidi.serve().await;
    let id = vidi.create_video("lifecycle").await;
    assert_eq!(vidi.upload(&id, None, bytes.clone()).await.status(), 201, "{}", b.label);
    let key = format!("encode:{id}");
    let vid = VideoId::parse(&id).unwrap();
    let ws = repo.default_workspace().await.unwrap().unwrap();

    // Wait until ffmpeg is well into the ladder: running, and a segment published.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let running = repo.job_state(&key).await.unwrap().is_some_and(|(s, _, _)| s == "running");
        if running && repo.get_video(&ws, &vid).await.unwrap().encoding.playable {
            break;
        }
        assert!(Instant::now() < deadline, "{}: the encode never got going", b.label);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let qualities = repo.qualities(&ws, &vid).await.unwrap();
    assert!(qualities.iter().any(|q| q.status == "encoding"), "{}: still encoding: {qualities:?}", b.label);

    let term = Instant::now();
    sigterm(&server.child);
    loop {
        let (status, attempts, _) = repo.job_state(&key).await.unwrap().unwrap();
        if status == "queued" {
            assert_eq!(attempts, 0, "{}: a shutdown is not a failed attempt", b.label);
            break;
        }
        assert_eq!(status, "running", "{}", b.label);
        assert!(term.elapsed() < Duration::from_secs(2), "{}: job not queued again within 2 s", b.label);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let st = exit_within(&mut server.child, Duration::from_secs(5 + 3)).await;
    assert!(st.success(), "{}: vidi exited with {st}", b.label);
    // The dropped job's scratch went with it.
    let left: Vec<_> = std::fs::read_dir(dir.path().join(".work")).unwrap().collect();
    assert!(left.is_empty(), "{}: scratch left behind: {left:?}", b.label);

    // A workers-only process on the same install takes the job and finishes the video.
    let mut worker = vidi.command(&["worker"]);
    worker.env("VIDI_X264_PRESET", "ultrafast").stdout(std::process::Stdio::null());
    let worker = Proc { child: worker.spawn().unwrap() };
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let done = repo.job_state(&key).await.unwrap().is_none_or(|(s, _, _)| s == "done");
        let qs = repo.qualities(&ws, &vid).await.unwrap();
        if done && !qs.is_empty() && qs.iter().all(|q| q.status == "encoded") {
            break;
        }
        assert!(Instant::now() < deadline, "{}: never finished: {qs:?}", b.label);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(repo.get_video(&ws, &vid).await.unwrap().encoding.playable, "{}", b.label);
    drop(worker);
}

/// Sends the headers of a chunk upload and the first half of its body; returns the socket and
/// the rest of the body.
fn half_send(port: u16, key: &str, video: &str, part: &[u8]) -> (TcpStream, Vec<u8>) {
    let boundary = "vidi-lifecycle-test";
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"clip.mp4\"\r\nContent-Type: video/mp4\r\n\r\n"
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    let mut body = head.into_bytes();
    body.extend_from_slice(part);
    body.extend_from_slice(tail.as_bytes());
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{key}:"));
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST /videos/{video}/source HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    let rest = body.split_off(body.len() / 2);
    s.write_all(&body).unwrap();
    s.flush().unwrap();
    (s, rest)
}

backend_test!(sigterm_lets_requests_in_flight_finish_and_refuses_new_connections);
async fn sigterm_lets_requests_in_flight_finish_and_refuses_new_connections(b: Backend) {
    vidi::install_crypto();
    let bytes = small_video();
    let dir = tempfile::tempdir().unwrap();
    let vidi = Install::new(&b, dir.path(), &[("VIDI_WORKERS", "0"), ("VIDI_SHUTDOWN_GRACE_SECS", "3")]);
    let mut server = vidi.serve().await;
    let (done, stalled) = (vidi.create_video("finishes").await, vidi.create_video("stalls").await);
    let (mut finishing, rest) = half_send(vidi.port, &vidi.key, &done, &bytes);
    // This one never sends the rest of its body: the grace period ends it.
    let (_stalled_socket, _) = half_send(vidi.port, &vidi.key, &stalled, &bytes);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let term = Instant::now();
    sigterm(&server.child);
    // The listener closes: new connections are refused while the two requests are open.
    let deadline = Instant::now() + Duration::from_secs(2);
    while TcpStream::connect(("127.0.0.1", vidi.port)).is_ok() {
        assert!(Instant::now() < deadline, "{}: still accepting after SIGTERM", b.label);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(server.child.try_wait().unwrap().is_none(), "{}: exited with a request in flight", b.label);

    // The request in flight finishes, answered in full, and its connection closes.
    finishing.write_all(&rest).unwrap();
    finishing.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut answer = String::new();
    finishing.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "{}: {answer}", b.label);
    assert!(answer.contains(&done), "{}: {answer}", b.label);

    // The stalled one is dropped once the grace period is over, and the process exits 0.
    let st = exit_within(&mut server.child, Duration::from_secs(3 + 3)).await;
    assert!(st.success(), "{}: vidi exited with {st}", b.label);
    assert!(term.elapsed() >= Duration::from_secs(3), "{}: the stalled request got no grace", b.label);

    // What was acknowledged is stored.
    let _server = vidi.serve().await;
    let st = vidi.status(&done).await.unwrap();
    assert_eq!(st["ingest"]["status"], "uploaded", "{}: {st}", b.label);
}

/// The processes whose parent is this one, whose command is `comm` (ffmpeg, still running or
/// not yet reaped) and whose arguments mention `needle`. The needle (a video id: the encode's
/// scratch folder is named after it) keeps out the ffmpegs of tests running beside this one in
/// the same process, which would otherwise count as left behind.
fn children_named(comm: &str, needle: &str) -> Vec<u32> {
    let me = std::process::id();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // pid (comm) state ppid …
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        let ppid = stat[close + 2..].split(' ').nth(1).and_then(|p| p.parse::<u32>().ok());
        if &stat[open + 1..close] != comm || ppid != Some(me) {
            continue;
        }
        // A zombie's command line reads empty: it was ours if it was reaped by now or not.
        let args = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if args.is_empty() || args.windows(needle.len()).any(|w| w == needle.as_bytes()) {
            found.push(pid);
        }
    }
    found
}

backend_test!(a_stopped_node_leaves_no_task_no_child_and_no_job_behind, multi_thread = 2);
async fn a_stopped_node_leaves_no_task_no_child_and_no_job_behind(b: Backend) {
    let clip = av_clip("lifecycle-720p-20s.mp4", "size=1280x720:rate=30", "frequency=440", 20, &[]);
    let bytes = std::fs::read(clip).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config_for(&b, dir.path());
    cfg.jobs.workers = 1;
    cfg.encoding.x264_preset = "medium".into();
    cfg.encoding.piece_secs = 0;
    cfg.http.shutdown_grace = Duration::from_secs(3);
    // The operator's view of the database (the node closes its own when it stops), opened
    // before the count of tasks: its pool has its own.
    let repo = vidi::open_repo(&cfg).await.unwrap();
    let runtime = tokio::runtime::Handle::current();
    let tasks_before = runtime.metrics().num_alive_tasks();
    let server = vidi::start(cfg.clone()).await.expect("server starts");
    // Every role of a full node is a named service.
    let mut expected = vec![
        "http",
        "instance-heartbeat",
        "ingest-recovery",
        "scratch-sweep",
        "lane-encode",
        "lane-head",
        "lane-short",
        // Live: the broadcasts' heartbeat and end, and the RTMP listener.
        "live-broadcasts",
        "rtmp",
    ];
    if b.pg_url.is_some() {
        expected.push("job-wakeups");
    }
    expected.push("webhooks");
    let mut names = server.services().to_vec();
    names.retain(|n| n != "job-wakeups" || b.pg_url.is_some());
    let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    want.sort();
    names.sort();
    assert_eq!(names, want, "{}", b.label);

    let key = server.first_key.clone().unwrap();
    let http = common::test_client();
    let id = common::create_video_at(&http, &server.url, &key, "stops").await;
    let form =
        reqwest::multipart::Form::new().part("file", reqwest::multipart::Part::bytes(bytes).file_name("clip.mp4"));
    let r = http
        .post(format!("{}/videos/{id}/source", server.url))
        .basic_auth(&key, Some(""))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", b.label);
    drop(http);

    // The encode is under way: its job runs and its ffmpeg is our child.
    let job_key = format!("encode:{id}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let running = repo.job_state(&job_key).await.unwrap().is_some_and(|(s, _, _)| s == "running");
        if running && !children_named("ffmpeg", &id).is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "{}: the encode never started", b.label);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let stop = Instant::now();
    server.shutdown();
    tokio::time::timeout(Duration::from_secs(3 + 2), server.wait())
        .await
        .expect("every service stops within the grace")
        .expect("and none failed");
    assert!(stop.elapsed() < Duration::from_secs(5), "{}", b.label);
    let (status, attempts, _) = repo.job_state(&job_key).await.unwrap().unwrap();
    assert_eq!((status.as_str(), attempts), ("queued", 0), "{}: the job is handed back", b.label);

    // Nothing the node started is left: no ffmpeg (killed and reaped), no task.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let (children, tasks) = (children_named("ffmpeg", &id), runtime.metrics().num_alive_tasks());
        if children.is_empty() && tasks <= tasks_before {
            break;
        }
        assert!(Instant::now() < deadline, "{}: left behind: ffmpeg {children:?}, {tasks} tasks", b.label);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
