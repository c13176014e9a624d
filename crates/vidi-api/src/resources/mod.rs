//! One module per API resource: its wire types, its handlers and its routes.

pub mod account;
pub mod analytics;
pub mod auth;
pub mod live_streams;
pub mod players;
pub mod source;
pub mod thumbnail;
pub mod tracks;
pub mod upload;
pub mod upload_tokens;
pub mod video_payloads;
pub mod videos;
pub mod webhooks;
