//! The registry of every configuration option this server understands.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptKind {
    Bool,
    Int,
    Str,
    List,
    Choice,
    /// Recognised Zaqar option that is accepted for compatibility but has no effect yet.
    Accepted,
}

#[derive(Debug, Clone, Copy)]
pub struct OptSpec {
    pub section: &'static str,
    pub name: &'static str,
    pub kind: OptKind,
    pub default: &'static str,
    pub help: &'static str,
}

const fn opt(
    section: &'static str,
    name: &'static str,
    kind: OptKind,
    default: &'static str,
    help: &'static str,
) -> OptSpec {
    OptSpec {
        section,
        name,
        kind,
        default,
        help,
    }
}

use OptKind::*;

const WS: &str = "drivers:transport:websocket";

pub static OPTIONS: &[OptSpec] = &[
    // [DEFAULT]
    opt(
        "DEFAULT",
        "admin_mode",
        Bool,
        "false",
        "Enable admin routes (/v2/health; with pooling also /v2/pools and /v2/flavors).",
    ),
    opt(
        "DEFAULT",
        "pooling",
        Bool,
        "false",
        "Multi-pool storage: queues are placed on the pools registered through /v2/pools \
         (admin_mode) and found through the catalog of the management store; \
         [drivers] message_store is then not used.",
    ),
    opt(
        "DEFAULT",
        "unreliable",
        Bool,
        "false",
        "Allow non-durable storage settings (accepted; the embedded store is always durable).",
    ),
    opt(
        "DEFAULT",
        "auth_strategy",
        Str,
        "",
        "\"\" for no authentication (X-Project-ID and X-Roles are trusted) or keystone.",
    ),
    opt("DEFAULT", "enable_checksum", Bool, "false", "Store and return an MD5 checksum of each message body (Python-compatible)."),
    opt("DEFAULT", "debug", Bool, "false", "Log at debug level."),
    opt(
        "DEFAULT",
        "log_format",
        Choice,
        "text",
        "Log format: text or json.",
    ),
    opt(
        "DEFAULT",
        "enable_deprecated_api_versions",
        Accepted,
        "",
        "Accepted for compatibility; v1.1 is not served.",
    ),
    // [drivers]
    opt(
        "drivers",
        "transport",
        Choice,
        "wsgi",
        "Transport: wsgi (HTTP) or websocket. Both listeners run either way; accepted for \
         compatibility with Zaqar, where a process runs one of them.",
    ),
    opt(
        "drivers",
        "message_store",
        Choice,
        "embedded",
        "Message store driver: embedded, redis or postgresql.",
    ),
    opt(
        "drivers",
        "management_store",
        Choice,
        "embedded",
        "Management store of pools, flavors and the catalog (used with pooling): embedded \
         (management.redb in the embedded data directory; one node) or sqlalchemy \
         (PostgreSQL at [drivers:management_store:sqlalchemy] uri; shared by all nodes).",
    ),
    // [drivers:transport:wsgi]
    opt(
        "drivers:transport:wsgi",
        "bind",
        Str,
        "127.0.0.1",
        "Address the HTTP API listens on.",
    ),
    opt(
        "drivers:transport:wsgi",
        "port",
        Int,
        "8888",
        "Port of the HTTP API (0 picks a free port).",
    ),
    opt(
        "drivers:transport:wsgi",
        "max_connections",
        Int,
        "10000",
        "Most simultaneous HTTP connections; further ones wait to be accepted.",
    ),
    opt(
        "drivers:transport:wsgi",
        "max_header_bytes",
        Int,
        "65536",
        "Largest request head (request line and headers) accepted, in bytes.",
    ),
    opt(
        "drivers:transport:wsgi",
        "header_read_timeout",
        Int,
        "30",
        "Seconds a client has to send a complete request head.",
    ),
    opt(
        "drivers:transport:wsgi",
        "shutdown_timeout",
        Int,
        "30",
        "Seconds to let in-flight requests finish on shutdown.",
    ),
    // [drivers:message_store:redis]
    opt("drivers:message_store:redis", "uri", Str, "redis://127.0.0.1:6379", "Redis URI: redis://host:port[/db], redis://h1:26379,h2:26379?master=NAME (Sentinel), redis+cluster://h1:7000,h2:7001 (Cluster). Secret."),
    opt(
        "drivers:message_store:redis",
        "key_prefix",
        Str,
        "zaqar",
        "Prefix of every Redis key of this service, so several deployments (or test runs) can \
         share one Redis.",
    ),
    opt(
        "drivers:message_store:redis",
        "connect_timeout_ms",
        Int,
        "2000",
        "Milliseconds one attempt to connect to Redis may take.",
    ),
    opt(
        "drivers:message_store:redis",
        "operation_timeout_ms",
        Int,
        "5000",
        "Milliseconds one storage operation may wait for Redis before failing with 503.",
    ),
    opt(
        "drivers:message_store:redis",
        "gc_interval",
        Int,
        "10",
        "Seconds between sweeps that reclaim expired messages and claims and finish \
         interrupted message moves.",
    ),
    // [drivers:message_store:postgresql]
    opt("drivers:message_store:postgresql", "uri", Str, "postgresql://127.0.0.1:5432/zaqar", "PostgreSQL URI of the message store. Secret."),
    opt(
        "drivers:message_store:postgresql",
        "schema",
        Str,
        "zaqar",
        "Schema holding the store's tables (created if missing; a-z, 0-9, _). Empty: the \
         connection's search_path, e.g. from ?options=-csearch_path%3DNAME in the URI.",
    ),
    opt(
        "drivers:message_store:postgresql",
        "max_connections",
        Int,
        "20",
        "Size of the connection pool of each API node (two more connections carry long-poll \
         wake-ups between nodes).",
    ),
    opt(
        "drivers:message_store:postgresql",
        "acquire_timeout",
        Int,
        "5",
        "Seconds an operation may wait for a pool connection (connecting included) before \
         failing with 503.",
    ),
    opt(
        "drivers:message_store:postgresql",
        "statement_timeout",
        Int,
        "30",
        "Seconds one SQL statement may run (PostgreSQL statement_timeout; 0: no limit).",
    ),
    opt(
        "drivers:message_store:postgresql",
        "gc_interval",
        Int,
        "10",
        "Seconds between sweeps that delete expired messages and claims.",
    ),
    // [drivers:management_store:sqlalchemy]
    opt(
        "drivers:management_store:sqlalchemy",
        "uri",
        Str,
        "",
        "Database of the management store (pools, flavors, catalog, quotas) as Zaqar names it: \
         postgresql://..., or MySQL/MariaDB as SQLAlchemy writes it (mysql://, \
         mysql+pymysql://, mysql+mysqldb://); used with pooling and management_store = \
         sqlalchemy. Secret.",
    ),
    opt(
        "drivers:management_store:sqlalchemy",
        "schema",
        Str,
        "",
        "PostgreSQL only: schema of the management tables (created if missing); empty: the \
         connection's search_path. (MySQL: name the database in the uri.)",
    ),
    // [pooling:catalog]
    opt(
        "pooling:catalog",
        "placement",
        Choice,
        "queue",
        "How new queues are bound to pools: queue (each queue by weighted random choice, as \
         Zaqar does) or project (all queues of a project on the pool chosen for its first \
         queue, so dead-lettering and redrive always stay within one pool).",
    ),
    opt(
        "pooling:catalog",
        "enable_virtual_pool",
        Accepted,
        "false",
        "Accepted for compatibility; no virtual pool is built from the message store settings \
         (register every pool through /v2/pools).",
    ),
    // [drivers:transport:websocket]
    opt(
        WS,
        "bind",
        Str,
        "127.0.0.1",
        "Address the WebSocket API listens on.",
    ),
    opt(
        WS,
        "port",
        Int,
        "9000",
        "Port of the WebSocket API (0 picks a free port).",
    ),
    opt(
        WS,
        "external-port",
        Accepted,
        "",
        "Accepted for compatibility (the port advertised in Zaqar's handshake).",
    ),
    opt(
        WS,
        "notification-bind",
        Str,
        "",
        "Address of this node's notification listener, through which subscribed WebSocket connections receive notifications from any node (default: the WebSocket bind address).",
    ),
    opt(
        WS,
        "notification-port",
        Int,
        "0",
        "Port of the notification listener (0: any free port).",
    ),
    opt(
        WS,
        "max_connections",
        Int,
        "10000",
        "Most simultaneous WebSocket connections; further handshakes are refused with 503.",
    ),
    opt(
        WS,
        "max_message_size",
        Int,
        "1048576",
        "Largest WebSocket message (fragments reassembled), in bytes; a larger one closes the \
         connection with code 1009.",
    ),
    opt(
        WS,
        "max_frame_size",
        Int,
        "1048576",
        "Largest single WebSocket frame payload, in bytes; a larger one closes the connection \
         with code 1009.",
    ),
    opt(
        WS,
        "max_requests_in_flight",
        Int,
        "32",
        "Requests of one connection processed concurrently; while they are all busy the \
         connection is not read.",
    ),
    opt(
        WS,
        "send_buffer_size",
        Int,
        "4194304",
        "Most bytes of responses written to one connection in one batch (then flushed). A \
         connection holds at most one batch plus one response per request in flight.",
    ),
    opt(
        WS,
        "send_timeout",
        Int,
        "30",
        "Seconds a write to a connection may take; a client that does not read its responses \
         for that long is disconnected.",
    ),
    opt(
        WS,
        "ping_interval",
        Int,
        "30",
        "Seconds between keep-alive pings the server sends (0: no pings).",
    ),
    opt(
        WS,
        "idle_timeout",
        Int,
        "120",
        "Seconds without any frame from the client (pongs included) after which the connection \
         is closed (0: never).",
    ),
    // [drivers:message_store:embedded]
    opt(
        "drivers:message_store:embedded",
        "path",
        Str,
        "zaqar-data",
        "Directory of the embedded store (relative to the working directory).",
    ),
    opt(
        "drivers:message_store:embedded",
        "shards",
        Int,
        "4",
        "Number of independent store files (fixed when the store is created).",
    ),
    opt(
        "drivers:message_store:embedded",
        "cache_size_mb",
        Int,
        "256",
        "Page cache of the embedded store, in MiB (split across shards).",
    ),
    opt(
        "drivers:message_store:embedded",
        "gc_interval",
        Int,
        "10",
        "Seconds between sweeps that reclaim expired messages and claims.",
    ),
    // [transport]
    opt(
        "transport",
        "default_message_ttl",
        Int,
        "3600",
        "TTL of a message posted without ttl (seconds).",
    ),
    opt(
        "transport",
        "default_message_delay",
        Int,
        "0",
        "Displayed default of _default_message_delay.",
    ),
    opt(
        "transport",
        "default_claim_ttl",
        Int,
        "300",
        "Claim TTL when none is given.",
    ),
    opt(
        "transport",
        "default_claim_grace",
        Int,
        "60",
        "Claim grace when none is given.",
    ),
    opt(
        "transport",
        "default_subscription_ttl",
        Int,
        "3600",
        "Subscription TTL when none is given.",
    ),
    opt(
        "transport",
        "max_queues_per_page",
        Int,
        "20",
        "Largest limit for queue and topic listing.",
    ),
    opt(
        "transport",
        "max_messages_per_page",
        Int,
        "20",
        "Largest limit for message listing and ids per request.",
    ),
    opt(
        "transport",
        "max_subscriptions_per_page",
        Int,
        "20",
        "Largest limit for subscription listing.",
    ),
    opt(
        "transport",
        "max_messages_per_claim_or_pop",
        Int,
        "20",
        "Largest claim limit and pop count.",
    ),
    opt(
        "transport",
        "max_queue_metadata",
        Int,
        "65536",
        "Largest queue metadata body, in bytes.",
    ),
    opt(
        "transport",
        "max_messages_post_size",
        Int,
        "262144",
        "Largest message POST body, in bytes.",
    ),
    opt(
        "transport",
        "max_message_ttl",
        Int,
        "1209600",
        "Largest message TTL (seconds).",
    ),
    opt(
        "transport",
        "max_message_delay",
        Int,
        "900",
        "Largest message delay (seconds).",
    ),
    opt(
        "transport",
        "max_claim_ttl",
        Int,
        "43200",
        "Largest claim TTL (seconds).",
    ),
    opt(
        "transport",
        "max_claim_grace",
        Int,
        "43200",
        "Largest claim grace (seconds).",
    ),
    opt(
        "transport",
        "max_pools_per_page",
        Int,
        "20",
        "Largest limit for pool listing.",
    ),
    opt(
        "transport",
        "max_flavors_per_page",
        Int,
        "20",
        "Largest limit for flavor listing.",
    ),
    opt(
        "transport",
        "subscriber_types",
        List,
        "http,https,mailto,trust+http,trust+https",
        "Allowed subscriber URI schemes.",
    ),
    opt(
        "transport",
        "client_id_uuid_safe",
        Choice,
        "strict",
        "strict: Client-ID must be a UUID; off: any string of allowed length.",
    ),
    opt(
        "transport",
        "min_length_client_id",
        Int,
        "10",
        "Shortest Client-ID when client_id_uuid_safe = off.",
    ),
    opt(
        "transport",
        "max_length_client_id",
        Int,
        "36",
        "Longest Client-ID when client_id_uuid_safe = off.",
    ),
    opt(
        "transport",
        "message_delete_with_claim_id",
        Bool,
        "false",
        "Bulk delete by ids requires matching claim_ids.",
    ),
    opt("transport", "max_wait", Int, "20", "Longest long-polling wait (seconds) a request may ask for with ?wait= (0 disables it)."),
    opt("transport", "message_encryption_algorithms", Choice, "AES256", "Encryption of _enable_encrypt_messages queues: AES256 (AES-256-GCM)."),
    opt("transport", "message_encryption_key", Str, "", "Passphrase whose SHA-256 is an encryption key (the reference default \"AES256\" is refused). Secret."),
    // [keystone_authtoken]
    opt("keystone_authtoken", "www_authenticate_uri", Str, "", "Keystone URL advertised in WWW-Authenticate on 401 (default: auth_url)."),
    opt("keystone_authtoken", "auth_url", Str, "", "Keystone URL used to log in and validate tokens (e.g. http://127.0.0.1:5000/v3)."),
    opt("keystone_authtoken", "auth_type", Choice, "password", "How the service logs in to Keystone: password."),
    opt("keystone_authtoken", "username", Str, "", "Service user name."),
    opt("keystone_authtoken", "password", Str, "", "Service user password. Secret."),
    opt("keystone_authtoken", "project_name", Str, "", "Project the service user logs in to."),
    opt("keystone_authtoken", "user_domain_name", Str, "Default", "Domain of the service user."),
    opt("keystone_authtoken", "project_domain_name", Str, "Default", "Domain of the service project."),
    opt("keystone_authtoken", "token_cache_time", Int, "300", "Seconds a validated token is cached (never beyond its expiry)."),
    opt("keystone_authtoken", "token_cache_size", Int, "10000", "Most validated tokens cached."),
    opt("keystone_authtoken", "http_connect_timeout", Int, "5", "Seconds allowed for each call to Keystone."),
    // [oslo_policy]
    opt("oslo_policy", "policy_file", Str, "", "JSON or YAML file overriding policy rules (see docs/security.md)."),
    // [notification]
    opt("notification", "require_confirmation", Bool, "false", "Only confirmed subscriptions are notified; creating one sends a confirmation (needs [signed_url] secret_key)."),
    opt("notification", "max_notifier_workers", Int, "10", "Most notification deliveries in flight at once."),
    opt("notification", "webhook_timeout", Int, "10", "Seconds allowed for one webhook or SMTP delivery attempt."),
    opt("notification", "smtp_mode", Choice, "third_part", "third_part: pipe e-mails to smtp_command; self_local: speak SMTP to smtp_host."),
    opt("notification", "smtp_command", Str, "/usr/sbin/sendmail -t -oi", "Command (split on spaces) receiving each e-mail on stdin."),
    opt("notification", "smtp_host", Str, "", "SMTP server (self_local)."),
    opt("notification", "smtp_port", Int, "465", "SMTP port (self_local)."),
    opt("notification", "smtp_tls", Choice, "tls", "SMTP security: tls (implicit), starttls or none."),
    opt("notification", "smtp_user_name", Str, "", "SMTP login (empty: none)."),
    opt("notification", "smtp_user_password", Str, "", "SMTP password. Secret."),
    opt("notification", "external_confirmation_url", Str, "", "Base URL put in confirmation e-mails (required for mailto confirmations)."),
    opt("notification", "public_url", Str, "", "Public base URL of this API, put in confirmation messages as WSGISubscribeURL."),
    opt("notification", "subscription_confirmation_email_template", Str, "", "topic:...,body:...,sender:... ({0} source, {1} project, {2} link); empty: Zaqar's default."),
    opt("notification", "unsubscribe_confirmation_email_template", Str, "", "Same, for unsubscribe confirmations."),
    // [quotas]
    opt("quotas", "max_queues_per_project", Int, "0", "Most queues a project may have (0: unlimited); beyond it, 403."),
    opt("quotas", "max_messages_per_queue", Int, "0", "Most messages (claimed and delayed included) a queue may hold (0: unlimited); a post beyond it gets 403."),
    opt("quotas", "max_bytes_per_project", Int, "0", "Most bytes of message bodies (as stored, unexpired, queues and topics together) a project may store (0: unlimited); a post beyond it gets 403."),
    opt("quotas", "requests_per_second", Int, "0", "Requests per second allowed to each project (0: unlimited); beyond it, 429 with Retry-After."),
    opt("quotas", "burst", Int, "0", "Requests a project may make at once before the rate applies (0: twice the rate)."),
    opt("quotas", "overrides_file", Str, "", "JSON file of per-project limits: {\"<project>\": {\"max_queues\": N, \"max_messages_per_queue\": M, \"max_bytes\": B, \"requests_per_second\": R, \"burst\": X}} (a missing key is 0, unlimited)."),
    opt("quotas", "limits_cache_seconds", Int, "5", "Seconds a node keeps a project's limits read from the management store (/v2/quotas); changes made through another node apply within this time."),
    opt("quotas", "bytes_cache_seconds", Int, "2", "Seconds a node keeps a project's stored-bytes figure between reads (0: read it for every post to a project with a byte limit); posts through other nodes within this time may overshoot the limit."),
    // [cors]
    opt("cors", "allowed_origin", List, "", "Origins allowed to call the API from browsers (empty: CORS off)."),
    opt("cors", "allow_credentials", Bool, "true", "Whether browsers may send credentials."),
    opt("cors", "max_age", Int, "3600", "Seconds browsers may cache a preflight answer."),
    opt("cors", "expose_headers", List, "X-Auth-Token,X-Subject-Token,X-Service-Token,X-OpenStack-Request-ID", "Response headers exposed to scripts."),
    opt("cors", "allow_methods", List, "GET,PUT,POST,DELETE,PATCH,HEAD", "Methods allowed in cross-origin requests."),
    opt("cors", "allow_headers", List, "X-Auth-Token,X-Identity-Status,X-Roles,X-Service-Catalog,X-User-Id,X-Tenant-Id,X-OpenStack-Request-ID,X-Trace-Info,X-Trace-HMAC,Client-id", "Request headers allowed in cross-origin requests."),
    // [signed_url]
    opt("signed_url", "secret_key", Str, "", "HMAC key of pre-signed URLs (POST .../share); unset disables sharing. Secret."),
    // [encryption]
    opt("encryption", "key_file", Str, "", "File of encryption keys, one `id = <64 hex digits or base64 of 32 bytes>` per line."),
    opt("encryption", "current_key", Str, "", "Id of the key new messages are encrypted with (required when several keys are configured)."),
    // [storage]
    opt(
        "storage",
        "message_pipeline",
        List,
        "",
        "Pipeline stages around message operations (zaqar.notification.notifier accepted).",
    ),
    opt(
        "storage",
        "queue_pipeline",
        Accepted,
        "",
        "Accepted for compatibility.",
    ),
    opt(
        "storage",
        "claim_pipeline",
        Accepted,
        "",
        "Accepted for compatibility.",
    ),
    opt(
        "storage",
        "subscription_pipeline",
        Accepted,
        "",
        "Accepted for compatibility.",
    ),
    opt(
        "storage",
        "topic_pipeline",
        Accepted,
        "",
        "Accepted for compatibility.",
    ),
    // [admin]: the admin listener (metrics, liveness, readiness); not part of Zaqar.
    opt("admin", "bind", Str, "127.0.0.1", "Address of the admin listener (GET /metrics, /healthz, /readyz). Keep it private: it is not authenticated."),
    opt("admin", "port", Int, "0", "Port of the admin listener (0: no admin listener)."),
    opt("admin", "queue_depth_top", Int, "20", "Queues (and projects) with the most messages exported as depth gauges; 0: no depth gauges."),
    opt("admin", "queue_depth_interval", Int, "30", "Seconds between samples of the depth of recently used queues (at most 1000 queues)."),
    opt("admin", "console", Bool, "false", "Serve the web console (/console) on the admin listener, with the v2 API (authenticated as on the API port) beside it."),
    // [opentelemetry]: trace export (needs a build with the `otel` cargo feature).
    opt("opentelemetry", "enabled", Bool, "false", "Export request spans with OTLP/HTTP (builds without the otel feature refuse to start when true)."),
    opt("opentelemetry", "endpoint", Str, "http://127.0.0.1:4318/v1/traces", "OTLP/HTTP (protobuf) traces endpoint."),
    opt("opentelemetry", "service_name", Str, "zaqar", "service.name resource attribute of exported spans."),
];
