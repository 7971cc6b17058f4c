//! Configuration: Zaqar's `zaqar.conf` INI layout, `ZAQAR_*` environment overrides and command-line
//! overrides, resolved against one registry of known options ([`OPTIONS`]).
//!
//! Precedence (last wins): defaults < config files (in the order given) < environment < CLI.
//! An invalid value is an error naming the option and where the value came from; an option that is
//! not in the registry is a warning (an error in strict mode).
//!
//! - `raw`: the values as written, with their origin (files, environment, command line).
//! - `resolve`: typed reading against the registry, and the report of unknown options.
//! - one module per group of sections: `limits`, `security`, `notifications`, `storage`,
//!   `listeners`, `observability`.
//! - `reference`: the option reference generated from the registry.

mod limits;
mod listeners;
mod notifications;
mod observability;
mod options;
mod raw;
mod reference;
mod resolve;
mod security;
mod storage;

use std::fmt;
use std::path::PathBuf;

use resolve::Resolver;

pub use limits::QuotaConfig;
pub use observability::{AdminConfig, LogFormat, OtelConfig};
pub use options::{OptKind, OptSpec, OPTIONS};
pub use raw::{env_section, Origin, RawConfig};
pub use reference::{reference_document, reference_markdown};
pub use security::EncryptionConfig;

// The settings types of the crates that use them, re-exported so that every part of the
// configuration can be named from this module.
pub use zaqar_api::auth::keystone::KeystoneConfig;
pub use zaqar_api::http::CorsConfig;
pub use zaqar_api::ws::WebSocketConfig;
pub use zaqar_core::secret::Secret;
pub use zaqar_core::service::limits::{ClientIdMode, Limits};
pub use zaqar_core::service::validate::parse_bool;
pub use zaqar_storage::embedded::EmbeddedStoreConfig;
pub use zaqar_storage::postgres::PostgresStoreConfig;
pub use zaqar_storage::redis::RedisStoreConfig;

/// A configuration that cannot be used; the message names the option at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

#[derive(Debug, Clone)]
pub struct Config {
    pub admin_mode: bool,
    pub pooling: bool,
    pub unreliable: bool,
    /// `""` (no authentication) or `"keystone"`.
    pub auth_strategy: String,
    /// `[keystone_authtoken]`, used when `auth_strategy = keystone`.
    pub keystone: KeystoneConfig,
    /// `[oslo_policy] policy_file`.
    pub policy_file: Option<PathBuf>,
    pub enable_checksum: bool,
    pub debug: bool,
    pub log_format: LogFormat,
    /// Longest long-polling wait in seconds (0 disables long polling).
    pub max_wait: i64,
    pub encryption: EncryptionConfig,
    /// `[signed_url] secret_key`.
    pub signed_url_key: Option<Secret>,
    /// `[quotas]`.
    pub quotas: QuotaConfig,
    /// `[notification]`.
    pub notification: zaqar_notify::NotifierConfig,
    /// `[cors]`.
    pub cors: CorsConfig,
    pub message_store: String,
    /// `[drivers:message_store:redis] uri`.
    pub redis_uri: Secret,
    /// `[drivers:message_store:redis]` options other than the URI.
    pub redis: RedisStoreConfig,
    /// `[drivers:message_store:postgresql] uri`.
    pub postgresql_uri: Secret,
    /// `[drivers:message_store:postgresql]` options other than the URI.
    pub postgresql: PostgresStoreConfig,
    /// `[drivers:management_store:sqlalchemy] uri`.
    pub management_sqlalchemy_uri: Secret,
    /// `[drivers:management_store:sqlalchemy] schema` (empty: the connection's search_path).
    pub management_sqlalchemy_schema: String,
    /// `[pooling:catalog] placement`: `queue` or `project`.
    pub pooling_placement: String,
    pub management_store: String,
    pub transport: String,
    pub bind: String,
    pub port: u16,
    pub max_connections: usize,
    pub max_header_bytes: usize,
    pub header_read_timeout_secs: u64,
    pub shutdown_timeout_secs: u64,
    pub websocket: WebSocketConfig,
    pub limits: Limits,
    pub embedded: EmbeddedStoreConfig,
    pub message_pipeline: Vec<String>,
    /// `[admin]`.
    pub admin: AdminConfig,
    /// `[opentelemetry]`.
    pub otel: OtelConfig,
}

