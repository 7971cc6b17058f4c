//! The queue, message and claim traits of [`PooledStore`]: each call goes to the driver of the
//! queue's pool; listings and counts merge every pool that answers.

use async_trait::async_trait;

use zaqar_core::error::{Error, Result};
use zaqar_core::model::{
    Claim, ClaimParams, ListQuery, Message, Metadata, NewMessage, QueueFilter, QueueInfo, QueueRef,
    QueueStats, RedriveOutcome,
};
use zaqar_core::store::{ClaimStore, MessageStore, QueueStore};

use super::PooledStore;

#[async_trait]
impl QueueStore for PooledStore {
    async fn create_queue(&self, q: QueueRef<'_>, metadata: Metadata) -> Result<bool> {
        let flavor = metadata
            .get("_flavor")
            .and_then(|v| v.as_str())
            .filter(|f| !f.is_empty())
            .map(str::to_string);
        let (_, d) = self.route_place(q, flavor.as_deref()).await?;
        d.create_queue(q, metadata).await
    }

    async fn get_queue(&self, q: QueueRef<'_>) -> Result<Option<QueueInfo>> {
        self.route(q).await?.1.get_queue(q).await
    }

    async fn replace_queue_metadata(
        &self,
        q: QueueRef<'_>,
        expected_version: u64,
        metadata: Metadata,
    ) -> Result<bool> {
        self.route(q)
            .await?
            .1
            .replace_queue_metadata(q, expected_version, metadata)
            .await
    }

    async fn delete_queue(&self, q: QueueRef<'_>) -> Result<()> {
        match self.pool_of(q.project, q.name).await? {
            Some(p) => self.routed_driver(q, &p).await?.delete_queue(q).await,
            None => Ok(()),
        }
    }

    async fn list_queues(
        &self,
        project: &str,
        marker: Option<&str>,
        limit: usize,
        filter: &QueueFilter,
    ) -> Result<Vec<QueueInfo>> {
        let pools = self.pool_list().await?;
        let mut merged: Vec<QueueInfo> = Vec::new();
        let mut answered = pools.is_empty();
        let mut last_err = None;
        for p in &pools {
            let page = match self.driver(&p.name).await {
                Ok(d) => d.list_queues(project, marker, limit, filter).await,
                Err(e) => Err(e),
            };
            match page {
                Ok(page) => {
                    answered = true;
                    merged.extend(page);
                }
                Err(e) => {
                    tracing::warn!(pool = %p.name, error = %e, "queue listing skips a pool");
                    last_err = Some(e);
                }
            }
        }
        if !answered {
            return Err(last_err.unwrap_or_else(|| Error::unavailable("No pool answered.")));
        }
        merged.sort_by(|a, b| a.name.cmp(&b.name));
        merged.dedup_by(|a, b| a.name == b.name);
        merged.truncate(limit);
        Ok(merged)
    }

    async fn count_queues(&self, project: &str) -> Result<u64> {
        let mut n = 0;
        for p in self.pool_list().await? {
            match self.driver(&p.name).await {
                Ok(d) => match d.count_queues(project).await {
                    Ok(c) => n += c,
                    Err(e) => tracing::warn!(pool = %p.name, error = %e, "count skips a pool"),
                },
                Err(e) => tracing::warn!(pool = %p.name, error = %e, "count skips a pool"),
            }
        }
        Ok(n)
    }

    /// The sum over every registered pool (a pool without the project's queues answers 0); a
    /// pool that fails is skipped, as in `count_queues`, so its bytes do not count meanwhile.
    async fn project_bytes(&self, project: &str) -> Result<u64> {
        let mut n: u64 = 0;
        for p in self.pool_list().await? {
            match self.driver(&p.name).await {
                Ok(d) => match d.project_bytes(project).await {
                    Ok(b) => n = n.saturating_add(b),
                    Err(e) => tracing::warn!(pool = %p.name, error = %e, "bytes skip a pool"),
                },
                Err(e) => tracing::warn!(pool = %p.name, error = %e, "bytes skip a pool"),
            }
        }
        Ok(n)
    }
}

#[async_trait]
impl MessageStore for PooledStore {
    async fn post_messages(
        &self,
        q: QueueRef<'_>,
        client_id: &str,
        messages: Vec<NewMessage>,
    ) -> Result<Vec<String>> {
        let (_, d) = self.route_place(q, None).await?;
        d.post_messages(q, client_id, messages).await
    }

    async fn list_messages(&self, q: QueueRef<'_>, query: &ListQuery) -> Result<Vec<Message>> {
        self.route(q).await?.1.list_messages(q, query).await
    }

    async fn get_messages(&self, q: QueueRef<'_>, ids: &[String]) -> Result<Vec<Message>> {
        self.route(q).await?.1.get_messages(q, ids).await
    }

    async fn delete_messages(
        &self,
        q: QueueRef<'_>,
        ids: &[String],
        claim_ids: Option<&[String]>,
    ) -> Result<()> {
        self.route(q)
            .await?
            .1
            .delete_messages(q, ids, claim_ids)
            .await
    }

    async fn pop_messages(&self, q: QueueRef<'_>, limit: usize) -> Result<Vec<Message>> {
        self.route(q).await?.1.pop_messages(q, limit).await
    }

    async fn delete_message(
        &self,
        q: QueueRef<'_>,
        id: &str,
        claim_id: Option<&str>,
    ) -> Result<()> {
        self.route(q).await?.1.delete_message(q, id, claim_id).await
    }

    async fn queue_stats(&self, q: QueueRef<'_>) -> Result<QueueStats> {
        self.route(q).await?.1.queue_stats(q).await
    }

    async fn purge_messages(&self, q: QueueRef<'_>) -> Result<()> {
        self.route(q).await?.1.purge_messages(q).await
    }

    async fn redrive_messages(
        &self,
        q: QueueRef<'_>,
        target: Option<&str>,
        limit: Option<usize>,
    ) -> Result<RedriveOutcome> {
        let (pool, d) = self.route(q).await?;
        if let Some(t) = target {
            self.colocate(q, pool.as_deref(), t).await?;
        }
        d.redrive_messages(q, target, limit).await
    }
}

#[async_trait]
impl ClaimStore for PooledStore {
    async fn create_claim(&self, q: QueueRef<'_>, params: ClaimParams) -> Result<Option<Claim>> {
        let (pool, d) = self.route(q).await?;
        if let Some(dl) = &params.dead_letter {
            self.colocate(q, pool.as_deref(), &dl.queue).await?;
        }
        d.create_claim(q, params).await
    }

    async fn get_claim(&self, q: QueueRef<'_>, claim_id: &str) -> Result<Option<Claim>> {
        self.route(q).await?.1.get_claim(q, claim_id).await
    }

    async fn renew_claim(
        &self,
        q: QueueRef<'_>,
        claim_id: &str,
        ttl: i64,
        grace: i64,
    ) -> Result<bool> {
        self.route(q)
            .await?
            .1
            .renew_claim(q, claim_id, ttl, grace)
            .await
    }

    async fn release_claim(&self, q: QueueRef<'_>, claim_id: &str) -> Result<()> {
        self.route(q).await?.1.release_claim(q, claim_id).await
    }
}
