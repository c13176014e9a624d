//! [`RenditionRepo`] for [`Db`]: the renditions a master playlist lists (see migration 0009).

use async_trait::async_trait;
use vidi_core::error::{DbError, DbErrorKind};
use vidi_core::id::{VideoId, WorkspaceId};
use vidi_core::repo::{Rendition, RenditionRepo, RenditionRole};
use vidi_core::{CoreError, CoreResult};

use crate::{Db, db_err, with_pool};

type Row = (String, String, i64, i64, String, Option<i64>, Option<i64>, Option<String>, Option<i64>);

#[async_trait]
impl RenditionRepo for Db {
    async fn plan_renditions(&self, ws: &WorkspaceId, id: &VideoId, renditions: &[Rendition]) -> CoreResult<()> {
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db_err)?;
            // Writes first, each filtered by the workspace (a read first would make SQLite's
            // deferred transaction fail when another write commits in between).
            sqlx::query("DELETE FROM video_renditions WHERE video_id = $1 \
                         AND EXISTS (SELECT 1 FROM videos WHERE id = $1 AND workspace_id = $2)")
                .bind(id.as_str()).bind(ws.as_str()).execute(&mut *tx).await.map_err(db_err)?;
            for (i, r) in renditions.iter().enumerate() {
                let n = sqlx::query(
                    "INSERT INTO video_renditions (video_id, position, name, role, bandwidth, average_bandwidth, \
                     codecs, width, height, audio_group, channels) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 \
                     WHERE EXISTS (SELECT 1 FROM videos WHERE id = $1 AND workspace_id = $12)")
                    .bind(id.as_str()).bind(i as i64).bind(&r.name).bind(r.role.as_str())
                    .bind(r.bandwidth as i64).bind(r.average_bandwidth as i64).bind(&r.codecs)
                    .bind(r.resolution.map(|(w, _)| w as i64)).bind(r.resolution.map(|(_, h)| h as i64))
                    .bind(r.audio_group.as_deref()).bind(r.channels.map(i64::from)).bind(ws.as_str())
                    .execute(&mut *tx).await.map_err(db_err)?.rows_affected();
                if n == 0 {
                    return Err(CoreError::NotFound);
                }
            }
            tx.commit().await.map_err(db_err)
        })
    }

    async fn renditions(&self, ws: &WorkspaceId, id: &VideoId) -> CoreResult<Vec<Rendition>> {
        let rows: Vec<Row> = with_pool!(self, p => sqlx::query_as(
            "SELECT r.name, r.role, r.bandwidth, r.average_bandwidth, r.codecs, r.width, r.height, r.audio_group, \
             r.channels FROM video_renditions r JOIN videos v ON v.id = r.video_id \
             WHERE r.video_id = $1 AND v.workspace_id = $2 ORDER BY r.position")
            .bind(id.as_str()).bind(ws.as_str()).fetch_all(p).await.map_err(db_err))?;
        rows.into_iter()
            .map(|(name, role, bandwidth, average_bandwidth, codecs, width, height, audio_group, channels)| {
                let role = RenditionRole::parse(&role).ok_or_else(|| {
                    let message = format!("rendition {name} has an unknown role {role}");
                    CoreError::Database(DbError { kind: DbErrorKind::Other, message })
                })?;
                Ok(Rendition {
                    name,
                    role,
                    bandwidth: bandwidth.max(0) as u64,
                    average_bandwidth: average_bandwidth.max(0) as u64,
                    codecs,
                    resolution: width.zip(height).map(|(w, h)| (w as u32, h as u32)),
                    audio_group,
                    channels: channels.map(|c| c as u32),
                })
            })
            .collect()
    }
}
