//! One WebSocket connection.
//!
//! A single task owns the socket and everything of the connection. It reads frames and runs
//! each request as a future of its own, polled alongside the socket: requests of a connection
//! run concurrently, so responses may come back out of order (each carries its `request`).
//! Finished responses are written out in batches. Resources stay bounded:
//! - at most `max_requests_in_flight` requests run at once; while they do, the socket is not
//!   read (TCP pushes back on the client);
//! - responses are written as they finish, at most `send_buffer_size` bytes per batch before a
//!   flush; while a batch is being written nothing else of the connection progresses, so a
//!   connection holds at most one batch plus one response per request in flight;
//! - a client that does not read (a write makes no progress for `send_timeout`) is
//!   disconnected;
//! - frames and messages are limited in size (`max_frame_size`, `max_message_size`; 1009);
//! - a ping is sent every `ping_interval`, and a connection from which nothing (not even a
//!   pong) arrived for `idle_timeout` is closed.
//!
//! On shutdown the connection stops reading, answers the requests in flight, then sends a
//! close frame (1001). When an authentication expires, it is closed with 4003.
//!
//! An idle connection costs about 7 KiB of server memory (mostly the 4 KiB read buffer and
//! this task's state).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use bytes::Bytes;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Error as WsError;

use super::auth::{self, AuthState};
use super::protocol::{self, Format};
use super::{actions, WsState};

/// Most responses written in one go before the socket is flushed.
const WRITE_BATCH: usize = 64;
/// How long to wait for the client's close frame after sending ours.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// "Never", for disabled timers.
const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// What the requests of a connection share with it.
pub(crate) struct Connection {
    auth: Mutex<AuthState>,
    /// Wakes the connection task when the authentication changed (to re-arm its expiry).
    auth_changed: Notify,
    /// Identifies the connection in its subscriber URI.
    pub(super) id: String,
    /// Notifications pushed to this connection, once it subscribed (taken by its task).
    push: Mutex<Option<tokio::sync::mpsc::Receiver<zaqar_core::service::notifications::Frame>>>,
    /// Frame format of notifications: that of the last successful subscribing request.
    push_format: Mutex<Format>,
    /// Wakes the connection task when it subscribed for the first time.
    subscribed: Notify,
    /// Subscriptions this connection made for itself (deleted when it closes).
    own_subscriptions: Mutex<Vec<OwnSubscription>>,
}

/// A subscription a connection made for itself.
#[derive(Debug, Clone)]
pub(crate) struct OwnSubscription {
    pub project: String,
    pub client_id: String,
    pub kind: zaqar_core::service::subscriptions::SourceKind,
    pub source: String,
    pub id: String,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Connection {
    /// A fresh connection, with a new id, not authenticated yet and not subscribed.
    fn new(auth_required: bool) -> Connection {
        Connection {
            auth: Mutex::new(AuthState::initial(auth_required)),
            auth_changed: Notify::new(),
            id: uuid::Uuid::new_v4().simple().to_string(),
            push: Mutex::new(None),
            push_format: Mutex::new(Format::Json),
            subscribed: Notify::new(),
            own_subscriptions: Mutex::new(Vec::new()),
        }
    }

    pub(super) fn auth_state(&self) -> AuthState {
        lock(&self.auth).clone()
    }

    pub(super) fn set_auth_state(&self, state: AuthState) {
        *lock(&self.auth) = state;
        self.auth_changed.notify_one();
    }

    /// Records a subscription of this connection; the first one starts the push channel.
    pub(super) fn subscribed(&self, state: &WsState, format: Format, sub: OwnSubscription) {
        *lock(&self.push_format) = format;
        lock(&self.own_subscriptions).push(sub);
        let mut push = lock(&self.push);
        if push.is_none() {
            let capacity = (state.config.send_buffer_size / 256).clamp(16, 4096);
            *push = Some(
                state
                    .service
                    .push_connections()
                    .register_connection(&self.id, capacity),
            );
            self.subscribed.notify_one();
        }
    }

    pub(super) fn forget_subscription(&self, id: &str) {
        lock(&self.own_subscriptions).retain(|s| s.id != id);
    }
}

/// A request being processed: resolves to its encoded response.
type Pending = Pin<Box<dyn Future<Output = Message> + Send>>;

fn encode(format: Format, doc: &Value) -> Message {
    match format {
        Format::Json => Message::Text(Utf8Bytes::from(
            serde_json::to_string(doc).unwrap_or_default(),
        )),
        Format::MsgPack => Message::Binary(Bytes::from(protocol::encode(Format::MsgPack, doc))),
    }
}

fn message_len(m: &Message) -> usize {
    match m {
        Message::Text(t) => t.len(),
        Message::Binary(b) => b.len(),
        _ => 0,
    }
}

/// One request, from its frame to its encoded response. A panic is contained: it becomes a
/// 500 response.
fn request(state: &Arc<WsState>, conn: &Arc<Connection>, format: Format, data: Bytes) -> Pending {
    let (state, conn) = (state.clone(), conn.clone());
    Box::pin(async move {
        let doc = AssertUnwindSafe(actions::respond(&state, &conn, format, &data))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| {
                tracing::error!("a WebSocket request handler panicked");
                protocol::response(
                    protocol::echo(None),
                    500,
                    json!({"error": "Unexpected error."}),
                )
            });
        if tracing::enabled!(tracing::Level::DEBUG) {
            tracing::debug!(
                action = %doc["request"]["action"],
                status = %doc["headers"]["status"],
                "websocket request completed"
            );
        }
        encode(format, &doc)
    })
}

