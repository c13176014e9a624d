//! Vidi's domain: typed ids, the models every layer shares, the upload rules, and the two narrow
//! traits the rest of the system is written against: [`Repo`] (metadata) and [`Blobs`] (media).
//! Nothing here knows about HTTP, SQL or S3.

pub mod analytics;
pub mod blobs;
pub mod board;
pub mod clip;
pub mod encoding;
pub mod error;
pub mod event;
pub mod id;
pub mod jobs;
pub mod keys;
pub mod language;
pub mod live;
pub mod metric_names;
pub mod model;
pub mod player;
pub mod probe;
pub mod repo;
pub mod scratch;
pub mod service;
pub mod time;
pub mod upload;
pub mod upload_token;
pub mod webhook;
pub mod webvtt;

pub use blobs::Blobs;
pub use error::{CoreError, CoreResult};
pub use repo::{Repo, WebhookRepo};
