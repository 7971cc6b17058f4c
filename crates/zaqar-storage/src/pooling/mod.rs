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
                management::open_sqlalchemy(
                    &config.management_uri.0,
                    &config.management_schema,
                    clock.now(),
                )
                .await?
            }
            other => {
                let known = if cfg!(any(feature = "postgres", feature = "mysql")) {
                    "embedded or sqlalchemy"
                } else {
                    "embedded"
                };
                return Err(Error::Unavailable(format!(
                    "[drivers] management_store = {other} is not available in this build \
                     ({known})"
                )));
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use zaqar_core::clock::ManualClock;
    use zaqar_core::model::QueueRef;
    use zaqar_core::store::QueueStore;

    use super::*;
    use crate::engine::tests::{settings, store_config};

    fn clock() -> SharedClock {
        Arc::new(ManualClock::default())
    }

    fn pool(name: &str, uri: &str) -> Pool {
        Pool {
            name: name.into(),
            uri: uri.into(),
            weight: 1,
            flavor: None,
            options: Default::default(),
        }
    }

    /// A pooled store with an embedded management store that already lists `pools` (as a node
    /// of another build may have registered them).
    async fn pooled(dir: &std::path::Path, pools: &[Pool]) -> Arc<PooledStore> {
        let mgmt = management::EmbeddedManagement::open(&dir.join("mgmt")).unwrap();
        for p in pools {
            mgmt.put_pool(p).await.unwrap();
        }
        PooledStore::new(mgmt, settings(dir), Placement::Queue, clock())
    }

    /// What a pool on `uri` gives in a build without the engine's `feature`: registering it is
    /// refused (400), and a queue already placed on it fails (503), both naming the feature.
    #[cfg(not(all(feature = "redis", feature = "postgres")))]
    async fn assert_pool_refused(uri: &str, feature: &str) {
        use crate::engine::tests::assert_not_in_build;
        let r = capabilities(uri);
        assert!(matches!(r, Err(Error::Invalid(_))), "{uri}");
        assert_not_in_build(r, feature);
        let dir = tempfile::tempdir().unwrap();
        let store = pooled(dir.path(), &[]).await;
        let r = store.put_pool(pool("p", uri)).await;
        assert!(matches!(r, Err(Error::Invalid(_))), "{uri}");
        assert_not_in_build(r, feature);
        let dir = tempfile::tempdir().unwrap();
        let store = pooled(dir.path(), &[pool("p", uri)]).await;
        let r = store
            .create_queue(QueueRef::new("p", "q"), Default::default())
            .await;
        assert!(matches!(r, Err(Error::Unavailable(_))), "{uri}");
        assert_not_in_build(r, feature);
    }

    #[cfg(not(feature = "redis"))]
    #[tokio::test]
    async fn without_the_redis_feature_redis_pools_are_refused() {
        for uri in ["redis://127.0.0.1:6379", "redis+cluster://h:7000,h:7001"] {
            assert_pool_refused(uri, "redis").await;
        }
    }

    #[cfg(not(feature = "postgres"))]
    #[tokio::test]
    async fn without_the_postgres_feature_postgresql_pools_are_refused() {
        for uri in ["postgresql://u@127.0.0.1/db", "postgres://u@127.0.0.1/db"] {
            assert_pool_refused(uri, "postgres").await;
        }
    }

    #[cfg(feature = "redis")]
    #[tokio::test]
    async fn with_the_redis_feature_redis_pools_are_opened() {
        let caps = capabilities("redis://127.0.0.1:6379").unwrap();
        assert!(caps.contains(&"HIGH_THROUGHPUT"), "{caps:?}");
        // A standalone URI connects on first use: the pool's driver opens without a server.
        let dir = tempfile::tempdir().unwrap();
        let store = pooled(dir.path(), &[pool("p", "redis://127.0.0.1:1")]).await;
        let drivers = store.pool_drivers().await.unwrap();
        assert_eq!(drivers.len(), 1);
        assert!(drivers[0].1.is_ok(), "the Redis driver opens");
        store.shutdown().await;
    }

    #[cfg(feature = "postgres")]
    #[tokio::test]
    async fn with_the_postgres_feature_postgresql_pools_are_opened() {
        let caps = capabilities("postgresql://u@127.0.0.1/db").unwrap();
        assert!(caps.contains(&"DURABILITY"), "{caps:?}");
        // Opening needs a database (the integration tests have one); a bad schema name in the
        // pool's options is refused by the PostgreSQL driver itself before it connects.
        let dir = tempfile::tempdir().unwrap();
        let mut p = pool("p", "postgresql://u@127.0.0.1:1/db");
        p.options.insert("schema".into(), "Not-A-Schema".into());
        let store = pooled(dir.path(), &[p]).await;
        let Err(e) = store
            .create_queue(QueueRef::new("p", "q"), Default::default())
            .await
        else {
            panic!("expected the schema name to be refused")
        };
        assert!(
            e.description().contains("expected a lower-case identifier"),
            "{e}"
        );
    }

    #[cfg(not(feature = "postgres"))]
    #[tokio::test]
    async fn without_the_postgres_feature_the_sqlalchemy_management_store_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = store_config(dir.path(), "embedded");
        config.management_store = "sqlalchemy".into();
        let r = PooledStore::open(&config, clock()).await;
        assert!(matches!(r, Err(Error::Unavailable(_))));
        crate::engine::tests::assert_not_in_build(r, "postgres");
        config.management_store = "mongodb".into();
        let Err(e) = PooledStore::open(&config, clock()).await else {
            panic!("an unknown management store must be refused")
        };
        assert!(e.description().ends_with("(embedded)"), "{e}");
    }

    #[cfg(feature = "postgres")]
    #[tokio::test]
    async fn with_the_postgres_feature_the_sqlalchemy_management_store_is_opened() {
        // Opening needs a database (the integration tests have one); a bad schema name is
        // refused by the PostgreSQL management store itself before it connects.
        let dir = tempfile::tempdir().unwrap();
        let mut config = store_config(dir.path(), "embedded");
        config.management_store = "sqlalchemy".into();
        config.management_schema = "Not-A-Schema".into();
        let Err(e) = PooledStore::open(&config, clock()).await else {
            panic!("expected the schema name to be refused")
        };
        assert!(
            e.description()
                .contains("is not a valid lower-case identifier"),
            "{e}"
        );
        config.management_store = "mongodb".into();
        let Err(e) = PooledStore::open(&config, clock()).await else {
            panic!("an unknown management store must be refused")
        };
        assert!(e.description().ends_with("(embedded or sqlalchemy)"), "{e}");
    }

    #[tokio::test]
    async fn the_embedded_management_store_is_in_every_build() {
        let dir = tempfile::tempdir().unwrap();
        let store = PooledStore::open(&store_config(dir.path(), "embedded"), clock())
            .await
            .unwrap();
        store.ping().await.unwrap();
        store.shutdown().await;
    }
}
