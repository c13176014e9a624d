//! The RTMP and RTMPS ingest against real publishers: ffmpeg over TCP and TLS, and an rml_rtmp
//! client for what ffmpeg cannot be made to do (publish and then stay silent). The broadcast
//! side is a `Publish` over a map of stream keys that records what it is given.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use rml_rtmp::time::RtmpTimestamp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use vidi_live::ingest::{Feed, Publish, Refusal};
use vidi_live::media::MediaEvent;
use vidi_live::rtmp::client::Publisher;
use vidi_live::rtmp::{Limits, serve};

/// The log lines of every test in this binary (tests tell theirs apart by stream key).
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = buf.clone();
        tracing_subscriber::fmt()
            .with_env_filter("vidi_live=debug")
            .with_ansi(false)
            .with_writer(move || LogWriter(writer.clone()))
            .init();
        buf
    })
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        std::io::stderr().write(b)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn log_lines_with(needle: &str) -> Vec<String> {
    let buf = logs().lock().unwrap();
    String::from_utf8_lossy(&buf).lines().filter(|l| l.contains(needle)).map(String::from).collect()
}

/// Keys map to the channel their feed pushes into, one feed per key added (the channel closes
/// when the connection drops its feed); every `begin` is recorded.
#[derive(Default)]
struct MapPublish {
    keys: Mutex<HashMap<String, (mpsc::Sender<MediaEvent>, CancellationToken)>>,
    begun: Mutex<Vec<String>>,
}

impl MapPublish {
    /// A live stream with this key: its events (bounded, so back-pressure is real) and the token
    /// that cuts it.
    fn add(&self, key: &str) -> (mpsc::Receiver<MediaEvent>, CancellationToken) {
        let (tx, rx) = mpsc::channel(64);
        let cut = CancellationToken::new();
        self.keys.lock().unwrap().insert(key.into(), (tx, cut.clone()));
        (rx, cut)
    }

    fn begun(&self) -> Vec<String> {
        self.begun.lock().unwrap().clone()
    }
}

struct MapFeed(mpsc::Sender<MediaEvent>, CancellationToken);

#[async_trait]
impl Publish for MapPublish {
    async fn begin(&self, key: &str, _peer: SocketAddr) -> Result<Box<dyn Feed>, Refusal> {
        self.begun.lock().unwrap().push(key.into());
        let (tx, cut) = self.keys.lock().unwrap().remove(key).ok_or(Refusal::UnknownKey)?;
        Ok(Box::new(MapFeed(tx, cut)))
    }
}

#[async_trait]
impl Feed for MapFeed {
    async fn push(&mut self, event: MediaEvent) -> anyhow::Result<()> {
        Ok(self.0.send(event).await?)
    }
    fn cut(&self) -> CancellationToken {
        self.1.clone()
    }
}

fn short_limits() -> Limits {
    Limits {
        handshake_timeout: Duration::from_secs(2),
        publish_timeout: Duration::from_secs(4),
        // x264's lookahead holds the first frame for over a second of a paced source.
        media_timeout: Duration::from_secs(3),
        ..Limits::default()
    }
}

struct Server {
    addr: SocketAddr,
    publish: Arc<MapPublish>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn server(tls: Option<tokio_rustls::TlsAcceptor>, limits: Limits) -> Server {
    logs();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let publish = Arc::new(MapPublish::default());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(serve(listener, tls, publish.clone(), limits, shutdown.clone()));
    Server { addr, publish, shutdown, task }
}

impl Server {
    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(3), self.task)
            .await
            .expect("serve returns promptly at shutdown")
            .unwrap()
            .unwrap();
    }
}

/// ffmpeg publishing a paced test picture and tone for `secs` seconds.
fn ffmpeg(url: &str, secs: u32, video: &str, audio: &str) -> tokio::process::Child {
    tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-f", "lavfi", "-i", "sine"])
        .args(["-t", &secs.to_string(), "-c:v", video, "-g", "30", "-c:a", audio, "-f", "flv", url])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("ffmpeg runs")
}

async fn exit(mut child: tokio::process::Child, within: Duration) -> std::process::ExitStatus {
    tokio::time::timeout(within, child.wait()).await.expect("ffmpeg exits in time").unwrap()
}

fn drain(rx: &mut mpsc::Receiver<MediaEvent>) -> Vec<MediaEvent> {
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    events
}

/// Collects events until the channel closes (the connection ended and dropped its feed).
async fn collect(mut rx: mpsc::Receiver<MediaEvent>, within: Duration) -> Vec<MediaEvent> {
    let mut events = Vec::new();
    let end = tokio::time::Instant::now() + within;
    while let Ok(Some(e)) = tokio::time::timeout_at(end, rx.recv()).await {
        events.push(e);
    }
    events
}

