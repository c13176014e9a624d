//! What keeps the collector, which takes no API key, from being flooded: a token bucket per client
//! address, and counts of what was accepted and refused (by reason), which the logs and
//! `/metrics` show.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use vidi_core::metric_names as names;

/// Past this many addresses tracked, idle ones are forgotten (a bucket refilled to the brim
/// holds nothing worth keeping), so a scan from many addresses cannot grow the map without end.
const MAX_TRACKED: usize = 100_000;

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// A token bucket per client address: `rate` requests a second, bursts of up to `burst`.
/// IPv6 clients are counted by their /64, which one subscriber usually holds whole, so that
/// rotating through its addresses gains nothing.
pub struct Limiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl Limiter {
    /// `rate` 0: no limit.
    pub fn new(rate: u32) -> Limiter {
        let rate = f64::from(rate);
        // Five seconds' worth at once: a page's first requests (mint, first batch) and a beacon
        // sent beside a regular batch all fit.
        Limiter { rate, burst: (rate * 5.0).max(1.0), buckets: Mutex::default() }
    }

    fn key(ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let s = v6.segments();
                    IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
                }
            },
            v4 => v4,
        }
    }

    /// Takes one request's token from `ip`'s bucket: `Err(seconds)` to wait when it is empty.
    pub fn take(&self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        if self.rate == 0.0 {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().expect("not poisoned");
        if buckets.len() >= MAX_TRACKED {
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
            if buckets.len() >= MAX_TRACKED {
                // Every one is busy: start over rather than grow (a flood from that many
                // addresses is beyond what a per-address limit can answer anyway).
                buckets.clear();
            }
        }
        let b = buckets.entry(Self::key(ip)).or_insert(Bucket { tokens: self.burst, at: now });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * self.rate).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - b.tokens) / self.rate).ceil().max(1.0) as u64)
        }
    }
}

/// Why the collector refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not JSON, or not the protocol's shape.
    Malformed,
    /// An event out of bounds (type, playhead, time, sequence).
    InvalidEvent,
    /// Larger than the body limit, or too many events.
    TooLarge,
    /// No such video or live stream.
    UnknownSubject,
    /// No such session.
    UnknownSession,
    /// A session older than a session lasts.
    ClosedSession,
    /// A private subject, outside its playback session.
    Private,
    /// The client address sent too much.
    RateLimited,
}

impl Refusal {
    pub const ALL: [Refusal; 8] = [
        Refusal::Malformed,
        Refusal::InvalidEvent,
        Refusal::TooLarge,
        Refusal::UnknownSubject,
        Refusal::UnknownSession,
        Refusal::ClosedSession,
        Refusal::Private,
        Refusal::RateLimited,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Malformed => "malformed",
            Refusal::InvalidEvent => "invalid_event",
            Refusal::TooLarge => "too_large",
            Refusal::UnknownSubject => "unknown_subject",
            Refusal::UnknownSession => "unknown_session",
            Refusal::ClosedSession => "closed_session",
            Refusal::Private => "private",
            Refusal::RateLimited => "rate_limited",
        }
    }
}

/// The collector's counters since the process started.
#[derive(Default)]
pub struct Counts {
    sessions: AtomicU64,
    events: AtomicU64,
    refused: [AtomicU64; Refusal::ALL.len()],
}

/// A reading of [`Counts`].
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CollectorStats {
    pub sessions: u64,
    pub events: u64,
    /// `(reason, count)` for every reason, in [`Refusal::ALL`]'s order.
    pub refused: Vec<(&'static str, u64)>,
}

impl CollectorStats {
    pub fn refused(&self, r: Refusal) -> u64 {
        self.refused.iter().find(|(n, _)| *n == r.as_str()).map_or(0, |(_, c)| *c)
    }
}

/// Each count is kept twice: here, for this collector's own reading ([`Counts::snapshot`]), and
/// in `/metrics`, which adds up every collector of the process.
impl Counts {
    pub fn session(&self) {
        self.sessions.fetch_add(1, Relaxed);
        metrics::counter!(names::COLLECTOR_SESSIONS).increment(1);
    }

    /// A batch of `n` events accepted.
    pub fn events(&self, n: u64) {
        self.events.fetch_add(n, Relaxed);
        metrics::counter!(names::COLLECTOR_BATCHES).increment(1);
        metrics::counter!(names::COLLECTOR_EVENTS).increment(n);
    }

    pub fn refuse(&self, r: Refusal) {
        let i = Refusal::ALL.iter().position(|x| *x == r).expect("listed");
        let n = self.refused[i].fetch_add(1, Relaxed) + 1;
        metrics::counter!(names::COLLECTOR_REFUSED, "reason" => r.as_str()).increment(1);
        // The first refusal of a reason, then every thousandth: a flood shows in the log without
        // writing a line per request.
        if n == 1 || n.is_multiple_of(1000) {
            tracing::info!(reason = r.as_str(), total = n, "collector refused a request");
        } else {
            tracing::debug!(reason = r.as_str(), total = n, "collector refused a request");
        }
    }

    pub fn snapshot(&self) -> CollectorStats {
        CollectorStats {
            sessions: self.sessions.load(Relaxed),
            events: self.events.load(Relaxed),
            refused: Refusal::ALL.iter().zip(&self.refused).map(|(r, c)| (r.as_str(), c.load(Relaxed))).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_bucket_per_address_refills_at_its_rate() {
        let l = Limiter::new(2);
        let t0 = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..10 {
            assert!(l.take(a, t0).is_ok());
        }
        assert_eq!(l.take(a, t0), Err(1));
        // Another address is unaffected.
        assert!(l.take(b, t0).is_ok());
        // Half a second later, one more token.
        assert!(l.take(a, t0 + Duration::from_millis(500)).is_ok());
        assert!(l.take(a, t0 + Duration::from_millis(500)).is_err());
    }

    #[test]
    fn ipv6_is_limited_by_its_64() {
        let l = Limiter::new(1);
        let t0 = Instant::now();
        for i in 0..5 {
            assert!(l.take(format!("2001:db8::{i}").parse().unwrap(), t0).is_ok());
        }
        assert!(l.take("2001:db8::99".parse().unwrap(), t0).is_err());
        assert!(l.take("2001:db8:0:1::1".parse().unwrap(), t0).is_ok());
    }

    #[test]
    fn no_limit_at_zero_and_counts_by_reason() {
        let l = Limiter::new(0);
        for _ in 0..1000 {
            assert!(l.take("192.0.2.1".parse().unwrap(), Instant::now()).is_ok());
        }
        let c = Counts::default();
        c.refuse(Refusal::RateLimited);
        c.refuse(Refusal::RateLimited);
        c.events(3);
        let s = c.snapshot();
        assert_eq!((s.refused(Refusal::RateLimited), s.refused(Refusal::Private), s.events), (2, 0, 3));
    }
}
