//! Combining lanes of the PostgreSQL store: concurrent posts, and single-message deletes, to one
//! queue on one node are applied together, a group per transaction or statement.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use zaqar_core::error::{Error, Result};
use zaqar_core::model::{NewMessage, QueueRef};

use super::errors::{corrupt, db_err};
use super::rows::{get, message_id};
use super::sql::{SQL_DELETE_BATCH, SQL_POST};
use super::store::Shared;

/// Most messages, and body bytes, combined into one post transaction.
const POST_BATCH_MESSAGES: usize = 1_000;
const POST_BATCH_BYTES: usize = 8 << 20;
/// Most single-message deletes tried by one statement.
const DELETE_BATCH: usize = 1_000;

/// A post waiting to be combined with others into one transaction.
pub(super) struct PendingPost {
    pub(super) client_id: String,
    pub(super) messages: Vec<NewMessage>,
    pub(super) done: oneshot::Sender<Result<Vec<String>>>,
}

/// A single-message delete waiting to be tried, with others, by one conditional statement
/// (`SQL_DELETE_BATCH`); `done` tells whether it deleted the message.
pub(super) struct PendingDelete {
    pub(super) marker: i64,
    pub(super) suffix: i64,
    pub(super) claim_id: Option<String>,
    pub(super) done: oneshot::Sender<Result<bool>>,
}

/// Operations of one kind waiting on this node for one queue, and whether a task is applying
/// them.
pub(super) struct Lane<T> {
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
    pub(super) fn push(&self, item: T) -> bool {
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
pub(super) struct QueueLanes {
    pub(super) posts: Lane<PendingPost>,
    pub(super) deletes: Lane<PendingDelete>,
}

pub(super) fn shutting_down() -> Error {
    Error::Unavailable("The storage backend is shutting down.".into())
}

impl Shared {
    pub(super) fn lanes(&self, q: QueueRef<'_>) -> Arc<QueueLanes> {
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
    pub(super) async fn drain_posts(
        self: Arc<Self>,
        lanes: Arc<QueueLanes>,
        project: String,
        name: String,
    ) {
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
    pub(super) async fn drain_deletes(
        self: Arc<Self>,
        lanes: Arc<QueueLanes>,
        project: String,
        name: String,
    ) {
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
    pub(super) async fn delete_batch(
        &self,
        q: QueueRef<'_>,
        batch: &[PendingDelete],
    ) -> Result<HashSet<i64>> {
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
    pub(super) async fn insert_posts(
        &self,
        q: QueueRef<'_>,
        batch: &[PendingPost],
    ) -> Result<Vec<String>> {
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
}
