//! The listeners of the API: HTTP (`[drivers:transport:wsgi]`) and WebSocket
//! (`[drivers:transport:websocket]`).

use super::resolve::Resolver;
use super::{ConfigError, Origin, WebSocketConfig};

/// `[drivers:transport:wsgi]`, the HTTP listener.
pub(super) struct Wsgi {
    pub(super) bind: String,
    pub(super) port: u16,
    pub(super) max_connections: usize,
    pub(super) max_header_bytes: usize,
    pub(super) header_read_timeout_secs: u64,
    pub(super) shutdown_timeout_secs: u64,
}

/// `[drivers:transport:wsgi]`.
pub(super) fn wsgi(r: &Resolver<'_>) -> Result<Wsgi, ConfigError> {
    const W: &str = "drivers:transport:wsgi";
    Ok(Wsgi {
        bind: r.string(W, "bind"),
        port: r.int(W, "port", 0, 65535)? as u16,
        max_connections: r.int(W, "max_connections", 1, 1_000_000)? as usize,
        max_header_bytes: r.int(W, "max_header_bytes", 1024, 1 << 20)? as usize,
        header_read_timeout_secs: r.int(W, "header_read_timeout", 1, 3600)? as u64,
        shutdown_timeout_secs: r.int(W, "shutdown_timeout", 0, 3600)? as u64,
    })
}

/// `[drivers:transport:websocket]`. The WebSocket listener is required when it is the
/// `[drivers] transport`, or when its address was configured explicitly.
pub(super) fn websocket(r: &Resolver<'_>, transport: &str) -> Result<WebSocketConfig, ConfigError> {
    const WS: &str = "drivers:transport:websocket";
    let ws_required = transport == "websocket"
        || r.raw(WS, "port").1 != Origin::Default
        || r.raw(WS, "bind").1 != Origin::Default;
    Ok(WebSocketConfig {
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
    })
}

/// A connection idle for longer than the ping interval is closed, so the idle timeout must
/// exceed the ping interval, or live clients would be disconnected between pings.
pub(super) fn check_websocket(ws: &WebSocketConfig) -> Result<(), ConfigError> {
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::tests::load;
    use crate::config::Config;

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
}
