//! The management store in PostgreSQL (`[drivers] management_store = sqlalchemy`; shared by
//! every API node).

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row};

use zaqar_core::error::{Error, Result};

use zaqar_core::store::management::{Flavor, ManagementStore, Pool, ProjectQuota};

use super::uri_conflict;

/// The management store in PostgreSQL (`[drivers:management_store:sqlalchemy] uri`).
pub struct PostgresManagement {
    pool: PgPool,
}

fn pg_err(e: sqlx::Error) -> Error {
    if let sqlx::Error::Database(d) = &e {
        if d.code().as_deref() == Some("23505") {
            return Error::Conflict("The URI is already used by another pool.".into());
        }
    }
    tracing::warn!(error = %e, "management store (PostgreSQL) failed");
    Error::Unavailable("The management store is not reachable.".into())
}

fn pool_row(r: &sqlx::postgres::PgRow) -> Result<Pool> {
    let options: String = r.try_get("options").map_err(pg_err)?;
    Ok(Pool {
        name: r.try_get("name").map_err(pg_err)?,
        uri: r.try_get("uri").map_err(pg_err)?,
        weight: r.try_get("weight").map_err(pg_err)?,
        flavor: r.try_get("flavor").map_err(pg_err)?,
        options: serde_json::from_str(&options).unwrap_or_default(),
    })
}

fn quota_row(r: &sqlx::postgres::PgRow) -> Result<(String, ProjectQuota)> {
    let int = |c: &str| -> Result<Option<u64>> {
        Ok(r.try_get::<Option<i64>, _>(c)
            .map_err(pg_err)?
            .map(|v| v.max(0) as u64))
    };
    Ok((
        r.try_get("project").map_err(pg_err)?,
        ProjectQuota {
            max_queues: int("max_queues")?,
            max_messages_per_queue: int("max_messages_per_queue")?,
            max_bytes: int("max_bytes")?,
            requests_per_second: r.try_get("requests_per_second").map_err(pg_err)?,
            burst: r.try_get("burst").map_err(pg_err)?,
        },
    ))
}

const QUOTA_COLUMNS: &str =
    "project, max_queues, max_messages_per_queue, max_bytes, requests_per_second, burst";

fn flavor_row(r: &sqlx::postgres::PgRow) -> Result<Flavor> {
    let caps: String = r.try_get("capabilities").map_err(pg_err)?;
    Ok(Flavor {
        project: r.try_get("project").map_err(pg_err)?,
        name: r.try_get("name").map_err(pg_err)?,
        capabilities: serde_json::from_str(&caps).unwrap_or_default(),
    })
}

