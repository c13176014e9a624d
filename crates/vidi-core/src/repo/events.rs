//! The events outbox, read side. Events are written by the method whose change causes them, in
//! its transaction (e.g. [`super::EncodingRepo::complete_quality`]); nothing appends one alone.

use async_trait::async_trait;

use crate::error::CoreResult;
use crate::event::Event;
use crate::id::{EventId, WorkspaceId};

#[async_trait]
pub trait EventRepo: Send + Sync + 'static {
    /// Recorded events after `after` (all when `None`), in id order, of one workspace or of all.
    async fn events_after(
        &self,
        ws: Option<&WorkspaceId>,
        after: Option<&EventId>,
        limit: u32,
    ) -> CoreResult<Vec<Event>>;
}
