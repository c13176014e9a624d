//! The metadata store, as the rest of Vidi sees it: one trait per capability, each in its own
//! file under `repo/`, implemented once for SQLite and PostgreSQL (crate `vidi-db`, a module per
//! trait). [`Repo`] is their sum, what the application state and the workers hold. Every method
//! that reads or writes a tenant's rows is scoped to a workspace, so "forgot the tenant filter"
//! cannot be written by a caller.
//!
//! A new resource adds a trait here (`repo/<resource>.rs`), its implementation for `Db` in
//! `vidi-db/src/<resource>.rs`, and one line to [`Repo`]'s list of supertraits.

mod analytics;
mod auth;
mod broadcasts;
mod encoding;
mod events;
mod jobs;
mod lanes;
mod live_streams;
mod players;
mod private;
mod renditions;
mod token_uploads;
mod tracks;
mod upload_tokens;
mod uploads;
mod videos;
mod webhooks;

pub use analytics::{AnalyticsRepo, SessionHead};
pub use auth::AuthRepo;
pub use broadcasts::BroadcastRepo;
pub use encoding::EncodingRepo;
pub use events::EventRepo;
pub use jobs::JobRepo;
pub use lanes::{JobCount, JobTiming, LaneRepo};
pub use live_streams::{LiveStreamFilter, LiveStreamRepo, LiveStreamSort};
pub use players::{PlayerRepo, PlayerSort};
pub use private::PrivateRepo;
pub use renditions::{Rendition, RenditionRepo, RenditionRole};
pub use token_uploads::{TokenUploadKey, TokenUploadRepo, TokenUploadSlot};
pub use tracks::{TextTrack, TrackKind, TrackRepo};
pub use upload_tokens::{UploadTokenRepo, UploadTokenSort};
pub use uploads::{ChunkClaim, ChunkCommit, UploadRepo};
pub use videos::VideoRepo;
pub use webhooks::{Dispatched, WebhookRepo};

/// Every capability of the metadata store. Implemented for whatever implements them all, so an
/// implementation never names it.
pub trait Repo:
    AuthRepo
    + VideoRepo
    + UploadRepo
    + EncodingRepo
    + EventRepo
    + PrivateRepo
    + JobRepo
    + LaneRepo
    + PlayerRepo
    + UploadTokenRepo
    + TokenUploadRepo
    + WebhookRepo
    + RenditionRepo
    + LiveStreamRepo
    + BroadcastRepo
    + TrackRepo
    + AnalyticsRepo
{
}

impl<T> Repo for T where
    T: AuthRepo
        + VideoRepo
        + UploadRepo
        + EncodingRepo
        + EventRepo
        + PrivateRepo
        + JobRepo
        + LaneRepo
        + PlayerRepo
        + UploadTokenRepo
        + TokenUploadRepo
        + WebhookRepo
        + RenditionRepo
        + LiveStreamRepo
        + BroadcastRepo
        + TrackRepo
        + AnalyticsRepo
{
}
