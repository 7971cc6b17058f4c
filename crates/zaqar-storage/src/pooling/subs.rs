//! The subscription trait of [`PooledStore`]: subscriptions live with their source queue's
//! pool; notification batches are leased from every pool, their keys prefixed with the pool.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

use zaqar_core::error::{Error, Result};
use zaqar_core::model::{
    FinishedDelivery, NewSubscription, PendingNotification, QueueRef, Subscription,
    SubscriptionCreated, SubscriptionUpdate,
};
use zaqar_core::store::{DataStore, SubscriptionStore};

use super::PooledStore;

fn split_key(key: &str) -> Result<(&str, &str)> {
    key.split_once('\u{1f}')
        .ok_or_else(|| Error::not_found("Unknown notification batch."))
}

/// The subscription store of a routed driver.
fn subs_of(d: &Arc<dyn DataStore>) -> Result<&dyn SubscriptionStore> {
    d.subscriptions().ok_or_else(|| {
        Error::unavailable("The pool holding this queue has no subscription support.")
    })
}

#[async_trait]
impl SubscriptionStore for PooledStore {
    async fn create_subscription(
        &self,
        project: &str,
        source: &str,
        sub: NewSubscription,
    ) -> Result<SubscriptionCreated> {
        let (_, d) = self
            .route_place(QueueRef::new(project, source), None)
            .await?;
        subs_of(&d)?.create_subscription(project, source, sub).await
    }

    async fn list_subscriptions(
        &self,
        project: &str,
        source: &str,
        marker: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Subscription>> {
        let (_, d) = self.route(QueueRef::new(project, source)).await?;
        match d.subscriptions() {
            Some(s) => s.list_subscriptions(project, source, marker, limit).await,
            None => Ok(Vec::new()),
        }
    }

    async fn get_subscription(
        &self,
        project: &str,
        source: &str,
        id: &str,
    ) -> Result<Option<Subscription>> {
        let (_, d) = self.route(QueueRef::new(project, source)).await?;
        match d.subscriptions() {
            Some(s) => s.get_subscription(project, source, id).await,
            None => Ok(None),
        }
    }

    async fn update_subscription(
        &self,
        project: &str,
        source: &str,
        id: &str,
        update: SubscriptionUpdate,
    ) -> Result<()> {
        let (_, d) = self.route(QueueRef::new(project, source)).await?;
        subs_of(&d)?
            .update_subscription(project, source, id, update)
            .await
    }

    async fn delete_subscription(&self, project: &str, source: &str, id: &str) -> Result<()> {
        let (_, d) = self.route(QueueRef::new(project, source)).await?;
        match d.subscriptions() {
            Some(s) => s.delete_subscription(project, source, id).await,
            None => Ok(()),
        }
    }

    async fn confirm_subscription(
        &self,
        project: &str,
        source: &str,
        id: &str,
        confirmed: bool,
    ) -> Result<bool> {
        let (_, d) = self.route(QueueRef::new(project, source)).await?;
        match d.subscriptions() {
            Some(s) => s.confirm_subscription(project, source, id, confirmed).await,
            None => Ok(false),
        }
    }

    async fn purge_subscriptions(&self, project: &str, source: &str) -> Result<()> {
        let (_, d) = self.route(QueueRef::new(project, source)).await?;
        match d.subscriptions() {
            Some(s) => s.purge_subscriptions(project, source).await,
            None => Ok(()),
        }
    }

    async fn lease_notifications(
        &self,
        limit: usize,
        lease_ms: i64,
    ) -> Result<Vec<PendingNotification>> {
        let mut out = Vec::new();
        for p in self.pool_list().await? {
            if out.len() >= limit {
                break;
            }
            let Ok(d) = self.driver(&p.name).await else {
                continue;
            };
            let Some(s) = d.subscriptions() else { continue };
            match s.lease_notifications(limit - out.len(), lease_ms).await {
                Ok(batch) => out.extend(batch.into_iter().map(|mut n| {
                    n.key = format!("{}\u{1f}{}", p.name, n.key);
                    n
                })),
                Err(e) => tracing::warn!(pool = %p.name, error = %e, "cannot lease notifications"),
            }
        }
        Ok(out)
    }

    async fn renew_notification_lease(&self, key: &str, lease_ms: i64) -> Result<()> {
        let (pool, key) = split_key(key)?;
        let d = self.driver(pool).await?;
        subs_of(&d)?.renew_notification_lease(key, lease_ms).await
    }

    async fn finish_notifications(&self, done: Vec<FinishedDelivery>) -> Result<()> {
        let mut per_pool: HashMap<String, Vec<FinishedDelivery>> = HashMap::new();
        for mut d in done {
            let (pool, key) = split_key(&d.key)?;
            let pool = pool.to_string();
            d.key = key.to_string();
            per_pool.entry(pool).or_default().push(d);
        }
        // Every pool is tried even when one fails; the first error is reported.
        let mut first_err = None;
        for (pool, entries) in per_pool {
            let r = async {
                let d = self.driver(&pool).await?;
                subs_of(&d)?.finish_notifications(entries).await
            }
            .await;
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}
