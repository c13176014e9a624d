//! The job queue on both databases: exclusive claims under concurrency, the reaper, bounded
//! attempts; and a worker killed with SIGKILL mid-encode whose job another process finishes.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common;
use crate::common::process::Install;
use crate::common::{Backend, av_clip, backend_test, config_for};
use serde_json::json;
use vidi_core::Repo;
use vidi_core::time::now_ms;

backend_test!(two_workers_never_run_the_same_job, multi_thread = 4);
async fn two_workers_never_run_the_same_job(b: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let repo: Arc<dyn Repo> = vidi::open_repo(&config_for(&b, dir.path())).await.unwrap();
    for i in 0..40 {
        assert!(repo.enqueue_job("test", &json!({ "i": i }), &format!("test:{i}"), now_ms(), 3).await.unwrap());
    }
    // The same work queued twice is one job.
    assert!(!repo.enqueue_job("test", &json!({ "i": 0 }), "test:0", now_ms(), 3).await.unwrap());
    let claimers = (0..4).map(|w| {
        let repo = repo.clone();
        tokio::spawn(async move {
            let mut mine = Vec::new();
            while let Some(job) = repo.claim_job(&format!("w{w}"), now_ms()).await.unwrap() {
                mine.push(job.payload["i"].as_i64().unwrap());
                repo.complete_job(&job.id, &format!("w{w}"), now_ms()).await.unwrap();
            }
            mine
        })
    });
    let mut all = Vec::new();
    for c in claimers {
        all.extend(c.await.unwrap());
    }
    all.sort();
    assert_eq!(all, (0..40).collect::<Vec<_>>(), "{}: every job exactly once", b.label);
}

backend_test!(the_reaper_requeues_lost_jobs_and_gives_up_after_max_attempts);
async fn the_reaper_requeues_lost_jobs_and_gives_up_after_max_attempts(b: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let repo = vidi::open_repo(&config_for(&b, dir.path())).await.unwrap();
    repo.enqueue_job("test", &json!({}), "reap", now_ms(), 2).await.unwrap();
    let first = repo.claim_job("dead", now_ms()).await.unwrap().unwrap();
    assert_eq!(first.attempts, 1);
    assert!(repo.claim_job("other", now_ms()).await.unwrap().is_none(), "held jobs are not handed out");
    // The dead worker never heartbeats: its job goes back to the queue.
    assert_eq!(repo.reap_jobs(now_ms() + 1, now_ms()).await.unwrap(), 1);
    assert!(!repo.heartbeat_job(&first.id, "dead", now_ms()).await.unwrap(), "the lost worker learns it lost the job");
    let second = repo.claim_job("other", now_ms()).await.unwrap().unwrap();
    assert_eq!((second.id.as_str(), second.attempts), (first.id.as_str(), 2));
    // Out of attempts: failed for good rather than looping forever.
    repo.reap_jobs(now_ms() + 1, now_ms()).await.unwrap();
    assert!(repo.claim_job("third", now_ms()).await.unwrap().is_none());
    let (status, attempts, error) = repo.job_state(&first.id).await.unwrap().unwrap();
    assert_eq!((status.as_str(), attempts), ("failed", 2), "{}: {error:?}", b.label);
    // Retries wait for their time.
    repo.enqueue_job("test", &json!({}), "later", now_ms(), 3).await.unwrap();
    let j = repo.claim_job("w", now_ms()).await.unwrap().unwrap();
    repo.fail_job(&j.id, "w", "boom", Some(now_ms() + 60_000), now_ms()).await.unwrap();
    assert!(repo.claim_job("w", now_ms()).await.unwrap().is_none());
    assert!(repo.claim_job("w", now_ms() + 61_000).await.unwrap().is_some());
}

