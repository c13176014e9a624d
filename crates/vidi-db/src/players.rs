//! [`PlayerRepo`]: player themes, by workspace.

use async_trait::async_trait;
use vidi_core::id::{PlayerId, WorkspaceId};
use vidi_core::model::PageRequest;
use vidi_core::player::{PlayerTheme, ThemeSettings};
use vidi_core::repo::{PlayerRepo, PlayerSort};
use vidi_core::{CoreError, CoreResult};

use crate::{Db, db_err, with_pool};

const COLUMNS: &str = "id, workspace_id, name, settings, logo_key, logo_link, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct PlayerRow {
    id: String,
    workspace_id: String,
    name: Option<String>,
    settings: String,
    logo_key: Option<String>,
    logo_link: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl PlayerRow {
    fn into_player(self) -> CoreResult<PlayerTheme> {
        let settings: ThemeSettings = serde_json::from_str(&self.settings)
            .map_err(|e| CoreError::Database(format!("player {}: bad settings: {e}", self.id).into()))?;
        Ok(PlayerTheme {
            id: PlayerId::from_trusted(self.id),
            workspace_id: WorkspaceId::from_trusted(self.workspace_id),
            name: self.name,
            settings,
            logo_key: self.logo_key,
            logo_link: self.logo_link,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

fn settings_json(s: &ThemeSettings) -> String {
    serde_json::to_string(s).expect("plain data")
}

#[async_trait]
impl PlayerRepo for Db {
    async fn insert_player(&self, p: &PlayerTheme) -> CoreResult<()> {
        with_pool!(self, pool => sqlx::query(
            "INSERT INTO players (id, workspace_id, name, settings, logo_key, logo_link, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(p.id.as_str()).bind(p.workspace_id.as_str()).bind(&p.name).bind(settings_json(&p.settings))
            .bind(&p.logo_key).bind(&p.logo_link).bind(p.created_at).bind(p.updated_at)
            .execute(pool).await.map(|_| ()).map_err(db_err))
    }

    async fn get_player(&self, ws: &WorkspaceId, id: &PlayerId) -> CoreResult<PlayerTheme> {
        let sql = format!("SELECT {COLUMNS} FROM players WHERE id = $1 AND workspace_id = $2");
        let row: PlayerRow = with_pool!(self, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(id.as_str()).bind(ws.as_str()).fetch_one(p).await.map_err(db_err))?;
        row.into_player()
    }

    async fn list_players(
        &self,
        ws: &WorkspaceId,
        sort: PlayerSort,
        descending: bool,
        page: PageRequest,
    ) -> CoreResult<(Vec<PlayerTheme>, u64)> {
        // Both are fixed strings chosen here, never user text.
        let col = match sort {
            PlayerSort::CreatedAt => "created_at",
            PlayerSort::Name => "COALESCE(name, '')",
            PlayerSort::UpdatedAt => "updated_at",
        };
        let dir = if descending { "DESC" } else { "ASC" };
        // The id breaks ties, so pages never repeat or skip a player.
        let sql = format!(
            "SELECT {COLUMNS} FROM players WHERE workspace_id = $1 ORDER BY {col} {dir}, id {dir} LIMIT $2 OFFSET $3"
        );
        let (total, rows): (i64, Vec<PlayerRow>) = with_pool!(self, p => {
            let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM players WHERE workspace_id = $1")
                .bind(ws.as_str()).fetch_one(p).await.map_err(db_err)?;
            let rows = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(ws.as_str()).bind(page.size as i64).bind(page.offset() as i64)
                .fetch_all(p).await.map_err(db_err)?;
            (n, rows)
        });
        let players = rows.into_iter().map(PlayerRow::into_player).collect::<CoreResult<Vec<_>>>()?;
        Ok((players, total as u64))
    }

    async fn update_player(&self, pl: &PlayerTheme) -> CoreResult<()> {
        let affected = with_pool!(self, p => sqlx::query(
            "UPDATE players SET name = $3, settings = $4, updated_at = $5 WHERE id = $1 AND workspace_id = $2")
            .bind(pl.id.as_str()).bind(pl.workspace_id.as_str()).bind(&pl.name).bind(settings_json(&pl.settings))
            .bind(pl.updated_at).execute(p).await.map(|r| r.rows_affected()).map_err(db_err))?;
        if affected == 0 {
            return Err(CoreError::NotFound);
        }
        Ok(())
    }

    async fn delete_player(&self, ws: &WorkspaceId, id: &PlayerId) -> CoreResult<Option<String>> {
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db_err)?;
            // A write first, not a read: on SQLite a transaction that reads and then writes fails
            // at once (SQLITE_BUSY_SNAPSHOT, a 500 schemathesis found with two deletes at once)
            // when another write committed in between, where one that starts by writing waits
            // for the lock. The no-op update is that write, and checks the workspace.
            let locked = sqlx::query("UPDATE players SET updated_at = updated_at WHERE id = $1 AND workspace_id = $2")
                .bind(id.as_str()).bind(ws.as_str()).execute(&mut *tx).await.map_err(db_err)?;
            if locked.rows_affected() == 0 {
                return Err(CoreError::NotFound);
            }
            let (logo,): (Option<String>,) =
                sqlx::query_as("SELECT logo_key FROM players WHERE id = $1 AND workspace_id = $2")
                    .bind(id.as_str()).bind(ws.as_str()).fetch_one(&mut *tx).await.map_err(db_err)?;
            sqlx::query("UPDATE videos SET player_id = NULL WHERE workspace_id = $1 AND player_id = $2")
                .bind(ws.as_str()).bind(id.as_str()).execute(&mut *tx).await.map_err(db_err)?;
            sqlx::query("UPDATE live_streams SET player_id = NULL WHERE workspace_id = $1 AND player_id = $2")
                .bind(ws.as_str()).bind(id.as_str()).execute(&mut *tx).await.map_err(db_err)?;
            sqlx::query("DELETE FROM players WHERE id = $1 AND workspace_id = $2")
                .bind(id.as_str()).bind(ws.as_str()).execute(&mut *tx).await.map_err(db_err)?;
            tx.commit().await.map_err(db_err)?;
            Ok(logo)
        })
    }

    async fn set_player_logo(
        &self,
        ws: &WorkspaceId,
        id: &PlayerId,
        logo: Option<(&str, Option<&str>)>,
        now: i64,
    ) -> CoreResult<Option<String>> {
        let (key, link) = match logo {
            Some((k, l)) => (Some(k), l),
            None => (None, None),
        };
        // Compare-and-set on the previous key, so two uploads racing each learn which key they
        // replaced and no stored logo is left behind unreferenced.
        for _ in 0..8 {
            let previous = self.get_player(ws, id).await?.logo_key;
            let affected = with_pool!(self, p => sqlx::query(
                "UPDATE players SET logo_key = $3, logo_link = $4, updated_at = $5 \
                 WHERE id = $1 AND workspace_id = $2 AND COALESCE(logo_key, '') = $6")
                .bind(id.as_str()).bind(ws.as_str()).bind(key).bind(link).bind(now)
                .bind(previous.as_deref().unwrap_or(""))
                .execute(p).await.map(|r| r.rows_affected()).map_err(db_err))?;
            if affected == 1 {
                return Ok(previous);
            }
        }
        Err(CoreError::Database("the player's logo changed too often to be set".into()))
    }
}
