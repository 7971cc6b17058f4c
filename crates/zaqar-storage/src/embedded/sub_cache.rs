//! The post path's side of subscriptions in the embedded store: a cached view of each source's
//! subscriptions, and the notification batch a post queues in its own transaction.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use redb::{ReadableTable, WriteTransaction};

use zaqar_core::clock::Millis;
use zaqar_core::error::Result;

use super::records::{decode, encode, NotifyMsg, NotifyRecord, SubRecord, COUNTERS, NOTIFY, SUBS};
use super::{se, successor};

/// The key of the per-shard batch counter in `counters` (no project id is empty).
const NOTIFY_SEQ: (&str, &str) = ("", "notifications");

/// The most sources whose subscriptions [`SubCache`] keeps (all are dropped past it).
const SUB_CACHE_SOURCES: usize = 10_000;

/// One subscription as the post path needs it.
pub(super) struct SubBrief {
    id: String,
    expires: Millis,
    confirmed: bool,
}

struct CachedSubs {
    /// The shard's abort count when the entry was read.
    aborts: u64,
    subs: Arc<[SubBrief]>,
}

/// Each source's subscriptions (id, expiry, confirmed) for the post path, so a post to a source
/// with many subscribers does not decode every subscription record. A source's entry is read
/// and changed only inside write jobs of the source's shard (one writer thread): jobs that
/// change a source's subscriptions forget its entry, and an entry read in a transaction that was
/// later aborted is ignored, since it may hold changes that were rolled back. Expired
/// subscriptions stay in an entry and are skipped by time.
#[derive(Default)]
pub(super) struct SubCache {
    sources: Mutex<CachedSources>,
}

/// Entries by project, then source; and how many there are.
#[derive(Default)]
struct CachedSources {
    count: usize,
    by_project: HashMap<String, HashMap<String, CachedSubs>>,
}

impl SubCache {
    fn get(&self, p: &str, n: &str, aborts: u64) -> Option<Arc<[SubBrief]>> {
        let g = self.sources.lock().unwrap();
        let e = g.by_project.get(p)?.get(n)?;
        (e.aborts == aborts).then(|| e.subs.clone())
    }

    fn put(&self, p: &str, n: &str, aborts: u64, subs: Arc<[SubBrief]>) {
        let mut g = self.sources.lock().unwrap();
        if g.count >= SUB_CACHE_SOURCES {
            *g = CachedSources::default();
        }
        let prev = g
            .by_project
            .entry(p.to_string())
            .or_default()
            .insert(n.to_string(), CachedSubs { aborts, subs });
        if prev.is_none() {
            g.count += 1;
        }
    }

    /// Called by every write job that changes the subscriptions of the source.
    pub(super) fn forget(&self, p: &str, n: &str) {
        let mut g = self.sources.lock().unwrap();
        let Some(of_project) = g.by_project.get_mut(p) else {
            return;
        };
        let removed = of_project.remove(n).is_some();
        if of_project.is_empty() {
            g.by_project.remove(p);
        }
        if removed {
            g.count -= 1;
        }
    }
}

/// The subscriptions of a source as `txn` sees them, from the cache when it is current.
fn source_subs(
    txn: &WriteTransaction,
    cache: &SubCache,
    aborts: &AtomicU64,
    p: &str,
    n: &str,
) -> Result<Arc<[SubBrief]>> {
    let gen = aborts.load(Ordering::Acquire);
    if let Some(subs) = cache.get(p, n, gen) {
        return Ok(subs);
    }
    let table = txn.open_table(SUBS).map_err(se)?;
    let succ = successor(n);
    let mut out = Vec::new();
    for e in table
        .range((p, n, "")..(p, succ.as_str(), ""))
        .map_err(se)?
    {
        let (k, v) = e.map_err(se)?;
        let r: SubRecord = decode(v.value())?;
        out.push(SubBrief {
            id: k.value().2.to_string(),
            expires: r.expires,
            confirmed: r.confirmed,
        });
    }
    let subs: Arc<[SubBrief]> = out.into();
    cache.put(p, n, gen, subs.clone());
    Ok(subs)
}

