//! The Redis store itself: its connection and scripts, opening it, running scripts and commands
//! within the operation timeout, the keys of a queue, and the `DataStore` trait (ping, wake-ups
//! across nodes, shutdown).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use redis::{FromRedisValue, ScriptInvocation};

use zaqar_core::clock::SharedClock;
use zaqar_core::error::{Error, Result};
use zaqar_core::hub::Hub;
use zaqar_core::model::QueueRef;
use zaqar_core::store::DataStore;

use super::conn::{self, Conn, PubSubSource, Timeouts};
use super::keys::{self, Keys};
use super::scripts::Scripts;
use super::RedisStoreConfig;

/// A simulated crash point inside a drain of the outbox (recovery tests only).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainStop {
    Never,
    BeforeApply,
    AfterApply,
    AfterOutboxRemoval,
}

pub struct RedisStore {
    pub(super) conn: Conn,
    pub(super) pubsub: PubSubSource,
    pub(super) keys: Keys,
    pub(super) scripts: Scripts,
    pub(super) clock: SharedClock,
    pub(super) timeouts: Timeouts,
    /// Identifies this process in published events, so it ignores its own.
    pub(super) node: String,
    pub(super) channel: String,
    pub(super) closed: Arc<AtomicBool>,
    pub(super) tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    pub(super) drain_stop: Mutex<DrainStop>,
}

impl RedisStore {
    /// Connects to the Redis named by `uri`. With a standalone or Sentinel URI the connection
    /// is made on first use, so the store opens while Redis is still down; a cluster is asked
    /// for its slot map now.
    pub async fn open(
        uri: &str,
        cfg: &RedisStoreConfig,
        clock: SharedClock,
    ) -> Result<Arc<RedisStore>> {
        let target = conn::parse_uri(uri)?;
        let timeouts = Timeouts {
            connect: Duration::from_millis(cfg.connect_timeout_ms),
            operation: Duration::from_millis(cfg.operation_timeout_ms),
        };
        let (conn, pubsub) = conn::connect(&target, timeouts).await?;
        let keys = Keys::new(&cfg.key_prefix);
        Ok(Arc::new(RedisStore {
            conn,
            pubsub,
            channel: keys.channel(),
            keys,
            scripts: Scripts::new(),
            clock,
            timeouts,
            node: uuid::Uuid::new_v4().simple().to_string(),
            closed: Arc::new(AtomicBool::new(false)),
            tasks: Mutex::new(Vec::new()),
            drain_stop: Mutex::new(DrainStop::Never),
        }))
    }

    pub(super) fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::Unavailable("the message store is shut down".into()))
        } else {
            Ok(())
        }
    }

    pub(super) fn timed_out(&self) -> Error {
        Error::Unavailable(format!(
            "the Redis message store did not answer within {} ms",
            self.timeouts.operation.as_millis()
        ))
    }

    /// Runs a script, bounded by the operation timeout.
    pub(super) async fn eval<T: FromRedisValue>(&self, inv: &ScriptInvocation<'_>) -> Result<T> {
        self.check_open()?;
        let mut conn = self.conn.clone();
        match tokio::time::timeout(self.timeouts.operation, inv.invoke_async(&mut conn)).await {
            Ok(r) => r.map_err(conn::map_err),
            Err(_) => Err(self.timed_out()),
        }
    }

    /// Runs a plain command, bounded by the operation timeout.
    pub(super) async fn query<T: FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T> {
        self.check_open()?;
        let mut conn = self.conn.clone();
        match tokio::time::timeout(self.timeouts.operation, cmd.query_async(&mut conn)).await {
            Ok(r) => r.map_err(conn::map_err),
            Err(_) => Err(self.timed_out()),
        }
    }

    pub(super) fn qkey(&self, q: QueueRef<'_>) -> String {
        self.keys.queue(q)
    }

    /// A key of the queue other than its record (`part` replaces the final `q`).
    pub(super) fn qpart(&self, q: QueueRef<'_>, part: &str) -> String {
        let mut k = self.keys.queue(q);
        k.pop();
        k.push_str(part);
        k
    }

    pub(super) fn event(&self, q: QueueRef<'_>) -> String {
        self.keys.event(&self.node, q)
    }
}

#[async_trait]
impl DataStore for RedisStore {
    async fn ping(&self) -> Result<()> {
        self.query::<String>(&redis::cmd("PING")).await.map(|_| ())
    }

    fn subscriptions(&self) -> Option<&dyn zaqar_core::store::SubscriptionStore> {
        Some(self)
    }

    /// Subscribes to the store's event channel and wakes this node's waiters for writes made
    /// through other nodes. The subscription reconnects by itself after Redis restarts.
    fn attach_hub(&self, hub: Arc<Hub>) {
        let source = self.pubsub.clone();
        let channel = self.channel.clone();
        let node = self.node.clone();
        let closed = self.closed.clone();
        let connect_timeout = self.timeouts.connect;
        let task = tokio::spawn(async move {
            let mut attempt = 0usize;
            while !closed.load(Ordering::Acquire) {
                match tokio::time::timeout(connect_timeout, source.connect(attempt)).await {
                    Ok(Ok(mut ps)) => match ps.subscribe(&channel).await {
                        Ok(()) => {
                            attempt = 0;
                            let mut stream = ps.on_message();
                            while let Some(msg) = stream.next().await {
                                let Ok(payload) = msg.get_payload::<String>() else {
                                    continue;
                                };
                                if let Some((from, p, q)) = keys::parse_event(&payload) {
                                    if from != node {
                                        hub.notify(&p, &q);
                                    }
                                }
                            }
                            tracing::warn!("Redis event subscription lost; reconnecting");
                        }
                        Err(e) => tracing::warn!(error = %e, "Redis event subscription failed"),
                    },
                    Ok(Err(e)) => tracing::debug!(error = %e, "Redis event connection failed"),
                    Err(_) => tracing::debug!("Redis event connection timed out"),
                }
                attempt += 1;
                let backoff = Duration::from_millis((50u64 << attempt.min(5)).min(1000));
                tokio::time::sleep(backoff).await;
            }
        });
        self.tasks.lock().unwrap().push(task);
    }

    async fn shutdown(&self) {
        self.closed.store(true, Ordering::Release);
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }
}
