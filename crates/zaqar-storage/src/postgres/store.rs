//! The PostgreSQL store itself: its state shared with its tasks, opening it (connection pool,
//! migrations, durability check), and the `DataStore` trait (ping, wake-ups, shutdown).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Row, Transaction};

use zaqar_core::clock::{Millis, SharedClock};
use zaqar_core::error::{Error, Result};
use zaqar_core::hub::Hub;
use zaqar_core::store::DataStore;

use super::config::{valid_schema_name, PostgresStoreConfig};
use super::errors::db_err;
use super::lanes::QueueLanes;
use super::{notify, schema};

/// State shared by the store and its tasks.
pub(super) struct Shared {
    pub(super) pool: PgPool,
    clock: SharedClock,
    /// Effective schema (also names the notification channel).
    pub(super) schema: String,
    /// This store's id in notifications (its own are ignored).
    node: String,
    /// Bounds one operation, connection acquisition included (a dead server that does not
    /// reset the connection must not hang requests).
    op_timeout: Duration,
    publisher: Mutex<Option<Arc<notify::Publisher>>>,
    pub(super) lanes: Mutex<HashMap<(String, String), Arc<QueueLanes>>>,
}

pub struct PostgresStore {
    pub(super) shared: Arc<Shared>,
    connect: PgConnectOptions,
    acquire_timeout: Duration,
    pub(super) tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl PostgresStore {
    /// Connects to `uri`, creates or migrates the schema, and returns the store. Fails with
    /// `Unavailable` when the database cannot be reached within the acquire timeout.
    pub async fn open(
        uri: &str,
        cfg: &PostgresStoreConfig,
        clock: SharedClock,
    ) -> Result<Arc<PostgresStore>> {
        let schema = match cfg.schema.trim() {
            "" => None,
            s if valid_schema_name(s) => Some(s.to_string()),
            s => {
                return Err(Error::Unavailable(format!(
                    "[drivers:message_store:postgresql] schema = {s:?}: expected a lower-case \
                     identifier (a-z, 0-9, _; at most 63 characters, not starting with a digit \
                     or pg_)"
                )))
            }
        };
        let mut connect: PgConnectOptions = uri.trim().parse().map_err(|e| {
            Error::Unavailable(format!(
                "[drivers:message_store:postgresql] uri is not a valid PostgreSQL URI: {e}"
            ))
        })?;
        let mut session: Vec<(&str, String)> = Vec::new();
        if let Some(s) = &schema {
            session.push(("search_path", s.clone()));
        }
        if cfg.statement_timeout_secs > 0 {
            session.push((
                "statement_timeout",
                format!("{}s", cfg.statement_timeout_secs),
            ));
        }
        if !session.is_empty() {
            connect = connect.options(session);
        }
        if connect.get_application_name().is_none() {
            connect = connect.application_name("zaqar");
        }
        let acquire_timeout = Duration::from_secs(cfg.acquire_timeout_secs.max(1));
        let pool = PgPoolOptions::new()
            .max_connections(cfg.max_connections.max(1))
            .min_connections(0)
            .acquire_timeout(acquire_timeout)
            // A connection broken while idle fails one operation (503) and is then dropped;
            // testing each one before use would cost a round trip per operation.
            .test_before_acquire(false)
            .connect_lazy_with(connect.clone());
        let effective = schema::migrate(pool.clone(), schema.clone(), clock.now())
            .await
            .map_err(|e| {
                Error::Unavailable(format!(
                    "cannot open the PostgreSQL message store: {}",
                    e.description()
                ))
            })?;
        check_durability(pool.clone()).await;
        let op_timeout = acquire_timeout
            + if cfg.statement_timeout_secs > 0 {
                Duration::from_secs(cfg.statement_timeout_secs + 5)
            } else {
                Duration::from_secs(300)
            };
        tracing::info!(schema = %effective, "PostgreSQL message store ready");
        Ok(Arc::new(PostgresStore {
            shared: Arc::new(Shared {
                pool,
                clock,
                schema: effective,
                node: uuid::Uuid::new_v4().simple().to_string(),
                op_timeout,
                publisher: Mutex::new(None),
                lanes: Mutex::new(HashMap::new()),
            }),
            connect,
            acquire_timeout,
            tasks: Mutex::new(Vec::new()),
        }))
    }

    /// The schema holding the store's tables.
    pub fn schema(&self) -> &str {
        &self.shared.schema
    }

    /// A pool of one connection for the notification tasks, with `extra` session settings.
    fn side_pool(&self, extra: &[(&str, &str)]) -> PgPool {
        PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .acquire_timeout(self.acquire_timeout)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_lazy_with(self.connect.clone().options(extra.iter().copied()))
    }
}

/// Ends `tx` at once, releasing its row locks before the caller learns of `e` (a dropped
/// transaction is rolled back only when its connection is next used or tested).
pub(super) async fn rollback<T>(tx: Transaction<'static, Postgres>, e: Error) -> Result<T> {
    if let Err(re) = tx.rollback().await {
        tracing::warn!(error = %re, "PostgreSQL rollback failed");
    }
    Err(e)
}

/// Warns when the server is configured so that acknowledged writes may be lost.
async fn check_durability(pool: PgPool) {
    let row = sqlx::query(
        "SELECT current_setting('fsync') AS fsync, current_setting('synchronous_commit') AS sc",
    )
    .fetch_one(&pool)
    .await;
    if let Ok(row) = row {
        let fsync: String = row.try_get("fsync").unwrap_or_default();
        let sc: String = row.try_get("sc").unwrap_or_default();
        if fsync == "off" || sc == "off" {
            tracing::warn!(
                fsync = %fsync,
                synchronous_commit = %sc,
                "PostgreSQL may lose acknowledged messages in a crash (fsync or \
                 synchronous_commit is off)"
            );
        }
    }
}

impl Shared {
    /// Runs one operation within the operation timeout.
    pub(super) async fn timed<T>(
        &self,
        op: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.op_timeout, op).await {
            Ok(r) => r,
            Err(_) => {
                tracing::warn!("PostgreSQL operation timed out");
                Err(Error::Unavailable(
                    "The message store (PostgreSQL) did not answer in time. Please try again in \
                     a few seconds."
                        .into(),
                ))
            }
        }
    }

