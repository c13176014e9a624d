//! Errors that cross the trait boundaries. The HTTP layer maps them onto api.video problem bodies.

use crate::upload::RangeError;

pub type CoreResult<T> = Result<T, CoreError>;

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The thing does not exist in the caller's workspace (which is the same as not existing).
    #[error("not found")]
    NotFound,
    /// An upload request broke one of api.video's Content-Range or source rules.
    #[error("upload rejected: {0:?}")]
    Upload(RangeError),
    /// The metadata store failed, with what kind of failure it was (a caller may retry on
    /// `Unavailable`, or answer a conflict on `UniqueViolation`).
    #[error("database: {0}")]
    Database(DbError),
    /// The media store failed.
    #[error("storage: {0}")]
    Storage(String),
    /// What a user asked for was refused (a `source` URL the outbound guard would not fetch),
    /// with a reason fit for that user.
    #[error("{0}")]
    Refused(String),
    /// Reading the request body failed (client went away, bad multipart framing).
    #[error("request body: {0}")]
    Body(String),
    /// A disk is full: the media store's (the data folder's filesystem: ENOSPC, or a quota) or
    /// the database's (SQLITE_FULL, PostgreSQL's `disk_full`). Nothing was half-written, as for
    /// any failed write, but unlike an outage it does not pass by itself: the operator frees
    /// space. The text always contains [`DISK_FULL`], so a failure carried as a string (an
    /// ffmpeg's stderr, a job's error) is still recognised ([`is_disk_full`]).
    #[error("{full}: {0}", full = DISK_FULL)]
    Full(String),
}

/// How the kernel words ENOSPC (`strerror`), as Rust's `io::Error`, ffmpeg and [`CoreError::Full`]
/// print it.
pub const DISK_FULL: &str = "No space left on device";

/// Whether a failure's text says a disk was full: ENOSPC from Rust or a child process (ffmpeg),
/// SQLite's `SQLITE_FULL` ("database or disk is full"), or PostgreSQL's `disk_full`, which it
/// words as ENOSPC too ("could not extend file …: No space left on device").
/// Any case: the media wrapper's own check of ffmpeg's output says "no space left on device
/// (N bytes free)" (ffmpeg 5.1 exits 0 on a full disk).
pub fn is_disk_full(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    ["no space left on device", "database or disk is full", "disk quota exceeded"].iter().any(|m| text.contains(m))
}

/// What kind of database failure an error is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DbErrorKind {
    /// A unique constraint refused the write (the row exists already).
    UniqueViolation,
    /// A foreign key refused the write (what it points at is gone).
    ForeignKeyViolation,
    /// The database could not be reached or did not answer in time: worth retrying.
    Unavailable,
    Other,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DbError {
    pub kind: DbErrorKind,
    pub message: String,
}

impl From<String> for DbError {
    fn from(message: String) -> Self {
        DbError { kind: DbErrorKind::Other, message }
    }
}

impl From<&str> for DbError {
    fn from(message: &str) -> Self {
        DbError { kind: DbErrorKind::Other, message: message.to_string() }
    }
}

impl CoreError {
    /// The database failure's kind, if this is one.
    pub fn db_kind(&self) -> Option<DbErrorKind> {
        match self {
            CoreError::Database(e) => Some(e.kind),
            _ => None,
        }
    }
}

impl From<RangeError> for CoreError {
    fn from(e: RangeError) -> Self {
        CoreError::Upload(e)
    }
}

impl From<std::io::Error> for CoreError {
    fn from(e: std::io::Error) -> Self {
        // ENOSPC and EDQUOT: the data folder's filesystem is full, not unreachable.
        if matches!(e.kind(), std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded) {
            return CoreError::Full(e.to_string());
        }
        CoreError::Storage(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enospc_is_a_full_disk_and_says_so() {
        let e = CoreError::from(std::io::Error::from_raw_os_error(28));
        assert!(matches!(e, CoreError::Full(_)), "{e:?}");
        assert!(is_disk_full(&e.to_string()), "{e}");
        let e = CoreError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(matches!(e, CoreError::Storage(_)) && !is_disk_full(&e.to_string()));
        assert!(is_disk_full("[hls @ 0x1] Failed to write: No space left on device"));
        assert!(is_disk_full("error returned from database: (code: 13) database or disk is full"));
        assert!(is_disk_full("rendition 720p: its playlist is unfinished; no space left on device (0 bytes free)"));
    }
}
