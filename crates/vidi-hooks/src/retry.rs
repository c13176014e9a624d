//! What an attempt's result leads to: delivered, retried later (exponential backoff with
//! jitter, never sooner than the receiver's `Retry-After`), or given up.

use std::time::{Duration, SystemTime};

use vidi_core::webhook::Outcome;
use vidi_outbound::{Answer, OutboundError};

/// The retry schedule.
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    /// The wait after the first failure; each later one doubles, up to `max`.
    pub base: Duration,
    pub max: Duration,
    /// Retries go on until this long after the delivery was created (or replayed).
    pub window: Duration,
}

/// The longest `Retry-After` honoured: a receiver cannot park a delivery past a few hours.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(6 * 3600);

/// The backoff before retry number `failures` (1 after the first failure), with "equal jitter":
/// half the exponential delay, plus a random part of the other half, so receivers that failed
/// together are not retried together.
pub fn backoff(s: &Schedule, failures: u32) -> Duration {
    let exp = s.base.saturating_mul(1u32 << failures.saturating_sub(1).min(20)).min(s.max);
    let half = exp / 2;
    half + half.mul_f64(rand::random::<f64>())
}

/// `Retry-After` as seconds or an HTTP date, as a wait from `now`.
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or_default())
}

/// The outcome of an attempt made at `now_ms`, the `failures`-th unsuccessful one if it failed.
/// A 2xx delivers. A 410 Gone is the receiver's permanent refusal of this delivery: it fails at
/// once (the webhook stays, and its later events are still sent; deleting it is the user's call).
/// Anything else (another status, a redirect, no answer) is retried until the window is over.
pub fn outcome(
    s: &Schedule,
    result: &Result<Answer, OutboundError>,
    failures: u32,
    first_at_ms: i64,
    now_ms: i64,
) -> Outcome {
    let mut wait = backoff(s, failures);
    match result {
        Ok(a) if (200..300).contains(&a.status) => return Outcome::Delivered,
        Ok(a) if a.status == 410 => return Outcome::Failed,
        Ok(a) => {
            if let Some(ra) = a.retry_after.as_deref().and_then(|v| retry_after(v, SystemTime::now())) {
                wait = wait.max(ra.min(MAX_RETRY_AFTER));
            }
        }
        Err(_) => {}
    }
    if now_ms >= first_at_ms.saturating_add(s.window.as_millis() as i64) {
        return Outcome::Failed;
    }
    Outcome::RetryAt(now_ms + wait.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn sched() -> Schedule {
        Schedule {
            base: Duration::from_secs(5),
            max: Duration::from_secs(3600),
            window: Duration::from_secs(24 * 3600),
        }
    }

    fn answer(status: u16, retry_after: Option<&str>) -> Result<Answer, OutboundError> {
        Ok(Answer { status, retry_after: retry_after.map(str::to_string), excerpt: Bytes::new() })
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let s = sched();
        for n in 1..40 {
            let d = backoff(&s, n);
            let exp = (5u64 << (n - 1).min(20)).min(3600);
            assert!(d.as_secs_f64() >= exp as f64 / 2.0 - 0.001 && d.as_secs() <= exp, "{n}: {d:?}");
        }
    }

    #[test]
    fn the_schedule_retries_for_a_day() {
        // Even the shortest jitter keeps retrying for the whole window: count the attempts.
        let s = sched();
        let (mut now, mut n) = (0i64, 0u32);
        loop {
            n += 1;
            match outcome(&s, &answer(500, None), n, 0, now) {
                Outcome::RetryAt(t) => now = t,
                Outcome::Failed => break,
                Outcome::Delivered => unreachable!(),
            }
        }
        assert!(now >= 24 * 3600 * 1000, "gave up after {now} ms");
        assert!((20..80).contains(&n), "{n} attempts");
    }

    #[test]
    fn statuses_and_retry_after() {
        let s = sched();
        assert_eq!(outcome(&s, &answer(204, None), 1, 0, 0), Outcome::Delivered);
        assert_eq!(outcome(&s, &answer(410, None), 1, 0, 0), Outcome::Failed);
        assert!(matches!(outcome(&s, &answer(301, None), 1, 0, 0), Outcome::RetryAt(_)));
        assert!(matches!(outcome(&s, &Err(OutboundError::Forbidden), 1, 0, 0), Outcome::RetryAt(_)));
        match outcome(&s, &answer(503, Some("120")), 1, 0, 1000) {
            Outcome::RetryAt(t) => assert_eq!(t, 121_000),
            o => panic!("{o:?}"),
        }
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(600));
        let wait = retry_after(&later, SystemTime::now()).unwrap();
        assert!((598..=600).contains(&wait.as_secs()), "{wait:?}");
        assert_eq!(retry_after("soon", SystemTime::now()), None);
        // Past the window: given up.
        assert_eq!(outcome(&s, &answer(500, None), 30, 0, 24 * 3600 * 1000), Outcome::Failed);
    }
}
