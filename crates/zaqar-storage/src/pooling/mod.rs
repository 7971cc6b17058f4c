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

mod admin;
pub mod management;
mod registry;
mod routed;
mod routing;
mod subs;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::{DriverSettings, Engine, StoreConfig};
use zaqar_core::clock::SharedClock;
use zaqar_core::error::{Error, Result};
use zaqar_core::hub::Hub;
use zaqar_core::store::{DataStore, SubscriptionStore};

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
