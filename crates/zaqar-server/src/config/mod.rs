//! Configuration: Zaqar's `zaqar.conf` INI layout, `ZAQAR_*` environment overrides and command-line
//! overrides, resolved against one registry of known options ([`OPTIONS`]).
//!
//! Precedence (last wins): defaults < config files (in the order given) < environment < CLI.
//! An invalid value is an error naming the option and where the value came from; an option that is
//! not in the registry is a warning (an error in strict mode).

mod options;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub use options::{OptKind, OptSpec, OPTIONS};

/// Where a raw value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    File(PathBuf),
    Env(String),
    Cli,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => write!(f, "default"),
            Origin::File(p) => write!(f, "config file {}", p.display()),
            Origin::Env(v) => write!(f, "environment variable {v}"),
            Origin::Cli => write!(f, "command line"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Raw option values, keyed by (section, option), both as written by the operator except that
/// the unnamed leading section and `DEFAULT` are the same section.
#[derive(Debug, Default, Clone)]
pub struct RawConfig {
    values: BTreeMap<(String, String), (String, Origin)>,
}

fn norm_section(s: &str) -> String {
    if s.eq_ignore_ascii_case("default") {
        "DEFAULT".to_string()
    } else {
        s.to_string()
    }
}

fn norm_option(o: &str) -> String {
    // oslo.config treats dashes and underscores in option names alike.
    o.trim().replace('-', "_")
}

impl RawConfig {
    pub fn set(&mut self, section: &str, option: &str, value: &str, origin: Origin) {
        self.values.insert(
            (norm_section(section), norm_option(option)),
            (value.to_string(), origin),
        );
    }

    /// Reads one `zaqar.conf`-style INI file.
    pub fn load_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read config file {}: {e}", path.display())))?;
        self.load_str(&text, Origin::File(path.to_path_buf()))
    }

    pub fn load_str(&mut self, text: &str, origin: Origin) -> Result<(), ConfigError> {
        let opt = ini::ParseOption {
            enabled_quote: true,
            enabled_escape: false,
            ..Default::default()
        };
        let parsed = ini::Ini::load_from_str_opt(text, opt)
            .map_err(|e| ConfigError(format!("cannot parse {origin}: {e}")))?;
        for (section, props) in parsed.iter() {
            let section = section.unwrap_or("DEFAULT");
            for (k, v) in props.iter() {
                self.set(section, k, v.trim(), origin.clone());
            }
        }
        Ok(())
    }

    /// Applies `ZAQAR_<SECTION>__<OPTION>` variables. The section part uses `_` for `:`, e.g.
    /// `ZAQAR_DRIVERS_TRANSPORT_WSGI__PORT=8889` or `ZAQAR_TRANSPORT__MAX_MESSAGES_PER_PAGE=10`.
    /// Variables that name no known option are returned so the caller can warn about them.
    pub fn load_env(&mut self, vars: impl IntoIterator<Item = (String, String)>) -> Vec<String> {
        let mut unknown = Vec::new();
        for (k, v) in vars {
            let Some(rest) = k.strip_prefix("ZAQAR_") else {
                continue;
            };
            let Some((sec, opt)) = rest.split_once("__") else {
                // Variables such as ZAQAR_TEST_REDIS_URL belong to other tools.
                continue;
            };
            match OPTIONS.iter().find(|s| {
                env_section(s.section).eq_ignore_ascii_case(sec)
                    && s.name.replace('-', "_").eq_ignore_ascii_case(opt)
            }) {
                Some(spec) => self.set(spec.section, spec.name, &v, Origin::Env(k.clone())),
                None => unknown.push(k),
            }
        }
        unknown
    }

    fn get(&self, section: &str, option: &str) -> Option<&(String, Origin)> {
        self.values.get(&(section.to_string(), norm_option(option)))
    }
}

