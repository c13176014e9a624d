//! The HTTP request duration histogram (`vidi_http_request_duration_seconds`), kept by Vidi
//! rather than by the exporter, because every API request records into it.
//!
//! The exporter's histograms buffer each sample (value and timestamp) in a lock-free list of
//! blocks, entering a crossbeam epoch and reading the clock per sample and allocating a block
//! every 64, and fold the samples into buckets only at upkeep or scrape. Under callgrind that was
//! the largest share of what metrics cost `GET /videos/{id}` (docs/performance.md, issue 24).
//! Here a sample is two relaxed atomic adds into fixed buckets: which bucket by comparing
//! integers, the sum in nanoseconds. The text is the exporter's: the same name, labels (`route`,
//! `method`, `le`), bounds, cumulative `_bucket` lines, `_sum` and `_count`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::names;

/// The buckets' upper bounds (`le`), in microseconds: integers, so a duration is placed without
/// a float conversion, and each renders as the same decimal the exporter wrote for the seconds
/// (1000 µs is `0.001`).
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

/// One route and method's histogram.
#[derive(Default)]
pub(super) struct Durations {
    /// Requests that took at most each bound and more than the one before, and (last) more than
    /// the largest bound. Not cumulative: a sample touches one counter; the scrape adds them up.
    buckets: [AtomicU64; BOUNDS_US.len() + 1],
    sum_ns: AtomicU64,
}

impl Durations {
    pub(super) fn record(&self, took: Duration) {
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        let i = BOUNDS_NS.iter().position(|&b| ns <= b).unwrap_or(BOUNDS_NS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }
}

/// Every histogram of the process, by route template and method. Taken when a runtime thread
/// first answers a route and method (then it keeps its own handle) and at a scrape.
static ALL: Mutex<Vec<(Box<str>, &'static str, Arc<Durations>)>> = Mutex::new(Vec::new());

/// The histogram of `route` and `method`, made on first use.
pub(super) fn durations(route: &str, method: &'static str) -> Arc<Durations> {
    let mut all = ALL.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, _, d)) = all.iter().find(|(r, m, _)| **r == *route && *m == method) {
        return Arc::clone(d);
    }
    let d = Arc::<Durations>::default();
    all.push((route.into(), method, Arc::clone(&d)));
    d
}

/// Appends the histograms to `out`, in Prometheus' text format.
pub fn render(out: &mut String) {
    let all = ALL.lock().unwrap_or_else(PoisonError::into_inner);
    if all.is_empty() {
        return;
    }
    let mut rows: Vec<_> = all.iter().collect();
    rows.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    let name = names::HTTP_DURATION;
    let _ = writeln!(out, "# TYPE {name} histogram");
    for (route, method, d) in rows {
        let labels = format!("route=\"{}\",method=\"{method}\"", escape(route));
        let mut count = 0;
        for (i, bucket) in d.buckets.iter().enumerate() {
            count += bucket.load(Ordering::Relaxed);
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
        let sum = d.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
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
    fn samples_land_in_cumulative_buckets() {
        let d = durations("/test/{durations}", "PATCH");
        d.record(Duration::from_micros(1_000)); // at most 0.001
        d.record(Duration::from_nanos(1_000_001)); // just over
        d.record(Duration::from_millis(20));
        d.record(Duration::from_secs(60)); // past the largest bound
        let mut out = String::new();
        render(&mut out);
        let line = |le: &str| {
            let want = format!(
                "vidi_http_request_duration_seconds_bucket{{route=\"/test/{{durations}}\",method=\"PATCH\",le=\"{le}\"}} "
            );
            out.lines().find_map(|l| l.strip_prefix(want.as_str())).unwrap_or_else(|| panic!("{le}: {out}")).to_string()
        };
        assert_eq!(line("0.001"), "1");
        assert_eq!(line("0.0025"), "2");
        assert_eq!(line("0.025"), "3");
        assert_eq!(line("30"), "3");
        assert_eq!(line("+Inf"), "4");
        assert!(
            out.contains("vidi_http_request_duration_seconds_count{route=\"/test/{durations}\",method=\"PATCH\"} 4\n")
        );
        let sum = "vidi_http_request_duration_seconds_sum{route=\"/test/{durations}\",method=\"PATCH\"} ";
        let sum: f64 = out.lines().find_map(|l| l.strip_prefix(sum)).unwrap().parse().unwrap();
        assert!((sum - 60.022_000_001).abs() < 1e-6, "{sum}");
        assert!(out.contains("# TYPE vidi_http_request_duration_seconds histogram\n"));
        // One handle per route and method, however often it is asked for.
        assert!(Arc::ptr_eq(&d, &durations("/test/{durations}", "PATCH")));
    }
}