/// A non-fatal remark produced while loading configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning(pub String);

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Config {
    /// What the storage layer needs of this configuration.
    pub fn store_config(&self) -> zaqar_storage::StoreConfig {
        use zaqar_storage::pooling::Placement;
        zaqar_storage::StoreConfig {
            message_store: self.message_store.clone(),
            redis_uri: self.redis_uri.clone(),
            postgresql_uri: self.postgresql_uri.clone(),
            drivers: zaqar_storage::DriverSettings {
                embedded: self.embedded.clone(),
                redis: self.redis.clone(),
                postgresql: self.postgresql.clone(),
            },
            management_store: self.management_store.clone(),
            management_uri: self.management_sqlalchemy_uri.clone(),
            management_schema: self.management_sqlalchemy_schema.clone(),
            placement: if self.pooling_placement == "project" {
                Placement::Project
            } else {
                Placement::Queue
            },
        }
    }

    /// Resolves every known option. Returns the configuration and the warnings (unknown options).
    /// With `strict`, unknown options are an error instead of a warning.
    /// Every invalid value and every unknown option that is an error is reported at once, one
    /// per line, in the order the options are read.
    pub fn from_raw(raw: &RawConfig, strict: bool) -> Result<(Config, Vec<Warning>), ConfigError> {
        let r = Resolver::new(raw);
        let resolved = Self::resolve(&r);
        let mut errors = r.take_errors();
        let config = match resolved {
            Ok(config) => Some(config),
            Err(e) => {
                errors.push(e.0);
                None
            }
        };
        let warnings = match r.unknown_options(strict) {
            Ok(w) => w,
            Err(e) => {
                errors.push(e.0);
                Vec::new()
            }
        };
        match config {
            Some(config) if errors.is_empty() => Ok((config, warnings)),
            _ => Err(ConfigError(errors.join("\n"))),
        }
    }

    /// Reads every option. An invalid value is recorded by the resolver (which goes on with
    /// the default); checks across options that fail end it with their error.
    fn resolve(r: &Resolver<'_>) -> Result<Config, ConfigError> {
        let service_limits = limits::service_limits(r)?;
        let auth_strategy = security::auth_strategy(r)?;
        let keystone = security::keystone(r)?;
        let policy_file = security::policy_file(r);
        let log_format = observability::log_format(r)?;
        let message_store = r.choice(
            "drivers",
            "message_store",
            &["embedded", "redis", "postgresql"],
        )?;
        let management_store = r.choice(
            "drivers",
            "management_store",
            &["embedded", "sqlalchemy", "mongodb", "redis"],
        )?;
        let transport = r.choice("drivers", "transport", &["wsgi", "websocket"])?;

        const D: &str = "DEFAULT";
        let admin_mode = r.bool(D, "admin_mode")?;
        let pooling = r.bool(D, "pooling")?;
        let unreliable = r.bool(D, "unreliable")?;
        let enable_checksum = r.bool(D, "enable_checksum")?;
        let debug = r.bool(D, "debug")?;
        let max_wait = r.int("transport", "max_wait", 0, 3600)?;
        let notification = notifications::notification_config(r)?;
        let quotas = limits::quotas(r)?;
        let cors = security::cors(r)?;
        let signed_url_key = security::signed_url_key(r);
        let encryption = security::encryption(r)?;
        let (redis_uri, redis) = storage::redis(r)?;
        let (postgresql_uri, postgresql) = storage::postgresql(r)?;
        let (management_sqlalchemy_uri, management_sqlalchemy_schema) =
            storage::management_sqlalchemy(r);
        let pooling_placement = storage::pooling_placement(r)?;
        let wsgi = listeners::wsgi(r)?;
        let websocket = listeners::websocket(r, &transport)?;
        let embedded = storage::embedded(r)?;
        let admin = observability::admin(r)?;
        let otel = observability::otel(r)?;
        let config = Config {
            admin_mode,
            pooling,
            unreliable,
            auth_strategy,
            keystone,
            policy_file,
            enable_checksum,
            debug,
            log_format,
            max_wait,
            notification,
            quotas,
            cors,
            signed_url_key,
            encryption,
            message_store,
            redis_uri,
            redis,
            postgresql_uri,
            postgresql,
            management_sqlalchemy_uri,
            management_sqlalchemy_schema,
            pooling_placement,
            management_store,
            transport,
            bind: wsgi.bind,
            port: wsgi.port,
            max_connections: wsgi.max_connections,
            max_header_bytes: wsgi.max_header_bytes,
            header_read_timeout_secs: wsgi.header_read_timeout_secs,
            shutdown_timeout_secs: wsgi.shutdown_timeout_secs,
            websocket,
            limits: service_limits,
            embedded,
            message_pipeline: r.list("storage", "message_pipeline"),
            admin,
            otel,
        };
        listeners::check_websocket(&config.websocket)?;
        storage::check_pooling(&config)?;
        Ok(config)
    }

    /// The configuration with every option at its default.
    pub fn defaults() -> Config {
        Config::from_raw(&RawConfig::default(), false)
            .expect("defaults are valid")
            .0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resolves `text` as if it were a `zaqar.conf` file; the tests of every module use it.
    pub(super) fn load(text: &str) -> Result<(Config, Vec<Warning>), ConfigError> {
        let mut raw = RawConfig::default();
        raw.load_str(text, Origin::File("zaqar.conf".into()))?;
        Config::from_raw(&raw, false)
    }

    #[test]
    fn defaults_match_the_spec() {
        let c = Config::defaults();
        assert_eq!(c.bind, "127.0.0.1");
        assert_eq!(c.port, 8888);
        assert_eq!(c.limits.default_message_ttl, 3600);
        assert_eq!(c.limits.max_message_ttl, 1_209_600);
        assert_eq!(c.limits.max_messages_post_size, 262_144);
        assert_eq!(c.limits.max_queue_metadata, 65_536);
        assert_eq!(c.limits.max_messages_per_claim_or_pop, 20);
        assert_eq!(c.limits.default_claim_grace, 60);
        assert_eq!(c.limits.client_id_uuid_safe, ClientIdMode::Strict);
        assert_eq!(c.limits.min_length_client_id, 10);
        assert_eq!(c.limits.max_length_client_id, 36);
        assert_eq!(
            c.limits.subscriber_types,
            vec!["http", "https", "mailto", "trust+http", "trust+https"]
        );
        assert!(!c.admin_mode);
    }

    #[test]
    fn reads_zaqar_conf_layout() {
        let (c, w) = load(
            "[DEFAULT]\nadmin_mode = True\n\n[drivers]\ntransport = wsgi\nmessage_store = embedded\n\
             [drivers:transport:wsgi]\nbind = 0.0.0.0\nport = 9999\n\
             [transport]\nmax_messages_per_page = 15\nclient_id_uuid_safe = off\n",
        )
        .unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert!(c.admin_mode);
        assert_eq!(c.bind, "0.0.0.0");
        assert_eq!(c.port, 9999);
        assert_eq!(c.limits.max_messages_per_page, 15);
        assert_eq!(c.limits.client_id_uuid_safe, ClientIdMode::Off);
    }

    #[test]
    fn every_registered_option_is_read() {
        // Setting every option to its own default must produce no 'unknown option' warning:
        // the registry and the resolver cannot drift apart.
        let mut raw = RawConfig::default();
        for s in OPTIONS {
            raw.set(s.section, s.name, s.default, Origin::Cli);
        }
        let (_, w) = Config::from_raw(&raw, true).unwrap();
        assert!(w.is_empty());
    }
}
