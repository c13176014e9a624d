//! The load side of `bench/live.sh --publishers` and `--viewers`, compiled: the same watchers
//! and viewers as `bench/live.py`'s, printing the same `RESULT key value` lines, for a load
//! generator that takes as little as possible of the cores it shares with the server (the
//! Python one, 1,000 asyncio clients, took a core of its own and queued responses behind its
//! own parsing).
//!
//! ```text
//! live_load publishers --playlists URL,URL,... [--seconds 60] [--slack 0.1] [--json PATH]
//! live_load viewers --playlist URL [--viewers 1000] [--seconds 40] [--warmup 10] [--fetch]
//!                   [--threads 2]
//! live_load publish --rtmp rtmp://HOST:PORT/APP --keys KEY,KEY,... --flv FILE [--seconds N]
//! ```
//!
//! `publish`: one RTMP publisher per key, all in this process (rml_rtmp's client session), each
//! sending the FLV file's tags paced at their timestamps and looped without end (timestamps
//! going on, configurations sent once), as `ffmpeg -re -stream_loop -1 -c copy` does, without
//! fifty processes polling their clocks on the server's cores.
//!
//! `publishers`: one follower per media playlist, holding blocking reloads for the hinted part;
//! a part is on time when listed no later than `slack` after its due time (the stream's best
//! part sets its start), a publisher is held when ≥ 99 % of its parts are on time.
//! `viewers`: V followers of one playlist, each on its own keep-alive connection (and with
//! `--fetch` each new part's bytes): from a part's first listing (by any viewer) to each
//! viewer's response (first byte) and to the part's last byte. Plain HTTP/1.1 with
//! Content-Length, as Vidi answers; the time of a response is taken when its first bytes are
//! read, before any parsing, as live.py does.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rml_rtmp::sessions::ClientSessionResult;
use rml_rtmp::time::RtmpTimestamp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use vidi_live::rtmp::client::Publisher;

fn wall() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

fn log(msg: &str) {
    eprintln!("[live_load] {msg}");
}

fn result(key: &str, value: impl std::fmt::Display) {
    println!("RESULT {key} {value}");
}

/// Nearest-rank percentile, as live.py's `pct`.
fn pct(values: &[f64], p: f64) -> f64 {
    let mut s = values.to_vec();
    s.sort_by(f64::total_cmp);
    let k = ((p / 100.0 * s.len() as f64 + 0.5).round() as i64 - 1).clamp(0, s.len() as i64 - 1);
    s[k as usize]
}

fn median(values: &[f64]) -> f64 {
    let mut s = values.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 { s[n / 2] } else { (s[n / 2 - 1] + s[n / 2]) / 2.0 }
}

/// This process's CPU seconds, all threads (utime + stime from /proc, USER_HZ = 100).
fn own_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    // After the command: state is field 3, utime 14 and stime 15 (1-based, whole line).
    let get = |i: usize| f.get(i - 3).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (get(14) + get(15)) / 100.0
}

// ---------------------------------------------------------------------------------------------
// Playlists

#[derive(Default)]
struct Media {
    /// Parts by media sequence number: their durations in order.
    parts: BTreeMap<u64, Vec<f64>>,
    hint: Option<(u64, u32)>,
    ended: bool,
}

/// `12.3.m4s` → (12, 3).
fn part_uri(uri: &str) -> Option<(u64, u32)> {
    let (msn, rest) = uri.strip_suffix(".m4s")?.split_once('.')?;
    Some((msn.parse().ok()?, rest.parse().ok()?))
}

fn attr<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let start = line.find(name)? + name.len();
    let rest = &line[start..];
    if let Some(q) = rest.strip_prefix('"') {
        return q.split('"').next();
    }
    rest.split(',').next()
}

fn parse(text: &str) -> Media {
    let mut m = Media { ended: text.contains("#EXT-X-ENDLIST"), ..Media::default() };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("#EXT-X-PART:") {
            let d = attr(rest, "DURATION=").and_then(|d| d.parse::<f64>().ok());
            if let (Some(d), Some((msn, _))) = (d, attr(rest, "URI=").and_then(part_uri)) {
                m.parts.entry(msn).or_default().push(d);
            }
        } else if let Some(rest) = line.strip_prefix("#EXT-X-PRELOAD-HINT:")
            && rest.contains("TYPE=PART")
        {
            m.hint = attr(rest, "URI=").and_then(part_uri);
        }
    }
    m
}

