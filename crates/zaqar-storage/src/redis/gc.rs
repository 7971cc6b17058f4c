//! The expired-data sweep of the Redis store: one node per round (the sweep lock) reclaims
//! expired messages and claims of every queue, finishes interrupted moves and tidies indexes.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use zaqar_core::error::Result;
use zaqar_core::model::QueueRef;

use super::RedisStore;

/// Done-markers older than this are dropped by the sweep (a drain that needs one has long
/// finished or had its lease taken over).
const DONE_MARKER_AGE_MS: i64 = 3_600_000;
/// Most expired entries one queue sweep removes (keeps a script short).
const SWEEP_BATCH: usize = 1000;

impl RedisStore {
    /// Starts the background sweep: every `interval`, one node (whichever takes the sweep lock)
    /// reclaims expired messages and claims of every queue and finishes interrupted moves.
    pub fn start_gc(self: &Arc<Self>, interval: Duration) {
        let store = Arc::downgrade(self);
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(store) = store.upgrade() else { return };
                if store.closed.load(Ordering::Acquire) {
                    return;
                }
                let mut lock = redis::cmd("SET");
                lock.arg(store.keys.sweep_lock())
                    .arg(&store.node)
                    .arg("NX")
                    .arg("PX")
                    .arg(interval.as_millis().max(1) as u64);
                match store.query::<Option<String>>(&lock).await {
                    Ok(Some(_)) => {
                        if let Err(e) = store.collect_garbage().await {
                            tracing::warn!(error = %e, "Redis expired-data sweep failed");
                        }
                    }
                    Ok(None) => {} // another node sweeps this round
                    Err(e) => tracing::warn!(error = %e, "Redis expired-data sweep skipped"),
                }
            }
        });
        self.tasks.lock().unwrap().push(task);
    }

    /// One sweep over every queue of every project: removes expired messages, expired claims
    /// and old done-markers, finishes pending moves, drops index entries of deleted queues.
    /// Returns how many entries were removed.
    pub async fn collect_garbage(&self) -> Result<usize> {
        let mut removed = 0;
        let mut cursor: u64 = 0;
        loop {
            let mut scan = redis::cmd("SSCAN");
            scan.arg(self.keys.projects())
                .arg(cursor)
                .arg("COUNT")
                .arg(100);
            let (next, projects): (u64, Vec<String>) = self.query(&scan).await?;
            for p in projects {
                removed += self.sweep_project(&p).await?;
            }
            if next == 0 {
                return Ok(removed + self.sweep_subscriptions().await?);
            }
            cursor = next;
        }
    }

    async fn sweep_project(&self, project: &str) -> Result<usize> {
        let idx = self.keys.project_index(project);
        let mut removed = 0;
        let mut after: Option<String> = None;
        loop {
            let names = self
                .queue_names_after(project, after.as_deref(), 100)
                .await?;
            for name in &names {
                let q = QueueRef::new(project, name);
                let mut inv = self.scripts.sweep.key(self.qkey(q));
                inv.arg(self.clock.now())
                    .arg(SWEEP_BATCH)
                    .arg(DONE_MARKER_AGE_MS);
                let (n, pending, exists): (usize, i64, i64) = self.eval(&inv).await?;
                removed += n;
                if pending > 0 {
                    self.drain_logged(q).await;
                }
                if exists == 0 {
                    // An index entry whose queue is gone (a deletion interrupted between its
                    // steps). Remove it, then put it back if the queue was re-created meanwhile.
                    let mut zrem = redis::cmd("ZREM");
                    zrem.arg(&idx).arg(name);
                    self.query::<i64>(&zrem).await?;
                    if self.queue_info(q).await?.is_some() {
                        self.index_queue(q).await?;
                    }
                }
            }
            match names.last() {
                Some(last) if names.len() == 100 => after = Some(last.clone()),
                _ => break,
            }
        }
        let mut card = redis::cmd("ZCARD");
        card.arg(&idx);
        if self.query::<i64>(&card).await? == 0 {
            let mut srem = redis::cmd("SREM");
            srem.arg(self.keys.projects()).arg(project);
            self.query::<i64>(&srem).await?;
            if self.query::<i64>(&card).await? > 0 {
                let mut sadd = redis::cmd("SADD");
                sadd.arg(self.keys.projects()).arg(project);
                self.query::<i64>(&sadd).await?;
            }
        }
        Ok(removed)
    }

    /// Number of message records physically stored for a queue, expired-but-uncollected
    /// included (for tests of the sweep).
    pub async fn stored_message_records(&self, q: QueueRef<'_>) -> Result<u64> {
        let mut card = redis::cmd("ZCARD");
        card.arg(self.qpart(q, "all"));
        self.query(&card).await
    }
}