backend_test!(a_keyed_claim_takes_only_jobs_under_its_prefix);
async fn a_keyed_claim_takes_only_jobs_under_its_prefix(b: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let repo = vidi::open_repo(&config_for(&b, dir.path())).await.unwrap();
    repo.enqueue_job("test", &json!({ "n": 0 }), "other:vi1", now_ms(), 3).await.unwrap();
    repo.enqueue_job("test", &json!({ "n": 1 }), "piece:vi1:1", now_ms(), 3).await.unwrap();
    repo.enqueue_job("test", &json!({ "n": 2 }), "piece:vi2:1", now_ms(), 3).await.unwrap();
    let j = repo.claim_job_keyed("lead", "piece:vi1:", now_ms()).await.unwrap().unwrap();
    assert_eq!(j.payload["n"], 1, "{}", b.label);
    assert!(repo.claim_job_keyed("lead", "piece:vi1:", now_ms()).await.unwrap().is_none());
    // The others are still there for anyone.
    let mut rest = vec![
        repo.claim_job("w", now_ms()).await.unwrap().unwrap().payload["n"].as_i64().unwrap(),
        repo.claim_job("w", now_ms()).await.unwrap().unwrap().payload["n"].as_i64().unwrap(),
    ];
    rest.sort();
    assert_eq!(rest, [0, 2], "{}", b.label);
}

