//! The WebSocket transport (Zaqar v2 WebSocket API, spec §4): a listener of its own
//! (`[drivers:transport:websocket]`), upgrades on the HTTP port too, the request/response
//! envelope in JSON text or MessagePack binary frames, and one service call per action.
//!
//! - `protocol`: frame decoding/encoding, the echoed `request`, the schema of every action.
//! - `actions`: authorization, then action → one `Service` function → WebSocket body shape.
//! - `auth`: the per-connection authentication state (hooks for Keystone and signed URLs).
//! - `conn`: one connection: concurrent requests (bounded), batched writes (a client that does
//!   not read is disconnected), keep-alive pings, idle timeout, close on shutdown.
//! - body shapes: `crate::wire` (shared with HTTP) and `crate::wire::ws`.

mod actions;
pub mod auth;
mod conn;
pub mod operations;
pub mod protocol;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::Value;
use tokio::sync::{watch, Semaphore};

use crate::http::ApiOptions;
use zaqar_core::error::{Error, Result};
use zaqar_core::service::Service;

/// Settings of the WebSocket transport (`[drivers:transport:websocket]`).
#[derive(Debug, Clone)]
pub struct WebSocketConfig {
    pub bind: String,
    pub port: u16,
    pub max_connections: usize,
    pub max_message_size: usize,
    pub max_frame_size: usize,
    pub max_requests_in_flight: usize,
    pub send_buffer_size: usize,
    pub send_timeout_secs: u64,
    /// 0: no keep-alive pings.
    pub ping_interval_secs: u64,
    /// 0: no idle timeout.
    pub idle_timeout_secs: u64,
    /// This node's notification listener (empty bind: the WebSocket bind address).
    pub notification_bind: String,
    pub notification_port: u16,
    /// Whether failing to listen is fatal: the operator chose this transport (`[drivers]
    /// transport = websocket`) or its address. With everything at its defaults, a busy port
    /// 9000 (e.g. a second server on the host) only disables the WebSocket listener.
    pub required: bool,
}

/// The read buffer of a connection. Small, so that idle connections are cheap (tungstenite's
/// default of 128 KiB is allocated and zeroed per connection); frames larger than it are
/// still read whole.
const READ_BUFFER: usize = 4 * 1024;
/// Responses are buffered up to this size before they are written (flushes write anyway).
const WRITE_BUFFER: usize = 64 * 1024;

/// Shared by every connection.
pub struct WsState {
    service: Arc<Service>,
    config: WebSocketConfig,
    admin_mode: bool,
    /// `admin_mode` and `pooling`: the `pool_*` and `flavor_*` actions are served.
    pooling: bool,
    /// One permit per open connection (`max_connections`).
    sessions: Arc<Semaphore>,
    shutdown: watch::Receiver<bool>,
}

impl WsState {
    /// The JSON-home document, as `GET /v2/` serves it.
    fn home_document(&self) -> Value {
        crate::wire::home_document(self.admin_mode, self.pooling)
    }
}

/// The WebSocket side of a server: its router, the upgrade hook for the HTTP port, and
/// shutdown.
pub struct WebSocketServer {
    state: Arc<WsState>,
    shutdown: watch::Sender<bool>,
}

impl WebSocketServer {
    pub fn new(
        service: Arc<Service>,
        options: &ApiOptions,
        config: &WebSocketConfig,
    ) -> WebSocketServer {
        let (shutdown, rx) = watch::channel(false);
        let state = Arc::new(WsState {
            service,
            config: config.clone(),
            admin_mode: options.admin_mode,
            pooling: options.admin_mode && options.pooling,
            sessions: Arc::new(Semaphore::new(config.max_connections)),
            shutdown: rx,
        });
        WebSocketServer { state, shutdown }
    }

    /// The router of the WebSocket listener: an upgrade on any path.
    pub fn router(&self) -> Router {
        Router::new()
            .fallback(upgrade_any_path)
            .with_state(self.state.clone())
    }

    /// Wraps the HTTP router so that WebSocket upgrades on the HTTP port are accepted too.
    pub fn accept_upgrades_on(&self, http: Router) -> Router {
        http.layer(axum::middleware::from_fn_with_state(
            self.state.clone(),
            upgrade_or_next,
        ))
    }

