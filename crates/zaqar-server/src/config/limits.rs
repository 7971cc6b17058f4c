//! What the service allows: the v2 API's limits (`[transport]`: TTLs, delays, page sizes,
//! body sizes, client ids) and the per-project quotas (`[quotas]`).

use std::path::PathBuf;

use super::resolve::Resolver;
use super::{ClientIdMode, ConfigError, Limits};

const I32MAX: i64 = i32::MAX as i64;

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

/// The `[transport]` limits; each default is bounded by its maximum, so the maxima are read
/// first.
pub(super) fn service_limits(r: &Resolver<'_>) -> Result<Limits, ConfigError> {
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
            "option [transport] min_length_client_id must not exceed max_length_client_id".into(),
        ));
    }
    Ok(limits)
}

/// `[quotas]`.
pub(super) fn quotas(r: &Resolver<'_>) -> Result<QuotaConfig, ConfigError> {
    Ok(QuotaConfig {
        max_queues_per_project: r.int("quotas", "max_queues_per_project", 0, i64::MAX)? as u64,
        max_messages_per_queue: r.int("quotas", "max_messages_per_queue", 0, i64::MAX)? as u64,
        max_bytes_per_project: r.int("quotas", "max_bytes_per_project", 0, i64::MAX)? as u64,
        requests_per_second: r.int("quotas", "requests_per_second", 0, 10_000_000)? as u64,
        burst: r.int("quotas", "burst", 0, 100_000_000)? as u64,
        overrides_file: Some(r.string("quotas", "overrides_file"))
            .filter(|p| !p.trim().is_empty())
            .map(PathBuf::from),
        limits_cache_seconds: r.int("quotas", "limits_cache_seconds", 0, 3600)? as u64,
        bytes_cache_seconds: r.int("quotas", "bytes_cache_seconds", 0, 3600)? as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::load;

    #[test]
    fn service_limit_defaults_are_the_registry_defaults() {
        let (config, _) = load("").unwrap();
        assert_eq!(config.limits, Limits::default());
    }
}