backend_test!(a_worker_killed_mid_encode_has_its_job_finished_by_another, multi_thread = 2);
async fn a_worker_killed_mid_encode_has_its_job_finished_by_another(b: Backend) {
    vidi::install_crypto();
    let source = av_clip("long-720p.mp4", "size=1280x720:rate=30", "frequency=440", 20, &[]);
    let dir = tempfile::tempdir().unwrap();
    let vidi = Install::new(&b, dir.path(), &[("VIDI_JOB_STALE_SECS", "3")]);
    let mut server = vidi.serve().await;
    let id = vidi.create_video("killed").await;
    assert_eq!(vidi.upload(&id, None, std::fs::read(&source).unwrap()).await.status(), 201);
    // Kill the only worker while it encodes.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = vidi.status(&id).await.unwrap();
        if s["encoding"]["qualities"].as_array().is_some_and(|q| q.iter().any(|q| q["status"] == "encoding")) {
            break;
        }
        assert!(Instant::now() < deadline, "never started encoding: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    // On S3 it leaves its copy of the source (see `vidi_worker::sources`), maybe half-written.
    let copies = |dir: &std::path::Path| -> Vec<String> {
        let names = std::fs::read_dir(dir.join(".inputs")).into_iter().flatten().flatten();
        names.map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with("copies-")).collect()
    };
    let left = copies(dir.path());
    // Its ffmpeg dies with it (PR_SET_PDEATHSIG); a new process (API and worker) takes over.
    let _server = vidi.serve().await;
    let deadline = Instant::now() + Duration::from_secs(240);
    let done = loop {
        if let Some(s) = vidi.status(&id).await {
            let q = s["encoding"]["qualities"].as_array().cloned().unwrap_or_default();
            if !q.is_empty() && q.iter().all(|q| q["status"] == "encoded") {
                break s;
            }
        }
        assert!(Instant::now() < deadline, "{}: the job was never finished", b.label);
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(done["encoding"]["playable"], true);
    let playlist =
        vidi.http.get(format!("{}/vod/{id}/hls/720p/index.m3u8", vidi.url)).send().await.unwrap().text().await.unwrap();
    assert!(playlist.contains("#EXT-X-ENDLIST"), "{playlist}");
    let segs: HashSet<&str> = playlist.lines().filter(|l| l.ends_with(".ts")).collect();
    assert!(segs.len() >= 10, "a 20 s video has all its segments: {playlist}");
    // The new process removed the dead one's copy at its start, unread: it made its own.
    let now = copies(dir.path());
    assert!(left.iter().all(|n| !now.contains(n)), "{}: the killed process's {left:?} left in {now:?}", b.label);
}

backend_test!(a_probed_video_whose_encoding_was_never_queued_is_queued_at_start);
async fn a_probed_video_whose_encoding_was_never_queued_is_queued_at_start(b: Backend) {
    let bytes = common::small_video();
    let path = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("media/small.mp4");
    // No worker in this process: the jobs stay where the test can see them.
    let t = common::TestServer::start_with(&b, |c| c.jobs.workers = 0).await;
    let id = t.create_video("lost job").await;
    assert_eq!(t.upload(&id, None, bytes.clone()).await.status(), 201);
    let repo = t.server.state.repo.clone();
    // Do what the probe job does, and lose the job as a crash before it queued the encoding
    // would.
    let job = repo.claim_job("gone", now_ms()).await.unwrap().expect("the upload queued a probe");
    assert_eq!((job.kind.as_str(), &job.payload["videoId"]), ("probe", &json!(id)), "{}", b.label);
    let probe = vidi_media::probe(&vidi_media::Media::default(), path.to_str().unwrap()).await.unwrap().unwrap();
    let vid = vidi_core::id::VideoId::parse(&id).unwrap();
    repo.set_probe(&t.ws().await, &vid, &vidi_core::model::ProbeOutcome::Probed(probe)).await.unwrap();
    repo.fail_job(&job.id, "gone", "lost", None, now_ms()).await.unwrap();
    assert!(repo.claim_job("w", now_ms()).await.unwrap().is_none());
    vidi_api::ingest::recover(t.server.state.clone()).await;
    let again = repo.claim_job("w", now_ms()).await.unwrap().expect("recovery queued it again");
    assert_eq!((again.kind.as_str(), &again.payload["videoId"]), ("encode", &json!(id)), "{}", b.label);
}

backend_test!(a_complete_upload_whose_assembly_was_lost_is_queued_at_start);
/// An upload whose assembly job was lost (a node older than these jobs, or one that could not
/// queue it) is queued again at start, as an assembly; queueing it twice is one job.
async fn a_complete_upload_whose_assembly_was_lost_is_queued_at_start(b: Backend) {
    let bytes = common::big_video();
    let parts: Vec<Vec<u8>> = bytes.chunks(5 * 1024 * 1024).map(<[u8]>::to_vec).collect();
    let n = parts.len();
    // No worker anywhere: the last part must not wait for an assembly nobody will run.
    let t = common::TestServer::start_with(&b, |c| {
        c.jobs.workers = 0;
        c.uploads.assembly_wait = std::time::Duration::ZERO;
    })
    .await;
    let id = t.create_video("lost assembly").await;
    for (i, p) in parts.iter().enumerate() {
        assert_eq!(t.upload(&id, Some(&format!("part {}/{n}", i + 1)), p.clone()).await.status(), 201);
    }
    let repo = t.server.state.repo.clone();
    let job = repo.claim_job("gone", now_ms()).await.unwrap().expect("the last part queued the assembly");
    assert_eq!((job.kind.as_str(), &job.payload["videoId"]), ("assemble", &json!(id)), "{}", b.label);
    repo.fail_job(&job.id, "gone", "lost", None, now_ms()).await.unwrap();
    vidi_api::ingest::recover(t.server.state.clone()).await;
    vidi_api::ingest::recover(t.server.state.clone()).await;
    let again = repo.claim_job("w", now_ms()).await.unwrap().expect("recovery queued it again");
    assert_eq!((again.kind.as_str(), &again.payload["videoId"]), ("assemble", &json!(id)), "{}", b.label);
    assert!(repo.claim_job("w", now_ms()).await.unwrap().is_none(), "{}: queued once", b.label);
}

async fn running(repo: &dyn Repo, key: &str) -> bool {
    repo.job_state(key).await.unwrap().is_some_and(|(s, _, _)| s == "running")
}

backend_test!(a_short_job_runs_while_an_encode_holds_the_encode_lane, multi_thread = 2);
/// Lanes: with the default configuration, a probe queued while a ladder runs (whole, since
/// nothing is split here, so in the head lane) starts within a second and finishes while the
/// ladder still runs.
async fn a_short_job_runs_while_an_encode_holds_the_encode_lane(b: Backend) {
    let clip = av_clip("lifecycle-720p-20s.mp4", "size=1280x720:rate=30", "frequency=440", 20, &[]);
    let long = std::fs::read(clip).unwrap();
    let t = common::TestServer::start_with(&b, |c| {
        // One job for the whole video at a slow preset: the encode lane stays busy.
        c.encoding.x264_preset = "medium".into();
        c.encoding.piece_secs = 0;
    })
    .await;
    assert_eq!(t.cfg.jobs.workers, 1, "the default: one encode worker");
    let repo = t.server.state.repo.clone();
    let busy = t.create_video("ladder").await;
    assert_eq!(t.upload(&busy, None, long.clone()).await.status(), 201);
    let encode_key = format!("encode:{busy}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !running(repo.as_ref(), &encode_key).await {
        assert!(Instant::now() < deadline, "{}: the encode never started", b.label);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let since = now_ms();
    let small = t.create_video("probed meanwhile").await;
    assert_eq!(t.upload(&small, None, common::small_video()).await.status(), 201);
    t.wait_status(&small, 30, |s| s["encoding"]["metadata"]["width"] == 320).await;
    assert!(running(repo.as_ref(), &encode_key).await, "{}: the probe waited for the ladder", b.label);
    let probes: Vec<_> =
        repo.job_timings("short", since).await.unwrap().into_iter().filter(|j| j.kind == "probe").collect();
    assert_eq!(probes.len(), 1, "{}: {probes:?}", b.label);
    let waited = probes[0].started_at.expect("started") - probes[0].run_at;
    eprintln!("{}: the probe started {waited} ms after it was due", b.label);
    assert!(waited < 1000, "{}: the probe queued {waited} ms", b.label);
}

backend_test!(a_crashing_encoder_is_retried_then_fails_the_video_with_its_reason, multi_thread = 2);
/// An encoder that crashes: once, the job is retried and the video encodes; every time, the video
/// fails after its bounded attempts with the crash as its reason, and other videos keep encoding.
async fn a_crashing_encoder_is_retried_then_fails_the_video_with_its_reason(b: Backend) {
    let dir = tempfile::tempdir().unwrap();
    // ffmpeg, except that a ladder encode dies of SIGSEGV while `crash-always` exists, or
    // once when `crash-once` does (it removes the file as it dies).
    let script = dir.path().join("ffmpeg");
    let marks = dir.path().display().to_string();
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncase \"$*\" in *'-f hls'*)\n  [ -e {marks}/crash-always ] && kill -SEGV $$\n  \
             rm {marks}/crash-once 2>/dev/null && kill -SEGV $$\nesac\nexec ffmpeg \"$@\"\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let t = common::TestServer::start_with(&b, |c| {
        c.encoding.ffmpeg = script.display().to_string();
        c.jobs.retry_base = Duration::from_secs(1);
        // The wrapper removes its mark outside the encoder's scratch, which the Landlock jail
        // rightly forbids; this test is about crashes, not confinement.
        c.encoding.sandbox = false;
    })
    .await;
    let encoded = |s: &serde_json::Value| {
        s["encoding"]["qualities"]
            .as_array()
            .is_some_and(|q| !q.is_empty() && q.iter().all(|q| q["status"] == "encoded"))
    };
    let failed = |s: &serde_json::Value| {
        s["encoding"]["qualities"]
            .as_array()
            .is_some_and(|q| !q.is_empty() && q.iter().all(|q| q["status"] == "failed"))
    };

    // Crashes once: the retry encodes it.
    std::fs::write(dir.path().join("crash-once"), "").unwrap();
    let once = t.create_video("crashes once").await;
    assert_eq!(t.upload(&once, None, common::small_video()).await.status(), 201);
    let s = t.wait_status(&once, 60, |s| encoded(s) || failed(s)).await;
    assert!(encoded(&s) && s["encoding"]["playable"] == true, "{}: {s}", b.label);
    assert!(!dir.path().join("crash-once").exists(), "the encoder did crash once");

    // Crashes every time: failed after the bounded attempts, with the crash as the reason.
    std::fs::write(dir.path().join("crash-always"), "").unwrap();
    let always = t.create_video("crashes always").await;
    assert_eq!(t.upload(&always, None, common::small_video()).await.status(), 201);
    let s = t.wait_status(&always, 60, |s| encoded(s) || failed(s)).await;
    assert!(failed(&s) && s["encoding"]["playable"] == false, "{}: {s}", b.label);
    let ws = t.server.state.repo.default_workspace().await.unwrap().unwrap();
    let v = t.server.state.repo.get_video(&ws, &vidi_core::id::VideoId::parse(&always).unwrap()).await.unwrap();
    let reason = v.encoding.error.unwrap_or_default();
    assert!(reason.contains("SIGSEGV") || reason.contains("signal"), "{}: {reason}", b.label);
    // It stays failed (no endless retries), and the next video encodes.
    std::fs::remove_file(dir.path().join("crash-always")).unwrap();
    let next = t.create_video("after").await;
    assert_eq!(t.upload(&next, None, common::small_video()).await.status(), 201);
    let s = t.wait_status(&next, 60, |s| encoded(s) || failed(s)).await;
    assert!(encoded(&s), "{}: {s}", b.label);
    let s: serde_json::Value = t.get(&format!("/videos/{always}/status")).await.json().await.unwrap();
    assert!(failed(&s), "{}: {s}", b.label);
}

