//! Large segments of a local store go out by sendfile (`vidi::http::sendfile`), behind hyper's
//! back: these tests speak raw HTTP/1.1 on one keep-alive connection and check every byte
//! against the stored object: whole segments, ranges in the middle and up to the end, HEAD,
//! pipelined requests, and a client that goes away mid-body. On S3 the same requests are served
//! from memory, and must give the same bytes.

use crate::common::{Backend, TestServer, av_clip, backend_test};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Segments are sent by sendfile past this size (`vidi_api::sendfile::THRESHOLD`).
const THRESHOLD: usize = 64 * 1024;

/// A public video whose segments are larger than the threshold: the path of its largest segment
/// and that segment's stored bytes.
async fn large_segment(t: &TestServer) -> (String, Vec<u8>) {
    // Noise keeps the bitrate (and so the segments) up.
    let clip = av_clip("sendfile-4s.mp4", "size=640x360:rate=25,noise=alls=30:allf=t", "frequency=440", 4, &[]);
    let id = t.create_video("sendfile").await;
    assert_eq!(t.upload(&id, None, std::fs::read(clip).unwrap()).await.status(), 201);
    t.wait_status(&id, 240, |s| {
        s["encoding"]["qualities"]
            .as_array()
            .is_some_and(|q| q.iter().any(|q| q["quality"] == "360p" && q["status"] == "encoded"))
    })
    .await;
    let playlist = t.http.get(format!("{}/vod/{id}/hls/360p/index.m3u8", t.url)).send().await.unwrap();
    assert_eq!(playlist.status(), 200, "{}", t.backend.label);
    let body = playlist.text().await.unwrap();
    let blobs = vidi::open_blobs(&t.cfg).await.unwrap();
    let mut best: Option<(String, Vec<u8>)> = None;
    for seg in body.lines().filter(|l| l.ends_with(".ts")) {
        let key = vidi_core::keys::rendition_key(&id, "360p", seg);
        let mut stream = blobs.get(&key, None).await.unwrap();
        let mut bytes = Vec::new();
        while let Some(piece) = stream.next().await {
            bytes.extend_from_slice(&piece.unwrap());
        }
        if best.as_ref().is_none_or(|(_, b)| b.len() < bytes.len()) {
            best = Some((format!("/vod/{id}/hls/360p/{seg}"), bytes));
        }
    }
    let (path, bytes) = best.unwrap_or_else(|| panic!("no segment in {body}"));
    assert!(bytes.len() > 3 * THRESHOLD, "{}: the largest segment has {} bytes", t.backend.label, bytes.len());
    (path, bytes)
}

/// `f`, or a failure naming `what` after a minute: a server that stops answering fails the
/// test instead of hanging the suite.
async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(std::time::Duration::from_secs(60), f).await {
        Ok(v) => v,
        Err(_) => panic!("no progress for 60 s while {what}"),
    }
}

/// One response as read off the wire.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A raw HTTP/1.1 client on one connection.
struct Raw {
    stream: TcpStream,
    /// Bytes read past the previous response.
    buf: Vec<u8>,
}

impl Raw {
    async fn connect(t: &TestServer) -> Raw {
        let addr = t.url.trim_start_matches("http://").trim_end_matches('/');
        Raw { stream: TcpStream::connect(addr).await.unwrap(), buf: Vec::new() }
    }

    async fn send(&mut self, method: &str, path: &str, range: Option<&str>) {
        let range = range.map(|r| format!("range: {r}\r\n")).unwrap_or_default();
        let req = format!("{method} {path} HTTP/1.1\r\nhost: vidi\r\n{range}\r\n");
        within("writing a request", self.stream.write_all(req.as_bytes())).await.unwrap();
    }

    async fn fill(&mut self) -> usize {
        // On the heap: a 64 KiB array would live in the future, several times on the stack.
        self.buf.reserve(64 * 1024);
        within("reading a response", self.stream.read_buf(&mut self.buf)).await.unwrap()
    }

    /// Reads one response (no body after a HEAD).
    async fn read(&mut self, head_request: bool) -> Answer {
        let end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            assert!(self.fill().await > 0, "connection closed before a response head");
        };
        let head = String::from_utf8(self.buf.drain(..end).collect()).unwrap();
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let mut a = Answer { status, headers, body: Vec::new() };
        let len: usize = if head_request { 0 } else { a.header("content-length").unwrap().parse().unwrap() };
        while self.buf.len() < len {
            assert!(self.fill().await > 0, "connection closed {} bytes into a {len}-byte body", self.buf.len());
        }
        a.body = self.buf.drain(..len).collect();
        a
    }

    async fn get(&mut self, path: &str, range: Option<&str>) -> Answer {
        self.send("GET", path, range).await;
        self.read(false).await
    }
}

fn sent_bytes() -> u64 {
    #[cfg(target_os = "linux")]
    return vidi::http::sendfile::sent_bytes();
    #[cfg(not(target_os = "linux"))]
    0
}

