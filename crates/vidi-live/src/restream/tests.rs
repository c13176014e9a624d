//! Restreams against real ffmpeg processes: a receiver is `ffmpeg -listen 1` on a loopback port;
//! the broadcast is an FLV file ffmpeg makes from lavfi, read back into [`MediaEvent`]s by a
//! small reader here (the ingest's job in production).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;
use vidi_core::id::LiveStreamId;
use vidi_core::live::Restream;
use vidi_media::{Restart, Tool};

use super::*;
use crate::media::{AudioConfig, MediaEvent, VideoConfig};

/// The test broadcast's length, seconds.
const SECONDS: f64 = 3.0;

fn have_ffmpeg() -> bool {
    std::process::Command::new("ffmpeg").arg("-version").stdout(Stdio::null()).status().is_ok()
}

fn settings() -> Settings {
    let mut s = Settings::new(&Tool::new("ffmpeg", Duration::from_secs(60)));
    // Quick retries, so the down destination is seen retrying within the test.
    s.restart = Restart { first: Duration::from_millis(200), max: Duration::from_millis(400), ..s.restart };
    s
}

fn guard(allow_private: bool) -> vidi_outbound::Guard {
    let _ = rustls::crypto::ring::default_provider().install_default();
    vidi_outbound::Guard::new(allow_private, Duration::from_secs(2)).unwrap()
}

fn live_stream() -> LiveStreamId {
    LiveStreamId::generate()
}

fn dest(name: &str, server_url: String, key: &str) -> Restream {
    Restream { name: name.into(), server_url, stream_key: key.into() }
}

/// A loopback port for a receiver to listen on: bound, then let go. Linux readily hands the same
/// port to the next `bind(0)`, so a port is never given twice in this process (tests run in
/// parallel).
fn free_port() -> u16 {
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut given = GIVEN.lock().unwrap();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// A port that refuses connections for as long as the socket lives: bound, not listening.
fn closed_port() -> (tokio::net::TcpSocket, u16) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = socket.local_addr().unwrap().port();
    (socket, port)
}

/// An H.264 + AAC FLV from lavfi, as OBS would send it: 25 fps, a keyframe a second.
async fn source(dir: &Path) -> PathBuf {
    let out = dir.join("source.flv");
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
        .args(["-t", &SECONDS.to_string(), "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-bf", "2"])
        .args(["-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", "-f", "flv"])
        .arg(&out)
        .status()
        .await
        .unwrap();
    assert!(status.success());
    out
}

/// The tags of an FLV file as the ingest hands them on (script tags skipped).
fn read_flv(b: &[u8]) -> Vec<MediaEvent> {
    assert_eq!(&b[..3], b"FLV");
    let mut at = u32::from_be_bytes(b[5..9].try_into().unwrap()) as usize + 4;
    let mut events = Vec::new();
    while at + 11 <= b.len() {
        let kind = b[at];
        let size = u32::from_be_bytes([0, b[at + 1], b[at + 2], b[at + 3]]) as usize;
        let ts = i64::from(u32::from_be_bytes([b[at + 7], b[at + 4], b[at + 5], b[at + 6]]));
        let data = Bytes::copy_from_slice(&b[at + 11..at + 11 + size]);
        at += 11 + size + 4;
        match kind {
            9 if data[1] == 0 => events.push(MediaEvent::VideoConfig(VideoConfig {
                avcc: data.slice(5..),
                width: 320,
                height: 240,
                codec: "avc1.42c00d".into(),
            })),
            9 if data[1] == 1 => {
                let cts = i32::from_be_bytes([data[2], data[3], data[4], 0]) >> 8;
                events.push(MediaEvent::Video { dts: ts, cts, keyframe: data[0] >> 4 == 1, data: data.slice(5..) });
            }
            8 if data[1] == 0 => events.push(MediaEvent::AudioConfig(AudioConfig {
                asc: data.slice(2..),
                sample_rate: 44100,
                channels: 1,
                codec: "mp4a.40.2".into(),
            })),
            8 => events.push(MediaEvent::Audio { dts: ts, data: data.slice(2..) }),
            _ => {}
        }
    }
    events
}