backend_test!(an_encoder_over_its_memory_bound_is_retried_then_fails_the_video_with_that_reason);
/// An encoder bounded below what x264 needs (`VIDI_ENCODE_MEMORY_BYTES`) fails like any other
/// failure: retried, then the video fails, its reason naming the bound. The probe, which has its
/// own bound, is not affected.
async fn an_encoder_over_its_memory_bound_is_retried_then_fails_the_video_with_that_reason(b: Backend) {
    let t = common::TestServer::start_with(&b, |c| {
        c.encoding.memory_bytes = 64 << 20;
        c.jobs.retry_base = Duration::from_secs(1);
    })
    .await;
    let id = t.create_video("over its memory bound").await;
    assert_eq!(t.upload(&id, None, common::small_video()).await.status(), 201);
    let ended = |s: &serde_json::Value| {
        s["encoding"]["qualities"]
            .as_array()
            .is_some_and(|q| !q.is_empty() && q.iter().all(|q| q["status"] == "failed" || q["status"] == "encoded"))
    };
    let s = t.wait_status(&id, 120, ended).await;
    assert_eq!(s["encoding"]["playable"], false, "{}: {s}", b.label);
    assert!(s["encoding"]["qualities"].as_array().unwrap().iter().all(|q| q["status"] == "failed"), "{s}");
    let ws = t.server.state.repo.default_workspace().await.unwrap().unwrap();
    let v = t.server.state.repo.get_video(&ws, &vidi_core::id::VideoId::parse(&id).unwrap()).await.unwrap();
    let reason = v.encoding.error.unwrap_or_default();
    assert!(reason.contains("memory bound of 64 MiB (VIDI_ENCODE_MEMORY_BYTES)"), "{}: {reason}", b.label);
}

