//! Queues of the PostgreSQL store: rows of `queues`, with their metadata and counts.

use async_trait::async_trait;
use sqlx::Row;

use zaqar_core::error::{Error, Result};
use zaqar_core::model::{Metadata, QueueFilter, QueueInfo, QueueRef};
use zaqar_core::store::QueueStore;

use super::errors::{corrupt, db_err};
use super::rows::{get, queue_from};
use super::sql::SQL_PROJECT_BYTES;
use super::store::{PostgresStore, Shared};

/// Queue page size used while filtering queues by metadata.
const LIST_PAGE: i64 = 200;

impl Shared {
    pub(super) async fn create_queue(&self, q: QueueRef<'_>, metadata: &Metadata) -> Result<bool> {
        let text = serde_json::to_string(metadata).map_err(corrupt)?;
        let created = sqlx::query(
            "INSERT INTO queues (project, name, created, version, metadata, last_marker)
             VALUES ($1, $2, $3, 1, $4, 0)
             ON CONFLICT (project, name) DO NOTHING",
        )
        .bind(q.project)
        .bind(q.name)
        .bind(self.now())
        .bind(text)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(created.rows_affected() == 1)
    }

    pub(super) async fn get_queue(&self, q: QueueRef<'_>) -> Result<Option<QueueInfo>> {
        let row = sqlx::query(
            "SELECT name, metadata, version, created FROM queues
             WHERE project = $1 AND name = $2",
        )
        .bind(q.project)
        .bind(q.name)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(queue_from).transpose()
    }

    pub(super) async fn replace_queue_metadata(
        &self,
        q: QueueRef<'_>,
        expected_version: u64,
        metadata: &Metadata,
    ) -> Result<bool> {
        let text = serde_json::to_string(metadata).map_err(corrupt)?;
        let row = sqlx::query(
            "WITH cur AS (SELECT 1 FROM queues WHERE project = $1 AND name = $2),
                  upd AS (UPDATE queues SET metadata = $4, version = version + 1
                          WHERE project = $1 AND name = $2 AND version = $3 RETURNING 1)
             SELECT (SELECT count(*) FROM cur) AS found, (SELECT count(*) FROM upd) AS updated",
        )
        .bind(q.project)
        .bind(q.name)
        .bind(expected_version as i64)
        .bind(text)
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        let found: i64 = get(&row, "found")?;
        let updated: i64 = get(&row, "updated")?;
        if found == 0 {
            return Err(Error::not_found(format!(
                "Queue {} does not exist for project {}",
                q.name, q.project
            )));
        }
        Ok(updated > 0)
    }

    pub(super) async fn delete_queue(&self, q: QueueRef<'_>) -> Result<()> {
        // Messages and claims go with the queue (ON DELETE CASCADE), in this transaction.
        sqlx::query("DELETE FROM queues WHERE project = $1 AND name = $2")
            .bind(q.project)
            .bind(q.name)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    pub(super) async fn list_queues(
        &self,
        project: &str,
        marker: Option<&str>,
        limit: usize,
        filter: &QueueFilter,
    ) -> Result<Vec<QueueInfo>> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        let mut after = marker.unwrap_or("").to_string();
        // Without a metadata filter, SQL applies the whole filter and the limit.
        let page = if filter.metadata.is_empty() {
            limit as i64
        } else {
            LIST_PAGE
        };
        loop {
            let rows = sqlx::query(
                "SELECT name, metadata, version, created FROM queues
                 WHERE project = $1 AND name > $2
                   AND ($3::text IS NULL OR strpos(name, $3) > 0)
                 ORDER BY name
                 LIMIT $4",
            )
            .bind(project)
            .bind(&after)
            .bind(filter.name_contains.as_deref())
            .bind(page)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
            let n = rows.len();
            for row in &rows {
                let info = queue_from(row)?;
                after.clone_from(&info.name);
                if filter.matches(&info.name, &info.metadata) {
                    out.push(info);
                    if out.len() >= limit {
                        return Ok(out);
                    }
                }
            }
            if (n as i64) < page {
                return Ok(out);
            }
        }
    }

    pub(super) async fn count_queues(&self, project: &str) -> Result<u64> {
        let n: i64 = sqlx::query("SELECT count(*) FROM queues WHERE project = $1")
            .bind(project)
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?
            .try_get(0)
            .map_err(db_err)?;
        Ok(n as u64)
    }

    /// The counters of `queue_bytes` (kept by triggers, see migration 0004) minus the bodies of
    /// the project's expired rows the sweep has not removed yet.
    pub(super) async fn project_bytes(&self, project: &str) -> Result<u64> {
        let n: i64 = sqlx::query(SQL_PROJECT_BYTES)
            .bind(project)
            .bind(self.now())
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?
            .try_get(0)
            .map_err(db_err)?;
        Ok(n.max(0) as u64)
    }
}

#[async_trait]
impl QueueStore for PostgresStore {
    async fn create_queue(&self, q: QueueRef<'_>, metadata: Metadata) -> Result<bool> {
        let s = &self.shared;
        s.timed(s.create_queue(q, &metadata)).await
    }

    async fn get_queue(&self, q: QueueRef<'_>) -> Result<Option<QueueInfo>> {
        let s = &self.shared;
        s.timed(s.get_queue(q)).await
    }

    async fn replace_queue_metadata(
        &self,
        q: QueueRef<'_>,
        expected_version: u64,
        metadata: Metadata,
    ) -> Result<bool> {
        let s = &self.shared;
        s.timed(s.replace_queue_metadata(q, expected_version, &metadata))
            .await
    }

    async fn delete_queue(&self, q: QueueRef<'_>) -> Result<()> {
        let s = &self.shared;
        s.timed(s.delete_queue(q)).await
    }

    async fn list_queues(
        &self,
        project: &str,
        marker: Option<&str>,
        limit: usize,
        filter: &QueueFilter,
    ) -> Result<Vec<QueueInfo>> {
        let s = &self.shared;
        s.timed(s.list_queues(project, marker, limit, filter)).await
    }

    async fn count_queues(&self, project: &str) -> Result<u64> {
        let s = &self.shared;
        s.timed(s.count_queues(project)).await
    }

    async fn project_bytes(&self, project: &str) -> Result<u64> {
        let s = &self.shared;
        s.timed(s.project_bytes(project)).await
    }
}
