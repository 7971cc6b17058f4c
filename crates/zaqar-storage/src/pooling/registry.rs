//! The pool registry of [`PooledStore`]: the pool list of the management store, refreshed
//! when stale, and each pool's driver, opened on first use.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use crate::{open_engine, Engine};
use zaqar_core::error::{Error, Result};
use zaqar_core::store::management::Pool;
use zaqar_core::store::DataStore;

use super::{Entry, PooledStore, REFRESH, RETRY_OPEN};

impl PooledStore {
    /// Reloads the pool list when it is older than [`REFRESH`] (or always with `force`).
    /// Drivers of removed pools, or of pools whose URI or options changed, are closed.
    pub(super) async fn refresh(&self, force: bool) -> Result<()> {
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
    pub(super) async fn pool_list(&self) -> Result<Vec<Pool>> {
        self.refresh(false).await?;
        let reg = self.registry.read().unwrap();
        Ok(reg.pools.values().map(|e| e.pool.clone()).collect())
    }

    /// Opens the driver a pool's URI names, with the pool's options over the defaults.
    pub(super) async fn open_driver(&self, pool: &Pool) -> Result<Arc<dyn DataStore>> {
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
    pub(super) async fn driver(&self, name: &str) -> Result<Arc<dyn DataStore>> {
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
}