/// Queues a probe of a video that does not exist (the worker claims it and drops it at once);
/// returns how long after being queued it started.
async fn queue_elsewhere(repo: &dyn Repo) -> i64 {
    use vidi_core::id::{VideoId, WorkspaceId, random_body};
    use vidi_core::jobs::{JobKind, Waker, enqueue};
    let job = JobKind::Probe {
        video_id: VideoId::generate(),
        workspace_id: WorkspaceId::from_trusted(format!("ws{}", random_body())),
    };
    let since = now_ms();
    // A waker of its own: only the notification reaches the worker process.
    enqueue(repo, &Waker::new(), &job, since, 1).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let started = repo.job_timings("short", since).await.unwrap().into_iter().find_map(|j| j.started_at);
        if let Some(at) = started {
            return at - since;
        }
        assert!(Instant::now() < deadline, "the worker never took the job");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// PostgreSQL: a job queued by one process wakes an idle worker of another at once (LISTEN/NOTIFY)
/// rather than at its next poll (every 500 ms, so a polled job starts 0–500 ms after it is
/// queued). Of eight jobs, at least five starting within 50 ms and seven within 150 ms would
/// happen by polling alone about once in 2,300 runs. One slow start is allowed: on two cores
/// busy with the suite's encodes, the worker process is now and then not scheduled for a
/// while (169 ms once here), which says nothing about how it was woken.
#[tokio::test]
async fn a_job_queued_on_one_node_wakes_a_worker_on_another_at_once() {
    vidi::install_crypto();
    let Some(b) = Backend::postgres_s3().filter(|b| b.pg_url.is_some()) else {
        eprintln!("SKIPPED: LISTEN/NOTIFY needs PostgreSQL (VIDI_TEST_PG_URL)");
        return;
    };
    common::scoped(async move {
        let dir = tempfile::tempdir().unwrap();
        let vidi = Install::new(&b, dir.path(), &[]);
        let mut cfg = config_for(&b, dir.path());
        cfg.database.schema = Some(vidi.env.iter().find(|(k, _)| k == "VIDI_DATABASE_SCHEMA").unwrap().1.clone());
        let repo = vidi::open_repo(&cfg).await.unwrap();
        let mut worker = vidi.command(&["worker"]);
        worker.stdout(std::process::Stdio::null());
        let _worker = common::process::Proc { child: worker.spawn().unwrap() };
        queue_elsewhere(repo.as_ref()).await; // the worker is up and listening
        let mut waits = Vec::new();
        for _ in 0..8 {
            // Idle long enough to be waiting, at a different point of its poll each time.
            tokio::time::sleep(Duration::from_millis(730)).await;
            waits.push(queue_elsewhere(repo.as_ref()).await);
        }
        eprintln!("{}: jobs started {waits:?} ms after being queued on another node", b.label);
        let mut sorted = waits.clone();
        sorted.sort_unstable();
        assert!(sorted[4] < 50 && sorted[6] < 150, "{}: {waits:?}", b.label);
    })
    .await;
}

/// Kinds of another subsystem, as a live-streaming crate declares its own: one works on a live
/// stream, one on nothing at all.
mod other_kinds {
    use std::sync::{Arc, Mutex};

    use serde_json::{Value, json};
    use vidi_core::id::LiveStreamId;
    use vidi_core::jobs::{JobError, JobHandler, JobSpec, Lane, StoredJob, Subject};
    use vidi_core::model::Job;

    pub const LANE: &str = "test-subjects";

    #[derive(Clone, Debug, PartialEq)]
    pub enum Other {
        Live(LiveStreamId),
        Upkeep,
    }

    impl JobSpec for Other {
        fn name(&self) -> &'static str {
            match self {
                Other::Live(_) => "test-live",
                Other::Upkeep => "test-upkeep",
            }
        }
        fn payload(&self) -> Value {
            match self {
                Other::Live(id) => json!({ "liveStreamId": id.as_str() }),
                Other::Upkeep => json!({}),
            }
        }
        fn unique_key(&self) -> String {
            format!("{}:{}", self.name(), self.payload())
        }
        fn lane(&self) -> Lane {
            Lane::named(LANE).unwrap()
        }
        fn subject(&self) -> Subject {
            match self {
                Other::Live(id) => Subject::LiveStream(id.clone()),
                Other::Upkeep => Subject::Nothing,
            }
        }
    }

    impl StoredJob for Other {
        fn of(job: &Job) -> Result<Self, String> {
            match job.kind.as_str() {
                "test-live" => job.payload["liveStreamId"]
                    .as_str()
                    .and_then(LiveStreamId::parse)
                    .map(Other::Live)
                    .ok_or_else(|| "not a live stream id".to_string()),
                "test-upkeep" => Ok(Other::Upkeep),
                k => Err(format!("unknown job kind {k}")),
            }
        }
    }

    /// Fails every run (a retry for the live stream's, a permanent failure for the upkeep) and
    /// records what it was asked to give up on.
    #[derive(Clone, Default)]
    pub struct Failing {
        pub runs: Arc<Mutex<Vec<Subject>>>,
        pub given_up: Arc<Mutex<Vec<(Subject, String)>>>,
    }

    #[async_trait::async_trait]
    impl JobHandler<Other> for Failing {
        async fn run(&self, job: &Other) -> Result<(), JobError> {
            self.runs.lock().unwrap().push(job.subject());
            match job {
                Other::Live(_) => Err(JobError::Retry("the ingest node is gone".into())),
                Other::Upkeep => Err(JobError::Permanent("nothing to sweep".into())),
            }
        }
        fn retry_after(&self, _attempt: u32) -> std::time::Duration {
            std::time::Duration::from_millis(10)
        }
        async fn give_up(&self, job: &Other, error: &str) {
            self.given_up.lock().unwrap().push((job.subject(), error.to_string()));
        }
    }
}

