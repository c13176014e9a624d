//! Rate limits on the API (contract §1.9): requests per minute per API key, by class (reads,
//! writes, uploads), with api.video's headers on every API response (`X-RateLimit-Limit`,
//! `X-RateLimit-Remaining`, `X-RateLimit-Retry-After`) and a 429 problem body past the limit.
//!
//! - **Who is counted.** A request with a valid API key (Basic) or access token (Bearer) counts
//!   against its key, so one key's clients never slow another's, wherever they connect from. A
//!   request without one (`/auth/*`, an upload with an upload token, a wrong key) counts against
//!   its client address, which is what bounds guessing keys and tokens. The key is found here,
//!   with the same cached check the handlers use, and handed to them (`auth::Auth`), so a request
//!   is authenticated once.
//! - **What is not counted.** Delivery (`/vod/…`, `/live/…`, `/embed/…`, `/assets/…`) carries no
//!   key, and its requests come from viewers: a player fetches a segment every 2 s per viewer, and
//!   a whole office behind one NAT address, or a CDN's few addresses, would exhaust any
//!   per-address budget that bounds an abuser. It is bounded where it is cheap to be (segments
//!   from memory, `VIDI_MAX_CONNECTIONS`) and is what a CDN in front absorbs (docs/operations.md).
//!   `/health`, `/ready` and `/metrics` are for the operator's probes.
//! - **How.** One GCRA limiter per class (governor, keyed): a budget of `limit` requests that
//!   refills continuously at `limit` per minute, so a client may burst its minute's budget and
//!   then goes at the steady rate. A check is a hash lookup and a compare-and-swap.
//!   `X-RateLimit-Retry-After` says how many seconds until the whole budget is back (after a 429,
//!   until the next request is let through). Limits are per node: N API nodes allow N × the
//!   limit to a client that spreads its requests over them.

use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::sync::OnceLock;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use vidi_core::id::ApiKeyId;

use crate::{ApiError, AppState};

pub const LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
pub const REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
pub const RETRY_AFTER: HeaderName = HeaderName::from_static("x-ratelimit-retry-after");

/// Requests per minute, by class (`VIDI_RATE_LIMIT_READS`, `_WRITES`, `_UPLOADS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub reads: u32,
    pub writes: u32,
    pub uploads: u32,
}

impl Default for Limits {
    /// Twenty times api.video's published production limits (500 reads, 200 writes, 100 uploads a
    /// minute): generous enough that no client made for api.video, and no test, meets them, while
    /// still bounding a runaway loop or a key guesser.
    fn default() -> Self {
        Limits { reads: 10_000, writes: 4_000, uploads: 2_000 }
    }
}

/// What a request is counted as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Reads,
    Writes,
    Uploads,
}

impl Class {
    fn label(self) -> &'static str {
        match self {
            Class::Reads => "reads",
            Class::Writes => "writes",
            Class::Uploads => "uploads",
        }
    }
}

/// Whom a request is counted against.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Subject {
    Key(ApiKeyId),
    Addr(IpAddr),
}

/// The client's address, put into each request by the listener (absent in tests that call the
/// router directly: they all count as one unknown address).
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub IpAddr);

type Limiter = RateLimiter<Subject, DefaultKeyedStateStore<Subject>, DefaultClock, StateInformationMiddleware>;

/// The three limiters of a node.
pub struct RateLimits {
    limits: Limits,
    reads: Limiter,
    writes: Limiter,
    uploads: Limiter,
    /// Each class's limit as a header value, made once.
    limit_values: [HeaderValue; 3],
}

/// Every this many checks (of one runtime thread), subjects whose budget is full again are
/// forgotten, so the maps hold only recent clients however many addresses come and go.
const FORGET_EVERY: u64 = 1 << 14;

impl RateLimits {
    pub fn new(limits: Limits) -> RateLimits {
        let limiter = |n: u32| {
            RateLimiter::keyed(Quota::per_minute(NonZeroU32::new(n.max(1)).expect("at least 1")))
                .with_middleware::<StateInformationMiddleware>()
        };
        RateLimits {
            limits,
            reads: limiter(limits.reads),
            writes: limiter(limits.writes),
            uploads: limiter(limits.uploads),
            limit_values: [limits.reads, limits.writes, limits.uploads].map(|n| number(u64::from(n))),
        }
    }

    fn limiter(&self, class: Class) -> (&Limiter, u32) {
        match class {
            Class::Reads => (&self.reads, self.limits.reads),
            Class::Writes => (&self.writes, self.limits.writes),
            Class::Uploads => (&self.uploads, self.limits.uploads),
        }
    }

    fn limit_value(&self, class: Class) -> &HeaderValue {
        &self.limit_values[class as usize]
    }

    /// Counts one request of `class` against `subject`: the headers to answer with, and whether
    /// it is let through.
    fn check(&self, class: Class, subject: &Subject) -> (Headers, bool) {
        thread_local! {
            // Per thread, not one shared atomic: a counter every request bumps on every core
            // would bounce its cache line between them.
            static CHECKS: Cell<u64> = const { Cell::new(0) };
        }
        let n = CHECKS.get().wrapping_add(1);
        CHECKS.set(n);
        if n.is_multiple_of(FORGET_EVERY) {
            for l in [&self.reads, &self.writes, &self.uploads] {
                l.retain_recent();
                l.shrink_to_fit();
            }
        }
        let (limiter, limit) = self.limiter(class);
        // One request's share of the minute, in ms: the budget refills one request per interval.
        let interval_ms = 60_000 / u64::from(limit.max(1));
        match limiter.check_key(subject) {
            Ok(state) => {
                let remaining = state.remaining_burst_capacity();
                let missing = u64::from(limit.saturating_sub(remaining));
                let refill_secs = (missing * interval_ms).div_ceil(1000);
                (Headers { limit, remaining, retry_after: refill_secs }, true)
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                (Headers { limit, remaining: 0, retry_after: wait.as_millis().div_ceil(1000).max(1) as u64 }, false)
            }
        }
    }
}

