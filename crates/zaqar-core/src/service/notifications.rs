//! What the service layer asks of notification delivery ([`Notifications`]), and the registry
//! of this node's WebSocket connections that receive pushed notifications
//! ([`PushConnections`], shared by the WebSocket transport and the delivery worker).

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::mpsc;

use super::subscriptions::SourceKind;
use crate::model::Subscription;

/// A frame for a local WebSocket connection.
pub type Frame = Value;

/// Notification delivery, as the service layer sees it. The delivery worker (the notify crate)
/// implements it; without one, subscriptions are stored and their notifications wait in the
/// store's outbox.
#[async_trait]
pub trait Notifications: Send + Sync {
    /// Something may be waiting in the outbox.
    fn wake(&self);

    /// Sends a subscription confirmation (or, with `subscribe = false`, an unsubscribe
    /// confirmation) to the subscriber, with a pre-signed link to `PUT .../confirm`.
    async fn send_confirmation(
        &self,
        project: &str,
        kind: SourceKind,
        sub: &Subscription,
        subscribe: bool,
    );
}

/// No delivery worker: notifications stay in the outbox until one runs.
pub struct NoDelivery;

#[async_trait]
impl Notifications for NoDelivery {
    fn wake(&self) {}

    async fn send_confirmation(&self, _: &str, _: SourceKind, sub: &Subscription, _: bool) {
        tracing::warn!(subscription = %sub.id, "confirmation not sent: no delivery worker runs");
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// This node's WebSocket connections that subscribed to notifications, and the base URL of its
/// notification listener (through which other nodes push to them).
#[derive(Default)]
pub struct PushConnections {
    /// `http://host:port/` of this node's notification listener, once it listens.
    listener_base: Mutex<Option<String>>,
    local: Mutex<HashMap<String, mpsc::Sender<Frame>>>,
}

impl PushConnections {
    /// Sets the base URL of this node's notification listener (`http://host:port/`).
    pub fn set_listener_base(&self, base: String) {
        *lock(&self.listener_base) = Some(base);
    }

    /// The subscriber URI of a local connection, or `None` before the listener is up.
    pub fn connection_uri(&self, conn_id: &str) -> Option<String> {
        lock(&self.listener_base)
            .as_ref()
            .map(|b| format!("{b}{conn_id}"))
    }

    /// Registers a connection that can receive pushed notifications.
    pub fn register_connection(&self, conn_id: &str, capacity: usize) -> mpsc::Receiver<Frame> {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        lock(&self.local).insert(conn_id.to_string(), tx);
        rx
    }

    pub fn unregister_connection(&self, conn_id: &str) {
        lock(&self.local).remove(conn_id);
    }

    /// The local connection a subscriber URI points at, if it is this node's listener.
    pub fn local_connection_of(&self, uri: &str) -> Option<String> {
        let base = lock(&self.listener_base).clone()?;
        let id = uri.strip_prefix(&base)?;
        lock(&self.local).contains_key(id).then(|| id.to_string())
    }

    /// Pushes a notification to a local connection (dropped when the connection is gone,
    /// refused when its buffer is full — the slow reader then gets a retry).
    pub fn push_local_frame(&self, conn_id: &str, frame: Frame) -> bool {
        let tx = lock(&self.local).get(conn_id).cloned();
        match tx {
            Some(tx) => tx.try_send(frame).is_ok(),
            None => true,
        }
    }
}
