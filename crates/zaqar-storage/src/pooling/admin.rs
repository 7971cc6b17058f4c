//! Pool administration of [`PooledStore`] (used by the service's pool and flavor operations):
//! probing, registering and removing pools.

use std::sync::Arc;
use std::time::Duration;

use zaqar_core::error::{Error, Result};
use zaqar_core::model::QueueRef;
use zaqar_core::store::management::Pool;
use zaqar_core::store::DataStore;

use super::{capabilities, Entry, PooledStore};

impl PooledStore {
    /// Checks that the backend of `pool` answers: the driver already open on that URI, or a
    /// fresh one, which is kept as the pool's driver.
    pub async fn probe(&self, pool: &Pool) -> Result<Option<Arc<dyn DataStore>>> {
        let current = {
            let reg = self.registry.read().unwrap();
            reg.pools
                .values()
                .find(|e| e.pool.uri == pool.uri && e.driver.is_some())
                .and_then(|e| e.driver.clone())
        };
        let unreachable = |e: Error| {
            Error::invalid(format!(
                "cannot connect to {}: {}",
                pool.uri,
                e.description()
            ))
        };
        if let Some(d) = current {
            d.ping().await.map_err(unreachable)?;
            return Ok(None);
        }
        let d = tokio::time::timeout(Duration::from_secs(15), self.open_driver(pool))
            .await
            .map_err(|_| unreachable(Error::unavailable("timed out")))?
            .map_err(unreachable)?;
        if let Err(e) = d.ping().await {
            d.shutdown().await;
            return Err(unreachable(e));
        }
        Ok(Some(d))
    }

    /// Registers (or replaces) a pool after checking its URI, reachability and flavor peers.
    pub async fn put_pool(&self, pool: Pool) -> Result<()> {
        let caps = capabilities(&pool.uri)?;
        let all = self.mgmt.list_pools(None, usize::MAX).await?;
        if let Some(other) = all
            .iter()
            .find(|p| p.uri == pool.uri && p.name != pool.name)
        {
            return Err(Error::Conflict(format!(
                "The URI is already used by pool {}.",
                other.name
            )));
        }
        if let Some(f) = &pool.flavor {
            for peer in all
                .iter()
                .filter(|p| p.flavor.as_ref() == Some(f) && p.name != pool.name)
            {
                if capabilities(&peer.uri)? != caps {
                    return Err(Error::invalid(format!(
                        "Unable to create pool: its capabilities differ from those of pool {} \
                         of flavor {f}.",
                        peer.name
                    )));
                }
            }
        }
        let previous = all.iter().find(|p| p.name == pool.name);
        let same_backend = previous.is_some_and(|p| p.uri == pool.uri && p.options == pool.options);
        if !same_backend {
            if let Some(p) = previous {
                // Release the old backend (an embedded directory cannot be opened twice).
                let old = {
                    let mut reg = self.registry.write().unwrap();
                    reg.pools.get_mut(&p.name).and_then(|e| e.driver.take())
                };
                if let Some(d) = old {
                    d.shutdown().await;
                }
            }
        }
        let fresh = self.probe(&pool).await?;
        if let Err(e) = self.mgmt.put_pool(&pool).await {
            if let Some(d) = fresh {
                d.shutdown().await;
            }
            return Err(e);
        }
        {
            let mut reg = self.registry.write().unwrap();
            let entry = reg.pools.entry(pool.name.clone()).or_insert(Entry {
                pool: pool.clone(),
                driver: None,
                failed: None,
            });
            entry.pool = pool.clone();
            entry.failed = None;
            if let Some(d) = fresh {
                entry.driver = Some(d);
            }
        }
        Ok(())
    }

    /// Removes a pool: 403 when it is the last pool of an existing flavor, 409 while a queue
    /// lives on it (catalog entries of deleted queues are dropped with it).
    pub async fn delete_pool(&self, name: &str) -> Result<()> {
        let Some(pool) = self.mgmt.get_pool(name).await? else {
            return Ok(());
        };
        if let Some(f) = &pool.flavor {
            let peers = self
                .mgmt
                .list_pools(None, usize::MAX)
                .await?
                .into_iter()
                .filter(|p| p.flavor.as_ref() == Some(f) && p.name != name)
                .count();
            if peers == 0 && self.mgmt.flavor_exists_anywhere(f).await? {
                return Err(Error::DeleteForbidden(format!(
                    "This pool is used by flavors {f}; It cannot be deleted."
                )));
            }
        }
        let bound = self.mgmt.catalog_of_pool(name).await?;
        if !bound.is_empty() {
            let d = self.driver(name).await?;
            for (project, queue) in &bound {
                let live = if queue.is_empty() {
                    d.count_queues(project).await? > 0
                } else {
                    d.get_queue(QueueRef::new(project, queue)).await?.is_some()
                };
                if live {
                    return Err(Error::Conflict(format!(
                        "Pool {name} still holds queues (e.g. {queue:?} of project \
                         {project:?}); delete them before the pool."
                    )));
                }
            }
        }
        self.mgmt.delete_pool(name).await?;
        let old = {
            let mut reg = self.registry.write().unwrap();
            reg.pools.remove(name).and_then(|e| e.driver)
        };
        self.cache.lock().unwrap().retain(|_, p| p != name);
        if let Some(d) = old {
            d.shutdown().await;
        }
        Ok(())
    }

    /// Every registered pool with its driver (or why it cannot be opened).
    pub async fn pool_drivers(&self) -> Result<Vec<(String, Result<Arc<dyn DataStore>>)>> {
        let mut out = Vec::new();
        for p in self.pool_list().await? {
            let d = self.driver(&p.name).await;
            out.push((p.name, d));
        }
        Ok(out)
    }

    /// Reloads the pool list now (after a flavor changed the pools' `flavor`).
    pub async fn reload(&self) -> Result<()> {
        self.refresh(true).await
    }

    /// Which registered pool holds a queue (for tests and operators).
    pub async fn pool_of_queue(&self, project: &str, queue: &str) -> Result<Option<String>> {
        self.pool_of(project, queue).await
    }
}
