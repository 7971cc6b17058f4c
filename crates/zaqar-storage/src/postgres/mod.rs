//! The PostgreSQL driver (`[drivers] message_store = postgresql`); see `docs/postgresql.md`.
//!
//! Several API nodes may share one database. Every trait method is one transaction (most are a
//! single statement, which PostgreSQL runs as its own transaction), so a crash or a lost
//! connection never leaves half an operation behind, and moves between queues (dead-lettering,
//! redrive) are atomic without an outbox.
//!
//! - Queues are rows of `queues`; a queue's `last_marker` is its message counter, bumped with
//!   `UPDATE ... RETURNING` (an upsert that also creates the queue) by the statement that inserts
//!   the batch: markers are consecutive per queue and a batch becomes visible all at once.
//! - Concurrent posts to one queue on one node are combined: the first poster starts a task that
//!   inserts whatever posts are waiting in one transaction (each post's messages stay
//!   contiguous), then the next group, so a hot queue commits many posts per WAL flush instead of
//!   serialising one flush per post on the counter's row lock.
//! - Claims pick messages with `FOR UPDATE SKIP LOCKED`: concurrent claimers, on any node, never
//!   wait for each other and never take the same message.
//! - Time is the driver's [`Clock`](zaqar_core::clock::Clock), passed as a bind: no `now()` in SQL.
//! - Expired messages and claims are filtered by every statement (`expires > now`) and removed
//!   by a background sweep in bounded batches.

mod notify;
mod schema;
mod sql;
mod subs;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::value::RawValue;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgPool, Postgres, Row, Transaction};
use tokio::sync::oneshot;

use zaqar_core::clock::{secs, Millis, SharedClock};
use zaqar_core::error::{Error, Result};
use zaqar_core::hub::Hub;
use zaqar_core::model::{
    Claim, ClaimParams, DeadLetter, ListQuery, Message, MessageClaim, MessageStamp, Metadata,
    NewMessage, QueueFilter, QueueInfo, QueueRef, QueueStats, RedriveOutcome,
};
use zaqar_core::store::{
    check_bulk_delete_claim, decide_single_delete, is_valid_claim_id, ClaimStore, DataStore,
    DeleteTarget, MessageId, MessageStore, QueueStore,
};

pub use schema::valid_schema_name;

/// Creates `schema` if given and applies every migration there (used by the management store).
pub(crate) async fn migrate_schema(
    pool: PgPool,
    schema: Option<String>,
    now: Millis,
) -> Result<String> {
    schema::migrate(pool, schema, now).await
}
use sql::*;

/// Settings of the PostgreSQL store (`[drivers:message_store:postgresql]`; the URI is
/// `[drivers:message_store:postgresql] uri`).
#[derive(Debug, Clone)]
pub struct PostgresStoreConfig {
    /// Schema of the tables; empty: the connection's search_path.
    pub schema: String,
    pub max_connections: u32,
    pub acquire_timeout_secs: u64,
    /// 0: no limit.
    pub statement_timeout_secs: u64,
    pub gc_interval_secs: u64,
}

/// Most expired rows removed by one sweep statement.
const GC_BATCH: i64 = 5_000;
/// Most sweep statements per table per sweep (bounds one sweep's work).
const GC_ROUNDS: usize = 20;
/// Most messages, and body bytes, combined into one post transaction.
const POST_BATCH_MESSAGES: usize = 1_000;
const POST_BATCH_BYTES: usize = 8 << 20;
/// Most single-message deletes tried by one statement.
const DELETE_BATCH: usize = 1_000;
/// Queue page size used while filtering queues by metadata.
const LIST_PAGE: i64 = 200;

// ----- errors -----------------------------------------------------------------------------

const UNREACHABLE: &str = "The message store (PostgreSQL) is unreachable or overloaded: no \
    database connection could be obtained in time. Please try again in a few seconds.";
const CONNECTION_LOST: &str =
    "The connection to the message store (PostgreSQL) was lost. Please try again in a few seconds.";
const FAILED: &str =
    "The storage backend failed to complete the operation. Please try again in a few seconds.";

/// Maps a database failure to the service's error: 503 with a description that names the
/// kind of failure but never the server's address, credentials or the data involved.
/// Whether PostgreSQL rolled the transaction back for a conflict with a concurrent one
/// (serialization failure or deadlock); trying again may succeed.
pub(crate) fn is_conflict(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d)
        if matches!(d.code().as_deref(), Some("40001") | Some("40P01")))
}

