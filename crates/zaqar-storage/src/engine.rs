//! The one engine selector: `[drivers] message_store` names an engine, a pool URI's scheme
//! names one, and both open it through [`open_engine`].

use std::sync::Arc;
use std::time::Duration;

use zaqar_core::clock::SharedClock;
use zaqar_core::error::{Error, Result};
use zaqar_core::store::DataStore;

use super::embedded::{EmbeddedStore, EmbeddedStoreConfig};
use super::postgres::{PostgresStore, PostgresStoreConfig};
use super::redis::{RedisStore, RedisStoreConfig};

/// A storage engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Embedded,
    Redis,
    Postgres,
}

/// The URI schemes of pool URIs, for error messages.
const SCHEMES: &str = "embedded://, redis://, rediss://, redis+cluster://, redis+sentinel://, \
                       postgresql://";

impl Engine {
    /// The engine of `[drivers] message_store`.
    pub fn from_name(name: &str) -> Result<Engine> {
        match name {
            "embedded" => Ok(Engine::Embedded),
            "redis" => Ok(Engine::Redis),
            "postgresql" => Ok(Engine::Postgres),
            other => Err(Error::Unavailable(format!(
                "[drivers] message_store = {other} is not available in this build \
                 (embedded, redis or postgresql)"
            ))),
        }
    }

    /// The engine of a pool URI, by its scheme.
    pub fn from_uri(uri: &str) -> Result<Engine> {
        let scheme = uri.trim().split_once("://").map(|x| x.0).unwrap_or("");
        match scheme {
            "embedded" => Ok(Engine::Embedded),
            "redis" | "rediss" | "redis+cluster" | "redis+sentinel" => Ok(Engine::Redis),
            "postgresql" | "postgres" => Ok(Engine::Postgres),
            _ => Err(Error::invalid(format!(
                "cannot connect to {uri}: unsupported scheme (expected {SCHEMES})"
            ))),
        }
    }

    /// Capability names of the engine (spec §1.11).
    pub fn capabilities(self) -> Vec<&'static str> {
        match self {
            Engine::Embedded | Engine::Postgres => vec!["FIFO", "CLAIMS", "DURABILITY", "AOD"],
            Engine::Redis => vec!["FIFO", "CLAIMS", "AOD", "HIGH_THROUGHPUT"],
        }
    }
}

/// The settings of every engine (for pools: the defaults, before a pool's URI and options).
#[derive(Debug, Clone)]
pub struct DriverSettings {
    pub embedded: EmbeddedStoreConfig,
    pub redis: RedisStoreConfig,
    pub postgresql: PostgresStoreConfig,
}

/// Opens an engine and starts its expired-data sweep. `uri` is the backend's URI (Redis,
/// PostgreSQL); the embedded engine takes its location from `settings.embedded.path`.
pub async fn open_engine(
    engine: Engine,
    uri: &str,
    settings: &DriverSettings,
    clock: SharedClock,
) -> Result<Arc<dyn DataStore>> {
    Ok(match engine {
        Engine::Embedded => {
            let cfg = &settings.embedded;
            let store = EmbeddedStore::open(cfg, clock)?;
            store.start_gc(Duration::from_secs(cfg.gc_interval_secs));
            store
        }
        Engine::Redis => {
            let cfg = &settings.redis;
            let store = RedisStore::open(uri, cfg, clock).await?;
            store.start_gc(Duration::from_secs(cfg.gc_interval_secs));
            store
        }
        Engine::Postgres => {
            let cfg = &settings.postgresql;
            let store = PostgresStore::open(uri, cfg, clock).await?;
            store.start_gc(Duration::from_secs(cfg.gc_interval_secs));
            store
        }
    })
}
