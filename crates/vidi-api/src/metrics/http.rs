//! The HTTP request metrics (`vidi_http_requests_total`, `vidi_http_request_duration_seconds`),
//! kept by Vidi rather than by the exporter, because every API request records into them.
//!
//! Why (issue 24, docs/performance.md): the exporter's histogram buffers each sample with a
//! timestamp in a lock-free list, entering a crossbeam epoch, reading the clock and allocating a
//! block every 64 samples, and its counters and buffers are one per label set, shared by every
//! runtime thread: each request wrote cache lines the other cores were writing too. Here each
//! runtime thread has series of its own (written by that thread only, so a count is a relaxed
//! load and store, no locked instruction, no line moving between cores), a duration goes into
//! fixed buckets by comparing integers, and a scrape adds the threads' series up. The text is the
//! exporter's: the same names, labels (`route`, `method`, `status`, `le`), bounds, cumulative
//! `_bucket` lines, `_sum` and `_count`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::names;

/// The buckets' upper bounds (`le`), in microseconds: integers, so that each renders as the same
/// decimal the exporter wrote for the seconds (1000 µs is `0.001`).
const BOUNDS_US: [u64; 14] = [
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000,
    10_000_000, 30_000_000,
];

/// The bounds in nanoseconds, what a sample is compared with.
const BOUNDS_NS: [u64; BOUNDS_US.len()] = {
    let mut ns = BOUNDS_US;
    let mut i = 0;
    while i < ns.len() {
        ns[i] *= 1000;
        i += 1;
    }
    ns
};

/// One runtime thread's requests of one route, method and status: written by that thread only,
/// read by scrapes.
#[derive(Default)]
pub(super) struct Series {
    requests: AtomicU64,
    /// Requests that took at most each bound and more than the one before, and (last) more than
    /// the largest bound. Not cumulative: a request touches one of them; the scrape adds them up.
    buckets: [AtomicU64; BOUNDS_US.len() + 1],
    sum_ns: AtomicU64,
}

/// `a += n` for a counter only this thread writes: no read-modify-write instruction needed.
fn bump(a: &AtomicU64, n: u64) {
    a.store(a.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

impl Series {
    /// Counts one request that took `took`. Only the thread that asked for this series calls it.
    pub(super) fn record(&self, took: Duration) {
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        let i = BOUNDS_NS.iter().position(|&b| ns <= b).unwrap_or(BOUNDS_NS.len());
        bump(&self.requests, 1);
        bump(&self.buckets[i], 1);
        bump(&self.sum_ns, ns);
    }
}

/// Every series of the process: route template, method, status, and one thread's counts.
type Registry = Vec<(Box<str>, &'static str, u16, Arc<Series>)>;

/// Taken when a runtime thread first answers a route, method and status (it then keeps its
/// series), and at a scrape.
static ALL: Mutex<Registry> = Mutex::new(Vec::new());

/// A new series for the calling thread (it must keep it: the next call makes another).
pub(super) fn series(route: &str, method: &'static str, status: u16) -> Arc<Series> {
    let s = Arc::<Series>::default();
    ALL.lock().unwrap_or_else(PoisonError::into_inner).push((route.into(), method, status, Arc::clone(&s)));
    s
}

/// Appends both metrics to `out`, in Prometheus' text format, every thread's series added up.
pub fn render(out: &mut String) {
    type Buckets = ([u64; BOUNDS_US.len() + 1], u64);
    let mut requests: BTreeMap<(&str, &str, u16), u64> = BTreeMap::new();
    let mut durations: BTreeMap<(&str, &str), Buckets> = BTreeMap::new();
    let all = ALL.lock().unwrap_or_else(PoisonError::into_inner);
    for (route, method, status, s) in all.iter() {
        *requests.entry((route, method, *status)).or_default() += s.requests.load(Ordering::Relaxed);
        let (buckets, sum) = durations.entry((route, method)).or_default();
        for (total, b) in buckets.iter_mut().zip(&s.buckets) {
            *total += b.load(Ordering::Relaxed);
        }
        *sum += s.sum_ns.load(Ordering::Relaxed);
    }
    if requests.is_empty() {
        return;
    }
    let name = names::HTTP_REQUESTS;
    let _ = writeln!(out, "# TYPE {name} counter");
    for ((route, method, status), n) in requests {
        let _ = writeln!(out, "{name}{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {n}", escape(route));
    }
    out.push('\n');
    let name = names::HTTP_DURATION;
    let _ = writeln!(out, "# TYPE {name} histogram");
    for ((route, method), (buckets, sum_ns)) in durations {
        let labels = format!("route=\"{}\",method=\"{method}\"", escape(route));
        let mut count = 0;
        for (i, n) in buckets.iter().enumerate() {
            count += n;
            match BOUNDS_US.get(i) {
                Some(&us) => {
                    let le = us as f64 / 1e6;
                    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {count}");
                }
                None => {
                    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
                }
            }
        }
        let sum = sum_ns as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
    out.push('\n');
}

/// A label value as the text format wants it: backslash, quote and newline escaped. Route
/// templates have none, but the format must not depend on it.
fn escape(v: &str) -> std::borrow::Cow<'_, str> {
    if !v.contains(['\\', '"', '\n']) {
        return v.into();
    }
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n").into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_render_as_the_exporters_did() {
        let les: Vec<String> = BOUNDS_US.iter().map(|&us| (us as f64 / 1e6).to_string()).collect();
        let was = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
        assert_eq!(les, was.map(|s: f64| s.to_string()));
        assert_eq!(les[0], "0.001");
        assert_eq!(les[9], "1");
    }

    #[test]
    fn threads_series_add_up_into_cumulative_buckets() {
        let route = "/test/{series}";
        let a = series(route, "PATCH", 200);
        a.record(Duration::from_micros(1_000)); // at most 0.001
        a.record(Duration::from_nanos(1_000_001)); // just over
        // Another thread's series of the same labels, and another status.
        let b = series(route, "PATCH", 200);
        b.record(Duration::from_millis(20));
        series(route, "PATCH", 404).record(Duration::from_secs(60)); // past the largest bound
        let mut out = String::new();
        render(&mut out);
        let value = |prefix: String| {
            out.lines().find_map(|l| l.strip_prefix(prefix.as_str())).unwrap_or_else(|| panic!("{prefix}: {out}"))
        };
        let bucket = |le: &str| {
            value(format!(
                "vidi_http_request_duration_seconds_bucket{{route=\"/test/{{series}}\",method=\"PATCH\",le=\"{le}\"}} "
            ))
        };
        assert_eq!(bucket("0.001"), "1");
        assert_eq!(bucket("0.0025"), "2");
        assert_eq!(bucket("0.025"), "3");
        assert_eq!(bucket("30"), "3");
        assert_eq!(bucket("+Inf"), "4");
        let labels = "{route=\"/test/{series}\",method=\"PATCH\"} ";
        assert_eq!(value(format!("vidi_http_request_duration_seconds_count{labels}")), "4");
        let sum: f64 = value(format!("vidi_http_request_duration_seconds_sum{labels}")).parse().unwrap();
        assert!((sum - 60.022_000_001).abs() < 1e-6, "{sum}");
        let requests = |status| {
            value(format!(
                "vidi_http_requests_total{{route=\"/test/{{series}}\",method=\"PATCH\",status=\"{status}\"}} "
            ))
        };
        assert_eq!(requests(200), "3");
        assert_eq!(requests(404), "1");
        assert!(out.contains("# TYPE vidi_http_request_duration_seconds histogram\n"));
        assert!(out.contains("# TYPE vidi_http_requests_total counter\n"));
    }
}