pub(crate) fn db_err(e: sqlx::Error) -> Error {
    use sqlx::Error as E;
    match &e {
        E::PoolTimedOut => {
            tracing::warn!("PostgreSQL: no connection available within the acquire timeout");
            Error::Unavailable(UNREACHABLE.into())
        }
        E::PoolClosed => Error::Unavailable("The storage backend is shutting down.".into()),
        E::Io(_) | E::Tls(_) | E::Protocol(_) | E::WorkerCrashed => {
            tracing::warn!(error = %e, "PostgreSQL connection failure");
            Error::Unavailable(CONNECTION_LOST.into())
        }
        E::Database(d) => {
            let code = d.code().map(|c| c.to_string()).unwrap_or_default();
            match code.as_str() {
                // A text value with a NUL character: PostgreSQL cannot store it.
                "22021" => Error::invalid(
                    "A name or value contains a NUL character, which the message store cannot \
                     hold.",
                ),
                "40001" | "40P01" => {
                    tracing::warn!(error = %e, "PostgreSQL transaction conflict");
                    Error::Unavailable(
                        "The operation conflicted with a concurrent one. Please try again.".into(),
                    )
                }
                "57014" => {
                    tracing::warn!(error = %e, "PostgreSQL statement timeout");
                    Error::Unavailable(
                        "The message store (PostgreSQL) did not complete the operation in time. \
                         Please try again in a few seconds."
                            .into(),
                    )
                }
                c if c.starts_with("08") || c.starts_with("57P") || c == "53300" => {
                    tracing::warn!(error = %e, "PostgreSQL unavailable");
                    Error::Unavailable(CONNECTION_LOST.into())
                }
                _ => {
                    tracing::error!(error = %e, "PostgreSQL error");
                    Error::Unavailable(FAILED.into())
                }
            }
        }
        _ => {
            tracing::error!(error = %e, "PostgreSQL driver error");
            Error::Unavailable(FAILED.into())
        }
    }
}

fn corrupt(what: impl std::fmt::Display) -> Error {
    tracing::error!(error = %what, "unreadable row in the PostgreSQL message store");
    Error::Unavailable(FAILED.into())
}

// ----- ids and rows -----------------------------------------------------------------------

/// The id of a row's (marker, suffix) key (see [`MessageId`]; the columns are signed).
fn message_id(marker: i64, suffix: i64) -> String {
    MessageId::new(marker as u64, suffix as u64).text()
}

/// The (marker, suffix) key of an id, as the signed columns hold it.
fn parse_message_id(id: &str) -> Option<(i64, i64)> {
    MessageId::parse(id).map(|i| (i.marker as i64, i.suffix as i64))
}

/// The distinct (marker, suffix) pairs of well-formed ids, in first-seen order, with the id as
/// given (for error messages).
fn parse_ids(ids: &[String]) -> Vec<(i64, i64, &str)> {
    let mut seen = HashSet::new();
    ids.iter()
        .filter_map(|id| parse_message_id(id).map(|(m, s)| (m, s, id.as_str())))
        .filter(|(m, s, _)| seen.insert((*m, *s)))
        .collect()
}

fn get<'r, T>(row: &'r PgRow, col: &str) -> Result<T>
where
    T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
{
    row.try_get(col).map_err(corrupt)
}

/// A message from a row holding the columns of `messages` (`m.*`).
fn message_from(row: &PgRow) -> Result<Message> {
    let marker: i64 = get(row, "marker")?;
    let suffix: i64 = get(row, "suffix")?;
    let body: String = get(row, "body")?;
    let claim_id: Option<String> = get(row, "claim_id")?;
    let claim_expires: i64 = get(row, "claim_expires")?;
    let claim_count: i32 = get(row, "claim_count")?;
    Ok(Message {
        id: message_id(marker, suffix),
        marker: marker as u64,
        body: RawValue::from_string(body).map_err(corrupt)?,
        ttl: get(row, "ttl")?,
        created: get(row, "created")?,
        expires: get(row, "expires")?,
        client_id: get(row, "client_id")?,
        claim: claim_id.map(|id| MessageClaim {
            id,
            expires: claim_expires,
        }),
        claim_count: claim_count.max(0) as u32,
        delay_expires: get(row, "delay_expires")?,
        checksum: get(row, "checksum")?,
        encrypted: get(row, "encrypted")?,
        moved_from: get(row, "moved_from")?,
    })
}

fn messages_from(rows: &[PgRow]) -> Result<Vec<Message>> {
    rows.iter().map(message_from).collect()
}

fn queue_from(row: &PgRow) -> Result<QueueInfo> {
    let metadata: String = get(row, "metadata")?;
    let version: i64 = get(row, "version")?;
    Ok(QueueInfo {
        name: get(row, "name")?,
        metadata: serde_json::from_str::<Metadata>(&metadata).map_err(corrupt)?,
        version: version as u64,
        created: get(row, "created")?,
    })
}

