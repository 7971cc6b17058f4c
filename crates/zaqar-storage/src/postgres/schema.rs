//! The schema of the PostgreSQL store and its versioned migrations.
//!
//! Migrations are SQL files under `migrations/postgresql/`, compiled into the binary with
//! `include_str!` (nothing is read from disk at run time). At start-up [`migrate`] applies, in
//! one transaction per start-up, every migration whose version is not yet recorded in the
//! `zaqar_migrations` table of the store's schema (gaps in the numbering are allowed; a missing
//! lower version is applied later, when a binary that knows it starts). A transaction-scoped advisory lock keyed by
//! the schema name serialises API nodes that start at the same time, so each migration runs
//! exactly once. A database whose recorded version is newer than this binary knows is refused
//! (an older server must not write to a schema it does not understand).
//!
//! To evolve the schema, add `NNNN_name.sql` with the next version to [`MIGRATIONS`]; never edit
//! a migration that has been released. Later parts of the store (subscriptions, topics, the
//! management store's pools, flavors and catalog) arrive as further migrations in the same
//! schema.

use sqlx::{Executor, PgPool, Row};

use zaqar_core::clock::Millis;
use zaqar_core::error::{Error, Result};

use super::errors::db_err;

pub(crate) struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration, in version order.
///
/// Versions must increase but may have gaps: a version is applied when it is not recorded yet,
/// so branches that add different versions (e.g. 0002 and 0003) can land in either order.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "message_store",
        sql: include_str!("../../migrations/postgresql/0001_message_store.sql"),
    },
    Migration {
        version: 2,
        name: "subscriptions",
        sql: include_str!("../../migrations/postgresql/0002_subscriptions.sql"),
    },
    Migration {
        version: 3,
        name: "management",
        sql: include_str!("../../migrations/postgresql/0003_management.sql"),
    },
    Migration {
        version: 4,
        name: "quotas",
        sql: include_str!("../../migrations/postgresql/0004_quotas.sql"),
    },
];

/// The schema version this binary expects.
pub(crate) fn current_version() -> i32 {
    MIGRATIONS.last().map(|m| m.version).unwrap_or(0)
}

/// Creates `schema` if needed (when given) and brings it to [`current_version`]. Returns the
/// effective schema name (the connection's current schema when `schema` is `None`).
pub(crate) async fn migrate(pool: PgPool, schema: Option<String>, now: Millis) -> Result<String> {
    let schema = schema.as_deref();
    let mut tx = pool.begin().await.map_err(db_err)?;
    let effective = match schema {
        Some(s) => s.to_string(),
        None => sqlx::query("SELECT current_schema()")
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?
            .try_get::<Option<String>, _>(0)
            .map_err(db_err)?
            .ok_or_else(|| {
                Error::Unavailable(
                    "PostgreSQL message store: the connection's search_path names no existing \
                     schema; set [drivers:message_store:postgresql] schema"
                        .into(),
                )
            })?,
    };
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
        .bind(format!("zaqar-migrate:{effective}"))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    if let Some(s) = schema {
        let exists = sqlx::query("SELECT 1 FROM pg_namespace WHERE nspname = $1")
            .bind(s)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?
            .is_some();
        if !exists {
            // The name was checked by `valid_schema_name`: safe to use as an identifier.
            let ddl = format!("CREATE SCHEMA {s}");
            tx.execute(ddl.as_str()).await.map_err(db_err)?;
        }
    }
    tx.execute(
        "CREATE TABLE IF NOT EXISTS zaqar_migrations (
             version INTEGER PRIMARY KEY,
             name    TEXT NOT NULL,
             applied BIGINT NOT NULL
         )",
    )
    .await
    .map_err(db_err)?;
    let recorded: Vec<i32> = sqlx::query_scalar("SELECT version FROM zaqar_migrations")
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
    let applied = recorded.iter().copied().max().unwrap_or(0);
    if applied > current_version() {
        return Err(Error::Unavailable(format!(
            "PostgreSQL message store: schema {effective} is at version {applied}, newer than \
             this server understands ({}); upgrade the server",
            current_version()
        )));
    }
    for m in MIGRATIONS.iter().filter(|m| !recorded.contains(&m.version)) {
        tracing::info!(
            schema = %effective,
            version = m.version,
            name = m.name,
            "applying PostgreSQL migration"
        );
        // Without arguments the simple-query protocol runs the whole file.
        tx.execute(m.sql).await.map_err(db_err)?;
        sqlx::query("INSERT INTO zaqar_migrations (version, name, applied) VALUES ($1, $2, $3)")
            .bind(m.version)
            .bind(m.name)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
    }
    tx.commit().await.map_err(db_err)?;
    Ok(effective)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_in_order() {
        let versions: Vec<i32> = MIGRATIONS.iter().map(|m| m.version).collect();
        assert!(versions.windows(2).all(|w| w[1] > w[0]));
        assert_eq!(versions.first(), Some(&1));
    }
}
