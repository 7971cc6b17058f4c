//! The one engine selector: `[drivers] message_store` names an engine, a pool URI's scheme
//! names one, and both open it through [`open_engine`].
//!
//! The Redis and PostgreSQL drivers are compiled in by the cargo features `redis` and
//! `postgres`. Every [`Engine`] and the settings of every engine exist in any build, so
//! configuration parses the same; naming an engine this build lacks fails at start-up (or when
//! the pool is registered) with an error that names the feature.

use std::sync::Arc;
use std::time::Duration;

use zaqar_core::clock::SharedClock;
use zaqar_core::error::{Error, Result};
use zaqar_core::store::DataStore;

use super::embedded::{EmbeddedStore, EmbeddedStoreConfig};
use super::postgres::PostgresStoreConfig;
use super::redis::RedisStoreConfig;

/// A storage engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Embedded,
    Redis,
    Postgres,
}

/// Every engine, in the order error messages list them.
const ENGINES: [Engine; 3] = [Engine::Embedded, Engine::Redis, Engine::Postgres];

impl Engine {
    /// The engine of `[drivers] message_store`.
    pub fn from_name(name: &str) -> Result<Engine> {
        let engine = match name {
            "embedded" => Engine::Embedded,
            "redis" => Engine::Redis,
            "postgresql" => Engine::Postgres,
            other => {
                return Err(Error::Unavailable(format!(
                    "[drivers] message_store = {other} is not available in this build ({})",
                    available_names()
                )))
            }
        };
        match engine.missing() {
            Some(why) => Err(Error::Unavailable(format!(
                "[drivers] message_store = {name}: {why}"
            ))),
            None => Ok(engine),
        }
    }

    /// The engine of a pool URI, by its scheme.
    pub fn from_uri(uri: &str) -> Result<Engine> {
        let scheme = uri.trim().split_once("://").map(|x| x.0).unwrap_or("");
        let engine = match scheme {
            "embedded" => Engine::Embedded,
            "redis" | "rediss" | "redis+cluster" | "redis+sentinel" => Engine::Redis,
            "postgresql" | "postgres" => Engine::Postgres,
            _ => {
                return Err(Error::invalid(format!(
                    "cannot connect to {uri}: unsupported scheme (expected {})",
                    available_schemes()
                )))
            }
        };
        match engine.missing() {
            Some(why) => Err(Error::invalid(format!("cannot connect to {uri}: {why}"))),
            None => Ok(engine),
        }
    }

    /// The engine's name in `[drivers] message_store`.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Embedded => "embedded",
            Engine::Redis => "redis",
            Engine::Postgres => "postgresql",
        }
    }

    /// The cargo feature that compiles the engine's driver in (none for the embedded store,
    /// which every build has).
    pub fn feature(self) -> Option<&'static str> {
        match self {
            Engine::Embedded => None,
            Engine::Redis => Some("redis"),
            Engine::Postgres => Some("postgres"),
        }
    }

    /// Whether this build has the engine's driver.
    pub fn is_available(self) -> bool {
        match self {
            Engine::Embedded => true,
            Engine::Redis => cfg!(feature = "redis"),
            Engine::Postgres => cfg!(feature = "postgres"),
        }
    }

    /// Why the engine cannot be used in this build, if it cannot.
    fn missing(self) -> Option<String> {
        let feature = self.feature().filter(|_| !self.is_available())?;
        Some(format!(
            "the {} engine is not available in this build (it needs the cargo feature \
             `{feature}`)",
            self.name()
        ))
    }

    /// Capability names of the engine (spec §1.11).
    pub fn capabilities(self) -> Vec<&'static str> {
        match self {
            Engine::Embedded | Engine::Postgres => vec!["FIFO", "CLAIMS", "DURABILITY", "AOD"],
            Engine::Redis => vec!["FIFO", "CLAIMS", "AOD", "HIGH_THROUGHPUT"],
        }
    }
}

/// The names of the engines of this build, for error messages: "embedded, redis or postgresql".
fn available_names() -> String {
    let names: Vec<&str> = ENGINES
        .iter()
        .filter(|e| e.is_available())
        .map(|e| e.name())
        .collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => names.concat(),
    }
}