backend_test!(large_segments_are_sent_whole_and_by_ranges, multi_thread = 2);
async fn large_segments_are_sent_whole_and_by_ranges(b: Backend) {
    let t = TestServer::start(&b).await;
    let (path, stored) = large_segment(&t).await;
    let (size, label) = (stored.len(), b.label.as_str());
    let sent_before = sent_bytes();
    let mut c = Raw::connect(&t).await;

    let a = c.get(&path, None).await;
    assert_eq!(a.status, 200, "{label}");
    assert_eq!(a.header("content-type"), Some("video/mp2t"), "{label}");
    assert_eq!(a.header("content-length"), Some(size.to_string().as_str()), "{label}");
    assert!(a.body == stored, "{label}: the whole segment differs from the stored one");

    // A range in the middle, longer than the threshold.
    let (from, to) = (1000, 1000 + 2 * THRESHOLD);
    let a = c.get(&path, Some(&format!("bytes={from}-{to}"))).await;
    assert_eq!(a.status, 206, "{label}");
    assert_eq!(a.header("content-range"), Some(format!("bytes {from}-{to}/{size}").as_str()), "{label}");
    assert!(a.body == stored[from..=to], "{label}: the middle range differs");

    // HEAD: the head of the full answer, no body (the next response must start right after).
    c.send("HEAD", &path, None).await;
    let a = c.read(true).await;
    assert_eq!(a.status, 200, "{label}");
    assert_eq!(a.header("content-length"), Some(size.to_string().as_str()), "{label}");

    // A small range (the memory path) between two sendfile answers.
    let a = c.get(&path, Some("bytes=0-99")).await;
    assert_eq!((a.status, a.body.as_slice()), (206, &stored[..100]), "{label}");

    // A range running past the end is cut at the end of the file.
    let from = size - 2 * THRESHOLD;
    let a = c.get(&path, Some(&format!("bytes={from}-{}", size * 10))).await;
    assert_eq!(a.status, 206, "{label}");
    assert_eq!(a.header("content-range"), Some(format!("bytes {from}-{}/{size}", size - 1).as_str()), "{label}");
    assert!(a.body == stored[from..], "{label}: the range to the end differs");

    // The last bytes, as a suffix range.
    let a = c.get(&path, Some(&format!("bytes=-{}", THRESHOLD + 7))).await;
    assert_eq!(a.status, 206, "{label}");
    assert!(a.body == stored[size - THRESHOLD - 7..], "{label}: the suffix range differs");

    // A range past the end: 416, and the connection goes on.
    let a = c.get(&path, Some(&format!("bytes={size}-"))).await;
    assert_eq!(a.status, 416, "{label}");
    assert_eq!(a.header("content-range"), Some(format!("bytes */{size}").as_str()), "{label}");

    // Pipelined: three requests written at once, answered in order on the same connection.
    c.send("GET", &path, None).await;
    c.send("GET", &path, Some("bytes=5000-")).await;
    c.send("GET", &path, None).await;
    let (x, y, z) = (c.read(false).await, c.read(false).await, c.read(false).await);
    assert_eq!((x.status, y.status, z.status), (200, 206, 200), "{label}");
    assert!(x.body == stored && y.body == stored[5000..] && z.body == stored, "{label}: pipelined bodies differ");

    // Still the same connection: one more whole segment.
    let a = c.get(&path, None).await;
    assert!(a.status == 200 && a.body == stored, "{label}: the last whole segment differs");

    if t.backend.s3_url.is_none() && cfg!(target_os = "linux") {
        // At least the bodies above went by sendfile (other tests may add theirs).
        let (size, th) = (size as u64, THRESHOLD as u64);
        let ours = 4 * size + (size - 5000) + (2 * th + 1) + 2 * th + (th + 7);
        let sent = sent_bytes() - sent_before;
        assert!(sent >= ours, "{label}: {sent} bytes went by sendfile, expected at least {ours}");
    }
}

backend_test!(a_client_gone_mid_body_leaves_the_server_serving, multi_thread = 2);
async fn a_client_gone_mid_body_leaves_the_server_serving(b: Backend) {
    let t = TestServer::start(&b).await;
    let (path, stored) = large_segment(&t).await;
    let label = b.label.as_str();
    for _ in 0..3 {
        // Ask for the whole segment, read its head and a little of its body, and hang up.
        let mut c = Raw::connect(&t).await;
        c.send("GET", &path, None).await;
        while !c.buf.windows(4).any(|w| w == b"\r\n\r\n") {
            assert!(c.fill().await > 0, "{label}: closed before the head");
        }
        drop(c);
    }
    // A client that stops reading: the server blocks on a full socket, then the client resets.
    let mut c = Raw::connect(&t).await;
    for _ in 0..8 {
        c.send("GET", &path, None).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    drop(c);

    // The server still answers, whole and right, on new connections and with keep-alive.
    let mut c = Raw::connect(&t).await;
    for _ in 0..2 {
        let a = c.get(&path, None).await;
        assert!(a.status == 200 && a.body == stored, "{label}: the segment after a hang-up differs");
    }
    let r = t.http.get(format!("{}{path}", t.url)).send().await.unwrap();
    assert_eq!(r.status(), 200, "{label}");
    assert!(r.bytes().await.unwrap() == stored, "{label}: reqwest's copy differs");
}

backend_test!(head_then_get_on_one_connection, multi_thread = 2);
/// A HEAD alone must leave nothing queued: the GET after it on the same connection is right.
async fn head_then_get_on_one_connection(b: Backend) {
    let t = TestServer::start(&b).await;
    let (path, stored) = large_segment(&t).await;
    let mut c = Raw::connect(&t).await;
    for _ in 0..2 {
        c.send("HEAD", &path, Some("bytes=100-")).await;
        let a = c.read(true).await;
        assert_eq!(a.status, 206, "{}", b.label);
        assert_eq!(a.header("content-length"), Some((stored.len() - 100).to_string().as_str()));
    }
    let a = c.get(&path, Some("bytes=100-")).await;
    assert!(a.status == 206 && a.body == stored[100..], "{}: the GET after HEADs differs", b.label);
}