// ----- the store --------------------------------------------------------------------------

/// A post waiting to be combined with others into one transaction.
struct PendingPost {
    client_id: String,
    messages: Vec<NewMessage>,
    done: oneshot::Sender<Result<Vec<String>>>,
}

/// A single-message delete waiting to be tried, with others, by one conditional statement
/// (`SQL_DELETE_BATCH`); `done` tells whether it deleted the message.
struct PendingDelete {
    marker: i64,
    suffix: i64,
    claim_id: Option<String>,
    done: oneshot::Sender<Result<bool>>,
}

/// Operations of one kind waiting on this node for one queue, and whether a task is applying
/// them.
struct Lane<T> {
    pending: Mutex<VecDeque<T>>,
    running: AtomicBool,
}

impl<T> Default for Lane<T> {
    fn default() -> Self {
        Lane {
            pending: Mutex::new(VecDeque::new()),
            running: AtomicBool::new(false),
        }
    }
}

impl<T> Lane<T> {
    /// Queues `item`; returns true when the caller must start the task that applies the lane.
    fn push(&self, item: T) -> bool {
        self.pending.lock().unwrap().push_back(item);
        !self.running.swap(true, Ordering::SeqCst)
    }

    /// The next group to apply, as `take` picks it from the front, or `None` when the lane is
    /// empty and its task must end.
    fn next(&self, take: impl Fn(&mut VecDeque<T>) -> Vec<T>) -> Option<Vec<T>> {
        loop {
            let group = take(&mut self.pending.lock().unwrap());
            if !group.is_empty() {
                return Some(group);
            }
            self.running.store(false, Ordering::SeqCst);
            // An item queued after the look above and before the store must not be stranded.
            if self.pending.lock().unwrap().is_empty() || self.running.swap(true, Ordering::SeqCst)
            {
                return None;
            }
        }
    }
}

/// The combining lanes of one queue.
#[derive(Default)]
struct QueueLanes {
    posts: Lane<PendingPost>,
    deletes: Lane<PendingDelete>,
}

fn shutting_down() -> Error {
    Error::Unavailable("The storage backend is shutting down.".into())
}

/// State shared by the store and its tasks.
struct Shared {
    pool: PgPool,
    clock: SharedClock,
    /// Effective schema (also names the notification channel).
    schema: String,
    /// This store's id in notifications (its own are ignored).
    node: String,
    /// Bounds one operation, connection acquisition included (a dead server that does not
    /// reset the connection must not hang requests).
    op_timeout: Duration,
    publisher: Mutex<Option<Arc<notify::Publisher>>>,
    lanes: Mutex<HashMap<(String, String), Arc<QueueLanes>>>,
}