// ---------------------------------------------------------------------------------------------
// A keep-alive HTTP/1.1 connection

struct Conn {
    addr: String,
    host: String,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

struct Response {
    status: u16,
    body: Vec<u8>,
    /// Wall time of the first byte read.
    first: f64,
}

impl Conn {
    fn new(addr: &str) -> Self {
        Conn { addr: addr.to_string(), host: addr.to_string(), stream: None, buf: Vec::with_capacity(1 << 16) }
    }

    /// GET `path`, once more on a fresh connection when the kept one was closed.
    async fn get(&mut self, path: &str) -> std::io::Result<Response> {
        for attempt in 0..2 {
            match tokio::time::timeout(Duration::from_secs(30), self.try_get(path)).await {
                Ok(Ok(r)) => return Ok(r),
                Ok(Err(e)) if attempt == 1 => return Err(e),
                Err(_) => {
                    self.close();
                    return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out"));
                }
                Ok(Err(_)) => self.close(),
            }
        }
        unreachable!()
    }

    fn close(&mut self) {
        self.stream = None;
        self.buf.clear();
    }

    async fn try_get(&mut self, path: &str) -> std::io::Result<Response> {
        if self.stream.is_none() {
            let s = TcpStream::connect(&self.addr).await?;
            s.set_nodelay(true)?;
            self.stream = Some(s);
        }
        let s = self.stream.as_mut().expect("connected");
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", self.host).as_bytes()).await?;
        let mut first = None;
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).to_string();
                let mut lines = head.split("\r\n");
                let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
                let length = lines
                    .filter_map(|l| l.split_once(':'))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if self.buf.len() >= end + 4 + length {
                    let body = self.buf[end + 4..end + 4 + length].to_vec();
                    self.buf.drain(..end + 4 + length);
                    return Ok(Response { status, body, first: first.unwrap_or_else(wall) });
                }
            }
            let n = s.read_buf(&mut self.buf).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            if first.is_none() {
                first = Some(wall());
            }
        }
    }
}

/// `http://host:port/path` → ("host:port", "/path").
fn split_url(url: &str) -> (String, String) {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (addr, path) = rest.split_once('/').expect("a path");
    (addr.to_string(), format!("/{path}"))
}

// ---------------------------------------------------------------------------------------------
// A follower: blocking reloads for the hinted part, over and over

#[derive(Default)]
struct Seen {
    /// (msn, index, duration, wall time of the response that first listed it).
    parts: Vec<(u64, u32, f64, f64)>,
    /// (msn, index, wall time the bytes were all in, status, length), with `fetch`.
    got: Vec<(u64, u32, f64, u16, usize)>,
    errors: u64,
}

