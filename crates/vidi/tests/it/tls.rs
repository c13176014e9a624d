//! Vidi terminating TLS itself (`VIDI_TLS_CERT`, `VIDI_TLS_KEY`): the API and the assets over
//! https with a self-signed certificate, an upload that becomes playable, handshakes bounded in
//! time, and configurations that cannot work refused at start.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{Backend, config_for, small_video};
use serde_json::Value;
use tokio::io::AsyncReadExt;

/// A self-signed certificate for 127.0.0.1 and localhost, made with the openssl CLI.
fn self_signed(dir: &Path) -> (String, String) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let st = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        // A leaf, not a CA: webpki refuses a CA certificate presented as the server's own.
        .args(["-addext", "basicConstraints=critical,CA:FALSE", "-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(st.success(), "openssl made no certificate");
    (cert.to_string_lossy().into_owned(), key.to_string_lossy().into_owned())
}

#[tokio::test]
async fn https_end_to_end_with_a_self_signed_certificate() {
    let b = &Backend::sqlite_local();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    let mut cfg = config_for(b, dir.path());
    cfg.http.tls = Some(vidi::config::TlsFiles { cert: cert.clone().into(), key: key.into() });
    cfg.http.header_timeout = Duration::from_secs(1);
    let server = vidi::start(cfg).await.expect("server starts with TLS");
    let api_key = server.first_key.clone().unwrap();
    assert!(server.url.starts_with("https://127.0.0.1:"), "{}", server.url);

    let root = reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap();
    let http = reqwest::Client::builder().add_root_certificate(root).build().unwrap();
    let r = http
        .post(format!("{}/videos", server.url))
        .basic_auth(&api_key, Some(""))
        .json(&serde_json::json!({"title": "tls"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.version(), reqwest::Version::HTTP_11, "only http/1.1 is offered over ALPN");
    let v: Value = r.json().await.unwrap();
    let id = v["videoId"].as_str().unwrap().to_string();
    assert!(v["assets"]["hls"].as_str().unwrap().starts_with("https://"), "{v}");

    // An upload over TLS, then its playlist over TLS, as a browser uploader and player would.
    let part = reqwest::multipart::Part::bytes(small_video()).file_name("clip.mp4");
    let r = http
        .post(format!("{}/videos/{id}/source", server.url))
        .basic_auth(&api_key, Some(""))
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let s: Value = http
            .get(format!("{}/videos/{id}/status", server.url))
            .basic_auth(&api_key, Some(""))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if s["encoding"]["playable"] == true {
            break;
        }
        assert!(Instant::now() < deadline, "never playable: {s}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let m = http.get(format!("{}/vod/{id}/hls/manifest.m3u8", server.url)).send().await.unwrap();
    assert_eq!(m.status(), 200);
    assert!(m.text().await.unwrap().starts_with("#EXTM3U"));

    // A client that does not trust the certificate is refused by its own TLS stack.
    assert!(reqwest::get(format!("{}/videos", server.url)).await.is_err());
    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = server.url.replace("https://", "http://");
    assert!(reqwest::get(format!("{plain}/videos")).await.is_err());
    // A connection that never starts its handshake is closed after the header timeout.
    let mut idle = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let t = Instant::now();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut buf)).await.expect("closed in time");
    assert!(matches!(n, Ok(0) | Err(_)), "closed without an answer");
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    server.shutdown();
}

#[tokio::test]
async fn tls_configurations_that_cannot_work_stop_the_node() {
    let b = &Backend::sqlite_local();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    let start = |cert: &str, key: &str| {
        let mut cfg = config_for(b, dir.path());
        cfg.http.tls = Some(vidi::config::TlsFiles { cert: cert.into(), key: key.into() });
        vidi::start(cfg)
    };
    let err = |r: anyhow::Result<vidi::Server>| format!("{:#}", r.err().expect("refused"));
    // Half a pair is refused when the configuration is read, naming both.
    let half = |name: &str, value: &str| {
        let e = vidi::Config::load_from(None, &[(name.to_string(), value.to_string())]).expect_err("refused");
        e.to_string()
    };
    assert!(half("VIDI_TLS_CERT", &cert).contains("VIDI_TLS_KEY is not"), "{}", half("VIDI_TLS_CERT", &cert));
    assert!(half("VIDI_TLS_KEY", &key).contains("VIDI_TLS_CERT is not"));
    assert!(err(start("/nonexistent/cert.pem", &key).await).contains("VIDI_TLS_CERT"));
    // The key as the certificate, and the certificate as the key.
    assert!(err(start(&key, &key).await).contains("VIDI_TLS_CERT"));
    assert!(err(start(&cert, &cert).await).contains("VIDI_TLS_KEY"));
    // A key that does not match the certificate.
    let other = tempfile::tempdir().unwrap();
    let (_, other_key) = self_signed(other.path());
    assert!(err(start(&cert, &other_key).await).contains("do not make a usable pair"));
}

/// RTMPS on `VIDI_RTMPS_ADDR` with the HTTPS certificate: ffmpeg publishes over TLS and the live
/// playlist appears (contract §7: api.video offers both RTMP and RTMPS).
#[tokio::test]
async fn a_publisher_over_rtmps_goes_live() {
    let b = &Backend::sqlite_local();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    let mut cfg = config_for(b, dir.path());
    cfg.http.tls = Some(vidi::config::TlsFiles { cert: cert.clone().into(), key: key.into() });
    cfg.live.rtmps_addr = Some("127.0.0.1:0".parse().unwrap());
    let server = vidi::start(cfg).await.expect("server starts with RTMPS");
    let api_key = server.first_key.clone().unwrap();
    let root = reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap();
    let http = reqwest::Client::builder().add_root_certificate(root).build().unwrap();
    let live: Value = http
        .post(format!("{}/live-streams", server.url))
        .basic_auth(&api_key, Some(""))
        .json(&serde_json::json!({"name": "over tls"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (id, stream_key) = (live["liveStreamId"].as_str().unwrap(), live["streamKey"].as_str().unwrap());
    let url = format!("rtmps://{}/s/{stream_key}", server.rtmps_addr.expect("an RTMPS listener"));
    let _publisher = crate::live::publisher(&url, 8);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = http.get(format!("{}/live/{id}/index.m3u8", server.url)).send().await.unwrap();
        if r.status() == 200 && r.text().await.unwrap().contains("#EXT-X-PART:") {
            break;
        }
        assert!(Instant::now() < deadline, "no live playlist from an RTMPS publisher");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.shutdown();
    server.wait().await.unwrap();
}