impl PostgresManagement {
    /// Connects to `uri`, creates `schema` if given (else uses the connection's search_path)
    /// and applies the migrations there.
    pub async fn open(
        uri: &str,
        schema: &str,
        now: zaqar_core::clock::Millis,
    ) -> Result<Arc<PostgresManagement>> {
        let schema = match schema.trim() {
            "" => None,
            s if crate::postgres::valid_schema_name(s) => Some(s.to_string()),
            s => {
                return Err(Error::Unavailable(format!(
                    "[drivers:management_store:sqlalchemy] schema = {s:?} is not a valid \
                     lower-case identifier"
                )))
            }
        };
        let mut connect: PgConnectOptions = uri.trim().parse().map_err(|e| {
            Error::Unavailable(format!(
                "[drivers:management_store:sqlalchemy] uri is not a valid PostgreSQL URI: {e}"
            ))
        })?;
        if let Some(s) = &schema {
            connect = connect.options([("search_path", s.clone())]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .min_connections(0)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect_lazy_with(connect);
        crate::postgres::migrate_schema(pool.clone(), schema, now)
            .await
            .map_err(|e| {
                Error::Unavailable(format!(
                    "cannot open the management store: {}",
                    e.description()
                ))
            })?;
        Ok(Arc::new(PostgresManagement { pool }))
    }
}

#[async_trait]
impl ManagementStore for PostgresManagement {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(pg_err)?;
        Ok(())
    }

    async fn list_pools(&self, marker: Option<&str>, limit: usize) -> Result<Vec<Pool>> {
        let rows = sqlx::query(
            "SELECT name, uri, weight, flavor, options FROM zaqar_pools
             WHERE name > $1 ORDER BY name COLLATE \"C\" LIMIT $2",
        )
        .bind(marker.unwrap_or(""))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(pg_err)?;
        rows.iter().map(pool_row).collect()
    }

    async fn get_pool(&self, name: &str) -> Result<Option<Pool>> {
        let row = sqlx::query(
            "SELECT name, uri, weight, flavor, options FROM zaqar_pools WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .map_err(pg_err)?;
        row.as_ref().map(pool_row).transpose()
    }

    async fn put_pool(&self, pool: &Pool) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(pg_err)?;
        let other: Option<String> =
            sqlx::query_scalar("SELECT name FROM zaqar_pools WHERE uri = $1 AND name <> $2")
                .bind(&pool.uri)
                .bind(&pool.name)
                .fetch_optional(&mut *tx)
                .await
                .map_err(pg_err)?;
        if let Some(o) = other {
            return Err(uri_conflict(&o));
        }
        sqlx::query(
            "INSERT INTO zaqar_pools (name, uri, weight, flavor, options)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (name) DO UPDATE SET uri = EXCLUDED.uri, weight = EXCLUDED.weight,
               flavor = EXCLUDED.flavor, options = EXCLUDED.options",
        )
        .bind(&pool.name)
        .bind(&pool.uri)
        .bind(pool.weight)
        .bind(&pool.flavor)
        .bind(Value::Object(pool.options.clone()).to_string())
        .execute(&mut *tx)
        .await
        .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)
    }

    async fn delete_pool(&self, name: &str) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(pg_err)?;
        sqlx::query("DELETE FROM zaqar_catalog WHERE pool = $1")
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(pg_err)?;
        sqlx::query("DELETE FROM zaqar_pools WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)
    }

    async fn list_flavors(
        &self,
        project: &str,
        marker: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Flavor>> {
        let rows = sqlx::query(
            "SELECT project, name, capabilities FROM zaqar_flavors
             WHERE project = $1 AND name > $2 ORDER BY name COLLATE \"C\" LIMIT $3",
        )
        .bind(project)
        .bind(marker.unwrap_or(""))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(pg_err)?;
        rows.iter().map(flavor_row).collect()
    }

    async fn get_flavor(&self, project: &str, name: &str) -> Result<Option<Flavor>> {
        let row = sqlx::query(
            "SELECT project, name, capabilities FROM zaqar_flavors
             WHERE project = $1 AND name = $2",
        )
        .bind(project)
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .map_err(pg_err)?;
        row.as_ref().map(flavor_row).transpose()
    }

    async fn flavor_exists_anywhere(&self, name: &str) -> Result<bool> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM zaqar_flavors WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(pg_err)?;
        Ok(n > 0)
    }

