//! At the limits: a 4K source end to end (every rung of the ladder up to 2160p, timed), and a
//! full disk under the encoder (the video fails with a reason, the job gives up after its bounded
//! attempts, other videos keep encoding). On every configured backend.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use crate::common;
use crate::common::{Backend, TestServer, av_clip, backend_test};
use serde_json::Value;
use tokio::process::Command;

/// What ffprobe sees at `url`: the first video stream's size and the container's duration.
/// Async: ffprobe reads from the server under test, which runs on this runtime.
async fn ffprobe(url: &str) -> (u64, u64, f64) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height:format=duration"])
        .args(["-of", "json", url])
        .output()
        .await
        .expect("ffprobe runs");
    let j: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("ffprobe {url}: {out:?}"));
    let s = &j["streams"][0];
    let d = j["format"]["duration"].as_str().and_then(|d| d.parse().ok());
    match (s["width"].as_u64(), s["height"].as_u64(), d) {
        (Some(w), Some(h), Some(d)) => (w, h, d),
        _ => panic!("ffprobe {url}: {j}"),
    }
}

fn qualities(s: &Value) -> Vec<(String, String, String)> {
    s["encoding"]["qualities"]
        .as_array()
        .map(|q| {
            q.iter()
                .map(|q| {
                    let f = |k: &str| q[k].as_str().unwrap_or_default().to_string();
                    (f("type"), f("quality"), f("status"))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn all(s: &Value, status: &str) -> bool {
    let q = qualities(s);
    !q.is_empty() && q.iter().all(|(_, _, st)| st == status)
}

const LADDER: [(&str, &str); 6] = [
    ("240p", "426x240"),
    ("360p", "640x360"),
    ("480p", "854x480"),
    ("720p", "1280x720"),
    ("1080p", "1920x1080"),
    ("2160p", "3840x2160"),
];

backend_test!(a_4k_source_of_10_seconds_encodes_every_rung_up_to_2160p, multi_thread = 2);
async fn a_4k_source_of_10_seconds_encodes_every_rung_up_to_2160p(b: Backend) {
    // 3840x2160 for 10 s with a sine track. 5 frames per second keeps it cheap for CI: the cost is
    // x264 on six renditions, and every rung is still exercised (keyframes, segments, levels).
    let source = av_clip("4k-10s.mp4", "size=3840x2160:rate=5", "frequency=440", 10, &[]);
    let (w, h, source_s) = ffprobe(source.to_str().unwrap()).await;
    assert_eq!((w, h), (3840, 2160));
    assert!((source_s - 10.0).abs() < 0.5, "the source lasts {source_s} s");
    let bytes = std::fs::read(&source).unwrap();
    let mut timings = Vec::new();
    let t = TestServer::start(&b).await;
    let label = &b.label;
    let id = t.create_video("4k").await;
    let started = Instant::now();
    assert_eq!(t.upload(&id, None, bytes.clone()).await.status(), 201, "{label}");
    let uploaded = started.elapsed();
    t.wait_status(&id, 300, |s| s["encoding"]["playable"] == true || all(s, "failed")).await;
    let playable = started.elapsed();
    let st = t.wait_status(&id, 300, |s| all(s, "encoded") || qualities(s).iter().any(|q| q.2 == "failed")).await;
    let encoded = started.elapsed();
    timings.push(format!(
        "{label}: uploaded {:.1} s, playable {:.1} s, every rendition and the MP4 encoded {:.1} s",
        uploaded.as_secs_f64(),
        playable.as_secs_f64(),
        encoded.as_secs_f64()
    ));
    eprintln!("4K 10 s on {}", timings.last().unwrap());

    // Every rung from 240p to 2160p, and the MP4 (of the top one), encoded; playable.
    let mut expected: Vec<(String, String, String)> =
        LADDER.iter().map(|(q, _)| ("hls".into(), q.to_string(), "encoded".into())).collect();
    expected.push(("mp4".into(), "2160p".into(), "encoded".into()));
    assert_eq!(qualities(&st), expected, "{label}: {st}");
    assert_eq!(st["encoding"]["playable"], true, "{label}");
    assert_eq!(
        (st["encoding"]["metadata"]["width"].as_u64(), st["encoding"]["metadata"]["height"].as_u64()),
        (Some(3840), Some(2160))
    );

    // The master playlist lists the six variants, smallest first, up to 3840x2160.
    let video: Value = t.get(&format!("/videos/{id}")).await.json().await.unwrap();
    let hls_url = video["assets"]["hls"].as_str().unwrap().to_string();
    let r = t.http.get(&hls_url).send().await.unwrap();
    assert_eq!(r.status(), 200, "{label}");
    let master = r.text().await.unwrap();
    let variants: Vec<&str> = master.lines().filter(|l| l.starts_with("#EXT-X-STREAM-INF")).collect();
    assert_eq!(variants.len(), 6, "{label}: {master}");
    for (line, (_, res)) in variants.iter().zip(LADDER) {
        assert!(line.contains(&format!("RESOLUTION={res},")), "{label}: {line}");
    }
    assert!(variants[5].contains("avc1.640033"), "2160p is H.264 level 5.1: {}", variants[5]);

    // Every rendition lasts as long as the source; the top one is full 4K.
    for (q, res) in LADDER {
        let url = hls_url.replace("manifest.m3u8", &format!("{q}/index.m3u8"));
        let (w, h, d) = ffprobe(&url).await;
        assert_eq!(format!("{w}x{h}"), res, "{label} {q}");
        assert!((d - source_s).abs() < 0.5, "{label} {q}: {d} s, the source {source_s} s");
        let playlist = t.http.get(&url).send().await.unwrap().text().await.unwrap();
        assert!(playlist.contains("#EXT-X-ENDLIST"), "{label} {q} is finished");
    }

    // The MP4 is served, 4K, as long as the source.
    let mp4 = video["assets"]["mp4"].as_str().unwrap();
    let r = t.http.get(mp4).header("Range", "bytes=0-99").send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.headers()["content-type"].to_str().unwrap()), (206, "video/mp4"));
    let (w, h, d) = ffprobe(mp4).await;
    assert_eq!((w, h), (3840, 2160), "{label} mp4");
    assert!((d - source_s).abs() < 0.5, "{label} mp4: {d} s");

    // The thumbnail is a JPEG.
    let r = t.http.get(video["assets"]["thumbnail"].as_str().unwrap()).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.headers()["content-type"].to_str().unwrap()), (200, "image/jpeg"));
    assert_eq!(&r.bytes().await.unwrap()[..2], &[0xFF, 0xD8], "{label}");
    eprintln!(
        "4K 10 s source ({} bytes, debug build, x264 preset {}):",
        bytes.len(),
        vidi::Config::default().encoding.x264_preset
    );
    for t in timings {
        eprintln!("  {t}");
    }
}

// ---------------------------------------------------------------------------------------------
// Full disk.

/// A tmpfs mounted on a folder for the life of the value.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(err.lines().next().unwrap_or("mount failed").trim().to_string());
        }
        Ok(Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = std::process::Command::new("umount").arg(&self.0).status().is_ok_and(|s| s.success());
        if !unmounted {
            // Still in use (an encoder of a server being torn down): detach it now, freed when idle.
            let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

/// The worker's log events (`vidi_worker` target), as field maps: the test counts the attempts a
/// job made. Also echoed to the test's output.
static EVENTS: Mutex<Vec<BTreeMap<String, String>>> = Mutex::new(Vec::new());

struct Capture;

struct Fields(BTreeMap<String, String>);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
        self.0.insert(f.name().to_string(), format!("{v:?}"));
    }
    fn record_str(&mut self, f: &tracing::field::Field, v: &str) {
        self.0.insert(f.name().to_string(), v.to_string());
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_event(&self, e: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if e.metadata().target().starts_with("vidi_worker") {
            let mut f = Fields(BTreeMap::new());
            e.record(&mut f);
            EVENTS.lock().unwrap().push(f.0);
        }
    }
}

fn capture_worker_events() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        use tracing_subscriber::Layer;
        use tracing_subscriber::layer::SubscriberExt;
        let echo = tracing_subscriber::fmt::layer()
            .with_test_writer()
            .with_ansi(false)
            .with_filter(tracing_subscriber::EnvFilter::new("warn,vidi_worker=info"));
        let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Capture).with(echo));
    });
}

