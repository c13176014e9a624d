use super::*;

#[test]
fn forbidden_addresses_in_every_spelling() {
    let no = [
        "127.0.0.1",
        "127.1.2.3",
        "0.0.0.0",
        "0.1.2.3",
        "10.0.0.1",
        "172.16.5.4",
        "172.31.255.255",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "224.0.0.1",
        "255.255.255.255",
        "240.0.0.1",
        "198.18.0.1",
        "192.0.0.8",
        "::1",
        "::",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "64:ff9b::7f00:1",
        "2002:7f00:1::",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "ff02::1",
        "::127.0.0.1",
    ];
    for a in no {
        assert!(is_forbidden(a.parse().unwrap()), "{a} should be refused");
    }
    let yes = ["93.184.216.34", "8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "64:ff9b::808:808"];
    for a in yes {
        assert!(!is_forbidden(a.parse().unwrap()), "{a} should be allowed");
    }
}

#[test]
fn literal_hosts_are_refused_before_any_connection() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let g = Guard::new(false, Duration::from_secs(1)).unwrap();
    for u in [
        "http://127.0.0.1:9/x",
        "http://2130706433/",
        "http://0x7f.1/",
        "http://0177.0.0.1/",
        "http://0.0.0.0/",
        "http://[::1]/",
        "http://[::ffff:7f00:1]/",
        "https://169.254.169.254/latest/meta-data/",
    ] {
        assert_eq!(g.check(u).unwrap_err(), OutboundError::Forbidden, "{u}");
    }
    assert_eq!(g.check("ftp://example.com/").unwrap_err(), OutboundError::BadUrl);
    assert_eq!(g.check("file:///etc/passwd").unwrap_err(), OutboundError::BadUrl);
    assert!(g.check("https://example.com/v.mp4").is_ok());
    let open = Guard::new(true, Duration::from_secs(1)).unwrap();
    assert!(open.check("http://127.0.0.1:9/x").is_ok());
}

/// `allows` is the same policy, for callers that resolve and connect themselves (restreams).
#[test]
fn allows_follows_the_policy_and_its_exemptions() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let loopback: IpAddr = "127.0.0.1".parse().unwrap();
    let public: IpAddr = "93.184.216.34".parse().unwrap();
    let g = Guard::new(false, Duration::from_secs(1)).unwrap();
    assert!(!g.allows(loopback) && !g.allows("::ffff:10.0.0.1".parse().unwrap()) && g.allows(public));
    assert!(Guard::new(true, Duration::from_secs(1)).unwrap().allows(loopback));
    let exempt = Guard::with_exempt(false, vec![loopback], Duration::from_secs(1)).unwrap();
    assert!(exempt.allows(loopback) && !exempt.allows("127.0.0.2".parse().unwrap()));
}

fn drip(pieces: Vec<(u64, usize)>) -> impl Stream<Item = Result<Bytes, OutboundError>> + Send + 'static {
    futures::stream::iter(pieces).then(|(wait_ms, n)| async move {
        tokio::time::sleep(Duration::from_millis(wait_ms)).await;
        Ok(Bytes::from(vec![0u8; n]))
    })
}

async fn drain(s: impl Stream<Item = Result<Bytes, OutboundError>>) -> Result<u64, OutboundError> {
    futures::pin_mut!(s);
    let mut n = 0;
    while let Some(c) = s.next().await {
        n += c?.len() as u64;
    }
    Ok(n)
}

const LIMITS: Limits =
    Limits { max_bytes: 1000, total: Duration::from_secs(60), min_rate: 100, window: Duration::from_secs(1) };

#[tokio::test(start_paused = true)]
async fn bounded_downloads() {
    let now = tokio::time::Instant::now;
    // Within every bound.
    assert_eq!(drain(bounded(drip(vec![(10, 300), (10, 300)]), LIMITS, now())).await, Ok(600));
    // Too large, even when no length was announced.
    let big = drain(bounded(drip(vec![(0, 600), (0, 600)]), LIMITS, now())).await;
    assert_eq!(big, Err(OutboundError::TooLarge(1000)));
    // A drip: 10 bytes every 500 ms is under 100 B/s.
    let slow = drain(bounded(drip((0..100).map(|_| (500, 10)).collect()), LIMITS, now())).await;
    assert_eq!(slow, Err(OutboundError::Stalled { min: 100, window: 1 }));
    // Silence counts too.
    let silent = drain(bounded(drip(vec![(5_000, 10)]), LIMITS, now())).await;
    assert_eq!(silent, Err(OutboundError::Stalled { min: 100, window: 1 }));
    // Fast enough, but past the total time.
    let total = Limits { total: Duration::from_secs(3), max_bytes: 1 << 30, ..LIMITS };
    let long = drain(bounded(drip((0..100).map(|_| (100, 100)).collect()), total, now())).await;
    assert_eq!(long, Err(OutboundError::TooSlow(3)));
}