struct Headers {
    limit: u32,
    remaining: u32,
    retry_after: u64,
}

impl Headers {
    fn write(&self, limit: &HeaderValue, h: &mut HeaderMap) {
        h.insert(LIMIT, limit.clone());
        h.insert(REMAINING, number(u64::from(self.remaining)));
        h.insert(RETRY_AFTER, number(self.retry_after));
    }
}

/// `n` as a header value. Small numbers (most `Retry-After`s, the remaining budget near its end)
/// come from a table made once, of static strings: no allocation, and cloning one touches no
/// shared reference count. The table's strings are leaked on purpose: they live as long as the
/// process.
fn number(n: u64) -> HeaderValue {
    const SMALL: usize = 1024;
    static TABLE: OnceLock<Vec<HeaderValue>> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        (0..SMALL).map(|i| HeaderValue::from_static(Box::leak(i.to_string().into_boxed_str()))).collect()
    });
    usize::try_from(n).ok().and_then(|i| table.get(i)).cloned().unwrap_or_else(|| HeaderValue::from(n))
}

/// The class of a request to `route` (its matched template), or `None` when it is not limited.
pub fn class_of(method: &Method, route: Option<&str>) -> Option<Class> {
    let route = route.unwrap_or("");
    // Delivery is never limited, and the analytics collector has its own per-address limit
    // (`VIDI_COLLECT_RATE`): counted here too, every viewer behind one reverse proxy, or one
    // busy page's beacons, would share one address's write budget and be refused as a flood.
    let unlimited = ["/vod/", "/live/", "/embed/", "/assets/", "/collect/"];
    if unlimited.iter().any(|p| route.starts_with(p)) || matches!(route, "/health" | "/ready" | "/metrics") {
        return None;
    }
    Some(match *method {
        Method::GET | Method::HEAD | Method::OPTIONS => Class::Reads,
        Method::POST if matches!(route, "/videos/{videoId}/source" | "/upload") => Class::Uploads,
        _ => Class::Writes,
    })
}

/// The rate limit's part of the middleware around every route ([`crate::metrics::around`]):
/// counts the request, answers 429 past the limit, and adds the headers to whatever the handler
/// answers.
pub(crate) async fn limit(state: &AppState, mut req: Request, next: Next) -> Response {
    let Some(limits) = state.limiter.as_ref() else { return next.run(req).await };
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str());
    let Some(class) = class_of(req.method(), route) else { return next.run(req).await };
    let subject = match crate::auth::authenticate_early(state, &mut req).await {
        Some(key) => Subject::Key(key),
        None => Subject::Addr(req.extensions().get::<ClientAddr>().map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.0)),
    };
    let (headers, allowed) = limits.check(class, &subject);
    let mut r = if allowed {
        next.run(req).await
    } else {
        let by = if matches!(subject, Subject::Key(_)) { "key" } else { "address" };
        metrics::counter!(crate::metrics::names::RATE_LIMITED, "class" => class.label(), "by" => by).increment(1);
        let mut r = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too-many-requests", "Too many requests.", "")
            .detail(format!(
                "More than {} {} a minute; retry in {} s.",
                headers.limit,
                class.label(),
                headers.retry_after
            ))
            .into_response();
        // The standard header too: generic HTTP clients and proxies know it.
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(headers.retry_after));
        r
    };
    headers.write(limits.limit_value(class), r.headers_mut());
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_by_route_and_method() {
        assert_eq!(class_of(&Method::GET, Some("/videos/{videoId}")), Some(Class::Reads));
        assert_eq!(class_of(&Method::PATCH, Some("/videos/{videoId}")), Some(Class::Writes));
        assert_eq!(class_of(&Method::POST, Some("/videos/{videoId}/source")), Some(Class::Uploads));
        assert_eq!(class_of(&Method::POST, Some("/upload")), Some(Class::Uploads));
        assert_eq!(class_of(&Method::POST, Some("/videos/{videoId}/thumbnail")), Some(Class::Writes));
        assert_eq!(class_of(&Method::GET, None), Some(Class::Reads));
        for delivery in
            ["/vod/{videoId}/hls/{quality}/{file}", "/live/{liveStreamId}/thumbnail.jpg", "/embed/vod/{videoId}"]
        {
            assert_eq!(class_of(&Method::GET, Some(delivery)), None, "{delivery}");
        }
        assert_eq!(class_of(&Method::GET, Some("/metrics")), None);
        for collect in ["/collect/sessions", "/collect/sessions/{sessionId}/events"] {
            assert_eq!(class_of(&Method::POST, Some(collect)), None, "{collect}");
        }
    }

    #[test]
    fn a_budget_is_spent_then_refused_per_subject() {
        let l = RateLimits::new(Limits { reads: 3, writes: 1, uploads: 1 });
        let a = Subject::Addr(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let b = Subject::Key(ApiKeyId::from_trusted("akb".into()));
        let remaining: Vec<u32> =
            (0..3).map(|_| l.check(Class::Reads, &a)).map(|(h, ok)| if ok { h.remaining } else { 99 }).collect();
        assert_eq!(remaining, [2, 1, 0]);
        let (h, ok) = l.check(Class::Reads, &a);
        assert!(!ok);
        // 3 a minute: the next one in 20 s.
        assert!((19..=20).contains(&h.retry_after), "{}", h.retry_after);
        // Another subject, and another class, have budgets of their own.
        assert!(l.check(Class::Reads, &b).1);
        assert!(l.check(Class::Writes, &a).1);
    }
}
