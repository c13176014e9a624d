//! One module per API resource: its wire types, its handlers and its routes.

pub mod account;
pub mod auth;
pub mod source;
pub mod thumbnail;
pub mod videos;
pub mod webhooks;
