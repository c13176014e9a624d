//! Player themes, by workspace.

use async_trait::async_trait;

use crate::error::CoreResult;
use crate::id::{PlayerId, WorkspaceId};
use crate::model::PageRequest;
use crate::player::PlayerTheme;

/// How a list of players is ordered (`sortBy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PlayerSort {
    #[default]
    CreatedAt,
    Name,
    UpdatedAt,
}

#[async_trait]
pub trait PlayerRepo: Send + Sync {
    async fn insert_player(&self, player: &PlayerTheme) -> CoreResult<()>;
    async fn get_player(&self, ws: &WorkspaceId, id: &PlayerId) -> CoreResult<PlayerTheme>;
    async fn list_players(
        &self,
        ws: &WorkspaceId,
        sort: PlayerSort,
        descending: bool,
        page: PageRequest,
    ) -> CoreResult<(Vec<PlayerTheme>, u64)>;
    /// Stores the name, the settings and `updated_at`.
    async fn update_player(&self, player: &PlayerTheme) -> CoreResult<()>;
    /// Deletes the player and, in the same transaction, detaches it from the workspace's videos
    /// and live streams (contract §8: they omit `playerId` afterwards). Returns its logo's key,
    /// for the caller to delete from the media store.
    async fn delete_player(&self, ws: &WorkspaceId, id: &PlayerId) -> CoreResult<Option<String>>;
    /// Sets (or with `None`, clears) the logo and its link; returns the key of the logo it
    /// replaced, for the caller to delete from the media store.
    async fn set_player_logo(
        &self,
        ws: &WorkspaceId,
        id: &PlayerId,
        logo: Option<(&str, Option<&str>)>,
        now: i64,
    ) -> CoreResult<Option<String>>;
}