/// Why the read side stopped, with the close frame to send (if any).
fn close_for_read_error(e: &axum::Error) -> Option<(u16, &'static str)> {
    let inner = std::error::Error::source(e).and_then(|s| s.downcast_ref::<WsError>());
    match inner {
        Some(WsError::Capacity(_)) => Some((1009, "Message too big.")),
        Some(WsError::Utf8(_)) => Some((1007, "Text frame is not valid UTF-8.")),
        Some(WsError::Protocol(_)) => Some((1002, "Protocol error.")),
        _ => None,
    }
}

fn close_frame(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }))
}

/// Sends a close frame and waits (briefly) for the client's, discarding anything else.
async fn close(socket: &mut WebSocket, code: u16, reason: &'static str, send_timeout: Duration) {
    let sent = tokio::time::timeout(send_timeout, socket.send(close_frame(code, reason))).await;
    if !matches!(sent, Ok(Ok(()))) {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        while let Some(Ok(msg)) = socket.next().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// Writes `first` and the other responses that are ready (up to a batch of `max_bytes`), then
/// flushes. `false` when the connection must end.
async fn write_out(
    socket: &mut WebSocket,
    first: Message,
    pending: &mut FuturesUnordered<Pending>,
    max_bytes: usize,
    send_timeout: Duration,
) -> bool {
    let result = tokio::time::timeout(send_timeout, async {
        let mut bytes = message_len(&first);
        socket.feed(first).await?;
        for _ in 1..WRITE_BATCH {
            if bytes >= max_bytes {
                break;
            }
            let Some(Some(next)) = pending.next().now_or_never() else {
                break;
            };
            bytes += message_len(&next);
            socket.feed(next).await?;
        }
        socket.flush().await
    })
    .await;
    match result {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "WebSocket write failed");
            false
        }
        Err(_) => {
            tracing::info!("WebSocket client too slow to read its responses; disconnecting");
            false
        }
    }
}

async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Sends one frame outside a response batch (a ping, a notification). `false` when it could
/// not be written within `send_timeout` and the connection must end.
async fn send_within(socket: &mut WebSocket, msg: Message, send_timeout: Duration) -> bool {
    let sent = tokio::time::timeout(send_timeout, socket.send(msg)).await;
    matches!(sent, Ok(Ok(())))
}

/// Handles one read from the client: a request frame starts its request (into `pending`); a
/// close, a read error or the end of the stream ends the connection (`false`).
async fn on_frame(
    socket: &mut WebSocket,
    frame: Option<Result<Message, axum::Error>>,
    state: &Arc<WsState>,
    conn: &Arc<Connection>,
    pending: &mut FuturesUnordered<Pending>,
    send_timeout: Duration,
) -> bool {
    match frame {
        Some(Ok(Message::Text(text))) => {
            pending.push(request(state, conn, Format::Json, Bytes::from(text)));
        }
        Some(Ok(Message::Binary(data))) => {
            pending.push(request(state, conn, Format::MsgPack, data));
        }
        // Pings are answered by the library; any frame counts as activity.
        Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
        Some(Ok(Message::Close(_))) => {
            // The library answers the close; flush that answer and stop.
            let _ = tokio::time::timeout(send_timeout, socket.close()).await;
            return false;
        }
        Some(Err(e)) => {
            tracing::debug!(error = %e, "WebSocket read failed");
            if let Some((code, reason)) = close_for_read_error(&e) {
                close(socket, code, reason, send_timeout).await;
            }
            return false;
        }
        None => return false,
    }
    true
}