/// `ffmpeg -listen 1` receiving `rtmp://127.0.0.1:{port}/app/{key}` into `out`.
fn receiver(port: u16, key: &str, out: &Path) -> Child {
    Command::new("ffmpeg")
        // Warnings: ffmpeg's server warns when the app or the stream key is not the expected one.
        .args(["-hide_banner", "-nostdin", "-loglevel", "warning", "-y", "-listen", "1", "-f", "flv", "-i"])
        .arg(format!("rtmp://127.0.0.1:{port}/app/{key}"))
        .args(["-c", "copy", "-f", "flv"])
        .arg(out)
        .stderr(std::fs::File::create(out.with_extension("log")).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// What the receiver writing `out` logged, once it checked that the pusher announced the
/// destination's application and stream key.
fn receiver_log(out: &Path) -> String {
    let log = std::fs::read_to_string(out.with_extension("log")).unwrap();
    assert!(!log.contains("don't match") && !log.contains("Unexpected stream"), "{log}");
    log
}

/// Whether something listens on the loopback `port` (read from /proc: connecting to find out
/// would take the one connection an `ffmpeg -listen 1` accepts).
fn listening(port: u16) -> bool {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let wanted = format!(":{port:04X}");
    table.lines().skip(1).any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() > 3 && f[1].ends_with(&wanted) && f[3] == "0A"
    })
}

/// [`receiver`], once it listens.
async fn ready_receiver(port: u16, key: &str, out: &Path) -> Child {
    let rx = receiver(port, key, out);
    wait_for("the receiver to listen", Duration::from_secs(5), || listening(port)).await;
    rx
}

/// Everything the test binary logs (one global subscriber: a thread's own default misses events
/// whose interest another test's thread cached first). Tests tell their lines apart by the live
/// stream's id.
fn logs() -> &'static Mutex<Vec<u8>> {
    static LOGS: std::sync::OnceLock<&'static Mutex<Vec<u8>>> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        struct Sink(&'static Mutex<Vec<u8>>);
        impl std::io::Write for Sink {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let logs: &'static Mutex<Vec<u8>> = Box::leak(Box::default());
        let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(move || Sink(logs)).finish();
        tracing::subscriber::set_global_default(subscriber).expect("no other subscriber");
        logs
    })
}

async fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ok() {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// (codec names, duration in seconds) as ffprobe reads `file`.
async fn probe(file: &Path) -> (Vec<String>, f64) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_name:format=duration", "-of", "json"])
        .arg(file)
        .output()
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let codecs = v["streams"].as_array().unwrap().iter().map(|s| s["codec_name"].as_str().unwrap().to_string());
    let duration = v["format"]["duration"].as_str().unwrap().parse().unwrap();
    (codecs.collect(), duration)
}

fn alive(pid: u32) -> bool {
    // A zombie (exited, not reaped) still has its /proc entry, in state Z: reaped means gone.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok()
}

