//! Pooling (spec §1.11): [`PooledStore`] is a [`DataStore`] that routes every queue-scoped call
//! to the driver of the pool holding the queue, found in the catalog of the management store.
//! The service layer and the transports do not know pools exist.
//!
//! - Placement: a new queue (or, with `[pooling:catalog] placement = project`, the first queue
//!   of a project) is bound to a pool chosen by weighted random among the pools of its `_flavor`
//!   (or the pools without flavor). Pools of weight 0 are never chosen. The binding is written
//!   to the catalog with insert-if-absent, so concurrent nodes agree, and it is sticky: the queue
//!   stays on its pool, also when deleted and re-created.
//! - Moves between queues (dead-lettering, redrive) are atomic only inside one driver: their
//!   target is bound to the source's pool, and a target bound elsewhere is refused (400).
//! - A pool whose backend fails makes only its queues fail (503); listings skip it.
//! - Pool URIs: `embedded:///abs/dir` or `embedded://rel/dir` (relative to the embedded data
//!   directory), `redis://`, `rediss://`, `redis+cluster://`, `postgresql://` (`postgres://`).
//!   Options: `key_prefix` (Redis), `schema` and `max_connections` (PostgreSQL), `shards`
//!   (embedded).

pub mod management;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rand::Rng;

use crate::{open_engine, DriverSettings, Engine, StoreConfig};
use zaqar_core::clock::SharedClock;
use zaqar_core::error::{Error, Result};
use zaqar_core::hub::Hub;
use zaqar_core::model::{
    Claim, ClaimParams, FinishedDelivery, ListQuery, Message, Metadata, NewMessage,
    NewSubscription, PendingNotification, QueueFilter, QueueInfo, QueueRef, QueueStats,
    RedriveOutcome, Subscription, SubscriptionCreated, SubscriptionUpdate,
};
use zaqar_core::store::{ClaimStore, DataStore, MessageStore, QueueStore, SubscriptionStore};

use zaqar_core::store::management::{ManagementStore, Pool};

/// How new queues are bound to pools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Each queue on its own (Zaqar's rule).
    Queue,
    /// All queues of a project on the pool of its first queue (moves always possible).
    Project,
}

/// Capability names of a driver, by the scheme of its URI (spec §1.11).
pub fn capabilities(uri: &str) -> Result<Vec<&'static str>> {
    Engine::from_uri(uri).map(Engine::capabilities)
}

struct Entry {
    pool: Pool,
    driver: Option<Arc<dyn DataStore>>,
    failed: Option<(Instant, String)>,
}

#[derive(Default)]
struct Registry {
    pools: BTreeMap<String, Entry>,
    loaded: Option<Instant>,
}

/// How long a failed driver open is remembered before it is tried again.
const RETRY_OPEN: Duration = Duration::from_secs(1);
/// How long a node trusts its copy of the pool list.
const REFRESH: Duration = Duration::from_secs(5);
/// Catalog entries cached per node (cleared when full).
const CACHE_MAX: usize = 200_000;

pub struct PooledStore {
    mgmt: Arc<dyn ManagementStore>,
    defaults: DriverSettings,
    clock: SharedClock,
    placement: Placement,
    registry: RwLock<Registry>,
    open_lock: tokio::sync::Mutex<()>,
    cache: Mutex<HashMap<(String, String), String>>,
    hub: Mutex<Option<Arc<Hub>>>,
}

impl PooledStore {
    pub fn new(
        mgmt: Arc<dyn ManagementStore>,
        defaults: DriverSettings,
        placement: Placement,
        clock: SharedClock,
    ) -> Arc<PooledStore> {
        Arc::new(PooledStore {
            mgmt,
            defaults,
            clock,
            placement,
            registry: RwLock::new(Registry::default()),
            open_lock: tokio::sync::Mutex::new(()),
            cache: Mutex::new(HashMap::new()),
            hub: Mutex::new(None),
        })
    }

    /// The management store named by `[drivers] management_store` and the pooled store over it.
    pub async fn open(config: &StoreConfig, clock: SharedClock) -> Result<Arc<PooledStore>> {
        let mgmt: Arc<dyn ManagementStore> = match config.management_store.as_str() {
            "embedded" => management::EmbeddedManagement::open(&config.drivers.embedded.path)?,
            "sqlalchemy" => {
                management::PostgresManagement::open(
                    &config.management_uri.0,
                    &config.management_schema,
                    clock.now(),
                )
                .await?
            }
            other => {
                return Err(Error::Unavailable(format!(
                    "[drivers] management_store = {other} is not available in this build \
                     (embedded or sqlalchemy)"
                )))
            }
        };
        let store = PooledStore::new(mgmt, config.drivers.clone(), config.placement, clock);
        store.refresh(true).await?;
        Ok(store)
    }