/// The environment-variable spelling of a section name.
pub fn env_section(section: &str) -> String {
    section.replace([':', '-'], "_").to_ascii_uppercase()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

pub use zaqar_core::service::limits::{ClientIdMode, Limits};

pub use zaqar_api::auth::keystone::KeystoneConfig;

/// `[quotas]` options (0 = unlimited).
#[derive(Debug, Clone, Default)]
pub struct QuotaConfig {
    pub max_queues_per_project: u64,
    pub max_messages_per_queue: u64,
    pub max_bytes_per_project: u64,
    pub requests_per_second: u64,
    pub burst: u64,
    pub overrides_file: Option<PathBuf>,
    pub limits_cache_seconds: u64,
    pub bytes_cache_seconds: u64,
}

pub use zaqar_api::http::CorsConfig;
pub use zaqar_core::secret::Secret;
pub use zaqar_storage::embedded::EmbeddedStoreConfig;
pub use zaqar_storage::postgres::PostgresStoreConfig;
pub use zaqar_storage::redis::RedisStoreConfig;

/// Keys for encrypted queues (`[transport] message_encryption_key`, `[encryption]`).
#[derive(Debug, Clone, Default)]
pub struct EncryptionConfig {
    pub passphrase: Option<Secret>,
    pub key_file: Option<PathBuf>,
    pub current_key: Option<String>,
}

pub use zaqar_api::ws::WebSocketConfig;

/// The admin listener (`[admin]`): metrics, liveness and readiness.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub bind: String,
    /// 0: no admin listener.
    pub port: u16,
    /// Queues and projects exported as depth gauges (0: none).
    pub queue_depth_top: usize,
    pub queue_depth_interval_secs: u64,
    /// Serve the web console (and the v2 API beside it) on the admin listener.
    pub console: bool,
}

/// Trace export (`[opentelemetry]`; effective only in builds with the `otel` feature).
#[derive(Debug, Clone)]
pub struct OtelConfig {
    pub enabled: bool,
    pub endpoint: String,
    pub service_name: String,
}

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

/// Reads typed values out of a [`RawConfig`], recording which options were read so that the
/// remaining ones can be reported as unknown.
struct Resolver<'a> {
    raw: &'a RawConfig,
    used: Mutex<HashSet<(String, String)>>,
}

impl<'a> Resolver<'a> {
    fn spec(section: &str, name: &str) -> &'static OptSpec {
        OPTIONS
            .iter()
            .find(|s| s.section == section && s.name == name)
            .unwrap_or_else(|| panic!("option [{section}] {name} is not in the registry"))
    }

    fn raw(&self, section: &str, name: &str) -> (String, Origin) {
        let spec = Self::spec(section, name);
        self.used
            .lock()
            .unwrap()
            .insert((section.to_string(), norm_option(name)));
        match self.raw.get(section, name) {
            Some((v, o)) => (v.clone(), o.clone()),
            None => (spec.default.to_string(), Origin::Default),
        }
    }

    fn err(section: &str, name: &str, value: &str, origin: &Origin, why: &str) -> ConfigError {
        ConfigError(format!(
            "invalid value {value:?} for option [{section}] {name} (from {origin}): {why}"
        ))
    }

    fn string(&self, section: &str, name: &str) -> String {
        self.raw(section, name).0
    }

    fn bool(&self, section: &str, name: &str) -> Result<bool, ConfigError> {
        let (v, o) = self.raw(section, name);
        parse_bool(&v).ok_or_else(|| Self::err(section, name, &v, &o, "expected true or false"))
    }

    fn int(&self, section: &str, name: &str, min: i64, max: i64) -> Result<i64, ConfigError> {
        let (v, o) = self.raw(section, name);
        let n: i64 = v
            .trim()
            .parse()
            .map_err(|_| Self::err(section, name, &v, &o, "expected an integer"))?;
        if n < min || n > max {
            return Err(Self::err(
                section,
                name,
                &v,
                &o,
                &format!("must be between {min} and {max}"),
            ));
        }
        Ok(n)
    }

    fn list(&self, section: &str, name: &str) -> Vec<String> {
        let (v, _) = self.raw(section, name);
        v.split(',')
            .map(|s| s.trim().trim_matches(|c| c == '[' || c == ']').trim())
            .map(|s| s.trim_matches(|c| c == '\'' || c == '"').to_string())
            .filter(|s| !s.is_empty())
            .collect()
    }

    fn choice(&self, section: &str, name: &str, allowed: &[&str]) -> Result<String, ConfigError> {
        let (v, o) = self.raw(section, name);
        let lower = v.trim().to_ascii_lowercase();
        if allowed.contains(&lower.as_str()) {
            Ok(lower)
        } else {
            Err(Self::err(
                section,
                name,
                &v,
                &o,
                &format!("must be one of: {}", allowed.join(", ")),
            ))
        }
    }
}

