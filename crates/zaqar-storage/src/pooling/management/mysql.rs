//! The management store in MySQL or MariaDB (`[drivers] management_store = sqlalchemy` with a
//! `mysql://`, `mysql+pymysql://` or `mysql+mysqldb://` URI, as OpenStack control planes write
//! them; shared by every API node). Safe on Galera: migrations are idempotent DDL recorded with
//! `INSERT IGNORE` (no table locks, several nodes may start at once), and every transaction is
//! retried on a deadlock or certification failure, which Galera reports as a deadlock.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions, MySqlRow};
use sqlx::{Executor, Row};

use zaqar_core::clock::Millis;
use zaqar_core::error::{Error, Result};
use zaqar_core::store::management::{Flavor, ManagementStore, Pool, ProjectQuota};

#[cfg(test)]
use super::is_mysql_uri;
use super::uri_conflict;

/// A versioned migration, compiled in.
struct Migration {
    version: i32,
    name: &'static str,
    sql: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "management",
        sql: include_str!("../../../migrations/mysql/0001_management.sql"),
    },
    Migration {
        version: 2,
        name: "quotas",
        sql: include_str!("../../../migrations/mysql/0002_quotas.sql"),
    },
];

/// How many times a transaction is tried when the server reports a deadlock, a lock wait
/// timeout or (Galera) a certification failure.
const ATTEMPTS: u32 = 5;

/// The management store in MySQL / MariaDB.
pub struct MysqlManagement {
    pool: MySqlPool,
}

/// Whether a MySQL error is worth trying the transaction again: deadlock (also Galera's
/// certification failure), lock wait timeout, or a Galera node not ready yet.
fn retriable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            let code = d
                .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                .map(|m| m.number());
            matches!(code, Some(1213 | 1205 | 1047))
        }
        _ => false,
    }
}

fn db_err(e: sqlx::Error) -> Error {
    if let sqlx::Error::Database(d) = &e {
        let code = d
            .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
            .map(|m| m.number());
        if code == Some(1062) {
            return Error::Conflict("The URI is already used by another pool.".into());
        }
    }
    tracing::warn!(error = %e, "management store (MySQL) failed");
    Error::Unavailable("The management store is not reachable.".into())
}

fn connect_options(uri: &str) -> Result<MySqlConnectOptions> {
    let uri = uri.trim();
    let rest = uri.split_once("://").map(|x| x.1).unwrap_or("");
    format!("mysql://{rest}").parse().map_err(|e| {
        Error::Unavailable(format!(
            "[drivers:management_store:sqlalchemy] uri is not a valid MySQL URI: {e}"
        ))
    })
}

/// The statements of a migration file: split at `;` ending a line, comments dropped.
fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in sql.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with("--") {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if t.ends_with(';') {
            out.push(current.trim().trim_end_matches(';').to_string());
            current.clear();
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_string());
    }
    out
}

/// A text column. Columns with a binary collation (`utf8mb4_bin`, for byte-wise order) reach
/// the client as bytes, so text is decoded from them.
fn text(r: &MySqlRow, column: &str) -> Result<String> {
    let bytes: Vec<u8> = r.try_get(column).map_err(db_err)?;
    String::from_utf8(bytes)
        .map_err(|_| Error::Unavailable(format!("management store: column {column} is not UTF-8")))
}

/// The same for a nullable column.
fn opt_text(r: &MySqlRow, column: &str) -> Result<Option<String>> {
    let bytes: Option<Vec<u8>> = r.try_get(column).map_err(db_err)?;
    bytes
        .map(|b| {
            String::from_utf8(b).map_err(|_| {
                Error::Unavailable(format!("management store: column {column} is not UTF-8"))
            })
        })
        .transpose()
}

fn uri_hash(uri: &str) -> Vec<u8> {
    Sha256::digest(uri.as_bytes()).to_vec()
}

fn pool_row(r: &MySqlRow) -> Result<Pool> {
    Ok(Pool {
        name: text(r, "name")?,
        uri: text(r, "uri")?,
        weight: r.try_get("weight").map_err(db_err)?,
        flavor: opt_text(r, "flavor")?,
        options: serde_json::from_str(&text(r, "options")?).unwrap_or_default(),
    })
}

fn flavor_row(r: &MySqlRow) -> Result<Flavor> {
    Ok(Flavor {
        project: text(r, "project")?,
        name: text(r, "name")?,
        capabilities: serde_json::from_str(&text(r, "capabilities")?).unwrap_or_default(),
    })
}

