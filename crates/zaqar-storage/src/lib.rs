//! The storage drivers: embedded (the default), Redis, PostgreSQL, and pooling over them. Each
//! implements the traits of [`zaqar_core::store`] and passes the same conformance suite.
//!
//! The Redis and PostgreSQL drivers (and the PostgreSQL management store) are compiled in by the
//! cargo features `redis` and `postgres`, both on by default. Their settings exist in every
//! build; an engine a build lacks is refused (at start-up, or when a pool names it) with an error
//! naming the feature (see [`engine`]).

pub mod embedded;
pub mod engine;
pub mod pooling;
pub mod postgres;
pub mod redis;

use std::sync::Arc;

use zaqar_core::clock::SharedClock;
use zaqar_core::error::Result;
use zaqar_core::secret::Secret;

pub use engine::{open_engine, DriverSettings, Engine};
use zaqar_core::store::DataStore;

/// What the server asks of the storage layer: the message store of `[drivers]`, and with
/// pooling the management store and placement rule.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `[drivers] message_store`.
    pub message_store: String,
    /// `[drivers:message_store:redis] uri`.
    pub redis_uri: Secret,
    /// `[drivers:message_store:postgresql] uri`.
    pub postgresql_uri: Secret,
    /// Every engine's settings (the embedded store's location included).
    pub drivers: DriverSettings,
    /// `[drivers] management_store`: `embedded` or `sqlalchemy`.
    pub management_store: String,
    /// `[drivers:management_store:sqlalchemy] uri`.
    pub management_uri: Secret,
    /// `[drivers:management_store:sqlalchemy] schema` (empty: the connection's search_path).
    pub management_schema: String,
    /// `[pooling:catalog] placement`.
    pub placement: pooling::Placement,
}

/// Opens the message store named by `[drivers] message_store`.
pub async fn open(config: &StoreConfig, clock: SharedClock) -> Result<Arc<dyn DataStore>> {
    let engine = Engine::from_name(&config.message_store)?;
    let uri = match engine {
        Engine::Embedded => "",
        Engine::Redis => &config.redis_uri.0,
        Engine::Postgres => &config.postgresql_uri.0,
    };
    open_engine(engine, uri, &config.drivers, clock).await
}
