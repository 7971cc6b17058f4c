//! Settings of the Redis store.

/// Settings of the Redis store (`[drivers:message_store:redis]`; the URI is
/// `[drivers:message_store:redis] uri`).
#[derive(Debug, Clone)]
pub struct RedisStoreConfig {
    pub key_prefix: String,
    pub connect_timeout_ms: u64,
    pub operation_timeout_ms: u64,
    pub gc_interval_secs: u64,
}