const QUOTA_COLUMNS: &str =
    "project, max_queues, max_messages_per_queue, max_bytes, requests_per_second, burst";

fn quota_row(r: &MySqlRow) -> Result<(String, ProjectQuota)> {
    let int = |c: &str| -> Result<Option<u64>> {
        Ok(r.try_get::<Option<i64>, _>(c)
            .map_err(db_err)?
            .map(|v| v.max(0) as u64))
    };
    Ok((
        text(r, "project")?,
        ProjectQuota {
            max_queues: int("max_queues")?,
            max_messages_per_queue: int("max_messages_per_queue")?,
            max_bytes: int("max_bytes")?,
            requests_per_second: r.try_get("requests_per_second").map_err(db_err)?,
            burst: r.try_get("burst").map_err(db_err)?,
        },
    ))
}

/// Runs `attempt` (one transaction) until it succeeds or fails with an error that is not
/// worth retrying, at most [`ATTEMPTS`] times with a short, growing pause.
async fn with_retries<T, F, Fut>(mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, sqlx::Error>>,
{
    let mut pause = Duration::from_millis(10);
    for n in 1..=ATTEMPTS {
        match attempt().await {
            Ok(v) => return Ok(v),
            Err(e) if n < ATTEMPTS && retriable(&e) => {
                tracing::debug!(error = %e, attempt = n, "management store (MySQL): retrying");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            Err(e) => return Err(db_err(e)),
        }
    }
    Err(Error::Unavailable(
        "The management store is not reachable.".into(),
    ))
}

impl MysqlManagement {
    /// Connects to `uri` and applies the migrations (in the URI's database).
    pub async fn open(uri: &str, now: Millis) -> Result<Arc<MysqlManagement>> {
        let pool = MySqlPoolOptions::new()
            .max_connections(8)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(connect_options(uri)?);
        Self::migrate(&pool, now).await.map_err(|e| {
            Error::Unavailable(format!(
                "cannot open the management store: {}",
                e.description()
            ))
        })?;
        Ok(Arc::new(MysqlManagement { pool }))
    }

    /// Applies every migration not recorded yet. Each is idempotent, so two nodes applying
    /// one at the same time both succeed; the record is `INSERT IGNORE`d.
    async fn migrate(pool: &MySqlPool, now: Millis) -> Result<()> {
        pool.execute(
            "CREATE TABLE IF NOT EXISTS zaqar_migrations (
                 version INT NOT NULL PRIMARY KEY,
                 name    VARCHAR(64) NOT NULL,
                 applied BIGINT NOT NULL
             ) ENGINE = InnoDB",
        )
        .await
        .map_err(db_err)?;
        let recorded: Vec<i32> = sqlx::query_scalar("SELECT version FROM zaqar_migrations")
            .fetch_all(pool)
            .await
            .map_err(db_err)?;
        let known = MIGRATIONS.iter().map(|m| m.version).max().unwrap_or(0);
        if let Some(newer) = recorded.iter().copied().filter(|v| *v > known).max() {
            return Err(Error::Unavailable(format!(
                "MySQL management store: the database is at version {newer}, newer than this \
                 server understands ({known}); upgrade the server"
            )));
        }
        for m in MIGRATIONS.iter().filter(|m| !recorded.contains(&m.version)) {
            tracing::info!(
                version = m.version,
                name = m.name,
                "applying MySQL migration"
            );
            for statement in statements(m.sql) {
                pool.execute(statement.as_str()).await.map_err(db_err)?;
            }
            sqlx::query(
                "INSERT IGNORE INTO zaqar_migrations (version, name, applied) VALUES (?, ?, ?)",
            )
            .bind(m.version)
            .bind(m.name)
            .bind(now)
            .execute(pool)
            .await
            .map_err(db_err)?;
        }
        Ok(())
    }
}

#[async_trait]
impl ManagementStore for MysqlManagement {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn list_pools(&self, marker: Option<&str>, limit: usize) -> Result<Vec<Pool>> {
        let rows = sqlx::query(
            "SELECT name, uri, weight, flavor, options FROM zaqar_pools
             WHERE name > ? ORDER BY name LIMIT ?",
        )
        .bind(marker.unwrap_or(""))
        .bind(u64::try_from(limit).unwrap_or(u64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(pool_row).collect()
    }

    async fn get_pool(&self, name: &str) -> Result<Option<Pool>> {
        let row = sqlx::query(
            "SELECT name, uri, weight, flavor, options FROM zaqar_pools WHERE name = ?",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(pool_row).transpose()
    }

    async fn put_pool(&self, pool: &Pool) -> Result<()> {
        let hash = uri_hash(&pool.uri);
        let options = Value::Object(pool.options.clone()).to_string();
        let other = with_retries(|| async {
            let mut tx = self.pool.begin().await?;
            let other: Option<Vec<u8>> =
                sqlx::query_scalar("SELECT name FROM zaqar_pools WHERE uri_hash = ? AND name <> ?")
                    .bind(&hash)
                    .bind(&pool.name)
                    .fetch_optional(&mut *tx)
                    .await?;
            if other.is_some() {
                return Ok(other);
            }
            sqlx::query(
                "INSERT INTO zaqar_pools (name, uri, uri_hash, weight, flavor, options)
                 VALUES (?, ?, ?, ?, ?, ?)
                 ON DUPLICATE KEY UPDATE uri = VALUES(uri), uri_hash = VALUES(uri_hash),
                   weight = VALUES(weight), flavor = VALUES(flavor), options = VALUES(options)",
            )
            .bind(&pool.name)
            .bind(&pool.uri)
            .bind(&hash)
            .bind(pool.weight)
            .bind(&pool.flavor)
            .bind(&options)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(None)
        })
        .await?;
        match other {
            Some(o) => Err(uri_conflict(&String::from_utf8_lossy(&o))),
            None => Ok(()),
        }
    }

    async fn delete_pool(&self, name: &str) -> Result<()> {
        with_retries(|| async {
            let mut tx = self.pool.begin().await?;
            sqlx::query("DELETE FROM zaqar_catalog WHERE pool = ?")
                .bind(name)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM zaqar_pools WHERE name = ?")
                .bind(name)
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        })
        .await
    }

    async fn list_flavors(
        &self,
        project: &str,
        marker: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Flavor>> {
        let rows = sqlx::query(
            "SELECT project, name, capabilities FROM zaqar_flavors
             WHERE project = ? AND name > ? ORDER BY name LIMIT ?",
        )
        .bind(project)
        .bind(marker.unwrap_or(""))
        .bind(u64::try_from(limit).unwrap_or(u64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(flavor_row).collect()
    }

    async fn get_flavor(&self, project: &str, name: &str) -> Result<Option<Flavor>> {
        let row = sqlx::query(
            "SELECT project, name, capabilities FROM zaqar_flavors WHERE project = ? AND name = ?",
        )
        .bind(project)
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(flavor_row).transpose()
    }

    async fn flavor_exists_anywhere(&self, name: &str) -> Result<bool> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM zaqar_flavors WHERE name = ?")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(n > 0)
    }

    async fn put_flavor(&self, flavor: &Flavor, pools: &[String]) -> Result<()> {
        let caps = serde_json::to_string(&flavor.capabilities).unwrap_or_default();
        with_retries(|| async {
            let mut tx = self.pool.begin().await?;
            // The pools that leave the flavor, then those that join it (one statement each,
            // in name order, so concurrent writers lock rows in the same order).
            let members: Vec<Vec<u8>> = sqlx::query_scalar(
                "SELECT name FROM zaqar_pools WHERE flavor = ? ORDER BY name FOR UPDATE",
            )
            .bind(&flavor.name)
            .fetch_all(&mut *tx)
            .await?;
            let leaving = members
                .iter()
                .filter(|m| !pools.iter().any(|p| p.as_bytes() == m.as_slice()));
            for gone in leaving {
                sqlx::query("UPDATE zaqar_pools SET flavor = NULL WHERE name = ?")
                    .bind(gone)
                    .execute(&mut *tx)
                    .await?;
            }
            let mut joining: Vec<&String> = pools.iter().collect();
            joining.sort();
            for p in joining {
                sqlx::query("UPDATE zaqar_pools SET flavor = ? WHERE name = ?")
                    .bind(&flavor.name)
                    .bind(p)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(
                "INSERT INTO zaqar_flavors (project, name, capabilities) VALUES (?, ?, ?)
                 ON DUPLICATE KEY UPDATE capabilities = VALUES(capabilities)",
            )
            .bind(&flavor.project)
            .bind(&flavor.name)
            .bind(&caps)
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        })
        .await
    }

    async fn delete_flavor(&self, project: &str, name: &str) -> Result<()> {
        with_retries(|| async {
            let mut tx = self.pool.begin().await?;
            let deleted = sqlx::query("DELETE FROM zaqar_flavors WHERE project = ? AND name = ?")
                .bind(project)
                .bind(name)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if deleted > 0 {
                sqlx::query("UPDATE zaqar_pools SET flavor = NULL WHERE flavor = ?")
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await
        })
        .await
    }

    async fn catalog_get(&self, project: &str, queue: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT pool FROM zaqar_catalog WHERE project = ? AND queue = ?")
            .bind(project)
            .bind(queue)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.as_ref().map(|r| text(r, "pool")).transpose()
    }

    async fn catalog_bind(&self, project: &str, queue: &str, pool: &str) -> Result<String> {
        // Insert if absent (the first binding wins on every node), then read the winner.
        with_retries(|| async {
            sqlx::query("INSERT IGNORE INTO zaqar_catalog (project, queue, pool) VALUES (?, ?, ?)")
                .bind(project)
                .bind(queue)
                .bind(pool)
                .execute(&self.pool)
                .await
        })
        .await?;
        self.catalog_get(project, queue)
            .await?
            .ok_or_else(|| Error::Unavailable("The catalog entry vanished.".into()))
    }

    async fn catalog_of_pool(&self, pool: &str) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT project, queue FROM zaqar_catalog WHERE pool = ?")
            .bind(pool)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|r| Ok((text(r, "project")?, text(r, "queue")?)))
            .collect()
    }

    async fn list_quotas(
        &self,
        marker: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, ProjectQuota)>> {
        let rows = sqlx::query(&format!(
            "SELECT {QUOTA_COLUMNS} FROM zaqar_quotas WHERE project > ? ORDER BY project LIMIT ?"
        ))
        .bind(marker.unwrap_or(""))
        .bind(u64::try_from(limit).unwrap_or(u64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(quota_row).collect()
    }

    async fn get_quota(&self, project: &str) -> Result<Option<ProjectQuota>> {
        let row = sqlx::query(&format!(
            "SELECT {QUOTA_COLUMNS} FROM zaqar_quotas WHERE project = ?"
        ))
        .bind(project)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(row.as_ref().map(quota_row).transpose()?.map(|(_, q)| q))
    }

    async fn put_quota(&self, project: &str, quota: &ProjectQuota) -> Result<()> {
        let int = |v: Option<u64>| v.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
        with_retries(|| async {
            sqlx::query(&format!(
                "INSERT INTO zaqar_quotas ({QUOTA_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)
                 ON DUPLICATE KEY UPDATE max_queues = VALUES(max_queues),
                   max_messages_per_queue = VALUES(max_messages_per_queue),
                   max_bytes = VALUES(max_bytes),
                   requests_per_second = VALUES(requests_per_second), burst = VALUES(burst)"
            ))
            .bind(project)
            .bind(int(quota.max_queues))
            .bind(int(quota.max_messages_per_queue))
            .bind(int(quota.max_bytes))
            .bind(quota.requests_per_second)
            .bind(quota.burst)
            .execute(&self.pool)
            .await
        })
        .await?;
        Ok(())
    }

    async fn delete_quota(&self, project: &str) -> Result<()> {
        with_retries(|| async {
            sqlx::query("DELETE FROM zaqar_quotas WHERE project = ?")
                .bind(project)
                .execute(&self.pool)
                .await
        })
        .await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlalchemy_uris_and_migration_statements() {
        for uri in [
            "mysql://zaqar:pw@db/zaqar",
            "mysql+pymysql://zaqar:pw@db/zaqar?charset=utf8",
            "mysql+mysqldb://zaqar:pw@db:3306/zaqar",
            "mariadb://db/zaqar",
        ] {
            assert!(is_mysql_uri(uri), "{uri}");
            assert!(connect_options(uri).is_ok(), "{uri}");
        }
        assert!(!is_mysql_uri("postgresql://db/zaqar"));
        for m in MIGRATIONS {
            let s = statements(m.sql);
            assert!(!s.is_empty());
            assert!(s
                .iter()
                .all(|st| !st.contains(';') && !st.starts_with("--")));
        }
        assert_eq!(statements(MIGRATIONS[0].sql).len(), 3);
    }
}