/// An oslo `DictOpt` value (`key:value,key:value`); a piece without `:` continues the previous
/// value (so values may contain commas).
fn parse_dict(text: &str) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let mut last: Option<String> = None;
    for piece in text.split(',') {
        match piece.split_once(':') {
            Some((k, v)) if !k.trim().contains(' ') && !k.trim().is_empty() => {
                let k = k.trim().to_string();
                out.insert(k.clone(), v.trim().to_string());
                last = Some(k);
            }
            _ => {
                if let Some(k) = &last {
                    let v = out.get_mut(k).expect("inserted");
                    v.push(',');
                    v.push_str(piece);
                }
            }
        }
    }
    out
}

fn template(
    r: &Resolver<'_>,
    name: &str,
    default: (&str, &str, &str),
) -> zaqar_notify::EmailTemplate {
    let d = parse_dict(&r.string("notification", name));
    zaqar_notify::EmailTemplate {
        topic: d
            .get("topic")
            .cloned()
            .unwrap_or_else(|| default.0.to_string()),
        body: d
            .get("body")
            .cloned()
            .unwrap_or_else(|| default.1.to_string()),
        sender: d
            .get("sender")
            .cloned()
            .unwrap_or_else(|| default.2.to_string()),
    }
}

fn notification_config(r: &Resolver<'_>) -> Result<zaqar_notify::NotifierConfig, ConfigError> {
    use zaqar_notify::{NotifierConfig, SmtpMode, SmtpTls};
    const N: &str = "notification";
    const SENDER: &str = "Zaqar Notifications <no-reply@openstack.org>";
    let smtp_mode = match r
        .choice(N, "smtp_mode", &["third_part", "self_local"])?
        .as_str()
    {
        "self_local" => SmtpMode::Smtp,
        _ => SmtpMode::Command,
    };
    let smtp_tls = match r
        .choice(N, "smtp_tls", &["tls", "starttls", "none"])?
        .as_str()
    {
        "starttls" => SmtpTls::StartTls,
        "none" => SmtpTls::None,
        _ => SmtpTls::Implicit,
    };
    let non_empty = |v: String| Some(v.trim().to_string()).filter(|v| !v.is_empty());
    Ok(NotifierConfig {
        require_confirmation: r.bool(N, "require_confirmation")?,
        max_workers: r.int(N, "max_notifier_workers", 1, 10_000)? as usize,
        webhook_timeout_secs: r.int(N, "webhook_timeout", 1, 600)? as u64,
        smtp_mode,
        smtp_command: r.string(N, "smtp_command"),
        smtp_host: r.string(N, "smtp_host"),
        smtp_port: r.int(N, "smtp_port", 1, 65535)? as u16,
        smtp_tls,
        smtp_user: r.string(N, "smtp_user_name"),
        smtp_password: Secret(r.string(N, "smtp_user_password")),
        external_confirmation_url: non_empty(r.string(N, "external_confirmation_url")),
        public_url: non_empty(r.string(N, "public_url")),
        confirmation_template: template(
            r,
            "subscription_confirmation_email_template",
            (
                "Zaqar Notification - Subscription Confirmation",
                "You have chosen to subscribe to the queue: {0}. This queue belongs to project: {1}. To confirm this subscription, click or visit this link below: {2}",
                SENDER,
            ),
        ),
        unsubscribe_template: template(
            r,
            "unsubscribe_confirmation_email_template",
            (
                "Zaqar Notification - Unsubscribe Confirmation",
                "You have unsubscribed successfully to the queue: {0}. This queue belongs to project: {1}. To resubscribe this subscription, click or visit this link below: {2}",
                SENDER,
            ),
        ),
    })
}

pub use zaqar_core::service::validate::parse_bool;