    pub fn management(&self) -> &Arc<dyn ManagementStore> {
        &self.mgmt
    }

    /// Reloads the pool list when it is older than [`REFRESH`] (or always with `force`).
    /// Drivers of removed pools, or of pools whose URI or options changed, are closed.
    async fn refresh(&self, force: bool) -> Result<()> {
        if !force {
            let reg = self.registry.read().unwrap();
            if reg.loaded.is_some_and(|t| t.elapsed() < REFRESH) {
                return Ok(());
            }
        }
        let pools = self.mgmt.list_pools(None, usize::MAX).await?;
        let mut stale = Vec::new();
        {
            let mut reg = self.registry.write().unwrap();
            let mut next = BTreeMap::new();
            for p in pools {
                let entry = match reg.pools.remove(&p.name) {
                    Some(e) if e.pool.uri == p.uri && e.pool.options == p.options => Entry {
                        pool: p.clone(),
                        ..e
                    },
                    Some(e) => {
                        stale.extend(e.driver);
                        Entry {
                            pool: p.clone(),
                            driver: None,
                            failed: None,
                        }
                    }
                    None => Entry {
                        pool: p.clone(),
                        driver: None,
                        failed: None,
                    },
                };
                next.insert(p.name.clone(), entry);
            }
            stale.extend(reg.pools.values_mut().filter_map(|e| e.driver.take()));
            reg.pools = next;
            reg.loaded = Some(Instant::now());
        }
        for d in stale {
            d.shutdown().await;
        }
        Ok(())
    }

    /// The registered pools (refreshed if stale).
    async fn pool_list(&self) -> Result<Vec<Pool>> {
        self.refresh(false).await?;
        let reg = self.registry.read().unwrap();
        Ok(reg.pools.values().map(|e| e.pool.clone()).collect())
    }

