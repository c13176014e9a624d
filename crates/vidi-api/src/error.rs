//! The one error type of the HTTP layer. Every failure leaves as api.video's problem body
//! (`application/problem+json`, contract §1.3), whatever produced it.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use vidi_core::CoreError;
use vidi_core::error::DbErrorKind;
use vidi_core::upload::RangeError;

const DOCS: &str = "https://docs.api.video/reference/";

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = BadRequest)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<SubProblem>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SubProblem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct ApiError(Box<Problem>, Option<u32>);

/// Seconds a client is told to wait (`Retry-After`) when the database or the media store did not
/// answer: long enough for a restarted PostgreSQL or S3 endpoint to come back, short enough
/// that a client retrying on it loses little.
const UNAVAILABLE_RETRY_SECS: u32 = 2;

/// `Retry-After` of a 507 (a full disk): freeing space takes an operator minutes, not seconds.
const FULL_RETRY_SECS: u32 = 60;

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, slug: &str, title: &str, name: &str) -> Self {
        ApiError(
            Box::new(Problem {
                kind: format!("{DOCS}{slug}"),
                title: title.to_string(),
                status: status.as_u16(),
                name: name.to_string(),
                detail: None,
                problems: Vec::new(),
            }),
            None,
        )
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.0.detail = Some(detail.into());
        self
    }

    pub fn status(&self) -> u16 {
        self.0.status
    }

    pub fn bad_request(slug: &str, title: &str, name: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, slug, title, name)
    }

    pub fn invalid_attribute(name: &str, detail: impl Into<String>) -> Self {
        Self::bad_request("invalid-attribute", "An attribute is invalid.", name).detail(detail)
    }

    pub fn attribute_required(name: &str) -> Self {
        Self::bad_request("attribute-required", "This attribute is required.", name)
    }

    pub fn invalid_payload(detail: impl Into<String>) -> Self {
        Self::bad_request("invalid-payload", "The payload is invalid.", "").detail(detail)
    }

    pub fn invalid_query(name: &str, detail: impl Into<String>) -> Self {
        Self::bad_request("request-invalid-query-parameter", "A query parameter is invalid.", name).detail(detail)
    }

    pub fn query_out_of_range(name: &str, detail: impl Into<String>) -> Self {
        Self::bad_request(
            "request-invalid-query-parameter",
            "This parameter is out of the allowed range of values.",
            name,
        )
        .detail(detail)
    }

    /// A missing resource; `name` is the path parameter (`videoId`, …).
    pub fn not_found(name: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "resource-not-found", "The requested resource was not found.", name)
    }

    pub fn unauthorized(slug: &str, title: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, slug, title, "")
    }

    pub fn bad_credentials() -> Self {
        Self::bad_request("authentication-invalid-user-credentials", "The user credentials were incorrect.", "")
    }

    pub fn upload(e: RangeError) -> Self {
        let name = if e.slug().starts_with("video-content-range") { "Content-Range" } else { "file" };
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
        Self::new(status, e.slug(), e.title(), name)
    }

    /// Whether this is the refusal of upload rule `e`.
    pub fn is_upload(&self, e: RangeError) -> bool {
        self.0.kind.strip_prefix(DOCS) == Some(e.slug())
    }

    pub fn no_file() -> Self {
        Self::bad_request("uploaded-file-no-file", "There is no uploaded file in the request.", "file")
    }

    pub fn multiple_files() -> Self {
        Self::bad_request(
            "uploaded-file-multiple-files",
            "There are more than one uploaded file in the request.",
            "file",
        )
    }

    /// A dependency (the database, the media store) did not answer: 503 with `Retry-After`, so
    /// clients and load balancers retry rather than treat it as a bug in the request or the server.
    /// Nothing was half-written: each write is one transaction, or an object put that either
    /// landed whole or not at all.
    pub fn unavailable(what: &str) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service-unavailable",
            "The service is temporarily unavailable.",
            "",
        )
        .detail(format!("The {what} did not answer; retry in a moment."));
        e.1 = Some(UNAVAILABLE_RETRY_SECS);
        e
    }

    /// A disk is full (the data folder's, or the database's): 507 Insufficient Storage, so that
    /// neither a client nor a load balancer mistakes it for a passing outage (a 503 invites
    /// retrying at once, another node would answer the same) or for a bug (500). Nothing was
    /// half-written. `Retry-After` is a hint for clients that retry on their own: the space
    /// comes back when the operator frees it, not by itself.
    pub fn insufficient_storage() -> Self {
        let mut e = Self::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "insufficient-storage",
            "The server has no space left to store this.",
            "",
        )
        .detail("The server's disk is full: nothing was stored. Retry once its operator has freed space.");
        e.1 = Some(FULL_RETRY_SECS);
        e
    }

    pub fn internal() -> Self {
        let mut e = Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server-error", "Server error", "");
        e.0.kind = "about:blank".into();
        e
    }

    /// Maps a domain error; `not_found_name` names the path parameter that was looked up.
    pub fn from_core(e: CoreError, not_found_name: &str) -> Self {
        match e {
            CoreError::NotFound => Self::not_found(not_found_name),
            CoreError::Upload(r) => Self::upload(r),
            CoreError::Refused(reason) => Self::invalid_payload(reason),
            CoreError::Body(reason) => Self::invalid_payload(format!("The request body could not be read: {reason}")),
            CoreError::Database(d) if d.kind == DbErrorKind::Unavailable => {
                tracing::warn!(error = %d, "request failed: the database is unavailable");
                Self::unavailable("database")
            }
            // The media store's failures are, short of a bug, its endpoint or disk not answering
            // (refused, timed out, a 5xx): a retry is the client's remedy, as for the database.
            CoreError::Storage(s) => {
                tracing::warn!(error = %s, "request failed: the media store is unavailable");
                Self::unavailable("media store")
            }
            CoreError::Full(s) => {
                tracing::error!(error = %s, "request failed: a disk is full (the data folder's or the database's)");
                Self::insufficient_storage()
            }
            e @ CoreError::Database(_) => {
                tracing::error!(error = %e, "request failed");
                Self::internal()
            }
        }
    }
}

