//! Long-poll wake-ups across API nodes with LISTEN/NOTIFY.
//!
//! Writes that make messages available (post, release, dead-letter moves, redrive) call
//! [`Publisher::push`] after their transaction committed. A publisher task coalesces the
//! (project, queue) pairs and sends them with `pg_notify` on a dedicated connection whose
//! `synchronous_commit` is off: the data transactions themselves never NOTIFY, because a
//! notifying commit takes a database-wide lock until its WAL flush completes, which would
//! serialise every post of the cluster.
//!
//! A listener task on another dedicated connection LISTENs on the store's channel and calls
//! [`Hub::notify`] for events published by other nodes (each payload carries the publishing
//! node's id; a node ignores its own, which the service has already signalled). The listener
//! reconnects by itself with a bounded backoff and probes an idle connection so a silently
//! dropped one is noticed. Notifications sent while it was disconnected are lost: waiters then
//! return at their deadline, as if nothing had been posted.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::{Executor, PgPool};
use tokio::sync::Notify;

use zaqar_core::hub::Hub;

/// Most distinct queues waiting to be announced; beyond this, events are dropped (waiters then
/// wake at their deadline).
const MAX_PENDING: usize = 100_000;
/// Payloads per `pg_notify` statement.
const CHUNK: usize = 500;
/// A listener connection silent for this long is probed.
const PROBE_AFTER: Duration = Duration::from_secs(30);

/// The channel of a store: one per schema, so stores in different schemas of one database (tests,
/// several deployments) do not wake each other.
pub(crate) fn channel_for(schema: &str) -> String {
    let mut c = format!("zaqar:{schema}");
    // Channel names are identifiers: at most 63 bytes (schema names are ASCII).
    c.truncate(63);
    c
}

fn payload(node: &str, project: &str, queue: &str) -> String {
    serde_json::json!([node, project, queue]).to_string()
}

fn parse_payload(text: &str) -> Option<(String, String, String)> {
    let v: (String, String, String) = serde_json::from_str(text).ok()?;
    Some(v)
}

#[derive(Default)]
pub(crate) struct Publisher {
    pending: Mutex<HashSet<(String, String)>>,
    wake: Notify,
}

impl Publisher {
    /// Announces that `queue` of `project` has new claimable messages.
    pub(super) fn push(&self, project: &str, queue: &str) {
        {
            let mut p = self.pending.lock().unwrap();
            if p.len() >= MAX_PENDING {
                return;
            }
            p.insert((project.to_string(), queue.to_string()));
        }
        self.wake.notify_one();
    }

    fn take(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *self.pending.lock().unwrap())
            .into_iter()
            .collect()
    }

    /// Sends pending events until the task is aborted.
    pub(super) async fn run(self: Arc<Self>, pool: PgPool, channel: String, node: String) {
        loop {
            self.wake.notified().await;
            let batch = self.take();
            for chunk in batch.chunks(CHUNK) {
                let payloads: Vec<String> =
                    chunk.iter().map(|(p, q)| payload(&node, p, q)).collect();
                let sent = sqlx::query("SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p")
                    .bind(&channel)
                    .bind(&payloads)
                    .execute(&pool)
                    .await;
                if let Err(e) = sent {
                    tracing::warn!(error = %e, "cannot publish long-poll wake-ups to other nodes");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    break;
                }
            }
        }
    }
}

/// Relays other nodes' events to `hub` until the task is aborted.
pub(crate) async fn listen(pool: PgPool, channel: String, node: String, hub: Arc<Hub>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let started = tokio::time::Instant::now();
        if let Err(e) = listen_once(&pool, &channel, &node, &hub).await {
            // A connection that worked for a while starts the backoff over.
            if started.elapsed() > Duration::from_secs(10) {
                backoff = Duration::from_millis(100);
            }
            tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64,
                "long-poll listener lost its PostgreSQL connection");
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn listen_once(
    pool: &PgPool,
    channel: &str,
    node: &str,
    hub: &Hub,
) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.ignore_pool_close_event(true);
    listener.listen(channel).await?;
    tracing::debug!(channel, "long-poll listener connected");
    loop {
        match tokio::time::timeout(PROBE_AFTER, listener.try_recv()).await {
            Ok(Ok(Some(n))) => {
                if let Some((from, project, queue)) = parse_payload(n.payload()) {
                    if from != node {
                        hub.notify(&project, &queue);
                    }
                }
            }
            Ok(Ok(None)) => {
                tracing::warn!("long-poll listener reconnected; wake-ups may have been missed");
            }
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                // Quiet for a while: make sure the connection is still there.
                listener.execute("SELECT 1").await?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_any_project() {
        for project in ["p", "a \"quoted\" project", "multi\nline", "ünï", ""] {
            let text = payload("node-1", project, "q");
            assert_eq!(
                parse_payload(&text),
                Some(("node-1".into(), project.into(), "q".into()))
            );
        }
        assert_eq!(parse_payload("garbage"), None);
    }

    #[test]
    fn channel_names_fit_identifiers() {
        assert_eq!(channel_for("zaqar"), "zaqar:zaqar");
        assert!(channel_for(&"s".repeat(63)).len() <= 63);
    }
}