    /// Starts this node's notification listener (spec §4.6): `POST /<connection id>` with a
    /// notification as JSON pushes it to that connection, if it is open here. Subscriptions of
    /// connections point at it, so deliveries made by any node reach the connection. Returns
    /// the address it listens on.
    pub async fn start_notification_listener(&self) -> Result<std::net::SocketAddr> {
        let c = &self.state.config;
        let bind = if c.notification_bind.is_empty() {
            c.bind.as_str()
        } else {
            c.notification_bind.as_str()
        };
        let addr = format!("{bind}:{}", c.notification_port);
        let listener = tokio::net::TcpListener::bind(&addr).await.map_err(|e| {
            Error::Unavailable(format!("cannot listen on {addr} (notifications): {e}"))
        })?;
        let local = listener
            .local_addr()
            .map_err(|e| Error::Unavailable(format!("notification listener: {e}")))?;
        let host = if local.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            match local.ip() {
                std::net::IpAddr::V6(ip) => format!("[{ip}]"),
                ip => ip.to_string(),
            }
        };
        self.state
            .service
            .push_connections()
            .set_listener_base(format!("http://{host}:{}/", local.port()));
        let app = Router::new()
            .route("/{conn}", axum::routing::post(push_notification))
            .with_state(self.state.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "notification listener stopped");
            }
        });
        Ok(local)
    }

    /// Open WebSocket connections.
    pub fn connections(&self) -> usize {
        self.state.config.max_connections - self.state.sessions.available_permits()
    }

    /// Asks every connection to finish: no more requests are read, in-flight ones are
    /// answered, then a close frame (1001) is sent. Resolves when every connection has ended
    /// or `timeout` has passed.
    pub async fn shutdown(&self, timeout: Duration) {
        let _ = self.shutdown.send(true);
        let all = u32::try_from(self.state.config.max_connections).unwrap_or(u32::MAX);
        if tokio::time::timeout(timeout, self.state.sessions.acquire_many(all))
            .await
            .is_err()
        {
            tracing::warn!(
                open = self.connections(),
                "shutdown timeout reached with WebSocket connections still open"
            );
        }
    }
}

/// `POST /<connection id>` on the notification listener.
async fn push_notification(
    State(state): State<Arc<WsState>>,
    axum::extract::Path(conn): axum::extract::Path<String>,
    body: Body,
) -> Response {
    let Ok(Ok(bytes)) = tokio::time::timeout(
        Duration::from_secs(10),
        http_body_util::Limited::new(body, 4 << 20).collect(),
    )
    .await
    else {
        return axum::http::StatusCode::BAD_REQUEST.into_response();
    };
    let Ok(frame) = serde_json::from_slice::<Value>(&bytes.to_bytes()) else {
        return axum::http::StatusCode::BAD_REQUEST.into_response();
    };
    if state
        .service
        .push_connections()
        .push_local_frame(&conn, frame)
    {
        axum::http::StatusCode::OK.into_response()
    } else {
        // The connection is not reading: let the sender retry.
        axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response()
    }
}

fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("websocket"))
}

async fn upgrade_any_path(State(state): State<Arc<WsState>>, ws: WebSocketUpgrade) -> Response {
    upgrade(state, ws)
}

/// On the HTTP port: a WebSocket handshake (on any path) becomes a WebSocket connection,
/// anything else goes on to the HTTP API.
async fn upgrade_or_next(State(state): State<Arc<WsState>>, req: Request, next: Next) -> Response {
    if !is_websocket_upgrade(req.headers()) {
        return next.run(req).await;
    }
    let (mut parts, _body) = req.into_parts();
    match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
        Ok(ws) => upgrade(state, ws),
        Err(rejection) => rejection.into_response(),
    }
}

fn upgrade(state: Arc<WsState>, ws: WebSocketUpgrade) -> Response {
    if *state.shutdown.borrow() {
        return crate::http::respond(Error::unavailable("The server is shutting down."));
    }
    let Ok(permit) = state.sessions.clone().try_acquire_owned() else {
        tracing::warn!(
            max = state.config.max_connections,
            "WebSocket connection refused: connection limit reached"
        );
        return crate::http::respond(Error::unavailable(
            "Too many WebSocket connections; try again later.",
        ));
    };
    let c = &state.config;
    ws.read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(c.max_message_size)
        .max_frame_size(c.max_frame_size)
        .on_upgrade(move |socket| conn::run(state, socket, permit))
}

pub(crate) use conn::Connection;