const I32MAX: i64 = i32::MAX as i64;

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
    pub fn from_raw(raw: &RawConfig, strict: bool) -> Result<(Config, Vec<Warning>), ConfigError> {
        let r = Resolver {
            raw,
            used: Mutex::new(HashSet::new()),
        };
        const T: &str = "transport";
        let uuid_mode = match r
            .choice(T, "client_id_uuid_safe", &["strict", "off"])?
            .as_str()
        {
            "off" => ClientIdMode::Off,
            _ => ClientIdMode::Strict,
        };
        let max_message_ttl = r.int(T, "max_message_ttl", 60, I32MAX)?;
        let max_claim_ttl = r.int(T, "max_claim_ttl", 60, I32MAX)?;
        let max_claim_grace = r.int(T, "max_claim_grace", 60, I32MAX)?;
        let max_message_delay = r.int(T, "max_message_delay", 0, I32MAX)?;
        let limits = Limits {
            default_message_ttl: r.int(T, "default_message_ttl", 60, max_message_ttl)?,
            default_message_delay: r.int(T, "default_message_delay", 0, max_message_delay)?,
            default_claim_ttl: r.int(T, "default_claim_ttl", 60, max_claim_ttl)?,
            default_claim_grace: r.int(T, "default_claim_grace", 60, max_claim_grace)?,
            default_subscription_ttl: r.int(T, "default_subscription_ttl", 60, I32MAX)?,
            max_queues_per_page: r.int(T, "max_queues_per_page", 1, 10_000)?,
            max_messages_per_page: r.int(T, "max_messages_per_page", 1, 10_000)?,
            max_subscriptions_per_page: r.int(T, "max_subscriptions_per_page", 1, 10_000)?,
            max_messages_per_claim_or_pop: r.int(T, "max_messages_per_claim_or_pop", 1, 10_000)?,
            max_queue_metadata: r.int(T, "max_queue_metadata", 1, 16 << 20)? as usize,
            max_messages_post_size: r.int(T, "max_messages_post_size", 1, 64 << 20)? as usize,
            max_message_ttl,
            max_message_delay,
            max_claim_ttl,
            max_claim_grace,
            max_pools_per_page: r.int(T, "max_pools_per_page", 1, 10_000)?,
            max_flavors_per_page: r.int(T, "max_flavors_per_page", 1, 10_000)?,
            subscriber_types: r.list(T, "subscriber_types"),
            client_id_uuid_safe: uuid_mode,
            min_length_client_id: r.int(T, "min_length_client_id", 1, 4096)? as usize,
            max_length_client_id: r.int(T, "max_length_client_id", 1, 4096)? as usize,
            message_delete_with_claim_id: r.bool(T, "message_delete_with_claim_id")?,
        };
        if limits.min_length_client_id > limits.max_length_client_id {
            return Err(ConfigError(
                "option [transport] min_length_client_id must not exceed max_length_client_id"
                    .into(),
            ));
        }

        const D: &str = "DEFAULT";
        let auth_strategy = match r.string(D, "auth_strategy").trim() {
            "" | "noauth" => String::new(),
            "keystone" => "keystone".to_string(),
            other => {
                let origin = r.raw(D, "auth_strategy").1;
                return Err(Resolver::err(
                    D,
                    "auth_strategy",
                    other,
                    &origin,
                    "must be empty (no authentication) or keystone",
                ));
            }
        };
        const K: &str = "keystone_authtoken";
        let keystone_settings = KeystoneConfig {
            www_authenticate_uri: r.string(K, "www_authenticate_uri"),
            auth_url: r.string(K, "auth_url"),
            username: r.string(K, "username"),
            password: Secret(r.string(K, "password")),
            project_name: r.string(K, "project_name"),
            user_domain_name: r.string(K, "user_domain_name"),
            project_domain_name: r.string(K, "project_domain_name"),
            token_cache_time: r.int(K, "token_cache_time", 0, 86_400)? as u64,
            http_timeout: r.int(K, "http_connect_timeout", 1, 600)? as u64,
            cache_size: r.int(K, "token_cache_size", 1, 10_000_000)? as usize,
        };
        r.choice(K, "auth_type", &["password"])?;
        let policy_file = Some(r.string("oslo_policy", "policy_file"))
            .filter(|p| !p.trim().is_empty())
            .map(PathBuf::from);
        let log_format = match r.choice(D, "log_format", &["text", "json"])?.as_str() {
            "json" => LogFormat::Json,
            _ => LogFormat::Text,
        };
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

        const W: &str = "drivers:transport:wsgi";
        const WS: &str = "drivers:transport:websocket";
        const E: &str = "drivers:message_store:embedded";
        let ws_required = transport == "websocket"
            || r.raw(WS, "port").1 != Origin::Default
            || r.raw(WS, "bind").1 != Origin::Default;
        let config = Config {
            admin_mode: r.bool(D, "admin_mode")?,
            pooling: r.bool(D, "pooling")?,
            unreliable: r.bool(D, "unreliable")?,
            auth_strategy,
            keystone: keystone_settings,
            policy_file,
            enable_checksum: r.bool(D, "enable_checksum")?,
            debug: r.bool(D, "debug")?,
            log_format,
            max_wait: r.int(T, "max_wait", 0, 3600)?,
            notification: notification_config(&r)?,
            quotas: QuotaConfig {
                max_queues_per_project: r.int("quotas", "max_queues_per_project", 0, i64::MAX)?
                    as u64,
                max_messages_per_queue: r.int("quotas", "max_messages_per_queue", 0, i64::MAX)?
                    as u64,
                max_bytes_per_project: r.int("quotas", "max_bytes_per_project", 0, i64::MAX)?
                    as u64,
                requests_per_second: r.int("quotas", "requests_per_second", 0, 10_000_000)? as u64,
                burst: r.int("quotas", "burst", 0, 100_000_000)? as u64,
                overrides_file: Some(r.string("quotas", "overrides_file"))
                    .filter(|p| !p.trim().is_empty())
                    .map(PathBuf::from),
                limits_cache_seconds: r.int("quotas", "limits_cache_seconds", 0, 3600)? as u64,
                bytes_cache_seconds: r.int("quotas", "bytes_cache_seconds", 0, 3600)? as u64,
            },
            cors: CorsConfig {
                allowed_origin: r.list("cors", "allowed_origin"),
                allow_credentials: r.bool("cors", "allow_credentials")?,
                max_age: r.int("cors", "max_age", 0, 86_400 * 365)? as u64,
                expose_headers: r.list("cors", "expose_headers"),
                allow_methods: r.list("cors", "allow_methods"),
                allow_headers: r.list("cors", "allow_headers"),
            },
            signed_url_key: Some(r.string("signed_url", "secret_key"))
                .filter(|k| !k.is_empty())
                .map(Secret),
            encryption: {
                r.choice(T, "message_encryption_algorithms", &["aes256"])?;
                let non_empty = |v: String| Some(v.trim().to_string()).filter(|v| !v.is_empty());
                EncryptionConfig {
                    passphrase: non_empty(r.string(T, "message_encryption_key")).map(Secret),
                    key_file: non_empty(r.string("encryption", "key_file")).map(PathBuf::from),
                    current_key: non_empty(r.string("encryption", "current_key")),
                }
            },
            message_store,
            redis_uri: Secret(r.string("drivers:message_store:redis", "uri")),
            redis: RedisStoreConfig {
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
                gc_interval_secs: r.int("drivers:message_store:redis", "gc_interval", 1, 86_400)?
                    as u64,
            },
            postgresql_uri: Secret(r.string("drivers:message_store:postgresql", "uri")),
            postgresql: {
                const P: &str = "drivers:message_store:postgresql";
                PostgresStoreConfig {
                    schema: r.string(P, "schema").trim().to_string(),
                    max_connections: r.int(P, "max_connections", 1, 10_000)? as u32,
                    acquire_timeout_secs: r.int(P, "acquire_timeout", 1, 3600)? as u64,
                    statement_timeout_secs: r.int(P, "statement_timeout", 0, 86_400)? as u64,
                    gc_interval_secs: r.int(P, "gc_interval", 1, 86_400)? as u64,
                }
            },
            management_sqlalchemy_uri: Secret(
                r.string("drivers:management_store:sqlalchemy", "uri"),
            ),
            management_sqlalchemy_schema: r
                .string("drivers:management_store:sqlalchemy", "schema")
                .trim()
                .to_string(),
            pooling_placement: r.choice("pooling:catalog", "placement", &["queue", "project"])?,
            management_store,
            transport,
            bind: r.string(W, "bind"),
            port: r.int(W, "port", 0, 65535)? as u16,
            max_connections: r.int(W, "max_connections", 1, 1_000_000)? as usize,
            max_header_bytes: r.int(W, "max_header_bytes", 1024, 1 << 20)? as usize,
            header_read_timeout_secs: r.int(W, "header_read_timeout", 1, 3600)? as u64,
            shutdown_timeout_secs: r.int(W, "shutdown_timeout", 0, 3600)? as u64,
            websocket: WebSocketConfig {
                bind: r.string(WS, "bind"),
                port: r.int(WS, "port", 0, 65535)? as u16,
                max_connections: r.int(WS, "max_connections", 1, 1_000_000)? as usize,
                max_message_size: r.int(WS, "max_message_size", 1024, 1 << 30)? as usize,
                max_frame_size: r.int(WS, "max_frame_size", 1024, 1 << 30)? as usize,
                max_requests_in_flight: r.int(WS, "max_requests_in_flight", 1, 10_000)? as usize,
                send_buffer_size: r.int(WS, "send_buffer_size", 1024, 1 << 30)? as usize,
                send_timeout_secs: r.int(WS, "send_timeout", 1, 3600)? as u64,
                ping_interval_secs: r.int(WS, "ping_interval", 0, 86_400)? as u64,
                idle_timeout_secs: r.int(WS, "idle_timeout", 0, 86_400)? as u64,
                notification_bind: r.string(WS, "notification-bind"),
                notification_port: r.int(WS, "notification-port", 0, 65535)? as u16,
                required: ws_required,
            },
            limits,
            embedded: EmbeddedStoreConfig {
                path: PathBuf::from(r.string(E, "path")),
                shards: r.int(E, "shards", 1, 64)? as usize,
                cache_size_mb: r.int(E, "cache_size_mb", 1, 1 << 20)? as usize,
                gc_interval_secs: r.int(E, "gc_interval", 1, 86_400)? as u64,
            },
            message_pipeline: r.list("storage", "message_pipeline"),
            admin: AdminConfig {
                bind: r.string("admin", "bind"),
                port: r.int("admin", "port", 0, 65535)? as u16,
                queue_depth_top: r.int("admin", "queue_depth_top", 0, 1000)? as usize,
                queue_depth_interval_secs: r.int("admin", "queue_depth_interval", 1, 86_400)?
                    as u64,
                console: r.bool("admin", "console")?,
            },
            otel: OtelConfig {
                enabled: r.bool("opentelemetry", "enabled")?,
                endpoint: r.string("opentelemetry", "endpoint"),
                service_name: r.string("opentelemetry", "service_name"),
            },
        };
        let ws = &config.websocket;
        if ws.ping_interval_secs > 0
            && ws.idle_timeout_secs > 0
            && ws.idle_timeout_secs <= ws.ping_interval_secs
        {
            return Err(ConfigError(
                "option [drivers:transport:websocket] idle_timeout must be longer than \
                 ping_interval (or 0), or live clients would be disconnected between pings"
                    .into(),
            ));
        }
        if config.pooling && !matches!(config.management_store.as_str(), "embedded" | "sqlalchemy")
        {
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
        // Options that are registered but only validated here (read for the 'used' set).
        for spec in OPTIONS.iter().filter(|s| s.kind == OptKind::Accepted) {
            r.raw(spec.section, spec.name);
        }

        let used = r.used.into_inner().unwrap();
        let mut warnings = Vec::new();
        for ((section, option), (_, origin)) in &raw.values {
            if !used.contains(&(section.clone(), option.clone())) {
                warnings.push(Warning(format!(
                    "unknown or unsupported option [{section}] {option} (from {origin}) is ignored"
                )));
            }
        }
        if strict && !warnings.is_empty() {
            let list: Vec<String> = warnings.iter().map(|w| w.0.clone()).collect();
            return Err(ConfigError(format!(
                "strict configuration: {}",
                list.join("; ")
            )));
        }
        Ok((config, warnings))
    }

    /// The configuration with every option at its default.
    pub fn defaults() -> Config {
        Config::from_raw(&RawConfig::default(), false)
            .expect("defaults are valid")
            .0
    }
}