    pub(super) fn now(&self) -> Millis {
        self.clock.now()
    }

    pub(super) fn publish(&self, project: &str, queue: &str) {
        if let Some(p) = self.publisher.lock().unwrap().as_ref() {
            p.push(project, queue);
        }
    }

    pub(super) async fn begin(&self) -> Result<Transaction<'static, Postgres>> {
        self.pool.begin().await.map_err(db_err)
    }
}

#[async_trait]
impl DataStore for PostgresStore {
    async fn ping(&self) -> Result<()> {
        let s = &self.shared;
        s.timed(async {
            sqlx::query("SELECT 1")
                .execute(&s.pool)
                .await
                .map(|_| ())
                .map_err(db_err)
        })
        .await
    }

    fn subscriptions(&self) -> Option<&dyn zaqar_core::store::SubscriptionStore> {
        Some(self)
    }

    fn attach_hub(&self, hub: Arc<Hub>) {
        let mut publisher = self.shared.publisher.lock().unwrap();
        if publisher.is_some() {
            return;
        }
        let channel = notify::channel_for(&self.shared.schema);
        let p = Arc::new(notify::Publisher::default());
        // Wake-ups need no durability: their commits do not wait for the WAL flush.
        let notify_pool = self.side_pool(&[("synchronous_commit", "off")]);
        let listen_pool = self.side_pool(&[]);
        let node = self.shared.node.clone();
        let mut tasks = self.tasks.lock().unwrap();
        tasks.push(tokio::spawn(p.clone().run(
            notify_pool,
            channel.clone(),
            node.clone(),
        )));
        tasks.push(tokio::spawn(notify::listen(
            listen_pool,
            channel,
            node,
            hub,
        )));
        *publisher = Some(p);
    }

    async fn shutdown(&self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
        self.shared.publisher.lock().unwrap().take();
        self.shared.pool.close().await;
    }
}
