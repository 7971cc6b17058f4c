//! The expired-data sweep of the PostgreSQL store: expired messages, claims and subscriptions
//! removed in bounded batches.

use std::sync::Arc;
use std::time::Duration;

use sqlx::Row;

use zaqar_core::error::Result;

use super::errors::db_err;
use super::sql::{SQL_SWEEP_CLAIMS, SQL_SWEEP_MESSAGES, SQL_SWEEP_SUBSCRIPTIONS};
use super::store::{PostgresStore, Shared};

/// Most expired rows removed by one sweep statement.
const GC_BATCH: i64 = 5_000;
/// Most sweep statements per table per sweep (bounds one sweep's work).
const GC_ROUNDS: usize = 20;

impl PostgresStore {
    /// Starts the background sweep that removes expired messages and claims.
    pub fn start_gc(self: &Arc<Self>, interval: Duration) {
        let shared = Arc::downgrade(&self.shared);
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                match shared.timed(shared.collect_garbage()).await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(removed = n, "expired-data sweep"),
                    Err(e) => tracing::warn!(error = %e, "expired-data sweep failed"),
                }
            }
        });
        self.tasks.lock().unwrap().push(task);
    }

    /// One sweep: removes expired messages and claims in bounded batches; returns how many.
    pub async fn collect_garbage(&self) -> Result<u64> {
        self.shared.collect_garbage().await
    }

    /// Message rows physically present (expired-but-unswept included), for tests of the sweep.
    pub async fn stored_message_records(&self) -> Result<u64> {
        let n: i64 = sqlx::query("SELECT count(*) FROM messages")
            .fetch_one(&self.shared.pool)
            .await
            .map_err(db_err)?
            .try_get(0)
            .map_err(db_err)?;
        Ok(n as u64)
    }
}

impl Shared {
    pub(super) async fn collect_garbage(&self) -> Result<u64> {
        let mut removed = 0;
        for sql in [
            SQL_SWEEP_MESSAGES,
            SQL_SWEEP_CLAIMS,
            SQL_SWEEP_SUBSCRIPTIONS,
        ] {
            for _ in 0..GC_ROUNDS {
                let n = sqlx::query(sql)
                    .bind(self.now())
                    .bind(GC_BATCH)
                    .execute(&self.pool)
                    .await
                    .map_err(db_err)?
                    .rows_affected();
                removed += n;
                if (n as i64) < GC_BATCH {
                    break;
                }
            }
        }
        Ok(removed)
    }
}