/// A Markdown table of every option: section, name, default, meaning. Printed by
/// `zaqar-server --help` and `--print-config-reference`, so the documentation cannot drift.
pub fn reference_markdown() -> String {
    let mut out = String::new();
    let mut section = "";
    for spec in OPTIONS {
        if spec.section != section {
            section = spec.section;
            out.push_str(&format!(
                "\n[{section}]   (env: ZAQAR_{}__<OPTION>)\n",
                env_section(section)
            ));
        }
        let default = if spec.default.is_empty() {
            "\"\"".to_string()
        } else {
            spec.default.to_string()
        };
        out.push_str(&format!(
            "  {:<34} default {:<24} {}\n",
            spec.name, default, spec.help
        ));
    }
    out
}

/// `docs/configuration.md`: every option of the registry as Markdown tables, one per section.
/// Printed by `zaqar-server --print-config-reference`; `tests/docs.rs` checks that the file in
/// the repository equals it.
pub fn reference_document() -> String {
    let mut out = String::from(
        "# Configuration reference\n\n\
         <!-- Generated from the option registry (src/config/options.rs) by\n     \
         `cargo run --bin zaqar-server -- --print-config-reference > docs/configuration.md`.\n     \
         Do not edit by hand: tests/docs.rs fails when this file and the registry differ. -->\n\n\
         `zaqar-server` reads Zaqar's `zaqar.conf` INI layout. Precedence, last wins: defaults <\n\
         `--config-file` (in the order given) < `ZAQAR_<SECTION>__<OPTION>` environment variables\n\
         (section with `_` for `:` and `-`, e.g. `ZAQAR_DRIVERS_TRANSPORT_WSGI__PORT=9999`) <\n\
         command-line flags (`--bind`, `--port`, `--data-dir`, `--set SECTION.OPTION=VALUE`).\n\
         An invalid value stops start-up with a message naming the option and where the value came\n\
         from. An option that is not listed here is ignored with a warning, or refused with\n\
         `--strict-config`. Booleans accept oslo.config's spellings (`true`/`false`, `1`/`0`,\n\
         `yes`/`no`, `on`/`off`). Options marked *accepted* are recognised for compatibility with\n\
         Zaqar and have no effect. Values described as secret are never logged.\n",
    );
    let cell = |s: &str| s.replace('|', "\\|");
    let mut section = "";
    for spec in OPTIONS {
        if spec.section != section {
            section = spec.section;
            out.push_str(&format!(
                "\n## [{section}]\n\nEnvironment: `ZAQAR_{}__<OPTION>`\n\n\
                 | Option | Type | Default | Description |\n|---|---|---|---|\n",
                env_section(section)
            ));
        }
        let kind = match spec.kind {
            OptKind::Bool => "bool",
            OptKind::Int => "integer",
            OptKind::Str => "string",
            OptKind::List => "list",
            OptKind::Choice => "choice",
            OptKind::Accepted => "accepted",
        };
        let default = if spec.default.is_empty() {
            "(empty)".to_string()
        } else {
            format!("`{}`", spec.default)
        };
        out.push_str(&format!(
            "| `{}` | {kind} | {} | {} |\n",
            spec.name,
            cell(&default),
            cell(spec.help)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<(Config, Vec<Warning>), ConfigError> {
        let mut raw = RawConfig::default();
        raw.load_str(text, Origin::File("zaqar.conf".into()))?;
        Config::from_raw(&raw, false)
    }

    #[test]
    fn service_limit_defaults_are_the_registry_defaults() {
        let (config, _) = load("").unwrap();
        assert_eq!(config.limits, Limits::default());
    }

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
    fn websocket_section() {
        let c = Config::defaults();
        assert_eq!(c.websocket.bind, "127.0.0.1");
        assert_eq!(c.websocket.port, 9000);
        assert!(c.websocket.idle_timeout_secs > c.websocket.ping_interval_secs);
        let (c, w) = load(
            "[drivers]\ntransport = websocket\n[drivers:transport:websocket]\nbind = 0.0.0.0\n\
             port = 9100\nexternal-port = 9101\nmax_connections = 5\nping_interval = 0\n",
        )
        .unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.transport, "websocket");
        assert!(c.websocket.required);
        assert!(!Config::defaults().websocket.required);
        assert_eq!(c.websocket.bind, "0.0.0.0");
        assert_eq!(c.websocket.port, 9100);
        assert_eq!(c.websocket.max_connections, 5);
        assert_eq!(c.websocket.ping_interval_secs, 0);
        let e = load("[drivers:transport:websocket]\nping_interval = 60\nidle_timeout = 30\n")
            .unwrap_err();
        assert!(e.0.contains("idle_timeout"), "{e}");
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
    fn invalid_value_names_the_option_and_origin() {
        let e = load("[drivers:transport:wsgi]\nport = eighty\n").unwrap_err();
        assert!(e.0.contains("[drivers:transport:wsgi] port"), "{e}");
        assert!(e.0.contains("zaqar.conf"), "{e}");
        let e = load("[transport]\ndefault_message_ttl = 10\n").unwrap_err();
        assert!(e.0.contains("default_message_ttl"), "{e}");
        let e = load("[DEFAULT]\nadmin_mode = maybe\n").unwrap_err();
        assert!(e.0.contains("admin_mode"), "{e}");
    }

    #[test]
    fn unknown_options_warn_or_fail_in_strict_mode() {
        let (_, w) =
            load("[oslo_messaging_rabbit]\nrabbit_host = x\n[transport]\nbogus = 1\n").unwrap();
        assert_eq!(w.len(), 2);
        assert!(w.iter().any(|w| w.0.contains("[transport] bogus")));
        let mut raw = RawConfig::default();
        raw.load_str("[transport]\nbogus = 1\n", Origin::Cli)
            .unwrap();
        assert!(Config::from_raw(&raw, true).is_err());
    }

    #[test]
    fn env_overrides_file_and_cli_overrides_env() {
        let mut raw = RawConfig::default();
        raw.load_str("[drivers:transport:wsgi]\nport = 1000\n", Origin::Cli)
            .unwrap();
        let unknown = raw.load_env(vec![
            (
                "ZAQAR_DRIVERS_TRANSPORT_WSGI__PORT".to_string(),
                "2000".to_string(),
            ),
            (
                "ZAQAR_TRANSPORT__MAX_MESSAGES_PER_PAGE".to_string(),
                "5".to_string(),
            ),
            ("ZAQAR_NOPE__X".to_string(), "1".to_string()),
            ("ZAQAR_TEST_REDIS_URL".to_string(), "redis://".to_string()),
        ]);
        assert_eq!(unknown, vec!["ZAQAR_NOPE__X".to_string()]);
        let (c, _) = Config::from_raw(&raw, true).unwrap();
        assert_eq!(c.port, 2000);
        assert_eq!(c.limits.max_messages_per_page, 5);
        raw.set("drivers:transport:wsgi", "port", "3000", Origin::Cli);
        assert_eq!(Config::from_raw(&raw, true).unwrap().0.port, 3000);
    }

    #[test]
    fn auth_strategy_values() {
        let (c, _) = load("[DEFAULT]\nauth_strategy = keystone\n[keystone_authtoken]\nauth_url = http://k:5000/v3\npassword = pw\n").unwrap();
        assert_eq!(c.auth_strategy, "keystone");
        assert_eq!(c.keystone.auth_url, "http://k:5000/v3");
        assert_eq!(format!("{:?}", c.keystone.password), "<redacted>");
        assert_eq!(c.keystone.token_cache_time, 300);
        let e = load("[DEFAULT]\nauth_strategy = basic\n").unwrap_err();
        assert!(e.0.contains("auth_strategy"));
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

    #[test]
    fn reference_lists_every_option() {
        let doc = reference_markdown();
        for s in OPTIONS {
            assert!(doc.contains(s.name), "{}", s.name);
        }
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
