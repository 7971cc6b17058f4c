//! The management store: pools, flavors, the catalog (which pool holds each queue) and
//! per-project limits (`/v2/quotas`).
//!
//! Three implementations: [`EmbeddedManagement`] (one redb file in the data directory; a single
//! node), and for `[drivers] management_store = sqlalchemy` (shared by every API node), by the
//! URI's scheme, `PostgresManagement` (the tables of `migrations/postgresql/0003_management.sql`
//! and `0004_quotas.sql`) or `MysqlManagement` (MySQL, MariaDB, Galera;
//! `migrations/mysql/`).
//!
//! Catalog entries are sticky: a queue keeps its pool after it is deleted and re-created, so a
//! node may cache them. The entry `(project, "")` (an invalid queue name) binds a whole project
//! when placement is per project. Entries are removed only when their pool is removed (which is
//! refused while any of its queues exists).
//!
//! The PostgreSQL management store needs the cargo feature `postgres`, the MySQL one `mysql`;
//! without it, `management_store = sqlalchemy` with such a URI fails at start-up.

mod embedded;
#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;

pub use embedded::EmbeddedManagement;
#[cfg(feature = "mysql")]
pub use mysql::MysqlManagement;
#[cfg(feature = "postgres")]
pub use postgres::PostgresManagement;

use std::sync::Arc;

use zaqar_core::clock::Millis;
use zaqar_core::error::{Error, Result};
use zaqar_core::store::management::ManagementStore;

fn uri_conflict(other: &str) -> Error {
    Error::Conflict(format!("The URI is already used by pool {other}."))
}

/// Whether a `[drivers:management_store:sqlalchemy] uri` names MySQL or MariaDB:
/// `mysql+pymysql://` and `mysql+mysqldb://` (SQLAlchemy's spellings) name the same server as
/// `mysql://`; `mariadb://` too. Anything else is PostgreSQL's.
pub(crate) fn is_mysql_uri(uri: &str) -> bool {
    let scheme = uri.trim().split_once("://").map(|x| x.0).unwrap_or("");
    scheme == "mysql" || scheme.starts_with("mysql+") || scheme == "mariadb"
}

/// Opens the management store of `[drivers] management_store = sqlalchemy`: MySQL/MariaDB or
/// PostgreSQL, by the URI's scheme.
pub(crate) async fn open_sqlalchemy(
    uri: &str,
    schema: &str,
    now: Millis,
) -> Result<Arc<dyn ManagementStore>> {
    if is_mysql_uri(uri) {
        if !schema.trim().is_empty() {
            return Err(Error::Unavailable(
                "[drivers:management_store:sqlalchemy] schema applies to PostgreSQL; with MySQL \
                 name the database in the uri"
                    .into(),
            ));
        }
        return open_mysql(uri, now).await;
    }
    open_postgres(uri, schema, now).await
}

#[cfg(feature = "mysql")]
async fn open_mysql(uri: &str, now: Millis) -> Result<Arc<dyn ManagementStore>> {
    Ok(MysqlManagement::open(uri, now).await?)
}

#[cfg(not(feature = "mysql"))]
async fn open_mysql(_uri: &str, _now: Millis) -> Result<Arc<dyn ManagementStore>> {
    Err(Error::Unavailable(
        "[drivers] management_store = sqlalchemy: the MySQL management store is not available \
         in this build (it needs the cargo feature `mysql`)"
            .into(),
    ))
}

#[cfg(feature = "postgres")]
async fn open_postgres(uri: &str, schema: &str, now: Millis) -> Result<Arc<dyn ManagementStore>> {
    Ok(PostgresManagement::open(uri, schema, now).await?)
}

/// Refuses `[drivers] management_store = sqlalchemy` with a PostgreSQL URI: this build has no
/// PostgreSQL management store.
#[cfg(not(feature = "postgres"))]
async fn open_postgres(
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
