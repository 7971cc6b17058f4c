//! Shared by the PostgreSQL test files: the database under test, fresh schemas that are dropped
//! at the end, and store construction.
//!
//! The database is `ZAQAR_TEST_POSTGRES_URL`. Without it the tests print a notice and pass,
//! unless `ZAQAR_TEST_REQUIRE_BACKENDS=1`, in which case they fail; a database that is named but
//! unreachable always fails them.

use std::sync::{Arc, Mutex};

use sqlx::Connection;
use zaqar_core::clock::SharedClock;
use zaqar_server::config::{Config, PostgresStoreConfig};
use zaqar_storage::postgres::PostgresStore;

pub const URL_VAR: &str = "ZAQAR_TEST_POSTGRES_URL";

/// The database URL, or `None` (after a notice) when the tests should be skipped.
pub fn backend() -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_string()),
        _ => {
            if std::env::var("ZAQAR_TEST_REQUIRE_BACKENDS").as_deref() == Ok("1") {
                panic!("{URL_VAR} is not set but ZAQAR_TEST_REQUIRE_BACKENDS=1");
            }
            eprintln!("skipped: {URL_VAR} is not set (PostgreSQL tests need a database)");
            None
        }
    }
}

/// A schema name no other test or run uses.
pub fn fresh_schema() -> String {
    format!("zaqar_test_{}", uuid::Uuid::new_v4().simple())
}

/// The driver settings used by tests, in `schema`.
pub fn config(schema: &str) -> PostgresStoreConfig {
    PostgresStoreConfig {
        schema: schema.to_string(),
        max_connections: 8,
        acquire_timeout_secs: 5,
        ..Config::defaults().postgresql
    }
}

pub async fn open(url: &str, schema: &str, clock: SharedClock) -> Arc<PostgresStore> {
    PostgresStore::open(url, &config(schema), clock)
        .await
        .unwrap_or_else(|e| panic!("cannot open the PostgreSQL store at {URL_VAR}: {e}"))
}

/// Runs `sql` on a fresh connection outside any runtime the caller may be in.
pub fn run_sql_blocking(url: &str, sql: String) {
    let url = url.to_string();
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            match sqlx::PgConnection::connect(&url).await {
                Ok(mut c) => {
                    if let Err(e) = sqlx::raw_sql(&sql).execute(&mut c).await {
                        eprintln!("cleanup failed: {e}");
                    }
                    let _ = c.close().await;
                }
                Err(e) => eprintln!("cleanup cannot connect: {e}"),
            }
        })
    })
    .join();
}

/// Schemas created by a test, dropped (with everything in them) when this is dropped.
pub struct Schemas {
    pub url: String,
    names: Mutex<Vec<String>>,
}

impl Schemas {
    pub fn new(url: String) -> Schemas {
        Schemas {
            url,
            names: Mutex::new(Vec::new()),
        }
    }

    pub fn fresh(&self) -> String {
        let s = fresh_schema();
        self.names.lock().unwrap().push(s.clone());
        s
    }
}

impl Drop for Schemas {
    fn drop(&mut self) {
        let names = std::mem::take(&mut *self.names.lock().unwrap());
        if names.is_empty() {
            return;
        }
        let sql = names
            .iter()
            .map(|s| format!("DROP SCHEMA IF EXISTS {s} CASCADE;"))
            .collect::<String>();
        run_sql_blocking(&self.url, sql);
    }
}