/// One destination receives the whole broadcast while the other, down, retries; `stop` ends
/// the stream cleanly for the receiver and leaves no ffmpeg behind.
#[tokio::test]
async fn a_live_destination_receives_the_stream_while_a_down_one_retries() {
    if !have_ffmpeg() {
        eprintln!("skipped: no ffmpeg");
        return;
    }
    let logs = logs();
    let dir = tempfile::tempdir().unwrap();
    let events = read_flv(&std::fs::read(source(dir.path()).await).unwrap());
    let (port, (_down, down_port)) = (free_port(), closed_port());
    let out = dir.path().join("received.flv");
    let mut rx = ready_receiver(port, "key-live-0001", &out).await;
    // The live destination by name (resolved by the relay), the down one by address.
    let destinations = [
        dest("live", format!("rtmp://localhost:{port}/app"), "key-live-0001"),
        dest("down", format!("rtmp://127.0.0.1:{down_port}/app"), "key-down-0002"),
    ];
    let cancel = CancellationToken::new();
    let id = live_stream();
    let r = Restreamer::start(&id, &destinations, &guard(true), &settings(), &cancel);
    // Each ffmpeg reads from its first keyframe on: feed once both runs have started.
    wait_for("both ffmpegs", Duration::from_secs(5), || r.statuses().iter().all(|s| s.starts >= 1)).await;

    // Twice real time: quicker than a live publisher, well within what a queue holds.
    let started = Instant::now();
    let mut seen_pushing = false;
    for e in &events {
        if let Some(dts) = e.dts() {
            let due = Duration::from_millis(dts as u64 / 2);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
        r.send(e);
        seen_pushing |= r.statuses()[0].state == PushState::Pushing;
    }
    wait_for("the live destination to take media", Duration::from_secs(5), || {
        seen_pushing |= r.statuses()[0].state == PushState::Pushing;
        seen_pushing
    })
    .await;
    wait_for("the down destination to retry", Duration::from_secs(5), || r.statuses()[1].starts >= 2).await;
    let s = r.statuses();
    assert_eq!((s[0].name.as_str(), s[0].dropped), ("live", 0), "{s:?}");
    // Each run of the down destination's ffmpeg waits for a keyframe, then fails to connect.
    let error = s[1].last_error.clone().unwrap_or_default();
    assert!(error.contains("127.0.0.1") && error.contains("refused"), "{s:?}");
    assert!(!error.contains("key-down-0002"), "{error}");
    let pids: Vec<u32> = s.iter().filter_map(|s| s.pid).collect();
    assert!(!pids.is_empty());

    let t = Instant::now();
    r.stop().await;
    // The live ffmpeg ends with its input, the down one is killed: no waiting out the drain.
    assert!(t.elapsed() < DRAIN, "{:?}", t.elapsed());
    for pid in &pids {
        assert!(!alive(*pid), "ffmpeg {pid} left behind");
    }
    let ended = tokio::time::timeout(Duration::from_secs(10), rx.wait()).await.expect("the receiver ends").unwrap();
    let log = receiver_log(&out);
    assert!(ended.success(), "{ended}: {log}");
    let (codecs, duration) = probe(&out).await;
    assert_eq!(codecs, ["h264", "aac"]);
    assert!((duration - SECONDS).abs() < 0.2, "received {duration} s of {SECONDS} s");

    // Each state in the logs, with the live stream and the destination's name; keys never.
    let logs = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    let line = |destination: &str, what: &str| {
        logs.lines().any(|l| {
            l.contains(&format!("live_stream={id}"))
                && l.contains(&format!("destination={destination}"))
                && l.contains(what)
        })
    };
    assert!(line("live", "restream: connecting") && line("live", "restream: pushing"), "{logs}");
    assert!(line("down", "restream: failed; retrying") && line("down", "Connection refused"), "{logs}");
    assert!(line("down", "restream: ffmpeg ended"), "{logs}");
    assert!(line("live", "restream: stopped") && line("down", "restream: stopped"), "{logs}");
    assert!(!logs.contains("key-live-0001") && !logs.contains("key-down-0002"), "{logs}");
}

/// A loopback destination is refused when private addresses are not allowed: an address in the
/// URL at once and for good, a name that resolves to one at each connection (its DNS may change).
/// Allowed, the same name connects (the test above).
#[tokio::test]
async fn the_guard_refuses_loopback_destinations_unless_private_is_allowed() {
    if !have_ffmpeg() {
        eprintln!("skipped: no ffmpeg");
        return;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let destinations = [
        dest("literal", format!("rtmp://127.0.0.1:{port}/app"), "key-0001"),
        dest("name", format!("rtmp://localhost:{port}/app"), "key-0002"),
    ];
    let cancel = CancellationToken::new();
    let r = Restreamer::start(&live_stream(), &destinations, &guard(false), &settings(), &cancel);
    // ffmpeg connects to the relay only with media to send.
    let dir = tempfile::tempdir().unwrap();
    let events = read_flv(&std::fs::read(source(dir.path()).await).unwrap());
    wait_for("the named destination's ffmpeg", Duration::from_secs(5), || r.statuses()[1].starts >= 1).await;
    for e in events.iter().take(40) {
        r.send(e);
    }
    wait_for("a refusal of the name", Duration::from_secs(5), || {
        r.statuses()[1].last_error.as_deref().is_some_and(|e| e.contains("localhost") && e.contains("not allowed"))
    })
    .await;
    let s = r.statuses();
    let PushState::Refused { error } = &s[0].state else { panic!("{s:?}") };
    assert!(error.contains("not allowed"), "{error}");
    assert_eq!((s[0].starts, s[0].pid), (0, None), "no ffmpeg for a refused destination");
    // Nothing ever connected to the loopback listener.
    assert!(tokio::time::timeout(Duration::from_millis(50), listener.accept()).await.is_err());
    cancel.cancel();
    r.stop().await;
}

/// A self-signed certificate for `localhost` only (no address in it), made with the openssl CLI.
fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let st = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"])
        // A leaf, not a CA: webpki refuses a CA certificate presented as the server's own.
        .args(["-addext", "basicConstraints=critical,CA:FALSE", "-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(st.success(), "openssl made no certificate");
    (cert, key)
}

/// An RTMPS receiver: TLS terminated here (ffmpeg cannot listen on rtmps), then plain RTMP to
/// `port`. Returns the TLS port.
async fn tls_front(cert: &Path, key: &Path, port: u16) -> u16 {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = vec![CertificateDer::from_pem_file(cert).unwrap()];
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls_port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let Ok(mut plain) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else { return };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    tls_port
}

/// `rtmps://`: TLS to the checked address with the URL's name (SNI, certificate checked against
/// the name): `localhost` is accepted, the same server by address is not (its certificate names
/// no address), and a certificate the roots do not know would fail the same way.
#[tokio::test]
async fn rtmps_checks_the_certificate_against_the_name_of_the_url() {
    if !have_ffmpeg() {
        eprintln!("skipped: no ffmpeg");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    let events = read_flv(&std::fs::read(source(dir.path()).await).unwrap());
    let port = free_port();
    let out = dir.path().join("received.flv");
    let mut rx = ready_receiver(port, "key-tls-0001", &out).await;
    let tls_port = tls_front(&cert, &key, port).await;
    let destinations = [
        dest("tls", format!("rtmps://localhost:{tls_port}/app"), "key-tls-0001"),
        dest("by-address", format!("rtmps://127.0.0.1:{tls_port}/app"), "key-tls-0002"),
    ];
    let mut settings = settings();
    {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        settings.extra_roots = vec![CertificateDer::from_pem_file(&cert).unwrap()];
    }
    let cancel = CancellationToken::new();
    let r = Restreamer::start(&live_stream(), &destinations, &guard(true), &settings, &cancel);
    wait_for("both ffmpegs", Duration::from_secs(5), || r.statuses().iter().all(|s| s.starts >= 1)).await;
    let started = Instant::now();
    for e in &events {
        if let Some(dts) = e.dts()
            && let Some(wait) = Duration::from_millis(dts as u64 / 2).checked_sub(started.elapsed())
        {
            tokio::time::sleep(wait).await;
        }
        r.send(e);
    }
    wait_for("the address's refusal", Duration::from_secs(5), || {
        r.statuses()[1].last_error.as_deref().is_some_and(|e| e.contains("TLS handshake failed"))
    })
    .await;
    wait_for("the name to take media", Duration::from_secs(5), || r.statuses()[0].state == PushState::Pushing).await;
    let before = r.statuses();
    assert!(before[0].last_error.is_none(), "{before:?}");
    r.stop().await;
    let ended = tokio::time::timeout(Duration::from_secs(10), rx.wait())
        .await
        .unwrap_or_else(|_| panic!("{before:?}"))
        .unwrap();
    let log = receiver_log(&out);
    let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    assert!(size > 100_000, "received {size} bytes; {before:?} {log}");
    let (codecs, duration) = probe(&out).await;
    assert!(ended.success(), "{ended}: {log} {codecs:?} {duration}");
    assert_eq!(codecs, ["h264", "aac"]);
    assert!((duration - SECONDS).abs() < 0.2, "received {duration} s of {SECONDS} s");
}

/// A destination that accepts the connection and never answers holds its ffmpeg in the RTMP
/// handshake: the pusher's queue fills and drops, and `send` never waits for it.
#[tokio::test]
async fn a_stalled_destination_drops_media_and_never_blocks_send() {
    if !have_ffmpeg() {
        eprintln!("skipped: no ffmpeg");
        return;
    }
    let hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = hole.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = hole.accept().await {
            held.push(socket);
        }
    });
    let destinations = [dest("stalled", format!("rtmp://127.0.0.1:{port}/app"), "key-0001")];
    let cancel = CancellationToken::new();
    let r = Restreamer::start(&live_stream(), &destinations, &guard(true), &settings(), &cancel);
    let dir = tempfile::tempdir().unwrap();
    let once = read_flv(&std::fs::read(source(dir.path()).await).unwrap());
    wait_for("ffmpeg", Duration::from_secs(5), || r.statuses()[0].starts >= 1).await;

    // Two minutes of broadcast (about 11 MB), handed over as fast as it comes.
    let started = Instant::now();
    for e in looped(&once, 40) {
        r.send(&e);
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "send waited: {took:?}");
    wait_for("drops", Duration::from_secs(5), || r.statuses()[0].dropped > 0).await;
    let s = r.statuses();
    assert_eq!(s[0].state, PushState::Connecting, "{s:?}");
    assert!(s[0].sent < PUSHING_AFTER, "{s:?}");
    let pid = s[0].pid.expect("ffmpeg runs");

    // Cancelled rather than stopped: a stuck ffmpeg is killed at once, not drained.
    let t = Instant::now();
    cancel.cancel();
    r.stop().await;
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    assert!(!alive(pid), "ffmpeg {pid} left behind");
}

/// `events` played `rounds` times in a row, each round's times after the previous one's.
fn looped(events: &[MediaEvent], rounds: i64) -> Vec<MediaEvent> {
    let length = (SECONDS * 1000.0) as i64 + 80;
    let shift = |e: &MediaEvent, by: i64| match e.clone() {
        MediaEvent::Video { dts, cts, keyframe, data } => MediaEvent::Video { dts: dts + by, cts, keyframe, data },
        MediaEvent::Audio { dts, data } => MediaEvent::Audio { dts: dts + by, data },
        config => config,
    };
    (0..rounds).flat_map(|round| events.iter().map(move |e| shift(e, round * length))).collect()
}

/// A destination that drops mid-broadcast and comes back gets the stream again, from a keyframe,
/// on a new ffmpeg run after the backoff.
#[tokio::test]
async fn a_destination_that_drops_is_pushed_again_when_it_returns() {
    if !have_ffmpeg() {
        eprintln!("skipped: no ffmpeg");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let events = looped(&read_flv(&std::fs::read(source(dir.path()).await).unwrap()), 3);
    let port = free_port();
    let (first, second) = (dir.path().join("first.flv"), dir.path().join("second.flv"));
    let mut rx = ready_receiver(port, "key-0001", &first).await;
    let destinations = [dest("flaky", format!("rtmp://127.0.0.1:{port}/app"), "key-0001")];
    let cancel = CancellationToken::new();
    let r = Restreamer::start(&live_stream(), &destinations, &guard(true), &settings(), &cancel);
    wait_for("ffmpeg", Duration::from_secs(5), || r.statuses()[0].starts >= 1).await;

    // Three times real time; the receiver dies after a third of the broadcast, another takes
    // its place at once.
    let started = Instant::now();
    let mut replaced = false;
    for e in &events {
        if let Some(dts) = e.dts()
            && let Some(wait) = Duration::from_millis(dts as u64 / 3).checked_sub(started.elapsed())
        {
            tokio::time::sleep(wait).await;
        }
        if !replaced && e.dts().is_some_and(|t| t > 3000) {
            replaced = true;
            rx.kill().await.unwrap();
            rx = ready_receiver(port, "key-0001", &second).await;
        }
        r.send(e);
    }
    wait_for("the second receiver to take media", Duration::from_secs(5), || {
        let s = &r.statuses()[0];
        s.starts >= 2 && s.state == PushState::Pushing
    })
    .await;
    r.stop().await;
    tokio::time::timeout(Duration::from_secs(10), rx.wait()).await.expect("the receiver ends").unwrap();
    receiver_log(&second);
    let (codecs, duration) = probe(&second).await;
    assert_eq!(codecs, ["h264", "aac"]);
    // What came after the drop (6.2 s), less the backoff, ffmpeg's start and the wait for a
    // keyframe, all slower on a busy machine: at least a few keyframe intervals.
    assert!((1.5..=6.3).contains(&duration), "the second receiver got {duration} s");
}