/// `?` on a domain error outside a lookup: a `NotFound` there is named after nothing.
impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        ApiError::from_core(e, "")
    }
}

/// Adds the path parameter name to a lookup's `NotFound`.
pub trait OrNotFound<T> {
    fn or_404(self, name: &str) -> ApiResult<T>;
}

impl<T> OrNotFound<T> for Result<T, CoreError> {
    fn or_404(self, name: &str) -> ApiResult<T> {
        self.map_err(|e| ApiError::from_core(e, name))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&*self.0).unwrap_or_default();
        let mut res = (status, body).into_response();
        res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(secs) = self.1 {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vidi_core::error::DbError;

    fn answer(e: CoreError) -> Response {
        ApiError::from_core(e, "videoId").into_response()
    }

    #[test]
    fn an_unreachable_database_or_media_store_is_503_with_retry_after() {
        let down = DbError { kind: DbErrorKind::Unavailable, message: "pool timed out".into() };
        for r in [answer(CoreError::Database(down)), answer(CoreError::Storage("connection refused".into()))] {
            assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(r.headers()[header::RETRY_AFTER], UNAVAILABLE_RETRY_SECS.to_string().as_str());
            assert_eq!(r.headers()[header::CONTENT_TYPE], "application/problem+json");
        }
        // A full disk is neither: 507, whichever store said so.
        for r in [
            answer(CoreError::Full("database or disk is full".into())),
            answer(std::io::Error::from_raw_os_error(28).into()),
        ] {
            assert_eq!(r.status(), StatusCode::INSUFFICIENT_STORAGE);
            assert_eq!(r.headers()[header::CONTENT_TYPE], "application/problem+json");
            assert_eq!(r.headers()[header::RETRY_AFTER], FULL_RETRY_SECS.to_string().as_str());
        }
        // Any other database failure is a bug of ours: 500, and no invitation to retry.
        let r = answer(CoreError::Database("corrupt JSON column".into()));
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(r.headers().get(header::RETRY_AFTER).is_none());
    }
}
