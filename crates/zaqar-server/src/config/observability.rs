//! How the server can be watched: the log format (`[DEFAULT] log_format`), the admin listener
//! (`[admin]`: metrics, liveness, readiness, console) and trace export (`[opentelemetry]`).

use super::resolve::Resolver;
use super::ConfigError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

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

/// `[DEFAULT] log_format`: `text` or `json`.
pub(super) fn log_format(r: &Resolver<'_>) -> Result<LogFormat, ConfigError> {
    Ok(
        match r
            .choice("DEFAULT", "log_format", &["text", "json"])?
            .as_str()
        {
            "json" => LogFormat::Json,
            _ => LogFormat::Text,
        },
    )
}

/// `[admin]`.
pub(super) fn admin(r: &Resolver<'_>) -> Result<AdminConfig, ConfigError> {
    Ok(AdminConfig {
        bind: r.string("admin", "bind"),
        port: r.int("admin", "port", 0, 65535)? as u16,
        queue_depth_top: r.int("admin", "queue_depth_top", 0, 1000)? as usize,
        queue_depth_interval_secs: r.int("admin", "queue_depth_interval", 1, 86_400)? as u64,
        console: r.bool("admin", "console")?,
    })
}

/// `[opentelemetry]`.
pub(super) fn otel(r: &Resolver<'_>) -> Result<OtelConfig, ConfigError> {
    Ok(OtelConfig {
        enabled: r.bool("opentelemetry", "enabled")?,
        endpoint: r.string("opentelemetry", "endpoint"),
        service_name: r.string("opentelemetry", "service_name"),
    })
}