/// Configurations first, video dts strictly increasing, keyframes on the GOP (every 30th
/// frame), audio dts non-decreasing.
fn check_media(events: &[MediaEvent], min_frames: usize) {
    let first_video = events.iter().position(|e| matches!(e, MediaEvent::Video { .. })).unwrap();
    let first_audio = events.iter().position(|e| matches!(e, MediaEvent::Audio { .. })).unwrap();
    let vc = events.iter().position(|e| matches!(e, MediaEvent::VideoConfig(_))).unwrap();
    let ac = events.iter().position(|e| matches!(e, MediaEvent::AudioConfig(_))).unwrap();
    assert!(vc < first_video && ac < first_audio);
    let MediaEvent::VideoConfig(v) = &events[vc] else { unreachable!() };
    assert_eq!((v.width, v.height), (320, 240));
    assert!(v.codec.starts_with("avc1.64"), "{}", v.codec);
    let MediaEvent::AudioConfig(a) = &events[ac] else { unreachable!() };
    assert_eq!((a.codec.as_str(), a.sample_rate, a.channels), ("mp4a.40.2", 44100, 1));
    let video: Vec<(i64, bool)> = events
        .iter()
        .filter_map(|e| match e {
            MediaEvent::Video { dts, keyframe, .. } => Some((*dts, *keyframe)),
            _ => None,
        })
        .collect();
    assert!(video.len() >= min_frames, "{} frames", video.len());
    assert!(video.windows(2).all(|w| w[0].0 < w[1].0), "video dts increase");
    for (i, (_, key)) in video.iter().enumerate() {
        assert_eq!(*key, i % 30 == 0, "frame {i}: keyframe {key}");
    }
    let audio: Vec<i64> = events
        .iter()
        .filter_map(|e| match e {
            MediaEvent::Audio { dts, .. } => Some(*dts),
            _ => None,
        })
        .collect();
    assert!(audio.windows(2).all(|w| w[0] <= w[1]), "audio dts do not go back");
    // 30 fps: the last frame's dts is where 3 s of frames put it (ms), within a frame.
    let span = video.last().unwrap().0 - video[0].0;
    assert!((span - (video.len() as i64 - 1) * 1000 / 30).abs() <= 34, "span {span} ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_publishes_over_rtmp() {
    let s = server(None, short_limits()).await;
    let (rx, _) = s.publish.add("rtmpkey-good");
    let events = tokio::spawn(collect(rx, Duration::from_secs(15)));
    let url = format!("rtmp://{}/s/rtmpkey-good", s.addr);
    let status = exit(ffmpeg(&url, 3, "libx264", "aac"), Duration::from_secs(15)).await;
    assert!(status.success(), "ffmpeg: {status}");
    let events = events.await.unwrap();
    check_media(&events, 85);
    assert_eq!(s.publish.begun(), ["rtmpkey-good"]);
    assert!(log_lines_with("key=rtmpke…").iter().any(|l| l.contains("publisher finished")));
    s.stop().await;
}

/// A self-signed certificate for 127.0.0.1, made with the openssl CLI (as the binary's TLS tests
/// do), and the acceptor the binary builds from such files.
fn tls_acceptor(dir: &std::path::Path) -> tokio_rustls::TlsAcceptor {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let st = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(st.success());
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(&cert).unwrap().collect::<Result<_, _>>().unwrap();
    let key = PrivateKeyDer::from_pem_file(&key).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    // As the binary's acceptor (crates/vidi/src/tls.rs) sets it: ffmpeg offers no ALPN, so the
    // HTTPS acceptor serves RTMPS as it is.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_publishes_over_rtmps() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(Some(tls_acceptor(dir.path())), short_limits()).await;
    let (rx, _) = s.publish.add("tlskey-good");
    let events = tokio::spawn(collect(rx, Duration::from_secs(15)));
    let url = format!("rtmps://127.0.0.1:{}/s/tlskey-good", s.addr.port());
    let status = exit(ffmpeg(&url, 2, "libx264", "aac"), Duration::from_secs(15)).await;
    assert!(status.success(), "ffmpeg over rtmps: {status}");
    let events = events.await.unwrap();
    check_media(&events, 55);
    // Plain RTMP on the TLS listener is not a TLS handshake: closed, nothing begun.
    let status =
        exit(ffmpeg(&format!("rtmp://{}/s/tlskey-good", s.addr), 1, "libx264", "aac"), Duration::from_secs(10)).await;
    assert!(!status.success());
    assert_eq!(s.publish.begun(), ["tlskey-good"]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_or_app_is_refused_before_media() {
    let s = server(None, short_limits()).await;
    let (mut rx, _) = s.publish.add("goodkey-1");
    let wrong_key = ffmpeg(&format!("rtmp://{}/s/wrongkey-1", s.addr), 1, "libx264", "aac");
    let wrong_app = ffmpeg(&format!("rtmp://{}/live/goodkey-1", s.addr), 1, "libx264", "aac");
    assert!(!exit(wrong_key, Duration::from_secs(10)).await.success());
    assert!(!exit(wrong_app, Duration::from_secs(10)).await.success());
    // The wrong key reached `begin` and was refused; the wrong app never got that far.
    assert_eq!(s.publish.begun(), ["wrongkey-1"]);
    assert!(drain(&mut rx).is_empty());
    let refused = log_lines_with("key=wrongk…");
    assert!(refused.iter().any(|l| l.contains("no live stream has this stream key")), "{refused:?}");
    assert!(refused.iter().all(|l| !l.contains("wrongkey-1")), "the key is never logged whole");
    assert!(
        !log_lines_with("app \\\"live\\\" refused").is_empty() || !log_lines_with("app \"live\" refused").is_empty()
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_codecs_are_refused_by_name() {
    let s = server(None, short_limits()).await;
    let (rx_video, _) = s.publish.add("h263key");
    let (rx_audio, _) = s.publish.add("mp3key");
    let video = tokio::spawn(collect(rx_video, Duration::from_secs(10)));
    let audio = tokio::spawn(collect(rx_audio, Duration::from_secs(10)));
    let h263 = ffmpeg(&format!("rtmp://{}/s/h263key", s.addr), 2, "flv", "aac");
    let mp3 = ffmpeg(&format!("rtmp://{}/s/mp3key", s.addr), 2, "libx264", "libmp3lame");
    let (h263, mp3) = tokio::join!(exit(h263, Duration::from_secs(10)), exit(mp3, Duration::from_secs(10)));
    assert!(!h263.success() && !mp3.success());
    let (video, audio) = (video.await.unwrap(), audio.await.unwrap());
    assert!(!video.iter().any(|e| matches!(e, MediaEvent::Video { .. })));
    assert!(!audio.iter().any(|e| matches!(e, MediaEvent::Audio { .. })));
    let named = |key: &str, codec: &str| log_lines_with(key).iter().any(|l| l.contains(codec));
    assert!(named("key=h263ke…", "video codec Sorenson H.263 (FLV1) is not supported"), "{:?}", log_lines_with("h263"));
    assert!(named("key=mp3key", "audio codec MP3 is not supported"), "{:?}", log_lines_with("mp3key"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_closes_the_publisher() {
    let s = server(None, short_limits()).await;
    let (mut rx, cut) = s.publish.add("cutkey");
    let child = ffmpeg(&format!("rtmp://{}/s/cutkey", s.addr), 20, "libx264", "aac");
    let first = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.unwrap();
    assert!(first.is_some());
    let t = Instant::now();
    cut.cancel();
    let status = exit(child, Duration::from_secs(5)).await;
    assert!(!status.success());
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(log_lines_with("key=cutkey").iter().any(|l| l.contains("cut by the broadcast")));
    s.stop().await;
}

/// A publisher in the test: `vidi_live::rtmp::client::Publisher` (handshake, connect, publish),
/// with what the tests do next.
struct Client(Publisher);

impl Client {
    async fn publish(addr: SocketAddr, app: &str, key: &str) -> std::io::Result<Client> {
        let tcp = TcpStream::connect(addr).await?;
        Publisher::start(tcp, app, key, Duration::from_secs(5)).await.map(Client)
    }

    async fn video(&mut self, tag: &'static [u8], ts: u32) -> std::io::Result<()> {
        let r = self.0.session.publish_video_data(Bytes::from_static(tag), RtmpTimestamp::new(ts), false);
        self.0.results(vec![r.unwrap()]).await
    }

    /// Waits for the server to close the connection; how long it took.
    async fn closed_within(&mut self, limit: Duration) -> Duration {
        let t = Instant::now();
        let mut buf = [0u8; 4096];
        loop {
            match tokio::time::timeout(limit, self.0.tcp.read(&mut buf)).await.expect("closed in time") {
                Ok(0) | Err(_) => return t.elapsed(),
                Ok(_) => {}
            }
        }
    }
}

const KEYFRAME: &[u8] = &[0x17, 1, 0, 0, 0, 0, 0, 0, 1, 0x65];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_publisher_is_timed_out() {
    let s = server(None, Limits { media_timeout: Duration::from_secs(1), ..short_limits() }).await;
    let (mut rx, _) = s.publish.add("silentkey");
    let mut c = Client::publish(s.addr, "s", "silentkey").await.unwrap();
    // Admitted, then nothing: closed after the 1 s media timeout (it counts before the first
    // frame too), and the feed, which got nothing, is dropped.
    let took = c.closed_within(Duration::from_secs(5)).await;
    assert!(took >= Duration::from_millis(800) && took < Duration::from_secs(3), "{took:?}");
    assert!(rx.recv().await.is_none(), "no event, and the feed is dropped with its connection");
    assert!(log_lines_with("key=silent").iter().any(|l| l.contains("no media within the media timeout")));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_closes_its_connection_only() {
    let s = server(None, short_limits()).await;
    let _junk_feed = s.publish.add("afterjunk");
    // A bad handshake (version byte 0x47: an HTTP request).
    let mut http = TcpStream::connect(s.addr).await.unwrap();
    http.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    http.write_all(&[0u8; 3000]).await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(2), http.read(&mut buf)).await.unwrap();
    assert!(matches!(n, Ok(0) | Err(_)), "closed: {n:?}");
    // Garbage chunks after a good handshake and publish: a 16 MiB message header.
    let mut junk = Client::publish(s.addr, "s", "afterjunk").await.unwrap();
    junk.0.tcp.write_all(&[0x06, 0, 0, 0, 0xFF, 0xFF, 0xFF, 9, 1, 0, 0, 0]).await.unwrap();
    let took = junk.closed_within(Duration::from_secs(2)).await;
    assert!(took < Duration::from_millis(500));
    assert!(
        log_lines_with("key=afterj")
            .iter()
            .any(|l| l.contains("a message of 16777215 bytes was announced; the limit is 4194304"))
    );
    // Another publisher still works.
    let (mut rx, _) = s.publish.add("afterjunk");
    let mut good = Client::publish(s.addr, "s", "afterjunk").await.unwrap();
    good.video(KEYFRAME, 40).await.unwrap();
    let e = tokio::time::timeout(Duration::from_secs(2), rx.recv()).await.unwrap();
    assert!(matches!(e, Some(MediaEvent::Video { dts: 0, keyframe: true, .. })), "{e:?}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_idle_connections_neither_block_nor_stay() {
    const IDLE: usize = 2000;
    let s = server(None, Limits { max_connections: IDLE + 10, ..short_limits() }).await;
    let (mut rx, _) = s.publish.add("busykey");
    let rss_before = rss_kib();
    let t = Instant::now();
    let mut idle = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        match TcpStream::connect(s.addr).await {
            Ok(c) => idle.push(c),
            // The descriptor limit of this machine: as many as it allows.
            Err(e) => {
                eprintln!("stopped at {} idle connections: {e}", idle.len());
                break;
            }
        }
    }
    assert!(idle.len() >= 500, "only {} idle connections", idle.len());
    let mut c = Client::publish(s.addr, "s", "busykey").await.unwrap();
    c.video(KEYFRAME, 0).await.unwrap();
    let e = tokio::time::timeout(Duration::from_secs(2), rx.recv()).await.unwrap();
    assert!(matches!(e, Some(MediaEvent::Video { .. })));
    // Both ends of every connection are in this process: the figure is an upper bound of the
    // server's share.
    let grown = rss_kib().saturating_sub(rss_before);
    eprintln!(
        "{} idle connections open, a publisher admitted after {:?}; RSS +{grown} KiB ({} B per connection, both ends)",
        idle.len(),
        t.elapsed(),
        grown * 1024 / idle.len() as u64
    );
    // The handshake timeout (2 s from each accept) closes every idle connection.
    let end = t + Duration::from_secs(6);
    for mut conn in idle {
        let left = end.saturating_duration_since(Instant::now());
        let r = tokio::time::timeout(left, conn.read(&mut [0u8; 16])).await;
        assert!(matches!(r, Ok(Ok(0)) | Ok(Err(_))), "an idle connection still open: {r:?}");
    }
    drop(c);
    s.stop().await;
}

/// This process's resident memory (Linux), KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap_or("VmRSS: 0 kB");
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_are_closed_at_once() {
    let s = server(None, Limits { max_connections: 3, ..short_limits() }).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(TcpStream::connect(s.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut extra = TcpStream::connect(s.addr).await.unwrap();
    let r = tokio::time::timeout(Duration::from_millis(500), extra.read(&mut [0u8; 16])).await;
    assert!(matches!(r, Ok(Ok(0)) | Ok(Err(_))), "the fourth connection is closed at once: {r:?}");
    // The three are still open (they have 2 s to handshake), and shutdown closes them.
    let r = tokio::time::timeout(Duration::from_millis(200), open[0].read(&mut [0u8; 16])).await;
    assert!(r.is_err(), "still open");
    let t = Instant::now();
    s.stop().await;
    assert!(t.elapsed() < Duration::from_secs(1));
    for mut c in open {
        let r = tokio::time::timeout(Duration::from_secs(1), c.read(&mut [0u8; 16])).await.unwrap();
        assert!(matches!(r, Ok(0) | Err(_)));
    }
}
