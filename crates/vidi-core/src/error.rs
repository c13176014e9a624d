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
    /// The metadata store failed.
    #[error("database: {0}")]
    Database(String),
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
