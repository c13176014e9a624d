//! A webhook receiver inside the tests: a small axum server on 127.0.0.1 that records every
//! request it gets and answers as the test's plan says.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

#[derive(Clone, Debug)]
pub struct Hit {
    pub at: Instant,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The status this receiver answered.
    pub status: u16,
}

impl Hit {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    pub fn delivery(&self) -> String {
        self.header("x-vidi-delivery").to_string()
    }
}

/// What to answer: the status, a `Retry-After`, and how long to wait before answering.
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
    pub delay: Duration,
}

impl Answer {
    pub fn status(status: u16) -> Answer {
        Answer { status, retry_after: None, delay: Duration::ZERO }
    }
}

/// `plan(n, body)`: the answer to the `n`-th request (0-based) of one delivery.
pub type Plan = Arc<dyn Fn(usize, &Value) -> Answer + Send + Sync>;

pub struct Receiver {
    pub url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    /// Answers 200 to everything.
    pub async fn ok() -> Receiver {
        Self::start(Arc::new(|_, _| Answer::status(200))).await
    }

    pub async fn start(plan: Plan) -> Receiver {
        let hits: Arc<Mutex<Vec<Hit>>> = Default::default();
        let h = hits.clone();
        let handler = move |headers: HeaderMap, body: Bytes| {
            let (hits, plan) = (h.clone(), plan.clone());
            async move {
                let at = Instant::now();
                let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let delivery = headers.get("x-vidi-delivery").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                let n = hits.lock().unwrap().iter().filter(|x| x.delivery() == delivery).count();
                let answer = plan(n, &json);
                hits.lock().unwrap().push(Hit { at, headers, body, status: answer.status });
                tokio::time::sleep(answer.delay).await;
                let mut res = (StatusCode::from_u16(answer.status).unwrap(), "receiver says hello").into_response();
                if let Some(ra) = answer.retry_after {
                    res.headers_mut().insert("retry-after", ra.parse().unwrap());
                }
                res
            }
        };
        let app = axum::Router::new().route("/hook", axum::routing::post(handler));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", l.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        });
        Receiver { url, hits, task }
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    /// Waits until `pred` holds on the hits so far (fails after `secs`).
    pub async fn wait_for(&self, secs: u64, what: &str, pred: impl Fn(&[Hit]) -> bool) -> Vec<Hit> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let hits = self.hits();
            if pred(&hits) {
                return hits;
            }
            assert!(Instant::now() < deadline, "{what}: never happened; {} hits", hits.len());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn hmac_hex(secret: &str, parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    for p in parts {
        mac.update(p);
    }
    hex::encode(mac.finalize().into_bytes())
}

/// What a receiver checks, as docs/webhooks.md tells it: both signatures, from the raw body.
pub fn verify(secret: &str, timestamp: &str, body: &[u8], api_video_signature: &str, vidi_signature: &str) -> bool {
    hmac_hex(secret, &[body]) == api_video_signature
        && format!("v1={}", hmac_hex(secret, &[timestamp.as_bytes(), b".", body])) == vidi_signature
}

/// Checks a hit's signatures with `secret`.
pub fn verify_hit(secret: &str, h: &Hit) -> bool {
    verify(
        secret,
        h.header("x-vidi-timestamp"),
        &h.body,
        h.header("x-api-video-signature"),
        h.header("x-vidi-signature"),
    )
}

/// The test vector published in docs/webhooks.md.
pub const VECTOR_SECRET: &str = "whsec_3a7c1f0e9b2d4c6a8e5f7b9d1c3e5a7f";
pub const VECTOR_TIMESTAMP: &str = "1684834142";
pub const VECTOR_BODY: &str = r#"{"emittedAt":"2023-05-23T09:29:02.154104779Z","encoding":"hls","quality":"720p","type":"video.encoding.quality.completed","videoId":"vi4k0jvEUuaTdRAEjQ4Jfrgz"}"#;
pub const VECTOR_SIGNATURE: &str = "db1e9929f6ddbba621e96102839e567585de607764371c79de3873e87b4ff37f";
pub const VECTOR_VIDI_SIGNATURE: &str = "v1=a9a2a7906b6e7df2c2e6918fa58f520065e77fb8600e23cbb35331def2ee8b73";