    /// Opens the driver a pool's URI names, with the pool's options over the defaults.
    async fn open_driver(&self, pool: &Pool) -> Result<Arc<dyn DataStore>> {
        let uri = pool.uri.trim();
        let engine = Engine::from_uri(uri)?;
        let opt_str = |k: &str| {
            pool.options
                .get(k)
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        let opt_int = |k: &str| pool.options.get(k).and_then(|v| v.as_u64());
        let mut settings = self.defaults.clone();
        match engine {
            Engine::Embedded => {
                let rest = uri.split_once("://").map(|x| x.1).unwrap_or("");
                if rest.starts_with('/') {
                    settings.embedded.path = PathBuf::from(rest);
                } else {
                    settings.embedded.path = self.defaults.embedded.path.join(rest);
                }
                if let Some(n) = opt_int("shards") {
                    settings.embedded.shards = n.clamp(1, 64) as usize;
                }
            }
            Engine::Redis => {
                if let Some(p) = opt_str("key_prefix") {
                    settings.redis.key_prefix = p;
                }
            }
            Engine::Postgres => {
                if let Some(s) = opt_str("schema") {
                    settings.postgresql.schema = s;
                }
                if let Some(n) = opt_int("max_connections") {
                    settings.postgresql.max_connections = n.clamp(1, 10_000) as u32;
                }
            }
        }
        let store = open_engine(engine, uri, &settings, self.clock.clone()).await?;
        if let Some(hub) = self.hub.lock().unwrap().clone() {
            store.attach_hub(hub);
        }
        Ok(store)
    }

    /// The driver of a registered pool, opened on first use. A pool that cannot be opened
    /// fails with 503 (and is retried after a second).
    async fn driver(&self, name: &str) -> Result<Arc<dyn DataStore>> {
        for attempt in 0..2 {
            {
                let reg = self.registry.read().unwrap();
                if let Some(e) = reg.pools.get(name) {
                    if let Some(d) = &e.driver {
                        return Ok(d.clone());
                    }
                    if let Some((at, why)) = &e.failed {
                        if at.elapsed() < RETRY_OPEN {
                            return Err(Error::Unavailable(why.clone()));
                        }
                    }
                    break;
                }
            }
            if attempt == 0 {
                self.refresh(true).await?;
            } else {
                return Err(Error::Unavailable(format!(
                    "Pool {name} is not registered."
                )));
            }
        }
        let _guard = self.open_lock.lock().await;
        let pool = {
            let reg = self.registry.read().unwrap();
            match reg.pools.get(name) {
                Some(e) => match &e.driver {
                    Some(d) => return Ok(d.clone()),
                    None => e.pool.clone(),
                },
                None => {
                    return Err(Error::Unavailable(format!(
                        "Pool {name} is not registered."
                    )))
                }
            }
        };
        match self.open_driver(&pool).await {
            Ok(d) => {
                let mut reg = self.registry.write().unwrap();
                if let Some(e) = reg.pools.get_mut(name) {
                    e.driver = Some(d.clone());
                    e.failed = None;
                }
                Ok(d)
            }
            Err(e) => {
                let why = format!("Pool {name} is unavailable: {}", e.description());
                tracing::warn!(pool = name, error = %e, "cannot open pool");
                let mut reg = self.registry.write().unwrap();
                if let Some(e) = reg.pools.get_mut(name) {
                    e.failed = Some((Instant::now(), why.clone()));
                }
                Err(Error::Unavailable(why))
            }
        }
    }

    /// The catalog key of a queue under the placement rule.
    fn key<'a>(&self, queue: &'a str) -> &'a str {
        match self.placement {
            Placement::Queue => queue,
            Placement::Project => "",
        }
    }

    /// The pool a queue is bound to, if any.
    async fn pool_of(&self, project: &str, queue: &str) -> Result<Option<String>> {
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

    fn remember(&self, key: (String, String), pool: String) {
        let mut c = self.cache.lock().unwrap();
        if c.len() >= CACHE_MAX {
            c.clear();
        }
        c.insert(key, pool);
    }

    /// Weighted random choice among the eligible pools (spec §1.11).
    async fn choose(&self, project: &str, flavor: Option<&str>) -> Result<String> {
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
    async fn bind(&self, project: &str, queue: &str, pool: &str) -> Result<String> {
        let key = self.key(queue);
        let bound = self.mgmt.catalog_bind(project, key, pool).await?;
        self.remember((project.to_string(), key.to_string()), bound.clone());
        Ok(bound)
    }

    /// The driver of a queue, placing the queue first if it has no pool yet.
    async fn route_place(
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
    async fn routed_driver(&self, q: QueueRef<'_>, pool: &str) -> Result<Arc<dyn DataStore>> {
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

    fn registered(&self, pool: &str) -> bool {
        self.registry.read().unwrap().pools.contains_key(pool)
    }

    /// The driver of a queue for an operation that does not create it. An unbound queue does
    /// not exist anywhere: any pool answers for it (as for a missing queue).
    async fn route(&self, q: QueueRef<'_>) -> Result<(Option<String>, Arc<dyn DataStore>)> {
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
    async fn colocate(&self, q: QueueRef<'_>, pool: Option<&str>, target: &str) -> Result<()> {
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

    // ----- administration (used by the service's pool and flavor operations) ---------------

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

fn split_key(key: &str) -> Result<(&str, &str)> {
    key.split_once('\u{1f}')
        .ok_or_else(|| Error::not_found("Unknown notification batch."))
}

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

#[async_trait]
impl DataStore for PooledStore {
    async fn ping(&self) -> Result<()> {
        self.mgmt.ping().await
    }

    fn attach_hub(&self, hub: Arc<Hub>) {
        *self.hub.lock().unwrap() = Some(hub.clone());
        let reg = self.registry.read().unwrap();
        for d in reg.pools.values().filter_map(|e| e.driver.as_ref()) {
            d.attach_hub(hub.clone());
        }
    }

    /// Subscriptions exist when a pool's driver has them (in this build: embedded pools).
    fn subscriptions(&self) -> Option<&dyn SubscriptionStore> {
        let reg = self.registry.read().unwrap();
        let any = reg.pools.is_empty()
            || reg
                .pools
                .values()
                .any(|e| e.pool.uri.trim().starts_with("embedded://"));
        any.then_some(self as &dyn SubscriptionStore)
    }

    async fn shutdown(&self) {
        let drivers: Vec<Arc<dyn DataStore>> = {
            let mut reg = self.registry.write().unwrap();
            reg.pools
                .values_mut()
                .filter_map(|e| e.driver.take())
                .collect()
        };
        for d in drivers {
            d.shutdown().await;
        }
        self.mgmt.close().await;
    }
}

#[async_trait]
impl zaqar_core::store::management::PoolAdmin for PooledStore {
    fn management(&self) -> &Arc<dyn ManagementStore> {
        PooledStore::management(self)
    }

    fn capabilities(&self, uri: &str) -> Result<Vec<&'static str>> {
        capabilities(uri)
    }

    async fn put_pool(&self, pool: Pool) -> Result<()> {
        PooledStore::put_pool(self, pool).await
    }

    async fn delete_pool(&self, name: &str) -> Result<()> {
        PooledStore::delete_pool(self, name).await
    }

    async fn reload(&self) -> Result<()> {
        PooledStore::reload(self).await
    }

    async fn pool_of_queue(&self, project: &str, queue: &str) -> Result<Option<String>> {
        PooledStore::pool_of_queue(self, project, queue).await
    }

    async fn pool_drivers(&self) -> Result<Vec<(String, Result<Arc<dyn DataStore>>)>> {
        PooledStore::pool_drivers(self).await
    }
}
