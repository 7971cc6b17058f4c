//! Moves between queues of the PostgreSQL store (redrive, and dead-lettering for claims): one
//! statement in the caller's transaction, so a move is atomic without an outbox.

use std::collections::BTreeMap;

use sqlx::{Postgres, Row, Transaction};

use zaqar_core::clock::Millis;
use zaqar_core::error::Result;
use zaqar_core::model::{QueueRef, RedriveOutcome};

use super::errors::{corrupt, db_err};
use super::rows::get;
use super::sql::{SQL_MOVE, SQL_PICK_REDRIVE};
use super::store::Shared;

impl Shared {
    /// Moves messages `markers` of queue `queue_id` to `target` inside `tx` (see [`SQL_MOVE`]).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn move_in(
        &self,
        tx: &mut Transaction<'static, Postgres>,
        project: &str,
        queue_id: i64,
        markers: &[i64],
        target: &str,
        moved_from: Option<&str>,
        ttl: Option<i64>,
        now: Millis,
    ) -> Result<u64> {
        let suffixes: Vec<i64> = markers.iter().map(|_| rand::random::<i64>()).collect();
        let moved: i64 = sqlx::query(SQL_MOVE)
            .bind(queue_id)
            .bind(markers)
            .bind(project)
            .bind(target)
            .bind(now)
            .bind(ttl)
            .bind(moved_from)
            .bind(&suffixes)
            .fetch_one(&mut **tx)
            .await
            .map_err(db_err)?
            .try_get("moved")
            .map_err(db_err)?;
        if moved as usize != markers.len() {
            // The rows were locked by this transaction: they cannot have gone.
            return Err(corrupt("a move lost track of its messages"));
        }
        Ok(moved as u64)
    }

    pub(super) async fn redrive_messages(
        &self,
        q: QueueRef<'_>,
        target: Option<&str>,
        limit: Option<usize>,
    ) -> Result<RedriveOutcome> {
        let now = self.now();
        let limit = limit.unwrap_or(usize::MAX);
        let mut tx = self.begin().await?;
        let rows = sqlx::query(SQL_PICK_REDRIVE)
            .bind(q.project)
            .bind(q.name)
            .bind(now)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
        let mut queue_id = 0;
        let mut skipped = 0;
        let mut by_target: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        let mut picked = 0;
        for row in &rows {
            if picked >= limit {
                break;
            }
            queue_id = get::<i64>(row, "queue_id")?;
            let moved_from: Option<String> = get(row, "moved_from")?;
            match target.map(str::to_string).or(moved_from) {
                Some(dest) if dest != q.name => {
                    by_target.entry(dest).or_default().push(get(row, "marker")?);
                    picked += 1;
                }
                _ => skipped += 1,
            }
        }
        let mut moved = 0;
        for (dest, markers) in &by_target {
            moved += self
                .move_in(&mut tx, q.project, queue_id, markers, dest, None, None, now)
                .await?;
        }
        tx.commit().await.map_err(db_err)?;
        let targets: Vec<String> = by_target.into_keys().collect();
        for t in &targets {
            self.publish(q.project, t);
        }
        Ok(RedriveOutcome {
            moved,
            skipped,
            targets,
        })
    }
}