/// Queues a notification batch for the unexpired subscriptions of a source, inside the
/// transaction that stores the messages.
pub(super) fn queue_notification(
    txn: &WriteTransaction,
    (cache, aborts): (&SubCache, &AtomicU64),
    p: &str,
    n: &str,
    now: Millis,
    messages: impl FnOnce() -> Vec<NotifyMsg>,
) -> Result<()> {
    let subs = source_subs(txn, cache, aborts, p, n)?;
    let mut unconfirmed = Vec::new();
    let mut pending = Vec::new();
    for s in subs.iter().filter(|s| s.expires > now) {
        if !s.confirmed {
            unconfirmed.push(s.id.clone());
        }
        pending.push(s.id.clone());
    }
    if pending.is_empty() {
        return Ok(());
    }
    let messages = messages();
    if messages.is_empty() {
        return Ok(());
    }
    let mut counters = txn.open_table(COUNTERS).map_err(se)?;
    let seq = counters
        .get(NOTIFY_SEQ)
        .map_err(se)?
        .map(|g| g.value())
        .unwrap_or(0)
        + 1;
    counters.insert(NOTIFY_SEQ, seq).map_err(se)?;
    let rec = NotifyRecord {
        project: p.to_string(),
        source: n.to_string(),
        messages,
        pending,
        unconfirmed,
        lease_until: 0,
    };
    txn.open_table(NOTIFY)
        .map_err(se)?
        .insert(seq, encode(&rec)?.as_slice())
        .map_err(se)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use futures_util::FutureExt;

    use serde_json::value::RawValue;

    use super::super::{EmbeddedStore, EmbeddedStoreConfig};
    use zaqar_core::clock::ManualClock;
    use zaqar_core::error::{Error, Result};
    use zaqar_core::model::{NewMessage, NewSubscription, QueueRef, SubscriptionCreated};
    use zaqar_core::store::{MessageStore, SubscriptionStore};

    fn one_message() -> Vec<NewMessage> {
        vec![NewMessage {
            body: RawValue::from_string("1".into()).unwrap(),
            ttl: 300,
            delay: 0,
            checksum: None,
            encrypted: false,
        }]
    }

    /// A confirmation rolled back with its group commit must not leak into later posts through
    /// the post path's cached view (which a post in the same group commit refreshed).
    #[tokio::test]
    async fn cached_subscriptions_read_in_an_aborted_commit_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = EmbeddedStoreConfig {
            path: dir.path().to_path_buf(),
            shards: 1,
            cache_size_mb: 8,
            gc_interval_secs: 3600,
        };
        let s = EmbeddedStore::open(&cfg, Arc::new(ManualClock::default())).unwrap();
        let q = QueueRef::new("p", "n");
        let sub = NewSubscription {
            subscriber: "http://x".into(),
            ttl: 600,
            options: Default::default(),
            confirmed: false,
        };
        let SubscriptionCreated::New(id) = s.create_subscription("p", "n", sub).await.unwrap()
        else {
            panic!("expected a new subscription")
        };
        // Hold the writer, then queue (in this order) a confirmation, a post that refreshes the
        // cached view inside the same transaction, and a job that fails the whole commit.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (entered, started) = std::sync::mpsc::channel::<()>();
        let blocker = s.shards[0].write(move |_| {
            entered.send(()).unwrap();
            held.recv().unwrap();
            Ok(())
        });
        let mut blocker = Box::pin(blocker);
        assert!(blocker.as_mut().now_or_never().is_none());
        started.recv().unwrap(); // the writer is inside the blocker's transaction
        let mut confirm = Box::pin(s.confirm_subscription("p", "n", &id, true));
        let mut post = Box::pin(s.post_messages(q, "c", one_message()));
        let mut poison = Box::pin(
            s.shards[0].write(|_| -> Result<()> { Err(Error::Internal("injected".into())) }),
        );
        assert!(confirm.as_mut().now_or_never().is_none());
        assert!(post.as_mut().now_or_never().is_none());
        assert!(poison.as_mut().now_or_never().is_none());
        release.send(()).unwrap();
        blocker.await.unwrap();
        assert!(confirm.await.is_err(), "rolled back");
        assert!(post.await.is_err(), "rolled back");
        assert!(poison.await.is_err());
        assert!(
            !s.get_subscription("p", "n", &id)
                .await
                .unwrap()
                .unwrap()
                .confirmed
        );
        // The next post must see the subscription as stored: unconfirmed.
        s.post_messages(q, "c", one_message()).await.unwrap();
        let leased = s.lease_notifications(10, 60_000).await.unwrap();
        assert_eq!(leased.len(), 1);
        assert_eq!(leased[0].subscribers.len(), 1);
        assert!(
            !leased[0].subscribers[0].confirmed,
            "as stored, not as rolled back"
        );
    }
}