/// The worker's events about the first job that failed while encoding `video`:
/// `(attempt, message, error)` in order. Its error names the job's scratch folder: the head's
/// `<video>-<uuid>`, a piece's `<video>-p<n>-…`, a finish's `<video>-f-…`. Which of them runs
/// out of room first is the scheduler's business: a head keeps the other runs paused until its
/// video plays, so its half-second usually fits and the first piece is the one that fails (a
/// `finish` that ran that piece itself then fails with the same error, as another job).
fn job_events(video: &str) -> Vec<(String, String, String)> {
    let events = EVENTS.lock().unwrap();
    let first =
        events.iter().filter(|e| e.get("error").is_some_and(|x| x.contains(video))).find_map(|e| e.get("job")).cloned();
    events
        .iter()
        .filter(|e| e.get("job").is_some_and(|j| first.as_ref() == Some(j)) && e.contains_key("error"))
        .map(|e| {
            let f = |k: &str| e.get(k).cloned().unwrap_or_default();
            (f("attempt"), f("message"), f("error"))
        })
        .collect()
}

/// The encoder's scratch folder of a server started on `data_dir` (`vidi::worker_ctx`): where
/// ffmpeg writes the ladder before it is published.
fn work_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(".work")
}

/// 1 MiB of scratch space: the small video's whole job (its 240p ladder, MP4 and thumbnail,
/// ~0.3 MB) fits; the big one's ladder (three renditions, ~3 Mbit/s for 8 s) does not.
const SCRATCH: &str = "1m";