async fn follow(url: String, until: Instant, fetch: bool) -> Seen {
    let (addr, path) = split_url(&url);
    let base = path.rsplit_once('/').map_or("", |(b, _)| b).to_string();
    let mut c = Conn::new(&addr);
    let mut seen_keys = HashSet::new();
    let mut out = Seen::default();
    let mut hint: Option<(u64, u32)> = None;
    while Instant::now() < until {
        let q = hint.map_or(String::new(), |(m, p)| format!("?_HLS_msn={m}&_HLS_part={p}"));
        let r = match c.get(&format!("{path}{q}")).await {
            Ok(r) => r,
            Err(_) => {
                out.errors += 1;
                c.close();
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if r.status != 200 {
            out.errors += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        let m = parse(&String::from_utf8_lossy(&r.body));
        let mut fresh = Vec::new();
        for (msn, ds) in &m.parts {
            for (i, d) in ds.iter().enumerate() {
                if seen_keys.insert((*msn, i as u32)) && hint.is_some() {
                    // The first playlist's parts are history.
                    fresh.push((*msn, i as u32, *d));
                }
            }
        }
        for &(msn, i, d) in &fresh {
            out.parts.push((msn, i, d, r.first));
        }
        if fetch && let Some(&(msn, i, _)) = fresh.last() {
            match c.get(&format!("{base}/{msn}.{i}.m4s")).await {
                // The bytes are all there now (the first byte's time would flatter a big part).
                Ok(p) => out.got.push((msn, i, wall(), p.status, p.body.len())),
                Err(_) => {
                    out.errors += 1;
                    c.close();
                    continue;
                }
            }
        }
        if m.ended {
            break;
        }
        hint = m.hint.or(hint);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The two runs

struct Args(HashMap<String, String>);

impl Args {
    fn parse(args: &[String]) -> Self {
        let mut map = HashMap::new();
        let mut it = args.iter().peekable();
        while let Some(a) = it.next() {
            let key = a.trim_start_matches("--").to_string();
            let value = match it.peek() {
                Some(v) if !v.starts_with("--") => it.next().cloned().unwrap_or_default(),
                _ => "1".to_string(),
            };
            map.insert(key, value);
        }
        Args(map)
    }
    fn get<T: std::str::FromStr>(&self, key: &str, default: T) -> T {
        self.0.get(key).and_then(|v| v.parse().ok()).unwrap_or(default)
    }
    fn str(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
}

async fn publishers(a: &Args) {
    let urls: Vec<String> =
        a.str("playlists").expect("--playlists").split(',').filter(|u| !u.is_empty()).map(String::from).collect();
    let until = Instant::now() + Duration::from_secs(a.get("seconds", 60));
    let slack: f64 = a.get("slack", 0.1);
    let tasks: Vec<_> = urls.iter().map(|u| tokio::spawn(follow(u.clone(), until, false))).collect();
    let mut per = Vec::new();
    for t in tasks {
        per.push(t.await.expect("follower"));
    }
    let (mut held, mut ratios, mut lates, mut dump) = (0, Vec::new(), Vec::new(), Vec::new());
    for s in &per {
        if s.parts.is_empty() {
            ratios.push(0.0);
            continue;
        }
        // As live.py: each part's media end (parts back to back) against the wall time it was
        // listed; the stream's start is estimated by its best part.
        let mut parts: BTreeMap<(u64, u32), (f64, f64)> = BTreeMap::new();
        for &(m, i, d, w) in &s.parts {
            parts.entry((m, i)).or_insert((d, w));
        }
        let mut media = 0.0;
        let ends: Vec<(f64, f64)> = parts
            .values()
            .map(|(d, w)| {
                media += d;
                (media, *w)
            })
            .collect();
        let t0 = ends.iter().map(|(m, w)| w - m).fold(f64::INFINITY, f64::min);
        let late: Vec<f64> = ends.iter().map(|(m, w)| w - (t0 + m)).collect();
        dump.push(serde_json::json!({"parts": parts.iter().zip(&late)
            .map(|((k, (d, _)), x)| serde_json::json!([k.0, k.1, (d * 1000.0).round() / 1000.0, (x * 1000.0).round() / 1000.0]))
            .collect::<Vec<_>>()}));
        let on_time = late.iter().filter(|x| **x <= slack).count();
        let ratio = on_time as f64 / late.len() as f64;
        ratios.push(ratio);
        lates.extend(late);
        if ratio >= 0.99 {
            held += 1;
        }
    }
    if let Some(path) = a.str("json") {
        let _ = std::fs::write(path, serde_json::to_vec(&dump).unwrap_or_default());
    }
    let errors: u64 = per.iter().map(|s| s.errors).sum();
    log(&format!(
        "per publisher on-time ratios: {}",
        ratios.iter().map(|r| format!("{r:.3}")).collect::<Vec<_>>().join(" ")
    ));
    log(&format!("watcher errors: {errors}"));
    result("live_pub_client_cpu_s", format!("{:.2}", own_cpu()));
    result("live_pub_streams", urls.len());
    result("live_pub_held", held);
    result("live_pub_errors", errors);
    if !lates.is_empty() {
        result("live_pub_late_p50_ms", format!("{:.0}", median(&lates) * 1000.0));
        result("live_pub_late_p99_ms", format!("{:.0}", pct(&lates, 99.0) * 1000.0));
        result("live_pub_min_ratio", format!("{:.3}", ratios.iter().copied().fold(f64::INFINITY, f64::min)));
    }
}

async fn viewers(a: &Args) {
    let url = a.str("playlist").expect("--playlist").to_string();
    let n: usize = a.get("viewers", 1000);
    let seconds: u64 = a.get("seconds", 40);
    let warmup: f64 = a.get("warmup", 10.0);
    let fetch = a.str("fetch").is_some();
    let start = wall();
    let until = Instant::now() + Duration::from_secs(seconds);
    let all = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for k in 0..n {
        let (url, all) = (url.clone(), all.clone());
        tasks.push(tokio::spawn(async move {
            let s = follow(url, until, fetch).await;
            all.lock().expect("viewers").push(s);
        }));
        if k % 50 == 49 {
            // Connection set-up spread out, before the measured window.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    for t in tasks {
        t.await.expect("viewer");
    }
    let all = std::mem::take(&mut *all.lock().expect("viewers"));
    // A part is available when the first viewer saw it listed; each viewer's delay is from then.
    let mut first: HashMap<(u64, u32), f64> = HashMap::new();
    for s in &all {
        for &(m, i, _, w) in &s.parts {
            first.entry((m, i)).and_modify(|f| *f = f.min(w)).or_insert(w);
        }
    }
    let warm = start + warmup;
    let listing: Vec<f64> = all
        .iter()
        .flat_map(|s| s.parts.iter())
        .filter(|(m, i, _, _)| first[&(*m, *i)] >= warm)
        .map(|(m, i, _, w)| w - first[&(*m, *i)])
        .collect();
    result("live_view_client_cpu_s", format!("{:.2}", own_cpu()));
    result("live_view_viewers", n);
    result("live_view_errors", all.iter().map(|s| s.errors).sum::<u64>());
    result("live_view_parts", first.values().filter(|w| **w >= warm).count());
    result("live_view_responses", listing.len());
    if !listing.is_empty() {
        result("live_view_listing_p50_ms", format!("{:.1}", median(&listing) * 1000.0));
        result("live_view_listing_p99_ms", format!("{:.1}", pct(&listing, 99.0) * 1000.0));
    }
    if fetch {
        let got = all.iter().flat_map(|s| s.got.iter());
        let delivery: Vec<f64> = got
            .clone()
            .filter(|(m, i, _, s, _)| *s == 200 && first.get(&(*m, *i)).is_some_and(|f| *f >= warm))
            .map(|(m, i, w, _, _)| w - first[&(*m, *i)])
            .collect();
        result("live_view_part_fetch_failures", got.filter(|g| g.3 != 200).count());
        if !delivery.is_empty() {
            result("live_view_delivery_p50_ms", format!("{:.1}", median(&delivery) * 1000.0));
            result("live_view_delivery_p99_ms", format!("{:.1}", pct(&delivery, 99.0) * 1000.0));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Publishers

/// One FLV tag: 8 audio, 9 video (18, script data, is left out).
struct Tag {
    kind: u8,
    ts: u32,
    data: Bytes,
    /// An AVC or AAC sequence header: sent once, not at every loop.
    config: bool,
}

fn read_flv(path: &str) -> std::io::Result<Vec<Tag>> {
    let b = std::fs::read(path)?;
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not an FLV file");
    if b.len() < 13 || &b[..3] != b"FLV" {
        return Err(bad());
    }
    let mut at = u32::from_be_bytes([b[5], b[6], b[7], b[8]]) as usize + 4;
    let mut tags = Vec::new();
    while at + 11 <= b.len() {
        let kind = b[at];
        let size = u32::from_be_bytes([0, b[at + 1], b[at + 2], b[at + 3]]) as usize;
        let ts = u32::from_be_bytes([b[at + 7], b[at + 4], b[at + 5], b[at + 6]]);
        let body = at + 11;
        if body + size > b.len() {
            break;
        }
        let data = Bytes::copy_from_slice(&b[body..body + size]);
        let config = size > 1
            && ((kind == 9 && data[0] & 0x0f == 7 && data[1] == 0)
                || (kind == 8 && data[0] >> 4 == 10 && data[1] == 0));
        if kind == 8 || kind == 9 {
            tags.push(Tag { kind, ts, data, config });
        }
        at = body + size + 4;
    }
    if tags.is_empty() {
        return Err(bad());
    }
    Ok(tags)
}

/// Sends `tags` paced at their timestamps from now, looped until `until`, as `p`.
async fn run(p: Publisher, tags: Arc<Vec<Tag>>, until: Instant) -> std::io::Result<()> {
    let Publisher { tcp, mut session, .. } = p;
    let (mut rd, mut wr) = tcp.into_split();
    // What the server sends while we publish (acknowledgements) is read and let go.
    let drain = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while matches!(rd.read(&mut buf).await, Ok(n) if n > 0) {}
    });
    let video: Vec<u32> = tags.iter().filter(|t| t.kind == 9).map(|t| t.ts).collect();
    let step = match video.as_slice() {
        [.., a, b] => b - a,
        _ => 33,
    };
    let span = tags.iter().map(|t| t.ts).max().unwrap_or(0).max(video.last().copied().unwrap_or(0) + step);
    let start = tokio::time::Instant::now();
    let mut offset = 0u32;
    let mut first = true;
    let r = 'run: loop {
        for t in tags.iter() {
            if t.config && !first {
                continue;
            }
            let ts = t.ts + offset;
            tokio::time::sleep_until(start + Duration::from_millis(u64::from(ts))).await;
            if Instant::now() >= until {
                break 'run Ok(());
            }
            let r = if t.kind == 9 {
                session.publish_video_data(t.data.clone(), RtmpTimestamp::new(ts), false)
            } else {
                session.publish_audio_data(t.data.clone(), RtmpTimestamp::new(ts), false)
            };
            match r {
                Ok(ClientSessionResult::OutboundResponse(p)) => {
                    if let Err(e) = wr.write_all(&p.bytes).await {
                        break 'run Err(e);
                    }
                }
                Ok(_) => {}
                Err(e) => break 'run Err(std::io::Error::other(e)),
            }
        }
        first = false;
        offset += span;
    };
    drain.abort();
    r
}

async fn publish(a: &Args) {
    let url = a.str("rtmp").expect("--rtmp rtmp://HOST:PORT/APP");
    let (addr, app) = url.strip_prefix("rtmp://").and_then(|r| r.split_once('/')).expect("rtmp://HOST:PORT/APP");
    let keys: Vec<String> =
        a.str("keys").expect("--keys").split(',').filter(|k| !k.is_empty()).map(String::from).collect();
    let tags = Arc::new(read_flv(a.str("flv").expect("--flv")).expect("the FLV file"));
    let until = Instant::now() + Duration::from_secs(a.get("seconds", 365 * 86400));
    let mut tasks = Vec::new();
    for key in keys {
        let (addr, app, tags) = (addr.to_string(), app.to_string(), tags.clone());
        tasks.push(tokio::spawn(async move {
            let started = async {
                let tcp = TcpStream::connect(&addr).await?;
                tcp.set_nodelay(true)?;
                Publisher::start(tcp, &app, &key, Duration::from_secs(10)).await
            };
            let r = match started.await {
                Ok(p) => run(p, tags, until).await,
                Err(e) => Err(e),
            };
            if let Err(e) = r {
                log(&format!("publisher {}…: {e}", &key[..key.len().min(6)]));
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first().cloned() else {
        eprintln!("usage: live_load publishers|viewers --help (see the source's first lines)");
        std::process::exit(2);
    };
    let a = Args::parse(&args[1..]);
    let threads = a.get("threads", if cmd == "publishers" { 1 } else { 2 });
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build().expect("runtime");
    rt.block_on(async {
        match cmd.as_str() {
            "publishers" => publishers(&a).await,
            "viewers" => viewers(&a).await,
            "publish" => publish(&a).await,
            _ => {
                eprintln!("unknown command {cmd}");
                std::process::exit(2);
            }
        }
    });
}
