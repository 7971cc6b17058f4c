//! Queues of the Redis store: the queue record, the per-project index of queue names, and the
//! queue trait (create, metadata, delete, list, counts, bytes).

use async_trait::async_trait;

use zaqar_core::error::{Error, Result};
use zaqar_core::model::{Metadata, QueueFilter, QueueInfo, QueueRef};
use zaqar_core::store::QueueStore;

use super::RedisStore;

impl RedisStore {
    /// Enters the queue in its project's index (and the project in the set of projects), then
    /// flags the queue as indexed. Runs after the queue record exists; a crash in between
    /// leaves the flag unset and the next write to the queue repeats this.
    pub(super) async fn index_queue(&self, q: QueueRef<'_>) -> Result<()> {
        let mut zadd = redis::cmd("ZADD");
        zadd.arg(self.keys.project_index(q.project))
            .arg(0)
            .arg(q.name);
        let mut sadd = redis::cmd("SADD");
        sadd.arg(self.keys.projects()).arg(q.project);
        let (a, b) = tokio::join!(self.query::<i64>(&zadd), self.query::<i64>(&sadd));
        a?;
        b?;
        let mut inv = self.scripts.mark_indexed.key(self.qkey(q));
        inv.arg(0);
        self.eval::<i64>(&inv).await?;
        Ok(())
    }

    pub(super) async fn index_queue_logged(&self, q: QueueRef<'_>) {
        if let Err(e) = self.index_queue(q).await {
            tracing::warn!(error = %e, "queue index update failed; the next write will retry it");
        }
    }

    pub(super) async fn queue_info(&self, q: QueueRef<'_>) -> Result<Option<QueueInfo>> {
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(self.qkey(q)).arg("c").arg("v").arg("md");
        let (c, v, md): (Option<i64>, Option<u64>, Option<String>) = self.query(&cmd).await?;
        let (Some(c), Some(v)) = (c, v) else {
            return Ok(None);
        };
        let metadata: Metadata = serde_json::from_str(md.as_deref().unwrap_or("{}"))
            .map_err(|e| Error::Internal(format!("corrupt queue metadata: {e}")))?;
        Ok(Some(QueueInfo {
            name: q.name.to_string(),
            metadata,
            version: v,
            created: c,
        }))
    }

    /// Up to `count` queue names of the project's index after `after` (exclusive), in byte
    /// order.
    pub(super) async fn queue_names_after(
        &self,
        project: &str,
        after: Option<&str>,
        count: usize,
    ) -> Result<Vec<String>> {
        let start = after.map_or_else(|| "-".to_string(), |a| format!("({a}"));
        let mut range = redis::cmd("ZRANGEBYLEX");
        range
            .arg(self.keys.project_index(project))
            .arg(start)
            .arg("+")
            .arg("LIMIT")
            .arg(0)
            .arg(count);
        self.query(&range).await
    }
}

#[async_trait]
impl QueueStore for RedisStore {
    async fn create_queue(&self, q: QueueRef<'_>, metadata: Metadata) -> Result<bool> {
        let text = serde_json::to_string(&metadata).map_err(|e| Error::Internal(e.to_string()))?;
        let mut inv = self.scripts.create_queue.key(self.qkey(q));
        inv.arg(self.clock.now()).arg(text);
        let (created, indexed): (i64, i64) = self.eval(&inv).await?;
        if indexed == 0 {
            self.index_queue(q).await?;
        }
        Ok(created == 1)
    }

    async fn get_queue(&self, q: QueueRef<'_>) -> Result<Option<QueueInfo>> {
        self.queue_info(q).await
    }

    async fn replace_queue_metadata(
        &self,
        q: QueueRef<'_>,
        expected_version: u64,
        metadata: Metadata,
    ) -> Result<bool> {
        let text = serde_json::to_string(&metadata).map_err(|e| Error::Internal(e.to_string()))?;
        let mut inv = self.scripts.replace_metadata.key(self.qkey(q));
        inv.arg(expected_version).arg(text);
        match self.eval::<i64>(&inv).await? {
            -1 => Err(Error::not_found(format!(
                "Queue {} does not exist for project {}",
                q.name, q.project
            ))),
            r => Ok(r == 1),
        }
    }

    async fn delete_queue(&self, q: QueueRef<'_>) -> Result<()> {
        let qk = self.qkey(q);
        self.eval::<i64>(&self.scripts.unmark_indexed.key(&qk))
            .await?;
        let mut zrem = redis::cmd("ZREM");
        zrem.arg(self.keys.project_index(q.project)).arg(q.name);
        self.query::<i64>(&zrem).await?;
        for _ in 0..5 {
            if self
                .eval::<i64>(&self.scripts.delete_queue.key(&qk))
                .await?
                == 1
            {
                return Ok(());
            }
            // Moves out of this queue are pending: finish them before the queue goes.
            self.drain(q).await?;
        }
        Err(Error::Unavailable(format!(
            "queue {} still has message moves in progress; retry the deletion",
            q.name
        )))
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
        let mut after = marker.map(str::to_string);
        let chunk = if filter.is_empty() {
            limit.min(1000)
        } else {
            limit.clamp(100, 1000)
        };
        loop {
            let names = self
                .queue_names_after(project, after.as_deref(), chunk)
                .await?;
            let infos = futures_util::future::join_all(
                names
                    .iter()
                    .map(|n| self.queue_info(QueueRef::new(project, n))),
            )
            .await;
            for info in infos {
                if let Some(info) = info? {
                    if filter.matches(&info.name, &info.metadata) {
                        out.push(info);
                        if out.len() >= limit {
                            return Ok(out);
                        }
                    }
                }
            }
            match names.last() {
                Some(last) if names.len() == chunk => after = Some(last.clone()),
                _ => return Ok(out),
            }
        }
    }

    async fn count_queues(&self, project: &str) -> Result<u64> {
        let mut card = redis::cmd("ZCARD");
        card.arg(self.keys.project_index(project));
        self.query(&card).await
    }

    /// The queues of the project's index, each asked for its bytes by its own script (in its
    /// own slot), a page of queues at a time.
    async fn project_bytes(&self, project: &str) -> Result<u64> {
        let now = self.clock.now();
        let mut sum: u64 = 0;
        let mut after: Option<String> = None;
        loop {
            let names = self
                .queue_names_after(project, after.as_deref(), 100)
                .await?;
            let counts = futures_util::future::join_all(names.iter().map(|n| async move {
                let mut inv = self.scripts.bytes.key(self.qkey(QueueRef::new(project, n)));
                inv.arg(now);
                self.eval::<String>(&inv).await
            }))
            .await;
            for c in counts {
                sum = sum.saturating_add(c?.parse::<u64>().unwrap_or(0));
            }
            match names.last() {
                Some(last) if names.len() == 100 => after = Some(last.clone()),
                _ => return Ok(sum),
            }
        }
    }
}
