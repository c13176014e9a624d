//! A request id on every request: the client's `X-Request-Id` when it is sane (what a proxy or
//! a client's own tracing sent, so one id follows the request across systems), else a new one. It
//! is returned in the response's `X-Request-Id` and recorded on the request's log span, so every
//! line logged while serving it (JSON logs: the `span` field) names it, and a user quoting the
//! header finds those lines.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// An id a client may choose: 1 to 64 characters of letters, digits, `-`, `_`, `.`, `:`. Anything
/// else (long, or with characters that would forge log fields) is replaced.
pub fn sane(id: &[u8]) -> bool {
    (1..=64).contains(&id.len()) && id.iter().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
}

/// A new id: this process's random prefix and a counter, unique across nodes and restarts
/// without a random draw per request.
fn mint() -> String {
    static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| uuid::Uuid::new_v4().simple().to_string()[..16].to_string());
    format!("{prefix}-{:x}", NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

/// The middleware: keeps or mints the id, puts it in the request (for the log span) and the
/// response.
pub(crate) async fn assign(mut req: Request, next: Next) -> Response {
    let id = match req.headers().get(&REQUEST_ID) {
        Some(v) if sane(v.as_bytes()) => v.clone(),
        _ => {
            // The formatted string becomes the value's bytes as they are, not copied again.
            let minted = HeaderValue::from_maybe_shared(bytes::Bytes::from(mint())).expect("hex and a dash");
            req.headers_mut().insert(REQUEST_ID, minted.clone());
            minted
        }
    };
    let mut r = next.run(req).await;
    r.headers_mut().insert(REQUEST_ID, id);
    r
}

#[cfg(test)]
mod tests {
    use super::sane;

    #[test]
    fn only_short_plain_ids_are_kept() {
        assert!(sane(b"5f0c6a1e-1f0b-4c1e-9d3a-0a1b2c3d4e5f"));
        assert!(sane(b"req:42.a_b"));
        assert!(!sane(b""));
        assert!(!sane(&[b'a'; 65]));
        assert!(!sane(b"a b"));
        assert!(!sane(b"a\"}{"));
    }
}
