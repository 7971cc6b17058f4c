//! The management store: pools, flavors, the catalog (which pool holds each queue) and
//! per-project limits (`/v2/quotas`).
//!
//! Two implementations: [`EmbeddedManagement`] (one redb file in the data directory; a single
//! node) and [`PostgresManagement`] (`[drivers] management_store = sqlalchemy`, the tables of
//! `migrations/postgresql/0003_management.sql` and `0004_quotas.sql`; shared by every API
//! node).
//!
//! Catalog entries are sticky: a queue keeps its pool after it is deleted and re-created, so a
//! node may cache them. The entry `(project, "")` (an invalid queue name) binds a whole project
//! when placement is per project. Entries are removed only when their pool is removed (which is
//! refused while any of its queues exists).
//!
//! The PostgreSQL management store needs the cargo feature `postgres`; without it,
//! `management_store = sqlalchemy` fails at start-up (see `PooledStore::open`).

mod embedded;
#[cfg(feature = "postgres")]
mod postgres;

pub use embedded::EmbeddedManagement;
#[cfg(feature = "postgres")]
pub use postgres::PostgresManagement;

use std::sync::Arc;

use zaqar_core::clock::Millis;
use zaqar_core::error::{Error, Result};
use zaqar_core::store::management::ManagementStore;

fn uri_conflict(other: &str) -> Error {
    Error::Conflict(format!("The URI is already used by pool {other}."))
}

/// Opens the PostgreSQL management store (`[drivers] management_store = sqlalchemy`).
#[cfg(feature = "postgres")]
pub(crate) async fn open_sqlalchemy(
    uri: &str,
    schema: &str,
    now: Millis,
) -> Result<Arc<dyn ManagementStore>> {
    Ok(PostgresManagement::open(uri, schema, now).await?)
}

/// Refuses `[drivers] management_store = sqlalchemy`: this build has no PostgreSQL management
/// store.
#[cfg(not(feature = "postgres"))]
pub(crate) async fn open_sqlalchemy(
    _uri: &str,
    _schema: &str,
    _now: Millis,
) -> Result<Arc<dyn ManagementStore>> {
    Err(Error::Unavailable(
        "[drivers] management_store = sqlalchemy: the PostgreSQL management store is not \
         available in this build (it needs the cargo feature `postgres`)"
            .into(),
    ))
}