/// The URI schemes of pool URIs this build opens, for error messages.
fn available_schemes() -> String {
    ENGINES
        .iter()
        .filter(|e| e.is_available())
        .map(|e| match e {
            Engine::Embedded => "embedded://",
            Engine::Redis => "redis://, rediss://, redis+cluster://, redis+sentinel://",
            Engine::Postgres => "postgresql://",
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The settings of every engine (for pools: the defaults, before a pool's URI and options).
#[derive(Debug, Clone)]
pub struct DriverSettings {
    pub embedded: EmbeddedStoreConfig,
    pub redis: RedisStoreConfig,
    pub postgresql: PostgresStoreConfig,
}

/// Opens an engine and starts its expired-data sweep. `uri` is the backend's URI (Redis,
/// PostgreSQL); the embedded engine takes its location from `settings.embedded.path`. An engine
/// this build lacks fails with `Unavailable`.
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
        Engine::Redis => open_redis(uri, &settings.redis, clock).await?,
        Engine::Postgres => open_postgres(uri, &settings.postgresql, clock).await?,
    })
}

#[cfg(feature = "redis")]
async fn open_redis(
    uri: &str,
    cfg: &RedisStoreConfig,
    clock: SharedClock,
) -> Result<Arc<dyn DataStore>> {
    let store = super::redis::RedisStore::open(uri, cfg, clock).await?;
    store.start_gc(Duration::from_secs(cfg.gc_interval_secs));
    Ok(store)
}

#[cfg(not(feature = "redis"))]
async fn open_redis(
    _uri: &str,
    _cfg: &RedisStoreConfig,
    _clock: SharedClock,
) -> Result<Arc<dyn DataStore>> {
    Err(not_in_build(Engine::Redis))
}

#[cfg(feature = "postgres")]
async fn open_postgres(
    uri: &str,
    cfg: &PostgresStoreConfig,
    clock: SharedClock,
) -> Result<Arc<dyn DataStore>> {
    let store = super::postgres::PostgresStore::open(uri, cfg, clock).await?;
    store.start_gc(Duration::from_secs(cfg.gc_interval_secs));
    Ok(store)
}

#[cfg(not(feature = "postgres"))]
async fn open_postgres(
    _uri: &str,
    _cfg: &PostgresStoreConfig,
    _clock: SharedClock,
) -> Result<Arc<dyn DataStore>> {
    Err(not_in_build(Engine::Postgres))
}

/// The error of opening an engine this build lacks.
#[cfg(not(all(feature = "redis", feature = "postgres")))]
fn not_in_build(engine: Engine) -> Error {
    Error::Unavailable(engine.missing().unwrap_or_default())
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use zaqar_core::clock::{ManualClock, SharedClock};
    use zaqar_core::secret::Secret;

    use super::*;

    /// Settings of every engine for tests that need no backend (the embedded store in `dir`).
    pub(crate) fn settings(dir: &std::path::Path) -> DriverSettings {
        DriverSettings {
            embedded: EmbeddedStoreConfig {
                path: dir.to_path_buf(),
                shards: 1,
                cache_size_mb: 8,
                gc_interval_secs: 3600,
            },
            redis: RedisStoreConfig {
                key_prefix: "zaqar-unit".into(),
                connect_timeout_ms: 200,
                operation_timeout_ms: 200,
                gc_interval_secs: 3600,
            },
            postgresql: PostgresStoreConfig {
                schema: String::new(),
                max_connections: 1,
                acquire_timeout_secs: 1,
                statement_timeout_secs: 0,
                gc_interval_secs: 3600,
            },
        }
    }

    fn clock() -> SharedClock {
        Arc::new(ManualClock::default())
    }

    /// The storage settings of the server for tests that need no backend.
    pub(crate) fn store_config(dir: &std::path::Path, message_store: &str) -> crate::StoreConfig {
        crate::StoreConfig {
            message_store: message_store.into(),
            redis_uri: Secret("redis://127.0.0.1:1".into()),
            postgresql_uri: Secret("postgresql://u@127.0.0.1:1/db".into()),
            drivers: settings(dir),
            management_store: "embedded".into(),
            management_uri: Secret("postgresql://u@127.0.0.1:1/db".into()),
            management_schema: String::new(),
            placement: crate::pooling::Placement::Queue,
        }
    }

    /// Asserts that `r` is the start-up error of an engine this build lacks.
    #[cfg(not(all(feature = "redis", feature = "postgres")))]
    pub(crate) fn assert_not_in_build<T>(r: Result<T>, feature: &str) {
        let Err(e) = r else {
            panic!("expected the engine to be refused")
        };
        let text = e.description();
        assert!(text.contains("not available in this build"), "{text}");
        assert!(
            text.contains(&format!("cargo feature `{feature}`")),
            "{text}"
        );
    }

    #[tokio::test]
    async fn the_embedded_engine_is_in_every_build() {
        assert_eq!(Engine::from_name("embedded").unwrap(), Engine::Embedded);
        assert_eq!(Engine::from_uri("embedded://x").unwrap(), Engine::Embedded);
        assert!(Engine::Embedded.is_available());
        assert_eq!(Engine::Embedded.feature(), None);
        let dir = tempfile::tempdir().unwrap();
        let store = open_engine(Engine::Embedded, "", &settings(dir.path()), clock())
            .await
            .unwrap();
        store.ping().await.unwrap();
        store.shutdown().await;
    }

    #[test]
    fn unknown_names_and_schemes_list_the_engines_of_this_build() {
        let names = match (cfg!(feature = "redis"), cfg!(feature = "postgres")) {
            (true, true) => "embedded, redis or postgresql",
            (true, false) => "embedded or redis",
            (false, true) => "embedded or postgresql",
            (false, false) => "embedded",
        };
        let e = Engine::from_name("mongodb").unwrap_err();
        assert!(matches!(e, Error::Unavailable(_)));
        assert_eq!(
            e.description(),
            format!("[drivers] message_store = mongodb is not available in this build ({names})")
        );
        let e = Engine::from_uri("mongodb://h").unwrap_err();
        assert!(matches!(e, Error::Invalid(_)));
        let text = e.description();
        assert!(
            text.contains("unsupported scheme (expected embedded://"),
            "{text}"
        );
        assert_eq!(text.contains("redis://"), cfg!(feature = "redis"), "{text}");
        assert_eq!(
            text.contains("postgresql://"),
            cfg!(feature = "postgres"),
            "{text}"
        );
    }

    #[cfg(feature = "redis")]
    #[tokio::test]
    async fn with_the_redis_feature_the_redis_engine_is_selected_and_opens() {
        assert_eq!(Engine::from_name("redis").unwrap(), Engine::Redis);
        for uri in [
            "redis://127.0.0.1:6379",
            "rediss://h:6380",
            "redis+cluster://h:7000,h:7001",
            "redis+sentinel://h:26379/mymaster",
        ] {
            assert_eq!(Engine::from_uri(uri).unwrap(), Engine::Redis, "{uri}");
        }
        assert!(Engine::Redis.is_available());
        // A standalone URI connects on first use: the store opens without a server.
        let dir = tempfile::tempdir().unwrap();
        let store = crate::open(&store_config(dir.path(), "redis"), clock())
            .await
            .unwrap();
        store.shutdown().await;
        let store = open_engine(
            Engine::Redis,
            "redis://127.0.0.1:1",
            &settings(dir.path()),
            clock(),
        )
        .await
        .unwrap();
        store.shutdown().await;
    }

    #[cfg(not(feature = "redis"))]
    #[tokio::test]
    async fn without_the_redis_feature_the_redis_engine_is_refused() {
        assert!(!Engine::Redis.is_available());
        assert_eq!(Engine::Redis.feature(), Some("redis"));
        let r = Engine::from_name("redis");
        assert!(matches!(r, Err(Error::Unavailable(_))));
        assert_not_in_build(r, "redis");
        for uri in [
            "redis://127.0.0.1:6379",
            "rediss://h:6380",
            "redis+cluster://h:7000,h:7001",
            "redis+sentinel://h:26379/mymaster",
        ] {
            let r = Engine::from_uri(uri);
            assert!(matches!(r, Err(Error::Invalid(_))), "{uri}");
            assert_not_in_build(r, "redis");
        }
        let dir = tempfile::tempdir().unwrap();
        let r = open_engine(
            Engine::Redis,
            "redis://127.0.0.1:6379",
            &settings(dir.path()),
            clock(),
        )
        .await;
        assert!(matches!(r, Err(Error::Unavailable(_))));
        assert_not_in_build(r, "redis");
        let r = crate::open(&store_config(dir.path(), "redis"), clock()).await;
        assert_not_in_build(r, "redis");
    }

    #[cfg(feature = "postgres")]
    #[tokio::test]
    async fn with_the_postgres_feature_the_postgresql_engine_is_selected_and_opened() {
        assert_eq!(Engine::from_name("postgresql").unwrap(), Engine::Postgres);
        for uri in ["postgresql://u@h/db", "postgres://u@h/db"] {
            assert_eq!(Engine::from_uri(uri).unwrap(), Engine::Postgres, "{uri}");
        }
        assert!(Engine::Postgres.is_available());
        // Opening needs a database (the integration tests have one); a bad schema name is
        // refused by the driver itself before it connects.
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(dir.path());
        s.postgresql.schema = "Not-A-Schema".into();
        let Err(e) = open_engine(Engine::Postgres, "postgresql://u@h/db", &s, clock()).await else {
            panic!("expected the schema name to be refused")
        };
        let text = e.description();
        assert!(text.contains("expected a lower-case identifier"), "{text}");
    }

    #[cfg(not(feature = "postgres"))]
    #[tokio::test]
    async fn without_the_postgres_feature_the_postgresql_engine_is_refused() {
        assert!(!Engine::Postgres.is_available());
        assert_eq!(Engine::Postgres.feature(), Some("postgres"));
        let r = Engine::from_name("postgresql");
        assert!(matches!(r, Err(Error::Unavailable(_))));
        assert_not_in_build(r, "postgres");
        for uri in ["postgresql://u@h/db", "postgres://u@h/db"] {
            let r = Engine::from_uri(uri);
            assert!(matches!(r, Err(Error::Invalid(_))), "{uri}");
            assert_not_in_build(r, "postgres");
        }
        let dir = tempfile::tempdir().unwrap();
        let r = open_engine(
            Engine::Postgres,
            "postgresql://u@h/db",
            &settings(dir.path()),
            clock(),
        )
        .await;
        assert!(matches!(r, Err(Error::Unavailable(_))));
        assert_not_in_build(r, "postgres");
        let r = crate::open(&store_config(dir.path(), "postgresql"), clock()).await;
        assert_not_in_build(r, "postgres");
    }
}
