//! The events outbox (issue: seams): a real encode records one `video.encoding.quality.completed`
//! per HLS rendition and one for the MP4, in the transaction that marks each encoded; encoding the
//! video again records nothing more; a change that cannot be made records no event.

use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::Value;
use vidi_core::event::{Encoding, EventBody};
use vidi_core::id::VideoId;
use vidi_core::time::now_ns;

backend_test!(one_event_per_rendition_and_for_the_mp4_even_when_encoded_again);
async fn one_event_per_rendition_and_for_the_mp4_even_when_encoded_again(b: Backend) {
    let clip = std::fs::read(av_clip("events-720p.mp4", "size=1280x720:rate=25", "frequency=440", 2, &[])).unwrap();
    let t = TestServer::start(&b).await;
    let repo = t.server.state.repo.clone();
    let ws = repo.default_workspace().await.unwrap().unwrap();
    let id = t.create_video("events").await;
    assert_eq!(t.upload(&id, None, clip.clone()).await.status(), 201);
    let encoded = |s: &Value| {
        s["encoding"]["qualities"]
            .as_array()
            .is_some_and(|q| !q.is_empty() && q.iter().all(|q| q["status"] == "encoded"))
    };
    let status = t.wait_status(&id, 120, encoded).await;
    let expected: Vec<(String, String)> = status["encoding"]["qualities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| (q["type"].as_str().unwrap().to_string(), q["quality"].as_str().unwrap().to_string()))
        .collect();
    assert!(expected.iter().filter(|(k, _)| k == "hls").count() >= 3, "{}: {status}", b.label);
    assert_eq!(expected.iter().filter(|(k, _)| k == "mp4").count(), 1);

    let mine = |events: Vec<vidi_core::event::Event>| -> Vec<(String, String, Value)> {
        events
            .into_iter()
            .filter_map(|e| match &e.body {
                EventBody::QualityCompleted { video_id, encoding, quality } if video_id.as_str() == id => {
                    Some((encoding.as_str().to_string(), quality.clone(), e.wire()))
                }
                _ => None,
            })
            .collect()
    };
    let first = mine(repo.events_after(Some(&ws), None, 1000).await.unwrap());
    let mut got: Vec<(String, String)> = first.iter().map(|(k, q, _)| (k.clone(), q.clone())).collect();
    got.sort();
    let mut want = expected.clone();
    want.sort();
    assert_eq!(got, want, "{}: one event per rendition and one for the MP4", b.label);
    for (_, q, wire) in &first {
        assert_eq!(wire["type"], "video.encoding.quality.completed");
        assert_eq!(wire["videoId"], id.as_str());
        assert_eq!(wire["quality"], q.as_str());
        let at = wire["emittedAt"].as_str().unwrap();
        // 2023-05-23T09:29:02.154104779Z: nanoseconds and Z, as api.video writes it.
        assert!(at.len() == 30 && at.ends_with('Z') && at.as_bytes()[19] == b'.', "{at}");
    }

    // Encoded again (as a retried encode would): the renditions complete again, no new event.
    // The first encode's job records its end just after the last output: wait for that, or
    // the second would be a no-op against the job still running.
    let ended = |what: &'static str| {
        let repo = repo.clone();
        let key = format!("encode:{id}");
        let label = b.label.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(120);
            while repo.job_state(&key).await.unwrap().is_some() {
                assert!(Instant::now() < deadline, "{label}: the {what} encode never ended");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    ended("first").await;
    // Queued as before payloads carried the workspace: the worker looks it up.
    let job =
        vidi_core::jobs::JobKind::Encode { video_id: VideoId::parse(&id).unwrap(), workspace_id: None, growing: None };
    let waker = &t.server.state.waker;
    assert!(vidi_core::jobs::enqueue(repo.as_ref(), waker, &job, vidi_core::time::now_ms(), 3).await.unwrap());
    ended("second").await;
    t.wait_status(&id, 60, encoded).await;
    let again = mine(repo.events_after(Some(&ws), None, 1000).await.unwrap());
    assert_eq!(again.len(), first.len(), "{}: encoding again added events", b.label);
    let vid = VideoId::parse(&id).unwrap();
    assert!(!repo.complete_quality(&ws, &vid, Encoding::Hls, "240p", now_ns()).await.unwrap());

    // An output that is not planned: neither the change nor an event.
    let before = repo.events_after(None, None, 1000).await.unwrap().len();
    let e = repo.complete_quality(&ws, &vid, Encoding::Hls, "4320p", now_ns()).await.unwrap_err();
    assert!(matches!(e, vidi_core::CoreError::NotFound), "{e}");
    assert_eq!(repo.events_after(None, None, 1000).await.unwrap().len(), before);
    assert!(repo.qualities(&ws, &vid).await.unwrap().iter().all(|q| q.quality != "4320p"));

    // Reading on from the last event seen gives nothing new; other workspaces see none of it.
    let last = repo.events_after(Some(&ws), None, 1000).await.unwrap().pop().unwrap();
    assert!(repo.events_after(Some(&ws), Some(&last.id), 10).await.unwrap().is_empty());
    let other = repo.create_workspace("other").await.unwrap();
    assert!(repo.events_after(Some(&other), None, 10).await.unwrap().is_empty());
}