/// What a closed connection leaves behind: its push channel, and the subscriptions it made
/// for itself (deleted in the background, so that closing does not wait for the store).
fn end_connection(state: &WsState, conn: &Connection) {
    state
        .service
        .push_connections()
        .unregister_connection(&conn.id);
    let own = std::mem::take(&mut *lock(&conn.own_subscriptions));
    if !own.is_empty() {
        let service = state.service.clone();
        tokio::spawn(async move {
            for s in own {
                let ctx = zaqar_core::service::Ctx {
                    project: &s.project,
                    client_id: &s.client_id,
                    user: None,
                };
                if let Err(e) = service
                    .delete_subscription(ctx, s.kind, &s.source, &s.id)
                    .await
                {
                    tracing::warn!(error = %e, "a closed connection's subscription was not removed");
                }
            }
        });
    }
}

/// Serves one upgraded connection until it closes. `_permit` is the connection's slot in
/// `max_connections`.
pub(super) async fn run(state: Arc<WsState>, mut socket: WebSocket, _permit: OwnedSemaphorePermit) {
    let _open = zaqar_core::metrics::websocket_connection();
    let cfg = &state.config;
    let max_in_flight = cfg.max_requests_in_flight;
    let send_timeout = Duration::from_secs(cfg.send_timeout_secs);
    let conn = Arc::new(Connection::new(state.service.auth_required()));
    let mut push_rx: Option<
        tokio::sync::mpsc::Receiver<zaqar_core::service::notifications::Frame>,
    > = None;
    let mut pending: FuturesUnordered<Pending> = FuturesUnordered::new();
    let mut shutdown = state.shutdown.clone();

    let idle = (cfg.idle_timeout_secs > 0).then(|| Duration::from_secs(cfg.idle_timeout_secs));
    let idle_timer = tokio::time::sleep(idle.unwrap_or(FAR));
    tokio::pin!(idle_timer);
    let ping_every = Duration::from_secs(cfg.ping_interval_secs);
    let pinging = !ping_every.is_zero();
    let mut ping = tokio::time::interval_at(
        Instant::now() + if pinging { ping_every } else { FAR },
        if pinging { ping_every } else { FAR },
    );
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let expiry_timer = tokio::time::sleep(FAR);
    tokio::pin!(expiry_timer);
    let mut expires: Option<std::time::Instant> = None;

    // Set once the server shuts down: stop reading, answer what is in flight, then close.
    let mut closing = *shutdown.borrow();
    loop {
        if closing && pending.is_empty() {
            close(&mut socket, 1001, "Server shutting down.", send_timeout).await;
            break;
        }
        let now_expires = auth::expiry(&lock(&conn.auth));
        if now_expires != expires {
            expires = now_expires;
            if let Some(at) = expires {
                expiry_timer.as_mut().reset(Instant::from_std(at));
            }
        }
        let can_read = !closing && pending.len() < max_in_flight;
        tokio::select! {
            biased;
            Some(response) = pending.next(), if !pending.is_empty() => {
                let ok = write_out(
                    &mut socket,
                    response,
                    &mut pending,
                    cfg.send_buffer_size,
                    send_timeout,
                )
                .await;
                if !ok {
                    break;
                }
            }
            _ = conn.auth_changed.notified() => {}
            _ = conn.subscribed.notified(), if push_rx.is_none() => {
                push_rx = lock(&conn.push).take();
            }
            Some(frame) = async { push_rx.as_mut()?.recv().await }, if push_rx.is_some() => {
                // A notification (spec §4.6): the bare payload, no response envelope.
                let format = *lock(&conn.push_format);
                if !send_within(&mut socket, encode(format, &frame), send_timeout).await {
                    break;
                }
            }
            _ = stopped(&mut shutdown), if !closing => closing = true,
            _ = &mut expiry_timer, if expires.is_some() => {
                conn.set_auth_state(AuthState::initial(state.service.auth_required()));
                close(&mut socket, auth::EXPIRED_CODE, auth::EXPIRED_REASON, send_timeout).await;
                break;
            }
            frame = socket.next(), if can_read => {
                if let Some(idle) = idle {
                    idle_timer.as_mut().reset(Instant::now() + idle);
                }
                if !on_frame(&mut socket, frame, &state, &conn, &mut pending, send_timeout).await {
                    break;
                }
            }
            _ = ping.tick(), if pinging => {
                if !send_within(&mut socket, Message::Ping(Bytes::new()), send_timeout).await {
                    break;
                }
            }
            _ = &mut idle_timer, if idle.is_some() => {
                tracing::debug!("WebSocket connection idle; closing");
                close(&mut socket, 1000, "Idle timeout.", send_timeout).await;
                break;
            }
        }
    }
    // The connection's own subscriptions end with it.
    end_connection(&state, &conn);
}
