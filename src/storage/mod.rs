//! The storage drivers: embedded (the default), Redis, PostgreSQL, and pooling over them. Each
//! implements the traits of [`crate::store`] and passes the same conformance suite.

pub mod embedded;
pub mod pooling;
pub mod postgres;
pub mod redis;

use std::sync::Arc;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::store::DataStore;

/// Opens the message store named by `[drivers] message_store`.
pub async fn open(config: &Config, clock: SharedClock) -> Result<Arc<dyn DataStore>> {
    match config.message_store.as_str() {
        "embedded" => {
            let store = embedded::EmbeddedStore::open(&config.embedded, clock)?;
            store.start_gc(std::time::Duration::from_secs(
                config.embedded.gc_interval_secs,
            ));
            Ok(store)
        }
        "redis" => {
            let store =
                self::redis::RedisStore::open(&config.redis_uri.0, &config.redis, clock).await?;
            store.start_gc(std::time::Duration::from_secs(
                config.redis.gc_interval_secs,
            ));
            Ok(store)
        }
        "postgresql" => {
            let store =
                postgres::PostgresStore::open(&config.postgresql_uri.0, &config.postgresql, clock)
                    .await?;
            store.start_gc(std::time::Duration::from_secs(
                config.postgresql.gc_interval_secs,
            ));
            Ok(store)
        }
        other => Err(Error::Unavailable(format!(
            "[drivers] message_store = {other} is not available in this build"
        ))),
    }
}

