//! Playable first (issue 8, item 2): each video's head (its first second of ladder) runs in the
//! head lane, the rest of its ladder as niced pieces and a `finish` job in the encode lane, so no
//! video waits for another's ladder before it plays.

mod common;

use std::time::{Duration, Instant};

use common::{av_clip, backends};
use vidi_core::Repo;
use vidi_core::time::now_ms;

async fn running(repo: &dyn Repo, key: &str) -> bool {
    repo.job_state(key).await.unwrap().is_some_and(|(s, _, _)| s == "running")
}

/// With the defaults (one encode worker, one head worker), while the ladder of one video holds
/// the encode lane (its `finish` job runs its pieces), a second video uploaded meanwhile has its
/// head started at once, and becomes playable before the first ladder completes. (That ladders
/// are joined whole is `in_a_burst_every_video_plays_before_any_ladder_completes`'s part: here
/// the slow ladder is dropped with the server.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_videos_head_starts_while_another_ladder_holds_the_encode_lane() {
    let long =
        std::fs::read(av_clip("lifecycle-720p-20s.mp4", "size=1280x720:rate=30", "frequency=440", 20, &[])).unwrap();
    let short = std::fs::read(av_clip("first-360p-8s.mp4", "size=640x360:rate=30", "frequency=660", 8, &[])).unwrap();
    for b in backends() {
        // A slow preset: the first ladder holds the encode lane for minutes, the second video's
        // head (one second of 360p) takes seconds.
        let t = common::TestServer::start_with(&b, |c| {
            c.x264_preset = "slower".into();
            c.piece_secs = 4;
        })
        .await;
        assert_eq!((t.cfg.workers, t.cfg.head_workers), (1, 1), "the defaults");
        let repo = t.server.state.repo.clone();
        let first = t.create_video("ladder").await;
        assert_eq!(t.upload(&first, None, long.clone()).await.status(), 201);
        let finish_key = format!("finish:{first}");
        let deadline = Instant::now() + Duration::from_secs(120);
        while !running(repo.as_ref(), &finish_key).await {
            assert!(Instant::now() < deadline, "{}: the first ladder never reached its finish job", b.label);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // The head lane is free again: the first video is playable, its ladder is not complete.
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
        assert!(running(repo.as_ref(), &finish_key).await, "{}: the second head waited for the first ladder", b.label);
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
}

/// Playable first: three uploads at once, one encode worker and one head worker (the defaults).
/// Each video's head (its first second, the head lane) makes it playable before the rest of any
/// ladder (the encode lane, at a lower priority) completes: no video waits for the ladders of
/// the videos before it. Order, not seconds, is asserted: the machine may be loaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_burst_every_video_plays_before_any_ladder_completes() {
    let clip = av_clip("burst-360p-30s.mp4", "size=640x360:rate=30", "frequency=440", 30, &[]);
    let bytes = std::fs::read(clip).unwrap();
    for b in backends() {
        // A slower preset than the default keeps the ladders long beside the heads on any machine.
        let t = common::TestServer::start_with(&b, |c| c.x264_preset = "medium".into()).await;
        assert_eq!((t.cfg.workers, t.cfg.head_workers), (1, 1), "the defaults");
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
}
