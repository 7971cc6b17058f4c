//! Limits and defaults of the API (`[transport]`), as the service layer applies them.

/// How the `Client-ID` header is validated (`[transport] client_id_uuid_safe`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientIdMode {
    Strict,
    Off,
}

/// Limits and defaults of the v2 API (`[transport]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub default_message_ttl: i64,
    pub default_message_delay: i64,
    pub default_claim_ttl: i64,
    pub default_claim_grace: i64,
    pub default_subscription_ttl: i64,
    pub max_queues_per_page: i64,
    pub max_messages_per_page: i64,
    pub max_subscriptions_per_page: i64,
    pub max_messages_per_claim_or_pop: i64,
    pub max_queue_metadata: usize,
    pub max_messages_post_size: usize,
    pub max_message_ttl: i64,
    pub max_message_delay: i64,
    pub max_claim_ttl: i64,
    pub max_claim_grace: i64,
    pub max_pools_per_page: i64,
    pub max_flavors_per_page: i64,
    pub subscriber_types: Vec<String>,
    pub client_id_uuid_safe: ClientIdMode,
    pub min_length_client_id: usize,
    pub max_length_client_id: usize,
    pub message_delete_with_claim_id: bool,
}

/// The defaults of the option registry (the server's configuration tests that they agree).
impl Default for Limits {
    fn default() -> Self {
        Limits {
            default_message_ttl: 3600,
            default_message_delay: 0,
            default_claim_ttl: 300,
            default_claim_grace: 60,
            default_subscription_ttl: 3600,
            max_queues_per_page: 20,
            max_messages_per_page: 20,
            max_subscriptions_per_page: 20,
            max_messages_per_claim_or_pop: 20,
            max_queue_metadata: 65536,
            max_messages_post_size: 262_144,
            max_message_ttl: 1_209_600,
            max_message_delay: 900,
            max_claim_ttl: 43200,
            max_claim_grace: 43200,
            max_pools_per_page: 20,
            max_flavors_per_page: 20,
            subscriber_types: ["http", "https", "mailto", "trust+http", "trust+https"]
                .map(String::from)
                .to_vec(),
            client_id_uuid_safe: ClientIdMode::Strict,
            min_length_client_id: 10,
            max_length_client_id: 36,
            message_delete_with_claim_id: false,
        }
    }
}
