//! The webhook benchmark (bench/hooks.sh runs it in release; `#[ignore]`d in the test suite):
//! the real server on the embedded default (SQLite + local folder) delivers to a receiver on
//! 127.0.0.1 that answers 200 at once.
//!
//! 1. Latency: events recorded one at a time by `Repo::complete_quality` (the transaction that
//!    marks a rendition encoded), paced like a busy encoder; the time from just before that
//!    call to the receiver holding the request, p50/p99/max.
//! 2. Throughput: a burst of events (videos of 4 renditions each) recorded as fast as the
//!    database takes them; deliveries per second from the first event to the last arrival.
//!
//! Prints `KEY=VALUE` lines for bench/run.sh.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::common::receiver::*;
use crate::common::*;
use serde_json::json;
use vidi_core::event::Encoding;
use vidi_core::id::VideoId;
use vidi_core::model::Quality;
use vidi_core::time::now_ns;

const RENDITIONS: [&str; 4] = ["240p", "360p", "480p", "720p"];

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

async fn video(t: &TestServer) -> VideoId {
    let id = VideoId::parse(&t.create_video("bench").await).unwrap();
    let planned: Vec<Quality> = RENDITIONS
        .iter()
        .map(|q| Quality { kind: "hls".into(), quality: q.to_string(), status: "waiting".into() })
        .collect();
    t.server.state.repo.plan_qualities(&t.ws().await, &id, &planned).await.unwrap();
    id
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: bench/hooks.sh runs it"]
async fn webhook_delivery_benchmark() {
    let latency_events = env_usize("BENCH_HOOKS_LATENCY_EVENTS", 400);
    let burst_videos = env_usize("BENCH_HOOKS_BURST_VIDEOS", 500);
    let backend = Backend { label: "sqlite+local".into(), pg_url: None, s3_url: None };
    let rx = Receiver::ok().await;
    let t = TestServer::start_with(&backend, |c| {
        c.outbound.allow_private = true;
        c.jobs.workers = 1;
    })
    .await;
    let r = t.post_json("/webhooks", json!({ "events": ["video.encoding.quality.completed"], "url": rx.url })).await;
    assert_eq!(r.status(), 201);
    let repo = t.server.state.repo.clone();
    let ws = t.ws().await;

    // 1. Latency, events spaced 20 ms apart (50 renditions/s: far more than one node encodes).
    let mut ids = Vec::new();
    for _ in 0..latency_events.div_ceil(RENDITIONS.len()) {
        ids.push(video(&t).await);
    }
    let mut sent: HashMap<(String, String), Instant> = HashMap::new();
    'outer: for id in &ids {
        for q in RENDITIONS {
            if sent.len() == latency_events {
                break 'outer;
            }
            sent.insert((id.to_string(), q.to_string()), Instant::now());
            repo.complete_quality(&ws, id, Encoding::Hls, q, now_ns()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let hits = rx.wait_for(120, "every latency event", |h| h.len() >= latency_events).await;
    let mut lat: Vec<Duration> = hits
        .iter()
        .map(|h| {
            let b = h.json();
            h.at - sent[&(b["videoId"].as_str().unwrap().to_string(), b["quality"].as_str().unwrap().to_string())]
        })
        .collect();
    lat.sort();
    println!("hooks_latency_events={}", lat.len());
    println!("hooks_latency_p50_ms={:.1}", pct(&lat, 0.50));
    println!("hooks_latency_p99_ms={:.1}", pct(&lat, 0.99));
    println!("hooks_latency_max_ms={:.1}", pct(&lat, 1.0));

    // 2. Throughput: a burst.
    let mut burst = Vec::new();
    for _ in 0..burst_videos {
        burst.push(video(&t).await);
    }
    let before = rx.hits().len();
    let start = Instant::now();
    for id in &burst {
        for q in RENDITIONS {
            repo.complete_quality(&ws, id, Encoding::Hls, q, now_ns()).await.unwrap();
        }
    }
    let recorded = start.elapsed();
    let n = burst.len() * RENDITIONS.len();
    let hits = rx.wait_for(600, "every burst event", |h| h.len() >= before + n).await;
    let done = hits.iter().map(|h| h.at).max().unwrap() - start;
    println!("hooks_burst_events={n}");
    println!("hooks_burst_record_s={:.2}", recorded.as_secs_f64());
    println!("hooks_burst_deliver_s={:.2}", done.as_secs_f64());
    println!("hooks_deliveries_per_s={:.0}", n as f64 / done.as_secs_f64());
    t.server.shutdown();
}
