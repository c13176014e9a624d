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
        CoreError::Storage(e.to_string())
    }
}
