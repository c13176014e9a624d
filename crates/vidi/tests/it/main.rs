//! The integration tests: one binary (it links once), booting the real server on 127.0.0.1:0.
//! Each test that touches metadata or media runs once per backend pair, named after it
//! (`…::sqlite_local`, `…::postgres_s3`; see `common::backend_test!`).

mod common;

mod access;
mod analytics;
mod api;
mod caching;
mod captions;
mod config;
mod contract;
mod crash;
mod delivery;
mod delivery_visibility;
mod disk_full;
mod edges;
mod encoding;
mod events;
mod fields;
mod first;
mod jobs;
mod keys;
mod lifecycle;
mod limits;
mod live;
mod live_ladder;
mod live_player;
mod live_streams;
mod ops;
mod player_fields;
mod player_sdk;
mod players;
mod rate_limits;
mod security;
mod sendfile;
mod source_copies;
mod tenancy;
mod tls;
mod token_upload;
mod upload_tokens;
mod uploads;
mod webhook_bench;
mod webhook_restart;
mod webhooks;
