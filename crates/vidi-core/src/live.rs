//! Live streams as Vidi keeps them (contract §2 LiveStream, §7). Ingest is not here yet: a live
//! stream is, for now, its settings, its restream destinations and its uploaded thumbnail.

use serde::{Deserialize, Serialize};

use crate::id::{LiveStreamId, WorkspaceId};

/// At most this many restream destinations per live stream (contract §7).
pub const MAX_RESTREAMS: usize = 5;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveStream {
    pub id: LiveStreamId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    /// The secret an encoder publishes with (a UUID v4), made by the server and never rotated.
    pub stream_key: String,
    pub record: bool,
    pub public: bool,
    pub player_id: Option<String>,
    pub restreams: Vec<Restream>,
    /// The uploaded thumbnail's key in the media store.
    pub thumbnail_key: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A destination the broadcast is pushed to. Stored as given: the outbound guard checks it when
/// a pusher connects, not here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Restream {
    pub name: String,
    pub server_url: String,
    pub stream_key: String,
}