/// A loopback origin the guard trusts redirects to another loopback address it does not: the
/// redirect is refused and the target never sees a connection, whether named by address or by
/// a name that resolves to it.
#[tokio::test]
async fn redirects_are_checked_at_every_hop() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let _ = rustls::crypto::ring::default_provider().install_default();
    // The target: 127.0.0.2 (loopback, forbidden), counting connections.
    let target = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
    let target_port = target.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let seen = hits.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = target.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            drop(s);
        }
    });
    // The origin: 127.0.0.1 (exempt), answering every request with a redirect to the target, or
    // to itself (a loop).
    let origin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin_port = origin.local_addr().unwrap().port();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut s, _)) = origin.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let to = if req.starts_with("GET /addr") {
                    format!("http://127.0.0.2:{target_port}/x")
                } else if req.starts_with("GET /v6") {
                    format!("http://[::ffff:127.0.0.2]:{target_port}/x")
                } else {
                    format!("http://127.0.0.1:{origin_port}/loop")
                };
                let answer =
                    format!("HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                let _ = s.write_all(answer.as_bytes()).await;
            });
        }
    });
    let g = Guard::with_exempt(false, vec!["127.0.0.1".parse().unwrap()], Duration::from_secs(2)).unwrap();
    let limits =
        Limits { max_bytes: 1 << 20, total: Duration::from_secs(10), min_rate: 1, window: Duration::from_secs(5) };
    for path in ["addr", "v6"] {
        let url = g.check(&format!("http://127.0.0.1:{origin_port}/{path}")).unwrap();
        let e = g.download(&url, limits).await.err().unwrap();
        assert_eq!(e, OutboundError::Forbidden, "{path}");
    }
    let url = g.check(&format!("http://127.0.0.1:{origin_port}/loop")).unwrap();
    assert_eq!(g.download(&url, limits).await.err().unwrap(), OutboundError::TooManyRedirects);
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the forbidden target was connected to");
}

/// A hostile webhook receiver costs one bounded attempt: a redirect is an answer (never
/// followed), an endless answer is read for `keep` bytes only, and a drip ends at the timeout.
#[tokio::test]
async fn posts_follow_no_redirect_and_are_bounded() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let requests = Arc::new(AtomicUsize::new(0));
    let count = requests.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                if req.starts_with("POST /redirect") {
                    let to = format!("http://127.0.0.1:{port}/redirect");
                    let a = format!("HTTP/1.1 307 Temporary Redirect\r\nLocation: {to}\r\nContent-Length: 0\r\n\r\n");
                    let _ = s.write_all(a.as_bytes()).await;
                } else if req.starts_with("POST /huge") {
                    // Announces a gigabyte and sends until the reader goes away.
                    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n").await;
                    let chunk = vec![b'x'; 64 * 1024];
                    while s.write_all(&chunk).await.is_ok() {}
                } else {
                    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n").await;
                    for _ in 0..1000 {
                        if s.write_all(b"x").await.is_err() {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            });
        }
    });
    let g = Guard::new(true, Duration::from_secs(2)).unwrap();
    let url = |p: &str| g.check(&format!("http://127.0.0.1:{port}/{p}")).unwrap();
    let timeout = Duration::from_secs(2);
    let a = g.post(&url("redirect"), &[], Bytes::from_static(b"{}"), timeout, 1024).await.unwrap();
    assert_eq!(a.status, 307);
    assert_eq!(requests.load(Ordering::SeqCst), 1, "the redirect was followed");
    let started = std::time::Instant::now();
    let a = g.post(&url("huge"), &[], Bytes::from_static(b"{}"), timeout, 1024).await.unwrap();
    assert_eq!((a.status, a.excerpt.len()), (200, 1024));
    assert!(started.elapsed() < Duration::from_secs(2));
    let started = std::time::Instant::now();
    let e = g.post(&url("drip"), &[], Bytes::from_static(b"{}"), timeout, 1024).await.unwrap_err();
    assert_eq!(e, OutboundError::TooSlow(2));
    assert!(started.elapsed() < Duration::from_secs(3));
    // Private addresses stay refused unless allowed.
    let closed = Guard::new(false, Duration::from_secs(2)).unwrap();
    let e = closed.post(&url("redirect"), &[], Bytes::new(), timeout, 1024).await.unwrap_err();
    assert_eq!(e, OutboundError::Forbidden);
    assert_eq!(requests.load(Ordering::SeqCst), 3);
}