/// 854x480 for 8 s with noise, so x264 spends the bitrate the ladder asks for (~3 MB of output).
fn big_480p() -> Vec<u8> {
    std::fs::read(av_clip(
        "noisy-480p-8s.mp4",
        "size=854x480:rate=25",
        "frequency=440",
        8,
        &["-vf", "noise=alls=40:allf=t", "-b:v", "4M"],
    ))
    .unwrap()
}

backend_test!(a_full_disk_fails_the_video_with_a_reason_and_other_videos_keep_encoding, multi_thread = 2);
async fn a_full_disk_fails_the_video_with_a_reason_and_other_videos_keep_encoding(b: Backend) {
    // Mounting needs root. Say so plainly, and never skip on CI.
    let probe = tempfile::tempdir().unwrap();
    if let Err(e) = Tmpfs::mount(&probe.path().join("m"), "1m") {
        let uid = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap());
        let msg = format!("skipped: needs root for tmpfs (uid {uid}; {e})");
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}, and CI=true does not skip");
        eprintln!("{msg}");
        return;
    }
    capture_worker_events();
    let big = big_480p();
    let small = common::small_video();
    eprintln!("full disk: {}", full_disk_on(b, big, small).await);
}

async fn full_disk_on(b: Backend, big: Vec<u8>, small: Vec<u8>) -> String {
    let label = b.label.clone();
    // Retries after 5 s, then 20 s: room for another video to encode in between, and a shorter
    // test than the default 10 s and 40 s.
    let t = TestServer::start_with(&b, |c| c.jobs.retry_base = Duration::from_secs(5)).await;
    // Declared after the server: dropped (unmounted) before the server's folder is removed.
    let scratch = work_dir(t.dir.path());
    let _tmpfs = Tmpfs::mount(&scratch, SCRATCH).unwrap_or_else(|e| panic!("{label}: {e}"));
    let started = Instant::now();

    let big_id = t.create_video("too big for the disk").await;
    assert_eq!(t.upload(&big_id, None, big).await.status(), 201, "{label}");

    // The first attempt runs out of space and is queued again, later.
    let deadline = Instant::now() + Duration::from_secs(120);
    while job_events(&big_id).is_empty() {
        let s: Value = t.get(&format!("/videos/{big_id}/status")).await.json().await.unwrap();
        assert!(!all(&s, "encoded"), "{label}: the ladder cannot fit in {SCRATCH} of scratch: {s}");
        assert!(Instant::now() < deadline, "{label}: the first attempt never failed: {s}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let first_failure = started.elapsed();
    let first = job_events(&big_id);
    assert!(first[0].1.contains("will retry") && first[0].0 == "1", "{label}: {first:?}");

    // Meanwhile another video encodes, in the room the failed attempt gave back.
    let during = t.create_video("small, while the big one waits to retry").await;
    assert_eq!(t.upload(&during, None, small.clone()).await.status(), 201);
    let s = t.wait_status(&during, 120, |s| all(s, "encoded") || all(s, "failed")).await;
    assert!(all(&s, "encoded") && s["encoding"]["playable"] == true, "{label}: {s}");
    let s: Value = t.get(&format!("/videos/{big_id}/status")).await.json().await.unwrap();
    assert!(!all(&s, "failed"), "{label}: the big video has retries left: {s}");

    // The big one fails for good after its bounded attempts, and says so.
    let st = t.wait_status(&big_id, 240, |s| all(s, "failed")).await;
    let failed_after = started.elapsed();
    assert_eq!(st["encoding"]["playable"], false, "{label}: a ladder cut short is not playable: {st}");
    assert_eq!(st["ingest"]["status"], "uploaded", "{label}: the upload itself succeeded");
    let hls: Vec<String> = qualities(&st).into_iter().filter(|q| q.0 == "hls").map(|q| q.1).collect();
    assert_eq!(hls, ["240p", "360p", "480p"], "{label}: {st}");
    let ws = t.server.state.repo.default_workspace().await.unwrap().unwrap();
    let v = t.server.state.repo.get_video(&ws, &vidi_core::id::VideoId::parse(&big_id).unwrap()).await.unwrap();
    let reason = v.encoding.error.expect("the reason is kept");
    assert!(reason.to_lowercase().contains("no space left"), "{label}: {reason}");
    let events = job_events(&big_id);
    let attempts: Vec<(&str, &str)> = events.iter().map(|(a, m, _)| (a.as_str(), m.as_str())).collect();
    // At most three attempts (max_attempts), then no more. The first job of the video to fail for
    // good fails it, so the job followed here may not have used all of its attempts by then.
    let bounded = [("1", "job failed; will retry"), ("2", "job failed; will retry"), ("", "job failed for good")];
    assert!(
        !attempts.is_empty() && bounded.starts_with(&attempts),
        "{label}: three attempts (max_attempts), then no more: {events:?}"
    );
    assert!(events.iter().all(|e| e.2.to_lowercase().contains("no space left")), "{label}: {events:?}");
    // Nothing of the failed job is left in the scratch space. A video in pieces has a `finish`
    // job waiting for them: it sees the failure at its next poll (250 ms) and clears its scratch.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: Vec<_> = std::fs::read_dir(&scratch).unwrap().map(|e| e.unwrap().file_name()).collect();
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "{label}: scratch left behind: {left:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // And videos uploaded afterwards still encode.
    let after = t.create_video("small, after").await;
    assert_eq!(t.upload(&after, None, small).await.status(), 201);
    let s = t.wait_status(&after, 120, |s| all(s, "encoded") || all(s, "failed")).await;
    assert!(all(&s, "encoded") && s["encoding"]["playable"] == true, "{label}: {s}");
    let video: Value = t.get(&format!("/videos/{after}")).await.json().await.unwrap();
    let r = t.http.get(video["assets"]["hls"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(r.status(), 200, "{label}");
    // The big video still has no retry running: it stays failed.
    let s: Value = t.get(&format!("/videos/{big_id}/status")).await.json().await.unwrap();
    assert!(all(&s, "failed"), "{label}: {s}");
    format!(
        "{label}: first attempt out of space after {:.1} s, failed for good after {:.1} s, whole test {:.1} s; \
         reason: {reason}",
        first_failure.as_secs_f64(),
        failed_after.as_secs_f64(),
        started.elapsed().as_secs_f64()
    )
}
