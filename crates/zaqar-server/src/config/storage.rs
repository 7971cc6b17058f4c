//! Where data is kept: the Redis, PostgreSQL and embedded message stores, the SQLAlchemy
//! management store, the placement of queues on pools, and what pooling needs of them.

use std::path::PathBuf;

use super::resolve::Resolver;
use super::{
    Config, ConfigError, EmbeddedStoreConfig, PostgresStoreConfig, RedisStoreConfig, Secret,
};

/// `[drivers:message_store:redis]`: the URI (a secret, kept apart) and the other options.
pub(super) fn redis(r: &Resolver<'_>) -> Result<(Secret, RedisStoreConfig), ConfigError> {
    let uri = Secret(r.string("drivers:message_store:redis", "uri"));
    let settings = RedisStoreConfig {
        key_prefix: r.string("drivers:message_store:redis", "key_prefix"),
        connect_timeout_ms: r.int(
            "drivers:message_store:redis",
            "connect_timeout_ms",
            1,
            600_000,
        )? as u64,
        operation_timeout_ms: r.int(
            "drivers:message_store:redis",
            "operation_timeout_ms",
            1,
            3_600_000,
        )? as u64,
        gc_interval_secs: r.int("drivers:message_store:redis", "gc_interval", 1, 86_400)? as u64,
    };
    Ok((uri, settings))
}

/// `[drivers:message_store:postgresql]`: the URI (a secret, kept apart) and the other options.
pub(super) fn postgresql(r: &Resolver<'_>) -> Result<(Secret, PostgresStoreConfig), ConfigError> {
    const P: &str = "drivers:message_store:postgresql";
    let uri = Secret(r.string(P, "uri"));
    let settings = PostgresStoreConfig {
        schema: r.string(P, "schema").trim().to_string(),
        max_connections: r.int(P, "max_connections", 1, 10_000)? as u32,
        acquire_timeout_secs: r.int(P, "acquire_timeout", 1, 3600)? as u64,
        statement_timeout_secs: r.int(P, "statement_timeout", 0, 86_400)? as u64,
        gc_interval_secs: r.int(P, "gc_interval", 1, 86_400)? as u64,
    };
    Ok((uri, settings))
}

/// `[drivers:management_store:sqlalchemy]`: the URI and the schema (empty: the connection's
/// search_path).
pub(super) fn management_sqlalchemy(r: &Resolver<'_>) -> (Secret, String) {
    let uri = Secret(r.string("drivers:management_store:sqlalchemy", "uri"));
    let schema = r
        .string("drivers:management_store:sqlalchemy", "schema")
        .trim()
        .to_string();
    (uri, schema)
}

/// `[pooling:catalog] placement`: `queue` or `project`.
pub(super) fn pooling_placement(r: &Resolver<'_>) -> Result<String, ConfigError> {
    r.choice("pooling:catalog", "placement", &["queue", "project"])
}

/// `[drivers:message_store:embedded]`.
pub(super) fn embedded(r: &Resolver<'_>) -> Result<EmbeddedStoreConfig, ConfigError> {
    const E: &str = "drivers:message_store:embedded";
    Ok(EmbeddedStoreConfig {
        path: PathBuf::from(r.string(E, "path")),
        shards: r.int(E, "shards", 1, 64)? as usize,
        cache_size_mb: r.int(E, "cache_size_mb", 1, 1 << 20)? as usize,
        gc_interval_secs: r.int(E, "gc_interval", 1, 86_400)? as u64,
    })
}

/// Pooling keeps its catalog in the management store, so it needs one that can hold it, and
/// an SQLAlchemy one needs its URI.
pub(super) fn check_pooling(config: &Config) -> Result<(), ConfigError> {
    if config.pooling && !matches!(config.management_store.as_str(), "embedded" | "sqlalchemy") {
        return Err(ConfigError(format!(
            "option [drivers] management_store = {}: pooling needs embedded or sqlalchemy",
            config.management_store
        )));
    }
    if config.pooling
        && config.management_store == "sqlalchemy"
        && config.management_sqlalchemy_uri.0.trim().is_empty()
    {
        return Err(ConfigError(
            "option [drivers:management_store:sqlalchemy] uri is required with pooling and \
             management_store = sqlalchemy"
                .into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::tests::load;
    use crate::config::{Config, Origin, RawConfig};

    #[test]
    fn pooling_options() {
        let (c, w) = load("[DEFAULT]\npooling = true\n").unwrap();
        assert!(c.pooling && w.is_empty());
        assert_eq!(c.management_store, "embedded");
        assert_eq!(c.pooling_placement, "queue");
        let e = load("[DEFAULT]\npooling = true\n[drivers]\nmanagement_store = sqlalchemy\n")
            .unwrap_err();
        assert!(
            e.0.contains("[drivers:management_store:sqlalchemy] uri"),
            "{e}"
        );
        let e =
            load("[DEFAULT]\npooling = true\n[drivers]\nmanagement_store = mongodb\n").unwrap_err();
        assert!(e.0.contains("management_store"), "{e}");
        let (c, _) = load(
            "[DEFAULT]\npooling = true\n[drivers]\nmanagement_store = sqlalchemy\n\
             [drivers:management_store:sqlalchemy]\nuri = postgresql://db/z\nschema = cat\n\
             [pooling:catalog]\nplacement = project\nenable_virtual_pool = false\n",
        )
        .unwrap();
        assert_eq!(c.management_sqlalchemy_schema, "cat");
        assert_eq!(c.pooling_placement, "project");
        assert!(load("[pooling:catalog]\nplacement = random\n").is_err());
    }

    #[test]
    fn postgresql_options() {
        let mut raw = RawConfig::default();
        raw.load_str(
            "[drivers]\nmessage_store = postgresql\nmanagement_store = sqlalchemy\n\
             [drivers:message_store:postgresql]\nuri = postgresql://u:pw@db:5432/zaqar\n\
             schema = tenant_a\nmax_connections = 5\nacquire_timeout = 2\nstatement_timeout = 0\n\
             gc_interval = 3\n\
             [drivers:management_store:sqlalchemy]\nuri = postgresql://u:pw@db:5432/mgmt\n",
            Origin::Cli,
        )
        .unwrap();
        let (c, warnings) = Config::from_raw(&raw, true).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(c.message_store, "postgresql");
        assert_eq!(c.management_store, "sqlalchemy");
        assert_eq!(c.postgresql_uri.0, "postgresql://u:pw@db:5432/zaqar");
        assert_eq!(c.postgresql.schema, "tenant_a");
        assert_eq!(c.postgresql.max_connections, 5);
        assert_eq!(c.postgresql.acquire_timeout_secs, 2);
        assert_eq!(c.postgresql.statement_timeout_secs, 0);
        assert_eq!(c.postgresql.gc_interval_secs, 3);
        assert_eq!(
            c.management_sqlalchemy_uri.0,
            "postgresql://u:pw@db:5432/mgmt"
        );
        assert!(
            !format!("{c:?}").contains("pw@"),
            "URIs are secrets, never printed"
        );
        let d = Config::defaults().postgresql;
        assert_eq!(d.schema, "zaqar");
        assert!(zaqar_storage::postgres::valid_schema_name(&d.schema));
    }
}