pub struct PostgresStore {
    shared: Arc<Shared>,
    connect: PgConnectOptions,
    acquire_timeout: Duration,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
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
async fn rollback<T>(tx: Transaction<'static, Postgres>, e: Error) -> Result<T> {
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
    async fn timed<T>(&self, op: impl std::future::Future<Output = Result<T>>) -> Result<T> {
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

    fn now(&self) -> Millis {
        self.clock.now()
    }

    fn publish(&self, project: &str, queue: &str) {
        if let Some(p) = self.publisher.lock().unwrap().as_ref() {
            p.push(project, queue);
        }
    }

    async fn begin(&self) -> Result<Transaction<'static, Postgres>> {
        self.pool.begin().await.map_err(db_err)
    }

    // ----- queues -------------------------------------------------------------------------

    async fn create_queue(&self, q: QueueRef<'_>, metadata: &Metadata) -> Result<bool> {
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

    async fn get_queue(&self, q: QueueRef<'_>) -> Result<Option<QueueInfo>> {
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

    async fn replace_queue_metadata(
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

    async fn delete_queue(&self, q: QueueRef<'_>) -> Result<()> {
        // Messages and claims go with the queue (ON DELETE CASCADE), in this transaction.
        sqlx::query("DELETE FROM queues WHERE project = $1 AND name = $2")
            .bind(q.project)
            .bind(q.name)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn list_queues(
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

    async fn count_queues(&self, project: &str) -> Result<u64> {
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
    async fn project_bytes(&self, project: &str) -> Result<u64> {
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

    // ----- messages -----------------------------------------------------------------------

    fn lanes(&self, q: QueueRef<'_>) -> Arc<QueueLanes> {
        let mut map = self.lanes.lock().unwrap();
        let key = (q.project.to_string(), q.name.to_string());
        if let Some(g) = map.get(&key) {
            return g.clone();
        }
        // Forget idle queues (held by nobody else) before the map grows.
        if map.len() >= 1024 && map.len().is_power_of_two() {
            map.retain(|_, g| Arc::strong_count(g) > 1);
        }
        let g = Arc::new(QueueLanes::default());
        map.insert(key, g.clone());
        g
    }

    /// Inserts the posts waiting for a queue, group after group, until none is left.
    async fn drain_posts(self: Arc<Self>, lanes: Arc<QueueLanes>, project: String, name: String) {
        let take = |pending: &mut VecDeque<PendingPost>| {
            let (mut count, mut bytes, mut group) = (0, 0, Vec::new());
            while let Some(p) = pending.front() {
                let n = p.messages.len();
                let b: usize = p.messages.iter().map(|m| m.body.get().len()).sum();
                if !group.is_empty()
                    && (count + n > POST_BATCH_MESSAGES || bytes + b > POST_BATCH_BYTES)
                {
                    break;
                }
                count += n;
                bytes += b;
                group.extend(pending.pop_front());
            }
            group
        };
        while let Some(batch) = lanes.posts.next(take) {
            let q = QueueRef::new(&project, &name);
            let started = std::time::Instant::now();
            let inserted = self.timed(self.insert_posts(q, &batch)).await;
            tracing::trace!(
                posts = batch.len(),
                ms = started.elapsed().as_secs_f64() * 1000.0,
                "combined post transaction"
            );
            match inserted {
                Ok(mut ids) => {
                    self.publish(&project, &name);
                    for p in batch.into_iter().rev() {
                        let mine = ids.split_off(ids.len() - p.messages.len());
                        let _ = p.done.send(Ok(mine));
                    }
                }
                Err(e) => {
                    for p in batch {
                        let _ = p.done.send(Err(e.clone()));
                    }
                }
            }
        }
    }

    /// Tries the single deletes waiting for a queue, group after group, until none is left.
    async fn drain_deletes(self: Arc<Self>, lanes: Arc<QueueLanes>, project: String, name: String) {
        let take = |pending: &mut VecDeque<PendingDelete>| {
            let n = pending.len().min(DELETE_BATCH);
            pending.drain(..n).collect::<Vec<_>>()
        };
        while let Some(mut batch) = lanes.deletes.next(take) {
            // Rows are locked in marker order, like every other statement.
            batch.sort_unstable_by_key(|d| (d.marker, d.suffix));
            let q = QueueRef::new(&project, &name);
            match self.timed(self.delete_batch(q, &batch)).await {
                Ok(deleted) => {
                    for d in batch {
                        let _ = d.done.send(Ok(deleted.contains(&d.marker)));
                    }
                }
                Err(e) => {
                    for d in batch {
                        let _ = d.done.send(Err(e.clone()));
                    }
                }
            }
        }
    }

    /// One statement deleting each message of `batch` if `decide_single_delete` would allow it
    /// without a question (see `SQL_DELETE_BATCH`). Returns the markers deleted.
    async fn delete_batch(&self, q: QueueRef<'_>, batch: &[PendingDelete]) -> Result<HashSet<i64>> {
        let markers: Vec<i64> = batch.iter().map(|d| d.marker).collect();
        let suffixes: Vec<i64> = batch.iter().map(|d| d.suffix).collect();
        let claims: Vec<Option<&str>> = batch.iter().map(|d| d.claim_id.as_deref()).collect();
        let rows = sqlx::query(SQL_DELETE_BATCH)
            .bind(q.project)
            .bind(q.name)
            .bind(&markers)
            .bind(&suffixes)
            .bind(&claims)
            .bind(self.now())
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(|r| get::<i64>(r, "marker")).collect()
    }

    /// One transaction appending every post of `batch` in order. Returns all ids in order.
    async fn insert_posts(&self, q: QueueRef<'_>, batch: &[PendingPost]) -> Result<Vec<String>> {
        let total: usize = batch.iter().map(|p| p.messages.len()).sum();
        let mut suffixes = Vec::with_capacity(total);
        let mut ttls = Vec::with_capacity(total);
        let mut delays = Vec::with_capacity(total);
        let mut clients: Vec<&str> = Vec::with_capacity(total);
        let mut checksums: Vec<Option<&str>> = Vec::with_capacity(total);
        let mut encrypted = Vec::with_capacity(total);
        let mut bodies: Vec<&str> = Vec::with_capacity(total);
        // Which post of the group each message belongs to: one notification batch per post.
        let mut posts: Vec<i32> = Vec::with_capacity(total);
        for (i, p) in batch.iter().enumerate() {
            for m in &p.messages {
                posts.push(i as i32);
                suffixes.push(rand::random::<i64>());
                ttls.push(m.ttl);
                delays.push(m.delay);
                clients.push(p.client_id.as_str());
                checksums.push(m.checksum.as_deref());
                encrypted.push(m.encrypted);
                bodies.push(m.body.get());
            }
        }
        let rows = sqlx::query(SQL_POST)
            .bind(q.project)
            .bind(q.name)
            .bind(self.now())
            .bind(total as i64)
            .bind(&suffixes)
            .bind(&ttls)
            .bind(&delays)
            .bind(&clients)
            .bind(&checksums)
            .bind(&encrypted)
            .bind(&bodies)
            .bind(&posts)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        let mut pairs = rows
            .iter()
            .map(|r| Ok((get::<i64>(r, "marker")?, get::<i64>(r, "suffix")?)))
            .collect::<Result<Vec<_>>>()?;
        if pairs.len() != total {
            return Err(corrupt("post inserted an unexpected number of rows"));
        }
        pairs.sort_unstable();
        Ok(pairs.into_iter().map(|(m, s)| message_id(m, s)).collect())
    }

    async fn post_messages(
        self: &Arc<Self>,
        q: QueueRef<'_>,
        client_id: &str,
        messages: Vec<NewMessage>,
    ) -> Result<Vec<String>> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        // Posts are combined per queue: a value the database would refuse must fail this post
        // alone, not the others of its group.
        if client_id.contains('\0') {
            return Err(Error::invalid(
                "The Client-ID contains a NUL character, which the message store cannot hold.",
            ));
        }
        let lanes = self.lanes(q);
        let (done, result) = oneshot::channel();
        let start = lanes.posts.push(PendingPost {
            client_id: client_id.to_string(),
            messages,
            done,
        });
        if start {
            // The insert runs in its own task so a caller that goes away does not cancel the
            // posts combined with its own.
            let (p, n) = (q.project.to_string(), q.name.to_string());
            tokio::spawn(self.clone().drain_posts(lanes, p, n));
        }
        result.await.unwrap_or_else(|_| Err(shutting_down()))
    }

    async fn list_messages(&self, q: QueueRef<'_>, query: &ListQuery) -> Result<Vec<Message>> {
        let after = match query.marker {
            None => 0,
            Some(m) if m > i64::MAX as u64 => return Ok(Vec::new()),
            Some(m) => m as i64,
        };
        if query.limit == 0 {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(SQL_LIST)
            .bind(q.project)
            .bind(q.name)
            .bind(after)
            .bind(self.now())
            .bind(query.include_claimed)
            .bind(query.include_delayed)
            .bind(query.exclude_client.as_deref())
            .bind(query.limit.min(i64::MAX as usize) as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        messages_from(&rows)
    }

    async fn get_messages(&self, q: QueueRef<'_>, ids: &[String]) -> Result<Vec<Message>> {
        let keys = parse_ids(ids);
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let markers: Vec<i64> = keys.iter().map(|k| k.0).collect();
        let suffixes: Vec<i64> = keys.iter().map(|k| k.1).collect();
        let rows = sqlx::query(SQL_GET)
            .bind(q.project)
            .bind(q.name)
            .bind(&markers)
            .bind(&suffixes)
            .bind(self.now())
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        let mut found = messages_from(&rows)?;
        // In the order the ids were asked for.
        let order: HashMap<i64, usize> = markers.iter().enumerate().map(|(i, m)| (*m, i)).collect();
        found.sort_by_key(|m| order.get(&(m.marker as i64)).copied().unwrap_or(usize::MAX));
        Ok(found)
    }

    async fn delete_messages(
        &self,
        q: QueueRef<'_>,
        ids: &[String],
        claim_ids: Option<&[String]>,
    ) -> Result<()> {
        let mut keys = parse_ids(ids);
        if keys.is_empty() {
            return Ok(());
        }
        // Rows are locked in marker order, as every other statement does, so concurrent
        // deletes of overlapping sets cannot deadlock.
        keys.sort_unstable_by_key(|k| (k.0, k.1));
        let markers: Vec<i64> = keys.iter().map(|k| k.0).collect();
        let suffixes: Vec<i64> = keys.iter().map(|k| k.1).collect();
        let Some(claim_ids) = claim_ids else {
            sqlx::query(SQL_DELETE_IDS)
                .bind(q.project)
                .bind(q.name)
                .bind(&markers)
                .bind(&suffixes)
                .execute(&self.pool)
                .await
                .map_err(db_err)?;
            return Ok(());
        };
        let now = self.now();
        let mut tx = self.begin().await?;
        let rows = sqlx::query(SQL_LOCK_IDS)
            .bind(q.project)
            .bind(q.name)
            .bind(&markers)
            .bind(&suffixes)
            .bind(now)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
        let mut queue_id = None;
        let mut held = HashMap::new();
        for row in &rows {
            queue_id = Some(get::<i64>(row, "queue_id")?);
            let claim_id: Option<String> = get(row, "claim_id")?;
            let claim_expires: i64 = get(row, "claim_expires")?;
            let active = claim_id.filter(|_| claim_expires > now);
            held.insert(get::<i64>(row, "marker")?, active);
        }
        // Every targeted message that exists must be held by one of the claims.
        let allowed = keys
            .iter()
            .try_for_each(|(marker, _, id)| match held.get(marker) {
                Some(active) => check_bulk_delete_claim(id, active.as_deref(), claim_ids),
                None => Ok(()),
            });
        if let Err(e) = allowed {
            return rollback(tx, e).await;
        }
        if let Some(queue_id) = queue_id {
            let targets: Vec<i64> = held.keys().copied().collect();
            sqlx::query(SQL_DELETE_MARKERS)
                .bind(queue_id)
                .bind(&targets)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    async fn pop_messages(&self, q: QueueRef<'_>, limit: usize) -> Result<Vec<Message>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(SQL_POP)
            .bind(q.project)
            .bind(q.name)
            .bind(self.now())
            .bind(limit.min(i64::MAX as usize) as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        let mut out = messages_from(&rows)?;
        out.sort_by_key(|m| m.marker);
        Ok(out)
    }

    async fn delete_message(
        self: &Arc<Self>,
        q: QueueRef<'_>,
        id: &str,
        claim_id: Option<&str>,
    ) -> Result<()> {
        let Some((marker, suffix)) = parse_message_id(id) else {
            return Ok(());
        };
        // The common outcomes, combined with the other deletes of this queue waiting on this
        // node into one statement (see SQL_DELETE_BATCH); the rest is decided below.
        if claim_id.is_none_or(is_valid_claim_id) {
            let lanes = self.lanes(q);
            let (done, result) = oneshot::channel();
            let start = lanes.deletes.push(PendingDelete {
                marker,
                suffix,
                claim_id: claim_id.map(str::to_string),
                done,
            });
            if start {
                let (p, n) = (q.project.to_string(), q.name.to_string());
                tokio::spawn(self.clone().drain_deletes(lanes, p, n));
            }
            if result.await.unwrap_or_else(|_| Err(shutting_down()))? {
                return Ok(());
            }
        }
        let now = self.now();
        let mut tx = self.begin().await?;
        let row = sqlx::query(SQL_DELETE_ONE_CHECK)
            .bind(q.project)
            .bind(q.name)
            .bind(marker)
            .bind(suffix)
            .bind(now)
            .bind(claim_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
        let (queue_id, active, live) = match &row {
            Some(r) => {
                let cid: Option<String> = get(r, "claim_id")?;
                let expires: i64 = get(r, "claim_expires")?;
                (
                    Some(get::<i64>(r, "queue_id")?),
                    cid.filter(|_| expires > now),
                    get::<bool>(r, "claim_live")?,
                )
            }
            None => (None, None, false),
        };
        let target = row.as_ref().map(|_| DeleteTarget {
            active_claim: active.as_deref(),
        });
        let delete = match decide_single_delete(target, claim_id, |_| Ok(live)) {
            Ok(d) => d,
            Err(e) => return rollback(tx, e).await,
        };
        if delete {
            if let Some(queue_id) = queue_id {
                sqlx::query(SQL_DELETE_MARKERS)
                    .bind(queue_id)
                    .bind(vec![marker])
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
            }
        }
        tx.commit().await.map_err(db_err)
    }

    async fn queue_stats(&self, q: QueueRef<'_>) -> Result<QueueStats> {
        let row = sqlx::query(SQL_STATS)
            .bind(q.project)
            .bind(q.name)
            .bind(self.now())
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        let total: i64 = get(&row, "total")?;
        let claimed: i64 = get(&row, "claimed")?;
        let delayed: i64 = get(&row, "delayed")?;
        let stamp = |p: &str| -> Result<Option<MessageStamp>> {
            let marker: Option<i64> = get(&row, &format!("{p}_marker"))?;
            let suffix: Option<i64> = get(&row, &format!("{p}_suffix"))?;
            let created: Option<i64> = get(&row, &format!("{p}_created"))?;
            Ok(match (marker, suffix, created) {
                (Some(m), Some(s), Some(c)) => Some(MessageStamp {
                    id: message_id(m, s),
                    created: c,
                }),
                _ => None,
            })
        };
        Ok(QueueStats {
            total: total as u64,
            claimed: claimed as u64,
            delayed: delayed as u64,
            oldest: stamp("o")?,
            newest: stamp("n")?,
        })
    }

    async fn purge_messages(&self, q: QueueRef<'_>) -> Result<()> {
        sqlx::query(SQL_PURGE)
            .bind(q.project)
            .bind(q.name)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    /// Moves messages `markers` of queue `queue_id` to `target` inside `tx` (see [`SQL_MOVE`]).
    #[allow(clippy::too_many_arguments)]
    async fn move_in(
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

    async fn redrive_messages(
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

    // ----- claims -------------------------------------------------------------------------

    async fn create_claim(&self, q: QueueRef<'_>, params: &ClaimParams) -> Result<Option<Claim>> {
        let now = self.now();
        let cid = uuid::Uuid::new_v4().simple().to_string();
        let expires = now + secs(params.ttl);
        let limit = params.limit.min(i64::MAX as usize) as i64;
        if limit == 0 {
            return Ok(None);
        }
        let messages = match &params.dead_letter {
            None => {
                let rows = sqlx::query(SQL_CLAIM)
                    .bind(q.project)
                    .bind(q.name)
                    .bind(now)
                    .bind(limit)
                    .bind(&cid)
                    .bind(expires)
                    .bind(params.ttl)
                    .bind(params.grace)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                messages_from(&rows)?
            }
            Some(dl) => {
                self.claim_with_dead_letter(q, params, dl, &cid, now, expires, limit)
                    .await?
            }
        };
        if messages.is_empty() {
            return Ok(None);
        }
        Ok(Some(Claim {
            id: cid,
            ttl: params.ttl,
            updated: now,
            expires,
            messages,
        }))
    }

    /// A claim of a queue with dead-lettering (spec §1.7): in one transaction, the selected
    /// messages already claimed `max_claim_count` times move to the dead-letter queue and the
    /// others are claimed.
    #[allow(clippy::too_many_arguments)]
    async fn claim_with_dead_letter(
        &self,
        q: QueueRef<'_>,
        params: &ClaimParams,
        dl: &DeadLetter,
        cid: &str,
        now: Millis,
        expires: Millis,
        limit: i64,
    ) -> Result<Vec<Message>> {
        let mut tx = self.begin().await?;
        let rows = sqlx::query(SQL_PICK)
            .bind(q.project)
            .bind(q.name)
            .bind(now)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
        let Some(first) = rows.first() else {
            tx.commit().await.map_err(db_err)?;
            return Ok(Vec::new());
        };
        let queue_id: i64 = get(first, "queue_id")?;
        let (mut exhausted, mut keep) = (Vec::new(), Vec::new());
        for row in &rows {
            let marker: i64 = get(row, "marker")?;
            let count: i32 = get(row, "claim_count")?;
            if count.max(0) as u32 >= dl.max_claim_count {
                exhausted.push(marker);
            } else {
                keep.push(marker);
            }
        }
        if !exhausted.is_empty() {
            self.move_in(
                &mut tx,
                q.project,
                queue_id,
                &exhausted,
                &dl.queue,
                Some(q.name),
                dl.ttl,
                now,
            )
            .await?;
        }
        let mut messages = Vec::new();
        if !keep.is_empty() {
            let rows = sqlx::query(SQL_CLAIM_MARKERS)
                .bind(q.project)
                .bind(q.name)
                .bind(now)
                .bind(&keep)
                .bind(cid)
                .bind(expires)
                .bind(params.ttl)
                .bind(params.grace)
                .fetch_all(&mut *tx)
                .await
                .map_err(db_err)?;
            messages = messages_from(&rows)?;
        }
        tx.commit().await.map_err(db_err)?;
        if !exhausted.is_empty() {
            self.publish(q.project, &dl.queue);
        }
        Ok(messages)
    }

    async fn get_claim(&self, q: QueueRef<'_>, claim_id: &str) -> Result<Option<Claim>> {
        let rows = sqlx::query(SQL_GET_CLAIM)
            .bind(q.project)
            .bind(q.name)
            .bind(claim_id)
            .bind(self.now())
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let mut messages = Vec::with_capacity(rows.len());
        for row in &rows {
            if get::<Option<i64>>(row, "marker")?.is_some() {
                messages.push(message_from(row)?);
            }
        }
        Ok(Some(Claim {
            id: claim_id.to_string(),
            ttl: get(first, "c_ttl")?,
            updated: get(first, "c_updated")?,
            expires: get(first, "c_expires")?,
            messages,
        }))
    }

    async fn renew_claim(
        &self,
        q: QueueRef<'_>,
        claim_id: &str,
        ttl: i64,
        grace: i64,
    ) -> Result<bool> {
        let now = self.now();
        let renewed: i64 = sqlx::query(SQL_RENEW)
            .bind(q.project)
            .bind(q.name)
            .bind(claim_id)
            .bind(ttl)
            .bind(now)
            .bind(now + secs(ttl))
            .bind(grace)
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?
            .try_get("renewed")
            .map_err(db_err)?;
        Ok(renewed > 0)
    }

    async fn release_claim(&self, q: QueueRef<'_>, claim_id: &str) -> Result<()> {
        let released = sqlx::query(SQL_RELEASE)
            .bind(q.project)
            .bind(q.name)
            .bind(claim_id)
            .bind(self.now())
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        if released.rows_affected() > 0 {
            self.publish(q.project, q.name);
        }
        Ok(())
    }

    // ----- sweep --------------------------------------------------------------------------

    async fn collect_garbage(&self) -> Result<u64> {
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

// ----- the traits -------------------------------------------------------------------------

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

#[async_trait]
impl MessageStore for PostgresStore {
    async fn post_messages(
        &self,
        q: QueueRef<'_>,
        client_id: &str,
        messages: Vec<NewMessage>,
    ) -> Result<Vec<String>> {
        // Bounded by the insert task's own timeout.
        self.shared.post_messages(q, client_id, messages).await
    }

    async fn list_messages(&self, q: QueueRef<'_>, query: &ListQuery) -> Result<Vec<Message>> {
        let s = &self.shared;
        s.timed(s.list_messages(q, query)).await
    }

    async fn get_messages(&self, q: QueueRef<'_>, ids: &[String]) -> Result<Vec<Message>> {
        let s = &self.shared;
        s.timed(s.get_messages(q, ids)).await
    }

    async fn delete_messages(
        &self,
        q: QueueRef<'_>,
        ids: &[String],
        claim_ids: Option<&[String]>,
    ) -> Result<()> {
        let s = &self.shared;
        s.timed(s.delete_messages(q, ids, claim_ids)).await
    }

    async fn pop_messages(&self, q: QueueRef<'_>, limit: usize) -> Result<Vec<Message>> {
        let s = &self.shared;
        s.timed(s.pop_messages(q, limit)).await
    }

    async fn delete_message(
        &self,
        q: QueueRef<'_>,
        id: &str,
        claim_id: Option<&str>,
    ) -> Result<()> {
        let s = &self.shared;
        s.timed(s.delete_message(q, id, claim_id)).await
    }

    async fn queue_stats(&self, q: QueueRef<'_>) -> Result<QueueStats> {
        let s = &self.shared;
        s.timed(s.queue_stats(q)).await
    }

    async fn purge_messages(&self, q: QueueRef<'_>) -> Result<()> {
        let s = &self.shared;
        s.timed(s.purge_messages(q)).await
    }

    async fn redrive_messages(
        &self,
        q: QueueRef<'_>,
        target: Option<&str>,
        limit: Option<usize>,
    ) -> Result<RedriveOutcome> {
        let s = &self.shared;
        s.timed(s.redrive_messages(q, target, limit)).await
    }
}

#[async_trait]
impl ClaimStore for PostgresStore {
    async fn create_claim(&self, q: QueueRef<'_>, params: ClaimParams) -> Result<Option<Claim>> {
        let s = &self.shared;
        s.timed(s.create_claim(q, &params)).await
    }

    async fn get_claim(&self, q: QueueRef<'_>, claim_id: &str) -> Result<Option<Claim>> {
        let s = &self.shared;
        s.timed(s.get_claim(q, claim_id)).await
    }

    async fn renew_claim(
        &self,
        q: QueueRef<'_>,
        claim_id: &str,
        ttl: i64,
        grace: i64,
    ) -> Result<bool> {
        let s = &self.shared;
        s.timed(s.renew_claim(q, claim_id, ttl, grace)).await
    }

    async fn release_claim(&self, q: QueueRef<'_>, claim_id: &str) -> Result<()> {
        let s = &self.shared;
        s.timed(s.release_claim(q, claim_id)).await
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        let id = message_id(42, -1);
        assert_eq!(id, "000000000000002affffffffffffffff");
        assert_eq!(parse_message_id(&id), Some((42, -1)));
        assert_eq!(
            parse_message_id(&id.to_uppercase()),
            Some((42, -1)),
            "hex digits of either case"
        );
    }

    #[test]
    fn parsed_ids_are_distinct_and_ordered() {
        let a = message_id(1, 7);
        let b = message_id(2, 9);
        let ids = vec![b.clone(), "bogus".into(), a.clone(), b.clone()];
        let keys = parse_ids(&ids);
        assert_eq!(keys, vec![(2, 9, b.as_str()), (1, 7, a.as_str())]);
    }
}
