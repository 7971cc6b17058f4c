//! The default driver: a durable embedded store on redb (see `docs/adr/0001-embedded-store.md`).
//!
//! Queues are spread over N independent shards (one redb file and one writer thread each) by a
//! stable hash of (project, queue). All of one queue's data lives in one shard, so every
//! multi-step operation on a queue is one transaction of one shard; different shards commit in
//! parallel, and no lock spans all queues. Reads use MVCC snapshots and never wait for writers.

mod bytes;
mod claims;
mod gc;
mod messages;
mod open;
mod outbox;
mod queues;
mod records;
mod shard;
mod sub_cache;
mod subs;
mod txn;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use zaqar_core::clock::SharedClock;
use zaqar_core::error::{Error, Result};
use zaqar_core::model::QueueRef;
use zaqar_core::store::DataStore;

use shard::{storage_error, Shard};

/// Settings of the embedded store (`[drivers:message_store:embedded]`).
#[derive(Debug, Clone)]
pub struct EmbeddedStoreConfig {
    pub path: std::path::PathBuf,
    pub shards: usize,
    pub cache_size_mb: usize,
    pub gc_interval_secs: u64,
}

pub struct EmbeddedStore {
    shards: Vec<Shard>,
    /// The post path's view of each source's subscriptions.
    sub_cache: Arc<sub_cache::SubCache>,
    clock: SharedClock,
    gc_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// One drain at a time per shard: a transfer is applied, then removed, without a second
    /// drain replaying it in between.
    drain_locks: Vec<tokio::sync::Mutex<()>>,
    /// Where drains stop early, to simulate a crash in tests (see [`DrainStop`]).
    drain_stop: Mutex<DrainStop>,
}

/// A simulated crash point inside [`EmbeddedStore::drain_outbox`] (for recovery tests).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainStop {
    Never,
    BeforeApply,
    AfterApply,
    AfterOutboxRemoval,
}

/// Stable (version-independent) hash used to place a queue on a shard.
fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0u8)) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

fn se<E: std::fmt::Display>(e: E) -> Error {
    storage_error(e)
}

/// Upper bound for "every key of this queue" in a table keyed by (project, queue, &str).
fn successor(name: &str) -> String {
    format!("{name}\0")
}

impl EmbeddedStore {
    fn shard_index(&self, q: QueueRef<'_>) -> usize {
        (fnv1a(&[q.project, q.name]) % self.shards.len() as u64) as usize
    }

    fn shard(&self, q: QueueRef<'_>) -> &Shard {
        &self.shards[self.shard_index(q)]
    }
}

#[async_trait]
impl DataStore for EmbeddedStore {
    async fn ping(&self) -> Result<()> {
        for s in &self.shards {
            s.read()?;
        }
        Ok(())
    }

    fn subscriptions(&self) -> Option<&dyn zaqar_core::store::SubscriptionStore> {
        Some(self)
    }

    async fn shutdown(&self) {
        if let Some(t) = self.gc_task.lock().unwrap().take() {
            t.abort();
        }
        for s in &self.shards {
            s.shutdown().await;
        }
    }
}
