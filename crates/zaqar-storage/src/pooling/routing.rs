//! Routing of [`PooledStore`]: the catalog binding of each queue (cached per node), the
//! weighted placement of new queues, and the co-location of move targets.

use std::sync::Arc;

use rand::Rng;

use zaqar_core::error::{Error, Result};
use zaqar_core::model::QueueRef;
use zaqar_core::store::management::Pool;
use zaqar_core::store::DataStore;

use super::{Placement, PooledStore, CACHE_MAX};

impl PooledStore {
    /// The catalog key of a queue under the placement rule.
    pub(super) fn key<'a>(&self, queue: &'a str) -> &'a str {
        match self.placement {
            Placement::Queue => queue,
            Placement::Project => "",
        }
    }

    /// The pool a queue is bound to, if any.
    pub(super) async fn pool_of(&self, project: &str, queue: &str) -> Result<Option<String>> {
        let key = (project.to_string(), self.key(queue).to_string());
        if let Some(p) = self.cache.lock().unwrap().get(&key) {
            return Ok(Some(p.clone()));
        }
        let found = self.mgmt.catalog_get(&key.0, &key.1).await?;
        if let Some(p) = &found {
            self.remember(key, p.clone());
        }
        Ok(found)
    }

    pub(super) fn remember(&self, key: (String, String), pool: String) {
        let mut c = self.cache.lock().unwrap();
        if c.len() >= CACHE_MAX {
            c.clear();
        }
        c.insert(key, pool);
    }

    /// Weighted random choice among the eligible pools (spec §1.11).
    pub(super) async fn choose(&self, project: &str, flavor: Option<&str>) -> Result<String> {
        if let Some(f) = flavor {
            if self.mgmt.get_flavor(project, f).await?.is_none() {
                return Err(Error::invalid(format!("Flavor {f} does not exist.")));
            }
        }
        let mut pools = self.pool_list().await?;
        if !pools
            .iter()
            .any(|p| p.weight > 0 && p.flavor.as_deref() == flavor)
        {
            // Maybe registered through another node since the last refresh.
            self.refresh(true).await?;
            pools = self.pool_list().await?;
        }
        let eligible: Vec<&Pool> = pools
            .iter()
            .filter(|p| p.weight > 0 && p.flavor.as_deref() == flavor)
            .collect();
        let total: u64 = eligible.iter().map(|p| p.weight as u64).sum();
        if total == 0 {
            return Err(Error::unavailable(match flavor {
                Some(f) => format!("No pool found for flavor {f}."),
                None => "No pool found: register a pool without flavor first.".to_string(),
            }));
        }
        let mut r = rand::rng().random_range(0..total);
        for p in &eligible {
            if r < p.weight as u64 {
                return Ok(p.name.clone());
            }
            r -= p.weight as u64;
        }
        Ok(eligible[eligible.len() - 1].name.clone())
    }

    /// Binds the queue (or its project) to `pool` unless bound; returns its pool.
    pub(super) async fn bind(&self, project: &str, queue: &str, pool: &str) -> Result<String> {
        let key = self.key(queue);
        let bound = self.mgmt.catalog_bind(project, key, pool).await?;
        self.remember((project.to_string(), key.to_string()), bound.clone());
        Ok(bound)
    }

    /// The driver of a queue, placing the queue first if it has no pool yet.
    pub(super) async fn route_place(
        &self,
        q: QueueRef<'_>,
        flavor: Option<&str>,
    ) -> Result<(String, Arc<dyn DataStore>)> {
        let pool = match self.pool_of(q.project, q.name).await? {
            Some(p) => p,
            None => {
                let chosen = self.choose(q.project, flavor).await?;
                self.bind(q.project, q.name, &chosen).await?
            }
        };
        let d = self.routed_driver(q, &pool).await?;
        Ok((pool, d))
    }

    /// The driver of a bound queue's pool; a binding to a pool that no longer exists is
    /// dropped from the cache and read again.
    pub(super) async fn routed_driver(
        &self,
        q: QueueRef<'_>,
        pool: &str,
    ) -> Result<Arc<dyn DataStore>> {
        match self.driver(pool).await {
            Err(e) if !self.registered(pool) => {
                self.cache
                    .lock()
                    .unwrap()
                    .remove(&(q.project.to_string(), self.key(q.name).to_string()));
                Err(e)
            }
            r => r,
        }
    }

    pub(super) fn registered(&self, pool: &str) -> bool {
        self.registry.read().unwrap().pools.contains_key(pool)
    }

    /// The driver of a queue for an operation that does not create it. An unbound queue does
    /// not exist anywhere: any pool answers for it (as for a missing queue).
    pub(super) async fn route(
        &self,
        q: QueueRef<'_>,
    ) -> Result<(Option<String>, Arc<dyn DataStore>)> {
        if let Some(pool) = self.pool_of(q.project, q.name).await? {
            let d = self.routed_driver(q, &pool).await?;
            return Ok((Some(pool), d));
        }
        let pools = self.pool_list().await?;
        let mut last = None;
        for p in &pools {
            match self.driver(&p.name).await {
                Ok(d) => return Ok((None, d)),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::unavailable("No pool found: no pool is registered.")))
    }

    /// Binds the target of a move to the source's pool; refuses a target on another pool.
    pub(super) async fn colocate(
        &self,
        q: QueueRef<'_>,
        pool: Option<&str>,
        target: &str,
    ) -> Result<()> {
        let Some(pool) = pool else { return Ok(()) };
        let bound = self.bind(q.project, target, pool).await?;
        if bound != pool {
            return Err(Error::invalid(format!(
                "Queue {target} is on pool {bound} and queue {} on pool {pool}: messages cannot \
                 move between pools. Place both with the same _flavor (one pool), or use \
                 [pooling:catalog] placement = project.",
                q.name
            )));
        }
        Ok(())
    }
}
