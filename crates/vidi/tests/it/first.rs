//! Playable first (issue 8, item 2): each video's head (its first half-second of ladder) runs in the
//! head lane, the rest of its ladder as pieces (paused while a head encodes) and a `finish` job in the encode lane, so no
//! video waits for another's ladder before it plays.

use crate::common;
use crate::common::{Backend, av_clip, backend_test};
use std::time::{Duration, Instant};

use vidi_core::Repo;
use vidi_core::time::now_ms;

async fn running(repo: &dyn Repo, key: &str) -> bool {
    repo.job_state(key).await.unwrap().is_some_and(|(s, _, _)| s == "running")
}

/// Whether a job of video `id`'s ladder after its head (a piece, or its finish) is running.
async fn ladder_running(repo: &dyn Repo, id: &str) -> bool {
    for key in (1..10).map(|i| format!("piece:{id}:{i}")).chain([format!("finish:{id}")]) {
        if running(repo, &key).await {
            return true;
        }
    }
    false
}

backend_test!(a_second_videos_head_starts_while_another_ladder_holds_the_encode_lane, multi_thread = 2);
/// With the defaults (one encode worker, one head worker), while the ladder of one video holds
/// the encode lane (its pieces, then its `finish` job), a second video uploaded meanwhile has its
/// head started at once, and becomes playable before the first ladder completes. (That ladders
/// are joined whole is `in_a_burst_every_video_plays_before_any_ladder_completes`'s part: here
/// the slow ladder is dropped with the server.)
async fn a_second_videos_head_starts_while_another_ladder_holds_the_encode_lane(b: Backend) {
    let long =
        std::fs::read(av_clip("lifecycle-720p-20s.mp4", "size=1280x720:rate=30", "frequency=440", 20, &[])).unwrap();
    let short = std::fs::read(av_clip("first-360p-8s.mp4", "size=640x360:rate=30", "frequency=660", 8, &[])).unwrap();
    // A slow preset: the first ladder holds the encode lane for minutes, the second video's
    // head (one second of 360p) takes seconds.
    let t = common::TestServer::start_with(&b, |c| {
        c.encoding.x264_preset = "slower".into();
        c.encoding.piece_secs = 4;
    })
    .await;
    assert_eq!((t.cfg.jobs.workers, t.cfg.jobs.head_workers), (1, 1), "the defaults");
    let repo = t.server.state.repo.clone();
    let first = t.create_video("ladder").await;
    assert_eq!(t.upload(&first, None, long.clone()).await.status(), 201);
    // Its head done (the head lane is free again), its ladder running in the encode lane.
    let head_key = format!("encode:{first}");
    let deadline = Instant::now() + Duration::from_secs(120);
    while repo.job_state(&head_key).await.unwrap().is_some() || !ladder_running(repo.as_ref(), &first).await {
        assert!(Instant::now() < deadline, "{}: the first head never ended, or its ladder never ran", b.label);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let s: serde_json::Value = t.get(&format!("/videos/{first}/status")).await.json().await.unwrap();
    assert_eq!(s["encoding"]["playable"], true, "{}: {s}", b.label);

    let since = now_ms();
    let second = t.create_video("head meanwhile").await;
    assert_eq!(t.upload(&second, None, short.clone()).await.status(), 201);
    let head_key = format!("encode:{second}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !running(repo.as_ref(), &head_key).await {
        assert!(Instant::now() < deadline, "{}: the second head never started", b.label);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // (Its ladder's jobs follow one another in the one encode worker: between two of them
    // none runs for a moment, so the ladder's progress is read from the status instead.)
    let s: serde_json::Value = t.get(&format!("/videos/{first}/status")).await.json().await.unwrap();
    let q = s["encoding"]["qualities"].as_array().cloned().unwrap_or_default();
    assert!(q.iter().any(|q| q["status"] != "encoded"), "{}: the second head waited for the first ladder", b.label);
    t.wait_status(&second, 120, |s| s["encoding"]["playable"] == true).await;
    let s: serde_json::Value = t.get(&format!("/videos/{first}/status")).await.json().await.unwrap();
    let q = s["encoding"]["qualities"].as_array().cloned().unwrap_or_default();
    assert!(q.iter().any(|q| q["status"] != "encoded"), "{}: the first ladder completed first: {s}", b.label);
    let heads: Vec<_> = repo.job_timings("head", since).await.unwrap();
    assert_eq!(heads.len(), 1, "{}: {heads:?}", b.label);
    assert_eq!(heads[0].kind, "encode", "{}: {heads:?}", b.label);
    let waited = heads[0].started_at.expect("started") - heads[0].run_at;
    eprintln!("{}: the second head started {waited} ms after it was due", b.label);
    assert!(waited < 2000, "{}: the second head queued {waited} ms", b.label);
}

backend_test!(in_a_burst_every_video_plays_before_any_ladder_completes, multi_thread = 2);
/// Playable first: three uploads at once, one encode worker and one head worker (the defaults).
/// Each video's head (its first half-second, the head lane) makes it playable before the rest of any
/// ladder (the encode lane, at a lower priority) completes: no video waits for the ladders of
/// the videos before it. Order, not seconds, is asserted: the machine may be loaded.
async fn in_a_burst_every_video_plays_before_any_ladder_completes(b: Backend) {
    let clip = av_clip("burst-360p-30s.mp4", "size=640x360:rate=30", "frequency=440", 30, &[]);
    let bytes = std::fs::read(clip).unwrap();
    // A slower preset than the default keeps the ladders long beside the heads on any machine.
    let t = common::TestServer::start_with(&b, |c| c.encoding.x264_preset = "medium".into()).await;
    assert_eq!((t.cfg.jobs.workers, t.cfg.jobs.head_workers), (1, 1), "the defaults");
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(t.create_video(&format!("burst {i}")).await);
    }
    let uploads = ids.iter().map(|id| t.upload(id, None, bytes.clone()));
    for r in futures::future::join_all(uploads).await {
        assert_eq!(r.status(), 201);
    }
    let t0 = Instant::now();
    let (mut playable, mut encoded) = (vec![None; ids.len()], vec![None; ids.len()]);
    while encoded.iter().any(Option::is_none) {
        assert!(t0.elapsed() < Duration::from_secs(600), "{}: not encoded: {encoded:?}", b.label);
        for (i, id) in ids.iter().enumerate() {
            let s: serde_json::Value = t.get(&format!("/videos/{id}/status")).await.json().await.unwrap();
            let q = s["encoding"]["qualities"].as_array().cloned().unwrap_or_default();
            assert!(q.iter().all(|q| q["status"] != "failed"), "{}: {s}", b.label);
            if playable[i].is_none() && s["encoding"]["playable"] == true {
                playable[i] = Some(t0.elapsed());
            }
            if encoded[i].is_none() && !q.is_empty() && q.iter().all(|q| q["status"] == "encoded") {
                encoded[i] = Some(t0.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("{}: playable after {playable:?}, encoded after {encoded:?}", b.label);
    let last_playable = playable.iter().map(|p| p.expect("playable before encoded")).max().unwrap();
    let first_encoded = encoded.iter().map(|e| e.unwrap()).min().unwrap();
    assert!(
        last_playable < first_encoded,
        "{}: a video waited for another's ladder: playable {playable:?}, encoded {encoded:?}",
        b.label
    );
    // The head and the rest are joined into one playlist per rendition.
    let playlist = t.http.get(format!("{}/vod/{}/hls/360p/index.m3u8", t.url, ids[2])).send().await.unwrap();
    let playlist = playlist.text().await.unwrap();
    assert!(playlist.contains("seg_00000.ts") && playlist.contains("seg_p001_00000.ts"), "{playlist}");
    assert!(playlist.ends_with("#EXT-X-ENDLIST\n"), "{playlist}");
}

backend_test!(a_video_in_pieces_records_one_event_per_rendition_across_retries, multi_thread = 2);
/// A video in pieces completes each quality in its `finish` job, not in its head: one
/// `video.encoding.quality.completed` per rendition and one for the MP4, none before the ladder is
/// whole; encoding it again (as a retried encode would) and a retried finish record nothing more.
async fn a_video_in_pieces_records_one_event_per_rendition_across_retries(b: Backend) {
    use vidi_core::event::EventBody;
    use vidi_core::id::VideoId;
    use vidi_core::jobs::{self, JobKind};

    let clip = std::fs::read(av_clip("first-360p-8s.mp4", "size=640x360:rate=30", "frequency=660", 8, &[])).unwrap();
    let t = common::TestServer::start_with(&b, |c| c.encoding.piece_secs = 4).await;
    let repo = t.server.state.repo.clone();
    let ws = t.ws().await;
    let id = t.create_video("pieces").await;
    let vid = VideoId::parse(&id).unwrap();
    let ended = |key: String| {
        let repo = repo.clone();
        let label = b.label.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(300);
            while repo.job_state(&key).await.unwrap().is_some() {
                assert!(Instant::now() < deadline, "{label}: {key} never ended");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let events = || {
        let repo = repo.clone();
        let (ws, id) = (ws.clone(), id.clone());
        async move {
            let mut got: Vec<(String, String)> = repo
                .events_after(Some(&ws), None, 1000)
                .await
                .unwrap()
                .into_iter()
                .filter_map(|e| match e.body {
                    EventBody::QualityCompleted { video_id, encoding, quality } if video_id.as_str() == id => {
                        Some((encoding.as_str().to_string(), quality))
                    }
                    _ => None,
                })
                .collect();
            got.sort();
            got
        }
    };
    assert_eq!(t.upload(&id, None, clip.clone()).await.status(), 201);
    // Every quality is encoded only by the finish job (the head job queued it and ended).
    let all_encoded = |s: &serde_json::Value| {
        s["encoding"]["qualities"]
            .as_array()
            .is_some_and(|q| !q.is_empty() && q.iter().all(|q| q["status"] == "encoded"))
    };
    t.wait_status(&id, 300, all_encoded).await;
    ended(format!("finish:{id}")).await;
    let status: serde_json::Value = t.get(&format!("/videos/{id}/status")).await.json().await.unwrap();
    let mut want: Vec<(String, String)> = status["encoding"]["qualities"]
        .as_array()
        .unwrap()
        .iter()
        .inspect(|q| assert_eq!(q["status"], "encoded", "{}: {status}", b.label))
        .map(|q| (q["type"].as_str().unwrap().to_string(), q["quality"].as_str().unwrap().to_string()))
        .collect();
    want.sort();
    assert_eq!(want.iter().filter(|(k, _)| k == "mp4").count(), 1, "{}: {status}", b.label);
    assert_eq!(events().await, want, "{}: one event per rendition and one for the MP4", b.label);
    // Joined from the head (piece 0) and the two pieces after it.
    let playlist = t.http.get(format!("{}/vod/{id}/hls/360p/index.m3u8", t.url)).send().await.unwrap();
    let playlist = playlist.text().await.unwrap();
    for seg in ["seg_00000.ts", "seg_p001_00000.ts", "seg_p002_00000.ts"] {
        assert!(playlist.contains(seg), "{}: no {seg} in {playlist}", b.label);
    }
    assert!(playlist.ends_with("#EXT-X-ENDLIST\n"), "{playlist}");

    // Encoded again from the head, then its finish again: no new event.
    let encode = JobKind::Encode { video_id: vid.clone(), workspace_id: Some(ws.clone()), growing: None };
    let waker = &t.server.state.waker;
    assert!(jobs::enqueue(repo.as_ref(), waker, &encode, now_ms(), 3).await.unwrap());
    ended(format!("encode:{id}")).await;
    ended(format!("finish:{id}")).await;
    // 8 s in pieces of 4 s: the head (0–1 s), then 1–5 s and 5–8 s.
    let finish = JobKind::Finish { video_id: vid.clone(), workspace_id: ws.clone(), pieces: 3 };
    assert!(jobs::enqueue(repo.as_ref(), waker, &finish, now_ms(), 3).await.unwrap());
    ended(format!("finish:{id}")).await;
    let s = t.wait_status(&id, 60, all_encoded).await;
    assert_eq!(s["encoding"]["playable"], true, "{}: {s}", b.label);
    assert_eq!(events().await, want, "{}: encoding again added or lost events", b.label);
}

backend_test!(a_head_gives_its_lane_back_before_its_sound_ends, multi_thread = 2);
/// A head gives the head lane back once its video plays, not when its whole sound is encoded
/// (AAC runs at ~20x real time: a long video's sound would hold the lane for a twentieth of its
/// length, and then pause for the next heads): with one head worker, a second video becomes playable while the first one's head job,
/// still encoding three minutes of sound, runs on.
async fn a_head_gives_its_lane_back_before_its_sound_ends(b: Backend) {
    let long =
        std::fs::read(av_clip("first-240p-180s.mp4", "size=320x240:rate=10", "frequency=440", 180, &[])).unwrap();
    let t = common::TestServer::start(&b).await;
    assert_eq!(t.cfg.jobs.head_workers, 1, "the default");
    let repo = t.server.state.repo.clone();
    let first = t.create_video("long sound").await;
    assert_eq!(t.upload(&first, None, long.clone()).await.status(), 201);
    t.wait_status(&first, 120, |s| s["encoding"]["playable"] == true).await;
    let first_head = format!("encode:{first}");
    assert!(running(repo.as_ref(), &first_head).await, "{}: the first head ended with its sound already", b.label);

    let second = t.create_video("next head").await;
    assert_eq!(t.upload(&second, None, long).await.status(), 201);
    t.wait_status(&second, 120, |s| s["encoding"]["playable"] == true).await;
    assert!(
        running(repo.as_ref(), &first_head).await,
        "{}: the second video played only after the first head's sound ended",
        b.label
    );
    // The first head's sound is still growing: its playlist is not ended yet.
    let audio = t.http.get(format!("{}/vod/{first}/hls/audio/index.m3u8", t.url)).send().await.unwrap();
    assert_eq!(audio.status(), 200, "{}", b.label);
    assert!(!audio.text().await.unwrap().contains("#EXT-X-ENDLIST"), "{}", b.label);
    // And it ends, with the whole sound.
    let deadline = Instant::now() + Duration::from_secs(300);
    while repo.job_state(&first_head).await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "{}: the first head never ended", b.label);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let audio = t.http.get(format!("{}/vod/{first}/hls/audio/index.m3u8", t.url)).send().await.unwrap();
    let audio = audio.text().await.unwrap();
    assert!(audio.ends_with("#EXT-X-ENDLIST\n"), "{}: {audio}", b.label);
}

/// The ffmpeg processes of this test process whose command line contains `needle`, with the
/// state letter of each (`T`: stopped).
fn ffmpeg_states(needle: &str) -> Vec<(u32, char, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if !cmd.split(' ').next().is_some_and(|p| p.ends_with("ffmpeg")) || !cmd.contains(needle) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let state = stat[stat.rfind(')').unwrap() + 2..].chars().next().unwrap();
        out.push((pid, state, cmd));
    }
    out
}

backend_test!(pieces_pause_while_another_video_encodes_its_head, multi_thread = 2);
/// The wiring of `vidi_media::priority` seen from outside: while a second video's head encodes,
/// the piece encoders of a first video's ladder are stopped (SIGSTOP, state `T` in /proc), and
/// they run again once that head is done.
async fn pieces_pause_while_another_video_encodes_its_head(b: Backend) {
    let long = std::fs::read(av_clip("first-360p-60s.mp4", "size=640x360:rate=30", "frequency=440", 60, &[])).unwrap();
    let short = std::fs::read(av_clip("first-360p-8s.mp4", "size=640x360:rate=30", "frequency=660", 8, &[])).unwrap();
    // A slow preset keeps the first video's pieces running for minutes.
    let t = common::TestServer::start_with(&b, |c| {
        c.encoding.x264_preset = "slower".into();
        c.encoding.piece_secs = 10;
    })
    .await;
    let first = t.create_video("ladder").await;
    assert_eq!(t.upload(&first, None, long).await.status(), 201);
    let pieces = format!("/{first}-p");
    let deadline = Instant::now() + Duration::from_secs(120);
    while ffmpeg_states(&pieces).is_empty() {
        assert!(Instant::now() < deadline, "{}: no piece of the first video ever ran", b.label);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let second = t.create_video("head").await;
    let upload = t.upload(&second, None, short);
    let head = format!("/{second}-");
    let watch = async {
        // Polled until the second video plays: was every piece stopped at some moment while its
        // head's picture encoder ran?
        let mut seen_head = false;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            assert!(Instant::now() < deadline, "{}: the second head never ran", b.label);
            let heads: Vec<_> = ffmpeg_states(&head)
                .into_iter()
                .filter(|(_, s, cmd)| {
                    *s != 'Z' && cmd.contains("-var_stream_map") && !cmd.contains(&format!("/{second}-p"))
                })
                .collect();
            if !heads.is_empty() {
                seen_head = true;
                let states = ffmpeg_states(&pieces);
                if !states.is_empty() && states.iter().all(|(_, s, _)| *s == 'T') {
                    return;
                }
            } else if seen_head {
                panic!("{}: the second head ran while the first video's pieces kept running", b.label);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    let (r, ()) = tokio::join!(upload, watch);
    assert_eq!(r.status(), 201);
    t.wait_status(&second, 120, |s| s["encoding"]["playable"] == true).await;
    // And the pieces run again once no head is left.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let states = ffmpeg_states(&pieces);
        if states.iter().any(|(_, s, _)| *s != 'T') {
            break;
        }
        assert!(Instant::now() < deadline, "{}: the pieces stayed stopped: {states:?}", b.label);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