    async fn put_flavor(&self, flavor: &Flavor, pools: &[String]) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(pg_err)?;
        sqlx::query(
            "UPDATE zaqar_pools SET flavor = NULL WHERE flavor = $1 AND NOT (name = ANY($2))",
        )
        .bind(&flavor.name)
        .bind(pools)
        .execute(&mut *tx)
        .await
        .map_err(pg_err)?;
        sqlx::query("UPDATE zaqar_pools SET flavor = $1 WHERE name = ANY($2)")
            .bind(&flavor.name)
            .bind(pools)
            .execute(&mut *tx)
            .await
            .map_err(pg_err)?;
        sqlx::query(
            "INSERT INTO zaqar_flavors (project, name, capabilities) VALUES ($1, $2, $3)
             ON CONFLICT (project, name) DO UPDATE SET capabilities = EXCLUDED.capabilities",
        )
        .bind(&flavor.project)
        .bind(&flavor.name)
        .bind(serde_json::to_string(&flavor.capabilities).unwrap_or_default())
        .execute(&mut *tx)
        .await
        .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)
    }

    async fn delete_flavor(&self, project: &str, name: &str) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(pg_err)?;
        let deleted = sqlx::query("DELETE FROM zaqar_flavors WHERE project = $1 AND name = $2")
            .bind(project)
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(pg_err)?
            .rows_affected();
        if deleted > 0 {
            sqlx::query("UPDATE zaqar_pools SET flavor = NULL WHERE flavor = $1")
                .bind(name)
                .execute(&mut *tx)
                .await
                .map_err(pg_err)?;
        }
        tx.commit().await.map_err(pg_err)
    }

    async fn catalog_get(&self, project: &str, queue: &str) -> Result<Option<String>> {
        sqlx::query_scalar("SELECT pool FROM zaqar_catalog WHERE project = $1 AND queue = $2")
            .bind(project)
            .bind(queue)
            .fetch_optional(&self.pool)
            .await
            .map_err(pg_err)
    }

    async fn catalog_bind(&self, project: &str, queue: &str, pool: &str) -> Result<String> {
        // Insert, or read the winner of a concurrent bind (the row exists then).
        let inserted: Option<String> = sqlx::query_scalar(
            "INSERT INTO zaqar_catalog (project, queue, pool) VALUES ($1, $2, $3)
             ON CONFLICT (project, queue) DO NOTHING RETURNING pool",
        )
        .bind(project)
        .bind(queue)
        .bind(pool)
        .fetch_optional(&self.pool)
        .await
        .map_err(pg_err)?;
        match inserted {
            Some(p) => Ok(p),
            None => self
                .catalog_get(project, queue)
                .await?
                .ok_or_else(|| Error::Unavailable("The catalog entry vanished.".into())),
        }
    }

    async fn catalog_of_pool(&self, pool: &str) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT project, queue FROM zaqar_catalog WHERE pool = $1")
            .bind(pool)
            .fetch_all(&self.pool)
            .await
            .map_err(pg_err)?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("project").map_err(pg_err)?,
                    r.try_get("queue").map_err(pg_err)?,
                ))
            })
            .collect()
    }

    async fn list_quotas(
        &self,
        marker: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, ProjectQuota)>> {
        let rows = sqlx::query(&format!(
            "SELECT {QUOTA_COLUMNS} FROM zaqar_quotas WHERE project > $1 ORDER BY project LIMIT $2"
        ))
        .bind(marker.unwrap_or(""))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(pg_err)?;
        rows.iter().map(quota_row).collect()
    }

    async fn get_quota(&self, project: &str) -> Result<Option<ProjectQuota>> {
        let row = sqlx::query(&format!(
            "SELECT {QUOTA_COLUMNS} FROM zaqar_quotas WHERE project = $1"
        ))
        .bind(project)
        .fetch_optional(&self.pool)
        .await
        .map_err(pg_err)?;
        Ok(row.as_ref().map(quota_row).transpose()?.map(|(_, q)| q))
    }

    async fn put_quota(&self, project: &str, quota: &ProjectQuota) -> Result<()> {
        let int = |v: Option<u64>| v.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
        sqlx::query(&format!(
            "INSERT INTO zaqar_quotas ({QUOTA_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (project) DO UPDATE SET max_queues = EXCLUDED.max_queues,
               max_messages_per_queue = EXCLUDED.max_messages_per_queue,
               max_bytes = EXCLUDED.max_bytes,
               requests_per_second = EXCLUDED.requests_per_second, burst = EXCLUDED.burst"
        ))
        .bind(project)
        .bind(int(quota.max_queues))
        .bind(int(quota.max_messages_per_queue))
        .bind(int(quota.max_bytes))
        .bind(quota.requests_per_second)
        .bind(quota.burst)
        .execute(&self.pool)
        .await
        .map_err(pg_err)?;
        Ok(())
    }

    async fn delete_quota(&self, project: &str) -> Result<()> {
        sqlx::query("DELETE FROM zaqar_quotas WHERE project = $1")
            .bind(project)
            .execute(&self.pool)
            .await
            .map_err(pg_err)?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