backend_test!(jobs_of_a_live_stream_or_of_nothing_run_and_give_up_without_touching_a_video, multi_thread = 2);
async fn jobs_of_a_live_stream_or_of_nothing_run_and_give_up_without_touching_a_video(b: Backend) {
    use other_kinds::{Failing, LANE, Other};
    use vidi_core::id::LiveStreamId;
    use vidi_core::jobs::{self, Lane, Registry, Subject};

    // An API-only node holds a video, which no job here may touch.
    let t = common::TestServer::start_with(&b, |c| c.jobs.workers = 0).await;
    let video = t.create_video("bystander").await;
    let before = (
        t.get(&format!("/videos/{video}")).await.text().await.unwrap(),
        t.get(&format!("/videos/{video}/status")).await.text().await.unwrap(),
    );
    let repo = t.server.state.repo.clone();
    let events = repo.events_after(None, None, 1000).await.unwrap().len();

    let live = LiveStreamId::parse("li400mYKSgQ6xs7taUeSaEKr").unwrap();
    let waker = vidi_core::jobs::Waker::new();
    for job in [Other::Live(live.clone()), Other::Upkeep] {
        assert!(jobs::enqueue(repo.as_ref(), &waker, &job, now_ms(), 2).await.unwrap());
    }
    let handler = Failing::default();
    let mut registry = Registry::new();
    registry.register::<Other>("test-live", handler.clone());
    registry.register::<Other>("test-upkeep", handler.clone());
    let cfg = vidi_worker::WorkerConfig { work_dir: t.dir.path().join(".work"), ..Default::default() };
    let ctx = vidi_worker::Ctx {
        repo: repo.clone(),
        blobs: t.server.state.blobs.clone(),
        media: vidi_media::Media::default(),
        sources: cfg.source_copies(),
        cfg,
        waker,
        held: vidi_worker::HeldJobs::default(),
        outbound: vidi_outbound::Guard::new(false, Duration::from_secs(1)).unwrap(),
    };
    let lane = vidi_worker::lane_service(&ctx, Arc::new(registry), Lane::named(LANE).unwrap(), 1);
    let stop = tokio_util::sync::CancellationToken::new();
    let running = vidi_core::service::start(vec![lane], stop.clone());

    let deadline = Instant::now() + Duration::from_secs(30);
    while handler.given_up.lock().unwrap().len() < 2 {
        assert!(Instant::now() < deadline, "{}: given up on {:?}", b.label, handler.given_up.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    running.wait().await.unwrap();

    // Each ran (the live stream's twice: it had two attempts) and its own handler gave it up.
    let mut runs = handler.runs.lock().unwrap().clone();
    runs.sort_by_key(|s| s.to_string());
    assert_eq!(runs, [Subject::LiveStream(live.clone()), Subject::LiveStream(live.clone()), Subject::Nothing]);
    let mut given_up = handler.given_up.lock().unwrap().clone();
    given_up.sort_by_key(|(s, _)| s.to_string());
    assert_eq!(
        given_up,
        [
            (Subject::LiveStream(live.clone()), "the ingest node is gone".to_string()),
            (Subject::Nothing, "nothing to sweep".to_string())
        ],
        "{}",
        b.label
    );
    // Failed for good: nothing of either is queued or running any more (a unique key is freed
    // when its job ends).
    for job in [Other::Live(live), Other::Upkeep] {
        let state = repo.job_state(&vidi_core::jobs::JobSpec::unique_key(&job)).await.unwrap();
        assert!(state.as_ref().is_none_or(|(s, _, _)| s == "failed"), "{}: {state:?}", b.label);
    }
    // The video and the events outbox are as they were.
    let after = (
        t.get(&format!("/videos/{video}")).await.text().await.unwrap(),
        t.get(&format!("/videos/{video}/status")).await.text().await.unwrap(),
    );
    assert_eq!(before, after, "{}", b.label);
    assert_eq!(repo.events_after(None, None, 1000).await.unwrap().len(), events, "{}", b.label);
}

backend_test!(a_split_video_runs_on_every_worker_node_and_the_jobs_table_says_which, multi_thread = 2);
/// Scaling out: a `vidi serve` and a `vidi worker` sharing the database and the store, each with
/// one encode worker, share the pieces of one long video; every piece, once done, names the node
/// that ran it (`@host:pid` in its worker's name), and both processes appear.
async fn a_split_video_runs_on_every_worker_node_and_the_jobs_table_says_which(b: Backend) {
    vidi::install_crypto();
    let source = av_clip("lifecycle-720p-20s.mp4", "size=1280x720:rate=30", "frequency=440", 20, &[]);
    let dir = tempfile::tempdir().unwrap();
    // Pieces of 4 s (five after the head), and a finish job that helps with one at a time.
    let vidi = Install::new(&b, dir.path(), &[("VIDI_PIECE_SECS", "4"), ("VIDI_PARALLEL_PIECES", "1")]);
    let mut cfg = config_for(&b, dir.path());
    cfg.database.schema = Some(vidi.env.iter().find(|(k, _)| k == "VIDI_DATABASE_SCHEMA").unwrap().1.clone());
    let repo = vidi::open_repo(&cfg).await.unwrap();
    let server = vidi.serve().await;
    let mut worker = vidi.command(&["worker"]);
    worker.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    let worker = common::process::Proc { child: worker.spawn().unwrap() };
    queue_elsewhere(repo.as_ref()).await; // both nodes are up
    let since = now_ms();
    let id = vidi.create_video("split").await;
    assert_eq!(vidi.upload(&id, None, std::fs::read(&source).unwrap()).await.status(), 201);
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let q = vidi.status(&id).await.map(|s| s["encoding"]["qualities"].clone()).unwrap_or_default();
        if q.as_array().is_some_and(|q| !q.is_empty() && q.iter().all(|q| q["status"] == "encoded")) {
            break;
        }
        assert!(Instant::now() < deadline, "{}: never encoded: {q}", b.label);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let pieces: Vec<_> =
        repo.job_timings("encode", since).await.unwrap().into_iter().filter(|j| j.kind == "piece").collect();
    assert_eq!(pieces.len(), 5, "{}: {pieces:?}", b.label);
    let mut nodes = HashSet::new();
    for p in &pieces {
        assert_eq!(p.status, "done", "{}: {p:?}", b.label);
        assert!(p.ended_at.is_some_and(|e| e >= p.started_at.unwrap()), "{}: {p:?}", b.label);
        let w = p.worker.as_deref().unwrap_or_else(|| panic!("{}: no worker kept: {p:?}", b.label));
        let pid = w.rsplit_once(':').and_then(|(_, pid)| pid.parse::<u32>().ok());
        nodes.insert(pid.unwrap_or_else(|| panic!("{}: no @host:pid in {w}", b.label)));
    }
    let both: HashSet<u32> = [server.child.id(), worker.child.id()].into();
    assert_eq!(nodes, both, "{}: the pieces ran on {nodes:?}: {pieces:?}", b.label);
}

fn all_encoded(s: &serde_json::Value) -> bool {
    s["encoding"]["qualities"].as_array().is_some_and(|q| !q.is_empty() && q.iter().all(|q| q["status"] == "encoded"))
}

backend_test!(a_finish_waiting_for_a_piece_run_elsewhere_frees_its_worker, multi_thread = 2);
/// A finish job whose last piece runs on another node only waits for it: its worker takes the
/// next job of its lane meanwhile. Here the test holds a piece of a first video as another node
/// would (claimed, heartbeating); the node's only encode worker still encodes a second video's
/// pieces, and the first video completes once the piece is handed back.
async fn a_finish_waiting_for_a_piece_run_elsewhere_frees_its_worker(b: Backend) {
    let source = av_clip("long-13s.mp4", "size=640x360:rate=25", "frequency=440:sample_rate=48000", 13, &[]);
    let bytes = std::fs::read(&source).unwrap();
    let t = common::TestServer::start_with(&b, |c| c.encoding.piece_secs = 4).await;
    assert_eq!(t.cfg.jobs.workers, 1, "the default: one encode worker");
    let repo = t.server.state.repo.clone();
    let first = t.create_video("first").await;
    assert_eq!(t.upload(&first, None, bytes.clone()).await.status(), 201);
    let prefix = format!("piece:{first}:");
    let deadline = Instant::now() + Duration::from_secs(60);
    let held = loop {
        if let Some(j) = repo.claim_job_keyed("elsewhere", &prefix, now_ms()).await.unwrap() {
            break j;
        }
        assert!(Instant::now() < deadline, "{}: the pieces were never queued", b.label);
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let beat = {
        let (repo, id) = (repo.clone(), held.id.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let _ = repo.heartbeat_job(&id, "elsewhere", now_ms()).await;
            }
        })
    };
    let second = t.create_video("second").await;
    assert_eq!(t.upload(&second, None, bytes).await.status(), 201);
    t.wait_status(&second, 180, all_encoded).await;
    let s = t.get(&format!("/videos/{first}/status")).await.json::<serde_json::Value>().await.unwrap();
    assert!(!all_encoded(&s), "{}: the first video cannot be whole without its piece: {s}", b.label);
    assert!(running(repo.as_ref(), &format!("finish:{first}")).await, "{}: its finish waits", b.label);
    beat.abort();
    repo.release_job(&held.id, "elsewhere", now_ms()).await.unwrap();
    t.wait_status(&first, 180, all_encoded).await;
}
